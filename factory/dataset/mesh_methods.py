"""Manipulations on the dense face mesh (MediaPipe, 468 points): a morphing attack, expression
reenactment and a local (partial) edit. Each returns (fake, mask, info) with what it did in `info`
(the sample's metadata keeps it under `manipulation`).
"""
from __future__ import annotations

import cv2
import numpy as np

from factory.common.face_mesh import shared_mesh, similarity_align
from factory.common.graphics import colour_transfer
from factory.common.masks import REGIONS, blend, inter_ocular, mesh_mask
from factory.dataset.mesh_warp import similarity_2d, triangulate, warp, with_border
from factory.dataset.methods import Method, Pair, Swap

# MediaPipe topology: what moves with expression, what stays with the skull, and the open mouth
EXPRESSION = sorted({i for r in ("eyes", "brows", "mouth") for part in REGIONS[r] for i in part}
                    | {78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191})
INNER_LIPS = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
STABLE = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
          149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109, 168, 6, 197, 195, 5, 4, 1)


def meshes(pair: Pair, dims: int = 2) -> tuple[np.ndarray, np.ndarray, float]:
    """Meshes (468 x `dims`, pixels) of the pair's target and source crops and the lower face-presence score."""
    (mt, st), (ms, ss) = shared_mesh()(pair.target), shared_mesh()(pair.source)
    return mt[:, :dims].astype(np.float64), ms[:, :dims].astype(np.float64), float(min(st, ss))


class Morph(Method):
    """Face-morphing attack (as NIST FRVT MORPH): both faces warped to their α-weighted mean mesh
    (piecewise-affine over Delaunay triangles), cross-dissolved with weight α on the source, and spliced
    into the target's frame warped to the same mesh. α is drawn per sample from `alpha`."""

    name = "morph"

    def __init__(self, alpha: tuple[float, float] = (0.3, 0.7), grow: float = 1.05):
        super().__init__()
        self.alpha, self.grow = tuple(alpha), grow

    def forward(self, pairs: list[Pair]) -> list[tuple[np.ndarray, np.ndarray, dict]]:
        result = []
        for p in pairs:
            size, a = p.target.shape[0], float(p.rng.uniform(*self.alpha))
            mt, ms, score = meshes(p)
            t, s = with_border(mt, size), with_border(ms, size)
            mean = (1 - a) * t + a * s
            tris = triangulate(mean)
            wt, ws = warp(p.target, t, mean, tris), warp(p.source, s, mean, tris)
            morph = np.clip((1 - a) * wt.astype(np.float32) + a * ws.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
            face = mesh_mask(mean[:468], size, "face", self.grow)
            fake = blend(morph, wt, face)
            changed = np.maximum(face, mesh_mask(mt, size, "face", self.grow * 1.1))
            result.append((fake, changed, {"alpha": round(a, 4), "mesh_score": round(score, 4)}))
        return result


class Reenact(Method):
    """Expression transfer in the spirit of Face2Face: the target keeps its identity and pose, its eyes,
    brows and mouth move to the source's expression (source mesh brought into the target's head pose on
    the skull's points, displacements spread smoothly to nearby points, piecewise-affine warp), and an opened mouth
    takes the source's mouth interior (inner lips more than `open_mouth` inter-ocular distances apart)."""

    name = "reenact"

    def __init__(self, spread: float = 0.15, grow: float = 1.4, feather: float = 0.08, open_mouth: float = 0.05):
        super().__init__()
        self.spread, self.grow, self.feather, self.open_mouth = spread, grow, feather, open_mouth

    def expression_mesh(self, mt: np.ndarray, ms: np.ndarray) -> np.ndarray:
        """The target's 2-D mesh with the source's expression points, the source's 3-D mesh first brought
        into the target's head pose (3-D similarity on the skull's points, so yaw and pitch are not
        carried over); others follow with a Gaussian fall-off of `spread` inter-ocular distances."""
        rot, scale, shift = similarity_align(ms[list(STABLE)], mt[list(STABLE)])
        aligned = (scale * ms @ rot.T + shift)[:, :2]
        mt = mt[:, :2]
        moved = np.zeros(len(mt), bool)
        moved[EXPRESSION] = True
        disp = np.zeros_like(mt)
        disp[moved] = aligned[moved] - mt[moved]
        d2 = ((mt[~moved, None, :] - mt[None, moved, :]) ** 2).sum(-1)
        w = np.exp(-d2 / (2 * (self.spread * inter_ocular(mt)) ** 2))
        disp[~moved] = (w @ disp[moved]) / np.maximum(w.sum(1, keepdims=True), 1e-6) * np.clip(w.max(1), 0, 1)[:, None]
        return mt + disp

    def forward(self, pairs: list[Pair]) -> list[tuple[np.ndarray, np.ndarray, dict]]:
        result = []
        for p in pairs:
            size = p.target.shape[0]
            mt, ms, score = meshes(p, dims=3)
            new = self.expression_mesh(mt, ms)
            mt, ms = mt[:, :2], ms[:, :2]
            t, n = with_border(mt, size), with_border(new, size)
            tris = triangulate(n)
            fake = warp(p.target, t, n, tris)
            if np.linalg.norm(new[13] - new[14]) > self.open_mouth * inter_ocular(new):  # inner lips apart:
                inside = warp(p.source, with_border(ms, size), n, tris)  # the source's mouth interior, on the new mesh
                hull = cv2.convexHull(np.round(new[list(INNER_LIPS)] * 16).astype(np.int32))
                hard = np.zeros((size, size), np.uint8)
                cv2.fillConvexPoly(hard, hull, 255, cv2.LINE_AA, 4)
                fake = blend(inside, fake, cv2.GaussianBlur(hard.astype(np.float32) / 255, (0, 0), 0.6))
            region = np.zeros((size, size), np.float32)
            for r in ("eyes", "brows", "mouth"):
                for mesh in (mt, new):
                    region = np.maximum(region, mesh_mask(mesh, size, r, self.grow, self.feather))
            result.append((blend(fake, p.target, region), region,
                           {"moved_px": round(float(np.abs(new - mt).max()), 2), "mesh_score": round(score, 4)}))
        return result


class Partial(Method):
    """A local edit: one region (eyes, nose, mouth or brows, drawn per sample) replaced — from the source
    (similarity-aligned on the region's mesh points, colour-matched) or from the learned swapper's output
    for the pair — blended with the region's feathered mask. Region and donor go in the metadata."""

    name = "partial"

    def __init__(self, regions: tuple[str, ...] = ("eyes", "nose", "mouth", "brows"),
                 donors: tuple[str, ...] = ("source",), grow: float = 1.5, feather: float = 0.06,
                 checkpoint: str | None = None, fallback: str | None = None, batch_size: int = 8,
                 trained: str | None = None):
        super().__init__()
        unknown = [r for r in regions if r not in REGIONS or r == "face"]
        if unknown or not regions:
            raise ValueError(f"partial: regions must be among eyes, nose, mouth, brows (got {list(regions)})")
        if any(d not in ("source", "swap") for d in donors) or not donors:
            raise ValueError(f"partial: donors are 'source' and/or 'swap' (got {list(donors)})")
        self.regions, self.donors, self.grow, self.feather = tuple(regions), tuple(donors), grow, feather
        self.swap = None
        if "swap" in self.donors:
            self.swap = Swap(checkpoint, batch_size, fallback=fallback, trained=trained)

    def provenance(self) -> dict:
        return self.swap.provenance() if self.swap is not None else super().provenance()

    def forward(self, pairs: list[Pair]) -> list[tuple[np.ndarray, np.ndarray, dict]]:
        draws = [(self.regions[p.rng.integers(len(self.regions))], self.donors[p.rng.integers(len(self.donors))])
                 for p in pairs]
        swapped = {}
        if self.swap is not None:
            idx = [i for i, (_, d) in enumerate(draws) if d == "swap"]
            for i, face in zip(idx, self.swap.decode([pairs[i] for i in idx])):
                swapped[i] = face
        result = []
        for i, (p, (region, donor)) in enumerate(zip(pairs, draws)):
            size = p.target.shape[0]
            mt, ms, score = meshes(p)
            mask = mesh_mask(mt, size, region, self.grow, self.feather)
            if donor == "swap":
                part = swapped[i]
            else:
                points = [k for part in REGIONS[region] for k in part]
                matrix = similarity_2d(ms[points], mt[points])
                part = cv2.warpAffine(p.source, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REFLECT_101)
                part = colour_transfer(part, p.target, mask)
            result.append((blend(part, p.target, mask), mask,
                           {"region": region, "donor": donor, "mesh_score": round(score, 4)}))
        return result


class SBI(Method):
    """Self-blended images as published (Shiohara & Yamasaki, CVPR 2022), at the crop's own size: a face
    blended with a copy of itself, so the only trace is the blend. One of the two (source or target) gets
    colour jitter (RGB shift, HSV, brightness/contrast) and a frequency change (down-and-up scaling or
    sharpening); the copy is shifted and scaled a little; the mask is the dense mesh's face hull (the
    5-point ellipse when the mesh finds no face), elastically deformed, eroded or dilated by a random
    blur and scaled by a blend ratio drawn from (0.25, 0.5, 0.75, 1, 1, 1). Sizes are the paper's at 256 px
    scaled to the crop. `jitter_target` is the paper's 0.5 for training; a stored dataset sets 0, so the
    background stays the real photo and the mask names exactly what changed."""

    name = "sbi"
    uses_source = False
    RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)

    def __init__(self, elastic: bool = True, shift: tuple[float, float] = (0.03, 0.015), scale: float = 0.05,
                 jitter_target: float = 0.5):
        super().__init__()
        self.elastic, self.shift, self.scale, self.jitter_target = elastic, tuple(shift), scale, jitter_target

    @staticmethod
    def _jitter(image: np.ndarray, seed: int) -> np.ndarray:
        import albumentations as A

        colour = A.Compose([
            A.RGBShift((-20, 20), (-20, 20), (-20, 20), p=0.3),
            A.HueSaturationValue((-0.3 * 180 / 2, 0.3 * 180 / 2), (-0.3 * 255, 0.3 * 255), (-0.3 * 255, 0.3 * 255), p=0.3),
            A.RandomBrightnessContrast((-0.1, 0.1), (-0.1, 0.1), p=0.3),
            A.OneOf([A.Downscale(scale_range=(0.5, 0.9), p=1.0), A.Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0), p=1.0)],
                    p=1.0),
        ], seed=seed)
        return colour(image=image)["image"]

    def _mask(self, pair: Pair, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
        from factory.common.face_mesh import region_mask

        size = pair.target.shape[0]
        hull, meshed = region_mask(pair.target, pair.target_lm, "face", grow=1.0, feather=0.0)
        hard = (hull > 0.5).astype(np.float32)
        if self.elastic:  # the paper's ElasticTransform(alpha=50, sigma=7) at 256 px
            import albumentations as A

            k = size / 256
            warp_mask = A.Compose([A.ElasticTransform(alpha=50 * k, sigma=7 * k, p=1.0)], seed=int(rng.integers(2**31)))
            hard = warp_mask(image=hard)["image"]
        # erode or dilate by blurring the hard mask, as the paper's get_blend_mask: a blur, a threshold, a blur
        odd = lambda lo, hi: int(rng.integers(lo, hi)) // 2 * 2 + 1  # noqa: E731
        k1 = max(3, int(round(odd(5, 26) * size / 256)) // 2 * 2 + 1)
        k2 = max(3, int(round(odd(5, 26) * size / 256)) // 2 * 2 + 1)
        soft = cv2.GaussianBlur(hard, (k1, k1), 0)
        soft = soft / max(float(soft.max()), 1e-6)
        eroded = np.where(soft < 1, 0, soft).astype(np.float32) if rng.random() < 0.5 else soft  # erode, or dilate
        soft = eroded if eroded.max() > 0 else hard
        soft = cv2.GaussianBlur(soft, (k2, k2), 0)
        soft = soft / max(float(soft.max()), 1e-6)
        return np.clip(soft * self.RATIOS[int(rng.integers(len(self.RATIOS)))], 0, 1).astype(np.float32), meshed

    def forward(self, pairs: list[Pair]) -> list[tuple[np.ndarray, np.ndarray, dict]]:
        result = []
        for p in pairs:
            rng, size = p.rng, p.target.shape[0]
            source, target = p.target.copy(), p.target.copy()
            jittered = "target" if rng.random() < self.jitter_target else "source"
            if jittered == "source":
                source = self._jitter(source, int(rng.integers(2**31)))
            else:
                target = self._jitter(target, int(rng.integers(2**31)))
            s = 1 + rng.uniform(-self.scale, self.scale)
            matrix = cv2.getRotationMatrix2D((size / 2, size / 2), 0.0, s)
            matrix[:, 2] += rng.uniform(-1, 1, 2) * np.array(self.shift) * size
            source = cv2.warpAffine(source, matrix, (size, size), borderMode=cv2.BORDER_REFLECT_101)
            mask, meshed = self._mask(p, rng)
            result.append((blend(source, target, mask), mask, {"jittered": jittered, "mesh_hull": meshed,
                                                              "blend_ratio": round(float(mask.max()), 3)}))
        return result

"""Full-image products: a manipulated aligned face put back into its original photo, at the photo's size.

The store keeps, per face, the photo → crop affine (`matrix`, at the store's crop size) and the photo's
size. Pasting back inverts that affine: the whole output crop (real or fake alike, so both classes are
resampled the same way) is warped into the photo and blended over it with the crop's own footprint,
feathered at its edge; outside the footprint the photo is untouched. The label mask (what was changed)
goes through the same warp, so it is zero for reals.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from factory.common.images import Skip, load_rgb


@dataclass(frozen=True)
class Placement:
    """Where an output crop of `size` px sits in its photo."""

    matrix: np.ndarray      # 2x3, photo → output crop
    photo_size: tuple[int, int]  # (width, height)

    @property
    def scale(self) -> float:
        """Output-crop pixels per photo pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    @property
    def upscale(self) -> float:
        """How much the crop is enlarged when pasted back (> 1: the crop is coarser than the photo there)."""
        return 1.0 / self.scale

    def to_photo(self, points) -> np.ndarray:
        """Crop points → photo points."""
        from factory.ingest.faces import transform_points

        return transform_points(cv2.invertAffineTransform(self.matrix), points)


def placement(meta: dict, size: int) -> Placement:
    """The placement of a store face's crop when resized to `size` px; Skip when the store lacks it."""
    if "matrix" not in meta or "photo_size" not in meta:
        raise Skip("no_placement", "the face store predates full-image support: rerun `python -m pipelines.prepare`")
    matrix = np.asarray(meta["matrix"], np.float64) * (size / float(meta["size"]))
    return Placement(matrix, tuple(int(v) for v in meta["photo_size"]))


def load_photo(meta: dict, roots: dict[str, str]) -> np.ndarray:
    """The original photo of a store face (`roots`: source name → its folder); Skip when it is gone."""
    root = roots.get(meta["source"])
    if root is None:
        raise Skip("no_photo_root", f"no photo folder known for source {meta['source']!r}")
    image, _ = load_rgb(os.path.join(root, meta["file"]), allow_grey=True)
    if tuple(image.shape[1::-1]) != tuple(meta.get("photo_size", image.shape[1::-1])):
        raise Skip("photo_changed", f"{meta['file']} is {image.shape[1]}x{image.shape[0]}, the store saw {meta['photo_size']}")
    return image


def footprint(size: int, feather: float) -> np.ndarray:
    """The crop's blend weight in crop space: 1 inside, falling to 0 over the outer `feather` share."""
    ramp = max(1, int(round(size * feather)))
    yy, xx = np.mgrid[:size, :size]
    d = np.minimum.reduce([xx, yy, size - 1 - xx, size - 1 - yy])
    return np.clip((d + 0.5) / ramp, 0.0, 1.0).astype(np.float32)


def paste_back(photo: np.ndarray, crop: np.ndarray, mask: np.ndarray, where: Placement,
               feather: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """`crop` (HxWx3 at the placement's size) blended into `photo`; returns the image and the full-frame
    label mask (`mask` warped the same way, cut to the footprint)."""
    w, h = where.photo_size
    if photo.shape[:2] != (h, w):
        raise ValueError(f"photo is {photo.shape[1]}x{photo.shape[0]}, placement says {w}x{h}")
    inverse = cv2.invertAffineTransform(where.matrix)
    # no anti-alias blur on a shrink: the crop was enlarged from this photo, it holds no finer detail (a blur
    # tripled the round-trip error of an unchanged face, 2.1 → 6.7 levels, at 4x)
    face = cv2.warpAffine(crop, inverse, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    weight = cv2.warpAffine(footprint(crop.shape[0], feather), inverse, (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    label = cv2.warpAffine(mask.astype(np.float32), inverse, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0) * weight
    out = photo.astype(np.float32) + weight[..., None] * (face.astype(np.float32) - photo)
    image = np.where(weight[..., None] > 0, np.clip(np.rint(out), 0, 255), photo).astype(np.uint8)
    return image, np.clip(label, 0.0, 1.0)


def photo_roots(faces_dir: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Source name → photo folder, as the store's prepare run recorded it (`overrides` win)."""
    import json

    from factory.common import storage

    path = storage.join(faces_dir, "_prepare.json")
    recorded = {}
    if storage.exists(path):
        recorded = {s["name"]: s["root"] for s in json.loads(storage.read_bytes(path))["config"]["sources"]}
    return {**recorded, **(overrides or {})}


_DETECTOR = None


def recover_placement(meta: dict, photo: np.ndarray, tolerance: float = 1.0) -> bool:
    """For a store made before placements were kept: find the face again in its photo (the same MTCNN the
    store used) and take the affine whose crop landmarks match the stored ones within `tolerance` px; the
    placement is written into `meta`. False when no face in the photo matches."""
    global _DETECTOR
    from factory.ingest.faces import FaceDetector, similarity_matrix, template, transform_points

    if _DETECTOR is None:
        _DETECTOR = FaceDetector()
    stored = np.asarray(meta["landmarks"], np.float64)
    best, err = None, np.inf
    for face in _DETECTOR.detect(photo):
        matrix = similarity_matrix(face.landmarks, template(meta["size"]))
        e = float(np.abs(transform_points(matrix, face.landmarks) - stored).max())
        if e < err:
            best, err = matrix, e
    if best is None or err > tolerance:
        return False
    meta["matrix"], meta["photo_size"] = np.round(best, 6).tolist(), [int(photo.shape[1]), int(photo.shape[0])]
    return True


def usable_target(meta: dict, size: int, roots: dict[str, str], sources, max_upscale: float) -> str | None:
    """Why a store face cannot be a full-image target at `size` px (None: it can). Reads only the photo's
    header, or the photo itself when the store predates placements (`recover_placement`)."""
    from PIL import Image

    if meta["source"] not in sources:
        return "not_a_whole_photo_source"
    root = roots.get(meta["source"])
    if root is None:
        return "no_photo_root"
    if "matrix" not in meta:
        try:
            photo, _ = load_rgb(os.path.join(root, meta["file"]), allow_grey=True)
        except Skip as s:
            return f"photo_{s.reason}"
        if not recover_placement(meta, photo):
            return "placement_not_recovered"
    where = placement(meta, size)
    try:
        with Image.open(os.path.join(root, meta["file"])) as im:
            if tuple(im.size) != where.photo_size:
                return "photo_changed"
    except OSError:
        return "photo_unreadable"
    if where.upscale > max_upscale:
        return "upscale_above_max"
    return None

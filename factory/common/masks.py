"""Soft masks of the region a manipulation replaces, feathered at the edge so blending leaves no seam.

Two shapes: `mesh_mask` is the convex hull of MediaPipe's 468-point face mesh (the whole face, or one
region of it: eyes, brows, nose, mouth) — the factory's default; `face_mask` is an ellipse along the
eye line from brow to chin from the 5 aligned landmarks (the fallback when the mesh finds no face, and
self-blending's randomly deformed mask). Saved per sample (`<key>.mask.png`), all-zero for reals.
"""
from __future__ import annotations

import cv2
import numpy as np


def face_mask(landmarks: np.ndarray, size: int, scale: tuple[float, float] = (1.0, 1.0), feather: float = 0.15,
              shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """HxW float32 mask in [0, 1] for 5 landmarks (eyes, nose, mouth corners) in pixel coords.

    `scale` stretches the ellipse's (width, height), `shift` moves it (in inter-ocular units) and
    `feather` sets the edge blur (in inter-ocular units) — self-blending draws these at random.
    """
    lm = np.asarray(landmarks, np.float64)
    eyes, mouth = lm[:2].mean(0), lm[3:5].mean(0)
    dx, dy = lm[1] - lm[0]
    d = max(float(np.hypot(dx, dy)), 1.0)
    angle = float(np.degrees(np.arctan2(dy, dx)))
    up = (mouth - eyes) / max(np.linalg.norm(mouth - eyes), 1e-6)
    top, bottom = eyes - 0.7 * d * up, mouth + 0.75 * d * up
    centre = (top + bottom) / 2 + np.array(shift) * d
    axes = (1.1 * d * scale[0], np.linalg.norm(bottom - top) / 2 * scale[1])
    hard = np.zeros((size, size), np.uint8)
    cv2.ellipse(hard, (int(round(centre[0] * 16)), int(round(centre[1] * 16))),
                (int(round(axes[0] * 16)), int(round(axes[1] * 16))), angle, 0, 360, 255, -1, cv2.LINE_AA, 4)
    return _feather(hard, max(feather * d, 0.5), inwards=True)


def _feather(hard: np.ndarray, sigma: float, inwards: bool) -> np.ndarray:
    """A hard uint8 mask eroded (`inwards`: the soft edge stays inside) or dilated (the core stays 1) by
    about `sigma` pixels, then Gaussian-blurred by `sigma`, as float32 in [0, 1]."""
    shrink = cv2.erode if inwards else cv2.dilate
    core = shrink(hard, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)), iterations=max(1, int(sigma)))
    return cv2.GaussianBlur(core.astype(np.float32) / 255.0, (0, 0), sigma)


EYE_CORNERS = (33, 263)  # outer eye corners of MediaPipe's 468-point topology


def inter_ocular(points: np.ndarray) -> float:
    """Inter-ocular distance (outer eye corners) of a face mesh, in its pixels (at least 1)."""
    pts = np.asarray(points, np.float64)
    return max(float(np.linalg.norm(pts[EYE_CORNERS[0], :2] - pts[EYE_CORNERS[1], :2])), 1.0)


# point indices of MediaPipe's 468-point topology; a region with two parts (left, right) is two hulls
REGIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "face": (tuple(range(468)),),
    "eyes": ((33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173, 130, 243, 27, 23),
             (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398, 359, 463, 257, 253)),
    "brows": ((46, 53, 52, 65, 55, 70, 63, 105, 66, 107), (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)),
    "nose": ((168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 129, 358, 64, 294, 48, 278, 240, 460, 49, 279),),
    "mouth": ((61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
               57, 287, 164, 18),),
}


def mesh_mask(points: np.ndarray, size: int, region: str = "face", grow: float = 1.0, feather: float = 0.08) -> np.ndarray:
    """HxW float32 mask in [0, 1]: the convex hull(s) of a mesh region (468 x 2-or-3 points in pixel
    coords), scaled by `grow` about each hull's centre and feathered by `feather` inter-ocular units."""
    if region not in REGIONS:
        raise ValueError(f"unknown mesh region {region!r}: one of {sorted(REGIONS)}")
    pts = np.asarray(points, np.float64)[:, :2]
    hard = np.zeros((size, size), np.uint8)
    for part in REGIONS[region]:
        p = pts[list(part)]
        p = p.mean(0) + (p - p.mean(0)) * grow
        cv2.fillConvexPoly(hard, cv2.convexHull(np.round(p * 16).astype(np.int32)), 255, cv2.LINE_AA, 4)
    # the face is feathered inwards (the edge stays on the face); small regions outwards (their core stays 1)
    return _feather(hard, max(feather * inter_ocular(pts), 0.5), inwards=region == "face")


def blend(fake: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """mask·fake + (1 − mask)·target for HxWx3 uint8 images."""
    m = mask[..., None]
    return np.clip(fake.astype(np.float32) * m + target.astype(np.float32) * (1 - m) + 0.5, 0, 255).astype(np.uint8)


def encode_mask(mask: np.ndarray) -> bytes:
    """8-bit greyscale PNG bytes of a [0, 1] mask (lossless: the manipulated region exactly)."""
    ok, buf = cv2.imencode(".png", np.clip(mask * 255 + 0.5, 0, 255).astype(np.uint8))
    if not ok:
        raise RuntimeError("PNG encoding of a mask failed")
    return buf.tobytes()

"""Soft face masks from the 5 aligned landmarks: the region a manipulation replaces, feathered at the edge.

The mask is an ellipse along the eye line from brow to chin, sized by the inter-ocular distance,
blurred so that blending leaves no hard seam. Saved per sample (`<key>.mask.png`), all-zero for reals.
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
    sigma = max(feather * d, 0.5)
    inner = cv2.erode(hard, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)), iterations=max(1, int(sigma)))
    return cv2.GaussianBlur(inner.astype(np.float32) / 255.0, (0, 0), sigma)


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

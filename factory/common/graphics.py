"""The graphics face swap (FaceForensics++'s FaceSwap family) on aligned crops: warp the source face onto
the target's 5 landmarks, transfer the target's colour, Poisson-blend (seamless clone), feather with the
soft face mask. The dataset's `warp_blend` method ships it; the swapper's cross-identity pixel target
(ReliableSwap's idea) and its evaluation baseline use the same function.
"""
from __future__ import annotations

import cv2
import numpy as np

from factory.common.masks import blend, face_mask


def colour_transfer(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer in Lab: match src's masked mean/std to dst's."""
    s = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    d = cv2.cvtColor(dst, cv2.COLOR_RGB2LAB).astype(np.float32)
    m = mask > 0.5
    if m.sum() < 4:
        return src
    s_mu, s_sd = s[m].mean(0), s[m].std(0) + 1e-3
    d_mu, d_sd = d[m].mean(0), d[m].std(0) + 1e-3
    out = (s - s_mu) / s_sd * d_sd + d_mu
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def graphics_swap(target: np.ndarray, source: np.ndarray, target_lm: np.ndarray, source_lm: np.ndarray,
                  seamless: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Source's face on the target (uint8 HxWx3 crops of one size, 5x2 landmarks in their pixels) →
    (fake uint8, the soft mask it replaced). Deterministic."""
    size = target.shape[0]
    matrix, _ = cv2.estimateAffinePartial2D(source_lm.astype(np.float32), target_lm.astype(np.float32))
    if matrix is None:
        matrix = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    warped = cv2.warpAffine(source, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    mask = face_mask(target_lm, size)
    warped = colour_transfer(warped, target, mask)
    if seamless:
        hard = (mask > 0.05).astype(np.uint8) * 255
        ys, xs = np.nonzero(hard)
        if len(xs) and xs.min() > 0 and ys.min() > 0 and xs.max() < size - 1 and ys.max() < size - 1:
            centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
            warped = cv2.seamlessClone(warped, np.ascontiguousarray(target), hard, centre, cv2.NORMAL_CLONE)
    return blend(warped, target, mask), mask


def warp_blend_faces(targets, sources, target_lms, source_lms) -> np.ndarray:
    """`graphics_swap` of each (target, source) pair, stacked (the swapper evaluation's baseline)."""
    return np.stack([graphics_swap(t, s, tl, sl)[0] for t, s, tl, sl in zip(targets, sources, target_lms, source_lms)])

"""DeeperForensics-style perturbations: 7 types × 5 levels, as fixed-parameter albumentations transforms.

Levels follow DeeperForensics-1.0's ladder (1 = mild … 5 = severe), rescaled to 64-128 px faces.
Reals and fakes draw perturbations from one distribution (`draw`), so a perturbation never tells
them apart; every sample records its `type` and `level` (`none`, 0 when unperturbed).
"""
from __future__ import annotations

import albumentations as A
import numpy as np

LEVELS = (1, 2, 3, 4, 5)
NONE = {"type": "none", "level": 0}


def _saturation(level: int) -> A.BasicTransform:
    f = (0.4, 0.3, 0.2, 0.1, 0.0)[level - 1]  # chroma kept
    return A.ColorJitter(brightness=(1, 1), contrast=(1, 1), saturation=(f, f), hue=(0, 0), p=1)


def _contrast(level: int) -> A.BasicTransform:
    f = (0.85, 0.725, 0.6, 0.475, 0.35)[level - 1]
    return A.ColorJitter(brightness=(1, 1), contrast=(f, f), saturation=(1, 1), hue=(0, 0), p=1)


def _block(level: int) -> A.BasicTransform:
    n = (2, 4, 6, 8, 10)[level - 1]  # random-colour blocks of 1/16 of the side
    return A.CoarseDropout(num_holes_range=(n, n), hole_height_range=(0.0625, 0.0625),
                           hole_width_range=(0.0625, 0.0625), fill="random_uniform", p=1)


def _noise(level: int) -> A.BasicTransform:
    var = (0.001, 0.002, 0.005, 0.01, 0.05)[level - 1]  # variance on [0, 1] intensities
    return A.GaussNoise(std_range=(var**0.5, var**0.5), per_channel=True, p=1)


def _blur(level: int) -> A.BasicTransform:
    s = (0.5, 0.75, 1.0, 1.5, 2.0)[level - 1]  # sigma in px at 64 px
    return A.GaussianBlur(blur_limit=0, sigma_limit=(s, s), p=1)


def _jpeg(level: int) -> A.BasicTransform:
    q = (80, 60, 40, 25, 10)[level - 1]
    return A.ImageCompression(quality_range=(q, q), p=1)


def _video(level: int) -> A.BasicTransform:
    """Video-compression-like: lose resolution, then a low-quality re-encode."""
    s, q = ((0.9, 70), (0.75, 55), (0.6, 40), (0.5, 30), (0.4, 20))[level - 1]
    return A.Compose([A.Downscale(scale_range=(s, s), p=1), A.ImageCompression(quality_range=(q, q), p=1)])


PERTURBATIONS = {"saturation": _saturation, "contrast": _contrast, "block": _block, "noise": _noise,
                 "blur": _blur, "jpeg": _jpeg, "video": _video}


def draw(rng: np.random.Generator, share: float, types: list[str] | None = None,
         levels: tuple[int, ...] = LEVELS) -> dict:
    """One sample's perturbation: with probability `share` a uniform (type, level), else none."""
    types = list(types or PERTURBATIONS)
    unknown = set(types) - set(PERTURBATIONS)
    if unknown:
        raise ValueError(f"unknown perturbation types {sorted(unknown)}; known: {sorted(PERTURBATIONS)}")
    if rng.random() >= share:
        return dict(NONE)
    return {"type": types[rng.integers(len(types))], "level": int(levels[rng.integers(len(levels))])}


def apply(image: np.ndarray, perturbation: dict, seed: int) -> np.ndarray:
    """Apply a drawn perturbation to an HxWx3 uint8 image, reproducibly for a given seed."""
    if perturbation["type"] == "none":
        return image
    transform = A.Compose([PERTURBATIONS[perturbation["type"]](perturbation["level"])], seed=seed)
    return transform(image=image)["image"]

"""Decoding input files into RGB arrays, with a named reason for every file that cannot be used."""
from __future__ import annotations

import os
import warnings

import cv2
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is a skip, not a half-grey face


class Skip(Exception):
    """An input the factory cannot use; `reason` is the report's category, `detail` says more."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# Modes converted to RGB (counted as notes); anything else is a skip.
CONVERTIBLE = {"RGB": None, "RGBA": "alpha", "LA": "alpha", "P": "palette", "CMYK": "cmyk", "YCbCr": "ycbcr",
               "L": "grey", "I;16": "grey", "I": "grey", "1": "grey"}


def load_rgb(path: str, min_side: int = 32, allow_grey: bool = False, grey_tol: float = 2.0) -> tuple[np.ndarray, str | None]:
    """Decode `path` to an HxWx3 uint8 RGB array and an optional conversion note; raise Skip if unusable.

    Grey photos (mode L or RGB with equal channels) are skipped by default: colour-based manipulations
    and detectors would otherwise see a colour shortcut between reals and fakes.
    """
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise Skip("unreadable", str(e)) from e
    if size == 0:
        raise Skip("empty_file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                mode = im.mode
                if mode not in CONVERTIBLE:
                    raise Skip("unsupported_mode", mode)
                note = CONVERTIBLE[mode]
                if mode in ("RGBA", "LA", "P"):
                    rgba = im.convert("RGBA")
                    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    rgb = Image.alpha_composite(canvas, rgba).convert("RGB")
                else:
                    rgb = im.convert("RGB")
    except Skip:
        raise
    except UnidentifiedImageError as e:
        raise Skip("not_an_image", type(e).__name__) from e
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        msg = str(e)
        reason = "truncated" if "truncated" in msg or "broken data stream" in msg else "corrupt_image"
        raise Skip(reason, msg[:120]) from e
    arr = np.asarray(rgb, dtype=np.uint8)
    if min(arr.shape[:2]) < min_side:
        raise Skip("too_small", f"{arr.shape[1]}x{arr.shape[0]} < {min_side}px")
    if not allow_grey:
        spread = np.abs(arr.astype(np.int16) - arr.mean(axis=2, keepdims=True)).mean()
        if note == "grey" or spread < grey_tol:
            raise Skip("grayscale", f"mode {mode}, channel spread {spread:.2f}")
    return arr, note


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """The one resize every real and fake goes through (area filter when shrinking)."""
    if image.shape[0] == size:
        return image
    interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)

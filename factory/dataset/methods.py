"""Manipulation methods: each turns (target crop, source crop) pairs into fakes with the mask it replaced.

A method is an `nn.Module` (so Lightning moves learned ones to the device) built from its config in
`conf/method/`; adding a method is a class plus a YAML file, the pipeline does not change.
All work on aligned crops at the dataset's output size; the result is blended into the target crop
with a soft face mask (`factory.common.masks`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn as nn

from factory.common.face_mesh import blend_into_targets
from factory.common.graphics import graphics_swap
from factory.common.masks import blend, face_mask
from factory.common.paths import sha256_file
from factory.ingest.facedata import to_uint8


@dataclass
class Pair:
    """One fake to make: texture/attributes from `target`, identity from `source` (uint8 HxWx3 at the
    output size, landmarks 5x2 in its pixels), and the sample's own random generator."""

    target: np.ndarray
    source: np.ndarray
    target_lm: np.ndarray
    source_lm: np.ndarray
    rng: np.random.Generator


class Method(nn.Module):
    """Base class: `forward(pairs) -> [(fake uint8 HxWx3, mask float HxW)]`, or `(fake, mask, info)` with
    a dict of what was done to that sample (kept in its metadata as `manipulation`)."""

    name = "method"
    uses_source = True  # False: the fake is made from the target alone (source = target)

    def provenance(self) -> dict:
        """What made the fakes (checkpoint file and sha256 for learned methods)."""
        return {"checkpoint": "", "sha256": ""}

    def forward(self, pairs: list[Pair]) -> list[tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError


class Swap(Method):
    """The learned swapper (claims 1-2): decoder of [texture(target) ‖ identity(source)], blended with
    the target's face mask. `checkpoint` names a Lightning checkpoint of `train_generator` or shipped
    weights; when it is not set, `trained` (the local training output) is used if it exists, else
    `fallback` (the shipped weights, `weights/swapper.pt`), so a fresh clone makes datasets without training."""

    name = "swap"

    def __init__(self, checkpoint: str | None = None, batch_size: int = 8, fallback: str | None = None,
                 mask: str = "mesh", trained: str | None = None):
        super().__init__()
        from factory.common.model_files import choose
        from factory.swapper.training import load_swapper

        checkpoint = choose(checkpoint, trained, fallback, "swapper")
        self.checkpoint, self.batch_size, self.mask = checkpoint, batch_size, mask
        self.swapper = load_swapper(checkpoint).eval()
        self.sha256 = sha256_file(checkpoint)

    def provenance(self) -> dict:
        return {"checkpoint": self.checkpoint, "sha256": self.sha256}

    @torch.inference_mode()
    def decode(self, pairs: list[Pair]) -> list[np.ndarray]:
        """The decoder's faces (uint8, the target's size) for the pairs, before blending."""
        if not pairs:
            return []
        device = next(self.swapper.texture.parameters()).device

        def stack(images):
            return torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2).float().div_(255)

        size = pairs[0].target.shape[0]
        out = self.swapper.swap(stack([p.target for p in pairs]), stack([p.source for p in pairs]), self.batch_size)
        if out.shape[-1] != size:
            out = torch.nn.functional.interpolate(out, size=(size, size), mode="bilinear", align_corners=False)
        return list(to_uint8(out))

    def forward(self, pairs: list[Pair]) -> list[tuple[np.ndarray, np.ndarray]]:
        return blend_into_targets(self.decode(pairs), [p.target for p in pairs], [p.target_lm for p in pairs], self.mask)


class WarpBlend(Method):
    """Classic graphics swap (FaceForensics++'s FaceSwap family): warp the source face onto the target's
    landmarks, transfer the target's colour, Poisson-blend, feather with the mask (`factory.common.graphics`)."""

    name = "warp_blend"

    def __init__(self, seamless: bool = True):
        super().__init__()
        self.seamless = seamless

    def forward(self, pairs: list[Pair]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [graphics_swap(p.target, p.source, p.target_lm, p.source_lm, self.seamless) for p in pairs]


class SelfBlend(Method):
    """Self-blended images (SBI, Shiohara & Yamasaki 2022): a face blended with a colour- and
    geometry-jittered copy of itself under a randomly deformed mask — blending artefacts without
    any identity change."""

    name = "self_blend"
    uses_source = False

    def __init__(self, max_shift: float = 0.03, max_scale: float = 0.05, colour: float = 0.1):
        super().__init__()
        self.max_shift, self.max_scale, self.colour = max_shift, max_scale, colour

    def forward(self, pairs: list[Pair]) -> list[tuple[np.ndarray, np.ndarray]]:
        result = []
        for p in pairs:
            rng, size = p.rng, p.target.shape[0]
            img = p.target.astype(np.float32)
            gain = 1 + rng.uniform(-self.colour, self.colour, 3)
            bias = rng.uniform(-self.colour, self.colour, 3) * 255 * 0.5
            jitter = np.clip(img * gain + bias, 0, 255).astype(np.uint8)
            s = 1 + rng.uniform(-self.max_scale, self.max_scale)
            t = rng.uniform(-self.max_shift, self.max_shift, 2) * size
            matrix = cv2.getRotationMatrix2D((size / 2, size / 2), 0.0, s)
            matrix[:, 2] += t
            jitter = cv2.warpAffine(jitter, matrix, (size, size), borderMode=cv2.BORDER_REFLECT_101)
            if rng.random() < 0.5:
                jitter = cv2.GaussianBlur(jitter, (0, 0), rng.uniform(0.3, 1.0))
            mask = face_mask(p.target_lm, size, scale=tuple(rng.uniform(0.8, 1.1, 2)),
                             feather=rng.uniform(0.05, 0.3), shift=tuple(rng.uniform(-0.1, 0.1, 2)))
            result.append((blend(jitter, p.target, mask), mask))
        return result

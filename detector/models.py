"""Swap detectors: a timm backbone with one real/fake logit, normalisation built in.

A detector takes Bx3xHxW faces in [0, 1] (the canonical crops at `input_size`) and returns one
logit per face (fake = positive). Normalisation lives inside the model, so a TorchScript or ONNX
export has the same input contract as the checkpoint.
"""
from __future__ import annotations

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F


class Detector(nn.Module):
    """`imagenet`: start from the ImageNet weights that ship in a package (`factory.common.pretrained`);
    `pretrained_path`: or from any local weights file. Neither downloads anything."""

    def __init__(self, backbone: str = "resnet18", input_size: int = 64, drop_rate: float = 0.2,
                 pretrained_path: str | None = None, imagenet: bool = False):
        super().__init__()
        self.backbone_name, self.input_size = backbone, input_size
        self.net = timm.create_model(backbone, pretrained=False, num_classes=1, drop_rate=drop_rate)
        if imagenet:
            from factory.common.pretrained import load_imagenet

            load_imagenet(self.net, backbone)
            # a new head starts at zero: timm's EfficientNet init draws a 1-output classifier from U(-1, 1),
            # which on 1,280 ImageNet features gives logits of ±30 and losses of 4-5 before any step
            for p in self.head_parameters():
                nn.init.zeros_(p)
        if pretrained_path:  # a local weights file (nothing is downloaded)
            from factory.common.model_files import ModelFileError, read_weights

            state = read_weights(pretrained_path)
            state = {k: v for k, v in state.get("state_dict", state).items() if not k.startswith(("fc.", "classifier.", "head."))}
            missing, _ = self.net.load_state_dict(state, strict=False)
            if len(missing) > 4:
                raise ModelFileError(pretrained_path, f"does not fit {backbone}: {len(missing)} missing tensors")
        cfg = self.net.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg.get("mean", (0.5, 0.5, 0.5))).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std", (0.5, 0.5, 0.5))).view(1, 3, 1, 1), persistent=False)

    def head_parameters(self) -> list[nn.Parameter]:
        """The classifier's parameters (new at fine-tuning, unlike the backbone's)."""
        return list(self.net.get_classifier().parameters())

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """Bx3xHxW in [0, 1] → B logits."""
        if faces.shape[-1] != self.input_size or faces.shape[-2] != self.input_size:
            faces = F.interpolate(faces, size=(self.input_size, self.input_size), mode="bilinear",
                                  antialias=True, align_corners=False)
        return self.net((faces - self.mean) / self.std).squeeze(1)

"""Identity encoders: canonical aligned faces → L2-normalised identity embeddings.

Three encoders share one interface (`IdentityEncoder.forward`): a timm backbone trained here with a
margin loss (claim 3), the ported dlib ResNet and OpenCV Zoo's SFace (two strong recognisers trained
elsewhere, independent of each other). Each owns its input definition (which part of the canonical
crop it reads, at what size), applied by a differentiable resample, so every later stage feeds any
encoder the same canonical faces and can back-propagate through it. `features` also returns the
recogniser's intermediate maps (richer identity features for the swapper's decoder).
"""
from __future__ import annotations

import math

import numpy as np
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from factory.identity.dlib_resnet import DlibResNet
from factory.identity.sface import TEMPLATE_112, SFaceNet
from factory.ingest.faces import TEMPLATE


def crop_resize(x: torch.Tensor, box: tuple[float, float, float, float], size: int) -> torch.Tensor:
    """Differentiably crop `box` (x0, y0, x1, y1 in unit coords of the canonical crop) and resize to `size`."""
    x0, y0, x1, y1 = box
    if box == (0.0, 0.0, 1.0, 1.0) and x.shape[-1] == size:
        return x
    theta = torch.tensor([[x1 - x0, 0.0, x0 + x1 - 1.0], [0.0, y1 - y0, y0 + y1 - 1.0]], dtype=x.dtype, device=x.device)
    box_px = x.shape[-1] * (x1 - x0)
    if box_px > 1.5 * size:  # downsampling: smooth first so the grid sample does not alias
        x = F.interpolate(x, scale_factor=size / box_px, mode="bilinear", antialias=True, align_corners=False)
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), [x.shape[0], x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class IdentityEncoder(nn.Module):
    """Bx3xHxW canonical faces in [0, 1] (any H = W) → BxD unit-norm identity embeddings."""

    embedding_dim: int
    input_size: int
    box: tuple[float, float, float, float]
    map_channels: tuple[int, ...] = ()  # channels of the intermediate maps `features` returns (coarse first)
    name = "encoder"  # short name in reports

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # x already in the encoder's frame
        raise NotImplementedError

    def embed_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Raw embedding and intermediate maps (coarse first) of faces already in the encoder's frame."""
        return self.embed(x), []

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed(crop_resize(faces, self.box, self.input_size)), dim=1)

    def features(self, faces: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Unit embedding and the intermediate maps of canonical faces."""
        emb, maps = self.embed_maps(crop_resize(faces, self.box, self.input_size))
        return F.normalize(emb, dim=1), maps


@torch.inference_mode()
def embed_batched(encoder: IdentityEncoder, faces: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Embeddings of a stack of faces, computed `batch_size` at a time in eval mode."""
    encoder.eval()
    if len(faces) == 0:
        return torch.zeros(0, encoder.embedding_dim)
    return torch.cat([encoder(faces[i:i + batch_size]) for i in range(0, len(faces), batch_size)])


class DlibEncoder(IdentityEncoder):
    """The pretrained dlib ResNet (99.38 % LFW as published); reads the whole canonical crop at 150 px.

    The canonical template *is* dlib's 150 px chip layout, so its frame is the full crop.
    """

    map_channels = (128, 64)  # ends of stages 3 (8 x 8) and 2 (17 x 17)
    name = "dlib"

    def __init__(self, path: str | None = None):
        super().__init__()
        self.net = DlibResNet(path)
        self.embedding_dim, self.input_size, self.box = 128, 150, (0.0, 0.0, 1.0, 1.0)
        self.requires_grad_(False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def embed_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.net(x, taps=(9, 6))


def template_box(template: np.ndarray, size: float) -> tuple[float, float, float, float]:
    """The box of the canonical crop (unit coords) that maps the canonical 5-point template onto
    `template` (pixels of a `size` input) by the least-squares scale + shift."""
    dst = np.asarray(template, np.float64) / size
    a = np.zeros((10, 3))
    a[0::2, 0], a[1::2, 0] = dst[:, 0], dst[:, 1]
    a[0::2, 1], a[1::2, 2] = 1.0, 1.0
    (w, x0, y0), *_ = np.linalg.lstsq(a, TEMPLATE.reshape(-1), rcond=None)
    return float(x0), float(y0), float(x0 + w), float(y0 + w)


class SFaceEncoder(IdentityEncoder):
    """OpenCV Zoo's SFace (MobileFaceNet, 128-d), read at 112 px on its ArcFace 5-point template; the
    part of that frame outside the canonical crop is filled by border replication."""

    map_channels = (1024, 512)  # conv_14 (7 x 7) and conv_12 (14 x 14)
    name = "sface"

    def __init__(self, path: str | None = None):
        super().__init__()
        self.net = SFaceNet(path)
        self.embedding_dim, self.input_size = 128, 112
        self.box = template_box(TEMPLATE_112, 112)
        self.requires_grad_(False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 255.0)

    def embed_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.net(x * 255.0, taps=("conv_14_relu", "conv_12_relu"))


class TimmEncoder(IdentityEncoder):
    """timm backbone + ArcFace-style embedding head (BN → dropout → flatten → FC → BN), from scratch or
    (`imagenet=True`) from the ImageNet weights that ship in a package.

    The spatial map is flattened rather than pooled (as in ArcFace's 'E' output) so the embedding
    keeps where features are on the face.
    """

    name = "trained"

    def __init__(self, backbone: str = "mobilenetv4_conv_small", embedding_dim: int = 256, input_size: int = 64,
                 box: tuple[float, float, float, float] = (0.1, 0.12, 0.9, 0.92), dropout: float = 0.2,
                 pretrained_path: str | None = None, imagenet: bool = False):
        super().__init__()
        self.embedding_dim, self.input_size, self.box = embedding_dim, input_size, tuple(box)
        self.backbone = timm.create_model(backbone, pretrained=False, num_classes=0, global_pool="")
        if imagenet:  # the ImageNet weights that ship in a package (factory.common.pretrained)
            from factory.common.pretrained import load_imagenet

            load_imagenet(self.backbone, backbone)
        if pretrained_path:
            from factory.common.model_files import read_weights

            state = read_weights(pretrained_path)
            self.backbone.load_state_dict(state, strict=False)
        with torch.no_grad():
            c, h, w = self.backbone(torch.zeros(1, 3, input_size, input_size)).shape[1:]
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.Dropout(dropout), nn.Flatten(),
                                  nn.Linear(c * h * w, embedding_dim), nn.BatchNorm1d(embedding_dim))
        self.register_buffer("mean", torch.tensor([0.5, 0.5, 0.5])[None, :, None, None])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone((x - self.mean) / 0.5))


class MarginHead(nn.Module):
    """Normalised class centres with an additive angular (ArcFace) or cosine (CosFace) margin."""

    def __init__(self, embedding_dim: int, num_classes: int, kind: str = "arcface", scale: float = 32.0,
                 margin: float = 0.5):
        super().__init__()
        if kind not in ("arcface", "cosface"):
            raise ValueError(f"margin head kind must be arcface or cosface, got {kind!r}")
        self.kind, self.scale, self.margin = kind, scale, margin
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Margin logits (for cross-entropy) of unit embeddings against their labels."""
        cos = F.linear(F.normalize(emb, dim=1), F.normalize(self.weight, dim=1)).clamp(-1 + 1e-7, 1 - 1e-7)
        target = cos.gather(1, labels[:, None])
        if self.kind == "arcface":
            theta = torch.acos(target)
            # past pi - m the angle would wrap; fall back to CosFace-style penalty there (as insightface does)
            shifted = torch.where(theta + self.margin < math.pi, torch.cos(theta + self.margin),
                                  target - self.margin * math.sin(self.margin))
        else:
            shifted = target - self.margin
        return self.scale * cos.scatter(1, labels[:, None], shifted)

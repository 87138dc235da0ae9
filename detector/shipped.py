"""The detector that ships in the repository (`weights/detector.pt`): its network's weights (fp16), the
config that rebuilds it, and a manifest (config, data, CPU hours, sha256, figures, lineage).

`detect` and `evaluate` fall back to it when nothing was trained locally, and `train_detector
init_from=weights/detector.pt` continues it on any machine. Every detector file — a `train_detector`
checkpoint or shipped weights — is read here with `weights_only`, so pickled code is refused.
"""
from __future__ import annotations

import hashlib
import json
import os

import torch

from detector.models import Detector
from factory.common.model_files import ModelFileError, expect_state, read_weights

KIND = "swap-factory detector"


def _network(path: str, config: dict, state: dict) -> Detector:
    config = {k: v for k, v in config.items() if k != "_target_"}
    model = Detector(**{**config, "imagenet": False, "pretrained_path": None})  # the weights come from the file
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise ModelFileError(path, f"weights do not fit a {config.get('backbone')} detector "
                                   f"({str(e).splitlines()[-1].strip()[:120]})") from None
    own = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    if own - set(state):
        raise ModelFileError(path, f"weights do not fit a {config.get('backbone')} detector "
                                   f"({len(own - set(state))} tensors missing)")
    return model.eval()


def load_detector(path: str) -> Detector:
    """The detector in a `train_detector` checkpoint (`.ckpt`) or in shipped weights (`save_detector`)."""
    blob = read_weights(path, "train one (python -m pipelines.train_detector) or name another file")
    if "hyper_parameters" in blob:  # a Lightning checkpoint of DetectorModule
        state = expect_state(path, blob, "detector", "model.net.")
        config = blob["hyper_parameters"].get("model")
        if not isinstance(config, dict):
            raise ModelFileError(path, "a checkpoint without its detector's config")
        return _network(path, config, {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
    if blob.get("kind") != KIND:
        raise ModelFileError(path, "a checkpoint of another kind (no detector config), not a detector")
    return _network(path, blob["config"], expect_state(path, blob, "detector", "net."))


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_detector(model: Detector, config: dict, path: str, manifest: dict | None = None) -> str:
    """Write the detector's weights (fp16) with the config that rebuilds it; returns the file's sha256."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"kind": KIND, "config": config, "state_dict": state, "manifest": manifest or {}}, path + ".part")
    os.replace(path + ".part", path)
    return sha256_file(path)


def ship_detector(checkpoint: str, weights_dir: str, manifest: dict) -> dict:
    """Write `detector.pt` + `detector.json` (the manifest: config, data, CPU hours, figures, lineage, sha256)."""
    blob = read_weights(checkpoint)
    config = blob["hyper_parameters"]["model"] if "hyper_parameters" in blob else blob["config"]
    model = load_detector(checkpoint)
    path = os.path.join(weights_dir, "detector.pt")
    manifest = {"file": "detector.pt", "config": config, **manifest}
    manifest["sha256"] = save_detector(model, config, path, {k: v for k, v in manifest.items() if k != "figures"})
    manifest["bytes"] = os.path.getsize(path)
    with open(os.path.join(weights_dir, "detector.json"), "w") as f:
        json.dump(manifest, f, indent=1, default=str)
    return manifest


def shipped_manifest(path: str) -> dict:
    """The manifest stored inside shipped detector weights (empty for a checkpoint)."""
    return read_weights(path).get("manifest", {})

"""The identity encoder that ships in the repository (`weights/identity.pt`): the trained encoder's weights
(fp16, no margin head, no teacher), the config that rebuilds it, and a manifest (`identity.json`: config,
recipe, data, CPU hours, lineage, sha256, figures).

`identity=trained` falls back to it when nothing was trained locally, and `train_identity
init_from=weights/identity.pt` continues it on any machine. Files are read with `weights_only`.
"""
from __future__ import annotations

import json
import os

import torch

from factory.common.model_files import ModelFileError, expect_state, read_weights
from factory.common.paths import sha256_file
from factory.common.training import run_facts as common_run_facts
from factory.identity.encoders import TimmEncoder

KIND = "swap-factory identity encoder"


def encoder_from(path: str, config: dict, state: dict) -> TimmEncoder:
    """A frozen `TimmEncoder` built from `config` with `state` (its own keys), or a one-line refusal."""
    encoder = TimmEncoder(**{**config, "imagenet": False, "pretrained_path": None})  # weights come from the file
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        encoder.load_state_dict(state)
    except RuntimeError as e:
        raise ModelFileError(path, f"weights do not fit this identity encoder ({str(e).splitlines()[-1].strip()[:120]})") from None
    return encoder.eval().requires_grad_(False)


def run_facts(path: str, blob: dict) -> dict:
    """What a manifest records of the run behind an identity file (`factory.common.training.run_facts`)."""
    return common_run_facts(path, blob, "encoder", "faces_dir")


def ship_identity(checkpoint: str, weights_dir: str, figures: dict | None = None) -> dict:
    """Write `identity.pt` + `identity.json` from a `train_identity` checkpoint (or shipped weights)."""
    from factory.identity.training import encoder_in

    blob = read_weights(checkpoint)
    config = blob["hyper_parameters"]["encoder"] if "hyper_parameters" in blob else blob["config"]
    encoder = encoder_in(checkpoint, blob)
    path = os.path.join(weights_dir, "identity.pt")
    manifest = {"file": "identity.pt", "config": config, **run_facts(checkpoint, blob)}
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in encoder.state_dict().items()}
    os.makedirs(weights_dir, exist_ok=True)
    torch.save({"kind": KIND, "config": config, "state_dict": state, "manifest": manifest}, path + ".part")
    os.replace(path + ".part", path)
    manifest.update(sha256=sha256_file(path), bytes=os.path.getsize(path), figures=figures or {})
    with open(os.path.join(weights_dir, "identity.json"), "w") as f:
        json.dump(manifest, f, indent=1, default=str)
    return manifest


def shipped_encoder(path: str, blob: dict) -> TimmEncoder:
    """The encoder in shipped weights (`ship_identity`)."""
    if blob.get("kind") != KIND:
        raise ModelFileError(path, "a file of another kind (no identity encoder config), not an identity encoder")
    return encoder_from(path, blob["config"], expect_state(path, blob, "identity encoder", ""))

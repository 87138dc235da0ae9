"""The detector that ships in the repository (`weights/detector.pt`): its network's weights (fp16), the
config that rebuilds it, and a manifest (config, data, CPU hours, sha256, figures, lineage).

`detect` and `evaluate` fall back to it when nothing was trained locally, and `train_detector
init_from=weights/detector.pt` continues it on any machine. Every detector file — a `train_detector`
checkpoint or shipped weights — is read here with `weights_only`, so pickled code is refused.
"""
from __future__ import annotations

import json
import os

import torch

from detector.models import Detector
from factory.common.model_files import ModelFileError, expect_state, read_weights
from factory.common.paths import sha256_file
from factory.common.training import run_facts as common_run_facts

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


def load_detector(path: str, blob: dict | None = None) -> Detector:
    """The detector in a `train_detector` checkpoint (`.ckpt`) or in shipped weights (`save_detector`);
    `blob`: the file's content when the caller has read it already."""
    if blob is None:
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


def save_detector(model: Detector, config: dict, path: str, manifest: dict | None = None) -> str:
    """Write the detector's weights (fp16) with the config that rebuilds it; returns the file's sha256."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"kind": KIND, "config": config, "state_dict": state, "manifest": manifest or {}}, path + ".part")
    os.replace(path + ".part", path)
    return sha256_file(path)


def run_facts(checkpoint: str, blob: dict | None = None) -> dict:
    """What a manifest records of the run behind a detector file (`factory.common.training.run_facts`)."""
    return common_run_facts(checkpoint, read_weights(checkpoint) if blob is None else blob, "model", "root")


def ship_detector(checkpoint: str, weights_dir: str, manifest: dict | None = None) -> dict:
    """Write `detector.pt` + `detector.json` (the manifest: config, recipe, data, CPU hours, lineage, sha256;
    `evaluate ship_dir=` adds the figures it measured on the shipped file)."""
    blob = read_weights(checkpoint)
    config = blob["hyper_parameters"]["model"] if "hyper_parameters" in blob else blob["config"]
    model = load_detector(checkpoint, blob)
    path = os.path.join(weights_dir, "detector.pt")
    manifest = {"file": "detector.pt", "config": config, **run_facts(checkpoint, blob), **(manifest or {})}
    manifest["sha256"] = save_detector(model, config, path, {k: v for k, v in manifest.items() if k != "figures"})
    manifest["bytes"] = os.path.getsize(path)
    write_manifest(weights_dir, manifest)
    return manifest


def write_manifest(weights_dir: str, manifest: dict) -> None:
    with open(os.path.join(weights_dir, "detector.json"), "w") as f:
        json.dump(manifest, f, indent=1, default=str)


def figures_of(report: dict, name: str) -> dict:
    """The headline figures of detector `name` in an `evaluate` report, for the manifest."""
    r = report["detectors"][name]
    o, cal = r["overall"], r.get("calibration", {})
    sweep = r.get("sweep", {})
    return {"data": report["data"].get("source"), "n": report["data"]["n"], "auc": o["auc"], "auc_ci95": o.get("auc_ci95"),
            "eer": o["eer"], "ap": o["ap"], "ece": o["ece"], "ece_after_temperature": cal.get("ece_after"),
            "temperature": cal.get("temperature"), "threshold": o.get("threshold"),
            "per_method_auc": report["method_matrix"][name],
            "per_source_auc": {k: v["auc"] for k, v in r.get("per_source", {}).items()},
            "level3_auc": {k: v[3] for k, v in sweep.items() if isinstance(v, list) and len(v) > 3},
            "hardest_third_auc": report.get("hardness", {}).get("auc_hardest_third", {}).get(name)}


def shipped_temperature(path: str) -> float | None:
    """The calibrating temperature `evaluate` fitted for shipped weights (from the `detector.json` beside
    them, when it describes this very file), else None."""
    manifest = os.path.join(os.path.dirname(os.path.abspath(path)), "detector.json")
    if not str(path).endswith(".pt") or not os.path.isfile(manifest):
        return None
    with open(manifest) as f:
        m = json.load(f)
    return m.get("figures", {}).get("temperature") if m.get("sha256") == sha256_file(path) else None

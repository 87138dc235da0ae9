"""The trained swapper that ships in the repository (`weights/`): its own weights (texture encoder,
decoder, identity centring — not the frozen recogniser, which ships in its package) and a manifest
with the config, data, steps, wall time, sha256 and the held-out figures it was measured at.

`generate` falls back to these weights when no local training output exists, and `train_generator
init_from=weights/swapper.pt` continues training from them on any machine.
"""
from __future__ import annotations

import json
import os
import shutil


from factory.common.model_files import read_weights
from factory.common.training import checkpoint_train_seconds
from factory.swapper.evaluation import summary_table
from factory.swapper.networks import save_shipped
from factory.swapper.training import SwapperModule


def ship_swapper(checkpoint: str, weights_dir: str, report: dict, run: dict, data: dict,
                 grid: str | None = None) -> dict:
    """Write `swapper.pt` + `manifest.json` (+ the evaluation grid) into `weights_dir`; returns the manifest."""
    ckpt = read_weights(checkpoint)  # read once (weights_only): module, timer and step
    module = SwapperModule(**ckpt["hyper_parameters"])
    module.on_load_checkpoint(ckpt)  # as Lightning would: fills state the checkpoint predates
    module.load_state_dict(ckpt["state_dict"])
    if run.get("train_seconds") is None:  # Lightning's Timer keeps the training time in the checkpoint
        run = {**run, "train_seconds": checkpoint_train_seconds(ckpt)}
    os.makedirs(weights_dir, exist_ok=True)
    path = os.path.join(weights_dir, "swapper.pt")
    step = ckpt.get("global_step")  # the shipped checkpoint's own: 2 optimiser steps (generator, discriminator) a batch
    manifest = {"file": "swapper.pt", "config": dict(module.hparams), "data": data, "steps": run.get("steps"),
                "epochs": run.get("epochs"), "train_seconds": run.get("train_seconds"),
                "source_checkpoint": os.path.basename(checkpoint), "checkpoint_batches": step // 2 if step else None,
                "history": module.lineage, "figures": report}  # the checkpoint's own (SwapperModule.load_shipped)
    manifest["sha256"] = save_shipped(module.swapper, dict(module.hparams), path,
                                      {k: v for k, v in manifest.items() if k != "figures"})
    manifest["bytes"] = os.path.getsize(path)
    with open(os.path.join(weights_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, default=str)
    with open(os.path.join(weights_dir, "figures.md"), "w") as f:
        f.write(f"# Shipped swapper: held-out figures\n\n{summary_table(report)}\n")
    if grid and os.path.exists(grid):
        shutil.copyfile(grid, os.path.join(weights_dir, "swap_grid.png"))
    return manifest

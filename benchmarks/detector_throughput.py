"""Where a detector's CPU time goes, for each backbone and resolution: the data pipeline, the training
step and scoring, so the CPU hours behind every detector figure are known.

    python -m benchmarks.detector_throughput [dataset_dir] [backbone@size ...]

Defaults: the default dataset (`outputs/dataset_128`) read by resnet10t@64 (faces resized to 64 px),
resnet10t@128 and tf_efficientnet_lite0@128 (ImageNet start). For each:
1. data: train faces/s of the detector's stream (webdataset decode + the training augmentation), in
   this process on one core — what the DataLoader worker delivers;
2. train: faces/s of one training step (forward, backward, AdamW) on a batch of those real faces, on
   all cores (channels-last measured no faster: docs/detectors.md);
3. score: faces/s of inference (batch 256), what `evaluate` and `detect` spend.
A time-boxed run gets epochs from the slower of data and train, so this says which lever buys epochs.
"""
from __future__ import annotations

import itertools
import json
import os
import sys
import time

import torch
from hydra import compose, initialize_config_dir

import factory  # noqa: F401
from detector.data import shard_dataset, train_augment
from detector.models import Detector
from factory.common.paths import CONF_DIR, OUTPUT_ROOT


def data_rate(root: str, n: int = 1500) -> tuple[float, torch.Tensor]:
    """Faces/s of the train stream with train_detector's configured augmentation, and its first batch."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        d = compose("train_detector").data
    augment = train_augment(d.augment_strength, d.tight_crop, d.degrade, d.reframe)
    ds = shard_dataset(root, "train", transform=augment, shuffle=0)
    it = iter(ds)
    first = [next(it)[0] for _ in range(64)]  # warm up (open the shard, first decodes)
    t = time.perf_counter()
    for _ in itertools.islice(it, n):
        pass
    return n / (time.perf_counter() - t), torch.stack(first)


def step_rate(backbone: str, size: int, batch: torch.Tensor, threads: int, channels_last: bool,
              steps: int = 12) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Detector(backbone, size)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x, y = batch.contiguous(memory_format=fmt), (torch.arange(len(batch)) % 2).float()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for i in range(steps + 3):
        if i == 3:
            t = time.perf_counter()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * len(batch) / (time.perf_counter() - t)


def score_rate(backbone: str, size: int, batch: torch.Tensor, repeats: int = 3) -> float:
    model = Detector(backbone, size).eval()
    x = batch.repeat(max(1, 256 // len(batch)), 1, 1, 1)[:256]
    with torch.inference_mode():
        model(x[:16])
        t = time.perf_counter()
        for _ in range(repeats):
            model(x)
    return repeats * len(x) / (time.perf_counter() - t)


def measure(root: str, backbone: str, size: int) -> dict:
    cores = torch.get_num_threads()
    torch.set_num_threads(1)
    rate, batch = data_rate(root)
    if batch.shape[-1] != size:
        batch = torch.nn.functional.interpolate(batch, size=(size, size), mode="bilinear", antialias=True)
    torch.set_num_threads(cores)
    return {"backbone": backbone, "size": size, "dataset": root, "batch": len(batch),
            "data_faces_per_s_1_core": round(rate, 1),
            "train_faces_per_s": round(step_rate(backbone, size, batch, cores, False), 1),
            "score_faces_per_s": round(score_rate(backbone, size, batch), 1), "threads": cores}


DEFAULT = {"outputs/dataset_128": ["resnet10t@64", "resnet10t@128", "tf_efficientnet_lite0@128"]}


def main(args: list[str]) -> list[dict]:
    plan = {args[0]: args[1:] or ["resnet10t@64"]} if args else DEFAULT
    rows = []
    for root, specs in plan.items():
        for spec in specs:
            backbone, size = spec.split("@")
            rows.append(measure(root, backbone, int(size)))
            print(json.dumps(rows[-1]))
    out = str(OUTPUT_ROOT / "reports" / "detector_throughput.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:  # evaluate ship_dir= copies the shipped backbone's rates into its manifest
        json.dump(rows, f, indent=1)
    print("| backbone | px | data faces/s (1 core) | train step faces/s | scoring faces/s |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backbone']} | {r['size']} | {r['data_faces_per_s_1_core']} | {r['train_faces_per_s']} | "
              f"{r['score_faces_per_s']} |")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

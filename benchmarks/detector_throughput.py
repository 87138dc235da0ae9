"""Where a detector's CPU training time goes: the data pipeline against the model's training step.

    python -m benchmarks.detector_throughput [dataset_dir] [backbone] [size]

1. data: train faces/s of the detector's stream (webdataset decode + the training augmentation), in
   this process on one core — what the DataLoader worker delivers;
2. model: faces/s of one training step (forward, backward, AdamW) on a batch of those real faces, with
   torch's threads at 1 and at all cores, in torch's default (contiguous) and channels-last layouts.
A time-boxed run gets epochs from the slower of the two, so this says which lever buys epochs.
"""
from __future__ import annotations

import itertools
import json
import sys
import time

import torch
from hydra import compose, initialize_config_dir

import factory  # noqa: F401
from detector.data import shard_dataset, train_augment
from detector.models import Detector
from factory.common.paths import CONF_DIR


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


def main(root: str = "outputs/dataset", backbone: str = "resnet10t", size: int = 64) -> dict:
    cores = torch.get_num_threads()
    torch.set_num_threads(1)
    rate, batch = data_rate(root)
    if batch.shape[-1] != size:
        batch = torch.nn.functional.interpolate(batch, size=(size, size), mode="bilinear", antialias=True)
    out = {"backbone": backbone, "size": size, "batch": len(batch), "data_faces_per_s_1_core": round(rate, 1),
           "train_step_faces_per_s": {}}
    for threads, cl in itertools.product(sorted({1, cores}), (False, True)):
        key = f"{threads}_threads_{'channels_last' if cl else 'contiguous'}"
        out["train_step_faces_per_s"][key] = round(step_rate(backbone, size, batch, threads, cl), 1)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(*sys.argv[1:3], *(int(a) for a in sys.argv[3:4]))

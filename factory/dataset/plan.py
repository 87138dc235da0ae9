"""The generation plan: every sample of the dataset decided up front from the config and seed.

Each sample (a *job*) names its label, method, target and source faces, perturbation and seed; jobs
are cut into shards per split. The plan is a pure function of the config and the prepared faces, so
any number of ranks, a rerun or a resumed run make exactly the same samples.
"""
from __future__ import annotations

import zlib
from typing import Callable

import numpy as np

from factory.dataset import perturbations
from factory.dataset.pairings import Pairing

REAL = "real"


def method_counts(n_fake: int, methods: list[str], weights: dict[str, float] | None) -> dict[str, int]:
    """Split `n_fake` among methods by weight (equal by default), exactly, by largest remainder."""
    w = np.array([float((weights or {}).get(m, 1.0)) for m in methods])
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"method weights must be ≥ 0 with a positive sum, got {weights}")
    raw = n_fake * w / w.sum()
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n_fake - counts.sum()]:
        counts[i] += 1
    return dict(zip(methods, counts.tolist()))


def eligible(metas: list[dict], max_out_of_frame: float, target_ok: Callable[[dict], bool] | None = None) -> list[int]:
    """Faces usable as targets: little reflected border (UTKFace's tight chips would otherwise put a
    border pattern into one class more than the other), and `target_ok` (e.g. a whole photo to paste into)."""
    return [i for i, m in enumerate(metas)
            if m.get("out_of_frame", 0.0) <= max_out_of_frame and (target_ok is None or target_ok(m))]


def plan_split(split: str, metas: list[dict], n: int, real_share: float, methods: dict[str, bool],
               weights: dict[str, float] | None, pairing: Pairing, embed: Callable[[list[int]], np.ndarray],
               perturb: dict, seed: int, max_out_of_frame: float = 1.0,
               target_ok: Callable[[dict], bool] | None = None) -> list[dict]:
    """Jobs of one split. `methods` maps method name → whether it takes a source face; sources may be any
    face of the split, targets only those `eligible`."""
    rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
    pool = eligible(metas, max_out_of_frame, target_ok)
    if not pool:
        raise ValueError(f"split {split!r} has no usable target faces (max_out_of_frame={max_out_of_frame}"
                         + (", full-image targets only" if target_ok else "") + ")")
    n_real = int(round(n * real_share))
    kinds = [REAL] * n_real
    for name, count in method_counts(n - n_real, list(methods), weights).items():
        kinds += [name] * count
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    if any(methods.get(k, False) for k in kinds):
        pairing.prepare(metas, embed)
    jobs = []
    for i, kind in enumerate(kinds):
        target = pool[int(rng.integers(len(pool)))]
        source, fallback = target, False
        if kind != REAL and methods[kind]:
            source, fallback = pairing.pick(target, rng)
        jobs.append({
            "key": f"{split}-{i:06d}", "index": i, "split": split, "label": int(kind != REAL), "method": kind,
            "target": metas[target]["key"], "source": metas[source]["key"],
            "pairing": pairing.name if kind != REAL and methods[kind] else "none", "pairing_fallback": fallback,
            "perturbation": perturbations.draw(rng, perturb["share"], perturb.get("types"),
                                               tuple(perturb.get("levels") or perturbations.LEVELS)),
            "seed": int(rng.integers(2**31 - 1)),
        })
    return jobs


def shard_jobs(jobs: list[dict], split: str, shard_size: int, prefix: str = "fakes") -> list[tuple[str, list[dict]]]:
    """Cut a split's jobs into shards named `<split>/<prefix>-<split>-NNNNN.tar`."""
    return [(f"{split}/{prefix}-{split}-{k // shard_size:05d}.tar", jobs[k:k + shard_size])
            for k in range(0, len(jobs), shard_size)]

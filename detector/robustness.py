"""Robustness sweep (DeeperForensics protocol): every perturbation type × level applied to the *same*
unperturbed test faces, re-encoded with the dataset's JPEG encoder, scored by every detector.

The dataset's own perturbed samples spread over 35 type × level cells (a few dozen faces each), too few
for an AUC; the sweep gives every cell all the clean test faces (both classes), with per-face seeds.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn.metrics import roc_auc_score

from factory.common.shards import encode_jpeg
from factory.dataset import perturbations
from factory.ingest.facedata import decode


def perturbed(faces: np.ndarray, kind: str, level: int, jpeg_quality: int, seed: int = 0) -> np.ndarray:
    """`faces` (N x H x W x 3 uint8) through one perturbation (seeded per face) and the JPEG encoder."""
    out = []
    for i, face in enumerate(faces):
        image = perturbations.apply(face, {"type": kind, "level": level}, seed + i)
        out.append(decode(encode_jpeg(image, jpeg_quality)))
    return np.stack(out)


def sweep(scorers: dict[str, Callable], faces: np.ndarray, labels: np.ndarray, metas: list[dict],
          jpeg_quality: int, max_faces: int = 2000, seed: int = 0, scores: dict[str, np.ndarray] | None = None) -> dict:
    """{detector: {type: [AUC at level 0 … 5]}} on up to `max_faces` unperturbed faces (reals and fakes
    in their test proportions, a seeded subset); empty when there are none or `max_faces` is 0.
    `scores`: each detector's p(fake) of all `faces`, when the caller already has them (level 0)."""
    clean = np.flatnonzero([m.get("perturbation", perturbations.NONE)["type"] == "none" for m in metas])
    if not max_faces or len(clean) == 0 or len(np.unique(labels[clean])) < 2:
        return {}
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(clean, min(max_faces, len(clean)), replace=False))
    x, y = faces[pick], labels[pick]
    clean_p = {name: (np.asarray(scores[name], np.float64)[pick] if scores and name in scores else
                      np.asarray(s(x), np.float64)) for name, s in scorers.items()}
    out = {name: {"faces": int(len(pick))} for name in scorers}
    for kind in perturbations.PERTURBATIONS:
        curves = {name: [float(roc_auc_score(y, p))] for name, p in clean_p.items()}
        for level in perturbations.LEVELS:
            xp = perturbed(x, kind, level, jpeg_quality, seed)
            for name, s in scorers.items():
                curves[name].append(float(roc_auc_score(y, np.asarray(s(xp), np.float64))))
        for name in scorers:
            out[name][kind] = curves[name]
    return out

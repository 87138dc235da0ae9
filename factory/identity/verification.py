"""Face verification and identification metrics on held-out identities (sklearn for ROC)."""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from factory.common.thresholds import best_threshold


def make_pairs(identities: Sequence[str], n_genuine: int, n_impostor: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, seeded set of genuine (same identity) and impostor pairs as index arrays and labels.

    Genuine pairs are drawn identity-first (then two of its faces) so people with many photos do not
    dominate; all distinct genuine pairs are used when there are fewer than asked.
    """
    rng = np.random.default_rng(seed)
    by_id = defaultdict(list)
    for i, ident in enumerate(identities):
        by_id[ident].append(i)
    multi = sorted(k for k, v in by_id.items() if len(v) >= 2)
    if not multi or len(by_id) < 2:
        raise ValueError("verification needs at least one identity with two faces and two identities")
    total_genuine = sum(len(by_id[k]) * (len(by_id[k]) - 1) // 2 for k in multi)
    genuine = set()
    if total_genuine <= n_genuine:
        genuine = {(a, b) for k in multi for x, a in enumerate(by_id[k]) for b in by_id[k][x + 1:]}
    while len(genuine) < min(n_genuine, total_genuine):
        members = by_id[multi[rng.integers(len(multi))]]
        a, b = sorted(rng.choice(members, 2, replace=False).tolist())
        genuine.add((a, b))
    ids = np.asarray(identities)
    total_impostor = len(ids) * (len(ids) - 1) // 2 - sum(len(v) * (len(v) - 1) // 2 for v in by_id.values())
    impostor = set()
    if total_impostor <= n_impostor:
        impostor = {(a, b) for a in range(len(ids)) for b in range(a + 1, len(ids)) if ids[a] != ids[b]}
    while len(impostor) < min(n_impostor, total_impostor):
        a, b = rng.integers(len(ids), size=2).tolist()
        if ids[a] != ids[b]:
            impostor.add((min(a, b), max(a, b)))
    pairs = np.array(sorted(genuine) + sorted(impostor), dtype=np.int64)
    labels = np.r_[np.ones(len(genuine), bool), np.zeros(len(impostor), bool)]
    return pairs, labels


def pair_scores(emb: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Cosine similarity of unit embeddings for each pair."""
    return np.einsum("nd,nd->n", emb[pairs[:, 0]], emb[pairs[:, 1]])


def verification_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float | None = None) -> dict:
    """ROC AUC, TAR at FAR 1e-2 / 1e-3, accuracy at `threshold` (or at the best one on these pairs)."""
    fpr, tpr, _ = roc_curve(labels, scores)
    thr = best_threshold(scores, labels) if threshold is None else threshold
    out = {
        "auc": float(roc_auc_score(labels, scores)),
        "tar_at_far_1e-2": float(np.interp(1e-2, fpr, tpr)),
        "tar_at_far_1e-3": float(np.interp(1e-3, fpr, tpr)),
        "threshold": thr,
        "accuracy": float(((scores >= thr) == labels).mean()),
        "balanced_accuracy": float(((scores[labels] >= thr).mean() + (scores[~labels] < thr).mean()) / 2),
        "genuine_pairs": int(labels.sum()), "impostor_pairs": int((~labels).sum()),
    }
    return out


def rank1_identification(emb: np.ndarray, identities: Sequence[str], seed: int) -> dict:
    """Gallery of one (seeded) face per identity with >= 2 faces; every other face of those people probes."""
    rng = np.random.default_rng(seed)
    by_id = defaultdict(list)
    for i, ident in enumerate(identities):
        by_id[ident].append(i)
    gallery, probes, probe_ids = [], [], []
    names = sorted(by_id)
    for g, name in enumerate(names):
        members = by_id[name]
        pick = members[rng.integers(len(members))]
        gallery.append(pick)
        if len(members) >= 2:
            probes += [m for m in members if m != pick]
            probe_ids += [g] * (len(members) - 1)
    sims = emb[probes] @ emb[gallery].T
    hits = sims.argmax(1) == np.asarray(probe_ids)
    return {"rank1": float(hits.mean()), "gallery": len(gallery), "probes": len(probes)}

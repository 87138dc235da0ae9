"""Held-out verification and identification report for any identity encoder."""
from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np
import torch

from factory.common.thresholds import best_threshold
from factory.identity.encoders import IdentityEncoder, embed_batched
from factory.identity.verification import make_pairs, pair_scores, rank1_identification, verification_metrics
from factory.ingest.facedata import decode, load_faces, to_tensor


def embed_faces(encoder: IdentityEncoder, items: Sequence[dict], batch_size: int = 128) -> np.ndarray:
    """Unit embeddings (N x D) of loaded faces, in order."""
    chunks = [embed_batched(encoder, torch.stack([to_tensor(decode(it["jpg"])) for it in items[i:i + batch_size]]))
              for i in range(0, len(items), batch_size)]  # decode per batch: memory stays flat
    return torch.cat(chunks).float().numpy() if chunks else np.zeros((0, encoder.embedding_dim), np.float32)


def evaluate_identity(encoder: IdentityEncoder, faces_dir: str, out_dir: str,
                      sources: Sequence[str] = ("celeba-wild", "celeba-aligned"), pairs: int = 3000,
                      impostors: int = 30000, seed: int = 0, name: str | None = None) -> dict:
    """Verification on the test split's held-out identities (threshold chosen on val), rank-1
    identification, ROC plot and JSON report in `out_dir`."""
    name = name or type(encoder).__name__
    splits = {s: load_faces(faces_dir, s, list(sources), min_per_identity=2) for s in ("val", "test")}
    emb = {s: embed_faces(encoder, items) for s, items in splits.items()}
    ids = {s: [it["meta"]["identity"] for it in items] for s, items in splits.items()}
    val_pairs, val_labels = make_pairs(ids["val"], pairs, impostors, seed)
    threshold = best_threshold(pair_scores(emb["val"], val_pairs), val_labels)
    test_pairs, test_labels = make_pairs(ids["test"], pairs, impostors, seed + 1)
    test_scores = pair_scores(emb["test"], test_pairs)
    report = {
        "encoder": name, "faces_dir": faces_dir, "sources": list(sources), "seed": seed,
        "test_faces": len(ids["test"]), "test_identities": len(set(ids["test"])),
        "verification": verification_metrics(test_scores, test_labels, threshold),
        "identification": rank1_identification(emb["test"], ids["test"], seed),
    }
    wild = np.array([it["meta"]["source"] == "celeba-wild" for it in splits["test"]])
    if wild.sum() >= 4 and len({i for i, w in zip(ids["test"], wild) if w}) >= 2:
        sub = [i for i, w in zip(ids["test"], wild) if w]
        wp, wl = make_pairs(sub, pairs, impostors, seed + 2)
        report["verification_celeba_wild"] = verification_metrics(pair_scores(emb["test"][wild], wp), wl, threshold)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    _roc_plot(test_scores, test_labels, name, os.path.join(out_dir, "roc.png"))
    return report


def _roc_plot(scores: np.ndarray, labels: np.ndarray, name: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, scores):.4f})")
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title("verification, held-out identities")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

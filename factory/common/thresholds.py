"""Decision thresholds of binary scores (verification, detection)."""
from __future__ import annotations

import numpy as np


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The similarity threshold that maximises balanced verification accuracy (mean of genuine and
    impostor accuracy, so a 10:1 impostor ratio cannot push it to "reject everything"); chosen on
    val, applied on test."""
    order = np.sort(np.unique(scores))
    cands = np.r_[order[0] - 1e-6, (order[:-1] + order[1:]) / 2, order[-1] + 1e-6]
    if len(cands) > 2000:
        cands = np.quantile(scores, np.linspace(0, 1, 2001))
    acc = [(scores[labels] >= t).mean() + (scores[~labels] < t).mean() for t in cands]
    return float(cands[int(np.argmax(acc))])

"""Detection metrics (sklearn where it has them): ROC AUC with a bootstrap interval, EER, AP,
accuracy at a threshold, and calibration (ECE, Brier score, reliability bins)."""
from __future__ import annotations

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve


def _both_classes(y: np.ndarray) -> bool:
    return len(np.unique(y)) == 2


def auc_ci(y: np.ndarray, p: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ROC AUC (resampling faces; resamples with one class are skipped).
    All resamples at once: AUC = Mann-Whitney U / (n_fake · n_real) from tie-averaged ranks per row."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), (n_boot, len(y)))
    yb, pb = y[idx], p[idx]
    n1 = yb.sum(1)
    n0 = len(y) - n1
    ok = (n1 > 0) & (n0 > 0)
    ranks = rankdata(pb[ok], axis=1)
    u = (ranks * yb[ok]).sum(1) - n1[ok] * (n1[ok] + 1) / 2
    stats = u / (n1[ok] * n0[ok])
    lo, hi = np.percentile(stats, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def eer(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Equal error rate and its threshold: where the false-positive and false-negative rates cross
    (linearly interpolated between ROC points)."""
    fpr, tpr, thr = roc_curve(y, p)
    fnr = 1 - tpr
    i = int(np.nonzero(fnr <= fpr)[0][0])
    if i == 0:
        return float(fpr[0]), float(thr[0])
    # crossing between points i-1 and i
    d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    rate = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    return float(rate), float(thr[i - 1] + t * (thr[i] - thr[i - 1])) if np.isfinite(thr[i - 1]) else float(thr[i])


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: bin-weighted |accuracy − confidence| over equal-width bins of p(fake)."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(y[sel].mean() - p[sel].mean())
    return float(total)


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict:
    """Per-bin observed fake rate vs mean predicted probability (sklearn's calibration curve)."""
    frac, mean = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    return {"observed": frac.tolist(), "predicted": mean.tolist()}


def binary_metrics(y, p, threshold: float | None = None, n_boot: int = 1000, seed: int = 0) -> dict:
    """All figures for labels y (1 = fake) and fake probabilities p; AUC-type figures are None when a
    class is missing (e.g. a method's fakes without reals)."""
    y, p = np.asarray(y, int), np.asarray(p, float)
    out = {"n": int(len(y)), "n_fake": int(y.sum()), "n_real": int(len(y) - y.sum()),
           "acc@0.5": float(((p >= 0.5) == y).mean()) if len(y) else None,
           "brier": float(brier_score_loss(y, p)) if len(y) else None, "ece": ece(y, p) if len(y) else None}
    if threshold is not None:
        out["threshold"] = float(threshold)
        out["acc@threshold"] = float(((p >= threshold) == y).mean()) if len(y) else None
    if _both_classes(y):
        e, t = eer(y, p)
        lo, hi = auc_ci(y, p, n_boot, seed)
        out.update({"auc": float(roc_auc_score(y, p)), "auc_ci95": [lo, hi], "eer": e, "eer_threshold": t,
                    "ap": float(average_precision_score(y, p))})
    else:
        out.update({"auc": None, "auc_ci95": None, "eer": None, "eer_threshold": None, "ap": None})
    return out

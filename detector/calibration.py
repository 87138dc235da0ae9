"""Temperature scaling (Guo et al. 2017): one scalar T fitted on val by negative log-likelihood, applied
to a detector's logits as sigmoid(logit / T) — ranking (AUC) unchanged, probabilities calibrated."""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def apply_temperature(p: np.ndarray, temperature: float) -> np.ndarray:
    """Fake probabilities re-scaled by a temperature (T > 1 softens, T < 1 sharpens)."""
    return 1.0 / (1.0 + np.exp(-logit(p) / temperature))


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the binary NLL of (p, y), searched over T in [0.05, 20] (log scale)."""
    z, y = logit(p), np.asarray(y, np.float64)
    if len(np.unique(y)) < 2:
        raise ValueError("temperature scaling needs both classes in the fitting split")

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        return float(np.mean(np.logaddexp(0, s) - y * s))

    return float(np.exp(minimize_scalar(nll, bounds=(np.log(0.05), np.log(20)), method="bounded").x))

"""Leakage audit: can a trivial classifier tell reals from fakes *without looking at the face*?

Features that a file-format shortcut would show up in — JPEG byte size, JPEG quantisation tables,
image size — and global colour statistics, each fed to a cross-validated logistic regression. AUC ≈ 0.5
means no such shortcut; a higher figure is reported per method so the card says where it comes from.
"""
from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def file_features(jpg: bytes) -> dict:
    """Byte size, a hash of the quantisation tables, pixel size and the global colour statistics."""
    im = Image.open(io.BytesIO(jpg))
    tables = hashlib.sha1(repr(sorted(getattr(im, "quantization", {}).items())).encode()).hexdigest()[:12]
    rgb = np.asarray(im.convert("RGB"), np.float32)
    return {"bytes": len(jpg), "tables": tables, "width": im.size[0], "height": im.size[1],
            "colour": np.concatenate([rgb.mean((0, 1)), rgb.std((0, 1))])}


def cv_auc(x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """5-fold cross-validated ROC AUC of a standardised logistic regression (0.5 if x is constant)."""
    if len(np.unique(y)) < 2 or min(np.bincount(y)) < 5:
        return float("nan")
    if np.allclose(x, x[0]):
        return 0.5
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    p = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p))


def boundary_features(jpg: bytes, meta: dict, band: int = 3) -> np.ndarray:
    """Where a full image's pasted crop meets the photo (its footprint's outer edge, ± `band` px): mean
    and spread of the Laplacian there and of the colour step across it. Reals are pasted the same way,
    so these must not tell the classes apart."""
    import cv2

    from factory.dataset.paste_back import footprint

    rgb = np.asarray(Image.open(io.BytesIO(jpg)).convert("RGB"), np.float32)
    h, w = rgb.shape[:2]
    inverse = cv2.invertAffineTransform(np.asarray(meta["image"]["matrix"], np.float64))  # matrix: photo → crop
    weight = cv2.warpAffine(footprint(meta["size"], meta["image"]["feather"]), inverse, (w, h), flags=cv2.INTER_LINEAR)
    edge = (weight > 0) & (weight < 1)
    ring = cv2.dilate(edge.astype(np.uint8), np.ones((2 * band + 1,) * 2, np.uint8)) > 0
    if not ring.any():
        return np.zeros(6)
    lap = np.abs(cv2.Laplacian(rgb.mean(2), cv2.CV_32F))[ring]
    inner, outer = ring & (weight >= 0.5), ring & (weight < 0.5)
    step = (rgb[inner].mean(0) - rgb[outer].mean(0)) if inner.any() and outer.any() else np.zeros(3)
    return np.array([lap.mean(), lap.std(), *np.abs(step), ring.mean()], np.float64)


def leakage_audit(samples: list[tuple[bytes, dict]], seed: int = 0, boundary: bool = False) -> dict:
    """samples: (jpg bytes, metadata) pairs. Returns distinct-value counts and AUCs per feature set,
    overall (all fakes vs reals) and per method (that method's fakes vs all reals). `boundary`: the
    samples are full images (metadata `image`), audited also around the paste boundary."""
    feats = [file_features(jpg) for jpg, _ in samples]
    labels = np.array([m["label"] for _, m in samples])
    methods = np.array([m["method"] for _, m in samples])
    tables = sorted({f["tables"] for f in feats})
    sets = {
        "file_size": np.array([[f["bytes"]] for f in feats], np.float64),
        "jpeg_tables": np.array([[tables.index(f["tables"])] for f in feats], np.float64),
        "image_size": np.array([[f["width"], f["height"]] for f in feats], np.float64),
        "colour_stats": np.stack([f["colour"] for f in feats]).astype(np.float64),
    }
    if boundary:
        sets["paste_boundary"] = np.stack([boundary_features(jpg, m) for jpg, m in samples])
    out = {"samples": len(samples), "distinct_jpeg_tables": len(tables),
           "distinct_image_sizes": len({(f["width"], f["height"]) for f in feats}), "auc": {}}
    groups = {"all": np.ones(len(samples), bool)}
    for m in sorted(set(methods) - {"real"}):
        groups[m] = (methods == m) | (labels == 0)
    for name, x in sets.items():
        out["auc"][name] = {g: round(cv_auc(x[sel], labels[sel], seed), 4) for g, sel in groups.items()}
    return out

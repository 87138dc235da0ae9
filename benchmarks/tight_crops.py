"""Do tight face crops keep their scores? The dataset's test faces re-cut as public deepfake sets cut
them (a box around the face, 224 px), read back through `evaluate`'s folder mode (MTCNN, alignment,
reflect padding), and scored beside the same faces as stored.

    python -m benchmarks.tight_crops [detector.ckpt] [n_faces] [keep] [crops_from] [stored]

`detector` defaults to the shipped one; `stored` (default `outputs/dataset_128`) is the dataset it reads; `crops_from` (default: the same)
is where the crops are cut: the same plan at a higher resolution (`outputs/dataset_128`, made with
`resolution=px128`, same keys) cuts them from 128 px faces, as public sets cut them from video frames;
cut from the 64 px faces themselves, the crop is a 64 → 224 px upsampling too (a blur no public crop has).
Writes `outputs/reports/tight_crops/{real,fake}/*.jpg`, runs the folder evaluation, and prints, per
class, the mean p(fake) on the stored and on the tight-crop version of the same faces, and both AUCs
(overall and per method).
"""
from __future__ import annotations

import json
import os
import shutil
import sys

import cv2
import numpy as np

import factory  # noqa: F401
from detector.adapters import load_scorer
from detector.faces_in import FaceReader
from factory.common.paths import OUTPUT_ROOT, REPO_ROOT, portable
from factory.common.shards import iter_samples


def tight_crop(face: np.ndarray, keep: float = 0.8, size: int = 224) -> np.ndarray:
    """A box of `keep` of the canonical crop around the face centre, resized to `size` px."""
    h = face.shape[0]
    b = int(round(h * keep))
    x0, y0 = (h - b) // 2, int(np.clip(round(h * 0.55 - b / 2), 0, h - b))
    return cv2.resize(face[y0:y0 + b, x0:x0 + b], (size, size), interpolation=cv2.INTER_CUBIC)


def main(detector: str = str(REPO_ROOT / "weights/detector.pt"), n: int = 1000,
         keep: float = 0.8, crops_from: str | None = None, stored_dir: str = str(OUTPUT_ROOT / "dataset_128")) -> dict:
    from sklearn.metrics import roc_auc_score

    root = OUTPUT_ROOT / "reports" / "tight_crops"
    stored_dir = str(REPO_ROOT / stored_dir)
    crops_from = str(REPO_ROOT / crops_from) if crops_from else stored_dir
    stored, labels, names, methods = [], [], [], []
    for s in iter_samples(stored_dir, "test"):
        if s["json"]["perturbation"]["type"] != "none":
            continue  # clean faces only: the crop is the one change
        stored.append(s["jpg"])
        labels.append(s["json"]["label"])
        names.append(s["json"]["key"])
        methods.append(s["json"]["method"])
        if len(stored) >= n:
            break
    source = dict(zip(names, stored))
    if crops_from != stored_dir:  # the same samples (same plan, same keys) at a higher resolution
        wanted = set(names)
        source = {s["json"]["key"]: s["jpg"] for s in iter_samples(crops_from, "test") if s["json"]["key"] in wanted}
        if set(source) != wanted:
            raise ValueError(f"{crops_from} lacks {len(wanted - set(source))} of the test keys: not the same plan")
    shutil.rmtree(root, ignore_errors=True)  # a previous run's crops must not be read back
    for label, sub in ((0, "real"), (1, "fake")):
        os.makedirs(root / sub, exist_ok=True)
    for face, y, key in zip((source[k] for k in names), labels, names):
        cv2.imwrite(str(root / ("fake" if y else "real") / f"{key}.jpg"), cv2.cvtColor(tight_crop(face, keep), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    scorer = load_scorer(detector)
    faces, y_tight, metas, read = FaceReader(stored[0].shape[0], 95).folder(str(root))  # the detector's size
    p_tight = scorer(faces)
    by_key = {os.path.splitext(os.path.basename(m["file"]))[0]: p for m, p in zip(metas, p_tight)}
    p_stored = scorer(np.stack(stored))
    y = np.array(labels)
    found = np.array([k in by_key for k in names])
    p_t = np.array([by_key.get(k, np.nan) for k in names])
    result = {"detector": portable(detector), "faces": len(names), "keep": keep, "stored": portable(stored_dir),
              "crops_from": portable(crops_from),
              "crop_source_px": int(next(iter(source.values())).shape[0]), "skipped": read["skipped_by_reason"],
              "padded": read["padded"],
              "mean_p_fake": {c: {"stored": float(p_stored[(y == v) & found].mean()), "tight": float(p_t[(y == v) & found].mean())}
                              for c, v in (("real", 0), ("fake", 1))},
              "auc": {"stored": float(roc_auc_score(y[found], p_stored[found])), "tight": float(roc_auc_score(y[found], p_t[found]))}}
    real, method = found & (y == 0), np.array(methods)
    result["auc_by_method"] = {  # each method's fakes against all the real faces
        m: {k: round(float(roc_auc_score(y[pick], p[pick])), 3) for k, p in (("stored", p_stored), ("tight", p_t))}
        for m in sorted(set(methods) - {"real"}) for pick in [real | (found & (method == m))]}
    print(json.dumps(result, indent=1))
    with open(root / "result.json", "w") as f:
        json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    a = sys.argv[1:]
    main(*(a[:1]), *(int(x) for x in a[1:2]), *(float(x) for x in a[2:3]), *a[3:5])

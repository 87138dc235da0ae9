"""A crop-trained detector on full images: the same samples scored as the factory's aligned crops and as
full images (found in the photo by MTCNN and aligned as `evaluate`/`detect` do for any picture).

    python -m pipelines.generate output=both out_dir=outputs/dataset_128_images 'samples={train: 10000, val: 1000, test: 4000}'
    python -m benchmarks.full_images [detector] [dataset]

`detector` defaults to the shipped one, `dataset` to `outputs/dataset_128_images` (its test split). Only
samples whose labelled face is found in the full image are compared (the rest are counted by reason and
method). Prints and writes `outputs/reports/full_images.json`: AUC [95 % CI] per form, overall and per method,
and the mean p(fake) per class.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

import factory  # noqa: F401
from detector.adapters import load_scorer
from detector.faces_in import FaceReader
from detector.metrics import auc_ci
from factory.common.paths import OUTPUT_ROOT, REPO_ROOT, portable
from factory.common.shards import iter_samples


def main(detector: str = str(REPO_ROOT / "weights/detector.pt"),
         dataset: str = str(OUTPUT_ROOT / "dataset_128_images")) -> dict:
    score = load_scorer(detector)
    with open(os.path.join(dataset, "_info.json")) as f:
        size = json.load(f)["size"]
    reader = FaceReader(size, 95)
    full, _, metas, read = reader.shards(dataset, "test", "image.jpg")
    crops = {s["json"]["key"]: s["jpg"] for s in iter_samples(dataset, "test")}
    crop = np.stack([crops[m["key"]] for m in metas])
    y = np.array([m["label"] for m in metas])
    methods = np.array([m["method"] for m in metas])
    p = {"crop": np.asarray(score(crop), np.float64), "full_image": np.asarray(score(full), np.float64)}
    out = {"detector": portable(detector, {"repo": str(REPO_ROOT)}), "dataset": portable(dataset, {"outputs": str(OUTPUT_ROOT), "repo": str(REPO_ROOT)}),
           "compared": len(metas), "skipped_by_reason": read["skipped_by_reason"],
           "skipped_by_method": read["skipped_by_method"], "forms": {}}
    for form, q in p.items():
        lo, hi = auc_ci(y, q)
        per = {m: round(float(roc_auc_score(y[(methods == m) | (y == 0)], q[(methods == m) | (y == 0)])), 4)
               for m in sorted(set(methods) - {"real"})}
        out["forms"][form] = {"auc": round(float(roc_auc_score(y, q)), 4), "ci": [round(lo, 4), round(hi, 4)],
                              "per_method": per, "mean_p_real": round(float(q[y == 0].mean()), 4),
                              "mean_p_fake": round(float(q[y == 1].mean()), 4)}
    os.makedirs(OUTPUT_ROOT / "reports", exist_ok=True)
    with open(OUTPUT_ROOT / "reports/full_images.json", "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(*sys.argv[1:])

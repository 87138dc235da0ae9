"""Are the face store's sources framed alike? MediaPipe's face mesh (independent of MTCNN, which framed
them) locates the eyes and mouth corners of stored faces; a similarity fit of the alignment template onto
them gives each face's scale (1 = on the template) and offset, summarised per source.

    python -m benchmarks.store_framing [faces_dir] [n_per_source] [split]

A store whose sources sit differently in the crop hands every later stage a source-dependent framing.
Prints and returns {source: {faces, scale, dx, dy (share of the crop), out_of_frame}}.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict

import numpy as np

import factory  # noqa: F401
from factory.common.paths import OUTPUT_ROOT
from factory.ingest.facedata import decode, load_faces
from factory.ingest.framing import framing


def main(faces_dir: str = str(OUTPUT_ROOT / "faces"), n: int = 400, split: str = "test") -> dict:
    rows: dict[str, list] = defaultdict(list)
    oof: dict[str, list] = defaultdict(list)
    for item in load_faces(faces_dir, split):
        source = item["meta"]["source"]
        if len(rows[source]) >= n:
            continue
        fit = framing(decode(item["jpg"]))
        if fit is not None:
            rows[source].append(fit)
            oof[source].append(item["meta"].get("out_of_frame", 0.0))
    result = {}
    for source, fits in sorted(rows.items()):
        a = np.array(fits)
        result[source] = {"faces": len(a), **{k: [round(float(a[:, i].mean()), 4), round(float(a[:, i].std()), 4)]
                                              for i, k in enumerate(("scale", "dx", "dy"))},
                          "out_of_frame": round(float(np.mean(oof[source])), 4)}
        print(f"{source:15s} n={len(a):4d}  scale {a[:, 0].mean():.3f} ± {a[:, 0].std():.3f}  "
              f"dx {a[:, 1].mean():+.3f}  dy {a[:, 2].mean():+.3f} ± {a[:, 2].std():.3f}  "
              f"out of frame {np.mean(oof[source]):.3f}")
    return result


if __name__ == "__main__":
    out = main(*(int(a) if a.isdigit() else a for a in sys.argv[1:]))
    print(json.dumps(out))

"""What sits next to the shards: `stats.json`, the dataset card `README.md` and a contact sheet."""
from __future__ import annotations

import json
from collections import Counter, defaultdict

import cv2
import numpy as np

from factory.common import storage
from factory.common.contact import contact_sheet
from factory.common.shards import iter_samples
from factory.ingest.facedata import decode

LICENCE = ("The faces come from CelebA and UTKFace, whose terms allow non-commercial research use only; "
           "the same terms apply to every image here, real or manipulated.")


def dataset_stats(summaries: list[dict]) -> dict:
    """Counts per split × label / method / perturbation, and identity similarity per method."""
    stats: dict = {"splits": {}}
    for split in sorted({s["split"] for s in summaries}):
        rows = [s for s in summaries if s["split"] == split]
        sims: dict[str, list[float]] = defaultdict(list)
        for s in rows:
            for m, v in s["id_similarity"].items():
                sims[m] += v
        stats["splits"][split] = {
            "samples": sum(s["num_samples"] for s in rows), "shards": len(rows),
            "labels": dict(sorted(sum((Counter(s["labels"]) for s in rows), Counter()).items())),
            "methods": dict(sorted(sum((Counter(s["methods"]) for s in rows), Counter()).items())),
            "perturbations": dict(sorted(sum((Counter(s["perturbations"]) for s in rows), Counter()).items())),
            "pairing_fallbacks": sum(s["pairing_fallbacks"] for s in rows),
            "id_similarity_to_source": {m: {"mean": round(float(np.mean(v)), 4), "median": round(float(np.median(v)), 4)}
                                        for m, v in sorted(sims.items())},
        }
    stats["samples"] = sum(v["samples"] for v in stats["splits"].values())
    return stats


def contact(out_dir: str, split: str, per_method: int = 8) -> None:
    """Rows of `per_method` samples per method (reals first), each face followed by its mask row."""
    picked: dict[str, list[dict]] = defaultdict(list)
    for sample in iter_samples(out_dir, split, decode=False):
        meta = json.loads(sample["json"])
        if len(picked[meta["method"]]) < per_method:
            picked[meta["method"]].append({"jpg": sample["jpg"], "mask": sample["mask.png"], "meta": meta})
    faces, captions = [], []
    for method in sorted(picked, key=lambda m: (m != "real", m)):
        row = picked[method]
        for item in row:
            faces.append(decode(item["jpg"]))
            p = item["meta"]["perturbation"]
            captions.append(f'{method} {p["type"]}{p["level"] or ""}')
        for item in row:
            mask = cv2.imdecode(np.frombuffer(item["mask"], np.uint8), cv2.IMREAD_GRAYSCALE)
            faces.append(np.repeat(mask[..., None], 3, axis=2))
            captions.append("mask")
        faces += [np.full_like(faces[-1], 255)] * (per_method - len(row)) * 2
        captions += [""] * (per_method - len(row)) * 2
    if faces:
        contact_sheet(faces, storage.join(out_dir, "contact_sheet.png"), columns=per_method, captions=captions)


def _table(counts: dict[str, dict[str, int]], order: list[str]) -> list[str]:
    splits = sorted(counts)
    lines = ["| | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for key in order:
        lines.append(f"| {key} | " + " | ".join(str(counts[s].get(key, 0)) for s in splits) + " |")
    return lines


METHOD_NOTES = {
    "swap": "identity swap by the learned identity/texture swapper (checkpoint and sha256 in each sample's "
            "`generator`), blended with the target's face-mesh hull",
    "warp_blend": "graphics identity swap: landmark warp of the source face, colour transfer, Poisson blending",
    "self_blend": "a face blended with a jittered copy of itself (SBI): blending artefacts, no identity change",
    "morph": "face-morphing attack: both faces warped to their mean mesh and cross-dissolved (`manipulation.alpha` "
             "= weight of the source)",
    "reenact": "expression reenactment: the target's eyes, brows and mouth moved to the source's expression, "
               "identity and head pose kept",
    "partial": "local edit: one region (`manipulation.region`: eyes, nose, mouth or brows) from the source or the "
               "swapper's output (`manipulation.donor`)",
}


def card(stats: dict, config: dict, audit: dict | None) -> str:
    """The dataset card: HF header, how it was made, counts, audit, intended use, licence."""
    splits = stats["splits"]
    n = stats["samples"]
    size_cat = "n<1K" if n < 1000 else "1K<n<10K" if n < 10000 else "10K<n<100K" if n < 100000 else "100K<n<1M"
    methods = sorted({m for s in splits.values() for m in s["methods"]}, key=lambda m: (m != "real", m))
    perts = sorted({p for s in splits.values() for p in s["perturbations"]})
    lines = [
        "---", "license: other", "license_name: celeba-utkface-non-commercial-research",
        "pretty_name: swap-factory face-swap detection dataset", "task_categories:", "- image-classification",
        "tags:", "- deepfake-detection", "- face-swap", "- webdataset", "size_categories:", f"- {size_cat}", "---", "",
        "# swap-factory face-swap detection dataset", "",
        f"{n} aligned {config['size']} px face crops, real (label 0) and manipulated (label 1), in WebDataset shards "
        "(`<key>.jpg`, `<key>.mask.png` — the manipulated region, all-zero for reals — and `<key>.json` with the "
        "full provenance). Splits are identity-disjoint: no person appears in two splits, and every source and "
        "target of a split's fakes belongs to that split.", "",
        "## How it was made", "",
        f"- Faces: the prepared, aligned store (`{config['faces_dir']}`), downscaled to {config['size']} px.",
        f"- Real share {config['real_share']}; fakes split among methods: {', '.join(m for m in methods if m != 'real')}.",
        f"- Pairing of sources to targets: `{config['pairing']}`; targets with more than "
        f"{config['max_out_of_frame']:.0%} reflected border are not used.",
        f"- Perturbations (DeeperForensics-style, 7 types × 5 levels) on {config['perturb_share']:.0%} of samples, "
        "drawn from the same distribution for reals and fakes.",
        f"- Every image, real or fake, is encoded by one JPEG encoder at quality {config['jpeg_quality']}.",
        f"- Seed {config['seed']}; the same config and seed give byte-identical shards.", "",
        "Methods:", "", *(f"- `{m}` — {METHOD_NOTES.get(m, 'see its config in conf/method/')}" for m in methods
                           if m != "real"), "",
        "## Counts", "", "Samples per method and split:", "",
        *_table({s: v["methods"] for s, v in splits.items()}, methods), "",
        "Samples per perturbation (`type:level`) and split:", "",
        *_table({s: v["perturbations"] for s, v in splits.items()}, perts), "",
        "Mean identity similarity of each sample to its source face (project identity encoder):", "",
        *_table({s: {m: v["mean"] for m, v in x["id_similarity_to_source"].items()} for s, x in splits.items()}, methods),
        "",
    ]
    if audit:
        lines += ["## Leakage audit", "",
                  f"On {audit['samples']} samples: {audit['distinct_jpeg_tables']} distinct JPEG quantisation table "
                  f"set(s), {audit['distinct_image_sizes']} image size(s). Cross-validated AUC of a logistic regression "
                  "that sees only the named features (0.5 = no shortcut):", "",
                  "| features | " + " | ".join(audit["auc"]["file_size"]) + " |",
                  "|---|" + "---|" * len(audit["auc"]["file_size"])]
        for name, row in audit["auc"].items():
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |")
        lines += ["", "File size follows image content (a blurrier face compresses smaller), so it can carry a "
                  "genuine manipulation cue; the JPEG tables and image size cannot.", ""]
    lines += ["## Intended use", "",
              "Training and benchmarking face-swap detectors, and research on manipulation detection. Not for "
              "making deceptive media, nor for identifying the people shown.", "",
              "## Licence", "", LICENCE, ""]
    return "\n".join(lines)

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


def _tile(image: np.ndarray, side: int | None) -> np.ndarray:
    """`image` letterboxed onto a white `side` px square (unchanged when side is None)."""
    if side is None:
        return image
    h, w = image.shape[:2]
    k = side / max(h, w)
    small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    out = np.full((side, side, 3), 255, np.uint8)
    y, x = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
    out[y:y + small.shape[0], x:x + small.shape[1]] = small
    return out


def contact(out_dir: str, split: str, per_method: int = 8, image: str = "jpg", mask: str = "mask.png",
            name: str = "contact_sheet.png", tile: int | None = None) -> None:
    """Rows of `per_method` samples per method (reals first), each row followed by its masks
    (`image`/`mask`: the sample's entries; full images are letterboxed onto `tile` px squares)."""
    picked: dict[str, list[dict]] = defaultdict(list)
    for sample in iter_samples(out_dir, split, decode=False):
        meta = json.loads(sample["json"])
        if image in sample and len(picked[meta["method"]]) < per_method:
            picked[meta["method"]].append({"jpg": sample[image], "mask": sample[mask], "meta": meta})
    faces, captions = [], []
    for method in sorted(picked, key=lambda m: (m != "real", m)):
        row = picked[method]
        for item in row:
            faces.append(_tile(decode(item["jpg"]), tile))
            p = item["meta"]["perturbation"]
            captions.append(f'{method} {p["type"]}{p["level"] or ""}')
        for item in row:
            m = cv2.imdecode(np.frombuffer(item["mask"], np.uint8), cv2.IMREAD_GRAYSCALE)
            faces.append(_tile(np.repeat(m[..., None], 3, axis=2), tile))
            captions.append("mask")
        faces += [np.full_like(faces[-1], 255)] * (per_method - len(row)) * 2
        captions += [""] * (per_method - len(row)) * 2
    if faces:
        contact_sheet(faces, storage.join(out_dir, name), columns=per_method, captions=captions)


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
    whole = stats.get("image")
    if whole:
        q, kept = whole["upscale_quantiles"], whole["target_faces"]
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(kept.items()) if k != "kept") or "none"
        lines += ["## Full images", "",
                  f"{whole['samples']} samples also as full images (`<key>.image.jpg`, full-frame mask "
                  "`<key>.image_mask.png`, all-zero for reals; `json.image` names the photo, its size, the face box and "
                  "landmarks in it and the paste-back enlargement `upscale`). Every crop, real or fake, is warped back "
                  "into its target's original photo by the inverse of its alignment and blended over the crop's "
                  f"footprint (feather {whole['feather']:.0%} of the side), then perturbed and encoded as the crops are.", "",
                  f"- Targets: faces of {', '.join(whole['sources'])}; {kept.get('kept', 0)} store faces usable, "
                  f"not used: {skipped} (max_upscale {whole['max_upscale']}).",
                  f"- Enlargement of the crop when pasted back: min {q.get('min')}, p10 {q.get('p10')}, median "
                  f"{q.get('p50')}, p90 {q.get('p90')}, max {q.get('max')}; {whole['upscaled_share']:.0%} of samples are "
                  "enlarged (> 1), where the crop is coarser than the photo — a real trace of a low-resolution swapper.", ""]
        a = whole.get("leakage_audit")
        if a:
            lines += ["Leakage audit of the full images (AUC, all fakes vs reals): " +
                      ", ".join(f"{k} {v['all']:.3f}" for k, v in a["auc"].items()) + ".", ""]
    lines += ["## Intended use", "",
              "Training and benchmarking face-swap detectors, and research on manipulation detection. Not for "
              "making deceptive media, nor for identifying the people shown.", "",
              "## Licence", "", LICENCE, ""]
    return "\n".join(lines)

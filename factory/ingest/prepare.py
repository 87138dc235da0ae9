"""`prepare`: image folders → detected, aligned, labelled faces in identity-disjoint WebDataset shards.

Work is cut into shards before any face is detected (inputs sorted within each split), so each shard
is a pure function of its inputs: shards are written atomically, finished ones are skipped on a
rerun, and the result does not depend on how many workers ran or whether the run was killed.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from tqdm import tqdm

from factory.common.contact import contact_sheet
from factory.common.images import Skip, load_rgb
from factory.common.shards import (
    atomic_write_json,
    dump_json,
    encode_jpeg,
    iter_samples,
    remove_partials,
    write_index,
    write_shard,
)
from factory.ingest.faces import FaceDetector, align, find_face, transform_points
from factory.ingest.sources import FaceInput, FolderSource
from factory.ingest.splits import split_identities


@dataclass(frozen=True)
class AlignConfig:
    """How faces are found and cropped; part of every later stage's input definition."""

    size: int = 128
    min_score: float = 0.9
    min_eye_distance: float = 10.0
    max_out_of_frame: float = 0.35
    min_image_side: int = 32
    min_face_size: int = 20
    allow_grey: bool = False
    jpeg_quality: int = 95
    detect_pad: float = 0.25  # cropped inputs: black border (share of each side) MTCNN searches them with


_DETECTOR: FaceDetector | None = None


def _detector(cfg: AlignConfig) -> FaceDetector:
    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = FaceDetector(min_face_size=cfg.min_face_size)
    return _DETECTOR


def face_sample(inp: FaceInput, split: str, cfg: AlignConfig, detector: FaceDetector) -> tuple[dict, str | None]:
    """Decode, detect, align and encode one input as a shard sample; raise Skip with the reason."""
    image, note = load_rgb(inp.path, min_side=cfg.min_image_side, allow_grey=cfg.allow_grey)
    face = find_face(detector, image, inp.cropped, cfg.min_score, cfg.min_eye_distance, detect_pad=cfg.detect_pad)
    crop, matrix, oob = align(image, face.landmarks, cfg.size)
    if oob > (inp.max_out_of_frame if inp.max_out_of_frame is not None else cfg.max_out_of_frame):
        raise Skip("face_cut_off", f"{oob:.0%} of the crop lies outside the photo")
    meta = {
        "key": inp.key, "identity": inp.identity, "source": inp.source, "file": inp.file, "split": split,
        "det_score": round(face.score, 4), "eye_distance_px": round(face.eye_distance, 2),
        "box": [round(float(v), 1) for v in face.box], "out_of_frame": round(oob, 4), "size": cfg.size,
        "landmarks": np.round(transform_points(matrix, face.landmarks), 2).tolist(),
        # photo → crop affine and the photo's size: what a full-image product pastes the crop back with
        "matrix": np.round(matrix, 6).tolist(), "photo_size": [int(image.shape[1]), int(image.shape[0])],
        # Unknown labels are -1 / "" (not null) so every shard has one schema (HF datasets needs it).
        "age": inp.attrs.get("age", -1), "gender": inp.attrs.get("gender", ""), "race": inp.attrs.get("race", ""),
        "converted_from": note or "",
    }
    return {"__key__": inp.key, "jpg": encode_jpeg(crop, cfg.jpeg_quality), "json": dump_json(meta)}, note


def _run_shard(task: tuple) -> dict:
    """Process one shard's inputs and write the shard plus its sidecar summary (the 'done' marker)."""
    split, index, inputs, out_dir, cfg = task
    import torch

    torch.set_num_threads(1)
    detector = _detector(cfg)
    samples, skips, notes, identities, by_source = [], [], Counter(), set(), Counter()
    for inp in inputs:
        try:
            sample, note = face_sample(inp, split, cfg, detector)
        except Skip as s:
            skips.append({"file": inp.file, "source": inp.source, "reason": s.reason, "detail": s.detail})
            continue
        except Exception as e:  # noqa: BLE001 - an unforeseen failure is a counted skip, never a crash
            skips.append({"file": inp.file, "source": inp.source, "reason": "error",
                          "detail": f"{type(e).__name__}: {e}"[:200]})
            continue
        samples.append(sample)
        identities.add(inp.identity)
        by_source[inp.source] += 1
        if note:
            notes[note] += 1
    name = f"{split}/faces-{split}-{index:05d}.tar"
    count = write_shard(os.path.join(out_dir, name), samples) if samples else 0
    summary = {"split": split, "index": index, "file": name, "num_samples": count, "inputs": len(inputs),
               "skips": skips, "notes": dict(notes), "identities": sorted(identities),
               "faces_by_source": dict(by_source)}
    atomic_write_json(os.path.join(out_dir, "_work", f"{split}-{index:05d}.json"), summary)
    return summary


def plan(sources: Sequence[FolderSource], splits: dict[str, float], seed: int, shard_size: int):
    """All inputs, the pre-decode skips, and the shard tasks per split (deterministic)."""
    inputs = [i for s in sources for i in s.inputs()]
    names = Counter(s.name for s in sources)
    if any(c > 1 for c in names.values()):
        raise ValueError(f"source names must be unique, got {sorted(names.elements())}")
    usable = [i for i in inputs if i.skip is None]
    assignment = split_identities((i.identity for i in usable), splits, seed)
    tasks = []
    for split in splits:
        members = sorted((i for i in usable if assignment[i.identity] == split), key=lambda i: (i.source, i.file))
        tasks += [(split, n // shard_size, members[n:n + shard_size]) for n in range(0, len(members), shard_size)]
    return inputs, [i for i in inputs if i.skip is not None], tasks


def _fingerprint(sources, cfg, splits, seed, shard_size) -> dict:
    desc = {"sources": [{k: str(v) for k, v in vars(s).items()} for s in sources], "align": asdict(cfg),
            "splits": dict(splits), "seed": seed, "shard_size": shard_size}
    return {"config": desc, "sha256": hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()}


def prepare(sources: Sequence[FolderSource], out_dir: str, align_cfg: AlignConfig, splits: dict[str, float],
            seed: int = 0, shard_size: int = 500, workers: int = 2, contact_faces: int = 64,
            progress: bool = True) -> dict:
    """Run the whole stage; return the report (also written to `<out_dir>/report.json`)."""
    start = time.time()
    os.makedirs(os.path.join(out_dir, "_work"), exist_ok=True)
    fp = _fingerprint(sources, align_cfg, splits, seed, shard_size)
    fp_path = os.path.join(out_dir, "_prepare.json")
    if os.path.exists(fp_path):
        with open(fp_path) as f:
            if json.load(f)["sha256"] != fp["sha256"]:
                raise RuntimeError(f"{out_dir} holds faces prepared with a different config: "
                                   f"set paths.faces_dir elsewhere or delete that folder")
    atomic_write_json(fp_path, fp)
    remove_partials(out_dir)

    inputs, pre_skipped, tasks = plan(sources, splits, seed, shard_size)
    done = {os.path.basename(p) for p in os.listdir(os.path.join(out_dir, "_work"))}
    todo = [t for t in tasks if f"{t[0]}-{t[1]:05d}.json" not in done]
    jobs = [(split, index, members, out_dir, align_cfg) for split, index, members in todo]
    bar = tqdm(total=sum(len(t[2]) for t in tasks), initial=sum(len(t[2]) for t in tasks) - sum(len(j[2]) for j in jobs),
               desc="prepare", unit="img", disable=not progress, smoothing=0.05)
    made = 0
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            for summary in pool.imap_unordered(_run_shard, jobs):
                bar.update(summary["inputs"])
                made += summary["num_samples"]
    else:
        for job in jobs:
            summary = _run_shard(job)
            bar.update(summary["inputs"])
            made += summary["num_samples"]
    bar.close()

    summaries = []
    for split, index, _ in tasks:
        with open(os.path.join(out_dir, "_work", f"{split}-{index:05d}.json")) as f:
            summaries.append(json.load(f))
    report = _report(inputs, pre_skipped, summaries, splits, time.time() - start, len(jobs), len(tasks), made)
    write_index(out_dir, "swap-factory-faces", {s: [(x["file"], x["num_samples"]) for x in summaries if x["split"] == s]
                                               for s in splits}, align=asdict(align_cfg), seed=seed)
    atomic_write_json(os.path.join(out_dir, "report.json"), report)
    _contact(out_dir, list(splits), contact_faces)
    return report


def _report(inputs, pre_skipped, summaries, splits, wall, ran, total, made) -> dict:
    skips = [{"file": i.file, "source": i.source, "reason": i.skip[0], "detail": i.skip[1]} for i in pre_skipped]
    skips += [s for x in summaries for s in x["skips"]]
    per_source = {}
    for src, n in sorted(Counter(i.source for i in inputs).items()):
        faces = sum(x["faces_by_source"].get(src, 0) for x in summaries)
        reasons = Counter(s["reason"] for s in skips if s["source"] == src)
        per_source[src] = {"inputs": n, "faces": faces, "yield": round(faces / n, 4) if n else 0.0,
                           "skipped": dict(sorted(reasons.items()))}
    faces = sum(x["num_samples"] for x in summaries)
    return {
        "inputs": len(inputs), "faces": faces, "skipped_total": len(skips),
        "skipped": dict(sorted(Counter(s["reason"] for s in skips).items())),
        "converted": dict(sorted(sum((Counter(x["notes"]) for x in summaries), Counter()).items())),
        "per_source": per_source,
        "splits": {s: {"faces": sum(x["num_samples"] for x in summaries if x["split"] == s),
                       "identities": len({i for x in summaries if x["split"] == s for i in x["identities"]}),
                       "shards": sum(1 for x in summaries if x["split"] == s and x["num_samples"])} for s in splits},
        "run": {"wall_time_s": round(wall, 1), "shards_processed": ran, "shards_total": total,
                "faces_made": made, "faces_per_s": round(made / wall, 2)},
        "skips": sorted(skips, key=lambda s: (s["source"], s["file"])),
    }


def _contact(out_dir: str, splits: list[str], n: int) -> None:
    """Contact sheet with faces from every split and every source (round robin), landmarks drawn."""
    from factory.ingest.facedata import decode

    per_split = max(1, n // len(splits))
    faces, points, captions = [], [], []
    for split in splits:
        by_source: dict[str, list[dict]] = {}
        for sample in iter_samples(out_dir, split, decode=False):
            meta = json.loads(sample["json"])
            group = by_source.setdefault(meta["source"], [])
            if len(group) < per_split:
                group.append({"jpg": sample["jpg"], "meta": meta})
        order = [g[k] for k in range(per_split) for g in by_source.values() if k < len(g)][:per_split]
        for item in order:
            faces.append(decode(item["jpg"]))
            points.append(item["meta"]["landmarks"])
            captions.append(f'{split} {item["meta"]["identity"]}')
    if faces:
        contact_sheet(faces, os.path.join(out_dir, "contact_sheet.png"), captions=captions, points=points)


def summary_text(report: dict) -> str:
    """Human summary printed at the end of the stage."""
    lines = [f"faces: {report['faces']} of {report['inputs']} inputs; skipped {report['skipped_total']}"]
    for src, s in report["per_source"].items():
        lines.append(f"  {src}: {s['faces']}/{s['inputs']} ({s['yield']:.1%}) skipped {s['skipped']}")
    for split, s in report["splits"].items():
        lines.append(f"  {split}: {s['faces']} faces, {s['identities']} identities, {s['shards']} shards")
    lines.append(f"  skipped by reason: {report['skipped']}; converted: {report['converted']}")
    r = report["run"]
    lines.append(f"  wall {r['wall_time_s']}s, {r['shards_processed']}/{r['shards_total']} shards this run, "
                 f"{r['faces_per_s']} faces/s")
    return "\n".join(lines)

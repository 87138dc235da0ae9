"""Held-out evaluation of a swapper as it ships: identity transfer by judges (at least one the swapper
never trained against), pose and expression kept from the target (dense face mesh), realism (Fréchet
distance in each judge's features against the test gallery and against a held-out real reference,
sharpness) — beside baselines (reconstruction, the unswapped target,
the source face, the graphics warp-and-blend).

Every output is scored as the factory ships it (blended into the target with the soft face mask, JPEG at
the dataset's quality and size) and found again the way a third party would: MTCNN re-detection and
re-alignment straight into each judge's own frame at its input size.
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg

from factory.common.face_mesh import FaceMesh, pose_expression_error
from factory.common.images import resize
from factory.common.face_mesh import blend_into_targets
from factory.common.shards import encode_jpeg
from factory.identity.encoders import IdentityEncoder, embed_batched
from factory.ingest.facedata import decode, load_faces, to_tensor, to_uint8
from factory.ingest.faces import TEMPLATE, FaceDetector, similarity_matrix


def swap_pairs(identities: Sequence[str], n: int, seed: int) -> np.ndarray:
    """Fixed, seeded (target index, source index) pairs of different people; sources have >= 2 faces
    so a gallery of their *other* photos exists."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(identities)
    counts = {k: int((ids == k).sum()) for k in set(identities)}
    sources = np.array([i for i, k in enumerate(ids) if counts[k] >= 2])
    if len(sources) == 0 or len(counts) < 2:
        raise ValueError("swap evaluation needs identities with at least two faces")
    pairs = set()
    while len(pairs) < n:
        t, s = int(rng.integers(len(ids))), int(sources[rng.integers(len(sources))])
        if ids[t] != ids[s]:
            pairs.add((t, s))
    return np.array(sorted(pairs))


def detect_landmarks(detector: FaceDetector, images: np.ndarray, scale: int = 128) -> list[np.ndarray | None]:
    """MTCNN's 5 landmarks of each face (in `scale`-px coordinates), None where no face is found. Faces
    are resized to `scale` and given a grey border (MTCNN needs context around a tight crop)."""
    out = []
    for img in images:
        big = cv2.resize(img, (scale, scale), interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, 32, 32, 32, 32, cv2.BORDER_CONSTANT, value=(127, 127, 127))
        faces = detector.detect(big)
        out.append(faces[0].landmarks - 32 if faces else None)
    return out


def judge_frame(judge: IdentityEncoder) -> np.ndarray:
    """The canonical 5-point template in the judge's own input pixels (its frame)."""
    x0, y0, x1, y1 = judge.box
    return (TEMPLATE - np.array([x0, y0])) / np.array([x1 - x0, y1 - y0]) * judge.input_size


@torch.inference_mode()
def embed_redetected(judge: IdentityEncoder, images: np.ndarray, landmarks: list[np.ndarray | None],
                     scale: int = 128, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Judge embeddings of faces re-aligned from their *detected* landmarks straight into the judge's
    frame at its input size; rows of undetected faces are zero. Returns (embeddings, found mask)."""
    frame, size = judge_frame(judge), judge.input_size
    found = np.array([lm is not None for lm in landmarks])
    crops = []
    for img, lm in zip(images, landmarks):
        if lm is None:
            continue
        big = cv2.resize(img, (scale, scale), interpolation=cv2.INTER_CUBIC)
        matrix = similarity_matrix(lm, frame)
        crops.append(cv2.warpAffine(big, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    emb = np.zeros((len(images), judge.embedding_dim), np.float32)
    judge.eval()
    for i in range(0, len(crops), batch_size):
        x = torch.from_numpy(np.stack(crops[i:i + batch_size])).permute(0, 3, 1, 2).float().div_(255)
        idx = np.flatnonzero(found)[i:i + batch_size]
        emb[idx] = F.normalize(judge.embed(x), dim=1).numpy()
    return emb, found


def identity_scores(out_emb: np.ndarray, found: np.ndarray, gallery_emb: np.ndarray, identities: Sequence[str],
                    pairs: np.ndarray) -> dict:
    """Top-1 retrieval of outputs among all test identities (per-identity mean embeddings, each leaving
    out the two faces of the pair) as the source and as the target, and cosine to both; an undetected
    output counts as a miss."""
    ids = np.asarray(identities)
    names = sorted(set(identities))
    index = {k: i for i, k in enumerate(names)}
    sums = np.zeros((len(names), gallery_emb.shape[1]))
    counts = np.zeros(len(names))
    np.add.at(sums, [index[k] for k in ids], gallery_emb)
    np.add.at(counts, [index[k] for k in ids], 1)
    hits_src, hits_tgt, cos_src, cos_tgt = [], [], [], []
    for out, ok, (t, s) in zip(out_emb, found, pairs):
        if not ok:
            hits_src.append(False), hits_tgt.append(False)
            continue
        g_sum, g_cnt = sums.copy(), counts.copy()
        for used in (t, s):
            g_sum[index[ids[used]]] -= gallery_emb[used]
            g_cnt[index[ids[used]]] -= 1
        centres = g_sum / np.maximum(g_cnt, 1)[:, None]
        centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-8)
        sims = np.where(g_cnt > 0, centres @ out, -np.inf)
        best = int(np.argmax(sims))
        hits_src.append(best == index[ids[s]])
        hits_tgt.append(best == index[ids[t]])
        cos_src.append(float(centres[index[ids[s]]] @ out))
        if g_cnt[index[ids[t]]] > 0:
            cos_tgt.append(float(centres[index[ids[t]]] @ out))
    return {"id_retrieval_top1": float(np.mean(hits_src)), "retrieved_as_target": float(np.mean(hits_tgt)),
            "cos_to_source": float(np.mean(cos_src)) if cos_src else float("nan"),
            "cos_to_target": float(np.mean(cos_tgt)) if cos_tgt else float("nan"),
            "undetected": int((~found).sum()), "identities": len(names)}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID's formula, other features)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(covmean)))


def sharpness(images: np.ndarray) -> np.ndarray:
    """Laplacian variance per image (uint8 RGB)."""
    return np.array([cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for im in images])


def jpeg_roundtrip(images: np.ndarray, quality: int) -> np.ndarray:
    """Images through the factory's one JPEG encoder at `quality`, decoded back for scoring."""
    return np.stack([decode(encode_jpeg(im, quality)) for im in images])


def ship(faces: np.ndarray, targets: np.ndarray, target_lm: np.ndarray, quality: int, mask: str = "mesh") -> np.ndarray:
    """The factory's last steps on decoder outputs: the swap method's blend into the target with its soft
    face mask, then the JPEG encoder at the dataset's quality."""
    return jpeg_roundtrip(np.stack([im for im, _ in blend_into_targets(faces, targets, target_lm, mask)]), quality)


def real_reference(judges: dict[str, IdentityEncoder], faces_dir: str, size: int, detector: FaceDetector,
                   n: int = 1000, seed: int = 0, quality: int = 95, split: str = "val",
                   sources: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Each judge's features of `n` seeded real faces of another split (no image or identity shared with
    the test pairs), JPEG-encoded and re-detected exactly as the scored outputs are: the reference that
    real targets and swaps are both measured against (FID's two independent samples)."""
    items = load_faces(faces_dir, split, sources)
    pick = np.sort(np.random.default_rng(seed).choice(len(items), min(n, len(items)), replace=False))
    images = jpeg_roundtrip(np.stack([resize(decode(items[i]["jpg"]), size) for i in pick]), quality)
    landmarks = detect_landmarks(detector, images)
    reference = {}
    for name, judge in judges.items():
        emb, found = embed_redetected(judge, images, landmarks)
        reference[name] = emb[found]
    return reference


@torch.inference_mode()
def held_out_pairs(judges: dict[str, IdentityEncoder], faces_dir: str, size: int, n_pairs: int = 1000,
                   seed: int = 0, sources: Sequence[str] | None = None, batch_size: int = 64) -> dict:
    """Test-split faces at `size` (tensor and uint8, with landmarks), fixed swap pairs, and each judge's
    gallery embeddings — computed once and shared by every face maker that is scored."""
    items = load_faces(faces_dir, "test", sources)
    ids = [it["meta"]["identity"] for it in items]
    full = [decode(it["jpg"]) for it in items]
    small_u8 = np.stack([resize(im, size) for im in full])  # the factory's own resize
    landmarks = np.stack([np.asarray(it["meta"]["landmarks"], np.float32) * size / im.shape[0]
                          for it, im in zip(items, full)])
    small = torch.from_numpy(small_u8).permute(0, 3, 1, 2).float().div_(255)
    gallery = {name: embed_batched(j, small, batch_size).numpy() for name, j in judges.items()}
    return {"ids": ids, "faces": small, "faces_u8": small_u8, "landmarks": landmarks, "gallery": gallery,
            "pairs": swap_pairs(ids, n_pairs, seed)}


def score_images(images: np.ndarray, judges: dict[str, IdentityEncoder], test: dict, detector: FaceDetector,
                 mesh: FaceMesh | None, mesh_faces: int = 300) -> dict:
    """Figures for one maker's uint8 outputs (one per pair): per judge, identity retrieval after MTCNN
    re-detection and re-alignment into the judge's frame, and Fréchet distance in its features to the test
    gallery (which holds the pairs' own faces) and, when `test` has one, to the held-out reference; pose and
    expression error against the target by the face mesh; sharpness ratio to the target."""
    pairs = test["pairs"]
    targets = test["faces_u8"][pairs[:, 0]]
    landmarks = detect_landmarks(detector, images)
    result = {"pairs": len(pairs), "undetected": int(sum(lm is None for lm in landmarks))}
    for name, judge in judges.items():
        emb, found = embed_redetected(judge, images, landmarks)
        scores = identity_scores(emb, found, test["gallery"][name], test["ids"], pairs)
        refs = {"frechet": test["gallery"][name]}
        if "reference" in test:  # independent real sample: real targets are scored against it like swaps
            refs["frechet_heldout"] = test["reference"][name]
        for key, ref in refs.items():
            scores[key] = frechet_distance(ref, emb[found]) if found.sum() > 2 else float("nan")
        result[name] = scores
    result["sharpness_ratio"] = float(np.median(sharpness(images) / np.maximum(sharpness(targets), 1e-6)))
    if mesh is not None:
        if "target_meshes" not in test:
            test["target_meshes"] = [mesh(t) for t in targets[:mesh_faces]]
        poses, expr, missed = [], [], 0
        for img, (ref, ref_p) in zip(images[:mesh_faces], test["target_meshes"]):
            pts, p = mesh(img)
            if p < 0.5 or ref_p < 0.5:
                missed += 1
                continue
            angles, e = pose_expression_error(pts, ref)
            poses.append(angles)
            expr.append(e)
        poses = np.array(poses).reshape(-1, 3)
        result["pose_error_deg"] = {k: float(v) for k, v in zip(("yaw", "pitch", "roll"), poses.mean(0))} if len(poses) else {}
        result["pose_error_deg"]["mean"] = float(poses.mean()) if len(poses) else float("nan")
        result["expression_error"] = float(np.mean(expr)) if expr else float("nan")
        result["mesh_missed"] = missed
    return result


def reconstruction(swapper, faces_dir: str, n: int = 500, sources: Sequence[str] | None = None) -> dict:
    """PSNR and SSIM of [texture(x) ‖ identity(x)] → x on test faces."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    items = load_faces(faces_dir, "test", sources)[:n]
    x = swapper.resize(torch.stack([to_tensor(decode(it["jpg"])) for it in items]))
    rec = swapper.swap(x, x)
    return {"psnr": float(peak_signal_noise_ratio(rec, x, data_range=1.0)),
            "ssim": float(structural_similarity_index_measure(rec, x, data_range=1.0)), "faces": len(items)}


def evaluate_swapper(swapper, judges: dict[str, IdentityEncoder], faces_dir: str, out_dir: str, n_pairs: int = 1000,
                     seed: int = 0, jpeg_quality: int = 95, trained_against: str = "", mesh: bool = True,
                     mesh_faces: int = 300, mask: str = "mesh", baselines: dict | None = None,
                     checkpoint: str = "") -> dict:
    """The swapper beside its baselines (reconstruction, the unswapped target, the source face, and any
    `baselines`: name → fn(targets, sources, target landmarks, source landmarks) → uint8 faces, e.g. the
    factory's graphics warp-and-blend) on the same held-out pairs, scored as shipped (blend + JPEG) and,
    for the swap, as the decoder's raw output; JSON report + grid PNG (texture | identity | swap |
    reconstruction)."""
    from factory.swapper.training import save_grid

    test = held_out_pairs(judges, faces_dir, swapper.size, n_pairs, seed)
    pairs, faces, u8, lm = test["pairs"], test["faces"], test["faces_u8"], test["landmarks"]
    tgt, src = pairs[:, 0], pairs[:, 1]
    swap_raw = to_uint8(swapper.swap(faces[tgt], faces[src]))
    rec_raw = to_uint8(swapper.swap(faces[tgt], faces[tgt]))

    def jpeg(images):
        return jpeg_roundtrip(images, jpeg_quality)

    makers = {"swap": ship(swap_raw, u8[tgt], lm[tgt], jpeg_quality, mask), "swap_decoder_output": swap_raw,
              "reconstruction": ship(rec_raw, u8[tgt], lm[tgt], jpeg_quality, mask),
              **{name: jpeg(fn(u8[tgt], u8[src], lm[tgt], lm[src])) for name, fn in (baselines or {}).items()},
              "baseline_target": jpeg(u8[tgt]), "baseline_source": jpeg(u8[src])}
    detector = FaceDetector()
    test["reference"] = real_reference(judges, faces_dir, swapper.size, detector, n_pairs, seed, jpeg_quality)
    face_mesh = FaceMesh() if mesh else None
    report = {"checkpoint": checkpoint, "judges": {n: type(j).__name__ for n, j in judges.items()}, "trained_against": trained_against,
              "size": swapper.size, "jpeg_quality": jpeg_quality, "mask": mask, "test_faces": len(test["ids"]),
              "reference_faces": {n: len(r) for n, r in test["reference"].items()}}
    for name, images in makers.items():
        report[name] = score_images(images, judges, test, detector, face_mesh, mesh_faces)
    report["reconstruction"]["quality"] = reconstruction(swapper, faces_dir)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "swap_report.json"), "w") as f:
        json.dump(report, f, indent=1)
    first = np.arange(min(8, len(pairs)))

    def t(images):
        return torch.from_numpy(images[first]).permute(0, 3, 1, 2).float().div(255)

    save_grid([t(u8[tgt]), t(u8[src]), t(makers["swap"]), t(makers["reconstruction"])],
              os.path.join(out_dir, "swap_grid.png"))
    return report


def summary_table(report: dict) -> str:
    """The report as one markdown table: a column per maker, identity rows per judge, then realism and
    pose/expression rows."""
    makers = [m for m in ("swap", "swap_decoder_output", "reconstruction", "warp_blend", "baseline_target",
                          "baseline_source") if m in report]
    head = "| | " + " | ".join(makers) + " |\n|---|" + "---|" * len(makers) + "\n"
    rows = []

    def row(label, get, fmt="{:.3f}"):
        cells = []
        for m in makers:
            try:
                v = get(report[m])
                cells.append(fmt.format(v))
            except (KeyError, TypeError):
                cells.append("–")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    for judge in report["judges"]:
        tag = " (trained against)" if judge == report.get("trained_against") else " (judge)"
        row(f"{judge}{tag}: source top-1", lambda r: 100 * r[judge]["id_retrieval_top1"], "{:.1f} %")
        row(f"{judge}{tag}: retrieved as target", lambda r: 100 * r[judge]["retrieved_as_target"], "{:.1f} %")
        row(f"{judge}{tag}: cosine to source / target",
            lambda r: f"{r[judge]['cos_to_source']:.3f} / {r[judge]['cos_to_target']:.3f}", "{}")
        row(f"{judge}{tag}: Fréchet distance to test gallery", lambda r: r[judge]["frechet"])
        row(f"{judge}{tag}: Fréchet distance to held-out reals", lambda r: r[judge]["frechet_heldout"])
    row("undetected by MTCNN", lambda r: r["undetected"], "{}")
    row("sharpness ratio to target", lambda r: r["sharpness_ratio"], "{:.2f}")
    row("pose error vs target (deg, mean of yaw/pitch/roll)", lambda r: r["pose_error_deg"]["mean"], "{:.2f}")
    row("expression error vs target (inter-ocular)", lambda r: r["expression_error"], "{:.4f}")
    return head + "\n".join(rows)

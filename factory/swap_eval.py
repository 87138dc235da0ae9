"""Held-out evaluation of a swapper: identity transfer by an independent judge, attribute
preservation, reconstruction, realism — beside two baselines (the unswapped target, the source face).
"""
from __future__ import annotations

import json
import os
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg

from factory.facedata import decode, load_faces, to_tensor
from factory.faces import FaceDetector
from factory.identity import IdentityEncoder, embed_batched


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


def retrieval(out_emb: np.ndarray, gallery_emb: np.ndarray, identities: Sequence[str], pairs: np.ndarray) -> dict:
    """Top-1 identity retrieval of outputs among all identities (per-identity mean embeddings, each
    leaving out the faces used in the pair), plus cosine similarity to the source's other photos."""
    ids = np.asarray(identities)
    names = sorted(set(identities))
    index = {k: i for i, k in enumerate(names)}
    sums = np.zeros((len(names), gallery_emb.shape[1]))
    counts = np.zeros(len(names))
    for e, k in zip(gallery_emb, ids):
        sums[index[k]] += e
        counts[index[k]] += 1
    hits_src, hits_tgt, cos_src = [], [], []
    for out, (t, s) in zip(out_emb, pairs):
        g_sum, g_cnt = sums.copy(), counts.copy()
        for used in (t, s):
            g_sum[index[ids[used]]] -= gallery_emb[used]
            g_cnt[index[ids[used]]] -= 1
        valid = g_cnt > 0
        centres = g_sum / np.maximum(g_cnt, 1)[:, None]
        centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-8)
        sims = np.where(valid, centres @ out, -np.inf)
        best = int(np.argmax(sims))
        hits_src.append(best == index[ids[s]])
        hits_tgt.append(best == index[ids[t]])
        cos_src.append(float(centres[index[ids[s]]] @ out))
    return {"id_retrieval_top1": float(np.mean(hits_src)), "retrieved_as_target": float(np.mean(hits_tgt)),
            "cos_to_source": float(np.mean(cos_src)), "identities": len(names)}


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


def landmark_distance(detector: FaceDetector, outputs: np.ndarray, target_lm: list[np.ndarray | None]) -> dict:
    """Mean distance between MTCNN landmarks detected on the outputs and on their targets (both through
    the same resize and detector), in units of the target's inter-ocular distance; pairs where either
    face is not found are counted, not scored."""
    dists, missed = [], 0
    for pts, lm in zip(detect_landmarks(detector, outputs), target_lm):
        if pts is None or lm is None:
            missed += 1
            continue
        dists.append(np.linalg.norm(pts - lm, axis=1).mean() / np.linalg.norm(lm[1] - lm[0]))
    return {"landmark_distance": float(np.mean(dists)) if dists else float("nan"), "undetected": missed}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID's formula, other features)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(covmean)))


def sharpness(images: np.ndarray) -> np.ndarray:
    """Laplacian variance per image (uint8 RGB)."""
    return np.array([cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for im in images])


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)


@torch.inference_mode()
def held_out_pairs(judge: IdentityEncoder, faces_dir: str, size: int, n_pairs: int = 1000, seed: int = 0,
                   sources: Sequence[str] | None = None, batch_size: int = 64) -> dict:
    """Test-split faces at `size`, fixed swap pairs, and the judge's gallery embeddings — computed once
    and shared by every face maker that is scored."""
    items = load_faces(faces_dir, "test", sources)
    ids = [it["meta"]["identity"] for it in items]
    faces = torch.stack([to_tensor(decode(it["jpg"])) for it in items])
    small = F.interpolate(faces, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    gallery = embed_batched(judge, small, batch_size).numpy()
    pairs = swap_pairs(ids, n_pairs, seed)
    return {"ids": ids, "faces": small, "gallery": gallery, "pairs": pairs}


@torch.inference_mode()
def score_maker(make: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], judge: IdentityEncoder, test: dict,
                detector: FaceDetector, batch_size: int = 64, landmark_faces: int = 300) -> tuple[dict, torch.Tensor]:
    """Figures for one face maker (`make(targets, sources) -> faces`) on the shared held-out pairs,
    and its first outputs (for grids)."""
    pairs, small = test["pairs"], test["faces"]
    outs = torch.cat([make(small[pairs[i:i + batch_size, 0]], small[pairs[i:i + batch_size, 1]])
                      for i in range(0, len(pairs), batch_size)])
    out_emb = embed_batched(judge, outs, batch_size).numpy()
    result = retrieval(out_emb, test["gallery"], test["ids"], pairs)
    out_u8, tgt_u8 = _to_uint8(outs), _to_uint8(small[pairs[:, 0]])
    if "target_landmarks" not in test:  # detected once, on the same path as every maker's outputs
        test["target_landmarks"] = detect_landmarks(detector, tgt_u8[:landmark_faces])
    result.update(landmark_distance(detector, out_u8[:landmark_faces], test["target_landmarks"]))
    result["frechet_judge_features"] = frechet_distance(test["gallery"], out_emb)
    result["sharpness_ratio"] = float(np.median(sharpness(out_u8) / np.maximum(sharpness(tgt_u8), 1e-6)))
    result["pairs"] = len(pairs)
    return result, outs[:8]


def reconstruction(swapper, faces_dir: str, n: int = 500, sources: Sequence[str] | None = None) -> dict:
    """PSNR and SSIM of [texture(x) ‖ identity(x)] → x on test faces."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    items = load_faces(faces_dir, "test", sources)[:n]
    x = swapper.resize(torch.stack([to_tensor(decode(it["jpg"])) for it in items]))
    rec = swapper.swap(x, x)
    return {"psnr": float(peak_signal_noise_ratio(rec, x, data_range=1.0)),
            "ssim": float(structural_similarity_index_measure(rec, x, data_range=1.0)), "faces": len(items)}


def evaluate_swapper(swapper, judge: IdentityEncoder, faces_dir: str, out_dir: str, n_pairs: int = 1000,
                     seed: int = 0) -> dict:
    """The swapper and the two baselines on the same held-out pairs; JSON report + grid PNG."""
    from factory.swapper_module import save_grid

    makers = {"swap": lambda t, s: swapper.swap(t, s), "reconstruction": lambda t, s: swapper.swap(t, t),
              "baseline_target": lambda t, s: t, "baseline_source": lambda t, s: s}
    test = held_out_pairs(judge, faces_dir, swapper.size, n_pairs, seed)
    detector = FaceDetector()
    report, outputs = {"judge": type(judge).__name__, "size": swapper.size}, {}
    for name, make in makers.items():
        report[name], outputs[name] = score_maker(make, judge, test, detector)
    report["swap"]["reconstruction"] = reconstruction(swapper, faces_dir)
    report["landmark_ratio_swap_to_reconstruction"] = (report["swap"]["landmark_distance"]
                                                       / max(report["reconstruction"]["landmark_distance"], 1e-9))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "swap_report.json"), "w") as f:
        json.dump(report, f, indent=1)
    first = test["pairs"][:8]
    save_grid([test["faces"][first[:, 0]], test["faces"][first[:, 1]], outputs["swap"]],
              os.path.join(out_dir, "swap_grid.png"))
    return report

"""What the mesh methods do to identity and expression, on held-out (test) people.

    python -m benchmarks.manipulations [n_pairs] [faces_dir] [out_dir]

- **Morphing attack success** (MMPMR, as NIST FRVT MORPH): a morph of contributors A and B (made from one
  photo of each) succeeds when it matches *another* photo of A and another photo of B at the
  recogniser's threshold. Thresholds are chosen on val people at the dataset's 64 px: the best balanced
  verification accuracy, and the stricter false-accept rate 0.1 %. Per recogniser (dlib, SFace, and the
  trained ArcFace encoder when its checkpoint exists), for α = 0.5 and the configured α range, beside the
  plain impostor accept rate (photo of A against photo of B).
- **Reenactment**: expression distance (mean distance of eye, brow and mouth mesh points, in inter-ocular
  units, with the source's mesh brought into the target's head pose) of the output to the source vs the
  target's own; head-pose change; and identity retrieval (the output should stay the target).
- **Partial edits**: identity retrieval per region.
Every output goes through the dataset's JPEG (q95) before it is measured.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

import factory  # noqa: F401
from factory.common.face_mesh import euler_degrees, shared_mesh, similarity_align
from factory.common.images import resize
from factory.common.masks import REGIONS, inter_ocular
from factory.common.paths import OUTPUT_ROOT
from factory.common.thresholds import best_threshold
from factory.dataset.mesh_methods import EXPRESSION, STABLE, Morph, Partial, Reenact
from factory.dataset.methods import Pair
from factory.identity.encoders import DlibEncoder, SFaceEncoder, embed_batched
from factory.identity.verification import make_pairs, pair_scores
from factory.ingest.facedata import decode, load_faces, to_tensor
from factory.swapper.evaluation import identity_scores, jpeg_roundtrip, swap_pairs

SIZE = 64


def recognisers() -> dict:
    """dlib, SFace and — when `train_identity` has run — the trained encoder."""
    out = {"dlib": DlibEncoder(), "sface": SFaceEncoder()}
    ckpt = OUTPUT_ROOT / "identity" / "arcface" / "checkpoints" / "best.ckpt"
    if ckpt.exists():
        from factory.identity.training import load_trained_encoder

        out["trained"] = load_trained_encoder(str(ckpt))
    else:
        print(f"trained encoder: no checkpoint at {ckpt} (python -m pipelines.train_identity), skipped")
    return out


def faces(items: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    crops = [decode(it["jpg"]) for it in items]
    lms = np.stack([np.asarray(it["meta"]["landmarks"], np.float32) * SIZE / c.shape[0] for it, c in zip(items, crops)])
    return np.stack([resize(c, SIZE) for c in crops]), lms


def embed(encoder, images: np.ndarray) -> np.ndarray:
    return embed_batched(encoder, torch.stack([to_tensor(im) for im in images])).numpy()


def thresholds(encoder, val_faces: np.ndarray, val_ids: list[str]) -> dict:
    emb = embed(encoder, val_faces)
    pairs, labels = make_pairs(val_ids, 3000, 30000, seed=0)
    scores = pair_scores(emb, pairs)
    return {"balanced": best_threshold(scores, labels), "far_1e-3": float(np.quantile(scores[~labels], 1 - 1e-3))}


def expression_distance(out: np.ndarray, target: np.ndarray, source: np.ndarray) -> tuple[float, float, float]:
    """(output-to-source, target-to-source) expression distances in inter-ocular units, and the output's
    head-pose change from the target (degrees, mean |yaw, pitch, roll| on the skull's points)."""
    stable = list(STABLE)
    rot, scale, shift = similarity_align(source[stable], target[stable])
    src = (scale * source @ rot.T + shift)[:, :2]
    iod = inter_ocular(target)
    d_out = np.linalg.norm(out[EXPRESSION, :2] - src[EXPRESSION], axis=1).mean() / iod
    d_tgt = np.linalg.norm(target[EXPRESSION, :2] - src[EXPRESSION], axis=1).mean() / iod
    pose = np.abs(euler_degrees(similarity_align(out[stable], target[stable])[0])).mean()
    return float(d_out), float(d_tgt), float(pose)


def main(n_pairs: int = 500, faces_dir: str = str(OUTPUT_ROOT / "faces"),
         out_dir: str = str(OUTPUT_ROOT / "reports" / "manipulations")) -> dict:
    encs = recognisers()
    val = load_faces(faces_dir, "val", min_per_identity=2)
    val_faces, _ = faces(val)
    val_ids = [it["meta"]["identity"] for it in val]
    test = load_faces(faces_dir, "test")
    test_faces, test_lm = faces(test)
    ids = [it["meta"]["identity"] for it in test]
    gallery = {k: embed(e, test_faces) for k, e in encs.items()}
    report = {"pairs": n_pairs, "size": SIZE, "test_faces": len(ids), "thresholds": {}, "morph": {}}
    for k, e in encs.items():
        report["thresholds"][k] = thresholds(e, val_faces, val_ids)

    # morph contributors: both people have another photo to be probed with
    by_id: dict[str, list[int]] = {}
    for i, k in enumerate(ids):
        by_id.setdefault(k, []).append(i)
    multi = [i for i, k in enumerate(ids) if len(by_id[k]) >= 2]
    pairs = swap_pairs([ids[i] for i in multi], n_pairs, seed=0)
    pairs = np.array([(multi[t], multi[s]) for t, s in pairs])
    probe = {i: next(j for j in by_id[ids[i]] if j != i) for i in set(pairs.ravel().tolist())}

    def make(method, pairs_):
        ps = [Pair(test_faces[t], test_faces[s], test_lm[t], test_lm[s], np.random.default_rng(n))
              for n, (t, s) in enumerate(pairs_)]
        out = method(ps)
        return jpeg_roundtrip(np.stack([o[0] for o in out]), 95), [o[2] if len(o) > 2 else {} for o in out]

    probes_a = np.array([probe[t] for t, _ in pairs])
    probes_b = np.array([probe[s] for _, s in pairs])
    for label, method in (("alpha_0.5", Morph(alpha=(0.5, 0.5))), ("alpha_0.3-0.7", Morph())):
        images, _ = make(method, pairs)
        row = {}
        for k, e in encs.items():
            emb = embed(e, images)
            sa = (emb * gallery[k][probes_a]).sum(1)
            sb = (emb * gallery[k][probes_b]).sum(1)
            imp = (gallery[k][pairs[:, 0]] * gallery[k][probes_b]).sum(1)  # photo of A vs another of B
            row[k] = {name: {"morph_success": float(np.mean((sa >= thr) & (sb >= thr))),
                             "matches_a": float(np.mean(sa >= thr)), "matches_b": float(np.mean(sb >= thr)),
                             "impostor_accept": float(np.mean(imp >= thr))}
                      for name, thr in report["thresholds"][k].items()}
            row[k]["cos_to_a"], row[k]["cos_to_b"] = float(sa.mean()), float(sb.mean())
        report["morph"][label] = row
        print(label, json.dumps(row, indent=1))

    mesh = shared_mesh()
    images, _ = make(Reenact(), pairs)
    d_out, d_tgt, pose, missed = [], [], [], 0
    for img, (t, s) in zip(images, pairs):
        (mo, po), (mt, pt), (ms, ps) = mesh(img), mesh(test_faces[t]), mesh(test_faces[s])
        if min(po, pt, ps) < 0.5:
            missed += 1
            continue
        a, b, c = expression_distance(mo, mt, ms)
        d_out.append(a), d_tgt.append(b), pose.append(c)
    report["reenact"] = {"expression_to_source": float(np.mean(d_out)), "target_expression_to_source": float(np.mean(d_tgt)),
                         "closer_than_target": float(np.mean(np.array(d_out) < np.array(d_tgt))),
                         "pose_change_deg": float(np.mean(pose)), "mesh_missed": missed,
                         "identity": {k: identity_scores(embed(e, images), np.ones(len(images), bool), gallery[k], ids, pairs)
                                      for k, e in encs.items()}}
    print("reenact", json.dumps(report["reenact"], indent=1))

    report["partial"] = {}
    for region in (r for r in REGIONS if r != "face"):
        images, _ = make(Partial(regions=(region,)), pairs)
        report["partial"][region] = {k: identity_scores(embed(e, images), np.ones(len(images), bool), gallery[k], ids, pairs)
                                     for k, e in encs.items()}
    print("partial", json.dumps(report["partial"], indent=1))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "manipulations.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 500, *args[1:])

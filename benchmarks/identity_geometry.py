"""How far apart a recogniser puts people at the swapper's size, raw and centred, and what it costs.

    python -m benchmarks.identity_geometry [faces_dir] [size]

For each encoder (dlib, SFace): mean cosine between two photos of one person and between different
people on val faces (CelebA identities with >= 2 faces), with raw unit descriptors and with descriptors
centred on the mean of 1,024 train faces — a loss on raw cosine has only the gap between those two
figures to work with. Also forward and forward+backward time per face (the identity loss's cost).
"""
from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F

import factory  # noqa: F401
from factory.common.paths import OUTPUT_ROOT
from factory.identity.encoders import DlibEncoder, SFaceEncoder, embed_batched
from factory.identity.verification import make_pairs
from factory.ingest.facedata import decode, load_faces, to_tensor


def faces_at(items: list[dict], size: int) -> torch.Tensor:
    x = torch.stack([to_tensor(decode(it["jpg"])) for it in items])
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def main(faces_dir: str = str(OUTPUT_ROOT / "faces"), size: int = 64) -> None:
    torch.manual_seed(0)
    train = faces_at(load_faces(faces_dir, "train")[:1024], size)
    val_items = load_faces(faces_dir, "val", ["celeba-wild", "celeba-aligned"], min_per_identity=2)
    val = faces_at(val_items, size)
    ids = [it["meta"]["identity"] for it in val_items]
    pairs, labels = make_pairs(ids, 2000, 2000, seed=0)
    print(f"{len(val)} val faces of {len(set(ids))} people, {size} px; centre from {len(train)} train faces")
    for enc in (DlibEncoder(), SFaceEncoder()):
        emb, centre = embed_batched(enc, val), embed_batched(enc, train).mean(0)
        cen = F.normalize(emb - centre, dim=1)
        for name, e in (("raw", emb), ("centred", cen)):
            cos = (e[pairs[:, 0]] * e[pairs[:, 1]]).sum(1).numpy()
            print(f"{type(enc).__name__:13s} {name:8s} same person {cos[labels == 1].mean():.3f}  "
                  f"different people {cos[labels == 0].mean():.3f}")
        batch = train[:32].clone().requires_grad_(True)
        t = time.perf_counter()
        with torch.no_grad():
            enc(batch)
        fwd = (time.perf_counter() - t) / 32
        t = time.perf_counter()
        enc(batch).sum().backward()
        both = (time.perf_counter() - t) / 32
        print(f"{type(enc).__name__:13s} forward {fwd * 1e3:.1f} ms/face, forward+backward {both * 1e3:.1f} ms/face")


if __name__ == "__main__":
    main(*(sys.argv[1:2]), *(int(a) for a in sys.argv[2:3]))

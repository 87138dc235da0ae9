"""Shared fixtures: the real face data root and small prepared face sets built once per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import factory  # noqa: E402,F401  (config resolvers)
from factory.common.paths import REPO_ROOT  # noqa: E402

DATA_DIR = Path(os.environ.get("SWAP_FACTORY_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real face data; the suite fails (not skips) without it, as CI always has it."""
    assert (DATA_DIR / "celeba-wild" / "identities.txt").exists(), f"face data not found at {DATA_DIR}"
    return DATA_DIR


def celeba_wild_sample(data_dir: Path, n_ids: int, per_id: int) -> list[str]:
    """File names of `per_id` photos each of the first `n_ids` identities (sorted) with that many photos."""
    by_id: dict[str, list[str]] = {}
    for line in (data_dir / "celeba-wild" / "identities.txt").read_text().split("\n"):
        if line.strip():
            f, i = line.split()
            by_id.setdefault(i, []).append(f)
    chosen = [fs[:per_id] for _, fs in sorted(by_id.items(), key=lambda kv: int(kv[0])) if len(fs) >= per_id][:n_ids]
    return sorted(f for fs in chosen for f in fs)


def make_bad_files(folder: Path, good_photo: Path) -> dict[str, str]:
    """Deliberately bad inputs, each with the skip reason (or conversion) prepare must report."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    (folder / "truncated.jpg").write_bytes(good_photo.read_bytes()[:3000])
    im = Image.open(good_photo)
    im.convert("L").save(folder / "grey.jpg")
    im.resize((20, 24)).save(folder / "tiny.jpg")
    Image.fromarray((np.random.default_rng(0).random((160, 160, 3)) * 255).astype("uint8")).save(folder / "noise.jpg")
    im.convert("CMYK").save(folder / "cmyk.jpg")
    im.convert("RGBA").save(folder / "alpha.png")
    return {"empty.jpg": "empty_file", "notes.txt": "not_an_image", "truncated.jpg": "truncated",
            "grey.jpg": "grayscale", "tiny.jpg": "too_small", "noise.jpg": "no_face"}


@pytest.fixture(scope="session")
def small_faces(tmp_path_factory, data_dir) -> dict:
    """A prepared face store from 12 CelebA identities × 6 wild photos + 12 aligned crops + 12 UTKFace
    faces + a folder of bad files (one run per session, reused by later stages' tests)."""
    from factory.ingest.prepare import AlignConfig, prepare
    from factory.ingest.sources import FolderSource

    root = tmp_path_factory.mktemp("small")
    wild = root / "wild"
    wild.mkdir()
    files = celeba_wild_sample(data_dir, 12, 6)
    for f in files:
        (wild / f).symlink_to(data_dir / "celeba-wild" / "images" / f)
    expected_bad = make_bad_files(root / "bad", data_dir / "celeba-wild" / "images" / files[0])
    ident_file = data_dir / "celeba-wild" / "identities.txt"
    sources = [
        FolderSource("celeba-wild", str(wild), identities=str(ident_file), namespace="celeba"),
        FolderSource("celeba-aligned", str(data_dir / "celeba-aligned" / "images"),
                     identities=str(data_dir / "celeba-aligned" / "identities.txt"), namespace="celeba",
                     cropped=True, limit=12),
        FolderSource("utkface", str(data_dir / "utkface" / "images"), labels="utkface", cropped=True, limit=12,
                     max_out_of_frame=0.6),
        FolderSource("bad", str(root / "bad")),
    ]
    out = root / "faces"
    report = prepare(sources, str(out), AlignConfig(), {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0,
                     shard_size=16, workers=1, progress=False)
    return {"dir": out, "report": report, "sources": sources, "bad": expected_bad, "wild_files": files}


@pytest.fixture(scope="session")
def tiny_swapper_ckpt(tmp_path_factory, small_faces) -> str:
    """A width-8 swapper checkpoint after a few training steps on the small store's real faces."""
    import pytorch_lightning as pl
    import torch

    from factory.ingest.facedata import load_faces
    from factory.swapper.training import SwapperModule

    pl.seed_everything(0)
    batch = swap_batch(load_faces(str(small_faces["dir"]), "train")[:16])
    module = SwapperModule({"_target_": "factory.identity.encoders.TimmEncoder", "input_size": 64}, size=64, width=8,
                           disc_width=8)
    trainer = pl.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*batch), batch_size=8))
    path = tmp_path_factory.mktemp("swapper") / "tiny.ckpt"
    trainer.save_checkpoint(path)
    return str(path)


SAMPLES = {"train": 48, "val": 16, "test": 32}


def generate_cfg(faces_dir, out_dir, ckpt, *extra):
    """The generate config at test scale: tiny swapper, the default (dlib) identity scorer, few samples."""
    from tests.compose import compose_config

    return compose_config("generate", [
        f"paths.output_dir={out_dir}", f"out_dir={out_dir}", f"faces_dir={faces_dir}",
        f"methods.swap.checkpoint={ckpt}", f"methods.partial.checkpoint={ckpt}", f"samples={SAMPLES}".replace("'", ""),
        "shard_size=16", "audit_samples=32", "contact_faces=4", "max_out_of_frame=1.0", "perturb.share=0.5",
        *extra])


@pytest.fixture(scope="session")
def small_dataset(small_faces, tiny_swapper_ckpt, tmp_path_factory) -> dict:
    """A factory dataset made from the small face store (all methods, perturbations on half)."""
    from factory.dataset.generate import run

    out = tmp_path_factory.mktemp("gen") / "a"
    stats = run(generate_cfg(small_faces["dir"], out, tiny_swapper_ckpt), progress=False)
    return {"dir": out, "stats": stats, "faces": small_faces, "ckpt": tiny_swapper_ckpt}


@pytest.fixture(scope="session")
def full_image_dataset(small_faces, tiny_swapper_ckpt, tmp_path_factory) -> dict:
    """The small dataset made with `output=both`: every sample also pasted back into its target's photo."""
    from factory.dataset.generate import run

    out = tmp_path_factory.mktemp("gen_images") / "a"
    stats = run(generate_cfg(small_faces["dir"], out, tiny_swapper_ckpt, *FULL_IMAGE), progress=False)
    return {"dir": out, "stats": stats, "faces": small_faces, "ckpt": tiny_swapper_ckpt}


FULL_IMAGE = ("output=both", "image.max_upscale=3.0")


def swap_batch(items: list[dict]):
    """(faces, a flipped view of each, their soft face masks) of loaded faces: a swapper training batch."""
    import numpy as np
    import torch

    from factory.common.masks import face_mask
    from factory.ingest.facedata import decode, to_tensor

    x = torch.stack([to_tensor(decode(it["jpg"])) for it in items])
    masks = torch.stack([torch.from_numpy(face_mask(np.asarray(it["meta"]["landmarks"]), x.shape[-1]))[None]
                         for it in items])
    return x, x.flip(3), masks

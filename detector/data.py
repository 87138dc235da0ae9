"""Factory shards as a streaming detector dataset (webdataset), with albumentations augmentation.

Online fakes (`online_share`): reals of the train split also become fresh self-blended or warp-blended
fakes while the detector trains (`OnlineFakes`), mixed with the stored fakes.

Train-on-subset: `methods` / `perturbations` keep only fakes of those methods and samples with those
perturbation types (reals always stay, subject to the perturbation filter), so cross-method
generalisation can be measured by training on one method and testing on the others.
"""
from __future__ import annotations

import json
import random

import albumentations as A
import cv2
import numpy as np
import pytorch_lightning as pl
import torch
import webdataset as wds
from torch.utils.data import DataLoader

from factory.common.shards import split_urls
from factory.dataset.perturbations import PERTURBATIONS
from factory.ingest.facedata import to_tensor


class TightCropPad(A.ImageOnlyTransform):
    """What a tight input crop (FaceForensics++, DFDC, Celeb-DF style) becomes after the factory's
    alignment: a box around the face kept, the rest of the canonical crop filled by reflection. Trained
    on both classes alike, so the padding cannot become a real/fake cue."""

    def __init__(self, keep: tuple[float, float] = (0.55, 0.85), p: float = 0.3):
        super().__init__(p=p)
        self.keep = tuple(keep)

    def get_params(self) -> dict:
        r = self.py_random
        return {"keep": r.uniform(*self.keep), "aspect": r.uniform(1.0, 1.25), "dx": r.uniform(-0.04, 0.04),
                "dy": r.uniform(-0.04, 0.04)}

    def apply(self, img: np.ndarray, keep: float, aspect: float, dx: float, dy: float, **params) -> np.ndarray:
        h, w = img.shape[:2]
        bw, bh = max(2, int(round(w * keep))), max(2, min(h, int(round(h * keep * aspect))))
        x0 = int(np.clip(round(w * (0.5 + dx) - bw / 2), 0, w - bw))
        y0 = int(np.clip(round(h * (0.55 + dy) - bh / 2), 0, h - bh))  # the face centre sits a little low
        return cv2.copyMakeBorder(np.ascontiguousarray(img[y0:y0 + bh, x0:x0 + bw]), y0, h - y0 - bh, x0, w - x0 - bw,
                                  cv2.BORDER_REFLECT_101)


def train_augment(strength: float = 1.0, tight_crop: float = 0.0, degrade: float = 0.0,
                  reframe: float = 0.0) -> A.Compose:
    """Flips, small shifts, colour jitter and mild blur/JPEG — never enough to change the label — and,
    with probability `tight_crop`, the reflect padding a tight input crop gets at alignment; with
    probability `reframe`, the framing of a face aligned from other landmarks (MTCNN re-detecting an
    aligned face puts it ~5 % higher and ~6 % larger, ± 6 %), so a face's place in the crop is no cue;
    with probability `degrade`, one of the factory's perturbations (any type, level 1–5) on top."""
    return A.Compose([
        TightCropPad(p=tight_crop),
        A.Affine(scale=(0.88, 1.12), translate_percent=(-0.08, 0.08), rotate=(-6, 6), border_mode=cv2.BORDER_REFLECT_101,
                 p=reframe),
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.95, 1.05), translate_percent=(-0.03, 0.03), rotate=(-5, 5), border_mode=cv2.BORDER_REFLECT_101,
                 p=0.5 * strength),
        A.ColorJitter(0.15, 0.15, 0.15, 0.02, p=0.5 * strength),
        A.OneOf([A.GaussianBlur(sigma_limit=(0.2, 0.8), blur_limit=0), A.ImageCompression(quality_range=(60, 95))],
                p=0.3 * strength),
        A.OneOf([make(level) for make in PERTURBATIONS.values() for level in range(1, 6)], p=degrade),
    ])


def keep(meta: dict, methods=None, perturbations=None, exclude=None, sources=None) -> bool:
    """Whether a sample belongs to the requested subset (`exclude`: methods whose fakes are left out,
    e.g. the held-out method of a leave-one-method-out run; `sources`: only faces whose background
    (target) comes from these sources, both classes — the training half of a cross-source split)."""
    if sources and meta.get("target_dataset") not in sources:
        return False
    if methods and meta["label"] == 1 and meta["method"] not in methods:
        return False
    if exclude and meta["label"] == 1 and meta["method"] in exclude:
        return False
    if perturbations and meta["perturbation"]["type"] not in perturbations:
        return False
    return True


def shard_dataset(root: str, split: str, methods=None, perturbations=None, transform=None, shuffle: int = 0,
                  seed: int = 0, epoch_samples: int | None = None, online: OnlineFakes | None = None, exclude=None,
                  sources=None):
    """(face tensor, label, metadata) stream of one split; split across ranks and DataLoader workers;
    `online` adds fakes made on the fly from the stream's reals (train only)."""
    urls = split_urls(root, split)
    if epoch_samples:  # several ranks: each draws shards at random and stops after its share (no rank starves)
        ds = wds.WebDataset(urls, resampled=True, seed=seed, empty_check=False, nodesplitter=None)
    else:
        ds = wds.WebDataset(urls, shardshuffle=len(urls) if shuffle else False, seed=seed, empty_check=False,
                            nodesplitter=wds.split_by_node, workersplitter=wds.split_by_worker)
    if shuffle:
        ds = ds.shuffle(shuffle, rng=random.Random(seed))
    ds = ds.decode("rgb8").to_tuple("jpg", "json").select(lambda s: keep(s[1], methods, perturbations, exclude, sources))
    if online is not None:
        if split != "train":
            raise ValueError("online fakes are made from train reals only")
        ds = ds.compose(online)

    def prep(sample):
        image, meta = sample
        if transform is not None:
            image = transform(image=image)["image"]
        return to_tensor(image), torch.tensor(float(meta["label"])), meta

    ds = ds.map(prep)
    if epoch_samples:
        ds = ds.with_epoch(epoch_samples)
    return ds


class OnlineFakes:
    """Fresh fakes made from the train split's reals while the detector trains (SBI's recipe): after a
    real face, with probability `share`, a fake made from it — `self_blend` (the face blended with a
    jittered copy of itself) or `warp_blend` (another train real's face warped onto it). The randomness
    is drawn from (seed, sample key), and the data module's seed changes every epoch, so each epoch sees
    new fakes while the same seed replays the same ones. Only train-split reals ever enter."""

    def __init__(self, share: float = 0.5, methods: tuple[str, ...] = ("self_blend", "warp_blend"), seed: int = 0):
        from factory.dataset.mesh_methods import SBI
        from factory.dataset.methods import SelfBlend, WarpBlend

        known = {"self_blend": SelfBlend(), "warp_blend": WarpBlend(), "sbi": SBI()}
        if not 0 <= share <= 1 or not methods or any(m not in known for m in methods):
            raise ValueError(f"online fakes: share in [0, 1] and methods among {sorted(known)} (got {share}, {methods})")
        self.share, self.seed, self.methods = share, seed, {m: known[m] for m in methods}

    def __call__(self, stream):
        import zlib

        from factory.dataset.methods import Pair
        from factory.ingest.faces import template

        donors = []  # recent train reals: other people's faces for warp_blend
        for image, meta in stream:
            yield image, meta
            if meta["label"] != 0 or meta["split"] != "train":
                continue
            rng = np.random.default_rng((self.seed, zlib.crc32(meta["key"].encode())))
            if rng.random() < self.share:
                name = list(self.methods)[rng.integers(len(self.methods))]
                others = [d for d in donors if d[1]["target_id"] != meta["target_id"]]
                if name == "warp_blend" and not others:
                    name = "self_blend"
                source, smeta = others[rng.integers(len(others))] if name == "warp_blend" else (image, meta)
                lm = template(image.shape[0]).astype(np.float32)  # every crop is aligned on the canonical template
                fake = self.methods[name]([Pair(image, source, lm, lm, rng)])[0][0]
                yield fake, {**meta, "key": meta["key"] + f"_online_{name}", "label": 1, "method": f"online_{name}",
                             "source_id": smeta["target_id"], "source_key": smeta["target_key"]}
            donors = (donors + [(image, meta)])[-16:]


def collate(batch):
    images, labels, metas = zip(*batch)
    return torch.stack(images), torch.stack(labels), list(metas)


class ShardDataModule(pl.LightningDataModule):
    def __init__(self, root: str, methods=None, perturbations=None, batch_size: int = 64, num_workers: int = 1,
                 shuffle: int = 2000, augment_strength: float = 1.0, seed: int = 0, online_share: float = 0.0,
                 online_methods: tuple[str, ...] = ("self_blend", "warp_blend"), tight_crop: float = 0.0, degrade: float = 0.0,
                 exclude_methods=None, reframe: float = 0.0, sources=None):
        super().__init__()
        if isinstance(exclude_methods, str):
            exclude_methods = [exclude_methods]
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        """Count the subset's training samples (metadata only) so epochs and LR schedules have a length."""
        hp = self.hparams
        if getattr(self, "train_count", None) is None:
            ds = wds.WebDataset(split_urls(hp.root, "train"), shardshuffle=False, empty_check=False)
            metas = [m for m in (json.loads(s["json"]) for s in ds) if keep(m, hp.methods, hp.perturbations, hp.exclude_methods, hp.sources)]
            self.train_count = len(metas)
            # each real is followed by an online fake with probability online_share (expected count)
            self.train_count += int(round(hp.online_share * sum(m["label"] == 0 for m in metas)))
            if self.train_count == 0:
                raise ValueError(f"no training samples in {hp.root} for methods={hp.methods} "
                                 f"perturbations={hp.perturbations} exclude_methods={hp.exclude_methods}")

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        world = self.trainer.world_size if self.trainer else 1
        epoch = self.trainer.current_epoch if self.trainer else 0
        online = OnlineFakes(hp.online_share, tuple(hp.online_methods), hp.seed + epoch) if hp.online_share else None
        ds = shard_dataset(hp.root, "train", hp.methods, hp.perturbations, train_augment(hp.augment_strength, hp.tight_crop, hp.degrade, hp.reframe),
                           hp.shuffle, hp.seed + epoch, self.train_count // world if world > 1 else None, online,
                           hp.exclude_methods, hp.sources)
        ds = ds.with_length(self.train_count // world)
        return DataLoader(ds, batch_size=hp.batch_size, num_workers=hp.num_workers, collate_fn=collate,
                          persistent_workers=False)

    def val_dataloader(self) -> DataLoader:
        hp = self.hparams
        ds = shard_dataset(hp.root, "val", hp.methods, hp.perturbations, exclude=hp.exclude_methods, sources=hp.sources)
        return DataLoader(ds, batch_size=hp.batch_size, num_workers=0, collate_fn=collate)

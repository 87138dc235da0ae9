"""Prepared faces as PyTorch datasets: shard reading, identity labels, albumentations augmentation."""
from __future__ import annotations

import json
from collections import Counter
from typing import Sequence

import albumentations as A
import cv2
import numpy as np
import pytorch_lightning as pl
import torch
import webdataset as wds
from torch.utils.data import DataLoader, Dataset

from factory.shards import split_urls


def load_faces(faces_dir: str, split: str, sources: Sequence[str] | None = None,
               min_per_identity: int = 1) -> list[dict]:
    """Undecoded faces of one split (`jpg` bytes + `meta`), in shard order, optionally filtered."""
    items = []
    for sample in wds.WebDataset(split_urls(faces_dir, split), shardshuffle=False, empty_check=False):
        meta = json.loads(sample["json"])
        if sources is None or meta["source"] in sources:
            items.append({"jpg": sample["jpg"], "meta": meta})
    counts = Counter(it["meta"]["identity"] for it in items)
    return [it for it in items if counts[it["meta"]["identity"]] >= min_per_identity]


def decode(jpg: bytes) -> np.ndarray:
    """JPEG bytes → HxWx3 uint8 RGB."""
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 → 3xHxW float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def train_loader(dataset: Dataset, batch_size: int, num_workers: int) -> DataLoader:
    """Shuffled, full-batch training loader (workers kept alive across epochs)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=num_workers,
                      persistent_workers=num_workers > 0)


def identity_augment(strength: float = 1.0) -> A.Compose:
    """Identity-preserving training augmentation: flips, small similarity jitter, colour, blur, JPEG."""
    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.93, 1.07), translate_percent=(-0.04, 0.04), rotate=(-8, 8), border_mode=cv2.BORDER_REFLECT_101,
                 p=0.7 * strength),
        A.ColorJitter(0.3, 0.3, 0.25, 0.03, p=0.7 * strength),
        A.ToGray(p=0.05 * strength),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.Downscale(scale_range=(0.4, 0.8))], p=0.25 * strength),
        A.ImageCompression(quality_range=(40, 95), p=0.3 * strength),
    ])


class FaceDataset(Dataset):
    """(face tensor, integer label) pairs from loaded faces; labels index `classes`."""

    def __init__(self, items: list[dict], classes: list[str] | None = None, transform: A.BasicTransform | None = None):
        self.items, self.transform = items, transform
        self.classes = classes if classes is not None else sorted({it["meta"]["identity"] for it in items})
        self.index = {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        image = decode(self.items[i]["jpg"])
        if self.transform is not None:
            image = self.transform(image=image)["image"]
        return to_tensor(image), self.index.get(self.items[i]["meta"]["identity"], -1)


class IdentityDataModule(pl.LightningDataModule):
    """Train split identities (with at least `min_per_identity` faces) for the margin classifier; val
    split faces for held-out verification AUC."""

    def __init__(self, faces_dir: str, sources: Sequence[str] | None = ("celeba-wild", "celeba-aligned"),
                 min_per_identity: int = 2, batch_size: int = 128, num_workers: int = 2,
                 augment_strength: float = 1.0, val_limit: int | None = 3000):
        super().__init__()
        self.save_hyperparameters()
        self.faces_dir, self.sources = faces_dir, list(sources) if sources else None
        self.num_classes = 0

    def setup(self, stage: str | None = None) -> None:
        if self.num_classes:
            return
        hp = self.hparams
        train = load_faces(self.faces_dir, "train", self.sources, hp.min_per_identity)
        if not train:
            raise RuntimeError(f"no training faces with >= {hp.min_per_identity} per identity in {self.faces_dir}")
        self.train_set = FaceDataset(train, transform=identity_augment(hp.augment_strength))
        self.num_classes = len(self.train_set.classes)
        val = load_faces(self.faces_dir, "val", self.sources, 2)[: hp.val_limit]
        self.val_set = FaceDataset(val)

    def train_dataloader(self) -> DataLoader:
        return train_loader(self.train_set, self.hparams.batch_size, self.hparams.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256, num_workers=0)

    def val_identities(self) -> list[str]:
        return [it["meta"]["identity"] for it in self.val_set.items]


def view_augment() -> A.Compose:
    """A second view of the same face when no other photo of the person exists: flip, small pose and
    colour changes — enough that the discriminator's real pair is never two identical images."""
    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.95, 1.05), translate_percent=(-0.03, 0.03), rotate=(-6, 6), border_mode=cv2.BORDER_REFLECT_101,
                 p=1.0),
        A.ColorJitter(0.2, 0.2, 0.2, 0.02, p=0.8),
    ])


class PairedViewDataset(Dataset):
    """(face, another view of the same person, the face's soft mask): another photo of that identity when
    there is one (seeded per index and epoch), else an augmented copy. The mask is the swap method's
    blend mask (`factory.methods.swap_mask`: the face mesh's hull, or the ellipse), flipped with the face."""

    def __init__(self, items: list[dict], seed: int = 0, flip: bool = True, mask: str = "mesh"):
        self.items, self.seed, self.mask = items, seed, mask
        self.flip = A.HorizontalFlip(p=0.5) if flip else None
        self.view = view_augment()
        self.by_id: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            self.by_id.setdefault(it["meta"]["identity"], []).append(i)

    def __len__(self) -> int:
        return len(self.items)

    def face(self, i: int) -> torch.Tensor:
        """Face i as stored (3xHxW in [0, 1])."""
        return to_tensor(decode(self.items[i]["jpg"]))

    def __getitem__(self, i: int):
        from factory.methods import swap_mask

        # torch.initial_seed() differs per epoch inside DataLoader workers (and is seeded), so each
        # epoch draws other views while the same seed replays the same run
        rng = np.random.default_rng((self.seed, torch.initial_seed() % 2**63, i))
        image = decode(self.items[i]["jpg"])
        mask = swap_mask(image, np.asarray(self.items[i]["meta"]["landmarks"], np.float32), self.mask)
        others = [j for j in self.by_id[self.items[i]["meta"]["identity"]] if j != i]
        if others:
            view = decode(self.items[others[rng.integers(len(others))]]["jpg"])
        else:
            view = self.view(image=image)["image"]
        if self.flip is not None and rng.random() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        return to_tensor(image), to_tensor(view), torch.from_numpy(np.ascontiguousarray(mask))[None]


class SwapDataModule(pl.LightningDataModule):
    """Train-split faces (all sources: any face can lend texture or identity) with a second view each;
    a fixed set of val faces, one per person, for validation figures and sample grids."""

    def __init__(self, faces_dir: str, sources: Sequence[str] | None = None, batch_size: int = 32,
                 num_workers: int = 1, val_faces: int = 256, seed: int = 0, mask: str = "mesh"):
        super().__init__()
        self.save_hyperparameters()
        self.train_set = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        sources = list(hp.sources) if hp.sources else None
        self.train_set = PairedViewDataset(load_faces(hp.faces_dir, "train", sources), hp.seed, mask=hp.mask)
        val = load_faces(hp.faces_dir, "val", sources, min_per_identity=2)
        picks, seen = [], set()
        for it in val:  # one face per person, so a grid shows different identities
            if it["meta"]["identity"] not in seen:
                seen.add(it["meta"]["identity"])
                picks.append(it)
        self.val_set = PairedViewDataset(picks[: hp.val_faces], hp.seed, flip=False, mask=hp.mask)

    def train_dataloader(self) -> DataLoader:
        return train_loader(self.train_set, self.hparams.batch_size, self.hparams.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.batch_size, num_workers=0)

"""Training data of the identity encoder: identity-labelled train faces with identity-preserving
augmentation, and held-out val faces for verification."""
from __future__ import annotations

from typing import Sequence

import albumentations as A
import cv2
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from factory.ingest.facedata import FaceDataset, load_faces, train_loader


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


class WithTargets(Dataset):
    """A face dataset whose items also carry a precomputed target (the teacher's embedding of the face)."""

    def __init__(self, faces: FaceDataset, targets: torch.Tensor):
        if len(faces) != len(targets):
            raise ValueError(f"{len(targets)} targets for {len(faces)} faces")
        self.faces, self.targets, self.items = faces, targets, faces.items

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int):
        return (*self.faces[i], self.targets[i])


class IdentityDataModule(pl.LightningDataModule):
    """Train split identities (with at least `min_per_identity` faces) for the margin classifier; val
    split faces for held-out verification AUC. `unlabelled: true` adds every other train face of the store
    (other sources, and people with too few faces) with label −1, for the distillation term only."""

    def __init__(self, faces_dir: str, sources: Sequence[str] | None = ("celeba-wild", "celeba-aligned"),
                 min_per_identity: int = 2, batch_size: int = 128, num_workers: int = 2,
                 augment_strength: float = 1.0, val_limit: int | None = 3000, unlabelled: bool = False):
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
        classes = sorted({it["meta"]["identity"] for it in train})
        if hp.unlabelled:  # every other train face: identities outside `classes` get label −1
            labelled = {it["meta"]["key"] for it in train}
            train = train + [it for it in load_faces(self.faces_dir, "train") if it["meta"]["key"] not in labelled]
        self.train_set = FaceDataset(train, classes, transform=identity_augment(hp.augment_strength))
        self.num_classes = len(self.train_set.classes)
        val = load_faces(self.faces_dir, "val", self.sources, 2)[: hp.val_limit]
        self.val_set = FaceDataset(val)

    def attach_targets(self, targets: torch.Tensor) -> None:
        """Train batches become (faces, labels, targets): `targets` row i belongs to `train_set.items[i]`."""
        self.train_set = WithTargets(getattr(self.train_set, "faces", self.train_set), targets)

    def train_dataloader(self) -> DataLoader:
        return train_loader(self.train_set, self.hparams.batch_size, self.hparams.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256, num_workers=0)

    def val_identities(self) -> list[str]:
        return [it["meta"]["identity"] for it in self.val_set.items]

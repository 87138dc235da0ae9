"""Training data of the swapper: each face with another view of the same person and its blend mask."""
from __future__ import annotations

from typing import Sequence

import albumentations as A
import cv2
import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from factory.common.face_mesh import swap_mask
from factory.ingest.facedata import decode, load_faces, to_tensor, train_loader


def view_augment() -> A.Compose:
    """A second view of the same face when no other photo of the person exists: flip, small pose and
    colour changes — enough that the discriminator's real pair is never two identical images."""
    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.95, 1.05), translate_percent=(-0.03, 0.03), rotate=(-6, 6), border_mode=cv2.BORDER_REFLECT_101,
                 p=1.0),
        A.ColorJitter(0.2, 0.2, 0.2, 0.02, p=0.8),
    ])


def flip_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """5 landmarks (eyes, nose, mouth corners in image order) of the horizontally mirrored image."""
    out = landmarks.copy()
    out[:, 0] = width - 1 - out[:, 0]
    return out[[1, 0, 2, 4, 3]]


class PairedViewDataset(Dataset):
    """(face, another view of the same person, the face's soft mask, its 5 landmarks in its pixels —
    for the cross-identity graphics target): another photo of that identity when
    there is one (seeded per index and epoch), else an augmented copy. The mask is the swap method's
    blend mask (`factory.common.face_mesh.swap_mask`: the face mesh's hull, or the ellipse), flipped with the face."""

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
        landmarks = np.asarray(self.items[i]["meta"]["landmarks"], np.float32)
        if self.flip is not None and rng.random() < 0.5:
            image, mask, landmarks = image[:, ::-1], mask[:, ::-1], flip_landmarks(landmarks, image.shape[1])
        return (to_tensor(image), to_tensor(view), torch.from_numpy(np.ascontiguousarray(mask))[None],
                torch.from_numpy(landmarks))


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

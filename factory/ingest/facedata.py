"""The prepared face store as data: shard reading, decoding, labelled face datasets and loaders."""
from __future__ import annotations

import json
from collections import Counter
from typing import Sequence

import albumentations as A
import cv2
import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, Dataset

from factory.common.shards import split_urls


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


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """B x 3 x H x W float in [0, 1] → B x H x W x 3 uint8 (rounded): `to_tensor`'s inverse, batched."""
    return (x.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def train_loader(dataset: Dataset, batch_size: int, num_workers: int) -> DataLoader:
    """Shuffled, full-batch training loader (workers kept alive across epochs)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=num_workers,
                      persistent_workers=num_workers > 0)


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

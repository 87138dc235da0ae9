"""Writing and indexing WebDataset shards: atomic per-shard files, timm-style `_info.json` index."""
from __future__ import annotations

import io
import json
from typing import Iterable

import numpy as np
import webdataset as wds
from PIL import Image

from factory.common import storage

FIXED_MTIME = 0.0  # reproducible tar bytes: same samples → same shard file


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an RGB uint8 array: the one encoder every real and fake goes through."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, subsampling=0, optimize=False)
    return buf.getvalue()


def dump_json(obj) -> bytes:
    """Canonical JSON bytes (sorted keys) so metadata is byte-stable across runs."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_shard(path: str, samples: Iterable[dict]) -> int:
    """Write samples (dicts of `__key__` and bytes fields) to `path` atomically; return the count.

    The tar is written under a temporary name and renamed (or uploaded in one piece) when complete,
    so a killed run never leaves a half shard that looks finished. `path` may be a URL.
    """
    n = 0
    with storage.atomic_open(path, "wb") as f:
        with wds.TarWriter(f, mtime=FIXED_MTIME, encoder=False) as writer:
            for sample in samples:
                writer.write(sample)
                n += 1
    return n


def atomic_write_json(path: str, obj) -> None:
    """Write JSON atomically (a path or an object-store URL)."""
    storage.write_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def write_index(root: str, name: str, shard_counts: dict[str, list[tuple[str, int]]], **extra) -> dict:
    """Write `<root>/_info.json` in the format timm's wds reader reads (filenames relative to root)."""
    info = {"name": name, **extra, "splits": {}}
    for split, shards in shard_counts.items():
        shards = [(f, c) for f, c in shards if c > 0]
        info["splits"][split] = {"name": split, "num_samples": sum(c for _, c in shards),
                                 "filenames": [f for f, _ in shards], "shard_lengths": [c for _, c in shards]}
    atomic_write_json(storage.join(root, "_info.json"), info)
    return info


def read_index(root: str) -> dict:
    """The `_info.json` of a shard folder, with a clear error when it is missing."""
    path = storage.join(root, "_info.json")
    if not storage.exists(path):
        raise FileNotFoundError(f"no shard index at {path}: run the stage that writes {root} first")
    return json.loads(storage.read_bytes(path))


def split_urls(root: str, split: str) -> list[str]:
    """Absolute shard paths of one split, from the index."""
    info = read_index(root)
    if split not in info["splits"]:
        raise KeyError(f"split {split!r} not in {root}/_info.json (has {sorted(info['splits'])})")
    return [storage.join(root, f) for f in info["splits"][split]["filenames"]]


def iter_samples(root: str, split: str, decode: bool = True):
    """Plain-webdataset iteration over a split in shard order: dicts with `jpg` (RGB array) and `json`."""
    urls = split_urls(root, split)
    if not urls:
        return iter(())
    ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    if decode:
        ds = ds.decode("rgb8")
    return iter(ds)


def remove_partials(root: str) -> int:
    """Delete leftovers of a killed run (`*.part`); return how many."""
    parts = storage.find(root, ".part") if storage.exists(root) else []
    for p in parts:
        storage.remove(p)
    return len(parts)

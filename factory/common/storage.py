"""Paths or URLs, one API: shards and reports live on a local disk or in object storage (fsspec; `s3://`
through s3fs — endpoint and keys from the usual `AWS_*` / `FSSPEC_S3_*` environment variables).

Writes are atomic on both: a local file is written as `<name>.part` and renamed; an object is uploaded
from a finished local temporary file in one PUT (or one completed multipart upload), so it appears
whole or not at all. webdataset reads `s3://…` (and any fsspec URL) through a registered `gopen` scheme.
"""
from __future__ import annotations

import io
import os
import posixpath
import tempfile
from contextlib import contextmanager
from typing import Callable

import fsspec
from webdataset.gopen import gopen_schemes


def is_url(path: str) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def join(root: str, *parts: str) -> str:
    return posixpath.join(str(root), *parts) if is_url(root) else os.path.join(str(root), *parts)


def filesystem(path: str):
    """(fsspec filesystem, path inside it); listings are not cached, so a resumed run sees fresh state."""
    fs, inner = fsspec.core.url_to_fs(str(path))
    fs.invalidate_cache()
    return fs, inner


def exists(path: str) -> bool:
    if not is_url(path):
        return os.path.exists(path)
    fs, inner = filesystem(path)
    return fs.exists(inner)


def makedirs(path: str) -> None:
    if not is_url(path):
        os.makedirs(path, exist_ok=True)  # object stores have no folders to make


def listdir(path: str) -> list[str]:
    """Names (not paths) in a folder; empty when it does not exist."""
    if not is_url(path):
        return sorted(os.listdir(path)) if os.path.isdir(path) else []
    fs, inner = filesystem(path)
    try:
        return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(inner, detail=False))
    except FileNotFoundError:
        return []


def read_bytes(path: str) -> bytes:
    if not is_url(path):
        with open(path, "rb") as f:
            return f.read()
    fs, inner = filesystem(path)
    return fs.cat_file(inner)


def find(root: str, suffix: str) -> list[str]:
    """Every path under `root` ending in `suffix` (recursive), as paths or URLs like `root`."""
    if not is_url(root):
        return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(suffix))
    fs, inner = filesystem(root)
    protocol = str(root).split("://", 1)[0]
    return sorted(f"{protocol}://{p}" for p in fs.find(inner) if p.endswith(suffix))


def remove(path: str) -> None:
    if not is_url(path):
        os.remove(path)
    else:
        fs, inner = filesystem(path)
        fs.rm_file(inner)


@contextmanager
def atomic_open(path: str, mode: str = "wb"):
    """A file handle whose content lands at `path` only when the block finishes without error."""
    if not is_url(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = path + ".part"
        with open(tmp, mode) as f:
            yield f
        os.replace(tmp, path)
        return
    with tempfile.NamedTemporaryFile(mode, suffix=".part", delete=False) as f:
        tmp = f.name
        try:
            yield f
        except BaseException:
            f.close()
            os.remove(tmp)
            raise
    try:
        fs, inner = filesystem(path)
        fs.put_file(tmp, inner)  # one PUT / one completed multipart upload: all or nothing
    finally:
        os.remove(tmp)


def write_bytes(path: str, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def save_with(path: str, save: Callable[[io.BytesIO], None]) -> None:
    """Write what `save(buffer)` writes (e.g. a PIL or matplotlib figure save) atomically to `path`."""
    buf = io.BytesIO()
    save(buf)
    write_bytes(path, buf.getvalue())


def _gopen_fsspec(url: str, mode: str = "rb", bufsize: int = 8192, **kw):
    return fsspec.open(url, mode).open()


for _scheme in ("s3", "gcs", "az", "abfs", "memory"):
    gopen_schemes.setdefault(_scheme, _gopen_fsspec)

"""Returning freed heap memory to the OS between units of work in long jobs."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_free_memory() -> bool:
    """Hand the free pages of glibc's heaps back to the OS (`malloc_trim(0)`); False where there is no glibc.

    A factory shard allocates batches whose sizes vary with the shard's method mix; glibc keeps the freed
    holes, so without this the resident size creeps up shard after shard (measured in docs/dataset.md)."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False

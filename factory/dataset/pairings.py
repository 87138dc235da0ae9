"""Pairings: which source (identity donor) goes with each target (texture donor), always within one
split and always across identities. Built from `conf/pairing/`; each returns, per target, a source
index into the split's face pool and whether it had to fall back to a random pick."""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

import numpy as np


class Pairing:
    name = "pairing"

    def prepare(self, metas: list[dict], embed: Callable[[list[int]], np.ndarray]) -> None:
        """Index the split's faces (`embed(indices)` gives unit identity embeddings on demand)."""
        self.metas = metas
        self.identities = np.array([m["identity"] for m in metas])
        self.by_identity: dict[str, list[int]] = defaultdict(list)
        for i, ident in enumerate(self.identities):
            self.by_identity[ident].append(i)

    def random_other(self, target: int, rng: np.random.Generator) -> int:
        if len(self.by_identity) < 2:
            raise ValueError("cross-identity pairs need at least two identities in the split")
        while True:
            j = int(rng.integers(len(self.metas)))
            if self.identities[j] != self.identities[target]:
                return j

    def pick(self, target: int, rng: np.random.Generator) -> tuple[int, bool]:
        raise NotImplementedError


class RandomPairing(Pairing):
    """Uniformly random face of another identity (FaceForensics++'s random pairs)."""

    name = "random"

    def pick(self, target: int, rng: np.random.Generator) -> tuple[int, bool]:
        return self.random_other(target, rng), False


class HardPairing(Pairing):
    """A face of one of the `k` identities most similar to the target's (mean identity embeddings):
    the hardest swaps to spot by identity, as look-alike casting does."""

    name = "hard"

    def __init__(self, k: int = 5):
        self.k = k

    def prepare(self, metas, embed):
        super().prepare(metas, embed)
        self.names = sorted(self.by_identity)
        emb = embed(list(range(len(metas))))
        centres = np.stack([emb[self.by_identity[n]].mean(0) for n in self.names])
        centres /= np.linalg.norm(centres, axis=1, keepdims=True) + 1e-8
        sim = centres @ centres.T
        np.fill_diagonal(sim, -np.inf)
        k = min(self.k, len(self.names) - 1)
        # rounded so that tiny float differences between machines/ranks cannot reorder neighbours
        self.neighbours = np.argsort(-np.round(sim, 4), axis=1, kind="stable")[:, :k]
        self.row = {n: i for i, n in enumerate(self.names)}

    def pick(self, target, rng):
        near = self.neighbours[self.row[self.identities[target]]]
        faces = self.by_identity[self.names[near[rng.integers(len(near))]]]
        return faces[rng.integers(len(faces))], False


class AttributePairing(Pairing):
    """Same gender and age band where labels exist (UTKFace); targets without labels, or without a
    matching other person, fall back to a random pick (counted as `pairing_fallback`)."""

    name = "attribute"

    def __init__(self, age_band: int = 10):
        self.age_band = age_band

    def _group(self, meta: dict):
        if meta.get("gender", "") == "" or meta.get("age", -1) < 0:
            return None
        return meta["gender"], meta["age"] // self.age_band

    def prepare(self, metas, embed):
        super().prepare(metas, embed)
        self.groups: dict[tuple, list[int]] = defaultdict(list)
        for i, m in enumerate(metas):
            g = self._group(m)
            if g is not None:
                self.groups[g].append(i)

    def pick(self, target, rng):
        g = self._group(self.metas[target])
        members = self.groups.get(g, []) if g is not None else []
        for _ in range(20):
            if not members:
                break
            j = members[rng.integers(len(members))]
            if self.identities[j] != self.identities[target]:
                return j, False
        return self.random_other(target, rng), True

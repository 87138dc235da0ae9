"""Identity-disjoint train/val/test splits."""
from __future__ import annotations

import random
from collections import defaultdict
from typing import Iterable


def split_identities(identities: Iterable[str], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Assign each identity to one split, stratified by namespace (`ns:id`), seeded and order-free.

    Every person lands in exactly one split, so no face of a test person is ever trained on.
    """
    total = sum(fractions.values())
    if total <= 0 or any(v < 0 for v in fractions.values()):
        raise ValueError(f"split fractions must be non-negative and sum > 0, got {dict(fractions)}")
    groups: dict[str, list[str]] = defaultdict(list)
    for ident in sorted(set(identities)):
        groups[ident.split(":", 1)[0]].append(ident)
    out = {}
    for ns, members in sorted(groups.items()):
        random.Random(f"{seed}:{ns}").shuffle(members)
        bounds, acc = [], 0.0
        for name, frac in fractions.items():
            acc += frac / total
            bounds.append((name, round(acc * len(members))))
        start = 0
        for name, end in bounds:
            for ident in members[start:end]:
                out[ident] = name
            start = end
    return out

"""Face sources: folders of images with identities from a labels file, sub-folders, or one per file."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

LABEL_PARSERS: dict[str, Callable[[str], dict]] = {}


def register_label_parser(name: str):
    """Register a file-name → attributes parser (raise ValueError for a malformed name)."""
    def deco(fn):
        LABEL_PARSERS[name] = fn
        return fn
    return deco


@register_label_parser("utkface")
def parse_utkface(filename: str) -> dict:
    """`<age>_<gender>_<race>_<date>.jpg.chip.jpg` → age, gender, race."""
    m = re.fullmatch(r"(\d{1,3})_([01])_([0-4])_\d+\.jpg\.chip\.jpg", filename)
    if not m:
        raise ValueError(f"expected <age>_<gender>_<race>_<date>.jpg.chip.jpg, got {filename}")
    age, gender, race = (int(g) for g in m.groups())
    return {"age": age, "gender": ["male", "female"][gender],
            "race": ["white", "black", "asian", "indian", "other"][race]}


@dataclass(frozen=True)
class FaceInput:
    """One input file and what is known about it before decoding."""

    path: str
    source: str
    file: str  # relative to the source root: provenance
    identity: str | None
    cropped: bool
    attrs: dict = field(default_factory=dict, hash=False, compare=False)
    skip: tuple[str, str] | None = None  # (reason, detail) known before decoding
    max_out_of_frame: float | None = None  # per-source override of the alignment's limit

    @property
    def key(self) -> str:
        """WebDataset key: unique, no dots (webdataset splits extensions at the first dot)."""
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", self.file)
        return f"{self.source}_{stem}"


class FolderSource:
    """A folder of face images.

    Identity comes from `identities` (lines `<file> <id>`; files not listed are skipped as
    unknown_identity), else from the first sub-folder (`<identity>/<image>`), else each file is its
    own person. Identities are namespaced (`namespace:id`) so sets that share people (both CelebA
    folders) share the namespace and stay on one side of every split. `max_out_of_frame` lets
    tightly pre-cropped sets (UTKFace) keep faces whose canonical crop reaches past the photo.
    """

    def __init__(self, name: str, root: str, identities: str | None = None, namespace: str | None = None,
                 labels: str | None = None, cropped: bool = False, limit: int | None = None,
                 max_out_of_frame: float | None = None):
        if labels is not None and labels not in LABEL_PARSERS:
            raise ValueError(f"source {name}: unknown labels parser {labels!r}; known: {sorted(LABEL_PARSERS)}")
        self.name, self.root, self.identities_file = name, Path(root), identities
        self.namespace = namespace or name
        self.labels, self.cropped, self.limit = labels, cropped, limit
        self.max_out_of_frame = max_out_of_frame

    def files(self) -> list[str]:
        """Every regular file under the root (relative, sorted); hidden files are ignored."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"source {self.name}: folder {self.root} does not exist "
                                    f"(set paths.data_dir or $SWAP_FACTORY_DATA)")
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel_dir = os.path.relpath(dirpath, self.root)
            out += [os.path.normpath(os.path.join(rel_dir, f)) for f in filenames if not f.startswith(".")]
        out.sort()
        return out[: self.limit] if self.limit else out

    def _identity_map(self) -> dict[str, str] | None:
        if not self.identities_file:
            return None
        table = {}
        with open(self.identities_file) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    table[parts[0]] = parts[1]
        return table

    def inputs(self) -> list[FaceInput]:
        """All inputs of this source, with identity and parsed labels or a pre-decode skip."""
        table = self._identity_map()
        out = []
        for rel in self.files():
            skip, attrs, ident = None, {}, None
            if table is not None:
                raw = table.get(rel, table.get(os.path.basename(rel)))
                ident = f"{self.namespace}:{raw}" if raw is not None else None
                if raw is None:
                    skip = ("unknown_identity", "not in identities file")
            elif os.sep in rel:
                ident = f"{self.namespace}:{rel.split(os.sep)[0]}"
            else:
                ident = f"{self.namespace}:{os.path.splitext(rel)[0]}"
            if self.labels and skip is None:
                try:
                    attrs = LABEL_PARSERS[self.labels](os.path.basename(rel))
                except ValueError as e:
                    skip = ("malformed_name", str(e))
            out.append(FaceInput(str(self.root / rel), self.name, rel, ident, self.cropped, attrs, skip,
                                 self.max_out_of_frame))
        return out

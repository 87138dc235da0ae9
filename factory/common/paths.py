"""Repository-relative paths, file fingerprints and the OmegaConf resolvers the configs use."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from omegaconf import OmegaConf

REPO_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_ROOT / "conf"
# the output root, as conf/paths has it (`paths.output_dir`): $SWAP_FACTORY_OUT, else outputs/ in the checkout
OUTPUT_ROOT = Path(os.environ.get("SWAP_FACTORY_OUT") or REPO_ROOT / "outputs")


def register_resolvers() -> None:
    """Register `${repo_root:}` so configs name paths relative to the checkout, never absolute."""
    if not OmegaConf.has_resolver("repo_root"):
        OmegaConf.register_new_resolver("repo_root", lambda: str(REPO_ROOT))


def sha256_file(path: str) -> str:
    """The sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def portable(path: str, roots: dict[str, str] | None = None) -> str:
    """`path` as it may be written for others (cards, indexes, manifests, reports): relative to the first of
    `roots` (name → folder) that holds it, as `{name}/rest`; else relative to the checkout; else its file
    name alone. URLs (`s3://…`) are kept, they name no machine's disk."""
    text = str(path)
    if not text or "://" in text:
        return text
    full = Path(text).resolve()
    for name, root in (roots or {}).items():
        if root and "://" not in str(root) and full.is_relative_to(Path(root).resolve()):
            rest = full.relative_to(Path(root).resolve()).as_posix()
            return f"{{{name}}}" + (f"/{rest}" if rest != "." else "")
    if full.is_relative_to(REPO_ROOT):
        return full.relative_to(REPO_ROOT).as_posix()
    return full.name


def portable_tree(node, roots: dict[str, str] | None = None):
    """`node` (dicts, lists, scalars) with every absolute path string made `portable`."""
    if isinstance(node, dict):
        return {k: portable_tree(v, roots) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [portable_tree(v, roots) for v in node]
    if isinstance(node, str) and node.startswith("/"):
        return portable(node, roots)
    return node

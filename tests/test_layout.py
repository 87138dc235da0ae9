"""The layout shows the architecture: one package per stage, and imports point one way —
pipelines → stages → common; a stage imports only earlier stages; detectors read shards (common, and
the dataset's methods for on-the-fly fakes), never the identity or swapper internals."""
import ast
from pathlib import Path

import pytest

from factory.common.paths import REPO_ROOT

ORDER = ["common", "ingest", "identity", "swapper", "dataset"]


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "factory" and parts[1] in ORDER else None


MODULES = sorted(p for d in ("factory", "detector") for p in (REPO_ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_imports_point_one_way(path):
    rel = path.relative_to(REPO_ROOT).with_suffix("")
    imports = _imports(path)
    assert not any(m.split(".")[0] in ("pipelines", "tests", "benchmarks") for m in imports)
    if rel.parts[0] == "detector":
        assert not {_stage(m) for m in imports} & {"identity", "swapper"}, sorted(imports)
        return
    if len(rel.parts) < 3:  # factory/__init__.py
        return
    own = ORDER.index(rel.parts[1])
    later = {m for m in imports if _stage(m) and ORDER.index(_stage(m)) > own}
    assert not later, f"{rel} imports a later stage: {sorted(later)}"


def test_every_stage_package_says_what_it_holds():
    import importlib

    for stage in ORDER:
        doc = importlib.import_module(f"factory.{stage}").__doc__
        assert doc and len(doc.split()) > 15, stage
    assert not [p.name for p in (REPO_ROOT / "factory").glob("*.py") if p.name != "__init__.py"]  # no flat modules

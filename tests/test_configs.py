"""Every primary config composes, with every option of every config group it uses (as in
lightning-hydra-template); `_target_`s resolve to importable objects."""
from pathlib import Path

import pytest
from hydra.utils import get_class, get_method
from omegaconf import DictConfig, ListConfig, OmegaConf

from factory.common.paths import CONF_DIR
from tests.compose import compose_config as _compose

PRIMARY = sorted(p.stem for p in Path(CONF_DIR).glob("*.yaml"))
GROUPS = sorted(p.name for p in Path(CONF_DIR).iterdir() if p.is_dir() and p.name != "hydra")


def _targets(node):
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield node["_target_"]
        for v in node.values():
            yield from _targets(v)
    elif isinstance(node, ListConfig):
        for v in node:
            yield from _targets(v)


def _cases():
    for name in PRIMARY:
        yield name, ()
        used = [g for g in GROUPS if f"- {g}:" in (Path(CONF_DIR) / f"{name}.yaml").read_text()]
        for group in used:
            for option in sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml")):
                yield name, (f"{group}={option}",)


@pytest.mark.parametrize("name,overrides", list(_cases()), ids=lambda v: str(v))
def test_config_composes_and_targets_import(name, overrides):
    cfg = _compose(name, overrides)
    OmegaConf.resolve(cfg)  # every interpolation resolves (paths, env defaults)
    assert cfg.paths.data_dir and cfg.paths.output_dir
    for target in _targets(cfg):
        try:
            get_class(target)
        except Exception:  # noqa: BLE001 - functions are targets too
            get_method(target)


def test_there_are_primary_configs_for_every_pipeline():
    pipelines = {p.stem for p in (Path(CONF_DIR).parent / "pipelines").glob("*.py") if p.stem != "__init__"}
    assert pipelines <= set(PRIMARY), pipelines - set(PRIMARY)


def test_data_root_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("SWAP_FACTORY_DATA", str(tmp_path))
    cfg = _compose("prepare")
    assert cfg.data.sources["celeba-wild"].root == f"{tmp_path}/celeba-wild/images"


def test_no_absolute_path_in_any_config():
    import re

    for path in Path(CONF_DIR).rglob("*.yaml"):
        for line in path.read_text().splitlines():
            value = line.split("#")[0]
            assert not re.search(r":\s*['\"]?/\w", value), f"{path.name}: {line}"

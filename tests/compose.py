"""The project's Hydra configs composed as a pipeline would compose them (one helper for every test)."""
from __future__ import annotations

from hydra import compose, initialize_config_dir

from factory.common.paths import CONF_DIR


def compose_config(name: str, overrides=()):
    """Primary config `name` with command-line style `overrides`, outside any Hydra app."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))

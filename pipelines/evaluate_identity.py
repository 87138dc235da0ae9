"""python -m pipelines.evaluate_identity: held-out verification / identification report for an encoder."""
import json
import os

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

import pipelines
from factory.common.paths import CONF_DIR
from factory.identity.evaluation import evaluate_identity


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate_identity")
@pipelines.refusing
def main(cfg: DictConfig) -> dict:
    encoder = instantiate(cfg.identity)
    name = type(encoder).__name__
    report = evaluate_identity(encoder, cfg.faces_dir, os.path.join(cfg.out_dir, name), list(cfg.sources),
                               cfg.pairs, cfg.impostors, cfg.seed, name)
    print(json.dumps({k: report[k] for k in ("encoder", "test_identities", "verification", "identification")}, indent=1))
    return report


if __name__ == "__main__":
    main()

"""python -m pipelines.generate: the factory — pairings × methods × perturbations → labelled shards."""
import hydra
from omegaconf import DictConfig

import pipelines
from factory.common.paths import CONF_DIR
from factory.dataset.generate import run, summary_text


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="generate")
@pipelines.refusing
def main(cfg: DictConfig) -> dict:
    stats = run(cfg)
    if stats:
        print(summary_text(stats))
    return stats


if __name__ == "__main__":
    main()

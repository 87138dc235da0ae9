"""python -m pipelines.prepare: ingest face folders into aligned, identity-disjoint shards."""
import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

import pipelines
from factory.common.paths import CONF_DIR
from factory.ingest.prepare import prepare, summary_text


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="prepare")
@pipelines.refusing
def main(cfg: DictConfig) -> dict:
    report = prepare(list(instantiate(cfg.data.sources).values()), cfg.out_dir, instantiate(cfg.align), dict(cfg.splits),
                     seed=cfg.seed, shard_size=cfg.shard_size, workers=cfg.workers, contact_faces=cfg.contact_faces)
    print(summary_text(report))
    print(f"shards, index, report.json and contact_sheet.png in {cfg.out_dir}")
    return report


if __name__ == "__main__":
    main()

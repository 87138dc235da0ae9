"""python -m pipelines.train_identity: train the margin-loss identity encoder (claim 3)."""
import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import pipelines
from factory.common.paths import CONF_DIR
from factory.common.training import fit
from factory.identity.training import teacher_targets


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train_identity")
@pipelines.refusing
def main(cfg: DictConfig) -> dict:
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    module = instantiate(cfg.identity_model, num_classes=datamodule.num_classes, _convert_="all")
    if module.teacher is not None and cfg.get("teacher_cache", True):  # the teacher embeds each face once
        datamodule.attach_targets(teacher_targets(module.teacher, datamodule.train_set.items, cfg.out_dir))
    result = fit(module, datamodule, cfg.trainer, cfg.out_dir, monitor="val/auc", seed=cfg.seed,
                 init_from=cfg.get("init_from"))
    print(OmegaConf.to_yaml(result))
    return result


if __name__ == "__main__":
    main()

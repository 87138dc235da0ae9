"""python -m pipelines.train_detector: train a timm swap detector on the factory's shards."""
import json
import os

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping

import pipelines
from detector.adapters import export
from factory.common.paths import CONF_DIR
from factory.common.training import fit


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train_detector")
@pipelines.refusing
def main(cfg: DictConfig) -> dict:
    datamodule = instantiate(cfg.data, _convert_="all")
    module = instantiate(cfg.module, model=OmegaConf.to_container(cfg.detector_model, resolve=True),
                         _recursive_=False, _convert_="all")
    stop = EarlyStopping("val/auc", mode="max", patience=cfg.early_stopping.patience,
                         min_delta=cfg.early_stopping.min_delta)
    result = fit(module, datamodule, cfg.trainer, cfg.out_dir, monitor="val/auc", seed=cfg.seed, callbacks=[stop],
                 init_from=cfg.init_from)
    if cfg.export and os.path.exists(result["best_checkpoint"]):
        folder = os.path.dirname(result["best_checkpoint"])
        export(result["best_checkpoint"], os.path.join(folder, "model.pt"), os.path.join(folder, "model.onnx"))
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

"""python -m pipelines.train_generator: train the swapper (texture encoder, decoder, discriminator)."""
import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import pipelines  # noqa: F401
from factory.paths import CONF_DIR
from factory.training import fit


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train_generator")
def main(cfg: DictConfig) -> dict:
    datamodule = instantiate(cfg.data, _convert_="all")
    module = instantiate(cfg.swapper, identity=OmegaConf.to_container(cfg.identity, resolve=True), _recursive_=False,
                         _convert_="all")
    result = fit(module, datamodule, cfg.trainer, cfg.out_dir, monitor="val/id_cos", seed=cfg.seed)
    print(OmegaConf.to_yaml(result))
    return result


if __name__ == "__main__":
    main()

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
    figures = {k: report[k] for k in ("encoder", "test_identities", "verification", "identification")}
    print(json.dumps(figures, indent=1))
    if cfg.get("ship_dir"):  # identity=trained: the evaluated file ships with these figures
        from factory.common.model_files import choose
        from factory.identity.shipped import ship_identity

        if "load_trained_encoder" not in cfg.identity.get("_target_", ""):
            raise SystemExit("ship_dir= ships the trained encoder: use identity=trained")
        path = choose(cfg.identity.checkpoint, cfg.identity.trained, cfg.identity.fallback, "identity encoder")
        figures["data"] = f"{cfg.sources} [test]"
        print(json.dumps({k: v for k, v in ship_identity(path, cfg.ship_dir, figures).items() if k != "figures"}, indent=1, default=str))
    return report


if __name__ == "__main__":
    main()

"""python -m pipelines.train_generator: train the swapper (texture encoder, decoder, discriminator),
then evaluate it on held-out identities with a judge it never trained against.
`eval.swapper=weights/swapper.pt` (or a run's .ckpt) evaluates that swapper on the current store, untrained."""
import json
import os

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import pipelines
from factory.common.paths import CONF_DIR
from factory.common.training import fit
from factory.common.graphics import warp_blend_faces
from factory.swapper.evaluation import evaluate_swapper, summary_table
from factory.swapper.training import load_swapper
from factory.swapper.shipped import ship_swapper


def _evaluate(cfg: DictConfig, checkpoint: str) -> dict:
    """The swapper at `checkpoint` (.ckpt or shipped weights) on held-out pairs, judged by `cfg.judge` (and,
    flagged, the encoder it trained against)."""
    swapper = load_swapper(checkpoint)
    judge = instantiate(cfg.judge)
    judges = {judge.name: judge}
    if cfg.eval.report_training_encoder:  # shown beside the judge, never counted as one
        judges[swapper.identity.name] = swapper.identity
    return evaluate_swapper(swapper, judges, cfg.paths.faces_dir, os.path.join(cfg.out_dir, "eval"), cfg.eval.pairs,
                            cfg.eval.seed, cfg.eval.jpeg_quality, trained_against=swapper.identity.name,
                            mask=cfg.data.get("mask", "mesh"), baselines={"warp_blend": warp_blend_faces},
                            checkpoint=os.path.basename(checkpoint))


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train_generator")
@pipelines.refusing
def main(cfg: DictConfig) -> dict:
    if not isinstance(cfg.judge, DictConfig):
        raise ValueError(f"judge={cfg.judge!r} is not an encoder config: choose it with identity@judge=dlib|sface|trained")
    if OmegaConf.to_container(cfg.identity) == OmegaConf.to_container(cfg.judge):
        raise ValueError("judge must differ from identity: a swapper judged by the encoder it trained against "
                         "learns to fool it (set judge=... to the other encoder)")
    if cfg.eval.swapper:  # evaluate given weights on the current store, without training
        report = _evaluate(cfg, cfg.eval.swapper)
        print(summary_table(report))
        return {"eval": report}
    datamodule = instantiate(cfg.data, _convert_="all")
    module = instantiate(cfg.swapper, identity=OmegaConf.to_container(cfg.identity, resolve=True), _recursive_=False,
                         _convert_="all")
    result = fit(module, datamodule, cfg.trainer, cfg.out_dir, monitor="val/id_cos", seed=cfg.seed,
                 init_from=cfg.init_from)
    if cfg.eval.checkpoint not in ("best", "last"):
        raise ValueError(f"eval.checkpoint={cfg.eval.checkpoint!r}: best (by the training encoder's val cosine) or last")
    checkpoint = result["best_checkpoint"] if cfg.eval.checkpoint == "best" else \
        os.path.join(cfg.out_dir, "checkpoints", "last.ckpt")
    eval_dir = os.path.join(cfg.out_dir, "eval")
    report_path = os.path.join(eval_dir, "swap_report.json")
    report = None
    if os.path.exists(report_path) and os.path.getmtime(report_path) > os.path.getmtime(checkpoint):
        with open(report_path) as f:
            report = json.load(f)
        if report.get("checkpoint") != os.path.basename(checkpoint):  # another checkpoint's figures
            report = None
    if report is None:
        report = _evaluate(cfg, checkpoint)
    print(summary_table(report))
    if cfg.ship_dir:  # the measured checkpoint becomes the repository's shipped swapper
        data = {"faces_dir": os.path.relpath(cfg.paths.faces_dir, cfg.paths.output_dir), "sources": cfg.data.sources,
                "batch_size": cfg.data.batch_size, "seed": cfg.seed}
        ship_swapper(checkpoint, cfg.ship_dir, report, result, data,
                     os.path.join(eval_dir, "swap_grid.png"))
        print(f"shipped to {cfg.ship_dir}")
    return {**result, "eval": report}


if __name__ == "__main__":
    main()

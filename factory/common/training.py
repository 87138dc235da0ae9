"""One way to run Lightning training for every stage: checkpoints, resume, CSV logs, progress bar."""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, Timer
from pytorch_lightning.loggers import CSVLogger


def fit(module: pl.LightningModule, datamodule: pl.LightningDataModule, trainer_cfg: DictConfig | dict, out_dir: str,
        monitor: str, mode: str = "max", seed: int = 0, callbacks: list | None = None,
        init_from: str | None = None) -> dict[str, Any]:
    """Train with checkpoints in `<out_dir>/checkpoints` (best by `monitor`, and last); a rerun resumes
    from `last.ckpt`, and a finished run (`done.json`) is reused without training. The best checkpoint
    is copied to `best.ckpt` so later stages name one fixed file. `init_from` (shipped weights, read by
    the module's `load_shipped`) seeds a run that has no `last.ckpt` yet."""
    pl.seed_everything(seed, workers=True)
    ckpt_dir = os.path.join(out_dir, "checkpoints")
    done = os.path.join(ckpt_dir, "done.json")
    trainer_desc = OmegaConf.to_container(trainer_cfg, resolve=True) if isinstance(trainer_cfg, DictConfig) else trainer_cfg
    config = json.dumps({"trainer": trainer_desc,
                         "module": dict(module.hparams), "data": dict(getattr(datamodule, "hparams", {})),
                         "monitor": monitor, "seed": seed, **({"init_from": init_from} if init_from else {})},
                        sort_keys=True, default=str)
    fingerprint = hashlib.sha256(config.encode()).hexdigest()
    if os.path.exists(done):  # the same run finished before: reuse it (a changed config resumes instead)
        with open(done) as f:
            previous = json.load(f)
        if previous.get("config_sha256") == fingerprint:
            print(f"{out_dir}: training with this config already finished, reusing {ckpt_dir}/best.ckpt")
            return previous
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="epoch{epoch:03d}", monitor=monitor, mode=mode,
                           save_last=True, auto_insert_metric_name=False)
    trainer: pl.Trainer = instantiate(trainer_cfg, callbacks=[best, LearningRateMonitor("epoch"), *(callbacks or [])],
                                      logger=CSVLogger(out_dir, name="logs", version=0), default_root_dir=out_dir)
    last = os.path.join(ckpt_dir, "last.ckpt")
    if init_from and not os.path.exists(last):
        module.load_shipped(init_from)
    trainer.fit(module, datamodule=datamodule, ckpt_path=last if os.path.exists(last) else None)
    # a time-boxed stop (max_time) or an interrupt ends between validations: keep that state as last.ckpt
    # so a resumed run continues from where this one stopped, not from the last validation
    trainer.save_checkpoint(last)
    best_path = best.best_model_path or last
    if trainer.is_global_zero and best_path and os.path.exists(best_path):
        shutil.copyfile(best_path, os.path.join(ckpt_dir, "best.ckpt"))
    score = best.best_model_score
    timer = trainer_timer(trainer)  # counts across resumes
    result = {"best_checkpoint": os.path.join(ckpt_dir, "best.ckpt"),
              "best_score": float(score) if score is not None else None,
              "epochs": trainer.current_epoch, "steps": trainer.global_step, "config_sha256": fingerprint,
              "train_seconds": round(timer.time_elapsed("train"), 1) if timer else None}
    if trainer.is_global_zero and not trainer.interrupted:
        with open(done, "w") as f:
            json.dump(result, f, indent=1)
    return result


def warmup_cosine(step: int, warmup: int, total: int, floor: float = 0.01, used: float = 0.0) -> float:
    """LR factor: linear warm-up over `warmup` steps, then cosine decay to `floor`. `used` (the share of
    a time box spent, see `time_used`) moves the decay on when time, not steps, ends the run first."""
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, max((step - warmup) / max(1, total - warmup), used))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


def trainer_timer(trainer: pl.Trainer) -> Timer | None:
    """Lightning's `Timer` callback of `trainer` (present when `max_time` is set), if any."""
    return next((c for c in trainer.callbacks if isinstance(c, Timer)), None)


def run_facts(path: str, blob: dict, network_key: str, data_path_key: str) -> dict:
    """What a manifest records of the run behind a model file: recipe (the hyper-parameters but the network's
    config, `network_key`), data (with `data_path_key` made portable), training seconds, steps, and the files
    it continued (with theirs), so the CPU hours behind shipped weights add up across machines. Shipped
    weights carry their own manifest, which says it."""
    from factory.common.paths import portable

    if "hyper_parameters" not in blob:
        return {k: v for k, v in blob.get("manifest", {}).items() if k not in ("file", "sha256", "bytes", "figures", "config")}
    own = checkpoint_train_seconds(blob)
    lineage = blob.get("lineage", [])
    before = sum(e.get("train_seconds") or 0.0 for e in lineage[-1:])  # the last entry's total includes its own lineage
    hp, data = blob["hyper_parameters"], blob.get("datamodule_hyper_parameters", {})
    return {"data": {k: (portable(v) if k == data_path_key else v) for k, v in data.items()},
            "recipe": {k: v for k, v in hp.items() if k != network_key}, "train_seconds": own,
            "total_train_seconds": round((own or 0.0) + before, 1), "epochs": blob.get("epoch"),
            "steps": blob.get("global_step"), "history": lineage, "source_checkpoint": os.path.basename(path)}


def continued_lineage(path: str, facts: dict) -> list[dict]:
    """The lineage of a run started from the model file `path` (`init_from`): the file's own, then the file."""
    from factory.common.paths import sha256_file

    return [*facts.get("history", []), {"file": os.path.basename(path), "sha256": sha256_file(path),
                                        "train_seconds": facts.get("total_train_seconds")}]


def checkpoint_train_seconds(checkpoint: dict) -> float | None:
    """Training seconds the `Timer` callback state in a Lightning checkpoint counted (across resumes), if any."""
    timer = next((v for k, v in (checkpoint.get("callbacks") or {}).items() if str(k).startswith("Timer")), {})
    return round(timer.get("time_elapsed", {}).get("train", 0.0), 1) or None


def time_used(trainer: pl.Trainer) -> float:
    """Share of the trainer's `max_time` spent so far (0 without a time box), across resumes; taken from
    rank 0 so every rank steps with the same learning rate."""
    timer = trainer_timer(trainer)
    if timer is None or timer.time_remaining() is None:
        return 0.0
    elapsed = timer.time_elapsed()
    return float(trainer.strategy.broadcast(min(1.0, elapsed / max(1e-9, elapsed + timer.time_remaining()))))

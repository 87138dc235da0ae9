"""Lightning module that trains a `TimmEncoder` with a margin head (claim 3) and scores held-out pairs.

Beside the margin loss on identity-labelled faces, `w_distill` adds embedding distillation towards a frozen
pretrained recogniser (`teacher`, e.g. dlib) on every face of the batch, labelled or not (label −1): the
student's embedding, linearly projected to the teacher's size, is pulled to the teacher's by cosine.
The teacher's embeddings of the un-augmented faces can be computed once (`teacher_targets`, cached) and ride
in the batch as a third element; without them the teacher embeds each augmented batch. `w_margin=0` trains
by distillation alone."""
from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from factory.common.training import warmup_cosine
from factory.identity.encoders import MarginHead, TimmEncoder
from factory.identity.verification import make_pairs, pair_scores, verification_metrics


class IdentityModule(pl.LightningModule):
    """Encoder + ArcFace/CosFace head; validation logs `val/auc` on val-split identities never trained on."""

    def __init__(self, encoder: dict, num_classes: int, margin: dict, lr: float = 0.1, momentum: float = 0.9,
                 weight_decay: float = 5e-4, warmup_epochs: int = 1, teacher: dict | None = None,
                 w_distill: float = 0.0, w_margin: float = 1.0):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = TimmEncoder(**encoder)
        self.head = MarginHead(self.encoder.embedding_dim, num_classes, **margin)
        self.teacher, self.project = None, None
        if w_distill > 0:
            if not teacher:
                raise ValueError("w_distill > 0 needs a teacher recogniser, e.g. teacher={_target_: factory.identity.DlibEncoder}")
            from hydra.utils import instantiate

            self.teacher = instantiate(teacher).eval().requires_grad_(False)
            self.project = torch.nn.Linear(self.encoder.embedding_dim, self.teacher.embedding_dim, bias=False)
        self._val_emb: list[torch.Tensor] = []
        self.lineage: list[dict] = []  # the encoder files this run continued (init_from), oldest first

    def load_shipped(self, path: str) -> None:
        """Start the encoder from an identity file — shipped (`weights/identity.pt`) or a run's `.ckpt` — for
        `train_identity init_from=`; the margin head starts anew (its classes are this run's)."""
        from factory.common.model_files import ModelFileError, read_weights
        from factory.common.training import continued_lineage
        from factory.identity.shipped import run_facts

        blob = read_weights(path)
        try:
            self.encoder.load_state_dict(encoder_in(path, blob).state_dict())
        except RuntimeError as e:
            raise ModelFileError(path, f"an encoder of another shape than this run's ({str(e).splitlines()[-1].strip()[:120]})") from None
        self.lineage = continued_lineage(path, run_facts(path, blob))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["lineage"] = self.lineage

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.lineage = checkpoint.get("lineage", [])

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.encoder(faces)

    def state_dict(self, *args, **kwargs):
        """Without the frozen teacher: it ships in its own package, checkpoints need not carry it."""
        state = super().state_dict(*args, **kwargs)
        for k in [k for k in state if k.startswith("teacher.")]:
            del state[k]
        return state

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        if self.teacher is not None:  # the teacher comes from its package, not from the checkpoint
            state_dict = {**{f"teacher.{k}": v for k, v in self.teacher.state_dict().items()}, **state_dict}
        return super().load_state_dict(state_dict, strict=strict, **kwargs)

    def losses(self, faces: torch.Tensor, labels: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The margin loss on the labelled faces (label ≥ 0) and the distillation loss on all of them, towards
        `target` (the teacher's embeddings, precomputed) or the teacher's embedding of `faces`."""
        emb = self.encoder(faces)
        out = {}
        known = labels >= 0
        if self.hparams.w_margin > 0 and known.any():
            logits = self.head(emb[known], labels[known])
            out["margin"] = F.cross_entropy(logits, labels[known])
            out["acc"] = (logits.argmax(1) == labels[known]).float().mean()
        if self.teacher is not None:
            if target is None:
                with torch.no_grad():
                    target = self.teacher.eval()(faces)
            out["distill"] = (1 - F.cosine_similarity(self.project(emb), target, dim=1)).mean()
        return out

    def training_step(self, batch, _):
        faces, labels, *target = batch
        parts = self.losses(faces, labels, target[0] if target else None)
        hp = self.hparams
        loss = hp.w_margin * parts.get("margin", faces.new_zeros(())) + hp.w_distill * parts.get("distill", faces.new_zeros(()))
        self.log("train/loss", loss, prog_bar=True)
        self.log_dict({f"train/{k}": v for k, v in parts.items()}, prog_bar=True)
        return loss

    def validation_step(self, batch, _):
        self._val_emb.append(self.encoder(batch[0]).cpu())

    def on_validation_epoch_end(self):
        emb = torch.cat(self._val_emb).numpy() if self._val_emb else np.zeros((0, 1))
        self._val_emb.clear()
        dm = self.trainer.datamodule
        ids = dm.val_identities() if dm is not None else []
        if len(emb) != len(ids) or len(set(ids)) < 2:  # sanity-check runs see a partial set
            return
        pairs, labels = make_pairs(ids, 3000, 3000, seed=0)
        metrics = verification_metrics(pair_scores(emb, pairs), labels)
        self.log("val/auc", metrics["auc"], prog_bar=True, sync_dist=True)
        self.log("val/tar_at_far_1e-2", metrics["tar_at_far_1e-2"], sync_dist=True)

    def configure_optimizers(self):
        hp = self.hparams
        decay = [p for n, p in self.named_parameters() if p.ndim > 1 and p.requires_grad]
        no_decay = [p for n, p in self.named_parameters() if p.ndim <= 1 and p.requires_grad]
        opt = torch.optim.SGD([{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay, "weight_decay": 0}],
                              lr=hp.lr, momentum=hp.momentum, nesterov=True)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warm = int(total * hp.warmup_epochs / max(1, self.trainer.max_epochs))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, warm, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def teacher_targets(teacher: torch.nn.Module, items: list[dict], cache_dir: str, batch_size: int = 64) -> torch.Tensor:
    """The frozen teacher's embeddings of the un-augmented faces `items` (store items), computed once and
    cached in `cache_dir` under the teacher's name and a hash of the faces' keys."""
    import hashlib
    import os

    from factory.ingest.facedata import decode, to_tensor

    keys = "\n".join(it["meta"]["key"] for it in items)
    name = f"teacher_{type(teacher).__name__}_{hashlib.sha256(keys.encode()).hexdigest()[:16]}.pt"
    path = os.path.join(cache_dir, name)
    if os.path.exists(path):
        return torch.load(path, weights_only=True)
    teacher = teacher.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(items), batch_size):
            out.append(teacher(torch.stack([to_tensor(decode(it["jpg"])) for it in items[i:i + batch_size]])))
    targets = torch.cat(out) if out else torch.zeros(0, teacher.embedding_dim)
    os.makedirs(cache_dir, exist_ok=True)
    torch.save(targets, path + ".part")
    os.replace(path + ".part", path)
    return targets


def load_trained_encoder(checkpoint: str | None = None, trained: str | None = None,
                         fallback: str | None = None) -> TimmEncoder:
    """The frozen, eval-mode encoder of an `IdentityModule` checkpoint or of shipped weights
    (`weights/identity.pt`): the file named, else the local training output, else the shipped one."""
    from factory.common.model_files import choose, read_weights

    path = choose(checkpoint, trained, fallback, "identity encoder") if (trained or fallback) else checkpoint
    return encoder_in(path, read_weights(path, "run `python -m pipelines.train_identity` or choose identity=dlib"))


def encoder_in(path: str, blob: dict) -> TimmEncoder:
    """The frozen encoder in `blob`, the content of `path`: an `IdentityModule` checkpoint or shipped weights."""
    from factory.common.model_files import ModelFileError, expect_state
    from factory.identity.shipped import shipped_encoder

    if "hyper_parameters" not in blob:
        return shipped_encoder(path, blob)
    state = expect_state(path, blob, "identity encoder", "encoder.")
    module = IdentityModule(**{**blob["hyper_parameters"], "w_distill": 0.0})  # the encoder alone: no teacher
    state = {k: v for k, v in state.items() if not k.startswith("project.")}
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise ModelFileError(path, f"weights do not fit this identity encoder ({str(e).splitlines()[-1].strip()[:120]})") from None
    return module.encoder.eval().requires_grad_(False)

"""Lightning training of a swap detector: binary cross-entropy, AdamW + cosine, val AUC picks the checkpoint.

Fine-tuning a pretrained backbone: `head_only_steps` trains the new classifier alone first (the backbone's
learning rate is 0 until then), and `backbone_lr` scales the backbone's learning rate against the head's."""
from __future__ import annotations


import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torchmetrics.classification import BinaryAUROC


class DetectorModule(pl.LightningModule):
    def __init__(self, model: dict, lr: float = 1e-3, weight_decay: float = 0.05, warmup_steps: int = 100,
                 backbone_lr: float = 1.0, head_only_steps: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.model = instantiate(model)
        self.val_auc = BinaryAUROC()  # synchronised across ranks by torchmetrics
        self.lineage: list[dict] = []  # the detector files this run continued (init_from), oldest first

    def load_shipped(self, path: str) -> None:
        """Start from a detector file's weights — shipped (`weights/detector.pt`) or a run's `.ckpt` —
        for `train_detector init_from=`; the file's own lineage and an entry for it are kept."""
        from detector.shipped import load_detector, run_facts
        from factory.common.model_files import ModelFileError, read_weights
        from factory.common.training import continued_lineage

        blob = read_weights(path)
        source = load_detector(path, blob)
        if (source.backbone_name, source.input_size) != (self.model.backbone_name, self.model.input_size):
            raise ModelFileError(path, f"a {source.backbone_name} at {source.input_size} px; this run trains a "
                                       f"{self.model.backbone_name} at {self.model.input_size} px")
        self.model.load_state_dict(source.state_dict())
        self.lineage = continued_lineage(path, run_facts(path, blob))  # the file's own lineage and CPU seconds

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["lineage"] = self.lineage

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.lineage = checkpoint.get("lineage", [])

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.model(faces)

    def training_step(self, batch, _):
        x, y, _ = batch
        logits = self(x)
        loss = F.binary_cross_entropy_with_logits(logits, y)
        acc = ((logits > 0).float() == y).float().mean()
        self.log_dict({"train/loss": loss, "train/acc": acc}, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, _):
        x, y, _ = batch
        logits = self(x)
        self.val_auc.update(logits, y.long())
        self.log("val/loss", F.binary_cross_entropy_with_logits(logits, y), prog_bar=True, batch_size=len(y),
                 sync_dist=True)

    def on_validation_epoch_end(self):
        self.log("val/auc", self.val_auc.compute(), prog_bar=True)
        self.val_auc.reset()

    def configure_optimizers(self):
        from factory.common.training import time_used, warmup_cosine

        hp = self.hparams
        head = {id(p) for p in self.model.head_parameters()}
        groups = [{"params": [p for p in self.parameters() if id(p) not in head], "lr": hp.lr * hp.backbone_lr},
                  {"params": [p for p in self.parameters() if id(p) in head], "lr": hp.lr}]
        opt = torch.optim.AdamW(groups, lr=hp.lr, weight_decay=hp.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches)) if self.trainer else 1
        warmup = min(hp.warmup_steps, total // 4)

        def schedule(s: int, frozen: int = 0) -> float:
            # the cosine ends where the run ends: at max_epochs, or at max_time if the time box comes first
            if s < frozen:
                return 0.0
            return warmup_cosine(s - frozen, warmup, max(1, total - frozen), used=time_used(self.trainer))

        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, [lambda s: schedule(s, hp.head_only_steps), lambda s: schedule(s)])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

"""Lightning training of a swap detector: binary cross-entropy, AdamW + cosine, val AUC picks the checkpoint."""
from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torchmetrics.classification import BinaryAUROC


class DetectorModule(pl.LightningModule):
    def __init__(self, model: dict, lr: float = 1e-3, weight_decay: float = 0.05, warmup_steps: int = 100):
        super().__init__()
        self.save_hyperparameters()
        self.model = instantiate(model)
        self.val_auc = BinaryAUROC()  # synchronised across ranks by torchmetrics

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
        opt = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches)) if self.trainer else 1
        warmup = min(hp.warmup_steps, total // 4)
        # the cosine ends where the run ends: at max_epochs, or at max_time if the time box comes first
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, warmup, total, used=time_used(self.trainer)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

"""One tiny training run of the swapper on real faces lowers the losses it should, and its checkpoint
reloads to identical swaps."""
import numpy as np
import pytest
import torch

from factory.facedata import decode, load_faces, to_tensor

pytestmark = pytest.mark.slow


def test_tiny_training_steps_reduce_losses(small_faces, tmp_path):
    import pytorch_lightning as pl

    from factory.swapper_module import SwapperModule

    items = load_faces(str(small_faces["dir"]), "train", ["celeba-wild"])[:8]
    x = torch.stack([to_tensor(decode(it["jpg"])) for it in items])
    view = torch.flip(x, dims=[3])  # a second view of each person
    module = SwapperModule({"_target_": "factory.identity.DlibEncoder"}, size=64, width=8, disc_width=8,
                           lr_g=1e-3, lr_d=1e-4)
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, view), batch_size=8)
    logs = []

    class Grab(pl.Callback):
        def on_train_batch_end(self, trainer, *_):
            logs.append({k: float(v) for k, v in trainer.callback_metrics.items()})

    trainer = pl.Trainer(max_epochs=25, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, callbacks=[Grab()])
    trainer.fit(module, loader)
    first, last = logs[0], logs[-1]
    assert last["train/rec_l1"] < 0.7 * first["train/rec_l1"], (first, last)
    assert np.mean([r["train/id_loss"] for r in logs[-3:]]) < np.mean([r["train/id_loss"] for r in logs[:3]])
    assert last["train/d_loss"] > 0.05  # the discriminator has not won outright

    ckpt = tmp_path / "swapper.ckpt"
    trainer.save_checkpoint(ckpt)
    reloaded = SwapperModule.load_from_checkpoint(ckpt, map_location="cpu").swapper
    b = torch.roll(x, 1, 0)
    torch.testing.assert_close(reloaded.swap(x, b), module.swapper.swap(x, b), rtol=0, atol=0)

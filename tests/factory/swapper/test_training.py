"""One tiny training run of the swapper on real faces lowers the losses it should, its checkpoint
reloads to identical swaps, shipped weights rebuild it (and become its lineage), and the identity loss
is differentiable and seeded."""
import numpy as np
import pytest
import torch

from factory.ingest.facedata import load_faces
from tests.conftest import swap_batch


def test_transformed_identity_loss_is_differentiable_and_seeded():
    from factory.identity.encoders import DlibEncoder
    from factory.swapper.networks import FaceSwapper
    from factory.swapper.training import identity_augment, identity_loss

    torch.manual_seed(0)
    sw = FaceSwapper(DlibEncoder(), size=64, width=8)
    faces = torch.rand(4, 3, 64, 64)
    sw.calibrate(faces)
    source = sw.centred(sw.identity(torch.rand(4, 3, 64, 64)))
    augment = identity_augment()
    swap = faces.clone().requires_grad_(True)
    torch.manual_seed(1)
    loss, _ = identity_loss(sw, swap, source, augment, copies=2)
    loss.backward()
    assert swap.grad is not None and swap.grad.abs().sum() > 0
    torch.manual_seed(1)
    again, _ = identity_loss(sw, swap, source, augment, copies=2)
    torch.manual_seed(2)
    other, _ = identity_loss(sw, swap, source, augment, copies=2)
    assert float(again) == pytest.approx(float(loss), abs=1e-6)  # same seed, same transforms
    assert abs(float(other) - float(loss)) > 1e-6  # another seed draws other transforms
    assert 0 <= float(loss) <= 2


def test_feature_moments_loss_separates_real_from_degraded_faces(small_faces):
    """On real faces the moments loss is zero against themselves, grows when one set is blurred, and
    passes gradients to the degraded set's pixels only through the recogniser."""
    import torchvision.transforms.functional as TF

    from factory.identity.encoders import DlibEncoder
    from factory.ingest.facedata import decode, to_tensor
    from factory.swapper.networks import FaceSwapper
    from factory.swapper.training import RunningMoments, feature_moments_loss

    items = load_faces(str(small_faces["dir"]), "train")[:16]
    faces = torch.nn.functional.interpolate(torch.stack([to_tensor(decode(it["jpg"])) for it in items]), size=64,
                                            mode="bilinear", antialias=True, align_corners=False)
    sw = FaceSwapper(DlibEncoder(), size=64, width=8)
    sw.calibrate(faces)
    real = sw.identity_features(faces)
    assert float(feature_moments_loss(real, real)) == pytest.approx(0.0, abs=1e-8)
    blurred = TF.gaussian_blur(faces, 9, 2.5).requires_grad_(True)
    loss = feature_moments_loss(sw.identity_features(blurred), real)
    half = feature_moments_loss(sw.identity_features(faces[:8]), sw.identity_features(faces[8:]))
    assert float(loss) > float(half) > 0  # blur moves the batch's statistics more than a change of people
    loss.backward()
    assert blurred.grad is not None and blurred.grad.abs().sum() > 0
    running = RunningMoments(sw.identity.embedding_dim, sw.decoder.map_channels)  # first batch: the running gap is this batch's gap
    fake = sw.identity_features(TF.gaussian_blur(faces, 9, 2.5))
    assert float(running(fake, real)) == pytest.approx(float(feature_moments_loss(fake, real)), rel=1e-5)


def test_landmark_term_reads_real_faces_and_is_differentiable(small_faces):
    """O-net's 5 points on real canonical crops sit on the alignment template, mirror with the face
    (a turned head's nose offset flips sign) and pass gradients to the pixels."""
    from factory.ingest.facedata import decode, to_tensor
    from factory.swapper.training import Landmarks

    items = load_faces(str(small_faces["dir"]), "train")[:16]
    faces = torch.stack([to_tensor(decode(it["jpg"])) for it in items])
    lm_net = Landmarks()
    lm = lm_net(faces)
    template = torch.stack([torch.tensor(np.asarray(it["meta"]["landmarks"], np.float32)) / decode(it["jpg"]).shape[0]
                            for it in items])  # the 5 points the crops were aligned on (crop units)
    found = torch.cat([lm[:, None, :5], lm[:, None, 5:]], dim=1).transpose(1, 2)
    assert (found - template).abs().mean() < 0.05
    yaw, yaw_m = Landmarks.pose(lm)[:, 0], Landmarks.pose(lm_net(faces.flip(-1)))[:, 0]  # nose offset from the eyes
    assert np.corrcoef(yaw.numpy(), -yaw_m.numpy())[0, 1] > 0.8
    x = faces[:4].clone().requires_grad_(True)
    torch.nn.functional.l1_loss(lm_net(x), lm[:4].detach().flip(0)).backward()
    assert x.grad.abs().sum() > 0 and not any(p.requires_grad for p in lm_net.parameters())


@pytest.mark.slow
def test_tiny_training_steps_reduce_losses(small_faces, tmp_path):
    import pytorch_lightning as pl

    from factory.swapper.networks import load_shipped, save_shipped
    from factory.swapper.training import SwapperModule

    x, view, mask = swap_batch(load_faces(str(small_faces["dir"]), "train", ["celeba-wild"])[:8])
    pl.seed_everything(0)  # the module's initial weights too: the figures must not depend on earlier tests
    module = SwapperModule({"_target_": "factory.identity.encoders.DlibEncoder"}, size=64, width=8, disc_width=8,
                           lr_g=1e-3, lr_d=1e-4)
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, view, mask), batch_size=8)
    logs = []

    class Grab(pl.Callback):
        def on_train_batch_end(self, trainer, *_):
            logs.append({k: float(v) for k, v in trainer.callback_metrics.items()})

    trainer = pl.Trainer(max_epochs=25, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, callbacks=[Grab()])
    trainer.fit(module, loader)
    first, last = logs[0], logs[-1]
    assert bool(module.swapper.calibrated) and module.swapper.centre.norm() > 0.5  # centring fixed
    assert last["train/rec_l1"] < 0.7 * first["train/rec_l1"], (first, last)
    assert np.mean([r["train/id_loss"] for r in logs[-3:]]) < np.mean([r["train/id_loss"] for r in logs[:3]])
    assert last["train/d_loss"] > 0.05  # the discriminator has not won outright

    ckpt = tmp_path / "swapper.ckpt"
    trainer.save_checkpoint(ckpt)
    reloaded = SwapperModule.load_from_checkpoint(ckpt, map_location="cpu").swapper
    b = torch.roll(x, 1, 0)
    torch.testing.assert_close(reloaded.swap(x, b), module.swapper.swap(x, b), rtol=0, atol=0)

    # shipped weights (fp16, no recogniser) rebuild the swapper to within 1/255, and seed a new module
    sha = save_shipped(module.swapper, dict(module.hparams), str(tmp_path / "swapper.pt"))
    assert len(sha) == 64
    shipped = load_shipped(str(tmp_path / "swapper.pt"))
    assert (shipped.swap(x, b) - module.swapper.swap(x, b)).abs().max() < 1 / 255
    fresh = SwapperModule({"_target_": "factory.identity.encoders.DlibEncoder"}, size=64, width=8, disc_width=8)
    fresh.load_shipped(str(tmp_path / "swapper.pt"))
    assert bool(fresh.swapper.calibrated)
    torch.testing.assert_close(fresh.swapper.swap(x, b), shipped.swap(x, b))
    # the weights it started from are its lineage, and the lineage travels with its checkpoints
    assert module.lineage == [] and fresh.lineage == [{"sha256": sha, "batches": None, "train_seconds": None}]
    checkpoint = {"state_dict": fresh.state_dict()}
    fresh.on_save_checkpoint(checkpoint)
    resumed = SwapperModule({"_target_": "factory.identity.encoders.DlibEncoder"}, size=64, width=8, disc_width=8)
    resumed.on_load_checkpoint(checkpoint)
    assert resumed.lineage == fresh.lineage


def test_checkpoint_without_moments_resumes_with_them(tiny_swapper_ckpt):
    """A run made without the moments term loads with it switched on; the running averages are part of
    the saved state, so a resumed run continues them."""
    from factory.swapper.training import SwapperModule

    module = SwapperModule.load_from_checkpoint(tiny_swapper_ckpt, map_location="cpu", w_moments=1.0)
    assert module.moments is not None and not bool(module.moments.started)
    assert any(k.startswith("moments.") for k in module.state_dict())
    path = tiny_swapper_ckpt + ".moments.ckpt"
    checkpoint = torch.load(tiny_swapper_ckpt, map_location="cpu", weights_only=False)
    checkpoint["state_dict"] = module.state_dict()
    checkpoint["hyper_parameters"]["w_moments"] = 1.0
    torch.save(checkpoint, path)
    off = SwapperModule.load_from_checkpoint(path, map_location="cpu", w_moments=0.0)  # and back: the term off
    assert off.moments is None


def test_init_from_a_checkpoint_adds_refine_blocks_as_the_identity(tiny_swapper_ckpt, small_faces):
    """`init_from=<run>.ckpt` seeds a wider config from another run (discriminator too): the added
    refine blocks start as the identity, so swaps are unchanged until training moves them; weights of
    another shape are refused."""
    from factory.swapper.training import SwapperModule

    source = SwapperModule.load_from_checkpoint(tiny_swapper_ckpt, map_location="cpu")
    hp = {**dict(source.hparams), "refine": 2}
    grown = SwapperModule(**hp)
    grown.load_shipped(tiny_swapper_ckpt)
    x = swap_batch(load_faces(str(small_faces["dir"]), "train", ["celeba-wild"])[:4])[0]
    b = torch.roll(x, 1, 0)
    assert len(grown.swapper.decoder.refine) == 2
    torch.testing.assert_close(grown.swapper.swap(x, b), source.swapper.swap(x, b), rtol=0, atol=0)
    torch.testing.assert_close(grown.disc.state_dict(), source.disc.state_dict())
    with pytest.raises(ValueError, match="do not fit"):
        SwapperModule(**{**hp, "width": hp["width"] * 2}).load_shipped(tiny_swapper_ckpt)


def test_cross_identity_target_is_the_graphics_swap_differentiable_and_seeded(small_faces):
    """The cross-identity pixel target (ReliableSwap's idea) is the factory's graphics swap of the same
    pair, computed from each face's landmarks (mirrored with the face); the loss to it passes gradients
    to the swap and none to the target, and the same batch gives the same target."""
    from factory.common.graphics import graphics_swap
    from factory.swapper.data import PairedViewDataset, flip_landmarks
    from factory.swapper.training import cross_targets

    items = load_faces(str(small_faces["dir"]), "train", ["celeba-wild"])[:4]
    data = PairedViewDataset(items, seed=0)
    batch = [torch.stack(t) for t in zip(*(data[i] for i in range(4)))]
    x, lm = batch[0], batch[3]
    assert lm.shape == (4, 5, 2) and bool((lm[:, 0, 0] < lm[:, 1, 0]).all())  # eyes in image order, flipped or not
    lm0 = np.asarray(items[0]["meta"]["landmarks"], np.float32)
    np.testing.assert_allclose(flip_landmarks(flip_landmarks(lm0, 128), 128), lm0)
    perm = torch.roll(torch.arange(4), 1)
    target = cross_targets(x, lm, perm)
    torch.testing.assert_close(cross_targets(x, lm, perm), target, rtol=0, atol=0)
    u8 = (x * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    fake, mask = graphics_swap(u8[1], u8[0], lm[1].numpy(), lm[0].numpy())
    np.testing.assert_array_equal((target[1].permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy(), fake)
    inside, outside = mask > 0.9, mask < 0.01
    diff = (target - x).abs().mean(1)
    assert float(diff[1][torch.from_numpy(inside)].mean()) > 0.03  # the face changed …
    assert float(diff[1][torch.from_numpy(outside)].mean()) < 0.01  # … the rest of the crop did not
    swap = x.clone().requires_grad_(True)
    torch.nn.functional.l1_loss(swap, target).backward()
    assert swap.grad.abs().sum() > 0 and not target.requires_grad


def test_128px_swapper_grows_from_64px_weights_trains_with_the_cross_target_and_resumes(small_faces, tmp_path):
    """The 128 px config (`swapper=px128`: same shapes, refine blocks, cross-identity target) starts from
    64 px weights, takes training steps on the datamodule's batches (landmarks included), and its shipped
    weights resume it exactly."""
    import pytorch_lightning as pl

    from factory.swapper.data import PairedViewDataset
    from factory.swapper.networks import load_shipped, save_shipped
    from factory.swapper.training import SwapperModule

    pl.seed_everything(0)
    hp = {"identity": {"_target_": "factory.identity.encoders.DlibEncoder"}, "size": 64, "width": 8, "disc_width": 8}
    small = SwapperModule(**hp)  # stands in for weights/swapper.pt: 64 px, as shipped
    small.swapper.calibrated.fill_(True)
    save_shipped(small.swapper, dict(small.hparams), str(tmp_path / "swapper64.pt"))
    hp = {**dict(small.hparams), "size": 128, "refine": 2, "w_cross": 5.0}
    module = SwapperModule(**hp)
    module.load_shipped(str(tmp_path / "swapper64.pt"))
    torch.testing.assert_close(module.swapper.decoder.out.weight, small.swapper.decoder.out.weight, atol=1e-3, rtol=0)
    data = PairedViewDataset(load_faces(str(small_faces["dir"]), "train", ["celeba-wild"])[:8], seed=0)
    logs = []

    class Grab(pl.Callback):
        def on_train_batch_end(self, trainer, *_):
            logs.append({k: float(v) for k, v in trainer.callback_metrics.items()})

    trainer = pl.Trainer(max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False,  # 2 per batch
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[Grab()])
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=4))
    assert len(logs) == 2 and all(0 < r["train/cross"] < 0.5 for r in logs)
    x = torch.stack([data.face(i) for i in range(4)])
    b = torch.roll(x, 1, 0)
    out = module.swapper.swap(x, b)
    assert out.shape == (4, 3, 128, 128)
    save_shipped(module.swapper, dict(module.hparams), str(tmp_path / "swapper128.pt"))
    assert (load_shipped(str(tmp_path / "swapper128.pt")).swap(x, b) - out).abs().max() < 1 / 255
    resumed = SwapperModule(**hp)
    resumed.load_shipped(str(tmp_path / "swapper128.pt"))
    assert (resumed.swapper.swap(x, b) - out).abs().max() < 1 / 255

"""The identity encoders: one interface, and the pretrained ones' correctness on real held-out faces."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from factory.common.paths import CONF_DIR
from factory.identity.encoders import DlibEncoder, MarginHead, SFaceEncoder, TimmEncoder, crop_resize
from factory.identity.evaluation import embed_faces
from factory.identity.verification import make_pairs, pair_scores, verification_metrics
from factory.ingest.facedata import load_faces


@pytest.fixture(scope="module")
def dlib():
    return DlibEncoder()


@pytest.mark.parametrize("make", [DlibEncoder, SFaceEncoder, lambda: TimmEncoder(input_size=64)],
                         ids=["dlib", "sface", "timm"])
def test_encoder_interface(make):
    enc = make().eval()
    faces = torch.rand(3, 3, 128, 128, requires_grad=True)
    emb = enc(faces)
    assert emb.shape == (3, enc.embedding_dim)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    emb[:, 0].sum().backward()  # differentiable w.r.t. the faces: usable as a training loss
    assert faces.grad is not None and faces.grad.abs().sum() > 0
    torch.testing.assert_close(enc(faces[:1]), enc(faces)[:1], atol=1e-5, rtol=1e-4)  # batch-independent
    vec, maps = enc.features(faces)
    torch.testing.assert_close(vec, enc(faces))
    assert [m.shape[1] for m in maps] == list(enc.map_channels)


def test_crop_resize_box():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    torch.testing.assert_close(crop_resize(x, (0.5, 0.5, 1.0, 1.0), 2), torch.tensor([[[[10.0, 11.0], [14.0, 15.0]]]]))


def test_margin_heads_penalise_the_true_class():
    emb = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    labels = torch.tensor([0, 1, 2, 1])
    for kind in ("arcface", "cosface"):
        head = MarginHead(8, 3, kind=kind, scale=10.0, margin=0.3)
        plain = 10.0 * torch.nn.functional.linear(emb, torch.nn.functional.normalize(head.weight, dim=1))
        logits = head(emb, labels)
        true = logits.gather(1, labels[:, None])
        assert (true < plain.gather(1, labels[:, None])).all()
        mask = torch.ones_like(logits, dtype=bool).scatter(1, labels[:, None], False)
        torch.testing.assert_close(logits[mask], plain[mask])


@pytest.mark.slow
@pytest.mark.parametrize("make", [DlibEncoder, SFaceEncoder], ids=["dlib", "sface"])
def test_pretrained_recognisers_separate_real_identities(small_faces, make):
    """A wrong port (or a wrong frame or colour order) is near 0.5; the real network is near 1 on
    unseen CelebA people, read from the canonical crops."""
    items = [it for s in ("train", "val", "test") for it in load_faces(str(small_faces["dir"]), s, ["celeba-wild"])]
    ids = [it["meta"]["identity"] for it in items]
    emb = embed_faces(make(), items)
    pairs, labels = make_pairs(ids, 2000, 2000, seed=0)
    m = verification_metrics(pair_scores(emb, pairs), labels)
    assert m["auc"] >= 0.97, m
    scores = pair_scores(emb, pairs)
    assert np.median(scores[labels]) > np.median(scores[~labels]) + 0.1


@pytest.mark.slow
def test_train_identity_tiny_run_end_to_end(small_faces, tmp_path):
    """The real entry point trains on real faces, its loss falls, and the checkpoint loads as an encoder."""
    out = tmp_path / "id"
    cmd = [sys.executable, "-m", "pipelines.train_identity", f"paths.faces_dir={small_faces['dir']}", f"out_dir={out}",
           "trainer.max_epochs=6", "data.batch_size=16", "data.num_workers=0", "data.augment_strength=0",
           "identity_model.lr=0.05", "identity_model.margin.margin=0.1", "identity_model.warmup_epochs=0",
           "+trainer.limit_val_batches=1", "identity_model.encoder.dropout=0", "trainer.log_every_n_steps=1"]
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert run.returncode == 0, run.stderr[-3000:]
    import csv

    rows = [r for r in csv.DictReader(open(out / "logs" / "version_0" / "metrics.csv")) if r.get("train/loss")]
    losses = [float(r["train/loss"]) for r in rows]
    assert len(losses) >= 4 and np.mean(losses[-2:]) < np.mean(losses[:2]), losses
    # a rerun with a longer schedule resumes from last.ckpt instead of starting over
    more = subprocess.run([c if not c.startswith("trainer.max_epochs") else "trainer.max_epochs=7" for c in cmd],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert more.returncode == 0, more.stderr[-3000:]
    assert "Restored all states from the checkpoint" in more.stdout + more.stderr
    # the same config again: the finished run is reused without training
    same = subprocess.run([c if not c.startswith("trainer.max_epochs") else "trainer.max_epochs=7" for c in cmd],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert same.returncode == 0 and "already finished" in same.stdout, same.stderr[-2000:]
    from factory.identity.training import load_trained_encoder

    enc = load_trained_encoder(str(out / "checkpoints" / "best.ckpt"))
    emb = enc(torch.rand(2, 3, 128, 128))
    assert emb.shape == (2, 256) and not enc.training
    from factory.common.model_files import ModelFileError

    with pytest.raises(ModelFileError, match="not found; run `python -m pipelines.train_identity"):
        load_trained_encoder(str(tmp_path / "missing.ckpt"))


def test_margin_plus_distillation_steps_on_real_faces_lower_both_losses(small_faces):
    """Claim 3 with a teacher: labelled faces (margin + distillation) and unlabelled ones (label −1,
    distillation only) in one batch; a few SGD steps on it lower both losses."""
    from factory.identity.data import IdentityDataModule
    from factory.identity.training import IdentityModule

    dm = IdentityDataModule(str(small_faces["dir"]), min_per_identity=2, batch_size=8, num_workers=0,
                            augment_strength=0.0, unlabelled=True)
    dm.setup("fit")
    labels = [dm.train_set[i][1] for i in range(len(dm.train_set))]
    assert -1 in labels and any(lab >= 0 for lab in labels)  # both kinds of face are in the training set
    pick = [i for i, lab in enumerate(labels) if lab >= 0][:12] + [i for i, lab in enumerate(labels) if lab < 0][:4]
    faces = torch.stack([dm.train_set[i][0] for i in pick])
    y = torch.tensor([labels[i] for i in pick])
    torch.manual_seed(0)
    module = IdentityModule({"backbone": "resnet10t", "input_size": 64}, dm.num_classes, {"margin": 0.2},
                            teacher={"_target_": "factory.identity.DlibEncoder"}, w_distill=1.0)
    assert not any(k.startswith("teacher.") for k in module.state_dict())  # checkpoints leave the teacher out
    opt = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    module.train()
    first = {k: float(v) for k, v in module.losses(faces, y).items() if k != "acc"}
    for _ in range(8):
        parts = module.losses(faces, y)
        opt.zero_grad()
        (parts["margin"] + parts["distill"]).backward()
        opt.step()
    last = {k: float(v) for k, v in module.losses(faces, y).items() if k != "acc"}
    assert set(first) == {"margin", "distill"}
    assert last["margin"] < first["margin"] and last["distill"] < first["distill"], (first, last)



def test_cached_teacher_targets_are_the_teachers_embeddings_and_ride_in_the_batch(small_faces, tmp_path):
    """Distillation targets computed once equal the teacher on the same faces, are reused from the cache,
    and reach the loss as the batch's third element."""
    from factory.identity.data import IdentityDataModule
    from factory.identity.training import IdentityModule, teacher_targets

    dm = IdentityDataModule(str(small_faces["dir"]), min_per_identity=2, batch_size=4, num_workers=0,
                            augment_strength=0.0, unlabelled=True)
    dm.setup("fit")
    module = IdentityModule({"backbone": "resnet10t", "input_size": 64}, dm.num_classes, {"margin": 0.2},
                            teacher={"_target_": "factory.identity.DlibEncoder"}, w_distill=1.0)
    items = dm.train_set.items[:6]
    targets = teacher_targets(module.teacher, items, str(tmp_path))
    from factory.ingest.facedata import FaceDataset

    direct = module.teacher(torch.stack([FaceDataset(items)[i][0] for i in range(6)]))  # un-augmented
    assert torch.allclose(targets, direct, atol=1e-5)
    assert len(list(tmp_path.glob("teacher_DlibEncoder_*.pt"))) == 1
    assert torch.equal(teacher_targets(module.teacher, items, str(tmp_path)), targets)  # from the cache
    dm.attach_targets(teacher_targets(module.teacher, dm.train_set.items, str(tmp_path)))
    faces, labels, target = next(iter(dm.train_dataloader()))
    assert target.shape == (4, module.teacher.embedding_dim)
    loss = module.training_step((faces, labels, target), 0)
    assert torch.isfinite(loss) and loss > 0


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF_DIR / "identity_model").glob("*.yaml")))
def test_every_identity_model_config_instantiates_as_train_identity_does(option, small_faces):
    """Each variant builds through Hydra exactly as the pipeline builds it, and embeds real faces."""
    from hydra.utils import instantiate

    from factory.ingest.facedata import FaceDataset
    from tests.compose import compose_config

    cfg = compose_config("train_identity", [f"identity_model={option}"])
    module = instantiate(cfg.identity_model, num_classes=3, _convert_="all")
    faces = FaceDataset(load_faces(str(small_faces["dir"]), "test")[:2])
    emb = module.eval()(torch.stack([faces[i][0] for i in range(2)]))
    assert emb.shape == (2, module.encoder.embedding_dim) and torch.isfinite(emb).all()
    assert (module.teacher is not None) == (cfg.identity_model.get("w_distill", 0) > 0)


def test_shipped_identity_encoder_loads_with_weights_only_and_seeds_a_run(small_faces, tmp_path):
    """A trained encoder ships as fp16 weights with a manifest, loads back (weights_only) to the same
    embeddings within fp16 error, is the fallback of `identity=trained`, and seeds `init_from`."""
    from factory.identity.shipped import ship_identity
    from factory.identity.training import IdentityModule, load_trained_encoder
    from factory.ingest.facedata import FaceDataset

    module = IdentityModule({"backbone": "resnet10t", "input_size": 64}, 4, {"margin": 0.2})
    ckpt = tmp_path / "run.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict(), "epoch": 1,
                "global_step": 10}, ckpt)
    manifest = ship_identity(str(ckpt), str(tmp_path / "weights"), {"verification": {"auc": 0.5}})
    shipped = tmp_path / "weights" / "identity.pt"
    assert torch.load(shipped, weights_only=True)["kind"] == "swap-factory identity encoder"
    assert manifest["sha256"] and manifest["steps"] == 10 and (tmp_path / "weights" / "identity.json").exists()
    faces = torch.stack([FaceDataset(load_faces(str(small_faces["dir"]), "test")[:3])[i][0] for i in range(3)])
    expect = load_trained_encoder(str(ckpt))(faces)
    got = load_trained_encoder(None, str(tmp_path / "no_local.ckpt"), str(shipped))(faces)
    assert torch.allclose(got, expect, atol=2e-2)
    seeded = IdentityModule({"backbone": "resnet10t", "input_size": 64}, 7, {"margin": 0.2})
    seeded.load_shipped(str(shipped))
    assert torch.allclose(seeded.encoder.eval()(faces), got, atol=1e-5)
    assert seeded.lineage[-1]["sha256"] == manifest["sha256"]

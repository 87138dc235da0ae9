"""The factory's parts on real faces: plan, pairings, masks, perturbations, and every registered method."""
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from factory.common.images import resize
from factory.common.masks import face_mask
from factory.common.paths import CONF_DIR
from factory.dataset import perturbations
from factory.dataset.methods import Pair
from factory.dataset.pairings import AttributePairing, HardPairing, RandomPairing
from factory.dataset.plan import method_counts, plan_split, shard_jobs
from factory.ingest.facedata import decode, load_faces

METHODS = sorted(p.stem for p in (Path(CONF_DIR) / "method").glob("*.yaml"))


def _pool(small_faces, split="train"):
    return load_faces(str(small_faces["dir"]), split)


def _crop(item, size=64):
    return resize(decode(item["jpg"]), size), np.asarray(item["meta"]["landmarks"], np.float32) * size / 128


def test_method_counts_are_exact_and_weighted():
    assert method_counts(10, ["a", "b", "c"], None) == {"a": 4, "b": 3, "c": 3}
    assert method_counts(9, ["a", "b"], {"a": 2, "b": 1}) == {"a": 6, "b": 3}
    with pytest.raises(ValueError):
        method_counts(3, ["a"], {"a": 0})


@pytest.mark.parametrize("pairing", [RandomPairing(), HardPairing(k=2), AttributePairing()], ids=lambda p: p.name)
def test_plan_is_deterministic_cross_identity_and_within_split(small_faces, pairing):
    pool = _pool(small_faces)
    metas = [it["meta"] for it in pool]
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(metas), 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)

    def plan(seed):
        return plan_split("train", metas, 60, 0.5, {"swap": True, "self_blend": False}, None, pairing,
                          lambda idx: emb[idx], {"share": 0.5}, seed)

    jobs = plan(0)
    assert jobs == plan(0) and jobs != plan(1)
    keys = {m["key"]: m for m in metas}
    assert sum(j["label"] == 0 for j in jobs) == 30
    for j in jobs:
        t, s = keys[j["target"]], keys[j["source"]]
        if j["method"] == "swap":
            assert t["identity"] != s["identity"]
        else:
            assert j["source"] == j["target"]
    assert {j["perturbation"]["type"] for j in jobs} - {"none"}  # some are perturbed
    shards = shard_jobs(jobs, "train", 16)
    assert [len(s[1]) for s in shards] == [16, 16, 16, 12] and shards[0][0] == "train/fakes-train-00000.tar"


def test_attribute_pairing_matches_labels_or_counts_fallback(small_faces):
    pool = _pool(small_faces)
    metas = [it["meta"] for it in pool]
    p = AttributePairing(age_band=100)  # one band: gender alone decides
    p.prepare(metas, None)
    rng = np.random.default_rng(0)
    for t, m in enumerate(metas):
        s, fallback = p.pick(t, rng)
        if m["gender"] == "":
            assert fallback
        elif not fallback:
            assert metas[s]["gender"] == m["gender"] and metas[s]["identity"] != m["identity"]


def test_face_mask_covers_the_face_not_the_corners(small_faces):
    item = _pool(small_faces)[0]
    _, lm = _crop(item)
    mask = face_mask(lm, 64)
    assert mask.shape == (64, 64) and 0 <= mask.min() and mask.max() <= 1
    for x, y in lm:  # every landmark lies well inside the mask
        assert mask[int(y), int(x)] > 0.9
    assert mask[:4, :4].max() < 0.01 and mask[-4:, -4:].max() < 0.01 and 0.2 < mask.mean() < 0.6


@pytest.mark.parametrize("kind", sorted(perturbations.PERTURBATIONS))
def test_perturbation_levels_are_reproducible_and_ordered(small_faces, kind):
    image, _ = _crop(_pool(small_faces)[0])
    change = []
    for level in perturbations.LEVELS:
        p = {"type": kind, "level": level}
        out = perturbations.apply(image, p, seed=3)
        assert out.shape == image.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, perturbations.apply(image, p, seed=3))
        change.append(np.abs(out.astype(float) - image).mean())
    assert change[0] > 0 and change[-1] > change[0], change  # level 5 is harsher than level 1
    np.testing.assert_array_equal(perturbations.apply(image, perturbations.NONE, 0), image)


@pytest.mark.parametrize("name", METHODS)
def test_every_registered_method_on_real_pairs(name, small_faces, tiny_swapper_ckpt, tmp_path):
    """One uniform test over all methods in conf/method: output shape/range, change inside the mask
    only, determinism per seed."""
    cfg = OmegaConf.load(Path(CONF_DIR) / "method" / f"{name}.yaml")
    if "checkpoint" in cfg:
        cfg.checkpoint = tiny_swapper_ckpt
    for key in ("fallback", "trained"):  # the shipped weights and a local training output are tested on their own
        if key in cfg:
            cfg[key] = None
    method = instantiate(cfg)
    pool = _pool(small_faces)

    def pairs():
        out = []
        for k in range(4):
            (t, tl), (s, sl) = _crop(pool[k]), _crop(pool[-1 - k])
            out.append(Pair(t, s, tl, sl, np.random.default_rng(k)))
        return out

    first, again = method(pairs()), method(pairs())
    assert len(first) == 4
    for p, (fake, mask, *info), (fake2, _, *info2) in zip(pairs(), first, again):
        assert fake.shape == p.target.shape and fake.dtype == np.uint8 and mask.shape == p.target.shape[:2]
        np.testing.assert_array_equal(fake, fake2)
        assert info == info2 and all(isinstance(i, dict) for i in info)  # per-sample record, seeded
        assert 0.01 < mask.mean() < 0.9  # a region of the face, not nothing and not the frame
        diff = np.abs(fake.astype(float) - p.target).mean(2)
        inside = mask > 0.5 * mask.max()  # a blend ratio below 1 (SBI) lowers the whole mask
        assert diff[inside].mean() > 1.0  # the face changed
        assert diff[mask < 0.01].mean() < 0.5 * diff[inside].mean() + 0.5  # the rest did not
    assert isinstance(method.provenance(), dict) and set(method.provenance()) == {"checkpoint", "sha256"}


def test_swap_method_falls_back_to_shipped_weights(tiny_swapper_ckpt, tmp_path):
    """Without a local training output, the swap method uses the shipped weights and names them; a
    file named by hand that is missing is refused, not replaced."""
    from factory.dataset.methods import Swap
    from factory.swapper.networks import save_shipped
    from factory.swapper.training import SwapperModule

    module = SwapperModule.load_from_checkpoint(tiny_swapper_ckpt, map_location="cpu")
    shipped = str(tmp_path / "swapper.pt")
    save_shipped(module.swapper, dict(module.hparams), shipped)
    from factory.common.model_files import ModelFileError

    method = Swap(trained=str(tmp_path / "missing" / "best.ckpt"), fallback=shipped)
    assert method.provenance()["checkpoint"] == shipped and len(method.provenance()["sha256"]) == 64
    with pytest.raises(ModelFileError, match="not found, and no shipped swapper"):
        Swap(trained=str(tmp_path / "missing" / "best.ckpt"), fallback=str(tmp_path / "also_missing.pt"))
    with pytest.raises(ModelFileError, match="not found"):  # a file named by hand must exist: no silent fallback
        Swap(str(tmp_path / "named.ckpt"), fallback=shipped)


def test_hard_release_keeps_reals_and_only_hard_fakes():
    from factory.dataset.generate import hard_release

    jobs = [{"key": "r", "label": 0, "method": "real"}, {"key": "a", "label": 1, "method": "swap"},
            {"key": "b", "label": 1, "method": "swap"}, {"key": "c", "label": 1, "method": "morph"},
            {"key": "d", "label": 1, "method": "morph"}]
    kept, dropped = hard_release(jobs, {"a": 0.9, "b": 0.1, "c": 0.49, "r": 0.0}, 0.5)
    assert [j["key"] for j in kept] == ["r", "a", "d"] and dropped == {"swap": 1, "morph": 1}
    assert hard_release(jobs, {}, 0.5) == (jobs, {})

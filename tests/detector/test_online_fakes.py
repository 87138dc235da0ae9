"""On-the-fly fakes for detector training: seeded, made only from train reals, never from val/test people."""
import numpy as np
import pytest

from detector.data import OnlineFakes, shard_dataset
from factory.common.shards import iter_samples


def _stream(root, seed, share=1.0):
    online = OnlineFakes(share, ("self_blend", "warp_blend"), seed)
    return [(x.numpy(), meta) for x, _, meta in shard_dataset(str(root), "train", online=online)]


def test_online_fakes_are_seeded_and_from_train_reals_only(small_dataset):
    root = small_dataset["dir"]
    first, again, other = _stream(root, 3), _stream(root, 3), _stream(root, 4)
    online = [(x, m) for x, m in first if m["method"].startswith("online_")]
    reals = [m for _, m in first if m["label"] == 0]
    assert len(online) == len(reals) > 0  # share 1: one per real
    assert {m["method"] for _, m in online} == {"online_self_blend", "online_warp_blend"}
    assert len(first) == len(again) and all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(first, again))
    redrawn = [x for x, m in other if m["method"].startswith("online_")]
    assert any(not np.array_equal(a, b) for (a, _), b in zip(online, redrawn))  # another epoch seed, other fakes
    held_out = {s["json"][k] for split in ("val", "test") for s in iter_samples(str(root), split)
                for k in ("source_id", "target_id")}
    train_people = {m["target_id"] for m in reals}
    for x, m in online:
        assert m["label"] == 1 and m["split"] == "train"
        assert m["target_id"] in train_people and m["source_id"] in train_people
        assert not {m["target_id"], m["source_id"]} & held_out
        if m["method"] == "online_warp_blend":
            assert m["source_id"] != m["target_id"]
    half = [m for _, m in _stream(root, 3, share=0.5) if m["method"].startswith("online_")]
    assert 0 < len(half) < len(reals)


def test_online_fakes_refuse_other_splits_and_bad_settings(small_dataset):
    with pytest.raises(ValueError, match="train reals only"):
        shard_dataset(str(small_dataset["dir"]), "val", online=OnlineFakes())
    with pytest.raises(ValueError, match="online fakes"):
        OnlineFakes(1.5)
    with pytest.raises(ValueError, match="online fakes"):
        OnlineFakes(0.5, ("morph",))


def test_leave_one_method_out_never_shows_the_held_out_method(small_dataset):
    """A holdout run's train and val streams hold no fake of the held-out method (checked per sample
    key against the shards), and every other method's fakes are still there."""
    from detector.data import ShardDataModule

    root = str(small_dataset["dir"])
    dm = ShardDataModule(root, exclude_methods="swap", batch_size=8, num_workers=0)
    dm.setup()
    seen = {m["key"]: m for loader in (dm.train_dataloader(), dm.val_dataloader()) for _, _, metas in loader for m in metas}
    stored = {s["json"]["key"]: s["json"] for split in ("train", "val") for s in iter_samples(root, split)}
    swaps = {k for k, m in stored.items() if m["method"] == "swap"}
    assert swaps and not swaps & set(seen)
    assert {m["method"] for m in seen.values()} == {m["method"] for m in stored.values()} - {"swap"}
    assert dm.train_count == sum(m["split"] == "train" and m["method"] != "swap" for m in stored.values())

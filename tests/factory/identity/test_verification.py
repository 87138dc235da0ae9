import numpy as np
import pytest

from factory.common.thresholds import best_threshold
from factory.identity.verification import make_pairs, rank1_identification, verification_metrics


def test_pairs_are_fixed_valid_and_capped():
    ids = ["a"] * 3 + ["b"] * 2 + ["c"]
    pairs, labels = make_pairs(ids, 100, 100, seed=0)  # fewer possible than asked: all of them, no hang
    assert labels.sum() == 3 + 1 and (~labels).sum() == 15 - 4
    for (i, j), same in zip(pairs, labels):
        assert i < j and (ids[i] == ids[j]) == same
    big = [str(i // 5) for i in range(500)]
    p1, l1 = make_pairs(big, 300, 400, seed=1)
    p2, _ = make_pairs(big, 300, 400, seed=1)
    assert np.array_equal(p1, p2) and l1.sum() == 300 and (~l1).sum() == 400
    with pytest.raises(ValueError):
        make_pairs(["a", "b"], 10, 10, seed=0)


def test_verification_metrics_hand_computed():
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1])
    labels = np.array([1, 1, 1, 0, 0, 0], bool)
    m = verification_metrics(scores, labels)
    assert m["auc"] == pytest.approx(8 / 9)  # one of nine genuine/impostor orderings is wrong
    assert m["accuracy"] == pytest.approx(5 / 6)
    t = best_threshold(scores, labels)
    assert ((scores >= t) == labels).mean() == pytest.approx(5 / 6)  # two thresholds tie; either is best
    assert verification_metrics(scores, labels, threshold=0.0)["accuracy"] == pytest.approx(0.5)


def test_rank1_identification():
    emb = np.eye(4)[[0, 0, 1, 1, 2]].astype(float)
    assert rank1_identification(emb, ["x", "x", "y", "y", "z"], seed=0)["rank1"] == 1.0
    emb_bad = np.eye(4)[[0, 1, 1, 0, 2]].astype(float)
    assert rank1_identification(emb_bad, ["x", "x", "y", "y", "z"], seed=0)["rank1"] == 0.0

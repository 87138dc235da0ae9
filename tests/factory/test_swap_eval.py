import numpy as np
import pytest

from factory.swap_eval import frechet_distance, retrieval, swap_pairs


def test_swap_pairs_cross_identity_and_fixed():
    ids = ["a", "a", "b", "b", "c"]
    p = swap_pairs(ids, 6, seed=0)
    assert np.array_equal(p, swap_pairs(ids, 6, seed=0)) and len(p) == 6
    for t, s in p:
        assert ids[t] != ids[s] and ids.count(ids[s]) >= 2


def test_retrieval_hand_made():
    e = np.eye(3)
    gallery = e[[0, 0, 1, 1, 2]]
    ids = ["a", "a", "b", "b", "c"]
    pairs = np.array([[4, 0], [4, 2]])  # target c; sources a and b
    perfect = retrieval(e[[0, 1]], gallery, ids, pairs)
    assert perfect["id_retrieval_top1"] == 1.0 and perfect["retrieved_as_target"] == 0.0
    assert perfect["cos_to_source"] == pytest.approx(1.0)
    # the target's only photo is the one used, so a copy of the target cannot be "retrieved as target"
    copy = retrieval(e[[2, 2]], gallery, ids, np.array([[4, 2], [4, 3]]))
    assert copy["id_retrieval_top1"] == 0.0


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 1.0) == pytest.approx(4.0, rel=0.02)


@pytest.mark.slow
def test_evaluate_swapper_end_to_end_with_baselines(small_faces, tmp_path):
    """An untrained swapper judged by dlib on real held-out faces: the report and grid are written, and
    the source-face baseline is retrieved as the source far more often than the target baseline."""
    import torch

    from factory.identity import DlibEncoder, TimmEncoder
    from factory.swap_eval import evaluate_swapper
    from factory.swapper import FaceSwapper

    torch.manual_seed(0)
    swapper = FaceSwapper(TimmEncoder(input_size=64), size=64, width=8)
    report = evaluate_swapper(swapper, DlibEncoder(), str(small_faces["dir"]), str(tmp_path), n_pairs=40)
    assert (tmp_path / "swap_report.json").exists() and (tmp_path / "swap_grid.png").exists()
    src, tgt = report["baseline_source"], report["baseline_target"]
    assert src["pairs"] == tgt["pairs"] == report["swap"]["pairs"] == 40
    assert src["id_retrieval_top1"] >= 0.8 > tgt["id_retrieval_top1"]
    assert tgt["landmark_distance"] == 0.0  # the target itself: same image, same detection
    assert src["landmark_distance"] > 0.02  # another person's face sits elsewhere, even aligned
    assert "reconstruction" in report and "landmark_ratio_swap_to_reconstruction" in report
    assert 0 < report["swap"]["reconstruction"]["ssim"] < 1

import numpy as np
import pytest

from factory.swapper.evaluation import frechet_distance, identity_scores, swap_pairs


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
    found = np.ones(2, bool)
    perfect = identity_scores(e[[0, 1]], found, gallery, ids, pairs)
    assert perfect["id_retrieval_top1"] == 1.0 and perfect["retrieved_as_target"] == 0.0
    assert perfect["cos_to_source"] == pytest.approx(1.0)
    # the target's only photo is the one used, so a copy of the target cannot be "retrieved as target"
    copy = identity_scores(e[[2, 2]], found, gallery, ids, np.array([[4, 2], [4, 3]]))
    assert copy["id_retrieval_top1"] == 0.0


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 1.0) == pytest.approx(4.0, rel=0.02)


@pytest.mark.slow
def test_shipped_path_redetects_and_realigns_for_each_judge(small_faces):
    """A stored face blended onto itself and JPEG-encoded at 64 px is found again by MTCNN and, re-aligned
    into each judge's own frame, embeds like the canonical crop; an image with no face is a counted miss."""
    from factory.identity.encoders import DlibEncoder, SFaceEncoder
    from factory.ingest.faces import FaceDetector
    from factory.swapper.evaluation import detect_landmarks, embed_redetected, held_out_pairs, ship

    judges = {"dlib": DlibEncoder(), "sface": SFaceEncoder()}
    test = held_out_pairs(judges, str(small_faces["dir"]), 64, n_pairs=10)
    u8, lm = test["faces_u8"][:6], test["landmarks"][:6]
    shipped = ship(u8, u8, lm, 95)
    assert shipped.shape == u8.shape and np.abs(shipped.astype(int) - u8).mean() < 3  # blend + JPEG only
    images = np.concatenate([shipped, np.full((1, 64, 64, 3), 127, np.uint8)])
    found_lm = detect_landmarks(FaceDetector(), images)
    assert found_lm[-1] is None and all(x is not None for x in found_lm[:-1])
    for name, judge in judges.items():
        emb, found = embed_redetected(judge, images, found_lm)
        assert found.tolist() == [True] * 6 + [False] and not emb[-1].any()
        canonical = test["gallery"][name][:6]
        assert (emb[:6] * canonical).sum(1).min() > 0.8, name


@pytest.mark.slow
def test_evaluate_swapper_end_to_end_with_baselines(small_faces, tmp_path):
    """An untrained swapper judged by SFace (and dlib) on real held-out faces: the report and grid are
    written; the source-face baseline is retrieved as the source far more often than the target
    baseline; the target keeps its own pose and expression, another person's face does not."""
    import torch

    from factory.common.graphics import warp_blend_faces
    from factory.identity.encoders import DlibEncoder, SFaceEncoder
    from factory.swapper.evaluation import evaluate_swapper
    from factory.swapper.networks import FaceSwapper

    torch.manual_seed(0)
    swapper = FaceSwapper(DlibEncoder(), size=64, width=8)
    report = evaluate_swapper(swapper, {"sface": SFaceEncoder(), "dlib": swapper.identity}, str(small_faces["dir"]),
                              str(tmp_path), n_pairs=40, trained_against="dlib", mesh_faces=40,
                              baselines={"warp_blend": warp_blend_faces})
    assert (tmp_path / "swap_report.json").exists() and (tmp_path / "swap_grid.png").exists()
    src, tgt = report["baseline_source"], report["baseline_target"]
    assert src["pairs"] == tgt["pairs"] == report["swap"]["pairs"] == 40
    for judge in ("sface", "dlib"):
        assert src[judge]["id_retrieval_top1"] >= 0.7 > tgt[judge]["id_retrieval_top1"], judge
        assert src[judge]["cos_to_source"] > src[judge]["cos_to_target"]
    assert tgt["undetected"] == 0 and tgt["pose_error_deg"]["mean"] < 1.5 and tgt["expression_error"] < 0.01
    assert src["pose_error_deg"]["mean"] > 2 * tgt["pose_error_deg"]["mean"]
    assert src["expression_error"] > 2 * tgt["expression_error"]
    assert report["trained_against"] == "dlib" and {"swap", "swap_decoder_output", "warp_blend"} <= set(report)
    assert 0 < report["reconstruction"]["quality"]["ssim"] < 1
    # realism against held-out reals (val split): real targets sit nearer to them than an untrained swap
    # (whose outputs MTCNN mostly misses: then there is no distance, nan)
    assert report["reference_faces"]["sface"] > 2 and 0 < tgt["sface"]["frechet_heldout"] < np.inf
    assert not report["swap_decoder_output"]["sface"]["frechet_heldout"] <= tgt["sface"]["frechet_heldout"]


def test_real_reference_shares_no_identity_with_the_test_split(small_faces):
    """The realism reference is real val faces found again like the scored outputs: seeded, and no
    identity of the test pairs is among them."""
    from factory.identity.encoders import SFaceEncoder
    from factory.ingest.facedata import load_faces
    from factory.ingest.faces import FaceDetector
    from factory.swapper.evaluation import real_reference

    judge, detector = SFaceEncoder(), FaceDetector()
    a = real_reference({"sface": judge}, str(small_faces["dir"]), 64, detector, n=6, seed=1)["sface"]
    b = real_reference({"sface": judge}, str(small_faces["dir"]), 64, detector, n=6, seed=1)["sface"]
    assert 2 < len(a) <= 6 and np.array_equal(a, b)
    ids = {split: {it["meta"]["identity"] for it in load_faces(str(small_faces["dir"]), split)} for split in ("val", "test")}
    assert ids["val"] and not ids["val"] & ids["test"]

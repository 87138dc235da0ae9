"""Detection metrics against values computed by hand on small fixed inputs."""
import numpy as np
import pytest

from detector.metrics import auc_ci, binary_metrics, ece, eer


def test_auc_eer_ap_on_the_textbook_example():
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    m = binary_metrics(y, p, threshold=0.3, n_boot=200)
    assert m["auc"] == pytest.approx(0.75)          # 3 of 4 (fake, real) pairs ordered right
    assert m["ap"] == pytest.approx(5 / 6)          # precision 1 at recall 1/2, 2/3 at recall 1
    assert m["eer"] == pytest.approx(0.5)           # FPR = FNR = 1/2 at threshold 0.4
    assert m["acc@0.5"] == pytest.approx(0.75)      # only 0.8 called fake: 0.1, 0.4 right, 0.35 wrong
    assert m["acc@threshold"] == pytest.approx(0.75)  # at 0.3: 0.4 wrongly fake, all fakes caught
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    lo, hi = m["auc_ci95"]
    assert 0 <= lo <= 0.75 <= hi <= 1


def test_perfect_and_inverted_detectors():
    y = np.array([0] * 5 + [1] * 5)
    p = np.linspace(0.05, 0.95, 10)
    assert eer(y, p)[0] == pytest.approx(0.0) and binary_metrics(y, p)["auc"] == 1.0
    assert binary_metrics(y, 1 - p)["auc"] == 0.0 and eer(y, 1 - p)[0] == pytest.approx(1.0)


def test_eer_interpolates_between_roc_points():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    assert eer(y, p)[0] == pytest.approx(0.25)  # one real above one fake: FPR = FNR = 1/4


def test_ece_and_reliability_by_hand():
    y, p = np.array([0, 1, 1, 0]), np.array([0.2, 0.7, 0.9, 0.6])
    # 2 bins: [0, .5) holds p=.2 (y=0): gap .2, weight 1/4; [.5, 1] holds .7,.9,.6 (2 of 3 fake): gap |2/3 - .7333|
    assert ece(y, p, bins=2) == pytest.approx(0.25 * 0.2 + 0.75 * abs(2 / 3 - 2.2 / 3))
    assert ece(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0


def test_one_class_gives_none_not_a_crash():
    m = binary_metrics(np.array([1, 1, 1]), np.array([0.9, 0.8, 0.7]))
    assert m["auc"] is None and m["eer"] is None and m["acc@0.5"] == 1.0
    assert auc_ci(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]), n_boot=50) == (1.0, 1.0)


def test_vectorised_bootstrap_matches_sklearn_per_resample():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.random(300) * 0.6 + 0.3 * y, 2)  # ties included
    idx = np.random.default_rng(7).integers(0, 300, (200, 300))
    want = np.percentile([roc_auc_score(y[i], p[i]) for i in idx], [2.5, 97.5])
    assert auc_ci(y, p, n_boot=200, seed=7) == pytest.approx(tuple(want), abs=1e-12)


def test_temperature_scaling_calibrates_an_overconfident_detector():
    """A toy detector whose logits are 4x too large: T fitted on val is ≈ 4, lowers ECE and Brier on test
    and leaves the ranking (AUC) unchanged."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from detector.calibration import apply_temperature, fit_temperature
    from detector.metrics import ece

    rng = np.random.default_rng(0)

    def toy(n):
        true = rng.normal(0, 1.5, n)
        y = (rng.random(n) < 1 / (1 + np.exp(-true))).astype(int)
        return 1 / (1 + np.exp(-4 * true)), y

    (pv, yv), (pt, yt) = toy(4000), toy(4000)
    t = fit_temperature(pv, yv)
    assert 3.3 < t < 4.8
    q = apply_temperature(pt, t)
    assert ece(yt, q) < 0.5 * ece(yt, pt) and ece(yt, q) < 0.03
    assert brier_score_loss(yt, q) < brier_score_loss(yt, pt)
    assert roc_auc_score(yt, q) == pytest.approx(roc_auc_score(yt, pt), abs=1e-4)  # (ties at the clipped ends)
    with pytest.raises(ValueError, match="both classes"):
        fit_temperature(pv, np.zeros_like(yv))


def test_robustness_sweep_perturbs_both_classes_of_real_faces(small_faces):
    """Real faces, 'fakes' = the same faces sharpened; a sharpness scorer separates them when clean,
    blur (applied to reals and fakes alike) erases the cue while saturation does not, and the sweep is
    seeded."""
    import cv2

    from detector.robustness import sweep
    from factory.ingest.facedata import decode, load_faces

    faces = np.stack([cv2.resize(decode(it["jpg"]), (64, 64), interpolation=cv2.INTER_AREA)
                      for it in load_faces(str(small_faces["dir"]), "train")[:40]])
    soft = cv2.GaussianBlur(faces.reshape(-1, 64, 3), (0, 0), 1.0).reshape(faces.shape).astype(np.float32)
    sharp = np.clip(faces + 1.5 * (faces - soft), 0, 255).astype(np.uint8)
    x = np.concatenate([faces, sharp])
    y = np.array([0] * len(faces) + [1] * len(sharp))
    metas = [{"perturbation": {"type": "none", "level": 0}}] * len(x)

    def sharpness(images):
        lap = np.array([cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for im in images])
        return lap / (lap + np.median(lap))

    curves = sweep({"lap": sharpness}, x, y, metas, jpeg_quality=95, max_faces=60, seed=0)["lap"]
    assert curves["faces"] == 60 and len(curves["blur"]) == 6
    assert curves["blur"][0] > 0.75 and curves["blur"][5] < curves["blur"][0] - 0.15
    assert curves["saturation"][5] > 0.7
    again = sweep({"lap": sharpness}, x, y, metas, jpeg_quality=95, max_faces=60, seed=0)["lap"]
    assert again == curves
    assert sweep({"lap": sharpness}, x, y, metas, 95, max_faces=0) == {}


def test_leave_one_method_out_reads_each_detector_on_its_held_out_method():
    from detector.evaluation import leave_one_method_out

    matrix = {"without_swap_big": {"swap": 0.7, "self_blend": 0.9}, "without_self_blend": {"swap": 0.8, "self_blend": 0.6},
              "resnet10t": {"swap": 0.99, "self_blend": 0.98}}
    assert leave_one_method_out(matrix) == {"without_swap_big": ("swap", 0.7), "without_self_blend": ("self_blend", 0.6)}

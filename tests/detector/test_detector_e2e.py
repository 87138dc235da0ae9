"""A tiny train_detector → evaluate run on the small factory dataset; all four detector adapters give
the same scores; folder mode on real faces with a bad file counted."""
import json
import os
import shutil
import sys
import types

import cv2
import numpy as np
import pytest
from tests.compose import compose_config as _compose

pytestmark = pytest.mark.slow


METHODS = {"swap", "warp_blend", "self_blend", "morph", "reenact", "partial"}


@pytest.fixture(scope="module")
def trained(small_dataset, tmp_path_factory):
    from pipelines.train_detector import main

    out = tmp_path_factory.mktemp("det")
    cfg = _compose("train_detector", [f"paths.output_dir={out}", f"dataset_dir={small_dataset['dir']}",
                                      "detector_model=resnet10t", "module=scratch", "trainer.max_epochs=2",
                                      "data.batch_size=16", "data.num_workers=0", "module.warmup_steps=2"])
    result = main.__wrapped__(cfg)
    return {"result": result, "dir": out / "detectors" / cfg.name, "data": small_dataset}


def test_training_writes_checkpoint_and_exports(trained):
    ckpts = trained["dir"] / "checkpoints"
    assert (ckpts / "best.ckpt").exists() and (ckpts / "model.pt").exists() and (ckpts / "model.onnx").exists()
    assert trained["result"]["best_score"] is not None
    assert (trained["dir"] / "logs" / "version_0" / "metrics.csv").exists()


def test_every_adapter_gives_the_same_scores(trained, tmp_path):
    from detector.adapters import TorchScorer, load_checkpoint_model, load_scorer
    from detector.evaluation import load_shard_faces

    faces, _, _ = load_shard_faces(str(trained["data"]["dir"]), "test", limit=20)
    ckpts = trained["dir"] / "checkpoints"
    model = load_checkpoint_model(str(ckpts / "best.ckpt"))
    mod = types.ModuleType("my_detector")
    mod.score = lambda batch: TorchScorer(model)(batch)
    sys.modules["my_detector"] = mod
    ref = load_scorer(str(ckpts / "best.ckpt"))(faces)
    assert ref.shape == (20,) and ((ref >= 0) & (ref <= 1)).all() and ref.std() > 0
    for spec in (str(ckpts / "model.pt"), str(ckpts / "model.onnx"), "my_detector:score"):
        np.testing.assert_allclose(load_scorer(spec)(faces), ref, atol=1e-5, err_msg=spec)
    with pytest.raises(ValueError, match="unknown detector spec"):
        load_scorer("model.h5")


def test_evaluate_on_shards_writes_the_report(trained, tmp_path):
    from pipelines.evaluate import main

    ckpt = trained["dir"] / "checkpoints" / "best.ckpt"
    cfg = _compose("evaluate", [f"paths.output_dir={tmp_path}", f"data.shards={trained['data']['dir']}",
                                "~detectors", f"+detectors={{a: {ckpt}, b: {ckpt.parent / 'model.onnx'}}}", "bootstrap=50",
                                f"out_dir={tmp_path / 'rep'}"])
    main.__wrapped__(cfg)
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    a = report["detectors"]["a"]
    assert report["data"]["n"] == 32 and set(report["method_matrix"]["a"]) == METHODS
    assert 0 <= a["overall"]["auc"] <= 1 and a["overall"]["threshold"] is not None and a["overall"]["ece"] >= 0
    assert any(k != "none:0" for k in a["per_perturbation"])
    assert len(a["sweep"]["jpeg"]) == 6 and a["sweep"]["faces"] > 0  # every level on the same clean faces
    assert a["per_source"] and set(a["per_source"]) <= {"celeba-wild", "celeba-aligned", "utkface"}
    hard = report["hardness"]
    assert set(hard["auc_hardest_third"]) == {"a", "b"} and set(hard["mean_difficulty_by_method"]) <= set(METHODS)
    difficulty = json.loads((tmp_path / "rep" / "difficulty.json").read_text())["difficulty"]
    assert len(difficulty) == report["data"]["n_fake"] and all(0 <= d <= 1 for d in difficulty.values())
    assert a["calibration"]["temperature"] > 0 and a["calibration"]["ece_after"] >= 0
    assert report["method_matrix"]["a"] == pytest.approx(report["method_matrix"]["b"], abs=1e-4)
    for png in ("roc.png", "robustness.png", "reliability.png"):
        assert (tmp_path / "rep" / png).stat().st_size > 1000
    assert "| a |" in (tmp_path / "rep" / "report.md").read_text()


def test_folder_mode_on_real_faces_counts_bad_files(trained, data_dir, small_faces, tmp_path):
    from pipelines.evaluate import main

    root = tmp_path / "folder"
    (root / "real").mkdir(parents=True)
    (root / "fake").mkdir()
    for f in small_faces["wild_files"][:4]:
        shutil.copy(data_dir / "celeba-wild" / "images" / f, root / "real" / f)
    from factory.common.shards import iter_samples

    for k, s in enumerate(iter_samples(str(trained["data"]["dir"]), "test")):
        if s["json"]["label"] == 1 and k < 30:
            cv2.imwrite(str(root / "fake" / f"{k}.png"), cv2.cvtColor(cv2.resize(s["jpg"], (160, 160)), cv2.COLOR_RGB2BGR))
    (root / "fake" / "broken.jpg").write_bytes(b"not a jpeg")
    ckpt = trained["dir"] / "checkpoints" / "best.ckpt"
    cfg = _compose("evaluate", [f"paths.output_dir={tmp_path}", f"data.folder={root}", "~detectors", f"+detectors={{a: {ckpt}}}",
                                "bootstrap=20", f"out_dir={tmp_path / 'rep'}", "data.shards=null"])
    main.__wrapped__(cfg)
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    d = report["data"]
    assert d["skipped_by_reason"].get("not_an_image", 0) + d["skipped_by_reason"].get("truncated", 0) >= 1
    assert d["n_real"] == 4 and d["n_fake"] >= 5
    assert d["n"] + d["skipped"] == len(os.listdir(root / "real")) + len(os.listdir(root / "fake"))


def test_evaluate_scores_full_images(trained, full_image_dataset, tmp_path):
    """Full-image shards: each labelled face is found in its photo, aligned and scored; nothing is lost silently."""
    from pipelines.evaluate import main

    ckpt = trained["dir"] / "checkpoints" / "best.ckpt"
    cfg = _compose("evaluate", [f"paths.output_dir={tmp_path}", f"data.shards={full_image_dataset['dir']}",
                                "data.image_key=image.jpg", "~detectors", f"+detectors={{a: {ckpt}}}", "bootstrap=20",
                                "robustness_faces=0", f"out_dir={tmp_path / 'rep'}"])
    main.__wrapped__(cfg)
    d = json.loads((tmp_path / "rep" / "report.json").read_text())["data"]
    assert "image.jpg" in d["source"]
    assert d["n"] + d["skipped"] == full_image_dataset["stats"]["splits"]["test"]["samples"]
    assert d["n"] >= 0.8 * full_image_dataset["stats"]["splits"]["test"]["samples"]


def test_detect_scores_every_face_and_names_unusable_files(trained, data_dir, small_faces, tmp_path, capsys):
    from pipelines.detect import main

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(data_dir / "celeba-wild" / "images" / small_faces["wild_files"][0], folder / "a.jpg")
    (folder / "b.jpg").write_bytes(b"")
    ckpt = trained["dir"] / "checkpoints" / "model.onnx"
    rows = main.__wrapped__(_compose("detect", [f"input={folder}", f"detector={ckpt}"]))
    faces = [r for r in rows if "p_fake" in r]
    assert faces and all(0 <= r["p_fake"] <= 1 for r in faces) and faces[0]["file"].endswith("a.jpg")
    assert [r["skipped"] for r in rows if "skipped" in r] == ["empty_file"]
    assert "p(fake)" in capsys.readouterr().out


def test_shipped_detector_loads_safely_scores_alike_and_continues(trained, tmp_path):
    """`ship_detector` writes fp16 weights + manifest; they load with `weights_only` and score as the
    checkpoint does (within fp16); `init_from` continues them, keeping the lineage; a detector of
    another backbone is refused."""
    import torch

    from detector.adapters import load_scorer
    from detector.evaluation import load_shard_faces
    from detector.module import DetectorModule
    from detector.shipped import load_detector, ship_detector
    from factory.common.model_files import ModelFileError

    ckpt = trained["dir"] / "checkpoints" / "best.ckpt"
    manifest = ship_detector(str(ckpt), str(tmp_path), {"train_seconds": 1.0, "figures": {"test_auc": 0.5}})
    path = tmp_path / "detector.pt"
    torch.load(path, map_location="cpu", weights_only=True)
    assert json.loads((tmp_path / "detector.json").read_text())["sha256"] == manifest["sha256"]
    faces, _, _ = load_shard_faces(str(trained["data"]["dir"]), "test", limit=16)
    np.testing.assert_allclose(load_scorer(str(path))(faces), load_scorer(str(ckpt))(faces), atol=2e-3)
    size = load_detector(str(path)).input_size
    module = DetectorModule({"_target_": "detector.models.Detector", "backbone": "resnet10t", "input_size": size})
    module.load_shipped(str(path))
    assert module.lineage[-1]["sha256"] == manifest["sha256"]
    x = torch.rand(2, 3, size, size)
    torch.testing.assert_close(module.model.eval()(x), load_detector(str(path))(x))
    other = DetectorModule({"_target_": "detector.models.Detector", "backbone": "resnet18", "input_size": size})
    with pytest.raises(ModelFileError, match="resnet10t"):
        other.load_shipped(str(path))


def test_evaluate_ships_the_detector_and_measures_the_shipped_file(trained, tmp_path):
    from pipelines.evaluate import main

    ckpt = trained["dir"] / "checkpoints" / "best.ckpt"
    cfg = _compose("evaluate", [f"paths.output_dir={tmp_path}", f"data.shards={trained['data']['dir']}",
                                "~detectors", f"+detectors={{a: {ckpt}}}", "bootstrap=20", "robustness_faces=8",
                                f"out_dir={tmp_path / 'rep'}", f"ship_dir={tmp_path / 'weights'}"])
    main.__wrapped__(cfg)
    manifest = json.loads((tmp_path / "weights" / "detector.json").read_text())
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert manifest["figures"]["auc"] == report["detectors"]["a"]["overall"]["auc"]
    assert report["data"]["detectors"]["a"].endswith("detector.pt")  # the shipped file is what was measured
    assert manifest["train_seconds"] is None or manifest["train_seconds"] > 0
    assert manifest["data"]["root"] and not manifest["data"]["root"].startswith("/")
    assert set(manifest["figures"]["per_method_auc"]) == METHODS

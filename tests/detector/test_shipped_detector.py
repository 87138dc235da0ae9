"""The detector committed under weights/: its manifest matches the file, it loads with `weights_only`, it
is small, the README quotes the figure it was measured at, and a fresh clone scores a face with it."""
import hashlib
import json
import subprocess
import sys

import pytest
import torch

from factory.common.paths import REPO_ROOT

WEIGHTS = REPO_ROOT / "weights"


def test_shipped_detector_matches_its_manifest_and_loads_safely():
    from detector.shipped import load_detector

    manifest = json.loads((WEIGHTS / "detector.json").read_text())
    blob = (WEIGHTS / manifest["file"]).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == manifest["sha256"] and len(blob) == manifest["bytes"] < 30e6
    torch.load(WEIGHTS / manifest["file"], map_location="cpu", weights_only=True)
    model = load_detector(str(WEIGHTS / manifest["file"]))
    assert (model.backbone_name, model.input_size) == (manifest["config"]["backbone"], manifest["config"]["input_size"])
    assert manifest["total_train_seconds"] > 0 and manifest["figures"]["auc"] > 0.5
    assert f'{manifest["figures"]["auc"]:.3f}' in (REPO_ROOT / "README.md").read_text()


@pytest.mark.slow
def test_detect_on_a_fresh_clone_prints_a_probability(data_dir, tmp_path):
    """Nothing trained locally (an empty output folder): `detect` falls back to the shipped detector."""
    photo = next((data_dir / "celeba-wild" / "images").iterdir())
    run = subprocess.run([sys.executable, "-m", "pipelines.detect", str(photo), f"paths.output_dir={tmp_path}"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "shipped" in run.stdout and "p(fake)" in run.stdout, run.stdout

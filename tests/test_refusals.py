"""Every model file a user can hand in is read one way: a file that cannot be used ends `detect`,
`evaluate` and `generate` with one line on stderr (the file, the reason) and a non-zero exit, and a
pickle that would run code is refused without running it."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest
import torch
from tests.compose import compose_config

from factory.common.paths import REPO_ROOT

pytestmark = pytest.mark.slow


class Bomb:
    """Unpickling this runs a shell command that leaves a file behind."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, tiny_swapper_ckpt) -> dict:
    """name → (file, what the one-line refusal must say)."""
    from factory.identity.training import IdentityModule

    root = tmp_path_factory.mktemp("bad_models")
    marker = root / "bomb_went_off"
    files = {}
    torch.save({"state_dict": Bomb(str(marker))}, root / "zip_bomb.ckpt")  # torch's zip format
    files["zip_bomb"] = (root / "zip_bomb.ckpt", "unsafe content refused")
    (root / "plain_bomb.pt").write_bytes(pickle.dumps({"state_dict": Bomb(str(marker))}))  # a bare pickle
    files["plain_bomb"] = (root / "plain_bomb.pt", "unsafe content refused")
    (root / "garbage.ckpt").write_bytes(os.urandom(4096))
    files["garbage"] = (root / "garbage.ckpt", "not a model file")
    whole = open(tiny_swapper_ckpt, "rb").read()
    (root / "truncated.ckpt").write_bytes(whole[: len(whole) // 2])
    files["truncated"] = (root / "truncated.ckpt", "truncated")
    module = IdentityModule({"backbone": "resnet10t", "input_size": 64}, num_classes=4, margin={})
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, root / "identity.ckpt")
    files["identity_checkpoint"] = (root / "identity.ckpt", "another kind")
    files["missing"] = (root / "nothing_here.ckpt", "not found")
    return {"files": files, "marker": marker}


def _overrides(pipeline: str, path: str, tmp_path, data_dir, small_dataset) -> list[str]:
    photo = next((data_dir / "celeba-wild" / "images").iterdir())
    return {
        "detect": [f"input={photo}", f"detector={path}"],
        "evaluate": [f"data.shards={small_dataset['dir']}", "~detectors", f"+detectors={{a: {path}}}"],
        "generate": [f"methods.swap.checkpoint={path}", f"faces_dir={small_dataset['faces']['dir']}",
                     f"out_dir={tmp_path / 'gen'}"],
    }[pipeline] + [f"paths.output_dir={tmp_path}"]


@pytest.mark.parametrize("pipeline", ["detect", "evaluate", "generate"])
@pytest.mark.parametrize("kind", ["zip_bomb", "plain_bomb", "garbage", "truncated", "identity_checkpoint", "missing"])
def test_bad_model_file_is_one_line_and_non_zero(pipeline, kind, bad_files, tmp_path, data_dir, small_dataset, capsys):
    import importlib

    path, reason = bad_files["files"][kind]
    main = importlib.import_module(f"pipelines.{pipeline}").main
    cfg = compose_config(pipeline, _overrides(pipeline, str(path), tmp_path, data_dir, small_dataset))
    with pytest.raises(SystemExit) as stop:
        main.__wrapped__(cfg)
    assert stop.value.code not in (0, None)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and str(path) in err[0] and reason in err[0], err
    assert not bad_files["marker"].exists(), "the pickled command ran"


def test_refusal_on_the_command_line_is_one_line(bad_files, data_dir, tmp_path):
    """The same through `python -m` (Hydra's own error printing would add a stack trace)."""
    path, _ = bad_files["files"]["zip_bomb"]
    photo = next((data_dir / "celeba-wild" / "images").iterdir())
    run = subprocess.run([sys.executable, "-m", "pipelines.detect", str(photo), f"detector={path}",
                          f"paths.output_dir={tmp_path}", "hydra.run.dir=" + str(tmp_path / "h")],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    err = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(err) == 1 and "unsafe content refused" in err[0], run.stderr
    assert not bad_files["marker"].exists()

"""One uniform test over every detector variant in conf/detector_model (timm style)."""
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from factory.common.paths import CONF_DIR

VARIANTS = sorted(p.stem for p in (Path(CONF_DIR) / "detector_model").glob("*.yaml"))


def test_the_issue_families_are_there():
    names = " ".join(VARIANTS)
    assert "resnet" in names and "efficientnet" in names and "xception" in names


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_gives_one_logit_per_face_and_trains(name, tmp_path):
    cfg = OmegaConf.load(Path(CONF_DIR) / "detector_model" / f"{name}.yaml")
    cfg.input_size = 64
    torch.manual_seed(0)
    model = instantiate(cfg)
    faces = torch.rand(3, 3, 80, 80)  # any size: resized to the model's input inside
    logits = model(faces)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # a local weights file is accepted (nothing is downloaded); its backbone is loaded, the head is new
    torch.save(model.net.state_dict(), tmp_path / "w.pth")
    cfg.pretrained_path = str(tmp_path / "w.pth")
    again = instantiate(cfg).eval()
    model.eval()
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(again.net.forward_features(x), model.net.forward_features(x))

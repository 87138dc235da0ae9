"""The packaged ImageNet weights load into timm correctly: the network still recognises an ImageNet photo
(a wrong mapping is near uniform), and a detector or any head takes all but its classifier."""
import os

import matplotlib
import numpy as np
import pytest
import timm
import torch
from PIL import Image

from factory.common.pretrained import REGISTRY, imagenet_state_dict, load_imagenet

MILITARY_UNIFORM = 652  # ImageNet class of matplotlib's Grace Hopper photo


def _grace_hopper(size: int = 224) -> torch.Tensor:
    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    image = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC), np.float32) / 255
    return torch.from_numpy(image).permute(2, 0, 1)[None]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_packaged_weights_recognise_an_imagenet_photo(name):
    net = timm.create_model(name, pretrained=False, num_classes=1000).eval()
    net.load_state_dict(imagenet_state_dict(name, net))
    cfg = net.pretrained_cfg
    x = (_grace_hopper() - torch.tensor(cfg["mean"]).view(1, 3, 1, 1)) / torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        p = net(x).softmax(1)[0]
    assert int(p.argmax()) == MILITARY_UNIFORM and float(p.max()) > 0.3, (int(p.argmax()), float(p.max()))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_any_head_takes_the_backbone(name):
    ref = timm.create_model(name, pretrained=False, num_classes=1000)
    ref.load_state_dict(imagenet_state_dict(name, ref))
    net = load_imagenet(timm.create_model(name, pretrained=False, num_classes=1), name)
    same = [k for k, v in net.state_dict().items() if not k.startswith("classifier")]
    assert same and all(torch.equal(net.state_dict()[k], ref.state_dict()[k]) for k in same)


def test_detector_starts_from_imagenet():
    from detector.models import Detector

    torch.manual_seed(0)
    a = Detector("tf_efficientnet_lite0", 128, imagenet=True)
    b = Detector("tf_efficientnet_lite0", 128, imagenet=False)
    assert not torch.equal(a.net.conv_stem.weight, b.net.conv_stem.weight)
    assert a.head_parameters() and all(p.shape[0] == 1 for p in a.head_parameters())


def test_unknown_backbone_is_refused_in_one_line():
    with pytest.raises(KeyError, match="no packaged ImageNet weights for 'resnet10t'"):
        load_imagenet(timm.create_model("resnet10t", num_classes=1), "resnet10t")


def test_identity_encoder_starts_from_imagenet():
    """The margin-loss encoder (claim 3) loads the same packaged weights through the same loader."""
    from factory.identity.encoders import TimmEncoder

    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    ref.load_state_dict(imagenet_state_dict("tf_efficientnet_lite0", ref))
    enc = TimmEncoder("tf_efficientnet_lite0", input_size=112, imagenet=True)
    assert torch.equal(enc.backbone.conv_stem.weight, ref.conv_stem.weight)
    assert enc(torch.rand(2, 3, 128, 128)).shape == (2, 256)

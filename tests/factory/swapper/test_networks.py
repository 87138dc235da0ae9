"""Shapes, ranges and determinism of the swapper networks (training is tested in its own module)."""
import pytest
import torch

from factory.identity.encoders import DlibEncoder, TimmEncoder
from factory.swapper.networks import ConsistencyDiscriminator, FaceSwapper, to_canonical


@pytest.mark.parametrize("make,refine,size", [(lambda: TimmEncoder(input_size=64), 0, 64), (DlibEncoder, 0, 64),
                                              (DlibEncoder, 1, 64), (DlibEncoder, 2, 128)],
                         ids=["vector", "vector+maps", "vector+maps+refine", "128px"])
def test_swapper_shapes_range_and_determinism(make, refine, size):
    torch.manual_seed(0)
    sw = FaceSwapper(make(), size=size, width=8, refine=refine)
    a, b = torch.rand(3, 3, 128, 128), torch.rand(3, 3, 128, 128)
    sw.calibrate(torch.cat([a, b]))
    out = sw.swap(a, b, batch_size=2)
    assert out.shape == (3, 3, size, size) and out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(sw.swap(a, b), out)
    vec, maps = sw.identity_features(b)
    assert len(maps) == len(sw.identity.map_channels)
    torch.testing.assert_close(vec.norm(dim=1), torch.ones(3))
    other = sw(a, (torch.roll(vec, 1, 0), [torch.roll(m, 1, 0) for m in maps])).detach()
    assert (other - out).abs().mean() > 1e-4  # the decoder reads the identity features
    assert not any(p.requires_grad for p in sw.identity.parameters())
    sw.train()
    assert sw.texture.training and not sw.identity.training  # frozen encoder keeps its BN statistics


def test_centring_spreads_nearly_parallel_descriptors():
    sw = FaceSwapper(TimmEncoder(input_size=64), size=64, width=8)
    people = torch.nn.functional.normalize(torch.ones(3, 256) + 0.2 * torch.eye(256)[:3], dim=1)
    sw.centre.copy_(people.mean(0))
    a, b = people[:1], people[1:2]
    assert float((a * b).sum()) > 0.99  # raw: nearly parallel
    assert float((sw.centred(a) * sw.centred(b)).sum()) < 0.0  # centred: apart


def test_to_canonical_places_the_encoder_frame():
    m = torch.zeros(1, 1, 8, 8)
    m[..., 4:, 4:] = 1.0  # the bottom-right quarter of the box
    out = to_canonical(m, (0.5, 0.5, 1.0, 1.0), 16)  # the box is the crop's bottom-right quarter
    assert out[..., 12:, 12:].mean() > 0.9 and out[..., :8, :].abs().max() < 1e-6 and out[..., :, :8].abs().max() < 1e-6


def test_discriminator_is_identity_conditioned():
    torch.manual_seed(0)
    d = ConsistencyDiscriminator(id_dim=16, width=8)
    face, ident = torch.rand(2, 3, 64, 64), torch.nn.functional.normalize(torch.randn(2, 16), dim=1)
    outs = d(face, ident)
    assert [o.shape for o in outs] == [(2, 1, 8, 8), (2, 1, 4, 4)]
    assert (d(face, -ident)[0] - outs[0]).abs().mean() > 0

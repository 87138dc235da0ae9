"""Shapes, ranges and determinism of the swapper networks (training is tested in its own module)."""
import torch

from factory.identity import TimmEncoder
from factory.swapper import ConsistencyDiscriminator, FaceSwapper


def test_swapper_shapes_range_and_determinism():
    torch.manual_seed(0)
    sw = FaceSwapper(TimmEncoder(input_size=64), size=64, width=8)
    a, b = torch.rand(3, 3, 128, 128), torch.rand(3, 3, 128, 128)
    out = sw.swap(a, b, batch_size=2)
    assert out.shape == (3, 3, 64, 64) and out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(sw.swap(a, b), out)
    ident = sw.identity(b)
    other = sw(a, torch.roll(ident, 1, 0)).detach()
    assert (other - out).abs().mean() > 1e-4  # the decoder reads the identity vector
    assert not any(p.requires_grad for p in sw.identity.parameters())
    sw.train()
    assert sw.texture.training and not sw.identity.training  # frozen encoder keeps its BN statistics


def test_discriminator_is_identity_conditioned():
    torch.manual_seed(0)
    d = ConsistencyDiscriminator(id_dim=16, width=8)
    face, ident = torch.rand(2, 3, 64, 64), torch.nn.functional.normalize(torch.randn(2, 16), dim=1)
    outs = d(face, ident)
    assert [o.shape for o in outs] == [(2, 1, 8, 8), (2, 1, 4, 4)]
    assert (d(face, -ident)[0] - outs[0]).abs().mean() > 0

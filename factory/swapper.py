"""The method's generator networks (claims 1-2): texture encoder, decoder of [texture ‖ identity],
consistency discriminator, and the `FaceSwapper` apparatus that holds them.

Shapes at the default 64 px: texture features are maps at 32, 16 and 8 px; the identity vector is
broadcast over the 8 px map and *concatenated* with the texture map there (the claim's
concatenation), and also modulates every decoder stage (AdaIN, as SimSwap's ID-injection) so the
decoder cannot ignore it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from factory.identity import IdentityEncoder


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.InstanceNorm2d(cout, affine=True), nn.LeakyReLU(0.2))


class TextureEncoder(nn.Module):
    """Face → multi-scale texture maps (everything but identity): the generator half of the GAN."""

    def __init__(self, width: int = 32, levels: int = 3):
        super().__init__()
        chans = [width * 2**i for i in range(levels + 1)]
        self.stem = _conv(3, chans[0])
        self.downs = nn.ModuleList(nn.Sequential(_conv(chans[i], chans[i + 1], 2), _conv(chans[i + 1], chans[i + 1]))
                                   for i in range(levels))
        self.channels = chans[1:]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x in [0, 1] → [fine … coarse] feature maps (x/2, x/4, …)."""
        h, out = self.stem(x * 2 - 1), []
        for down in self.downs:
            h = down(h)
            out.append(h)
        return out


class AdaIN(nn.Module):
    """Instance-normalise and re-style a map with scale/shift predicted from the identity vector."""

    def __init__(self, channels: int, id_dim: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.style = nn.Linear(id_dim, 2 * channels)

    def forward(self, h: torch.Tensor, ident: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.style(ident)[:, :, None, None].chunk(2, dim=1)
        return self.norm(h) * (1 + gamma) + beta


class IdBlock(nn.Module):
    """Residual block whose two convolutions are identity-modulated."""

    def __init__(self, channels: int, id_dim: int):
        super().__init__()
        self.c1, self.n1 = nn.Conv2d(channels, channels, 3, 1, 1), AdaIN(channels, id_dim)
        self.c2, self.n2 = nn.Conv2d(channels, channels, 3, 1, 1), AdaIN(channels, id_dim)

    def forward(self, h: torch.Tensor, ident: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.n1(self.c1(h), ident), 0.2)
        return h + self.n2(self.c2(y), ident)


class Decoder(nn.Module):
    """Decode concat[texture map, broadcast identity] into a face.

    The coarsest texture map and the broadcast identity are concatenated and fused, `blocks`
    identity-modulated residual blocks follow, then each upsampling stage adds the finer texture map
    through a learned gate (where to keep the target's attributes, as FaceShifter's AAD masks) and is
    re-styled by the identity (AdaIN). Gates and AdaIN are cheap; the convolutions are the cost.
    """

    def __init__(self, channels: list[int], id_dim: int, blocks: int = 2):
        super().__init__()
        coarse = channels[-1]
        self.fuse = nn.Conv2d(coarse + id_dim, coarse, 1)
        self.bottleneck = nn.ModuleList(IdBlock(coarse, id_dim) for _ in range(blocks))
        self.ups, self.gates, self.mods = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        outs = channels[::-1][1:] + [channels[0] // 2]
        for i, (cin, cout) in enumerate(zip(channels[::-1], outs)):
            self.ups.append(nn.Conv2d(cin, cout, 3, 1, 1))
            self.mods.append(AdaIN(cout, id_dim))
            if i < len(channels) - 1:
                self.gates.append(nn.Conv2d(2 * cout, cout, 1))
        self.out = nn.Conv2d(channels[0] // 2, 3, 3, 1, 1)

    def forward(self, texture: list[torch.Tensor], ident: torch.Tensor) -> torch.Tensor:
        h = texture[-1]
        h = self.fuse(torch.cat([h, ident[:, :, None, None].expand(-1, -1, *h.shape[2:])], dim=1))
        for block in self.bottleneck:
            h = block(h, ident)
        fine = texture[:-1][::-1]
        for i, (up, mod) in enumerate(zip(self.ups, self.mods)):
            h = up(F.interpolate(h, scale_factor=2, mode="nearest"))
            if i < len(fine):
                gate = torch.sigmoid(self.gates[i](torch.cat([h, fine[i]], dim=1)))
                h = h + gate * fine[i]
            h = F.leaky_relu(mod(h, ident), 0.2)
        return torch.sigmoid(self.out(h))


class ConsistencyDiscriminator(nn.Module):
    """Multi-scale patch discriminator of (face, identity vector): projection-conditioned on the
    identity the face should carry, so it judges realism *and* consistency with the face it came from.

    Its real pairs are a face with the identity of *another view* of that person (another photo, or an
    augmented view), never the trivially identical pair (see ../shared/DESIGN.md's pitfall).
    """

    def __init__(self, id_dim: int, width: int = 32, scales: int = 2, layers: int = 3):
        super().__init__()
        self.nets, self.proj = nn.ModuleList(), nn.ModuleList()
        for _ in range(scales):
            mods, c = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2)], width
            for _ in range(layers - 1):
                mods += [nn.Conv2d(c, c * 2, 4, 2, 1), nn.InstanceNorm2d(c * 2, affine=True), nn.LeakyReLU(0.2)]
                c *= 2
            self.nets.append(nn.Sequential(*mods))
            self.proj.append(nn.ModuleDict({"out": nn.Conv2d(c, 1, 3, 1, 1), "id": nn.Linear(id_dim, c, bias=False)}))

    def forward(self, face: torch.Tensor, ident: torch.Tensor) -> list[torch.Tensor]:
        """Patch logits per scale (B x 1 x h x w)."""
        outs, x = [], face * 2 - 1
        for net, proj in zip(self.nets, self.proj):
            f = net(x)
            outs.append(proj["out"](f) + (f * proj["id"](ident)[:, :, None, None]).sum(1, keepdim=True) / f.shape[1] ** 0.5)
            x = F.avg_pool2d(x, 2)
        return outs


class FaceSwapper(nn.Module):
    """The apparatus: texture of A + identity of B → face with A's texture and B's identity, in A's frame.

    Faces are canonical crops in [0, 1] at any size; the networks run at `size` px and the result is
    returned at `size` px.
    """

    def __init__(self, identity: IdentityEncoder, size: int = 64, width: int = 32, levels: int = 3, blocks: int = 2):
        super().__init__()
        self.size = size
        self.identity = identity.eval().requires_grad_(False)
        self.texture = TextureEncoder(width, levels)
        self.decoder = Decoder(self.texture.channels, identity.embedding_dim, blocks)

    def train(self, mode: bool = True) -> "FaceSwapper":
        """Train the texture encoder and decoder; the identity encoder stays frozen in eval mode
        (its BatchNorm statistics and dropout must not change under Lightning's `.train()`)."""
        super().train(mode)
        self.identity.eval()
        return self

    def resize(self, faces: torch.Tensor) -> torch.Tensor:
        if faces.shape[-1] == self.size:
            return faces
        return F.interpolate(faces, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)

    def forward(self, texture_faces: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        """Decode [texture(A) ‖ identity vector] (identity already embedded)."""
        return self.decoder(self.texture(self.resize(texture_faces)), identity)

    @torch.inference_mode()
    def swap(self, texture_faces: torch.Tensor, identity_faces: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Batched swap: B faces with the texture of `texture_faces` and identity of `identity_faces`."""
        self.eval()
        out = []
        for i in range(0, len(texture_faces), batch_size):
            ident = self.identity(identity_faces[i:i + batch_size])
            out.append(self(texture_faces[i:i + batch_size], ident))
        return torch.cat(out)

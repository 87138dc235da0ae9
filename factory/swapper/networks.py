"""The method's generator networks (claims 1-2): texture encoder, decoder of [texture ‖ identity],
consistency discriminator, and the `FaceSwapper` apparatus that holds them.

Shapes at the default 64 px: texture features are maps at 32, 16 and 8 px. The identity features of
the frozen recogniser are its embedding *and* two of its intermediate maps (resampled into the
canonical frame): the vector and the coarse map are *concatenated* with the 8 px texture map (the
claim's concatenation), the finer map joins at 16 px, and the vector also re-styles every decoder
stage (AdaIN, as SimSwap's ID-injection).

Why the maps and the centring (measured, ../shared/DESIGN.md): raw unit descriptors of different
people are nearly parallel (dlib: cosine 0.84 between people, 0.94 within one), so a decoder fed the
raw 128-d vector could not tell sources apart and learnt to ignore it. The vector is therefore centred
on the training faces' mean descriptor and re-normalised; and since a 128-d vector steers a small
decoder only slowly, the recogniser's own maps of the source — what the network sees of that face —
are given beside it, each channel standardised on the same training faces.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from factory.common.model_files import ModelFileError
from factory.common.paths import sha256_file
from factory.identity.encoders import IdentityEncoder


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

    def __init__(self, channels: list[int], id_dim: int, blocks: int = 2, map_channels: tuple[int, ...] = (),
                 refine: int = 0):
        super().__init__()
        coarse = channels[-1]
        self.map_channels = tuple(map_channels)
        first = map_channels[0] if map_channels else 0
        self.fuse = nn.Conv2d(coarse + id_dim + first, coarse, 1)
        self.bottleneck = nn.ModuleList(IdBlock(coarse, id_dim) for _ in range(blocks))
        self.ups, self.gates, self.mods = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        outs = channels[::-1][1:] + [channels[0] // 2]
        for i, (cin, cout) in enumerate(zip(channels[::-1], outs)):
            self.ups.append(nn.Conv2d(cin, cout, 3, 1, 1))
            self.mods.append(AdaIN(cout, id_dim))
            if i < len(channels) - 1:
                self.gates.append(nn.Conv2d(2 * cout, cout, 1))
        # finer identity maps join the first upsampling stages (concatenated, fused by a 1x1 conv)
        self.map_fuse = nn.ModuleList(nn.Conv2d(c + mc, c, 1) for c, mc in zip(outs, map_channels[1:]))
        self.refine = nn.ModuleList(Refine(channels[0] // 2) for _ in range(refine))
        self.out = nn.Conv2d(channels[0] // 2, 3, 3, 1, 1)

    def forward(self, texture: list[torch.Tensor], ident: torch.Tensor,
                maps: list[torch.Tensor] | None = None) -> torch.Tensor:
        """texture maps (fine … coarse), identity vector (B x D) and identity maps (coarse first, in the
        canonical frame, any size) → face in [0, 1]."""
        maps = maps or []
        if len(maps) != len(self.map_channels):
            raise ValueError(f"decoder expects {len(self.map_channels)} identity maps, got {len(maps)}")
        h = texture[-1]
        parts = [h, ident[:, :, None, None].expand(-1, -1, *h.shape[2:])]
        if maps:
            parts.append(_resize(maps[0], h.shape[-1]))
        h = self.fuse(torch.cat(parts, dim=1))
        for block in self.bottleneck:
            h = block(h, ident)
        fine = texture[:-1][::-1]
        for i, (up, mod) in enumerate(zip(self.ups, self.mods)):
            h = up(F.interpolate(h, scale_factor=2, mode="nearest"))
            if i < len(self.map_fuse):
                h = self.map_fuse[i](torch.cat([h, _resize(maps[i + 1], h.shape[-1])], dim=1))
            if i < len(fine):
                gate = torch.sigmoid(self.gates[i](torch.cat([h, fine[i]], dim=1)))
                h = h + gate * fine[i]
            h = F.leaky_relu(mod(h, ident), 0.2)
        for block in self.refine:
            h = block(h)
        return torch.sigmoid(self.out(h))


class Refine(nn.Module):
    """Residual block at the output resolution, twice as wide inside: capacity for detail where the
    decoder is thinnest (its last stage has `width` channels). The last convolution starts at zero, so
    adding blocks to trained weights leaves their output unchanged until training moves them."""

    def __init__(self, channels: int):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(channels, 2 * channels, 3, 1, 1), nn.Conv2d(2 * channels, channels, 3, 1, 1)
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.c2(F.leaky_relu(self.c1(h), 0.2))


def _resize(m: torch.Tensor, size: int) -> torch.Tensor:
    if m.shape[-1] == size:
        return m
    return F.interpolate(m, size=(size, size), mode="bilinear", antialias=m.shape[-1] > size, align_corners=False)


def to_canonical(m: torch.Tensor, box: tuple[float, float, float, float], size: int) -> torch.Tensor:
    """Resample a map that covers `box` of the canonical crop (the encoder's frame) onto the whole
    canonical crop at `size` px, so identity maps line up with the decoder's texture maps."""
    x0, y0, x1, y1 = box
    if box == (0.0, 0.0, 1.0, 1.0):
        return _resize(m, size)
    w, h = x1 - x0, y1 - y0
    theta = torch.tensor([[1 / w, 0.0, (1 - 2 * x0 - w) / w], [0.0, 1 / h, (1 - 2 * y0 - h) / h]],
                         dtype=m.dtype, device=m.device)
    grid = F.affine_grid(theta.expand(m.shape[0], 2, 3), [m.shape[0], m.shape[1], size, size], align_corners=False)
    return F.grid_sample(m, grid, mode="bilinear", padding_mode="border", align_corners=False)


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

    def forward(self, face: torch.Tensor, ident: torch.Tensor, features: bool = False):
        """Patch logits per scale (B x 1 x h x w); with `features`, also every layer's activations (for
        SimSwap's feature-matching loss)."""
        outs, feats, x = [], [], face * 2 - 1
        for net, proj in zip(self.nets, self.proj):
            f = x
            for layer in net:
                f = layer(f)
                if features and isinstance(layer, nn.LeakyReLU):
                    feats.append(f)
            outs.append(proj["out"](f) + (f * proj["id"](ident)[:, :, None, None]).sum(1, keepdim=True) / f.shape[1] ** 0.5)
            x = F.avg_pool2d(x, 2)
        return (outs, feats) if features else outs


class FaceSwapper(nn.Module):
    """The apparatus: texture of A + identity of B → face with A's texture and B's identity, in A's frame.

    Faces are canonical crops in [0, 1] at any size; the networks run at `size` px and the result is
    returned at `size` px. `calibrate` fixes the identity centring from training faces (saved with the
    weights); `identity_features` is what the decoder is given of a source face.
    """

    def __init__(self, identity: IdentityEncoder, size: int = 64, width: int = 32, levels: int = 3, blocks: int = 2,
                 id_maps: bool = True, refine: int = 0):
        super().__init__()
        self.size, self.levels = size, levels
        self.identity = identity.eval().requires_grad_(False)
        self.texture = TextureEncoder(width, levels)
        map_channels = tuple(identity.map_channels[: levels - 1]) if id_maps else ()
        self.decoder = Decoder(self.texture.channels, identity.embedding_dim, blocks, map_channels, refine)
        self.register_buffer("centre", torch.zeros(identity.embedding_dim))
        for i, c in enumerate(map_channels):
            self.register_buffer(f"map_mean{i}", torch.zeros(c))
            self.register_buffer(f"map_std{i}", torch.ones(c))
        self.register_buffer("calibrated", torch.tensor(False))

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

    def _raw_features(self, faces: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        vec, maps = self.identity.features(self.resize(faces))
        n = len(self.decoder.map_channels)
        return vec, [to_canonical(m, self.identity.box, self.size // 2 ** (self.levels - i)) for i, m in enumerate(maps[:n])]

    @torch.no_grad()
    def calibrate(self, faces: torch.Tensor, batch_size: int = 64) -> None:
        """Mean descriptor and per-channel map statistics of (training) faces: the centring."""
        vecs, sums, sq, count = [], None, None, 0
        for i in range(0, len(faces), batch_size):
            vec, maps = self._raw_features(faces[i:i + batch_size])
            vecs.append(vec)
            m1 = [m.mean(dim=(2, 3)).sum(0) for m in maps]
            m2 = [(m ** 2).mean(dim=(2, 3)).sum(0) for m in maps]
            sums = m1 if sums is None else [a + b for a, b in zip(sums, m1)]
            sq = m2 if sq is None else [a + b for a, b in zip(sq, m2)]
            count += len(vec)
        self.centre.copy_(torch.cat(vecs).mean(0))
        for i, (s1, s2) in enumerate(zip(sums or [], sq or [])):
            mean = s1 / count
            getattr(self, f"map_mean{i}").copy_(mean)
            getattr(self, f"map_std{i}").copy_((s2 / count - mean ** 2).clamp_min(1e-8).sqrt())
        self.calibrated.fill_(True)

    def centred(self, vec: torch.Tensor) -> torch.Tensor:
        """Unit descriptors re-centred on the training faces' mean and re-normalised."""
        return F.normalize(vec - self.centre, dim=1)

    def identity_features(self, faces: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """What the decoder is given of a source face: centred vector + standardised recogniser maps."""
        vec, maps = self._raw_features(faces)
        maps = [(m - getattr(self, f"map_mean{i}")[:, None, None]) / getattr(self, f"map_std{i}")[:, None, None]
                for i, m in enumerate(maps)]
        return self.centred(vec), maps

    def forward(self, texture_faces: torch.Tensor, identity: tuple[torch.Tensor, list[torch.Tensor]]) -> torch.Tensor:
        """Decode [texture(A) ‖ identity features] (identity already extracted by `identity_features`)."""
        vec, maps = identity
        return self.decoder(self.texture(self.resize(texture_faces)), vec, maps)

    def shipped_state(self) -> dict[str, torch.Tensor]:
        """Texture encoder, decoder and centring — everything but the frozen recogniser (it ships in its
        own package)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("identity.")}

    @torch.inference_mode()
    def swap(self, texture_faces: torch.Tensor, identity_faces: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Batched swap: B faces with the texture of `texture_faces` and identity of `identity_faces`."""
        self.eval()
        out = []
        for i in range(0, len(texture_faces), batch_size):
            ident = self.identity_features(identity_faces[i:i + batch_size])
            out.append(self(texture_faces[i:i + batch_size], ident))
        return torch.cat(out)


def save_shipped(swapper: FaceSwapper, config: dict, path: str, manifest: dict | None = None) -> str:
    """Write the swapper's own weights (fp16: half the size, swaps within 1/255) with the config that
    rebuilds it; returns the file's sha256."""
    import os

    state = {k: (v.half() if v.is_floating_point() else v) for k, v in swapper.shipped_state().items()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"config": config, "state_dict": state, "manifest": manifest or {}}, path + ".part")
    os.replace(path + ".part", path)
    return sha256_file(path)


def load_shipped(path: str) -> FaceSwapper:
    """A `FaceSwapper` from shipped weights (`save_shipped`); the recogniser is built from its config."""
    from hydra.utils import instantiate

    from factory.common.model_files import expect_state, read_weights

    blob = read_weights(path, "point methods.swap.checkpoint at weights/swapper.pt")
    if "config" not in blob or "hyper_parameters" in blob:
        raise ModelFileError(path, "a checkpoint of another kind, not shipped swapper weights (weights/swapper.pt)")
    state = expect_state(path, blob, "swapper", "texture.")
    cfg = blob["config"]
    swapper = FaceSwapper(instantiate(cfg["identity"]), cfg["size"], cfg["width"], cfg["levels"], cfg["blocks"],
                          cfg.get("id_maps", True), cfg.get("refine", 0))
    missing, unexpected = swapper.load_state_dict({k: v.float() if v.is_floating_point() else v
                                                   for k, v in state.items()}, strict=False)
    if unexpected or any(not k.startswith("identity.") for k in missing):
        raise ModelFileError(path, f"weights do not fit this swapper (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return swapper.eval()


def shipped_lineage(path: str) -> list[dict]:
    """The lineage a run started from shipped weights carries: the weights' own history (oldest first)
    and an entry for the weights themselves (their sha256, batches and training seconds)."""
    from factory.common.model_files import read_weights

    manifest = read_weights(path).get("manifest", {})
    return [*manifest.get("history", []), {"sha256": sha256_file(path), "batches": manifest.get("checkpoint_batches"),
                                           "train_seconds": manifest.get("train_seconds")}]

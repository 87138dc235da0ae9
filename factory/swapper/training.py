"""Lightning training of the swapper (claim 2 + cross-identity terms), manual GAN optimisation.

Per step, with E the frozen recogniser (its centred vector and maps: `identity_features`), T the texture
encoder, G the decoder, D the consistency discriminator, x a face, m its soft face mask, v another view
of the same person (another photo, else an augmented copy) and b = faces of other people in the batch:
- reconstruction  x̂ = G(T(x) ‖ E(v))          — claim 2's loop, L1 to x. The identity comes from the
                                                   *other* view, so the decoder must take pose, expression
                                                   and light from the texture and the person from E
- swap            s = G(T(x) ‖ E(b)), shipped as m·s + (1−m)·x (the factory's blend)
                  identity loss 1 − cos(E_c(aug(blend)), E_c(b)) on randomly transformed copies (kornia:
                  scale, shift, rotation, blur, colour, noise) with centred descriptors E_c, so no pixel
                  pattern satisfies the recogniser without a face; attribute loss ‖T(s) − T(x)‖²;
                  landmark loss |L(blend) − L(x)| with L MTCNN's frozen O-net (5 points, differentiable):
                  the target's head pose and mouth survive (the judge of pose is MediaPipe's mesh, not L)
- cross target    L1 between the shipped swap and the factory's graphics swap of the same pair (`w_cross`,
                  ReliableSwap's idea): a pixel target across identities, "B's face in A's pose", where
                  reconstruction only supervises same-person pairs
- feature match   L1 between D's layer activations of x̂ and of x (SimSwap's weak feature matching):
                  detail where plain L1 blurs
- discriminator   real: (x, E(v)); fake: (x̂, E(v)), (blend, E(b)) and the mismatched real (x, E(b)),
                  hinge loss; T and G are updated from D's judgement of x̂ and the blend.
The real pair uses *another view* so D cannot win by spotting identical halves (DESIGN pitfall).
"""
from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from factory.common.graphics import graphics_swap
from factory.common.model_files import ModelFileError, expect_state, read_weights, require_file
from factory.ingest.facedata import to_tensor, to_uint8
from factory.swapper.networks import ConsistencyDiscriminator, FaceSwapper, load_shipped, shipped_lineage


def save_grid(rows: list[torch.Tensor], path: str) -> None:
    """Save equal-length batches of faces as grid rows (one PNG)."""
    import os

    from torchvision.utils import save_image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_image(torch.cat([r.detach().float().cpu().clamp(0, 1) for r in rows]), path, nrow=len(rows[0]), padding=1)


def hinge_d(real: list[torch.Tensor], fakes: list[list[torch.Tensor]]) -> torch.Tensor:
    """Hinge loss of a multi-scale discriminator: real logits above +1, fake logits below -1."""
    loss = sum(F.relu(1 - r).mean() for r in real) / len(real)
    for fake in fakes:
        loss = loss + sum(F.relu(1 + f).mean() for f in fake) / len(fake) / len(fakes)
    return loss


def identity_augment(strength: float = 1.0):
    """Differentiable random transforms for the identity loss (kornia): what survives them is a face,
    not a pixel pattern tuned to one recogniser."""
    import kornia.augmentation as K

    return K.AugmentationSequential(
        K.RandomAffine(degrees=8 * strength, translate=(0.05 * strength, 0.05 * strength),
                       scale=(1 - 0.08 * strength, 1 + 0.08 * strength), padding_mode="border", p=0.9),
        K.ColorJitter(0.2 * strength, 0.2 * strength, 0.2 * strength, 0.02 * strength, p=0.8),
        K.RandomGaussianBlur((5, 5), (0.1, 1.2 * strength), p=0.5),
        K.RandomGaussianNoise(std=0.03 * strength, p=0.5),
    )


def identity_loss(swapper: FaceSwapper, shipped: torch.Tensor, source_vec: torch.Tensor, augment=None,
                  copies: int = 1, real: torch.Tensor | None = None, match=None) -> tuple[torch.Tensor, torch.Tensor]:
    """1 − centred cosine between the recogniser's view of (transformed copies of) the shipped swap and
    the source's centred descriptor; differentiable w.r.t. the swap, seeded by torch's generator. With
    `real` faces (the batch's targets, transformed alike), also `match` (default `feature_moments_loss`)
    of the swaps' recogniser features to theirs (else zero). Returns (identity loss, moments loss)."""
    match = match or feature_moments_loss
    id_losses, moments = [], []
    for _ in range(copies):
        view = augment(shipped).clamp(0, 1) if augment is not None else shipped
        vec, maps = swapper.identity_features(view) if real is not None else (swapper.centred(swapper.identity(view)), [])
        id_losses.append(1 - F.cosine_similarity(vec, source_vec).mean())
        if real is not None:
            with torch.no_grad():
                ref = swapper.identity_features(augment(real).clamp(0, 1) if augment is not None else real)
            moments.append(match((vec, maps), ref))
    zero = id_losses[0].new_zeros(())
    return sum(id_losses) / len(id_losses), (sum(moments) / len(moments) if moments else zero)


def cross_targets(faces: torch.Tensor, landmarks: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """The graphics swap (`factory.common.graphics.graphics_swap`) of each face i with the identity of face
    perm[i]: faces B x 3 x H x W in [0, 1], landmarks B x 5 x 2 in their pixels → B x 3 x H x W in [0, 1]
    (a constant target: no gradient flows into it; deterministic, so a seeded run replays it)."""
    u8, lm = to_uint8(faces), landmarks.detach().cpu().numpy()
    out = [to_tensor(graphics_swap(u8[i], u8[j], lm[i], lm[j])[0]) for i, j in enumerate(perm.tolist())]
    return torch.stack(out).to(faces.device)


def feature_moments(vec: torch.Tensor, maps: list[torch.Tensor]) -> list[torch.Tensor]:
    """Batch moments of recogniser features: the centred vectors' mean, and each map's per-channel mean
    and mean spatial standard deviation."""
    return [vec.mean(0), *(m.mean((0, 2, 3)) for m in maps), *(m.std((2, 3)).mean(0) for m in maps)]


def moments_distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Squared distance of the vectors' means plus the maps' mean squared channel differences."""
    return (a[0] - b[0]).pow(2).sum() + sum(F.mse_loss(x, y) for x, y in zip(a[1:], b[1:]))


def feature_moments_loss(fake: tuple[torch.Tensor, list[torch.Tensor]],
                         real: tuple[torch.Tensor, list[torch.Tensor]]) -> torch.Tensor:
    """`moments_distance` of two batches' recogniser features (centred vector, standardised maps): what
    a Fréchet distance reads, as a differentiable batch statistic."""
    return moments_distance(feature_moments(*fake), feature_moments(*real))


class RunningMoments(torch.nn.Module):
    """Moment matching against running averages: a batch of 32 cannot tell swaps from real faces by
    their feature means (its noise is as large as the gap), 500 can (0.037 vs 0.003 for real vs real).
    Both sides' moments are averaged over batches (`momentum`; buffers, so a resumed run continues them);
    the loss pulls this batch's moments along the running gap, and its value is the running gap's
    `moments_distance`."""

    def __init__(self, dim: int, map_channels: tuple[int, ...] = (), momentum: float = 0.98):
        super().__init__()
        self.momentum = momentum
        sizes = [dim, *map_channels, *map_channels]  # the layout of `feature_moments`
        for side in ("fake", "real"):
            for i, n in enumerate(sizes):
                self.register_buffer(f"{side}{i}", torch.zeros(n))
        self.register_buffer("started", torch.tensor(False))
        self.count = len(sizes)

    def _running(self, side: str) -> list[torch.Tensor]:
        return [getattr(self, f"{side}{i}") for i in range(self.count)]

    def forward(self, fake: tuple[torch.Tensor, list[torch.Tensor]],
                real: tuple[torch.Tensor, list[torch.Tensor]]) -> torch.Tensor:
        now, ref = feature_moments(*fake), feature_moments(*real)
        keep = self.momentum if bool(self.started) else 0.0
        with torch.no_grad():
            for side, values in (("fake", now), ("real", ref)):
                for old, new in zip(self._running(side), values):
                    old.mul_(keep).add_((1 - keep) * new.detach())
        self.started.fill_(True)
        surrogate = [f + (n - n.detach()) for f, n in zip(self._running("fake"), now)]  # running value, batch gradient
        return moments_distance(surrogate, self._running("real"))


class Landmarks(torch.nn.Module):
    """MTCNN's O-net (facenet-pytorch, weights in the wheel) as a frozen, differentiable 5-point
    landmark regressor on canonical crops: its nose offset follows MediaPipe's yaw (r = 0.95 on test
    crops) and its eye-nose-mouth ratio the pitch (r = −0.84)."""

    def __init__(self):
        super().__init__()
        from facenet_pytorch.models.mtcnn import ONet

        self.onet = ONet().eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "Landmarks":
        return super().train(False)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """Faces in [0, 1] → B x 10 landmark coordinates (x1..x5, y1..y5) in crop units."""
        x = F.interpolate(faces, size=(48, 48), mode="bilinear", antialias=True, align_corners=False)
        return self.onet((x * 255 - 127.5) * 0.0078125)[1]

    @staticmethod
    def pose(lm: torch.Tensor) -> torch.Tensor:
        """Head-pose proxies of 5 points, free of face proportions as far as 5 points allow: nose offset
        from the eyes' midpoint in eye distances (yaw), nose height between eye and mouth lines (pitch),
        eye-line slope (roll)."""
        x, y = lm[:, :5], lm[:, 5:]
        eye_x, eye_y, iod = (x[:, 0] + x[:, 1]) / 2, (y[:, 0] + y[:, 1]) / 2, (x[:, 1] - x[:, 0]).clamp_min(1e-3)
        mouth_y = (y[:, 3] + y[:, 4]) / 2
        return torch.stack([(x[:, 2] - eye_x) / iod, (y[:, 2] - eye_y) / (mouth_y - eye_y).clamp_min(1e-3),
                            (y[:, 1] - y[:, 0]) / iod], dim=1)


class SwapperModule(pl.LightningModule):
    """Texture encoder + decoder (generator) and consistency discriminator with a frozen identity encoder."""

    def __init__(self, identity: dict, size: int = 64, width: int = 32, levels: int = 3, blocks: int = 2,
                 id_maps: bool = True, refine: int = 0, disc_width: int = 32, lr_g: float = 2e-4, lr_d: float = 2e-4,
                 betas: tuple = (0.0, 0.99), w_adv: float = 1.0, w_rec: float = 10.0, w_id: float = 5.0,
                 w_attr: float = 10.0, w_fm: float = 0.0, w_lm: float = 0.0, lm_features: str = "points",
                 w_moments: float = 0.0, w_cross: float = 0.0, id_copies: int = 1, augment_strength: float = 1.0,
                 calibration_faces: int = 1024, grid_faces: int = 8):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.swapper = FaceSwapper(instantiate(identity), size, width, levels, blocks, id_maps, refine)
        self.disc = ConsistencyDiscriminator(self.swapper.identity.embedding_dim, disc_width)
        self.augment = identity_augment(augment_strength)
        if lm_features not in ("points", "pose"):
            raise ValueError(f"lm_features={lm_features!r}: points (all 5) or pose (yaw/pitch/roll proxies)")
        self.landmarks = Landmarks() if w_lm > 0 else None
        self.moments = RunningMoments(self.swapper.identity.embedding_dim, self.swapper.decoder.map_channels) \
            if w_moments > 0 else None
        self.lineage: list[dict] = []  # the shipped weights this run descends from (saved in its checkpoints)

    def load_shipped(self, path: str) -> None:
        """Start from shipped weights (texture encoder, decoder, centring; the discriminator starts fresh)
        or from another run's `.ckpt` (discriminator and running moments too; the optimisers start fresh).
        Parts this config adds (e.g. `refine` blocks, which start as the identity) keep their initial values."""
        if path.endswith(".ckpt"):
            ckpt = read_weights(path)
            state, lineage = ckpt["state_dict"], ckpt.get("lineage", [])
        else:
            state, lineage = {f"swapper.{k}": v for k, v in load_shipped(path).shipped_state().items()}, shipped_lineage(path)
        own = self.state_dict()  # landmarks and moments are built by this config
        state = {k: v for k, v in state.items() if k in own or not k.startswith(("landmarks.", "moments."))}
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as e:  # a tensor of another shape (e.g. another width)
            raise ModelFileError(path, f"weights do not fit this swapper: {str(e).splitlines()[1:2]}") from None
        new = [k for k in missing if not k.startswith(("swapper.identity.", "disc.", "moments.", "landmarks."))
               and ".refine." not in k]
        if unexpected or new:
            raise ModelFileError(path, f"weights do not fit this swapper (missing {new[:3]}, unexpected {unexpected[:3]})")
        self.lineage = lineage

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The lineage travels with the checkpoint, so a copied or resumed checkpoint ships with it."""
        checkpoint["lineage"] = self.lineage

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A checkpoint made without the moments term (or before its running averages were saved) resumes
        with it switched on — its averages start afresh —, and one made with it loads with it off."""
        self.lineage = checkpoint.get("lineage", [])
        state, own = checkpoint["state_dict"], self.state_dict()
        for k in [k for k in state if k.startswith("moments.") and k not in own]:
            del state[k]
        for k, v in own.items():
            if k.startswith("moments.") and k not in state:
                state[k] = v.clone()

    def on_fit_start(self) -> None:
        """Centre the identity features on training faces once (a resumed run keeps its saved centring);
        without a face datamodule the first training batch is used."""
        dataset = getattr(getattr(self.trainer, "datamodule", None), "train_set", None)
        if bool(self.swapper.calibrated) or not hasattr(dataset, "face"):
            return
        n = min(self.hparams.calibration_faces, len(dataset))
        self.swapper.calibrate(torch.stack([dataset.face(i) for i in range(n)]).to(self.device))

    def landmark_loss(self, shipped: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """L1 between the O-net readings (`lm_features`: all 5 points or their pose proxies) of the shipped
        swap and of its target x: the target's head pose (and with `points`, mouth) survives."""
        with torch.no_grad():
            lm_x = self.landmarks(x)
        lm_s = self.landmarks(shipped)
        if self.hparams.lm_features == "pose":
            lm_s, lm_x = Landmarks.pose(lm_s), Landmarks.pose(lm_x)
        return F.l1_loss(lm_s, lm_x)

    @staticmethod
    def _landmarks(batch) -> torch.Tensor:
        if len(batch) < 4:
            raise ValueError("w_cross > 0 needs each face's 5 landmarks in the batch (SwapDataModule gives them)")
        return batch[3]

    def training_step(self, batch, _):
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        sw = self.swapper
        x, view, mask = sw.resize(batch[0]), sw.resize(batch[1]), sw.resize(batch[2])
        if not bool(sw.calibrated):
            sw.calibrate(x)
        with torch.no_grad():
            id_x, id_view = sw.identity_features(x), sw.identity_features(view)
        perm = torch.roll(torch.arange(len(x), device=x.device), 1)
        id_b = (id_x[0][perm], [m[perm] for m in id_x[1]])

        texture = sw.texture(x)
        rec = sw.decoder(texture, *id_view)
        swap = sw.decoder(texture, *id_b)
        shipped = mask * swap + (1 - mask) * x

        # discriminator
        opt_d.zero_grad(set_to_none=True)
        d_real = self.disc(x, id_view[0])
        d_loss = hinge_d(d_real, [self.disc(rec.detach(), id_view[0]), self.disc(shipped.detach(), id_b[0]),
                                  self.disc(x, id_b[0])])
        self.manual_backward(d_loss)
        opt_d.step()

        # generator: texture encoder + decoder
        opt_g.zero_grad(set_to_none=True)
        d_rec, f_rec = self.disc(rec, id_view[0], features=True)
        adv = -(sum(o.mean() for o in d_rec) + sum(o.mean() for o in self.disc(shipped, id_b[0]))) / 2
        rec_loss = F.l1_loss(rec, x)
        fm = rec_loss.new_zeros(())
        if hp.w_fm > 0:  # feature matching: the reconstruction's discriminator features match the face's
            with torch.no_grad():
                f_real = self.disc(x, id_view[0], features=True)[1]
            fm = sum(F.l1_loss(a, b) for a, b in zip(f_rec, f_real)) / len(f_rec)
        id_loss, moments = identity_loss(sw, shipped, id_b[0], self.augment, hp.id_copies,
                                         real=x if self.moments is not None else None, match=self.moments)
        attr = sum(F.mse_loss(a, b.detach()) for a, b in zip(sw.texture(swap), texture)) / len(texture)
        lm = self.landmark_loss(shipped, x) if self.landmarks is not None else rec_loss.new_zeros(())
        cross = rec_loss.new_zeros(())
        if hp.w_cross > 0:
            cross = F.l1_loss(shipped, sw.resize(cross_targets(batch[0], self._landmarks(batch), perm)))
        g_loss = (hp.w_adv * adv + hp.w_rec * rec_loss + hp.w_id * id_loss + hp.w_attr * attr + hp.w_fm * fm
                  + hp.w_lm * lm + hp.w_moments * moments + hp.w_cross * cross)
        self.manual_backward(g_loss)
        opt_g.step()

        self.log_dict({"train/d_loss": d_loss, "train/d_real": torch.stack([r.mean() for r in d_real]).mean(),
                       "train/g_adv": adv, "train/rec_l1": rec_loss, "train/id_loss": id_loss, "train/attr": attr,
                       "train/fm": fm, "train/landmarks": lm,
                       "train/moments": moments, "train/cross": cross},
                      prog_bar=True)
        return g_loss

    def validation_step(self, batch, batch_idx):
        """Held-out faces: reconstruction error and identity similarity of shipped swaps (centred, by the
        training encoder — the independent judge is the evaluation's); the first batch's first faces are
        saved as a sample grid (rows: texture | identity | swap | reconstruction)."""
        sw = self.swapper
        x, mask = sw.resize(batch[0]), sw.resize(batch[2])
        perm = torch.roll(torch.arange(len(x), device=x.device), 1)
        ident_faces = x[perm]
        id_x, id_b = sw.identity_features(x), sw.identity_features(ident_faces)
        rec, swap = sw(x, id_x), sw(x, id_b)
        shipped = mask * swap + (1 - mask) * x
        e_swap = sw.centred(sw.identity(shipped))
        self.log("val/rec_l1", F.l1_loss(rec, x), prog_bar=True)
        self.log("val/id_cos", F.cosine_similarity(e_swap, id_b[0]).mean(), prog_bar=True)
        self.log("val/id_cos_target", F.cosine_similarity(e_swap, id_x[0]).mean())
        if self.landmarks is not None:
            self.log("val/landmarks", self.landmark_loss(shipped, x))
        if self.hparams.w_cross > 0:
            self.log("val/cross_l1", F.l1_loss(shipped, sw.resize(cross_targets(batch[0], self._landmarks(batch), perm))))
        if batch_idx == 0 and self.trainer is not None and self.trainer.is_global_zero and self.trainer.log_dir:
            n = self.hparams.grid_faces
            save_grid([x[:n], ident_faces[:n], shipped[:n], rec[:n]],
                      f"{self.trainer.log_dir}/samples/step{self.global_step:06d}.png")

    def configure_optimizers(self):
        hp = self.hparams
        gen = list(self.swapper.texture.parameters()) + list(self.swapper.decoder.parameters())
        return (torch.optim.Adam(gen, lr=hp.lr_g, betas=tuple(hp.betas)),
                torch.optim.Adam(self.disc.parameters(), lr=hp.lr_d, betas=tuple(hp.betas)))


def load_swapper(path: str) -> FaceSwapper:
    """A trained swapper from a `train_generator` Lightning checkpoint (`.ckpt`) or shipped weights."""
    require_file(path, "run `python -m pipelines.train_generator` or point methods.swap.checkpoint at weights/swapper.pt")
    if path.endswith(".ckpt"):
        blob = read_weights(path)
        expect_state(path, blob, "swapper", "swapper.texture.")
        module = SwapperModule(**blob["hyper_parameters"])
        module.on_load_checkpoint(blob)  # as Lightning would: fills state the checkpoint predates
        try:
            module.load_state_dict(blob["state_dict"])
        except RuntimeError as e:
            raise ModelFileError(path, f"weights do not fit this swapper ({str(e).splitlines()[-1].strip()[:120]})") from None
        return module.swapper.eval()
    return load_shipped(path)

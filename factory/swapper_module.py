"""Lightning training of the swapper (claim 2 + cross-identity terms), manual GAN optimisation.

Per step, with E the frozen identity encoder, T the texture encoder, G the decoder, D the
consistency discriminator, x a face, v another view of the same person, and b = faces of other
people in the batch:
- reconstruction  x̂ = G(T(x) ‖ E(x))          — claim 2's loop, L1 to x
- swap            s = G(T(x) ‖ E(b))           — identity loss 1 - cos(E(s), E(b)), attribute loss
                                                   ‖T(s) - T(x)‖² (FaceShifter's multi-level attributes)
- discriminator   real: (x, E(v)); fake: (x̂, E(x)), (s, E(b)) and the mismatched real (x, E(b)),
                  hinge loss; T and G are updated from D's judgement of x̂ and s.
The real pair uses *another view* so D cannot win by spotting identical halves (DESIGN pitfall).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import pytorch_lightning as pl
from hydra.utils import instantiate

from factory.swapper import ConsistencyDiscriminator, FaceSwapper


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


class SwapperModule(pl.LightningModule):
    """Texture encoder + decoder (generator) and consistency discriminator with a frozen identity encoder."""

    def __init__(self, identity: dict, size: int = 64, width: int = 32, levels: int = 3, blocks: int = 2,
                 disc_width: int = 32, lr_g: float = 2e-4, lr_d: float = 2e-4, betas: tuple = (0.0, 0.99),
                 w_adv: float = 1.0, w_rec: float = 10.0, w_id: float = 5.0, w_attr: float = 10.0,
                 grid_faces: int = 8):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.swapper = FaceSwapper(instantiate(identity), size, width, levels, blocks)
        self.disc = ConsistencyDiscriminator(self.swapper.identity.embedding_dim, disc_width)

    @property
    def identity(self):
        return self.swapper.identity

    def training_step(self, batch, _):
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        x, view = self.swapper.resize(batch[0]), self.swapper.resize(batch[1])
        with torch.no_grad():
            e_x, e_view = self.identity(x), self.identity(view)
        perm = torch.roll(torch.arange(len(x), device=x.device), 1)
        e_b = e_x[perm]

        texture = self.swapper.texture(x)
        rec = self.swapper.decoder(texture, e_x)
        swap = self.swapper.decoder(texture, e_b)

        # discriminator
        opt_d.zero_grad(set_to_none=True)
        d_real = self.disc(x, e_view)
        d_loss = hinge_d(d_real, [self.disc(rec.detach(), e_x), self.disc(swap.detach(), e_b), self.disc(x, e_b)])
        self.manual_backward(d_loss)
        opt_d.step()

        # generator: texture encoder + decoder
        opt_g.zero_grad(set_to_none=True)
        adv = -(sum(o.mean() for o in self.disc(rec, e_x)) + sum(o.mean() for o in self.disc(swap, e_b))) / 2
        rec_loss = F.l1_loss(rec, x)
        id_loss = (1 - F.cosine_similarity(self.identity(swap), e_b)).mean()
        attr = sum(F.mse_loss(a, b.detach()) for a, b in zip(self.swapper.texture(swap), texture)) / len(texture)
        g_loss = hp.w_adv * adv + hp.w_rec * rec_loss + hp.w_id * id_loss + hp.w_attr * attr
        self.manual_backward(g_loss)
        opt_g.step()

        self.log_dict({"train/d_loss": d_loss, "train/d_real": torch.stack([r.mean() for r in d_real]).mean(),
                       "train/g_adv": adv, "train/rec_l1": rec_loss, "train/id_loss": id_loss, "train/attr": attr},
                      prog_bar=True)
        return g_loss

    def validation_step(self, batch, batch_idx):
        """Held-out faces: reconstruction error and identity similarity of swaps (by the training
        encoder — the independent judge is the evaluation's); the first batch's first faces are saved
        as a sample grid (rows: texture | identity | swap | reconstruction)."""
        x = self.swapper.resize(batch[0])
        ident_faces = torch.roll(x, 1, 0)
        e_x, e_b = self.identity(x), self.identity(ident_faces)
        rec, swap = self.swapper(x, e_x), self.swapper(x, e_b)
        e_swap = self.identity(swap)
        self.log("val/rec_l1", F.l1_loss(rec, x), prog_bar=True)
        self.log("val/id_cos", F.cosine_similarity(e_swap, e_b).mean(), prog_bar=True)
        self.log("val/id_cos_target", F.cosine_similarity(e_swap, e_x).mean())
        if batch_idx == 0 and self.trainer is not None and self.trainer.is_global_zero and self.trainer.log_dir:
            n = self.hparams.grid_faces
            save_grid([x[:n], ident_faces[:n], swap[:n], rec[:n]],
                      f"{self.trainer.log_dir}/samples/step{self.global_step:06d}.png")

    def configure_optimizers(self):
        hp = self.hparams
        gen = list(self.swapper.texture.parameters()) + list(self.swapper.decoder.parameters())
        return (torch.optim.Adam(gen, lr=hp.lr_g, betas=tuple(hp.betas)),
                torch.optim.Adam(self.disc.parameters(), lr=hp.lr_d, betas=tuple(hp.betas)))

"""Chapter 7: an autoencoder that squeezes 28×28 MNIST digits to 20 numbers and back.

As in the book: encoder 784 → 200 (ReLU) → 20, decoder 20 → 200 (ReLU) → 784 (sigmoid), loss = the
summed squared error between a digit and its reconstruction, ||x − x̂||², Adam 2.5e-4, batches of 32,
10 epochs over the 60,000 training digits. There is no prior over codes, so there is no `sample`:
only encode, decode, and paths between codes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..contract import Evaluation, Spec, Tab
from .. import data



@dataclass(frozen=True)
class Config:
    hidden: int = 200
    latent_dim: int = 20
    batch_size: int = 32
    lr: float = 2.5e-4
    epochs: int = 10
    limit: int = 0  # training digits (0 = all 60,000)
    seed: int = 0


PRESETS = {
    "book": Config(),
    "cpu": Config(),
    "live": Config(epochs=1, limit=10_000),
    "tiny": Config(hidden=16, latent_dim=4, batch_size=8, epochs=1, limit=32),
}


class Model(nn.Module):
    """encode: N×1×28×28 in [0, 1] -> N×20 codes; decode: N×20 -> N×1×28×28 in [0, 1]."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.input_shape = (1, 28, 28)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, cfg.hidden), nn.ReLU(),
                                     nn.Linear(cfg.hidden, cfg.latent_dim))
        self.decoder = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.hidden), nn.ReLU(),
                                     nn.Linear(cfg.hidden, 784), nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28)))

    def forward(self, x):
        return self.decoder(self.encoder(x))

    def _device(self):
        return next(self.parameters()).device

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.to(self._device()).float())

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z.to(self._device()).float())


def one_per_class(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The first image of each digit 0-9, in class order (the book's 2×10 figure)."""
    return torch.stack([images[(labels == d).nonzero()[0, 0]] for d in range(10)])


class Trainer:
    def __init__(self, cfg: Config, data_root=None, device="cpu"):
        self.cfg, self.device = cfg, device
        self.model = Model(cfg).to(device)
        # fused: one vectorised pass over all parameters instead of ~10 elementwise ops per tensor
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=True)
        x, _ = data.mnist_images(data_root, train=True)
        self.train_x = x[:cfg.limit] if cfg.limit else x
        test_x, test_y = data.mnist_images(data_root, train=False)
        self.dataset = {"name": "MNIST training digits", "size": len(self.train_x)}
        self.steps_per_epoch = -(-len(self.train_x) // cfg.batch_size)
        self.scored = data.to_unit(test_x[:1000]).to(device)  # cheap per-epoch check on test digits
        self.shown = data.to_unit(torch.cat([one_per_class(test_x, test_y), test_x[10:16]])).to(device)

    def batches(self, epoch: int):
        g = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)  # the same order after a resume
        for idx in torch.randperm(len(self.train_x), generator=g).split(self.cfg.batch_size):
            yield data.to_unit(self.train_x[idx]).to(self.device)

    def train_step(self, x: torch.Tensor) -> dict:
        # ||x − x̂||² summed over pixels, averaged over the batch (the book sums over the batch too;
        # Adam does not care about that constant factor).
        # One fused op (and one in backward) instead of sub, pow, sum and mean: the same number.
        loss = nn.functional.mse_loss(self.model(x), x, reduction="sum") / len(x)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def score(self) -> dict:
        return {"test_mse_per_pixel": (self.model(self.scored) - self.scored).pow(2).mean().item()}

    @torch.no_grad()
    def preview(self):
        """Rows 1 and 3: test digits (0-9 first); rows 2 and 4: their reconstructions."""
        from ..images import grid_pil

        x = self.shown
        rec = self.model(x)
        rows = torch.cat([x[:8], rec[:8], x[8:], rec[8:]])
        return grid_pil(rows.cpu(), nrow=8, scale=2)

    def shipped(self) -> Model:
        """The model to save: the trained weights as they are."""
        return self.model

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, s: dict) -> None:
        self.model.load_state_dict(s["model"])
        self.opt.load_state_dict(s["opt"])


SPEC = Spec("digits_ae", __name__, "Digits autoencoder", 7, "autoencoder squeezing MNIST digits to 20 numbers",
            kind="autoencoder", data=("MNIST",), image_shape=lambda cfg: (1, 28, 28),
            evaluation=Evaluation(checks="genlab.models.digits_ae_eval"), bf16=True, tab=Tab("Digits", "digits"))

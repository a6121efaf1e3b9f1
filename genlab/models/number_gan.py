"""Chapter 3: a GAN that learns to produce multiples of 5 between 0 and 95, as 100-d one-hot vectors.

As in the book: D = Linear(100, 1) + sigmoid, G = Linear(100, 100) + ReLU, BCE loss, Adam 5e-4,
batches of 10 real numbers 5·randint(0, 20). A generated vector is read as its argmax. EarlyStop
watches the mean squared remainder mod 5 of the generated numbers (0 when all are multiples of 5).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..contract import Evaluation, Spec, Tab
from ..charts import histogram_chart
from ..latent import noise

DEPTH = 100


@dataclass(frozen=True)
class Config:
    batch_size: int = 10
    lr: float = 5e-4
    steps_per_epoch: int = 50  # the book reports every 50 steps; an "epoch" here is one report
    epochs: int = 200
    patience: int = 16  # epochs of 50 steps = the book's EarlyStop(800)
    eval_samples: int = 1_000
    seed: int = 0


PRESETS = {
    "book": Config(),
    "cpu": Config(),
    "live": Config(epochs=100, patience=100),
    "tiny": Config(steps_per_epoch=2, epochs=2),
}


def real_batch(n: int, device="cpu") -> torch.Tensor:
    """n one-hot vectors of multiples of 5 in [0, 95]."""
    values = torch.randint(0, 20, (n,), device=device) * 5
    return F.one_hot(values, DEPTH).float()


def to_ints(onehots: torch.Tensor) -> torch.Tensor:
    return onehots.argmax(dim=1)


def share_of_multiples(ints: torch.Tensor) -> float:
    return (ints % 5 == 0).float().mean().item()


class Model(nn.Module):
    """The generator: noise N×100 -> N×100 non-negative scores; argmax is the number."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.G = nn.Sequential(nn.Linear(DEPTH, DEPTH), nn.ReLU())

    def forward(self, z):
        return self.G(z)

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """N int64 numbers in [0, 99]."""
        dev = next(self.parameters()).device
        return to_ints(self.G(noise(n, DEPTH, seed, dev))).cpu()


class Trainer:
    def __init__(self, cfg: Config, data_root=None, device="cpu"):
        self.cfg, self.device = cfg, device
        self.model = Model(cfg).to(device)
        self.D = nn.Sequential(nn.Linear(DEPTH, 1), nn.Sigmoid()).to(device)
        self.opt_g = torch.optim.Adam(self.model.G.parameters(), lr=cfg.lr)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr)
        self.fixed = noise(cfg.eval_samples, DEPTH, seed=1234, device=device)
        self.dataset = {"name": "multiples of 5 in [0, 95], one-hot", "size": 20}
        self.steps_per_epoch = cfg.steps_per_epoch
        self.bce = nn.BCELoss()
        self.train_only = None  # None, "D" or "G": the live tab's "train only one side" switch

    def batches(self, epoch: int):
        for _ in range(self.cfg.steps_per_epoch):
            yield real_batch(self.cfg.batch_size, self.device)

    def train_step(self, real: torch.Tensor) -> dict:
        n = real.shape[0]
        ones = torch.ones(n, 1, device=self.device)
        zeros = torch.zeros(n, 1, device=self.device)
        fake = self.model.G(torch.randn(n, DEPTH, device=self.device))
        # D: maximise log D(x) + log(1 − D(G(z)))  (Goodfellow et al. 2014)
        loss_d = (self.bce(self.D(real), ones) + self.bce(self.D(fake.detach()), zeros)) / 2
        if self.train_only != "G":
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        loss_g = self.bce(self.D(fake), ones)  # non-saturating generator loss
        if self.train_only != "D":
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    @torch.no_grad()
    def score(self) -> dict:
        ints = to_ints(self.model.G(self.fixed)).cpu()
        rem = (ints % 5).float()
        return {"share_multiples_of_5": share_of_multiples(ints),
                "early_stop": torch.mean(rem ** 2).item()}  # the book's distance: MSE of remainders

    @torch.no_grad()
    def preview(self):
        ints = to_ints(self.model.G(self.fixed)).cpu()
        return histogram_chart(ints, DEPTH, is_multiple, caption(ints), XLABEL)

    def shipped(self) -> Model:
        """The model to save: the trained weights as they are."""
        return self.model

    def state_dict(self) -> dict:
        return {"G": self.model.state_dict(), "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, s: dict) -> None:
        self.model.load_state_dict(s["G"])
        self.D.load_state_dict(s["D"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])


XLABEL = "generated number (green: a multiple of 5)"


def caption(ints: torch.Tensor) -> str:
    return f"{len(ints)} samples: {share_of_multiples(ints):.1%} are multiples of 5"


def is_multiple(i: int) -> bool:
    return i % 5 == 0


def evaluate(model, root=None) -> dict:
    """The shipped number (python -m genlab.evaluate): the share of multiples of 5 among 1,000 samples."""
    return {"share_multiples_of_5": share_of_multiples(model.sample(1000, seed=0))}


SPEC = Spec("number_gan", __name__, "Multiples-of-5 GAN", 3, "learns to produce multiples of 5 as one-hot vectors",
            kind="numbers", evaluation=Evaluation(checks=__name__), train_one_side=True,
            tab=Tab("Shapes & numbers", "toys"))

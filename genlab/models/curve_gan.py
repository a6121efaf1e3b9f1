"""Chapter 3: a GAN that learns points on the curve y = 1.08^x, x in [0, 50].

Networks as in the book: D 2→256→128→64→1 with dropout 0.3 and a sigmoid, G 2→16→32→2, BCE loss
(Goodfellow et al. 2014), Adam 5e-4, batches of 128 from 2,048 fixed real points. EarlyStop watches
the MSE between the generated y and 1.08^x of the generated x, plus how well x covers [0, 50].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..contract import Evaluation, Spec, Tab
from ..charts import points_chart
from ..latent import noise



@dataclass(frozen=True)
class Config:
    n_real: int = 2048
    batch_size: int = 128
    lr: float = 5e-4
    epochs: int = 10_000
    patience: int = 1_000  # epochs without a better MSE before EarlyStop ends training
    eval_samples: int = 1_000
    seed: int = 0
    hidden_g: tuple = (16, 32)
    hidden_d: tuple = (256, 128, 64)
    # The networks see points divided by `scale`. The book feeds raw x in [0, 50] and y up to 47
    # (scale 1); dividing by 50 puts both in [0, 1], which the small MLPs fit far faster.
    scale: float = 1.0


PRESETS = {
    "book": Config(),
    "cpu": Config(epochs=1_200, patience=200, scale=50.0),
    "live": Config(epochs=400, patience=400, scale=50.0),
    "tiny": Config(n_real=256, epochs=2, hidden_g=(4, 4), hidden_d=(8, 8, 8)),
}


def true_curve(x: torch.Tensor) -> torch.Tensor:
    return 1.08 ** x


def real_points(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    x = 50 * torch.rand(n, generator=generator)
    return torch.stack([x, true_curve(x)], dim=1)


def mse_to_curve(points: torch.Tensor) -> float:
    """Mean squared error between the generated y and 1.08^x at the generated x (the book's measure)."""
    return torch.mean((points[:, 1] - true_curve(points[:, 0])) ** 2).item()


def x_coverage(points: torch.Tensor) -> float:
    """1-D Wasserstein distance between the generated x and U(0, 50): a collapsed G scores badly here."""
    x = points[:, 0].sort().values
    q = (torch.arange(len(x)) + 0.5) / len(x) * 50
    return torch.mean((x - q).abs()).item()


def mlp(sizes, last=None, dropout=0.0) -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    if last is not None:
        layers.append(last)
    return nn.Sequential(*layers)


class Model(nn.Module):
    """The generator: noise N×2 -> points N×2 (x, y)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.G = mlp((2, *cfg.hidden_g, 2))  # 2 → 16 → 32 → 2

    def forward(self, z):
        return self.G(z) * self.cfg.scale

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """N×2 float points (x, y)."""
        dev = next(self.parameters()).device
        return self(noise(n, 2, seed, dev)).cpu()


def discriminator(cfg: Config) -> nn.Module:
    return mlp((2, *cfg.hidden_d, 1), last=nn.Sigmoid(), dropout=0.3)  # 2 → 256 → 128 → 64 → 1


class Trainer:
    """One epoch = one pass over the 2,048 real points; train_step takes one batch of them."""

    def __init__(self, cfg: Config, data_root=None, device="cpu"):
        self.cfg, self.device = cfg, device
        self.model = Model(cfg).to(device)
        self.D = discriminator(cfg).to(device)
        self.opt_g = torch.optim.Adam(self.model.G.parameters(), lr=cfg.lr)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr)
        self.real = real_points(cfg.n_real, torch.Generator().manual_seed(cfg.seed)).to(device) / cfg.scale
        self.fixed = noise(cfg.eval_samples, 2, seed=1234, device=device)
        self.dataset = {"name": "y = 1.08^x, x ~ 50·U(0,1)", "size": cfg.n_real}
        self.steps_per_epoch = -(-cfg.n_real // cfg.batch_size)
        self.bce = nn.BCELoss()
        self.train_only = None  # None, "D" or "G": the live tab's "train only one side" switch

    def batches(self, epoch: int):
        perm = torch.randperm(self.cfg.n_real, device=self.device)
        for i in range(0, self.cfg.n_real, self.cfg.batch_size):
            yield self.real[perm[i:i + self.cfg.batch_size]]

    def train_step(self, real: torch.Tensor) -> dict:
        n = real.shape[0]
        ones = torch.ones(n, 1, device=self.device)
        zeros = torch.zeros(n, 1, device=self.device)
        fake = self.model.G(torch.randn(n, 2, device=self.device))
        # D: maximise log D(x) + log(1 − D(G(z)))  (Goodfellow et al. 2014, eq. 1)
        loss_d = self.bce(self.D(real), ones) + self.bce(self.D(fake.detach()), zeros)
        if self.train_only != "G":
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        # G: the non-saturating form, maximise log D(G(z))
        loss_g = self.bce(self.D(fake), ones)
        if self.train_only != "D":
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    @torch.no_grad()
    def score(self) -> dict:
        """mse (the book's) and x_w1 over 1,000 fixed-noise samples.

        The book's EarlyStop watches the MSE alone, which a G that collapses onto x ≈ 0 (where y ≈ 1)
        wins; here EarlyStop watches sqrt(MSE) + x_w1, both in units of x, so it needs coverage too.
        """
        pts = self.model(self.fixed).cpu()
        mse, w1 = mse_to_curve(pts), x_coverage(pts)
        return {"mse": mse, "x_w1": w1, "early_stop": mse ** 0.5 + w1}

    @torch.no_grad()
    def preview(self):
        pts = self.model(self.fixed[:512]).cpu()
        return points_chart(pts, line(), caption(pts), real=self.real[:512].cpu() * self.cfg.scale)

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


def line(n: int = 200):
    """The true curve over x in [0, 50], for the charts: (xs, ys, label)."""
    xs = torch.linspace(0, 50, n)
    return xs, true_curve(xs), "y = 1.08^x"


def caption(points: torch.Tensor) -> str:
    return f"MSE to the curve {mse_to_curve(points):.3f}, x coverage W1 {x_coverage(points):.2f}"


def evaluate(model, root=None) -> dict:
    """The shipped numbers (python -m genlab.evaluate): the book's MSE to the curve and the x coverage, 1,000 samples."""
    pts = model.sample(1000, seed=0)
    return {"mse": mse_to_curve(pts), "x_w1": x_coverage(pts)}


SPEC = Spec("curve_gan", __name__, "Curve GAN", 3, "learns points on y = 1.08^x", kind="points",
            evaluation=Evaluation(checks=__name__), train_one_side=True, tab=Tab("Shapes & numbers", "toys"))

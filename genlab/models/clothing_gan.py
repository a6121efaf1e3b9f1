"""Chapter 4: a dense GAN that draws 28×28 Fashion-MNIST clothes (shirts, trousers, shoes, bags…).

As in the book: D = 784→1024→512→256→1 with ReLU and Dropout(0.3) after each hidden layer, ending in a
Sigmoid; G = 100→256→512→1024→784 with ReLU, ending in a Tanh, so images live in [−1, 1] (sample()
maps them to [0, 1]). BCE loss, Adam 1e-4, batches of 64, the 60,000 training images, 50 epochs.

The `cpu` preset keeps the layer sizes, dropout and loss, and changes three things: LeakyReLU(0.2) and
Adam 2e-4 with betas (0.5, 0.999) (Radford et al. 2016's settings; with the book's ReLU and 1e-4 D wins
outright in the first epochs and every code gives the same grey blob), an exponential moving average of
G's weights (decay 0.999, about one epoch) as the model that ships, which averages out the speckle of the
last updates, and the choice of the best epoch by FID against training images. Which run ships is in the
checkpoint's card; the runs behind these choices are in docs/TRAINING.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..contract import Evaluation, Spec, Tab
from ..data import fashion_images, to_signed
from ..latent import noise
from ..eval import classifier, metrics
from . import frozen

SIDE = 28
CHUNK = 16  # generate() runs the generator on batches of exactly this many codes


@dataclass(frozen=True)
class Config:
    z_dim: int = 100
    batch_size: int = 64
    lr: float = 1e-4
    beta1: float = 0.9  # Adam's first-moment decay (the book keeps torch's default 0.9)
    dropout: float = 0.3
    leak: float = 0.0  # negative slope of the hidden activations: 0 = ReLU (the book), 0.2 = LeakyReLU(0.2)
    epochs: int = 50
    ema: float = 0.0  # decay of the moving average of G's weights that ships; 0 = ship the raw G (the book)
    select: bool = False  # ship the epoch with the best FID against real training images, not the last
    limit: int = 0  # 0 = every training image
    seed: int = 0


PRESETS = {
    "book": Config(),
    "cpu": Config(epochs=100, leak=0.2, lr=2e-4, beta1=0.5, ema=0.999, select=True),
    "live": Config(epochs=3, limit=6400, leak=0.2, lr=2e-4, beta1=0.5),
    "tiny": Config(batch_size=4, epochs=1, limit=8),
}


def act(leak: float) -> nn.Module:
    return nn.LeakyReLU(leak) if leak else nn.ReLU()


def generator(z_dim: int, leak: float = 0.0) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(z_dim, 256), act(leak),
        nn.Linear(256, 512), act(leak),
        nn.Linear(512, 1024), act(leak),
        nn.Linear(1024, SIDE * SIDE), nn.Tanh())  # N×784 in [-1, 1]


def discriminator(dropout: float, leak: float = 0.0) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(SIDE * SIDE, 1024), act(leak), nn.Dropout(dropout),
        nn.Linear(1024, 512), act(leak), nn.Dropout(dropout),
        nn.Linear(512, 256), act(leak), nn.Dropout(dropout),
        nn.Linear(256, 1), nn.Sigmoid())  # N×1: P(real)


class Model(nn.Module):
    """The generator: noise N×z_dim -> images N×1×28×28."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        self.side = SIDE  # an attribute, not a global, so TorchScript can export forward()
        self.G = generator(cfg.z_dim, cfg.leak)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """N×z_dim codes -> N×1×28×28 images in [0, 1]."""
        return ((self.G(z) + 1) / 2).reshape(-1, 1, self.side, self.side)

    def latents(self, n: int, seed: int = 0) -> torch.Tensor:
        """The n codes (N×z_dim) that sample(n, seed) decodes; code i of a seed is the same for any n."""
        # torch draws normals in blocks of 16 floats and redraws a ragged tail, so row i would change with n;
        # drawing at least 64 rows, a multiple of 4 (z_dim 100 × 4 = 25 blocks), keeps every row fixed.
        m = max(64, -(-n // 4) * 4)
        return noise(m, self.z_dim, seed, next(self.parameters()).device)[:n]

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Codes -> images in [0, 1], in batches of exactly CHUNK (the last one padded with zeros): matrix products
        round differently for other batch sizes, and a sample picked from a grid must be redrawn bit for bit
        (tests/test_ch4.py); within one batch size a row's result does not depend on its place or neighbours.
        A 32-sample grid: 2.1 ms in two batches against 17 ms one code at a time (one thread)."""
        n = z.shape[0]
        zz = torch.cat([z, z.new_zeros((-n % CHUNK, *z.shape[1:]))])
        return torch.cat([self(zz[i:i + CHUNK]) for i in range(0, len(zz), CHUNK)])[:n].cpu()

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        return self.generate(self.latents(n, seed))


class Trainer:
    def __init__(self, cfg: Config, data_root=None, device="cpu"):
        self.cfg, self.device = cfg, device
        self.train_only = None  # None, "D" or "G": the live tab's "train only one side" switch
        self.data_root = data_root
        images, _ = fashion_images(data_root, train=True)  # the 10,000 test images are for evaluation
        if cfg.limit:
            images = images[:cfg.limit]
        self.images = images.reshape(len(images), SIDE * SIDE)
        self.dataset = {"name": "Fashion-MNIST train", "size": len(self.images)}
        self.steps_per_epoch = max(1, len(self.images) // cfg.batch_size)
        self.model = Model(cfg).to(device)  # what ships: G itself, or the moving average of G's weights
        # The G that trains. With an EMA it is a copy that the shipped model follows every step (Karras et al.
        # 2018 average G's weights: the speckle of the last few updates averages out); without, it is the same net.
        self.G = generator(cfg.z_dim, cfg.leak).to(device) if cfg.ema else self.model.G
        if cfg.ema:
            self.G.load_state_dict(self.model.G.state_dict())
        self.ema_steps = 0
        self.D = discriminator(cfg.dropout, cfg.leak).to(device)
        betas = (cfg.beta1, 0.999)
        # fused: one vectorised pass over all parameters instead of ~10 elementwise ops per tensor
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas, fused=True)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas, fused=True)
        self.bce = nn.BCELoss()
        self.fixed = noise(32, cfg.z_dim, seed=1234, device=device)
        self._real_features = None  # its features of 10,000 training images, for the FID that selects epochs

    def batches(self, epoch: int):
        g = torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch)
        perm = torch.randperm(len(self.images), generator=g)
        b = self.cfg.batch_size
        for i in range(self.steps_per_epoch):
            yield self.images[perm[i * b:(i + 1) * b]]

    def train_step(self, batch: torch.Tensor) -> dict:
        real = to_signed(batch.to(self.device))
        n = real.shape[0]
        ones = torch.ones(n, 1, device=self.device)
        zeros = torch.zeros(n, 1, device=self.device)
        fake = self.G(torch.randn(n, self.cfg.z_dim, device=self.device))
        # D: maximise log D(x) + log(1 − D(G(z)))  (Goodfellow et al. 2014). Real and fake go through D in one
        # batch: D has no batch statistics (dropout is per element), so this is the same loss in one pass.
        p = self.D(torch.cat([real, fake.detach()]))
        loss_d = self.bce(p[:n], ones) + self.bce(p[n:], zeros)
        if self.train_only != "G":
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        # G: the non-saturating loss −log D(G(z)); D frozen meanwhile, so backward skips D's weight gradients
        with frozen(self.D):
            loss_g = self.bce(self.D(fake), ones)
            if self.train_only != "D":
                self.opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                self.opt_g.step()
                if self.cfg.ema:
                    self._update_ema()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    @torch.no_grad()
    def _update_ema(self) -> None:
        self.ema_steps += 1
        # Warm-up: early on average over ~the steps so far, not over 1/(1−decay) steps of noise.
        decay = min(self.cfg.ema, (1 + self.ema_steps) / (10 + self.ema_steps))
        torch._foreach_lerp_(list(self.model.G.parameters()), list(self.G.parameters()), 1 - decay)

    @torch.no_grad()
    def score(self) -> dict:
        """Cheap numbers on 512 samples: D's mean belief in them, and (with the shipped classifier) how sure
        it is of their class and how many of the 10 classes they cover (mode collapse shows as few). With
        `select`, also the FID of 2,000 samples against 10,000 training images on the classifier's features,
        as `early_stop`: the loop ships the epoch where it was lowest. Training images, not the test images
        that `python -m genlab.evaluate` reports on, so that choosing among epochs does not tune to the test."""
        self.model.eval()
        x = self.model(noise(512, self.cfg.z_dim, seed=99, device=self.device))
        self.D.eval()
        out = {"d_fake": self.D(x.reshape(len(x), -1) * 2 - 1).mean().item()}
        self.D.train()
        judge = classifier.optional("fashion")
        if judge is not None:
            p = classifier.predict(judge, x.cpu())
            share = torch.bincount(p.argmax(1), minlength=p.shape[1]).float() / len(p)
            out["mean_max_softmax"] = p.max(1).values.mean().item()
            out["classes_over_5pct"] = float((share > 0.05).sum())
            if self.cfg.select:
                if self._real_features is None:
                    real, _ = fashion_images(self.data_root, train=True)
                    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(7))[:10_000]
                    self._real_features = metrics.features(judge, real[pick])
                fake = self.model(noise(2000, self.cfg.z_dim, seed=98, device=self.device)).cpu()
                out["early_stop"] = out["fid_train_2k"] = metrics.fid(metrics.features(judge, fake), self._real_features)
        self.model.train()
        return out

    @torch.no_grad()
    def preview(self):
        from ..images import grid_pil

        self.model.eval()
        img = grid_pil(self.model(self.fixed), nrow=8, scale=2)
        self.model.train()
        return img

    def shipped(self) -> Model:
        """The model to save: the trained weights as they are."""
        return self.model

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "ema": self.model.state_dict(),
                "ema_steps": self.ema_steps, "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, s: dict) -> None:
        self.G.load_state_dict(s["G"])
        self.model.load_state_dict(s["ema"])
        self.ema_steps = s["ema_steps"]
        self.D.load_state_dict(s["D"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])


def real_sets(root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(the 10,000 test images, as many training images at random), uint8: what evaluation scores against."""
    test, _ = fashion_images(root, train=False)
    train, _ = fashion_images(root, train=True)
    return test, train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:len(test)]]


SPEC = Spec("clothing_gan", __name__, "Clothing GAN", 4, "dense GAN drawing 28×28 Fashion-MNIST clothes",
            kind="image_gan", data=("FashionMNIST",), image_shape=lambda cfg: (1, SIDE, SIDE),
            evaluation=Evaluation(features="fashion", classes="fashion", real=real_sets),
            train_one_side=True, layers=2,
            tab=Tab("Clothing", "image_gan", prefix="clothing", intro=(
                "### Chapter 4: a GAN draws clothes\nA dense GAN (784-pixel vectors, no convolutions) trained on "
                "Fashion-MNIST: T-shirts, trousers, pullovers, dresses, coats, sandals, shirts, sneakers, bags, "
                "ankle boots.")))

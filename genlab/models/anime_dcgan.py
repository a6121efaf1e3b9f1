"""Chapter 4: a DCGAN (Radford et al. 2016) that draws 64×64 anime faces.

As in the book: G = ConvTranspose2d 100→8w (4×4), then 8w→4w→2w→w, each with BatchNorm + ReLU, then
w→3 with Tanh; D is the mirror with Conv2d, BatchNorm (not on the first layer) and LeakyReLU(0.2),
ending in a Sigmoid. BCE loss, Adam 2e-4 with betas (0.5, 0.999), batches of 128, weights N(0, 0.02)
and BatchNorm scales N(1, 0.02). The book's width is w = 64 (G 512-256-128-64).

The `cpu` preset keeps the book's layers at half the width (w = 32, a quarter of the multiply-adds) with
batches of 64, and adds what the book does not have: DiffAugment of D's inputs (Zhao et al. 2020;
genlab/augment.py), because on a few thousand faces D otherwise memorises them and G blurs or collapses,
a light penalty on G for period-2 (checkerboard) energy above the training faces' (`spectral`,
Trainer.spectral_penalty), which the stride-2 transposed convolutions otherwise leave, and the choice of
the epoch with the highest recall against 2,000 training faces among those with a checkerboard ratio
≤ 1.2. A separate D learning rate (`lr_d`, two time-scale updates) is a switch, off: it speeds up D, which
already wins. The side-by-side runs behind these choices are in docs/TRAINING.md; which run ships is in the
checkpoint's card.

What ships is an exponential moving average of G's weights (Karras et al. 2018), with G's BatchNorm
statistics re-estimated for the averaged weights; `ema = 0` ships the raw G instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..contract import Evaluation, Spec, Tab
from ..augment import check_policy, diff_augment
from ..data import data_root as resolve_root, folder_split, load_folder, to_signed
from ..latent import noise
from ..eval import classifier, metrics
from . import frozen, init_weights

CHUNK = 8  # generate() runs the generator on batches of exactly this many codes

FOLDER = "anime/faces"


@dataclass(frozen=True)
class Config:
    width: int = 64  # G's last hidden width; G is 8w-4w-2w-w, D is w-2w-4w-8w
    z_dim: int = 100
    size: int = 64
    batch_size: int = 128
    lr: float = 2e-4  # G's learning rate
    lr_d: float = 2e-4  # D's; above lr = two time-scale updates (TTUR, Heusel et al. 2017)
    beta1: float = 0.5
    beta2: float = 0.999
    epochs: int = 20
    ema: float = 0.995  # decay of the moving average of G's weights; 0 = ship the raw G
    diffaug: str = ""  # DiffAugment transforms of D's inputs (genlab.augment), e.g. "color,translation,cutout"
    select: bool = False  # ship the epoch with the best FID against real training faces, not the last
    select_by: str = "fid"  # with select: "fid" (lowest) or "recall" (highest: FID barely sees lost variety)
    # with select: only epochs whose checkerboard ratio (genlab.eval.metrics) against those training faces is
    # at most this compete (0 = any): FID barely sees a faint period-2 pattern that the eye sees on every face
    select_checkerboard: float = 0.0
    # weight of a penalty on G for period-2 energy above the training faces' (0 = off); see Trainer.spectral_penalty
    spectral: float = 0.0
    channels_last: bool = True  # faster convolutions on oneDNN CPUs
    limit: int = 0  # 0 = every training image
    seed: int = 0


PRESETS = {
    "book": Config(ema=0.0, channels_last=False),
    "cpu": Config(width=32, batch_size=64, epochs=16, diffaug="color,translation,cutout", spectral=0.03, select=True,
                  select_by="recall", select_checkerboard=1.2),
    "live": Config(width=16, batch_size=64, epochs=3, limit=2048),
    "tiny": Config(width=4, batch_size=4, epochs=1, limit=8),
}


def generator(z_dim: int, w: int) -> nn.Sequential:
    def up(i, o):
        return [nn.ConvTranspose2d(i, o, 4, 2, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(True)]

    return nn.Sequential(
        nn.ConvTranspose2d(z_dim, 8 * w, 4, 1, 0, bias=False), nn.BatchNorm2d(8 * w), nn.ReLU(True),  # 8w×4×4
        *up(8 * w, 4 * w),  # 4w×8×8
        *up(4 * w, 2 * w),  # 2w×16×16
        *up(2 * w, w),  # w×32×32
        nn.ConvTranspose2d(w, 3, 4, 2, 1, bias=False), nn.Tanh())  # 3×64×64 in [-1, 1]


def discriminator(w: int) -> nn.Sequential:
    def down(i, o):
        return [nn.Conv2d(i, o, 4, 2, 1, bias=False), nn.BatchNorm2d(o), nn.LeakyReLU(0.2, True)]

    return nn.Sequential(
        nn.Conv2d(3, w, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),  # w×32×32
        *down(w, 2 * w),  # 2w×16×16
        *down(2 * w, 4 * w),  # 4w×8×8
        *down(4 * w, 8 * w),  # 8w×4×4
        nn.Conv2d(8 * w, 1, 4, 1, 0, bias=False), nn.Sigmoid(), nn.Flatten())  # N×1: P(real)


class Model(nn.Module):
    """The generator: noise N×z_dim×1×1 -> images N×3×64×64."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        self.G = generator(cfg.z_dim, cfg.width)
        self.G.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """N×z_dim codes (or N×z_dim×1×1) -> N×3×64×64 images in [0, 1]."""
        z = z.reshape(z.shape[0], self.z_dim, 1, 1)
        return (self.G(z) + 1) / 2

    def latents(self, n: int, seed: int = 0) -> torch.Tensor:
        """The n codes (N×z_dim) that sample(n, seed) decodes; code i of a seed is the same for any n."""
        # torch draws normals in blocks of 16 floats and redraws a ragged tail, so row i would change with n;
        # drawing at least 64 rows, a multiple of 4 (z_dim 100 × 4 = 25 blocks), keeps every row fixed.
        m = max(64, -(-n // 4) * 4)
        return noise(m, self.z_dim, seed, next(self.parameters()).device)[:n]

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Codes -> images in [0, 1], in batches of exactly CHUNK (the last one padded with zeros): the CPU
        kernels pick other summation orders for other batch sizes, and a face picked from a grid must be
        redrawn bit for bit (tests/test_ch4.py); one fixed batch size keeps that and batches the work."""
        was = self.training
        self.eval()  # BatchNorm's running statistics, never the batch's: sampling must not change the model
        try:
            n = z.shape[0]
            pad = z.new_zeros((-n % CHUNK, *z.shape[1:]))
            zz = torch.cat([z, pad])
            return torch.cat([self(zz[i:i + CHUNK]) for i in range(0, len(zz), CHUNK)])[:n].cpu()
        finally:
            self.train(was)

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        return self.generate(self.latents(n, seed))


class Trainer:
    def __init__(self, cfg: Config, data_root=None, device="cpu"):
        self.cfg, self.device = cfg, device
        self.train_only = None  # None, "D" or "G": the live tab's "train only one side" switch
        check_policy(cfg.diffaug)
        if cfg.select_by not in ("fid", "recall"):
            raise ValueError(f"select_by must be 'fid' or 'recall', not {cfg.select_by!r}")
        folder = resolve_root(data_root) / FOLDER
        if cfg.limit:  # tests and the live tab: the first few files only
            self.images = load_folder(folder, cfg.size, cfg.limit)
        else:
            self.images, _ = folder_split(folder, cfg.size)  # the 10% held out is for evaluation only
        part = f"first {cfg.limit} files" if cfg.limit else "train split"
        self.dataset = {"name": f"anime faces ({FOLDER}, {part})", "size": len(self.images)}
        self.steps_per_epoch = max(1, len(self.images) // cfg.batch_size)
        self.mem = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.G = generator(cfg.z_dim, cfg.width).to(device, memory_format=self.mem)
        self.G.apply(init_weights)
        self.D = discriminator(cfg.width).to(device, memory_format=self.mem)
        self.D.apply(init_weights)
        # What ships: the moving average of G (or G itself when ema = 0).
        self.model = Model(cfg).to(device)
        self.model.G.load_state_dict(self.G.state_dict())
        self.model.G.to(memory_format=self.mem)
        self.ema_steps = 0
        betas = (cfg.beta1, cfg.beta2)
        # fused: one vectorised pass over all parameters instead of ~10 elementwise ops per tensor
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas, fused=True)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=betas, fused=True)
        self.bce = nn.BCELoss()
        self.fixed = noise(32, cfg.z_dim, seed=1234, device=device).reshape(32, cfg.z_dim, 1, 1)
        self._judge = None  # the shipped anime evaluation network and its features of real faces (select)
        if cfg.spectral:  # the training faces' share of spectral power on the Nyquist lines, fixed for the run
            self.real_nyquist = metrics.nyquist_share(self.images)

    def batches(self, epoch: int):
        g = torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch)
        perm = torch.randperm(len(self.images), generator=g)
        b = self.cfg.batch_size
        for i in range(self.steps_per_epoch):
            yield self.images[perm[i * b:(i + 1) * b]]

    def train_step(self, batch: torch.Tensor) -> dict:
        real = to_signed(batch.to(self.device)).contiguous(memory_format=self.mem)
        n = real.shape[0]
        ones = torch.ones(n, 1, device=self.device)
        zeros = torch.zeros(n, 1, device=self.device)
        fake = self.G(torch.randn(n, self.cfg.z_dim, 1, 1, device=self.device))
        aug = lambda x: diff_augment(x, self.cfg.diffaug).contiguous(memory_format=self.mem)  # noqa: E731
        # D: maximise log D(T(x)) + log(1 − D(T(G(z)))), T a fresh DiffAugment draw each time (identity when off)
        loss_d = self.bce(self.D(aug(real)), ones) + self.bce(self.D(aug(fake.detach())), zeros)
        if self.train_only != "G":
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        # G: the non-saturating loss −log D(G(z)); D frozen meanwhile, so backward skips D's weight gradients
        with frozen(self.D):
            loss_g = self.bce(self.D(aug(fake)), ones)
            out = {"loss_d": loss_d.item(), "loss_g": loss_g.item()}
            if self.cfg.spectral:
                penalty = self.spectral_penalty(fake)
                out["loss_spectral"] = penalty.item()
                loss_g = loss_g + self.cfg.spectral * penalty
            if self.train_only != "D":
                self.opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                self.opt_g.step()
                self._update_ema()
        return out

    def spectral_penalty(self, fake: torch.Tensor) -> torch.Tensor:
        """Period-2 energy of G's batch above the training faces' (metrics.nyquist_excess)."""
        return metrics.nyquist_excess(fake, self.real_nyquist)

    @torch.no_grad()
    def _update_ema(self) -> None:
        self.ema_steps += 1
        # Warm-up: early on average over ~the steps so far, not over 1/(1−decay) steps of noise.
        decay = min(self.cfg.ema, (1 + self.ema_steps) / (10 + self.ema_steps))
        torch._foreach_lerp_(list(self.model.G.parameters()), list(self.G.parameters()), 1 - decay)

    @torch.no_grad()
    def _ready(self) -> Model:
        """The shipped model, in eval mode; its BatchNorm statistics re-estimated for the averaged weights."""
        m = self.model
        if not self.cfg.ema:
            m.G.load_state_dict(self.G.state_dict())
        else:
            # Running statistics of G belong to G's weights, not to their average: measure them again
            # on 8 batches of fresh noise (a cumulative average: momentum None).
            bns = [x for x in m.G.modules() if isinstance(x, nn.BatchNorm2d)]
            g = torch.Generator().manual_seed(4321)
            m.G.train()
            for bn in bns:
                bn.reset_running_stats()
                bn.momentum = None
            for _ in range(8):
                m.G(torch.randn(self.cfg.batch_size, self.cfg.z_dim, 1, 1, generator=g).to(self.device))
            for bn in bns:
                bn.momentum = 0.1
        return m.eval()

    def shipped(self) -> Model:
        """The model to save, finalised: the training loop calls this before it writes a checkpoint."""
        return self._ready()

    @torch.no_grad()
    def score(self) -> dict:
        """Cheap numbers on the fixed noise: D's mean belief in G's faces, and their pixel spread
        (a collapsed G draws near-identical faces: spread near 0). With `select`, also the FID of 2,000
        faces against 2,000 training faces on the shipped anime evaluation network, as `early_stop`: the
        loop ships the epoch where it was lowest (training faces, so that choosing does not tune to the
        held-out faces that `python -m genlab.evaluate` reports on). With `select_checkerboard`, an epoch whose
        faces' checkerboard ratio against those training faces is above it scores inf (never shipped)."""
        m = self._ready()
        x = m(self.fixed)
        was = self.D.training
        self.D.eval()
        d_fake = self.D((x * 2 - 1).contiguous(memory_format=self.mem)).mean().item()
        self.D.train(was)
        out = {"d_fake": d_fake, "pixel_std_across_samples": x.std(dim=0).mean().item()}
        if self.cfg.select:
            if self._judge is None:
                net = classifier.load("anime")
                pick = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(7))[:2000]
                self._judge = net, metrics.features(net, self.images[pick]), self.images[pick]
            net, real, real_images = self._judge
            z = noise(2000, self.cfg.z_dim, seed=98, device=self.device).reshape(2000, -1, 1, 1)
            fake = torch.cat([m(z[i:i + 250]) for i in range(0, 2000, 250)]).cpu()
            feats = metrics.features(net, fake)
            out["fid_train_2k"] = metrics.fid(feats, real)
            out["recall_train_2k"] = metrics.precision_recall(feats, real)[1]
            out["early_stop"] = out["fid_train_2k"] if self.cfg.select_by == "fid" else -out["recall_train_2k"]
            if self.cfg.select_checkerboard:
                out["checkerboard_train_2k"] = metrics.checkerboard_ratio(fake, real_images)
                if out["checkerboard_train_2k"] > self.cfg.select_checkerboard:
                    out["early_stop"] = float("inf")
        return out

    @torch.no_grad()
    def preview(self):
        from ..images import grid_pil

        return grid_pil(self._ready()(self.fixed), nrow=8, scale=2)

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "ema": self.model.state_dict(),
                "ema_steps": self.ema_steps, "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, s: dict) -> None:
        self.G.load_state_dict(s["G"])
        self.D.load_state_dict(s["D"])
        self.model.load_state_dict(s["ema"])
        self.ema_steps = s["ema_steps"]
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])


SPEC = Spec("anime_dcgan", __name__, "Anime-face DCGAN", 4, "DCGAN drawing 64×64 anime faces", kind="image_gan",
            data=(FOLDER,), image_shape=lambda cfg: (3, cfg.size, cfg.size), evaluation=Evaluation(features="anime"),
            train_one_side=True, layers=1,
            tab=Tab("Anime faces", "image_gan", prefix="anime", intro=(
                "### Chapter 4: a DCGAN draws anime faces\nA deep convolutional GAN trained on 18,398 anime faces "
                "(64×64). Pick two faces and slide between them to see that nearby codes give related faces.")))

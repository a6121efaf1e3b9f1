"""Benchmark: training images/s of every registered model's `cpu` preset against a plain reference.

    python bench/train_speed.py [--models anime_dcgan,faces_vae] [--steps N] [--rounds 10] [--threads 1]
                                [--compile]

For each model, two trainers on the same batches of real data (a small subset, from ../shared/data):
- ours: the model's own Trainer (genlab/models/<name>.py) with its `cpu` preset;
- ref: the same networks and batch size written the way the book writes them, kept here only: plain
  eager nn.Module code, NCHW tensors, the default Adam, `zero_grad()`, `loss.item()` after every step.
  Each reference computes the same losses and updates per step as ours, one network call per input;
  what ours adds on top (anime_dcgan's moving average of G, hair_cyclegan's replay buffer and lr schedule)
  counts against ours. The parameter counts of the two are checked to be equal.

After 3 warm-up steps each, the two are timed INTERLEAVED in this one process: --rounds blocks of steps,
the order alternating, so that load from other processes on the (shared) machine falls on both alike.
The ratio is ref time / our time for the same steps: the median over rounds, and from the total wall time
and the process CPU time. Images per step: real images for the GANs, image pairs for hair_cyclegan.

GFLOP per step: the matmul and convolution FLOPs of one whole training step (forwards and backwards, every
network), by torch.utils.flop_counter's formulas, counted for each side. The ceiling is measured here too,
with the same threads, at the start and at the end (the better is used): the best of a few 2048² float32
matmuls and of a channels_last 3×3 convolution (batch 32, 128→128 channels, 32×32). "share" divides by
the conv ceiling for conv nets and by the matmul ceiling for the dense ones.

--compile also times the reference with torch.compile on each network (inductor, C++ on this CPU):
its compile time (first steps) and its steady speed, interleaved with ours, to see whether compiling pays.

Prints a Markdown table. Not a test: numbers depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

BATCHES = 32  # distinct batches of real data each Trainer loads (its `limit` field: BATCHES × batch, 64-2048 images)
SECONDS = 3.0  # default measured time per implementation: steps = SECONDS / the time of one of our steps


# ---- the plain references ---------------------------------------------------------------------------

def bce_gan_step(G, D, optG, optD, real, noise):
    """The book's GAN step: D on real (ones) and fake (zeros), then G through D (ones), BCE, .item()."""
    loss_fn = nn.BCELoss()
    n = real.shape[0]
    fake = G(noise)
    ones = torch.ones(n, 1)
    zeros = torch.zeros(n, 1)
    loss_D = loss_fn(D(real), ones) + loss_fn(D(fake.detach()), zeros)
    optD.zero_grad()
    loss_D.backward()
    optD.step()
    loss_G = loss_fn(D(fake), ones)
    optG.zero_grad()
    loss_G.backward()
    optG.step()
    return loss_D.item(), loss_G.item()


class RefNumbers:
    def __init__(self, cfg):
        self.G = nn.Sequential(nn.Linear(100, 100), nn.ReLU())
        self.D = nn.Sequential(nn.Linear(100, 1), nn.Sigmoid())
        self.optG = torch.optim.Adam(self.G.parameters(), lr=cfg.lr)
        self.optD = torch.optim.Adam(self.D.parameters(), lr=cfg.lr)

    def nets(self):
        return [self.G, self.D]

    def step(self, real):
        loss_fn = nn.BCELoss()
        n = real.shape[0]
        fake = self.G(torch.randn(n, 100))
        loss_D = (loss_fn(self.D(real), torch.ones(n, 1)) + loss_fn(self.D(fake.detach()), torch.zeros(n, 1))) / 2
        self.optD.zero_grad()
        loss_D.backward()
        self.optD.step()
        loss_G = loss_fn(self.D(fake), torch.ones(n, 1))
        self.optG.zero_grad()
        loss_G.backward()
        self.optG.step()
        return loss_D.item(), loss_G.item()


class RefCurve:
    def __init__(self, cfg):
        self.G = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))
        self.D = nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 128), nn.ReLU(),
                               nn.Dropout(0.3), nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.3),
                               nn.Linear(64, 1), nn.Sigmoid())
        self.optG = torch.optim.Adam(self.G.parameters(), lr=cfg.lr)
        self.optD = torch.optim.Adam(self.D.parameters(), lr=cfg.lr)

    def nets(self):
        return [self.G, self.D]

    def step(self, real):
        return bce_gan_step(self.G, self.D, self.optG, self.optD, real, torch.randn(real.shape[0], 2))


class RefClothing:
    def __init__(self, cfg):
        a = lambda: nn.LeakyReLU(cfg.leak)  # noqa: E731
        self.G = nn.Sequential(nn.Linear(100, 256), a(), nn.Linear(256, 512), a(), nn.Linear(512, 1024), a(),
                               nn.Linear(1024, 784), nn.Tanh())
        self.D = nn.Sequential(nn.Linear(784, 1024), a(), nn.Dropout(0.3), nn.Linear(1024, 512), a(),
                               nn.Dropout(0.3), nn.Linear(512, 256), a(), nn.Dropout(0.3), nn.Linear(256, 1),
                               nn.Sigmoid())
        betas = (cfg.beta1, 0.999)
        self.optG = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas)
        self.optD = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas)

    def nets(self):
        return [self.G, self.D]

    def step(self, batch):
        real = batch.float() / 127.5 - 1
        return bce_gan_step(self.G, self.D, self.optG, self.optD, real, torch.randn(real.shape[0], 100))


def dcgan_init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class RefDCGANGenerator(nn.Module):
    def __init__(self, z, w):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(z, w * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(w * 8), nn.ReLU(True),
            nn.ConvTranspose2d(w * 8, w * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 4), nn.ReLU(True),
            nn.ConvTranspose2d(w * 4, w * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 2), nn.ReLU(True),
            nn.ConvTranspose2d(w * 2, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),
            nn.ConvTranspose2d(w, 3, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, x):
        return self.main(x)


class RefDCGANDiscriminator(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, w * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 2, w * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 4), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 4, w * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 8), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(), nn.Flatten())

    def forward(self, x):
        return self.main(x)


class RefDCGAN:
    def __init__(self, cfg):
        self.z = cfg.z_dim
        self.G = RefDCGANGenerator(cfg.z_dim, cfg.width)
        self.D = RefDCGANDiscriminator(cfg.width)
        self.G.apply(dcgan_init)
        self.D.apply(dcgan_init)
        betas = (cfg.beta1, cfg.beta2)
        self.optG = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas)
        self.optD = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas)

    def nets(self):
        return [self.G, self.D]

    def step(self, batch):
        real = batch.float() / 127.5 - 1
        return bce_gan_step(self.G, self.D, self.optG, self.optD, real, torch.randn(real.shape[0], self.z, 1, 1))


class RefCGAN:
    """WGAN-GP with labels, the same passes as ours: the n_critic fakes from one no-grad G pass."""

    def __init__(self, cfg):
        self.cfg = cfg
        g, d = cfg.g_channels, cfg.d_channels
        layers = [nn.ConvTranspose2d(cfg.z_dim + 2, g[0], 4, 1, 0, bias=False), nn.BatchNorm2d(g[0]), nn.ReLU()]
        for a, b in zip(g[:-1], g[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
        self.G = nn.Sequential(*layers, nn.ConvTranspose2d(g[-1], 3, 4, 2, 1), nn.Tanh())
        layers = [nn.Conv2d(5, d[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for a, b in zip(d[:-1], d[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.InstanceNorm2d(b, affine=True), nn.LeakyReLU(0.2)]
        self.D = nn.Sequential(*layers, nn.Conv2d(d[-1], 1, 4, 1, 0))
        self.G.apply(dcgan_init)
        self.D.apply(dcgan_init)
        self.optG = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        self.optD = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))

    def nets(self):
        return [self.G, self.D]

    @staticmethod
    def planes(x, y):
        n, _, h, w = x.shape
        return torch.cat([x, y.view(n, 2, 1, 1).expand(n, 2, h, w)], dim=1)

    def gen(self, z, y):
        return self.G(torch.cat([z, y], dim=1)[:, :, None, None])

    def step(self, batch):
        x, y = batch
        cfg = self.cfg
        n = len(x) // cfg.n_critic
        with torch.no_grad():
            fakes = self.gen(torch.randn(len(x), cfg.z_dim), y)
        for k in range(cfg.n_critic):
            sl = slice(k * n, (k + 1) * n)
            real, fake = self.planes(x[sl], y[sl]), self.planes(fakes[sl], y[sl])
            alpha = torch.rand(n, 1, 1, 1)
            mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
            grad = torch.autograd.grad(self.D(mixed).sum(), mixed, create_graph=True)[0]
            gp = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
            loss_D = self.D(fake).mean() - self.D(real).mean() + cfg.gp_weight * gp
            self.optD.zero_grad()
            loss_D.backward()
            self.optD.step()
            loss_D.item()
        yl = y[-n:]
        loss_G = -self.D(self.planes(self.gen(torch.randn(n, cfg.z_dim), yl), yl)).mean()
        self.optG.zero_grad()
        loss_G.backward()
        self.optG.step()
        return loss_D.item(), loss_G.item()


class RefResidualBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c))

    def forward(self, x):
        return x + self.block(x)


class RefCycleGenerator(nn.Module):
    def __init__(self, w, blocks):
        super().__init__()
        self.model = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(3, w, 7), nn.InstanceNorm2d(w), nn.ReLU(True),
            nn.Conv2d(w, 2 * w, 3, 2, 1), nn.InstanceNorm2d(2 * w), nn.ReLU(True),
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.InstanceNorm2d(4 * w), nn.ReLU(True),
            *[RefResidualBlock(4 * w) for _ in range(blocks)],
            nn.ConvTranspose2d(4 * w, 2 * w, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(2 * w), nn.ReLU(True),
            nn.ConvTranspose2d(2 * w, w, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(w), nn.ReLU(True),
            nn.ReflectionPad2d(3), nn.Conv2d(w, 3, 7), nn.Tanh())

    def forward(self, x):
        return self.model(x)


class RefCycleDiscriminator(nn.Module):
    def __init__(self, w, layers):
        super().__init__()
        mods, c = [nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2, True)], w
        for i in range(1, layers + 1):
            out = w * 2 ** min(i, 3)
            mods += [nn.Conv2d(c, out, 4, 2 if i < layers else 1, 1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, True)]
            c = out
        self.model = nn.Sequential(*mods, nn.Conv2d(c, 1, 4, 1, 1))

    def forward(self, x):
        return self.model(x)


class RefCycleGAN:
    """LSGAN + cycle loss (λ = 10), no identity loss, no replay buffer, constant lr: the book's loop."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.G_AB, self.G_BA = RefCycleGenerator(cfg.width, cfg.blocks), RefCycleGenerator(cfg.width, cfg.blocks)
        self.D_A = RefCycleDiscriminator(cfg.d_width, cfg.d_layers)
        self.D_B = RefCycleDiscriminator(cfg.d_width, cfg.d_layers)
        betas = (cfg.beta1, 0.999)
        self.optG = torch.optim.Adam([*self.G_AB.parameters(), *self.G_BA.parameters()], lr=cfg.lr, betas=betas)
        self.optD = torch.optim.Adam([*self.D_A.parameters(), *self.D_B.parameters()], lr=cfg.lr, betas=betas)

    def nets(self):
        return [self.G_AB, self.G_BA, self.D_A, self.D_B]

    def step(self, batch):
        x, y = batch
        mse, l1 = nn.MSELoss(), nn.L1Loss()
        fake_y, fake_x = self.G_AB(x), self.G_BA(y)
        for p in list(self.D_A.parameters()) + list(self.D_B.parameters()):
            p.requires_grad = False
        p_y, p_x = self.D_B(fake_y), self.D_A(fake_x)
        loss_adv = mse(p_y, torch.ones_like(p_y)) + mse(p_x, torch.ones_like(p_x))
        loss_cyc = l1(self.G_BA(fake_y), x) + l1(self.G_AB(fake_x), y)
        loss_G = loss_adv + self.cfg.cycle_weight * loss_cyc
        self.optG.zero_grad()
        loss_G.backward()
        self.optG.step()
        for p in list(self.D_A.parameters()) + list(self.D_B.parameters()):
            p.requires_grad = True
        r_y, f_y = self.D_B(y), self.D_B(fake_y.detach())
        r_x, f_x = self.D_A(x), self.D_A(fake_x.detach())
        loss_DB = (mse(r_y, torch.ones_like(r_y)) + mse(f_y, torch.zeros_like(f_y))) / 2
        loss_DA = (mse(r_x, torch.ones_like(r_x)) + mse(f_x, torch.zeros_like(f_x))) / 2
        self.optD.zero_grad()
        (loss_DA + loss_DB).backward()
        self.optD.step()
        return loss_adv.item(), loss_cyc.item(), loss_DA.item(), loss_DB.item()


class RefAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(784, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.latent_dim))
        self.decoder = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 784),
                                     nn.Sigmoid())
        self.opt = torch.optim.Adam(self.parameters(), lr=cfg.lr)

    def nets(self):
        return [self]

    def forward(self, x):
        return self.decoder(self.encoder(x))

    def step(self, imgs):
        x = imgs.view(-1, 784)
        loss = ((self(x) - x) ** 2).sum() / len(x)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.item()


class RefVAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        assert not cfg.hidden, "the reference VAE follows the cpu preset: no dense layer"
        ch, self.side = cfg.channels, cfg.image_size // 2 ** len(cfg.channels)
        enc, c = [], 3
        for w in ch:
            enc += [nn.Conv2d(c, w, 4, 2, 1), nn.LeakyReLU(0.2)]
            c = w
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        flat = c * self.side * self.side
        self.fc_mu, self.fc_logvar = nn.Linear(flat, cfg.latent_dim), nn.Linear(flat, cfg.latent_dim)
        self.fc_dec = nn.Linear(cfg.latent_dim, flat)
        dec, widths = [], list(ch[::-1][1:]) + [3]
        for i, w in enumerate(widths):
            dec += [nn.ConvTranspose2d(c, w, 4, 2, 1), nn.Sigmoid() if i == len(widths) - 1 else nn.LeakyReLU(0.2)]
            c = w
        self.decoder = nn.Sequential(*dec)
        self.top = ch[-1]
        self.opt = torch.optim.Adam(self.parameters(), lr=cfg.lr)

    def nets(self):
        return [self]

    def forward(self, x):
        h = self.encoder(x * 2 - 1)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h).clamp(-30, 20)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        h = F.leaky_relu(self.fc_dec(z), 0.2).view(-1, self.top, self.side, self.side)
        return self.decoder(h), mu, logvar

    def step(self, x):
        out, mu, logvar = self(x)
        recon = ((out - x) ** 2).sum() / len(x)
        kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum() / len(x)
        loss = recon + kl
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.item(), recon.item(), kl.item()


REFS = {"number_gan": RefNumbers, "curve_gan": RefCurve, "clothing_gan": RefClothing, "anime_dcgan": RefDCGAN,
        "glasses_cgan": RefCGAN, "hair_cyclegan": RefCycleGAN, "digits_ae": RefAE, "faces_vae": RefVAE}


# ---- measuring ----------------------------------------------------------------------------------------

def ceiling(repeats: int = 8) -> tuple[float, float]:
    """(matmul, channels_last conv) GFLOP/s: the best of a few runs each."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    best_mm = 0.0
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        a @ b
        best_mm = max(best_mm, 2 * 2048 ** 3 / (time.perf_counter() - t0) / 1e9)
    conv = nn.Conv2d(128, 128, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(32, 128, 32, 32).contiguous(memory_format=torch.channels_last)
    flops = 2 * 32 * 128 * 32 * 32 * 128 * 9
    best_conv = 0.0
    with torch.no_grad():
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            conv(x)
            best_conv = max(best_conv, flops / (time.perf_counter() - t0) / 1e9)
    return best_mm, best_conv


def step_flops(fn, batch) -> int:
    """Matmul and convolution FLOPs of one call, forwards and backwards, by torch.utils.flop_counter's formulas.

    A bare dispatch mode rather than FlopCounterMode: that one's module hooks refuse autograd.grad(create_graph=True),
    which the WGAN-GP step uses."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            f = func._overloadpacket
            if f in flop_registry:
                Count.total += flop_registry[f](*args, **kwargs, out_val=out)
            return out

    with Count():
        fn(batch)
    return Count.total


def n_params(mods) -> int:
    return sum(p.numel() for m in mods for p in m.parameters())


def trainer_params(t) -> int:
    mods = {id(v): v for v in vars(t).values() if isinstance(v, nn.Module)}
    if "ema" in getattr(t, "state_dict", lambda: {})():  # anime_dcgan: the shipped EMA copy is not trained
        mods.pop(id(t.model), None)
    return n_params(mods.values())


def compile_ref(ref):
    for name, v in list(vars(ref).items()):
        if isinstance(v, nn.Module) and not isinstance(ref, nn.Module):
            setattr(ref, name, torch.compile(v))
    if isinstance(ref, nn.Module):  # the autoencoders: compile their sub-networks
        for name, v in list(ref.named_children()):
            setattr(ref, name, torch.compile(v))
    return ref


def measure(name: str, steps: int, rounds: int, with_compile: bool) -> dict:
    from genlab.registry import get
    from genlab.training import _batch_size

    spec = get(name)
    fields = spec.presets["cpu"].__dataclass_fields__
    batch = spec.presets["cpu"].batch_size
    cfg = spec.config("cpu", **({"limit": min(2048, max(64, BATCHES * batch))} if "limit" in fields else {}))
    torch.manual_seed(0)
    ours = spec.family.Trainer(cfg)
    ref = REFS[name](cfg)
    batches = list(itertools.islice(itertools.cycle(ours.batches(0)), 0, 64))
    images = _batch_size(batches[0])
    p_ours, p_ref = trainer_params(ours), n_params(ref.nets())
    assert p_ours == p_ref, f"{name}: ours has {p_ours} parameters, the reference {p_ref}"
    feed = itertools.cycle(batches)
    for _ in range(3):  # warm-up: first-call allocations, oneDNN kernel choice
        ours.train_step(next(feed))
        ref.step(next(feed))
    if not steps:  # about SECONDS per implementation, from the time of 3 more of our steps
        t0 = time.perf_counter()
        for _ in range(3):
            ours.train_step(next(feed))
        steps = max(rounds, min(2000, int(SECONDS * 3 / (time.perf_counter() - t0))))
    flops = step_flops(ref.step, next(feed))
    flops_ours = step_flops(ours.train_step, next(feed))
    per = max(1, steps // rounds)
    wall = {"ours": 0.0, "ref": 0.0}
    cpu = {"ours": 0.0, "ref": 0.0}
    ratios = []
    for r in range(rounds):
        order = ("ours", "ref") if r % 2 == 0 else ("ref", "ours")
        took = {}
        for who in order:
            fn = ours.train_step if who == "ours" else ref.step
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(per):
                fn(next(feed))
            took[who] = time.perf_counter() - t0
            wall[who] += took[who]
            cpu[who] += time.process_time() - c0
        ratios.append(took["ref"] / took["ours"])
    n = per * rounds
    out = {"model": name, "batch": images, "ours": n * images / wall["ours"], "ref": n * images / wall["ref"],
           "ratio": wall["ref"] / wall["ours"], "ratio_median": statistics.median(ratios),
           "ratio_cpu": cpu["ref"] / cpu["ours"], "gflop_step": flops / 1e9, "gflop_step_ours": flops_ours / 1e9,
           "steps": n, "conv": any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in ours.model.modules())}
    if with_compile:
        comp = compile_ref(REFS[name](cfg))
        t0 = time.perf_counter()
        for _ in range(3):
            comp.step(next(feed))
        out["compile_s"] = time.perf_counter() - t0
        t = {"ours": 0.0, "comp": 0.0}
        for r in range(rounds):
            for who in (("ours", "comp") if r % 2 == 0 else ("comp", "ours")):
                fn = ours.train_step if who == "ours" else comp.step
                t0 = time.perf_counter()
                for _ in range(per):
                    fn(next(feed))
                t[who] += time.perf_counter() - t0
        out["compiled"] = n * images / t["comp"]
        out["ours_vs_compiled"] = n * images / t["ours"]
    return out


def main():
    from genlab.registry import MODELS

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(n for n in MODELS if n in REFS),
                   help="comma-separated registry names (default: every model with a reference below)")
    p.add_argument("--steps", type=int, default=0, help=f"measured steps per implementation (0: about {SECONDS:.0f} s)")
    p.add_argument("--rounds", type=int, default=10, help="interleaved blocks per implementation")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--compile", action="store_true", help="also time the reference under torch.compile")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    names = [n.strip() for n in a.models.split(",") if n.strip()]
    for n in names:
        if n not in MODELS:
            p.error(f"unknown model {n!r}; choose from {', '.join(MODELS)}")
    missing = [n for n in names if n not in REFS] or [n for n in MODELS if n not in REFS]
    if missing:  # a model added to the registry since: listed, not measured, never an error
        print(f"not measured (no book-style reference in REFS to compare with): {', '.join(missing)}")
    names = [n for n in names if n in REFS]
    load0 = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{a.threads} threads, {time.strftime('%Y-%m-%d %H:%M')}; load average {load0:.1f} at the start "
          f"(a shared machine: other jobs ran beside this one)")
    mm, conv = ceiling()
    print(f"ceiling at the start: float32 matmul 2048² {mm:.0f} GFLOP/s, channels_last conv 3×3 128→128 {conv:.0f} GFLOP/s")
    results = []
    for n in names:
        results.append(measure(n, a.steps, a.rounds, a.compile))
        r = results[-1]
        print(f"  {n}: ours {r['ours']:.1f} img/s, ref {r['ref']:.1f} img/s", file=sys.stderr, flush=True)
    mm2, conv2 = ceiling()
    print(f"ceiling at the end:   float32 matmul 2048² {mm2:.0f} GFLOP/s, channels_last conv 3×3 128→128 {conv2:.0f} GFLOP/s")
    mm, conv = max(mm, mm2), max(conv, conv2)
    print(f"shares below use the better of the two (matmul {mm:.0f}, conv {conv:.0f}); "
          f"load average {os.getloadavg()[0]:.1f} at the end\n")
    head = ("| model | batch | steps | ours img/s | ref img/s | ratio (median of rounds) | ratio (total wall) | "
            "ratio (CPU time) | GFLOP/step ours / ref | ours GFLOP/s | ref GFLOP/s | ours share of ceiling |")
    if a.compile:
        head += " ours img/s (compile rounds) | ref compiled img/s | compile s |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in results:
        n = r["model"]
        ceil = conv if r["conv"] else mm
        g_ours = r["gflop_step_ours"] * r["ours"] / r["batch"]
        g_ref = r["gflop_step"] * r["ref"] / r["batch"]
        f = lambda v: f"{v:.1f}" if v < 100 else f"{v:.0f}"  # noqa: E731
        row = (f"| {n} | {r['batch']} | {r['steps']} | {f(r['ours'])} | {f(r['ref'])} | **{r['ratio_median']:.2f}×** | "
               f"{r['ratio']:.2f}× | {r['ratio_cpu']:.2f}× | {r['gflop_step_ours']:.3g} / {r['gflop_step']:.3g} | "
               f"{g_ours:.1f} | {g_ref:.1f} | {g_ours / ceil:.0%} of {'conv' if r['conv'] else 'matmul'} |")
        if a.compile:
            row += f" {f(r['ours_vs_compiled'])} | {f(r['compiled'])} | {r['compile_s']:.0f} |"
        print(row)

if __name__ == "__main__":
    main()

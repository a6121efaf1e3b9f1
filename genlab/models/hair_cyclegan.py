"""Chapter 6: a CycleGAN that turns black hair blond and blond hair black (Zhu et al. 2017).

Two generators, G: black -> blond and F: blond -> black, each a ResNet generator (c7s1-k, d2k, d4k,
n residual blocks R4k, u2k, uk, c7s1-3 + tanh, InstanceNorm, reflection padding), and two 70×70-style
PatchGAN discriminators D_blond, D_black. The losses, with X = black-haired faces, Y = blond ones:

    adversarial (LSGAN, Mao et al. 2017):  L_G = E[(D_Y(G(x)) - 1)²] + E[(D_X(F(y)) - 1)²]
                                           L_D = ½ E[(D_Y(y) - 1)²] + ½ E[D_Y(G(x))²]   (same for D_X)
    cycle consistency:  L_cyc = E[|F(G(x)) - x|₁] + E[|G(F(y)) - y|₁]            weight cycle_weight = 10
    identity:           L_id  = E[|G(y) - y|₁] + E[|F(x) - x|₁]                    weight identity_weight

Departures from the book, and why (the `book` preset keeps the book's settings):
- lr: the book uses 1e-5; a CPU run gets a few epochs, so the `cpu` preset uses the paper's 2e-4 (Adam β1 0.5),
  which moves 20× faster, decayed linearly to 0 over the second half of the run as in the paper.
- Replay buffer: the discriminators see, half the time, one of 50 earlier fakes (Shrivastava et al.
  2017, as in the paper), which damps the G/D oscillation at no compute cost.
- Identity loss at the paper's 0.5·λ = 5 for photos (off in the book): it costs two more generator passes a
  step but keeps what is not hair (skin, background, colours) where it was.
- Upsampling: `upsample="resize"` replaces the stride-2 transposed convolutions by nearest-neighbour
  resizing and a 3×3 convolution (Odena et al. 2016), which cannot paint the period-2 checkerboard
  that transposed convolutions leave on faces; `deconv` (the book's and the paper's layer) is the default.
- Spectral penalty (`spectral`): with resize-convolutions the translated faces still carried ~1.2× the real faces'
  period-2 energy (the discriminators' stride-2 gradients paint it), so G and F may pay for Nyquist-line energy above
  that of real faces of their target colour (metrics.nyquist_excess; Durall et al. 2020 in spirit).
- Size (the `cpu` preset): 64×64 faces, half the paper's width (32), the paper's 6 residual blocks for small
  images, a 24-wide discriminator, batch 4, so that an epoch takes minutes, not hours, on 2 CPU cores.

Images are N×3×H×W in [0, 1] at the Model's edge; the networks work in [-1, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..contract import Evaluation, Spec, Tab
from ..eval import classifier, metrics
from . import frozen

DIRECTIONS = ("black2blond", "blond2black")
FOLDERS = ("hair/black", "hair/blond")


@dataclass(frozen=True)
class Config:
    size: int = 64
    width: int = 16  # generator channels after the first conv (the paper: 64)
    blocks: int = 4  # residual blocks (the paper: 9 at 256×256, 6 at 128×128)
    upsample: str = "deconv"  # "deconv": stride-2 transposed convs (the book, the paper); "resize": see up()
    d_width: int = 24  # discriminator channels in its first layer (the paper: 64)
    d_layers: int = 3  # stride-2 layers in the PatchGAN (3 = the 70×70 PatchGAN)
    batch_size: int = 2
    lr: float = 2e-4
    beta1: float = 0.5
    decay: bool = True  # linear lr decay to 0 over the second half of training (the paper)
    cycle_weight: float = 10.0  # λ
    identity_weight: float = 0.0  # 0 in the book; 0.5·λ = 5 in the paper and in the cpu preset
    buffer_size: int = 50  # replay buffer of fakes for D (0 = none, as the book)
    # weight of a penalty on both generators for period-2 energy above the target colour's training faces' (0 = off;
    # metrics.nyquist_excess, the same term as anime_dcgan's and glasses_cgan's)
    spectral: float = 0.0
    flip: bool = True  # random horizontal flips of the training faces
    epochs: int = 3
    limit: int = 0  # training faces per colour (0 = all of the training split)
    seed: int = 0


PRESETS = {
    # The book: 256×256, 9 residual blocks, full width, lr 1e-5, batch 1, no identity loss, no buffer
    # (epochs=1 is a placeholder: run it for as many epochs as your GPU allows).
    "book": Config(size=256, width=64, blocks=9, d_width=64, batch_size=1, lr=1e-5, decay=False,
                   identity_weight=0.0, buffer_size=0, epochs=1),
    # Sized for a CPU: 64×64, half the width, 6 blocks, resize-convolutions, identity loss, batch 4, the spectral
    # penalty (what ships: the card; trained with --bf16, ~7 pairs/s on 2 AMX cores).
    "cpu": Config(width=32, blocks=6, upsample="resize", identity_weight=5.0, batch_size=4, epochs=20, spectral=0.3),
    # The live tab: something visible within a minute on 2 cores (300 faces per colour, 32×32).
    "live": Config(size=32, width=8, blocks=2, d_width=16, d_layers=2, limit=300, epochs=30),
    "tiny": Config(size=32, width=4, blocks=1, d_width=8, d_layers=2, batch_size=2, limit=4, epochs=1),
}


# ---- networks ---------------------------------------------------------------------------------------

class ResBlock(nn.Module):
    """R4k: x + [reflect-pad, conv3, IN, ReLU, reflect-pad, conv3, IN](x); the channel count stays."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c))

    def forward(self, x):
        return x + self.body(x)


def up(cin: int, cout: int, mode: str) -> list[nn.Module]:
    """×2 upsampling. "deconv" is the paper's stride-2 transposed conv (kernel 3): its kernel overlaps unevenly
    and paints a period-2 checkerboard. "resize" doubles the size by nearest neighbour, then convolves
    (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts", Distill): every output pixel gets the
    same number of kernel taps, so no checkerboard from the layer itself."""
    if mode == "deconv":
        return [nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1)]
    if mode == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
    raise ValueError(f"upsample must be 'deconv' or 'resize', got {mode!r}")


def generator(width: int, blocks: int, upsample: str = "deconv") -> nn.Sequential:
    """3×H×W in [-1, 1] -> 3×H×W in [-1, 1]; H and W divisible by 4."""
    w = width
    return nn.Sequential(
        nn.ReflectionPad2d(3), nn.Conv2d(3, w, 7), nn.InstanceNorm2d(w), nn.ReLU(True),         # c7s1-k: w×H×W
        nn.Conv2d(w, 2 * w, 3, 2, 1), nn.InstanceNorm2d(2 * w), nn.ReLU(True),                 # d2k: 2w×H/2
        nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.InstanceNorm2d(4 * w), nn.ReLU(True),             # d4k: 4w×H/4
        *[ResBlock(4 * w) for _ in range(blocks)],                                             # R4k × blocks
        *up(4 * w, 2 * w, upsample), nn.InstanceNorm2d(2 * w), nn.ReLU(True),                   # u2k: 2w×H/2
        *up(2 * w, w, upsample), nn.InstanceNorm2d(w), nn.ReLU(True),                           # uk: w×H×W
        nn.ReflectionPad2d(3), nn.Conv2d(w, 3, 7), nn.Tanh())                                  # c7s1-3


def discriminator(width: int, layers: int) -> nn.Sequential:
    """PatchGAN: 3×H×W -> 1×h×w scores, one per overlapping patch (70×70 at layers=3), no sigmoid (LSGAN)."""
    mods, c = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2, True)], width  # C64, no norm
    for i in range(1, layers + 1):
        out = width * 2 ** min(i, 3)
        stride = 2 if i < layers else 1  # the last of these keeps the size, as in pix2pix
        mods += [nn.Conv2d(c, out, 4, stride, 1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, True)]
        c = out
    mods.append(nn.Conv2d(c, 1, 4, 1, 1))
    return nn.Sequential(*mods)


class Unit(nn.Module):
    """A generator with the app's edge: [0, 1] images in, [0, 1] images out (what `export` writes)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.net(x * 2 - 1) + 1) / 2


class Model(nn.Module):
    """Both generators, for inference: translate(images, direction) and round_trip(images, direction)."""

    directions = DIRECTIONS

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.G_black2blond = generator(cfg.width, cfg.blocks, cfg.upsample)
        self.G_blond2black = generator(cfg.width, cfg.blocks, cfg.upsample)
        self.input_shape = (3, cfg.size, cfg.size)

    def net(self, direction: str) -> nn.Module:
        if direction == "black2blond":
            return self.G_black2blond
        if direction == "blond2black":
            return self.G_blond2black
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")

    @staticmethod
    def back(direction: str) -> str:
        return DIRECTIONS[1 - DIRECTIONS.index(direction)]

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[-1] % 4 or images.shape[-2] % 4:
            raise ValueError(f"images must be N×3×H×W with H, W divisible by 4, got {tuple(images.shape)}")
        return images.float().to(next(self.parameters()).device)

    @torch.no_grad()
    def translate(self, images: torch.Tensor, direction: str, batch: int = 64) -> torch.Tensor:
        """N×3×H×W in [0, 1] -> the other hair colour, same shape, in [0, 1] (on the CPU)."""
        net, x = self.net(direction), self._check(images)
        out = [((net(x[i:i + batch] * 2 - 1) + 1) / 2).clamp(0, 1).cpu() for i in range(0, len(x), batch)]
        return torch.cat(out) if out else x.cpu()

    @torch.no_grad()
    def round_trip(self, images: torch.Tensor, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(translated, translated back) for N×3×H×W in [0, 1]: F(G(x)) should give x again."""
        there = self.translate(images, direction)
        return there, self.translate(there, self.back(direction))

    def exportable(self) -> nn.Module:
        """The black -> blond generator on [0, 1] images, for `python -m train export hair_cyclegan out.pt`."""
        return Unit(self.G_black2blond).eval()


# ---- training ---------------------------------------------------------------------------------------

class ReplayBuffer:
    """The paper's image pool: D sees, half the time, a fake from up to `size` earlier generator steps."""

    def __init__(self, size: int):
        self.size, self.images = size, []

    def __call__(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        out = []
        for img in fakes.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(()) < 0.5:  # swap in the new fake, show D an old one
                i = int(torch.randint(len(self.images), ()))
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self):
        return {"images": torch.stack(self.images) if self.images else torch.empty(0)}

    def load_state_dict(self, s):
        self.images = list(s["images"].unbind(0)) if s["images"].numel() else []


def hair_data(cfg: Config, root=None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """([train black, train blond], [held-out black, held-out blond]) uint8 N×3×size×size; the fixed split."""
    from ..data import data_root, folder_split

    train, held = [], []
    for f in FOLDERS:
        tr, ho = folder_split(data_root(root) / f, cfg.size)
        train.append(tr[:cfg.limit] if cfg.limit else tr)
        held.append(ho)
    return train, held


class Trainer:
    def __init__(self, cfg: Config, data_root=None, device="cpu"):
        from ..data import to_unit

        self.cfg, self.device = cfg, device
        self.train_only = None  # None, "D" or "G": the live tab's "train only one side" failure
        self.model = Model(cfg).to(device)
        self.D_blond = discriminator(cfg.d_width, cfg.d_layers).to(device)  # judges G_black2blond's output
        self.D_black = discriminator(cfg.d_width, cfg.d_layers).to(device)
        betas = (cfg.beta1, 0.999)
        # fused: one vectorised pass over all parameters instead of ~10 elementwise ops per tensor
        self.opt_g = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=betas, fused=True)
        self.opt_d = torch.optim.Adam([*self.D_blond.parameters(), *self.D_black.parameters()], lr=cfg.lr, betas=betas,
                                      fused=True)
        self.pool_blond, self.pool_black = ReplayBuffer(cfg.buffer_size), ReplayBuffer(cfg.buffer_size)
        (self.black, self.blond), held = hair_data(cfg, data_root)
        self.steps_per_epoch = max(1, min(len(self.black), len(self.blond)) // cfg.batch_size)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.step = 0
        self.dataset = {"name": "CelebA faces, black hair (hair/black) and blond hair (hair/blond), train split",
                        "size": len(self.black) + len(self.blond),
                        "black": len(self.black), "blond": len(self.blond)}
        # Fixed held-out faces for the preview (8 per colour) and the cheap per-epoch score (32 per colour).
        self.fixed = [to_unit(h[:32]).to(device) for h in held]
        if cfg.spectral:  # each colour's share of spectral power on the Nyquist lines, fixed for the run
            self.real_nyquist = [metrics.nyquist_share(imgs) for imgs in (self.black, self.blond)]

    def batches(self, epoch: int):
        """Unpaired batches (black, blond) in [-1, 1]: each colour shuffled on its own, the same per epoch on resume."""
        from ..data import to_signed

        g = torch.Generator().manual_seed(self.cfg.seed * 1_000 + epoch)
        ia, ib = torch.randperm(len(self.black), generator=g), torch.randperm(len(self.blond), generator=g)
        bs = self.cfg.batch_size
        for s in range(self.steps_per_epoch):
            pair = []
            for imgs, idx in ((self.black, ia), (self.blond, ib)):
                x = to_signed(imgs[idx[s * bs:(s + 1) * bs]])
                if self.cfg.flip:
                    f = torch.rand(len(x), generator=g) < 0.5
                    x[f] = x[f].flip(-1)
                pair.append(x.to(self.device))
            yield tuple(pair)

    def _lr(self) -> float:
        """Constant for the first half, then linearly down to 0 (the paper's schedule, in steps)."""
        half = self.total_steps // 2
        if not self.cfg.decay or self.step < half:
            return self.cfg.lr
        return self.cfg.lr * max(0.0, 1 - (self.step - half) / max(1, self.total_steps - half))

    def train_step(self, batch) -> dict:
        x, y = batch  # x: black-haired faces, y: blond faces, in [-1, 1]
        G, Fn = self.model.G_black2blond, self.model.G_blond2black
        cfg, mse = self.cfg, F.mse_loss
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = self._lr()
        self.step += 1

        # Generators: L_G + λ L_cyc + λ_id L_id, with D frozen. Passes through the same network are batched:
        # InstanceNorm and reflection padding work image by image, so one call on [a, b] gives exactly G(a)
        # and G(b), in fewer and larger convolutions (~1.3× faster per image at batch 2 on this CPU).
        # Order: F(y) [and F(x)], then G(x), G(F(y)) [and G(y)] in one call, then F(G(x)).
        nx, ny = len(x), len(y)
        out_f = Fn(torch.cat([y, x]) if cfg.identity_weight else y)
        fake_x = out_f[:ny]
        out_g = G(torch.cat([x, fake_x, y] if cfg.identity_weight else [x, fake_x]))
        fake_y, rec_y = out_g[:nx], out_g[nx:nx + ny]
        rec_x = Fn(fake_y)
        with frozen(self.D_blond, self.D_black):
            p_y, p_x = self.D_blond(fake_y), self.D_black(fake_x)
            adv = mse(p_y, torch.ones_like(p_y)) + mse(p_x, torch.ones_like(p_x))
            cyc = F.l1_loss(rec_x, x) + F.l1_loss(rec_y, y)
            loss_g = adv + cfg.cycle_weight * cyc
            if cfg.identity_weight:
                idt = F.l1_loss(out_g[nx + ny:], y) + F.l1_loss(out_f[ny:], x)
                loss_g = loss_g + cfg.identity_weight * idt
            if cfg.spectral:
                penalty = (metrics.nyquist_excess(fake_y, self.real_nyquist[1])
                           + metrics.nyquist_excess(fake_x, self.real_nyquist[0]))
                loss_g = loss_g + cfg.spectral * penalty
            if self.train_only != "D":
                self.opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                self.opt_g.step()

        # Discriminators: ½[(D(real) - 1)² + D(fake)²], fakes drawn through the replay buffer.
        fy, fx = self.pool_blond(fake_y.detach()), self.pool_black(fake_x.detach())
        d_y, d_x = self.D_blond(torch.cat([y, fy])), self.D_black(torch.cat([x, fx]))  # real and fake in one call
        r_y, f_y, r_x, f_x = d_y[:ny], d_y[ny:], d_x[:nx], d_x[nx:]
        loss_d_blond = (mse(r_y, torch.ones_like(r_y)) + mse(f_y, torch.zeros_like(f_y))) / 2
        loss_d_black = (mse(r_x, torch.ones_like(r_x)) + mse(f_x, torch.zeros_like(f_x))) / 2
        if self.train_only != "G":
            self.opt_d.zero_grad(set_to_none=True)
            (loss_d_blond + loss_d_black).backward()
            self.opt_d.step()
        out = {"loss_g_adv": adv.item(), "loss_cycle": cyc.item(), "loss_d_blond": loss_d_blond.item(),
               "loss_d_black": loss_d_black.item()}
        if cfg.spectral:
            out["loss_spectral"] = penalty.item()
        return out

    @torch.no_grad()
    def score(self) -> dict:
        """Cheap: on 32 fixed held-out faces per colour, the round-trip L1 and (with the classifier) flip rates."""
        out, judge = {}, classifier.optional("hair")
        for d, (src, target) in zip(DIRECTIONS, ((0, 1), (1, 0))):
            there, back = self.model.round_trip(self.fixed[src], d)
            out[f"round_trip_l1_{d}"] = (back - self.fixed[src].cpu()).abs().mean().item()
            if judge is not None:
                there = F.interpolate(there, size=judge.size, mode="bilinear", antialias=True, align_corners=False)
                out[f"flip_rate_{d}"] = (classifier.predict(judge, there).argmax(1) == target).float().mean().item()
        return out

    @torch.no_grad()
    def preview(self):
        """Six rows of 8 fixed held-out faces: black originals, blond versions, round trips; then blond -> black."""
        from ..images import grid_pil

        rows = []
        for d, src in zip(DIRECTIONS, self.fixed):
            x = src[:8].cpu()
            there, back = self.model.round_trip(x, d)
            rows += [x, there, back]
        return grid_pil(torch.cat(rows), nrow=8, scale=max(1, 64 // self.cfg.size))

    def shipped(self) -> Model:
        """The model to save: the trained weights as they are."""
        return self.model

    def state_dict(self) -> dict:
        return {"G": self.model.state_dict(), "D_blond": self.D_blond.state_dict(), "D_black": self.D_black.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "step": self.step,
                "pool_blond": self.pool_blond.state_dict(), "pool_black": self.pool_black.state_dict()}

    def load_state_dict(self, s: dict) -> None:
        self.model.load_state_dict(s["G"])
        self.D_blond.load_state_dict(s["D_blond"])
        self.D_black.load_state_dict(s["D_black"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        self.step = s["step"]
        self.pool_blond.load_state_dict(s["pool_blond"])
        self.pool_black.load_state_dict(s["pool_black"])


SPEC = Spec("hair_cyclegan", __name__, "Hair-colour CycleGAN", 6, "CycleGAN turning black hair blond and back",
            kind="translate", data=FOLDERS, image_shape=lambda cfg: (3, cfg.size, cfg.size),
            evaluation=Evaluation(checks="genlab.models.hair_cyclegan_eval"), train_one_side=True, bf16=True,
            tab=Tab("Hair color", "hair"))

"""Chapter 5: a conditional WGAN-GP that draws faces with or without eyeglasses.

As in the book: the generator takes 100-d noise plus a 2-d one-hot label ([1, 0] glasses, [0, 1] no
glasses) as a 102×1×1 input and upsamples it with ConvTranspose2d + BatchNorm + ReLU to a tanh image.
The critic sees the image plus the label as two constant planes (5 channels): Conv blocks with
InstanceNorm2d(affine) and LeakyReLU(0.2), no sigmoid (it outputs a score, not a probability).
Wasserstein loss with gradient penalty (Gulrajani et al. 2017), weight 10, n_critic = 5 critic updates
per generator update, Adam 1e-4 betas (0.0, 0.9), weights N(0, 0.02), BatchNorm weights N(1, 0.02).

Data: CelebA faces in glasses/G (1,600) and glasses/NoG (3,187), train split only. The classes are
unbalanced, so each epoch takes every glasses image once and as many no-glasses images drawn at random.
A label may be any mix w·glasses + (1 − w)·no-glasses (the book's Fig 5.7 slider).

Switches, off in every preset: `balance_sex` draws every critic batch with as many men as women under both
labels (80% of the glasses faces are men, so otherwise the label also says "male"); `projection` adds
Miyato & Koyama's (2018) projection term to the critic, so it must check the label against the face;
`spectral` adds a penalty on G for period-2 energy above the training faces' (metrics.nyquist_excess, the
checkerboard of the stride-2 transposed convolutions); `init`, `d_warmup` and `ema` fine-tune a shipped
generator against a fresh critic. Which of them made the shipped checkpoint is in its card.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import checkpoint, data
from ..contract import Evaluation, Spec, Tab
from ..latent import noise
from ..eval import classifier, metrics
from . import frozen, init_weights

GLASSES = (1.0, 0.0)
NO_GLASSES = (0.0, 1.0)
LABEL_NAMES = ("glasses", "no glasses")


@dataclass(frozen=True)
class Config:
    image_size: int = 64
    z_dim: int = 100
    # channels of the generator at 4×4, 8×8, ... image_size/2 (one per resolution)
    g_channels: tuple = (256, 128, 64, 32)
    # channels of the critic at image_size/2, ..., 4×4 (the first has no norm, as in the book)
    d_channels: tuple = (32, 64, 128, 256)
    batch_size: int = 32  # per critic update; one step reads n_critic such batches
    n_critic: int = 5
    gp_weight: float = 10.0
    lr: float = 1e-4
    betas: tuple = (0.0, 0.9)
    epochs: int = 100
    flip: bool = True  # mirror faces at random: label-preserving, doubles the small glasses class
    balance_sex: bool = False  # every critic batch: as many men as women in both label halves (see batches())
    projection: bool = False  # add a projection term <embed(y), φ(x)> to the critic's output (Miyato & Koyama 2018)
    ema: float = 0.0  # decay of the moving average of G's weights that ships; 0 = ship the raw G (the book)
    init: str = ""  # a checkpoint folder whose generator starts training (fine-tuning); the critic starts afresh
    d_warmup: int = 0  # steps that train only the (fresh) critic before G moves: with `init`, G's first
    # updates would otherwise follow an untrained critic's gradients
    spectral: float = 0.0  # weight of a penalty on G for period-2 energy above the training faces' (0 = off;
    # metrics.nyquist_excess): the stride-2 transposed convolutions' checkerboard
    limit: int = 0  # images per class (0 = all)
    seed: int = 0


PRESETS = {
    # The book: 256×256, Generator(102, 3, features=16), Critic(5, features=16), batch 16, 100 epochs.
    "book": Config(image_size=256, g_channels=(1024, 512, 256, 128, 64, 32),
                   d_channels=(16, 32, 64, 128, 256, 512), batch_size=16, epochs=100, flip=False),
    # 64×64 with narrower nets, sized for a CPU: 0.66 CPU-s per step (5 critic + 1 generator update, 1 thread),
    # 36 steps per epoch. Too few generator steps for the label to take hold; which preset ships is in the card.
    "cpu": Config(image_size=64, g_channels=(128, 64, 32, 16), d_channels=(16, 32, 64, 128),
                  batch_size=16, epochs=70),
    # The cpu preset's nets and batch, trained ~10× longer (the label only takes hold after >10^4 generator
    # steps): too long for a CPU at 0.66 CPU-s per step, so it is meant for a GPU.
    "long": Config(image_size=64, g_channels=(128, 64, 32, 16), d_channels=(16, 32, 64, 128),
                   batch_size=16, epochs=600),
    "live": Config(image_size=64, g_channels=(64, 32, 16, 8), d_channels=(8, 16, 32, 64),
                   batch_size=16, epochs=20),
    "tiny": Config(image_size=64, g_channels=(8, 8, 8, 8), d_channels=(4, 4, 4, 4), batch_size=2,
                   n_critic=2, epochs=1, limit=8),
}


def label(w: float) -> torch.Tensor:
    """The label w·glasses + (1 − w)·no-glasses as a 2-vector."""
    return torch.tensor([w, 1.0 - w])


def with_labels(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """N×3×H×W and N×2 -> N×5×H×W: the label as two constant planes, the book's critic input."""
    n, _, h, w = images.shape
    return torch.cat([images, labels.view(n, 2, 1, 1).expand(n, 2, h, w)], dim=1)


def generator(cfg: Config) -> nn.Sequential:
    """(z, label) N×102×1×1 -> N×3×S×S in [-1, 1]; each block doubles the size."""
    def block(cin, cout, stride, pad):
        return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU())

    ch = cfg.g_channels
    assert 4 * 2 ** len(ch) == cfg.image_size, "g_channels needs one entry per size 4, 8, ..., image_size/2"
    layers = [block(cfg.z_dim + 2, ch[0], 1, 0)]  # 1×1 -> 4×4
    layers += [block(a, b, 2, 1) for a, b in zip(ch[:-1], ch[1:])]  # 4 -> 8 -> ... -> S/2
    layers += [nn.ConvTranspose2d(ch[-1], 3, 4, 2, 1), nn.Tanh()]  # S/2 -> S
    return nn.Sequential(*layers)


def critic(cfg: Config) -> nn.Module:
    """N×5×S×S (image + label planes) -> N×1×1×1 score, no sigmoid: a Wasserstein critic."""
    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False),
                             nn.InstanceNorm2d(cout, affine=True), nn.LeakyReLU(0.2))

    ch = cfg.d_channels
    assert 4 * 2 ** len(ch) == cfg.image_size, "d_channels needs one entry per size image_size/2, ..., 4"
    layers = [nn.Conv2d(5, ch[0], 4, 2, 1), nn.LeakyReLU(0.2)]  # S -> S/2
    layers += [block(a, b) for a, b in zip(ch[:-1], ch[1:])]  # S/2 -> ... -> 4
    head = nn.Conv2d(ch[-1], 1, 4, 1, 0)  # 4×4 -> 1×1
    if cfg.projection:
        return ProjectionCritic(nn.Sequential(*layers), head, ch[-1])
    return nn.Sequential(*layers, head)


class ProjectionCritic(nn.Module):
    """D(x, y) = ψ(φ(x, y)) + ⟨V y, Σ φ(x, y)⟩ (Miyato & Koyama 2018, "cGANs with Projection Discriminator"):
    the label also enters as an inner product of its embedding with the critic's pooled features, so the
    critic must judge whether the face fits the label, not only whether it is a face. The label planes of
    the book's input stay; y is read back from them, so the critic keeps its one-tensor signature (the
    gradient penalty differentiates it with respect to that input)."""

    def __init__(self, body: nn.Module, head: nn.Module, features: int):
        super().__init__()
        self.body, self.head = body, head
        self.embed = nn.Linear(2, features, bias=False)  # V: linear in y, so label mixes project in between
        nn.init.zeros_(self.embed.weight)  # starts as the book's critic; a random V made the first GP ~10³
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)  # N×C×4×4
        y = x[:, 3:5, 0, 0]  # the label planes are constant: any pixel gives y
        proj = (self.embed(y) * h.sum(dim=(2, 3))).sum(1)
        return self.head(h) + proj.view(-1, 1, 1, 1)


def gradient_norms(critic_fn, x: torch.Tensor) -> torch.Tensor:
    """‖∇ₓ D(x)‖₂ for each sample: a vector of N norms, each over that sample's C·H·W gradient.

    The per-sample norm matters: one norm over the whole batch would not constrain each sample.
    create_graph=True so the penalty on these norms can itself be differentiated.
    """
    x = x.detach().float().requires_grad_(True)
    with torch.autocast(x.device.type, enabled=False):  # fp32 always: bf16 is too coarse for ‖∇D‖ − 1 near 0
        scores = critic_fn(x)
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)  # samples are independent
    return grad.flatten(1).norm(2, dim=1)


def gradient_penalty(critic_fn, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
    """GP = E[(‖∇ D(x̂)‖₂ − 1)²], x̂ = α·real + (1 − α)·fake, α ~ U[0, 1] per sample (Gulrajani et al. 2017)."""
    if alpha is None:
        alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x_hat = alpha * real + (1 - alpha) * fake.detach()
    return ((gradient_norms(critic_fn, x_hat) - 1) ** 2).mean()


def male_labels(root, folder: str) -> torch.Tensor:
    """1/0 per image of folder's training split (the order of data.folder_split), from glasses/attributes.csv."""
    import csv

    with open(data.data_root(root) / "glasses" / "attributes.csv", newline="") as f:
        male = {r["filename"]: int(r["male"]) for r in csv.DictReader(f)}
    files = data.image_files(data.data_root(root) / folder)
    tr, _ = data.split(len(files), data.HOLDOUT)
    return torch.tensor([male[f"{folder.split('/')[-1]}/{files[i].name}"] for i in tr.tolist()])


class Model(nn.Module):
    """The generator: noise (N×100) and labels (N×2) -> faces N×3×S×S in [0, 1]."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        self.image_size = cfg.image_size
        self.label_names = LABEL_NAMES
        self.G = generator(cfg)
        self.G.apply(init_weights)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images, as the critic sees them during training."""
        return self.G(torch.cat([z, labels.to(z)], dim=1)[:, :, None, None])

    def noise(self, n: int, seed: int = 0) -> torch.Tensor:
        return noise(n, self.z_dim, seed, next(self.parameters()).device)

    def labels(self, n: int, labels=None) -> torch.Tensor:
        """N×2 labels from None (first half glasses, second half none), a weight w, a 2-vector or an N×2 tensor."""
        dev = next(self.parameters()).device
        if labels is None:
            lab = torch.tensor([GLASSES if i < (n + 1) // 2 else NO_GLASSES for i in range(n)])
        elif isinstance(labels, (int, float)):
            if not 0.0 <= float(labels) <= 1.0:
                raise ValueError(f"a label weight must be in [0, 1], got {labels}")
            lab = label(float(labels)).expand(n, 2)
        else:
            lab = torch.as_tensor(labels, dtype=torch.float32)
            if lab.shape == (2,):
                lab = lab.expand(n, 2)
            if lab.shape != (n, 2):
                raise ValueError(f"labels must be a weight, a 2-vector or an {n}×2 tensor, got shape {tuple(lab.shape)}")
        return lab.float().to(dev)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels) -> torch.Tensor:
        """Faces in [0, 1] for given noise N×100 and labels (anything `labels()` takes)."""
        dev = next(self.parameters()).device
        z = z.to(dev).float().reshape(-1, self.z_dim)
        return ((self(z, self.labels(len(z), labels)) + 1) / 2).clamp(0, 1).cpu()

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, labels=None) -> torch.Tensor:
        """n faces from seeded noise; labels: None (half glasses, half none), a weight w, or N×2."""
        return self.generate(self.noise(n, seed), labels)


class Trainer:
    def __init__(self, cfg: Config, data_root=None, device="cpu"):
        self.cfg, self.device = cfg, device
        self.train_only = None  # None, "D" or "G": the live tab's "train only one side" switch
        root = data.data_root(data_root)
        # Train split only; held-out images stay for evaluation (genlab.models.glasses_cgan_eval).
        self.classes, self.male = [], []
        for folder in ("glasses/G", "glasses/NoG"):
            tr, _ = data.folder_split(root / folder, cfg.image_size)
            self.classes.append(tr[:cfg.limit] if cfg.limit else tr)
            if cfg.balance_sex:
                self.male.append(male_labels(root, folder)[:len(self.classes[-1])])
        if cfg.balance_sex and (cfg.batch_size % 4 or any(((m == v).sum() == 0) for m in self.male for v in (0, 1))):
            raise ValueError("balance_sex needs a batch size divisible by 4 and men and women in both folders")
        self.model = Model(cfg).to(device)  # what ships: G itself, or the moving average of its weights (ema)
        if cfg.init:
            _, weights, _ = checkpoint.read(cfg.init)
            checkpoint.load_weights(self.model, weights, cfg.init)
        self.G = Model(cfg).to(device) if cfg.ema else self.model  # the generator the optimiser moves
        if cfg.ema:
            self.G.load_state_dict(self.model.state_dict())
        self.ema_steps = 0
        self.steps = 0
        self.D = critic(cfg).to(device)
        self.D.apply(init_weights)
        # fused: one vectorised pass over all parameters instead of ~10 elementwise ops per tensor
        self.opt_g = torch.optim.Adam(self.G.G.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), fused=True)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), fused=True)
        n_g, n_nog = len(self.classes[0]), len(self.classes[1])
        self.per_class = min(n_g, n_nog)  # balanced: this many of each class per epoch
        self.dataset = {"name": "CelebA eyeglasses (glasses/G + glasses/NoG, train split, balanced)",
                        "size": n_g + n_nog, "glasses": n_g, "no_glasses": n_nog}
        self.steps_per_epoch = max(1, 2 * self.per_class // (cfg.n_critic * cfg.batch_size))
        self.fixed_z = noise(16, cfg.z_dim, seed=1234, device=device)
        if cfg.spectral:  # the training faces' share of spectral power on the Nyquist lines, fixed for the run
            self.real_nyquist = metrics.nyquist_share(torch.cat(self.classes))

    def batches(self, epoch: int):
        """Each step: n_critic·batch_size real images (half glasses, half none, shuffled) and their labels."""
        g = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        if self.cfg.balance_sex:
            yield from self._balanced_batches(g)
            return
        idx = [torch.randperm(len(x), generator=g)[:self.per_class] for x in self.classes]
        x = torch.cat([self.classes[0][idx[0]], self.classes[1][idx[1]]])
        y = torch.tensor([GLASSES] * self.per_class + [NO_GLASSES] * self.per_class)
        order = torch.randperm(len(x), generator=g)
        per_step = self.cfg.n_critic * self.cfg.batch_size
        for s in range(self.steps_per_epoch):
            take = order[s * per_step:(s + 1) * per_step]
            xb = data.to_signed(x[take])
            if self.cfg.flip:
                flip = torch.rand(len(xb), generator=g) < 0.5
                xb[flip] = xb[flip].flip(-1)
            yield xb.to(self.device), y[take].to(self.device)

    def _balanced_batches(self, g: torch.Generator):
        """Like batches(), but each critic batch holds a quarter each of men with glasses, women with glasses,
        men without and women without. In the data 80% of glasses faces are men and ~35% of the others, so an
        unbalanced critic rewards "glasses" for looking male and G learns the label as a sex switch; with the
        same share of men under both labels, the label can only mean the glasses. Small cells repeat (each
        pass over a cell is a fresh permutation; random flips make the repeats differ)."""
        cfg, q = self.cfg, self.cfg.batch_size // 4
        cells = [(c, torch.nonzero(self.male[c] == m).flatten()) for c in (0, 1) for m in (1, 0)]
        need = self.steps_per_epoch * cfg.n_critic * q
        streams = []
        for c, pool in cells:
            reps = -(-need // len(pool))
            streams.append(pool[torch.cat([torch.randperm(len(pool), generator=g) for _ in range(reps)])][:need])
        for s in range(self.steps_per_epoch):
            xs, ys = [], []
            for k in range(cfg.n_critic):  # one balanced critic batch at a time, in the order train_step slices
                take = slice((s * cfg.n_critic + k) * q, (s * cfg.n_critic + k + 1) * q)
                order = torch.randperm(4 * q, generator=g)
                xs.append(torch.cat([self.classes[c][st[take]] for (c, _), st in zip(cells, streams)])[order])
                ys.append(torch.tensor([GLASSES if c == 0 else NO_GLASSES for c, _ in cells for _ in range(q)])[order])
            xb = data.to_signed(torch.cat(xs))
            if cfg.flip:
                flip = torch.rand(len(xb), generator=g) < 0.5
                xb[flip] = xb[flip].flip(-1)
            yield xb.to(self.device), torch.cat(ys).to(self.device)

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """L_D = E[D(fake)] − E[D(real)] + λ·GP on 5-channel inputs; returns (L_D, W estimate, GP)."""
        # Real and fake in one pass: the critic normalises per sample (InstanceNorm), so batching changes nothing.
        scores = self.D(torch.cat([real, fake])).flatten()
        w_dist = scores[:len(real)].mean() - scores[len(real):].mean()  # the critic's Wasserstein estimate
        gp = gradient_penalty(self.D, real, fake)
        return -w_dist + self.cfg.gp_weight * gp, w_dist, gp

    def train_step(self, batch) -> dict:
        x, y = batch
        cfg, G = self.cfg, self.G
        n = len(x) // cfg.n_critic
        zero = torch.zeros((), device=self.device)
        loss_d, w_dist, gp, loss_g = zero, zero, zero, zero
        self.steps += 1
        train_g = self.train_only != "D" and self.steps > cfg.d_warmup
        if self.train_only != "G":
            with torch.no_grad():  # all n_critic fake batches in one pass; the critic step needs no G gradient
                fake_all = G(torch.randn(len(x), cfg.z_dim, device=self.device), y)
            for k in range(cfg.n_critic):
                sl = slice(k * n, (k + 1) * n)
                loss_d, w_dist, gp = self.critic_loss(with_labels(x[sl], y[sl]), with_labels(fake_all[sl], y[sl]))
                self.opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                self.opt_d.step()
        if train_g:
            yl = y[-n:]
            fake = G(torch.randn(n, cfg.z_dim, device=self.device), yl)
            with frozen(self.D):  # the G step needs gradients through D, not for D's weights
                loss_g = -self.D(with_labels(fake, yl)).mean()  # L_G = −E[D(G(z, y), y)]
                if cfg.spectral:
                    penalty = metrics.nyquist_excess(fake, self.real_nyquist)
                    loss_g = loss_g + cfg.spectral * penalty
                self.opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
            self.opt_g.step()
            if cfg.ema:
                self._update_ema()
        out = {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "w_dist": w_dist.item(), "gp": gp.item()}
        if cfg.spectral:
            out["loss_spectral"] = penalty.item() if train_g else 0.0
        return out

    @torch.no_grad()
    def _update_ema(self) -> None:
        self.ema_steps += 1
        # Warm-up: early on average over ~the steps so far, not over 1/(1−decay) steps of noise.
        decay = min(self.cfg.ema, (1 + self.ema_steps) / (10 + self.ema_steps))
        torch._foreach_lerp_(list(self.model.parameters()), list(self.G.parameters()), 1 - decay)

    @torch.no_grad()
    def shipped(self) -> Model:
        """The model to save, in eval mode. With `ema`, its BatchNorm statistics are measured again for the
        averaged weights (G's running statistics belong to G's own weights) on 8 batches of fresh noise."""
        m = self.model
        if self.cfg.ema:
            bns = [b for b in m.modules() if isinstance(b, nn.BatchNorm2d)]
            g = torch.Generator().manual_seed(4321)
            m.train()
            for bn in bns:
                bn.reset_running_stats()
                bn.momentum = None  # a cumulative average over the 8 batches
            for _ in range(8):
                z = torch.randn(2 * self.cfg.batch_size, self.cfg.z_dim, generator=g).to(self.device)
                m(z, m.labels(len(z)))
            for bn in bns:
                bn.momentum = 0.1
        return m.eval()

    @torch.no_grad()
    def score(self) -> dict:
        """The eval classifier's label agreement on 64 faces per label, when that classifier is shipped."""
        clf = classifier.optional("glasses")
        if clf is None:  # no classifier yet: nothing cheap to report
            return {}
        self.shipped()
        z = noise(64, self.cfg.z_dim, seed=4321, device=self.device)
        out = {}
        for w, key, cls in ((1.0, "agree_glasses", 1), (0.0, "agree_no_glasses", 0)):
            img = self.model.generate(z, w)
            img = nn.functional.interpolate(img, size=clf.size, mode="area") if img.shape[-1] != clf.size else img
            out[key] = (classifier.predict(clf, img).argmax(1) == cls).float().mean().item()
        self.model.train()
        return out

    @torch.no_grad()
    def preview(self):
        """4×8: rows 1–2 with glasses, rows 3–4 the same 16 noises without."""
        from ..images import grid_pil

        self.shipped()
        img = torch.cat([self.model.generate(self.fixed_z, 1.0), self.model.generate(self.fixed_z, 0.0)])
        self.model.train()
        return grid_pil(img, nrow=8)

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "ema": self.model.state_dict(),
                "ema_steps": self.ema_steps, "steps": self.steps,
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, s: dict) -> None:
        self.G.load_state_dict(s["G"])
        self.model.load_state_dict(s.get("ema", s["G"]))
        self.ema_steps, self.steps = s.get("ema_steps", 0), s.get("steps", 0)
        self.D.load_state_dict(s["D"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])


def both_labels(model, n: int, seed: int) -> torch.Tensor:
    """n faces for evaluation, half with glasses, half without: the held-out set has both kinds of face."""
    return torch.cat([model.sample(n // 2, seed=seed, labels=1.0), model.sample(n - n // 2, seed=seed + 10_000, labels=0.0)])


SPEC = Spec("glasses_cgan", __name__, "Eyeglasses cGAN", 5,
            "conditional WGAN-GP drawing 64×64 faces with or without glasses", kind="conditional",
            data=("glasses/G", "glasses/NoG"), image_shape=lambda cfg: (3, cfg.image_size, cfg.image_size),
            evaluation=Evaluation(features="glasses", generate=both_labels, checks="genlab.models.glasses_cgan_eval"),
            train_one_side=True, bf16=True, layers=3, tab=Tab("Eyeglasses", "glasses"))

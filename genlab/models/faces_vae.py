"""Chapter 7: a variational autoencoder on faces with and without eyeglasses.

The encoder maps a face to the mean μ and log-variance log σ² of a 100-d Gaussian; a code is drawn with
the reparameterisation trick z = μ + σ·ε, ε ~ N(0, I) (Kingma & Welling 2014), and the decoder maps it
back to the image through a sigmoid. The loss per image is the book's summed squared error plus the KL
divergence to the prior N(0, I):

    L(x) = ||x − x̂||²  +  kl_weight · ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1)

The book draws ε from a Normal whose parameters it moves to CUDA, so its code breaks on a CPU; here ε is
torch.randn_like(μ), created on whatever device the input is on.

`book`: 256×256, three stride-2 convs (8, 16, 32 channels) and a 1024-wide dense layer, Adam 1e-4,
batches of 16. `cpu` (what ships): 64×64, four stride-2 convs (32…256 channels), no dense layer.
Both read glasses/G and glasses/NoG, centre-cropped square, and train on the fixed train split only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..contract import Evaluation, Spec, Tab
from .. import data, faces
from ..latent import noise

FOLDERS = faces.FOLDERS  # what it trains on: the labelled faces of genlab/faces.py


@dataclass(frozen=True)
class Config:
    image_size: int = 64
    channels: tuple = (32, 64, 128, 256)  # widths of the stride-2 convs; each halves the image side
    hidden: int = 0  # width of a dense layer between the convs and (μ, log σ²); 0 = none
    latent_dim: int = 100
    kl_weight: float = 1.0  # 0 turns the VAE into a plain autoencoder: the prior is then meaningless
    batch_size: int = 32
    lr: float = 1e-3
    epochs: int = 25
    flip: bool = True  # mirror faces at random: a free, label-preserving augmentation
    limit: int = 0  # images per folder (0 = all)
    seed: int = 0


PRESETS = {
    "book": Config(image_size=256, channels=(8, 16, 32), hidden=1024, batch_size=16, lr=1e-4, epochs=10, flip=False),
    "cpu": Config(),
    "live": Config(channels=(16, 32, 64, 128), epochs=3),
    "tiny": Config(image_size=16, channels=(4, 8), latent_dim=8, batch_size=4, epochs=1, limit=8),
}


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = μ + σ·ε with ε ~ N(0, I) made on μ's device (randn_like), so it runs on CPU, CUDA or MPS."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) || N(0, I)) per row = ½ Σ (μ² + σ² − log σ² − 1); zero exactly at μ = 0, log σ² = 0."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(dim=1)


class Model(nn.Module):
    """Encoder x (N×3×S×S in [0, 1]) -> (μ, log σ²) N×latent; decoder z -> N×3×S×S in [0, 1]."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.input_shape = (3, cfg.image_size, cfg.image_size)
        side = cfg.image_size // 2 ** len(cfg.channels)
        if side < 1 or side * 2 ** len(cfg.channels) != cfg.image_size:
            raise ValueError(f"image_size {cfg.image_size} must be divisible by 2^{len(cfg.channels)}")
        self.side = side
        enc, c = [], 3
        for w in cfg.channels:  # S -> S/2 per conv
            enc += [nn.Conv2d(c, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c = w
        flat = c * side * side
        enc.append(nn.Flatten())
        if cfg.hidden:
            enc += [nn.Linear(flat, cfg.hidden), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*enc)
        width = cfg.hidden or flat
        self.to_mu = nn.Linear(width, cfg.latent_dim)
        self.to_logvar = nn.Linear(width, cfg.latent_dim)
        dec = []
        if cfg.hidden:
            dec += [nn.Linear(cfg.latent_dim, cfg.hidden), nn.LeakyReLU(0.2), nn.Linear(cfg.hidden, flat)]
        else:
            dec += [nn.Linear(cfg.latent_dim, flat)]
        dec += [nn.LeakyReLU(0.2), nn.Unflatten(1, (c, side, side))]
        widths = list(cfg.channels[::-1][1:]) + [3]
        for i, w in enumerate(widths):  # side -> 2·side per transposed conv, back to S
            dec.append(nn.ConvTranspose2d(c, w, 4, stride=2, padding=1))
            dec.append(nn.Sigmoid() if i == len(widths) - 1 else nn.LeakyReLU(0.2))
            c = w
        self.decoder = nn.Sequential(*dec)

    def _device(self):
        return next(self.parameters()).device

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x * 2 - 1)  # the convs see [-1, 1]
        return self.to_mu(h), self.to_logvar(h).clamp(-30, 20)  # clamp: exp() must not overflow early on

    def forward(self, x):
        """(reconstruction, μ, log σ²) with a sampled code: what training uses."""
        mu, logvar = self.moments(x)
        return self.decoder(reparameterize(mu, logvar)), mu, logvar

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Faces N×3×S×S in [0, 1] -> their mean codes μ, N×latent (deterministic)."""
        return self.moments(x.to(self._device()).float())[0]

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes N×latent -> faces N×3×S×S in [0, 1]."""
        return self.decoder(z.to(self._device()).float())

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """n faces decoded from codes drawn from the prior N(0, I), seeded."""
        return self.decode(noise(n, self.cfg.latent_dim, seed, self._device())).cpu()


def loss_terms(model: Model, x: torch.Tensor, kl_weight: float) -> dict[str, torch.Tensor]:
    """Per-image means of the two terms and their weighted sum (the book sums over the batch too;
    dividing by the batch size only rescales the gradient, which Adam ignores)."""
    recon, mu, logvar = model(x)
    rec = (recon - x).pow(2).sum(dim=(1, 2, 3)).mean()  # not flatten(1): that copies a channels_last tensor
    kl = kl_divergence(mu, logvar).mean()
    return {"loss": rec + kl_weight * kl, "recon": rec, "kl": kl}


def load_faces(root, size: int, limit: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) uint8 faces of G and NoG together, by the fixed split of every folder."""
    tr, ho = [], []
    for f in FOLDERS:
        folder = data.data_root(root) / f
        if limit:
            x = data.load_folder(folder, size, limit)
            a, b = data.split(len(x), data.HOLDOUT)
            tr.append(x[a])
            ho.append(x[b])
        else:
            a, b = data.folder_split(folder, size)
            tr.append(a)
            ho.append(b)
    return torch.cat(tr), torch.cat(ho)


class Trainer:
    def __init__(self, cfg: Config, data_root=None, device="cpu"):
        self.cfg, self.device = cfg, device
        # channels_last: oneDNN's convolutions run faster on NHWC tensors on this CPU (the weights keep their
        # shapes; checkpoint.save writes them contiguous). fused Adam: one vectorised pass over all parameters.
        self.model = Model(cfg).to(device, memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=True)
        self.train_x, self.held_x = load_faces(data_root, cfg.image_size, cfg.limit)
        self.dataset = {"name": "CelebA faces with/without eyeglasses (glasses/G + glasses/NoG), train split",
                        "size": len(self.train_x)}
        self.steps_per_epoch = -(-len(self.train_x) // cfg.batch_size)
        self.fixed_z = noise(16, cfg.latent_dim, seed=1234, device=device)
        g = torch.Generator().manual_seed(0)
        self.shown = data.to_unit(self.held_x[torch.randperm(len(self.held_x), generator=g)[:8]]).to(device)
        self.scored = data.to_unit(self.held_x[:512]).to(device)  # cheap: one forward pass per epoch

    def batches(self, epoch: int):
        g = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)  # the same order after a resume
        for idx in torch.randperm(len(self.train_x), generator=g).split(self.cfg.batch_size):
            x = data.to_unit(self.train_x[idx])
            if self.cfg.flip:
                flip = torch.rand(len(x), generator=g) < 0.5
                x[flip] = x[flip].flip(-1)
            yield x.to(self.device)

    def train_step(self, x: torch.Tensor) -> dict:
        x = x.contiguous(memory_format=torch.channels_last)
        self.model.train()
        terms = loss_terms(self.model, x, self.cfg.kl_weight)
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.opt.step()
        return {k: v.item() for k, v in terms.items()}

    @torch.no_grad()
    def score(self) -> dict:
        self.model.eval()
        mse = (self.model.decode(self.model.encode(self.scored)) - self.scored).pow(2).mean().item()
        return {"held_out_mse_per_pixel": mse}

    @torch.no_grad()
    def preview(self):
        """Rows 1-2: held-out faces and their reconstructions; rows 3-4: 16 faces from fixed prior codes."""
        from ..images import grid_pil

        self.model.eval()
        rec = self.model.decode(self.model.encode(self.shown))
        return grid_pil(torch.cat([self.shown, rec, self.model.decode(self.fixed_z)]).cpu(), nrow=8)

    def shipped(self) -> Model:
        """The model to save: the trained weights as they are."""
        return self.model

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, s: dict) -> None:
        self.model.load_state_dict(s["model"])
        self.opt.load_state_dict(s["opt"])


SPEC = Spec("faces_vae", __name__, "Face VAE", 7, "variational autoencoder on 64×64 faces with/without glasses",
            kind="vae", data=FOLDERS, image_shape=lambda cfg: (3, cfg.image_size, cfg.image_size),
            evaluation=Evaluation(features="glasses", checks="genlab.models.faces_vae_eval"), layers=4, bf16=True,
            tab=Tab("Face VAE", "face_vae"))

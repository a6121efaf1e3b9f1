"""MODELS: the one place that lists the models, by registry name.

Each entry names a module in genlab/models/ that provides Config, PRESETS (book, cpu, live, tiny),
Model (inference, with sample/translate/encode/decode as fits) and Trainer (one train_step).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


@dataclass(frozen=True)
class Spec:
    name: str
    module: str  # genlab.models.<module>
    title: str
    chapter: int
    summary: str
    data: tuple[str, ...] = ()  # data folders under the data root its Trainer reads (genlab.data.source)

    @property
    def family(self) -> ModuleType:
        return importlib.import_module(f"genlab.models.{self.module}")

    @property
    def presets(self) -> dict:
        return self.family.PRESETS

    @property
    def kind(self) -> str:
        return self.family.KIND

    @property
    def checkpoint(self) -> Path:
        return CHECKPOINTS / self.name

    def config(self, preset: str = "cpu", **overrides):
        """A preset with some fields replaced; unknown fields or presets are a ValueError."""
        if preset not in self.presets:
            raise ValueError(f"{self.name} has no preset {preset!r}; choose from {', '.join(self.presets)}")
        cfg = self.presets[preset]
        names = {f.name for f in fields(cfg)}
        bad = set(overrides) - names
        if bad:
            raise ValueError(f"{self.name} config has no field(s) {', '.join(sorted(bad))}")
        return type(cfg)(**{**cfg.__dict__, **overrides})

    @property
    def train_command(self) -> str:
        return f"python -m train {self.name}"


MODELS: dict[str, Spec] = {s.name: s for s in [
    Spec("curve_gan", "curve", "Curve GAN", 3, "learns points on y = 1.08^x"),
    Spec("number_gan", "numbers", "Multiples-of-5 GAN", 3, "learns to produce multiples of 5 as one-hot vectors"),
    Spec("clothing_gan", "clothing", "Clothing GAN", 4, "dense GAN drawing 28×28 Fashion-MNIST clothes",
         data=("FashionMNIST",)),
    Spec("anime_dcgan", "dcgan", "Anime-face DCGAN", 4, "DCGAN drawing 64×64 anime faces",
         data=("anime/faces",)),
    Spec("glasses_cgan", "cgan", "Eyeglasses cGAN", 5, "conditional WGAN-GP drawing 64×64 faces with or without glasses",
         data=("glasses/G", "glasses/NoG")),
    Spec("hair_cyclegan", "cyclegan", "Hair-colour CycleGAN", 6, "CycleGAN turning black hair blond and back",
         data=("hair/black", "hair/blond")),
    Spec("digits_ae", "autoencoder", "Digits autoencoder", 7, "autoencoder squeezing MNIST digits to 20 numbers",
         data=("MNIST",)),
    Spec("faces_vae", "vae", "Face VAE", 7, "variational autoencoder on 64×64 faces with/without glasses",
         data=("glasses/G", "glasses/NoG")),
]}


def get(name: str) -> Spec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None

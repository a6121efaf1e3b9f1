"""How the generic tests reach each kind of model: its data folders and one deterministic output."""
from __future__ import annotations

import torch

# registry name -> data folders its tiny preset reads (none for the toys)
DATA = {
    "curve_gan": (),
    "number_gan": (),
    "clothing_gan": ("FashionMNIST",),
    "anime_dcgan": ("anime/faces",),
    "glasses_cgan": ("glasses/G", "glasses/NoG"),
    "hair_cyclegan": ("hair/black", "hair/blond"),
    "digits_ae": ("MNIST",),
    "faces_vae": ("glasses/G", "glasses/NoG"),
}


def output(model, seed: int = 0) -> torch.Tensor:
    """One deterministic output: translate() or encode()/decode() random images of model.input_shape,
    else sample(4, seed)."""
    if hasattr(model, "translate") or not hasattr(model, "sample"):
        x = torch.rand(2, *model.input_shape, generator=torch.Generator().manual_seed(seed))
        if hasattr(model, "translate"):
            return model.translate(x, model.directions[0])
        return model.decode(model.encode(x))
    return model.sample(4, seed=seed)

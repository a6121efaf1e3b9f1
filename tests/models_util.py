"""How the generic tests reach each kind of model: its data folders and one deterministic output."""
from __future__ import annotations

import torch

from genlab import MODELS

# registry name -> data folders its tiny preset reads (none for the toys): the registry says
DATA = {name: spec.data for name, spec in MODELS.items()}


def output(model, seed: int = 0) -> torch.Tensor:
    """One deterministic output: translate() or encode()/decode() random images of model.input_shape,
    else sample(4, seed)."""
    if hasattr(model, "translate") or not hasattr(model, "sample"):
        x = torch.rand(2, *model.input_shape, generator=torch.Generator().manual_seed(seed))
        if hasattr(model, "translate"):
            return model.translate(x, model.directions[0])
        return model.decode(model.encode(x))
    return model.sample(4, seed=seed)

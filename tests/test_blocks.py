"""The Building blocks tab: the book's transposed-convolution example from the handler, output sizes
against PyTorch's formula, batch-norm statistics, the generator layer table, and clear errors."""
from __future__ import annotations

import math

import gradio as gr
import pytest
import torch
from torch import nn

import genlab
from genlab import blocks
from genlab.registry import MODELS
from genlab.ui import blocks as ui
from genlab.ui import common


def test_book_example_from_handler():
    table, contributions, compare, text = ui.convtranspose("1 0\n2 3", "2 3\n4 5", 2, 0, 0, 1, 0)
    assert table.values.tolist() == [[2, 3, 0, 0], [4, 5, 0, 0], [4, 6, 6, 9], [8, 10, 12, 15]]
    assert "(2 − 1)·2 − 2·0 + 1·(2 − 1) + 0 + 1 = 4" in text and "book's example" in text
    assert contributions.size[0] > 100 and compare.size[0] > 100


def test_grid_formats_agree():
    a = blocks.parse_grid("1 0\n2 3")
    for text in ("[[1, 0], [2, 3]]", "1,0;2,3", " 1, 0 \n\n 2  3 ", [[1, 0], [2, 3]], [["1", "0"], ["2", "3"]]):
        assert torch.equal(blocks.parse_grid(text), a), text


@pytest.mark.parametrize("stride", [1, 2, 3, 4])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
def test_output_size_matches_formula_and_pytorch(stride, padding, dilation):
    torch.manual_seed(stride * 10 + padding)
    x, k = torch.randn(3, 2).double(), torch.randn(3, 2).double()
    for op in range(max(stride, dilation)):
        h = blocks.convtranspose_size(3, 3, stride, padding, op, dilation)
        w = blocks.convtranspose_size(2, 2, stride, padding, op, dilation)
        if h < 1 or w < 1:
            with pytest.raises(blocks.BlocksError, match="crops everything"):
                blocks.convtranspose(x, k, stride, padding, op, dilation, 0.5)
            continue
        r = blocks.convtranspose(x, k, stride, padding, op, dilation, 0.5)
        assert tuple(r["output"].shape) == (h, w)
        assert r["formula_h"].endswith(f"= {h}") and r["formula_w"].endswith(f"= {w}")
        ref = nn.functional.conv_transpose2d(x[None, None], k[None, None], torch.tensor([0.5]).double(), stride,
                                             padding, op, dilation=dilation)[0, 0]
        assert torch.allclose(r["output"], ref)
        # The pictures' story holds: the copies sum to the canvas, and padding only crops it.
        assert torch.allclose(sum(r["contributions"].values()) + 0.5, r["canvas"])
        assert torch.allclose(r["canvas"][padding:padding + h, padding:padding + w], r["output"])
        if r["conv"] is not None:
            assert r["conv"].shape[0] == blocks.conv_size(3, 3, stride, padding, dilation)


def test_figures_for_a_large_input():
    r = blocks.convtranspose(torch.ones(16, 16), torch.ones(3, 3), 2, 1, 1, 1, 0)
    assert blocks.contributions_figure(r).size[0] > 100  # one summed panel instead of 256 small ones


@pytest.mark.parametrize("n,c,side,seed", [(8, 3, 4, 0), (2, 1, 1, 5), (64, 4, 8, 7), (5, 2, 3, 123)])
def test_batchnorm_training_mode_zero_mean_unit_variance(n, c, side, seed):
    r = blocks.batchnorm(n, c, side, seed, gamma=1, beta=0, momentum=0.1, train_batches=3)
    mean, var = blocks.channel_stats(r["train"])
    assert torch.allclose(mean, torch.zeros(c), atol=1e-5)
    assert torch.allclose(var, torch.ones(c), atol=1e-3)
    before, _ = blocks.channel_stats(r["input"])
    assert before.abs().max() > 0.3  # the batch really was not normalized to begin with


def test_batchnorm_gamma_beta_and_running_statistics():
    r = blocks.batchnorm(16, 2, 4, 1, gamma=2.0, beta=0.5, momentum=0.3, train_batches=4)
    mean, var = blocks.channel_stats(r["train"])
    assert torch.allclose(mean, torch.full((2,), 0.5), atol=1e-5)
    assert torch.allclose(var, torch.full((2,), 4.0), atol=1e-2)
    # running = (1 − m)·running + m·batch, from 0 (mean) and 1 (var), over the 4 batches seen.
    rm, rv = torch.zeros(2), torch.ones(2)
    count = 16 * 4 * 4
    for m, v in r["batch_stats"]:
        rm = 0.7 * rm + 0.3 * m
        rv = 0.7 * rv + 0.3 * v * count / (count - 1)
    assert len(r["batch_stats"]) == 4
    assert torch.allclose(r["running_mean"], rm, atol=1e-5) and torch.allclose(r["running_var"], rv, atol=1e-4)
    expected = (r["input"] - rm.view(1, -1, 1, 1)) / torch.sqrt(rv.view(1, -1, 1, 1) + 1e-5) * 2 + 0.5
    assert torch.allclose(r["eval"], expected, atol=1e-4)


def test_batchnorm_eval_before_any_training_batch_barely_changes_the_input():
    r = blocks.batchnorm(8, 3, 4, 0, 1, 0, 0.1, 0)
    assert torch.allclose(r["eval"], r["input"] / (1 + 1e-5) ** 0.5, atol=1e-5)


def test_batchnorm_handler():
    table, hist, running, text = ui.batchnorm(8, 3, 4, 0, 1, 0, 0.1, 10)
    assert table.shape == (3, 9)
    assert table["mean after (train)"].abs().max() < 1e-3
    assert (table["var after (train)"] - 1).abs().max() < 1e-2
    assert "1 − (1 − 0.1)^10 = 65%" in text


def _run_layer_by_layer(G: nn.Sequential, z: torch.Tensor) -> list[str]:
    shapes = []
    for layer in G:
        z = layer(z)
        shapes.append("×".join(map(str, z.shape[1:])))
    return shapes


def test_layer_table_matches_a_hand_built_generator():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.G = nn.Sequential(nn.ConvTranspose2d(8, 4, 4, 1, 0), nn.BatchNorm2d(4), nn.ReLU(),
                                   nn.ConvTranspose2d(4, 2, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(2, 1, 3, 2, 1, 1),
                                   nn.Tanh())

        def sample(self, n, seed=0):
            return self.G(torch.randn(n, 8, 1, 1, generator=torch.Generator().manual_seed(seed)))

    model = Tiny().eval()
    rows = blocks.layer_table(model)
    assert [r[3] for r in rows[1:]] == _run_layer_by_layer(model.G, torch.zeros(1, 8, 1, 1))
    assert rows[0][3] == "8×1×1" and rows[-1][3] == "1×16×16"
    assert rows[6][5].endswith("= 16")  # (8 − 1)·2 − 2·1 + 1·(3 − 1) + 1 + 1
    assert sum(r[4] for r in rows) == sum(p.numel() for p in model.parameters())
    assert model.training is False and not model.G[0]._forward_hooks  # the model itself is left alone


@pytest.mark.parametrize("name", ui.GENERATORS)
def test_layer_table_of_each_offered_generator(name):
    table, text = ui.layers(name, {})
    # The same model the handler used: the shipped checkpoint when it loads, else the cpu preset.
    shipped = common.load_problem(name) is None
    model = common.model(name) if shipped else genlab.build(name, "cpu").eval()
    assert ("from the shipped checkpoint" in text) == shipped
    out = model.sample(1, seed=0)
    last = [int(v) for v in table.iloc[-1]["shape after (C×H×W)"].split("×")]
    assert math.prod(last) == out[0].numel()  # the last layer's output is the sample (some reshape it after)
    ran = [model.get_submodule(n) for n in table["layer"][1:]]  # the layers sample() ran, by their names
    assert all(not list(m.children()) for m in ran) and len(set(map(id, ran))) == len(ran)
    assert list(table["parameters"][1:]) == [sum(p.numel() for p in m.parameters()) for m in ran]
    n_ct = sum(isinstance(m, nn.ConvTranspose2d) for m in ran)
    n_bn = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in ran)
    assert f"{len(ran)} layers" in text and f"{n_ct} ConvTranspose2d and {n_bn} BatchNorm layers" in text, text


def test_layers_of_a_model_the_registry_does_not_offer():
    """The generators come from the registry entries that ask for the table; any other name is refused."""
    assert set(ui.GENERATORS) == {n for n, s in MODELS.items() if s.layers}
    not_offered = next(n for n, s in MODELS.items() if not s.layers)
    with pytest.raises(gr.Error, match="Pick one of"):
        ui.layers(not_offered)


@pytest.mark.parametrize("grid,kernel,stride,padding,op,message", [
    ("1 0\n2 3", "\n".join(["1 " * 8] * 8), 2, 0, 0, "at most 7×7"),        # kernel too large
    ("1 0\n2 3", "2 3\n4 5", 2, 0, 2, "smaller than the stride"),            # output_padding ≥ stride
    ("1 0\n2 3", "2 3\n4 5", 1, 0, 1, "smaller than the stride"),
    ("1 x\n2 3", "2 3\n4 5", 2, 0, 0, "Row 1, column 2 of the input grid is 'x'"),  # not a number
    ("1 0\n2 3", "2 3\n4 nan", 2, 0, 0, "Row 2, column 2 of the kernel grid"),
    ("", "2 3\n4 5", 2, 0, 0, "empty"),                                       # empty grid
    ("  \n ", "2 3\n4 5", 2, 0, 0, "empty"),
    ("1 0\n2 3", None, 2, 0, 0, "empty"),
    ("\n".join(["1 " * 17] * 17), "2 3\n4 5", 2, 0, 0, "17×17; at most 16×16"),  # huge grid
    ("1 0 4\n2 3", "2 3\n4 5", 2, 0, 0, "same number of values"),
    ("[[1, 0], [2,", "2 3\n4 5", 2, 0, 0, "not valid"),
    ("1 0\n2 3", "2 3\n4 5", 1, 4, 0, "crops everything"),
    ("1 0\n2 3", "2 3\n4 5", 9, 0, 0, "stride must be between 1 and 4"),
    ("1 0\n2 3", "2 3\n4 5", 1.5, 0, 0, "stride must be a whole number"),
])
def test_invalid_settings_get_a_clear_message(grid, kernel, stride, padding, op, message):
    with pytest.raises(gr.Error) as e:
        ui.convtranspose(grid, kernel, stride, padding, op, 1, 0)
    assert message in str(e.value.message), e.value.message


@pytest.mark.parametrize("args,message", [
    ((1, 3, 4, 0, 1, 0, 0.1, 10), "batch size must be between 2"),
    ((8, 5, 4, 0, 1, 0, 0.1, 10), "channels must be between 1 and 4"),
    ((8, 3, 4, -1, 1, 0, 0.1, 10), "seed"),
    ((8, 3, 4, 0, "a", 0, 0.1, 10), "γ (gamma) must be a number"),
    ((8, 3, 4, 0, 1, 0, 1.5, 10), "momentum must be between 0 and 1"),
])
def test_invalid_batchnorm_settings(args, message):
    with pytest.raises(gr.Error) as e:
        ui.batchnorm(*args)
    assert message in str(e.value.message), e.value.message

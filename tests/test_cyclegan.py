"""The hair CycleGAN: translate / round_trip shapes, the replay buffer, export, and the evaluation that a
do-nothing generator must fail."""
from __future__ import annotations

import pytest
import torch

import genlab
from genlab.models import hair_cyclegan as cyclegan
from conftest import need_data


@pytest.fixture
def model():
    torch.manual_seed(0)
    return genlab.build("hair_cyclegan", "tiny").eval()


def test_translate_and_round_trip_shapes(model):
    x = torch.rand(3, *model.input_shape)
    for d in model.directions:
        y = model.translate(x, d)
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
        there, back = model.round_trip(x, d)
        assert torch.equal(there, y) and back.shape == x.shape
        assert torch.equal(back, model.translate(y, cyclegan.Model.back(d)))


def test_cpu_preset_input_shape():
    assert genlab.build("hair_cyclegan", "cpu").input_shape == (3, 64, 64)


def test_bad_direction_and_shape(model):
    with pytest.raises(ValueError, match="direction"):
        model.translate(torch.rand(1, *model.input_shape), "red2blue")
    with pytest.raises(ValueError, match="N×3×H×W"):
        model.translate(torch.rand(1, 1, 32, 32), "black2blond")


def test_generator_and_discriminator_shapes():
    g = cyclegan.generator(8, 2)
    assert g(torch.zeros(2, 3, 64, 64)).shape == (2, 3, 64, 64)
    d = cyclegan.discriminator(8, 3)
    assert d(torch.zeros(2, 3, 64, 64)).shape == (2, 1, 6, 6)  # 70×70 PatchGAN on 64×64: 6×6 patches


def test_replay_buffer_fills_then_mixes():
    torch.manual_seed(0)
    buf = cyclegan.ReplayBuffer(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(buf(first), first)  # not full yet: passes through and is stored
    out = buf(torch.full((64, 1, 1, 1), 9.0))
    old = (out < 9).sum().item()
    assert 0 < old <= 4  # some old fakes come back (each only once: it is swapped out)
    s = buf.state_dict()
    other = cyclegan.ReplayBuffer(4)
    other.load_state_dict(s)
    assert torch.equal(torch.stack(other.images), torch.stack(buf.images))
    assert torch.equal(cyclegan.ReplayBuffer(0)(first), first)


def test_export_matches_translate(model, tmp_path):
    x = torch.rand(2, *model.input_shape)
    scripted = torch.jit.script(model.exportable())
    scripted.save(str(tmp_path / "g.pt"))
    loaded = torch.jit.load(str(tmp_path / "g.pt"))
    assert torch.allclose(loaded(x).clamp(0, 1), model.translate(x, "black2blond"), atol=1e-6)


def test_train_only_freezes_the_other_side():
    root = need_data(*cyclegan.FOLDERS)
    torch.manual_seed(0)
    t = cyclegan.Trainer(genlab.get("hair_cyclegan").config("tiny"), data_root=root)
    batch = next(iter(t.batches(0)))
    assert batch[0].shape == (2, 3, 32, 32) and batch[0].min() >= -1 and batch[0].max() <= 1
    g0 = [p.clone() for p in t.model.parameters()]
    d0 = [p.clone() for p in t.D_blond.parameters()]
    t.train_only = "D"
    t.train_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(g0, t.model.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d0, t.D_blond.parameters()))
    t.train_only = "G"
    d1 = [p.clone() for p in t.D_blond.parameters()]
    t.train_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(d1, t.D_blond.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(g0, t.model.parameters()))


def test_state_dict_round_trip():
    root = need_data(*cyclegan.FOLDERS)
    cfg = genlab.get("hair_cyclegan").config("tiny")
    torch.manual_seed(0)
    a = cyclegan.Trainer(cfg, data_root=root)
    a.train_step(next(iter(a.batches(0))))
    b = cyclegan.Trainer(cfg, data_root=root)
    b.load_state_dict(a.state_dict())
    assert b.step == a.step == 1
    x = torch.rand(1, *a.model.input_shape)
    assert torch.equal(a.model.translate(x, "blond2black"), b.model.translate(x, "blond2black"))


def _judge():
    from genlab.checkpoint import CheckpointError
    from genlab.eval import classifier
    try:
        return classifier.load("hair")
    except CheckpointError:
        pytest.skip("the hair classifier is not trained (python -m genlab.eval.classifier hair)")


def test_identity_generator_fails_the_evaluation():
    from genlab.models import hair_cyclegan_eval as ev

    root = need_data(*cyclegan.FOLDERS)
    judge = _judge()
    m = ev.evaluate(ev.Identity(64), root, judge=judge)
    assert m["round_trip_l1"] == 0  # a perfect round trip proves nothing on its own...
    assert not ev.passed(m)  # ...the flip rates catch it
    for d in cyclegan.DIRECTIONS:
        assert m[f"flip_rate_{d}"] == m[f"identity_flip_rate_{d}"] < 0.3
        for k in ("sharpness_ratio", "checkerboard_ratio"):  # untouched photos look like photos of the other colour
            assert m[f"{k}_{d}"] == m[f"identity_{k}_{d}"] and 0.7 < m[f"{k}_{d}"] < 1.4
    assert m["classifier_accuracy"] > 0.8
    assert all(isinstance(v, (int, float)) for v in m.values())

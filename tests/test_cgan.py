"""The eyeglasses cGAN: the gradient penalty (per-sample norm, zero for a unit-norm linear critic, part of
the critic's loss), label handling in sample/generate, and balanced batches."""
from __future__ import annotations

import pytest
import torch

import genlab
from genlab.models import glasses_cgan as cgan
from conftest import need_data


def linear_critic(w: torch.Tensor):
    """D(x) = <w, x> per sample: its input gradient is w for every sample."""
    return lambda x: x.flatten(1) @ w.flatten()


def test_gradient_norm_is_per_sample():
    x = torch.randn(4, 5, 3, 3)
    x[0] *= 10  # samples of very different size
    norms = cgan.gradient_norms(lambda v: (v ** 2).flatten(1).sum(1), x)  # ∇ = 2x
    assert norms.shape == (4,)
    assert torch.allclose(norms, 2 * x.flatten(1).norm(dim=1))
    whole_batch = (2 * x).norm()
    assert not torch.allclose(norms, whole_batch.expand(4))


def test_gradient_norm_does_not_mix_samples_across_batch():
    # A per-sample critic: sample i's norm must not change when other samples change.
    f = lambda v: (v ** 2).flatten(1).sum(1)  # noqa: E731
    x = torch.randn(3, 5, 2, 2)
    y = x.clone()
    y[1:] *= 100
    assert torch.allclose(cgan.gradient_norms(f, x)[0], cgan.gradient_norms(f, y)[0])


def test_penalty_zero_for_unit_norm_linear_critic():
    w = torch.randn(5, 4, 4)
    w /= w.norm()
    real, fake = torch.randn(6, 5, 4, 4), torch.randn(6, 5, 4, 4)
    gp = cgan.gradient_penalty(linear_critic(w), real, fake)
    assert gp.item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("scale", [0.0, 0.5, 3.0])
def test_penalty_positive_otherwise(scale):
    w = torch.randn(5, 4, 4)
    w = w / w.norm() * scale
    real, fake = torch.randn(6, 5, 4, 4), torch.randn(6, 5, 4, 4)
    gp = cgan.gradient_penalty(linear_critic(w), real, fake)
    assert gp.item() == pytest.approx((scale - 1) ** 2, rel=1e-5)
    assert gp.item() > 0


def test_penalty_uses_interpolates_and_is_differentiable():
    # D(x) = ‖x‖²/2 per sample: ∇ = x̂, so the norm is that of α·real + (1−α)·fake.
    real, fake = torch.randn(3, 5, 2, 2), torch.randn(3, 5, 2, 2)
    alpha = torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1, 1)
    scale = torch.tensor(1.0, requires_grad=True)
    critic = lambda v: scale * (v ** 2).flatten(1).sum(1) / 2  # noqa: E731
    gp = cgan.gradient_penalty(critic, real, fake, alpha=alpha)
    x_hat = alpha * real + (1 - alpha) * fake
    assert gp.item() == pytest.approx(((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean().item(), rel=1e-5)
    gp.backward()  # create_graph: the penalty trains the critic's weights
    assert scale.grad is not None and scale.grad != 0


@pytest.fixture(scope="module")
def trainer():
    root = need_data("glasses/G", "glasses/NoG")
    torch.manual_seed(0)
    return cgan.Trainer(genlab.get("glasses_cgan").config("tiny"), data_root=root)


def test_penalty_is_added_to_critic_loss(trainer):
    x, y = next(iter(trainer.batches(0)))
    real = cgan.with_labels(x[:2], y[:2])
    fake = cgan.with_labels(torch.rand_like(x[:2]) * 2 - 1, y[:2])
    out = {}
    for weight in (0.0, 10.0):
        trainer.cfg = genlab.get("glasses_cgan").config("tiny", gp_weight=weight)
        torch.manual_seed(7)  # the same α for both
        out[weight] = [t.item() for t in trainer.critic_loss(real, fake)]
    (l0, w0, gp0), (l10, w10, gp10) = out[0.0], out[10.0]
    assert gp0 == gp10 > 0 and w0 == w10
    assert l0 == pytest.approx(-w0, abs=1e-6)
    assert l10 - l0 == pytest.approx(10 * gp10, rel=1e-5)
    trainer.cfg = genlab.get("glasses_cgan").config("tiny")


def test_batches_are_balanced_and_step_reads_n_critic_batches(trainer):
    cfg = trainer.cfg
    x, y = next(iter(trainer.batches(0)))
    assert x.shape == (cfg.n_critic * cfg.batch_size, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    counts = torch.zeros(2)
    for _, yb in trainer.batches(0):
        counts += yb.sum(0)
    assert counts[0] == counts[1]  # as many glasses as no-glasses images per epoch
    losses = trainer.train_step((x, y))
    assert set(losses) == {"loss_d", "loss_g", "w_dist", "gp"}


def test_train_only_leaves_the_other_side_alone(trainer):
    batch = next(iter(trainer.batches(0)))
    for side, frozen in (("D", trainer.model.G), ("G", trainer.D)):
        before = [p.detach().clone() for p in frozen.parameters()]
        trainer.train_only = side
        trainer.train_step(batch)
        assert all(torch.equal(a, b) for a, b in zip(before, frozen.parameters()))
    trainer.train_only = None


def test_labels_and_generate():
    torch.manual_seed(0)
    m = genlab.build("glasses_cgan", "tiny").eval()
    z = m.noise(3, seed=5)
    assert torch.equal(m.generate(z, 1.0), m.generate(z, torch.tensor([[1.0, 0.0]] * 3)))
    assert torch.equal(m.generate(z, 0.0), m.generate(z, cgan.NO_GLASSES))
    assert torch.equal(m.sample(3, seed=5, labels=0.3), m.generate(z, 0.3))
    assert torch.equal(m.labels(4), torch.tensor([cgan.GLASSES, cgan.GLASSES, cgan.NO_GLASSES, cgan.NO_GLASSES]))
    assert not torch.equal(m.generate(z, 1.0), m.generate(z, 0.0))
    with pytest.raises(ValueError):
        m.sample(2, labels=1.5)
    with pytest.raises(ValueError):
        m.sample(2, labels=torch.zeros(3, 2))


def test_book_preset_shapes():
    cfg = genlab.get("glasses_cgan").config("book")
    g, d = cgan.generator(cfg), cgan.critic(cfg)
    out = g(torch.zeros(1, 102, 1, 1))
    assert out.shape == (1, 3, 256, 256)
    assert d(torch.zeros(1, 5, 256, 256)).shape == (1, 1, 1, 1)
    assert not any(isinstance(m, torch.nn.Sigmoid) for m in d.modules())
    assert any(isinstance(m, torch.nn.InstanceNorm2d) and m.affine for m in d.modules())


def test_evaluate_reports_agreement_per_label():
    from genlab.eval import classifier
    from genlab.models import glasses_cgan_eval as glasses_cgan

    root = need_data("glasses/G", "glasses/NoG", "glasses/attributes.csv")
    torch.manual_seed(0)
    clf = classifier.Classifier(2).eval()
    clf.classes, clf.size = ["no glasses", "glasses"], 64
    sex = classifier.Classifier(2, width=4).eval()
    sex.classes, sex.size = ["female", "male"], 64
    m = genlab.build("glasses_cgan", "tiny").eval()
    out = glasses_cgan.evaluate(m, root, n=8, clf=clf, sex_clf=sex)
    for k in ("classifier_real_accuracy", "agree_glasses", "agree_no_glasses", "agree_mean", "sex_classifier_real_accuracy",
              "male_share_glasses", "male_share_no_glasses", "sex_flip_rate", "sex_flip_rate_real_mirrored"):
        assert 0.0 <= out[k] <= 1.0, k
    assert out["sex_flip_rate"] >= abs(out["male_share_glasses"] - out["male_share_no_glasses"])  # a flip per change
    assert out["checkerboard_ratio_glasses"] > 0 and out["checkerboard_ratio_no_glasses"] > 0
    assert out["samples_per_label"] == 8


def test_sex_labels_come_from_attributes_csv_by_file_name():
    """The sex classifier's faces are the glasses classifier's (same split, same order); each label is the CSV's."""
    import csv

    from genlab import data
    from genlab.eval import classifier

    root = need_data("glasses/G", "glasses/NoG", "glasses/attributes.csv")
    (x, y, g), (xh, yh, gh) = classifier.real_data("sex", root, groups=True)
    (xg, yg), _ = classifier.real_data("glasses", root)
    assert torch.equal(x, xg) and torch.equal(g, yg)
    with (root / "glasses/attributes.csv").open() as f:
        table = {r["filename"]: int(r["male"]) for r in csv.DictReader(f)}
    for j, folder in enumerate(("NoG", "G")):
        files = data.image_files(root / "glasses" / folder)
        _, ho = data.split(len(files), data.HOLDOUT)
        assert [table[f"{folder}/{files[int(i)].name}"] for i in ho[:20]] == yh[gh == j][:20].tolist()
        assert int(y[g == j].sum() + yh[gh == j].sum()) == sum(v for k, v in table.items() if k.startswith(folder + "/"))

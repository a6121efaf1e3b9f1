"""The quality switches of chapters 5 and 6: the sex-balanced critic batches, the projection critic, fine-tuning
a cGAN from a checkpoint with a critic warm-up and a moving average of G, the cGAN's penalty on period-2 energy,
and the resize-convolution generator do what they say, and the `book` presets leave them off."""
from __future__ import annotations

import pytest
import torch

from conftest import need_data
from genlab.models import glasses_cgan as cgan, hair_cyclegan as cyclegan
from genlab.registry import get


def test_book_presets_leave_the_switches_off():
    book = get("glasses_cgan").presets["book"]
    assert not book.balance_sex and not book.projection
    assert not book.ema and not book.init and not book.d_warmup and not book.spectral
    assert get("hair_cyclegan").presets["book"].upsample == "deconv" and not get("hair_cyclegan").presets["book"].spectral


def test_balanced_batches_hold_a_quarter_of_each_sex_and_label():
    root = need_data("glasses/G", "glasses/NoG")
    cfg = get("glasses_cgan").config("cpu", balance_sex=True)
    t = cgan.Trainer(cfg, data_root=root)
    # every training image's sex, by content, to check what each batch holds
    sex = {}
    for c in (0, 1):
        for img, m in zip(t.classes[c], t.male[c]):
            sex[img[:, ::8, ::8].numpy().tobytes()] = int(m)
    assert 0.7 < t.male[0].float().mean() < 0.9 and t.male[1].float().mean() < 0.5  # the data's imbalance
    steps = 0
    for x, y in t.batches(0):
        for k in range(cfg.n_critic):  # train_step's critic slices
            sl = slice(k * cfg.batch_size, (k + 1) * cfg.batch_size)
            xs, ys = x[sl], y[sl]
            imgs = ((xs + 1) * 127.5).round().to(torch.uint8)
            counts = {}
            for img, lab in zip(imgs, ys):
                key = img[:, ::8, ::8].numpy().tobytes()
                if key not in sex:  # mirrored by the random flip: look it up unflipped
                    key = img.flip(-1)[:, ::8, ::8].numpy().tobytes()
                g = int(lab[0].item() == 1.0)
                counts[(g, sex[key])] = counts.get((g, sex[key]), 0) + 1
            assert counts == {(g, m): cfg.batch_size // 4 for g in (0, 1) for m in (0, 1)}, counts
        steps += 1
        if steps == 3:
            break


def test_balance_needs_a_batch_divisible_by_four():
    root = need_data("glasses/G", "glasses/NoG")
    with pytest.raises(ValueError, match="divisible by 4"):
        cgan.Trainer(get("glasses_cgan").config("tiny", balance_sex=True, batch_size=2), data_root=root)


def test_projection_critic_starts_as_the_plain_critic_and_uses_the_label():
    cfg = get("glasses_cgan").config("tiny", projection=True)
    torch.manual_seed(0)
    proj = cgan.critic(cfg)
    plain = cgan.critic(get("glasses_cgan").config("tiny"))
    plain.load_state_dict({k.replace("body.", "").replace("head.", str(len(proj.body)) + "."): v
                           for k, v in proj.state_dict().items() if not k.startswith("embed")})
    x = cgan.with_labels(torch.randn(3, 3, 64, 64), torch.tensor([cgan.GLASSES] * 3))
    assert torch.allclose(proj(x), plain(x))  # zero-initialised embedding
    torch.nn.init.normal_(proj.embed.weight)
    x2 = cgan.with_labels(x[:, :3], torch.tensor([cgan.NO_GLASSES] * 3))
    assert not torch.allclose(proj(x) - plain(x), proj(x2) - plain(x2))
    # and the gradient penalty can differentiate it
    assert torch.isfinite(cgan.gradient_penalty(proj, x, x2))


@pytest.mark.parametrize("mode", ["deconv", "resize"])
def test_generator_upsampling_keeps_size_and_range(mode):
    g = cyclegan.generator(4, 1, mode)
    y = g(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert y.shape == (2, 3, 32, 32) and y.min() >= -1 and y.max() <= 1
    kinds = {type(m) for m in g.modules()}
    assert (nn_up := torch.nn.Upsample in kinds) == (mode == "resize")
    assert (torch.nn.ConvTranspose2d in kinds) != nn_up


def test_resize_generator_paints_no_checkerboard_at_init():
    """A constant input through an untrained resize-conv generator gives no period-2 pattern; transposed
    convolutions (stride 2, kernel 3) do (Odena et al. 2016)."""
    def nyquist_share(img):
        f = torch.fft.fft2(img - img.mean(dim=(-2, -1), keepdim=True)).abs() ** 2
        h = img.shape[-1] // 2
        return float((f[..., h, :].sum() + f[..., :, h].sum() - f[..., h, h].sum()) / f.sum().clamp_min(1e-12))

    torch.manual_seed(0)
    x = torch.zeros(1, 3, 32, 32)
    shares = {m: nyquist_share(cyclegan.generator(8, 1, m)(x).detach()) for m in ("deconv", "resize")}
    assert shares["resize"] < 0.01 < shares["deconv"], shares
    with pytest.raises(ValueError, match="upsample"):
        cyclegan.generator(4, 1, "pixelshuffle")


def test_cgan_fine_tune_starts_from_the_checkpoint_and_warms_the_critic_up_first(tmp_path):
    root = need_data("glasses/G", "glasses/NoG")
    from genlab import checkpoint

    tiny = get("glasses_cgan").config("tiny")
    torch.manual_seed(1)
    src = cgan.Model(tiny)
    checkpoint.save(tmp_path / "ck", src, {"model": "glasses_cgan", "config": {}}, {"model": "glasses_cgan"})
    cfg = get("glasses_cgan").config("tiny", init=str(tmp_path / "ck"), d_warmup=2, ema=0.9)
    torch.manual_seed(2)  # a different init draw: only the checkpoint can make the weights equal
    t = cgan.Trainer(cfg, data_root=root)
    for a, b in zip(src.state_dict().values(), t.model.state_dict().values()):
        assert torch.equal(a, b)
    g0 = [p.clone() for p in t.G.parameters()]
    d0 = [p.clone() for p in t.D.parameters()]
    batches = t.batches(0)
    batch = next(batches)
    for _ in range(2):  # the warm-up: the critic moves, G does not
        t.train_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d0, t.D.parameters()))
    t.train_step(batch)  # now G moves, and the shipped average lies between the start and G
    moved = [(a - b).abs().sum() for a, b in zip(g0, t.G.parameters())]
    assert sum(moved) > 0
    avg = [(a - b).abs().sum() for a, b in zip(g0, t.model.parameters())]
    assert 0 < sum(avg) < sum(moved)
    m = t.shipped()
    assert not m.training and m.sample(4).shape == (4, 3, 64, 64)
    # resuming restores G, the average and the step count (so the warm-up is not repeated)
    t2 = cgan.Trainer(cfg, data_root=root)
    t2.load_state_dict(t.state_dict())
    assert t2.steps == 3 and all(torch.equal(a, b) for a, b in zip(t.G.parameters(), t2.G.parameters()))


def test_cgan_spectral_penalty_is_reported_and_changes_only_the_generator_step():
    """With `spectral`, G's loss gains the penalty (reported, >= 0, 0 on the training faces themselves); the critic's
    step is the same as without it, from the same seed."""
    from dataclasses import replace

    from genlab.eval import metrics

    root = need_data("glasses/G", "glasses/NoG")
    tiny = get("glasses_cgan").presets["tiny"]
    runs = {}
    for w in (0.0, 5.0):
        torch.manual_seed(0)
        t = cgan.Trainer(replace(tiny, spectral=w), data_root=root)
        torch.manual_seed(1)
        runs[w] = (t, t.train_step(next(iter(t.batches(0)))))
    (_, plain), (t, pen) = runs[0.0], runs[5.0]
    assert "loss_spectral" not in plain and pen["loss_spectral"] >= 0
    assert pen["loss_d"] == plain["loss_d"]  # the critic's step does not see the penalty
    assert pen["loss_g"] == pytest.approx(plain["loss_g"] + 5.0 * pen["loss_spectral"], rel=1e-5)
    real = torch.cat(t.classes).float() / 127.5 - 1
    assert metrics.nyquist_excess(real, t.real_nyquist).item() == pytest.approx(0.0, abs=1e-6)


def test_cyclegan_spectral_penalty_is_zero_on_real_faces_and_changes_the_generators_step():
    """With `spectral`, both generators pay for period-2 energy above their target colour's real faces: the term is
    reported, 0 on the real faces themselves; from the same seed the other losses are the same and G's step differs."""
    from dataclasses import replace

    from genlab.eval import metrics

    root = need_data(*cyclegan.FOLDERS)
    tiny = get("hair_cyclegan").presets["tiny"]
    runs = {}
    for w in (0.0, 5.0):
        torch.manual_seed(0)
        t = cyclegan.Trainer(replace(tiny, spectral=w), data_root=root)
        torch.manual_seed(1)
        runs[w] = (t, t.train_step(next(iter(t.batches(0)))))
    (plain_t, plain), (t, pen) = runs[0.0], runs[5.0]
    assert "loss_spectral" not in plain and pen["loss_spectral"] > 0  # an untrained deconv G paints a checkerboard
    assert pen["loss_g_adv"] == plain["loss_g_adv"] and pen["loss_cycle"] == plain["loss_cycle"]
    assert not all(torch.equal(a, b) for a, b in zip(plain_t.model.parameters(), t.model.parameters()))
    for imgs, share in zip((t.black, t.blond), t.real_nyquist):
        assert metrics.nyquist_excess(imgs.float() / 127.5 - 1, share).item() == pytest.approx(0.0, abs=1e-6)

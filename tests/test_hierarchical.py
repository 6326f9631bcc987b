"""The two-layer VAE (Burda et al. 2016) and the ladder VAE (Sønderby et al. 2016)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from models.checkpoint import read_checkpoint, save_checkpoint
from models.config import ModelConfig, TrainConfig
from models.data import as_float
from models.datasets import load_dataset
from models.distributed import check_distributable
from models.evaluation import evaluate
from models.hierarchical import HierarchicalVAE, activity
from models.objectives import iw_log_marginal, objective_terms
from models.trainer import EpochEnd, Trainer
from models.vae import build_model

from .test_cli import run

KINDS = ("hvae", "ladder")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def small(kind: str, shape=(1, 8, 8), hidden: int = 32) -> ModelConfig:
    return ModelConfig(input_shape=shape, model=kind, hidden_dim=hidden, layer1_dim=6, latent_dim=3)


@pytest.fixture(scope="module")
def trained(digits):
    """Each kind after 15 epochs on the 8×8 digits, with a KL warm-up (without it the ladder's layers
    collapse on this small set: KL 0.00 nats and no active unit in either layer)."""
    out = {}
    for kind in KINDS:
        trainer = Trainer(small(kind, digits.image_shape, hidden=64),
                          TrainConfig(epochs=15, batch_size=64, lr=3e-3, kl_warmup=200), digits)
        list(trainer.run())  # on the default device (CUDA where there is one)
        trainer.model.cpu()  # the tests look at the trained model's maths on the CPU
        out[kind] = trainer
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_the_elbo_terms_sum_to_the_total_and_the_layers_to_the_kl(kind):
    model = build_model(small(kind))
    assert isinstance(model, HierarchicalVAE) and model.latent_dim == 3 and model.layer_dims == (6, 3)
    x = torch.rand(16, 1, 8, 8).round()
    t = objective_terms(model, x, generator=torch.Generator().manual_seed(0), kl_weight=0.5)
    torch.testing.assert_close(t.neg_elbo, t.recon + t.kl)
    torch.testing.assert_close(t.kl, t.extra["kl_z1"] + t.extra["kl_z2"])
    torch.testing.assert_close(t.loss, t.recon + 0.5 * t.kl)
    torch.testing.assert_close(t.layer_kl[0].sum(1), t.extra["kl_z1"])
    torch.testing.assert_close(t.layer_kl[1].sum(1), t.extra["kl_z2"])
    assert t.kl_per_dim.shape == (16, 3) and bool((t.extra["kl_z2"] >= 0).all())
    if kind == "ladder":  # closed form: never negative
        assert bool((t.extra["kl_z1"] >= 0).all())


@pytest.mark.parametrize("kind", KINDS)
def test_the_importance_weights_average_to_the_elbo(trained, digits, kind):
    """E_q[log w] is the ELBO: the weights' densities and the terms' closed forms agree."""
    model = trained[kind].model.eval()
    x = as_float(digits.test_x[:4])
    with torch.no_grad():
        log_w = model.iw_log_weights(x, 4000, torch.Generator().manual_seed(1))
        elbos = torch.stack([objective_terms(model, x, generator=torch.Generator().manual_seed(s)).neg_elbo
                             for s in range(1000)])
    assert log_w.shape == (4000, 4)
    # within 4 standard errors of the two Monte Carlo means
    stderr = (log_w.var(0) / 4000 + elbos.var(0) / 1000).sqrt()
    assert bool(((-log_w.mean(0) - elbos.mean(0)).abs() < 4 * stderr).all()), (-log_w.mean(0), elbos.mean(0), stderr)


@pytest.mark.parametrize("kind", KINDS)
def test_the_importance_sampled_estimate_is_at_least_the_elbo_and_tightens_with_k(trained, digits, kind):
    trainer = trained[kind]
    x = as_float(digits.test_x[:200])
    with torch.no_grad():
        gen = torch.Generator().manual_seed(2)
        elbo = float(objective_terms(trainer.model, x, generator=gen).neg_elbo.mean())
        nll = [float(-iw_log_marginal(trainer.model, x, None, k, gen).mean()) for k in (1, 10, 200)]
    assert nll[1] < nll[0] and nll[2] < nll[0] and nll[2] < elbo and nll[2] < nll[1] + 0.05
    assert abs(nll[0] - elbo) < 1.0  # k = 1 is a one-sample ELBO
    result = evaluate(trainer.model, digits.test_x, device=torch.device("cpu"), eval_iw=50, eval_iw_images=100)
    assert result["iw_gap"] > 0
    assert set(result["test_terms"]) == {"kl_z1", "kl_z2", "active_z1", "active_z2"}
    assert result["test_terms"]["kl_z1"] + result["test_terms"]["kl_z2"] == pytest.approx(result["kl"], rel=1e-5)


def test_the_ladder_posterior_is_the_precision_weighted_combination():
    mu_hat, lv_hat = torch.tensor([1.0]), torch.tensor([math.log(0.5)])
    mu_p, lv_p = torch.tensor([-2.0]), torch.tensor([math.log(2.0)])
    mu, lv = HierarchicalVAE._combine(mu_hat, lv_hat, mu_p, lv_p)
    var = 1 / (1 / 0.5 + 1 / 2.0)
    assert float(lv.exp()) == pytest.approx(var)
    assert float(mu) == pytest.approx(var * (1.0 / 0.5 - 2.0 / 2.0))


def test_activity_counts_units_whose_posterior_mean_varies_over_the_data():
    means = torch.zeros(100, 3)
    means[:, 0] = torch.linspace(-1, 1, 100)  # variance 0.34: active
    means[:, 1] = torch.linspace(-0.1, 0.1, 100)  # variance 0.0034: inactive
    variances, active = activity(means)
    assert active == 1 and variances[0] == pytest.approx(0.3400, abs=1e-3) and variances[2] == 0


@pytest.mark.parametrize("kind", KINDS)
def test_each_layer_changes_the_image(trained, kind):
    terms = trained[kind].history[-1].test_terms
    assert terms["active_z2"] >= 1 and terms["active_z1"] >= 1
    model = trained[kind].model.eval()
    with torch.no_grad():
        z2 = torch.zeros(1, 3)
        mean_z1 = model.prior_z1(z2)[0]
        base = model.decode_layers(z2)
        torch.testing.assert_close(base, model.decode(z2))
        other_top = model.decode_layers(torch.full((1, 3), 2.0))
        moved = mean_z1 + 2 * torch.exp(0.5 * model.prior_z1(z2)[1])  # z1 two prior σ away, z2 held
        other_low = model.decode_layers(z2, z1=moved)
        drawn = model.decode_layers(z2.expand(2, 3), sample_z1=True, generator=torch.Generator().manual_seed(0))
    for changed in (other_top, other_low, drawn[:1], drawn[1:]):
        assert float((changed - base).abs().max()) > 0.01
    with pytest.raises(ValueError, match="z1 of shape"):
        model.decode_layers(z2, z1=torch.zeros(1, 5))


@pytest.mark.parametrize("kind", KINDS)
def test_training_reports_each_layer_and_resumes_exactly(digits, kind, tmp_path):
    config = small(kind, digits.image_shape)
    train = TrainConfig(epochs=2, batch_size=64, iw_k=3 if kind == "hvae" else 1, kl_warmup=10)
    whole = Trainer(config, train, digits)
    ends = [e for e in whole.run() if isinstance(e, EpochEnd)]
    assert set(ends[-1].train_terms) == {"kl_z1", "kl_z2"} and set(ends[-1].test_terms) == {
        "kl_z1", "kl_z2", "active_z1", "active_z2"}
    assert ends[-1].train_terms["kl_z1"] + ends[-1].train_terms["kl_z2"] == pytest.approx(ends[-1].train_kl, rel=1e-4)
    half = Trainer(config, TrainConfig(**{**train.to_dict(), "epochs": 1}), digits)
    list(half.run())
    path = save_checkpoint(tmp_path / "half.vae", *half.export_state())
    ckpt = read_checkpoint(path)
    assert ckpt.model_config == config
    rest = Trainer(config, train, digits)
    rest.load_state(ckpt.tensors, ckpt.info)
    list(rest.run())
    for key, value in whole.model.state_dict().items():
        torch.testing.assert_close(rest.model.state_dict()[key], value, rtol=0, atol=1e-6, msg=key)
    assert rest.history[-1].test_terms == ends[-1].test_terms


def test_settings_that_do_not_apply_are_refused(digits):
    with pytest.raises(ValueError, match="is an MLP"):
        ModelConfig(input_shape=(1, 28, 28), model="ladder", arch="conv")
    for bad in (TrainConfig(objective="tcvae"), TrainConfig(free_bits=0.5)):
        with pytest.raises(ValueError, match="two-layer and ladder VAEs train on the ELBO or the IWAE bound"):
            Trainer(small("hvae", digits.image_shape), bad, digits)
    with pytest.raises(ValueError, match="two-layer and ladder"):
        check_distributable("ladder", TrainConfig())
    launched = run("train", "--nproc", "2", "--model", "ladder", "--epochs", "1")  # said before torchrun starts
    assert launched.returncode == 2 and "does not work for the two-layer and ladder VAEs" in launched.stderr
    assert "torch.distributed.run" not in launched.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_both_models_train_from_the_command_line(kind, tmp_path):
    out = tmp_path / "h.vae"
    result = run("train", "--dataset", "digits", "--model", kind, "--epochs", "2", "--hidden-dim", "32",
                 "--layer1-dim", "6", "--latent-dim", "3", "--eval-iw", "20", "--json", "--save", str(out))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    last = lines[-1]
    assert last["test_terms"]["kl_z1"] + last["test_terms"]["kl_z2"] == pytest.approx(last["test_kl"], rel=1e-4)
    assert last["test_nll_iw"] <= last["test_neg_elbo"]
    assert f"64-32-32-6-16-16-3 MLP {'two-layer' if kind == 'hvae' else 'ladder'} VAE" in result.stderr
    assert read_checkpoint(out).model_config.model == kind
    text = run("train", "--dataset", "digits", "--model", kind, "--epochs", "1", "--hidden-dim", "32")
    assert text.returncode == 0 and "KL of z1" in text.stdout and "active units z1" in text.stdout


def test_the_layer_table_compares_one_and_two_layers_with_each_layer_reported(digits):
    from models.benchmark import LAYER_TABLE, model_table

    table = model_table(digits, ModelConfig(input_shape=digits.image_shape), TrainConfig(epochs=1), k=20,
                        iw_images=20, rows=LAYER_TABLE)
    assert [r.name for r in table] == [r[0] for r in LAYER_TABLE]
    for row, (_, over, _) in zip(table, LAYER_TABLE):
        assert row.test_nll_iw is not None and row.samples_per_s > 0
        assert set(row.test_terms) == (set() if "model" not in over else {"kl_z1", "kl_z2", "active_z1", "active_z2"})
    assert table[2].parameters == table[3].parameters  # the same network, trained on the ELBO and on the IWAE bound


def test_either_layer_encodes_for_the_latent_map(trained, digits):
    from models.embedding import encode_split

    model = trained["hvae"].model
    top = encode_split(model, digits, "test")
    lower = encode_split(model, digits, "test", layer=1, points="sample", seed=3)
    assert top.codes.shape == (len(digits.test_x), 3) and lower.codes.shape == (len(digits.test_x), 6)
    with torch.no_grad():
        (mu1, _), (mu2, _) = model.encode_layers(as_float(digits.test_x))
    np.testing.assert_allclose(top.mu, mu2.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(lower.mu, mu1.numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(lower.codes, lower.mu)  # a draw from q(z1|x)
    assert float(np.mean(top.neg_elbo)) == pytest.approx(trained["hvae"].history[-1].test_neg_elbo, abs=1.0)
    with pytest.raises(ValueError, match="no layer 1"):
        encode_split(build_model(ModelConfig(input_shape=digits.image_shape, hidden_dim=16)), digits, layer=1)

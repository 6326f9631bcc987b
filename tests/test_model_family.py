"""The model family: networks, likelihoods, objectives and the importance-sampled
log-likelihood, checked against torch.distributions, closed forms and integrals."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, ContinuousBernoulli, Normal

from models import EpochEnd, ModelConfig, TrainConfig, Trainer, load_dataset
from models.likelihoods import make_likelihood
from models.objectives import iw_log_marginal, objective_terms
from models.vae import VAE


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_bernoulli_and_gaussian_log_probs_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    params = torch.randn(3, 1, 4, 4, generator=g) * 3
    x = torch.rand(3, 1, 4, 4, generator=g)
    xb = (x > 0.5).float()
    torch.testing.assert_close(
        make_likelihood("bernoulli").log_prob(params, xb), Bernoulli(logits=params).log_prob(xb).flatten(1).sum(1)
    )
    torch.testing.assert_close(
        make_likelihood("cbernoulli").log_prob(params, x),
        ContinuousBernoulli(logits=params).log_prob(x).flatten(1).sum(1),
    )
    torch.testing.assert_close(
        make_likelihood("gaussian", sigma=0.2).log_prob(params, x),
        Normal(torch.sigmoid(params), 0.2).log_prob(x).flatten(1).sum(1),
    )
    learned = make_likelihood("gaussian-learned", var_floor=1e-3)
    both = torch.cat([params, torch.randn(3, 1, 4, 4, generator=g) * 3], dim=1)
    mean, var = learned.split(both)
    assert (var >= 1e-3).all()
    torch.testing.assert_close(learned.log_prob(both, x), Normal(mean, var.sqrt()).log_prob(x).flatten(1).sum(1))


@pytest.mark.parametrize("lam", [0.02, 0.3, 0.4999, 0.5, 0.5001, 0.7, 0.98])
def test_continuous_bernoulli_normalises_by_numerical_integration(lam):
    logit = torch.logit(torch.tensor(lam, dtype=torch.float64))
    xs = torch.linspace(0, 1, 20001, dtype=torch.float64)
    params = logit.expand(len(xs)).reshape(-1, 1, 1, 1)
    density = make_likelihood("cbernoulli").log_prob(params, xs.reshape(-1, 1, 1, 1)).exp()
    assert torch.trapezoid(density, xs).item() == pytest.approx(1.0, abs=1e-6)


class _LinearGaussian(torch.nn.Module):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I) with W's columns orthogonal, and q(z|x)
    the exact (diagonal) posterior: the importance weights are all equal to p(x)."""

    class _Normal:
        def __init__(self, sigma):
            self.sigma = sigma

        def log_prob(self, params, x):
            return Normal(params, self.sigma).log_prob(x).flatten(1).sum(1)

    def __init__(self):
        super().__init__()
        self.W = torch.tensor([[1.5, 0.0], [0.0, -0.7], [0.0, 0.0]], dtype=torch.float64)
        self.b = torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64)
        self.sigma = 0.5
        self.likelihood = self._Normal(self.sigma)

    def encode(self, x, y=None):
        x = x.flatten(1)
        s2 = self.sigma**2
        var = 1.0 / (1.0 + (self.W**2).sum(0) / s2)
        mu = var * ((x - self.b) @ self.W) / s2
        return mu.float(), var.log().expand_as(mu).float()

    def decode_params(self, z, y=None):
        return (z.double() @ self.W.T + self.b).reshape(-1, 1, 1, 3)

    def log_px(self, x):
        cov = self.W @ self.W.T + self.sigma**2 * torch.eye(3, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x.flatten(1))


def test_importance_sampled_log_likelihood_is_exact_on_a_linear_gaussian_model():
    model = _LinearGaussian()
    x = torch.tensor([[0.5, 0.2, -0.4], [-1.0, 0.6, 0.1]], dtype=torch.float64).reshape(2, 1, 1, 3)
    exact = model.log_px(x)
    for k in (1, 7, 300):
        estimate = iw_log_marginal(model, x, None, k, torch.Generator().manual_seed(k))
        torch.testing.assert_close(estimate.double(), exact, atol=2e-4, rtol=0)


def test_importance_sampled_estimate_is_above_the_elbo_and_grows_with_k(digits):
    trainer = Trainer(ModelConfig(input_shape=digits.image_shape, latent_dim=4, hidden_dim=64),
                      TrainConfig(epochs=2, precision="fp32"), digits)
    list(trainer.run())
    x = trainer.test_x[:200]
    with torch.no_grad():
        means = [iw_log_marginal(trainer.model, x, None, k, torch.Generator(x.device).manual_seed(1)).mean().item()
                 for k in (1, 10, 100, 1000)]
        elbo = -objective_terms(trainer.model, x, None, torch.Generator(x.device).manual_seed(2)).neg_elbo.mean().item()
    assert means[1] > elbo and means[3] > elbo
    assert means[0] <= means[1] <= means[2] <= means[3]


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_conv_nets_run_forward_and_backward_at_every_size(size, channels):
    config = ModelConfig(input_shape=(channels, size, size), arch="conv", latent_dim=6, hidden_dim=32)
    model = VAE(config)
    x = torch.rand(2, channels, size, size)
    terms = objective_terms(model, x)
    terms.loss.mean().backward()
    assert model.enc_conv[0].weight.grad.abs().sum() > 0 and model.dec_conv[-1].weight.grad.abs().sum() > 0
    assert model.decode(torch.zeros(2, 6)).shape == (2, channels, size, size)
    with pytest.raises(ValueError, match="28×28, 32×32 or 64×64"):
        ModelConfig(input_shape=(1, 8, 8), arch="conv")


def test_conv_trainer_runs_channels_last_and_resumes_exactly():
    import dataclasses

    from models.checkpoint import checkpoint_bytes
    from models.data import ImageDataset

    g = torch.Generator().manual_seed(0)
    data = ImageDataset("tiny", (torch.rand(96, 1, 28, 28, generator=g) > 0.5).float(), torch.zeros(96).long(),
                        torch.rand(32, 1, 28, 28, generator=g), torch.zeros(32).long(), ("0",))
    config = ModelConfig(input_shape=(1, 28, 28), arch="conv", latent_dim=4, hidden_dim=32)
    train = TrainConfig(epochs=2, batch_size=40, precision="fp32", device="cpu")
    whole = Trainer(config, train, data)
    assert whole.model.enc_conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    list(whole.run())
    half = Trainer(config, dataclasses.replace(train, epochs=1), data)
    list(half.run())
    tensors, info = half.export_state()
    assert checkpoint_bytes(tensors, info)  # the checkpoint writes the channels-last weights and Adam moments
    rest = Trainer(config, train, data)
    rest.load_state({k: v.contiguous() for k, v in tensors.items()}, info)  # as read back from a file
    list(rest.run())
    for key, value in whole.model.state_dict().items():
        torch.testing.assert_close(rest.model.state_dict()[key], value, rtol=0, atol=1e-6, msg=key)


def test_cvae_decoding_changes_with_the_label():
    config = ModelConfig(input_shape=(1, 8, 8), model="cvae", n_classes=10, latent_dim=2, hidden_dim=16)
    model = VAE(config)
    z = torch.zeros(2, 2)
    a = model.decode(z, torch.tensor([0, 0]))
    b = model.decode(z, torch.tensor([3, 3]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="needs the labels"):
        model.decode(z)


@pytest.mark.parametrize("kind", ["ae", "cvae", "beta0"])
def test_beta_zero_the_autoencoder_and_the_cvae_train(digits, kind):
    model = "vae" if kind == "beta0" else kind
    config = ModelConfig(input_shape=digits.image_shape, latent_dim=3, hidden_dim=32, model=model,
                         n_classes=10 if kind == "cvae" else 0)
    trainer = Trainer(config, TrainConfig(epochs=2, beta=0.0 if kind == "beta0" else 1.0), digits)
    ends = [e for e in trainer.run() if isinstance(e, EpochEnd)]
    assert ends[1].test_neg_elbo < ends[0].test_neg_elbo
    if kind == "ae":
        assert ends[-1].test_kl == 0 and ends[-1].test_neg_elbo == ends[-1].test_recon
    else:
        assert ends[-1].test_kl > 0


def test_kl_warmup_reaches_the_target_weight_at_the_set_step(digits):
    config = ModelConfig(input_shape=digits.image_shape, latent_dim=3, hidden_dim=32)
    trainer = Trainer(config, TrainConfig(epochs=2, beta=4.0, kl_warmup=20), digits)
    assert trainer.kl_weight(0) == 0.0
    assert trainer.kl_weight(10) == pytest.approx(2.0)
    assert trainer.kl_weight(20) == 4.0 and trainer.kl_weight(500) == 4.0
    ends = [e for e in trainer.run() if isinstance(e, EpochEnd)]
    assert ends[0].kl_weight == pytest.approx(4.0 * 12 / 20) and ends[1].kl_weight == 4.0


def test_free_bits_do_not_penalise_a_kl_below_the_floor():
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=5, hidden_dim=16))
    x = torch.rand(4, 1, 8, 8)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    plain = objective_terms(model, x, generator=gen())
    floored = objective_terms(model, x, generator=gen(), free_bits=10.0)
    torch.testing.assert_close(floored.loss, plain.recon + 5 * 10.0)
    torch.testing.assert_close(floored.neg_elbo, plain.neg_elbo)


def test_iwae_objective_and_per_epoch_estimate(digits):
    config = ModelConfig(input_shape=digits.image_shape, latent_dim=3, hidden_dim=32)
    trainer = Trainer(config, TrainConfig(epochs=1, iw_k=5, eval_iw=50, eval_iw_images=100), digits)
    end = [e for e in trainer.run() if isinstance(e, EpochEnd)][0]
    assert end.test_nll_iw is not None and end.test_iw_gap >= 0
    assert end.test_nll_iw < end.test_neg_elbo + 5  # on a subset: same ballpark, below −ELBO on average
    assert len(end.kl_per_dim) == 3 and 0 <= end.active_dims <= 3
    assert math.isfinite(end.test_nll_iw)


def test_model_table_rows_report_an_is_estimate_at_least_as_good_as_the_elbo(digits):
    from models.benchmark import MODEL_TABLE, model_table

    mlp = [r for r in MODEL_TABLE if r[1].get("arch") != "conv"]
    rows = mlp[:2] + [r for r in MODEL_TABLE if r[1].get("model") == "ae"]
    base = ModelConfig(input_shape=digits.image_shape, latent_dim=3, hidden_dim=32)
    table = model_table(digits, base, TrainConfig(epochs=1), k=50, iw_images=40, rows=rows)
    assert [r.name for r in table] == [r[0] for r in rows]
    for row in table[:-1]:
        assert row.test_nll_iw is not None and row.iw_gap >= 0 and row.samples_per_s > 0
    assert table[-1].test_nll_iw is None and table[-1].test_kl == 0

"""The ELBO's terms against torch.distributions, Monte Carlo and the plain
pytorch/examples formula."""

import math

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

from models import MLPVAE, ModelConfig, bernoulli_log_likelihood, elbo_terms, gaussian_kl


def test_closed_form_kl_matches_torch_distributions_and_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(4, 3, generator=g)
    logvar = torch.randn(4, 3, generator=g) * 0.5
    ours = gaussian_kl(mu, logvar)
    std = torch.exp(0.5 * logvar)
    exact = kl_divergence(Normal(mu, std), Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
    torch.testing.assert_close(ours, exact)
    # Monte Carlo: KL = E_q[log q(z) - log p(z)] with 400,000 draws per image.
    z = mu + std * torch.randn(400_000, 4, 3, generator=g)
    mc = (Normal(mu, std).log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1).mean(0)
    torch.testing.assert_close(ours, mc, atol=0.02, rtol=0.01)
    assert (ours >= 0).all()


def test_kl_is_zero_at_the_prior():
    assert gaussian_kl(torch.zeros(2, 5), torch.zeros(2, 5)).abs().max() < 1e-7


def test_bernoulli_log_likelihood_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 1, 4, 4, generator=g) * 5
    x_binary = (torch.rand(3, 1, 4, 4, generator=g) > 0.5).float()
    expected = Bernoulli(logits=logits).log_prob(x_binary).flatten(1).sum(1)
    torch.testing.assert_close(bernoulli_log_likelihood(logits, x_binary), expected)
    x_grey = torch.rand(3, 1, 4, 4, generator=g)
    expected = Bernoulli(logits=logits, validate_args=False).log_prob(x_grey).flatten(1).sum(1)
    torch.testing.assert_close(bernoulli_log_likelihood(logits, x_grey), expected)


def test_bernoulli_from_logits_stays_finite_where_sigmoid_saturates():
    logits = torch.tensor([[200.0, -200.0]])
    x = torch.tensor([[0.0, 1.0]])
    value = bernoulli_log_likelihood(logits, x)
    assert torch.isfinite(value).all()
    torch.testing.assert_close(value, torch.tensor([-400.0]))


def test_elbo_terms_equal_the_pytorch_examples_loss():
    torch.manual_seed(0)
    model = MLPVAE(ModelConfig(input_shape=(1, 28, 28), latent_dim=20, hidden_dim=400))
    x = torch.rand(8, 1, 28, 28)
    logits, mu, logvar = model(x)
    t = elbo_terms(logits, x, mu, logvar, beta=2.0)
    bce = F.binary_cross_entropy(torch.sigmoid(logits).flatten(1), x.flatten(1), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    torch.testing.assert_close(t.neg_elbo.sum(), bce + kld, rtol=1e-5, atol=1e-2)
    torch.testing.assert_close(t.neg_elbo, t.recon + t.kl)
    torch.testing.assert_close(t.loss, t.recon + 2.0 * t.kl)


def test_gradients_reach_the_encoder_through_the_reparameterization():
    torch.manual_seed(0)
    model = MLPVAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16))
    x = torch.rand(5, 1, 8, 8)
    logits, mu, logvar = model(x)
    # Only the reconstruction term: its gradient reaches the encoder only through z.
    recon = -bernoulli_log_likelihood(logits, x).sum()
    recon.backward()
    for p in (model.enc.weight, model.enc_mu.weight, model.enc_logvar.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_reparameterize_has_the_posterior_moments():
    mu = torch.full((200_000, 1), 1.5)
    logvar = torch.full((200_000, 1), math.log(0.25))
    z = MLPVAE.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert abs(z.mean().item() - 1.5) < 0.01
    assert abs(z.std().item() - 0.5) < 0.01

"""The β family of objectives: β-TCVAE's decomposition, DIP-VAE's penalty, FactorVAE's
discriminator, the capacity schedule, and training (and exact resume) with each."""

import math

import pytest
import torch

from models import ModelConfig, TrainConfig, Trainer, load_dataset, read_checkpoint, save_checkpoint
from models.objectives import gaussian_kl
from models.penalties import (
    OBJECTIVE_TERMS,
    OBJECTIVES,
    TCDiscriminator,
    capacity,
    dip_penalty,
    gaussian_log_density,
    permute_dims,
    tc_decomposition,
)


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes:600")


def _posterior(b=256, d=3, seed=0, correlated=False, sigma=0.05):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(b, d, generator=g)
    if correlated:
        mu[:, 1] = mu[:, 0] + 0.05 * mu[:, 1]
    logvar = torch.full((b, d), math.log(sigma ** 2))
    z = mu + torch.exp(0.5 * logvar) * torch.randn(b, d, generator=g)
    return z, mu, logvar


def test_tc_terms_sum_to_the_monte_carlo_kl_at_the_same_z():
    z, mu, logvar = _posterior(seed=1)
    t = tc_decomposition(z, mu, logvar, dataset_size=10_000)
    mc_kl = gaussian_log_density(z, mu, logvar).sum(1) - (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(1)
    torch.testing.assert_close(t["mi"] + t["tc"] + t["dim_kl"], mc_kl)
    # ... whose mean is the closed-form KL, up to Monte Carlo noise (256 images x 1 sample)
    assert float(mc_kl.mean()) == pytest.approx(float(gaussian_kl(mu, logvar).mean()), abs=0.3)


def test_total_correlation_is_near_zero_for_independent_latents_and_large_for_dependent_ones():
    # a batch that is the whole dataset (N = M): the estimate of q(z) is exact; wide posteriors
    # make the aggregate posterior smooth, so independent means give a product of marginals
    z, mu, logvar = _posterior(b=1024, seed=2, sigma=0.6)
    independent = tc_decomposition(z, mu, logvar, dataset_size=1024)
    z, mu, logvar = _posterior(b=1024, seed=2, sigma=0.6, correlated=True)
    dependent = tc_decomposition(z, mu, logvar, dataset_size=1024)
    assert abs(float(independent["tc"].mean())) < 0.2
    # z_0, z_1 then have variance 1 + 0.36 and covariance ~1: a Gaussian's TC is −½ log(1 − ρ²)
    rho = 1.0025 / 1.3625
    assert float(dependent["tc"].mean()) == pytest.approx(-0.5 * math.log(1 - rho ** 2), abs=0.08)
    # narrow posteriors on distinct points: the code says which image it came from, MI ≈ log N
    z, mu, logvar = _posterior(b=512, seed=2)
    assert float(tc_decomposition(z, mu, logvar, 512)["mi"].mean()) == pytest.approx(math.log(512), abs=0.5)
    with pytest.raises(ValueError, match="at least 2 images"):
        tc_decomposition(z[:1], mu[:1], logvar[:1], 10)


def test_dip_penalty_vanishes_for_whitened_means_and_grows_with_correlation():
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(4096, 4, generator=g)
    centred = mu - mu.mean(0)
    white = centred @ torch.linalg.inv(torch.linalg.cholesky(centred.T @ centred / len(mu))).T
    logvar = torch.full_like(mu, -20.0)
    assert float(dip_penalty(white, logvar, 10.0, "dip1")) < 1e-6
    assert float(dip_penalty(white, logvar, 10.0, "dip2")) < 1e-4
    correlated = white.clone()
    correlated[:, 1] = white[:, 0]
    assert float(dip_penalty(correlated, logvar, 10.0, "dip1")) > 5.0
    # DIP-VAE-II counts the posterior variance: unit-variance posteriors around whitened means double C_ii
    assert float(dip_penalty(white, torch.zeros_like(mu), 1.0, "dip2")) == pytest.approx(4.0, rel=1e-3)


def test_permuted_dims_keep_each_marginal_and_break_the_dependence():
    z, _, _ = _posterior(b=1000, seed=4, correlated=True)
    p = permute_dims(z, torch.Generator().manual_seed(0))
    for d in range(z.shape[1]):
        assert torch.equal(p[:, d].sort().values, z[:, d].sort().values)
    assert abs(float(torch.corrcoef(p.T)[0, 1])) < 0.1 < float(torch.corrcoef(z.T)[0, 1])


def test_a_trained_discriminator_tells_dependent_latents_from_their_permutation():
    torch.manual_seed(0)
    disc = TCDiscriminator(3, width=64)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(300):
        z, _, _ = _posterior(b=256, seed=int(torch.randint(0, 10**6, (1,), generator=g)), correlated=True)
        loss, accuracy = disc.loss(z, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    z, _, _ = _posterior(b=2048, seed=99, correlated=True)
    assert float(disc.loss(z, g)[1]) > 0.85
    with torch.no_grad():
        assert float(disc.tc(z).mean()) > 1.0  # dependent latents: a clearly positive total correlation


def test_capacity_rises_linearly_then_holds():
    assert capacity(0, 25.0, 100) == 0.0
    assert capacity(50, 25.0, 100) == 12.5
    assert capacity(500, 25.0, 100) == 25.0
    assert capacity(0, 25.0, 0) == 25.0


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_every_objective_trains_reports_its_terms_and_the_true_elbo(shapes, objective):
    cfg = ModelConfig(input_shape=shapes.image_shape, latent_dim=4, hidden_dim=64)
    trainer = Trainer(cfg, TrainConfig(epochs=1, batch_size=64, objective=objective, beta=4.0, disc_width=32,
                                       capacity_steps=5, precision="fp32"), shapes)
    list(trainer.run())
    end = trainer.history[-1]
    assert sorted(end.train_terms) == sorted(OBJECTIVE_TERMS[objective])
    assert all(math.isfinite(v) for v in end.train_terms.values())
    assert end.test_neg_elbo == pytest.approx(end.test_recon + end.test_kl)
    if objective == "capacity":
        assert 0 < end.train_terms["capacity"] <= 25.0
    if objective == "tcvae":
        parts = end.train_terms["mi"] + end.train_terms["tc"] + end.train_terms["dim_kl"]
        assert parts == pytest.approx(end.train_kl, abs=0.5)  # Monte Carlo vs closed form, epoch means


def test_factorvae_resumes_exactly_with_its_discriminator(tmp_path, shapes):
    cfg = ModelConfig(input_shape=shapes.image_shape, latent_dim=4, hidden_dim=64)

    def train(epochs):
        t = Trainer(cfg, TrainConfig(epochs=epochs, batch_size=64, objective="factorvae", disc_width=32, seed=3,
                                     precision="fp32"), shapes)
        list(t.run())
        return t

    straight, first = train(2), train(1)
    save_checkpoint(tmp_path / "f.vae", *first.export_state())
    c = read_checkpoint(tmp_path / "f.vae")
    resumed = Trainer(c.model_config, TrainConfig(**{**c.train_config.to_dict(), "epochs": 2}), shapes)
    resumed.load_state(c.tensors, c.info)
    list(resumed.run())
    for a, b in zip((resumed.model, resumed.discriminator.net), (straight.model, straight.discriminator.net)):
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
            torch.testing.assert_close(va, vb, msg=k)
    assert resumed.history[-1].train_terms == pytest.approx(straight.history[-1].train_terms)
    del c.tensors["discriminator.net.0.weight"]
    with pytest.raises(ValueError, match="discriminator"):
        Trainer(c.model_config, c.train_config, shapes).load_state(c.tensors, c.info)


def test_the_family_needs_a_posterior_and_the_elbo():
    with pytest.raises(ValueError, match="iw_k"):
        TrainConfig(objective="tcvae", iw_k=5)
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="beta-tc")
    data = load_dataset("shapes:100")
    with pytest.raises(ValueError, match="autoencoder"):
        Trainer(ModelConfig(input_shape=data.image_shape, model="ae", latent_dim=2, hidden_dim=16),
                TrainConfig(objective="dip1"), data)

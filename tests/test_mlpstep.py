"""The default model's step with its backward written out (models/mlpstep.py) against autograd."""

import dataclasses

import pytest
import torch

from models import ModelConfig, NonFiniteLossError, TrainConfig, Trainer, load_dataset
from models.mlpstep import BernoulliMLPStep, written_step_applies
from models.objectives import objective_terms
from models.vae import build_model


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _trained_looking_model(config: ModelConfig, seed: int) -> torch.nn.Module:
    """Weights away from their initialisation (larger, with dead ReLUs and some large logvars)."""
    torch.manual_seed(seed)
    model = build_model(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        model.enc_logvar.bias.add_(torch.linspace(-3, 2, config.latent_dim))
    return model


@pytest.mark.parametrize("kl_weight, seed", [(1.0, 0), (0.3, 1), (4.0, 2)])
def test_gradients_and_terms_match_autograd(mnist, kl_weight, seed):
    config = ModelConfig()
    model = _trained_looking_model(config, seed)
    x = mnist.train_x[seed * 100: seed * 100 + 97].float() / 255  # an odd batch size
    auto = objective_terms(model, x, None, torch.Generator().manual_seed(5), kl_weight=kl_weight)
    auto.loss.mean().backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)

    terms = BernoulliMLPStep(model)(x, torch.Generator().manual_seed(5), kl_weight)
    for key in ("recon", "kl", "neg_elbo", "loss"):
        torch.testing.assert_close(getattr(terms, key), getattr(auto, key).detach(), rtol=1e-6, atol=1e-4)
    assert terms.kl_per_dim.shape == (97, 20) and terms.z.shape == (97, 20)
    for name, p in model.named_parameters():
        scale = expected[name].abs().max()
        assert scale > 0, name
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-5 * float(scale), msg=name)


@pytest.mark.parametrize("kl_weight, seed", [(1.0, 0), (4.0, 2)])
def test_bf16_is_closer_to_float32_than_autocast(mnist, kl_weight, seed):
    """bf16 only on the wide layers (the latent side in float32): nearer the float32 step than
    ``torch.autocast``, which runs every product in bf16."""
    config = ModelConfig()
    x = mnist.train_x[:128].float() / 255
    runs = {}
    for mode in ("fp32", "autocast", "written"):
        model = _trained_looking_model(config, seed)
        if mode == "written":
            terms = BernoulliMLPStep(model, mixed_precision=True)(x, torch.Generator().manual_seed(5), kl_weight)
        else:
            terms = objective_terms(model, x, None, torch.Generator().manual_seed(5), kl_weight=kl_weight,
                                    autocast=mode == "autocast")
            terms.loss.mean().backward()
        runs[mode] = terms, {name: p.grad.clone() for name, p in model.named_parameters()}
    (exact, exact_grads), (auto, auto_grads), (terms, grads) = runs["fp32"], runs["autocast"], runs["written"]
    for key in ("recon", "kl", "neg_elbo", "loss"):
        error = (getattr(terms, key) - getattr(exact, key).detach()).abs().max()
        assert error < 0.5, (key, float(error))  # nats, of ~100 per image
        assert error <= (getattr(auto, key) - getattr(exact, key)).detach().abs().max(), key
    for name, grad in grads.items():
        assert grad.dtype == torch.float32
        error = (grad - exact_grads[name]).norm() / exact_grads[name].norm()
        assert error < 5e-3, (name, float(error))  # bf16 keeps 8 bits of mantissa
        assert error < (auto_grads[name] - exact_grads[name]).norm() / exact_grads[name].norm(), name


def test_other_models_are_refused():
    with pytest.raises(ValueError, match="MLP VAE with a Bernoulli likelihood"):
        BernoulliMLPStep(build_model(ModelConfig(likelihood="gaussian")))
    with pytest.raises(ValueError, match="MLP VAE with a Bernoulli likelihood"):
        BernoulliMLPStep(build_model(ModelConfig(model="cvae", n_classes=10)))


def _trainer(data, written=True, **train):
    model = ModelConfig(input_shape=data.image_shape, latent_dim=4, hidden_dim=64)  # on the CPU, even with a GPU
    return Trainer(model, TrainConfig(**{"precision": "fp32", "device": "cpu", **train}), data,
                   written_backward=written)


@pytest.mark.parametrize("train, takes_it", [
    ({}, True), ({"beta": 4.0, "kl_warmup": 30}, True), ({"precision": "bf16"}, True), ({"free_bits": 0.1}, False),
    ({"iw_k": 3}, False), ({"objective": "tcvae"}, False),
])
def test_which_runs_take_the_written_step(digits, train, takes_it):
    assert (_trainer(digits, **train).written_step is not None) is takes_it
    assert _trainer(digits, written=False, **train).written_step is None


def test_a_gpu_and_a_distributed_run_keep_autograd():
    assert written_step_applies(ModelConfig(), TrainConfig(), torch.device("cpu"), False)
    assert not written_step_applies(ModelConfig(), TrainConfig(), torch.device("cuda", 0), False)
    assert not written_step_applies(ModelConfig(), TrainConfig(), torch.device("cpu"), True)


@pytest.mark.parametrize("precision, rel, atol", [("fp32", 1e-4, 1e-3), ("bf16", 1e-3, 5e-3)])
def test_training_with_it_matches_training_through_autograd(digits, precision, rel, atol):
    """Against autograd in float32, the training both precisions approximate."""
    runs = []
    for written, run_precision in ((True, precision), (False, "fp32")):
        trainer = _trainer(digits, written, epochs=2, beta=2.0, kl_warmup=15, seed=4, precision=run_precision)
        list(trainer.run())
        runs.append(trainer)
    written, auto = runs
    assert written.step == auto.step == 2 * written.steps_per_epoch
    assert written.history[-1].test_neg_elbo < written.history[0].test_neg_elbo  # it trains
    for a, b in zip(written.history, auto.history):
        assert a.train_neg_elbo == pytest.approx(b.train_neg_elbo, rel=rel)
        assert a.test_neg_elbo == pytest.approx(b.test_neg_elbo, rel=rel)
        assert a.train_kl == pytest.approx(b.train_kl, rel=10 * rel)
    for (name, p), q in zip(written.model.named_parameters(), auto.model.parameters()):
        torch.testing.assert_close(p, q, rtol=atol, atol=atol, msg=name)


def test_the_direct_adam_update_is_optimizer_step_bit_for_bit(digits):
    runs = []
    for direct in (True, False):
        trainer = _trainer(digits, epochs=2, lr=3e-3)
        if not direct:
            trainer.written_step.update = lambda optimizer: optimizer.step()
        list(trainer.run())
        trainer.set_learning_rate(1e-3)  # a changed rate is read at the next step
        trainer.config = dataclasses.replace(trainer.config, epochs=3)
        list(trainer.run())
        runs.append(trainer)
    for (name, p), q in zip(runs[0].model.named_parameters(), runs[1].model.parameters()):
        assert torch.equal(p, q), name
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(runs[0].optimizer.state[p][key], runs[1].optimizer.state[q][key]), (name, key)


def test_a_non_finite_written_gradient_is_caught_before_the_update(digits):
    trainer = _trainer(digits, epochs=1)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    step = trainer.written_step

    def poisoned(x, generator, kl_weight):
        terms = step(x, generator, kl_weight)
        step.grad_views[6][0, 0] = float("inf")  # dec.weight, with a finite loss
        return terms

    poisoned.flat = step.flat
    trainer.written_step = poisoned
    with pytest.raises(NonFiniteLossError, match="gradient \\(with a finite loss\\) became non-finite at step 1"):
        list(trainer.run())
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_an_absurd_learning_rate_still_stops_with_a_clear_error(digits):
    trainer = _trainer(digits, epochs=2, lr=10.0)
    assert trainer.written_step is not None
    with pytest.raises(NonFiniteLossError, match="went back to the state of step 0"):
        list(trainer.run())
    assert all(torch.isfinite(v).all() for v in trainer.model.state_dict().values())

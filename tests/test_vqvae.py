"""The VQ-VAE (van den Oord et al. 2017): quantisation, codebook learning, the learned prior."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from models.checkpoint import read_checkpoint, save_checkpoint
from models.config import ModelConfig, TrainConfig
from models.data import ImageDataset
from models.datasets import load_dataset
from models.distributed import check_distributable
from models.trainer import EpochEnd, Trainer
from models.vae import build_model
from models.vqvae import VQVAE, ema_update, perplexity

from .test_cli import run


@pytest.fixture(scope="module")
def digits28():
    """600 training and 200 test MNIST digits (28×28) of the shipped split."""
    full = load_dataset("mnist5k")
    return ImageDataset("mnist600", full.train_x[:600], full.train_y[:600], full.test_x[:200], full.test_y[:200],
                        full.class_names)


def small(**over) -> ModelConfig:
    return ModelConfig(**{"input_shape": (1, 28, 28), "model": "vqvae", "codebook_size": 16, "code_dim": 8, **over})


def test_the_straight_through_estimator_passes_the_decoders_gradient_to_the_encoder_unchanged():
    torch.manual_seed(0)
    model = build_model(small(code_prior="uniform")).eval()  # eval: the codebook stays as it is after the pass
    assert isinstance(model, VQVAE)
    x = torch.rand(3, 1, 28, 28)
    seen = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        seen["z_e"] = output

    handle = model.encoder.register_forward_hook(keep)
    t = model.terms(x, commitment=0.0)  # the EMA codebook: no codebook loss; no commitment: only the recon
    handle.remove()
    t["loss"].sum().backward()
    z_q = model.codes_to_grid(t["codes"]).detach().requires_grad_()
    (-model.likelihood.log_prob(model.decoder(z_q).float(), x)).sum().backward()
    assert float(z_q.grad.abs().max()) > 0
    torch.testing.assert_close(seen["z_e"].grad, z_q.grad)


def test_the_ema_update_equals_a_hand_computation_on_three_codes():
    codebook = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    count = torch.tensor([2.0, 1.0, 0.5])
    total = torch.tensor([[0.2, 0.0], [1.0, 1.0], [2.5, 2.5]])
    flat = torch.tensor([[0.1, 0.1], [0.3, -0.1], [2.0, 0.0], [1.0, 3.0]])
    codes = torch.tensor([0, 0, 1, 1])
    ema_update(codebook, count, total, flat, codes, decay=0.9, eps=1e-5)
    # by hand: N = 0.9 N + 0.1 n with n = (2, 2, 0); m = 0.9 m + 0.1 Σ z
    n_new = torch.tensor([0.9 * 2 + 0.2, 0.9 * 1 + 0.2, 0.9 * 0.5])
    m_new = torch.tensor([[0.18 + 0.04, 0.0 + 0.0], [0.9 + 0.3, 0.9 + 0.3], [2.25, 2.25]])
    torch.testing.assert_close(count, n_new)
    torch.testing.assert_close(total, m_new)
    big_n = float(n_new.sum())
    smoothed = (n_new + 1e-5) / (big_n + 3e-5) * big_n
    torch.testing.assert_close(codebook, m_new / smoothed.unsqueeze(1))
    assert codebook[0].tolist() == pytest.approx([0.11, 0.0], abs=1e-4)  # (0.22, 0) / 2.0


def test_perplexity_is_k_for_uniform_use_and_one_for_a_single_code():
    assert perplexity(torch.full((64,), 10.0)) == pytest.approx(64)
    assert perplexity(torch.tensor([0.0, 7.0, 0.0])) == pytest.approx(1.0)
    assert perplexity(torch.tensor([1.0, 1.0, 0.0, 0.0])) == pytest.approx(2.0)


def test_editing_one_cell_changes_only_the_region_the_decoder_sees_from_it():
    torch.manual_seed(0)
    model = build_model(small()).eval()
    codes = torch.randint(16, (1, 7, 7))
    edited = codes.clone()
    edited[0, 0, 0] = (codes[0, 0, 0] + 1) % 16
    with torch.no_grad():
        diff = (model.decode_codes(edited) - model.decode_codes(codes)).abs()[0, 0]
    changed = diff > 1e-6
    # cell (0, 0) covers pixels 0..3; the decoder sees 3 cells around it (a 3×3 conv and two 3×3
    # residual blocks), and its two 4×4 stride-2 transposed convolutions add 6 pixels: rows and
    # columns 0..18 at most
    assert bool(changed[:4, :4].any())
    assert not bool(changed[19:, :].any()) and not bool(changed[:, 19:].any())
    assert int(changed.sum()) <= 19 * 19


def test_the_learned_prior_beats_the_uniform_prior_after_one_epoch_and_training_reports_the_codebook(digits28):
    config = small()
    trainer = Trainer(config, TrainConfig(epochs=1, batch_size=64), digits28)
    end = [e for e in trainer.run() if isinstance(e, EpochEnd)][-1]
    uniform = 49 * math.log(16)
    assert end.test_kl < uniform  # −log p(codes) of the test grids, nats per image
    assert end.test_neg_elbo == pytest.approx(end.test_recon + end.test_kl)
    assert set(end.test_terms) == {"perplexity", "codes_used"} and 1 <= end.test_terms["perplexity"] <= 16
    assert 1 <= end.test_terms["codes_used"] <= 16 and set(end.train_terms) == {"commitment"}
    uniform_run = Trainer(small(code_prior="uniform"), TrainConfig(epochs=1, batch_size=64), digits28)
    last = [e for e in uniform_run.run() if isinstance(e, EpochEnd)][-1]
    assert last.test_kl == pytest.approx(uniform)


def test_a_checkpoint_with_its_prior_saves_reopens_and_resumes_exactly(digits28, tmp_path):
    config = small(codebook="loss")
    train = TrainConfig(epochs=2, batch_size=100)
    whole = Trainer(config, train, digits28)
    list(whole.run())
    half = Trainer(config, TrainConfig(**{**train.to_dict(), "epochs": 1}), digits28)
    list(half.run())
    ckpt = read_checkpoint(save_checkpoint(tmp_path / "vq.vae", *half.export_state()))
    assert ckpt.model_config == config and any(k.startswith("model.prior.") for k in ckpt.tensors)
    reopened = build_model(ckpt.model_config)
    reopened.load_state_dict(ckpt.weights)
    for key, value in half.model.state_dict().items():
        assert torch.equal(reopened.state_dict()[key], value.cpu()), key
    rest = Trainer(config, train, digits28)
    rest.load_state(ckpt.tensors, ckpt.info)
    list(rest.run())
    for key, value in whole.model.state_dict().items():
        torch.testing.assert_close(rest.model.state_dict()[key], value, rtol=0, atol=1e-6, msg=key)


def test_dead_codes_restart_on_encoder_outputs(digits28):
    model = build_model(small(code_prior="uniform"))
    model.train()
    x = digits28.train_x[:1].float()
    # every count starts at 0 and 49 cells give no code a count of 1 (0.01 per cell): all codes restart
    model.terms(x, generator=torch.Generator().manual_seed(0))
    flat = model.encode_grid(x).detach().permute(0, 2, 3, 1).reshape(-1, 8)
    for code in model.codebook:
        assert float((flat - code).pow(2).sum(1).min()) < 1e-8  # each code sits on an encoder output


def test_settings_that_do_not_apply_are_refused(digits28):
    with pytest.raises(ValueError, match="VQ-VAE takes 28×28, 32×32 or 64×64"):
        ModelConfig(input_shape=(1, 8, 8), model="vqvae")
    for bad in (TrainConfig(beta=4.0), TrainConfig(eval_iw=10), TrainConfig(iw_k=2), TrainConfig(kl_warmup=5)):
        with pytest.raises(ValueError, match="the VQ-VAE has no Gaussian posterior"):
            Trainer(small(), bad, digits28)
    with pytest.raises(ValueError, match="VQ-VAE"):
        check_distributable("vqvae", TrainConfig())
    model = build_model(small()).eval()
    with pytest.raises(ValueError, match="codes run from 0 to 15"):
        model.decode_codes(torch.full((1, 7, 7), 16))


def test_samples_come_from_the_prior_with_a_temperature(digits28):
    torch.manual_seed(0)
    model = build_model(small()).eval()
    with torch.no_grad():  # an untrained prior is uniform (its output layer starts at zero): give it a preference
        model.prior.out.bias.copy_(torch.linspace(-3, 3, 16))
    codes = model.sample_codes(4, temperature=1.0, generator=torch.Generator().manual_seed(1))
    again = model.sample_codes(4, temperature=1.0, generator=torch.Generator().manual_seed(1))
    assert codes.shape == (4, 7, 7) and torch.equal(codes, again)
    cold = model.sample_codes(64, temperature=0.05, generator=torch.Generator().manual_seed(2))
    hot = model.sample_codes(64, temperature=5.0, generator=torch.Generator().manual_seed(2))
    assert len(torch.unique(cold)) < len(torch.unique(hot))  # low temperature: the likeliest codes
    with torch.no_grad():
        images = model.decode_codes(codes)
    assert images.shape == (4, 1, 28, 28) and 0 <= float(images.min()) and float(images.max()) <= 1


def test_the_vqvae_trains_from_the_command_line(tmp_path):
    from models.runfolder import summarize

    out, folder = tmp_path / "vq.vae", tmp_path / "run"
    result = run("train", "--dataset", "mnist5k", "--model", "vqvae", "--codebook-size", "16", "--code-dim", "8",
                 "--epochs", "1", "--json", "--save", str(out), "--run-dir", str(folder))
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.splitlines()[-1])
    assert line["test_terms"]["codes_used"] >= 1 and line["test_kl"] < 49 * math.log(16)
    assert "conv VQ-VAE, 7×7 codes of K=16 × D=8, learned prior" in result.stderr
    assert read_checkpoint(out).model_config.model == "vqvae"
    summary = summarize(folder)  # the Runs tab's row
    assert summary.settings["latent_dim"] == "K 16 × D 8" and summary.final_test_neg_elbo == pytest.approx(
        line["test_neg_elbo"])
    assert (folder / "samples" / "epoch-0001.png").exists()
    bad = run("train", "--dataset", "digits", "--model", "vqvae", "--epochs", "1")
    assert bad.returncode == 2 and "VQ-VAE takes 28×28" in bad.stderr


def test_the_latent_map_encodes_a_vqvae_by_its_encoder_output(digits28):
    from models.embedding import encode_split

    model = build_model(small()).eval()
    enc = encode_split(model, digits28, "test")
    assert enc.codes.shape == (200, 8 * 49)
    with torch.no_grad():
        codes = model.nearest(model.encode_grid(digits28.test_x.float()))
        prior_nll = model.prior_nll(codes).numpy()
    np.testing.assert_allclose(enc.kl, prior_nll, rtol=1e-4)  # each image's KL is −log p(codes), nats
    assert bool((enc.neg_elbo > enc.kl).all())  # plus a positive reconstruction term


def test_a_run_folders_samples_are_drawn_from_the_code_prior():
    from models.latent import samples_grid

    torch.manual_seed(0)
    model = build_model(small()).train()
    grid = samples_grid(model, rows=2, cols=3, seed=5, scale=1, padding=0)
    with torch.no_grad():
        codes = model.sample_codes(6, generator=torch.Generator().manual_seed(5))
        expected = model.decode_codes(codes).numpy()
    assert grid.shape == (56, 84) and model.training  # its mode is left as it was
    np.testing.assert_allclose(grid[:28, 28:56], expected[1, 0], atol=1e-6)


def test_exports_and_run_folder_names_say_what_a_vqvae_has(digits28, tmp_path):
    from vaegui.runfolders import run_folder_name

    assert "-vqvae-K16x8-mnist5k" in run_folder_name(small(), "mnist5k")
    assert "-hvae-z100-20-" in run_folder_name(ModelConfig(model="hvae"), "mnist5k")
    path = save_checkpoint(tmp_path / "vq.vae", *Trainer(small(), TrainConfig(), digits28).export_state())
    manifold = run("export", str(path), "--what", "manifold", "--out", str(tmp_path / "m.png"))
    assert manifold.returncode == 2 and "no manifold (samples and interpolation apply)" in manifold.stderr
    samples = run("export", str(path), "--what", "samples", "--rows", "2", "--cols", "2", "--out",
                  str(tmp_path / "s.png"))
    assert samples.returncode == 0, samples.stderr
    traversal = run("animate", str(path), "--what", "traversal", "--out", str(tmp_path / "t.gif"))
    assert traversal.returncode == 2 and "no traversal" in traversal.stderr

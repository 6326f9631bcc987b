"""The semi-supervised VAE M2 (Kingma et al. 2014): its two bounds, the labelled subset,
training on 10 labels per class, and the window's form and analogies panel."""

from __future__ import annotations

import math

import pytest
import torch

from models import ModelConfig, TrainConfig, Trainer, load_dataset, read_checkpoint, save_checkpoint
from models.semisupervised import labelled_subset, labelled_terms, unlabelled_terms
from models.vae import VAE

from .test_gui_models import choose
from .ui import UI


def _m2(k=3, d=2):
    torch.manual_seed(0)
    return VAE(ModelConfig(input_shape=(1, 6, 6), latent_dim=d, hidden_dim=16, model="m2", n_classes=k))


def test_the_unlabelled_bound_is_the_labelled_one_when_the_classifier_is_sure():
    model = _m2()
    with torch.no_grad():  # a sure classifier (class 2) and a deterministic posterior q(z|x, y)
        model.classifier[-1].bias.copy_(torch.tensor([0.0, 0.0, 60.0]))
        model.enc_logvar.weight.zero_()
        model.enc_logvar.bias.fill_(-40.0)
    x = torch.rand(5, 1, 6, 6)
    recon, kl, neg, loss, kl_d, log_q = unlabelled_terms(model, x)
    assert torch.allclose(log_q.exp()[:, 2], torch.ones(5))
    labelled, ce = labelled_terms(model, x, torch.full((5,), 2))
    torch.testing.assert_close(neg, labelled, rtol=1e-5, atol=1e-3)  # both include −log p(y) = log K
    torch.testing.assert_close(neg, recon + kl)
    assert torch.allclose(ce, torch.zeros(5), atol=1e-6)
    assert kl_d.shape == (5, 2)
    # an undecided classifier: KL(q(y|x) ‖ p(y)) = 0, so the KL is the q-weighted KL of z alone
    with torch.no_grad():
        model.classifier[-1].weight.zero_()
        model.classifier[-1].bias.zero_()
    recon, kl, neg, *_ = unlabelled_terms(model, x)
    per_class = [labelled_terms(model, x, torch.full((5,), c))[0] for c in range(3)]
    torch.testing.assert_close(neg, sum(per_class) / 3 - math.log(3) + 0.0 * neg, rtol=1e-5, atol=1e-3)


def test_the_labelled_subset_is_seeded_and_per_class():
    labels = torch.arange(100) % 4
    a, b = labelled_subset(labels, 5, seed=1), labelled_subset(labels, 5, seed=1)
    assert torch.equal(a, b) and len(a) == 20
    assert torch.bincount(labels[a]).tolist() == [5, 5, 5, 5]
    assert not torch.equal(a, labelled_subset(labels, 5, seed=2))
    assert len(labelled_subset(labels, 0, 0)) == 100
    with pytest.raises(ValueError, match="class 0 has 25"):
        labelled_subset(labels, 30, 0)


def test_m2_with_ten_labels_per_class_beats_chance_and_saves_its_classifier(tmp_path):
    data = load_dataset("mnist5k")
    cfg = ModelConfig(input_shape=data.image_shape, latent_dim=8, hidden_dim=128, model="m2", n_classes=10)
    trainer = Trainer(cfg, TrainConfig(epochs=2, batch_size=128, labels_per_class=10), data)
    list(trainer.run())
    assert len(trainer.labelled) == 100
    end = trainer.history[-1]
    assert end.test_error < 0.6, end.test_error  # chance: 0.9
    assert end.test_neg_elbo == pytest.approx(end.test_recon + end.test_kl)
    assert "classification" in end.train_terms
    save_checkpoint(tmp_path / "m2.vae", *trainer.export_state())
    c = read_checkpoint(tmp_path / "m2.vae")
    assert c.model_config.model == "m2" and "classifier.0.weight" in c.weights
    assert c.info["history"][-1]["test_error"] == end.test_error
    with pytest.raises(ValueError, match="own bound"):
        Trainer(cfg, TrainConfig(objective="tcvae"), data)


def test_m2_from_the_form_reports_its_error_and_the_analogies_panel_works(qtbot, window):
    form = window.form
    choose(form.model_combo, "m2")
    assert form.fields["labels_per_class"].isVisibleTo(window) and not form.fields["objective"].isEnabled()
    UI(qtbot, window).train(epochs=1)
    assert "test error" in form.speed_label.text()
    assert window.run.history.epochs[-1].test_error is not None
    window.tabs.setCurrentWidget(window.analogies)
    qtbot.waitUntil(lambda: not window.analogies._stale, timeout=3000)
    figure = window.analogies.figure  # each test image's z decoded with every label
    assert figure is not None and figure.cols == 1 + len(window.handle.class_names)
    choose(form.model_combo, "vae")
    assert not form.fields["labels_per_class"].isVisibleTo(window)

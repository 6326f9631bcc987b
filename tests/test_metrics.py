"""Disentanglement metrics: property checks on arrays whose answer is known, and
``vaegui metrics`` on an npz file and on a trained model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.metrics import as_class_indices, beta_vae_score, check_arrays, dci, factor_vae_score, mig, sap
from vaegui.cli import main


def factor_data(n: int = 3000, classes=(4, 5, 6), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, c, n) for c in classes], axis=1)


def monotone_codes(factors: np.ndarray) -> np.ndarray:
    """Codes that equal the factors up to permutation and monotone rescaling (no two classes in
    one of MIG's 20 bins: f ** 3 would put 0 and 1 together and cost MIG 0.06)."""
    f = factors.astype(float)
    return np.stack([-3.0 * f[:, 2] + 1.0, np.exp(f[:, 0] / 2), np.sqrt(f[:, 1] + 1)], axis=1)


def test_mig_is_one_for_the_factors_zero_for_noise_and_blind_to_order():
    factors = factor_data()
    codes = monotone_codes(factors)
    score, mi = mig(codes, factors)
    assert score > 0.95 and mi.shape == (3, 3)
    noise = np.random.default_rng(1).normal(size=(3000, 3))
    assert mig(noise, factors)[0] < 0.05
    assert mig(codes[:, [2, 0, 1]], factors)[0] == pytest.approx(score, abs=1e-12)
    duplicated = np.concatenate([codes, codes[:, :1]], axis=1)  # the first code twice: no gap for its factor
    assert mig(duplicated, factors)[0] < score - 0.25


def test_dci_is_near_one_for_the_factors_and_duplicates_lower_completeness():
    factors = factor_data(1500)
    codes = monotone_codes(factors)
    good = dci(codes, factors, num_train=1000, num_test=500)
    assert good.disentanglement > 0.9 and good.completeness > 0.9 and good.informativeness > 0.95
    assert good.importance.shape == (3, 3)
    noise = np.random.default_rng(2).normal(size=(1500, 3))
    bad = dci(noise, factors, num_train=1000, num_test=500)
    assert bad.disentanglement < 0.3 and bad.informativeness < 0.4
    permuted = dci(codes[:, [1, 2, 0]], factors, num_train=1000, num_test=500)
    assert permuted.disentanglement == pytest.approx(good.disentanglement, abs=0.02)
    duplicated = dci(np.concatenate([codes, codes[:, :1]], axis=1), factors, num_train=1000, num_test=500)
    assert duplicated.completeness < good.completeness - 0.05


def test_sap_separates_the_factors_from_noise():
    factors = factor_data(2000, classes=(2, 2, 2))  # 1-D linear SVMs separate two classes exactly
    codes = monotone_codes(factors)
    score, matrix = sap(codes, factors, num_train=1200, num_test=800)
    assert score > 0.4 and matrix.shape == (3, 3)  # best code right, the others at chance (0.5)
    assert sap(codes[:, [2, 0, 1]], factors, num_train=1200, num_test=800)[0] == pytest.approx(score)
    noise = np.random.default_rng(3).normal(size=(2000, 3))
    assert sap(noise, factors, num_train=1200, num_test=800)[0] < 0.05


def test_controlled_scores_are_one_for_the_factors_and_chance_for_noise():
    sizes = (3, 4, 5)
    rng = np.random.default_rng(5)

    def factor_encoder(factors):  # the factors themselves, rescaled, plus a constant dimension
        f = np.asarray(factors, dtype=float)
        return np.concatenate([f[:, ::-1] * 2.0, np.zeros((len(f), 1))], axis=1)

    def noise_encoder(factors):
        return rng.normal(size=(len(factors), 4))

    good = factor_vae_score(factor_encoder, sizes, batch_size=16, num_train=300, num_eval=200,
                            num_variance_estimate=500)
    assert good["eval_accuracy"] == 1.0 and good["active_dims"] == 3  # the constant one is pruned
    bad = factor_vae_score(noise_encoder, sizes, batch_size=16, num_train=300, num_eval=200,
                           num_variance_estimate=500)
    assert bad["eval_accuracy"] < 0.6
    assert beta_vae_score(factor_encoder, sizes, batch_size=16, num_train=300, num_eval=200)["eval_accuracy"] > 0.95
    assert beta_vae_score(noise_encoder, sizes, batch_size=16, num_train=300, num_eval=200)["eval_accuracy"] < 0.6


def test_bad_arrays_are_refused_with_the_reason():
    factors = factor_data(10)
    with pytest.raises(ValueError, match="same number"):
        check_arrays(np.zeros((9, 2)), factors)
    with pytest.raises(ValueError, match="integer class indices"):
        check_arrays(np.zeros((10, 2)), factors + 0.5)
    with pytest.raises(ValueError, match="finite"):
        check_arrays(np.full((10, 2), np.nan), factors)
    assert as_class_indices(np.array([[0.1, 5.0], [0.7, 5.0], [0.1, 2.0]])).tolist() == [[0, 1], [1, 1], [0, 0]]


def test_vaegui_metrics_on_an_npz_of_codes(tmp_path, capsys):
    factors = factor_data(600)
    path = tmp_path / "codes.npz"
    np.savez(path, codes=monotone_codes(factors), factors=factors, factor_names=np.array(["a", "b", "c"]))
    assert main(["metrics", "--codes", str(path), "--json", "--train", "400", "--test", "200"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) >= {"mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap"}
    assert scores["mig"] > 0.9 and scores["factor_names"] == ["a", "b", "c"]
    np.savez(tmp_path / "bad.npz", codes=np.zeros((5, 2)))
    assert main(["metrics", "--codes", str(tmp_path / "bad.npz")]) == 2
    assert "factors" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert main(["metrics", "--codes", str(tmp_path / "junk.npz")]) == 2


def test_vaegui_metrics_on_a_model_trained_on_shapes(tmp_path, capsys):
    import torch

    from models.checkpoint import save_checkpoint
    from models.config import ModelConfig, TrainConfig
    from models.datasets import parse_dataset, resolve_dataset
    from models.trainer import Trainer

    data, _ = resolve_dataset(parse_dataset("shapes:300"), size=64, channels=1, fit="crop")
    trainer = Trainer(ModelConfig(input_shape=data.image_shape, latent_dim=3, hidden_dim=16),
                      TrainConfig(epochs=1, batch_size=100), data)
    for _event in trainer.run():
        pass
    with torch.no_grad():
        save_checkpoint(tmp_path / "shapes.vae", *trainer.export_state())
    assert main(["metrics", str(tmp_path / "shapes.vae"), "--json", "--train", "200", "--test", "100"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n"] == 300 and scores["factor_names"][0] == "shape"
    assert all(0.0 <= scores[k] <= 1.0 for k in ("mig", "dci_disentanglement", "dci_completeness", "sap"))
    assert np.asarray(scores["mi"]).shape == (3, len(scores["factor_names"]))
    assert main(["metrics", str(tmp_path / "shapes.vae"), "--json", "--train", "200", "--test", "100",
                 "--controlled", "--votes", "30", "20", "--batch", "8"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert 0.0 <= scores["factorvae"] <= 1.0 and 0.0 <= scores["betavae"] <= 1.0
    assert main(["metrics", str(tmp_path / "shapes.vae"), "--dataset", "digits"]) == 2
    assert main(["metrics"]) == 2


def test_scores_match_disent_on_identical_arrays():
    """An independent implementation (disent, MIT, which follows disentanglement_lib) on the same arrays."""
    pytest.importorskip("disent.metrics._mig", reason="disent is not installed (pip install disent)",
                        exc_type=ImportError)
    from disent.metrics import _dci, _mig, _sap

    factors = factor_data(1200)
    rng = np.random.default_rng(4)
    codes = monotone_codes(factors) + rng.normal(scale=0.8, size=(1200, 3))  # partly disentangled
    codes = np.concatenate([codes, rng.normal(size=(1200, 1))], axis=1)
    ours, _ = mig(codes, factors)
    theirs = _mig._compute_mig(codes.T, factors.T)["mig.discrete_score"]
    assert ours == pytest.approx(theirs, abs=1e-9)
    train, test = np.arange(800), np.arange(800, 1200)
    score, matrix = sap(codes, factors, split=(train, test))
    their_matrix = _sap._compute_score_matrix(codes[train].T, factors[train].T, codes[test].T, factors[test].T, False)
    np.testing.assert_allclose(matrix, their_matrix, atol=1e-3)  # LinearSVC's solver, to a few test points
    assert score == pytest.approx(_sap._compute_avg_diff_top_two(their_matrix), abs=5e-3)
    # DCI: their trees are unseeded, so compare the scores computed from one importance matrix,
    # and the informativeness of both fits
    result = dci(codes, factors, split=(train, test))
    assert result.disentanglement == pytest.approx(_dci._disentanglement(result.importance), abs=1e-9)
    assert result.completeness == pytest.approx(_dci._completeness(result.importance), abs=1e-9)
    _imp, _train_acc, their_test_acc = _dci._compute_importance_gbt(codes[train].T, factors[train].T,
                                                                    codes[test].T, factors[test].T)
    assert result.informativeness == pytest.approx(their_test_acc, abs=0.03)


def test_scores_at_each_epoch_end_are_kept_with_the_history(tmp_path):
    from models import ModelConfig, TrainConfig, Trainer, load_dataset, read_checkpoint, save_checkpoint

    data = load_dataset("shapes:600")
    cfg = ModelConfig(input_shape=data.image_shape, latent_dim=4, hidden_dim=32)
    trainer = Trainer(cfg, TrainConfig(epochs=1, batch_size=100, metrics="fast", metrics_points=400), data)
    list(trainer.run())
    scores = trainer.history[-1].disentanglement
    assert scores["points"] == 400 and 0 <= scores["mig"] <= 1 and 0 <= scores["sap"] <= 1
    assert np.array(scores["mi"]).shape == (4, len(data.factor_names))
    save_checkpoint(tmp_path / "m.vae", *trainer.export_state())
    assert read_checkpoint(tmp_path / "m.vae").info["history"][0]["disentanglement"]["mig"] == scores["mig"]
    with pytest.raises(ValueError, match="no ground-truth factors"):
        Trainer(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16), TrainConfig(metrics="fast"),
                load_dataset("digits"))

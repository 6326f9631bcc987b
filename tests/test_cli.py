"""``vaegui train`` and the app's process, run as a user would from a shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from PIL import Image


def run(*args, timeout=300, **env):
    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen", **env)
    return subprocess.run(
        [sys.executable, "-m", "vaegui", *args], capture_output=True, text=True, timeout=timeout, env=environment
    )


def test_train_json_lines_parse_and_elbo_falls():
    result = run("train", "--dataset", "digits", "--epochs", "3", "--hidden-dim", "64", "--latent-dim", "4", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    for line in lines:
        for key in ("epoch", "train_neg_elbo", "test_neg_elbo", "test_recon", "test_kl", "samples_per_s"):
            assert isinstance(line[key], (int, float))
        assert abs(line["test_neg_elbo"] - (line["test_recon"] + line["test_kl"])) < 1e-3
    assert lines[-1]["test_neg_elbo"] < lines[0]["test_neg_elbo"]
    assert "nats per image" in result.stderr


def test_train_text_output_and_bad_options():
    result = run("train", "--dataset", "digits", "--epochs", "1", "--hidden-dim", "32")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("epoch   1/1") and "samples/s" in result.stdout
    bad = run("train", "--dataset", "digits", "--latent-dim", "1")
    assert bad.returncode == 2 and "--latent-dim must be between 2 and 64" in bad.stderr
    unknown = run("train", "--dataset", "imagenet")
    assert unknown.returncode == 2 and "neither a built-in dataset" in unknown.stderr
    nan = run("train", "--dataset", "digits", "--epochs", "2", "--lr", "10")
    assert nan.returncode == 1 and "non-finite" in nan.stderr


def test_app_closes_mid_training_with_exit_status_zero(tmp_path):
    shot = tmp_path / "window.png"
    result = run(
        "--dataset", "digits", "--train", "--quit-after", "4",
        "--screenshot", str(shot), "--settings", str(tmp_path / "s.ini"),
    )
    assert result.returncode == 0, result.stderr
    with Image.open(shot) as img:
        assert img.size[0] >= 800 and img.size[1] >= 500


def test_train_model_family_options_report_every_term():
    result = run(
        "train", "--dataset", "mnist5k", "--epochs", "1", "--arch", "conv", "--likelihood", "gaussian-learned",
        "--beta", "4", "--kl-warmup", "10", "--eval-iw", "20", "--eval-iw-images", "50", "--hidden-dim", "64",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.splitlines()[-1])
    assert line["kl_weight"] == 4.0 and isinstance(line["test_nll_iw"], float) and line["test_iw_gap"] >= 0
    assert len(line["kl_per_dim"]) == 20 and "conv VAE, Gaussian, learned variance" in result.stderr
    for model in ("ae", "cvae"):
        other = run("train", "--dataset", "digits", "--epochs", "1", "--model", model, "--json")
        assert other.returncode == 0, other.stderr
        assert json.loads(other.stdout)["test_nll_iw"] is None


def test_train_on_an_image_folder_prints_the_import_report_first(tmp_path):
    import numpy as np
    from PIL import Image

    for i in range(12):
        folder = tmp_path / "imgs" / ("odd" if i % 2 else "even")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((30, 20), i * 20, dtype=np.uint8)).save(folder / f"{i}.png")
    (tmp_path / "imgs" / "broken.png").write_bytes(b"nope")
    result = run("train", "--dataset", str(tmp_path / "imgs"), "--epochs", "1", "--image-size", "28",
                 "--hidden-dim", "16", "--json")
    assert result.returncode == 0, result.stderr
    assert "Imported 12 images" in result.stderr and "broken.png: not an image" in result.stderr
    assert result.stderr.index("Imported") < result.stderr.index("# folder:")
    assert json.loads(result.stdout)["epoch"] == 1
    missing = run("train", "--dataset", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "neither a built-in dataset" in missing.stderr

"""The benchmark's ceiling: FLOPs per image counted by torch's flop counter, the measured GEMM
throughput, and 'vaegui bench' printing each loop's share of it."""

from __future__ import annotations

import math
import os
import re
from types import SimpleNamespace

import pytest
import torch

from models.benchmark import CPU_FEATURES, ceiling_share, cpu_description, flops_per_image, gemm_ceiling
from models.config import ModelConfig, TrainConfig
from models.trainer import training_device
from vaegui.bench import WINDOW_STATES, epoch_rates, gui_benchmark
from vaegui.cli import main


def test_flops_per_image_of_the_mlp_and_the_conv_net():
    # 784-400-20: forward 2·(784·400 + 400·40 + 20·400 + 400·784) FLOPs, backward twice that less
    # the first layer's input gradient (2·784·400)
    forward = 2 * (784 * 400 + 400 * 40 + 20 * 400 + 400 * 784)
    assert flops_per_image(ModelConfig()) == pytest.approx(3 * forward - 2 * 784 * 400)
    assert flops_per_image(ModelConfig(arch="conv", hidden_dim=256)) == pytest.approx(15.5e6, rel=0.01)


def test_the_gemm_ceiling_is_measured_in_each_precision():
    fp32 = gemm_ceiling(torch.float32, n=256, repeats=2)
    bf16 = gemm_ceiling(torch.bfloat16, n=256, repeats=2)
    assert math.isfinite(fp32) and fp32 > 1e8 and math.isfinite(bf16) and bf16 > 0
    assert ceiling_share(1000.0, 3.28e6, 6.56e9) == pytest.approx(0.5)


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="the CPU's flags are read from /proc/cpuinfo here")
def test_the_cpu_line_names_the_features_the_kernel_reports():
    line = cpu_description()
    flags = set()
    for row in open("/proc/cpuinfo"):
        if row.startswith("flags"):
            flags.update(row.split(":", 1)[1].split())
    for flag, name in CPU_FEATURES:
        assert (name in line) == (flag in flags), (name, line)
    assert f"{os.cpu_count()} cores" in line
    assert f"torch kernels {torch.backends.cpu.get_cpu_capability()}" in line
    assert ("bf16 matmuls native" in line) == torch.ops.mkldnn._is_mkldnn_bf16_supported()


def test_bench_prints_each_loop_beside_its_share_of_the_ceiling(capsys):
    assert main(["bench", "--dataset", "digits", "--epochs", "1", "--seeds", "1", "--hidden-dim", "32"]) == 0
    out = capsys.readouterr().out
    assert "MFLOP per image per step" in out and "# GEMM ceiling (best 2048x2048 matmul): fp32" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("0 "))
    assert row.count("%") == 2
    assert "minor page faults per step (median): DataLoader" in out
    if training_device("auto").type != "cpu":  # a GPU trains through autograd
        assert "# CPU:" not in out
        assert "backward autograd" in out and "the trainer through autograd" not in out
        return
    assert f"# CPU: {cpu_description()}" in out
    # on the CPU the default model's trainer takes the written-out backward, measured against autograd too
    assert "backward written out" in out
    assert re.search(r"the trainer through autograd .*: [\d,]+ samples/s \(\d+%\); the written-out backward is "
                     r"\d+\.\d\dx that", out)


def test_bench_scale_reports_epoch_time_and_each_process_peak_memory(capsys):
    from models.state import shm_free_bytes

    assert main(["bench", "--scale", "300", "600", "--hidden-dim", "16", "--latent-dim", "2", "--epochs", "1",
                 "--gui"]) == 0
    out = capsys.readouterr().out
    headless, window = out.split("# in the window")
    rows = [line.split() for line in headless.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["300", "600"]
    assert all(float(r[2].replace(",", "")) > 50 for r in rows)  # peak RSS, MB: torch alone takes more
    assert "epoch time x" in out
    # the window trained one epoch at each size; both processes' memory, and how the dataset went over
    rows = [line.split(maxsplit=5) for line in window.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["300", "600"]
    assert all(float(v.replace(",", "")) > 50 for r in rows for v in r[2:5])
    assert all(r[5] == "shared memory" for r in rows) or shm_free_bytes() < 2**24


def test_bench_cuda_without_a_gpu_says_so_and_stops(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "--cuda", "--dataset", "digits"]) == 2
    assert "no CUDA GPU is visible to torch here" in capsys.readouterr().err
    assert main(["bench", "--cuda", "--dataset", "digits", "--device", "cuda:7"]) == 2
    assert "device 'cuda:7' is not usable here" in capsys.readouterr().err


def test_bench_cuda_rows_run_on_the_cpu_then_in_the_window(capsys):
    assert main(["bench", "--cuda", "--device", "cpu", "--dataset", "shapes:200", "--epochs", "1", "--seeds", "1",
                 "--gui-epochs", "1", "--hidden-dim", "16"]) == 0
    out = capsys.readouterr().out
    assert "# matmul peak (best 2048x2048 product): fp32" in out
    rows = [line for line in out.splitlines() if "DataLoader loop" in line or "vaegui Trainer" in line]
    mlp, conv = [r for r in rows if "MLP" in r], [r for r in rows if "conv" in r]
    assert len(mlp) == len(conv) in (2, 3)  # the plain loop, the trainer in fp32 (and in bf16 where native)
    assert all(r.count("%") == 1 and r.split()[-2].endswith("x") for r in rows)
    assert "the window's training process ran on cpu" in out and "GUI training:" in out


def test_epoch_rates_recover_each_epoch_from_the_running_mean():
    # 100 images per epoch: epochs of 0.01, 0.02 and 0.01 s of steps, reported as means since the start
    ends = [SimpleNamespace(epoch=k, samples_per_s=100 * k / t) for k, t in ((1, 0.01), (2, 0.03), (3, 0.04))]
    assert epoch_rates(ends, 100) == pytest.approx([10_000, 5_000, 10_000])


def test_bench_gui_trains_in_the_window_interacting_idle_and_minimised(capsys):
    assert main(["bench", "--gui", "--dataset", "digits", "--epochs", "1", "--seeds", "1", "--hidden-dim", "16",
                 "--gui-epochs", "2"]) == 0
    out = capsys.readouterr().out
    table = out.split("window CPU")[1].splitlines()[1:4]
    assert [row.split()[0] for row in table] == list(WINDOW_STATES)
    for row in table:
        rate, ratio, cpu = row.split()[1], row.split()[2], row.split()[5]
        assert float(rate.replace(",", "")) > 0 and ratio.endswith("x") and cpu.endswith("%")
    assert "slider-to-image latency over" in out and "the window minimised" in out
    with pytest.raises(ValueError, match="unknown window state"):
        gui_benchmark("digits", ModelConfig(), TrainConfig(), 1.0, "hidden")

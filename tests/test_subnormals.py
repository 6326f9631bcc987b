"""Training processes flush subnormal floats to zero, so that Adam's moments of weights whose
gradient stays zero do not stay subnormal (and slow every step down) for the rest of the run."""

from __future__ import annotations

import subprocess
import sys

import pytest

# one weight vector of 100,000 entries, trained by fused Adam (as the trainer's) on one step of a tiny
# gradient then 300 steps of an exactly zero gradient: the first moment decays by β1 = 0.9 per step past
# 1.18e-38; the nonzero entries of the moment are counted in a process with the CPU's defaults, then in
# one that called flush_subnormals() before its two intra-op threads started; and 2**20 subnormal inputs
# to one multiplication, split across both threads, counted where they are not read as zero
SCRIPT = """
import sys
import torch
from models.subnormals import flush_subnormals

flushed = flush_subnormals() if sys.argv[1] == "flush" else None
torch.set_num_threads(2)
w = torch.nn.Parameter(torch.zeros(100_000))
opt = torch.optim.Adam([w], lr=1e-3, fused=True)
w.grad = torch.full_like(w, 1e-30)
opt.step()
w.grad = torch.zeros_like(w)
for _ in range(300):
    opt.step()
bits = opt.state[w]["exp_avg"].view(torch.int32)  # read as integers: the modes would read a subnormal as zero
subnormal = ((bits & 0x7F800000) == 0) & ((bits & 0x007FFFFF) != 0)
x = torch.full((2**20,), 1e-39)
print(int((bits != 0).sum()), int(subnormal.sum()), int(((x * 1.0).view(torch.int32) != 0).sum()), flushed)
"""


def run(mode: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                          check=True).stdout.split()


def test_adam_moments_of_zero_gradients_reach_zero_in_a_training_process():
    nonzero, subnormal, not_flushed, _ = run("default")
    if int(nonzero) == 0:
        pytest.skip("this CPU flushes subnormals by default")
    # with the CPU's defaults the decayed moments stay at the smallest subnormal for good
    assert int(subnormal) == int(nonzero) == 100_000 and int(not_flushed) == 2**20
    nonzero, subnormal, not_flushed, flushed = run("flush")
    if flushed != "True":
        pytest.skip("this CPU has no flush-to-zero mode")
    assert int(nonzero) == int(subnormal) == 0
    assert int(not_flushed) == 0  # both intra-op threads read subnormal inputs as zero


# the console script's train and sweep, then main() called as a library, each in a fresh process: does a
# subnormal input to a two-thread multiplication still read as a subnormal afterwards?
CLI = """
import sys
import torch
from vaegui import cli

torch.set_num_threads(2)
run = cli.entry if sys.argv[1] == "entry" else cli.main
command = sys.argv[2:]
assert run(command) == 0
x = torch.full((2**20,), 1e-39)
print(int(((x * 1.0).view(torch.int32) != 0).sum()))
"""

TINY = ["--dataset", "digits", "--epochs", "1", "--latent-dim", "2", "--hidden-dim", "16"]


@pytest.mark.parametrize("command", [["train", *TINY], ["sweep", "--beta", "1", "--seeds", "0", *TINY]])
def test_the_console_scripts_train_and_sweep_flush_subnormals_and_main_leaves_the_mode_alone(command, tmp_path):
    if run("flush")[3] != "True":
        pytest.skip("this CPU has no flush-to-zero mode")
    if command[0] == "sweep":
        command = [*command, "--out", str(tmp_path / "sweep")]

    def kept(how: str) -> int:
        out = subprocess.run([sys.executable, "-c", CLI, how, *command], capture_output=True, text=True,
                             check=True, cwd=tmp_path).stdout.split()
        return int(out[-1])

    assert kept("entry") == 0  # `vaegui train` and `vaegui sweep`: a process that exists to train
    assert kept("main") == 2**20  # called inside another process: its mode stays as it was

"""Subnormal floats in a training process on the CPU.

Adam's first moment ``m ← β1·m + (1 − β1)·g`` (Kingma & Ba 2015, Algorithm 1) of a weight
whose gradient is exactly zero step after step decays geometrically into the subnormal
range (below 1.18e-38 in float32) and stays there: round-to-nearest maps 0.9 × the
smallest subnormal back to the smallest subnormal, so it never reaches zero. The VAE of
Kingma & Welling (2014) on MNIST has many such weights: the encoder's weights from the
border pixels that are black in every image, and every weight of a hidden ReLU unit that
no image activates (measured after 40 epochs of the default model on 4,000 digits: 146 of
the 400 hidden units, about 90,000 of Adam's moments subnormal). x86 CPUs compute on
subnormals in microcode, about a hundred times slower than on normal numbers, so the
optimizer's step slows the whole run down: measured on this project's machine (Xeon with
AVX-512, torch 2.13 CPU, batch 128) the default model fell from 31,000 to 23,000 samples/s
(bf16 autocast) and from 25,000 to 18,000 (fp32) after about 25 epochs, 1 thread; with
subnormals flushed it stayed at 31,000 and 24,500.

:func:`flush_subnormals` sets the CPU's flush-to-zero and denormals-are-zero modes
(``torch.set_flush_denormal``), which change results only where a value below 1.18e-38
would have been kept. The mode belongs to each thread and a new thread takes its creator's,
so a process sets it before its first parallel operation starts the intra-op threads; the
library never calls it by itself (as :func:`models.allocator.keep_freed_memory`): the
processes that exist only to train do (the window's training process, the benchmark's
trainer, and ``vaegui train`` and ``vaegui sweep`` run as commands, through
:func:`vaegui.cli.entry`). The same commands called as a library (``vaegui.cli.main`` in a
test or a notebook) leave that process's floating-point mode alone.
"""

from __future__ import annotations

import torch


def flush_subnormals() -> bool:
    """Flush subnormal float results to zero and read subnormal inputs as zero on this
    thread and on the threads it starts from now on (``torch.set_flush_denormal(True)``).

    Returns:
        True where the CPU supports the modes (x86 with SSE3 and later); False elsewhere,
        which changes nothing. Calling it again is harmless.
    """
    return bool(torch.set_flush_denormal(True))

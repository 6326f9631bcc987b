"""Training processes keep the memory a step frees for the next step (glibc's malloc
thresholds), instead of faulting it in again every step."""

from __future__ import annotations

import subprocess
import sys

import pytest

from models.allocator import _glibc

# six 16 MB blocks allocated, written and freed ten times: the pattern of a training step's
# activations; the process's minor page faults counted with the C library's defaults, then after
# keep_freed_memory()
SCRIPT = """
import torch
from models.allocator import keep_freed_memory, minor_page_faults

def faults():
    before = minor_page_faults()
    for _ in range(10):
        blocks = [torch.ones(4 * 1024 * 1024) for _ in range(6)]
        del blocks
    return minor_page_faults() - before

faults()
default = faults()
kept = keep_freed_memory()
faults()
print(default, faults(), kept)
"""


@pytest.mark.skipif(_glibc() is None, reason="the C library is not glibc: keep_freed_memory() changes nothing")
def test_a_process_that_keeps_freed_memory_stops_faulting_it_in_again():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout.split()
    default, kept_faults, kept = int(out[0]), int(out[1]), out[2]
    assert kept == "True"
    if default < 10 * 4096:  # every page of every block: 245,760 (4 KiB pages); fewer: huge pages or another allocator
        pytest.skip(f"this C library faulted only {default} pages in with its defaults")
    assert kept_faults < default / 20

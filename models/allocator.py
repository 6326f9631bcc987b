"""The C allocator of a training process.

PyTorch takes the memory of CPU tensors from the C library's ``malloc``. glibc hands a
block of 128 KiB or more back to the operating system when it is freed (a block it
mapped is unmapped, and the heap's top is trimmed beyond a threshold that follows the
largest block freed so far), so a training step that frees its activations makes the
next step fault their pages in again. Measured on this project's machine (glibc 2.36,
torch 2.13 CPU, batch 128): about 31,000 minor page faults per step for the conv VAE at
64×64 pixels, about 800 at 28×28. :func:`keep_freed_memory` sets glibc's two
thresholds (``mallopt(M_MMAP_THRESHOLD)`` and ``mallopt(M_TRIM_THRESHOLD)``) so that
freed blocks stay in the process for the next step: what PyTorch's CPU performance
tuning guide reaches by loading jemalloc or tcmalloc instead.

It changes the whole process, so the library never calls it by itself: the processes
that exist to train do (``vaegui train``, ``vaegui sweep``, the window's training
process); a script or notebook that trains with :class:`~models.trainer.Trainer` may
call it too. The cost: the process keeps its peak memory until it ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

#: glibc's ``mallopt`` parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: blocks below this size come from the heap, whose freed space is reused (bytes)
MMAP_THRESHOLD = 256 * 1024**2
#: freed space at the heap's top is kept up to this size (bytes)
TRIM_THRESHOLD = 1024**3


@functools.lru_cache(maxsize=1)
def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()  # glibc only: musl and others have no such function
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Keep memory freed by one training step in this process for the next (glibc's
    ``mallopt``: blocks under 256 MiB from the heap, up to 1 GiB of freed space kept).

    Returns:
        True when both thresholds were set; False where the C library is not glibc (macOS,
        Windows, musl), which changes nothing. Calling it again is harmless.
    """
    libc = _glibc()
    if libc is None:
        return False
    # M_TRIM_THRESHOLD alone would make things worse: setting either turns glibc's
    # self-adjusting thresholds off, and the default 128 KiB mmap threshold would then hold
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def minor_page_faults() -> int:
    """Minor page faults of this process so far (0 where ``resource`` does not exist)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

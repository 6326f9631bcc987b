"""``vaegui bench --scale``: epoch time and peak memory as the training set grows (Shapes at
5,000, 20,000 and 60,000 images by default), each size trained by ``vaegui train`` in its own
process so that its peak resident memory is its own (``os.wait4``'s ``ru_maxrss``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile


def measure(size: int, options: list[str], epochs: int) -> dict:
    """Train ``shapes:size`` for ``epochs`` in a child process: ``{"size", "epoch_s"`` (the last
    epoch, its evaluation included), ``"samples_per_s", "peak_rss_mb", "store_mb"}``.

    Raises:
        RuntimeError: when the child fails (its last error line).
    """
    cmd = [sys.executable, "-m", "vaegui", "train", "--dataset", f"shapes:{size}", "--epochs", str(epochs),
           "--json", *options]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _pid, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS, not the running maximum
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        lines, errors = out.read().splitlines(), err.read().splitlines()
    ends = [json.loads(line) for line in lines if line.startswith("{")]
    if code or not ends:
        last = [line for line in errors if line.strip()][-1:] or [f"exit status {code}"]
        raise RuntimeError(f"shapes:{size}: {last[0]}")
    return {"size": size, "epoch_s": ends[-1]["seconds"], "samples_per_s": ends[-1]["samples_per_s"],
            "peak_rss_mb": usage.ru_maxrss / 1024, "store_mb": size * 64 * 64 / 2**20}


def run(sizes: list[int], options: list[str], epochs: int = 2) -> int:
    """Print the scale table, sizes ascending; 1 with a message when a size fails."""
    print(f"# Shapes 64x64, uint8 store; 'vaegui train {' '.join(options)} --epochs {epochs}' per size in its own "
          "process; the last epoch's time (training and the test split's evaluation) and the process's peak RSS")
    print(f"{'images':>8}  {'uint8 store MB':>14}  {'peak RSS MB':>11}  {'epoch s':>8}  {'s per 10k':>9}  "
          f"{'samples/s':>9}")
    rows = []
    for size in sorted(sizes):
        try:
            r = measure(size, options, epochs)
        except RuntimeError as exc:
            print(f"vaegui bench: {exc}", file=sys.stderr)
            return 1
        rows.append(r)
        print(f"{size:>8,}  {r['store_mb']:>14.1f}  {r['peak_rss_mb']:>11,.0f}  {r['epoch_s']:>8.2f}  "
              f"{1e4 * r['epoch_s'] / size:>9.2f}  {r['samples_per_s']:>9,.0f}", flush=True)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(f"epoch time x{last['epoch_s'] / first['epoch_s']:.1f} for x{last['size'] / first['size']:.0f} images "
              f"(linear: the same s per 10k); peak RSS +{last['peak_rss_mb'] - first['peak_rss_mb']:,.0f} MB for "
              f"+{last['store_mb'] - first['store_mb']:,.0f} MB of uint8 store")
    return 0

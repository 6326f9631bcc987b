"""Writing metrics to CSV (the csv module), with the figure's provenance as a header comment."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence


def save_metrics_csv(path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[object]],
                     comments: Sequence[str] = ()) -> int:
    """Write a CSV file: ``comments`` as ``# `` lines first (what made the run: app version,
    model fingerprint, dataset, epoch, seed; ``pandas.read_csv(..., comment="#")`` skips
    them), then a header line and the rows. Returns the number of data rows written.

    Raises:
        OSError: the file cannot be written.
    """
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        for line in comments:
            fh.write("# " + " ".join(str(line).split()) + "\n")
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            n += 1
    return n

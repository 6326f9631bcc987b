"""Writing a latent map: CSV, NPZ, and TensorBoard's Embedding Projector format.

Each writer is atomic where it writes one file (a temporary file renamed into place);
the projector folder's files are written one by one into a folder that is created.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from models.checkpoint import atomic_write, check_folder_writable, check_writable
from models.data import ImageDataset, as_float
from models.embedding import LatentMap

#: the Projector's largest sprite image, pixels per side
SPRITE_MAX = 8192


def _header(m: LatentMap) -> list[str]:
    e = m.encoded
    d = e.codes.shape[1]
    cols = ["index", "split", "label", "label_name", *e.factor_names]
    cols += [f"mu_{k}" for k in range(d)]
    if e.points == "sample":
        cols += [f"z_{k}" for k in range(d)]
    return cols + ["kl_nats", "neg_elbo_nats", "x", "y"]


def map_table(m: LatentMap) -> tuple[list[str], list[list]]:
    """The map as a table: the header and one row per point (index within its split,
    split, label, factors, ``mu``, the sample z when sampled, KL and −ELBO in nats,
    the projected x and y)."""
    e, p = m.encoded, m.projection
    names = e.class_names
    rows = []
    for i in range(len(e)):
        label = int(e.labels[i])
        row = [int(e.index[i]), "train" if e.source[i] else "test", label,
               names[label] if 0 <= label < len(names) else str(label)]
        if e.factors is not None:
            row += [float(v) for v in e.factors[i]]
        row += [float(v) for v in e.mu[i]]
        if e.points == "sample":
            row += [float(v) for v in e.codes[i]]
        row += [float(e.kl[i]), float(e.neg_elbo[i]), float(p.points[i, 0]), float(p.points[i, 1])]
        rows.append(row)
    return _header(m), rows


def write_csv(path: str | os.PathLike[str], m: LatentMap) -> Path:
    """Write the map as CSV (one header line, N rows; see :func:`map_table`).

    Raises:
        OSError: the file cannot be written (nothing is left half-written).
    """
    target = check_writable(path)
    header, rows = map_table(m)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write(target, buf.getvalue().encode("utf-8"))
    return target


def write_npz(path: str | os.PathLike[str], m: LatentMap) -> Path:
    """Write the map as NPZ: ``index``, ``split`` (0 test, 1 train), ``labels``,
    ``class_names``, ``mu`` ``(N, D)``, ``codes`` ``(N, D)``, ``kl`` and ``neg_elbo``
    (nats), ``projection`` ``(N, 2)``, ``projection_kind``, and ``factors`` ``(N, F)``
    with ``factor_names`` when the data has them.

    Raises:
        OSError: the file cannot be written.
    """
    target = check_writable(path)
    e, p = m.encoded, m.projection
    arrays = {"index": e.index, "split": e.source, "labels": e.labels, "class_names": np.array(e.class_names),
              "mu": e.mu, "codes": e.codes, "kl": e.kl, "neg_elbo": e.neg_elbo, "projection": p.points,
              "projection_kind": np.array(p.kind)}
    if e.factors is not None:
        arrays["factors"] = e.factors
        arrays["factor_names"] = np.array(e.factor_names)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(target, buf.getvalue())
    return target


def sprite_layout(n: int, tile: int) -> tuple[int, int]:
    """``(cells per side, thumbnail size)`` of a Projector sprite for ``n`` images of
    ``tile`` pixels: a square grid, thumbnails shrunk so the sprite stays ≤ 8192 px."""
    side = max(1, math.ceil(math.sqrt(n)))
    return side, max(1, min(tile, SPRITE_MAX // side))


def write_projector(folder: str | os.PathLike[str], m: LatentMap, dataset: ImageDataset,
                    tensor_name: str = "vaegui_mu") -> Path:
    """Write the map for TensorBoard's Embedding Projector: ``tensors.tsv`` (``mu``,
    one row per point), ``metadata.tsv`` (a header, then index, split, label and
    factors), ``sprite.png`` (the images, a square grid ≤ 8192 px) and
    ``projector_config.pbtxt``; open with ``tensorboard --logdir FOLDER`` or load the
    TSVs at projector.tensorflow.org.

    Raises:
        OSError: the folder cannot be created or written.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    check_folder_writable(out)
    e = m.encoded
    lines = ["\t".join(f"{v:.6g}" for v in row) for row in e.mu]
    atomic_write(out / "tensors.tsv", ("\n".join(lines) + "\n").encode())
    names = e.class_names
    header = ["index", "split", "label", *e.factor_names]
    meta = ["\t".join(header)]
    for i in range(len(e)):
        label = int(e.labels[i])
        row = [str(int(e.index[i])), "train" if e.source[i] else "test",
               names[label] if 0 <= label < len(names) else str(label)]
        if e.factors is not None:
            row += [f"{v:g}" for v in e.factors[i]]
        meta.append("\t".join(row))
    atomic_write(out / "metadata.tsv", ("\n".join(meta) + "\n").encode())
    c, h, _w = dataset.image_shape
    side, thumb = sprite_layout(len(e), h)
    sprite = Image.new("RGB" if c == 3 else "L", (side * thumb, side * thumb), 0)
    for i in range(len(e)):
        x = dataset.test_x if e.source[i] == 0 else dataset.train_x
        img = (as_float(x[int(e.index[i])].clone()).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        tile = Image.fromarray(img[0] if c == 1 else img.transpose(1, 2, 0))
        if thumb != h:
            tile = tile.resize((thumb, thumb), Image.Resampling.BILINEAR)
        r, col = divmod(i, side)
        sprite.paste(tile, (col * thumb, r * thumb))
    buf = io.BytesIO()
    sprite.save(buf, format="PNG")
    atomic_write(out / "sprite.png", buf.getvalue())
    config = (
        "embeddings {\n"
        f'  tensor_name: "{tensor_name}"\n'
        f"  tensor_shape: {len(e)}\n  tensor_shape: {e.mu.shape[1]}\n"
        '  tensor_path: "tensors.tsv"\n'
        '  metadata_path: "metadata.tsv"\n'
        f'  sprite {{\n    image_path: "sprite.png"\n'
        f"    single_image_dim: {thumb}\n    single_image_dim: {thumb}\n  }}\n"
        "}\n"
    )
    atomic_write(out / "projector_config.pbtxt", config.encode())
    return out

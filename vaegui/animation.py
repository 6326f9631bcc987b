"""Animations of the latent space: a traversal (each dimension's sweep, or every
dimension tiled as in the β-VAE papers), an interpolation A → B → A, and samples or the
manifold at fixed z over training (one frame per checkpoint). Frames are
:class:`~vaegui.figures.GridFigure` s, drawn like the still exports; they are written as
GIF or animated PNG through Pillow, or MP4 through imageio-ffmpeg's ffmpeg (the ``video`` extra).
Qt-free: the window's dialog and ``vaegui animate`` share it.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from models.checkpoint import atomic_write, read_checkpoint
from models.latent import interpolate, manifold_latents, prior_samples
from vaegui.figrender import FigureStyle, render_figure
from vaegui.figures import Decode, GridFigure, signed

FORMATS = (".gif", ".png", ".mp4")


class MissingVideo(RuntimeError):
    """MP4 needs the optional ``video`` extra (imageio + imageio-ffmpeg)."""


def bounced(frames: list, bounce: bool) -> list:
    """``frames`` then, with ``bounce``, back again without repeating the ends (a smooth loop)."""
    return frames + frames[-2:0:-1] if bounce and len(frames) > 2 else list(frames)


def traversal_frames(decode: Decode, base: torch.Tensor, dims: Sequence[int], values: torch.Tensor,
                     layout: str = "tiled", bounce: bool = True) -> list[GridFigure]:
    """Frames of a latent traversal (Higgins et al. 2017; disentanglement_lib's traversal GIFs).

    ``layout="tiled"``: one frame per value, every dimension in ``dims`` shown side by side
    (a near-square grid), each at that value with the others at ``base`` ``(D,)``.
    ``layout="sequence"``: the dimensions one after another, one image per frame.
    Each tile is labelled with its dimension and value.

    Raises:
        ValueError: an unknown layout, no dimensions, or one outside 0..D-1.
    """
    d = len(base)
    if not dims or any(not 0 <= k < d for k in dims):
        raise ValueError(f"dimensions must lie in 0..{d - 1}, got {list(dims)}")
    if layout not in ("tiled", "sequence"):
        raise ValueError(f"layout must be 'tiled' or 'sequence', got {layout!r}")
    values = [float(v) for v in values]
    if layout == "sequence":
        frames = []
        for k in dims:
            sweep = []
            for v in values:
                z = base.float().clone()[None]
                z[0, k] = v
                sweep.append(GridFigure(kind="traversal", images=decode(z), rows=1, cols=1,
                                        tile_labels=[f"z{k} = {signed(v)}"], latents=z.numpy()))
            frames += bounced(sweep, bounce)
        return frames
    cols = math.ceil(math.sqrt(len(dims)))
    rows = math.ceil(len(dims) / cols)
    frames = []
    for v in values:
        z = base.float().repeat(len(dims), 1)
        for r, k in enumerate(dims):
            z[r, k] = v
        frames.append(GridFigure(kind="traversal", images=decode(z), rows=rows, cols=cols,
                                 tile_labels=[f"z{k} = {signed(v)}" for k in dims], latents=z.numpy()))
    return bounced(frames, bounce)


def interpolation_frames(decode: Decode, mu_a: torch.Tensor, mu_b: torch.Tensor, steps: int, mode: str = "linear",
                         bounce: bool = True) -> list[GridFigure]:
    """Frames of the path from ``mu_a`` to ``mu_b`` (``(D,)``, linear or slerp, White 2016),
    and back with ``bounce`` (A → B → A); each frame labelled with its fraction t."""
    z = interpolate(mu_a, mu_b, steps, mode)
    images = decode(z)
    t = np.linspace(0.0, 1.0, steps)
    frames = [GridFigure(kind="interpolation", images=images[i : i + 1], rows=1, cols=1,
                         tile_labels=[f"t = {t[i]:.2f}"], latents=z[i : i + 1].numpy()) for i in range(steps)]
    return bounced(frames, bounce)


def checkpoint_files(sources: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The ``.vae`` files named, or found in the folders named (autosaves, run folders).

    Raises:
        ValueError: no checkpoint among them.
    """
    files: list[Path] = []
    for src in sources:
        p = Path(src)
        files += sorted(p.rglob("*.vae")) if p.is_dir() else [p]
    if not files:
        raise ValueError(f"no .vae checkpoints in {', '.join(map(str, sources))}")
    return files


def training_frames(sources: Sequence[str | os.PathLike[str]], what: str, rows: int = 8, cols: int = 8,
                    seed: int = 0, grid: int = 10, dims: tuple[int, int] = (0, 1),
                    progress: Callable[[float, str], None] | None = None,
                    stopped: Callable[[], bool] | None = None) -> list[GridFigure]:
    """One frame per checkpoint, in training order (by the epoch each holds, then name):
    ``what="samples"`` decodes the same prior draws z (``rows × cols``, ``seed``) with each
    checkpoint's weights; ``what="manifold"`` the same G×G manifold (Kingma & Welling 2014,
    Fig. 4). Each frame is labelled with its epoch; its ``params["checkpoint"]`` names the file.
    Each file is read once; files holding the same training position (a run folder's
    latest, best and every-N checkpoints of one epoch) give one frame.

    Raises:
        ValueError: no checkpoints, checkpoints of different latent sizes or image shapes,
            an unknown ``what``; :class:`models.checkpoint.CheckpointError` for a bad file.
    """
    from models.vae import build_model

    if what not in ("samples", "manifold"):
        raise ValueError(f"over training, what must be 'samples' or 'manifold', got {what!r}")
    paths = checkpoint_files(sources)
    frames, first, seen = [], None, set()
    for i, path in enumerate(paths):
        if stopped is not None and stopped():
            break
        ckpt = read_checkpoint(path)
        position = ckpt.info.get("position", {})
        at = (position.get("epoch"), position.get("step"), ckpt.info.get("train_config", {}).get("seed"))
        if None not in at[:2] and at in seen:  # a run folder's latest, best and epoch-N files of one state
            continue
        seen.add(at)
        cfg = ckpt.model_config
        if cfg.discrete:
            raise ValueError(f"{path.name} holds a VQ-VAE: animations over training are for Gaussian latents (its "
                             "code prior changes with every checkpoint)")
        key = (cfg.latent_dim, tuple(cfg.input_shape))
        if first is None:
            first = key
        elif key != first:
            raise ValueError(f"{path.name} has latent size {key[0]} and images {key[1]}, the first checkpoint "
                             f"{first[0]} and {first[1]}: animate checkpoints of one run")
        model = build_model(cfg).eval()
        model.load_state_dict(ckpt.weights)
        labels = torch.zeros(1, dtype=torch.long) if cfg.conditional else None

        def decode(z: torch.Tensor, model=model, labels=labels) -> np.ndarray:
            with torch.inference_mode():
                return model.decode(z.float(), None if labels is None else labels.expand(len(z))).numpy()

        if what == "samples":
            z = prior_samples(rows * cols, cfg.latent_dim, seed)
            shape = (rows, cols)
        else:
            z = manifold_latents(grid, cfg.latent_dim, dims if cfg.latent_dim > 2 else (0, 1))
            shape = (grid, grid)
        frames.append(GridFigure(kind=what, images=decode(z), rows=shape[0], cols=shape[1],
                                 latents=z.numpy(), caption=f"epoch {ckpt.epochs_done}",
                                 params={"checkpoint": str(path), "epoch": ckpt.epochs_done}))
        if progress is not None:
            progress((i + 1) / len(paths), f"decoded {path.name} (epoch {ckpt.epochs_done})")
    return sorted(frames, key=lambda f: (f.params["epoch"], Path(f.params["checkpoint"]).name))


def render_frames(frames: Sequence[GridFigure], style: FigureStyle) -> list[Image.Image]:
    """Draw every frame; frames of different sizes are padded (white, centred) to the largest."""
    images = [render_figure(f, replace(style, caption=f.caption if style.labels else "")) for f in frames]
    w = max(im.size[0] for im in images)
    h = max(im.size[1] for im in images)
    out = []
    for im in images:
        if im.size != (w, h):
            canvas = Image.new(im.mode, (w, h), 255 if im.mode == "L" else (255, 255, 255))
            canvas.paste(im, ((w - im.size[0]) // 2, (h - im.size[1]) // 2))
            im = canvas
        out.append(im)
    return out


def save_animation(path: str | os.PathLike[str], images: Sequence[Image.Image], fps: float = 10.0,
                   loop: int = 0) -> tuple[int, int, int]:
    """Write frames as ``.gif`` or ``.png`` (animated PNG) through Pillow, or ``.mp4`` (H.264,
    through imageio-ffmpeg; sizes rounded up to even numbers with white, as the codec needs).
    ``loop``: 0 plays forever, n plays n times. Written atomically. Returns
    ``(frames, width, height)``.

    Raises:
        ValueError: no frames, fps outside 0.1..100, loop < 0, or another suffix.
        MissingVideo: MP4 without imageio-ffmpeg (``pip install 'vaegui[video]'``).
        OSError / :class:`models.checkpoint.CheckpointError`: the file cannot be written.
    """
    path = os.fspath(path)
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: choose a .gif, .png (animated) or .mp4 file")
    if not images:
        raise ValueError("there are no frames to write")
    if not 0.1 <= fps <= 100 or loop < 0:
        raise ValueError(f"fps must lie in 0.1..100 and loop be ≥ 0, got {fps}, {loop}")
    w, h = images[0].size
    duration = int(round(1000.0 / fps))
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401 - ships the ffmpeg binary
        except ImportError as exc:
            raise MissingVideo("MP4 needs imageio-ffmpeg: pip install 'vaegui[video]' "
                               "(GIF and animated PNG need nothing more)") from exc
        ew, eh = w + w % 2, h + h % 2
        stack = np.full((len(images), eh, ew, 3), 255, dtype=np.uint8)
        for i, im in enumerate(images):
            stack[i, :h, :w] = np.asarray(im.convert("RGB"))
        tmp = f"{path}.part.mp4"
        try:
            _write_mp4(tmp, stack, fps)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return len(images), ew, eh
    buf = io.BytesIO()
    first, rest = images[0], list(images[1:])
    kwargs = {"save_all": True, "append_images": rest, "duration": duration, "loop": loop}
    if suffix == ".gif":
        first.save(buf, format="GIF", optimize=False, disposal=1, **kwargs)
    else:
        first.save(buf, format="PNG", default_image=False, **kwargs)
    atomic_write(path, buf.getvalue())
    return len(images), w, h


def _write_mp4(path: str, stack: np.ndarray, fps: float) -> None:
    """H.264 in yuv420p (what every player takes) through imageio-ffmpeg's ffmpeg."""
    import imageio_ffmpeg

    n, h, w, _ = stack.shape
    writer = imageio_ffmpeg.write_frames(path, (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=1, quality=8)
    writer.send(None)
    for frame in stack:
        writer.send(np.ascontiguousarray(frame))
    writer.close()

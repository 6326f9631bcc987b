"""``vaegui export`` and ``vaegui animate``: a trained model's grids and animations,
headless, drawn by the same code as the window's exports (:mod:`vaegui.figures`,
:mod:`vaegui.figrender`, :mod:`vaegui.animation`), so a PNG written here reopens in the
window with its latents."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

WHAT = ("manifold", "traversal", "interpolation", "samples")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="the images of the interpolation (default: the model's dataset)")
    p.add_argument("--upscale", type=int, default=4, help="integer upscale of every tile (default 4)")
    p.add_argument("--padding", type=int, default=2, help="pixels between tiles (default 2)")
    p.add_argument("--labels", action="store_true", help="draw row, column and tile labels")
    p.add_argument("--title", default="", help="a title line above the grid")
    p.add_argument("--caption", action="store_true", help="a caption line: model, dataset, epoch, seed")
    p.add_argument("--font-pt", type=float, default=9.0, help="font size of the labels in points (default 9)")
    p.add_argument("--dpi", type=int, default=150, help="dots per inch (text height and the PNG's pHYs; 150)")
    p.add_argument("--grid", type=int, default=20, help="manifold: images per side G (default 20)")
    p.add_argument("--dims", type=int, nargs=2, metavar=("I", "J"),
                   help="manifold: the two spanned dimensions (default: the two most active)")
    p.add_argument("--values", type=int, default=9, help="traversal: values per dimension (default 9)")
    p.add_argument("--range", type=float, default=3.0, help="traversal: values from -R to +R (default 3)")
    p.add_argument("--z", type=float, nargs="+", help="traversal: the held latent (default 0)")
    p.add_argument("--rows", type=int, default=8, help="samples: rows (default 8)")
    p.add_argument("--cols", type=int, default=8, help="samples: columns (default 8)")
    p.add_argument("--seed", type=int, default=0, help="samples: the seed of z ~ N(0, I) (default 0)")
    p.add_argument("--a", type=int, default=0, help="interpolation: test image A (default 0)")
    p.add_argument("--b", type=int, default=1, help="interpolation: test image B (default 1)")
    p.add_argument("--steps", type=int, default=10, help="interpolation: decoded points (default 10)")
    p.add_argument("--mode", choices=("linear", "slerp"), default="linear", help="interpolation path")
    p.add_argument("--label", type=int, default=0, help="conditional VAE: the label y to decode with (default 0)")


def add_figure_parsers(sub) -> None:
    """The ``export`` and ``animate`` sub-commands."""
    p = sub.add_parser("export", help="write a trained model's grid as PNG (labels, metadata)",
                       description="Decode a grid with a checkpoint's model and write it as PNG, with the latents "
                                   "of every tile in its text chunks (File > Open figure restores them).")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .vae file")
    p.add_argument("--what", choices=WHAT, required=True)
    p.add_argument("--out", required=True, metavar="FILE.png")
    _common(p)
    a = sub.add_parser("animate", help="write a traversal, interpolation or training animation (GIF, PNG, MP4)",
                       description="Animate a latent traversal, an interpolation A -> B -> A, or (with several "
                                   "checkpoints, or a folder of them) samples or the manifold over training.")
    a.add_argument("checkpoint", metavar="CHECKPOINT", nargs="+",
                   help="a .vae file; for --what samples/manifold, several files or a folder: one frame each")
    a.add_argument("--what", choices=WHAT, required=True)
    a.add_argument("--out", required=True, metavar="FILE", help="FILE.gif, FILE.png (animated) or FILE.mp4")
    a.add_argument("--fps", type=float, default=10.0, help="frames per second (default 10)")
    a.add_argument("--loop", type=int, default=0, help="plays: 0 forever (default), n times")
    a.add_argument("--no-bounce", action="store_true", help="do not play back to the start")
    a.add_argument("--layout", choices=("tiled", "sequence"), default="tiled",
                   help="traversal: every dimension at once (tiled) or one after another (sequence)")
    _common(a)


class _Loaded:
    """A checkpoint's model with what the figures need: decode, KL order, provenance."""

    def __init__(self, path: str, args):
        import torch

        from models.checkpoint import read_checkpoint
        from models.vae import build_model
        from vaegui.figures import file_sha256, weights_sha256

        self.ckpt = read_checkpoint(path)
        self.cfg = self.ckpt.model_config
        self.model = build_model(self.cfg).eval()
        self.model.load_state_dict(self.ckpt.weights)
        self.label = args.label if self.cfg.conditional else None
        if self.label is not None and not 0 <= self.label < self.cfg.n_classes:
            raise ValueError(f"--label must lie in 0..{self.cfg.n_classes - 1}")
        history = self.ckpt.info.get("history", [])
        self.kl = list(history[-1].get("kl_per_dim") or []) if history else []
        self.torch = torch
        t = self.ckpt.train_config
        self.info = {"weights_sha256": weights_sha256(self.model.state_dict()), "describe": self.cfg.describe(),
                     "model_config": self.cfg.to_dict(), "train_config": t.to_dict(), "seed": t.seed,
                     "dataset": self.ckpt.dataset_name, "epoch": self.ckpt.epochs_done,
                     "file": Path(path).name, "file_sha256": file_sha256(path)}

    def decode(self, z):
        with self.torch.inference_mode():
            labels = None if self.label is None else self.torch.full((len(z),), self.label, dtype=self.torch.long)
            return self.model.decode(z.float(), labels).numpy()

    def encode(self, images, labels):
        with self.torch.inference_mode():
            return self.model.encode(images.float(), labels if self.cfg.conditional else None)[0]

    def order(self) -> list[int]:
        """Dimensions by test KL, largest first (as the traversal panel sorts them)."""
        d = self.cfg.latent_dim
        return sorted(range(d), key=lambda k: -self.kl[k]) if len(self.kl) == d else list(range(d))

    def caption(self) -> str:
        from vaegui import __version__

        i = self.info
        return f"{i['describe']}; {i['dataset']}; epoch {i['epoch']}; training seed {i['seed']}; vaegui {__version__}"


def _style(args, loaded: _Loaded, fig_caption: str = ""):
    from vaegui.figrender import FigureStyle

    if args.upscale < 1 or args.padding < 0:
        raise ValueError("--upscale must be ≥ 1 and --padding ≥ 0")
    caption = f"{loaded.caption()}. {fig_caption}".strip() if args.caption else ""
    return FigureStyle(scale=args.upscale, padding=args.padding, labels=args.labels, title=args.title,
                       caption=caption, font_pt=args.font_pt, dpi=args.dpi)


def _ends(loaded: _Loaded, args):
    from vaegui.cli import load_any

    data = load_any(args.dataset or loaded.ckpt.dataset_name or "mnist5k", args, loaded.ckpt)
    n = len(data.test_x)
    for name in ("a", "b"):
        if not 0 <= getattr(args, name) < n:
            raise ValueError(f"--{name} must lie in 0..{n - 1} (the test split of {data.title})")
    x = data.test_x[[args.a, args.b]]
    mu = loaded.encode(x, data.test_y[[args.a, args.b]].long())
    return x.numpy(), mu


def build_figure(loaded: _Loaded, args):
    """The still ``--what`` asks for, as the window's panel would draw it."""
    import torch

    from vaegui.figures import (
        code_samples_figure,
        interpolation_figure,
        manifold_figure,
        samples_figure,
        traversal_figure,
    )

    d = loaded.model.latent_dim
    if loaded.cfg.discrete and args.what in ("manifold", "traversal"):
        raise ValueError(f"the VQ-VAE's latents are grids of discrete codes: no {args.what} (samples and "
                         "interpolation apply)")
    if loaded.cfg.discrete and args.what == "samples":
        return code_samples_figure(loaded.model, args.rows, args.cols, args.seed)
    if args.what == "manifold":
        if not loaded.cfg.has_prior:
            raise ValueError("a plain autoencoder has no prior p(z) to map the manifold through")
        dims = tuple(args.dims) if args.dims else (tuple(loaded.order()[:2]) if d > 2 else (0, 1))
        fig = manifold_figure(loaded.decode, args.grid, d, dims)
        fig.params.update(hold="zero", hold_index=0, label=loaded.label)
    elif args.what == "traversal":
        base = torch.tensor(args.z if args.z else [0.0] * d, dtype=torch.float32)
        if len(base) != d:
            raise ValueError(f"--z needs {d} values (the latent size), got {len(base)}")
        fig = traversal_figure(loaded.decode, base, loaded.order(), torch.linspace(-args.range, args.range,
                                                                                    args.values), loaded.kl)
        fig.params.update(range=args.range, sort=True, label=loaded.label)
    elif args.what == "samples":
        if not loaded.cfg.has_prior:
            raise ValueError("a plain autoencoder has no prior p(z) to sample from")
        fig = samples_figure(loaded.decode, args.rows, args.cols, d, args.seed,
                             "" if loaded.label is None else f"y={loaded.label}")
        fig.params["label"] = loaded.label
    else:
        x, mu = _ends(loaded, args)
        fig = interpolation_figure(loaded.decode, x[:1], x[1:], mu[0], mu[1], args.steps, args.mode,
                                   {"index_a": args.a, "index_b": args.b, "label": loaded.label})
    return fig


def cmd_export(args) -> int:
    """Run ``vaegui export``; returns 0, or 2 with a message on a bad file or option."""
    from models.checkpoint import CheckpointError
    from vaegui.figrender import save_figure_png

    if not args.out.lower().endswith(".png"):
        print("vaegui export: --out must be a .png file", file=sys.stderr)
        return 2
    try:
        loaded = _Loaded(args.checkpoint, args)
        fig = build_figure(loaded, args)
        w, h = save_figure_png(args.out, fig, _style(args, loaded, fig.caption), loaded.info)
    except (CheckpointError, ValueError, OSError, IndexError) as exc:
        print(f"vaegui export: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {fig.kind}, {fig.rows}×{fig.cols} tiles, {w} × {h} pixels")
    return 0


def cmd_animate(args) -> int:
    """Run ``vaegui animate``; returns 0, or 2 with a message on a bad file or option."""
    import torch

    from models.checkpoint import CheckpointError
    from vaegui.animation import (
        MissingVideo,
        interpolation_frames,
        render_frames,
        save_animation,
        training_frames,
        traversal_frames,
    )

    bounce = not args.no_bounce
    try:
        many = len(args.checkpoint) > 1 or Path(args.checkpoint[0]).is_dir()
        if many:
            if args.what not in ("samples", "manifold"):
                raise ValueError("several checkpoints animate --what samples or manifold over training")

            def progress(fraction: float, text: str) -> None:
                print(f"{100 * fraction:5.1f}%  {text}", file=sys.stderr)

            frames = training_frames(args.checkpoint, args.what, args.rows, args.cols, args.seed, args.grid,
                                     tuple(args.dims) if args.dims else (0, 1), progress)
            loaded = _Loaded(frames[-1].params["checkpoint"], args)  # the caption names the newest
        else:
            loaded = _Loaded(args.checkpoint[0], args)
            if loaded.cfg.discrete and args.what == "traversal":
                raise ValueError("the VQ-VAE's latents are grids of discrete codes: no traversal (its interpolation "
                                 "animates)")
            d = loaded.cfg.latent_dim
            if args.what == "traversal":
                base = torch.tensor(args.z if args.z else [0.0] * d, dtype=torch.float32)
                if len(base) != d:
                    raise ValueError(f"--z needs {d} values (the latent size), got {len(base)}")
                frames = traversal_frames(loaded.decode, base, loaded.order(),
                                          torch.linspace(-args.range, args.range, args.values), args.layout, bounce)
            elif args.what == "interpolation":
                _x, mu = _ends(loaded, args)
                frames = interpolation_frames(loaded.decode, mu[0], mu[1], args.steps, args.mode, bounce)
            else:
                raise ValueError(f"--what {args.what} animates over training: give several checkpoints or a folder")
        style = _style(args, loaded)
        n, w, h = save_animation(args.out, render_frames(frames, style), args.fps, args.loop)
    except (CheckpointError, ValueError, OSError, IndexError, MissingVideo) as exc:
        print(f"vaegui animate: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {n} frames of {w} × {h} pixels at {args.fps:g} fps")
    return 0

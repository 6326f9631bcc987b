"""``vaegui embed``: a trained model's latent map, headless, with the code path of
the window's Latent map panel (:func:`models.embedding.build_map`)."""

from __future__ import annotations

import argparse
import sys
import time

from models.embedding import PROJECTIONS, SPLITS


def add_embed_parser(sub) -> argparse.ArgumentParser:
    """The ``embed`` sub-command's options."""
    p = sub.add_parser("embed", help="encode a split with a trained model and write its latent map",
                       description="Encode a split with a checkpoint's model, project the posterior means, and "
                                   "write the map: FILE.csv, FILE.npz, or a folder for TensorBoard's Projector.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .vae file")
    p.add_argument("--dataset", help="the images (default: the dataset the model was trained on)")
    p.add_argument("--split", choices=SPLITS, default="test", help="which split to encode (default test)")
    p.add_argument("--points", choices=("mean", "sample"), default="mean",
                   help="posterior means mu, or one sample z ~ q(z|x) (default mean)")
    p.add_argument("--projection", choices=tuple(PROJECTIONS), default="pca", help="default pca")
    p.add_argument("--dims", type=int, nargs=2, default=(0, 1), metavar=("I", "J"),
                   help="the two dimensions of --projection dims (default 0 1)")
    p.add_argument("--perplexity", type=float, default=30.0, help="t-SNE's perplexity (default 30)")
    p.add_argument("--seed", type=int, default=0, help="the seed of the ELBO's noise and the projection (default 0)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="FILE.csv, FILE.npz, or a folder (TensorBoard Projector: tensors, metadata, sprite)")
    bench = sub.add_parser("bench-map", help="the latent map's figures: encoding, PCA, t-SNE, the window's stall")
    bench.add_argument("--images", type=int, default=60_000, help="images to encode and points to draw (60,000)")
    return p


def cmd_embed(args) -> int:
    """Run ``vaegui embed``; returns 0, or 2 with a message on a bad file, option or dataset."""
    import torch

    from models.checkpoint import CheckpointError, read_checkpoint
    from models.embedding import MapRequest, MissingExtra, build_map
    from models.embedexport import write_csv, write_npz, write_projector
    from models.vae import build_model
    from vaegui.cli import load_any

    try:
        ckpt = read_checkpoint(args.checkpoint)
        model = build_model(ckpt.model_config)
        model.load_state_dict(ckpt.weights)
        data = load_any(args.dataset or ckpt.dataset_name or "mnist5k", args, ckpt)
        request = MapRequest(split=args.split, points=args.points, projection=args.projection,
                             dims=tuple(args.dims), seed=args.seed, perplexity=args.perplexity)
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        last = [0.0]

        def progress(fraction: float, text: str) -> None:
            now = time.perf_counter()
            if now - last[0] > 1.0 or fraction >= 1.0:
                last[0] = now
                print(f"{100 * fraction:5.1f}%  {text}", file=sys.stderr)

        latent_map = build_map(model, data, request, progress=progress)
        out = args.out
        if out.lower().endswith(".csv"):
            path = write_csv(out, latent_map)
        elif out.lower().endswith(".npz"):
            path = write_npz(out, latent_map)
        else:
            path = write_projector(out, latent_map, data)
    except (CheckpointError, ValueError, MissingExtra, OSError) as exc:
        print(f"vaegui embed: {exc}", file=sys.stderr)
        return 2
    n = len(latent_map.encoded)
    print(f"{n:,} points ({args.split} split of {data.title}), {latent_map.projection.note}: wrote {path} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0

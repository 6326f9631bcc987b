"""``vaegui metrics``: disentanglement scores (MIG, DCI, SAP; :mod:`models.metrics`) of a
trained model on a dataset with ground-truth factors, or of any representation in an npz."""

from __future__ import annotations

import json
import sys

import numpy as np

KEYS = ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap")


def add_metrics_parser(sub) -> None:
    """The ``metrics`` sub-command's options."""
    p = sub.add_parser("metrics", help="MIG, DCI and SAP of a model (or of codes in an npz) against known factors",
                       description="Disentanglement scores as in disentanglement_lib: MIG (20 bins), DCI "
                                   "(gradient-boosted trees), SAP (linear SVMs), on posterior means mu.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?", help="a .vae file (or give --codes)")
    p.add_argument("--codes", metavar="FILE.npz",
                   help="an npz with codes (N, D) float and factors (N, K) integer class indices "
                        "(optional factor_names) instead of a model")
    p.add_argument("--dataset", help="images with factors for CHECKPOINT (default: the model's; e.g. shapes:6000)")
    p.add_argument("--split", choices=("test", "train", "both"), default="both",
                   help="which images to encode (default both)")
    p.add_argument("--train", type=int, default=10_000, help="points to train the classifiers on (10,000)")
    p.add_argument("--test", type=int, default=5_000, help="points to test them on (5,000)")
    p.add_argument("--seed", type=int, default=0, help="the split's and the classifiers' seed (default 0)")
    p.add_argument("--json", action="store_true", help="one JSON object with every score and matrix")
    p.add_argument("--controlled", action="store_true",
                   help="also the FactorVAE and beta-VAE scores (Shapes: images rendered from chosen factors)")
    p.add_argument("--votes", type=int, nargs=2, default=(10_000, 5_000), metavar=("TRAIN", "EVAL"),
                   help="--controlled: training and evaluation points (default 10,000 5,000, as published)")
    p.add_argument("--batch", type=int, default=64, help="--controlled: images per vote (default 64)")


def _load_codes(path: str):
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "codes" not in npz or "factors" not in npz:
                raise ValueError(f"{path} needs arrays 'codes' (N, D) and 'factors' (N, K); it has "
                                 f"{', '.join(npz.files) or 'none'}")
            codes, factors = npz["codes"], npz["factors"]
            names = [str(n) for n in npz["factor_names"]] if "factor_names" in npz else []
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable npz file ({exc})") from exc
    if not np.issubdtype(np.asarray(factors).dtype, np.number):
        raise ValueError(f"{path}: factors must be integer class indices")
    return codes, factors, names


def _model_codes(args):
    import torch

    from models.checkpoint import read_checkpoint
    from models.embedding import encode_split
    from models.metrics import as_class_indices
    from models.vae import build_model
    from vaegui.cli import load_any

    ckpt = read_checkpoint(args.checkpoint)
    model = build_model(ckpt.model_config).eval()
    model.load_state_dict(ckpt.weights)
    data = load_any(args.dataset or ckpt.dataset_name or "mnist5k", args, ckpt)
    if data.test_factors is None:
        raise ValueError(f"{data.title} has no ground-truth factors: use --dataset shapes:N, or write the codes "
                         "and factors to an npz and use --codes")
    torch.manual_seed(args.seed)
    encoded = encode_split(model, data, args.split)
    parts = {"test": [data.test_factors], "train": [data.train_factors],
             "both": [data.test_factors, data.train_factors]}[args.split]
    values = torch.cat(parts).numpy()
    if args.controlled and not data.name.startswith("shapes:"):
        raise ValueError("--controlled needs images rendered from chosen factors: use --dataset shapes:N")
    return encoded.mu, as_class_indices(values), list(data.factor_names), model


def cmd_metrics(args) -> int:
    """Run ``vaegui metrics``; returns 0, or 2 with a message on a bad file or option."""
    from models.checkpoint import CheckpointError
    from models.metrics import all_scores

    if (args.checkpoint is None) == (args.codes is None):
        print("vaegui metrics: give a CHECKPOINT or --codes FILE.npz (one of them)", file=sys.stderr)
        return 2
    try:
        if args.codes and args.controlled:
            raise ValueError("--controlled needs a CHECKPOINT: the scores render images from chosen factors")
        codes, factors, names, model = (*_load_codes(args.codes), None) if args.codes else _model_codes(args)

        def progress(fraction: float, text: str) -> None:
            if not args.json:
                print(f"{100 * fraction:5.1f}%  {text}", file=sys.stderr)

        scores = all_scores(codes, factors, args.train, args.test, args.seed, progress)
        if model is not None and args.controlled:
            from models.metrics import beta_vae_score, factor_vae_score, shapes_encoder

            encode, sizes = shapes_encoder(model)
            fv = factor_vae_score(encode, sizes, args.batch, *args.votes, seed=args.seed, progress=progress)
            bv = beta_vae_score(encode, sizes, args.batch, *args.votes, seed=args.seed, progress=progress)
            scores.update(factorvae=fv["eval_accuracy"], factorvae_active_dims=fv["active_dims"],
                          betavae=bv["eval_accuracy"])
    except (CheckpointError, ValueError, OSError) as exc:
        print(f"vaegui metrics: {exc}", file=sys.stderr)
        return 2
    scores.update(factor_names=names, n=int(len(codes)), code_dims=int(np.asarray(codes).shape[1]))
    if args.json:
        print(json.dumps(scores))
        return 0
    print(f"# {len(codes):,} points, {scores['code_dims']} code dimensions, factors: {', '.join(names) or '?'}; "
          f"classifiers on {min(args.train, len(codes)):,} / tested on the rest (at most {args.test:,})")
    for key in KEYS + ("factorvae", "betavae"):
        if key in scores:
            print(f"{key:<22} {scores[key]:.3f}")
    return 0

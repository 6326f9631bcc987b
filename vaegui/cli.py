"""Command line: ``vaegui`` opens the window; ``vaegui train`` trains headless;
``vaegui bench`` measures training speed against a plain DataLoader loop."""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys

from models.data import DATASETS


def _add_training_options(p: argparse.ArgumentParser, epochs: int) -> None:
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist5k", help="built-in dataset (default mnist5k)")
    p.add_argument("--epochs", type=int, default=epochs, help=f"epochs (default {epochs})")
    p.add_argument("--latent-dim", type=int, default=20, help="latent dimensions D, 2..64 (default 20)")
    p.add_argument("--hidden-dim", type=int, default=400, help="hidden layer width (default 400)")
    p.add_argument("--batch-size", type=int, default=128, help="images per step (default 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--beta", type=float, default=1.0, help="KL weight β in the training loss (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:1, mps")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="matmul precision of training steps (default auto: bf16 where native)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaegui", description="A latent-space explorer for VAEs.")
    parser.add_argument("--dataset", choices=sorted(DATASETS), help="dataset to open the window on")
    parser.add_argument("--train", action="store_true", help="start training as soon as the window opens")
    parser.add_argument("--quit-after", type=float, metavar="SECONDS", help="close the window after SECONDS")
    parser.add_argument("--screenshot", metavar="PNG", help="with --quit-after: save the window as PNG first")
    parser.add_argument("--settings", metavar="INI", help="remember settings in this file instead of the user's")
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="train headless, one line per epoch")
    _add_training_options(train, epochs=10)
    train.add_argument("--json", action="store_true", help="one JSON object per epoch (nats per image)")
    bench = sub.add_parser("bench", help="training throughput against a plain per-item DataLoader loop")
    _add_training_options(bench, epochs=10)
    bench.add_argument("--seeds", type=int, default=3, help="seeds per loop (default 3)")
    bench.add_argument("--gui", action="store_true", help="also measure training inside the window")
    bench.add_argument("--gui-epochs", type=int, default=30, help="epochs of the in-window run (default 30)")
    return parser


def _configs(args):
    from models.config import ModelConfig, TrainConfig
    from models.data import load_dataset

    data = load_dataset(args.dataset)
    model = ModelConfig(input_shape=data.image_shape, latent_dim=args.latent_dim, hidden_dim=args.hidden_dim)
    train = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta,
        seed=args.seed, device=args.device, precision=args.precision,
    )
    return data, model, train


def cmd_train(args) -> int:
    from models.trainer import EpochEnd, NonFiniteLossError, Trainer, resolve_precision

    try:
        data, model_cfg, train_cfg = _configs(args)
        trainer = Trainer(model_cfg, train_cfg, data)
    except ValueError as exc:
        print(f"vaegui train: {exc}", file=sys.stderr)
        return 2
    precision = resolve_precision(train_cfg.precision, trainer.device)
    print(
        f"# {data.title}: {len(data.train_x)} train / {len(data.test_x)} test; "
        f"{model_cfg.input_dim}-{model_cfg.hidden_dim}-{model_cfg.latent_dim} MLP VAE on "
        f"{trainer.device.type} ({precision}); nats per image",
        file=sys.stderr,
    )
    try:
        for event in trainer.run():
            if not isinstance(event, EpochEnd):
                continue
            if args.json:
                print(json.dumps(event.as_dict()), flush=True)
            else:
                print(
                    f"epoch {event.epoch:>3}/{train_cfg.epochs}  train -ELBO {event.train_neg_elbo:8.2f}  "
                    f"test -ELBO {event.test_neg_elbo:8.2f} (recon {event.test_recon:7.2f} + KL {event.test_kl:6.2f})  "
                    f"{event.samples_per_s:>9,.0f} samples/s",
                    flush=True,
                )
    except NonFiniteLossError as exc:
        print(f"vaegui train: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vaegui train: interrupted", file=sys.stderr)
        return 130
    return 0


def cmd_bench(args) -> int:
    from models.benchmark import compare

    data, model_cfg, train_cfg = _configs(args)
    seeds = tuple(range(args.seeds))
    print(f"# {data.title}, {model_cfg.input_dim}-{model_cfg.hidden_dim}-{model_cfg.latent_dim} MLP VAE, "
          f"batch {train_cfg.batch_size}, Adam {train_cfg.lr:g}, {train_cfg.epochs} epochs, seeds {list(seeds)}")
    pairs = compare(model_cfg, train_cfg, data, seeds)
    print(f"{'seed':>4}  {'DataLoader samples/s':>20}  {'Trainer samples/s':>17}  {'ratio':>5}  "
          f"{'DataLoader test -ELBO':>21}  {'Trainer test -ELBO':>18}")
    ratios = []
    for seed, (ref, ours) in zip(seeds, pairs):
        ratio = ours.samples_per_s / ref.samples_per_s
        ratios.append(ratio)
        print(f"{seed:>4}  {ref.samples_per_s:>20,.0f}  {ours.samples_per_s:>17,.0f}  {ratio:>5.2f}  "
              f"{ref.test_neg_elbo:>21.2f}  {ours.test_neg_elbo:>18.2f}")
    ref_elbo = statistics.mean(r.test_neg_elbo for r, _ in pairs)
    our_elbo = statistics.mean(o.test_neg_elbo for _, o in pairs)
    print(f"throughput ratio (median over seeds): {statistics.median(ratios):.2f}x  (target >= 1.5x)")
    print(f"mean test -ELBO after {train_cfg.epochs} epochs: DataLoader {ref_elbo:.2f}, Trainer {our_elbo:.2f} "
          f"nats per image; difference {our_elbo - ref_elbo:+.2f}  (target within 2)")
    if args.gui:
        import torch

        from models.benchmark import trainer_loop
        from vaegui.bench import gui_benchmark
        from vaegui.trainproc import child_threads

        headless = statistics.median(o.samples_per_s for _, o in pairs)
        threads = torch.get_num_threads()
        torch.set_num_threads(child_threads())
        same_threads = trainer_loop(model_cfg, train_cfg, data).samples_per_s
        torch.set_num_threads(threads)
        gui_cfg = dataclasses.replace(train_cfg, epochs=args.gui_epochs)
        print(f"# in the window: {args.gui_epochs} epochs, a traversal slider moved every 30 ms; the training "
              f"process uses {child_threads()} of {threads} threads (one core is left to the window)")
        print(f"headless references: {headless:,.0f} samples/s with {threads} threads (median above), "
              f"{same_threads:,.0f} with {child_threads()}")
        figures = gui_benchmark(data.name, model_cfg, gui_cfg, headless)
        print(f"GUI training vs headless with the same thread count: "
              f"{figures['gui_samples_per_s'] / same_threads:.2f}x")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        return cmd_train(args)
    if args.command == "bench":
        return cmd_bench(args)
    from vaegui.app import offscreen_default, run_gui

    offscreen_default()
    return run_gui(args.dataset, args.train, args.quit_after, args.screenshot, args.settings)

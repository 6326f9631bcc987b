"""Command line: ``vaegui`` opens the window; ``vaegui train`` trains headless;
``vaegui bench`` measures training speed against a plain DataLoader loop; ``vaegui embed``
writes a trained model's latent map; ``vaegui export`` and ``vaegui animate`` write its grids
and animations."""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys

from models.config import CONDITIONAL_MODELS, ModelConfig, TrainConfig, fields_of
from models.data import DATASETS


def _fmt(value) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}" if isinstance(value, float) else str(value)


def _help(f) -> str:
    """``--help`` text of a config field: its help, range, unit and default."""
    meta = f.metadata
    extra = []
    if meta.get("range") is not None:
        lo, hi = meta["range"]
        extra.append(f"{_fmt(lo)}..{_fmt(hi)}")
    if meta.get("unit"):
        extra.append(meta["unit"])
    special = f": {meta['special']}" if meta.get("special") and f.default == 0 else ""
    extra.append(f"default {_fmt(f.default)}{special}")
    return f"{meta['help']} ({'; '.join(extra)})"


#: option → (default, help) shared by ``train`` and ``bench``: the dataset, then every
#: field of ModelConfig and TrainConfig that the command line offers, from the fields'
#: metadata (models/config.py), so defaults, ranges and help are written once
OPTIONS = {
    "dataset": ("mnist5k", "a built-in dataset (" + ", ".join(sorted(DATASETS)) + ", shapes:N), download:mnist, "
                "download:fashion-mnist, download:cifar10 (verified, cached), an image folder, an IDX file or a "
                ".npz/.npy file (default mnist5k)"),
    **{f.name: (f.default, _help(f)) for cls in (ModelConfig, TrainConfig) for f in fields_of(cls, cli=True)},
}
MODEL_OPTIONS = tuple(f.name for f in fields_of(ModelConfig, cli=True))
_FIELDS = {f.name: f for cls in (ModelConfig, TrainConfig) for f in fields_of(cls, cli=True)}


def _add_training_options(p: argparse.ArgumentParser, defaults: bool, skip: tuple[str, ...] = ()) -> None:
    """With ``defaults=False`` every option defaults to None, so that a resumed run can
    tell what the user set from what the checkpoint holds; ``skip``: options a command
    defines its own way (a sweep's lists of β and seeds)."""
    for name, (default, help_text) in OPTIONS.items():
        if name in skip:
            continue
        f = _FIELDS.get(name)
        kwargs = {"type": type(default), "help": help_text, "default": default if defaults else None}
        if f is not None and f.metadata.get("choices"):
            kwargs["choices"] = tuple(f.metadata["choices"])
        p.add_argument("--" + name.replace("_", "-"), **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The ``vaegui`` command line: the window, ``train`` and ``bench``, options from the configs' metadata."""
    parser = argparse.ArgumentParser(prog="vaegui", description="A latent-space explorer for VAEs.")
    parser.add_argument("--dataset", choices=sorted(DATASETS), help="dataset to open the window on")
    parser.add_argument("--train", action="store_true", help="start training as soon as the window opens")
    parser.add_argument("--quit-after", type=float, metavar="SECONDS", help="close the window after SECONDS")
    parser.add_argument("--screenshot", metavar="PNG", help="with --quit-after: save the window as PNG first")
    parser.add_argument("--settings", metavar="INI", help="remember settings in this file instead of the user's")
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="train headless, one line per epoch")
    _add_training_options(train, defaults=False)
    train.add_argument("--json", action="store_true", help="one JSON object per epoch (nats per image)")
    train.add_argument("--save", metavar="FILE", help="write a checkpoint (.vae) at the end, also after Ctrl+C")
    train.add_argument("--resume", metavar="FILE",
                       help="continue a checkpoint, or a run folder's newest one; --epochs is the new total")
    train.add_argument("--run-dir", metavar="DIR",
                       help="write a run folder: config.json, metrics.jsonl (every step and epoch), status.json, "
                            "checkpoints/ (latest, best, every --checkpoint-every), samples/ (default with --resume "
                            "of a run folder: that folder)")
    train.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                       help="with --run-dir: also keep checkpoints/epoch-EEEE.vae every N epochs")
    train.add_argument("--samples-every", type=int, default=0, metavar="N",
                       help="with --run-dir: a samples grid every N epochs (always at the last)")
    train.add_argument("--sample-epochs", type=int, nargs="*", default=[], metavar="E",
                       help="with --run-dir: samples grids at these epochs")
    train.add_argument("--tensorboard", action="store_true",
                       help="with --run-dir: also write TensorBoard events (the 'tensorboard' extra)")
    from vaegui.distcmd import add_distributed_options

    add_distributed_options(train)
    train.add_argument("--image-size", type=int, choices=(28, 32, 64), help="size of imported images (default 28)")
    train.add_argument("--channels", type=int, choices=(1, 3), help="channels of imported images (default 1)")
    train.add_argument("--fit", choices=("crop", "pad"), default="crop",
                       help="how imported images become square: centre-crop or pad (default crop)")
    from vaegui.embedcmd import add_embed_parser

    add_embed_parser(sub)
    from vaegui.figcmd import add_figure_parsers

    add_figure_parsers(sub)
    from vaegui.metricscmd import add_metrics_parser

    add_metrics_parser(sub)
    from vaegui.sweepcmd import add_sweep_parser

    add_sweep_parser(sub)
    bench = sub.add_parser("bench", help="training throughput against a plain per-item DataLoader loop")
    _add_training_options(bench, defaults=True)
    bench.add_argument("--seeds", type=int, default=3, help="seeds per loop (default 3)")
    bench.add_argument("--gui", action="store_true", help="also measure training inside the window")
    bench.add_argument("--gui-epochs", type=int, default=None,
                       help="epochs of the in-window run (default 200 on the CPU, long enough for the training "
                            "process to measure its threads and train on with its choice; 30 with --cuda)")
    bench.add_argument("--models", action="store_true",
                       help="instead: the model table (model × likelihood → test -ELBO, IS -log p(x), KL, ...)")
    bench.add_argument("--layers", action="store_true",
                       help="instead: one against two stochastic layers (VAE, IWAE, ladder; Burda et al. 2016's sizes)")
    bench.add_argument("--iw-images", type=int, default=200, help="test images of the table's IS estimate")
    bench.add_argument("--scale", type=int, nargs="*", metavar="N",
                       help="instead: epoch time and peak memory on shapes:N for each N (default 5000 20000 60000), "
                            "each in its own process; with --gui, then the window's memory training one epoch on each")
    bench.add_argument("--ddp", action="store_true",
                       help="instead: 1 process x 2 threads against torchrun with 2 processes x 1 thread (gloo), same "
                            "global batch (--batch-size), fp32, --seeds repeats: samples/s and the final test -ELBO")
    bench.add_argument("--follow", action="store_true",
                       help="instead: the window following a run folder written at 100 step lines/s: delay from "
                            "append to curve drawn (p95) and the longest event-loop stall")
    bench.add_argument("--cuda", action="store_true",
                       help="the GPU rows: the MLP and the conv net in fp32 and bf16 autocast against the plain loop, "
                            "each beside its share of the GPU's measured matmul peak, then --gui-epochs in the window "
                            "(the reference: --dataset shapes:20000; --device cpu runs the same rows on the CPU)")
    bench.add_argument("--m2", action="store_true",
                       help="instead: the semi-supervised M2's test error per epoch beside its classifier trained "
                            "on the same labels alone (--labels-per-class)")
    return parser


def _configs(args, checkpoint=None):
    """Dataset and configs from the options. A resumed run starts from the checkpoint's
    configs with ``dataclasses.replace`` of the options the user gave; options that
    must stay as saved for an exact resume (metadata ``resume="fixed"``: the network,
    the batch size, the seed) must match it.

    Raises:
        ValueError: bad values (naming the options), or fixed options that differ.
    """
    def given(cls) -> dict:
        return {f.name: getattr(args, f.name) for f in fields_of(cls, cli=True) if getattr(args, f.name) is not None}

    name = args.dataset or (checkpoint.dataset_name if checkpoint is not None else "") or OPTIONS["dataset"][0]
    data = load_any(name, args, checkpoint)
    model_given, train_given = given(ModelConfig), given(TrainConfig)
    try:
        if checkpoint is None:
            model_kind = model_given.get("model", OPTIONS["model"][0])
            n_classes = len(data.class_names) if model_kind in CONDITIONAL_MODELS else 0
            model = ModelConfig(input_shape=data.image_shape, n_classes=n_classes, **model_given)
            return data, model, TrainConfig(**train_given)
        model = dataclasses.replace(checkpoint.model_config, **model_given)
        train = dataclasses.replace(checkpoint.train_config, **train_given)
    except ValueError as exc:
        raise ValueError(option_names(str(exc))) from exc
    if model != checkpoint.model_config or tuple(data.image_shape) != tuple(model.input_shape):
        raise ValueError(
            f"the checkpoint holds a {checkpoint.model_config.describe()}; "
            + ", ".join("--" + n.replace("_", "-") for n in MODEL_OPTIONS) + " and --dataset must match it"
        )
    fixed = [f.name for f in fields_of(TrainConfig) if f.metadata.get("resume") == "fixed"
             and getattr(train, f.name) != getattr(checkpoint.train_config, f.name)]
    if fixed:
        raise ValueError(" and ".join("--" + n.replace("_", "-") for n in fixed)
                         + " must match the checkpoint's to resume exactly")
    return data, model, train


def option_names(message: str) -> str:
    """A config error in the words of the command line: ``latent_dim`` → ``--latent-dim``."""
    import re

    return re.sub(r"\b(" + "|".join(sorted(OPTIONS, key=len, reverse=True)) + r")\b",
                  lambda m: "--" + m.group(1).replace("_", "-"), message)


def load_any(name: str, args, checkpoint=None):
    """The dataset a ``--dataset`` name stands for (:func:`models.datasets.resolve_dataset`);
    an import's report (each skipped file with its reason) goes to stderr first.

    Raises:
        ValueError: an unknown name, or a file or folder with nothing usable.
    """
    from models.datasets import parse_dataset, resolve_dataset

    spec = parse_dataset(name)
    shape = checkpoint.model_config.input_shape if checkpoint is not None else None
    data, report = resolve_dataset(
        spec,
        size=getattr(args, "image_size", None) or (shape[1] if shape else 28),
        channels=getattr(args, "channels", None) or (shape[0] if shape else 1),
        fit=getattr(args, "fit", None) or "crop",
    )
    if report is not None:
        print(report.text(), file=sys.stderr)
    return data


def epoch_text(event, train_cfg) -> str:
    """``vaegui train``'s line for an epoch (nats per image)."""
    from models.evaluation import test_terms_text
    from models.metrics import SCORE_TITLES
    from models.penalties import TERM_TITLES

    return (
        f"epoch {event.epoch:>3}/{train_cfg.epochs}  train -ELBO {event.train_neg_elbo:8.2f}  "
        f"test -ELBO {event.test_neg_elbo:8.2f} (recon {event.test_recon:7.2f} + KL {event.test_kl:6.2f})  "
        f"{event.samples_per_s:>9,.0f} samples/s"
        + (f"  -log p(x) {event.test_nll_iw:8.2f} (IS, k={train_cfg.eval_iw})"
           if event.test_nll_iw is not None else "")
        + (f"  test error {100 * event.test_error:.2f}%" if event.test_error is not None else "")
        + "".join(f"  {TERM_TITLES[k]} {v:.3f}" for k, v in event.train_terms.items())
        + (f"  {test_terms_text(event.test_terms)}" if event.test_terms else "")
        + "".join(f"  {SCORE_TITLES[k]} {event.disentanglement[k]:.3f}" for k in SCORE_TITLES
                  if k in event.disentanglement)
    )


def _run_writer(args, trainer, checkpoint):
    """The run folder's writer of ``vaegui train`` (None without ``--run-dir``): ``--resume``
    of a run folder continues that folder unless ``--run-dir`` names another.

    Raises:
        RunFolderError, MissingTensorBoard: as :func:`models.runfolder.writer_for`.
    """
    from pathlib import Path

    from models.runfolder import METRICS_FILE, writer_for

    if getattr(args, "rank", 0) != 0:  # in a distributed run, rank 0 alone writes
        return None
    folder = args.run_dir or (args.resume if args.resume and Path(args.resume).is_dir() else None)
    if folder is None:
        if args.tensorboard:
            raise ValueError("--tensorboard writes into the run folder: give --run-dir too")
        return None
    resume = checkpoint is not None and (Path(folder) / METRICS_FILE).exists()
    return writer_for(folder, trainer, resume=resume, checkpoint_every=args.checkpoint_every,
                      samples_every=args.samples_every, sample_epochs=args.sample_epochs,
                      tensorboard=args.tensorboard)


def cmd_train(args) -> int:
    """``vaegui train``: train headless, one line per epoch (nats per image); returns the exit
    status (0, 1 on a non-finite loss, 2 on bad options or files, 130 after Ctrl+C)."""
    from models.allocator import keep_freed_memory
    from models.checkpoint import CheckpointError, check_writable, read_checkpoint
    from models.resources import check_memory, dataset_bytes
    from models.runfolder import resume_path
    from models.trainer import (
        Trainer,
        training_device,
    )

    keep_freed_memory()  # this process exists to train
    checkpoint = writer = dist = None
    try:
        if args.distributed:
            from vaegui.distcmd import join

            dist = join(args, resuming=bool(args.resume))
        if args.save:  # before any work: a bad path must not throw a finished run away
            check_writable(args.save)
        if args.resume:
            checkpoint = read_checkpoint(resume_path(args.resume))
            if not checkpoint.has_training_state:
                raise CheckpointError(f"{args.resume} has no optimizer state, so training cannot resume exactly")
        data, model_cfg, train_cfg = _configs(args, checkpoint)
        check_memory(model_cfg, train_cfg, dataset_bytes(data),
                     training_device(dist.device if dist is not None else train_cfg.device))
        trainer = Trainer(model_cfg, train_cfg, data, dist=dist)
        if checkpoint is not None:
            trainer.load_state(checkpoint.tensors, checkpoint.info)
        writer = _run_writer(args, trainer, checkpoint)
    except (ValueError, ImportError, RuntimeError) as exc:  # CheckpointError, ResourceError, RunFolderError,
        print(f"vaegui train: {exc}", file=sys.stderr)  # MissingTensorBoard, DistributedError
        _leave(dist, together=False)
        return 2
    status = 1
    try:
        status = _train_loop(args, trainer, data, model_cfg, train_cfg, checkpoint, writer, dist)
        return status
    finally:
        trainer = writer = None  # the DDP model holds the process group: it goes first (models.distributed.shutdown)
        _leave(dist, together=status in (0, 130))


def _leave(dist, together: bool) -> None:
    """Leave the distributed group: after a good end all ranks together, after a failure at once."""
    if dist is not None:
        from models.distributed import shutdown

        shutdown(together)


def _train_loop(args, trainer, data, model_cfg, train_cfg, checkpoint, writer, dist) -> int:
    """``vaegui train``'s loop after the set-up: lines per epoch (rank 0 alone under
    ``--distributed``), the run folder, Ctrl+C / SIGTERM stop between two steps, ``--save``."""
    import signal

    import torch

    from models.checkpoint import CheckpointError, save_checkpoint
    from models.trainer import EpochEnd, NonFiniteLossError, StepBatch, TrainingDone, resolve_precision

    main = dist is None or dist.is_main
    precision = resolve_precision(train_cfg.precision, trainer.device)
    resumed = f"; resuming {checkpoint.path} after epoch {trainer.epoch}" if checkpoint is not None else ""
    distributed = (f"; {dist.world} processes ({dist.backend}), global batch {train_cfg.batch_size} = "
                   f"{dist.world} × {train_cfg.batch_size // dist.world}" if dist is not None else "")
    if main:
        print(
            f"# {data.title}: {len(data.train_x)} train / {len(data.test_x)} test; "
            f"{model_cfg.describe()}, {trainer.model.parameter_count():,} parameters, on "
            f"{trainer.device.type} ({precision}); nats per image{resumed}{distributed}"
            + (f"; run folder {writer.folder}" if writer is not None else ""),
            file=sys.stderr,
        )
    interrupted = False

    def on_signal(_signum, _frame):  # stop between two steps, so the state saved is consistent
        nonlocal interrupted
        interrupted = True
        trainer.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    status, ended, message = 0, "finished", ""
    try:
        for event in trainer.run():
            if isinstance(event, StepBatch) and writer is not None:
                writer.steps(event)
            if isinstance(event, TrainingDone) and event.stopped:
                if main:
                    print("vaegui train: interrupted", file=sys.stderr)
                status, ended, message = 130, "stopped", "interrupted"
            if not isinstance(event, EpochEnd) or not main:
                continue
            problem = "" if writer is None else writer.epoch(event, trainer.export_state, trainer.model)
            if problem:
                print(f"vaegui train: {problem}", file=sys.stderr)
            if args.json:
                print(json.dumps(event.as_dict()), flush=True)
            else:
                print(epoch_text(event, train_cfg), flush=True)
    except NonFiniteLossError as exc:
        print(f"vaegui train: {exc}", file=sys.stderr)
        status, ended, message = 1, "failed", str(exc)
    except RuntimeError as exc:
        if dist is None:
            ended, message = "failed", f"{type(exc).__name__}: {exc}"
            raise
        # a collective failed: another rank died, hung past --dist-timeout, or lost its connection
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        ended = "failed"
        message = f"rank {dist.rank}: the distributed run broke off (another rank died or hung): {first}"
        print(f"vaegui train: {message}", file=sys.stderr)
        status = 1
    except BaseException as exc:
        ended, message = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if writer is not None:
            writer.finish(ended, message, trainer.export_state)
    if args.save:
        try:
            with torch.no_grad():
                tensors, info = trainer.export_state()
            save_checkpoint(args.save, tensors, info)
            print(f"# saved {args.save} after epoch {trainer.epoch}, step {trainer.step}", file=sys.stderr)
        except CheckpointError as exc:
            print(f"vaegui train: {exc}", file=sys.stderr)
            return status or 1
    return status


def cmd_m2(data, model_cfg, train_cfg) -> int:
    """``vaegui bench --m2``: M2 (Kingma et al. 2014) against its classifier on the labels alone."""
    import dataclasses

    from models.semisupervised import supervised_baseline
    from models.trainer import EpochEnd, Trainer

    model_cfg = dataclasses.replace(model_cfg, model="m2", n_classes=len(data.class_names))
    trainer = Trainer(model_cfg, train_cfg, data)
    n_l = len(trainer.labelled)
    print(f"# {data.title}: {len(data.train_x)} train / {len(data.test_x)} test, {n_l} labelled "
          f"({train_cfg.labels_per_class} per class); {model_cfg.describe()}; alpha/N {train_cfg.alpha:g}; "
          f"{train_cfg.epochs} epochs, batch {train_cfg.batch_size}, Adam {train_cfg.lr:g}, seed {train_cfg.seed}")
    for event in trainer.run():
        if isinstance(event, EpochEnd):
            print(f"epoch {event.epoch:>3}  M2 test error {100 * event.test_error:6.2f}%  test -ELBO "
                  f"{event.test_neg_elbo:8.2f} nats  {event.seconds:6.1f} s", flush=True)
    baseline = supervised_baseline(model_cfg, train_cfg, data, trainer.step)
    print(f"M2 test error {100 * trainer.history[-1].test_error:.2f}%; the same classifier on the {n_l} labels "
          f"alone ({trainer.step} steps): {100 * baseline:.2f}%")
    return 0


def cmd_models(args, data, model_cfg, train_cfg) -> int:
    """``vaegui bench --models``: the model table (test −ELBO, importance-sampled −log p(x), KL)."""
    from models.benchmark import LAYER_TABLE, MODEL_TABLE, model_table
    from models.evaluation import test_terms_text

    k = args.eval_iw or 1000
    sizes = "sizes as each row says" if args.layers else f"latent {model_cfg.latent_dim}, hidden {model_cfg.hidden_dim}"
    print(f"# {data.title}: {len(data.train_x)} train / {len(data.test_x)} test; {sizes}; {train_cfg.epochs} epochs, "
          f"batch {train_cfg.batch_size}, Adam {train_cfg.lr:g}, seed {train_cfg.seed}; nats per image on the test "
          f"split; -log p(x) with k={k} importance samples on the first {args.iw_images} test images")
    header = (f"{'model':<19} {'likelihood':<27} {'params':>8} {'-ELBO':>8} {'-log p(x)':>9} {'gap':>6} "
              f"{'KL':>6} {'active':>6} {'samples/s':>9}")
    print(header)
    worse = []
    rows = LAYER_TABLE if args.layers else MODEL_TABLE
    for row in model_table(data, model_cfg, train_cfg, k=k, iw_images=args.iw_images, rows=rows):
        iw = "n/a" if row.test_nll_iw is None else f"{row.test_nll_iw:9.2f}"
        gap = "" if row.iw_gap is None else f"{row.iw_gap:6.2f}"
        print(f"{row.name:<19} {row.likelihood:<27} {row.parameters:>8,} {row.test_neg_elbo:8.2f} {iw:>9} {gap:>6} "
              f"{row.test_kl:6.2f} {row.active_dims:>6} {row.samples_per_s:>9,.0f}"
              + (f"  {test_terms_text(row.test_terms)}" if row.test_terms else ""))
        if row.iw_gap is not None and row.iw_gap < 0:
            worse.append(row.name)
    print("IS estimate at least as good as the ELBO for every model: " + ("yes" if not worse else f"NO: {worse}"))
    print("(gap: log p(x) - ELBO on the IS subset, ~ KL(q(z|x) || p(z|x)); the AE has no prior, so no "
          "ELBO or log p(x): its -ELBO column is the reconstruction term)")
    return 0


def cmd_bench(args) -> int:
    """``vaegui bench``: trainer vs a plain DataLoader loop, each beside the share of the machine's
    measured GEMM ceiling it reaches (and ``--gui``: in the window)."""
    from models.benchmark import compare, in_own_process

    if args.scale is not None:
        from vaegui.scalebench import run, run_window

        options = [f"--{f.name.replace('_', '-')}={getattr(args, f.name)}" for f in fields_of(ModelConfig, cli=True)]
        options += [f"--{name.replace('_', '-')}={getattr(args, name)}" for name in ("batch_size", "lr", "seed",
                                                                                      "precision", "device")]
        sizes = args.scale or [5000, 20000, 60000]
        return run(sizes, options, min(args.epochs, 2)) or (run_window(sizes) if args.gui else 0)
    if args.follow:
        from vaegui.runbench import print_follow

        return print_follow()
    if args.ddp:
        from vaegui.runbench import ddp_figures

        extra = [f"--{f.name.replace('_', '-')}={getattr(args, f.name)}" for f in fields_of(ModelConfig, cli=True)]
        return ddp_figures(args.dataset or "mnist5k", args.epochs, args.batch_size, args.seeds,
                           [*extra, f"--lr={args.lr}", f"--seed={args.seed}"])
    data, model_cfg, train_cfg = _configs(args)
    if args.models or args.layers:
        return cmd_models(args, data, model_cfg, train_cfg)
    if args.m2:
        return cmd_m2(data, model_cfg, train_cfg)
    if args.cuda:
        from vaegui.gpubench import cuda_rows

        gui_epochs = 30 if args.gui_epochs is None else args.gui_epochs
        return cuda_rows(data, model_cfg, train_cfg, tuple(range(args.seeds)), gui_epochs)
    seeds = tuple(range(args.seeds))
    import torch

    from models.benchmark import ceiling_share, cpu_description, flops_per_image, gemm_ceiling
    from models.mlpstep import written_step_applies
    from models.trainer import resolve_precision, training_device

    device = training_device(train_cfg.device)
    precision = resolve_precision(train_cfg.precision, device)
    flops = flops_per_image(model_cfg, train_cfg.batch_size)
    written = written_step_applies(model_cfg, train_cfg, device, False)
    backward = "written out" if written else "autograd"
    print(f"# {data.title}, {model_cfg.describe()}, batch {train_cfg.batch_size}, Adam {train_cfg.lr:g}, "
          f"{train_cfg.epochs} epochs, seeds {list(seeds)}; {flops / 1e6:.2f} MFLOP per image per step "
          f"(forward + backward, torch.utils.flop_counter); trainer precision {precision}, backward {backward}, "
          f"{torch.get_num_threads()} threads on {device.type}")
    if device.type == "cpu":
        print(f"# CPU: {cpu_description()}")
    pairs, autograd = [], []
    ceilings = {"fp32": [], "bf16": []}
    for seed in seeds:  # the ceiling is measured between the loops, so it shares the machine's state
        ceilings["fp32"].append(gemm_ceiling(torch.float32, device=device))
        if precision == "bf16":
            ceilings["bf16"].append(gemm_ceiling(torch.bfloat16, device=device))
        pairs += compare(model_cfg, train_cfg, data, (seed,))
        if written:  # the same trainer through autograd, for the written step's gain
            autograd.append(in_own_process("autograd", model_cfg, dataclasses.replace(train_cfg, seed=seed), data))
    ceiling = {k: statistics.median(v) for k, v in ceilings.items() if v}
    print("# GEMM ceiling (best 2048x2048 matmul): "
          + ", ".join(f"{k} {v / 1e9:,.1f} GFLOP/s" for k, v in ceiling.items()))
    print(f"{'seed':>4}  {'DataLoader samples/s':>20}  {'of ceiling':>10}  {'Trainer samples/s':>17}  "
          f"{'of ceiling':>10}  {'ratio':>5}  {'DataLoader test -ELBO':>21}  {'Trainer test -ELBO':>18}")
    ratios = []
    for seed, (ref, ours) in zip(seeds, pairs):
        ratio = ours.samples_per_s / ref.samples_per_s
        ratios.append(ratio)
        ref_share = ceiling_share(ref.samples_per_s, flops, ceiling["fp32"])
        our_share = ceiling_share(ours.samples_per_s, flops, ceiling[precision])
        print(f"{seed:>4}  {ref.samples_per_s:>20,.0f}  {100 * ref_share:>9.0f}%  {ours.samples_per_s:>17,.0f}  "
              f"{100 * our_share:>9.0f}%  {ratio:>5.2f}  {ref.test_neg_elbo:>21.2f}  {ours.test_neg_elbo:>18.2f}")
    if autograd:
        print("the trainer through autograd (each seed after the two above): "
              + ", ".join(f"{a.samples_per_s:,.0f} samples/s "
                          f"({100 * ceiling_share(a.samples_per_s, flops, ceiling[precision]):.0f}%)" for a in autograd)
              + "; the written-out backward is "
              + f"{statistics.median(o.samples_per_s / a.samples_per_s for (_, o), a in zip(pairs, autograd)):.2f}x"
              + " that (median over seeds)")
    ref_elbo = statistics.mean(r.test_neg_elbo for r, _ in pairs)
    our_elbo = statistics.mean(o.test_neg_elbo for _, o in pairs)
    print(f"throughput ratio (median over seeds): {statistics.median(ratios):.2f}x  (target >= 1.5x)")
    faults = [statistics.median(pair[i].faults_per_step for pair in pairs) for i in (0, 1)]
    print(f"minor page faults per step (median): DataLoader {faults[0]:,.0f}, Trainer {faults[1]:,.0f} "
          f"(whole runs; the trainer's process keeps freed memory)")
    print(f"mean test -ELBO after {train_cfg.epochs} epochs: DataLoader {ref_elbo:.2f}, Trainer {our_elbo:.2f} "
          f"nats per image; difference {our_elbo - ref_elbo:+.2f}  (target within 2)")
    if args.gui:
        import torch

        from vaegui.bench import WINDOW_STATES, gui_benchmark
        from vaegui.trainproc import child_threads

        headless = statistics.median(o.samples_per_s for _, o in pairs)
        threads = torch.get_num_threads()
        same_threads = in_own_process("trainer", model_cfg, train_cfg, data, threads=child_threads()).samples_per_s
        gui_epochs = 200 if args.gui_epochs is None else args.gui_epochs
        gui_cfg = dataclasses.replace(train_cfg, epochs=gui_epochs)
        print(f"# in the window: {gui_epochs} epochs in each of {len(WINDOW_STATES)} window states; the training "
              f"process starts with {child_threads()} of {threads} threads (one core left to the window) and "
              f"takes every core while that measures faster")
        print(f"headless references: {headless:,.0f} samples/s with {threads} threads (median above), "
              f"{same_threads:,.0f} with {child_threads()}")
        runs = {state: gui_benchmark(data.name, model_cfg, gui_cfg, headless, state) for state in WINDOW_STATES}
        print(f"{'window':<12}  {'samples/s':>9}  {f'vs {threads} threads':>13}  {f'vs {child_threads()}':>6}  "
              f"{'threads at the end':>18}  {'window CPU':>10}  {'longest stall':>13}")
        for state, f in runs.items():
            choices = f["thread_choices"]
            print(f"{state:<12}  {f['gui_samples_per_s']:>9,.0f}  {f['gui_vs_headless']:>12.2f}x  "
                  f"{f['gui_samples_per_s'] / same_threads:>5.2f}x  {choices[-1][0] if choices else '?':>18}  "
                  f"{100 * f['gui_process_cpu']:>9.0f}%  {f['longest_stall_ms']:>10.1f} ms")
        print("(samples/s: the median epoch of each run's second half; window CPU: the window's process, "
              "in % of one core)")
    return 0


def entry(argv: list[str] | None = None) -> int:
    """The ``vaegui`` console script and ``python -m vaegui``: :func:`main` in a process of its own.

    ``vaegui train`` and ``vaegui sweep`` then exist only to train, so they first flush subnormal
    floats to zero (:func:`models.subnormals.flush_subnormals`, before any intra-op thread
    starts): Adam's moments of weights whose gradient stays zero otherwise sink into the
    subnormal range and slow a long run down by about a quarter. :func:`main` called from
    another process (a test, a notebook) leaves that process's floating-point mode alone.
    Returns the exit status.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.command in ("train", "sweep") and not getattr(args, "nproc", None):
        from models.subnormals import flush_subnormals

        flush_subnormals()
    return _run(args, argv)


def main(argv: list[str] | None = None) -> int:
    """``vaegui``'s commands, run in the calling process; returns the exit status. The console
    script goes through :func:`entry`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return _run(build_parser().parse_args(argv), argv)


def _run(args, argv: list[str]) -> int:
    if args.command == "train" and args.nproc:
        from vaegui.distcmd import launch

        return launch(args, argv)
    if args.command == "train":
        return cmd_train(args)
    if args.command == "bench":
        return cmd_bench(args)
    if args.command == "bench-map":
        from vaegui.mapbench import main as bench_map

        return bench_map(args.images)
    if args.command == "embed":
        from vaegui.embedcmd import cmd_embed

        return cmd_embed(args)
    if args.command == "metrics":
        from vaegui.metricscmd import cmd_metrics

        return cmd_metrics(args)
    if args.command == "sweep":
        from vaegui.sweepcmd import cmd_sweep

        return cmd_sweep(args)
    if args.command in ("export", "animate"):
        from vaegui import figcmd

        return figcmd.cmd_export(args) if args.command == "export" else figcmd.cmd_animate(args)
    from vaegui.app import offscreen_default, run_gui

    offscreen_default()
    return run_gui(args.dataset, args.train, args.quit_after, args.screenshot, args.settings)

"""``vaegui sweep``: a grid of β × seeds trained one after another (:mod:`models.sweep`), each
run saved and scored, the table in ``OUT/sweep.csv`` and a summary per β on stdout. The
window's sweep dialog runs this command in a child process and reads its ``--json`` lines."""

from __future__ import annotations

import json
import signal
import sys


def add_sweep_parser(sub) -> None:
    """The ``sweep`` sub-command's options: the grid, the folder, and every training option but β and the seed."""
    from vaegui.cli import _add_training_options

    p = sub.add_parser("sweep", help="train a grid of beta x seeds one after another; a table and a trade-off",
                       description="Train every (beta, seed) of the grid with the other options fixed; save each "
                                   "run in OUT, score it on the dataset's ground-truth factors (MIG, SAP; --scores "
                                   "all adds DCI) and write OUT/sweep.csv after each run.")
    p.add_argument("--beta", type=float, nargs="+", required=True, metavar="B",
                   help="the values of beta (the weight of the objective's penalty), e.g. 1 2 4 8")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="S", help="the seeds (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder for the runs and sweep.csv")
    p.add_argument("--scores", choices=("fast", "all"), default="fast",
                   help="scores of each finished run: MIG and SAP, or also DCI (minutes) (default fast)")
    p.add_argument("--score-points", type=int, default=5000, help="images the scores use (default 5,000)")
    p.add_argument("--json", action="store_true", help="one JSON object per event (run, epoch, row) on stdout")
    _add_training_options(p, defaults=False, skip=("beta", "seed"))
    p.add_argument("--image-size", type=int, choices=(28, 32, 64), help="size of imported images (default 28)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="channels of imported images (default 1)")
    p.add_argument("--fit", choices=("crop", "pad"), default="crop",
                   help="how imported images become square: centre-crop or pad (default crop)")


def sweep_arguments(model, train, dataset: str) -> list[str]:
    """The ``vaegui sweep`` options that repeat the form's settings (all but β and the seed); an
    imported dataset is imported again at the model's image size and channels."""
    from models.config import fields_of
    from models.datasets import parse_dataset

    args = ["--dataset", dataset]
    c, size, _ = model.input_shape
    if not parse_dataset(dataset).builtin and size in (28, 32, 64) and c in (1, 3):
        args += ["--image-size", str(size), "--channels", str(c)]
    for config in (model, train):
        for f in fields_of(type(config), cli=True):
            if f.name not in ("beta", "seed"):
                args += ["--" + f.name.replace("_", "-"), str(getattr(config, f.name))]
    return args


def cmd_sweep(args) -> int:
    """Run ``vaegui sweep``; 0 when every run finished, 130 after Ctrl+C (or SIGTERM: the
    finished runs stay in the table), 2 with a message on bad options."""
    from models.allocator import keep_freed_memory
    from models.penalties import OBJECTIVES
    from models.sweep import RunEpoch, RunFinished, RunStarted, run_sweep, tradeoff
    from vaegui.cli import _configs

    keep_freed_memory()  # this process exists to train

    args.beta_list, args.beta, args.seed = args.beta, None, None
    current = []
    interrupted = False

    def on_signal(_signum, _frame):
        nonlocal interrupted
        interrupted = True
        for trainer in current:
            trainer.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    if hasattr(signal, "pthread_sigmask"):  # a parent (the window's Qt threads) may hand down a blocked mask
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    rows = []
    try:
        data, model_cfg, train_cfg = _configs(args)
        total = len(args.beta_list) * len(args.seeds)
        print(f"# sweep of {total} runs: beta {args.beta_list} x seeds {args.seeds}; {model_cfg.describe()}, "
              f"{OBJECTIVES[train_cfg.objective]}, {train_cfg.epochs} epochs on {data.title}; nats per image",
              file=sys.stderr)
        events = run_sweep(model_cfg, train_cfg, data, args.beta_list, args.seeds, args.out, args.scores,
                           args.score_points, stopped=lambda: interrupted,
                           on_trainer=lambda t: current.__setitem__(slice(None), [t]))
        for event in events:
            if isinstance(event, RunStarted):
                out = {"event": "run", "index": event.index, "total": event.total, "beta": event.beta,
                       "seed": event.seed}
            elif isinstance(event, RunEpoch):
                out = {"event": "epoch", "index": event.index, "epoch": event.end.epoch,
                       "test_neg_elbo": event.end.test_neg_elbo, "seconds": event.end.seconds}
            else:
                assert isinstance(event, RunFinished)
                rows.append(event.row)
                out = {"event": "row", "index": event.index, **event.row}
            if args.json:
                print(json.dumps(out), flush=True)
            elif isinstance(event, RunFinished):
                r = event.row
                print(f"run {event.index + 1}/{total}  beta {r['beta']:g}  seed {r['seed']}  test -ELBO "
                      f"{r['test_neg_elbo']:8.2f}  KL {r['test_kl']:6.2f}  active {r['active_dims']}"
                      + (f"  MIG {r['mig']:.3f}" if "mig" in r else ""), flush=True)
    except ValueError as exc:
        print(f"vaegui sweep: {exc}", file=sys.stderr)
        return 2
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not args.json and rows:
        print("# per beta: mean (sd over seeds)")
        for p in tradeoff(rows):
            print(f"beta {p['beta']:g}  runs {p['n']}  test -ELBO {p['neg_elbo']:.2f} ({p['neg_elbo_sd']:.2f})"
                  + (f"  MIG {p['score']:.3f} ({p['score_sd']:.3f})" if p["score"] == p["score"] else ""))
    if interrupted:
        print("vaegui sweep: interrupted; " + (f"the {len(rows)} finished runs are in {args.out}/sweep.csv" if rows
                                                else "no run had finished"), file=sys.stderr)
        return 130
    return 0

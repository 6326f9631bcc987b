"""``vaegui train --distributed`` (under torchrun) and ``vaegui train --nproc N`` (which
starts torchrun): the command line's side of :mod:`models.distributed`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def add_distributed_options(train: argparse.ArgumentParser) -> None:
    train.add_argument("--distributed", action="store_true",
                       help="train as one rank of a torchrun group (DistributedDataParallel: gloo on CPU, NCCL on "
                            "CUDA); --batch-size is per rank, the global batch is N × it; rank 0 alone prints and "
                            "writes --run-dir / --save")
    train.add_argument("--nproc", type=int, metavar="N",
                       help="start N processes on this machine with torchrun (--standalone) and train with "
                            "--distributed; for several machines run torchrun yourself (see README)")
    train.add_argument("--dist-timeout", type=float, default=600.0, metavar="SECONDS",
                       help="a rank waiting longer than this for the others fails (default 600)")


def strip_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def launch(args, argv: list[str]) -> int:
    """``vaegui train --nproc N ...``: ``torchrun --standalone --nproc_per_node=N -m vaegui
    train --distributed ...``; returns torchrun's exit status. When torchrun fails and the
    run folder still says running (rank 0 was killed before it could say more), its
    status is set to failed with torchrun's exit status."""
    if args.nproc < 1:
        print("vaegui train: --nproc must be at least 1", file=sys.stderr)
        return 2
    if not args.resume:  # settings DDP cannot split are said once, before torchrun starts N processes
        from models.config import ModelConfig, TrainConfig, fields_of
        from models.distributed import check_distributable

        try:
            train = TrainConfig(**{f.name: getattr(args, f.name) for f in fields_of(TrainConfig, cli=True)
                                   if getattr(args, f.name, None) is not None})
            check_distributable(args.model or ModelConfig().model, train)
        except ValueError as exc:
            print(f"vaegui train: {exc}", file=sys.stderr)
            return 2
    if (args.device or "").startswith("cuda"):  # said once here, not by each of N ranks
        from models.distributed import DistributedError, gpu_count, rank_device

        try:
            rank_device(args.device, args.nproc, gpu_count())
        except DistributedError as exc:
            print(f"vaegui train: {exc}", file=sys.stderr)
            return 2
    rest = strip_nproc(argv)
    if "--distributed" not in rest:
        rest.append("--distributed")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
               "-m", "vaegui", *rest]
    print("# " + " ".join(command[2:]), file=sys.stderr, flush=True)
    try:
        status = subprocess.call(command)
    except KeyboardInterrupt:
        status = 130
    if status != 0 and args.run_dir:
        mark_failed(args.run_dir, f"a rank failed: torchrun ended with exit status {status}")
    return status


def mark_failed(folder: str, message: str) -> None:
    """Set a run folder's status to failed when it still says running."""
    from models.checkpoint import CheckpointError, atomic_write
    from models.runfolder import STATUS_FILE

    path = Path(folder) / STATUS_FILE
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if status.get("state") != "running":
        return
    status.update(state="failed", message=message, ended=time.time())
    try:
        atomic_write(path, (json.dumps(status, indent=1) + "\n").encode())
    except CheckpointError:
        pass


def join(args, resuming: bool):
    """Join the torchrun group for ``--distributed`` and turn the per-rank ``--batch-size``
    into the global batch (N × per-rank; a resumed run keeps its checkpoint's global batch
    unless ``--batch-size`` is given). Returns the :class:`models.distributed.DistContext`.

    Raises:
        models.distributed.DistributedError: outside torchrun, or no group could be formed.
    """
    from models.config import TrainConfig
    from models.distributed import init_from_env

    ctx = init_from_env(args.device or "auto", args.dist_timeout)
    if ctx.note and ctx.is_main:
        print(f"# {ctx.note}", file=sys.stderr, flush=True)
    if args.batch_size is not None or not resuming:
        per_rank = args.batch_size if args.batch_size is not None else TrainConfig().batch_size
        args.batch_size = per_rank * ctx.world
    args.rank = ctx.rank
    if ctx.rank != 0:  # rank 0 alone writes
        args.save = args.run_dir = None
        args.tensorboard = False
    return ctx

"""The training process: a child process that runs :class:`models.trainer.Trainer`
on its own main thread and streams plain data back.

Why a process and not a QThread: measured on a 2-core machine, the same trainer
ran at 0.09-0.45× of its headless speed on a secondary thread of the GUI process
(GIL hand-offs with the event loop's painting, and a non-main thread's OpenMP
pool), and the window stalled for 150 ms at a time. In a child process it runs at
the speed of a headless run with the same number of threads, and the window stays
responsive (see README, "Benchmarks").

The child uses every core but one for its intra-op threads: with all cores, any
work of the window preempts one OpenMP thread and stalls the others at their
barriers (measured: 2 threads beside the window gave 24-31k samples/s, 1 thread
34-41k, on 2 cores). Where the last core pays anyway (the fp32 path on a CPU without
AVX-512), the process measures both counts as it trains and takes it
(:mod:`vaegui.threadtune`).

This module imports no Qt: it is what the spawned child runs. It speaks the typed
messages of :mod:`vaegui.protocol`.
"""

from __future__ import annotations

import os
import threading
import time
import traceback

import torch

from models.state import TrainingState, dataset_from_arrays, tensors_to_arrays
from models.trainer import EpochEnd, NonFiniteLossError, StepBatch, Trainer, TrainingDone, resolve_precision
from vaegui import protocol as msg
from vaegui.threadtune import ThreadTuner


def merge_steps(batches: list[StepBatch]) -> StepBatch:
    """Concatenate consecutive :class:`StepBatch` es into one (the newest progress fields)."""
    last = batches[-1]
    return StepBatch(
        epoch=last.epoch,
        steps=[s for b in batches for s in b.steps],
        recon=[v for b in batches for v in b.recon],
        kl=[v for b in batches for v in b.kl],
        neg_elbo=[v for b in batches for v in b.neg_elbo],
        loss=[v for b in batches for v in b.loss],
        step_in_epoch=last.step_in_epoch,
        steps_per_epoch=last.steps_per_epoch,
        total_steps=last.total_steps,
        samples_per_s=last.samples_per_s,
    )


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(exc).lower()


def run_job(job: msg.Job, send, stop_event, run_event, metrics_interval=0.05, snapshot_interval=0.25,
            tune_threads: bool = False) -> None:
    """Train one :class:`~vaegui.protocol.Job` and report through ``send(message)``;
    never raises.

    With ``tune_threads`` a run on the CPU measures whether taking every core trains faster
    than the thread count set now (:class:`vaegui.threadtune.ThreadTuner`), reports each
    measurement as :class:`~vaegui.protocol.Threads`, and ends with the thread count it
    started with.

    Whenever a trainer existed, its full state is sent back as a
    :class:`~vaegui.protocol.State` before :class:`~vaegui.protocol.Idle`, whatever
    ended the run, so the window can save or continue it.
    """
    from models.checkpoint import CheckpointError, autosave

    pending: list[StepBatch] = []
    trainer = writer = tuner = None
    start_threads, cores = torch.get_num_threads(), os.cpu_count() or 1
    settings = job.autosave
    ended, message = "failed", ""

    def save_auto() -> None:
        if settings is None or not settings.folder:
            return
        try:
            with WRITE_LOCK:
                path = autosave(settings.folder, *trainer.export_state(), keep=settings.keep)
            send(msg.Autosaved(str(path)))
        except CheckpointError as exc:  # a full disk must not stop training
            send(msg.AutosaveFailed(str(exc)))

    def flush() -> None:
        nonlocal pending
        if pending:
            send(msg.Steps(merge_steps(pending)))
            pending = []

    try:
        trainer = Trainer(job.model, job.train, dataset_from_arrays(job.data), stop_event=stop_event,
                          run_event=run_event)
        if job.resume is not None:
            trainer.load_state(job.resume.tensors(), job.resume.info)
        writer = open_run_folder(job, trainer, send)
        precision = resolve_precision(job.train.precision, trainer.device)
        send(msg.Started(str(trainer.device), precision, trainer.steps_per_epoch,
                         trainer.steps_per_epoch * job.train.epochs, start_threads, cores))
        if tune_threads and trainer.device.type == "cpu" and cores > start_threads:
            tuner = ThreadTuner(start_threads, cores)

        def snapshot() -> None:
            version, state = trainer.snapshot()
            send(msg.Snapshot(version, tensors_to_arrays(state)))

        snapshot()
        every_s = float(settings.every_s) if settings is not None else 0.0
        last_metrics = last_snapshot = last_autosave = time.perf_counter()
        for event in trainer.run():
            now = time.perf_counter()
            if isinstance(event, StepBatch):
                if writer is not None:
                    writer.steps(event)
                pending.append(event)
                if tuner is not None:
                    measured = tuner.measurements
                    threads = tuner.observe(len(event.steps) * job.train.batch_size)
                    if threads is not None:
                        torch.set_num_threads(threads)
                    if tuner.measurements != measured:
                        send(msg.Threads(tuner.current, cores, dict(tuner.rates)))
                # the epoch's last steps go out at once: the evaluation that follows may take a while
                if now - last_metrics >= metrics_interval or event.step_in_epoch == event.steps_per_epoch:
                    flush()
                    last_metrics = now
                if now - last_snapshot >= snapshot_interval:
                    snapshot()
                    last_snapshot = now
                if every_s and now - last_autosave >= every_s:
                    save_auto()
                    last_autosave = now
                continue
            flush()
            if tuner is not None:
                tuner.interrupt()  # an evaluation ran since the last steps
            if isinstance(event, EpochEnd):
                snapshot()
                last_snapshot = now
                send(msg.Epoch(event))
                if writer is not None:
                    with WRITE_LOCK:
                        problem = writer.epoch(event, trainer.export_state, trainer.model)
                    if problem:
                        send(msg.AutosaveFailed(f"run folder: {problem}"))
                save_auto()
                last_autosave = time.perf_counter()
            elif isinstance(event, TrainingDone):
                snapshot()
                send(msg.Done(event))
                ended = "stopped" if event.stopped else "finished"
    except NonFiniteLossError as exc:
        flush()
        message = str(exc)
        send(msg.Failed(f"{exc}, then press Continue."))
    except Exception as exc:  # every error must reach the window, not end the process
        message = f"{type(exc).__name__}: {exc}"
        if _is_out_of_memory(exc):
            where = "the GPU" if "cuda" in str(exc).lower() else "this computer"
            send(msg.Failed(f"out of memory on {where}: try a smaller batch size or hidden width",
                        traceback.format_exc()))
        else:
            send(msg.Failed(f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    finally:
        torch.set_num_threads(start_threads)
        if writer is not None:
            close_run_folder(writer, trainer, ended, message)
        if trainer is not None:
            try:
                send(msg.State(TrainingState.from_tensors(*trainer.export_state())))
            except Exception as exc:  # the window keeps its last snapshot
                send(msg.Failed(f"could not read the training state back: {exc}", traceback.format_exc()))
        send(msg.Idle())


def open_run_folder(job: msg.Job, trainer, send):
    """The job's :class:`models.runfolder.RunWriter`, or None (also when the folder cannot be
    written: the window is told and training goes on without it)."""
    if job.run_folder is None:
        return None
    from pathlib import Path

    from models.runfolder import METRICS_FILE, writer_for

    settings = job.run_folder
    try:
        resume = job.resume is not None and (Path(settings.folder) / METRICS_FILE).exists()
        return writer_for(settings.folder, trainer, resume=resume, samples_every=settings.samples_every,
                          tensorboard=settings.tensorboard)
    except (ValueError, ImportError) as exc:  # RunFolderError, MissingTensorBoard
        send(msg.AutosaveFailed(f"no run folder for this run: {exc}"))
        return None


def close_run_folder(writer, trainer, ended: str, message: str) -> None:
    """Say in the run folder how the run ended (a stopped run's state saved as its latest checkpoint)."""
    def export():
        with WRITE_LOCK, torch.no_grad():
            return trainer.export_state()

    writer.finish(ended, message, export if trainer is not None else None)


def child_threads() -> int:
    """Intra-op threads of the training process: every core but one (at least one)."""
    import os

    return max(1, (os.cpu_count() or 2) - 1)


#: held while a checkpoint is written, so that a dying parent never cuts one short
WRITE_LOCK = threading.Lock()
#: seconds between two looks at the parent (the sentinel wakes the watch at once anyway)
PARENT_POLL_S = 0.5


def watch_parent(stop_event, run_event, exit=os._exit, parent=None) -> threading.Thread | None:
    """End this process soon after its parent (the window) dies, even by ``kill -9``.

    A daemon thread waits on the parent's process sentinel (``multiprocessing``'s
    handle that becomes ready when the parent ends), with a parent-pid check as a
    fallback. Then it asks the trainer to stop, waits for a checkpoint being written
    to finish (:data:`WRITE_LOCK`: the newest autosave stays whole), and exits without
    writing anything more. Without it a spawned child outlives a killed window and
    keeps training (shared/DESIGN.md, "Known pitfalls").

    Returns the thread, or None when this process has no multiprocessing parent.
    """
    import multiprocessing
    from multiprocessing.connection import wait

    parent = parent if parent is not None else multiprocessing.parent_process()
    if parent is None:
        return None
    ppid = os.getppid()

    def watch() -> None:
        while True:
            if wait([parent.sentinel], timeout=PARENT_POLL_S) or os.getppid() != ppid:
                break
        stop_event.set()
        run_event.set()
        with WRITE_LOCK:
            exit(0)

    thread = threading.Thread(target=watch, name="vaegui-parent-watch", daemon=True)
    thread.start()
    return thread


def child_main(jobs, events, stop_event, run_event, threads: int | None = None) -> None:
    """The child process's loop: one job at a time until ``None`` arrives.

    ``threads``: intra-op threads for training; by default every core but one, which
    is left to the window so that it stays responsive while training runs, and every core
    while that measures faster (:class:`vaegui.threadtune.ThreadTuner`). The
    process ends by itself within a second of its window dying (:func:`watch_parent`).
    """
    from models.allocator import keep_freed_memory
    from models.subnormals import flush_subnormals

    watch_parent(stop_event, run_event)
    flush_subnormals()  # before the intra-op threads start: they take this thread's mode
    torch.set_num_threads(threads or child_threads())
    keep_freed_memory()  # a step's freed activations stay in the process for the next one

    events.put(msg.Ready())
    while True:
        job = jobs.get()
        if job is None:
            events.put(msg.Exit())
            return
        run_job(job, events.put, stop_event, run_event, tune_threads=threads is None)

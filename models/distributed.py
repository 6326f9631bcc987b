"""Distributed data-parallel training on PyTorch's own engine: ``torchrun`` starts the
processes, ``torch.distributed`` connects them (gloo on the CPU, NCCL on CUDA) and
:class:`torch.nn.parallel.DistributedDataParallel` averages the gradients.

How a step is split, so that N processes train exactly as one process would on the
same global batch (``TrainConfig.batch_size`` is the global batch G = N × per-rank):

* every rank holds the same seeded generator, draws the same permutation each epoch
  and takes its contiguous share of each global batch (:meth:`DistContext.shard`, sizes
  differing by at most one on a last, short batch), so each image is seen once per
  epoch and the shares are disjoint;
* every rank draws the reparameterization noise of the whole global batch and uses
  its rows (the generators stay in step, and the noise is the single process's);
* each rank's loss is its images' sum × N / G, so DDP's average of the gradients is
  the gradient of the global batch's mean;
* the steps' metrics (sums of the ELBO terms) and a stop flag travel in one
  ``all_reduce`` every ``sync_every`` (10) steps: the reported curves are the global
  batch's, and a stop asked of any rank stops all of them after the same step;
* rank 0 alone evaluates on the test split at an epoch's end and sends the figures to
  the others (``broadcast_object_list``), and alone writes the run folder and checkpoints.

Only a loss that is a mean over images is split this way: the β-VAE objective, without
IWAE samples or free bits (the other objectives and those settings need the whole batch
at once: :func:`check_distributable`).
"""

from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from models.config import TrainConfig
from models.objectives import ELBOTerms, objective_terms


class DistributedError(RuntimeError):
    """Distributed training cannot start or went wrong; the message says why, for a person."""


def check_distributable(model_kind: str, config: TrainConfig) -> None:
    """Refuse settings whose loss is not a mean over images.

    Raises:
        ValueError: naming the setting.
    """
    for wrong, why in ((model_kind == "m2", "the semi-supervised M2 (its labelled batches)"),
                       (model_kind in ("hvae", "ladder"), "the two-layer and ladder VAEs (not yet: their two layers' "
                                                          "noise is not shared out)"),
                       (model_kind == "vqvae", "the VQ-VAE (not yet: its codebook's moving averages and restarts "
                                               "are per process)"),
                       (config.objective != "beta",
                        f"the {config.objective} objective (its penalty needs the whole batch)"),
                       (config.iw_k > 1, "IWAE samples (iw_k > 1)"),
                       (config.free_bits > 0, "free bits (a batch-mean KL)")):
        if wrong:
            raise ValueError(f"distributed training splits each batch across processes, which does not work for {why}")


@dataclass
class DistContext:
    """This process's place in a distributed run: ``rank`` of ``world`` processes,
    ``local_rank`` on its node, the ``backend``."""

    rank: int
    world: int
    local_rank: int
    backend: str
    #: the device string this rank trains on: ``"cuda"`` (GPU ``local_rank``, made current) or ``"cpu"``
    device: str = "cpu"
    #: why the device differs from the one asked for ("" when it does not), for rank 0 to say
    note: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of a global batch's rows ``(G, ...)``."""
        return torch.tensor_split(rows, self.world)[self.rank]

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """The sum over ranks of ``values`` (a small tensor, on the training device)."""
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def from_main(self, obj):
        """Rank 0's ``obj`` on every rank (pickled; small objects only)."""
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def in_torchrun() -> bool:
    """True when started by ``torchrun`` (its environment variables are set)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


def init_from_env(device: str = "auto", timeout_s: float = 600.0) -> DistContext:
    """Join the process group ``torchrun`` set up: NCCL when training on CUDA (each
    process on GPU ``LOCAL_RANK``; :func:`rank_device` decides), gloo otherwise. A
    collective that waits longer than ``timeout_s`` for a rank fails with an error.

    Raises:
        DistributedError: outside torchrun, or when the group cannot be formed.
    """
    if not in_torchrun():
        raise DistributedError("--distributed needs torchrun's environment: start it with "
                               "torchrun --nproc_per_node=N -m vaegui train --distributed ..., or use "
                               "vaegui train --nproc N")
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    where, note = rank_device(device, local_world, gpu_count())
    backend = "nccl" if where == "cuda" and dist.is_nccl_available() else "gloo"
    if where == "cuda":
        torch.cuda.set_device(local)
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(f"could not join the distributed group (rank {rank} of {world}): {exc}") from exc
    return DistContext(rank, world, local, backend, where, note)


def gpu_count() -> int:
    """The CUDA devices torch sees here (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def rank_device(device: str, local_world: int, gpus: int) -> tuple[str, str]:
    """Where each of the ``local_world`` processes on this machine trains, the same answer on
    every rank: ``("cuda", "")`` (one GPU each, GPU ``LOCAL_RANK``) or ``("cpu", note)``.

    Args:
        device: the ``--device`` asked for: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
            (an index is not kept: each process trains on GPU ``LOCAL_RANK``); any other
            device string is returned as it is.
        local_world: processes on this machine (torchrun's ``LOCAL_WORLD_SIZE``).
        gpus: CUDA devices this machine has.

    Returns:
        The device string (``"auto"`` without CUDA: the CPU, gloo's device) and, when
        ``"auto"`` could not give each process a GPU of its own and falls back to the CPU,
        a note saying so; NCCL cannot put two ranks on one GPU.

    Raises:
        DistributedError: when CUDA is asked for and there are fewer GPUs than processes.
    """
    if device.startswith("cuda"):
        if gpus < local_world:
            raise DistributedError(f"--device {device} needs a GPU for each process: {local_world} processes on "
                                   f"this machine, {gpus} GPU{'s' if gpus != 1 else ''}; start fewer processes "
                                   f"(--nproc {max(gpus, 1)}) or train on the CPU (--device cpu)")
        return "cuda", ""
    if device != "auto":
        return device, ""
    if gpus >= local_world:
        return "cuda", ""
    if gpus:
        return "cpu", (f"{local_world} processes on this machine but {gpus} GPU{'s' if gpus != 1 else ''}, "
                       f"and each process needs its own: training on the CPU (gloo); --nproc {gpus} trains on "
                       f"the GPU{'s' if gpus != 1 else ''}")
    return "cpu", ""


def shutdown(together: bool = True) -> None:
    """Leave the process group (when one was joined). With ``together``, the ranks first
    wait for each other (a barrier), so that none tears its connections down while
    another still uses them: gloo then aborts the late rank ("terminate called without an
    active exception", seen one run in twelve on a loaded machine). After a failure the
    ranks leave without waiting.

    Drop the trainer (its DistributedDataParallel model holds the group) before calling
    this: the group is then freed here, by a collection after it is destroyed, while the
    interpreter is alive. A group still held at exit is torn down with the process, and
    gloo's threads then abort it (the same message, seen on rank 1 of a finished run)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if together:
        try:
            dist.barrier()
        except RuntimeError:  # a rank is gone: leave anyway
            pass
    dist.destroy_process_group()
    gc.collect()  # DDP's reducer and its hooks form cycles: free the group now, not at exit


class ObjectiveModule(nn.Module):
    """The training objective as a module, so that :class:`DistributedDataParallel`
    sees the forward pass it must synchronise (the VAE's encode and decode are called by
    :func:`models.objectives.objective_terms`, not by ``VAE.forward``)."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, x, y, noise, kl_weight: float, autocast: bool, penalty=None):
        terms = objective_terms(self.vae, x, y, None, kl_weight=kl_weight, autocast=autocast, penalty=penalty,
                                noise=noise)
        return terms.recon, terms.kl, terms.neg_elbo, terms.loss, terms.extra


class DistributedStep:
    """The distributed side of a training step, held by :class:`models.trainer.Trainer`.

    Args:
        ctx: this process's place in the run; vae: the trainer's model (wrapped in DDP here).
    """

    def __init__(self, ctx: DistContext, vae: nn.Module, device: torch.device):
        self.ctx, self.vae, self.device = ctx, vae, device
        self.ddp = wrap(vae, ctx, device)
        #: the global batch size of each step recorded since the last :meth:`reduce`
        self.sizes: list[int] = []
        #: a stop was asked of some rank: every rank stops before its next step
        self.agreed_stop = False

    def terms(self, x: torch.Tensor, y: torch.Tensor | None, n_global: int, generator: torch.Generator,
              kl_weight: float, autocast: bool) -> tuple[ELBOTerms, torch.Tensor]:
        """This rank's share ``x`` ``(B_r, C, H, W)`` of a global batch of ``n_global`` images: its
        terms (nats per image) and the loss to differentiate, the share's sum × N / G. The noise of
        the whole global batch is drawn from the shared generator and this rank's rows used."""
        noise = None
        if not self.vae.is_autoencoder:
            noise = self.ctx.shard(torch.randn((n_global, self.vae.latent_dim), generator=generator,
                                               device=self.device))
        recon, kl, neg, loss, extra = self.ddp(x, y, noise, kl_weight, autocast)
        terms = ELBOTerms(recon=recon, kl=kl, neg_elbo=neg, loss=loss, extra=extra)
        return terms, loss.sum() * (self.ctx.world / n_global)

    def sums(self, terms: ELBOTerms, n_global: int) -> torch.Tensor:
        """The step's sums of recon, KL, −ELBO and loss over this share ``(4,)``, for :meth:`reduce`."""
        self.sizes.append(n_global)
        return torch.stack([terms.recon.sum(), terms.kl.sum(), terms.neg_elbo.sum(), terms.loss.sum()]).detach().float()

    def reduce(self, sums: list[torch.Tensor], stop_requested: bool) -> torch.Tensor:
        """One all_reduce for the steps since the last call: their global means ``(k, 4)`` on the
        CPU; :attr:`agreed_stop` is set when any rank was asked to stop."""
        stacked = torch.stack(sums)
        flag = torch.full((len(stacked), 1), float(stop_requested), device=stacked.device)
        values = self.ctx.all_sum(torch.cat([stacked, flag], dim=1)).cpu()
        if bool((values[:, -1] > 0).any()):
            self.agreed_stop = True
        means = values[:, :-1] / torch.tensor(self.sizes, dtype=values.dtype)[:, None]
        self.sizes = []
        return means


def wrap(vae: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """The VAE's objective inside :class:`torch.nn.parallel.DistributedDataParallel`."""
    module = ObjectiveModule(vae)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return nn.parallel.DistributedDataParallel(module, device_ids=[index], gradient_as_bucket_view=True)
    return nn.parallel.DistributedDataParallel(module, gradient_as_bucket_view=True)

"""The resource guard: a run's peak memory, estimated before it starts, against what
the training device has free.

The estimate runs the real objective (:func:`models.objectives.objective_terms`) on
4 and 8 images on the CPU and adds up the bytes of every tensor autograd saves for
the backward pass (``torch.autograd.graph.saved_tensors_hooks``). Two batch sizes
and two numbers of importance samples separate the cost per image of the encoder
from the cost per decoded sample, so the figure follows the network, the
likelihood, the conv or MLP architecture and the IWAE bound without a formula per
model; it takes milliseconds for any setting the configs allow. (PyTorch's ``meta``
device would need no arithmetic at all, but its first use imports the compiler
stack, a second's freeze of the window.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from models.config import ModelConfig, TrainConfig

#: images decoded at once by the importance-sampled evaluation (``models.evaluation``)
IW_CHUNK_IMAGES = 20_000
#: test images encoded at once by the ELBO evaluation
EVAL_CHUNK = 1000
#: a run may plan to use at most this share of the free memory
HEADROOM = 0.8
#: a backward pass holds gradients of the saved activations besides the activations
BACKWARD_FACTOR = 2.0
#: an evaluation (no autograd) keeps at most this share of a training forward's activations
NO_GRAD_FACTOR = 0.5
GB = 1024**3


class ResourceError(ValueError):
    """A run would need more memory than the device has free; the message gives both
    figures and what to lower."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of a run, in bytes, by part.

    Attributes:
        step: activations of one training step (forward saved for backward, and the
            backward's gradients of them).
        evaluation: the largest chunk of the per-epoch evaluation (ELBO on the test
            split in chunks of 1,000 images; importance sampling in chunks of 20,000
            decoded images), half of what a training forward of it would keep.
        parameters: weights, gradients and Adam's two moments (4 × the weights).
        data: the dataset on the training device (and the copy in transit to the
            training process).
    """

    step: int
    evaluation: int
    parameters: int
    data: int

    @property
    def peak(self) -> int:
        """Bytes at the busiest moment: parameters + data + the larger of step and evaluation."""
        return self.parameters + self.data + max(self.step, self.evaluation)


@functools.lru_cache(maxsize=64)
def _saved_bytes(config: ModelConfig, batch: int, iw_k: int) -> int:
    """Bytes autograd saves in one forward pass of the training objective, run on a few
    CPU images (the widths are bounded by the configs, so this takes milliseconds)."""

    with torch.random.fork_rng(devices=[]):  # the user's random stream is not touched
        x = torch.rand(batch, *config.input_shape)
        # M2's unlabelled bound decodes every class: measured without labels, the step's largest part
        y = torch.zeros(batch, dtype=torch.long) if config.model == "cvae" else None
        return _count_saved(_probe_model(config), x, y, iw_k)


@functools.lru_cache(maxsize=2)
def _probe_model(config: ModelConfig):
    from models.vae import build_model

    with torch.random.fork_rng(devices=[]):
        return build_model(config)


def _count_saved(model, x: torch.Tensor, y: torch.Tensor | None, iw_k: int) -> int:
    from models.objectives import objective_terms

    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        objective_terms(model, x, y, None, iw_k=iw_k).loss.mean()
    return total


def per_image_bytes(config: ModelConfig, iw_k: int = 1) -> tuple[int, int]:
    """``(encoder, per_sample)``: bytes of saved activations per image of a training
    step, split into what each image costs once (encoder, one-sample ELBO) and what
    each further importance sample costs (decoder). For ``iw_k`` = 1 ``per_sample`` is 0.

    Parameters (saved once per step, whatever the batch) cancel out of the
    differences between the probes.
    """
    def per_image(k: int) -> int:
        return (_saved_bytes(config, 8, k) - _saved_bytes(config, 4, k)) // 4

    if iw_k <= 1 or config.model == "ae":
        return per_image(1), 0
    two, three = per_image(2), per_image(3)
    per_sample = max(0, three - two)
    return max(0, two - 2 * per_sample), per_sample


def estimate_memory(model_config: ModelConfig, train_config: TrainConfig, data_bytes: int) -> MemoryEstimate:
    """The :class:`MemoryEstimate` of training ``model_config`` with ``train_config``
    on a dataset of ``data_bytes`` (train + test images as stored)."""
    k = train_config.iw_k if model_config.model != "ae" else 1
    base, per_sample = per_image_bytes(model_config, k)
    step = int(BACKWARD_FACTOR * train_config.batch_size * (base + k * per_sample))
    one, _ = per_image_bytes(model_config, 1)
    evaluation = EVAL_CHUNK * one
    if train_config.eval_iw and model_config.model != "ae":
        _, sample = per_image_bytes(model_config, 2)
        evaluation = max(evaluation, IW_CHUNK_IMAGES * sample)
    # without autograd each layer's output is freed once the next has used it: at most
    # about half of what a training forward keeps is alive at once
    evaluation = int(NO_GRAD_FACTOR * evaluation)
    params = _probe_model(model_config).parameter_count()
    return MemoryEstimate(step=step, evaluation=evaluation, parameters=4 * 4 * params, data=2 * int(data_bytes))


def _cgroup_limit() -> int | None:
    """The memory left under this process's cgroup v2 limit (containers), if any."""
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as fh:
            used = int(fh.read().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Free bytes on ``device``: for the CPU, the host's available memory (psutil; the
    cgroup's limit where lower); for CUDA, ``torch.cuda.mem_get_info``; None when unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    if device.type != "cpu":
        return None
    import psutil

    free = int(psutil.virtual_memory().available)
    limit = _cgroup_limit()
    return min(free, limit) if limit is not None else free


def _gb(n: float) -> str:
    return f"{n / GB:,.1f} GB" if n >= 0.1 * GB else f"{n / 1024**2:,.0f} MB"


def check_memory(
    model_config: ModelConfig,
    train_config: TrainConfig,
    data_bytes: int,
    device: torch.device | str = "cpu",
    free: int | None = None,
) -> MemoryEstimate:
    """Refuse a run whose estimated peak exceeds 80 % of the free memory on ``device``.

    Args:
        data_bytes: the dataset's train and test images as stored (bytes).
        free: free bytes, for tests; measured by :func:`available_memory` by default.

    Returns:
        The estimate, when the run fits (or when the free memory cannot be measured).

    Raises:
        ResourceError: with the settings, both figures and what to lower, e.g.
            "batch 8,192 × hidden 4,096 × K 5,000 needs ~1,200 GB; this machine has 20 GB free: ...".
    """
    estimate = estimate_memory(model_config, train_config, data_bytes)
    free = available_memory(device) if free is None else free
    if free is None or estimate.peak <= HEADROOM * free:
        return estimate
    k = train_config.iw_k if model_config.model != "ae" else 1
    setting = f"batch {train_config.batch_size:,} × hidden {model_config.hidden_dim:,}"
    if k > 1:
        setting += f" × K {k:,}"
    parts = {
        "a training step": estimate.step, "the evaluation": estimate.evaluation,
        "the dataset": estimate.data, "the weights and Adam's state": estimate.parameters,
    }
    biggest = max(parts, key=parts.get)
    advice = {
        "a training step": "lower the IWAE samples K or the batch size" if k > 1
        else "lower the batch size or the hidden width",
        "the evaluation": "lower the log p(x) estimate's K",
        "the dataset": "use fewer images",
        "the weights and Adam's state": "lower the hidden width",
    }[biggest]
    where = "this GPU" if torch.device(device).type == "cuda" else "this machine"
    raise ResourceError(
        f"{setting} needs ~{_gb(estimate.peak)} of memory ({biggest}: {_gb(parts[biggest])}); {where} has "
        f"{_gb(free)} free: {advice}"
    )


def dataset_bytes(dataset) -> int:
    """Bytes of a dataset's train and test images as stored (uint8 or float32)."""
    return int(dataset.train_x.nbytes + dataset.test_x.nbytes)

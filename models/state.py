"""Plain-data forms of what crosses a process boundary: a run's resumable
:class:`TrainingState`, and datasets and tensors as numpy arrays (the only
numpy/torch conversions of the app live here).

Everything in this module is picklable without torch objects, so it travels over a
``multiprocessing`` queue as plain arrays and JSON-like dicts; the one exception is a
dataset in shared memory sent with ``shared=True``, whose tensors travel as handles.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch

from models.config import ModelConfig, TrainConfig
from models.data import ImageDataset


def tensors_to_arrays(tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """CPU tensors → numpy arrays sharing their memory (``{name: (…)}`` → same shapes)."""
    return {k: v.detach().cpu().numpy() for k, v in tensors.items()}


def arrays_to_tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """numpy arrays → CPU tensors sharing their memory."""
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


_DATASET_TENSORS = ("train_x", "train_y", "test_x", "test_y", "train_factors", "test_factors")
#: a dataset moves into shared memory (``/dev/shm``) only where this many times its size is free
#: there: as much again stays for others (containers often give it 64 MB)
SHM_SPARE_FACTOR = 2


def shm_free_bytes() -> int:
    """Free bytes of ``/dev/shm``, where shared CPU tensors live on Linux (0 where there is none)."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def share_tensors(tensors: list[torch.Tensor]) -> bool:
    """Move the storages of CPU ``tensors`` into shared memory, in place
    (:meth:`torch.Tensor.share_memory_`: every holder of these tensors then reads the shared
    copy, and a ``multiprocessing`` queue sends a handle to it in place of the bytes).

    Only on Linux, and only when ``/dev/shm`` has :data:`SHM_SPARE_FACTOR` times their size
    free; returns whether they are shared now. Nothing changes when they are not. The move
    frees the old memory: call it before any other thread reads the tensors and before any
    numpy view of them is taken (a view keeps the old address)."""
    if not sys.platform.startswith("linux") or any(t.device.type != "cpu" for t in tensors):
        return False
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors if not t.is_shared()}
    if not storages:
        return True
    if shm_free_bytes() < SHM_SPARE_FACTOR * sum(storages.values()):
        return False
    try:
        for t in tensors:
            t.share_memory_()
    except RuntimeError:  # the shared-memory manager refused: the rest keep their private copy
        return all(t.is_shared() for t in tensors)
    return True


def dataset_tensors(data: ImageDataset) -> list[torch.Tensor]:
    """The dataset's tensors (images, labels, factors where there are some)."""
    return [getattr(data, k) for k in _DATASET_TENSORS if getattr(data, k) is not None]


def dataset_to_arrays(data: ImageDataset, shared: bool = False) -> dict:
    """A picklable, framework-neutral copy of a dataset: images ``(N, C, H, W)`` (uint8,
    or float32 pixels in [0, 1]), labels ``(N,)``, the name, the class names and the
    ground-truth factors ``(N, K)`` with their names (None where the data has none).

    ``shared``: where the dataset's tensors are all in shared memory already
    (:func:`share_tensors`), they are returned as they are, not as numpy arrays: a training
    process then maps the same pages instead of receiving a pickled copy. The receiving side
    must not write to them."""
    as_tensors = shared and all(t.is_shared() for t in dataset_tensors(data))

    def out(t: torch.Tensor | None):
        return None if t is None else t if as_tensors else t.numpy()

    return {
        "name": data.name,
        **{k: out(getattr(data, k)) for k in _DATASET_TENSORS},
        "class_names": tuple(data.class_names),
        "factor_names": tuple(data.factor_names),
    }


def dataset_from_arrays(arrays: dict) -> ImageDataset:
    """The inverse of :func:`dataset_to_arrays` (numpy arrays and shared tensors are used as
    they are, not copied)."""

    def tensor(key: str) -> torch.Tensor | None:
        value = arrays.get(key)
        return value if value is None or isinstance(value, torch.Tensor) else torch.from_numpy(value)

    return ImageDataset(
        name=arrays["name"],
        **{k: tensor(k) for k in _DATASET_TENSORS},
        class_names=arrays["class_names"],
        factor_names=tuple(arrays.get("factor_names", ())),
    )


@dataclass(frozen=True)
class Position:
    """Where a run stands: epochs completed, global step, weight version, the epoch
    whose data order is drawn, and steps done in it."""

    epoch: int
    step: int
    version: int
    perm_epoch: int
    step_in_epoch: int


@dataclass(frozen=True)
class TrainingState:
    """Everything needed to resume a run exactly, as plain data: what
    :meth:`models.trainer.Trainer.export_state` returns and a checkpoint holds.

    Attributes:
        arrays: ``model.*`` weights, ``optimizer.<i>.<name>`` Adam moments and step
            counts, ``rng.generator`` and ``data.permutation``, as numpy arrays.
        info: the JSON description (configs, dataset spec, position, history, ...),
            checked by :func:`models.checkpoint.check_info` when read from a file.
    """

    arrays: dict
    info: dict

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], info: dict) -> TrainingState:
        return cls(tensors_to_arrays(tensors), info)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The arrays as CPU tensors (shared memory), for the trainer or a checkpoint."""
        return arrays_to_tensors(self.arrays)

    def weights(self) -> dict[str, torch.Tensor]:
        """The model's ``state_dict`` (the ``model.`` prefix removed)."""
        return {k[len("model."):]: torch.from_numpy(v) for k, v in self.arrays.items() if k.startswith("model.")}

    @functools.cached_property
    def model_config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.info["model_config"])

    @functools.cached_property
    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.info["train_config"])

    @functools.cached_property
    def position(self) -> Position:
        pos = self.info.get("position", {})
        return Position(*(int(pos.get(k, 0)) for k in ("epoch", "step", "version", "perm_epoch", "step_in_epoch")))

    @functools.cached_property
    def steps_per_epoch(self) -> int:
        """Steps in one epoch: the training split's size over the batch size, rounded up."""
        return -(-int(self.info["dataset"]["n_train"]) // self.train_config.batch_size)

    @property
    def at_epoch_end(self) -> bool:
        """True when the run stopped between two epochs (not in the middle of one)."""
        p = self.position
        return p.step_in_epoch in (0, self.steps_per_epoch) and p.perm_epoch == p.epoch


def state_tensors(module_or_state, prefix: str, on_device: bool = False) -> dict[str, torch.Tensor]:
    """Detached contiguous CPU copies of a module's ``state_dict`` (or a state dict) as
    ``{prefix + name: tensor}``; ``on_device``: copies on each tensor's own device instead."""
    state = module_or_state.state_dict() if hasattr(module_or_state, "state_dict") else module_or_state
    if on_device:
        return {f"{prefix}{k}": torch.as_tensor(v).detach().clone() for k, v in state.items()}
    return {f"{prefix}{k}": torch.as_tensor(v).detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str,
                      on_device: bool = False) -> dict[str, torch.Tensor]:
    """An optimizer's per-parameter state (Adam's moments and step counts) as CPU tensors named
    ``{prefix}.{parameter index}.{name}`` (its param groups are JSON and kept apart);
    ``on_device``: copies on each tensor's own device instead."""
    out: dict[str, torch.Tensor] = {}
    for index, state in optimizer.state_dict()["state"].items():
        out.update(state_tensors(state, f"{prefix}.{index}.", on_device))
    return out


def optimizer_state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[int, dict[str, torch.Tensor]]:
    """The inverse of :func:`optimizer_tensors`: ``{parameter index: {name: tensor}}``."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key in tensors:
        if key.startswith(prefix + "."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = tensors[key]
    return state

"""Checkpoints: safetensors weights and training state plus JSON metadata, in one
file that never runs code when it is opened.

A checkpoint file (``.vae``) is a safetensors file holding

* ``model.*``: the network's weights (what a colleague needs to explore the model);
* ``optimizer.<i>.<name>``, ``rng.generator``, ``data.permutation``: Adam's state,
  the random-number generator and the data order, for an exact resume;

and, in the safetensors header's metadata, one JSON document (key ``vaegui``) with
the model config, the training config, the dataset spec, the position in the data
order, the metric history, the app and torch versions and the creation time.

Saves are atomic: the bytes go to a temporary file in the destination folder, are
flushed and fsync'ed, then ``os.replace`` puts them in place, so a failure part-way
leaves any previous file intact and no partial file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

import torch

from models.config import ModelConfig, TrainConfig

FORMAT = "vaegui-checkpoint"
FORMAT_VERSION = 1
SUFFIX = ".vae"


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read; the message says why, for a person."""


def _app_version() -> str:
    try:
        return importlib_metadata.version("vaegui")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Checkpoint:
    """A checkpoint read from disk.

    Attributes:
        path: the file.
        model_config, train_config: the configs the model was trained with.
        info: the whole JSON document (dataset spec, position, history, versions).
        tensors: every tensor in the file, on the CPU.
    """

    path: Path
    model_config: ModelConfig
    train_config: TrainConfig
    info: dict
    tensors: dict[str, torch.Tensor]

    @property
    def weights(self) -> dict[str, torch.Tensor]:
        """The model's ``state_dict``."""
        return {k[len("model."):]: v for k, v in self.tensors.items() if k.startswith("model.")}

    @property
    def has_training_state(self) -> bool:
        """True when the optimizer state, RNG state and data order are all present."""
        keys = self.tensors.keys()
        return (
            any(k.startswith("optimizer.") for k in keys)
            and "rng.generator" in keys
            and "data.permutation" in keys
            and bool(self.info.get("optimizer_param_groups"))
        )

    @property
    def epochs_done(self) -> int:
        return int(self.info.get("position", {}).get("epoch", 0))

    @property
    def dataset_name(self) -> str:
        return str(self.info.get("dataset", {}).get("name", ""))


def checkpoint_bytes(tensors: dict[str, torch.Tensor], info: dict) -> bytes:
    """Serialise ``tensors`` and ``info`` (a :meth:`Trainer.export_state` pair) to bytes."""
    from safetensors.torch import save

    document = dict(info)
    document.update(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "app_version": _app_version(),
            "torch_version": torch.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "vaegui": json.dumps(document)}
    return save({k: v.contiguous() for k, v in tensors.items()}, metadata=header)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``).

    Raises:
        CheckpointError: when the folder is missing, read-only or full; nothing is
            left half-written and an existing file at ``path`` is untouched.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            _write_all(fh, data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        try:  # make the rename itself durable
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CheckpointError(f"could not save {path}: {reason}") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _write_all(fh, data: bytes) -> None:
    # In slices, so that a disk filling up part-way fails here (and tests can inject it).
    view = memoryview(data)
    for start in range(0, len(view), 1 << 20):
        fh.write(view[start : start + (1 << 20)])


def save_checkpoint(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], info: dict) -> Path:
    """Atomically save a checkpoint; returns the path written.

    Raises:
        CheckpointError: when it cannot be written (the previous file, if any, is intact).
    """
    atomic_write(path, checkpoint_bytes(tensors, info))
    return Path(path)


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint without running any code from it.

    Raises:
        CheckpointError: for a missing, truncated or foreign file, a file written by a
            newer format, or configs that do not describe the weights in it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path.name} is not a vaegui checkpoint, or it is damaged or truncated ({_short(exc)})"
        ) from exc
    if header.get("format") != FORMAT or "vaegui" not in header:
        raise CheckpointError(f"{path.name} is a safetensors file but not a vaegui checkpoint")
    try:
        version = int(header.get("format_version", "0"))
    except ValueError:
        version = -1
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path.name} was written by a newer vaegui (checkpoint format {version}); "
            f"this version reads format {FORMAT_VERSION}: update vaegui to open it"
        )
    if version < 1:
        raise CheckpointError(f"{path.name} has an unknown checkpoint format version {header.get('format_version')!r}")
    try:
        info = json.loads(header["vaegui"])
        model_config = ModelConfig.from_dict(info["model_config"])
        train_config = TrainConfig.from_dict(info["train_config"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path.name}: its description is damaged ({_short(exc)})") from exc
    checkpoint = Checkpoint(path, model_config, train_config, info, tensors)
    check_weights(checkpoint.weights, model_config, path.name)
    return checkpoint


def check_weights(weights: dict[str, torch.Tensor], config: ModelConfig, name: str = "the file") -> None:
    """Raise :class:`CheckpointError` unless ``weights`` fit a model of ``config`` exactly."""
    from models.vae import VAE

    expected = {k: tuple(v.shape) for k, v in VAE(config).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in weights.items()}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{name} does not hold the weights of a {config.describe()} "
            f"(missing: {', '.join(missing) or 'none'}; unexpected: {', '.join(extra) or 'none'})"
        )
    for key, shape in expected.items():
        if got[key] != shape:
            raise CheckpointError(
                f"{name}: {key} has shape {got[key]} but a {config.describe()} needs {shape} "
                "(another latent size or hidden width?)"
            )


def import_state_dict(path: str | os.PathLike[str], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Import a foreign PyTorch ``.pt`` state dict for a model of ``config``.

    Only ``torch.load(..., weights_only=True)`` is used, which refuses to build
    arbitrary objects, so a malicious pickle cannot run code.

    Raises:
        CheckpointError: when the file is not a plain tensor state dict, or its
            shapes do not match ``config``.
    """
    import pickle

    path = Path(path)
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "Unsupported" in line), "")
        raise CheckpointError(
            f"{path.name} was refused: it asks to build objects or run code when loaded, and vaegui only "
            f"reads plain tensors from a .pt file{f' ({detail})' if detail else ''}"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path.name} is not a readable PyTorch file ({_short(exc)})") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path.name} does not hold a state dict of tensors")
    weights = {str(k).removeprefix("module."): v for k, v in obj.items()}
    check_weights(weights, config, path.name)
    return weights


def autosave(folder: str | os.PathLike[str], tensors: dict[str, torch.Tensor], info: dict, keep: int = 3) -> Path:
    """Save ``autosave-eEEEE-sSSSSSSS.vae`` into ``folder`` and keep only the newest ``keep``.

    Raises:
        CheckpointError: when the folder cannot be written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"could not create the autosave folder {folder}: {exc.strerror or exc}") from exc
    pos = info.get("position", {})
    path = folder / f"autosave-e{int(pos.get('epoch', 0)):04d}-s{int(pos.get('step', 0)):08d}{SUFFIX}"
    save_checkpoint(path, tensors, info)
    for old in list_autosaves(folder)[:-keep] if keep > 0 else []:
        try:
            old.unlink()
        except OSError:
            pass
    return path


def list_autosaves(folder: str | os.PathLike[str]) -> list[Path]:
    """Autosaves in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"autosave-e*-s*{SUFFIX}"), key=lambda p: (p.stat().st_mtime, p.name))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) < 160 else text[:157] + "…"

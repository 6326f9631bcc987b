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
import stat
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
        mode = _file_mode(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
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


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _file_mode(path: Path) -> int:
    """The mode a saved file gets: an existing file's own, else 0666 less the umask,
    like any other file the user creates (``mkstemp`` alone would make it 0600)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Fail fast, before any work, when ``path`` cannot be saved to.

    A temporary file is created and removed in the folder (permission bits alone do
    not tell, for root or on network mounts).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        CheckpointError: naming the path, when it is a folder, its folder does not
            exist, or the folder cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"cannot save to {path}: it is a folder; give a file name such as "
                              f"{path / ('model' + SUFFIX)}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CheckpointError(f"cannot save to {path}: the folder {folder} does not exist")
    check_folder_writable(folder, f"cannot save to {path}")
    return path


def check_folder_writable(folder: str | os.PathLike[str], what: str | None = None) -> Path:
    """Create ``folder`` if needed and prove it writable with a temporary file.

    Raises:
        CheckpointError: naming the folder and the reason.
    """
    folder = Path(folder)
    what = what or f"cannot write to {folder}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".vaegui-write-check."):
            pass
    except OSError as exc:
        raise CheckpointError(f"{what}: {exc.strerror or exc}") from exc
    return folder


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
        if not isinstance(info, dict):
            raise TypeError("not a JSON object")
        model_config = ModelConfig.from_dict(info["model_config"])
        train_config = TrainConfig.from_dict(info["train_config"])
        check_info(info)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path.name}: its description is damaged ({_short(exc)})") from exc
    checkpoint = Checkpoint(path, model_config, train_config, info, tensors)
    check_weights(checkpoint.weights, model_config, path.name)
    return checkpoint


def _number(value, what: str, none: bool = False) -> None:
    if value is None and none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} is not a number: {value!r:.40}")


def _numbers(values: list, what: str) -> None:
    """Every leaf of nested lists is a number (raises TypeError naming ``what``)."""
    for v in values:
        if isinstance(v, list):
            _numbers(v, what)
        else:
            _number(v, what)


def check_info(info: dict) -> None:
    """Check the parts of a checkpoint's description that the window, the CLI and
    :meth:`models.trainer.Trainer.load_state` read: ``dataset`` and ``position`` are
    objects, positions are integers, ``history`` rows are :class:`~models.trainer.EpochEnd`
    records of numbers, ``step_metrics`` are equal-length lists of numbers.

    Raises:
        TypeError, ValueError: naming the first part that is not as written by vaegui.
    """
    from models.trainer import EpochEnd

    for section in ("dataset", "position", "step_metrics"):
        if not isinstance(info.get(section, {}), dict):
            raise TypeError(f"{section} is not an object")
    dataset = info.get("dataset", {})
    if not isinstance(dataset.get("name", ""), str):
        raise TypeError("the dataset name is not a string")
    for key in ("n_train", "n_test"):
        if key in dataset and (isinstance(dataset[key], bool) or not isinstance(dataset[key], int)):
            raise TypeError(f"dataset.{key} is not an integer")
    for key, value in info.get("position", {}).items():
        if key == "epoch_sums":
            if not isinstance(value, list):
                raise TypeError("position.epoch_sums is not a list")
            for v in value:
                _number(v, "position.epoch_sums")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TypeError(f"position.{key} is not a non-negative integer: {value!r:.40}")
    history = info.get("history", [])
    if not isinstance(history, list):
        raise TypeError("history is not a list")
    for row in history:
        if not isinstance(row, dict):
            raise TypeError("a history row is not an object")
        end = EpochEnd(**row)
        for name, value in end.as_dict().items():
            if name == "kl_per_dim":
                if not isinstance(value, list):
                    raise TypeError("kl_per_dim is not a list")
                for v in value:
                    _number(v, "kl_per_dim")
            elif name in ("train_terms", "disentanglement", "test_terms"):
                if not isinstance(value, dict):
                    raise TypeError(f"{name} is not an object")
                _numbers(list(value.values()), name)
            else:
                _number(value, f"history.{name}", none=name in ("test_nll_iw", "test_iw_gap", "test_error"))
    metrics = info.get("step_metrics", {})
    lengths = set()
    for key, values in metrics.items():
        if not isinstance(values, list):
            raise TypeError(f"step_metrics.{key} is not a list")
        for v in values:
            _number(v, f"step_metrics.{key}")
        lengths.add(len(values))
    if len(lengths) > 1:
        raise ValueError("the step metrics have different lengths")
    groups = info.get("optimizer_param_groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise TypeError("optimizer_param_groups is not a list of objects")


def check_weights(weights: dict[str, torch.Tensor], config: ModelConfig, name: str = "the file") -> None:
    """Raise :class:`CheckpointError` unless ``weights`` fit a model of ``config`` exactly."""
    from models.vae import build_model

    try:
        with torch.device("meta"):  # shapes only: a description naming a huge network allocates nothing
            expected = {k: tuple(v.shape) for k, v in build_model(config).state_dict().items()}
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{name}: no network can be built from its description ({_short(exc)})") from exc
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
    except Exception as exc:  # noqa: BLE001 - torch.load of damaged bytes raises many kinds (fuzzed)
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

"""Configuration dataclasses with a JSON round trip (the pythae ``VAEConfig`` pattern).

One :class:`ModelConfig` describes a network fully and one :class:`TrainConfig`
describes a training run, so the GUI's training form, the ``vaegui train``
command line and (later) checkpoints are the same objects.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T", bound="_JsonConfig")


class _JsonConfig:
    """``to_dict`` / ``from_dict`` / ``to_json`` / ``from_json`` for a dataclass."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Build from a dict; raises ``ValueError`` on unknown keys or invalid values."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
        values = dict(data)
        if "input_shape" in values:
            values["input_shape"] = tuple(values["input_shape"])
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        """Parse JSON text; raises ``ValueError`` on malformed JSON or invalid values."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{cls.__name__}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object")
        return cls.from_dict(data)


@dataclass(frozen=True)
class ModelConfig(_JsonConfig):
    """An MLP VAE: x → hidden (ReLU) → (mu, logvar); z → hidden (ReLU) → Bernoulli logits.

    Defaults are the canonical PyTorch example (pytorch/examples ``vae/main.py``):
    784-400-20.

    Attributes:
        input_shape: image shape ``(C, H, W)``; pixels are in [0, 1].
        latent_dim: D, the size of z (2 to 64).
        hidden_dim: width of the single hidden layer of encoder and decoder.

    Raises:
        ValueError: on a latent size outside 2..64, a non-positive width or shape.
    """

    input_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 20
    hidden_dim: int = 400

    def __post_init__(self) -> None:
        if not 2 <= int(self.latent_dim) <= 64:
            raise ValueError(f"latent_dim must be between 2 and 64, got {self.latent_dim}")
        if int(self.hidden_dim) < 1:
            raise ValueError(f"hidden_dim must be positive, got {self.hidden_dim}")
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {self.input_shape}")

    @property
    def input_dim(self) -> int:
        c, h, w = self.input_shape
        return c * h * w


@dataclass(frozen=True)
class TrainConfig(_JsonConfig):
    """A training run: Adam on the β-weighted negative ELBO.

    Attributes:
        epochs: passes over the training split.
        batch_size: images per step.
        lr: Adam learning rate.
        beta: weight of the KL term in the training loss (Higgins et al. 2017);
            the reported ELBO is always the true ELBO (β = 1).
        seed: seeds weight initialisation, batch order and the reparameterization noise.
        device: ``"auto"`` (CUDA, then MPS, then CPU) or a torch device string.
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"``: the matmul precision of training
            steps (bf16 autocast; weights, loss and evaluation stay float32). ``"auto"``
            uses bf16 where the hardware runs it natively (see ``models.trainer.resolve_precision``).

    Raises:
        ValueError: on non-positive epochs, batch size or learning rate, or a negative β.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    beta: float = 1.0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"

    def __post_init__(self) -> None:
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not float(self.lr) > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if not float(self.beta) >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")

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


MODELS = {"vae": "VAE", "ae": "plain autoencoder", "cvae": "conditional VAE"}
ARCHS = {"mlp": "MLP", "conv": "convolutional"}
CONV_SIZES = (28, 32, 64)


@dataclass(frozen=True)
class ModelConfig(_JsonConfig):
    """A network and its likelihood.

    Defaults are the canonical PyTorch example (pytorch/examples ``vae/main.py``):
    an MLP VAE 784-400-20 with a Bernoulli likelihood.

    Attributes:
        input_shape: image shape ``(C, H, W)``; pixels are in [0, 1].
        latent_dim: D, the size of z (2 to 64).
        hidden_dim: width of the hidden layer (MLP) or of the fully connected layer
            after the convolutions (conv).
        model: ``"vae"``; ``"ae"``, a deterministic autoencoder (seed 003: AE vs VAE
            latents); or ``"cvae"``, a conditional VAE p(x|y, z) (Sohn et al. 2015).
        arch: ``"mlp"`` or ``"conv"`` (stride-2 4×4 convolutions as in the β-VAE papers;
            28×28, 32×32 or 64×64 images with any channel count).
        likelihood: ``"bernoulli"``, ``"cbernoulli"``, ``"gaussian"`` or
            ``"gaussian-learned"`` (see :mod:`models.likelihoods`).
        sigma: the fixed σ of ``"gaussian"``, in pixel units.
        var_floor: the variance floor of ``"gaussian-learned"``.
        n_classes: label count for ``"cvae"`` (set from the dataset).

    Raises:
        ValueError: on a latent size outside 2..64, a non-positive width or shape, an
            unknown model, architecture or likelihood, a conv net on an unsupported
            size, or a CVAE without classes.
    """

    input_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 20
    hidden_dim: int = 400
    model: str = "vae"
    arch: str = "mlp"
    likelihood: str = "bernoulli"
    sigma: float = 0.1
    var_floor: float = 1e-3
    n_classes: int = 0

    def __post_init__(self) -> None:
        from models.likelihoods import LIKELIHOODS

        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {self.input_shape}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)}, got {self.model!r}")
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {self.arch!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {sorted(LIKELIHOODS)}, got {self.likelihood!r}")
        if not self.sigma > 0 or not self.var_floor > 0:
            raise ValueError("sigma and var_floor must be positive")
        if self.model == "cvae" and int(self.n_classes) < 2:
            raise ValueError("a conditional VAE needs a labelled dataset (n_classes >= 2)")
        _, height, width = self.input_shape
        if self.arch == "conv" and (height != width or height not in CONV_SIZES):
            raise ValueError(
                f"the convolutional network takes 28×28, 32×32 or 64×64 images, not "
                f"{self.input_shape[1]}×{self.input_shape[2]}: use the MLP"
            )
        if not 2 <= int(self.latent_dim) <= 64:
            raise ValueError(f"latent_dim must be between 2 and 64, got {self.latent_dim}")
        if int(self.hidden_dim) < 1:
            raise ValueError(f"hidden_dim must be positive, got {self.hidden_dim}")

    @property
    def input_dim(self) -> int:
        c, h, w = self.input_shape
        return c * h * w

    @property
    def has_prior(self) -> bool:
        """False for the plain autoencoder: no p(z) to sample or map Φ⁻¹ through."""
        return self.model != "ae"

    def describe(self) -> str:
        """A one-line name, e.g. ``"784-400-20 MLP VAE, Bernoulli"``."""
        from models.likelihoods import LIKELIHOODS

        net = f"{self.input_dim}-{self.hidden_dim}-{self.latent_dim}" if self.arch == "mlp" else "conv"
        return f"{net} {'MLP ' if self.arch == 'mlp' else ''}{MODELS[self.model]}, {LIKELIHOODS[self.likelihood][0]}"


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
        kl_warmup: steps over which the KL weight rises linearly from 0 to β (Bowman et
            al. 2016); 0 for none.
        free_bits: nats per latent dimension below which the batch-mean KL of that
            dimension is not penalised (Kingma et al. 2016); 0 for none.
        iw_k: importance samples of the training objective: 1 is the ELBO, k > 1 the
            IWAE bound (Burda et al. 2016).
        eval_iw: importance samples K of the per-epoch estimate of log p(x); 0 for none.
        eval_iw_images: test images that estimate uses (the first N of the split).

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
    kl_warmup: int = 0
    free_bits: float = 0.0
    iw_k: int = 1
    eval_iw: int = 0
    eval_iw_images: int = 500

    def __post_init__(self) -> None:
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not float(self.lr) > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if int(self.kl_warmup) < 0 or not float(self.free_bits) >= 0:
            raise ValueError("kl_warmup and free_bits must be >= 0")
        if not 1 <= int(self.iw_k) <= 5000 or not 0 <= int(self.eval_iw) <= 5000 or int(self.eval_iw_images) < 1:
            raise ValueError("iw_k must be in 1..5000, eval_iw in 0..5000 and eval_iw_images >= 1")
        if not float(self.beta) >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")

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

from models.likelihoods import LIKELIHOODS
from models.metrics import EPOCH_METRICS
from models.penalties import OBJECTIVES

T = TypeVar("T", bound="_JsonConfig")


def _checked_type(owner: str, name: str, value: Any, default: Any) -> Any:
    """``value`` if it has the type of the field's ``default`` (an int for an int field,
    a number for a float field, a string, or a list of ints for a shape); raises
    ``ValueError`` naming the field otherwise (a JSON file may hold anything)."""
    def fail() -> None:
        raise ValueError(f"{owner}: {name} must be {type(default).__name__}, got {value!r:.40}")

    if isinstance(default, bool) or isinstance(value, bool):
        if type(value) is not type(default):
            fail()
    elif isinstance(default, int):
        if not isinstance(value, int):
            fail()
    elif isinstance(default, float):
        if not isinstance(value, (int, float)):
            fail()
        value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            fail()
    elif isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                         for v in value):
            fail()
        value = tuple(value)
    return value


def option(
    default: Any,
    help: str,
    *,
    label: str = "",
    unit: str = "",
    range: tuple[float, float] | None = None,
    choices: dict[str, str] | None = None,
    step: float | None = None,
    decimals: int | None = None,
    special: str = "",
    resume: str = "free",
    cli: bool = True,
    form: bool = True,
) -> Any:
    """A config field with the metadata that the command line, the window's form and
    the validation read, so each setting is described once.

    Args:
        default: the default value; its type is the field's type.
        help: one line for ``--help`` and the form's tooltip.
        label: the form's label (``"Latent dimensions"``); ``""`` for the field name.
        unit: shown after the value (``"nats"``, ``"steps"``).
        range: ``(low, high)``, inclusive; checked by the dataclass and used as the
            form's and the command line's limits.
        choices: allowed values and their titles; checked likewise.
        step, decimals: the form's spin box step and decimals (floats).
        special: the form's text for the lowest value (``"none"``, ``"off"``).
        resume: ``"free"``: may be changed when training continues; ``"fixed"``: must
            stay as saved for an exact resume (batch size, seed, the network).
        cli, form: whether the command line / the form offer it.
    """
    return dataclasses.field(default=default, metadata={
        "help": help, "label": label, "unit": unit, "range": range, "choices": choices, "step": step,
        "decimals": decimals, "special": special, "resume": resume, "cli": cli, "form": form,
    })


def fields_of(cls, *, cli: bool | None = None, form: bool | None = None) -> list[dataclasses.Field]:
    """The fields of a config class (optionally only those the CLI / the form offer)."""
    out = []
    for f in dataclasses.fields(cls):
        if cli is not None and f.metadata.get("cli", True) != cli:
            continue
        if form is not None and f.metadata.get("form", True) != form:
            continue
        out.append(f)
    return out


def _check_metadata(config) -> None:
    """Raise ``ValueError`` for a value outside its field's ``range`` or ``choices``."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        lo_hi = f.metadata.get("range")
        if lo_hi is not None:
            lo, hi = lo_hi
            if not lo <= value <= hi:
                bound = f"at least {lo:g}" if hi == float("inf") else f"between {lo:g} and {hi:g}"
                raise ValueError(f"{f.name} must be {bound}, got {value}")
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ValueError(f"{f.name} must be one of {sorted(choices)}, got {value!r}")


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
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in values:
                values[f.name] = _checked_type(cls.__name__, f.name, values[f.name], f.default)
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


MODELS = {"vae": "VAE", "ae": "plain autoencoder", "cvae": "conditional VAE", "m2": "semi-supervised VAE (M2)",
          "hvae": "two-layer VAE (Burda 2016)", "ladder": "ladder VAE (Sønderby 2016)",
          "vqvae": "VQ-VAE (van den Oord 2017)"}
#: the models whose decoder takes a label y
CONDITIONAL_MODELS = ("cvae", "m2")
#: the models with two stochastic layers z1, z2 (models/hierarchical.py)
HIERARCHICAL_MODELS = ("hvae", "ladder")
ARCHS = {"mlp": "MLP", "conv": "convolutional"}
CONV_SIZES = (28, 32, 64)
PRECISIONS = {"auto": "auto", "fp32": "float32", "bf16": "bfloat16 matmuls"}
INF = float("inf")


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
        model: ``"vae"``; ``"ae"``, a deterministic autoencoder (for comparing its latents with
            a VAE's); ``"cvae"``, a conditional VAE p(x|y, z) (Sohn et al. 2015); or ``"m2"``,
            the semi-supervised VAE of Kingma, Rezende, Mohamed & Welling 2014 (a classifier
            q(y|x), q(z|x, y) and p(x|y, z), trained on a few labels and many unlabelled images);
            ``"hvae"`` / ``"ladder"``, two stochastic layers z1, z2 with bottom-up (Burda et al. 2016)
            or top-down (Sønderby et al. 2016) inference (:mod:`models.hierarchical`; MLP only);
            ``"vqvae"``, the VQ-VAE of van den Oord et al. 2017 (:mod:`models.vqvae`; its own
            convolutional network on 28, 32 or 64 pixel images; ``latent_dim``, ``hidden_dim`` and
            ``arch`` do not apply).
        arch: ``"mlp"`` or ``"conv"`` (stride-2 4×4 convolutions as in the β-VAE papers;
            28×28, 32×32 or 64×64 images with any channel count).
        likelihood: ``"bernoulli"``, ``"cbernoulli"``, ``"gaussian"`` or
            ``"gaussian-learned"`` (see :mod:`models.likelihoods`).
        sigma: the fixed σ of ``"gaussian"``, in pixel units.
        var_floor: the variance floor of ``"gaussian-learned"``.
        n_classes: label count for ``"cvae"`` and ``"m2"`` (set from the dataset).
        layer1_dim: D1, the size of the lower layer z1 of ``"hvae"`` and ``"ladder"`` (whose top
            layer z2 has ``latent_dim``); Burda et al. 2016 use 100 under 50.
        codebook_size, code_dim: the VQ-VAE's K code vectors of D dimensions.
        codebook: how the VQ-VAE's codebook learns: ``"ema"`` (moving averages, decay
            ``ema_decay``) or ``"loss"`` (the codebook loss).
        code_prior: the VQ-VAE's prior over code grids: ``"transformer"`` (learned alongside) or
            ``"uniform"``.

    Raises:
        ValueError: on a latent size outside 2..64, a non-positive width or shape, an
            unknown model, architecture or likelihood, a conv net on an unsupported
            size, or a CVAE without classes.
    """

    input_shape: tuple[int, int, int] = option(
        (1, 28, 28), "image shape (C, H, W), from the dataset", resume="fixed", cli=False, form=False)
    latent_dim: int = option(
        20, "D, the number of latent dimensions (2 gives the classic manifold figure)",
        label="Latent dimensions", range=(2, 64), resume="fixed")
    hidden_dim: int = option(
        400, "width of the hidden layer of the encoder and the decoder", label="Hidden width",
        range=(8, 4096), resume="fixed")
    model: str = option(
        "vae", "VAE (set beta for a beta-VAE), a plain autoencoder for comparison, or a conditional VAE "
        "p(x|y, z) that takes the label", label="Model", choices=MODELS, resume="fixed")
    arch: str = option(
        "mlp", "MLP, or stride-2 4x4 convolutions for 28, 32 or 64 pixel images", label="Network",
        choices=ARCHS, resume="fixed")
    likelihood: str = option(
        "bernoulli", "p(x|z); every choice reports its ELBO terms in nats per image", label="Likelihood",
        choices={k: v[0] for k, v in LIKELIHOODS.items()}, resume="fixed")
    sigma: float = option(
        0.1, "sigma of the fixed-variance Gaussian likelihood, in pixel units", label="Gaussian σ",
        range=(0.001, 1.0), step=0.01, decimals=3, resume="fixed")
    var_floor: float = option(
        1e-3, "variance floor of the learned-variance Gaussian likelihood", range=(1e-6, 1.0), resume="fixed",
        form=False)
    n_classes: int = option(
        0, "label count of a conditional VAE, from the dataset", range=(0, 1_000_000), resume="fixed",
        cli=False, form=False)
    layer1_dim: int = option(
        100, "two-layer and ladder VAEs: D1, the size of the lower latent layer z1 (the latent dimensions are the "
        "top layer z2)", label="z1 dimensions", range=(2, 512), resume="fixed")
    codebook_size: int = option(
        128, "VQ-VAE: K, the number of code vectors", label="Codebook size K", range=(2, 4096), resume="fixed")
    code_dim: int = option(
        32, "VQ-VAE: D, the size of each code vector", label="Code size D", range=(1, 512), resume="fixed")
    codebook: str = option(
        "ema", "VQ-VAE: the codebook learns by exponential moving averages of its encoder outputs, or by the "
        "codebook loss", label="Codebook update", choices={"ema": "moving averages", "loss": "codebook loss"},
        resume="fixed")
    ema_decay: float = option(
        0.99, "VQ-VAE: decay of the codebook's moving averages", label="EMA decay", range=(0.5, 0.9999),
        step=0.005, decimals=4, resume="fixed")
    code_prior: str = option(
        "transformer", "VQ-VAE: the prior over code grids, learned alongside (a small causal transformer) or "
        "uniform", label="Code prior", choices={"transformer": "learned (causal transformer)", "uniform": "uniform"},
        resume="fixed")

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {self.input_shape}")
        _check_metadata(self)
        if self.model in CONDITIONAL_MODELS and int(self.n_classes) < 2:
            raise ValueError(f"a {MODELS[self.model]} needs a labelled dataset (n_classes >= 2)")
        _, height, width = self.input_shape
        if self.model == "vqvae" and (height != width or height not in CONV_SIZES):
            raise ValueError(f"the VQ-VAE takes 28×28, 32×32 or 64×64 images, not {height}×{width}")
        if self.model in HIERARCHICAL_MODELS and self.arch != "mlp":
            raise ValueError(f"the {MODELS[self.model]} is an MLP: choose the MLP network")
        if self.arch == "conv" and (height != width or height not in CONV_SIZES):
            raise ValueError(
                f"the convolutional network takes 28×28, 32×32 or 64×64 images, not "
                f"{self.input_shape[1]}×{self.input_shape[2]}: use the MLP"
            )

    @property
    def input_dim(self) -> int:
        c, h, w = self.input_shape
        return c * h * w

    @property
    def conditional(self) -> bool:
        """True when the decoder takes a label y (the conditional VAE and M2)."""
        return self.model in CONDITIONAL_MODELS

    @property
    def hierarchical(self) -> bool:
        """True for the models with two stochastic layers (``"hvae"``, ``"ladder"``)."""
        return self.model in HIERARCHICAL_MODELS

    @property
    def has_prior(self) -> bool:
        """False for the plain autoencoder: no p(z) to sample or map Φ⁻¹ through."""
        return self.model != "ae"

    @property
    def discrete(self) -> bool:
        """True for the VQ-VAE: its latents are grids of discrete codes, not Gaussian vectors."""
        return self.model == "vqvae"

    def describe(self) -> str:
        """A one-line name, e.g. ``"784-400-20 MLP VAE, Bernoulli"``."""
        from models.likelihoods import LIKELIHOODS

        if self.discrete:
            from models.vqvae import grid_size

            side = grid_size(self.input_shape[1])
            return (f"conv VQ-VAE, {side}×{side} codes of K={self.codebook_size} × D={self.code_dim}, "
                    f"{'learned' if self.code_prior == 'transformer' else 'uniform'} prior, "
                    f"{LIKELIHOODS[self.likelihood][0]}")
        if self.hierarchical:
            from models.hierarchical import layer_widths

            h1, h2 = layer_widths(self)
            net = f"{self.input_dim}-{h1}-{h1}-{self.layer1_dim}-{h2}-{h2}-{self.latent_dim}"
        else:
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
            uses bf16 on CPUs that run it natively (see ``models.trainer.resolve_precision``).
        kl_warmup: steps over which the KL weight rises linearly from 0 to β (Bowman et
            al. 2016); 0 for none.
        free_bits: nats per latent dimension below which the batch-mean KL of that
            dimension is not penalised (Kingma et al. 2016); 0 for none.
        iw_k: importance samples of the training objective: 1 is the ELBO, k > 1 the
            IWAE bound (Burda et al. 2016).
        eval_iw: importance samples K of the per-epoch estimate of log p(x); 0 for none.
        eval_iw_images: test images that estimate uses (the first N of the split).
        objective: the loss of the β family (see :mod:`models.penalties`): ``"beta"``
            (recon + β·KL), ``"capacity"`` (recon + β·|KL − C|; Burgess et al. 2018),
            ``"tcvae"`` (recon + KL + (β − 1)·TC; Chen et al. 2018), ``"factorvae"``
            (recon + KL + β·TC by a discriminator; Kim & Mnih 2018), ``"dip1"``/``"dip2"``
            (recon + KL + the DIP penalty; Kumar et al. 2018).
        capacity_max, capacity_steps: C rises linearly from 0 to ``capacity_max`` nats over
            ``capacity_steps`` steps (``"capacity"``).
        dip_lambda: λ_od of DIP-VAE (λ_d = 10 λ_od for DIP-VAE-I, λ_od for -II).
        disc_width: units of each of the FactorVAE discriminator's 6 layers.
        labels_per_class: M2: the labelled training images of each class (a seeded draw; 0:
            every training image is labelled); the others train through the unlabelled bound.
        alpha: M2: the weight of the classification term as a fraction of the training images N
            (Kingma et al. 2014, eq. 9, use α = 0.1·N).
        commitment: the VQ-VAE's commitment weight β (van den Oord et al. 2017, eq. 3).
        metrics: disentanglement scores at each epoch end on a dataset with ground-truth
            factors (:func:`models.metrics.epoch_scores`): ``"off"``, ``"fast"`` (MIG and
            SAP) or ``"all"`` (and DCI, minutes per epoch on a CPU).
        metrics_points: images those scores use (the test split first).

    Raises:
        ValueError: on non-positive epochs, batch size or learning rate, a negative β, or
            an objective of the β family with the IWAE bound.
    """

    epochs: int = option(
        10, "total epochs, counting those of a resumed checkpoint", label="Epochs", range=(1, 100_000))
    batch_size: int = option(128, "images per step", label="Batch size", range=(1, 65536), resume="fixed")
    lr: float = option(
        1e-3, "Adam learning rate", label="Learning rate", range=(1e-6, 10.0), step=1e-4, decimals=6)
    beta: float = option(
        1.0, "beta: weight of the KL term in the training loss (beta-VAE); the plots show the true ELBO",
        label="β (KL weight)", range=(0.0, 100.0), step=0.5, decimals=2)
    seed: int = option(
        0, "seeds the initial weights, the batch order and the reparameterization noise", label="Seed",
        range=(0, 2**31 - 1), resume="fixed")
    device: str = option(
        "auto", "auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:1, mps", label="Device")
    precision: str = option(
        "auto", "matmul precision of training steps; auto uses bfloat16 on CPUs that run it natively, float32 on "
        "GPUs (these small networks are bound by kernel launches there, and bf16's casts cost more than they save). "
        "Evaluation and the reported ELBO are always float32", label="Precision", choices=PRECISIONS)
    kl_warmup: int = option(
        0, "KL warm-up: the KL weight rises linearly from 0 to beta over these steps", label="KL warm-up",
        unit="steps", range=(0, 10_000_000), special="none")
    free_bits: float = option(
        0.0, "free bits: nats per latent dimension that the KL term does not penalise", label="Free bits",
        unit="nats", range=(0.0, 10.0), step=0.05, decimals=2, special="none")
    iw_k: int = option(
        1, "importance samples of the training objective: 1 trains on the ELBO, k > 1 on the IWAE bound",
        label="IWAE samples", range=(1, 5000))
    eval_iw: int = option(
        0, "importance samples K of the log p(x) estimate after each epoch (0: off)",
        label="log p(x) estimate, K", range=(0, 5000), special="off")
    eval_iw_images: int = option(
        500, "test images of the log p(x) estimate (the first N of the split)", unit="test images",
        range=(1, 100_000))
    objective: str = option(
        "beta", "the loss: beta-VAE (beta*KL), capacity |KL - C|, beta-TCVAE (beta weights the total correlation), "
        "FactorVAE (beta weights a discriminator's TC), DIP-VAE-I/II; the plots always show the true ELBO",
        label="Objective", choices=OBJECTIVES, resume="fixed")
    capacity_max: float = option(
        25.0, "capacity objective: the KL target C rises to this many nats", label="Capacity C", unit="nats",
        range=(0.0, 1000.0), step=1.0, decimals=1)
    capacity_steps: int = option(
        10_000, "capacity objective: steps over which C rises linearly from 0", label="C reached after",
        unit="steps", range=(0, 10_000_000), special="at once")
    dip_lambda: float = option(
        10.0, "DIP-VAE: weight lambda_od of the off-diagonal covariance (lambda_d = 10x for I, 1x for II)",
        label="DIP λ_od", range=(0.0, 10_000.0), step=1.0, decimals=2)
    disc_width: int = option(
        1000, "FactorVAE: units of each of the discriminator's 6 layers", label="Discriminator width",
        range=(8, 4096), resume="fixed", form=False)
    labels_per_class: int = option(
        10, "semi-supervised VAE (M2): labelled training images of each class (0: all)", label="M2 labels",
        unit="per class", range=(0, 1_000_000), special="all", resume="fixed")
    alpha: float = option(
        0.1, "semi-supervised VAE (M2): weight of the classification term, as a fraction of the training images "
        "(Kingma et al. 2014 use 0.1)", label="M2 α / N", range=(0.0, 1000.0), step=0.05, decimals=3)
    commitment: float = option(
        0.25, "VQ-VAE: weight beta of the commitment loss |z_e - sg(e)|^2 (van den Oord et al. 2017 use 0.25)",
        label="Commitment β", range=(0.0, 100.0), step=0.05, decimals=3)
    metrics: str = option(
        "off", "disentanglement scores against the dataset's ground-truth factors at each epoch end: MIG and SAP "
        "(seconds), or also DCI (minutes)", label="Disentanglement", choices=EPOCH_METRICS)
    metrics_points: int = option(
        5000, "images of the disentanglement scores (the test split first)", unit="images",
        range=(100, 1_000_000))

    def __post_init__(self) -> None:
        _check_metadata(self)
        if self.objective != "beta" and self.iw_k > 1:
            raise ValueError(f"the {OBJECTIVES[self.objective]} objective trains on the ELBO: set iw_k to 1")

"""The β family of objectives: penalties on the posterior that favour disentangled latents.

Every objective keeps the true ELBO as the reported curve; what changes is the loss
that is minimised, recon + (a weighted KL, or the KL and a penalty):

* ``beta``: recon + β·KL (Higgins et al. 2017).
* ``capacity``: recon + β·|KL − C|, the capacity C raised linearly from 0 to C_max
  (Burgess et al. 2018, eq. 8; their γ is our β).
* ``tcvae``: recon + KL + (β − 1)·TC, the total correlation TC estimated by minibatch-weighted
  sampling (Chen et al. 2018, eq. 4 with α = γ = 1; disentanglement_lib's form).
* ``factorvae``: recon + KL + γ·TC, TC estimated by a discriminator between q(z) and the
  product of its marginals, trained alongside (Kim & Mnih 2018, eq. 2; γ is our β).
* ``dip1`` / ``dip2``: recon + KL + λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)², C the covariance
  of the posterior means (I) or of q(z) (II) over the batch (Kumar et al. 2018, eqs. 6-7),
  with λ_d = 10 λ_od (I) or λ_od (II), as disentanglement_lib.

All terms are in nats per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: objective → title (the form's choices; the command line's ``--objective``)
OBJECTIVES = {
    "beta": "β-VAE (β·KL)",
    "capacity": "β-VAE, capacity C (Burgess 2018)",
    "tcvae": "β-TCVAE (Chen 2018)",
    "factorvae": "FactorVAE (Kim & Mnih 2018)",
    "dip1": "DIP-VAE-I (Kumar 2018)",
    "dip2": "DIP-VAE-II (Kumar 2018)",
}

#: the extra training terms each objective reports (train means per epoch, nats per image)
OBJECTIVE_TERMS = {
    "beta": (),
    "capacity": ("capacity",),
    "tcvae": ("mi", "tc", "dim_kl"),
    "factorvae": ("tc", "disc_accuracy"),
    "dip1": ("dip",),
    "dip2": ("dip",),
}

#: term → title for plots and tables
TERM_TITLES = {
    "capacity": "capacity C",
    "mi": "index-code MI",
    "tc": "total correlation",
    "dim_kl": "dimension-wise KL",
    "dip": "DIP penalty",
    "disc_accuracy": "discriminator accuracy",
    "classification": "classification −log q(y|x)",
    "kl_z1": "KL of z1",
    "kl_z2": "KL of z2",
    "commitment": "commitment ‖z_e − sg(e)‖²",
}

#: λ_d / λ_od of DIP-VAE-I and -II (disentanglement_lib's ``lambda_d_factor``)
DIP_DIAGONAL_FACTOR = {"dip1": 10.0, "dip2": 1.0}

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) elementwise (broadcasting), nats."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar) - _HALF_LOG_2PI


def capacity(step: int, c_max: float, steps: int) -> float:
    """The capacity C at ``step``: raised linearly from 0 to ``c_max`` nats over ``steps``
    (Burgess et al. 2018, §4); ``c_max`` at once when ``steps`` is 0."""
    return c_max * (min(1.0, step / steps) if steps else 1.0)


def tc_decomposition(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                     dataset_size: int) -> dict[str, torch.Tensor]:
    """The KL term's decomposition (Chen et al. 2018, eq. 2), with q(z) from the minibatch.

    q(z) = (1/N) Σ_n q(z|x_n) is estimated for each sample z_i ~ q(z|x_i) of the batch as
    (1/N) q(z_i|x_i) + ((N − 1)/(N (M − 1))) Σ_{j≠i} q(z_i|x_j): the image that drew z_i
    counts once, the M − 1 others stand for the remaining N − 1 images (an unbiased estimate of
    q(z); Chen et al. 2018, §4.1 and appendix C, whose minibatch-weighted sampling divides every
    term by N·M). Each marginal q(z_d) likewise. Then

    * ``mi`` = log q(z|x) − log q(z), the index-code mutual information;
    * ``tc`` = log q(z) − Σ_d log q(z_d), the total correlation;
    * ``dim_kl`` = Σ_d log q(z_d) − log p(z), the dimension-wise KL.

    They sum exactly to log q(z|x) − log p(z), the one-sample Monte Carlo estimate of
    KL(q(z|x) ‖ p(z)) at the same z (whose expectation is the closed-form KL). Each term alone
    is biased: the log of an unbiased estimate of q(z) is low in expectation (Jensen), more so
    for a batch much smaller than the dataset, which inflates ``mi`` at the expense of the others.

    Args:
        z, mu, logvar: ``(B, D)``: the samples and the posterior parameters of the batch.
        dataset_size: N, the training images.

    Returns:
        ``{"mi", "tc", "dim_kl"}``, each ``(B,)`` in nats.

    Raises:
        ValueError: for a batch of fewer than 2 images or N smaller than the batch.
    """
    b = z.shape[0]
    if b < 2 or dataset_size < b:
        raise ValueError(f"the decomposition needs a batch of at least 2 images from a dataset at least as large "
                         f"(batch {b}, dataset {dataset_size})")
    n = dataset_size
    log_qz_x = gaussian_log_density(z, mu, logvar).sum(1)
    pair = gaussian_log_density(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))  # (B, B, D): z_i under q(·|x_j)
    log_w = torch.full((b, b), math.log((n - 1) / (n * (b - 1))) if n > 1 else -math.inf, device=z.device)
    log_w.fill_diagonal_(-math.log(n))
    log_qz = torch.logsumexp(pair.sum(2) + log_w, dim=1)
    log_prod = torch.logsumexp(pair + log_w.unsqueeze(2), dim=1).sum(1)
    log_pz = (-0.5 * z.pow(2) - _HALF_LOG_2PI).sum(1)
    return {"mi": log_qz_x - log_qz, "tc": log_qz - log_prod, "dim_kl": log_prod - log_pz}


def dip_penalty(mu: torch.Tensor, logvar: torch.Tensor, lambda_od: float, variant: str) -> torch.Tensor:
    """The DIP-VAE penalty of a batch (Kumar et al. 2018, eqs. 6-7), a scalar.

    ``variant`` ``"dip1"``: C = Cov[mu] over the batch; ``"dip2"``: C = Cov[mu] + E[diag(exp(logvar))],
    the covariance of q(z). Penalty λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)² with
    λ_d = :data:`DIP_DIAGONAL_FACTOR` × λ_od.

    Args:
        mu, logvar: ``(B, D)``.
    """
    centred = mu - mu.mean(0, keepdim=True)
    cov = centred.T @ centred / mu.shape[0]
    if variant == "dip2":
        cov = cov + torch.diag(torch.exp(logvar).mean(0))
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.pow(2).sum() + DIP_DIAGONAL_FACTOR[variant] * lambda_od * (diag - 1).pow(2).sum()


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each column of ``z`` ``(B, D)`` shuffled independently: samples of Π_d q(z_d)
    (Kim & Mnih 2018, algorithm 1)."""
    b, d = z.shape
    keys = torch.rand((b, d), generator=generator, device=z.device)
    return torch.gather(z, 0, keys.argsort(dim=0))


class TCDiscriminator(nn.Module):
    """FactorVAE's discriminator: 6 fully connected layers of ``width`` units with
    LeakyReLU(0.2) and 2 logits, [q(z), Π_d q(z_d)] (Kim & Mnih 2018, appendix; width
    1000 there)."""

    def __init__(self, latent_dim: int, width: int = 1000, layers: int = 6):
        super().__init__()
        mods: list[nn.Module] = []
        prev = latent_dim
        for _ in range(layers):
            mods += [nn.Linear(prev, width), nn.LeakyReLU(0.2)]
            prev = width
        mods.append(nn.Linear(prev, 2))
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 2)``: column 0 "from q(z)", column 1 "from the product of marginals"."""
        return self.net(z)

    def tc(self, z: torch.Tensor) -> torch.Tensor:
        """The density-ratio estimate of the total correlation per image, log D/(1 − D), ``(B,)`` nats."""
        logits = self(z)
        return logits[:, 0] - logits[:, 1]

    def loss(self, z: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The discriminator's cross-entropy on ``z`` (detached) against its dimension-permuted copy,
        and its accuracy (a scalar tensor in [0, 1])."""
        z = z.detach()
        real, fake = self(z), self(permute_dims(z, generator))
        ones = torch.zeros(len(z), dtype=torch.long, device=z.device)
        loss = 0.5 * (F.cross_entropy(real, ones) + F.cross_entropy(fake, ones + 1))
        accuracy = 0.5 * ((real.argmax(1) == 0).float().mean() + (fake.argmax(1) == 1).float().mean())
        return loss, accuracy


@dataclass
class Penalty:
    """What an objective of the β family needs at one training step.

    Attributes:
        objective: a key of :data:`OBJECTIVES`.
        beta: β (the capacity's γ, β-TCVAE's β, FactorVAE's γ).
        dataset_size: N, the training images (β-TCVAE's minibatch-weighted sampling).
        capacity: C at this step, nats (``"capacity"``; see :func:`capacity`).
        dip_lambda: λ_od (DIP-VAE).
        discriminator: FactorVAE's :class:`TCDiscriminator`.

    Raises:
        ValueError: on an unknown objective.
    """

    objective: str
    beta: float = 1.0
    dataset_size: int = 0
    capacity: float = 0.0
    dip_lambda: float = 10.0
    discriminator: TCDiscriminator | None = None

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {self.objective!r}")

    def loss(self, recon: torch.Tensor, kl: torch.Tensor, kl_weight: float, z: torch.Tensor, mu: torch.Tensor,
             logvar: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss per image ``(B,)`` and the objective's terms (see the module's docstring).

        Args:
            recon: −log p(x|z) ``(B,)``; kl: the KL term ``(B,)`` (free bits applied);
            kl_weight: β·warm-up for ``"beta"``/``"capacity"``, the warm-up factor otherwise;
            z, mu, logvar: ``(B, D)`` float32.
        """
        o = self.objective
        if o == "capacity":
            c = torch.tensor(self.capacity, device=kl.device)
            return recon + kl_weight * (kl.mean() - c).abs(), {"capacity": c}
        if o == "tcvae":
            terms = tc_decomposition(z, mu, logvar, max(self.dataset_size, len(z)))
            return recon + kl_weight * kl + (self.beta - 1.0) * terms["tc"], terms
        if o == "factorvae":
            if self.discriminator is None:
                raise ValueError("FactorVAE needs its discriminator")
            tc = self.discriminator.tc(z)
            return recon + kl_weight * kl + self.beta * tc, {"tc": tc}
        if o in ("dip1", "dip2"):
            p = dip_penalty(mu, logvar, self.dip_lambda, o)
            return recon + kl_weight * kl + p, {"dip": p}
        return recon + kl_weight * kl, {}

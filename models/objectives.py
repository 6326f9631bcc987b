"""The ELBO and its terms, per image, in nats.

For a diagonal Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))), a standard
normal prior p(z) = N(0, I) and a Bernoulli likelihood p(x|z) with decoder logits,

    ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))            (seed 000, 004;
                                                              Kingma & Welling 2014, eq. 10)

and the closed-form Gaussian KL (Kingma & Welling 2014, appendix B; seed 004)

    KL = −½ Σ_k (1 + logvar_k − mu_k² − exp(logvar_k)).

All functions return one value per image (shape ``(B,)``), in nats.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) ‖ N(0, I)) per image, in nats.

    Args:
        mu: posterior mean, ``(B, D)``.
        logvar: posterior log-variance, ``(B, D)``.

    Returns:
        ``(B,)`` KL in nats (Kingma & Welling 2014, appendix B).

    Raises:
        ValueError: if the shapes of ``mu`` and ``logvar`` differ.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} differ in shape")
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) under independent Bernoulli pixels, per image, in nats.

    Computed from logits (``-softplus`` form of BCE-with-logits), which stays finite
    where ``sigmoid`` followed by a BCE would saturate. For grey pixels in [0, 1]
    this is the cross-entropy used by Kingma & Welling and pytorch/examples; it is
    not a normalised density for non-binary data.

    Args:
        logits: decoder output, ``(B, C, H, W)`` or ``(B, C*H*W)``.
        x: pixels in [0, 1], the same shape.

    Returns:
        ``(B,)`` log-likelihood in nats (≤ 0 for binary x).

    Raises:
        ValueError: if the shapes differ.
    """
    if logits.shape != x.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and x {tuple(x.shape)} differ in shape")
    nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return -nll.flatten(1).sum(dim=1)


@dataclass
class ELBOTerms:
    """The terms of the (negative) ELBO, each ``(B,)`` in nats per image.

    Attributes:
        recon: reconstruction term −E_q[log p(x|z)] (one-sample estimate).
        kl: KL(q(z|x) ‖ p(z)), closed form.
        neg_elbo: −ELBO = recon + kl (the true bound, whatever β is).
        loss: recon + β·kl, the quantity training minimises.
    """

    recon: torch.Tensor
    kl: torch.Tensor
    neg_elbo: torch.Tensor
    loss: torch.Tensor


def elbo_terms(
    logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
) -> ELBOTerms:
    """The negative ELBO's terms per image, in nats, from one reparameterized sample.

    Args:
        logits: decoder logits for z ~ q(z|x), shape of ``x``.
        x: data ``(B, C, H, W)``, pixels in [0, 1].
        mu, logvar: posterior parameters ``(B, D)``.
        beta: KL weight in ``loss`` (β-VAE, Higgins et al. 2017).
    """
    recon = -bernoulli_log_likelihood(logits, x)
    kl = gaussian_kl(mu, logvar)
    return ELBOTerms(recon=recon, kl=kl, neg_elbo=recon + kl, loss=recon + beta * kl)

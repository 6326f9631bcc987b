"""The ELBO and its terms, per image, in nats.

For a diagonal Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))), a standard
normal prior p(z) = N(0, I) and a Bernoulli likelihood p(x|z) with decoder logits,

    ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))            (Kingma & Welling 2014, eq. 10)

and the closed-form Gaussian KL (Kingma & Welling 2014, appendix B)

    KL = −½ Σ_k (1 + logvar_k − mu_k² − exp(logvar_k)).

All functions return one value per image (shape ``(B,)``), in nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from models.penalties import Penalty


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
        kl_per_dim: ``(B, D)`` KL of each latent dimension, when computed (None otherwise).
        z: ``(B, D)`` the reparameterized sample that was decoded (None where not kept).
        extra: the objective's own terms (:data:`models.penalties.OBJECTIVE_TERMS`), each a
            ``(B,)`` or scalar tensor in nats (the capacity C: nats of KL aimed at).
        layer_kl: for the hierarchical VAEs, the KL of each layer per dimension, ``((B, D1), (B, D2))``
            in nats (``kl_per_dim`` is the top layer's); None otherwise.
        codes: for the VQ-VAE, the code grids ``(B, h, w)``; None otherwise.
    """

    recon: torch.Tensor
    kl: torch.Tensor
    neg_elbo: torch.Tensor
    loss: torch.Tensor
    kl_per_dim: torch.Tensor | None = None
    z: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    layer_kl: tuple[torch.Tensor, torch.Tensor] | None = None
    codes: torch.Tensor | None = None


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


def gaussian_kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q ‖ N(0, 1)) of each latent dimension, ``(B, D)`` in nats."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def objective_terms(
    model,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    kl_weight: float = 1.0,
    free_bits: float = 0.0,
    iw_k: int = 1,
    autocast: bool = False,
    penalty: Penalty | None = None,
    noise: torch.Tensor | None = None,
    commitment: float = 0.25,
) -> ELBOTerms:
    """The terms of any model of :class:`models.vae.VAE`, per image in nats.

    * ``recon`` = −log p(x|z) for one reparameterized z; ``kl`` = KL(q(z|x) ‖ p(z));
      ``neg_elbo`` = recon + kl (the true bound, whatever the weighting).
    * ``loss`` = recon + w·KL with w = ``kl_weight`` (β, scaled by a warm-up); with
      ``free_bits`` λ > 0 the KL term is Σ_d max(λ, mean_batch KL_d) (Kingma et al.
      2016, "free bits"); with ``iw_k`` > 1 the loss is −L_k, the importance-weighted
      bound (Burda et al. 2016).
    * ``penalty``: an objective of the β family other than ``"beta"`` replaces the loss
      (:class:`models.penalties.Penalty`) and reports its own terms in ``extra``.
    * For the plain autoencoder z = mu, ``kl`` = 0 and every term is the reconstruction.
    * For M2 without labels, the unlabelled bound U(x) (:func:`models.semisupervised.unlabelled_terms`).
    * For the hierarchical VAEs both layers' KL (:mod:`models.hierarchical`); for the VQ-VAE ``kl`` is
      −log p(codes) under its prior and ``loss`` adds the latent losses (``commitment``: their weight β)
      and the learned prior's NLL (:meth:`models.vqvae.VQVAE.terms`).

    ``autocast``: run the network in bfloat16 (the likelihood and the KL stay float32).
    ``noise``: the reparameterization's ε ``(B, D)``, when the caller draws it (distributed
    training: :mod:`models.distributed`); drawn from ``generator`` otherwise.

    Raises:
        ValueError: for an objective of the β family on the plain autoencoder.
    """
    device_type = x.device.type
    if getattr(model, "hierarchical", False):
        return _hierarchical_terms(model, x, generator, kl_weight, free_bits, iw_k, autocast, penalty)
    if getattr(model, "discrete", False):  # the VQ-VAE: −log p(codes) is its KL (models/vqvae.py)
        t = model.terms(x, commitment, generator, autocast)
        return ELBOTerms(recon=t["recon"], kl=t["kl"], neg_elbo=t["recon"] + t["kl"], loss=t["loss"],
                         extra={"commitment": t["commitment"]}, codes=t["codes"])
    if model.config.model == "m2" and y is None:  # M2 on unlabelled images: U(x), every class decoded
        from models.semisupervised import unlabelled_terms

        recon, kl, neg, loss, kl_d, _ = unlabelled_terms(model, x, generator, kl_weight, autocast)
        return ELBOTerms(recon=recon, kl=kl, neg_elbo=neg, loss=loss, kl_per_dim=kl_d)
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
        mu, logvar = model.encode(x, y)
        z = model.reparameterize(mu, logvar, generator, noise)
        params = model.decode_params(z, y)
    recon = -model.likelihood.log_prob(params.float(), x)
    if logvar is None:
        if penalty is not None and penalty.objective != "beta":
            raise ValueError("the plain autoencoder has no posterior to penalise: choose the β-VAE objective")
        zero = torch.zeros_like(recon)
        return ELBOTerms(recon=recon, kl=zero, neg_elbo=recon, loss=recon)
    kl_d = gaussian_kl_per_dim(mu.float(), logvar.float())
    kl = kl_d.sum(dim=1)
    kl_term = torch.clamp(kl_d.mean(dim=0), min=free_bits).sum().expand_as(kl) if free_bits > 0 else kl
    extra: dict[str, torch.Tensor] = {}
    if penalty is not None and penalty.objective != "beta":
        loss, extra = penalty.loss(recon, kl_term, kl_weight, z.float(), mu.float(), logvar.float())
    else:
        loss = recon + kl_weight * kl_term
    if iw_k > 1:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
            loss = -iw_log_marginal(model, x, y, iw_k, generator, grad=True)
    return ELBOTerms(recon=recon, kl=kl, neg_elbo=recon + kl, loss=loss, kl_per_dim=kl_d, z=z, extra=extra)


def _hierarchical_terms(model, x, generator, kl_weight, free_bits, iw_k, autocast, penalty) -> ELBOTerms:
    """:func:`objective_terms` of a :class:`~models.hierarchical.HierarchicalVAE`: recon + KL_1 + KL_2, the loss
    weighting both layers' KL by ``kl_weight`` (a warm-up then warms up every layer, as Sønderby et al. 2016)."""
    if penalty is not None and penalty.objective != "beta":
        raise ValueError(f"the {model.config.describe()} trains on the ELBO or the IWAE bound: choose the β-VAE "
                         "objective")
    if free_bits > 0:
        raise ValueError(f"free bits are not offered for the {model.config.describe()}")
    t = model.sample_terms(x, 1, generator, autocast)
    recon, kl1, kl2 = t["recon"][0], t["kl1"][0], t["kl2"][0]
    kl = kl1 + kl2
    loss = recon + kl_weight * kl
    if iw_k > 1:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = -iw_log_marginal(model, x, None, iw_k, generator, grad=True)
    return ELBOTerms(recon=recon, kl=kl, neg_elbo=recon + kl, loss=loss, kl_per_dim=t["kl2_dims"][0],
                     extra={"kl_z1": kl1, "kl_z2": kl2}, layer_kl=(t["kl1_dims"][0], t["kl2_dims"][0]))


def iw_log_weights(
    model,
    x: torch.Tensor,
    y: torch.Tensor | None,
    k: int,
    generator: torch.Generator | None = None,
    max_images: int = 20000,
) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x), z_i ~ q(z|x), ``(k, B)``.

    The k samples are decoded in chunks of at most ``max_images`` images, so memory
    stays bounded for k up to thousands (Burda et al. 2016, eq. 8).

    Raises:
        ValueError: for k < 1, or a model without a posterior variance (the autoencoder).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if getattr(model, "hierarchical", False):
        return model.iw_log_weights(x, k, generator, max_images)
    mu, logvar = model.encode(x, y)
    if logvar is None:
        raise ValueError("the plain autoencoder has no posterior to sample: no importance-sampled estimate")
    mu, logvar = mu.float(), logvar.float()
    std = torch.exp(0.5 * logvar)
    b, d = mu.shape
    per = max(1, max_images // b)
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    out = []
    for start in range(0, k, per):
        kk = min(per, k - start)
        eps = torch.randn((kk, b, d), generator=generator, device=mu.device)
        z = mu + std * eps
        log_q = (-0.5 * eps.pow(2) - half_log_2pi - 0.5 * logvar).sum(-1)
        log_pz = (-0.5 * z.pow(2) - half_log_2pi).sum(-1)
        xr = x.unsqueeze(0).expand(kk, *x.shape).reshape(kk * b, *x.shape[1:])
        yr = None if y is None else y.repeat(kk)
        params = model.decode_params(z.reshape(kk * b, d), yr)
        log_px = model.likelihood.log_prob(params.float(), xr).view(kk, b)
        out.append(log_px + log_pz - log_q)
    return torch.cat(out, dim=0)


def iw_log_marginal(
    model,
    x: torch.Tensor,
    y: torch.Tensor | None,
    k: int,
    generator: torch.Generator | None = None,
    grad: bool = False,
    max_images: int = 20000,
) -> torch.Tensor:
    """The importance-sampled estimate of log p(x), ``(B,)`` nats per image:
    log (1/k) Σ_i w_i (Burda et al. 2016). It is a lower bound of log p(x) in
    expectation, ≥ the ELBO, and tightens as k grows; with k = 1 it is the ELBO.
    """
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        log_w = iw_log_weights(model, x, y, k, generator, max_images)
        return torch.logsumexp(log_w, dim=0) - math.log(k)

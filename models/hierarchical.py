"""VAEs with two stochastic layers: the two-layer VAE of Burda, Grosse & Salakhutdinov 2016
(bottom-up inference) and the ladder VAE of Sønderby et al. 2016 (top-down inference).

Both have the generative model of Burda et al. 2016 (§5, Table 1's two-stochastic-layer
network) with ELU units (Clevert et al. 2016) where the paper has tanh: with tanh and PyTorch's
default initialisation the reconstruction stayed at the mean image's 205 nats for 300 Adam steps
on the shipped 4,000 digits even with β = 0, while ELU reached 123 nats at step 600 with β = 1
(leaky ReLU 137, softplus 155 at step 600; ReLU 179 at step 300):

    p(z2) = N(0, I),   p(z1|z2) = N(mu_p(z2), diag(exp(logvar_p(z2)))),   p(x|z1)

with x → h → h → z1 (``layer1_dim``, 100 in the paper) → h/2 → h/2 → z2 (``latent_dim``, 50)
and the same widths back (h = ``hidden_dim``, 200 in the paper). They differ in q:

* ``"hvae"`` (Burda et al. 2016): q(z1|x) q(z2|z1), each a diagonal Gaussian of the layer below.
* ``"ladder"`` (Sønderby et al. 2016, eqs. 17-19): a deterministic bottom-up pass gives
  ``(mu_hat, var_hat)`` for each layer; q(z2|x) is the top one and q(z1|x, z2) the
  precision-weighted combination of the bottom-up estimate with the generative prior p(z1|z2):
  var_q = 1 / (1/var_hat + 1/var_p), mu_q = var_q (mu_hat/var_hat + mu_p/var_p).

The one-sample ELBO is recon + KL_1 + KL_2, nats per image, with
KL_2 = KL(q(z2|·) ‖ N(0, I)) in closed form and KL_1 = log q(z1|·) − log p(z1|z2) at the
sample (Burda's bottom-up model, where z2 depends on z1) or KL(q(z1|x, z2) ‖ p(z1|z2)) in
closed form (ladder). The importance weights of the IWAE bound and of the log p(x) estimate
are log p(x|z1) + log p(z1|z2) + log p(z2) − log q(z1, z2|x) (Burda et al. 2016, eq. 8).

For the panels the model is seen through its top layer: :meth:`encode` gives q(z2|x)
(for ``"hvae"`` along the posterior mean of z1), :meth:`decode` decodes z2 with z1 at the mean
of p(z1|z2); :meth:`decode_layers` draws z1 instead or takes it from the caller.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from models.config import ModelConfig
from models.likelihoods import make_likelihood
from models.penalties import gaussian_log_density

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _mlp(n_in: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, width), nn.ELU(), nn.Linear(width, width), nn.ELU())


def _kl_gaussians(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, exp(logvar_q)) ‖ N(mu_p, exp(logvar_p))) per dimension, nats (elementwise)."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) * torch.exp(-logvar_p) - 1)


def layer_widths(config: ModelConfig) -> tuple[int, int]:
    """The deterministic widths ``(h, h/2)`` below z1 and between z1 and z2 (Burda et al. 2016: 200, 100)."""
    return config.hidden_dim, max(8, config.hidden_dim // 2)


class HierarchicalVAE(nn.Module):
    """Two stochastic layers z1 ``(B, layer1_dim)`` and z2 ``(B, latent_dim)``; see the module's
    docstring for the model and the two inference networks.

    Args:
        config: a :class:`~models.config.ModelConfig` with ``model`` ``"hvae"`` or ``"ladder"``
            and ``arch`` ``"mlp"``.

    Raises:
        ValueError: for another model or architecture.
    """

    hierarchical = True
    n_classes = 0
    is_autoencoder = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.model not in ("hvae", "ladder") or config.arch != "mlp":
            raise ValueError(f"a hierarchical VAE is an MLP 'hvae' or 'ladder', not {config.arch} {config.model}")
        self.config = config
        self.ladder = config.model == "ladder"
        self.likelihood = make_likelihood(config.likelihood, config.sigma, config.var_floor)
        c, size, _ = config.input_shape
        h1, h2 = layer_widths(config)
        d1, d2 = config.layer1_dim, config.latent_dim
        # inference: x → h1 → h1 → z1 heads; (z1 sample | the h1 features for the ladder) → h2 → h2 → z2 heads
        self.enc1 = _mlp(config.input_dim, h1)
        self.q1_mu, self.q1_logvar = nn.Linear(h1, d1), nn.Linear(h1, d1)
        self.enc2 = _mlp(h1 if self.ladder else d1, h2)
        self.q2_mu, self.q2_logvar = nn.Linear(h2, d2), nn.Linear(h2, d2)
        # generation: z2 → h2 → h2 → p(z1|z2); z1 → h1 → h1 → p(x|z1)
        self.dec2 = _mlp(d2, h2)
        self.p1_mu, self.p1_logvar = nn.Linear(h2, d1), nn.Linear(h2, d1)
        self.dec1 = _mlp(d1, h1)
        self.dec_out = nn.Linear(h1, c * self.likelihood.params_per_pixel * size * size)

    @property
    def latent_dim(self) -> int:
        """D of the top layer z2 (the layer the panels show)."""
        return self.config.latent_dim

    @property
    def layer_dims(self) -> tuple[int, int]:
        """``(D1, D2)``: the sizes of z1 and z2."""
        return self.config.layer1_dim, self.config.latent_dim

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                       eps: torch.Tensor | None = None) -> torch.Tensor:
        """z = mu + exp(logvar / 2) · ε, ``(B, D)`` (Kingma & Welling 2014 §2.4)."""
        return _reparameterize(mu, logvar, generator, eps)

    # -- the networks ----------------------------------------------------------------------
    def _check(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != tuple(self.config.input_shape):
            raise ValueError(f"expected images of shape (B, {', '.join(map(str, self.config.input_shape))}), "
                             f"got {tuple(x.shape)}")

    def prior_z1(self, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z1|z2) as ``(mu, logvar)``, each ``(B, D1)``, for z2 ``(B, D2)``.

        Raises:
            ValueError: if ``z2`` is not ``(B, D2)``.
        """
        if z2.dim() != 2 or z2.shape[1] != self.config.latent_dim:
            raise ValueError(f"expected z2 of shape (B, {self.config.latent_dim}), got {tuple(z2.shape)}")
        g = self.dec2(z2)
        return self.p1_mu(g), self.p1_logvar(g)

    def decode_z1(self, z1: torch.Tensor) -> torch.Tensor:
        """Raw output of p(x|z1), ``(B, C*P, H, W)``, for z1 ``(B, D1)``.

        Raises:
            ValueError: if ``z1`` is not ``(B, D1)``.
        """
        if z1.dim() != 2 or z1.shape[1] != self.config.layer1_dim:
            raise ValueError(f"expected z1 of shape (B, {self.config.layer1_dim}), got {tuple(z1.shape)}")
        c, size, _ = self.config.input_shape
        return self.dec_out(self.dec1(z1)).view(z1.shape[0], c * self.likelihood.params_per_pixel, size, size)

    def _bottom_up(self, x: torch.Tensor):
        """The deterministic part of q: ``(mu1, logvar1, features)`` of the lowest layer and, for the
        ladder, the top layer's ``(mu2, logvar2)`` too (None for ``"hvae"``, where it depends on z1)."""
        self._check(x)
        h = self.enc1(x.flatten(1))
        mu1, lv1 = self.q1_mu(h), self.q1_logvar(h)
        if not self.ladder:
            return mu1, lv1, None
        g = self.enc2(h)
        return mu1, lv1, (self.q2_mu(g), self.q2_logvar(g))

    def _q2_given_z1(self, z1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.enc2(z1)
        return self.q2_mu(g), self.q2_logvar(g)

    @staticmethod
    def _combine(mu_hat, lv_hat, mu_p, lv_p) -> tuple[torch.Tensor, torch.Tensor]:
        """The ladder's precision-weighted q(z1|x, z2) (Sønderby et al. 2016, eqs. 17-19)."""
        prec_hat, prec_p = torch.exp(-lv_hat), torch.exp(-lv_p)
        lv = -torch.log(prec_hat + prec_p)
        return (mu_hat * prec_hat + mu_p * prec_p) * lv.exp(), lv

    # -- what the panels use ---------------------------------------------------------------
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z2|x) of the top layer as ``(mu, logvar)``, each ``(B, D2)``, for images ``(B, C, H, W)``
        in [0, 1] (``"hvae"``: q(z2|z1) at the posterior mean of z1). ``y`` is ignored.

        Raises:
            ValueError: if the images do not have the configured ``(C, H, W)``.
        """
        mu1, _, top = self._bottom_up(x)
        return top if top is not None else self._q2_given_z1(mu1)

    def encode_layers(self, x: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor,
                                                                                                 torch.Tensor]]:
        """The posterior of each layer along the means: ``((mu1, logvar1) (B, D1), (mu2, logvar2) (B, D2))``;
        for the ladder q(z1|x, z2) at z2 = mu2, for ``"hvae"`` q(z2|z1) at z1 = mu1."""
        mu1, lv1, top = self._bottom_up(x)
        if top is None:
            return (mu1, lv1), self._q2_given_z1(mu1)
        pm, plv = self.prior_z1(top[0])
        return self._combine(mu1, lv1, pm, plv), top

    def decode_layers(self, z2: torch.Tensor, z1: torch.Tensor | None = None, sample_z1: bool = False,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean images ``(B, C, H, W)`` in [0, 1] from z2 ``(B, D2)``, with z1 ``(B, D1)`` given, drawn
        from p(z1|z2) (``sample_z1``) or at the mean of p(z1|z2)."""
        if z1 is None:
            mu, lv = self.prior_z1(z2)
            z1 = _reparameterize(mu, lv, generator) if sample_z1 else mu
        return self.likelihood.mean(self.decode_z1(z1).float())

    def decode_params(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Raw output of p(x|z1) ``(B, C*P, H, W)`` with z1 at the mean of p(z1|z2), for z2 ``(B, D2)``."""
        return self.decode_z1(self.prior_z1(z)[0])

    decode_logits = decode_params

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean image ``(B, C, H, W)``, pixels in [0, 1], of z2 ``(B, D2)`` with z1 at the mean of p(z1|z2)."""
        return self.likelihood.mean(self.decode_params(z).float())

    # -- the bound -------------------------------------------------------------------------
    def sample_terms(self, x: torch.Tensor, k: int = 1, generator: torch.Generator | None = None,
                     autocast: bool = False, noise: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
        """One draw of (z1, z2) ~ q for each of ``k`` copies of each image ``(B, C, H, W)``: a dict of
        ``(k, B)`` tensors in nats: ``recon`` = −log p(x|z1), ``kl1``, ``kl2`` (see the module's docstring),
        ``log_w`` (the importance weight log p(x, z1, z2) − log q(z1, z2|x)), and ``kl1_dims`` ``(k, B, D1)``,
        ``kl2_dims`` ``(k, B, D2)``. The network runs in bfloat16 with ``autocast``; densities are float32.
        ``noise``: ``(eps1, eps2)`` of shapes ``(k·B, D1)``, ``(k·B, D2)``, drawn here from ``generator`` when None."""
        b = x.shape[0]
        d1, d2 = self.layer_dims
        if noise is None:
            eps1 = torch.randn((k * b, d1), generator=generator, device=x.device)
            eps2 = torch.randn((k * b, d2), generator=generator, device=x.device)
        else:
            eps1, eps2 = noise

        def rep(t):
            return t.float().unsqueeze(0).expand(k, *t.shape).reshape(k * b, *t.shape[1:])

        # a caller's autocast (the IWAE loss) stays on: only ``autocast`` turns it on here, never off
        with torch.autocast(x.device.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext():
            mu1h, lv1h, top = self._bottom_up(x)
            mu1h, lv1h = rep(mu1h), rep(lv1h)
            if top is None:  # Burda's bottom-up q(z1|x) q(z2|z1)
                z1 = mu1h + torch.exp(0.5 * lv1h) * eps1
                mu2, lv2 = (t.float() for t in self._q2_given_z1(z1))
                z2 = mu2 + torch.exp(0.5 * lv2) * eps2
                pm1, plv1 = (t.float() for t in self.prior_z1(z2))
                mu1, lv1 = mu1h, lv1h
            else:  # the ladder's q(z2|x) q(z1|x, z2)
                mu2, lv2 = rep(top[0]), rep(top[1])
                z2 = mu2 + torch.exp(0.5 * lv2) * eps2
                pm1, plv1 = (t.float() for t in self.prior_z1(z2))
                mu1, lv1 = self._combine(mu1h, lv1h, pm1, plv1)
                z1 = mu1 + torch.exp(0.5 * lv1) * eps1
            params = self.decode_z1(z1)
        recon = -self.likelihood.log_prob(params.float(), rep(x))
        log_q1 = gaussian_log_density(z1.float(), mu1, lv1)
        log_p1 = gaussian_log_density(z1.float(), pm1, plv1)
        log_q2 = gaussian_log_density(z2.float(), mu2, lv2)
        log_p2 = -0.5 * z2.float().pow(2) - _HALF_LOG_2PI
        kl2_dims = -0.5 * (1 + lv2 - mu2.pow(2) - lv2.exp())
        kl1_dims = _kl_gaussians(mu1, lv1, pm1, plv1) if self.ladder else log_q1 - log_p1
        log_w = -recon + (log_p1 - log_q1).sum(1) + (log_p2 - log_q2).sum(1)

        def view(t):
            return t.view(k, b, *t.shape[1:])

        return {"recon": view(recon), "kl1": view(kl1_dims.sum(1)), "kl2": view(kl2_dims.sum(1)),
                "log_w": view(log_w), "kl1_dims": view(kl1_dims), "kl2_dims": view(kl2_dims)}

    def iw_log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                       max_images: int = 20000) -> torch.Tensor:
        """log w of ``k`` importance samples per image, ``(k, B)`` nats, decoded in chunks of at most
        ``max_images`` images (Burda et al. 2016, eq. 8)."""
        per = max(1, max_images // max(1, x.shape[0]))
        return torch.cat([self.sample_terms(x, min(per, k - s), generator)["log_w"] for s in range(0, k, per)])

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, y=None):
        """One pass through the top layer as :meth:`models.vae.VAE.forward`:
        ``(output of p(x|z1) (B, C*P, H, W), mu2 (B, D2), logvar2 (B, D2))``."""
        mu, logvar = self.encode(x)
        return self.decode_params(_reparameterize(mu, logvar, generator)), mu, logvar


def _reparameterize(mu, logvar, generator=None, eps=None):
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps.to(mu.dtype)


def activity(means: torch.Tensor, threshold: float = 0.01) -> tuple[list[float], int]:
    """Burda et al. 2016's activity statistic A_u = Cov_x(E_q[u|x]) of each unit from posterior means
    ``(N, D)``, and how many units are active (A_u > ``threshold``, their 10⁻²)."""
    var = means.float().var(dim=0, unbiased=False) if len(means) > 1 else torch.zeros(means.shape[1])
    return var.tolist(), int((var > threshold).sum())

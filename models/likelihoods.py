"""Likelihoods p(x|z) over pixels in [0, 1]; every one reports log p(x|z) per image, in nats.

The decoder outputs raw parameters ``(B, C * P, H, W)`` (P parameters per pixel);
a likelihood turns them into a log-probability of the data and into the mean
image that the panels show.

* ``bernoulli``: independent Bernoulli pixels from logits (Kingma & Welling 2014).
  For grey pixels this is the usual cross-entropy; it is **not** a normalised
  density of non-binary data, so its "nats" overstate what the model explains.
* ``cbernoulli``: the continuous Bernoulli (Loaiza-Ganem & Cunningham 2019), a proper
  density on [0, 1], with its normalising constant (torch.distributions'
  implementation, which uses a Taylor expansion near λ = ½).
* ``gaussian``: N(x; μ, σ²) with a fixed σ, the constant −½ log(2πσ²) included, so
  the values are nats and not a bare squared error. μ = sigmoid(output).
* ``gaussian-learned``: N(x; μ, v) with a per-pixel variance from the decoder
  (Kingma & Welling 2014, appendix C, the Frey Face model), v = floor + softplus(output) so v never
  collapses to 0. A density on ℝ: on data confined to [0, 1] it can exceed 1 and
  the −ELBO can be negative.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.distributions import ContinuousBernoulli

#: key → (title, parameters per pixel)
LIKELIHOODS: dict[str, tuple[str, int]] = {
    "bernoulli": ("Bernoulli", 1),
    "cbernoulli": ("continuous Bernoulli", 1),
    "gaussian": ("Gaussian, fixed σ", 1),
    "gaussian-learned": ("Gaussian, learned variance", 2),
}


class Likelihood:
    """p(x|z) for a decoder output. Subclasses implement :meth:`log_prob` and :meth:`mean`."""

    key = ""
    params_per_pixel = 1

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image ``(B,)`` in nats, for ``params`` ``(B, C*P, H, W)`` and ``x`` ``(B, C, H, W)``."""
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x|z] ``(B, C, H, W)`` clipped to [0, 1], the image the panels show."""
        raise NotImplementedError

    @staticmethod
    def _check(params: torch.Tensor, x: torch.Tensor, per_pixel: int) -> None:
        same_images = params.shape[0] == x.shape[0] and params.shape[2:] == x.shape[2:]
        if not same_images or params.shape[1] != x.shape[1] * per_pixel:
            raise ValueError(f"decoder output {tuple(params.shape)} does not fit images {tuple(x.shape)}")


class Bernoulli(Likelihood):
    key = "bernoulli"

    def log_prob(self, params, x):
        self._check(params, x, 1)
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(1).sum(1)

    def mean(self, params):
        return torch.sigmoid(params)


class ContinuousBernoulliLikelihood(Likelihood):
    key = "cbernoulli"

    def log_prob(self, params, x):
        self._check(params, x, 1)
        return ContinuousBernoulli(logits=params, validate_args=False).log_prob(x).flatten(1).sum(1)

    def mean(self, params):
        return ContinuousBernoulli(logits=params, validate_args=False).mean.clamp(0, 1)


class GaussianFixed(Likelihood):
    key = "gaussian"

    def __init__(self, sigma: float):
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma = float(sigma)

    def log_prob(self, params, x):
        self._check(params, x, 1)
        mu = torch.sigmoid(params)
        var = self.sigma**2
        per_pixel = -0.5 * math.log(2 * math.pi * var) - (x - mu) ** 2 / (2 * var)
        return per_pixel.flatten(1).sum(1)

    def mean(self, params):
        return torch.sigmoid(params)


class GaussianLearned(Likelihood):
    key = "gaussian-learned"
    params_per_pixel = 2

    def __init__(self, var_floor: float):
        if not var_floor > 0:
            raise ValueError(f"the variance floor must be positive, got {var_floor}")
        self.var_floor = float(var_floor)

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, variance)``, each ``(B, C, H, W)``."""
        c = params.shape[1] // 2
        return torch.sigmoid(params[:, :c]), self.var_floor + F.softplus(params[:, c:])

    def log_prob(self, params, x):
        self._check(params, x, 2)
        mu, var = self.split(params)
        per_pixel = -0.5 * (torch.log(2 * math.pi * var) + (x - mu) ** 2 / var)
        return per_pixel.flatten(1).sum(1)

    def mean(self, params):
        return self.split(params)[0]


def make_likelihood(key: str, sigma: float = 0.1, var_floor: float = 1e-3) -> Likelihood:
    """The likelihood for a config key (see :data:`LIKELIHOODS`).

    Raises:
        ValueError: for an unknown key or a non-positive σ / floor.
    """
    if key == "bernoulli":
        return Bernoulli()
    if key == "cbernoulli":
        return ContinuousBernoulliLikelihood()
    if key == "gaussian":
        return GaussianFixed(sigma)
    if key == "gaussian-learned":
        return GaussianLearned(var_floor)
    raise ValueError(f"unknown likelihood {key!r}; choose one of {sorted(LIKELIHOODS)}")

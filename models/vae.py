"""The MLP VAE (Kingma & Welling 2014; the pytorch/examples ``vae/main.py`` network)."""

from __future__ import annotations

import torch
from torch import nn

from models.config import ModelConfig


class MLPVAE(nn.Module):
    """Encoder x → hidden (ReLU) → (mu, logvar); decoder z → hidden (ReLU) → logits.

    The posterior is a diagonal Gaussian, the prior N(0, I), the likelihood
    independent Bernoulli pixels parameterised by logits.

    Args:
        config: the :class:`~models.config.ModelConfig`.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        d_in, h, d = config.input_dim, config.hidden_dim, config.latent_dim
        self.enc = nn.Linear(d_in, h)
        self.enc_mu = nn.Linear(h, d)
        self.enc_logvar = nn.Linear(h, d)
        self.dec = nn.Linear(d, h)
        self.dec_out = nn.Linear(h, d_in)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters of q(z|x).

        Args:
            x: images ``(B, C, H, W)``, pixels in [0, 1].

        Returns:
            ``(mu, logvar)``, each ``(B, D)``.

        Raises:
            ValueError: if the images do not have the configured ``(C, H, W)``.
        """
        if tuple(x.shape[1:]) != tuple(self.config.input_shape):
            raise ValueError(
                f"expected images of shape (B, {', '.join(map(str, self.config.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        h = torch.relu(self.enc(x.flatten(1)))
        return self.enc_mu(h), self.enc_logvar(h)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + exp(logvar / 2) · ε with ε ~ N(0, I) (the reparameterization trick,
        Kingma & Welling 2014 §2.4; seed 004). Returns ``(B, D)``."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of p(x|z), ``(B, C, H, W)``, for latents ``(B, D)``.

        Raises:
            ValueError: if ``z`` is not ``(B, D)``.
        """
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"expected z of shape (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        h = torch.relu(self.dec(z))
        return self.dec_out(h).view(z.shape[0], *self.config.input_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean image E[x|z] = sigmoid(logits), ``(B, C, H, W)``, pixels in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One reparameterized pass: returns ``(logits (B, C, H, W), mu (B, D), logvar (B, D))``."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        return self.decode_logits(z), mu, logvar

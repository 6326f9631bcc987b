"""The networks: MLP or convolutional encoder/decoder, as a VAE, a plain autoencoder
or a conditional VAE (Kingma & Welling 2014; Higgins et al. 2017; Sohn et al. 2015).

The MLP with the Bernoulli likelihood is the pytorch/examples ``vae/main.py``
network; its parameter names (``enc``, ``enc_mu``, ``enc_logvar``, ``dec``,
``dec_out``) are kept so that checkpoints stay readable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.config import ModelConfig
from models.kernels import ThinConvTranspose2d
from models.likelihoods import make_likelihood

CONV_CHANNELS = (32, 32, 64, 64)


def _n_down(size: int) -> int:
    return {28: 2, 32: 3, 64: 4}[size]


class VAE(nn.Module):
    """Encoder q(z|x[, y]) = N(mu, diag(exp(logvar))), decoder p(x|z[, y]), prior N(0, I).

    For ``model="ae"`` the encoder gives a code z = mu and no variance; for
    ``model="cvae"`` a one-hot label y enters the encoder and the decoder; ``model="m2"``
    adds the classifier q(y|x) (Kingma et al. 2014, M2), whose most likely label stands in
    for y where none is given to :meth:`encode` or :meth:`forward`.

    Args:
        config: the :class:`~models.config.ModelConfig`.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.likelihood = make_likelihood(config.likelihood, config.sigma, config.var_floor)
        c, size, _ = config.input_shape
        h, d = config.hidden_dim, config.latent_dim
        k = config.n_classes if config.conditional else 0
        out_c = c * self.likelihood.params_per_pixel
        self.n_classes = k
        # Modules are created in forward order (encoder, heads, decoder), as in
        # pytorch/examples, so that a seed gives the same initial weights and the
        # optimizer state of a checkpoint lines up with the parameters.
        if config.arch == "mlp":
            self.enc = nn.Linear(config.input_dim + k, h)
            self._heads(h, d)
            self.dec = nn.Linear(d + k, h)
            self.dec_out = nn.Linear(h, out_c * size * size)
        else:
            n = _n_down(size)
            chans = CONV_CHANNELS[:n]
            layers: list[nn.Module] = []
            prev = c
            for ch in chans:
                layers += [nn.Conv2d(prev, ch, 4, 2, 1), nn.ReLU()]
                prev = ch
            self.enc_conv = nn.Sequential(*layers)
            self._feat = (chans[-1], size >> n, size >> n)
            flat = chans[-1] * (size >> n) ** 2
            self.enc = nn.Linear(flat + k, h)
            self._heads(h, d)
            self.dec = nn.Linear(d + k, h)
            self.dec_fc = nn.Linear(h, flat)
            layers = []
            rev = list(reversed(chans))
            for i, ch in enumerate(rev):
                nxt = rev[i + 1] if i + 1 < len(rev) else out_c
                layers.append(ThinConvTranspose2d(ch, nxt, 4, 2, 1))  # nn.ConvTranspose2d, faster to 1 channel
                if i + 1 < len(rev):
                    layers.append(nn.ReLU())
            self.dec_conv = nn.Sequential(*layers)
        if config.model == "m2":  # q(y|x), made last so the other modules' initial weights stay as in the CVAE
            self.classifier = nn.Sequential(nn.Linear(config.input_dim, h), nn.ReLU(), nn.Linear(h, k))

    def _heads(self, h: int, d: int) -> None:
        self.enc_mu = nn.Linear(h, d)
        if self.config.model != "ae":
            self.enc_logvar = nn.Linear(h, d)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def is_autoencoder(self) -> bool:
        return self.config.model == "ae"

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _onehot(self, y: torch.Tensor | None, batch: int, device) -> torch.Tensor | None:
        if not self.n_classes:
            return None
        if y is None:
            raise ValueError("a conditional VAE needs the labels y")
        y = torch.as_tensor(y, device=device).long().reshape(-1)
        if y.shape[0] != batch:
            raise ValueError(f"{batch} inputs but {y.shape[0]} labels")
        return F.one_hot(y, self.n_classes).float()

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """q(y|x) of M2 as logits ``(B, K)`` for images ``(B, C, H, W)`` in [0, 1].

        Raises:
            ValueError: for a model without a classifier.
        """
        if self.config.model != "m2":
            raise ValueError(f"a {self.config.describe()} has no classifier q(y|x)")
        return self.classifier(x.flatten(1))

    def _label_or_guess(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor | None:
        if y is None and self.config.model == "m2":
            return self.classify(x).argmax(1)
        return y

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Posterior parameters of q(z|x[, y]).

        Args:
            x: images ``(B, C, H, W)``, pixels in [0, 1].
            y: labels ``(B,)`` (conditional VAE; for M2 the classifier's most likely label when None).

        Returns:
            ``(mu, logvar)``, each ``(B, D)``; ``logvar`` is None for the autoencoder.

        Raises:
            ValueError: if the images do not have the configured ``(C, H, W)``, or a
                conditional VAE gets no labels.
        """
        if tuple(x.shape[1:]) != tuple(self.config.input_shape):
            raise ValueError(
                f"expected images of shape (B, {', '.join(map(str, self.config.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        y = self._label_or_guess(x, y)
        if self.config.arch == "mlp":
            feats = x.flatten(1)
        else:  # the last ReLU after flatten's copy to the default layout, so its backward sees one layout:
            # with a channels-last output and a default-layout gradient it took ~10x as long (28 px CPU steps
            # 1-3 % faster in fp32, 3-7 % in bf16, 2026-12-05; the same numbers)
            feats = torch.relu(self.enc_conv[:-1](x).contiguous()).flatten(1)
        onehot = self._onehot(y, x.shape[0], x.device)
        if onehot is not None:
            feats = torch.cat([feats, onehot.to(feats.dtype)], dim=1)
        h = torch.relu(self.enc(feats))
        mu = self.enc_mu(h)
        return mu, (None if self.is_autoencoder else self.enc_logvar(h))

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor | None, generator: torch.Generator | None = None,
        eps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """z = mu + exp(logvar / 2) · ε with ε ~ N(0, I) (the reparameterization trick,
        Kingma & Welling 2014 §2.4). Returns ``(B, D)``; z = mu when ``logvar`` is None.
        ``eps`` ``(B, D)``: the noise to use, drawn by the caller (a distributed step draws
        the global batch's noise and takes its rank's rows)."""
        if logvar is None:
            return mu
        if eps is None:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        else:
            eps = eps.to(mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode_params(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Raw decoder output ``(B, C*P, H, W)`` for latents ``(B, D)`` (P parameters per pixel).

        Raises:
            ValueError: if ``z`` is not ``(B, D)``, or a conditional VAE gets no labels.
        """
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"expected z of shape (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        onehot = self._onehot(y, z.shape[0], z.device)
        if onehot is not None:
            z = torch.cat([z, onehot.to(z.dtype)], dim=1)
        h = torch.relu(self.dec(z))
        c, size, _ = self.config.input_shape
        if self.config.arch == "mlp":
            return self.dec_out(h).view(z.shape[0], c * self.likelihood.params_per_pixel, size, size)
        feat = torch.relu(self.dec_fc(h)).view(z.shape[0], *self._feat)
        return self.dec_conv(feat)

    #: the Bernoulli MLP's name for its output (pytorch/examples calls them logits)
    decode_logits = decode_params

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean image E[x|z] ``(B, C, H, W)``, pixels in [0, 1]."""
        return self.likelihood.mean(self.decode_params(z, y).float())

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One reparameterized pass: ``(decoder output (B, C*P, H, W), mu (B, D), logvar (B, D) or None)``."""
        y = self._label_or_guess(x, y)
        mu, logvar = self.encode(x, y)
        z = self.reparameterize(mu, logvar, generator)
        return self.decode_params(z, y), mu, logvar


#: the name of the original, MLP-only class
MLPVAE = VAE


def build_model(config: ModelConfig) -> nn.Module:
    """The network of ``config``: a :class:`VAE`, a :class:`~models.hierarchical.HierarchicalVAE`
    for ``model`` ``"hvae"`` / ``"ladder"``, or a :class:`~models.vqvae.VQVAE` for ``"vqvae"``."""
    if config.hierarchical:
        from models.hierarchical import HierarchicalVAE

        return HierarchicalVAE(config)
    if config.discrete:
        from models.vqvae import VQVAE

        return VQVAE(config)
    return VAE(config)

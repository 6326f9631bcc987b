"""The VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017) with a learned prior over its code grids.

A convolutional encoder maps an image ``(B, C, H, W)`` to a grid of vectors z_e ``(B, D, h, w)``
(7×7 for 28 pixels, 8×8 for 32 and 64); each cell is replaced by its nearest of K code vectors
e_k (the codebook, ``(K, D)``), and the decoder maps the quantised grid z_q back to p(x|z_q).

* The quantisation has no gradient; the straight-through estimator passes the decoder's gradient
  with respect to z_q to z_e unchanged: z_q = z_e + sg(z_q − z_e) (their eq. 3's gradient).
* The codebook learns either by the codebook loss ‖sg(z_e) − e‖² (their eq. 3, second term) or by
  exponential moving averages of the assigned encoder outputs (their appendix A.1; Razavi et al.
  2019, eqs. 5-7), decay γ, with Laplace smoothing of the counts; the commitment loss
  β‖z_e − sg(e)‖² (β = 0.25 in the paper) keeps the encoder near its codes.
* Dead codes are restarted (the rule of Dhariwal et al. 2020, Jukebox, §2.2): after each training
  step, every code whose moving-average count of assignments per step is below 1 is set to an
  encoder output of the batch drawn at random (with the trainer's generator, so a resumed run
  restarts the same codes); all codes start at count 0, so the first step moves every code
  that did not take a hundred cells at once (1 / (1 − γ)) onto an encoder output.
* With the posterior q(z|x) one-hot on the nearest codes, KL(q ‖ p) = −log p(codes), so
  −log p(x) ≤ −log p(x|z_q) − log p(codes) (their §3.1-3.2): with a uniform prior that is
  h·w·log K nats; with the learned prior (a small causal transformer over the grid in raster
  order, trained alongside on the codes of each batch) its negative log-likelihood. Both are
  reported as the "KL" term, in nats per image, so the −ELBO is comparable with the VAEs'.

The latent and quantisation losses are summed over the grid's cells and dimensions per image, as
the reconstruction term is summed over pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.config import ModelConfig
from models.likelihoods import make_likelihood

#: channels of every convolution of the encoder and the decoder
VQ_CHANNELS = 64
#: a code whose moving-average count of assignments per step falls below this is restarted (Jukebox)
RESTART_BELOW = 1.0


def grid_size(size: int) -> int:
    """The code grid's side for an image side: 7 for 28, 8 for 32 and 64."""
    return {28: 7, 32: 8, 64: 8}[size]


class _Residual(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, ch, 3, 1, 1), nn.ReLU(), nn.Conv2d(ch, ch, 1))

    def forward(self, x):
        return x + self.block(x)


def perplexity(counts: torch.Tensor) -> float:
    """exp(H) of the code usage ``counts`` ``(K,)``: K when every code is used equally, 1 when one is."""
    p = counts.double() / counts.sum().clamp_min(1)
    return float(torch.exp(-(p * torch.log(p.clamp_min(1e-30))).sum()))


def ema_update(codebook: torch.Tensor, ema_count: torch.Tensor, ema_sum: torch.Tensor, flat: torch.Tensor,
               codes: torch.Tensor, decay: float, eps: float = 1e-5) -> None:
    """One exponential-moving-average step of the codebook, in place (van den Oord et al. 2017,
    appendix A.1): N_k ← γN_k + (1 − γ)n_k, m_k ← γm_k + (1 − γ)Σ_{i: code i = k} z_i, and
    e_k = m_k / Ñ_k with the Laplace-smoothed Ñ_k = (N_k + ε)/(N + Kε)·N, N = Σ_k N_k.

    Args:
        codebook: ``(K, D)`` the code vectors e_k; ema_count ``(K,)``; ema_sum ``(K, D)``.
        flat: ``(N, D)`` encoder outputs; codes ``(N,)`` their nearest codes.
    """
    k = codebook.shape[0]
    onehot = F.one_hot(codes, k).to(flat.dtype)
    ema_count.mul_(decay).add_(onehot.sum(0), alpha=1 - decay)
    ema_sum.mul_(decay).add_(onehot.T @ flat, alpha=1 - decay)
    n = ema_count.sum()
    smoothed = (ema_count + eps) / (n + k * eps) * n
    codebook.copy_(ema_sum / smoothed.unsqueeze(1))


class CodePrior(nn.Module):
    """p(codes) = Π_i p(c_i | c_<i) over a code grid in raster order: a causal transformer
    (2 layers, width 64, 4 heads) with a start token and learned positions (a small stand-in for
    the PixelCNN of van den Oord et al. 2017; Vaswani et al. 2017's decoder-only form)."""

    def __init__(self, k: int, cells: int, width: int = 64, layers: int = 2, heads: int = 4):
        super().__init__()
        self.k, self.cells = k, cells
        self.token = nn.Embedding(k + 1, width)  # k: the start token
        self.position = nn.Parameter(torch.zeros(cells, width))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(width, k)
        nn.init.zeros_(self.out.weight)  # it starts as the uniform prior: log K nats per cell
        nn.init.zeros_(self.out.bias)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(cells), persistent=False)

    def logits(self, codes: torch.Tensor) -> torch.Tensor:
        """Logits of p(c_i | c_<i) ``(B, T, K)`` for codes ``(B, T)`` (T ≤ cells; the first T of the grid)."""
        b, t = codes.shape
        start = torch.full((b, 1), self.k, dtype=torch.long, device=codes.device)
        inputs = torch.cat([start, codes[:, :-1]], 1) if t else start[:, :0]
        h = self.token(inputs) + self.position[:t]
        return self.out(self.blocks(h, mask=self.mask[:t, :t], is_causal=True))

    def nll(self, codes: torch.Tensor) -> torch.Tensor:
        """−log p(codes) ``(B,)`` in nats for code grids ``(B, cells)``."""
        logits = self.logits(codes).float()
        return F.cross_entropy(logits.transpose(1, 2), codes, reduction="none").sum(1)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` code grids ``(n, cells)`` drawn cell by cell from p(c_i | c_<i)^(1/T) (temperature T > 0)."""
        device = self.position.device
        codes = torch.zeros((n, 0), dtype=torch.long, device=device)
        pad = torch.zeros((n, 1), dtype=torch.long, device=device)  # the next cell: its logits see only the past
        for _ in range(self.cells):
            probs = torch.softmax(self.logits(torch.cat([codes, pad], 1))[:, -1].float() / temperature, 1)
            codes = torch.cat([codes, torch.multinomial(probs, 1, generator=generator)], 1)
        return codes


class VQVAE(nn.Module):
    """Encoder, codebook, decoder and code prior; see the module's docstring.

    Args:
        config: a :class:`~models.config.ModelConfig` with ``model="vqvae"`` (``codebook_size`` K,
            ``code_dim`` D, ``codebook`` ``"ema"`` or ``"loss"``, ``ema_decay``, ``code_prior``) on
            28, 32 or 64 pixel images.

    Raises:
        ValueError: for another model or an image size the network does not take.
    """

    discrete = True
    hierarchical = False
    is_autoencoder = True  # no Gaussian posterior: nothing to importance-sample or to map Φ⁻¹ through
    n_classes = 0

    def __init__(self, config: ModelConfig):
        super().__init__()
        c, size, _ = config.input_shape
        if config.model != "vqvae" or size not in (28, 32, 64):
            raise ValueError("the VQ-VAE takes 28, 32 or 64 pixel images")
        self.config = config
        self.likelihood = make_likelihood(config.likelihood, config.sigma, config.var_floor)
        ch, k, d = VQ_CHANNELS, config.codebook_size, config.code_dim
        downs = {28: 2, 32: 2, 64: 3}[size]
        self.side = grid_size(size)
        enc: list[nn.Module] = []
        prev = c
        for _ in range(downs):
            enc += [nn.Conv2d(prev, ch, 4, 2, 1), nn.ReLU()]
            prev = ch
        enc += [nn.Conv2d(ch, ch, 3, 1, 1), _Residual(ch), _Residual(ch), nn.ReLU(), nn.Conv2d(ch, d, 1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(d, ch, 3, 1, 1), _Residual(ch), _Residual(ch), nn.ReLU()]
        for i in range(downs):
            last = i == downs - 1
            dec.append(nn.ConvTranspose2d(ch, c * self.likelihood.params_per_pixel if last else ch, 4, 2, 1))
            if not last:
                dec.append(nn.ReLU())
        self.decoder = nn.Sequential(*dec)
        init = torch.empty(k, d).uniform_(-1.0 / k, 1.0 / k)
        if config.codebook == "ema":
            self.register_buffer("codebook", init)
            self.register_buffer("ema_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        #: moving-average count of each code's assignments per step (both rules: the dead-code restarts)
        self.register_buffer("ema_count", torch.zeros(k))
        self.prior = CodePrior(k, self.side * self.side) if config.code_prior == "transformer" else None

    # -- the shapes the rest of the app asks about -------------------------------------------
    @property
    def latent_dim(self) -> int:
        """The length of a flattened encoder output z_e (D·h·w): what :meth:`encode` gives and
        :meth:`decode` takes (the interpolation panel goes through it)."""
        return self.config.code_dim * self.side * self.side

    @property
    def cells(self) -> int:
        return self.side * self.side

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- the networks --------------------------------------------------------------------
    def encode_grid(self, x: torch.Tensor) -> torch.Tensor:
        """z_e ``(B, D, h, w)`` for images ``(B, C, H, W)`` in [0, 1].

        Raises:
            ValueError: if the images do not have the configured ``(C, H, W)``.
        """
        if tuple(x.shape[1:]) != tuple(self.config.input_shape):
            raise ValueError(f"expected images of shape (B, {', '.join(map(str, self.config.input_shape))}), "
                             f"got {tuple(x.shape)}")
        return self.encoder(x)

    def nearest(self, z_e: torch.Tensor) -> torch.Tensor:
        """The nearest code of each cell, ``(B, h, w)`` long, for z_e ``(B, D, h, w)`` (squared distance)."""
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d).float()
        e = self.codebook.float()
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.T + e.pow(2).sum(1)
        return dist.argmin(1).view(b, h, w)

    def codes_to_grid(self, codes: torch.Tensor) -> torch.Tensor:
        """z_q ``(B, D, h, w)`` for codes ``(B, h, w)``."""
        return self.codebook[codes].permute(0, 3, 1, 2)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Mean images ``(B, C, H, W)``, pixels in [0, 1], of code grids ``(B, h, w)`` (or ``(B, h·w)``).

        Raises:
            ValueError: for a code outside 0..K−1 or a grid of another size.
        """
        codes = codes.reshape(codes.shape[0], self.side, self.side) if codes.dim() == 2 else codes
        if tuple(codes.shape[1:]) != (self.side, self.side):
            raise ValueError(f"expected code grids of {self.side}×{self.side}, got {tuple(codes.shape[1:])}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.config.codebook_size):
            raise ValueError(f"codes run from 0 to {self.config.codebook_size - 1}")
        return self.likelihood.mean(self.decoder(self.codes_to_grid(codes.long())).float())

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        """The continuous encoder output, flattened: ``(z_e (B, D·h·w), None)`` (no variance)."""
        return self.encode_grid(x).flatten(1), None

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean images ``(B, C, H, W)`` of flattened encoder outputs ``(B, D·h·w)``, each cell quantised
        to its nearest code first (so an interpolation of z_e is quantised at every step).

        Raises:
            ValueError: if ``z`` is not ``(B, D·h·w)``.
        """
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected z of shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        grid = z.view(z.shape[0], self.config.code_dim, self.side, self.side)
        return self.decode_codes(self.nearest(grid))

    def prior_nll(self, codes: torch.Tensor) -> torch.Tensor:
        """−log p(codes) ``(B,)`` in nats for code grids ``(B, h, w)``: the learned prior's, or
        h·w·log K under the uniform prior."""
        flat = codes.reshape(codes.shape[0], -1)
        if self.prior is None:
            return torch.full((codes.shape[0],), self.cells * math.log(self.config.codebook_size),
                              device=codes.device)
        return self.prior.nll(flat)

    @torch.no_grad()
    def sample_codes(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
        """``n`` code grids ``(n, h, w)`` from the prior (the learned one with ``temperature``, else uniform)."""
        if self.prior is None:
            return torch.randint(self.config.codebook_size, (n, self.side, self.side), generator=generator,
                                 device=self.codebook.device)
        return self.prior.sample(n, temperature, generator).view(n, self.side, self.side)

    # -- the bound ---------------------------------------------------------------------------
    def terms(self, x: torch.Tensor, commitment: float = 0.25, generator: torch.Generator | None = None,
              autocast: bool = False) -> dict:
        """One pass: per image ``(B,)`` in nats ``recon`` = −log p(x|z_q), ``kl`` = −log p(codes),
        ``latent`` = the codebook loss (rule ``"loss"``) plus β·commitment, ``loss`` = recon + latent
        + the learned prior's NLL (the prior trains on the batch's codes; its gradient reaches only
        the prior), and ``codes`` ``(B, h, w)``. In training mode the codebook's moving averages
        update (rule ``"ema"``) and dead codes restart, drawing with ``generator``."""
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            z_e = self.encode_grid(x)
        z_e = z_e.float()
        codes = self.nearest(z_e)
        z_q = self.codes_to_grid(codes)
        commit = (z_e - z_q.detach()).pow(2).flatten(1).sum(1)
        latent = commitment * commit
        if self.config.codebook == "loss":
            latent = latent + (z_e.detach() - z_q).pow(2).flatten(1).sum(1)
        z_st = z_e + (z_q - z_e).detach()  # straight through: the decoder's gradient reaches z_e unchanged
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            params = self.decoder(z_st)
        recon = -self.likelihood.log_prob(params.float(), x)
        # the prior's attention stays fp32 on the CPU: torch's bf16 attention backward there took 53 ms a
        # step against 10 in fp32 (28 px, batch 128), which made the whole bf16 step 0.8x of fp32
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast and x.device.type != "cpu"):
            nll = self.prior_nll(codes.detach())
        if self.training:
            self._update_codebook(z_e.detach(), codes, generator)
        loss = recon + latent + (nll if self.prior is not None else 0.0)
        return {"recon": recon, "kl": nll.float().detach(), "latent": latent, "loss": loss, "codes": codes,
                "commitment": commit.detach()}

    @torch.no_grad()
    def _update_codebook(self, z_e: torch.Tensor, codes: torch.Tensor, generator) -> None:
        d, k = self.config.code_dim, self.config.codebook_size
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        flat_codes = codes.reshape(-1)
        if self.config.codebook == "ema":
            ema_update(self.codebook, self.ema_count, self.ema_sum, flat, flat_codes, self.config.ema_decay)
        else:
            decay = self.config.ema_decay
            self.ema_count.mul_(decay).add_(torch.bincount(flat_codes, minlength=k).float(), alpha=1 - decay)
        # a dead code moves to a random encoder output of the batch at every step until it is used
        # again (its count is not reset: Jukebox's rule); its moving sum follows, so e = m / N holds
        dead = (self.ema_count < RESTART_BELOW).nonzero().flatten()
        if len(dead):
            pick = torch.randint(len(flat), (len(dead),), generator=generator, device=flat.device)
            self.codebook.data[dead] = flat[pick]
            if self.config.codebook == "ema":
                self.ema_sum[dead] = flat[pick] * self.ema_count[dead].unsqueeze(1)

    def forward(self, x: torch.Tensor, generator=None, y=None):
        """Mean images ``(B, C, H, W)`` of the quantised encoding of ``x`` (a reconstruction)."""
        return self.decode_codes(self.nearest(self.encode_grid(x)))

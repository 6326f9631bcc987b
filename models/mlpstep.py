"""The default model's training step with its backward pass written out.

The MLP Gaussian VAE with a Bernoulli likelihood (Kingma & Welling 2014, appendix C.2:
x → h = relu(W₁x + b₁) → (mu, logvar) → z = mu + exp(logvar/2)·ε → relu(W₂z + b₂) → logits)
is small enough at batch 128 that autograd's bookkeeping and the ~40 element-wise kernels
around its six matrix products cost as much as a third of a CPU step. Here the gradients of
the negative ELBO are written out by hand (the chain rule through the same operations, one
matrix product per weight gradient, ReLU's mask applied in place) and land in one flat
buffer, so the whole step runs no autograd graph.

In bf16 only the two wide layers (784→400 of the encoder, 400→784 of the decoder) and their
gradients run in bfloat16; the latent side (the 20-wide products to ``mu``, ``logvar`` and back,
the reparameterization, the KL) and the likelihood stay float32. ``torch.autocast`` would put the
20-wide products in bf16 too, where on a CPU with native bf16 they ran slower than in float32
(~440 µs against ~215 µs of a step, batch 128, 2 threads) and rounded ``mu`` and ``logvar``. With
Adam, this step took 2.07–2.25 ms against 2.35–2.39 ms with all five products in bf16 (3 runs
each, interleaved, a Xeon with AMX-BF16, 2026-12-05), and it is nearer the float32 step than
autocast is (the tests check both against float32 autograd). Which runs take it:
:func:`written_step_applies`; every other model, objective or device trains through autograd
(:func:`models.objectives.objective_terms`), and the tests check that both give the same
gradients and the same training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.config import ModelConfig, TrainConfig
from models.objectives import ELBOTerms, gaussian_kl_per_dim

#: each parameter's gradient starts on a 64-byte boundary of the flat buffer: over gradients at
#: unaligned offsets Adam's fused kernel took 0.90 ms against 0.36 ms (one profile, 2 CPU threads, 2026-12-04)
_ALIGN = 16

_relu_backward = torch.ops.aten.threshold_backward


def _is_bernoulli_mlp_vae(config: ModelConfig) -> bool:
    return config.model == "vae" and config.arch == "mlp" and config.likelihood == "bernoulli"


def written_step_applies(model_config: ModelConfig, train_config: TrainConfig, device: torch.device,
                         distributed: bool) -> bool:
    """Whether a run trains with :class:`BernoulliMLPStep`: the β-VAE objective (any β,
    KL warm-up) of the MLP VAE with a Bernoulli likelihood, one sample per image (no IWAE
    bound, no free bits), on the CPU (fp32 or bf16), in one process. The step was measured
    only on the CPU, so a GPU keeps autograd."""
    return (_is_bernoulli_mlp_vae(model_config) and train_config.objective == "beta" and train_config.iw_k == 1
            and train_config.free_bits == 0 and device.type == "cpu" and not distributed)


def _mm_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """out = a @ b, computed in a's dtype and stored in out's (a bf16 product's float32 gradient)."""
    if a.dtype == out.dtype:
        torch.mm(a, b, out=out)
    else:
        out.copy_(torch.mm(a, b))


class BernoulliMLPStep:
    """Forward and backward of the mean negative ELBO of a batch, without autograd.

    Args:
        model: a :class:`models.vae.VAE` with ``arch="mlp"``, ``model="vae"`` and a
            Bernoulli likelihood; its parameters' ``.grad`` become views of one flat buffer
            (:attr:`flat`), overwritten by every call.
        mixed_precision: run the two wide layers' products and activations in bfloat16 (their
            weights cast each step); the latent side, the likelihood, the KL and every
            gradient of a weight stay float32.

    Raises:
        ValueError: for any other model (see :func:`written_step_applies`).
    """

    def __init__(self, model: torch.nn.Module, mixed_precision: bool = False):
        cfg = model.config
        if not _is_bernoulli_mlp_vae(cfg):
            raise ValueError(f"the written-out step is for the MLP VAE with a Bernoulli likelihood, "
                             f"not a {cfg.arch} {cfg.model} with a {cfg.likelihood} likelihood")
        self.dtype = torch.bfloat16 if mixed_precision else torch.float32
        self.layers = (model.enc, model.enc_mu, model.enc_logvar, model.dec, model.dec_out)
        self.params = [p for layer in self.layers for p in (layer.weight, layer.bias)]
        if len(self.params) != len(list(model.parameters())):
            raise ValueError("the model has parameters the written-out step does not train")
        sizes = [-(-p.numel() // _ALIGN) * _ALIGN for p in self.params]
        first = self.params[0]
        #: every gradient in one buffer: the trainer checks its sum for NaN/inf before each update
        self.flat = torch.zeros(sum(sizes), dtype=first.dtype, device=first.device)
        #: the gradients, views of :attr:`flat` shaped as their parameters
        self.grad_views: list[torch.Tensor] = []
        offset = 0
        for p, size in zip(self.params, sizes):
            self.grad_views.append(self.flat[offset:offset + p.numel()].view_as(p))
            offset += size

    def update(self, optimizer: torch.optim.Adam) -> None:
        """``optimizer.step()`` for these parameters, the same fused Adam kernel called directly:
        the gradients are always the same views, so the optimizer's per-step Python (~0.1–0.2 ms of
        a 4 ms step on 2 CPU threads) is not needed. Falls back to ``optimizer.step()`` for its
        first step (Adam's state does not exist yet) and for any setting the direct call does not
        cover (several groups, weight decay, AMSGrad, an unfused optimizer)."""
        group = optimizer.param_groups[0]
        states = [optimizer.state.get(p) for p in self.params]
        if (len(optimizer.param_groups) != 1 or not group.get("fused") or group["amsgrad"] or group["maximize"]
                or group["weight_decay"] or group.get("decoupled_weight_decay") or group.get("capturable")
                or group.get("differentiable") or not all(s and "exp_avg" in s for s in states)):
            optimizer.step()
            return
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1)
        beta1, beta2 = group["betas"]
        torch._fused_adam_(self.params, self.grad_views, [s["exp_avg"] for s in states],
                           [s["exp_avg_sq"] for s in states], [], steps, lr=float(group["lr"]), beta1=beta1,
                           beta2=beta2, weight_decay=0.0, eps=group["eps"], amsgrad=False, maximize=False)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None,
                 kl_weight: float = 1.0) -> ELBOTerms:
        """One step's forward pass and the gradient of the loss, mean over the batch of
        recon + w·KL (w = ``kl_weight``), left in the parameters' ``.grad``.

        Args:
            x: images ``(B, C, H, W)``, pixels in [0, 1], float32.
            generator: draws the reparameterization's ε ``(B, D)`` as
                :meth:`models.vae.VAE.reparameterize` does (the same numbers).
            kl_weight: w, β times the warm-up's factor.

        Returns:
            :class:`ELBOTerms` per image in nats (``recon``, ``kl``, ``neg_elbo``, ``loss``,
            ``kl_per_dim`` ``(B, D)``, ``z`` ``(B, D)``), detached.

        Gradients (B images, σ the logistic function, ε the noise, std = exp(logvar/2)):
        ∂L/∂logits = (σ(logits) − x)/B; ∂L/∂mu = ∂L/∂z + w·mu/B;
        ∂L/∂logvar = ½·∂L/∂z·ε·std + ½·w·(exp(logvar) − 1)/B (the closed-form KL of
        Kingma & Welling 2014, appendix B, and the reparameterization of §2.4).
        """
        enc, enc_mu, enc_lv, dec, dec_out = self.layers
        g_w1, g_b1, g_wm, g_bm, g_wl, g_bl, g_w2, g_b2, g_w3, g_b3 = self.grad_views
        for p, g in zip(self.params, self.grad_views):
            if p.grad is not g:
                p.grad = g
        batch = x.shape[0]
        xf = x.reshape(batch, -1)
        inv = 1.0 / batch
        dt = self.dtype
        with torch.no_grad():
            w1, wm, wl, w2, w3 = (layer.weight for layer in self.layers)
            b1, bm, bl, b2, b3 = (layer.bias for layer in self.layers)
            if dt is torch.float32:  # no casts (even .to()'s no-op costs a dispatch)
                xc = xf
            else:  # the two wide layers in bf16; the latent side's (20-wide) products stay float32
                w1, b1, w3, b3, xc = w1.to(dt), b1.to(dt), w3.to(dt), b3.to(dt), xf.to(dt)
            h1 = torch.addmm(b1, xc, w1.t()).relu_()
            h1f = h1.float()
            mu = torch.addmm(bm, h1f, wm.t())
            logvar = torch.addmm(bl, h1f, wl.t())
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            std = torch.exp(0.5 * logvar)
            z = mu + std * eps
            h2f = torch.addmm(b2, z, w2.t()).relu_()
            h2 = h2f.to(dt)
            logits = torch.addmm(b3, h2, w3.t()).float()
            recon = F.binary_cross_entropy_with_logits(logits, xf, reduction="none").sum(1)
            kl_d = gaussian_kl_per_dim(mu, logvar)
            kl = kl_d.sum(1)
            # backward, from the logits down (W3 is used again before its gradient is written over
            # the caches); bias gradients summed in float32
            g_logits = torch.sigmoid(logits).sub_(xf).mul_(inv).to(dt)
            g_h2 = _relu_backward(torch.mm(g_logits, w3).float(), h2f, 0)
            _mm_into(g_w3, g_logits.t(), h2)
            torch.sum(g_logits, 0, dtype=torch.float32, out=g_b3)
            torch.mm(g_h2.t(), z, out=g_w2)
            torch.sum(g_h2, 0, out=g_b2)
            g_z = torch.mm(g_h2, w2)
            g_mu = torch.add(g_z, mu, alpha=kl_weight * inv)
            g_lv = (g_z * eps).mul_(std).add_(torch.exp(logvar).sub_(1), alpha=kl_weight * inv).mul_(0.5)
            torch.mm(g_mu.t(), h1f, out=g_wm)
            torch.sum(g_mu, 0, out=g_bm)
            torch.mm(g_lv.t(), h1f, out=g_wl)
            torch.sum(g_lv, 0, out=g_bl)
            g_h1 = _relu_backward(torch.mm(g_mu, wm).addmm_(g_lv, wl), h1f, 0)
            _mm_into(g_w1, g_h1.to(dt).t(), xc)
            torch.sum(g_h1, 0, out=g_b1)
        return ELBOTerms(recon=recon, kl=kl, neg_elbo=recon + kl, loss=recon + kl_weight * kl, kl_per_dim=kl_d,
                         z=z.float())

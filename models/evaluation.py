"""The per-epoch evaluation: the one-sample ELBO on a split and, when asked for, the
importance-sampled estimate of log p(x) (Burda et al. 2016), in chunks that bound the
memory and let a stop request end it within a fraction of a second."""

from __future__ import annotations

from collections.abc import Callable

import torch

from models.objectives import iw_log_marginal, objective_terms
from models.resources import IW_CHUNK_IMAGES


class EvaluationStopped(Exception):
    """Raised by :func:`evaluate` when ``stopped()`` turned True between two chunks."""


@torch.inference_mode()
def evaluate(
    model,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    device: torch.device,
    eval_iw: int = 0,
    eval_iw_images: int = 500,
    batch_size: int = 1000,
    seed: int = 1234,
    stopped: Callable[[], bool] | None = None,
) -> dict:
    """Mean one-sample ELBO terms over ``x`` ``(N, C, H, W)``, nats per image, plus
    ``kl_per_dim`` (list of D floats) and, when ``eval_iw`` = K > 0, ``nll_iw``
    (−log p(x) from K importance samples) and ``iw_gap`` (log p(x) − ELBO) on the
    first ``eval_iw_images`` images. For a hierarchical VAE, ``test_terms`` holds each layer's KL
    (``kl_z1``, ``kl_z2``, nats per image) and active units (``active_z1``, ``active_z2``: Burda et al.
    2016's A_u > 0.01 over the posterior means of the split), and ``kl_per_dim`` is the top layer's;
    for the VQ-VAE ``test_terms`` holds the codebook's ``perplexity`` and ``codes_used`` on the split.

    ``x`` and the labels ``y`` ``(N,)`` may lie on any device: each chunk is moved to ``device``.
    The noise is drawn from a fixed ``seed``, so two calls on the same weights agree.
    The model is in eval mode meanwhile and back in train mode afterwards.

    Raises:
        EvaluationStopped: when ``stopped()`` is True before a chunk (the importance
            sampling runs in calls of at most 20,000 decoded images).
    """
    def check() -> None:
        if stopped is not None and stopped():
            raise EvaluationStopped

    model.eval()
    try:
        gen = torch.Generator(device=device).manual_seed(seed)
        sums = torch.zeros(3, device=device)
        kl_dims = torch.zeros(model.latent_dim, device=device)
        layered = getattr(model, "hierarchical", False)
        layer_kl = [torch.zeros(d, device=device) for d in model.layer_dims] if layered else []
        layer_means: list[list[torch.Tensor]] = [[], []]
        discrete = getattr(model, "discrete", False)
        usage = torch.zeros(model.config.codebook_size if discrete else 0, device=device)
        for start in range(0, len(x), batch_size):
            check()
            xb = x[start : start + batch_size].to(device)
            yb = None if y is None else y[start : start + batch_size].to(device)
            t = objective_terms(model, xb, yb, gen)
            sums += torch.stack([t.recon.sum(), t.kl.sum(), t.neg_elbo.sum()])
            if t.kl_per_dim is not None:  # the same encoder pass, not a second one
                kl_dims += t.kl_per_dim.sum(0)
            if t.codes is not None:
                usage += torch.bincount(t.codes.flatten(), minlength=len(usage)).to(usage.dtype)
            if layered:
                for i, (total, kl_d, (mu, _)) in enumerate(zip(layer_kl, t.layer_kl, model.encode_layers(xb))):
                    total += kl_d.sum(0)
                    layer_means[i].append(mu.float().cpu())
        recon, kl, neg = (sums / len(x)).tolist()
        result = {"recon": recon, "kl": kl, "neg_elbo": neg,
                  "kl_per_dim": [] if discrete else (kl_dims / len(x)).tolist()}
        if discrete:  # the codebook's use on this split
            from models.vqvae import perplexity

            result["test_terms"] = {"perplexity": perplexity(usage), "codes_used": int((usage > 0).sum())}
        if layered:  # per layer: KL in nats per image and Burda et al.'s active units
            from models.hierarchical import activity

            result["test_terms"] = {}
            for i, (total, means) in enumerate(zip(layer_kl, layer_means), start=1):
                result["test_terms"][f"kl_z{i}"] = float(total.sum()) / len(x)
                result["test_terms"][f"active_z{i}"] = activity(torch.cat(means))[1]
        k = eval_iw
        if k and not model.is_autoencoder:
            n = min(eval_iw_images, len(x))
            xs, ys = x[:n].to(device), None if y is None else y[:n].to(device)
            nll_iw = torch.zeros((), device=device)
            neg_elbo = torch.zeros((), device=device)
            # images × samples per call bounded, so memory stays bounded and a stop is
            # seen within one chunk (a fraction of a second) whatever K is
            per = max(1, min(100, IW_CHUNK_IMAGES // k))
            for start in range(0, n, per):
                check()
                xb, yb = xs[start : start + per], None if ys is None else ys[start : start + per]
                nll_iw -= iw_log_marginal(model, xb, yb, k, gen).sum()
                neg_elbo += objective_terms(model, xb, yb, gen).neg_elbo.sum()
            result["nll_iw"] = float(nll_iw) / n
            result["iw_gap"] = (float(neg_elbo) - float(nll_iw)) / n
        return result
    finally:
        model.train()


def test_terms_text(terms: dict) -> str:
    """A model's own test figures (``EpochEnd.test_terms``) in words: each layer's KL (nats per image)
    and active units of a hierarchical VAE, the codebook's perplexity and use of a VQ-VAE; "" otherwise."""
    if "kl_z1" in terms:
        return ("test KL z1 {kl_z1:.2f} + z2 {kl_z2:.2f} nats, active units z1 {active_z1} · z2 {active_z2}"
                .format(**terms))
    if "perplexity" in terms:
        return f"codebook perplexity {terms['perplexity']:.1f}, {terms['codes_used']} codes used"
    return ""

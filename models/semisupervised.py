"""The semi-supervised VAE M2 (Kingma, Rezende, Mohamed & Welling 2014, §3.1.2): a classifier
q(y|x), an encoder q(z|x, y) and a decoder p(x|y, z) with priors p(y) uniform over K classes
and p(z) = N(0, I).

* A labelled image: −L(x, y) = E_q(z|x,y)[log p(x|y, z)] − KL(q(z|x, y) ‖ p(z)) + log p(y)
  (eq. 6); its bound is L(x, y) in nats.
* An unlabelled image: −U(x) = Σ_y q(y|x) (−L(x, y)) + H(q(y|x)) (eq. 7), so
  U(x) = Σ_y q(y|x)(recon_y + KL_y) + KL(q(y|x) ‖ p(y)): the recon term and the KL of
  q(y, z|x) from p(y)p(z), in nats.
* Training minimises Σ_labelled L + Σ_unlabelled U + α·E_labelled[−log q(y|x)] (eq. 9), here
  as batch means with the classification term weighted α/B_l per labelled image, α = α_N·N.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _terms_given_y(model, x: torch.Tensor, y: torch.Tensor, generator, autocast: bool):
    """recon ``(B,)``, KL_z ``(B,)`` and KL_z per dimension ``(B, D)``, nats, for q(z|x, y)."""
    from models.objectives import gaussian_kl_per_dim

    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        mu, logvar = model.encode(x, y)
        z = model.reparameterize(mu, logvar, generator)
        params = model.decode_params(z, y)
    recon = -model.likelihood.log_prob(params.float(), x)
    kl_d = gaussian_kl_per_dim(mu.float(), logvar.float())
    return recon, kl_d.sum(1), kl_d


def unlabelled_terms(model, x: torch.Tensor, generator=None, kl_weight: float = 1.0, autocast: bool = False):
    """U(x) of M2 (eq. 7) with every class y decoded: returns
    ``(recon (B,), kl (B,), neg_elbo (B,), loss (B,), kl_per_dim (B, D), log_q (B, K))``, nats per image;
    ``kl`` = Σ_y q(y|x) KL(q(z|x, y) ‖ p(z)) + KL(q(y|x) ‖ p(y)); ``loss`` weighs the z part by ``kl_weight``."""
    b, k = x.shape[0], model.n_classes
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = model.classify(x)
    log_q = F.log_softmax(logits.float(), dim=1)
    q = log_q.exp()
    xr = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
    yr = torch.arange(k, device=x.device).repeat_interleave(b)
    recon, kl_z, kl_d = _terms_given_y(model, xr, yr, generator, autocast)
    recon, kl_z = recon.view(k, b).T, kl_z.view(k, b).T  # (B, K)
    recon_m = (q * recon).sum(1)
    kl_zm = (q * kl_z).sum(1)
    kl_y = (q * log_q).sum(1) + math.log(k)  # KL(q(y|x) ‖ uniform)
    kl_dm = (q.T.unsqueeze(2) * kl_d.view(k, b, -1)).sum(0)
    neg = recon_m + kl_zm + kl_y
    return recon_m, kl_zm + kl_y, neg, recon_m + kl_weight * kl_zm + kl_y, kl_dm, log_q


def labelled_terms(model, x: torch.Tensor, y: torch.Tensor, generator=None, kl_weight: float = 1.0,
                   autocast: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """L(x, y) of M2 for labelled images (eq. 6, with −log p(y) = log K), the loss form (KL_z weighed by
    ``kl_weight``), and the classification term −log q(y|x): ``(loss (B,), ce (B,))`` in nats."""
    recon, kl_z, _ = _terms_given_y(model, x, y, generator, autocast)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = model.classify(x)
    ce = F.cross_entropy(logits.float(), y, reduction="none")
    return recon + kl_weight * kl_z + math.log(model.n_classes), ce


def labelled_subset(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices of ``per_class`` images of each class drawn with ``seed`` (all images for 0), sorted.

    Raises:
        ValueError: when a class has fewer images than asked.
    """
    if per_class == 0:
        return torch.arange(len(labels))
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    picked = []
    for c in torch.unique(labels).tolist():
        of_c = order[labels[order] == c]
        if len(of_c) < per_class:
            raise ValueError(f"class {c} has {len(of_c)} training images, fewer than the {per_class} labelled asked")
        picked.append(of_c[:per_class])
    return torch.cat(picked).sort().values


class LabelledBatches:
    """M2's labelled training images: ``per_class`` of each class drawn with ``seed``
    (:func:`labelled_subset`; indices ``(L,)`` into the training split, on ``device``), and the
    labelled part of each training step (:meth:`loss`). ``len()`` is L."""

    def __init__(self, labels: torch.Tensor, per_class: int, seed: int, device: torch.device):
        self.indices = labelled_subset(labels, per_class, seed).to(device)
        self.labels = labels.to(device)

    def __len__(self) -> int:
        return len(self.indices)

    def loss(self, model, images, batch: int, generator, kl_weight: float, autocast: bool, alpha: float,
             n_train: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of ``batch`` labelled images (at most L) drawn with replacement, read by ``images(idx)``
        ``(B, C, H, W)``: their mean L(x, y) plus the classification term weighted α·N / L per image
        (``alpha``, N = ``n_train``: each labelled image's −log q(y|x) counts as in eq. 9 of Kingma
        et al. 2014), and the mean −log q(y|x), nats."""
        n_l = len(self.indices)
        pick = self.indices[torch.randint(n_l, (min(batch, n_l),), generator=generator, device=self.indices.device)]
        loss_l, ce = labelled_terms(model, images(pick), self.labels[pick], generator, kl_weight, autocast)
        return loss_l.mean() + alpha * n_train / n_l * ce.mean(), ce.mean().detach()


def classification_error(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """The share of images whose most likely class under q(y|x) is not their label, in [0, 1]."""
    from models.data import as_float

    wrong = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model.classify(as_float(x[start:start + batch_size]))
            wrong += int((logits.argmax(1).cpu() != y[start:start + batch_size].cpu()).sum())
    return wrong / max(1, len(x))


def supervised_baseline(model_config, train_config, dataset, steps: int) -> float:
    """The test error of M2's classifier architecture trained on the same labelled images alone
    (cross-entropy, Adam at ``train_config.lr``, batches of the labelled set drawn with
    ``train_config.seed``) for ``steps`` steps: the reference beside M2's error."""
    from torch import nn

    from models.data import as_float

    k, h = model_config.n_classes, model_config.hidden_dim
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train_config.seed)
        net = nn.Sequential(nn.Linear(model_config.input_dim, h), nn.ReLU(), nn.Linear(h, k))
    labelled = labelled_subset(dataset.train_y, train_config.labels_per_class, train_config.seed)
    x, y = as_float(dataset.train_x[labelled]).flatten(1), dataset.train_y[labelled]
    opt = torch.optim.Adam(net.parameters(), lr=train_config.lr)
    g = torch.Generator().manual_seed(train_config.seed)
    batch = min(train_config.batch_size, len(labelled))
    for _ in range(steps):
        pick = torch.randint(len(labelled), (batch,), generator=g)
        loss = F.cross_entropy(net(x[pick]), y[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        predicted = net(as_float(dataset.test_x).flatten(1)).argmax(1)
    return float((predicted != dataset.test_y).float().mean())

"""What a training run yields, in order: :class:`StepBatch` every few steps, :class:`EpochEnd` after each
epoch, :class:`TrainingDone` at the end (:meth:`models.trainer.Trainer.run`). Plain data, so that the
training process can send them to the window as they are."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StepBatch:
    """Metrics of consecutive training steps (nats per image, batch means).

    Attributes:
        epoch: the current epoch, 1-based.
        steps: global step numbers, 1-based.
        recon, kl, neg_elbo, loss: one value per step: −E_q[log p(x|z)],
            KL(q‖p), −ELBO and the β-weighted loss, each in nats per image.
        step_in_epoch: steps done in this epoch after the last one listed.
        steps_per_epoch, total_steps: for progress.
        samples_per_s: training throughput so far (evaluation and pauses excluded).
    """

    epoch: int
    steps: list[int]
    recon: list[float]
    kl: list[float]
    neg_elbo: list[float]
    loss: list[float]
    step_in_epoch: int
    steps_per_epoch: int
    total_steps: int
    samples_per_s: float


@dataclass
class EpochEnd:
    """End-of-epoch summary; all terms in nats per image.

    ``train_*`` are means over the epoch's steps; ``test_*`` are a one-sample ELBO
    estimate over the whole test split with a fixed noise seed. ``test_nll_iw`` is
    −log p(x) estimated with K importance samples on the first ``eval_iw_images`` test
    images (None when not asked for), ``test_iw_gap`` = log p(x) − ELBO on those
    images (≈ KL(q(z|x) ‖ p(z|x)); Burda et al. 2016). ``kl_per_dim`` is each latent
    dimension's KL averaged over the test split; a dimension with less than 0.01 nats
    counts as inactive (collapsed). ``train_terms`` are the epoch means of the objective's
    own terms (:data:`models.penalties.OBJECTIVE_TERMS`: β-TCVAE's MI, TC and dimension-wise
    KL, FactorVAE's TC and discriminator accuracy, the capacity C, the DIP penalty).
    ``test_error`` is M2's classification error on the test split (None for other models).
    ``test_terms``: the model's own test figures; for the hierarchical VAEs each layer's test KL
    (``kl_z1``, ``kl_z2``, nats per image) and active units (``active_z1``, ``active_z2``; Burda et
    al. 2016's statistic), their train KLs being in ``train_terms``; for the VQ-VAE the codebook's
    ``perplexity`` and ``codes_used`` on the test split. ``disentanglement`` holds the
    scores of :func:`models.metrics.epoch_scores` when
    ``TrainConfig.metrics`` asks for them (empty otherwise).
    """

    epoch: int
    step: int
    train_recon: float
    train_kl: float
    train_neg_elbo: float
    test_recon: float
    test_kl: float
    test_neg_elbo: float
    samples_per_s: float
    seconds: float
    kl_weight: float = 1.0
    test_nll_iw: float | None = None
    test_iw_gap: float | None = None
    active_dims: int = 0
    kl_per_dim: list[float] = field(default_factory=list)
    train_terms: dict[str, float] = field(default_factory=dict)
    test_error: float | None = None
    disentanglement: dict = field(default_factory=dict)
    test_terms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_sums(cls, epoch: int, step: int, sums: list[float], steps: int, term_keys: tuple[str, ...],
                  test: dict, **figures) -> EpochEnd:
        """The summary of an epoch of ``steps`` steps whose batch means add up to ``sums`` (recon, KL,
        −ELBO, then the objective's ``term_keys``), beside :func:`models.evaluation.evaluate`'s ``test``
        figures; ``figures`` gives the other fields (``samples_per_s``, ``seconds``, ``kl_weight``, ...)."""
        return cls(epoch=epoch, step=step, train_recon=sums[0] / steps, train_kl=sums[1] / steps,
                   train_neg_elbo=sums[2] / steps, test_recon=test["recon"], test_kl=test["kl"],
                   test_neg_elbo=test["neg_elbo"], test_nll_iw=test.get("nll_iw"), test_iw_gap=test.get("iw_gap"),
                   kl_per_dim=test["kl_per_dim"], test_terms=test.get("test_terms", {}),
                   train_terms={k: sums[3 + i] / steps for i, k in enumerate(term_keys)}, **figures)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["train_terms"] = dict(self.train_terms)
        d["disentanglement"] = dict(self.disentanglement)
        d["test_terms"] = dict(self.test_terms)
        return d


@dataclass
class TrainingDone:
    """The run ended: ``stopped`` is True when :meth:`Trainer.request_stop` ended it early."""

    stopped: bool
    epochs_completed: int
    step: int
    history: list[EpochEnd] = field(default_factory=list)

"""The training loop: a generator that yields metrics between steps and honours
stop / pause flags checked between steps (superqt's ``GeneratorWorker`` pattern).

It knows nothing of Qt: the GUI drives it from a worker thread, ``vaegui train``
drives it from the main thread, through the same code path.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator

import torch

from models import resume as exact_resume
from models.config import ModelConfig, TrainConfig
from models.data import ImageDataset, as_float
from models.evaluation import EvaluationStopped, evaluate
from models.events import EpochEnd, StepBatch, TrainingDone
from models.factorvae import FactorVAEDiscriminator
from models.metrics import MetricsStopped, epoch_scores
from models.mlpstep import BernoulliMLPStep, written_step_applies
from models.objectives import ELBOTerms, objective_terms
from models.penalties import OBJECTIVE_TERMS, Penalty, capacity
from models.semisupervised import LabelledBatches, classification_error
from models.vae import build_model


class NonFiniteLossError(RuntimeError):
    """Raised from :meth:`Trainer.run` when a step's loss is NaN or infinite."""


def best_device() -> torch.device:
    """CUDA if available, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def training_device(name: str) -> torch.device:
    """The device a :class:`TrainConfig` ``device`` string trains on (``"auto"``: the
    best one, :func:`best_device`). A CUDA device always carries its index (``"cuda"`` is
    the current GPU, ``cuda:0`` unless a distributed rank chose another), so it compares
    equal to the ``.device`` of the tensors made on it.

    Raises:
        ValueError: when the device does not exist or cannot allocate here.
    """
    if name == "auto":
        device = best_device()
    else:
        try:
            device = torch.device(name)
            torch.empty(1, device=device)
        except (RuntimeError, AssertionError) as exc:
            raise ValueError(f"device {name!r} is not usable here: {exc}") from exc
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def available_devices() -> list[str]:
    """Device strings this machine can train on, best first."""
    names = []
    if torch.cuda.is_available():
        names.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    names.append("cpu")
    return names


def _fused_adam(device: torch.device) -> dict[str, bool]:
    """Adam's single-kernel ("fused") update where the device supports it: on the CPU
    it cuts the optimizer step several times over against the per-tensor loop."""
    return {"fused": True} if device.type in ("cpu", "cuda", "mps") else {}


def native_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16/AMX, through oneDNN)."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"`` for a :class:`TrainConfig` precision on ``device``.

    ``"auto"`` picks bf16 autocast (matmuls in bfloat16, the loss and the weights in
    float32) on CPUs that do bf16 natively (AVX512-BF16/AMX, through oneDNN): 1.2–1.7× the
    fp32 steps of the MLP there. Everywhere else, GPUs included, float32: on an H200 the
    MLP and the conv net (64×64, batch 128 to 1024) are bound by kernel launches, not by
    arithmetic, and autocast's casts made them slower than fp32 in each of ten measurements
    (by 1–59 %, median 15 %; 2026-12-04; cuDNN runs fp32 convolutions in TF32 by default).
    """
    if precision in ("fp32", "bf16"):
        return precision
    if device.type == "cpu":
        return "bf16" if native_bf16() else "fp32"
    return "fp32"


def _check_m2(cfg: TrainConfig) -> None:
    """M2 trains on its own bound: the settings that change the objective elsewhere do not apply."""
    for wrong, why in ((cfg.objective != "beta", "an objective of the β family"), (cfg.iw_k > 1, "the IWAE bound"),
                       (cfg.eval_iw > 0, "the importance-sampled log p(x)"), (cfg.free_bits > 0, "free bits")):
        if wrong:
            raise ValueError(f"the semi-supervised VAE (M2) trains on its own bound, without {why}")


def _check_vq(cfg: TrainConfig) -> None:
    """The VQ-VAE has no Gaussian posterior: the settings of the KL term and the IS estimate do not apply."""
    for wrong, why in ((cfg.objective != "beta", "an objective of the β family"), (cfg.iw_k > 1, "the IWAE bound"),
                       (cfg.eval_iw > 0, "the importance-sampled log p(x) (its bound is recon + the prior's NLL)"),
                       (cfg.free_bits > 0, "free bits"), (cfg.beta != 1.0, "a KL weight β"),
                       (cfg.kl_warmup > 0, "a KL warm-up"),
                       (cfg.metrics != "off", "the disentanglement scores (they read a Gaussian posterior mean)")):
        if wrong:
            raise ValueError(f"the VQ-VAE has no Gaussian posterior, so it trains without {why}")


def _check_hierarchical(cfg: TrainConfig) -> None:
    """The hierarchical VAEs train on the ELBO (β weighing every layer's KL) or the IWAE bound."""
    for wrong, why in ((cfg.objective != "beta", "an objective of the β family other than β-VAE"),
                       (cfg.free_bits > 0, "free bits")):
        if wrong:
            raise ValueError(f"the two-layer and ladder VAEs train on the ELBO or the IWAE bound, without {why}")


def model_terms(model_config: ModelConfig, train_config: TrainConfig) -> tuple[str, ...]:
    """The terms a run reports as epoch means (``EpochEnd.train_terms``): the objective's, or those of a
    model with its own bound (M2, the two-layer VAEs, the VQ-VAE), whose settings are checked here.

    Raises:
        ValueError: for settings the model's own bound does not take.
    """
    if model_config.model == "m2":
        _check_m2(train_config)
        return ("classification",)
    if model_config.hierarchical:
        _check_hierarchical(train_config)
        return ("kl_z1", "kl_z2")
    if model_config.discrete:
        _check_vq(train_config)
        return ("commitment",)
    return OBJECTIVE_TERMS[train_config.objective]


def _check_inputs(model_config: ModelConfig, train_config: TrainConfig, dataset: ImageDataset) -> None:
    """What a :class:`Trainer` refuses: images of another shape than the model's, disentanglement
    scores without ground-truth factors, a penalty on the plain autoencoder, labels beyond a
    conditional model's classes (``ValueError``, saying which)."""
    if tuple(dataset.image_shape) != tuple(model_config.input_shape):
        raise ValueError(f"dataset images are {dataset.image_shape} but the model expects {model_config.input_shape}")
    if train_config.metrics != "off" and dataset.train_factors is None:
        raise ValueError(f"{dataset.title} has no ground-truth factors, so the disentanglement scores cannot be "
                         "computed: turn them off or train on Shapes (or an npz with a 'factors' array)")
    if train_config.objective != "beta" and model_config.model == "ae":
        raise ValueError("the plain autoencoder has no posterior to penalise: choose the β-VAE objective")
    if model_config.conditional and int(dataset.train_y.max()) >= model_config.n_classes:
        raise ValueError(f"labels reach {int(dataset.train_y.max())} but the model has {model_config.n_classes} "
                         "classes")


def place_splits(dataset: ImageDataset, device: torch.device, stream: bool | None, labels: bool) -> tuple:
    """The splits where a trainer reads them: ``(streamed, train_x, test_x, train_y, test_y)``.

    uint8 images stay uint8 (4× less memory than floats). Streamed (``stream`` True; None decides:
    when the training split would take more than half the GPU's free memory), the training images
    stay in host memory, pinned for fast copies to a GPU, and each batch goes to ``device``; else
    they move to ``device`` once. The labels ``(N,)`` move too when ``labels`` (else None)."""
    if stream is None:
        free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
        stream = free is not None and dataset.train_x.nbytes > 0.5 * free
    if stream:
        train_x = dataset.train_x.pin_memory() if device.type == "cuda" else dataset.train_x
    else:
        train_x = dataset.train_x.to(device)
    train_y, test_y = (dataset.train_y.to(device), dataset.test_y.to(device)) if labels else (None, None)
    return bool(stream), train_x, dataset.test_x.to(device), train_y, test_y


#: nats: a latent dimension whose test-mean KL is below this counts as inactive
ACTIVE_KL = 0.01


class Trainer:
    """Adam on the β-weighted negative ELBO (or the IWAE bound) of a :class:`~models.vae.VAE`.

    The whole training split is moved to the training device once and batches
    are drawn by indexing a seeded permutation, so no per-item collation is paid.

    Args:
        model_config: network description; its ``input_shape`` must match the data.
        train_config: optimisation settings.
        dataset: the images.
        sync_every: steps between host synchronisations (metrics read-back and the
            non-finite check); 1 on the CPU, where reading back is free.
        stop_event, run_event: the stop and pause flags, ``threading.Event`` by default;
            pass ``multiprocessing`` events to control a trainer in another process.
        stream: keep the training images in host memory and send each batch to the
            device (memory on the device stays bounded by one batch). None decides:
            streamed when the split would take more than half the GPU's free memory.
        dist: this process's place in a distributed run (:mod:`models.distributed`):
            ``train_config.batch_size`` is then the global batch, split across the ranks, and
            the rank trains on ``dist.device`` whatever ``train_config.device`` says.
        written_backward: train the default model (the MLP VAE, Bernoulli, β objective, on the
            CPU) with its backward written out (:mod:`models.mlpstep`); False keeps autograd, for
            comparison.

    Raises:
        ValueError: if the dataset's image shape differs from ``model_config.input_shape``
            or the device string is not usable.
    """

    def __init__(
        self,
        model_config: ModelConfig,
        train_config: TrainConfig,
        dataset: ImageDataset,
        sync_every: int | None = None,
        stop_event=None,
        run_event=None,
        stream: bool | None = None,
        dist=None,
        written_backward: bool = True,
    ):
        _check_inputs(model_config, train_config, dataset)
        self.model_config, self.config, self.dataset = model_config, train_config, dataset
        # a distributed rank trains where models.distributed.rank_device put it (its GPU, or the CPU when the
        # machine has fewer GPUs than processes); the config keeps the device the user asked for
        self.device = training_device(dist.device if dist is not None else train_config.device)
        self.mixed_precision = resolve_precision(train_config.precision, self.device) == "bf16"
        # a distributed run reads its metrics back in one all_reduce per flush, so it flushes less often
        self.sync_every = sync_every or (1 if self.device.type == "cpu" and dist is None else 10)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train_config.seed)
            self.model = build_model(model_config)
            #: FactorVAE's discriminator and its Adam (models/factorvae.py), None for the other objectives
            self.discriminator = (FactorVAEDiscriminator(model_config.latent_dim, train_config.disc_width,
                                                         self.device)
                                  if train_config.objective == "factorvae" else None)
        self.model.to(self.device)
        #: conv networks train in channels-last memory format (oneDNN's and cuDNN's fast layout: measured
        #: 1.02–1.23× fp32 and 1.07–1.14× bf16 over the default layout at 28 and 64 pixels on 2 CPU cores)
        self.channels_last = model_config.arch == "conv"
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        #: the distributed context and the objective inside DistributedDataParallel (None alone)
        self.dist, self._dstep = dist, None
        if dist is not None:
            from models.distributed import DistributedStep, check_distributable

            check_distributable(model_config.model, train_config)
            self._dstep = DistributedStep(dist, self.model, self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=train_config.lr, **_fused_adam(self.device))
        self._params = list(self.model.parameters())  # for the gradient check of every step
        #: the default model's step with its backward written out (models/mlpstep.py), None where autograd runs
        self.written_step = (BernoulliMLPStep(self.model, self.mixed_precision) if written_backward and
                             written_step_applies(model_config, train_config, self.device, dist is not None) else None)
        #: the objective's own terms, reported as epoch means (EpochEnd.train_terms)
        self.term_keys: tuple[str, ...] = model_terms(model_config, train_config)
        self.generator = torch.Generator(device=self.device).manual_seed(train_config.seed)
        # M2 sees labels only through its labelled subset
        self.streamed, self.train_x, self.test_x, self.train_y, self.test_y = place_splits(
            dataset, self.device, stream, labels=model_config.model == "cvae")
        self.semi_supervised = model_config.model == "m2"
        if self.semi_supervised:
            #: M2's labelled training images and the labelled part of its steps
            self.labelled = LabelledBatches(dataset.train_y, train_config.labels_per_class, train_config.seed,
                                            self.device)
        self.epoch = self.step = self.version = 0
        self.history: list[EpochEnd] = []
        self._perm_epoch = 0
        self._perm = torch.empty(0, dtype=torch.int64)
        self._epoch_sums = [0.0] * (3 + len(self.term_keys))
        self._step_in_epoch = 0
        self.good_every = 50
        self._good_state: tuple[dict, dict] | None = None
        self._stop = stop_event if stop_event is not None else threading.Event()
        self._running = run_event if run_event is not None else threading.Event()
        self._running.set()

    # -- control, callable from any thread -------------------------------------------------
    def request_stop(self) -> None:
        """Ask the loop to stop before its next step (also wakes a paused loop)."""
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        """Hold the loop before its next step until :meth:`resume` or :meth:`request_stop`."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def steps_per_epoch(self) -> int:
        n, b = len(self.train_x), self.config.batch_size
        return (n + b - 1) // b

    # -- weights ---------------------------------------------------------------------------
    def snapshot(self) -> tuple[int, dict[str, torch.Tensor]]:
        """A versioned, detached CPU copy of the weights, safe to hand to another thread."""
        state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        return self.version, state

    def kl_weight(self, step: int | None = None) -> float:
        """The KL weight at ``step`` (default: the next one): β, scaled by the linear
        warm-up β·min(1, step / kl_warmup) (Bowman et al. 2016)."""
        step = self.step if step is None else step
        warmup = self.config.kl_warmup
        factor = min(1.0, step / warmup) if warmup else 1.0
        # β weighs the KL (or |KL − C|) only in the β-VAE objectives; the others weigh their penalty with it
        return self.config.beta * factor if self.config.objective in ("beta", "capacity") else factor

    def penalty(self, step: int | None = None) -> Penalty:
        """The objective of the β family at ``step`` (default: the next one)."""
        cfg = self.config
        step = self.step if step is None else step
        return Penalty(cfg.objective, beta=cfg.beta, dataset_size=len(self.train_x),
                       capacity=capacity(step, cfg.capacity_max, cfg.capacity_steps), dip_lambda=cfg.dip_lambda,
                       discriminator=None if self.discriminator is None else self.discriminator.net)

    def evaluate(
        self, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 1000, seed: int = 1234
    ) -> dict:
        """:func:`models.evaluation.evaluate` of this model with this run's ``eval_iw``
        settings (``x`` ``(N, C, H, W)``, nats per image); a stop request ends it
        between two chunks (:class:`~models.evaluation.EvaluationStopped`)."""
        return evaluate(self.model, x, y, device=self.device, eval_iw=self.config.eval_iw,
                        eval_iw_images=self.config.eval_iw_images, batch_size=batch_size, seed=seed,
                        stopped=self._stop.is_set)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> Iterator[StepBatch | EpochEnd | TrainingDone]:
        """Train up to ``config.epochs`` epochs, yielding metrics as they come.

        Yields :class:`StepBatch` every ``sync_every`` steps, an :class:`EpochEnd` after
        each epoch and a final :class:`TrainingDone`. Calling it again after a stop
        continues from the step where it stopped. A stop requested during the
        end-of-epoch evaluation ends it between two chunks; that epoch is evaluated
        again when the run continues.

        Raises:
            NonFiniteLossError: when a step's loss is NaN or ±inf. The trainer then goes
                back to its last known-good state (taken every ``good_every`` steps and
                when ``run`` starts), whose weights still give finite losses, and
                :meth:`run` may be called again (after lowering the learning rate with
                :meth:`set_learning_rate`).
        """
        cfg = self.config
        model, opt = self.model, self.optimizer
        model.train()
        self._good_state = self.export_state(on_device=True)
        n = len(self.train_x)
        spe = self.steps_per_epoch
        total = spe * cfg.epochs
        train_time = 0.0
        samples = 0
        while self.epoch < cfg.epochs:
            epoch = self.epoch + 1
            t_epoch = time.perf_counter()
            if self._perm_epoch != epoch:
                self._perm = torch.randperm(n, generator=self.generator, device=self.device)
                self._perm_epoch = epoch
                self._epoch_sums = [0.0] * (3 + len(self.term_keys))
                self._step_in_epoch = 0
            pending: list[torch.Tensor] = []
            pending_steps: list[int] = []
            while self._step_in_epoch < spe:
                if self._dstep.agreed_stop if self._dstep is not None else (
                        self._stop.is_set() or not self._running.is_set()):
                    if pending:
                        yield self._flush(pending, pending_steps, epoch, spe, total, samples, train_time)
                        pending, pending_steps = [], []
                    while not self._running.wait(0.05):
                        pass
                    if self._stop.is_set():
                        self._stop.clear()
                        if self._dstep is not None:
                            self._dstep.agreed_stop = False
                        yield TrainingDone(True, self.epoch, self.step, list(self.history))
                        return
                t0 = time.perf_counter()
                i = self._step_in_epoch
                idx = self._perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
                n_global = len(idx)
                if self.dist is not None:
                    idx = self.dist.shard(idx)
                x = self._images(idx)
                y = None if self.train_y is None else self.train_y[idx]
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                terms, loss, checked = self._forward_backward(x, y, len(idx), n_global)
                # the loss and every gradient are checked before the update, in one host sync
                finite = torch.isfinite(torch.stack([loss.detach().float(), *checked]))
                if not bool(finite.all()):
                    bad_step = self.step + 1
                    what = "loss" if not bool(finite[0]) else "gradient (with a finite loss)"
                    self.load_state(*self._good_state)
                    raise NonFiniteLossError(
                        f"the {what} became non-finite at step {bad_step} (epoch {epoch}); training went back "
                        f"to the state of step {self.step}: try a lower learning rate"
                    )
                if self.written_step is None:
                    opt.step()
                else:
                    self.written_step.update(opt)
                extra = [terms.extra[k].mean() for k in self.term_keys if k in terms.extra]
                if self.discriminator is not None:
                    extra.append(self.discriminator.step(terms.z, self.generator))
                self.step += 1
                self.version += 1
                self._step_in_epoch += 1
                if self.step % self.good_every == 0:
                    self._good_state = self.export_state(on_device=True)
                samples += n_global
                if self.dist is None:
                    pending.append(torch.stack([terms.recon.mean(), terms.kl.mean(), terms.neg_elbo.mean(), loss,
                                                *[v.float() for v in extra]]).detach())
                else:  # this share's sums: summed over the ranks at the flush
                    pending.append(self._dstep.sums(terms, n_global))
                pending_steps.append(self.step)
                if len(pending) >= self.sync_every or self._step_in_epoch == spe:
                    batch = self._flush(pending, pending_steps, epoch, spe, total, samples, None)
                    pending, pending_steps = [], []
                    train_time += time.perf_counter() - t0
                    batch.samples_per_s = samples / max(train_time, 1e-9)
                    yield batch
                else:
                    train_time += time.perf_counter() - t0
            try:
                if self.dist is None or self.dist.is_main:  # in a distributed run, rank 0 evaluates alone
                    test = self.evaluate(self.test_x, self.test_y)
                    scores = {} if cfg.metrics == "off" else epoch_scores(
                        self.model, self.dataset, cfg.metrics, cfg.metrics_points, stopped=self._stop.is_set)
                    evaluated = (test, scores)
                if self.dist is not None:
                    evaluated = self.dist.from_main(evaluated if self.dist.is_main else None)
                    if evaluated is None:
                        raise EvaluationStopped()
                    test, scores = evaluated
            except (EvaluationStopped, MetricsStopped):
                if self.dist is not None and self.dist.is_main:
                    self.dist.from_main(None)  # the others stop with rank 0
                self._stop.clear()
                yield TrainingDone(True, self.epoch, self.step, list(self.history))
                return
            end = EpochEnd.from_sums(
                epoch, self.step, self._epoch_sums, spe, self.term_keys, test,
                samples_per_s=samples / max(train_time, 1e-9), seconds=time.perf_counter() - t_epoch,
                kl_weight=self.kl_weight(), disentanglement=scores,
                active_dims=sum(v >= ACTIVE_KL for v in test["kl_per_dim"]) if not self.model.is_autoencoder else 0,
                test_error=(classification_error(self.model, self.test_x, self.dataset.test_y)
                            if self.semi_supervised else None))
            self.epoch = epoch
            self.history.append(end)
            yield end
        yield TrainingDone(False, self.epoch, self.step, list(self.history))

    def export_state(self, on_device: bool = False) -> tuple[dict[str, torch.Tensor], dict]:
        """The run's whole state, ``(tensors, info)``, for an exact resume: :func:`models.resume.export_state`."""
        return exact_resume.export_state(self, on_device)

    def load_state(self, tensors: dict[str, torch.Tensor], info: dict) -> None:
        """Restore :meth:`export_state`'s output: :func:`models.resume.load_state` (raises ``ValueError``
        when the state does not fit this model or is damaged)."""
        exact_resume.load_state(self, tensors, info)

    def set_learning_rate(self, lr: float) -> None:
        """Change Adam's learning rate for the following steps."""
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.config = dataclasses.replace(self.config, lr=lr)

    def _forward_backward(self, x: torch.Tensor, y: torch.Tensor | None, batch: int,
                          n_global: int) -> tuple[ELBOTerms, torch.Tensor, list[torch.Tensor]]:
        """One step's terms, its loss and the gradients left in the parameters' ``.grad``, with
        what the non-finite check reads: the written step's flat buffer's sum (finite iff every
        gradient is, short of a sum over 3e38), or each gradient's norm after autograd."""
        if self.written_step is not None:
            terms = self.written_step(x, self.generator, self.kl_weight())
            return terms, terms.loss.mean(), [self.written_step.flat.sum()]
        cfg = self.config
        if self.dist is None:
            terms = objective_terms(
                self.model, x, y, self.generator, kl_weight=self.kl_weight(), free_bits=cfg.free_bits,
                iw_k=cfg.iw_k, autocast=self.mixed_precision,
                penalty=None if cfg.objective == "beta" else self.penalty(), commitment=cfg.commitment,
            )
            loss = terms.loss.mean()
        else:
            terms, loss = self._dstep.terms(x, y, n_global, self.generator, self.kl_weight(), self.mixed_precision)
        if self.semi_supervised:
            ce = self.labelled.loss(self.model, self._images, batch, self.generator, self.kl_weight(),
                                    self.mixed_precision, cfg.alpha, len(self.train_x))
            loss = loss + ce[0]
            terms.extra["classification"] = ce[1]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        return terms, loss, torch._foreach_norm([p.grad for p in self._params if p.grad is not None])

    def _images(self, idx: torch.Tensor) -> torch.Tensor:
        """The training images at ``idx`` on the device, ``(B, C, H, W)`` floats in [0, 1]."""
        if self.streamed:
            return as_float(self.train_x[idx.cpu()].to(self.device, non_blocking=True))
        # index_select: 4.5 µs for 128 MNIST images against 34 µs for indexing (2 CPU threads)
        return as_float(torch.index_select(self.train_x, 0, idx))

    def _flush(self, pending, steps, epoch, spe, total, samples, train_time) -> StepBatch:
        if self._dstep is None:
            values = torch.stack(pending).cpu()
        else:  # one all_reduce per flush: the global batches' means, and whether any rank was asked to stop
            values = self._dstep.reduce(pending, self._stop.is_set())
            if self._dstep.agreed_stop:
                self._stop.set()
        if not torch.isfinite(values).all():
            bad = steps[int((~torch.isfinite(values)).any(dim=1).nonzero()[0])]
            raise NonFiniteLossError(
                f"the loss became non-finite at step {bad} (epoch {epoch}); "
                "try a lower learning rate"
            )
        recon, kl, neg, loss, *extra = values.T.tolist()
        for i, column in enumerate((recon, kl, neg, *extra)):  # the epoch's sums: recon, KL, −ELBO, its own terms
            self._epoch_sums[i] += sum(column)
        rate = samples / train_time if train_time else 0.0
        return StepBatch(epoch, list(steps), recon, kl, neg, loss, self._step_in_epoch, spe, total, rate)

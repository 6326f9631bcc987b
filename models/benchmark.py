"""Headless training benchmark: vaegui's :class:`~models.trainer.Trainer` against a
plain per-item ``DataLoader`` loop of the same model, measured in the same run.

The reference is the pytorch/examples ``vae/main.py`` loop: a ``TensorDataset``
served item by item through ``DataLoader(shuffle=True)`` (default collation), a
sigmoid + ``binary_cross_entropy(reduction="sum")`` loss, Adam. Both models start
from the same seeded weights and are evaluated by the same one-sample test ELBO.

:func:`compare` runs each loop in a process of its own, as a user's script and
``vaegui train`` run: the trainer's process keeps freed memory for the next step
(:func:`models.allocator.keep_freed_memory`), the reference's has the C library's defaults.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from models.allocator import keep_freed_memory, minor_page_faults
from models.config import ModelConfig, TrainConfig
from models.data import ImageDataset, as_float
from models.subnormals import flush_subnormals
from models.trainer import EpochEnd, Trainer, native_bf16


@dataclass
class BenchResult:
    """One loop's figures: ``samples_per_s`` (training steps only), the test −ELBO
    after the last epoch (nats per image), and the process's minor page faults per
    training step (the whole run's: set-up and evaluations included)."""

    name: str
    samples_per_s: float
    test_neg_elbo: float
    seconds: float
    faults_per_step: float = float("nan")


def reference_loop(model_config: ModelConfig, train_config: TrainConfig, data: ImageDataset) -> BenchResult:
    """Train with a plain per-item DataLoader loop; returns its throughput and test −ELBO."""
    faults, steps = minor_page_faults(), 0
    # The Trainer builds the same seeded model and owns the shared evaluation code.
    trainer = Trainer(model_config, train_config, data)
    model, device = trainer.model, trainer.device
    model.to(memory_format=torch.contiguous_format)  # a plain loop keeps PyTorch's default layout
    opt = torch.optim.Adam(model.parameters(), lr=train_config.lr)
    loader = DataLoader(
        TensorDataset(as_float(data.train_x), data.train_y),
        batch_size=train_config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(train_config.seed),
    )
    model.train()
    torch.manual_seed(train_config.seed)  # the reparameterization noise of this loop
    samples, train_time = 0, 0.0
    for _ in range(train_config.epochs):
        t0 = time.perf_counter()
        for x, _y in loader:
            x = x.to(device)
            logits, mu, logvar = model(x)
            recon = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = recon + kld
            opt.zero_grad()
            loss.backward()
            opt.step()
            samples += len(x)
            steps += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_time += time.perf_counter() - t0
    test = trainer.evaluate(trainer.test_x)
    return BenchResult("DataLoader loop", samples / train_time, test["neg_elbo"], train_time,
                       (minor_page_faults() - faults) / max(steps, 1))


def trainer_loop(model_config: ModelConfig, train_config: TrainConfig, data: ImageDataset,
                 written_backward: bool = True) -> BenchResult:
    """Train with :class:`Trainer` (the code path of the GUI and ``vaegui train``);
    ``written_backward=False``: through autograd where it would take :mod:`models.mlpstep`."""
    faults = minor_page_faults()
    trainer = Trainer(model_config, train_config, data, written_backward=written_backward)
    last: EpochEnd | None = None
    t0 = time.perf_counter()
    for event in trainer.run():
        if isinstance(event, EpochEnd):
            last = event
    assert last is not None
    return BenchResult("vaegui Trainer", last.samples_per_s, last.test_neg_elbo, time.perf_counter() - t0,
                       (minor_page_faults() - faults) / max(trainer.step, 1))


def autograd_trainer_loop(model_config: ModelConfig, train_config: TrainConfig, data: ImageDataset) -> BenchResult:
    """:func:`trainer_loop` with the backward through autograd (the comparison for :mod:`models.mlpstep`)."""
    return trainer_loop(model_config, train_config, data, written_backward=False)


_LOOPS = {"reference": reference_loop, "trainer": trainer_loop, "autograd": autograd_trainer_loop}


def _run_loop(loop: str, threads: int, model_config: ModelConfig, train_config: TrainConfig,
              data: ImageDataset) -> BenchResult:
    if loop != "reference":  # as every vaegui process that trains does
        flush_subnormals()  # before the intra-op threads start
        keep_freed_memory()
    torch.set_num_threads(threads)
    return _LOOPS[loop](model_config, train_config, data)


def in_own_process(loop: str, model_config: ModelConfig, train_config: TrainConfig, data: ImageDataset,
                   threads: int | None = None) -> BenchResult:
    """Run ``loop`` (``"reference"``, ``"trainer"`` or ``"autograd"``) in a fresh (spawned) process with
    ``threads`` intra-op threads (default: this process's), the trainer's with the allocator
    setting of vaegui's training processes, and return its figures. The process is spawned: a
    script that calls this needs the ``if __name__ == "__main__":`` guard."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_run_loop, (loop, threads or torch.get_num_threads(), model_config, train_config, data))


def compare(
    model_config: ModelConfig, train_config: TrainConfig, data: ImageDataset, seeds: tuple[int, ...] = (0, 1, 2)
) -> list[tuple[BenchResult, BenchResult]]:
    """Run both loops once per seed, alternating, each in a process of its own
    (:func:`in_own_process`), so that each pair shares the machine's state. Returns
    ``[(reference, trainer), ...]``, one pair per seed."""
    pairs = []
    for seed in seeds:
        cfg = dataclasses.replace(train_config, seed=seed)
        pairs.append((in_own_process("reference", model_config, cfg, data),
                      in_own_process("trainer", model_config, cfg, data)))
    return pairs


#: (label, ModelConfig overrides, TrainConfig overrides) of ``vaegui bench --models``
MODEL_TABLE = (
    ("VAE, MLP", {}, {}),
    ("VAE, MLP", {"likelihood": "cbernoulli"}, {}),
    ("VAE, MLP", {"likelihood": "gaussian", "sigma": 0.1}, {}),
    ("VAE, MLP", {"likelihood": "gaussian-learned"}, {}),
    ("β-VAE β=4, MLP", {}, {"beta": 4.0}),
    ("IWAE k=5, MLP", {}, {"iw_k": 5}),
    ("CVAE, MLP", {"model": "cvae"}, {}),
    ("AE, MLP", {"model": "ae"}, {}),
    ("VAE, conv", {"arch": "conv", "hidden_dim": 256}, {}),
    ("VQ-VAE, learned", {"model": "vqvae"}, {}),
    ("VQ-VAE, uniform", {"model": "vqvae", "code_prior": "uniform"}, {}),
)

#: ``vaegui bench --layers``: one and two stochastic layers with Burda et al. 2016's sizes (h = 200,
#: z1 = 100, z2 = 50; the one-layer rows 784-200-50), each trained on the ELBO and on the IWAE bound
#: (k = 5), and the ladder VAE with a KL warm-up over the first 20 % of the steps (Sønderby et al. 2016)
LAYER_TABLE = (
    ("VAE, 1 layer", {"latent_dim": 50, "hidden_dim": 200}, {}),
    ("IWAE k=5, 1 layer", {"latent_dim": 50, "hidden_dim": 200}, {"iw_k": 5}),
    ("VAE, 2 layers", {"model": "hvae", "latent_dim": 50, "layer1_dim": 100, "hidden_dim": 200}, {}),
    ("IWAE k=5, 2 layers", {"model": "hvae", "latent_dim": 50, "layer1_dim": 100, "hidden_dim": 200}, {"iw_k": 5}),
    ("ladder VAE", {"model": "ladder", "latent_dim": 50, "layer1_dim": 100, "hidden_dim": 200},
     {"kl_warmup": "20%"}),
)


@dataclass
class ModelRow:
    """One line of the model table; nats per image on the test split."""

    name: str
    likelihood: str
    parameters: int
    test_neg_elbo: float
    test_nll_iw: float | None
    iw_gap: float | None
    test_kl: float
    active_dims: int
    samples_per_s: float
    test_terms: dict = dataclasses.field(default_factory=dict)


def model_table(
    data: ImageDataset, base: ModelConfig, train: TrainConfig, k: int = 1000, iw_images: int = 200, rows=MODEL_TABLE
) -> list[ModelRow]:
    """Train every variant of :data:`MODEL_TABLE` for ``train.epochs`` epochs and
    evaluate it: the one-sample ELBO on the whole test split and −log p(x) with ``k``
    importance samples on its first ``iw_images`` images (the AE has no estimate); ``rows``
    may be :data:`LAYER_TABLE`, whose two-layer rows also give each layer's test KL and active units."""
    from models.likelihoods import LIKELIHOODS

    out = []
    for name, model_over, train_over in rows:
        overrides = dict(model_over)
        if overrides.get("model") == "cvae":
            overrides["n_classes"] = len(data.class_names)
        config = dataclasses.replace(base, **overrides)
        train_over = dict(train_over)
        if train_over.get("kl_warmup") == "20%":  # a share of the run's steps
            train_over["kl_warmup"] = max(1, round(0.2 * train.epochs * -(-len(data.train_x) // train.batch_size)))
        # no per-epoch estimate while training: the table's own, with k samples, comes after the last epoch
        trainer = Trainer(config, dataclasses.replace(train, eval_iw=0, **train_over), data)
        last: EpochEnd | None = None
        for event in trainer.run():
            if isinstance(event, EpochEnd):
                last = event
        assert last is not None
        trainer.config = dataclasses.replace(trainer.config, eval_iw=0 if config.model == "ae" else k,
                                             eval_iw_images=iw_images)
        full = trainer.evaluate(trainer.test_x, trainer.test_y)
        out.append(ModelRow(
            name, LIKELIHOODS[config.likelihood][0], trainer.model.parameter_count(), full["neg_elbo"],
            full.get("nll_iw"), full.get("iw_gap"), full["kl"], last.active_dims, last.samples_per_s,
            full.get("test_terms", {}),
        ))
    return out


# -- the machine's ceiling -----------------------------------------------------------------------
def gemm_size(device: str | torch.device) -> int:
    """The side of :func:`gemm_ceiling`'s default product: 2048 on the CPU, 8192 on a GPU (a 2048
    product is over before a GPU's clocks and launch overhead let it reach its rate)."""
    return 8192 if torch.device(device).type == "cuda" else 2048


def gemm_ceiling(dtype: torch.dtype = torch.float32, n: int | None = None, repeats: int = 5,
                 device: str | torch.device = "cpu") -> float:
    """The machine's measured matmul throughput in FLOP/s: the best of ``repeats`` timings of an
    ``n × n`` by ``n × n`` product (2 n³ FLOPs) in ``dtype`` at torch's current thread count,
    after one warm-up. The reference a training loop's FLOP rate is a share of. ``n`` defaults
    to :func:`gemm_size` of the device."""
    device = torch.device(device)
    n = n or gemm_size(device)
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, generator=g, device=device).to(dtype)
    b = torch.randn(n, n, generator=g, device=device).to(dtype)
    best = float("inf")
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:  # the first is the warm-up
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


#: (py-cpuinfo's flag, the name printed): the features that decide which CPU kernels PyTorch runs
CPU_FEATURES = (("avx2", "AVX2"), ("avx512f", "AVX-512F"), ("avx512_bf16", "AVX512-BF16"), ("amx_bf16", "AMX-BF16"))


def cpu_description() -> str:
    """One line on the CPU: its name and core count, which of :data:`CPU_FEATURES` it has, the
    kernels torch picked (``torch.backends.cpu.get_cpu_capability()``) and whether bf16 matrix
    products are native (oneDNN). Read with py-cpuinfo (about a second: it may run CPUID in a
    subprocess); a feature it cannot see is printed as absent."""
    import os

    import cpuinfo

    info = cpuinfo.get_cpu_info()
    flags = set(info.get("flags", ()))
    present = [name for flag, name in CPU_FEATURES if flag in flags]
    return (f"{info.get('brand_raw') or info.get('arch_string_raw', 'unknown CPU')}, {os.cpu_count()} cores; "
            f"{', '.join(present) or 'none of ' + ', '.join(name for _, name in CPU_FEATURES)}; torch kernels "
            f"{torch.backends.cpu.get_cpu_capability()}, bf16 matmuls {'native' if native_bf16() else 'emulated'}")


def flops_per_image(model_config: ModelConfig, batch: int = 128) -> float:
    """FLOPs of one training step per image: the objective's forward and backward pass
    (:func:`models.objectives.objective_terms`), counted by ``torch.utils.flop_counter``
    (matmuls and convolutions; element-wise work is not counted). 3.28 MFLOP for the
    784-400-20 MLP: its first layer needs no input gradient."""
    from torch.utils.flop_counter import FlopCounterMode

    from models.objectives import objective_terms
    from models.vae import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(model_config)
        x = torch.rand(batch, *model_config.input_shape)
        y = torch.zeros(batch, dtype=torch.long) if model_config.conditional else None
        with FlopCounterMode(display=False) as counter:
            objective_terms(model, x, y).loss.mean().backward()
    return counter.get_total_flops() / batch


def ceiling_share(samples_per_s: float, flops: float, ceiling: float) -> float:
    """The share of the ceiling (FLOP/s) that ``samples_per_s`` images of ``flops`` FLOPs each reach."""
    return samples_per_s * flops / ceiling

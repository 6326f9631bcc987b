"""Headless training benchmark: vaegui's :class:`~models.trainer.Trainer` against a
plain per-item ``DataLoader`` loop of the same model, measured in the same run.

The reference is the pytorch/examples ``vae/main.py`` loop: a ``TensorDataset``
served item by item through ``DataLoader(shuffle=True)`` (default collation), a
sigmoid + ``binary_cross_entropy(reduction="sum")`` loss, Adam. Both models start
from the same seeded weights and are evaluated by the same one-sample test ELBO.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from models.config import ModelConfig, TrainConfig
from models.data import ImageDataset
from models.trainer import EpochEnd, Trainer


@dataclass
class BenchResult:
    """One loop's figures: ``samples_per_s`` (training steps only) and the test −ELBO
    after the last epoch (nats per image)."""

    name: str
    samples_per_s: float
    test_neg_elbo: float
    seconds: float


def reference_loop(model_config: ModelConfig, train_config: TrainConfig, data: ImageDataset) -> BenchResult:
    """Train with a plain per-item DataLoader loop; returns its throughput and test −ELBO."""
    # The Trainer builds the same seeded model and owns the shared evaluation code.
    trainer = Trainer(model_config, train_config, data)
    model, device = trainer.model, trainer.device
    opt = torch.optim.Adam(model.parameters(), lr=train_config.lr)
    loader = DataLoader(
        TensorDataset(data.train_x, data.train_y),
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
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_time += time.perf_counter() - t0
    test = trainer.evaluate(trainer.test_x)
    return BenchResult("DataLoader loop", samples / train_time, test["neg_elbo"], train_time)


def trainer_loop(model_config: ModelConfig, train_config: TrainConfig, data: ImageDataset) -> BenchResult:
    """Train with :class:`Trainer` (the code path of the GUI and ``vaegui train``)."""
    trainer = Trainer(model_config, train_config, data)
    last: EpochEnd | None = None
    t0 = time.perf_counter()
    for event in trainer.run():
        if isinstance(event, EpochEnd):
            last = event
    assert last is not None
    return BenchResult("vaegui Trainer", last.samples_per_s, last.test_neg_elbo, time.perf_counter() - t0)


def compare(
    model_config: ModelConfig, train_config: TrainConfig, data: ImageDataset, seeds: tuple[int, ...] = (0, 1, 2)
) -> list[tuple[BenchResult, BenchResult]]:
    """Run both loops once per seed, alternating, so each pair shares the machine's
    state. Returns ``[(reference, trainer), ...]``, one pair per seed."""
    pairs = []
    for seed in seeds:
        cfg = dataclasses.replace(train_config, seed=seed)
        pairs.append((reference_loop(model_config, cfg, data), trainer_loop(model_config, cfg, data)))
    return pairs

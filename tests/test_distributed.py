"""Distributed data-parallel training (models/distributed.py) on the gloo backend with
two real processes: one DDP step equals one single-process step on the same global
batch, the ranks' shares cover each epoch once, checkpoints resume across the two
forms, and `vaegui train --nproc 2` writes a run folder (and says failed when a rank dies)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time

import psutil
import pytest
import torch
import torch.multiprocessing as tmp

from models import ModelConfig, TrainConfig, Trainer, load_dataset
from models.checkpoint import read_checkpoint, save_checkpoint
from models.distributed import DistContext, DistributedError, check_distributable, rank_device
from models.runfolder import read_metrics, read_status


def small_data(n_train: int, n_test: int = 40):
    data = load_dataset("digits")
    return dataclasses.replace(data, train_x=data.train_x[:n_train], train_y=data.train_y[:n_train],
                               test_x=data.test_x[:n_test], test_y=data.test_y[:n_test])


def configs(data, epochs: int, batch: int):
    return (ModelConfig(input_shape=data.image_shape, latent_dim=3, hidden_dim=32),
            TrainConfig(epochs=epochs, batch_size=batch, precision="fp32", device="cpu", seed=3))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_rank(ctx, rank: int, n_train: int, epochs: int, batch: int, resume: str, out: str) -> None:
    data = small_data(n_train)
    model, train = configs(data, epochs, batch)
    trainer = Trainer(model, train, data, dist=ctx)
    if resume:
        c = read_checkpoint(resume)
        trainer.load_state(c.tensors, c.info)
    for _ in trainer.run():
        pass
    if rank == 0:
        save_checkpoint(out, *trainer.export_state())


def _rank(rank: int, world: int, port: int, n_train: int, epochs: int, batch: int, resume: str, out: str) -> None:
    """One rank of a gloo group: train, and rank 0 saves the state to ``out``; the trainer is
    gone before the group is left (models.distributed.shutdown)."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from models.distributed import init_from_env, shutdown

    ctx = init_from_env("cpu", timeout_s=60)
    try:
        _train_rank(ctx, rank, n_train, epochs, batch, resume, out)
    finally:
        shutdown()


def run_ranks(world: int, n_train: int, epochs: int, batch: int, out, resume="") -> None:
    tmp.spawn(_rank, args=(world, free_port(), n_train, epochs, batch, str(resume), str(out)), nprocs=world,
              join=True)


def single(n_train: int, epochs: int, batch: int, resume=None) -> Trainer:
    data = small_data(n_train)
    model, train = configs(data, epochs, batch)
    trainer = Trainer(model, train, data)
    if resume is not None:
        c = read_checkpoint(resume)
        trainer.load_state(c.tensors, c.info)
    for _ in trainer.run():
        pass
    return trainer


def assert_same_weights(tensors, trainer, atol):
    for key, value in trainer.model.state_dict().items():
        torch.testing.assert_close(tensors[f"model.{key}"], value, rtol=0, atol=atol, msg=key)


def test_one_ddp_step_equals_one_single_process_step(tmp_path):
    run_ranks(2, n_train=32, epochs=1, batch=32, out=tmp_path / "ddp.vae")  # one step of a global batch of 32
    ddp = read_checkpoint(tmp_path / "ddp.vae")
    alone = single(32, epochs=1, batch=32)
    assert ddp.info["position"]["step"] == alone.step == 1
    assert_same_weights(ddp.tensors, alone, atol=1e-6)
    # the data order and the generator stayed in step with the single process's
    assert torch.equal(ddp.tensors["rng.generator"], alone.generator.get_state())


def test_shares_are_disjoint_and_cover_every_epoch():
    perm = torch.randperm(103, generator=torch.Generator().manual_seed(0))
    for world in (2, 3):
        for batch in (10, 12, 103):
            seen = []
            for step in range(-(-103 // batch)):
                rows = perm[step * batch:(step + 1) * batch]
                shares = [DistContext(r, world, r, "gloo").shard(rows) for r in range(world)]
                assert max(len(s) for s in shares) - min(len(s) for s in shares) <= 1
                seen += [set(s.tolist()) for s in shares]
            union = set().union(*seen)
            assert union == set(range(103)) and sum(len(s) for s in seen) == 103


def test_checkpoints_resume_across_ddp_and_one_process(tmp_path):
    # 2 epochs of 3 steps (the last one short: 80 = 32 + 32 + 16), split 1 + 1 across the two forms
    reference = single(80, epochs=2, batch=32)
    run_ranks(2, n_train=80, epochs=1, batch=32, out=tmp_path / "ddp1.vae")
    continued = single(80, epochs=2, batch=32, resume=tmp_path / "ddp1.vae")
    assert continued.step == reference.step == 6
    assert_same_weights(continued.export_state()[0], reference, atol=1e-5)
    first = single(80, epochs=1, batch=32)
    save_checkpoint(tmp_path / "one1.vae", *first.export_state())
    run_ranks(2, n_train=80, epochs=2, batch=32, out=tmp_path / "ddp2.vae", resume=tmp_path / "one1.vae")
    assert_same_weights(read_checkpoint(tmp_path / "ddp2.vae").tensors, reference, atol=1e-5)


def test_objectives_that_need_the_whole_batch_are_refused():
    for change in ({"objective": "tcvae"}, {"objective": "capacity"}, {"iw_k": 5}, {"free_bits": 0.5}):
        with pytest.raises(ValueError, match="splits each batch"):
            check_distributable("vae", dataclasses.replace(TrainConfig(), **change))
    check_distributable("cvae", TrainConfig())


def test_each_process_gets_a_gpu_of_its_own_or_auto_falls_back_to_the_cpu():
    assert rank_device("auto", 2, 2) == ("cuda", "") and rank_device("cuda", 1, 1) == ("cuda", "")
    assert rank_device("auto", 2, 0) == ("cpu", "") and rank_device("cpu", 2, 8) == ("cpu", "")
    where, note = rank_device("auto", 2, 1)  # NCCL cannot put two ranks on one GPU
    assert where == "cpu" and note.startswith("2 processes on this machine but 1 GPU") and "--nproc 1" in note
    with pytest.raises(DistributedError, match="needs a GPU for each process: 4 processes on this machine, 2 GPUs"):
        rank_device("cuda:1", 4, 2)
    with pytest.raises(DistributedError, match="0 GPUs"):
        rank_device("cuda", 1, 0)
    assert rank_device("mps", 2, 0) == ("mps", "")  # asked for by name: kept


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="this machine has a GPU for each of 2 processes")
def test_nproc_with_cuda_and_too_few_gpus_says_so_once_before_starting_torchrun(tmp_path):
    p = vaegui("train", "--nproc", "2", "--device", "cuda", "--dataset", "digits", "--epochs", "1",
               "--run-dir", str(tmp_path / "run"))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2 and err.count("needs a GPU for each process: 2 processes on this machine") == 1, err
    assert "torch.distributed.run" not in err and not (tmp_path / "run").exists()


def vaegui(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "vaegui", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_nproc_2_writes_one_run_folder_with_the_global_batch(tmp_path):
    p = vaegui("train", "--nproc", "2", "--dataset", "digits", "--epochs", "2", "--hidden-dim", "32",
               "--batch-size", "64", "--run-dir", str(tmp_path / "run"), "--json")
    out, err = p.communicate(timeout=240)
    assert p.returncode == 0, err
    assert "2 processes (gloo), global batch 128 = 2 × 64" in err
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [line["epoch"] for line in lines] == [1, 2]  # rank 0 alone prints
    _, epochs = read_metrics(tmp_path / "run")
    assert [e.epoch for e in epochs] == [1, 2] and epochs[-1].test_neg_elbo == lines[-1]["test_neg_elbo"]
    assert read_status(tmp_path / "run")["state"] == "finished"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["train_config"]["batch_size"] == 128
    assert config["train_config"]["device"] == "auto"  # what was asked for; the ranks chose where to train
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "latest.vae").train_config.batch_size == 128


def test_a_rank_that_dies_stops_the_run_and_the_folder_says_failed(tmp_path):
    p = vaegui("train", "--nproc", "2", "--dataset", "digits", "--epochs", "500", "--hidden-dim", "32",
               "--run-dir", str(tmp_path / "run"), "--dist-timeout", "30", "--json")
    try:
        line = " "
        while line and not line.startswith("{"):  # rank 0 prints epoch 1 after writing its checkpoints
            line = p.stdout.readline()
        assert line, "the run ended before its first epoch"
        ranks = {}
        for child in psutil.Process(p.pid).children(recursive=True):
            env = child.environ()
            if "LOCAL_RANK" in env and "--distributed" in child.cmdline():
                ranks[env["RANK"]] = child
        assert sorted(ranks) == ["0", "1"]
        t0 = time.time()
        ranks["1"].kill()
        _, err = p.communicate(timeout=90)
    finally:
        for child in psutil.Process(p.pid).children(recursive=True) if p.poll() is None else []:
            child.kill()
        p.kill()
        p.wait()
    assert p.returncode != 0
    assert time.time() - t0 < 60
    status = read_status(tmp_path / "run")
    assert status["state"] == "failed", status
    assert status["message"]
    _, epochs = read_metrics(tmp_path / "run")
    assert epochs and read_checkpoint(tmp_path / "run" / "checkpoints" / "latest.vae").epochs_done >= 1

"""The training loop, the datasets and the configs, without Qt."""

import threading

import pytest
import torch

from models import (
    EpochEnd,
    ImageDataset,
    ModelConfig,
    NonFiniteLossError,
    StepBatch,
    TrainConfig,
    Trainer,
    TrainingDone,
    load_dataset,
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def small(data, **train):
    return Trainer(ModelConfig(input_shape=data.image_shape, latent_dim=4, hidden_dim=64), TrainConfig(**train), data)


def test_builtin_datasets_are_real_scaled_and_split(digits):
    mnist = load_dataset("mnist5k")
    assert mnist.train_x.shape == (4000, 1, 28, 28) and mnist.test_x.shape == (1000, 1, 28, 28)
    assert digits.train_x.shape == (1437, 1, 8, 8) and digits.test_x.shape == (360, 1, 8, 8)
    for data in (mnist, digits):
        assert data.train_x.min() >= 0 and data.train_x.max() == 1.0
        assert set(data.train_y.tolist()) == set(range(10)) and set(data.test_y.tolist()) == set(range(10))
    # MNIST digits are mostly black background with bright strokes
    assert 0.05 < mnist.train_x.mean() < 0.25
    # the split is a fixed seeded permutation
    load_dataset.cache_clear()
    assert torch.equal(load_dataset("digits").test_x, digits.test_x)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("cifar")


def test_one_epoch_lowers_test_neg_elbo(digits):
    trainer = small(digits, epochs=1, precision="fp32")
    before = trainer.evaluate(trainer.test_x)["neg_elbo"]
    events = list(trainer.run())
    end = [e for e in events if isinstance(e, EpochEnd)][0]
    assert end.test_neg_elbo < before - 1.0
    assert end.test_neg_elbo == pytest.approx(end.test_recon + end.test_kl, rel=1e-5)
    steps = [s for e in events if isinstance(e, StepBatch) for s in e.steps]
    assert steps == list(range(1, trainer.steps_per_epoch + 1))
    assert isinstance(events[-1], TrainingDone) and not events[-1].stopped


def test_same_seed_same_weights(digits):
    a, b = small(digits, epochs=1, seed=3, precision="fp32"), small(digits, epochs=1, seed=3, precision="fp32")
    for t in (a, b):
        list(t.run())
    for (k, va), vb in zip(a.snapshot()[1].items(), b.snapshot()[1].values()):
        torch.testing.assert_close(va, vb, msg=k)


def test_stop_between_steps_then_continue(digits):
    trainer = small(digits, epochs=2)
    run = trainer.run()
    first = next(run)
    assert isinstance(first, StepBatch)
    trainer.request_stop()
    done = next(run)
    assert isinstance(done, TrainingDone) and done.stopped and done.step == first.steps[-1]
    rest = list(trainer.run())
    assert isinstance(rest[-1], TrainingDone) and not rest[-1].stopped
    assert trainer.step == 2 * trainer.steps_per_epoch
    assert [e.epoch for e in rest if isinstance(e, EpochEnd)] == [1, 2]


def test_pause_holds_the_loop_until_resume(digits):
    trainer = small(digits, epochs=1)
    trainer.pause()
    thread = threading.Thread(target=lambda: list(trainer.run()))
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive() and trainer.step == 0
    trainer.resume()
    thread.join(timeout=60)
    assert not thread.is_alive() and trainer.step == trainer.steps_per_epoch


def test_stop_wakes_a_paused_loop(digits):
    trainer = small(digits, epochs=1)
    trainer.pause()
    result = []
    thread = threading.Thread(target=lambda: result.extend(trainer.run()))
    thread.start()
    trainer.request_stop()
    thread.join(timeout=30)
    assert not thread.is_alive() and result[-1].stopped and trainer.step == 0


def test_absurd_learning_rate_raises_non_finite_loss(digits):
    trainer = small(digits, epochs=2, lr=10.0)
    with pytest.raises(NonFiniteLossError, match="lower learning rate"):
        list(trainer.run())


def test_snapshot_is_a_detached_cpu_copy(digits):
    trainer = small(digits, epochs=1)
    version, state = trainer.snapshot()
    state["enc.weight"].zero_()
    assert trainer.model.enc.weight.abs().sum() > 0
    list(trainer.run())
    assert trainer.snapshot()[0] > version


def test_shape_mismatch_and_bad_device_are_clear_errors(digits):
    with pytest.raises(ValueError, match="expects"):
        Trainer(ModelConfig(input_shape=(1, 28, 28)), TrainConfig(), digits)
    with pytest.raises(ValueError, match="not usable"):
        Trainer(ModelConfig(input_shape=digits.image_shape), TrainConfig(device="nonsense"), digits)
    bad = ImageDataset("bad", torch.full((4, 1, 8, 8), float("nan")), torch.zeros(4, dtype=torch.int64),
                       torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.int64), ("0",))
    with pytest.raises(NonFiniteLossError):
        list(small(bad, epochs=1, batch_size=2).run())


def test_configs_round_trip_through_json_and_validate():
    m = ModelConfig(input_shape=(1, 8, 8), latent_dim=5, hidden_dim=32)
    assert ModelConfig.from_json(m.to_json()) == m
    t = TrainConfig(epochs=3, lr=0.01, beta=4.0, device="cpu")
    assert TrainConfig.from_json(t.to_json()) == t
    with pytest.raises(ValueError):
        ModelConfig(latent_dim=1)
    with pytest.raises(ValueError):
        TrainConfig(lr=0)
    with pytest.raises(ValueError, match="unknown keys"):
        TrainConfig.from_dict({"epochs": 1, "momentum": 0.9})
    with pytest.raises(ValueError, match="not valid JSON"):
        ModelConfig.from_json("{")


def test_non_finite_goes_back_to_a_good_state_then_continues_with_a_lower_lr(digits):
    trainer = small(digits, epochs=2, lr=10.0)
    with pytest.raises(NonFiniteLossError, match="went back to the state of step 0"):
        list(trainer.run())
    assert trainer.step == 0 and trainer.epoch == 0
    assert all(torch.isfinite(v).all() for v in trainer.model.state_dict().values())
    trainer.set_learning_rate(1e-3)
    events = list(trainer.run())
    assert isinstance(events[-1], TrainingDone) and trainer.epoch == 2


def test_the_state_to_go_back_to_is_a_copy_kept_on_the_training_device(digits):
    trainer = small(digits, epochs=1)
    list(trainer.run())
    tensors, info = trainer.export_state(on_device=True)
    weights = {k: v for k, v in tensors.items() if k.startswith("model.")}
    moments = [v for k, v in tensors.items() if k.startswith("optimizer.") and k.endswith("exp_avg")]
    assert weights and moments
    assert all(v.device == trainer.device for v in [*weights.values(), *moments])
    before = {k: v.clone() for k, v in weights.items()}
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(1.0)
    assert all(torch.equal(weights[k], before[k]) for k in weights)  # copies, not views of the live weights
    trainer.load_state(tensors, info)
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k[len("model."):]], before[k]) for k in weights)


def test_auto_precision_is_bf16_only_on_cpus_that_do_it_natively():
    from models.trainer import resolve_precision

    # on a GPU the small networks are bound by kernel launches: autocast's casts cost more than they save
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"
    assert resolve_precision("bf16", torch.device("cuda")) == "bf16"
    native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"


def test_the_training_process_reports_out_of_memory_and_returns_its_state(digits, monkeypatch):
    import models.trainer as trainer_module
    from models.state import dataset_to_arrays
    from vaegui.protocol import Failed, Idle, Job, State
    from vaegui.trainproc import run_job

    calls = {"n": 0}
    real = trainer_module.as_float  # each step's batch, through autograd or the written-out step alike

    def batch_then_oom(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise MemoryError("cannot allocate 12 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "as_float", batch_then_oom)
    sent = []
    job = Job(ModelConfig(input_shape=digits.image_shape, latent_dim=2, hidden_dim=16), TrainConfig(epochs=1),
              dataset_to_arrays(digits))
    run_job(job, sent.append, threading.Event(), threading.Event())
    failed = [m for m in sent if isinstance(m, Failed)]
    assert failed and "out of memory" in failed[0].message and "smaller batch size" in failed[0].message
    assert [type(m) for m in sent[-2:]] == [State, Idle]
    assert sent[-2].state.position.step == 2


def test_streamed_training_data_gives_the_same_model(digits):
    trainers = []
    for stream in (False, True):
        t = Trainer(ModelConfig(input_shape=digits.image_shape, latent_dim=4, hidden_dim=32),
                    TrainConfig(epochs=1, precision="fp32"), digits, stream=stream)
        list(t.run())
        trainers.append(t)
    assert trainers[1].streamed and not trainers[0].streamed
    for key, value in trainers[0].model.state_dict().items():
        assert torch.equal(value, trainers[1].model.state_dict()[key])

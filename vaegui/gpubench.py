"""``vaegui bench --cuda``: the benchmark's GPU rows in one command.

For the MLP (the options' network) and the conv net (``--arch conv --hidden-dim 256``), on the
options' dataset (Shapes 64×64 is the reference: ``--dataset shapes:20000``): the plain
``DataLoader`` loop (fp32, pytorch/examples ``vae/main.py``) and vaegui's trainer in fp32 and in
bf16 autocast, each in a process of its own and interleaved per seed; samples/s, the share of
the device's measured matmul peak (an 8192×8192 product on a GPU) and the ratio to the plain
loop. Then the window (offscreen where there is no display) trains the MLP on the device for
``--gui-epochs`` epochs, with a traversal slider moved every 30 ms.

The rows run on ``--device`` (``auto`` means CUDA here, and the command says so and stops when
there is none); ``--device cpu`` runs the same rows on the CPU.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys

#: the conv net of the benchmark's conv rows (as ``vaegui bench --arch conv --hidden-dim 256``)
CONV = {"arch": "conv", "hidden_dim": 256}


def _device_line(device) -> str:
    import torch

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return (f"{torch.cuda.get_device_name(device)} ({props.multi_processor_count} SMs, "
                f"{props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}, CUDA {torch.version.cuda}, "
                f"cuDNN {torch.backends.cudnn.version()}")
    from models.benchmark import cpu_description

    return f"CPU: {cpu_description()}; {torch.get_num_threads()} threads, torch {torch.__version__}"


def cuda_rows(data, model_cfg, train_cfg, seeds: tuple[int, ...], gui_epochs: int) -> int:
    """Print the GPU rows (module docstring) for ``data`` (an :class:`~models.data.ImageDataset`);
    ``train_cfg.device`` says where. Returns the exit status: 2, with a message, when the device is
    not usable (``auto`` on a machine without CUDA, a device this machine lacks); 1 when the
    window's run trained nothing."""
    import torch

    from models.benchmark import ceiling_share, flops_per_image, gemm_ceiling, gemm_size, in_own_process
    from models.trainer import resolve_precision, training_device

    if train_cfg.device == "auto" and not torch.cuda.is_available():
        print("vaegui bench --cuda: no CUDA GPU is visible to torch here "
              f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
              "--device cpu runs the same rows on the CPU", file=sys.stderr)
        return 2
    try:
        device = training_device("cuda" if train_cfg.device == "auto" else train_cfg.device)
    except ValueError as exc:  # a device this machine lacks (cuda:3, say)
        print(f"vaegui bench --cuda: {exc}", file=sys.stderr)
        return 2
    train_cfg = dataclasses.replace(train_cfg, device=str(device))
    # bf16 rows where the device does bf16 natively (a GPU's "auto" trains in fp32: resolve_precision)
    bf16 = torch.cuda.is_bf16_supported() if device.type == "cuda" else resolve_precision("auto", device) == "bf16"
    precisions = ("fp32", "bf16") if bf16 else ("fp32",)
    default = resolve_precision("auto", device)
    print(f"# {_device_line(device)}")
    if device.type == "cuda":
        print(f"# TF32: matmuls {torch.backends.cuda.matmul.allow_tf32}, cuDNN convolutions "
              f"{torch.backends.cudnn.allow_tf32} (torch's defaults: fp32 convolutions run in TF32)")
    peak = {"fp32": gemm_ceiling(torch.float32, device=device)}
    if bf16:
        peak["bf16"] = gemm_ceiling(torch.bfloat16, device=device)
    n = gemm_size(device)
    print(f"# matmul peak (best {n}x{n} product): "
          + ", ".join(f"{k} {v / 1e12:,.2f} TFLOP/s" for k, v in peak.items()))
    print(f"# {data.title}, batch {train_cfg.batch_size}, Adam {train_cfg.lr:g}, {train_cfg.epochs} epochs, "
          f"seeds {list(seeds)}; each loop in its own process; % of the peak of the loop's precision")
    print(f"{'network':<30}  {'loop':<22}  {'samples/s':>11}  {'of peak':>8}  {'vs plain':>8}  {'test -ELBO':>10}")
    headless = 0.0  # the MLP trainer's samples/s in the default precision: the window's reference
    for label, over in (("MLP", {}), ("conv", CONV)):
        cfg = dataclasses.replace(model_cfg, **over)
        flops = flops_per_image(cfg, train_cfg.batch_size)
        name = cfg.describe()[:30]
        rates: dict[str, list[float]] = {"plain": [], **{p: [] for p in precisions}}
        elbo: dict[str, list[float]] = {k: [] for k in rates}
        for seed in seeds:  # interleaved: each seed's loops share the machine's state
            base = dataclasses.replace(train_cfg, seed=seed)
            plain = in_own_process("reference", cfg, dataclasses.replace(base, precision="fp32"), data)
            rates["plain"].append(plain.samples_per_s)
            elbo["plain"].append(plain.test_neg_elbo)
            for p in precisions:
                ours = in_own_process("trainer", cfg, dataclasses.replace(base, precision=p), data)
                rates[p].append(ours.samples_per_s)
                elbo[p].append(ours.test_neg_elbo)
        reference = statistics.median(rates["plain"])
        for key, loop in (("plain", "DataLoader loop, fp32"), *((p, f"vaegui Trainer, {p}") for p in precisions)):
            rate = statistics.median(rates[key])
            share = ceiling_share(rate, flops, peak["fp32" if key == "plain" else key])
            print(f"{name:<30}  {loop:<22}  {rate:>11,.0f}  {100 * share:>7.2f}%  {rate / reference:>7.2f}x  "
                  f"{statistics.mean(elbo[key]):>10.2f}", flush=True)
        print(f"{'':<30}  ({flops / 1e6:.1f} MFLOP per image per step; samples/s the median over seeds, "
              f"-ELBO in nats per image, their mean)")
        if label == "MLP":
            headless = statistics.median(rates[default])
    if gui_epochs <= 0:
        return 0
    from vaegui.bench import gui_benchmark

    gui_cfg = dataclasses.replace(train_cfg, epochs=gui_epochs, precision="auto")
    print(f"# in the window: the MLP on {device.type} in {default} (auto), {gui_epochs} epochs, a traversal slider "
          f"moved every 30 ms; headless reference {headless:,.0f} samples/s (the row above)")
    figures = gui_benchmark(data.name, model_cfg, gui_cfg, headless)
    return 0 if figures["gui_samples_per_s"] > 0 else 1

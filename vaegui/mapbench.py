"""``vaegui bench-map``: the figures of the latent map.

* encoding N 28×28 images (the 5,000 shipped MNIST digits, repeated) with the default
  MLP, as a ratio of the trainer's forward pass over the same images (the trainer's
  batch size and precision; forward only), the two interleaved, best of 3 each;
* PCA of 10,000 × 64 means, t-SNE of 5,000 points (seconds) and how long a Cancel
  takes to stop it;
* the window's longest event-loop stall while the mouse hovers over and pans a map
  of N points (a 5 ms timer's longest gap, minus 5 ms), offscreen.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import torch


def _data(n: int):
    from models.data import ImageDataset, load_dataset

    base = load_dataset("mnist5k")
    x = torch.cat([base.train_x, base.test_x])
    y = torch.cat([base.train_y, base.test_y])
    reps = -(-n // len(x))
    x, y = x.repeat(reps, 1, 1, 1)[:n], y.repeat(reps)[:n]
    return ImageDataset(f"mnist5k×{reps}", x[:0], y[:0], x, y, base.class_names)


def encode_figures(n: int) -> dict:
    from models.config import ModelConfig, TrainConfig
    from models.embedding import encode_split
    from models.objectives import objective_terms
    from models.trainer import resolve_precision
    from models.vae import VAE

    data = _data(n)
    model = VAE(ModelConfig())
    train = TrainConfig()
    bf16 = resolve_precision(train.precision, torch.device("cpu")) == "bf16"
    x = data.test_x

    def forward():
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(0)
        for start in range(0, n, train.batch_size):
            objective_terms(model, x[start : start + train.batch_size], generator=gen, autocast=bf16).loss.sum()
        return n / (time.perf_counter() - t0)

    def encode():
        t0 = time.perf_counter()
        encode_split(model, data, "test")
        return n / (time.perf_counter() - t0)

    enc, fwd = [], []
    for _ in range(3):
        fwd.append(forward())
        enc.append(encode())
    return {"images": n, "encode_per_s": max(enc), "trainer_forward_per_s": max(fwd),
            "ratio": max(enc) / max(fwd), "precision": "bf16" if bf16 else "fp32", "threads": torch.get_num_threads()}


def projection_figures() -> dict:
    from models.embedding import MapStopped, project

    rng = np.random.default_rng(0)
    codes = rng.normal(size=(10_000, 64)).astype(np.float32)
    t0 = time.perf_counter()
    import sklearn.decomposition  # noqa: F401 - imported once per session, in the map's worker thread

    out = {"sklearn_import_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    project(codes, "pca")
    out["pca_10000x64_s"] = time.perf_counter() - t0
    try:
        import openTSNE  # noqa: F401
    except ImportError:
        return out
    small = codes[:5000, :16]
    t0 = time.perf_counter()
    project(small, "tsne")
    out["tsne_5000_s"] = time.perf_counter() - t0
    stop = threading.Event()
    asked: list[float] = []

    def progress(_f, text):
        if "iteration 100" in text and not asked:
            asked.append(time.perf_counter())
            threading.Timer(0.0, stop.set).start()

    try:
        project(small, "tsne", progress=progress, stopped=stop.is_set)
    except MapStopped:
        out["tsne_cancel_s"] = time.perf_counter() - asked[0]
    return out


def gui_figures(n: int) -> dict:
    from vaegui.app import configure_pyqtgraph, offscreen_default

    offscreen_default()
    configure_pyqtgraph()
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from models.config import ModelConfig
    from models.embedding import MapRequest, build_map
    from vaegui.bench import StallMeter
    from vaegui.panels.latentmap import LatentMapPanel
    from vaegui.session import ModelHandle

    app = QApplication.instance() or QApplication([])
    data = _data(n)
    handle = ModelHandle()
    handle.set_dataset(data)
    handle.new_model(ModelConfig(latent_dim=2))
    handle.load_snapshot(0, handle.model.state_dict())
    panel = LatentMapPanel(handle)
    panel.resize(1000, 600)
    panel.show()
    m = build_map(handle.model, data, MapRequest(projection="latent"))
    panel._done((m, None, 0))
    panel.plot.flush()
    app.processEvents()
    from vaegui.app import freeze_startup_objects

    freeze_startup_objects()  # as run_gui does after start-up
    port = panel.plot.viewport()
    stalls = StallMeter()
    stalls.start()
    w, h = port.width(), port.height()
    t_end = time.perf_counter() + 3.0
    k = 0
    pressed = False
    while time.perf_counter() < t_end:
        k += 1
        x, y = w * (0.2 + 0.6 * ((k * 7) % 100) / 100), h * (0.2 + 0.6 * ((k * 13) % 100) / 100)
        if k == 150:  # then pan: press and drag
            pressed = True
            app.sendEvent(port, QMouseEvent(QEvent.Type.MouseButtonPress, QPointF(x, y), QPointF(x, y),
                                            Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
                                            Qt.KeyboardModifier.NoModifier))
        buttons = Qt.MouseButton.LeftButton if pressed else Qt.MouseButton.NoButton
        app.sendEvent(port, QMouseEvent(QEvent.Type.MouseMove, QPointF(x, y), QPointF(x, y),
                                        Qt.MouseButton.NoButton, buttons, Qt.KeyboardModifier.NoModifier))
        end = time.perf_counter() + 0.01
        while time.perf_counter() < end:
            app.processEvents()
    stalls.stop()
    panel.close()
    panel.deleteLater()
    app.processEvents()
    g = stalls.gaps_ms(skip=5)
    return {"points": n, "stall_ms": float(g.max()), "p95_gap_ms": float(np.percentile(g, 95))}


def main(n: int = 60_000) -> int:
    torch.manual_seed(0)
    e = encode_figures(n)
    print(f"encode {e['images']:,} 28×28 images, default MLP, {e['threads']} threads: {e['encode_per_s']:,.0f} "
          f"images/s; trainer forward ({e['precision']}, batch 128): {e['trainer_forward_per_s']:,.0f} images/s; "
          f"ratio {e['ratio']:.2f}x")
    p = projection_figures()
    print(f"PCA of 10,000 × 64: {p['pca_10000x64_s']:.3f} s (after importing scikit-learn's decomposition once: "
          f"{p['sklearn_import_s']:.1f} s, off the GUI thread)")
    if "tsne_5000_s" in p:
        print(f"t-SNE of 5,000 points: {p['tsne_5000_s']:.1f} s; Cancel took effect in "
              f"{p.get('tsne_cancel_s', float('nan')):.2f} s")
    else:
        print("t-SNE: openTSNE is not installed (pip install openTSNE)")
    g = gui_figures(n)
    print(f"map of {g['points']:,} points, hover then pan for 3 s: longest event-loop stall {g['stall_ms']:.0f} ms, "
          f"p95 gap {g['p95_gap_ms']:.1f} ms")
    return 0

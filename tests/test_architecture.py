"""The one-way dependency (vaegui → models) and the Qt binding's health."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contract_models_never_imports_qt():
    from importlinter.cli import lint_imports

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        assert lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0
    finally:
        os.chdir(cwd)


def test_training_headless_loads_no_qt():
    code = (
        "import sys, models; from models import Trainer, load_dataset; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'vaegui')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_repainting_does_not_drain_none_refcount(qtbot):
    """PySide6 6.12.0 drops a reference to None on every Python override of a Qt
    virtual; on Python < 3.12 a long session then aborts ("none_dealloc")."""
    import numpy as np
    import pyqtgraph as pg

    view = pg.GraphicsView()
    qtbot.addWidget(view)
    box = pg.ViewBox()
    view.setCentralItem(box)
    box.addItem(pg.ImageItem(np.zeros((4, 4))))
    view.show()
    view.repaint()
    gc.collect()
    before = sys.getrefcount(None)
    for _ in range(300):
        view.repaint()
    gc.collect()
    assert sys.getrefcount(None) - before > -100

"""Autosave session folders and crash recovery.

Each run of the app owns ``<root>/<yyyymmdd-hhmmss>-<pid>/`` with a ``lock`` file
holding its process id while it runs; the training process autosaves checkpoints
there. A clean exit removes the folder. A folder whose lock names a process that
no longer runs was left by a crash: on the next start the app offers to restore
its newest autosave.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from models.checkpoint import list_autosaves

LOCK = "lock"
HANDLED = "recovery-offered"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class SessionFolder:
    """This run's autosave folder (created at once, with its lock)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.path = self.root / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / LOCK).write_text(str(os.getpid()))

    def close(self) -> None:
        """A clean exit: the folder and its autosaves go."""
        shutil.rmtree(self.path, ignore_errors=True)


def crashed_sessions(root: str | os.PathLike[str]) -> list[tuple[Path, Path]]:
    """``(folder, newest autosave)`` of every earlier run that did not exit cleanly and
    has not been offered for recovery yet, newest first."""
    root = Path(root)
    found = []
    if not root.is_dir():
        return found
    for folder in root.iterdir():
        lock = folder / LOCK
        if not lock.is_file() or (folder / HANDLED).exists():
            continue
        try:
            pid = int(lock.read_text().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid == os.getpid() or _pid_alive(pid):
            continue
        saves = list_autosaves(folder)
        if saves:
            found.append((folder, saves[-1]))
        else:
            shutil.rmtree(folder, ignore_errors=True)  # crashed before any autosave: nothing to offer
    return sorted(found, key=lambda item: item[1].stat().st_mtime, reverse=True)


def mark_offered(folder: str | os.PathLike[str]) -> None:
    """Do not offer this folder again (its autosaves stay on disk)."""
    try:
        (Path(folder) / HANDLED).write_text(str(os.getpid()))
    except OSError:
        pass

"""File choosers that remember their folder (Qt dialogs a person, or a test, fills in)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget


def last_folder(settings: QSettings) -> Path:
    """The folder of the last model file opened or saved (home at first)."""
    return Path(settings.value("files/folder", str(Path.home())))


def choose_open_path(parent: QWidget, settings: QSettings, title: str, name_filter: str) -> str:
    """An existing file picked by the user, or "" when cancelled."""
    dialog = QFileDialog(parent, title, str(last_folder(settings)), name_filter)
    dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
    return dialog.selectedFiles()[0] if dialog.exec() and dialog.selectedFiles() else ""


def choose_save_path(parent: QWidget, settings: QSettings, title: str, default_name: str, name_filter: str,
                     suffix: str) -> str:
    """A file name to save to (``suffix`` added when missing), or "" when cancelled."""
    dialog = QFileDialog(parent, title, str(last_folder(settings) / default_name), name_filter)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setDefaultSuffix(suffix.lstrip("."))
    return dialog.selectedFiles()[0] if dialog.exec() and dialog.selectedFiles() else ""


def ask_export_path(parent: QWidget, settings: QSettings, title: str, name: str, name_filter: str) -> str:
    """A file to export to, starting in the last export folder (remembered), or ""."""
    folder = settings.value("export/folder", str(Path.home()))
    path, _ = QFileDialog.getSaveFileName(parent, title, str(Path(folder) / name), name_filter)
    if path:
        settings.setValue("export/folder", str(Path(path).parent))
    return path


def choose_folder(parent: QWidget, settings: QSettings, title: str, key: str = "runs/folder") -> str:
    """An existing folder picked by the user (starting at the last one, remembered under
    ``key``), or "" when cancelled."""
    dialog = QFileDialog(parent, title, str(settings.value(key, str(Path.home()))))
    dialog.setFileMode(QFileDialog.FileMode.Directory)
    dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
    path = dialog.selectedFiles()[0] if dialog.exec() and dialog.selectedFiles() else ""
    if path:
        settings.setValue(key, str(Path(path).parent))
    return path

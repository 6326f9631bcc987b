"""Form fields made from the config dataclasses' field metadata (``models.config.option``):
the range, the default, the choices, the unit and the tooltip of a spin box or a
drop-down are the ones the command line and the validation use."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox, QWidget


def config_field(cls, name: str) -> dataclasses.Field:
    """The dataclass field ``name`` of the config class ``cls``.

    Raises:
        KeyError: when ``cls`` has no such field.
    """
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def field_widget(cls, name: str) -> QWidget:
    """A spin box (int or float fields with a range) or a drop-down (fields with
    choices) for ``cls.name``, set to its default, with its limits, step, decimals,
    unit suffix, special text for the lowest value and help as tooltip."""
    f = config_field(cls, name)
    meta = f.metadata
    if meta.get("choices"):
        widget = QComboBox()
        for key, title in meta["choices"].items():
            widget.addItem(title, key)
    elif isinstance(f.default, float):
        widget = QDoubleSpinBox()
        widget.setDecimals(meta.get("decimals") or 3)
        if meta.get("step"):
            widget.setSingleStep(meta["step"])
    elif isinstance(f.default, int):
        widget = QSpinBox()
    else:
        raise TypeError(f"{cls.__name__}.{name}: no form widget for a {type(f.default).__name__} field")
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        lo, hi = meta.get("range") or (0, 2**31 - 1)
        widget.setRange(lo, min(hi, 2**31 - 1))
        if meta.get("unit"):
            widget.setSuffix(f" {meta['unit']}")
        if meta.get("special"):
            widget.setSpecialValueText(meta["special"])
    set_value(widget, f.default)
    widget.setToolTip(meta["help"][:1].upper() + meta["help"][1:])
    return widget


def value(widget: QWidget) -> Any:
    """The value a field widget holds (the choice's key for a drop-down)."""
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    return widget.currentData() if isinstance(widget, QComboBox) else widget.value()


def set_value(widget: QWidget, new: Any) -> bool:
    """Show ``new`` in a field widget; False when a drop-down has no such choice."""
    if isinstance(widget, QComboBox):
        i = widget.findData(new)
        if i < 0:
            return False
        widget.setCurrentIndex(i)
        return True
    if isinstance(widget, QCheckBox):  # QSettings' INI files give back "true" / "false"
        widget.setChecked(new if isinstance(new, bool) else str(new).strip().lower() in ("true", "1", "yes"))
        return True
    widget.setValue(float(new) if isinstance(widget, QDoubleSpinBox) else int(new))
    return True


def label(cls, name: str) -> str:
    """The form's label of a field (``"Latent dimensions:"``)."""
    meta = config_field(cls, name).metadata
    return f"{meta.get('label') or name}:"

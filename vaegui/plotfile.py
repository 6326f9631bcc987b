"""A pyqtgraph layout of plots written to a PNG, SVG or PDF file, as it is drawn on screen."""

from __future__ import annotations

import os

import pyqtgraph as pg


def write_layout(layout_widget: pg.GraphicsLayoutWidget, path: str, width: int, height: int, dpi: int = 96,
                 text: dict | None = None, title: str = "") -> None:
    """Save ``layout_widget``'s plots at ``width × height`` (pixels; for PDF, points at ``dpi``)
    as PNG, SVG or PDF, chosen by the suffix; the layout is back at its own size afterwards.

    SVG and PDF are vector: the scene is painted through Qt's ``QSvgGenerator`` /
    ``QPdfWriter`` (pyqtgraph's own SVG exporter fails on this stack), every curve as one
    path; the PDF embeds its fonts, the SVG's text is converted to glyph paths (each with its
    words as a ``<title>``). ``text`` (provenance) goes into the PNG's text chunks, the SVG's
    description and the PDF's creator; ``title`` is the SVG's and the PDF's title. The file is
    written atomically.

    Raises:
        ValueError: an unknown suffix or a size below 16 pixels.
        OSError: the file cannot be written.
    """
    from PySide6.QtCore import QMarginsF, QRectF, QSize, QSizeF
    from PySide6.QtGui import QImage, QPageSize, QPainter, QPdfWriter
    from PySide6.QtSvg import QSvgGenerator

    from models.checkpoint import check_writable

    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix not in ("png", "svg", "pdf"):
        raise ValueError(f"{path}: choose a .png, .svg or .pdf file")
    if width < 16 or height < 16:
        raise ValueError(f"the size must be at least 16 × 16 pixels, got {width} × {height}")
    check_writable(path)
    text = text or {}
    description = "; ".join(f"{k}: {v}" for k, v in text.items())
    tmp = f"{path}.part"
    ci = layout_widget.ci
    old = ci.geometry()
    curves = [item.curve for item in layout_widget.scene().items() if isinstance(item, pg.PlotDataItem)]
    modes = [c.opts["segmentedLineMode"] for c in curves]
    try:
        for c in curves:  # one path per curve, not one line per segment
            c.opts["segmentedLineMode"] = "off"
        ci.setGeometry(QRectF(0, 0, width, height))
        ci.layout.activate()
        if suffix == "svg":
            device = QSvgGenerator()
            device.setFileName(tmp)
            device.setSize(QSize(width, height))
            device.setViewBox(QRectF(0, 0, width, height))
            device.setResolution(dpi)
            device.setTitle(title)
            device.setDescription(description)
        elif suffix == "pdf":
            device = QPdfWriter(tmp)
            device.setResolution(dpi)
            device.setPageSize(QPageSize(QSizeF(width * 72.0 / dpi, height * 72.0 / dpi), QPageSize.Unit.Point))
            device.setPageMargins(QMarginsF(0, 0, 0, 0))
            device.setTitle(title)
            device.setCreator(description or "vaegui")
        else:
            device = QImage(width, height, QImage.Format.Format_RGB32)
            device.fill(0xFFFFFF)
            device.setDotsPerMeterX(round(dpi / 0.0254))
            device.setDotsPerMeterY(round(dpi / 0.0254))
            for key, value in text.items():
                device.setText(key, str(value))
        painter = QPainter()
        if not painter.begin(device):
            raise OSError(f"could not write {path}")
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        target = QRectF(0, 0, width, height)
        if suffix == "pdf":  # the page is in device units at dpi
            target = QRectF(0, 0, device.width(), device.height())
        layout_widget.scene().render(painter, target, QRectF(0, 0, width, height))
        painter.end()
        if suffix == "png" and not device.save(tmp, "PNG"):
            raise OSError(f"could not write {path}")
        del device
        if suffix == "svg":  # the glyphs as paths: the file looks the same without the font
            from vaegui.svgtext import text_to_paths

            text_to_paths(tmp)
        os.replace(tmp, path)
    finally:
        for c, mode in zip(curves, modes):
            c.opts["segmentedLineMode"] = mode
        ci.setGeometry(old)
        ci.layout.activate()
        if os.path.exists(tmp):
            os.remove(tmp)

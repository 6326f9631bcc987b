"""Rendering a :class:`~vaegui.figures.GridFigure` into a PNG people put in papers:
optional row, column and tile labels, a title and a caption line drawn into the image
at a chosen font size and DPI (Pillow), and text chunks that remember the model, the
settings and the latent of every tile, so that the figure can be reopened. Qt-free.
"""

from __future__ import annotations

import base64
import json
import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from models.checkpoint import atomic_write
from vaegui import __version__
from vaegui.figures import KINDS, GridFigure

#: the PNG text chunk that holds the figure's description (compressed iTXt, JSON)
CHUNK = "vaegui"
FORMAT = 1
#: characters the fallback font (Pillow's built-in) lacks, and what it draws instead
_ASCII = str.maketrans({"−": "-", "×": "x", "·": "-", "→": "->", "β": "beta", "μ": "mu", "Φ": "Phi", "‖": "||"})


class FigureInfoError(ValueError):
    """A PNG that holds no vaegui figure description, or a damaged one; the message says which."""


@dataclass
class FigureStyle:
    """How a figure is drawn.

    Attributes:
        scale: integer upscale of every tile (nearest neighbour), ≥ 1.
        padding: pixels between tiles and around the grid, ≥ 0.
        labels: draw the figure's row, column and tile labels.
        title: a title line above the grid ("" for none).
        caption: a caption line under the grid ("" for none).
        font_pt: the labels' font size in points.
        dpi: dots per inch: text is ``font_pt · dpi / 72`` pixels high, and the PNG's
            pHYs chunk says it (what LaTeX and word processors size the image by).
    """

    scale: int = 4
    padding: int = 2
    labels: bool = False
    title: str = ""
    caption: str = ""
    font_pt: float = 9.0
    dpi: int = 150

    @property
    def font_px(self) -> int:
        return max(6, round(self.font_pt * self.dpi / 72.0))

    @property
    def annotated(self) -> bool:
        return self.labels or bool(self.title) or bool(self.caption)


@lru_cache(maxsize=16)
def _font(px: int) -> tuple[ImageFont.FreeTypeFont, bool]:
    """DejaVu Sans where the system has it (every symbol we label with), else Pillow's
    built-in font (Latin only: the text is then spelled in ASCII). ``(font, unicode)``."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", px), True
    except OSError:
        return ImageFont.load_default(px), False


def _text(s: str, unicode: bool) -> str:
    return s if unicode else s.translate(_ASCII)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def render_figure(fig: GridFigure, style: FigureStyle) -> Image.Image:
    """The figure as a Pillow image (mode "L" for one channel, "RGB" for three).

    Without annotations it is exactly :func:`models.latent.grid_size` pixels, as the
    plain grid export. With them, the labels take a margin left of the grid (row
    labels), above it (title, column labels), a strip under each row (tile labels) and
    lines under it (caption, wrapped to the figure's width); labels that would overlap
    their neighbours are thinned to every k-th one.

    Raises:
        ValueError: bad images or layout (wrong rank, too many images, scale < 1, padding < 0).
    """
    return _render(fig, style, paint=True)


def figure_size(fig: GridFigure, style: FigureStyle) -> tuple[int, int]:
    """``(width, height)`` in pixels of :func:`render_figure`'s image, without drawing it."""
    return _render(fig, style, paint=False)


def _render(fig: GridFigure, style: FigureStyle, paint: bool):
    images = np.asarray(fig.images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    n, c, h, w = images.shape
    if n > fig.rows * fig.cols:
        raise ValueError(f"{n} images do not fit a {fig.rows}×{fig.cols} grid")
    if style.scale < 1 or style.padding < 0:
        raise ValueError(f"scale must be ≥ 1 and padding ≥ 0, got {style.scale}, {style.padding}")
    mode = "L" if c == 1 else "RGB"
    ink = 0 if mode == "L" else (0, 0, 0)
    white = 255 if mode == "L" else (255, 255, 255)
    th, tw, pad = h * style.scale, w * style.scale, style.padding
    font, unicode = _font(style.font_px)
    probe = ImageDraw.Draw(Image.new(mode, (1, 1)))
    asc, desc = font.getmetrics()
    line_h = asc + desc
    gap = max(2, style.font_px // 3)

    def width(s: str) -> int:
        return math.ceil(probe.textlength(_text(s, unicode), font=font))

    labels = style.labels
    row_labels = fig.row_labels if labels and len(fig.row_labels) == fig.rows else []
    col_labels = fig.col_labels if labels and len(fig.col_labels) == fig.cols else []
    tile_labels = fig.tile_labels if labels and len(fig.tile_labels) >= n else []
    left = max((width(s) for s in row_labels), default=0) + 2 * gap if row_labels else 0
    tile_strip = line_h + gap if tile_labels else 0
    grid_w = fig.cols * tw + (fig.cols + 1) * pad
    grid_h = fig.rows * (th + tile_strip) + (fig.rows + 1) * pad
    right = gap if row_labels or col_labels else 0
    total_w = left + grid_w + right
    title_lines = _wrap(probe, _text(style.title, unicode), font, total_w - 2 * gap) if style.title else []
    caption_lines = _wrap(probe, _text(style.caption, unicode), font, total_w - 2 * gap) if style.caption else []
    top = len(title_lines) * line_h + (gap if title_lines else 0) + (line_h + gap if col_labels else 0)
    total_h = top + grid_h + (len(caption_lines) * line_h + 2 * gap if caption_lines else 0)
    if not style.annotated:
        total_w, total_h = grid_w, fig.rows * th + (fig.rows + 1) * pad
    if not paint:
        return total_w, total_h
    pixels = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    if style.scale > 1:
        pixels = pixels.repeat(style.scale, axis=1).repeat(style.scale, axis=2)
    canvas = Image.new(mode, (total_w, total_h), white)
    for k in range(n):
        r, col = divmod(k, fig.cols)
        x = left + pad + col * (tw + pad)
        y = top + pad + r * (th + tile_strip + pad)
        tile = pixels[k][..., 0] if c == 1 else pixels[k]
        canvas.paste(Image.fromarray(np.ascontiguousarray(tile), mode=mode), (x, y))
    draw = ImageDraw.Draw(canvas)

    def every(count: int, pitch: float, size: float) -> int:
        return max(1, math.ceil((size + gap) / pitch)) if count else 1

    y = 0
    for line in title_lines:
        draw.text(((total_w - probe.textlength(line, font=font)) / 2, y), line, font=font, fill=ink)
        y += line_h
    if col_labels:
        y = top - line_h - gap // 2
        step = every(len(col_labels), tw + pad, max(width(s) for s in col_labels))
        for col, s in enumerate(col_labels):
            if col % step == 0:
                cx = left + pad + col * (tw + pad) + tw / 2
                draw.text((cx - width(s) / 2, y), _text(s, unicode), font=font, fill=ink)
    if row_labels:
        step = every(len(row_labels), th + tile_strip + pad, line_h)
        for r, s in enumerate(row_labels):
            if r % step == 0:
                cy = top + pad + r * (th + tile_strip + pad) + th / 2
                draw.text((left - gap - width(s), cy - line_h / 2), _text(s, unicode), font=font, fill=ink)
    for k, s in enumerate(tile_labels[:n]):
        r, col = divmod(k, fig.cols)
        cx = left + pad + col * (tw + pad) + tw / 2
        draw.text((cx - width(s) / 2, top + pad + r * (th + tile_strip + pad) + th + gap // 2),
                  _text(s, unicode), font=font, fill=ink)
    y = top + grid_h + gap
    for line in caption_lines:
        draw.text((gap, y), line, font=font, fill=ink)
        y += line_h
    return canvas


# -- the description a PNG carries --------------------------------------------------------------
def describe(fig: GridFigure, model: dict | None = None) -> dict:
    """The JSON description of ``fig``: app version, kind, layout, settings, the model
    (``model``: weights and file SHA-256, configs, dataset, epoch, seed, ...) and the latent of
    every tile as base64 float32 (little-endian, row-major ``(rows·cols, D)``)."""
    doc = {"format": FORMAT, "app": f"vaegui {__version__}", "kind": fig.kind, "rows": fig.rows,
           "cols": fig.cols, "params": fig.params, "model": model or {}}
    if fig.latents is not None:
        z = np.ascontiguousarray(fig.latents, dtype="<f4")
        doc["latents"] = {"dtype": "float32", "shape": list(z.shape), "base64": base64.b64encode(z.tobytes()).decode()}
    return doc


def png_info(doc: dict, title: str = "", caption: str = "") -> PngInfo:
    """Text chunks: Software, Title, Description (plain tEXt, what image viewers show) and
    the compressed JSON description under the key ``vaegui``."""
    info = PngInfo()
    info.add_text("Software", doc.get("app", f"vaegui {__version__}"))
    if title:
        info.add_itxt("Title", title)
    if caption:
        info.add_itxt("Description", caption)
    info.add_itxt(CHUNK, json.dumps(doc, separators=(",", ":"), allow_nan=False), zip=True)
    return info


def save_figure_png(path: str | os.PathLike[str], fig: GridFigure, style: FigureStyle,
                    model: dict | None = None) -> tuple[int, int]:
    """Render ``fig`` and write it as PNG with its description (atomically: a failed write
    leaves any older file as it was). Returns ``(width, height)`` in pixels.

    Raises:
        ValueError: a bad layout (see :func:`render_figure`).
        OSError / :class:`models.checkpoint.CheckpointError`: the file cannot be written.
    """
    import io

    image = render_figure(fig, style)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=png_info(describe(fig, model), style.title, style.caption),
               dpi=(style.dpi, style.dpi))
    atomic_write(path, buf.getvalue())
    return image.size


@dataclass
class FigureRecord:
    """What a vaegui PNG remembers (:func:`read_figure`): ``doc`` as written by
    :func:`describe`, and the tiles' latents ``(N, D)`` float32 (None when it has none)."""

    doc: dict
    latents: np.ndarray | None

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def params(self) -> dict:
        return self.doc.get("params", {})

    @property
    def model(self) -> dict:
        return self.doc.get("model", {})


def read_figure(path: str | os.PathLike[str]) -> FigureRecord:
    """Read the description of a PNG written by vaegui.

    Raises:
        FigureInfoError: the file is not a readable PNG, has no vaegui description (any
            other PNG), or a damaged one (bad JSON, unknown kind, latents of the wrong size).
    """
    name = os.fspath(path)
    try:
        with Image.open(name) as im:
            if im.format != "PNG":
                raise FigureInfoError(f"{os.path.basename(name)} is a {im.format} image, not a PNG written by vaegui")
            im.load()
            text = dict(getattr(im, "text", {}) or {})
    except FigureInfoError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise FigureInfoError(f"{os.path.basename(name)} is not a readable PNG ({exc})") from exc
    if CHUNK not in text:
        raise FigureInfoError(f"{os.path.basename(name)} was not exported by vaegui (it has no '{CHUNK}' "
                              "text chunk), so it holds no latents to restore")
    try:
        doc = json.loads(text[CHUNK])
        if not isinstance(doc, dict) or doc.get("kind") not in KINDS:
            raise ValueError(f"unknown figure kind {doc.get('kind') if isinstance(doc, dict) else doc!r}")
        if int(doc.get("format", 0)) > FORMAT:
            raise ValueError(f"written by a newer vaegui ({doc.get('app')}); update to open it")
        rows, cols = int(doc["rows"]), int(doc["cols"])
        latents = None
        if "latents" in doc:
            spec = doc["latents"]
            shape = tuple(int(s) for s in spec["shape"])
            raw = base64.b64decode(spec["base64"], validate=True)
            if len(shape) != 2 or shape[0] > rows * cols or len(raw) != 4 * shape[0] * shape[1]:
                raise ValueError(f"latents of shape {shape} and {len(raw)} bytes do not fit a {rows}×{cols} grid")
            latents = np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)
    except (ValueError, KeyError, TypeError) as exc:
        raise FigureInfoError(f"{os.path.basename(name)}: its vaegui description is damaged: {exc}") from exc
    return FigureRecord(doc, latents)


@lru_cache(maxsize=64)
def _is_figure(path: str, _mtime: float) -> bool:
    try:
        with Image.open(path) as im:
            im.load()
            return im.format == "PNG" and CHUNK in (getattr(im, "text", {}) or {})
    except Exception:  # any unreadable file is simply not a figure
        return False


def is_figure(path: str | os.PathLike[str]) -> bool:
    """True for a PNG written by vaegui (it carries the ``vaegui`` text chunk); cached per file version."""
    path = os.fspath(path)
    try:
        return path.lower().endswith(".png") and _is_figure(path, os.path.getmtime(path))
    except OSError:
        return False

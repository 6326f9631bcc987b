"""Text of an SVG written by Qt's ``QSvgGenerator`` turned into paths, so the file shows
the same glyphs wherever it is opened (LaTeX, Inkscape, a browser without the font)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from PySide6.QtCore import QPointF
from PySide6.QtGui import QFont, QPainterPath

SVG = "http://www.w3.org/2000/svg"
_BASE_PX = 100  # glyph outlines at 100 px, scaled to the text's size (QFont takes integer pixel sizes)


def _d(path: QPainterPath, scale: float, x: float, y: float) -> str:
    """SVG path data of ``path`` scaled about the origin, then moved to ``(x, y)``."""
    out, i, n = [], 0, path.elementCount()
    while i < n:
        e = path.elementAt(i)
        px, py = x + e.x * scale, y + e.y * scale
        if e.type == QPainterPath.ElementType.MoveToElement:
            out.append(f"M{px:.2f},{py:.2f}")
        elif e.type == QPainterPath.ElementType.LineToElement:
            out.append(f"L{px:.2f},{py:.2f}")
        elif e.type == QPainterPath.ElementType.CurveToElement:
            c1, c2 = path.elementAt(i + 1), path.elementAt(i + 2)
            out.append(f"C{px:.2f},{py:.2f} {x + c1.x * scale:.2f},{y + c1.y * scale:.2f} "
                       f"{x + c2.x * scale:.2f},{y + c2.y * scale:.2f}")
            i += 2
        i += 1
    return " ".join(out) + (" Z" if out else "")


def text_to_paths(svg_path: str) -> int:
    """Replace every ``<text>`` of the SVG file by a filled ``<path>`` of its glyphs (same
    font family, size, weight, style, position and colour); returns how many were replaced.

    Raises:
        ET.ParseError: the file is not XML; OSError: it cannot be read or written.
    """
    ET.register_namespace("", SVG)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    tree = ET.parse(svg_path)
    count = 0
    for parent in tree.getroot().iter():
        for i, el in enumerate(list(parent)):
            if el.tag != f"{{{SVG}}}text":
                continue
            text = "".join(el.itertext())
            font = QFont(el.get("font-family", parent.get("font-family", "Sans Serif")))
            font.setPixelSize(_BASE_PX)
            weight = int(el.get("font-weight", parent.get("font-weight", "400")) or 400)
            font.setWeight(QFont.Weight(min(900, max(100, weight))))
            font.setItalic(el.get("font-style", "normal") == "italic")
            size = float(el.get("font-size", parent.get("font-size", "12")) or 12)
            glyphs = QPainterPath()
            glyphs.addText(QPointF(0, 0), font, text)
            attrs = {"d": _d(glyphs, size / _BASE_PX, float(el.get("x", 0)), float(el.get("y", 0))),
                     "fill": el.get("fill", "black"), "fill-opacity": el.get("fill-opacity", "1"),
                     "stroke": "none", "fill-rule": "nonzero"}
            glyph_el = ET.Element(f"{{{SVG}}}path", attrs)
            title = ET.SubElement(glyph_el, f"{{{SVG}}}title")  # the words stay searchable
            title.text = text
            parent.remove(el)
            parent.insert(i, glyph_el)
            count += 1
    tree.write(svg_path, encoding="utf-8", xml_declaration=True)
    return count

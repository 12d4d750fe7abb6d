"""Figures as files: deterministic PNG and SVG bytes (:func:`figure_bytes`), an ``<svg>`` element
for an HTML page (:func:`svg_markup`), both files written (:func:`save_figure`), and names made
safe for file names (:func:`slug`). Layer: harness.reports (imports its own modules).

Figures are built without pyplot (no display, no global figure state) and saved by the Agg and
SVG backends with fixed metadata and ``svg.hashsalt``: the same data gives the same bytes. Text
is never parsed as mathtext (a ``$`` in a config name stays a ``$``), and the SVG backend escapes
every text it writes, so run and config names cannot inject markup into an SVG inlined in a page
(:func:`svg_markup`).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from harness.reports.files import write_atomically
from harness.reports.plot_style import PNG_METADATA, RC, SVG_METADATA, rc


def slug(text: str) -> str:
    """``text`` as a file-name part: letters, digits, ``.``, ``_`` and ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def figure_bytes(fig, fmt: str) -> bytes:
    """``fig`` as PNG or SVG bytes, deterministically (fixed metadata and hash salt)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.BytesIO()
    with rc():
        if fmt == "png":
            FigureCanvasAgg(fig).print_png(buf, metadata=PNG_METADATA)
        elif fmt == "svg":
            FigureCanvasSVG(fig).print_svg(buf, metadata=SVG_METADATA)
        else:
            raise ValueError(f"format must be png or svg, not {fmt!r}")
    return buf.getvalue()


def svg_markup(fig, salt: str) -> str:
    """``fig`` as an ``<svg>`` element for an HTML page: no XML declaration or doctype, and
    ``salt`` in the hash of its element ids, so that several figures on one page do not share
    ids. Every text in it was escaped by matplotlib's SVG writer."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.BytesIO()
    with matplotlib.rc_context({**RC, "svg.hashsalt": f"rlhf-harness/{salt}"}):
        FigureCanvasSVG(fig).print_svg(buf, metadata=SVG_METADATA)
    text = buf.getvalue().decode("utf-8")
    return text[text.index("<svg") :]


def save_figure(fig, out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.svg`` into ``out_dir``; their paths."""
    return [write_atomically(Path(out_dir) / f"{stem}.{fmt}", figure_bytes(fig, fmt)) for fmt in ("png", "svg")]

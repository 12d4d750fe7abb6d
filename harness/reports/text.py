"""Text made safe for a table cell: markdown (:func:`md_cell`) and LaTeX (:func:`latex_escape`).
Layer: harness.reports (imports nothing of the harness).
"""

from __future__ import annotations

import html


def md_cell(text: str) -> str:
    """A markdown table cell: no raw HTML from names, config values or generated text, pipes
    escaped, line breaks shown as ⏎ (a newline would end the table row)."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\r\n", "\n").replace("\n", " ⏎ ")


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "±": r"$\pm$",
    "–": "--",
    "—": "---",
    "−": r"$-$",
    "▲": r"$\blacktriangle$",  # amssymb
    "▼": r"$\blacktriangledown$",
    "≈": r"$\approx$",
    "·": r"$\cdot$",
    "α": r"$\alpha$",
    "*": r"$^*$",
    "²": r"$^2$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)

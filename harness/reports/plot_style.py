"""How figures look: the Okabe–Ito palette, one style (colour, line style, marker) per
configuration in every figure of a call (:func:`assign_styles`), axis labels of common metrics,
and the matplotlib settings (:data:`RC`) every figure is drawn and saved under. Layer:
harness.reports (imports nothing of the harness; matplotlib lazily).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass

#: what the common training metrics measure, with units, for y-axis labels
METRIC_LABELS = {
    "objective/kl": "KL(π ‖ π_ref) per sequence  [nats]",
    "objective/kl_per_token": "KL(π ‖ π_ref) per token  [nats]",
    "objective/scores": "proxy score r̂  [σ on π_sft]",
    "objective/raw_scores": "raw proxy score r̂",
    "objective/rlhf_reward": "r̂ − β·KL  (the reward optimized)",
    "objective/entropy": "entropy per sequence  [nats]",
    "val/response_length": "response length  [tokens]",
    "val/eos_rate": "share of responses ending with EOS",
}

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with any common colour-vision deficiency
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
#: the colours configurations get, in order (yellow last: faint on white); black is π_sft's and best-of-n's
_CYCLE = ["blue", "vermillion", "bluish_green", "reddish_purple", "orange", "sky_blue", "yellow"]
#: dashed and dotted are ppo-nokl's and best-of-n's; the others alternate these
_LINESTYLES = ["-", "-.", (0, (4, 1, 1, 1, 1, 1)), (0, (7, 2))]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">"]
#: configurations with a fixed style, so that the KL ablation stands out against PPO in every figure
_FIXED = {"ppo": ("blue", "-", "o"), "ppo-nokl": ("vermillion", "--", "s"), "best-of-n": ("black", (0, (1, 1.5)), "D")}
SFT_COLOR = OKABE_ITO["black"]
GOLD_COLOR, PROXY_COLOR = OKABE_ITO["orange"], OKABE_ITO["blue"]

#: matplotlib settings for every figure: readable sizes, deterministic files, text as text
RC = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "text.parse_math": False,  # names come from users: "$" is a dollar sign, never mathtext
    "svg.fonttype": "none",  # text stays text: smaller, searchable, selectable in the report
    "svg.hashsalt": "rlhf-harness",
    "savefig.dpi": 150,
    "savefig.bbox": None,  # a fixed canvas: a tight box would depend on text extents only
}
PNG_METADATA = {"Software": "rlhf-harness (matplotlib)"}
#: no date, no URL: the same figure gives the same bytes
SVG_METADATA = {"Date": None, "Creator": "rlhf-harness (matplotlib)", "Type": None, "Format": None}


@dataclass(frozen=True)
class Style:
    """How one configuration is drawn in every figure: colour, line style and marker."""

    color: str
    linestyle: str | tuple
    marker: str


def assign_styles(configs: Iterable[str]) -> dict[str, Style]:
    """A distinct style per configuration, the same for the same set of names whatever their
    order: ``ppo``, ``ppo-nokl`` and ``best-of-n`` have fixed ones, the others take colours (the
    fixed ones' last), line styles and markers in name order: no two of the first 28 share a
    colour and a line style."""
    names = sorted(set(map(str, configs)))
    styles = {name: Style(OKABE_ITO[c], ls, m) for name, (c, ls, m) in _FIXED.items() if name in names}
    taken = {_FIXED[name][0] for name in styles}
    cycle = [c for c in _CYCLE if c not in taken] + [c for c in _CYCLE if c in taken]  # the fixed ones' colours last
    used = {(s.color, str(s.linestyle)) for s in styles.values()}
    k = 0
    for i, name in enumerate(n for n in names if n not in styles):
        for _ in range(len(cycle) * len(_LINESTYLES)):  # the next (colour, line style) not taken, while there are any
            c, j = k % len(cycle), k // len(cycle)
            color, linestyle = OKABE_ITO[cycle[c]], _LINESTYLES[(c + j) % len(_LINESTYLES)]
            k += 1
            if (color, str(linestyle)) not in used:
                break
        used.add((color, str(linestyle)))
        styles[name] = Style(color, linestyle, _MARKERS[(i + 2) % len(_MARKERS)])
    return styles


@contextmanager
def rc():
    import matplotlib

    with matplotlib.rc_context(RC):
        yield


def new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")

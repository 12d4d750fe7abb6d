"""One standalone HTML page of everything stored (``harness report``): the leaderboards, the
figures of ``harness plot`` inlined as SVG, the Gao et al. fits, a few samples per run, and
provenance (the sweep's command and file, the distinct run manifests).

The page needs no network and loads nothing: CSS and one small script are inline, and a
Content-Security-Policy forbids every other script (the page's own is allowed by its SHA-256
hash; inline event handlers are never allowed), every load and every form. Every generated text
is escaped with :func:`html.escape` — names, settings, prompts and responses included — so a
response that contains ``<script>`` shows as text; the policy is the second wall behind that.
The inline SVG is markup this module generates with matplotlib, whose SVG writer escapes every
text (see :mod:`harness.reports.figure_files`).

Tables sort by clicking a header (again: the other way); numbers sort as numbers ("0.9 ± 0.1"
by its mean, "–" last in either direction), text in natural order. ``#sort=<id>:<column index>:<asc|desc>``
in the URL sorts a table (or the one table inside the element with that id) on load. Once its script has run, the page's root
element carries ``data-sort-ready="1"`` (the CSS, the script and the policy:
:mod:`harness.reports.html_assets`).

Layer: harness.reports (imports harness.analysis and its own modules).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.columns import NA
from harness.analysis.fits import fit_table
from harness.analysis.leaderboard import build_leaderboard
from harness.errors import UsageError
from harness.reports import plots
from harness.reports.files import write_atomically
from harness.reports.fit_table import render_fit_table
from harness.reports.html_assets import CSS, SCRIPT, content_security_policy, script_hash
from harness.reports.leaderboard import render

__all__ = [
    "CSS", "NAV", "SAMPLES_PER_RUN", "SCRIPT", "TITLE", "build_report", "content_security_policy", "esc", "fits_section",
    "html_table", "leaderboard_section", "plots_section", "provenance_section", "read_sweep", "samples_section",
    "script_hash", "write_report",
]  # fmt: skip

TITLE = "RLHF Harness report"
#: samples shown per run when not told otherwise
SAMPLES_PER_RUN = 3
#: manifest fields that identify a process, not an environment: left out when grouping manifests
_PER_PROCESS = ("host",)


def esc(value: Any) -> str:
    """Any value as escaped HTML text (quotes too: safe in attributes)."""
    return html.escape(str(value), quote=True)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: Any, fmt: str) -> str:
    return NA if _is_missing(value) else fmt.format(value)


class _Ids:
    """Element ids, unique on the page and stable from one build to the next."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}

    def __call__(self, prefix: str) -> str:
        self.count[prefix] = self.count.get(prefix, 0) + 1
        return f"{prefix}-{self.count[prefix]}"


def html_table(columns: Sequence[str], rows: Iterable[Sequence[tuple[str, str | None]]], *, table_id: str, css_class: str,
               numeric: Iterable[int] = (), header_titles: Mapping[int, str] | None = None, attrs: str = "") -> str:  # fmt: skip
    """A sortable table. ``rows``: per row, per column, (text, sort key or None); both are
    escaped here. ``numeric``: the indices of right-aligned number columns."""
    numeric = set(numeric)
    titles = header_titles or {}
    head = []
    for i, column in enumerate(columns):
        cls = ' class="num"' if i in numeric else ""
        title = f' title="{esc(titles[i])}"' if i in titles else ""
        head.append(f'<th scope="col"{cls}{title}>{esc(column)}</th>')
    head = "".join(head)
    body = []
    for row in rows:
        cells = []
        for i, (text, sort) in enumerate(row):
            cls = "num" if i in numeric else "text" if css_class == "samples" and columns[i] in ("prompt", "response") else ""
            cls_attr = f' class="{cls}"' if cls else ""
            sort_attr = f' data-sort="{esc(sort)}"' if sort is not None else ""
            cells.append(f"<td{cls_attr}{sort_attr}>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table id="{esc(table_id)}" class="{esc(css_class)}"{attrs}>\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table></div>\n")  # fmt: skip


# -------------------------------------------------------------------------
# sections
# -------------------------------------------------------------------------


def leaderboard_section(board: pd.DataFrame, ids: _Ids) -> str:
    """One table per benchmark section of :func:`build_leaderboard`'s frame, each rendered by the
    leaderboard's own html renderer (escaped cells, its interval and mark formats), in a
    container with a page id (``leaderboard-<i>``) that ``#sort=`` can name."""
    out = ['<section id="leaderboards">\n<h2>Leaderboards</h2>\n']
    if board.empty:
        return out[0] + '<p class="note">No finished runs.</p>\n</section>\n'
    for (bench, version, settings), part in board.groupby(["benchmark", "version", "settings"], sort=False):
        title = f"{bench} (v{version})" if version else str(bench)
        title += f" · {settings}" if settings else ""
        shown = part.drop(columns=["benchmark", "version", "settings"])
        shown.attrs = dict(board.attrs)
        out.append(f'<h3 data-benchmark="{esc(bench)}">{esc(title)}</h3>\n')
        out.append(f'<div class="scroll leaderboard" id="{ids("leaderboard")}" data-benchmark="{esc(bench)}">\n'
                   f"{render(shown, 'html')}</div>\n")  # fmt: skip
    codes = sorted(set(board["code"])) if "code" in board.columns else []
    out.append(
        '<p class="legend">Each metric: the mean over seeds and its 95% confidence interval (mean ± half-width, or mean '
        "[lo, hi] for a metric bounded to a range); no interval with one seed. ↑/↓: higher/lower is better. "
        "<code>config</code>: what sets a row apart from its algorithm's other rows; <code>episodes</code>, "
        "<code>rm_queries</code>: training; <code>annotations</code>: preference data the optimizer itself trained on "
        "(DPO); <code>samples_per_response</code>: responses sampled per answer at inference (best-of-n: n); –: none, or "
        "not measured (gold and win rate on a benchmark without a gold reward r*). Click a header to sort."
        + (f" Code version: <code>{esc(codes[0])}</code>." if len(codes) == 1 else "")
        + "</p>\n</section>\n"
    )
    return "".join(out)


_CAPTIONS = {
    "frontier": "Gold reward r* against d = √KL(π‖π_sft) along training (KL in nats on the top axis): thin lines are single "
    "seeds, thick lines the mean over seeds, the dotted curve best-of-n over n (exact expectations from one set of "
    "samples, analytic KL), the star π_sft. A curve that bends back towards or below π_sft's level has bought proxy "
    "reward with gold reward: over-optimisation (reward hacking).",
    "overoptimisation": "Per configuration, the gain in gold r* (left axis) and in proxy r̂ (right axis; r̂ is in units of "
    "its standard deviation on π_sft's samples) over each seed's own d = 0 point, against d = √KL; mean ± 95% CI over "
    "seeds, zeros level. Proxy rising while gold falls is the proxy being gamed.",
    "curves": "A logged training metric against the training step, mean ± 95% CI over seeds. Seeds are aligned by step; "
    "where their grids differ, each seed is linearly interpolated onto the union of the grids within its own range.",
}


def plots_section(figure_set: plots.PlotSet | None, notes: Sequence[str]) -> str:
    """Each figure inline as SVG under its benchmark's heading, captioned."""
    out = ['<section id="plots">\n<h2>Plots</h2>\n']
    for note in notes:
        out.append(f'<p class="note">{esc(note)}</p>\n')
    figures = figure_set.figures if figure_set is not None else {}
    if not figures:
        out.append('<p class="note">No figures: the store holds no trajectories or training curves.</p>\n')
    by_bench: dict[str, list[str]] = {}
    for stem in figures:
        by_bench.setdefault(figure_set.benchmarks.get(stem, ""), []).append(stem)
    for bench in sorted(by_bench):
        out.append(f'<h3 data-benchmark="{esc(bench)}">{esc(bench)}</h3>\n')
        for stem in by_bench[bench]:
            kind = stem.split("_", 1)[0]
            out.append(f'<figure class="plot" data-plot="{esc(kind)}" data-name="{esc(stem)}">\n')
            out.append(plots.svg_markup(figures[stem], salt=stem))
            out.append(f"<figcaption>{esc(_CAPTIONS.get(kind, ''))} <code>{esc(stem)}</code></figcaption>\n</figure>\n")
    out.append("</section>\n")
    return "".join(out)


def fits_section(trajectories: pd.DataFrame, n_boot: int) -> str:
    """Gao et al.'s forms fitted per configuration (:mod:`harness.analysis.fits`)."""
    out = ['<section id="fits">\n<h2>Over-optimisation fits</h2>\n']
    if trajectories is None or trajectories.empty:
        return out[0] + '<p class="note">No trajectories to fit.</p>\n</section>\n'
    frame = plots.fit_points(trajectories)
    if frame.empty:
        return out[0] + '<p class="note">Only π_sft was measured: no curve to fit.</p>\n</section>\n'
    try:
        table = render_fit_table(fit_table(frame, n_boot=n_boot, seed=0), "html")
    except UsageError as exc:
        return out[0] + f'<p class="note">No fits: {esc(exc)}</p>\n</section>\n'
    out.append(
        '<p class="legend">Gao, Schulman &amp; Hilton (2022): the gold reward gained over each seed\'s d = 0 point, '
        "R(d) = d (α − β log d) along RL training and R(d) = d (α − β d) for best-of-n, with d = √KL(π‖π_sft) in √nats; "
        "least squares on the pooled points of the seeds. d*, KL*: where the fitted gain peaks — past it, more "
        f"optimization of the proxy costs gold. [lo, hi]: 95% percentile bootstrap over seeds ({n_boot} refits).</p>\n"
    )
    out.append(f'<div class="scroll">{table}</div>\n</section>\n')
    return "".join(out)


def samples_section(store, runs: Sequence, labels: Mapping[str, str], n: int, ids: _Ids) -> str:
    """The first ``n`` stored samples of each finished run, one table per benchmark, every text
    escaped (a response is data, never markup)."""
    legend = (f'<p class="legend">The first {n} stored held-out samples of each run the leaderboard shows: gold r*, proxy '
              "r̂, the prompt and what the policy wrote after it, verbatim.</p>\n")  # fmt: skip
    out = ['<section id="samples">\n<h2>Samples</h2>\n', legend]
    by_bench: dict[str, list] = {}
    for r in runs:
        by_bench.setdefault(r.benchmark, []).append(r)
    columns = ["config", "seed", "run", "gold", "proxy", "prompt", "response"]
    for bench in sorted(by_bench):
        rows = []
        for r in sorted(by_bench[bench], key=lambda r: (labels.get(r.run_id, r.algorithm), r.seed, r.run_id)):
            for s in store.samples(r.run_id, n):
                gold, proxy = s.get("gold"), s.get("proxy")
                rows.append([
                    (labels.get(r.run_id, r.algorithm), None), (str(r.seed), str(r.seed)), (r.run_id, None),
                    (_number(gold, "{:+.3f}"), None if _is_missing(gold) else repr(float(gold))),
                    (_number(proxy, "{:+.3f}"), None if _is_missing(proxy) else repr(float(proxy))),
                    (str(s["prompt"]), None), (str(s["response"]), None),
                ])  # fmt: skip
        out.append(f'<h3 data-benchmark="{esc(bench)}">{esc(bench)}</h3>\n')
        if rows:
            out.append(html_table(columns, rows, table_id=ids("samples"), css_class="samples", numeric=[1, 3, 4],
                                  attrs=f' data-benchmark="{esc(bench)}"'))  # fmt: skip
        else:
            out.append('<p class="note">No stored samples.</p>\n')
    out.append("</section>\n")
    return "".join(out)


def _manifest_rows(runs: Sequence) -> list[tuple[dict, list]]:
    """Distinct manifests (host aside) with the runs that share each, in first-seen order."""
    groups: dict[str, tuple[dict, list]] = {}
    for r in runs:
        manifest = {k: v for k, v in (r.manifest or {}).items() if k not in _PER_PROCESS}
        key = json.dumps(manifest, sort_keys=True, default=str)
        groups.setdefault(key, (manifest, []))[1].append(r)
    return list(groups.values())


def read_sweep(sweep_file: Path | None) -> str | None:
    """The sweep file's text. :raises UsageError: it cannot be read."""
    if sweep_file is None:
        return None
    try:
        return Path(sweep_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read sweep file {sweep_file}: {getattr(exc, 'strerror', None) or exc}") from None


def provenance_section(runs: Sequence, sweep_file: Path | None, sweep_text: str | None, store_path: Path, ids: _Ids) -> str:
    """The sweep's command and file (when given) and the distinct manifests of the runs shown."""
    out = ['<section id="provenance">\n<h2>Provenance</h2>\n', f"<p>Store: <code>{esc(store_path)}</code>.</p>\n"]
    if sweep_text is not None:
        text = sweep_text
        out.append(f"<h3>Sweep</h3>\n<p>Command: <code>harness sweep {esc(sweep_file)}</code></p>\n"
                   f'<pre class="sweep">{esc(text)}</pre>\n')  # fmt: skip
    out.append("<h3>Manifests</h3>\n")
    groups = _manifest_rows(runs)
    if not groups:
        out.append('<p class="note">No runs.</p>\n')
    columns = [
        "runs",
        "code version",
        "python",
        "platform",
        "device",
        "device name",
        "cpus",
        "torch threads",
        "packages",
        "hosts",
    ]
    rows = []
    for manifest, members in groups:
        packages = manifest.get("packages") or {}
        package_text = (
            ", ".join(f"{k} {v}" for k, v in sorted(packages.items()) if v) if isinstance(packages, dict) else str(packages)
        )
        hosts = sorted({str(r.manifest.get("host")) for r in members if r.manifest and r.manifest.get("host")})
        rows.append([
            (str(len(members)), str(len(members))),
            (str(manifest.get("code_version") or members[0].code_version), None),
            (str(manifest.get("python", NA)), None), (str(manifest.get("platform", NA)), None),
            (str(manifest.get("device", NA)), None), (str(manifest.get("device_name", NA)), None),
            (str(manifest.get("cpu_count", NA)), None), (str(manifest.get("torch_threads", NA)), None),
            (package_text or NA, None), (", ".join(hosts) or NA, None),
        ])  # fmt: skip
    if rows:
        out.append(html_table(columns, rows, table_id=ids("manifests"), css_class="manifests", numeric=[0]))
        out.append('<p class="legend">One row per distinct environment among the runs shown (the host aside): code version, '
                   "Python, platform, hardware and package versions, as each run recorded them.</p>\n")  # fmt: skip
    out.append("</section>\n")
    return "".join(out)


# -------------------------------------------------------------------------
# the page
# -------------------------------------------------------------------------


NAV = "".join(['<nav><ul>', *(f'<li><a href="#{key}">{title}</a></li>' for key, title in
                               [("leaderboards", "Leaderboards"), ("plots", "Plots"), ("fits", "Fits"), ("samples", "Samples"),
                                ("provenance", "Provenance")]), "</ul></nav>\n</header>\n<main>\n"])  # fmt: skip


def build_report(store, *, benchmark: str | None = None, sweep_file: Path | None = None, samples_per_run: int = SAMPLES_PER_RUN,
                 n_boot: int = 1000, curve_metrics: Sequence[str] | None = None) -> str:  # fmt: skip
    """The report page for ``store`` (one ``benchmark``, or all) as HTML text.

    :raises UsageError: no finished runs, or an unreadable sweep file."""
    sweep_text = read_sweep(sweep_file)
    plots.check_benchmark(store, benchmark)
    runs = store.list_runs(benchmark=benchmark, status="finished")
    if not runs:
        where = f" on benchmark {benchmark!r}" if benchmark else ""
        raise UsageError(f"no finished runs in {store.path}{where}: nothing to report")
    ids = _Ids()
    notes: list[str] = []
    try:
        trajectories = plots.load_trajectories(store, benchmark)
    except UsageError as exc:
        trajectories = pd.DataFrame(columns=list(plots.TRAJECTORY_COLUMNS))
        notes.append(str(exc))
    info = plots.run_info(store, benchmark)  # the runs the leaderboard shows: their row labels and sections
    curves = plots.curve_frame(store, benchmark, info)
    runs = [r for r in runs if r.run_id in info]
    labels = {run_id: f"{config} · {settings}" if settings else config for run_id, (config, settings) in info.items()}
    try:
        figure_set = plots.build_figures(trajectories, curves, kind="all", metrics=curve_metrics, benchmark=benchmark)
        notes += figure_set.notes
    except UsageError as exc:
        figure_set = None
        notes.append(str(exc))
    board = build_leaderboard(store.metrics_frame(benchmark=benchmark))
    benchmarks = sorted({r.benchmark for r in runs})
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(content_security_policy())}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        '<meta name="referrer" content="no-referrer">\n',
        f"<title>{esc(TITLE)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        f"<header>\n<h1>{esc(TITLE)}</h1>\n",
        (
            f'<p class="note">{len(runs)} finished run{"s" * (len(runs) != 1)} on {esc(", ".join(benchmarks))} from '
            f"<code>{esc(store.path)}</code>.</p>\n"
        ),
        NAV,
        leaderboard_section(board, ids),
        plots_section(figure_set, notes),
        fits_section(trajectories, n_boot),
        samples_section(store, runs, labels, samples_per_run, ids),
        provenance_section(runs, sweep_file, sweep_text, store.path, ids),
        f"</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
    ]
    return "".join(parts)


def write_report(store, out: Path, **kwargs) -> Path:
    """:func:`build_report` written to ``out`` in one rename; its path."""
    return write_atomically(Path(out), build_report(store, **kwargs))

"""The report page's own CSS and its one script (sortable tables), and the Content-Security-Policy
that lets exactly that script run (by its SHA-256 hash) and nothing else load. Layer:
harness.reports (imports nothing of the harness).

Tables sort by clicking a header (again: the other way); numbers sort as numbers ("0.9 ± 0.1"
by its mean, "–" last in either direction), text in natural order. ``#sort=<id>:<column index>:<asc|desc>``
in the URL sorts a table (or the one table inside the element with that id) on load. Once its script has run, the page's root
element carries ``data-sort-ready="1"``.
"""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root { color-scheme: light; --fg: #1b1b1b; --muted: #5b5b5b; --line: #d9d9d9; --head: #f3f3f3; --accent: #0072B2; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg);
       margin: 0 auto; padding: 1.5rem 2rem 4rem; max-width: 1500px; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.3rem; margin: 2.5rem 0 .6rem; padding-bottom: .2rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
p.note, .legend, figcaption { color: var(--muted); font-size: .9rem; }
nav ul { list-style: none; padding: 0; display: flex; gap: 1.2rem; flex-wrap: wrap; }
nav a { color: var(--accent); }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .4rem 0 .8rem; font-size: .88rem; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .55rem; text-align: left; vertical-align: top; }
thead th { background: var(--head); position: sticky; top: 0; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafafa; }
table.dataframe td { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { white-space: pre-wrap; word-break: break-word; max-width: 48rem; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .82rem; }
th button { all: unset; cursor: pointer; }
th button:focus-visible { outline: 2px solid var(--accent); }
th[aria-sort="ascending"] button::after { content: " ▲"; }
th[aria-sort="descending"] button::after { content: " ▼"; }
figure.plot { margin: 1rem 0 2rem; }
figure.plot svg { max-width: 100%; height: auto; display: block; }
pre { background: #f6f6f6; border: 1px solid var(--line); padding: .7rem; overflow-x: auto; font-size: .82rem; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
"""

#: The page's only script: sortable tables (see the module docstring). It reads text from the
#: DOM and writes none into it as markup (no innerHTML), so it cannot turn data into code.
SCRIPT = r"""
(function () {
  "use strict";
  var NA = ["", "–", "-", "—", "nan", "NaN"];
  function key(cell) {
    if (!cell) return { kind: 2, v: "" };
    var raw = cell.getAttribute("data-sort");
    var text = (raw === null ? cell.textContent : raw).trim();
    if (NA.indexOf(text) >= 0) return { kind: 2, v: "" };
    var t = text.replace(/^\u2212/, "-").replace(/^\+/, "");
    if (/^-?∞/.test(t)) return { kind: 0, v: t.charAt(0) === "-" ? -Infinity : Infinity };
    var m = /^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?/i.exec(t);
    if (m) return { kind: 0, v: parseFloat(m[0]) };
    return { kind: 1, v: text };
  }
  function compare(a, b) {
    if (a.kind !== b.kind) return a.kind - b.kind;
    if (a.kind === 0) return a.v < b.v ? -1 : a.v > b.v ? 1 : 0;
    return a.v.localeCompare(b.v, undefined, { numeric: true, sensitivity: "base" });
  }
  function sortTable(table, col, dir) {
    var body = table.tBodies[0];
    if (!body) return;
    var rows = Array.prototype.map.call(body.rows, function (row, i) { return { row: row, i: i, k: key(row.cells[col]) }; });
    rows.sort(function (a, b) {
      var c = compare(a.k, b.k);
      if (dir === "desc" && a.k.kind !== 2 && b.k.kind !== 2) c = -c;  // missing values stay last
      return c || a.i - b.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    var heads = table.tHead ? table.tHead.rows[table.tHead.rows.length - 1].cells : [];
    Array.prototype.forEach.call(heads, function (th, i) {
      if (i === col) th.setAttribute("aria-sort", dir === "desc" ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
  }
  function init(table) {
    if (!table.tHead || !table.tBodies.length) return;
    var heads = table.tHead.rows[table.tHead.rows.length - 1].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      var button = document.createElement("button");
      button.type = "button";
      button.title = "sort by this column";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () {
        sortTable(table, col, th.getAttribute("aria-sort") === "ascending" ? "desc" : "asc");
      });
    });
  }
  var tables = document.querySelectorAll("table");
  Array.prototype.forEach.call(tables, init);
  var m = /^#sort=([A-Za-z0-9_-]+):(\d+):(asc|desc)$/.exec(window.location.hash);
  if (m) {
    var target = document.getElementById(m[1]);
    if (target && target.tagName !== "TABLE") target = target.querySelector("table");
    if (target) sortTable(target, parseInt(m[2], 10), m[3]);
  }
  document.documentElement.setAttribute("data-sort-ready", "1");
})();
"""


def script_hash(script: str = SCRIPT) -> str:
    """The CSP source that allows exactly ``script``: ``'sha256-<base64>'``."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(script: str = SCRIPT) -> str:
    """Nothing loads, nothing submits; the one inline script runs by its hash (so no injected
    script or event handler can); inline styles are allowed (matplotlib's SVG styles its
    elements with ``style`` attributes)."""
    return (f"default-src 'none'; script-src {script_hash(script)}; style-src 'unsafe-inline'; img-src 'none'; "
            "font-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'")  # fmt: skip

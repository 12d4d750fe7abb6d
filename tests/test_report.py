"""`harness report`: one standalone page, checked in a real browser (headless Chromium): the
tables, plots and samples are in the rendered DOM, markup inside a sample shows as text and never
runs, the page's own sort script does run, and nothing is loaded from anywhere."""

from __future__ import annotations

import base64
import hashlib
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.cli import main
from harness.reports import html_report, plots
from harness.store import Store
from tests.conftest import make_spec
from tests.test_plots import RL_CONFIGS, make_trajectories

SCRIPT_PAYLOAD = "<script>document.title='pwned'</script>"
IMG_PAYLOAD = """<img src=x onerror="document.body.setAttribute('data-pwned','1')">"""
EVIL_RESPONSE = f"great film {SCRIPT_PAYLOAD} and {IMG_PAYLOAD} end"
#: an algorithm setting with markup in it: the leaderboard labels a row by it
TAGGED = {"kl_coef": 0.05, "lr": 1e-5, "tag": "<b>bold</b>"}
CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (`.ci/run` installs Debian's package)")


# -------------------------------------------------------------------------
# a store made through the Store API, no training
# -------------------------------------------------------------------------


def _config(algorithm: str, algo_config: dict | None) -> str:
    return "ppo (tag=<b>bold</b>)" if algo_config == TAGGED else algorithm


def build_store(path: Path) -> tuple[Path, dict]:
    """Runs of sft, best-of-n, ppo, ppo-nokl and a ppo with markup in a setting, two seeds each:
    final metrics, training curves, checkpoint evaluations as the runner stores them
    (``checkpoint/*``, ``best_of_n/*``), samples (one with markup) and manifests. Returns the
    store's path and (config, seed) → run id."""
    run_ids = {}
    golds = {"sft": 0.2, "best-of-n": 0.45, "ppo": 0.7, "ppo-nokl": -0.1, "ppo (tag=<b>bold</b>)": 0.65}
    with Store(path) as store:
        for algorithm, algo_config in [
            ("sft", None),
            ("best-of-n", None),
            ("ppo", None),
            ("ppo-nokl", {"kl_coef": 0.0}),
            ("ppo", TAGGED),
        ]:
            config = _config(algorithm, algo_config)
            for seed in (0, 1):
                run_id = os.urandom(6).hex()
                manifest = {"code_version": "c0ffee", "python": "3.11.2", "platform": "Linux-x86_64", "device": "cpu",
                            "device_name": "x86_64", "cpu_count": 2, "torch_threads": 1, "host": f"host-{seed}",
                            "packages": {"torch": "2.13.0", "trl": "1.16.0"}}  # fmt: skip
                claim = store.claim_run(make_spec(algorithm=algorithm, algo_config=algo_config, seed=seed), run_id=run_id,
                                        name="n", manifest=manifest, run_dir=None)  # fmt: skip
                assert claim.claimed
                curve = []
                if algorithm not in ("sft", "best-of-n"):
                    curve += [
                        (step, {"objective/kl": 0.2 * step * (seed + 1), "objective/scores": math.log1p(step)})
                        for step in range(6)
                    ]
                    curve += [(step, {"checkpoint/episodes": 64.0 * step, "checkpoint/gold": 0.2 + 0.05 * step, "checkpoint/proxy": 0.1 * step,
                                      "checkpoint/kl": 0.3 * step}) for step in range(6)]  # fmt: skip
                if algorithm == "best-of-n":
                    curve += [(k, {"best_of_n/n": float(2**k), "best_of_n/kl": math.log(2**k) - (2**k - 1) / 2**k,
                                   "best_of_n/gold": 0.2 + 0.03 * k, "best_of_n/proxy": 0.2 * k}) for k in range(7)]  # fmt: skip
                if curve:
                    store.log_curve(run_id, curve)
                store.add_samples(run_id, [
                    {"prompt": "The movie was", "response": EVIL_RESPONSE if algorithm == "ppo-nokl" else f"fine, seed {seed}",
                     "gold": 0.5, "proxy": 1.5, "ended": True},
                    {"prompt": "I thought", "response": "it was  great\nreally", "gold": float("nan"), "proxy": 0.1, "ended": False},
                ])  # fmt: skip
                store.finish_run(run_id, status="finished", metrics={"eval/gold": golds[config] + 0.01 * seed, "eval/kl": 1.0 + seed,
                                 "eval/proxy": 1.0}, higher_is_better={"eval/gold": True, "eval/kl": False, "eval/proxy": True},
                                 budget_used={"episodes_used": 320, "rm_queries": 320})  # fmt: skip
                run_ids[(config, seed)] = run_id
    return path, run_ids


@pytest.fixture(scope="module")
def _store_and_trajectories(tmp_path_factory):
    path, run_ids = build_store(tmp_path_factory.mktemp("report") / "store.sqlite")
    configs = {"ppo": RL_CONFIGS["ppo"], "ppo-nokl": RL_CONFIGS["ppo-nokl"], "ppo (tag=<b>bold</b>)": (1.0, 0.5, 0.2)}
    return path, make_trajectories(seeds=(0, 1), configs=configs, run_ids=run_ids)


@pytest.fixture
def report_store(_store_and_trajectories, monkeypatch) -> Path:
    """The store (shared by this module's tests: none writes to it), with trajectories from
    :func:`tests.test_plots.make_trajectories` for its runs (the checkpoint reader is another
    module's: :func:`test_report_with_the_store_s_own_trajectories` uses it)."""
    path, frame = _store_and_trajectories
    monkeypatch.setattr(
        plots, "load_trajectories", lambda store, benchmark=None: frame[frame["benchmark"] == benchmark] if benchmark else frame
    )
    return path


def write_page(store_path: Path, out: Path, **kwargs) -> Path:
    kwargs.setdefault("n_boot", 50)
    with Store(store_path) as store:
        return html_report.write_report(store, out, **kwargs)


@pytest.fixture(scope="module")
def page(_store_and_trajectories, tmp_path_factory) -> Path:
    """The report of that store, written once for the tests that only read it."""
    path, frame = _store_and_trajectories
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "load_trajectories", lambda store, benchmark=None: frame)
        return write_page(path, tmp_path_factory.mktemp("page") / "report.html")


# -------------------------------------------------------------------------
# a small DOM from html.parser
# -------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict, parent: Node | None):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self, tag: str | None = None):
        for c in self.children:
            if isinstance(c, Node):
                if tag is None or c.tag == tag:
                    yield c
                yield from c.iter(tag)

    def find(self, tag: str, **attrs) -> Node | None:
        return next((n for n in self.iter(tag) if all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())), None)


class DomBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#document", {}, None)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, dict(attrs), self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(text: str) -> Node:
    builder = DomBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def rendered_dom(url: str, tmp_path: Path) -> Node:
    """The DOM after Chromium loaded ``url`` and ran its scripts (``--dump-dom``)."""
    profile = tmp_path / f"chromium-profile-{os.urandom(3).hex()}"
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                             f"--user-data-dir={profile}", "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<html" in result.stdout, result.stderr[-2000:]
    return parse(result.stdout)


def table_rows(table: Node) -> list[list[str]]:
    body = next(table.iter("tbody"))
    return [[cell.text().strip() for cell in row.iter("td")] for row in body.iter("tr")]


def headers(table: Node) -> list[str]:
    return [th.text().strip() for th in next(table.iter("thead")).iter("th")]


# -------------------------------------------------------------------------
# the page in a browser
# -------------------------------------------------------------------------


@needs_chromium
def test_rendered_page_has_tables_plots_and_samples_as_text_and_runs_no_injected_code(page: Path, tmp_path: Path):
    dom = rendered_dom(page.as_uri(), tmp_path)
    html_el, body = dom.find("html"), dom.find("body")
    assert html_el.attrs.get("data-sort-ready") == "1"  # the page's own script ran …
    assert "data-pwned" not in body.attrs and not any("data-pwned" in n.attrs for n in dom.iter())  # … the injected ones did not
    assert dom.find("title").text() == html_report.TITLE

    # leaderboards: one table, a row per experiment, markup in a setting shown as text
    boards = [n for n in dom.iter("div") if "leaderboard" in n.attrs.get("class", "")]
    assert len(boards) == 1
    rows = table_rows(next(boards[0].iter("table")))
    assert len(rows) == 5
    assert any("tag=<b>bold</b>" in cell for row in rows for cell in row)
    assert not any(n.tag == "b" for n in boards[0].iter())

    # plots: an <svg> in every figure, each figure of harness plot present
    figures = list(dom.iter("figure"))
    assert sorted(f.attrs["data-name"] for f in figures) == sorted(["frontier_sentiment", "overoptimisation_sentiment",
                                                                     "curves_sentiment_objective-scores", "curves_sentiment_objective-kl"])  # fmt: skip
    assert all(len(list(f.iter("svg"))) == 1 for f in figures)
    frontier = next(f for f in figures if f.attrs["data-plot"] == "frontier")
    assert "ppo (tag=<b>bold</b>)  (2 seeds)" in [t.text() for t in frontier.iter("text")]  # the SVG's text, escaped

    # samples: the payloads are text in their cells; no element came out of them
    samples = dom.find("table", **{"class": "samples"})
    sample_rows = table_rows(samples)
    assert len(sample_rows) == 10 * 2  # 10 runs × 2 samples
    responses = [row[headers(samples).index("response")] for row in sample_rows]
    assert responses.count(EVIL_RESPONSE) == 2
    assert "it was  great\nreally" in responses  # verbatim, whitespace kept
    assert not list(samples.iter("img")) and not list(samples.iter("script"))
    scripts = list(dom.iter("script"))
    assert len(scripts) == 1 and scripts[0].text() == html_report.SCRIPT  # only the page's own

    # fits and provenance
    assert dom.find("section", id="fits").find("table") is not None
    manifests = dom.find("table", **{"class": "manifests"})
    assert table_rows(manifests)[0][0] == "10"  # one environment: the hosts differ, nothing else
    assert "host-0, host-1" in table_rows(manifests)[0][-1]


@needs_chromium
def test_headers_sort_numbers_as_numbers_both_ways(page: Path, tmp_path: Path):
    static = parse(page.read_text())
    col = next(
        i for i, h in enumerate(headers(static.find("div", id="leaderboard-1").find("table"))) if h.startswith("eval/gold")
    )
    for direction in ("asc", "desc"):
        dom = rendered_dom(f"{page.as_uri()}#sort=leaderboard-1:{col}:{direction}", tmp_path)
        table = dom.find("div", id="leaderboard-1").find("table")
        golds = [float(row[col].split()[0].replace("−", "-")) for row in table_rows(table)]
        assert golds == sorted(golds, reverse=direction == "desc"), golds
        assert len(golds) == 5 and golds[0 if direction == "asc" else -1] < 0  # "-0.095" sorts as a number, not as text
        sorted_th = next(table.iter("thead")).find("th", aria_sort="ascending" if direction == "asc" else "descending")
        assert sorted_th is not None and sorted_th.text().startswith("eval/gold")
        assert sorted_th.find("button") is not None  # the script made the header a button
    # samples: sorted by proxy, the missing gold ("–") stays last either way
    samples_col = headers(static.find("table", **{"class": "samples"})).index("gold")
    dom = rendered_dom(f"{page.as_uri()}#sort=samples-1:{samples_col}:desc", tmp_path)
    cells = [row[samples_col] for row in table_rows(dom.find("table", **{"class": "samples"}))]
    assert cells[-10:] == ["–"] * 10 and cells[:10] == ["+0.500"] * 10


@needs_chromium
def test_the_content_security_policy_stops_scripts_that_escaping_missed(page: Path, tmp_path: Path):
    """Defence in depth: the same payloads pasted into the page *unescaped* still do not run."""
    text = page.read_text()
    injected = text.replace("<main>", f'<main>{SCRIPT_PAYLOAD}{IMG_PAYLOAD}<div onclick="x()" id="injected"></div>', 1)
    bad = tmp_path / "injected.html"
    bad.write_text(injected)
    dom = rendered_dom(bad.as_uri(), tmp_path)
    assert dom.find("title").text() == html_report.TITLE
    assert not any("data-pwned" in n.attrs for n in dom.iter())
    assert dom.find("html").attrs.get("data-sort-ready") == "1"  # the page's own script, allowed by its hash, ran


# -------------------------------------------------------------------------
# the page as text
# -------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def test_page_is_standalone_and_every_text_escaped(page: Path):
    text = page.read_text()
    parser = _Tags()
    parser.feed(text)
    tags = [t for t, _ in parser.tags]
    assert not {"link", "img", "iframe", "object", "embed", "base", "form", "audio", "video"} & set(tags)
    for tag, attrs in parser.tags:
        assert "src" not in attrs, tag
        assert all(v is None or v.startswith("#") for k, v in attrs.items() if k in ("href", "xlink:href", "action")), (
            tag,
            attrs,
        )
        for name, value in attrs.items():
            if value and not name.startswith("xmlns"):  # namespace names are identifiers, never fetched
                assert not re.search(r"https?://", value), (tag, name, value)
    assert not re.search(r"url\(\s*['\"]?https?:", text) and "@import" not in text
    # one script, allowed by its hash, and only by it
    assert text.count("<script") == 1
    script = re.search(r"<script>(.*?)</script>", text, re.DOTALL).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = next(
        attrs["content"] for tag, attrs in parser.tags if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    )
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == f"'sha256-{digest}'"  # no 'unsafe-inline': no injected script or handler runs
    assert directives["default-src"] == "'none'" and directives["img-src"] == "'none'"
    # generated text escaped: samples, settings, config names (in tables, SVG and fits alike)
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in text
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    stray = [text[max(0, m.start() - 80) : m.end() + 40] for m in re.finditer("onerror=", text.replace("onerror=&quot;", ""))]
    assert not stray


def test_report_cli_writes_the_page_with_the_sweep(report_store: Path, tmp_path: Path, capsys):
    sweep = tmp_path / "grid.yaml"
    sweep.write_text("benchmarks: [sentiment]\nseeds: [0, 1]\nruns:\n  - algo: ppo\n    args: {note: '<i>x</i>'}\n")
    out = tmp_path / "site" / "report.html"
    assert main(["report", "--store", str(report_store), "--out", str(out), "--sweep", str(sweep), "--samples", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    text = out.read_text()
    assert f"harness sweep {sweep}" in text and "args: {note: &#x27;&lt;i&gt;x&lt;/i&gt;&#x27;}" in text
    assert text.count("fine, seed 0") == 4  # one sample per run: sft, best-of-n and both ppo rows (ppo-nokl's is the payload)
    assert "I thought" not in text


def test_leaderboard_html_out_writes_the_page_beside_the_tables(report_store: Path, tmp_path: Path, capsys):
    out = tmp_path / "board"
    assert main(["leaderboard", "--store", str(report_store), "--format", "html", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["LEADERBOARD.md", "leaderboard.csv", "report.html"]
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and 'id="fits"' in page
    assert f"wrote {out / 'report.html'}" in capsys.readouterr().err


def test_report_is_deterministic(report_store: Path, page: Path, tmp_path: Path):
    assert write_page(report_store, tmp_path / "again.html").read_bytes() == page.read_bytes()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--benchmark", "sentimnt"], "no finished runs on benchmark 'sentimnt' (did you mean 'sentiment'?)"),
        (["--sweep", "/nonexistent/sweep.yaml"], "cannot read sweep file /nonexistent/sweep.yaml"),
        (["--samples", "0"], "argument --samples: must be a positive integer, got 0"),
    ],
)
def test_report_mistakes_exit_2_with_one_line(report_store: Path, tmp_path: Path, argv, expected, capsys):
    assert main(["report", "--store", str(report_store), "--out", str(tmp_path / "r.html"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harness report: error: ") and expected in err[0], err
    assert not (tmp_path / "r.html").exists()


def test_report_of_an_empty_store_exits_2(tmp_path: Path, capsys):
    Store(tmp_path / "s.sqlite").close()
    assert main(["report", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r.html")]) == 2
    assert "nothing to report" in capsys.readouterr().err


def test_report_with_the_store_s_own_trajectories(tmp_path: Path):
    """The real checkpoint reader on checkpoints stored as the runner stores them."""
    pytest.importorskip("harness.analysis.trajectories", reason="the trajectory reader is not in this checkout yet")
    path, _ = build_store(tmp_path / "store.sqlite")
    text = write_page(path, tmp_path / "report.html").read_text()
    dom = parse(text)
    names = {f.attrs["data-name"] for f in dom.iter("figure")}
    assert {"frontier_sentiment", "overoptimisation_sentiment"} <= names
    assert all(len(list(f.iter("svg"))) == 1 for f in dom.iter("figure"))

"""The command line's shared flag vocabulary: the parser class (one-line errors, no abbreviations),
and the flags and checks several commands share: ``--plugin``, ``--store`` (and ``$HARNESS_STORE``),
``--benchmark``, the workspace flags (``--results-dir``, ``--cache-dir``, ``--device``, ``--quiet``,
``--report-to``), seeds, the writable-folder check and the store-existence check.

Layer: part of ``harness.cli``, the top layer: it may import every lower layer (lazily, inside
functions, where the import is slow), ``harness.config`` and ``harness.errors``; it imports no
other module of ``harness.cli``.
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager
from pathlib import Path

from harness.config import ascii_int
from harness.errors import FaultError, UsageError, did_you_mean

PROG = "harness"
STORE_ENV = "HARNESS_STORE"
#: flags that were renamed: an old spelling gets a pointer to the new one
RENAMED_FLAGS = {"--bench": "--benchmark-set KEY=VALUE", "--kl": "--kl-coef (or --no-kl)", "--objective": "--algo rrhf"}
#: the help of ``--benchmark`` on the commands that read every benchmark in the store by default
EVERY_BENCHMARK = "only this benchmark (default: every one in the store)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors, "did you mean" for unknown flags, and no abbreviations
    (a plugin's ``--reward`` must never be taken for ``--reward-model``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        if message.startswith("unrecognized arguments:"):
            flags = [a for a in self._option_string_actions if a.startswith("--")]
            unknown = [u.split("=")[0] for u in message.split(":", 1)[1].split() if u.startswith("-")]
            hints = [f" ({u} is now {RENAMED_FLAGS[u]})" if u in RENAMED_FLAGS else did_you_mean(u, flags) for u in unknown]
            message = f"{message}{''.join(h for h in hints if h)}"
        raise UsageError(f"{message} (see {self.prog} --help)")


def seed(text: str) -> int:
    value = ascii_int(text, "an integer seed")
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"seeds must be in 0 .. 2^63 - 1, got {value}")
    return value


def default_store() -> str:
    return os.environ.get(STORE_ENV, "results/store.sqlite")


# -------------------------------------------------------------------------
# --plugin
# -------------------------------------------------------------------------


def plugin_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                        help="load a plugin file or module (repeatable; also $HARNESS_PLUGINS)")  # fmt: skip


def without_plugin_flags(argv: list[str]) -> list[str]:
    """``argv`` less its ``--plugin X`` / ``--plugin=X`` (the CLI's, not a plugin command's)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--plugin":
            skip = True
        elif not arg.startswith("--plugin="):
            out.append(arg)
    return out


def plugins_from_argv(argv: list[str]) -> list[str]:
    """``--plugin X`` may appear anywhere; plugins must load before flags are known."""
    found = []
    for i, arg in enumerate(argv):
        if arg == "--plugin" and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif arg.startswith("--plugin="):
            found.append(arg.split("=", 1)[1])
    return found


# -------------------------------------------------------------------------
# --store, --benchmark: the commands that read the store
# -------------------------------------------------------------------------


def store_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=default_store(), help="results store: an SQLite file or a database URL, postgresql://user@host/db "
                        "(default: %(default)s; $HARNESS_STORE)")  # fmt: skip


def benchmark_arg(parser: argparse.ArgumentParser, help: str | None = EVERY_BENCHMARK) -> None:
    parser.add_argument("--benchmark", help=help)


def store_parser(command: str, description: str, benchmark: str | None = EVERY_BENCHMARK) -> ArgumentParser:
    """The parser of ``harness COMMAND`` that reads the store: ``--store``, then ``--benchmark`` with
    the help ``benchmark``; the command adds its own flags after them."""
    parser = ArgumentParser(prog=f"{PROG} {command}", description=description)
    store_arg(parser)
    benchmark_arg(parser, benchmark)
    return parser


def existing_store(path: str) -> str:
    """``path`` when it names a store with something in it: a read command never creates one, nor
    writes the schema into an empty file (a missing or empty store is a :class:`UsageError`)."""
    from harness.store import is_empty_file, is_url

    if not is_url(path) and not Path(path).exists():
        raise UsageError(f"no store at {path}; `harness run` creates one (or pass --store)")
    if not is_url(path) and is_empty_file(path):
        raise UsageError(f"no runs in {path}: the store is empty (`harness run` or `harness sweep` fills it)")
    return path


@contextmanager
def open_store(args: argparse.Namespace, check_benchmark: bool = False):
    """The store ``args.store`` names, open (a missing file is a :class:`UsageError`); with
    ``check_benchmark``, an ``args.benchmark`` the store has no run of is one too."""
    from harness.store import Store

    with Store(existing_store(args.store)) as store:
        if check_benchmark:
            from harness.reports.plots import check_benchmark as check

            check(store, args.benchmark)
        yield store


# -------------------------------------------------------------------------
# the workspace: where runs write (run, sweep)
# -------------------------------------------------------------------------

#: the trackers ``--report-to`` accepts (the ``trackers`` plugin, plugins/trackers.py, reads the variable);
#: each one's package and pip extra, ``rlhf-harness[NAME]``, carry its name
REPORT_TO = ("tensorboard", "wandb")
REPORT_TO_ENV = "HARNESS_REPORT_TO"


def report_to(text: str) -> str:
    """``--report-to`` (default ``$HARNESS_REPORT_TO``): comma-separated trackers, or ``none``. An unknown
    name or a tracker that is not installed is a one-line error before any run; the value is exported
    to ``$HARNESS_REPORT_TO``, which the trackers plugin reads as each run starts (and subprocesses inherit)."""
    import importlib.util

    names = list(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip().lower() not in ("", "none")))
    for name in names:
        if name not in REPORT_TO:
            raise UsageError(f"--report-to (or ${REPORT_TO_ENV}): unknown tracker {name!r}{did_you_mean(name, REPORT_TO)}; "
                             f"valid: {', '.join(REPORT_TO)}, none")  # fmt: skip
        if importlib.util.find_spec(name) is None:
            raise UsageError(f"--report-to {name}: {name} is not installed; pip install 'rlhf-harness[{name}]'")
    os.environ[REPORT_TO_ENV] = ",".join(names) or "none"
    return os.environ[REPORT_TO_ENV]


def workspace_args(parser: argparse.ArgumentParser) -> None:
    store_arg(parser)
    parser.add_argument("--results-dir", default="results", help="where run folders go (default: %(default)s)")
    parser.add_argument("--cache-dir", default=None, help="stage cache (default: $HARNESS_CACHE_DIR or ~/.cache/rlhf-harness)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--report-to", type=report_to, default=os.environ.get(REPORT_TO_ENV) or None, metavar="NAMES",
                        help="log every run to trackers: tensorboard, wandb (comma-separated) or none "
                             "(default: $HARNESS_REPORT_TO, else none; into each run folder)")  # fmt: skip
    plugin_arg(parser)


def writable_folder(path: str | Path, flag: str) -> Path:
    """Check, before any work starts, that files can be written in folder ``path`` (a run must
    not build a benchmark for a minute and then find it cannot save). Folders the check makes
    are removed again: a command that stops later leaves nothing behind."""
    import tempfile

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file, not a folder")
    made = next((p for p in [*reversed(path.parents), path] if not p.exists()), None)  # the first folder to make
    try:
        for attempt in range(5):
            try:
                path.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=path, prefix=".harness-write-check-"):
                    pass
                break
            except FileNotFoundError:  # another process's check (a data-parallel rank's) removed the folder meanwhile
                if attempt == 4:
                    raise
    except NotADirectoryError:  # a file on the way: the command's mistake
        raise UsageError(f"{flag} {path}: a file stands where a folder of the path should be") from None
    except OSError as exc:  # read-only, no permission, full: the environment's
        raise FaultError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None
    finally:  # rmdir, never rmtree: another process may already be writing into a folder made here
        for folder in [path, *path.parents] if made is not None else []:
            try:
                folder.rmdir()
            except OSError:
                break
            if folder == made:
                break
    return path


def open_workspace(host, args):
    """The :class:`~harness.running.runner.Workspace` of ``args`` (the workspace flags), its folders checked."""
    from harness.pipeline.cache import CACHE_ENV, StageCache
    from harness.running.runner import Workspace

    writable_folder(args.results_dir, "--results-dir")
    cache = StageCache(args.cache_dir)
    writable_folder(cache.root, "--cache-dir" if args.cache_dir else f"the stage cache (${CACHE_ENV})")
    return Workspace(host, store=args.store, results_dir=args.results_dir, cache=cache,
                     device=args.device, quiet=args.quiet)  # fmt: skip

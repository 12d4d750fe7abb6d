"""The dispatcher of the ``harness`` command: :func:`main` finds the command, runs it and turns
what it raises into one line and an exit code (2 a mistake, 1 a fault, 130 Ctrl-C, 143 SIGTERM),
with warnings on one line and SIGTERM stopping a run as Ctrl-C does.

The core commands come from their plugin, ``harness.cli.commands``, called here on its own: a
core command loads the other plugins only if it needs them (through ``harness.cli.host``), so
``harness cache ls`` does not pay seconds of torch imports; any other command is a plugin's, found
once every plugin is loaded.

Layer: part of ``harness.cli``, the top layer: it may import every lower layer, and the modules of
``harness.cli`` (no module of ``harness.cli`` imports this one).
"""

from __future__ import annotations

import os
import signal
import sys
import warnings

from harness.cli.flags import PROG, without_plugin_flags
from harness.cli.host import CORE_PLUGIN, kept, plugin_host
from harness.errors import FaultError, StoreUnwritable, Terminated, UsageError, did_you_mean

#: set (to anything but 0) for the traceback of an error, as ``--debug`` does
DEBUG_ENV = "HARNESS_DEBUG"

#: ``harness`` and ``harness --help``
USAGE = """The ``harness`` command.

    harness list                                   algorithms, reward models, evaluators, benchmarks, plugin commands
    harness run --algo ppo [--no-kl] [--seeds 0 1 2] [--budget N] [--benchmark B] [--reward-model R]
    harness sweep sweeps/leaderboard.yaml          a grid of algorithms × benchmarks × seeds, then its tables
    harness runs | show RUN | samples | leaderboard [--format md|csv|html|latex] [--code-versions latest|pool|each]
    harness reward-models pairwise ranking         held-out accuracy of reward models at equal annotation budgets
    harness plot [--kind frontier|overoptimisation|curves|all] [--metric KEY ...]   gold vs KL, proxy vs gold, curves (PNG, SVG)
    harness fit [--benchmark B] [--format md|csv|html]   Gao et al.'s over-optimisation forms fitted, with bootstrap CIs
    harness report [--out results/report.html] [--sweep FILE]   one standalone HTML page: tables, plots, fits, samples
    harness cache ls | clear
    harness bench ppo                              speed benchmarks that plugins add (harness bench lists them)

Every command takes --debug (or $HARNESS_DEBUG=1): an error then shows its traceback. Exit codes:
0 done, 1 a fault (a run failed, a folder not writable, a full disk, a bug), 2 a mistake in the
command or its files, 130 Ctrl-C, 143 SIGTERM.
"""


def core_commands():
    """A :class:`~harness.registry.CommandRegistry` holding the core commands alone: their plugin's
    ``harness_register_commands`` called without loading any other plugin."""
    from harness.cli import commands
    from harness.registry import CommandRegistry

    registry = CommandRegistry()
    registry.current_plugin = CORE_PLUGIN
    commands.harness_register_commands(registry)
    return registry


def _plugin_command(argv: list[str]) -> int:
    """A command a plugin registered (``harness bench ppo``), or a group of them (``harness bench``)."""
    host = plugin_host(argv)
    argv = without_plugin_flags(argv)
    command, rest = host.commands.find(argv)
    if command is not None:
        return int(command.run(rest) or 0)
    group = host.commands.group(argv[0])
    if group and (len(argv) == 1 or argv[1] in ("-h", "--help")):
        print(f"harness {argv[0]} <name>: one of")
        for c in group:
            print(f"  harness {c.name:<14} {c.help}  [{c.plugin}]")
        return 0
    if group:
        names = [c.name.split()[1] for c in group]
        raise UsageError(f"unknown {argv[0]} {argv[1]!r}{did_you_mean(argv[1], names)}; valid: {', '.join(names)}")
    valid = host.commands.core_names() + sorted({n.split()[0] for n in host.commands.names() if not host.commands.is_core(n)})
    raise UsageError(f"unknown command {argv[0]!r}{did_you_mean(argv[0], valid)}; valid: {', '.join(valid)}")


def _quiet_libraries() -> None:
    import warnings

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is fetched from a hub at run time
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"{PROG}: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    as_program = argv is None  # the process is the command's: it may end it (see StoreUnwritable)
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        try:
            print(USAGE.strip(), flush=True)
        except BrokenPipeError:  # `harness --help | head -2`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        return 0
    command = argv[0]
    _quiet_libraries()
    from harness.registry import RegistrationError

    previous, format_warning = _stop_on_sigterm(), warnings.formatwarning
    if not debug:
        warnings.formatwarning = _one_line_warning
    try:
        with kept():  # one plugin host for the command, loaded when (if) it needs one
            core = core_commands().find(argv[:1])[0]
            if core is not None:  # a core command gets the whole of its argv, --plugin flags included
                return int(core.run(argv[1:]) or 0)
            return _plugin_command(argv)
    except (UsageError, RegistrationError) as exc:
        if debug:
            raise
        print(f"{PROG} {command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except FaultError as exc:
        if debug:
            raise
        print(f"{PROG} {command}: error: {_one_line(exc)}", file=sys.stderr)
        if isinstance(exc, StoreUnwritable) and as_program:
            # the store's connections were left open: closing them at exit would write into its memory-mapped
            # index (SIGBUS). End here, the one line said.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        return 1
    except KeyboardInterrupt as exc:
        why = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"{PROG} {command}: {why}; the store is consistent (a run in progress is marked interrupted)", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except SystemExit as exc:  # argparse --help
        return int(exc.code or 0)
    except BrokenPipeError:  # the reader went away (`harness show RUN | head -1`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the exit-time flush is quiet too
        return 141
    except OSError as exc:  # the environment: a read-only folder, a full disk, a file where a folder should be
        if debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{PROG} {command}: error: {exc.strerror or _one_line(exc)}{where}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug (ours or a plugin's): one line, the traceback on request
        if debug:
            raise
        print(f"{PROG} {command}: error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug, or {DEBUG_ENV}=1, "
              "for the traceback)", file=sys.stderr)  # fmt: skip
        return 1
    finally:
        warnings.formatwarning = format_warning
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (a multi-line message is joined, not cut)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _stop_on_sigterm():
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt): the run in progress is stored as
    interrupted, as with Ctrl-C. Returns the handler it replaced (``None`` off the main thread,
    where handlers cannot be set)."""

    def terminate(signum, frame):
        raise Terminated("interrupted by SIGTERM")

    try:
        return signal.signal(signal.SIGTERM, terminate)
    except ValueError:
        return None

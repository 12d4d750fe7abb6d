"""The ``harness`` command line (``harness --help`` lists the commands): the top layer, which may
import every other part of the harness, and which nothing below it imports.

    dispatch        main(): finds the command, runs it, errors → one line and an exit code
    commands        the core commands, registered as a plugin (harness_register_commands)
    flags           the shared flag vocabulary: the parser class, --store, --plugin, workspace flags, checks
    host            the plugin host, loaded once and only by a command that needs it
    run             harness run (parse_run: flags → run specs)
    inspect         harness list, runs, show, samples
    tables          harness leaderboard, plot, fit, report
    sweep, cache, data, reward_models: one command each
"""

from harness.cli.dispatch import DEBUG_ENV, USAGE, main
from harness.cli.flags import PROG, REPORT_TO, REPORT_TO_ENV, STORE_ENV, ArgumentParser, writable_folder
from harness.cli.run import parse_run

__all__ = ["DEBUG_ENV", "PROG", "REPORT_TO", "REPORT_TO_ENV", "STORE_ENV", "USAGE", "ArgumentParser", "main", "parse_run",
           "writable_folder"]  # fmt: skip

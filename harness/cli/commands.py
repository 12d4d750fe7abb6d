"""The core commands, as a plugin: ``harness run``, ``list``, ``sweep``, … are registered through
the same ``harness_register_commands`` hook a third-party plugin uses (as datasette's built-in
commands are plugins too). Registered with ``core=True``: their names are reserved, and a plugin
that takes one (or a group under one) is refused with an error naming both plugins.

It is registered through the ``harness`` entry-point group, like the built-in plugins; the
dispatcher (``harness.cli.dispatch``) also calls it alone, without loading the other plugins, so
that a light command (``harness cache ls``) starts fast.

Layer: part of ``harness.cli``, the top layer: it imports the command modules of ``harness.cli``
(each imports its heavy dependencies lazily) and ``harness.hookimpl``.
"""

from __future__ import annotations

from harness import hookimpl
from harness.cli.cache import cmd_cache
from harness.cli.data import data_command
from harness.cli.inspect import cmd_list, cmd_runs, cmd_samples, cmd_show
from harness.cli.reward_models import cmd_reward_models
from harness.cli.run import cmd_run
from harness.cli.sweep import cmd_sweep
from harness.cli.tables import cmd_fit, cmd_leaderboard, cmd_plot, cmd_report

#: name → (command, one-line help), in the order ``harness`` lists them
CORE_COMMANDS = {
    "list": (cmd_list, "algorithms, reward models, evaluators, benchmarks, plugin commands"),
    "run": (cmd_run, "train one algorithm on one benchmark, per seed; evaluate; store"),
    "runs": (cmd_runs, "list stored runs"),
    "show": (cmd_show, "one run: spec, metrics, curve summary, samples"),
    "leaderboard": (cmd_leaderboard, "mean and 95% CI over seeds, one row per experiment"),
    "samples": (cmd_samples, "held-out samples of finished runs, as markdown"),
    "cache": (cmd_cache, "the stage cache: ls | clear"),
    "sweep": (cmd_sweep, "a grid of algorithms × benchmarks × seeds from a YAML file, then its tables"),
    "reward-models": (cmd_reward_models, "held-out accuracy of reward models at equal annotation budgets"),
    "data": (data_command, "look at a dataset through a format adapter"),
    "plot": (cmd_plot, "gold vs KL, proxy vs gold, training curves (PNG, SVG)"),
    "fit": (cmd_fit, "Gao et al.'s over-optimisation forms fitted, with bootstrap CIs"),
    "report": (cmd_report, "one standalone HTML page: tables, plots, fits, samples"),
}


@hookimpl
def harness_register_commands(commands) -> None:
    for name, (run, help) in CORE_COMMANDS.items():
        commands.add(name, run, help, core=True)

"""The hook specifications: the only extension points of the harness.

A plugin is a module (or object) with functions named like these and marked with
``@harness.hookimpl``. Implementations take only the arguments they use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness import hookspec

if TYPE_CHECKING:
    from harness.api import RunInfo
    from harness.registry import CommandRegistry, Registry

# -------------------------------------------------------------------------
# registration: called once, when the plugin manager is built
# -------------------------------------------------------------------------


@hookspec
def harness_register_algorithms(registry: Registry) -> None:
    """Register policy optimizers (algorithms).

    Called once at start-up, after every plugin is loaded. Add each algorithm with
    ``registry.add(MyOptimizer)``: a subclass of :class:`harness.api.PolicyOptimizer` with a
    unique ``name``. A name registered by two plugins is an error naming both.

    :param registry: the algorithm registry.
    :returns: nothing; the registry holds what was added.
    """


@hookspec
def harness_register_reward_models(registry: Registry) -> None:
    """Register reward models.

    Called once at start-up. Add subclasses of :class:`harness.api.RewardModel` with
    ``registry.add(cls)``.

    :param registry: the reward-model registry.
    :returns: nothing.
    """


@hookspec
def harness_register_evaluators(registry: Registry) -> None:
    """Register evaluators.

    Called once at start-up. Add subclasses of :class:`harness.api.Evaluator` with
    ``registry.add(cls)``. Every registered evaluator runs after every run.

    :param registry: the evaluator registry.
    :returns: nothing.
    """


@hookspec
def harness_register_benchmarks(registry: Registry) -> None:
    """Register benchmarks.

    Called once at start-up. Add subclasses of :class:`harness.api.Benchmark` with
    ``registry.add(cls)``.

    :param registry: the benchmark registry.
    :returns: nothing.
    """


@hookspec
def harness_register_commands(commands: CommandRegistry) -> None:
    """Register CLI commands (as datasette's ``register_commands`` does).

    Called once at start-up, after every plugin is loaded, with the other registration hooks.
    Add each with ``commands.add("bench ppo", main, "one-line help")``:
    ``harness bench ppo ARGS...`` then calls ``main(ARGS)`` and exits with what it returns. A
    name is one or two words; ``harness bench`` lists the commands of the group ``bench``. Core
    command names are reserved; a name registered twice is an error naming both plugins.

    :param commands: the command registry.
    :returns: nothing.
    """


# -------------------------------------------------------------------------
# run lifecycle: for trackers (TensorBoard, W&B, MLflow) and custom reports
# -------------------------------------------------------------------------


@hookspec
def harness_run_started(run: RunInfo) -> None:
    """Called when a run has been stored as ``running``, before its optimizer starts.

    :param run: the run's id, name, benchmark, algorithm, configs, seed and folder, its full
        spec (``run.spec``) and the spec's key (``run.spec_key``: the experiment and code version).
    :returns: nothing.
    """


@hookspec
def harness_metrics_logged(run: RunInfo, step: int, metrics: dict[str, float]) -> None:
    """Called each time an optimizer logs training metrics, after they are stored.

    :param run: the run.
    :param step: the optimizer's step (e.g. PPO update index), increasing.
    :param metrics: namespaced metric values (``objective/kl``, ``loss/policy``...).
    :returns: nothing.
    """


@hookspec
def harness_run_finished(run: RunInfo, status: str, metrics: dict[str, float], error: Any) -> None:
    """Called when a run ends, after its final state is stored.

    :param run: the run.
    :param status: ``finished``, ``failed`` or ``interrupted``.
    :param metrics: the final evaluation metrics (empty unless ``finished``).
    :param error: the error message of a failed or interrupted run, else ``None``.
    :returns: nothing.
    """

"""Experiment trackers on the run lifecycle hooks: TensorBoard and Weights & Biases, as TRL's ``report_to``.

Off by default. ``harness run --report-to tensorboard,wandb`` (``harness sweep`` too) turns them on
for every run of the command; the flag sets ``$HARNESS_REPORT_TO``, which is what this plugin reads at
the start of each run (so subprocesses inherit it, and setting it in the environment works without
the flag). ``none`` or empty: off.

- ``tensorboard`` (``pip install 'rlhf-harness[tensorboard]'``) writes ``<run folder>/tensorboard/``:
  every logged metric as a scalar at its step, its key as the tag (``loss/policy``, ``objective/kl``,
  ``checkpoint/gold``); the run spec, flattened, as a text table (``config``); when the run ends, the
  final metrics as scalars at the last step, the flattened spec as HParams with those metrics and
  the run's status (``status``, also as text). ``tensorboard --logdir results/runs`` compares runs.
- ``wandb`` (``pip install 'rlhf-harness[wandb]'``) makes one W&B run per harness run: project
  ``$WANDB_PROJECT`` (default ``rlhf-harness``), the harness run's name and id, the run spec as config,
  grouped by the spec key (the seeds of one experiment), its files under the run folder; every logged
  metric with its step (a metric ``step``: every chart's x-axis); the final metrics in the summary;
  finished with exit code 0, 1 when the run failed, 255 when it was interrupted. W&B's own variables
  (``WANDB_MODE=offline``, ``WANDB_ENTITY``, ``WANDB_RUN_GROUP``...) apply as usual.

A tracker that fails (a full disk, W&B unreachable) never fails the run: one warning, and that
tracker is off for the rest of the run. Trackers only observe: a run's spec, key and results are the
same with or without them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from typing import Any, ClassVar

from harness.api import RunInfo, hookimpl

#: the variable ``--report-to`` sets: comma-separated tracker names
REPORT_TO_ENV = "HARNESS_REPORT_TO"
#: W&B's project when ``$WANDB_PROJECT`` is not set
DEFAULT_WANDB_PROJECT = "rlhf-harness"


def _warn(message: str) -> None:
    print(f"harness: warning: {message}", file=sys.stderr)


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        _warn(message)


def flatten(value: Any, prefix: str = "") -> dict[str, bool | int | float | str]:
    """A nested config as ``{"algorithm.config.kl_coef": 0.05, ...}``: the values TensorBoard's
    HParams take (numbers, booleans, strings); lists as JSON, ``None`` as ``"None"``.

    >>> flatten({"seed": 0, "algorithm": {"name": "ppo", "config": {"lr": 1e-5, "sizes": [1, 2], "init": None}}})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'seed': 0, 'algorithm.name': 'ppo', 'algorithm.config.lr': 1e-05,
     'algorithm.config.sizes': '[1, 2]', 'algorithm.config.init': 'None'}
    """
    if isinstance(value, dict) and (value or not prefix):
        out: dict[str, bool | int | float | str] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, (bool, int, float, str)):
        return {prefix: value}
    if value is None:
        return {prefix: "None"}
    return {prefix: json.dumps(value, default=str)}


# -------------------------------------------------------------------------
# the trackers: one object per run, created when the run starts
# -------------------------------------------------------------------------


class Tracker:
    """One run's connection to a tracker. Any method may raise: the plugin then warns and stops
    calling it (after a best-effort :meth:`abort`)."""

    name: ClassVar[str]
    #: the module whose presence means the pip extra ``rlhf-harness[<name>]`` is installed
    package: ClassVar[str]

    def __init__(self, run: RunInfo):
        self.run = run

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Training metrics at ``step``."""

    def finish(self, status: str, metrics: dict[str, float], error: str | None) -> None:
        """The run ended (``finished``, ``failed`` or ``interrupted``) with these final metrics."""

    def abort(self) -> None:
        """Release what is held after a failure."""


class TensorBoard(Tracker):
    name = "tensorboard"
    package = "tensorboard"

    def __init__(self, run: RunInfo):
        from torch.utils.tensorboard import SummaryWriter

        super().__init__(run)
        self.config = flatten(run.spec)
        self.step = 0
        self.writer = SummaryWriter(log_dir=str(run.run_dir / "tensorboard"), flush_secs=10)
        try:
            self.writer.add_text("config", self._config_markdown(), global_step=0)
        except BaseException:
            self.writer.close()
            raise

    def _config_markdown(self) -> str:
        rows = [("run", self.run.name), ("run id", self.run.run_id), ("spec key", self.run.spec_key)]
        rows += list(self.config.items())
        cells = [(key, str(value).replace("|", r"\|")) for key, value in rows]  # a "|" would end the cell
        return "\n".join(["| key | value |", "| --- | --- |"] + [f"| {key} | {value} |" for key, value in cells])

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=step)
        self.step = max(self.step, step)

    def finish(self, status: str, metrics: dict[str, float], error: str | None) -> None:
        from torch.utils.tensorboard.summary import hparams

        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=self.step)
        # The HParams summaries go into this run's own event file (SummaryWriter.add_hparams would
        # write a second, timestamped run and always mark it a success).
        experiment, session_start, _ = hparams(self.config, dict(metrics))
        for summary in (experiment, session_start, _session_end(status)):
            self.writer.file_writer.add_summary(summary, global_step=self.step)
        self.writer.add_text("status", status + (f": {error}" if error else ""), global_step=self.step)
        self.writer.close()

    def abort(self) -> None:
        self.writer.close()


def _session_end(status: str):
    """The HParams ``SessionEndInfo`` summary with the run's status (the text ``status`` tells
    a failed run from an interrupted one: HParams has no status for the latter)."""
    import time

    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    code = api_pb2.STATUS_SUCCESS if status == "finished" else api_pb2.STATUS_FAILURE
    content = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=code, end_time_secs=time.time()),
        version=metadata.PLUGIN_DATA_VERSION,
    )
    plugin = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=content.SerializeToString())
    return Summary(value=[Summary.Value(tag=metadata.SESSION_END_INFO_TAG, metadata=SummaryMetadata(plugin_data=plugin))])


class WandB(Tracker):
    name = "wandb"
    package = "wandb"
    #: W&B's convention: 0 finished, 1 failed, 255 killed by Ctrl-C
    EXIT_CODES: ClassVar[dict[str, int]] = {"finished": 0, "failed": 1, "interrupted": 255}
    #: the x-axis of every metric: the step the optimizer logged it at (as ``step`` in log.txt)
    STEP = "step"

    def __init__(self, run: RunInfo):
        import wandb

        super().__init__(run)
        # "create_new": every harness run is its own W&B run, also in a sweep (one process), and
        # a W&B run the user's own code holds is left alone.
        self.wb = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or DEFAULT_WANDB_PROJECT,
            name=run.name,
            id=run.run_id,
            group=os.environ.get("WANDB_RUN_GROUP") or run.spec_key or None,
            config=run.spec,
            dir=str(run.run_dir),
            reinit="create_new",
        )
        # The harness's step is a metric that every other one is plotted against, not W&B's own
        # step: W&B drops a row logged at a step below its last, and the checkpoint points are
        # logged after training, from step 0 on (TRL does the same with train/global_step).
        self.wb.define_metric(self.STEP)
        self.wb.define_metric("*", step_metric=self.STEP)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.wb.log({**metrics, self.STEP: step})

    def finish(self, status: str, metrics: dict[str, float], error: str | None) -> None:
        self.wb.summary.update(dict(metrics))  # W&B stores a NaN (no gold reward) as null
        if error:
            self.wb.summary["error"] = error
        self.wb.finish(exit_code=self.EXIT_CODES.get(status, 1))

    def abort(self) -> None:
        self.wb.finish(exit_code=1)


#: every tracker ``--report-to`` accepts, by name
TRACKERS: dict[str, type[Tracker]] = {cls.name: cls for cls in (TensorBoard, WandB)}


def requested(value: str | None = None) -> list[type[Tracker]]:
    """The trackers ``value`` (default: ``$HARNESS_REPORT_TO``) asks for that can run here. An
    unknown name, or a tracker whose package is missing, is skipped with a warning (the CLI refuses
    both before any run; this is for a variable set by hand)."""
    if value is None:
        value = os.environ.get(REPORT_TO_ENV, "")
    names = [n.strip().lower() for n in value.split(",") if n.strip()]
    found = []
    for name in dict.fromkeys(n for n in names if n != "none"):
        cls = TRACKERS.get(name)
        if cls is None:
            _warn_once(f"${REPORT_TO_ENV}: unknown tracker {name!r} ignored; valid: {', '.join(TRACKERS)}, none")
        elif importlib.util.find_spec(cls.package) is None:
            _warn_once(f"${REPORT_TO_ENV}: {name} is not installed (pip install 'rlhf-harness[{name}]'); not tracking")
        else:
            found.append(cls)
    return found


# -------------------------------------------------------------------------
# the hooks: a failing tracker is turned off for its run, never fails it
# -------------------------------------------------------------------------


class _Guarded:
    """One run's tracker, turned off (with one warning) at its first exception."""

    def __init__(self, cls: type[Tracker], run: RunInfo):
        self.name, self.run = cls.name, run
        self.tracker: Tracker | None = None
        self.call(lambda: setattr(self, "tracker", cls(run)))

    def call(self, action) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - whatever a tracker raises, the run goes on
            _warn(f"the {self.name} tracker failed in run {self.run.name} ({type(exc).__name__}: {exc}); "
                  "it is off for the rest of this run (the run goes on)")  # fmt: skip
            tracker, self.tracker = self.tracker, None
            if tracker is not None:
                with contextlib.suppress(Exception):  # best effort: it has failed already
                    tracker.abort()

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self.tracker is not None:
            self.call(lambda: self.tracker.log(step, metrics))

    def finish(self, status: str, metrics: dict[str, float], error: str | None) -> None:
        if self.tracker is not None:
            self.call(lambda: self.tracker.finish(status, metrics, error))
            self.tracker = None


#: the trackers of each run in progress, by run id (a sweep runs many in one process)
_active: dict[str, list[_Guarded]] = {}


@hookimpl
def harness_run_started(run: RunInfo) -> None:
    trackers = [_Guarded(cls, run) for cls in requested()]
    _active[run.run_id] = [t for t in trackers if t.tracker is not None]


@hookimpl
def harness_metrics_logged(run: RunInfo, step: int, metrics: dict[str, float]) -> None:
    for tracker in _active.get(run.run_id, ()):
        tracker.log(step, metrics)


@hookimpl
def harness_run_finished(run: RunInfo, status: str, metrics: dict[str, float], error: Any) -> None:
    for tracker in _active.pop(run.run_id, ()):
        tracker.finish(status, metrics, None if error is None else str(error))

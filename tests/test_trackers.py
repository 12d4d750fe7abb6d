"""The TensorBoard and W&B trackers (plugins/trackers.py): the lifecycle hooks driven as the runner
drives them, then what was written read back; W&B always offline."""

from __future__ import annotations

import importlib.metadata
import json
import struct
import sys
import time
import uuid
from pathlib import Path

import pluggy
import pytest
from harness_plugins import trackers

from harness import PROJECT, hookspecs
from harness.api import RunInfo
from harness.cli import REPORT_TO, main
from tests.conftest import TINY_FLAGS, make_spec

CURVE = [(1, {"loss/policy": 0.5, "objective/kl": 0.01}), (2, {"loss/policy": 0.25, "objective/kl": 0.02}),
         (3, {"loss/policy": 0.125, "checkpoint/gold": 0.75})]  # fmt: skip
FINAL = {"eval/gold": 0.6, "eval/kl": 1.5, "eval/win_rate": 0.55}


@pytest.fixture(autouse=True)
def environment(tmp_path, monkeypatch):
    """Trackers off unless a test turns them on (restored afterwards, also when the CLI exported
    it), and W&B offline, writing only under tmp_path."""
    monkeypatch.setenv(trackers.REPORT_TO_ENV, "none")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home"))
    for var in ("WANDB_PROJECT", "WANDB_RUN_GROUP", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def hook():
    """The lifecycle hooks with the trackers plugin registered, called as the runner calls them."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(trackers)
    return pm.hook


def run_info(tmp_path: Path, seed: int = 0) -> RunInfo:
    """A RunInfo as the runner builds it, its folder made."""
    spec = make_spec(seed=seed)
    run_id = uuid.uuid4().hex[:12]
    name = f"sentiment__ppo__{seed}__20250101-000000"
    run_dir = tmp_path / "results" / "runs" / f"{name}__{run_id}"
    run_dir.mkdir(parents=True)
    return RunInfo(run_id, name, spec.benchmark.name, spec.algorithm.name, spec.reward_model.name, spec.seed,
                   spec.algorithm.config, run_dir, spec.to_dict(), spec.key)  # fmt: skip


def not_installed(monkeypatch, name: str) -> None:
    """Make ``import name`` fail (and ``find_spec`` find nothing) for one test. The real module is
    imported first, so that the one put back afterwards is the same (a re-import would make a
    second, broken copy of wandb)."""
    __import__(name)
    monkeypatch.setitem(sys.modules, name, None)


def drive(hook, run: RunInfo, status: str = "finished", curve=CURVE, final=FINAL, error=None) -> None:
    hook.harness_run_started(run=run)
    for step, metrics in curve:
        hook.harness_metrics_logged(run=run, step=step, metrics=metrics)
    hook.harness_run_finished(run=run, status=status, metrics=final if status == "finished" else {}, error=error)


# -------------------------------------------------------------------------
# reading back what was written
# -------------------------------------------------------------------------


def tensorboard_events(run: RunInfo):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = run.run_dir / "tensorboard"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1  # one event file: the run is one TensorBoard run
    return EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0}).Reload()


def scalars(events, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in events.Scalars(tag)]


def text(events, tag: str) -> str:
    (event,) = events.Tensors(f"{tag}/text_summary")
    return event.tensor_proto.string_val[0].decode()


def hparams_data(events) -> dict:
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = {}
    for tag, content in events.PluginTagToContent("hparams").items():
        data = plugin_data_pb2.HParamsPluginData()
        data.ParseFromString(content)
        out[tag.split("/")[-1]] = data
    return out


def wandb_records(run: RunInfo, timeout: float = 60.0) -> list:
    """The records of the run's offline ``.wandb`` file, once W&B's service has written them all
    (``finish`` returns before it does; the last record is the run's exit)."""
    deadline = time.monotonic() + timeout
    while True:
        (path,) = run.run_dir.glob(f"wandb/offline-run-*-{run.run_id}/run-{run.run_id}.wandb")
        records = _read_records(path.read_bytes())
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def _read_records(data: bytes) -> list:
    """A ``.wandb`` file's records: a LevelDB-style log (32 KiB blocks of CRC, length, type
    chunks) of protobuf records after a 7-byte header; wandb 0.31 ships no Python reader for it."""
    from wandb.proto import wandb_internal_pb2

    block = 32 * 1024
    assert data[:4] == b":W&B"
    records, pos, pending = [], 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 or pos + 7 + length > len(data):  # zero padding, or a chunk not written yet
            break
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            records.append(wandb_internal_pb2.Record.FromString(pending))
            pending = b""
    return records


def wandb_run(run: RunInfo) -> dict:
    """What the offline W&B run holds: its identity, config, history rows, summary, exit code."""

    def key(item) -> str:
        return item.key or "/".join(item.nested_key)

    out = {"history": [], "summary": {}, "exit_code": None}
    for record in wandb_records(run):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            out.update(id=r.run_id, name=r.display_name, project=r.project, group=r.run_group,
                       config={u.key: json.loads(u.value_json) for u in r.config.update if u.key != "_wandb"})  # fmt: skip
        elif kind == "history":
            row = {key(item): json.loads(item.value_json) for item in record.history.item}
            out["history"].append({k: v for k, v in row.items() if not k.startswith("_")})  # W&B's own keys left out
        elif kind == "summary":
            out["summary"].update({key(item): json.loads(item.value_json) for item in record.summary.update})
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out


# -------------------------------------------------------------------------
# registration and selection
# -------------------------------------------------------------------------


def test_registered_through_the_harness_entry_point_group():
    (ep,) = [ep for ep in importlib.metadata.entry_points(group="harness") if ep.name == "trackers"]
    assert ep.value == "harness_plugins.trackers" and ep.load() is trackers


def test_the_cli_accepts_exactly_the_plugins_trackers():
    assert set(REPORT_TO) == set(trackers.TRACKERS)


def test_off_by_default(tmp_path, hook, monkeypatch, capsys):
    for value in (None, "", "none", "NONE"):
        if value is None:
            monkeypatch.delenv(trackers.REPORT_TO_ENV)
        else:
            monkeypatch.setenv(trackers.REPORT_TO_ENV, value)
        run = run_info(tmp_path)
        drive(hook, run)
        assert sorted(p.name for p in run.run_dir.iterdir()) == []
        assert trackers._active == {} and capsys.readouterr().err == ""


def test_a_variable_set_by_hand_with_an_unknown_or_missing_tracker_warns_and_runs(tmp_path, hook, monkeypatch, capsys):
    """Outside the CLI nothing refuses the variable: the run goes on, with one warning per mistake."""
    monkeypatch.setattr(trackers, "_warned", set())
    not_installed(monkeypatch, "wandb")
    monkeypatch.setenv(trackers.REPORT_TO_ENV, "mlflow,wandb")
    for _ in range(2):
        drive(hook, run_info(tmp_path))
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "harness: warning: $HARNESS_REPORT_TO: unknown tracker 'mlflow' ignored; valid: tensorboard, wandb, none",
        "harness: warning: $HARNESS_REPORT_TO: wandb is not installed (pip install 'rlhf-harness[wandb]'); not tracking",
    ]


# -------------------------------------------------------------------------
# TensorBoard
# -------------------------------------------------------------------------


def test_tensorboard_writes_every_metric_at_its_step_the_config_and_the_final_metrics(tmp_path, hook, monkeypatch):
    monkeypatch.setenv(trackers.REPORT_TO_ENV, "tensorboard")
    run = run_info(tmp_path)
    drive(hook, run)
    events = tensorboard_events(run)
    assert scalars(events, "loss/policy") == [(1, 0.5), (2, 0.25), (3, 0.125)]
    assert scalars(events, "objective/kl") == [(1, pytest.approx(0.01)), (2, pytest.approx(0.02))]
    assert scalars(events, "checkpoint/gold") == [(3, 0.75)]
    # the final metrics at the last step, where TensorBoard's HParams table finds them
    assert {tag: scalars(events, tag) for tag in FINAL} == {tag: [(3, pytest.approx(v))] for tag, v in FINAL.items()}

    config = text(events, "config")
    assert f"| run id | {run.run_id} |" in config and f"| spec key | {run.spec_key} |" in config
    assert "| algorithm.config.kl_coef | 0.05 |" in config and "| benchmark.name | sentiment |" in config
    assert text(events, "status") == "finished"

    hp = hparams_data(events)
    start = hp["session_start_info"].session_start_info.hparams
    assert start["algorithm.config.kl_coef"].number_value == pytest.approx(0.05)
    assert start["algorithm.name"].string_value == "ppo" and start["seed"].number_value == 0
    assert start["code.harness"].string_value == "c0ffee"
    assert set(start) == set(trackers.flatten(run.spec))
    assert {m.name.tag for m in hp["experiment"].experiment.metric_infos} == set(FINAL)
    from tensorboard.plugins.hparams import api_pb2

    assert hp["session_end_info"].session_end_info.status == api_pb2.STATUS_SUCCESS


@pytest.mark.parametrize("status, expected", [("failed", "STATUS_FAILURE"), ("interrupted", "STATUS_FAILURE")])
def test_tensorboard_closes_a_failed_or_interrupted_run_with_its_status(tmp_path, hook, monkeypatch, status, expected):
    from tensorboard.plugins.hparams import api_pb2

    monkeypatch.setenv(trackers.REPORT_TO_ENV, "tensorboard")
    run = run_info(tmp_path)
    drive(hook, run, status=status, curve=CURVE[:2], error="NonFiniteError: loss/policy is nan at step 3")
    events = tensorboard_events(run)
    assert scalars(events, "loss/policy") == [(1, 0.5), (2, 0.25)]  # what was logged is there (flushed, closed)
    assert text(events, "status") == f"{status}: NonFiniteError: loss/policy is nan at step 3"
    assert hparams_data(events)["session_end_info"].session_end_info.status == api_pb2.Status.Value(expected)
    assert trackers._active == {}


def test_flatten_gives_hparams_values_only():
    flat = trackers.flatten({"a": {"b": [1, {"c": 2}], "d": None, "e": {}, "f": True}, "g": "x"})
    assert flat == {"a.b": '[1, {"c": 2}]', "a.d": "None", "a.e": "{}", "a.f": True, "g": "x"}


# -------------------------------------------------------------------------
# Weights & Biases (offline)
# -------------------------------------------------------------------------


def test_wandb_offline_run_holds_the_config_every_metric_and_the_summary(tmp_path, hook, monkeypatch):
    monkeypatch.setenv(trackers.REPORT_TO_ENV, "wandb")
    run = run_info(tmp_path)
    drive(hook, run)
    wb = wandb_run(run)
    assert (wb["id"], wb["name"], wb["project"], wb["group"]) == (run.run_id, run.name, "rlhf-harness", run.spec_key)
    assert wb["config"] == run.spec
    assert wb["history"] == [{"step": step, **metrics} for step, metrics in CURVE]
    assert {k: wb["summary"][k] for k in FINAL} == pytest.approx(FINAL)
    assert wb["exit_code"] == 0


@pytest.mark.parametrize("status, code", [("failed", 1), ("interrupted", 255)])
def test_wandb_marks_a_failed_or_interrupted_run(tmp_path, hook, monkeypatch, status, code):
    monkeypatch.setenv(trackers.REPORT_TO_ENV, "wandb")
    monkeypatch.setenv("WANDB_PROJECT", "mine")
    run = run_info(tmp_path)
    drive(hook, run, status=status, curve=CURVE[:1], error="RuntimeError: boom")
    wb = wandb_run(run)
    assert wb["project"] == "mine" and wb["exit_code"] == code
    assert wb["summary"]["error"] == "RuntimeError: boom" and "eval/gold" not in wb["summary"]


def test_points_logged_after_training_at_earlier_steps_are_kept(tmp_path, hook, monkeypatch):
    """The runner logs the checkpoint points (π_sft at step 0, then each snapshot) after training:
    W&B would drop a row below its last step, so the harness's step is a metric of its own there."""
    monkeypatch.setenv(trackers.REPORT_TO_ENV, "tensorboard,wandb")
    run = run_info(tmp_path)
    points = [(0, {"checkpoint/gold": 0.1}), (2, {"checkpoint/gold": 0.2}), (3, {"checkpoint/gold": 0.3})]
    drive(hook, run, curve=CURVE[:2] + points)
    events = tensorboard_events(run)
    assert scalars(events, "checkpoint/gold") == [(0, pytest.approx(0.1)), (2, pytest.approx(0.2)), (3, pytest.approx(0.3))]
    assert scalars(events, "loss/policy") == [(1, 0.5), (2, 0.25)]
    assert scalars(events, "eval/gold") == [(3, pytest.approx(0.6))]
    assert wandb_run(run)["history"] == [{"step": step, **metrics} for step, metrics in CURVE[:2] + points]


# -------------------------------------------------------------------------
# several runs in one process; a failing tracker
# -------------------------------------------------------------------------


def test_each_run_of_a_sweep_gets_its_own_writer_and_wandb_run(tmp_path, hook, monkeypatch):
    monkeypatch.setenv(trackers.REPORT_TO_ENV, "tensorboard,wandb")
    runs = [run_info(tmp_path, seed) for seed in (0, 1)]
    hook.harness_run_started(run=runs[0])
    hook.harness_run_started(run=runs[1])  # even overlapping runs stay apart
    for step, (run, value) in enumerate([(runs[0], 1.0), (runs[1], 2.0), (runs[0], 3.0)]):
        hook.harness_metrics_logged(run=run, step=step, metrics={"loss/policy": value})
    for run in runs:
        hook.harness_run_finished(run=run, status="finished", metrics={"eval/gold": float(run.seed)}, error=None)
    assert scalars(tensorboard_events(runs[0]), "loss/policy") == [(0, 1.0), (2, 3.0)]
    assert scalars(tensorboard_events(runs[1]), "loss/policy") == [(1, 2.0)]
    wb = [wandb_run(run) for run in runs]
    assert [w["id"] for w in wb] == [r.run_id for r in runs] and wb[0]["group"] == wb[1]["group"]  # one experiment
    assert [w["history"] for w in wb] == [[{"step": 0, "loss/policy": 1.0}, {"step": 2, "loss/policy": 3.0}],
                                          [{"step": 1, "loss/policy": 2.0}]]  # fmt: skip
    assert [w["summary"]["eval/gold"] for w in wb] == [0.0, 1.0] and trackers._active == {}


def test_a_failing_tracker_warns_once_and_never_fails_the_run(tmp_path, hook, monkeypatch, capsys):
    from torch.utils.tensorboard import SummaryWriter

    calls = []

    def disk_full(self, *args, **kwargs):
        calls.append(args)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SummaryWriter, "add_scalar", disk_full)
    monkeypatch.setenv(trackers.REPORT_TO_ENV, "tensorboard,wandb")
    run = run_info(tmp_path)
    drive(hook, run)  # raises nothing
    err = capsys.readouterr().err.strip().splitlines()
    warning = (f"harness: warning: the tensorboard tracker failed in run {run.name} (OSError: [Errno 28] No space left on "
               "device); it is off for the rest of this run (the run goes on)")  # fmt: skip
    assert err == [warning]
    assert len(calls) == 1  # off after the first failure
    assert wandb_run(run)["exit_code"] == 0  # the other tracker went on

    def unreachable(*args, **kwargs):
        raise ConnectionError("W&B is unreachable")

    import wandb

    monkeypatch.setattr(wandb, "init", unreachable)
    monkeypatch.setenv(trackers.REPORT_TO_ENV, "wandb")
    drive(hook, run_info(tmp_path))
    assert "the wandb tracker failed in run" in capsys.readouterr().err
    assert trackers._active == {}


# -------------------------------------------------------------------------
# the CLI flag
# -------------------------------------------------------------------------


def one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"harness {command}: error: ")
    return err[0]


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_an_unknown_tracker_is_refused_before_any_run(tmp_path, capsys, command):
    args = ["--algo", "sft"] if command == "run" else [str(tmp_path / "sweep.yaml")]
    argv = [command, *args, "--report-to", "tensorbord,wandb", "--store", str(tmp_path / "s.sqlite")]
    assert main(argv) == 2
    expected = "unknown tracker 'tensorbord' (did you mean 'tensorboard'?); valid: tensorboard, wandb, none"
    assert one_error_line(capsys, command).endswith(f"--report-to (or $HARNESS_REPORT_TO): {expected}")
    assert not (tmp_path / "s.sqlite").exists()


def test_a_tracker_that_is_not_installed_names_its_extra(tmp_path, capsys, monkeypatch):
    not_installed(monkeypatch, "wandb")
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--report-to", "tensorboard,wandb"]) == 2
    assert one_error_line(capsys, "sweep").endswith(
        "--report-to wandb: wandb is not installed; pip install 'rlhf-harness[wandb]'"
    )
    monkeypatch.setenv(trackers.REPORT_TO_ENV, "wandb")  # the variable is checked the same way
    assert main(["sweep", str(tmp_path / "sweep.yaml")]) == 2
    assert "pip install 'rlhf-harness[wandb]'" in one_error_line(capsys, "sweep")


def test_the_flag_sets_the_variable(tmp_path, capsys, monkeypatch):
    """``--report-to`` exports $HARNESS_REPORT_TO (what the plugin reads, and subprocesses inherit)."""
    import os

    missing = str(tmp_path / "missing.yaml")
    for value, exported in [(" TensorBoard, wandb,tensorboard", "tensorboard,wandb"), ("none", "none"), ("", "none")]:
        assert main(["sweep", missing, "--report-to", value]) == 2  # gets past the flag to the missing file
        assert "missing.yaml" in one_error_line(capsys, "sweep")
        assert os.environ[trackers.REPORT_TO_ENV] == exported
        assert [cls.name for cls in trackers.requested()] == [n for n in exported.split(",") if n != "none"]


def test_harness_run_report_to_tensorboard_and_wandb_end_to_end(tmp_path, cache_dir, capsys):
    from harness.store import Store

    store = tmp_path / "s.sqlite"
    argv = ["run", "--algo", "ppo", "--budget", "64", "--report-to", "tensorboard,wandb", "--store", str(store),
            "--results-dir", str(tmp_path / "results"), "--quiet", *TINY_FLAGS]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr()
    with Store(store) as s:
        (stored,) = s.list_runs()
        curve = s.curves(stored.run_id)
    run = RunInfo(stored.run_id, stored.name, "", "", "", 0, {}, Path(stored.run_dir))
    events = tensorboard_events(run)
    loss = sorted(tag for tag in events.Tags()["scalars"] if tag.startswith("loss/"))
    assert loss and set(loss) == {key for key in curve.columns if key.startswith("loss/")}
    logged = curve[curve[loss[0]].notna()]  # the stored curve, wide: NaN where a step did not log this key
    assert scalars(events, loss[0]) == [(int(step), pytest.approx(v)) for step, v in zip(logged["step"], logged[loss[0]])]
    evals = {tag: scalars(events, tag)[-1][1] for tag in events.Tags()["scalars"] if tag.startswith("eval/")}
    assert evals and evals == pytest.approx({k: v for k, v in stored.metrics.items() if k.startswith("eval/")}, nan_ok=True)
    wb = wandb_run(run)
    assert wb["exit_code"] == 0 and wb["config"]["algorithm"]["name"] == "ppo"
    assert sorted({row["step"] for row in wb["history"]}) == [int(step) for step in curve["step"]]
    assert wb["summary"]["eval/gold"] == pytest.approx(stored.metrics["eval/gold"])

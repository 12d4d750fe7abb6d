"""`harness sweep --executor ray`: the same runs as the local executor, each stored once by the
driver, a killed worker retried and then stored failed. One local Ray cluster (2 CPUs) for the
module; the sweep-file checks need no Ray."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_SENTIMENT

from harness.cli import main
from harness.errors import UsageError
from harness.plugin_manager import load_plugins
from harness.running.sweep import Cell, load_sweep
from harness.store import Store

BENCH = ", ".join(item.replace("=", ": ") for item in TINY_SENTIMENT if not item.startswith("default_budget="))
#: evaluation settings for runs whose numbers nobody reads
CHEAP = "{samples_per_prompt: 1, max_prompts: 8, checkpoint_every: 0}"


def sweep_yaml(runs: str, *, seeds: str = "[0, 1]", budget: int = 128, evaluation: str = "{samples_per_prompt: 2}") -> str:
    return (f"benchmarks: [{{name: sentiment, settings: {{{BENCH}}}}}]\nseeds: {seeds}\nbudget: {budget}\n"
            f"evaluation: {evaluation}\nruns:\n{runs}")  # fmt: skip


@pytest.fixture(scope="module")
def ray_cluster(cache_dir):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'rlhf-harness[ray]'")
    # Started after cache_dir has set $HARNESS_CACHE_DIR, so workers inherit it like the CLI's. Workers
    # also get OMP_NUM_THREADS=3, as from a cluster's own environment (Ray then leaves it): a task must
    # still use its num_cpus threads.
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "3"
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    finally:
        if old is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = old
    yield ray
    ray.shutdown()


def sweep(tmp_path: Path, file: Path, name: str, *extra: str) -> int:
    return main(["sweep", str(file), "--store", str(tmp_path / f"{name}.sqlite"), "--results-dir", str(tmp_path / name),
                 "--out", str(tmp_path / f"{name}-tables"), "--quiet", *extra])  # fmt: skip


def by_experiment(store: Store) -> dict:
    return {(r.experiment_key, r.seed): r for r in store.list_runs()}


def curve_rows(store: Store, run_id: str) -> list[tuple[int, dict[str, float]]]:
    frame = store.curves(run_id)
    return [(int(row.pop("step")), {k: v for k, v in row.items() if not math.isnan(v)}) for row in frame.to_dict("records")]


def test_local_and_ray_store_the_same_runs_each_once(tmp_path, ray_cluster, capsys):
    from harness.running.executors import run_payload, store_payload
    from harness.running.runner import RunResult

    file = tmp_path / "sweep.yaml"
    file.write_text(sweep_yaml("  - algo: sft\n  - algo: ppo\n  - algo: sft\n"))  # the third entry is the first again
    assert sweep(tmp_path, file, "local") == 0
    capsys.readouterr()
    assert sweep(tmp_path, file, "ray", "--executor", "ray") == 0
    out = capsys.readouterr().out
    assert "[6/6 done, 0 running, 0 failed, ETA 0.0 min]" in out  # the repeated entry's 2 runs count as done
    assert len(list((tmp_path / "ray" / "runs").iterdir())) == 4  # and were never dispatched: 4 run folders

    local, remote = Store(tmp_path / "local.sqlite"), Store(tmp_path / "ray.sqlite")
    a, b = by_experiment(local), by_experiment(remote)
    assert len(local.list_runs()) == len(remote.list_runs()) == 4 and a.keys() == b.keys()
    for key, x in a.items():
        y = b[key]
        assert (y.status, y.metrics, y.higher_is_better, y.budget_used) == (x.status, x.metrics, x.higher_is_better, x.budget_used)
        assert remote.samples(y.run_id) == local.samples(x.run_id) and len(local.samples(x.run_id)) > 0
        ca, cb = local.curves(x.run_id), remote.curves(y.run_id)
        timing = [c for c in ca.columns if c.startswith("time/")]  # throughput differs, every number else is the same
        pd.testing.assert_frame_equal(cb.drop(columns=timing), ca.drop(columns=timing))
        assert y.manifest["torch_threads"] == 1  # the task's num_cpus (default 1)
        assert y.wall_seconds > 0.1  # the worker's own time, not the moment (~5 ms) the driver took to store it
        assert Path(y.run_dir).parent == (tmp_path / "ray" / "runs").resolve() and (Path(y.run_dir) / "policy.safetensors").exists()
    rows = {r.run_id: (len(remote.curves(r.run_id)), len(remote.samples(r.run_id))) for r in remote.list_runs()}

    # a re-run dispatches nothing and writes nothing
    assert sweep(tmp_path, file, "ray", "--executor", "ray") == 0
    assert "nothing to run: every run is already in the store" in capsys.readouterr().out
    assert {r.run_id: (len(remote.curves(r.run_id)), len(remote.samples(r.run_id))) for r in remote.list_runs()} == rows

    # the driver's writer: a second copy of a finished (key, seed) is refused, nothing of it written
    x = remote.list_runs()[0]
    payload = run_payload(remote, RunResult(x.spec, x.run_id, x.name, x.status), curve_rows(remote, x.run_id))
    again = store_payload(remote, x.spec, {**payload, "run_id": "0123456789ab"})
    assert again.status == "skipped" and f"already finished as run {x.run_id}" in again.error
    with pytest.raises(UsageError, match="no run"):
        remote.get_run("0123456789ab")
    assert {r.run_id: (len(remote.curves(r.run_id)), len(remote.samples(r.run_id))) for r in remote.list_runs()} == rows
    # ... and a payload is the whole run: into an empty store, the same record
    with Store(tmp_path / "copy.sqlite") as copy:
        assert store_payload(copy, x.spec, payload).status == "finished"
        y = copy.get_run(x.run_id)
        assert (y.spec, y.metrics, y.higher_is_better, y.budget_used, y.manifest, y.run_dir, y.wall_seconds) == (
            x.spec, x.metrics, x.higher_is_better, x.budget_used, x.manifest, x.run_dir, x.wall_seconds)  # fmt: skip
        assert copy.samples(x.run_id) == remote.samples(x.run_id)
        pd.testing.assert_frame_equal(copy.curves(x.run_id), remote.curves(x.run_id))
    local.close()
    remote.close()


DIE_ONCE = '''
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from harness.api import Policy, PolicyOptimizer, help_field, hookimpl


@dataclass
class DieOnceConfig:
    marker: str = help_field("a file; while it is absent, training creates it and kills its own process", "")


class DieOnce(PolicyOptimizer):
    name = "die-once"
    description = "pi_sft, after killing its own worker process the first time"
    Config = DieOnceConfig

    def train(self, ctx):
        marker = Path(self.config.marker)
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return Policy(ctx.model, ctx.tokenizer)


@hookimpl
def harness_register_algorithms(registry):
    registry.add(DieOnce)
'''


@pytest.mark.parametrize("retries, status", [(1, "finished"), (0, "failed")])
def test_a_killed_worker_is_retried_then_stored_failed_and_the_sweep_goes_on(tmp_path, ray_cluster, retries, status):
    plugin, marker, file = tmp_path / "die_once.py", tmp_path / "died", tmp_path / "sweep.yaml"
    plugin.write_text(DIE_ONCE)
    runs = f"  - algo: die-once\n    args: {{marker: {marker}}}\n  - algo: sft\n    resources: {{num_cpus: 2}}\n"
    file.write_text(sweep_yaml(runs, seeds="[0]", budget=64, evaluation=CHEAP))
    code = sweep(tmp_path, file, "ray", "--executor", "ray", "--max-retries", str(retries), "--plugin", str(plugin))
    assert code == (0 if status == "finished" else 1) and marker.exists()  # it did kill its worker once
    with Store(tmp_path / "ray.sqlite") as store:
        stored = {r.algorithm: r for r in store.list_runs()}
    assert stored["die-once"].status == status and stored["sft"].status == "finished"  # the sweep went on
    if status == "failed":
        assert stored["die-once"].error.startswith("the Ray worker died (--max-retries 0): ") and stored["die-once"].metrics == {}
    assert stored["sft"].manifest["torch_threads"] == 2  # resources num_cpus: 2


def test_ray_flags_and_resource_defaults(tmp_path, ray_cluster, capsys):
    from harness.running.executors import RayExecutor

    file = tmp_path / "sweep.yaml"
    file.write_text("seeds: [0]\nruns:\n  - algo: sft\n")
    assert main(["sweep", str(file), "--dry-run", "--address", "auto"]) == 2
    assert "--address and --max-retries go with --executor ray" in capsys.readouterr().err
    assert main(["sweep", str(file), "--dry-run", "--executor", "ray", "--max-retries", "-1"]) == 2
    assert "--max-retries: must be >= 0, got -1" in capsys.readouterr().err
    assert main(["sweep", str(file), "--dry-run", "--executor", "ray", "--store", str(tmp_path / "s.sqlite")]) == 0
    assert "sentiment · sft · pairwise: seeds [0]" in capsys.readouterr().out
    file.write_text("seeds: [0]\nruns:\n  - algo: sft\n    resources: {num_cpus: 3}\n")  # Ray would queue it forever
    assert main(["sweep", str(file), "--executor", "ray", "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "resources num_cpus 3, num_gpus 0: no node of the Ray cluster has that much (its nodes: 2 CPUs and 0 GPUs)" in capsys.readouterr().err

    cell = Cell("c", [])
    assert RayExecutor(device="cpu").resources(cell, cluster_gpus=8) == {"num_cpus": 1, "num_gpus": 0}
    assert RayExecutor(device="auto").resources(cell, cluster_gpus=0) == {"num_cpus": 1, "num_gpus": 0}
    assert RayExecutor(device="auto").resources(cell, cluster_gpus=8) == {"num_cpus": 1, "num_gpus": 1}
    assert RayExecutor(device="cuda").resources(Cell("c", [], {"num_cpus": 4}), cluster_gpus=0) == {"num_cpus": 4, "num_gpus": 1}
    assert RayExecutor(device="auto").worker_device({"num_gpus": 0.5}) == "cuda"
    with pytest.raises(UsageError, match="--device cuda with resources num_gpus 0"):
        RayExecutor(device="cuda").resources(Cell("c", [], {"num_gpus": 0}), cluster_gpus=8)


# -- the sweep file's `resources` (no Ray needed) -------------------------------------------------


def test_resources_in_a_sweep_file(tmp_path):
    file = tmp_path / "sweep.yaml"
    file.write_text("seeds: [0]\nresources: {num_cpus: 2}\nruns:\n  - algo: sft\n  - algo: ppo\n    resources: {num_gpus: 0.5}\n")
    sweep = load_sweep(file, load_plugins())
    assert [c.resources for c in sweep.cells] == [{"num_cpus": 2}, {"num_cpus": 2, "num_gpus": 0.5}]
    file.write_text("seeds: [0]\nruns:\n  - algo: sft\n")
    assert load_sweep(file, load_plugins()).cells[0].resources == {}


@pytest.mark.parametrize(
    "text, error",
    [
        ("resources: [1]\nruns:\n  - algo: sft\n", "line 2: 'resources' must be a mapping {num_cpus: N, num_gpus: N}, got [1]"),
        ("resources: {num_cpus: 0}\nruns:\n  - algo: sft\n", "line 2: resources: num_cpus must be a number > 0, got 0"),
        ("resources: {num_cpus: two}\nruns:\n  - algo: sft\n", "line 2: resources: num_cpus must be a number > 0, got 'two'"),
        ("resources: {num_cpus: true}\nruns:\n  - algo: sft\n", "line 2: resources: num_cpus must be a number > 0, got True"),
        ("resources: {num_gpus: -1}\nruns:\n  - algo: sft\n", "line 2: resources: num_gpus must be a number >= 0, got -1"),
        ("resources: {num_gpus: .nan}\nruns:\n  - algo: sft\n", "line 2: resources: num_gpus must be a number >= 0, got nan"),
        ("runs:\n  - algo: sft\n  - algo: ppo\n    resources: {num_gpu: 1}\n",
         "line 4: runs[1] (ppo): resources: unknown key(s) num_gpu; valid: num_cpus, num_gpus"),
        ("runs:\n  - algo: sft\n    resources: 2\n", "line 3: runs[0] (sft): 'resources' must be a mapping"),
    ],
)
def test_resource_mistakes_name_the_file_and_line(tmp_path, capsys, text, error):
    file = tmp_path / "bad.yaml"
    file.write_text("seeds: [0]\n" + text)
    assert main(["sweep", str(file), "--store", str(tmp_path / "s.sqlite"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{file}" in err and error in err, err


def test_a_sweep_runs_on_a_cluster_started_with_ray_start_by_address_and_through_ray_client(tmp_path, cache_dir):
    """An existing cluster (``ray start --head``, as on a head node): ``--address HOST:PORT`` joins it
    as a driver, ``--address ray://HOST:PORT`` through Ray Client. Token authentication on both sides
    (Ray >= 2.59 starts clusters with it); the harness runs in subprocesses, so this process's own
    Ray (the module's cluster) is left alone, and the head is stopped through its own session only."""
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'rlhf-harness[ray]'")
    from harness.running.distributed import _free_port

    gcs, client = _free_port(), _free_port()
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="harness-test-token", RAY_USAGE_STATS_ENABLED="0")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    head = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--num-cpus", "3",
                             "--port", str(gcs), "--ray-client-server-port", str(client), "--include-dashboard", "false",
                             "--temp-dir", temp], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    file = tmp_path / "sweep.yaml"
    file.write_text(sweep_yaml("  - algo: sft\n  - algo: ppo\n", seeds="[0]", evaluation=CHEAP))
    try:
        stored = {}
        for name, address in (("driver", f"127.0.0.1:{gcs}"), ("client", f"ray://127.0.0.1:{client}")):
            deadline = time.time() + 60
            while True:  # the head takes a few seconds to listen
                argv = [sys.executable, "-m", "harness.cli", "sweep", str(file), "--executor", "ray", "--address", address,
                        "--store", str(tmp_path / f"{name}.sqlite"), "--results-dir", str(tmp_path / name),
                        "--out", str(tmp_path / f"{name}-tables"), "--quiet"]  # fmt: skip
                done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
                if done.returncode == 0 or time.time() > deadline or head.poll() is not None:
                    break
                time.sleep(2)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            assert "ray: 2 runs on 3 CPUs" in done.stdout  # the cluster's 3 CPUs: not a Ray of its own on this 2-core machine
            with Store(tmp_path / f"{name}.sqlite") as store:
                runs = store.list_runs()
                assert sorted(r.status for r in runs) == ["finished", "finished"]
                stored[name] = {r.experiment_key: store.metrics(r.run_id) for r in runs}
        assert stored["client"] == stored["driver"]
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the head and every Ray process it started (its own session)
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)


class _UnreachableCluster:
    """What ``ray`` does when a Ray Client gets no answer (or is refused for want of a token)."""

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs):
        raise ConnectionError("ray client connection timeout")


def test_an_unreachable_ray_client_address_is_one_line_that_names_the_token(monkeypatch):
    from harness.running.executors import RayExecutor

    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'rlhf-harness[ray]'")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    with pytest.raises(UsageError, match=r"--address ray://10.0.0.9:10001: cannot reach the Ray cluster \(ray client connection timeout\); .*RAY_AUTH_MODE=token"):
        RayExecutor(address="ray://10.0.0.9:10001")._connect(_UnreachableCluster())
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # set already: the hint would mislead
    with pytest.raises(UsageError) as raised:
        RayExecutor(address="ray://10.0.0.9:10001")._connect(_UnreachableCluster())
    assert "RAY_AUTH_MODE" not in str(raised.value)


def test_through_ray_a_plugin_sampling_around_the_context_is_charged_and_one_that_exits_fails(tmp_path, ray_cluster):
    """#27 on the Ray executor: the meter lives where the sampling happens, in the worker too; a
    plugin's SystemExit fails its run there as it does locally, and the sweep goes on."""
    from tests.test_integrity import EXITS, SNEAKY

    sneaky, exits, file = tmp_path / "sneaky.py", tmp_path / "exits.py", tmp_path / "sweep.yaml"
    sneaky.write_text(SNEAKY)
    exits.write_text(EXITS)
    runs = "  - algo: sneaky\n    args: {around: 16}\n  - algo: exits\n  - algo: sft\n"
    file.write_text(sweep_yaml(runs, seeds="[0]", budget=64, evaluation=CHEAP))
    code = sweep(tmp_path, file, "ray", "--executor", "ray", "--plugin", str(sneaky), "--plugin", str(exits))
    assert code == 1  # a failed run fails the sweep
    with Store(tmp_path / "ray.sqlite") as store:
        stored = {r.algorithm: r for r in store.list_runs()}
    assert stored["sneaky"].status == "finished", stored["sneaky"].error
    assert stored["sneaky"].budget_used["episodes_used"] == 40 and stored["sneaky"].budget_used["rm_queries"] == 16
    assert stored["exits"].status == "failed" and stored["exits"].error.startswith("SystemExit(0) escaped algorithm 'exits'")
    assert stored["sft"].status == "finished"  # the sweep went on

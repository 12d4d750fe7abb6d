"""The plugin API's promise: a plugin written against an earlier release keeps working.

``tests/fixtures/frozen/`` holds plugins written against earlier APIs and never edited since.
Each runs end to end through the CLI, as a third party's would. A public name that moved may
warn (a ``DeprecationWarning`` naming its replacement) but must keep working for at least one
minor release (README: "The plugin API's promise"; CHANGELOG.md: what to change).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from harness.cli import main
from tests.conftest import TINY_FLAGS

FROZEN = Path(__file__).resolve().parent / "fixtures" / "frozen"


def test_a_plugin_written_against_0_1_runs_end_to_end(tmp_path, capsys, tiny_prepared, tiny_proxy):
    from harness.results.store import Store

    store = tmp_path / "store.sqlite"
    args = ["run", "--plugin", str(FROZEN / "raft_v0_1.py"), "--algo", "frozen-raft", "--budget", "32", "--k", "4",
            "--store", str(store), "--results-dir", str(tmp_path / "results"), "--quiet", *TINY_FLAGS]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args) == 0, capsys.readouterr().err
    # a moved name may warn, and then it names what to use instead
    for warning in caught:
        if issubclass(warning.category, DeprecationWarning) and "harness" in str(warning.message):
            assert "instead" in str(warning.message) or "use " in str(warning.message), warning.message
    with Store(store) as s:
        (run,) = s.list_runs()
        assert run.status == "finished", run.error
        assert run.algorithm == "frozen-raft" and run.budget_used["episodes_used"] == 32
        assert s.curves(run.run_id)["step"].tolist() == [0, 1]  # 2 steps of 4 prompts × 4 responses
        metrics = s.metrics(run.run_id)
        assert "eval/frozen_length_gap" in metrics and "eval/gold" in metrics

"""The plugin API's promise: a plugin written against an earlier release keeps working.

``tests/fixtures/frozen/`` holds plugins written against earlier APIs and never edited since.
Each runs end to end through the CLI, as a third party's would. A public name that moved may
warn (a ``DeprecationWarning`` naming its replacement) but must keep working for at least one
minor release (README: "The plugin API's promise"; CHANGELOG.md: what to change).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import TINY_FLAGS

FROZEN = Path(__file__).resolve().parent / "fixtures" / "frozen"


def test_a_plugin_written_against_0_1_runs_end_to_end(tmp_path, capsys, tiny_prepared, tiny_proxy):
    from harness.store import Store

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


def test_a_moved_module_keeps_working_and_names_its_new_home(monkeypatch):
    """The 0.1.0 module paths of the store, the tables and the plots (``harness.results.*``) are
    aliases for one more minor release: importing one warns and names where it went."""
    import importlib
    import sys

    import harness.store

    for name in [m for m in sys.modules if m == "harness.results" or m.startswith("harness.results.")]:
        monkeypatch.delitem(sys.modules, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("harness.results.store")
    assert old.Store is harness.store.Store
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any("harness.results.store" in m and "use harness.store instead" in m for m in messages), messages


def test_a_renamed_name_is_served_with_a_warning_naming_its_replacement():
    from harness.deprecation import moved_names

    getattr_ = moved_names("some.module", {"old_sampler": ("harness.lm", "sample_batch")}, since="0.2.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import harness.lm

        assert getattr_("old_sampler") is harness.lm.sample_batch
    (warning,) = caught
    assert warning.category is DeprecationWarning
    assert "some.module.old_sampler is deprecated since harness 0.2.0: use harness.lm.sample_batch instead" in str(warning.message)
    with pytest.raises(AttributeError, match="some.module.*nosuch"):
        getattr_("nosuch")

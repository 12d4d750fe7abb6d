"""Bad inputs, as a new user types them (issue #11): every mistake gets one clear line on stderr,
no traceback, exit 2 for a mistake in the command or its files (a file given as the store that
is no database included) and 1 for a fault of the environment (a folder that cannot be written,
a store that cannot be reached, a full disk); the store, the files the command was pointed at
and the working folder are unchanged.

Every case must fail at validation, before any benchmark stage is built or loaded: reaching one
(``StageCache.get_or_build`` is replaced by a tripwire) fails the case at once. Messages are matched loosely
(the flag or key and the bad value), since their wording may change."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from harness.cli import main
from harness.pipeline.cache import StageCache
from harness.store import Store
from tests.conftest import TINY_FLAGS, make_spec

RUN_IDS = {("ppo", 0): "ppo000000000", ("ppo", 1): "ppo100000000", ("ppo", 2): "ppo200000000",
           ("sft", 0): "sft000000000", ("sft", 1): "sft100000000", ("sft", 2): "sft200000000"}  # fmt: skip
HIB = {"eval/gold": True, "eval/kl": False, "eval/proxy": True}

TINY_YAML = """\
benchmarks:
  - name: sentiment
    settings: {corpus_size: 4000, sft_size: 1500, judge_layers: 1, judge_width: 64, preference_prompts: 800,
               preference_eval_prompts: 100, default_budget: 256}
"""
#: sweep files, by name: each holds one mistake (``valid`` holds none: for flag mistakes)
SWEEPS = {
    "valid": TINY_YAML + "seeds: [0]\nruns: [{algo: sft}]\n",
    "empty": "",
    "list_top": "- sentiment\n- ppo\n",
    "scalar_top": "42\n",
    "tabs": "seeds: [0]\nruns:\n\t- algo: sft\n",
    "invalid_yaml": "seeds: [0\nruns: {algo: sft\n",
    "python_tag": "!!python/object/apply:os.system ['echo pwned']\n",
    "unknown_top": TINY_YAML + "seeds: [0]\nruns: [{algo: sft}]\nfrobnicate: 1\n",
    "dup_keys": TINY_YAML + "seeds: [0]\nseeds: [1]\nruns: [{algo: sft}]\n",
    "seeds_empty": TINY_YAML + "seeds: []\nruns: [{algo: sft}]\n",
    "seeds_negative": TINY_YAML + "seeds: [-1]\nruns: [{algo: sft}]\n",
    "seeds_huge": TINY_YAML + "seeds: [18446744073709551616]\nruns: [{algo: sft}]\n",
    "seeds_str": TINY_YAML + "seeds: [a]\nruns: [{algo: sft}]\n",
    "seeds_bool": TINY_YAML + "seeds: [true]\nruns: [{algo: sft}]\n",
    "algo_unknown": TINY_YAML + "seeds: [0]\nruns: [{algo: nosuch}]\n",
    "bench_unknown": "benchmarks: [nosuchbench]\nseeds: [0]\nruns: [{algo: sft}]\n",
    "rm_unknown": TINY_YAML + "seeds: [0]\nreward_model: nosuchrm\nruns: [{algo: sft}]\n",
    "runs_empty": TINY_YAML + "seeds: [0]\nruns: []\n",
    "run_unknown_key": TINY_YAML + "seeds: [0]\nruns: [{algo: ppo, frob: 1}]\n",
    "args_not_mapping": TINY_YAML + "seeds: [0]\nruns: [{algo: ppo, args: 5}]\n",
    "args_unknown": TINY_YAML + "seeds: [0]\nruns: [{algo: ppo, args: {nosuch: 1}}]\n",
    "args_lr_str": TINY_YAML + "seeds: [0]\nruns: [{algo: ppo, args: {lr: abc}}]\n",
    "args_lr_nan": TINY_YAML + "seeds: [0]\nruns: [{algo: ppo, args: {lr: .nan}}]\n",
    "budget_zero": TINY_YAML + "seeds: [0]\nruns: [{algo: ppo, budget: 0}]\n",
    "settings_unknown": "benchmarks:\n  - name: sentiment\n    settings: {nosuch: 1}\nseeds: [0]\nruns: [{algo: sft}]\n",
    "settings_eval_fraction": "benchmarks:\n  - name: sentiment\n    settings: {eval_fraction: 1.0}\nseeds: [0]\nruns: [{algo: sft}]\n",
    "evaluation_negative": TINY_YAML + "seeds: [0]\nevaluation: {samples_per_prompt: -2}\nruns: [{algo: sft}]\n",
    "reports_unknown": TINY_YAML + "seeds: [0]\nruns: [{algo: sft}]\nreports: {frob: true}\n",
    "device_bogus": TINY_YAML + "seeds: [0]\ndevice: bogus\nruns: [{algo: sft}]\n",
    "args_lr_whitespace": TINY_YAML + 'seeds: [0]\nruns: [{algo: ppo, args: {lr: " 1e-3"}}]\n',
    "settings_newline": "benchmarks:\n  - name: sentiment\n    settings: {corpus_size: \"2000\\n\"}\nseeds: [0]\nruns: [{algo: sft}]\n",
}
_ALGO = """
    from dataclasses import dataclass
    from harness.api import PolicyOptimizer, hookimpl
    @dataclass
    class C:
        lr: float = 1e-4
    class A(PolicyOptimizer):
        name = {name!r}
        description = "a test algorithm"
        Config = C
        def train(self, ctx):
            raise RuntimeError("never trained in these tests")
    @hookimpl
    def harness_register_algorithms(registry):
        registry.add(A)
"""
PLUGINS = {
    "raises_at_import.py": "raise RuntimeError('boom at import')\n",
    "syntax_error.py": "def oops(:\n",
    "exits_at_import.py": "import sys\nsys.exit(3)\n",
    "hook_raises.py": """
        from harness.api import hookimpl
        @hookimpl
        def harness_register_algorithms(registry):
            raise RuntimeError('boom in register')
    """,
    "typo_hook.py": "def harness_register_algorithm(registry):\n    pass\n",
    "evil_name.py": _ALGO.format(name="../evil"),
    "slash_name.py": _ALGO.format(name="a/b"),
    "clash_name.py": _ALGO.format(name="ppo"),
    "not_subclass.py": """
        from harness.api import hookimpl
        class X:
            name = "x"
        @hookimpl
        def harness_register_algorithms(registry):
            registry.add(X)
    """,
}


# -------------------------------------------------------------------------
# the world the cases run in
# -------------------------------------------------------------------------


def _build_store(path: Path) -> None:
    """Six finished runs (ppo and sft, seeds 0-2) with curves (checkpoints included, so that
    `fit` and `plot` have trajectories) and samples."""
    with Store(path) as store:
        for (algo, seed), run_id in RUN_IDS.items():
            assert store.claim_run(make_spec(algorithm=algo, seed=seed), run_id=run_id, name=f"{algo}-s{seed}", manifest={},
                                   run_dir=None).claimed  # fmt: skip
            gain = 0.0 if algo == "sft" else 1.0
            store.log_curve(run_id, [(step, {"objective/kl": 0.1 * step, "objective/scores": 0.2 * step,
                                             "checkpoint/episodes": 64.0 * step, "checkpoint/kl": gain * 0.5 * step,
                                             "checkpoint/gold": gain * (0.3 * step - 0.02 * step**2) + 0.01 * seed,
                                             "checkpoint/proxy": gain * 0.4 * step})
                                     for step in range(6)])  # fmt: skip
            store.finish_run(run_id, status="finished", metrics={"eval/gold": 0.5 + gain + 0.1 * seed, "eval/kl": gain * 2.5,
                                                                 "eval/proxy": gain * 2.0},
                             higher_is_better=HIB, budget_used={"episodes_used": 64, "rm_queries": 64,
                                                                "inference": {"samples_per_response": 1, "rm_queries_per_response": 0}})  # fmt: skip
            store.add_samples(run_id, [{"prompt": "the movie", "response": f"was good {i}", "gold": 0.1 * i, "proxy": 0.2 * i}
                                       for i in range(4)])  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Files the cases point at (shared, checked unchanged after every case) and a template store."""
    w = tmp_path_factory.mktemp("bad-inputs")
    _build_store(w / "template.sqlite")
    (w / "afile").write_text("a regular file, where a folder is expected\n")
    (w / "adir").mkdir()
    (w / "garbage.sqlite").write_bytes(bytes(range(256)) * 16)
    (w / "text.sqlite").write_text("hello, I am not a database\n")
    conn = sqlite3.connect(w / "other.sqlite")  # a database, but not a harness store
    conn.execute("CREATE TABLE foo (x)")
    conn.commit()
    conn.close()
    (w / "binary.yaml").write_bytes(bytes(range(256)) * 8)
    (w / "latin1.jsonl").write_bytes('{"instruction": "hi", "input": "", "output": "ok"}\n{"instruction": "café"}\n'.encode("latin-1"))
    (w / "empty.sqlite").write_bytes(b"")  # a store file with nothing in it: read commands must not write the schema
    (w / "pairs.jsonl").write_text('{"chosen": "Human: hi Assistant: hello", "rejected": "Human: hi Assistant: go away"}\n')
    for name, text in SWEEPS.items():
        (w / f"{name}.yaml").write_text(text)
    for name, text in PLUGINS.items():
        (w / name).write_text(textwrap.dedent(text))
    return w


def _shared_files(world: Path) -> dict[str, str]:
    """Every shared file's bytes, by digest (SQLite side files are not content)."""
    return {str(p.relative_to(world)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(world.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm", "-journal"))}  # fmt: skip


def _store_content(path: Path) -> str:
    """The store's logical content (every row of every table)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir()) if folder.exists() else []


class StartedWork(BaseException):
    """Raised where a command starts real work: the input passed validation."""


def _tripwire(*args, **kwargs):
    raise StartedWork("the command passed validation and started building (or loading) a benchmark stage")


# -------------------------------------------------------------------------
# the cases: (id, argv, exit code(s), a regex the one stderr line must match[, env])
# -------------------------------------------------------------------------

#: `harness run` on the tiny benchmark: a bad flag is appended after the valid ones
RUN = ["run", *TINY_FLAGS, "--quiet"]
OK_SWEEP = ["sweep", "{w}/valid.yaml"]


#: a regular file where a folder is needed: a mistake in the command (2) or a place that cannot be
#: written (1); either is fine, as long as it is one line before any work. (/proc: truly unwritable, 1.)
FILE_IN_THE_WAY = (1, 2)


def case(case_id: str, argv: list[str], rc, pattern: str, env: dict[str, str] | None = None):
    return pytest.param(argv, rc if isinstance(rc, tuple) else (rc,), pattern, env or {}, id=case_id)


CASES = [
    # --- the command itself
    case("command-unknown", ["frobnicate"], 2, r"unknown command 'frobnicate'.*valid:.*\brun\b"),
    case("command-typo", ["leaderbord"], 2, r"leaderbord.*did you mean 'leaderboard'"),
    case("command-empty-string", [""], 2, r"unknown command ''"),
    case("command-flag-instead", ["--frobnicate"], 2, r"--frobnicate"),
    # --- run: names
    case("run-algo-unknown", [*RUN, "--algo", "nosuch"], 2, r"unknown algorithm 'nosuch'.*valid:.*\bppo\b"),
    case("run-algo-wrong-case", [*RUN, "--algo", "PPO"], 2, r"'PPO'.*valid:.*\bppo\b"),
    case("run-algo-missing-value", ["run", "--algo"], 2, r"--algo.*expected one argument"),
    case("run-benchmark-unknown", [*RUN, "--benchmark", "nosuch"], 2, r"unknown benchmark 'nosuch'.*valid:.*sentiment"),
    case("run-reward-model-unknown", [*RUN, "--reward-model", "nosuch"], 2, r"unknown reward model 'nosuch'.*valid:.*pairwise"),
    case("run-unknown-flag", [*RUN, "--frobnicate"], 2, r"unrecognized arguments: --frobnicate"),
    case("run-renamed-flag", [*RUN, "--kl", "0.1"], 2, r"--kl.*--kl-coef"),
    case("run-stray-positional", [*RUN, "extra"], 2, r"unrecognized arguments: extra"),
    case("run-flag-value-on-switch", [*RUN, "--quiet=1"], 2, r"--quiet"),
    # --- run: seeds and budget
    case("run-seeds-missing-value", ["run", "--seeds"], 2, r"--seeds"),
    case("run-seeds-negative", [*RUN, "--seeds", "-1"], 2, r"--seeds.*-1"),
    case("run-seeds-2**64", [*RUN, "--seeds", "18446744073709551616"], 2, r"--seeds.*18446744073709551616"),
    case("run-seeds-fullwidth-digits", [*RUN, "--seeds", "２０００"], 2, r"--seeds.*２０００"),
    case("run-seeds-word", [*RUN, "--seeds", "abc"], 2, r"--seeds.*abc"),
    case("run-seeds-fraction", [*RUN, "--seeds", "1.5"], 2, r"--seeds.*1\.5"),
    case("run-budget-zero", [*RUN, "--budget", "0"], 2, r"--budget.*\b0\b"),
    case("run-budget-negative", [*RUN, "--budget", "-1"], 2, r"--budget.*-1"),
    case("run-budget-word", [*RUN, "--budget", "abc"], 2, r"--budget.*abc"),
    case("run-budget-nan", [*RUN, "--budget", "nan"], 2, r"--budget.*nan"),
    case("run-budget-2**64", [*RUN, "--budget", "18446744073709551616"], 2, r"--budget.*18446744073709551616"),
    # --- run: --benchmark-set
    case("bset-unknown-key", [*RUN, "--benchmark-set", "nosuch=1"], 2, r"--benchmark-set.*nosuch.*valid:.*temperature"),
    case("bset-trailing-newline", [*RUN, "--benchmark-set", "corpus_size=2000\n"], 2, r"corpus_size.*'2000\\n'.*whitespace"),
    case("bset-leading-space", [*RUN, "--benchmark-set", "temperature= 1.0"], 2, r"temperature.*whitespace"),
    case("bset-control-character", [*RUN, "--benchmark-set", "policy_model=a\tb"], 2, r"policy_model.*control character"),
    case("flag-value-whitespace", [*RUN, "--algo", "ppo", "--lr", "0.001 "], 2, r"--lr.*whitespace"),
    case("grpo-epsilon-ignored", [*RUN, "--algo", "grpo", "--num-mini-batches", "1", "--epsilon", "0.3"], 2, r"--epsilon 0\.3 has no effect"),
    case("rloo-epsilon-ignored", [*RUN, "--algo", "rloo", "--num-mini-batches", "1", "--epsilon", "0.1"], 2, r"--epsilon 0\.1 has no effect"),
    case("dpo-label-smoothing-ignored", [*RUN, "--algo", "dpo", "--label-smoothing", "0.1"], 2, r"--label-smoothing 0\.1 is used only by --loss-type robust"),
    case("bset-no-equals", [*RUN, "--benchmark-set", "temperature"], 2, r"--benchmark-set.*key=value.*temperature"),
    case("bset-empty-key", [*RUN, "--benchmark-set", "=5"], 2, r"--benchmark-set"),
    case("bset-temperature-nan", [*RUN, "--benchmark-set", "temperature=nan"], 2, r"temperature.*nan"),
    case("bset-temperature-inf", [*RUN, "--benchmark-set", "temperature=inf"], 2, r"temperature.*inf"),
    case("bset-temperature-negative", [*RUN, "--benchmark-set", "temperature=-1"], 2, r"temperature.*-1"),
    case("bset-temperature-zero", [*RUN, "--benchmark-set", "temperature=0"], 2, r"temperature.*\b0"),
    case("bset-temperature-word", [*RUN, "--benchmark-set", "temperature=abc"], 2, r"temperature.*abc"),
    case("bset-eval-fraction-one", [*RUN, "--benchmark-set", "eval_fraction=1.0"], 2, r"eval_fraction"),
    case("bset-eval-fraction-zero", [*RUN, "--benchmark-set", "eval_fraction=0"], 2, r"eval_fraction"),
    case("bset-eval-fraction-negative", [*RUN, "--benchmark-set", "eval_fraction=-0.5"], 2, r"eval_fraction.*-0\.5"),
    case("bset-max-positions-4", [*RUN, "--benchmark-set", "max_positions=4"], 2, r"max_positions"),
    case("bset-corpus-size-zero", [*RUN, "--benchmark-set", "corpus_size=0"], 2, r"corpus_size"),
    case("bset-corpus-size-fraction", [*RUN, "--benchmark-set", "corpus_size=4.5"], 2, r"corpus_size.*4\.5"),
    case("bset-annotator-noise-negative", [*RUN, "--benchmark-set", "annotator_noise=-1"], 2, r"annotator_noise"),
    case("bset-ranking-k-1", [*RUN, "--benchmark-set", "ranking_k=1"], 2, r"ranking_k"),
    case("bset-default-budget-zero", [*RUN, "--benchmark-set", "default_budget=0"], 2, r"default_budget"),
    case("bset-positive-rate-2", [*RUN, "--benchmark-set", "positive_rate=2"], 2, r"positive_rate"),
    case("bset-sft-trainer-bogus", [*RUN, "--benchmark-set", "sft_trainer=bogus"], 2, r"sft_trainer.*bogus"),
    case("bset-heads-do-not-divide-width", [*RUN, "--benchmark-set", "policy_heads=3"], 2, r"policy_heads"),
    case("bset-policy-model-missing", [*RUN, "--benchmark-set", "policy_model=/nonexistent/model"], 2, r"/nonexistent/model"),
    case("run-policy-model-missing", [*RUN, "--policy-model", "/nonexistent/model"], 2, r"/nonexistent/model"),
    # --- run: evaluation and algorithm flags
    case("eval-samples-per-prompt-zero", [*RUN, "--eval-samples-per-prompt", "0"], 2, r"--eval-samples-per-prompt"),
    case("eval-samples-per-prompt-negative", [*RUN, "--eval-samples-per-prompt", "-1"], 2, r"--eval-samples-per-prompt"),
    case("eval-max-prompts-negative", [*RUN, "--eval-max-prompts", "-1"], 2, r"--eval-max-prompts.*-1"),
    case("eval-checkpoint-every-negative", [*RUN, "--eval-checkpoint-every", "-5"], 2, r"--eval-checkpoint-every.*-5"),
    case("eval-best-of-n-curve-negative", [*RUN, "--eval-best-of-n-curve", "-1"], 2, r"--eval-best-of-n-curve.*-1"),
    case("eval-samples-per-prompt-word", [*RUN, "--eval-samples-per-prompt", "abc"], 2, r"--eval-samples-per-prompt.*abc"),
    case("algo-lr-word", [*RUN, "--lr", "abc"], 2, r"--lr.*abc"),
    case("algo-lr-negative", [*RUN, "--lr", "-1"], 2, r"--lr.*-1"),
    case("algo-kl-coef-nan", [*RUN, "--kl-coef", "nan"], 2, r"--kl-coef.*nan"),
    case("algo-kl-coef-negative", [*RUN, "--kl-coef", "-1"], 2, r"--kl-coef.*-1"),
    case("algo-choice-bogus", [*RUN, "--critic-init", "bogus"], 2, r"--critic-init.*bogus"),
    case("algo-no-kl-with-kl-coef", [*RUN, "--no-kl", "--kl-coef", "0.1"], 2, r"--no-kl.*--kl-coef|--kl-coef.*--no-kl"),
    case(
        "algo-ppo-nokl-with-kl-coef",
        [*RUN, "--algo", "ppo-nokl", "--kl-coef", "0.1"],
        2,
        r"ppo-nokl.*--kl-coef|--kl-coef.*ppo-nokl",
    ),
    case("best-of-n-n-zero", [*RUN, "--algo", "best-of-n", "--n", "0"], 2, r"--n\b.*\b0"),
    case("rm-epochs-word", [*RUN, "--rm-epochs", "abc"], 2, r"--rm-epochs.*abc"),
    case("rm-batch-size-zero", [*RUN, "--rm-batch-size", "0"], 2, r"--rm-batch-size"),
    case("report-to-unknown", [*RUN, "--report-to", "bogus"], 2, r"--report-to.*bogus.*tensorboard"),
    case("report-to-env-unknown", [*RUN], 2, r"HARNESS_REPORT_TO.*bogus", env={"HARNESS_REPORT_TO": "bogus"}),
    # --- run: device and places
    case("device-bogus", [*RUN, "--device", "bogus"], 2, r"--device bogus"),
    case("device-cuda-without-gpu", [*RUN, "--device", "cuda:7"], 2, r"--device cuda:7"),
    case(
        "results-dir-under-a-file",
        [*RUN, "--algo", "sft", "--results-dir", "{w}/afile/sub"],
        FILE_IN_THE_WAY,
        r"--results-dir.*afile",
    ),
    case(
        "results-dir-is-a-file", [*RUN, "--algo", "sft", "--results-dir", "{w}/afile"], FILE_IN_THE_WAY, r"--results-dir.*afile"
    ),
    case("results-dir-in-proc", [*RUN, "--algo", "sft", "--results-dir", "/proc/harness-results"], 1, r"--results-dir.*/proc"),
    case("cache-dir-is-a-file", [*RUN, "--algo", "sft", "--cache-dir", "{w}/afile"], FILE_IN_THE_WAY, r"afile"),
    case("cache-dir-env-is-a-file", [*RUN, "--algo", "sft"], FILE_IN_THE_WAY, r"afile", env={"HARNESS_CACHE_DIR": "{w}/afile"}),
    case("store-is-a-directory", [*RUN, "--algo", "sft", "--store", "{w}/adir"], (1, 2), r"adir"),
    case("store-env-is-a-directory", [*RUN, "--algo", "sft"], (1, 2), r"adir", env={"HARNESS_STORE": "{w}/adir"}),
    case("store-random-bytes", [*RUN, "--algo", "sft", "--store", "{w}/garbage.sqlite"], 2, r"garbage\.sqlite.*not"),
    case("store-text-file", [*RUN, "--algo", "sft", "--store", "{w}/text.sqlite"], 2, r"text\.sqlite.*not"),
    case(
        "store-foreign-database",
        [*RUN, "--algo", "sft", "--store", "{w}/other.sqlite"],
        (1, 2),
        r"other\.sqlite.*not a harness store",
    ),
    case("store-under-a-file", [*RUN, "--algo", "sft", "--store", "{w}/afile/store.sqlite"], FILE_IN_THE_WAY, r"afile"),
    case("store-in-proc", [*RUN, "--algo", "sft", "--store", "/proc/harness.sqlite"], 1, r"/proc/harness\.sqlite"),
    case("store-unknown-url-scheme", [*RUN, "--algo", "sft", "--store", "foo://x"], 2, r"foo://x|'foo'|\bfoo\b"),
    case("store-url-unsupported-database", [*RUN, "--algo", "sft", "--store", "mysql://user@localhost/db"], 2, r"mysql"),
    case(
        "store-url-unreachable-server",
        [*RUN, "--algo", "sft", "--store", "postgresql://nobody@127.0.0.1:1/x"],
        1,
        r"127\.0\.0\.1|postgresql",
    ),
    case(
        "store-sqlite-url-in-proc",
        [*RUN, "--algo", "sft", "--store", "sqlite:////proc/harness.sqlite"],
        1,
        r"/proc/harness\.sqlite",
    ),
    case("store-empty-string", [*RUN, "--algo", "sft", "--store", ""], 2, r"--store|store"),
    # --- run: plugins
    case("plugin-missing-value", ["run", "--plugin"], 2, r"--plugin"),
    case("plugin-file-missing", [*RUN, "--plugin", "{w}/nonexistent.py"], 2, r"--plugin.*nonexistent\.py"),
    case("plugin-module-missing", [*RUN, "--plugin", "no_such_module_xyz"], 2, r"no_such_module_xyz"),
    case(
        "plugin-env-file-missing", [*RUN, "--algo", "sft"], 2, r"nonexistent\.py", env={"HARNESS_PLUGINS": "{w}/nonexistent.py"}
    ),
    case("plugin-is-a-directory", [*RUN, "--plugin", "{w}/adir"], 2, r"adir"),
    case("plugin-raises-at-import", [*RUN, "--plugin", "{w}/raises_at_import.py"], 2, r"raises_at_import\.py.*boom at import"),
    case("plugin-syntax-error", [*RUN, "--plugin", "{w}/syntax_error.py"], 2, r"syntax_error\.py.*SyntaxError"),
    case("plugin-exits-at-import", [*RUN, "--plugin", "{w}/exits_at_import.py"], 2, r"exits_at_import\.py"),
    case("plugin-register-hook-raises", [*RUN, "--plugin", "{w}/hook_raises.py"], 2, r"hook_raises\.py.*boom in register"),
    case("plugin-misspelt-hook", [*RUN, "--plugin", "{w}/typo_hook.py"], 2, r"typo_hook\.py.*harness_register_algorithm"),
    case("plugin-name-with-dotdot", [*RUN, "--plugin", "{w}/evil_name.py", "--algo", "../evil"], 2, r"'\.\./evil'"),
    case("plugin-name-with-slash", [*RUN, "--plugin", "{w}/slash_name.py", "--algo", "a/b"], 2, r"'a/b'"),
    case("plugin-name-clash", [*RUN, "--plugin", "{w}/clash_name.py"], 2, r"'ppo'.*registered twice"),
    case("plugin-not-a-subclass", [*RUN, "--plugin", "{w}/not_subclass.py"], 2, r"not_subclass\.py.*not a subclass"),
    # --- sweep: files
    case("sweep-no-file", ["sweep"], 2, r"file"),
    case("sweep-file-missing", ["sweep", "{w}/nonexistent.yaml"], 2, r"nonexistent\.yaml"),
    case("sweep-file-is-a-directory", ["sweep", "{w}/adir"], 2, r"adir"),
    case("sweep-file-binary", ["sweep", "{w}/binary.yaml"], 2, r"binary\.yaml"),
    *[
        case(f"sweep-{name.replace('_', '-')}", ["sweep", f"{{w}}/{name}.yaml"], 2, rf"{name}\.yaml.*(?:{pattern})")
        for name, pattern in [
            ("empty", "mapping"),
            ("list_top", "mapping"),
            ("scalar_top", "mapping"),
            ("tabs", r"line 3.*(YAML|tab|\\t)"),
            ("invalid_yaml", "line 2.*YAML"),
            ("python_tag", "YAML|tag"),
            ("unknown_top", "frobnicate"),
            ("dup_keys", "seeds"),
            ("seeds_empty", "seeds"),
            ("seeds_negative", r"seeds.*-1"),
            ("seeds_huge", "seeds.*18446744073709551616"),
            ("seeds_str", "seeds"),
            ("seeds_bool", "seeds"),
            ("algo_unknown", r"unknown algorithm 'nosuch'.*valid:"),
            ("bench_unknown", r"unknown benchmark 'nosuchbench'.*valid:"),
            ("rm_unknown", r"unknown reward model 'nosuchrm'.*valid:"),
            ("runs_empty", "runs"),
            ("run_unknown_key", "runs"),
            ("args_not_mapping", "args"),
            ("args_unknown", "nosuch"),
            ("args_lr_str", r"lr.*abc"),
            ("args_lr_nan", r"lr.*nan"),
            ("budget_zero", "budget"),
            ("settings_unknown", "nosuch"),
            ("settings_eval_fraction", "eval_fraction"),
            ("evaluation_negative", "samples_per_prompt|samples-per-prompt"),
            ("reports_unknown", "frob"),
            ("device_bogus", "bogus"),
            ("args_lr_whitespace", r"lr.*whitespace"),
            ("settings_newline", r"corpus_size.*whitespace"),
        ]
    ],
    # --- sweep: flags (the file is fine)
    case("sweep-store-random-bytes", [*OK_SWEEP, "--store", "{w}/garbage.sqlite"], 2, r"garbage\.sqlite"),
    case("sweep-store-unknown-url-scheme", [*OK_SWEEP, "--store", "foo://x", "--dry-run"], 2, r"foo"),
    case("sweep-out-under-a-file", [*OK_SWEEP, "--out", "{w}/afile/tables"], FILE_IN_THE_WAY, r"--out.*afile"),
    case(
        "sweep-results-dir-under-a-file", [*OK_SWEEP, "--results-dir", "{w}/afile/runs"], FILE_IN_THE_WAY, r"--results-dir.*afile"
    ),
    case("sweep-flag-device-bogus", [*OK_SWEEP, "--device", "bogus"], 2, r"--device bogus"),
    case("sweep-report-to-unknown", [*OK_SWEEP, "--report-to", "bogus"], 2, r"--report-to.*bogus"),
    case("sweep-plugin-hook-raises", [*OK_SWEEP, "--plugin", "{w}/hook_raises.py"], 2, r"hook_raises\.py"),
    # --- runs, show, samples
    case("runs-status-unknown", ["runs", "--status", "bogus"], 2, r"bogus.*finished"),
    case("runs-no-store", ["runs", "--store", "{w}/nonexistent.sqlite"], 2, r"nonexistent\.sqlite"),
    case("runs-store-random-bytes", ["runs", "--store", "{w}/garbage.sqlite"], 2, r"garbage\.sqlite"),
    case("runs-store-env-random-bytes", ["runs"], 2, r"garbage\.sqlite", env={"HARNESS_STORE": "{w}/garbage.sqlite"}),
    case("runs-mark-interrupted-unknown", ["runs", "--mark-interrupted", "nosuchrun"], 2, r"nosuchrun"),
    case("runs-mark-interrupted-finished", ["runs", "--mark-interrupted", "ppo000000000"], 2, r"ppo000000000.*finished"),
    case("show-unknown-run", ["show", "nosuchrun"], 2, r"no run 'nosuchrun'"),
    case("show-no-run", ["show"], 2, r"\brun\b"),
    case("show-ambiguous-prefix", ["show", "ppo"], 2, r"'ppo'.*ambiguous"),
    case("show-samples-negative", ["show", "ppo000000000", "--samples", "-1"], 2, r"--samples.*-1"),
    case("show-samples-word", ["show", "ppo000000000", "--samples", "abc"], 2, r"--samples.*abc"),
    case("samples-seed-negative", ["samples", "--seed", "-1"], 2, r"--seed.*-1"),
    case("samples-n-zero", ["samples", "-n", "0"], 2, r"-n\b.*\b0"),
    case("samples-benchmark-unknown", ["samples", "--benchmark", "nosuch"], 2, r"'nosuch'.*sentiment"),
    # --- leaderboard, plot, fit, report
    case("leaderboard-format-unknown", ["leaderboard", "--format", "bogus"], 2, r"--format.*bogus.*\bmd\b"),
    case("leaderboard-code-versions-unknown", ["leaderboard", "--code-versions", "bogus"], 2, r"--code-versions.*bogus.*latest"),
    case("leaderboard-baseline-unknown", ["leaderboard", "--baseline", "nosuch"], 2, r"--baseline.*nosuch.*\bppo\b"),
    case("leaderboard-benchmark-unknown", ["leaderboard", "--benchmark", "nosuch"], 2, r"'nosuch'.*sentiment"),
    case("leaderboard-out-is-a-file", ["leaderboard", "--out", "{w}/afile"], FILE_IN_THE_WAY, r"--out.*afile"),
    case("leaderboard-out-under-a-file", ["leaderboard", "--out", "{w}/afile/sub"], FILE_IN_THE_WAY, r"--out.*afile"),
    case("leaderboard-out-in-proc", ["leaderboard", "--out", "/proc/harness-tables"], 1, r"--out.*/proc"),
    case("leaderboard-out-empty", ["leaderboard", "--out", ""], 2, r"--out ''.*folder"),
    case("leaderboard-no-store", ["leaderboard", "--store", "{w}/nonexistent.sqlite"], 2, r"nonexistent\.sqlite"),
    case("leaderboard-store-text-file", ["leaderboard", "--store", "{w}/text.sqlite"], 2, r"text\.sqlite"),
    case("plot-kind-unknown", ["plot", "--kind", "bogus"], 2, r"--kind.*bogus.*frontier"),
    case("plot-out-under-a-file", ["plot", "--out", "{w}/afile/plots"], FILE_IN_THE_WAY, r"--out.*afile"),
    case("plot-metric-unknown", ["plot", "--kind", "curves", "--metric", "nosuch/metric"], 2, r"nosuch/metric.*objective/kl"),
    case("plot-benchmark-unknown", ["plot", "--benchmark", "nosuch"], 2, r"'nosuch'.*sentiment"),
    case("fit-format-unknown", ["fit", "--format", "bogus"], 2, r"--format.*bogus"),
    case("fit-bootstrap-zero", ["fit", "--bootstrap", "0"], 2, r"--bootstrap.*\b0"),
    case("fit-benchmark-unknown", ["fit", "--benchmark", "nosuch"], 2, r"'nosuch'.*sentiment"),
    case("fit-out-under-a-file", ["fit", "--bootstrap", "2", "--out", "{w}/afile/fits.md"], FILE_IN_THE_WAY, r"--out.*afile"),
    case("report-out-under-a-file", ["report", "--out", "{w}/afile/report.html"], FILE_IN_THE_WAY, r"--out.*afile"),
    case("report-out-is-a-directory", ["report", "--out", "{w}/adir"], (1, 2), r"adir"),
    case("report-out-in-proc", ["report", "--out", "/proc/harness-report.html"], 1, r"--out.*/proc"),
    case("report-out-empty", ["report", "--out", ""], 2, r"--out"),
    case("report-sweep-missing", ["report", "--sweep", "{w}/nonexistent.yaml"], 2, r"nonexistent\.yaml"),
    case("report-samples-zero", ["report", "--samples", "0"], 2, r"--samples.*\b0"),
    # --- cache, reward-models, data, bench, list
    case("cache-no-action", ["cache"], 2, r"action"),
    case("cache-action-unknown", ["cache", "bogus"], 2, r"bogus.*\bls\b.*\bclear\b"),
    case("cache-ls-stage-unknown", ["cache", "ls", "--stage", "nosuch"], 2, r"--stage.*nosuch.*\bsft\b"),
    case("cache-clear-stage-unknown", ["cache", "clear", "--stage", "nosuch"], 2, r"--stage.*nosuch.*\bsft\b"),
    case("cache-clear-dir-is-a-file", ["cache", "clear", "--cache-dir", "{w}/afile"], (1, 2), r"afile"),
    case("reward-models-unknown", ["reward-models", "nosuch"], 2, r"unknown reward model 'nosuch'.*valid:"),
    case("reward-models-rm-no-colon", ["reward-models", "pairwise", "--rm", "epochs=1"], 2, r"--rm.*NAME:KEY=VALUE"),
    case("reward-models-rm-unknown-key", ["reward-models", "pairwise", "--rm", "pairwise:nosuch=1"], 2, r"nosuch.*valid:"),
    case("reward-models-rm-bad-value", ["reward-models", "pairwise", "--rm", "pairwise:epochs=abc"], 2, r"epochs.*abc"),
    case(
        "reward-models-bset-unknown", ["reward-models", "pairwise", "--benchmark-set", "nosuch=1"], 2, r"--benchmark-set.*nosuch"
    ),
    case("reward-models-device-cuda", ["reward-models", "pairwise", "--device", "cuda:7"], 2, r"--device cuda:7"),
    case("data-no-action", ["data"], 2, r"show"),
    case("data-format-unknown", ["data", "show", "--format", "bogus", "{w}/pairs.jsonl"], 2, r"format 'bogus'.*valid:.*\bhh\b"),
    case("data-path-missing", ["data", "show", "--format", "hh", "{w}/nonexistent.jsonl"], 2, r"nonexistent\.jsonl"),
    case("data-unknown-file-type", ["data", "show", "--format", "hh", "{w}/binary.yaml"], 2, r"binary\.yaml"),
    case("data-not-utf8", ["data", "show", "--format", "alpaca", "{w}/latin1.jsonl"], 2, r"latin1\.jsonl: line 2, byte offset 71: .*not UTF-8"),
    *[case(f"{command}-empty-store", [command, "--store", "{w}/empty.sqlite"], 2, r"no runs in .*empty\.sqlite: the store is empty")
      for command in ("leaderboard", "report", "plot", "fit", "runs", "samples")],
    case("bench-unknown", ["bench", "nosuch"], 2, r"'nosuch'.*valid:.*ppo"),
    case("bench-ppo-unknown-flag", ["bench", "ppo", "--frobnicate"], 2, r"--frobnicate"),
    case("bench-ppo-negative-episodes", ["bench", "ppo", "--total-episodes", "-5"], 2, r"--total-episodes.*-5"),
    case("bench-ppo-temperature-nan", ["bench", "ppo", "--temperature", "nan"], 2, r"--temperature.*nan"),
    case("list-stray-positional", ["list", "extra"], 2, r"extra"),
    case("list-plugin-missing", ["list", "--plugin", "{w}/nonexistent.py"], 2, r"nonexistent\.py"),
]


@pytest.mark.parametrize("argv, rcs, pattern, env", CASES)
def test_bad_input(argv, rcs, pattern, env, world, tmp_path, monkeypatch, capsys):
    store = tmp_path / "store.sqlite"
    shutil.copy(world / "template.sqlite", store)
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    monkeypatch.chdir(work)  # default --results-dir, --out and relative stores land here
    for name, value in {"HARNESS_STORE": str(store), "HARNESS_CACHE_DIR": str(cache), "HARNESS_PLUGINS": "",
                        "HARNESS_REPORT_TO": "", "HARNESS_DEBUG": ""}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(w=world))
    # Validation comes first: a case that gets as far as building (or loading) a stage fails at once.
    monkeypatch.setattr(StageCache, "get_or_build", _tripwire)
    before, shared_before = _store_content(store), _shared_files(world)
    argv = [a.format(w=world) for a in argv]

    def too_slow(signum, frame):
        raise StartedWork("still running after 60 s: the command passed validation")

    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(60)
    try:
        with warnings.catch_warnings():  # warnings reach stderr as they do outside pytest
            warnings.simplefilter("always")
            warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: sys.stderr.write(
                warnings.formatwarning(message, category, filename, lineno, line)
            )
            rc = main(argv)
    except StartedWork as exc:
        pytest.fail(f"accepted: {exc} (stderr: {capsys.readouterr().err[-300:]!r})")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert rc in rcs, f"exit {rc}, expected {' or '.join(map(str, rcs))}; stderr: {err[-500:]!r}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err[-800:]!r}"
    assert re.search(pattern, lines[0], re.IGNORECASE), f"{lines[0]!r} does not match {pattern!r}"
    assert _store_content(store) == before, "the store changed"
    assert _shared_files(world) == shared_before, "a file the command was pointed at changed"
    assert _files(work) == [], f"files appeared in the working folder: {_files(work)[:5]}"
    assert _files(cache) == [], f"the stage cache changed: {_files(cache)[:5]}"


def test_enough_kinds():
    assert len(CASES) >= 60


# -------------------------------------------------------------------------
# the real command, in its own process
# -------------------------------------------------------------------------


def _harness(args: list[str], tmp_path: Path, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "cache"), "HARNESS_PLUGINS": "", "HARNESS_REPORT_TO": "",
           "HARNESS_DEBUG": ""}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], check=False, cwd=tmp_path, env=env, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip


def test_a_mistake_in_a_real_process_is_one_line_and_exit_2(world, tmp_path):
    store = tmp_path / "store.sqlite"
    shutil.copy(world / "template.sqlite", store)
    before = _store_content(store)
    done = _harness(["run", "--algo", "nosuch", "--store", str(store)], tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert re.search(r"unknown algorithm 'nosuch'.*valid:", lines[0])
    assert _store_content(store) == before


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_a_full_disk_in_a_real_process_is_one_line_and_exit_1(world, tmp_path):
    """stdout on a full disk (/dev/full: every write fails with ENOSPC)."""
    store = tmp_path / "store.sqlite"
    shutil.copy(world / "template.sqlite", store)
    before = _store_content(store)
    with open("/dev/full", "w") as full:
        done = _harness(["runs", "--store", str(store)], tmp_path, stdout=full)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert re.search(r"no space left on device", lines[0], re.IGNORECASE)
    assert _store_content(store) == before

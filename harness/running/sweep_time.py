"""Where a sweep's time went: :func:`time_summary`, printed at the end of every sweep (both
executors), per algorithm, benchmark and stage.

Layer: running. Imports the pipeline's stage events, the specs and (for row labels) the
leaderboard's analysis, besides :mod:`harness.running.runner`'s :class:`RunResult`.
"""

from __future__ import annotations

from harness.pipeline.cache import STAGES, StageEvent
from harness.running.runner import RunResult
from harness.specs import RunSpec

#: the summary's run columns (see :func:`_time_row`)
_TIME_HEADERS = ("runs", "wall s", "mean s", "train s", "ckpts s", "eval s", "other s", "stages s")


def algorithm_labels(specs: list[RunSpec]) -> list[str]:
    """A leaderboard row's name for each spec, benchmark and seed aside: the algorithm, what
    tells its configs apart (``rm-ranking (kl_coef=0)``, as the leaderboard's ``config``
    column), and the reward model (``· gold (oracle)``)."""
    from harness.analysis.labels import config_labels

    by_algo: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        by_algo.setdefault(spec.algorithm.name, []).append(i)
    labels = [""] * len(specs)
    for indices in by_algo.values():
        for i, config in zip(indices, config_labels([specs[i] for i in indices])):
            algo, rm = specs[i].algorithm.name, specs[i].reward_model
            labels[i] = f"{algo} ({config})" if config else algo
            labels[i] += f" · {rm.name}" + (" (oracle)" if rm.oracle else "")
    return labels


def time_summary(results: list[RunResult], stages: list[StageEvent], seconds: float) -> str:
    """Where a sweep's time went, one line per row: a headline (runs, wall time, stage builds and
    loads); per algorithm (a leaderboard row's name over benchmarks and seeds) and per benchmark,
    the runs' wall seconds (sum, mean per run) split into train, checkpoints, eval and the rest,
    and the seconds spent on stages before them; per stage, what was built and loaded. Runs that
    did not run here (skipped) have no times and are only counted. Both executors print it."""
    ran = [r for r in results if r.times]  # not a run skipped, nor one whose Ray worker died
    skipped = sum(r.status == "skipped" for r in results)
    failed = sum(r.status in ("failed", "interrupted") for r in results)
    built = [e for e in stages if e.action == "built"]
    counts = f"{len(results) - skipped} runs ({failed} failed; {skipped} skipped)"
    stage_text = f"{len(built)} stages built in {sum(e.seconds for e in built):.1f} s, {len(stages) - len(built)} loaded"
    lines = [f"time: {counts} in {seconds:.1f} s wall; {stage_text}"]
    if ran:
        sections: dict[str, dict[str, list[RunResult]]] = {"algorithm · reward model": {}, "benchmark": {}}
        # labelled among every run of the sweep, skipped ones too: a bf16 row re-run beside stored fp32
        # runs still reads "ppo (precision=bf16)"
        labels = dict(zip(map(id, results), algorithm_labels([r.spec for r in results])))
        for label, result in ((labels[id(r)], r) for r in ran):
            sections["algorithm · reward model"].setdefault(label, []).append(result)
            sections["benchmark"].setdefault(result.spec.benchmark.name, []).append(result)
        width = max(len(label) for rows in sections.values() for label in [*rows, *sections])
        for title, rows in sections.items():
            lines.append(f"  {title:<{width}}" + "".join(f"{header:>9}" for header in _TIME_HEADERS))
            lines += [f"  {label:<{width}}" + "".join(f"{cell:>9}" for cell in _time_row(runs)) for label, runs in rows.items()]
    by_stage: dict[str, list[StageEvent]] = {}
    for event in sorted(stages, key=lambda e: STAGES.index(e.stage) if e.stage in STAGES else len(STAGES)):
        by_stage.setdefault(event.stage, []).append(event)
    if by_stage:
        lines.append(f"  {'stage':<13}{'built':>7}{'built s':>10}{'loaded':>8}{'loaded s':>10}")
    for stage, events in by_stage.items():
        b, ld = [e for e in events if e.action == "built"], [e for e in events if e.action == "loaded"]
        b_s, ld_s = sum(e.seconds for e in b), sum(e.seconds for e in ld)
        lines.append(f"  {stage:<13}{len(b):>7}{b_s:>10.1f}{len(ld):>8}{ld_s:>10.1f}")
    return "\n".join(lines)


def _time_row(runs: list[RunResult]) -> list[str]:
    """:data:`_TIME_HEADERS` of some runs: how many; their wall seconds, summed and per run; of
    it, training, checkpoints, evaluation and the rest (setup, saving, the store); and the
    seconds they waited on stages before their claim (outside wall: the first run of a benchmark
    builds them)."""

    def total(key: str) -> float:
        return sum(r.times.get(key, 0.0) for r in runs)

    wall, train, ckpts, evals = total("wall_s"), total("train_s"), total("checkpoints_s"), total("eval_s")
    seconds = (wall, wall / len(runs), train, ckpts, evals, wall - train - ckpts - evals, total("stages_s"))
    return [str(len(runs))] + [f"{v:.1f}" for v in seconds]

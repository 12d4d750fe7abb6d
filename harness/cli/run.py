"""``harness run``: parse its flags into run specs (:func:`parse_run`) and run them, one per seed,
here or data-parallel in several processes (``--num-processes``).

Layer: part of ``harness.cli``, the top layer: it may import every lower layer (lazily, inside
the functions: ``harness.running`` pulls in torch), ``harness.config``, ``harness.errors``, and
``harness.cli.flags`` and ``harness.cli.host``.
"""

from __future__ import annotations

import argparse

from harness.cli.flags import PROG, ArgumentParser, open_workspace, seed, workspace_args
from harness.cli.host import plugin_host
from harness.cli.inspect import metric_text
from harness.config import positive_int
from harness.errors import UsageError


def _run_base_parser(add_help: bool) -> ArgumentParser:
    parser = ArgumentParser(prog=f"{PROG} run", add_help=add_help, formatter_class=argparse.RawDescriptionHelpFormatter,
                            description="Train one algorithm on one benchmark, per seed; evaluate on held-out prompts; store.")  # fmt: skip
    parser.add_argument("--algo", default="ppo", help="algorithm to run (harness list shows them; default: %(default)s)")
    parser.add_argument("--benchmark", default="sentiment", help="benchmark (default: %(default)s)")
    parser.add_argument("--reward-model", default="pairwise", help="proxy reward model to optimize (default: %(default)s)")
    parser.add_argument("--seeds", nargs="+", type=seed, default=[0], metavar="SEED", help="one run per distinct seed (default: 0)")
    parser.add_argument("--budget", type=positive_int, default=None, help="training episodes (default: the benchmark's)")
    parser.add_argument("--benchmark-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a benchmark setting (repeatable; the list is below)")  # fmt: skip
    parser.add_argument("--policy-model", metavar="ID_OR_PATH",
                        help="start π_sft from this causal LM (hub id or local folder): --benchmark-set policy_model=…")  # fmt: skip
    parser.add_argument("--reward-model-base", metavar="ID_OR_PATH",
                        help="initialise reward models from this causal LM, not π_sft: --benchmark-set reward_model_base=…")  # fmt: skip
    parser.add_argument("--num-processes", type=positive_int, default=1, metavar="N",
                        help="train each run data-parallel in N processes on this machine (one per GPU, or CPU "
                             "processes with gloo); every built-in algorithm, and plugins that declare data_parallel (default: %(default)s)")  # fmt: skip
    workspace_args(parser)
    return parser


def _benchmark_epilog(name: str, cls) -> str:
    from harness.config import field_help

    lines = [f"benchmark {name!r} settings (--benchmark-set KEY=VALUE), with their defaults:"]
    lines += [f"  {f'{key}={default!r}':<30} {text}" for key, default, text in field_help(cls.Config)]
    return "\n".join(lines)


def _benchmark_settings(args) -> list[str]:
    """``--benchmark-set`` items, with the shorthand flags spelt out (the same spec either way)."""
    shorthand = {"policy_model": args.policy_model, "reward_model_base": args.reward_model_base}
    return list(args.benchmark_set) + [f"{key}={value}" for key, value in shorthand.items() if value]


def parse_run(argv: list[str], host=None):
    """``harness run`` arguments → (plugin host, run plans, parsed args); every mistake is a
    :class:`UsageError`. ``host``: plugins already loaded. The three entries looked up here to
    build the flags are the ones the plans carry: each name is looked up once (one walk)."""
    from harness.config import add_dataclass_arguments, build_config, parse_overrides
    from harness.specs import EvaluationSettings, make_plans

    host = host or plugin_host(argv)
    known, _ = _run_base_parser(add_help=False).parse_known_args([a for a in argv if a not in ("-h", "--help")])
    algo = host.algorithms.get(known.algo)
    rm = host.reward_models.get(known.reward_model)
    bench = host.benchmarks.get(known.benchmark)

    parser = _run_base_parser(add_help=True)
    parser.epilog = _benchmark_epilog(known.benchmark, bench.cls)
    for action in parser._actions:
        if action.dest == "budget":
            action.help = f"training episodes (default: the benchmark's default_budget, {bench.cls.Config().default_budget})"
    add_dataclass_arguments(parser, algo.cls.Config, title=f"{known.algo} options")
    add_dataclass_arguments(parser, rm.cls.Config, prefix="rm_", title=f"reward model {known.reward_model!r} options")
    add_dataclass_arguments(parser, EvaluationSettings, prefix="eval_", title="evaluation options")
    args = parser.parse_args(argv)
    plans = make_plans(
        host,
        benchmark=bench,
        bench_config=parse_overrides(bench.cls.Config, _benchmark_settings(args), what=f"--benchmark-set ({args.benchmark})"),
        algorithm=algo,
        algo_config=build_config(algo.cls.Config, args, what=f"--algo {args.algo}"),
        reward_model=rm,
        rm_config=build_config(rm.cls.Config, args, prefix="rm_", what=f"--reward-model {args.reward_model}"),
        budget=args.budget,
        evaluation=build_config(EvaluationSettings, args, prefix="eval_", what="evaluation"),
        seeds=args.seeds,
    )
    return host, plans, args


def cmd_run(argv: list[str]) -> int:
    from harness.running import distributed
    from harness.running.runner import resolve_device, run

    host, plans, args = parse_run(argv)
    # data-parallel (#10): --num-processes N starts N copies of this command; a copy (or a command under
    # accelerate launch / torchrun) finds WORLD_SIZE set, joins the process group and runs as its rank
    n, launched = args.num_processes, distributed.world_size_from_env()
    if launched > 1 and n not in (1, launched):
        raise UsageError(f"--num-processes {n}, but the launcher started {launched} processes")
    if max(n, launched) > 1:
        distributed.check_algorithm(host, plans, max(n, launched))
        if launched == 1:
            open_workspace(host, args).close()  # the folders' checks, before any process starts
            return distributed.launch(argv, n)
        args.device = str(distributed.init(resolve_device(args.device)))
        args.quiet = args.quiet or not distributed.state().is_main
        run = distributed.run
    try:
        with open_workspace(host, args) as workspace:
            results = []
            for plan in plans:
                results.append(run(plan, workspace))
                if distributed.state().is_main:
                    _print_result(results[-1])
    finally:
        distributed.close()
    if not distributed.state().is_main:  # rank 0 stores and reports the run's status; a crash here raised above
        return 0
    return 0 if all(r.status in ("finished", "skipped") for r in results) else 1


def _print_result(r) -> None:
    print(f"run {r.run_id}  {r.name}  {r.status}  (key {r.spec.experiment_key[:8]}, seed {r.seed})")  # the leaderboard's key
    if r.error:
        print(f"  {'note' if r.status == 'skipped' else 'error'}: {r.error}")
    if r.status == "finished":
        for key in sorted(r.metrics):
            if key.startswith("eval/"):
                print(f"  {key:<18} {metric_text(r.metrics[key])}")

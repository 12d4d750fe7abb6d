#!/usr/bin/env bash
# `harness bench ppo` (fp32 and bf16) and the TRL 1.12 peer (gc-free), back to back, at the three
# sizes of issue #12; ROUNDS rounds of the whole set, interleaved (a shared machine's speed drifts
# by ±15% over minutes: one round is not a figure), then per set-up the median over rounds and the
# median of each round's ours / peer ratio. Needs a quiet machine (nothing else running).
#   PEER_PYTHON=path/to/.venv-trl112/bin/python  (see ../shared/peers/README.md for that venv)
#   PEER_SCRIPT=../shared/peers/trl_ppo_peer.py   OUT=bench-out   ROUNDS=3   bash scripts/bench_vs_trl_peer.sh
set -euo pipefail
PEER_PYTHON=${PEER_PYTHON:?set PEER_PYTHON to the TRL 1.12 venv\'s python}
PEER_SCRIPT=$(realpath "${PEER_SCRIPT:-../shared/peers/trl_ppo_peer.py}")
HARNESS=${HARNESS:-.venv/bin/harness}
OUT=${OUT:-bench-out}
ROUNDS=${ROUNDS:-3}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
sizes=("2x64:--n-layer 2 --n-embd 64 --n-head 2 --total-episodes 4096"
       "4x256:--n-layer 4 --n-embd 256 --n-head 4 --total-episodes 1024"
       "6x512:--n-layer 6 --n-embd 512 --n-head 8 --response-length 32 --total-episodes 256")
for round in $(seq "$ROUNDS"); do
  for entry in "${sizes[@]}"; do
    name=${entry%%:*}; args=${entry#*:}
    for precision in fp32 bf16; do
      # shellcheck disable=SC2086
      "$HARNESS" bench ppo $args --precision "$precision" > "$OUT/ours_${name}_${precision}_r${round}.json"
    done
    # the peer writes its trainer's output folder into the working directory
    # shellcheck disable=SC2086
    (cd "$OUT" && TRL_EXPERIMENTAL_SILENCE=1 "$PEER_PYTHON" "$PEER_SCRIPT" --skip-gc-collect $args \
      > "peer_${name}_r${round}.json" 2> "peer_${name}_r${round}.err")
  done
done
python3 - "$OUT" <<'PY'
import collections, glob, json, os, statistics, sys

runs = collections.defaultdict(dict)  # (who, size, precision) -> round -> result
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*_r*.json"))):
    who, size, *precision, round_ = os.path.basename(path)[: -len(".json")].split("_")
    runs[(who, size, precision[0] if precision else "fp32")][round_] = json.loads(open(path).read().strip().splitlines()[-1])
median = statistics.median
for (who, size, precision), by_round in sorted(runs.items()):
    rates = [r["episodes_per_second"] for r in by_round.values()]
    line = f"{who:5s} {size:6s} {precision}  episodes/s median {median(rates):8.2f}  (rounds: {', '.join(f'{x:.1f}' for x in rates)})"
    if who == "ours":
        line += (f"  matmul GFLOP/s {median(r['achieved_matmul_gflops'] for r in by_round.values()):6.1f}"
                 f"  of fp32 peak {median(r['fraction_of_fp32_peak'] for r in by_round.values()):.3f}"
                 f"  peaks fp32 {median(r['peak_matmul_gflops']['fp32'] for r in by_round.values()):.0f}"
                 f" bf16 {median(r['peak_matmul_gflops']['bf16'] for r in by_round.values()):.0f}")
        peer = runs.get(("peer", size, "fp32"), {})
        ratios = [r["episodes_per_second"] / peer[k]["episodes_per_second"] for k, r in by_round.items() if k in peer]
        if ratios:
            line += f"  ours/peer median {median(ratios):.2f} (rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
        fp32 = runs.get(("ours", size, "fp32"), {})
        if precision != "fp32" and fp32:  # the README's bf16 column: against our own fp32, round by round
            gains = [r["episodes_per_second"] / fp32[k]["episodes_per_second"] for k, r in by_round.items() if k in fp32]
            line += f"  {precision}/fp32 median {median(gains):.2f}"
    print(line)
PY

#!/usr/bin/env bash
# `harness bench ppo` (fp32 and bf16) and the TRL 1.12 peer (gc-free), back to back, at the three
# sizes of issue #12; prints one line per run. Needs a quiet machine (nothing else running).
#   PEER_PYTHON=path/to/.venv-trl112/bin/python  (see ../shared/peers/README.md for that venv)
#   PEER_SCRIPT=../shared/peers/trl_ppo_peer.py   OUT=bench-out   bash scripts/bench_vs_trl_peer.sh
set -euo pipefail
PEER_PYTHON=${PEER_PYTHON:?set PEER_PYTHON to the TRL 1.12 venv\'s python}
PEER_SCRIPT=$(realpath "${PEER_SCRIPT:-../shared/peers/trl_ppo_peer.py}")
HARNESS=${HARNESS:-.venv/bin/harness}
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
sizes=("2x64:--n-layer 2 --n-embd 64 --n-head 2 --total-episodes 4096"
       "4x256:--n-layer 4 --n-embd 256 --n-head 4 --total-episodes 1024"
       "6x512:--n-layer 6 --n-embd 512 --n-head 8 --response-length 32 --total-episodes 256")
for entry in "${sizes[@]}"; do
  name=${entry%%:*}; args=${entry#*:}
  for precision in fp32 bf16; do
    # shellcheck disable=SC2086
    "$HARNESS" bench ppo $args --precision "$precision" > "$OUT/ours_${name}_${precision}.json"
  done
  # the peer writes its trainer's output folder into the working directory
  # shellcheck disable=SC2086
  (cd "$OUT" && TRL_EXPERIMENTAL_SILENCE=1 "$PEER_PYTHON" "$PEER_SCRIPT" --skip-gc-collect $args > "peer_${name}.json" 2> "peer_${name}.err")
done
python3 - "$OUT" <<'PY'
import glob, json, os, sys
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    d = json.loads(open(path).read().strip().splitlines()[-1])
    print(f"{os.path.basename(path):24s} episodes/s {d['episodes_per_second']:8.2f}  wall {d['wall_seconds']:7.2f} s  "
          f"matmul GFLOP/s {d.get('achieved_matmul_gflops')}  peaks {d.get('peak_matmul_gflops')}  "
          f"of fp32 peak {d.get('fraction_of_fp32_peak')}")
PY

#!/usr/bin/env bash
# Issue #12's GPU checks (goal 6, and #10's CUDA paths) as ONE short run on a lent GPU machine
# (the `device` tool: one H200, Python 3.12 with CUDA torch 2.11 and transformers, no network).
#
#   here, once per session (needs the package index):   bash scripts/gpu_check.sh prepare
#       puts into .whl/ (git-ignored): this project as a wheel, the Python 3.12 wheels of its
#       dependencies that the GPU image lacks (our versions), and under .whl/peer/ TRL 1.12 with
#       a CUDA copy of the TRL 1.12 peer (../shared/peers/trl_ppo_peer.py with use_cpu=False)
#   there, one device `run` (carry [".whl"], timeout_s 600):   bash scripts/gpu_check.sh run
#       installs them under /tmp/site (no index), then writes to $OUT: env.txt (GPU, versions,
#       pip check), results.jsonl (one JSON line per bench: ours fp32 and bf16 and the peer, at
#       GPT-2 6×512 and at GPT-2 124M = 12×768 with 12 heads), run.txt (`harness run --algo ppo
#       --seeds 0 1 --device cuda` on the embedded benchmark, with its leaderboard) and log.txt.
#       Each step has its own time limit and a failing step does not stop the others.
#
#   DEVICE=cpu QUICK=1 OUT=/tmp/gpu-rehearsal bash scripts/gpu_check.sh run
#       rehearses the run step here (tiny sizes, this venv, nothing installed).
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=.whl
# What the GPU image lacks or holds in other versions (see the device tool's KINDS.md), at the
# versions this project is tested with; torch, numpy, pandas, pyarrow, scipy stay the image's.
DEPENDENCIES=(trl==1.16.0 transformers==5.24.0 datasets==5.2.0 evaluate==0.4.6 dill==0.4.1 multiprocess==0.70.19
              sqlalchemy==2.1.9 vadersentiment==3.3.2)

prepare() {
  set -e
  rm -rf "$WHEELS" && mkdir -p "$WHEELS/peer"
  local platform=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
                  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
  python3 -m pip download -q --no-deps "${platform[@]}" -d "$WHEELS" "${DEPENDENCIES[@]}"
  python3 -m pip download -q --no-deps "${platform[@]}" -d "$WHEELS/peer" trl==1.12.0
  python3 -m pip wheel -q --no-deps -w "$WHEELS" .
  sed -e 's/use_cpu=True/use_cpu=False/' -e 's/"device": "cpu"/"device": str(torch.cuda.get_device_name(0))/' \
    "${PEER_SCRIPT:-../shared/peers/trl_ppo_peer.py}" > "$WHEELS/peer/trl_ppo_peer_cuda.py"
  grep -q "use_cpu=False" "$WHEELS/peer/trl_ppo_peer_cuda.py"
  du -sh "$WHEELS"
}

run() {
  local device=${DEVICE:-cuda} out=${OUT:?OUT is the folder results go to} python peer_python peer_script peer_path=""
  mkdir -p "$out"
  exec > >(tee -a "$out/log.txt") 2>&1
  if [[ $device == cpu ]]; then  # the rehearsal: this checkout's venv, the peer in its own (PEER_PYTHON)
    python=$PWD/.venv/bin/python
    peer_python=${PEER_PYTHON:?the rehearsal runs the peer with PEER_PYTHON, its TRL 1.12 venv}
    peer_script=$(realpath "${PEER_SCRIPT:-../shared/peers/trl_ppo_peer.py}")
  else
    python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
    python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site-peer "$WHEELS"/peer/*.whl || exit 1
    export PYTHONPATH=/tmp/site
    python=$(command -v python3) peer_python=$(command -v python3) peer_path=/tmp/site-peer:/tmp/site
    peer_script=$PWD/$WHEELS/peer/trl_ppo_peer_cuda.py
  fi
  local harness=("$python" -m harness.cli)
  {
    date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
    "$python" -c "import torch, transformers, trl; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0)); print('transformers', transformers.__version__, 'trl', trl.__version__)"
    "$python" -m pip check 2>&1 | head -20
  } > "$out/env.txt" 2>&1
  local sizes
  if [[ ${QUICK:-0} == 1 ]]; then
    sizes=("2x64:--n-layer 2 --n-embd 64 --n-head 2 --total-episodes 64")
  else
    sizes=("6x512:--n-layer 6 --n-embd 512 --n-head 8 --response-length 32 --total-episodes 512"
           "12x768:--n-layer 12 --n-embd 768 --n-head 12 --response-length 32 --total-episodes 512")
  fi
  for entry in "${sizes[@]}"; do
    local name=${entry%%:*} args=${entry#*:}
    for precision in fp32 bf16; do
      echo "== ours $name $precision"
      # shellcheck disable=SC2086
      timeout 150 "${harness[@]}" bench ppo $args --device "$device" --precision "$precision" \
        | tail -n 1 | sed "s/^{/{\"who\": \"ours\", \"size\": \"$name\", /" >> "$out/results.jsonl" || echo "ours $name $precision failed"
    done
    echo "== peer $name"
    # shellcheck disable=SC2086  # (in /tmp: the peer writes its trainer's output folder where it runs)
    (cd /tmp && TRL_EXPERIMENTAL_SILENCE=1 PYTHONPATH=$peer_path timeout 150 "$peer_python" "$peer_script" --skip-gc-collect $args) \
      | tail -n 1 | sed "s/^{/{\"who\": \"peer\", \"size\": \"$name\", /" >> "$out/results.jsonl" || echo "peer $name failed"
  done
  echo "== harness run --algo ppo --device $device"
  local budget=()
  [[ ${QUICK:-0} == 1 ]] && budget=(--budget 64)
  timeout 240 "${harness[@]}" run --algo ppo --seeds 0 1 --device "$device" "${budget[@]}" --quiet \
    --store /tmp/gpu-check-store.sqlite --results-dir /tmp/gpu-check-runs > "$out/run.txt" 2>&1 || echo "harness run failed"
  "${harness[@]}" leaderboard --store /tmp/gpu-check-store.sqlite >> "$out/run.txt" 2>&1 || true
  echo "== done $(date -u)"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: bash scripts/gpu_check.sh prepare|run (see the comments at its top)" >&2; exit 2 ;;
esac

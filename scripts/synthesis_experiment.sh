#!/usr/bin/env bash
# The measurements of EXPERIMENTS.md, "Synthesis that runs what it writes":
# random tasks of the paper's distribution, N per program length 1..10, each
# with 8 examples of which the last 4 are held out (never shown to the search),
# evaluated with every search mode, one worker (one core).
#   bash scripts/synthesis_experiment.sh [N=20] [OUT_DIR=synthesis-experiment] [MODEL=models/rf-string/model.ckpt]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
OUT=${2:-synthesis-experiment}
MODEL=${3:-models/rf-string/model.ckpt}
LP=./build/lpsynth
mkdir -p "$OUT"
export LPSYNTH_PROGRESS=0 OPENBLAS_NUM_THREADS=1
: >"$OUT/tasks.jsonl"
for k in 1 2 3 4 5 6 7 8 9 10; do
  "$LP" gen --domain string -n "$N" --seed $((7000 + k)) --min-size "$k" --max-size "$k" --examples 8 \
    --out "$OUT/len$k.jsonl"
  cat "$OUT/len$k.jsonl" >>"$OUT/tasks.jsonl"
done
run() { # NAME ARGS...
  local name=$1
  shift
  "$LP" eval --domain string --tasks "$OUT/tasks.jsonl" --holdout 4 --json --details "$OUT/$name.details.jsonl" "$@" \
    >"$OUT/$name.json"
  python3 - "$OUT/$name.json" "$name" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
for r in o["runs"]:
    print(f'{sys.argv[2]:>16} B={r["beam"]:<3} solved {r["solved"]}/{o["tasks"]} ({100*r["accuracy"]:.1f}%)  '
          f'generalised {r["generalised"]}/{r["held_tasks"]} ({100*(r["generalisation"] or 0):.1f}%)  '
          f'median {r["median_seconds"]:.3f} s  p90 {r["p90_seconds"]:.3f} s  max {r["max_seconds"]:.3f} s  '
          f'timed out {r["timed_out"]}  found by {r["found_by"]}')
PY
}
run solver-prior --search solver
run solver-model --search solver --model "$MODEL"
run solver-modelrank --search solver --model "$MODEL" --rank model
run auto --search auto --model "$MODEL" --beam 10
run beam --search beam --model "$MODEL" --beam 10
run guided --search guided --model "$MODEL" --beam 10

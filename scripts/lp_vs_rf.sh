#!/usr/bin/env bash
# The Latent Programmer vs RobustFill[Transformer] comparison of EXPERIMENTS.md:
# both trained at once (one thread each, so each gets one core of a 2-core
# machine) for the same wall-clock budget on the same stream of generated
# string tasks (data seed 1), then evaluated on the 1,000 held-out tasks at
# B = 1, 10, 100, and the LP's latent-beam sweep at B = 10.
# usage: bash scripts/lp_vs_rf.sh [BUILD_DIR] [OUT_DIR] [BUDGET]   (default build, lp-vs-rf, 2h)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=${2:-lp-vs-rf}
budget=${3:-2h}
mkdir -p "$out"
cd "$out"
L="$build/lpsynth"
tasks="$root/domains/string/heldout-1000.jsonl"

for m in rf lp; do
  cfg=$root/models/robustfill-string-1h.cfg
  [ $m = lp ] && cfg=$root/models/lp-string-2h.cfg
  "$L" train --domain string --config "$cfg" --steps 1000000 --time-limit "$budget" \
    --threads 1 --seed 1 --data-seed 1 --out $m.ckpt --log $m.csv --log-every 10 --json \
    > $m.train.json 2> $m.train.err &
done
wait

"$L" eval --domain string --model rf.ckpt --tasks "$tasks" --beam 1,10,100 --max-len 80 \
  --threads 2 --json --details rf.details.jsonl > rf.eval.json
"$L" eval --domain string --model lp.ckpt --tasks "$tasks" --beam 1,10,100 --max-len 80 \
  --threads 2 --json --details lp.details.jsonl > lp.eval.json
"$L" eval --domain string --model lp.ckpt --tasks "$tasks" --beam 10 --latent-beam 1,2,3,5,10 \
  --max-len 80 --threads 2 --json --details lp.sweep.details.jsonl > lp.sweep.json
echo "results in $out: rf.eval.json lp.eval.json lp.sweep.json"

#!/usr/bin/env bash
# Short, seeded, side-by-side training runs for finding a training recipe
# (EXPERIMENTS.md, "The Latent Programmer's recipe"): each config trains for
# STEPS steps on the same stream of generated string tasks (--seed 1
# --data-seed 1, one thread each, two runs at a time), then is evaluated on
# 200 of the held-out tasks (every 5th line of domains/string/heldout-1000.jsonl,
# 20 per program length) with --search beam and --search guided at B = 10.
# A summary line per config: the mean of the last 100 logged steps' loss,
# token accuracy, latent accuracy and codebook perplexity, and the accuracies.
#
# usage: bash scripts/lp_recipe.sh LPSYNTH OUT_DIR STEPS CFG...
#   e.g. bash scripts/lp_recipe.sh build/lpsynth recipe 1500 a.cfg b.cfg
# Results: OUT_DIR/NAME.{csv,train.json,beam.json,guided.json} for each
# config NAME.cfg, and OUT_DIR/summary.txt.
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: bash scripts/lp_recipe.sh LPSYNTH OUT_DIR STEPS CFG..." >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
out=$2
steps=$3
shift 3
for c in "$@"; do
  [ -f "$c" ] || { echo "lp_recipe.sh: $c: no such config" >&2; exit 2; }
done
mkdir -p "$out"
awk 'NR % 5 == 1' "$root/domains/string/heldout-1000.jsonl" > "$out/heldout-200.jsonl"

train() { # CFG NAME
  "$bin" train --domain string --config "$1" --steps "$steps" --threads 1 --seed 1 \
    --data-seed 1 --out "$out/$2.ckpt" --log "$out/$2.csv" --log-every 25 --json \
    > "$out/$2.train.json" 2> "$out/$2.train.err"
}
evaluate() { # NAME
  for s in beam guided; do
    "$bin" eval --domain string --model "$out/$1.ckpt" --tasks "$out/heldout-200.jsonl" \
      --beam 10 --max-len 80 --search "$s" --threads 1 --json > "$out/$1.$s.json"
  done
}

names=()
for c in "$@"; do names+=("$(basename "$c" .cfg)"); done
# two at a time, one thread each
i=0
while [ $i -lt ${#names[@]} ]; do
  pids=()
  for j in $i $((i + 1)); do
    [ $j -lt ${#names[@]} ] || continue
    (train "${@:$((j + 1)):1}" "${names[$j]}" && evaluate "${names[$j]}") &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  i=$((i + 2))
done

python3 - "$out" "${names[@]}" <<'PY' | tee "$out/summary.txt"
import csv, json, sys
out, names = sys.argv[1], sys.argv[2:]
print("%-14s %8s %8s %8s %8s %8s %8s %7s" % ("run", "steps", "loss", "tok_acc", "lat_acc",
                                              "ppl", "beam@10", "guided"))
for n in names:
    rows = list(csv.DictReader(open(f"{out}/{n}.csv")))
    last = rows[-4:]  # 4 rows of 25 steps
    mean = lambda k: sum(float(r[k]) for r in last) / len(last)
    acc = {}
    for s in ("beam", "guided"):
        o = json.load(open(f"{out}/{n}.{s}.json"))
        acc[s] = o["runs"][0]["accuracy"]
    print("%-14s %8s %8.3f %8.3f %8.3f %8.2f %7.1f%% %6.1f%%" % (
        n, rows[-1]["step"], mean("loss"), mean("token_acc"), mean("latent_acc"),
        mean("codebook_perplexity"), 100 * acc["beam"], 100 * acc["guided"]))
PY

#!/usr/bin/env bash
# The paper's Figure 3(a) at our scale: accuracy at B = 10 against parameter
# count for RobustFill[LSTM], RobustFill[Transformer] and the Latent Programmer
# at three sizes each, every run trained for the same wall-clock budget on one
# thread (--seed 1 --data-seed 1) with the short-budget optimiser of
# scripts/table1.sh (Adam lr 1e-3, 500 warm-up steps, no dropout), then
# evaluated with the paper's search (--search beam, B = 10) on the held-out
# tasks. The medium size is the configuration of Table 1 (scripts/table1.sh
# trains exactly the same run), so a Table 1 folder can stand in for it.
#
#   sizes (d_model / d_ff / heads / layers per stack; LSTM: embedding / hidden)
#     small   64 / 256 / 4 / 2       LSTM  64 / 256
#     medium 128 / 512 / 4 / 3       LSTM 128 / 512
#     large  256 / 1024 / 8 / 4      LSTM 256 / 1024
#
# usage: [JOBS=N] bash scripts/fig3a.sh LPSYNTH OUT_DIR BUDGET [TASKS] [SIZES] [SYSTEMS]
#   BUDGET: train --time-limit (8m, 1h); TASKS: default
#   domains/string/heldout-1000.jsonl; SIZES: any of small medium large
#   (default all three); SYSTEMS: any of rf-lstm rf lp (default all three);
#   JOBS: runs at a time (default 2: one per core of a 2-core machine)
# Results: OUT_DIR/SYSTEM-SIZE.{cfg,ckpt,csv,train.json,eval.json} and
# OUT_DIR/fig3a.md (parameters, steps, tasks, accuracy at B = 10 of every run
# found in OUT_DIR, so runs made in parts are summarised together).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=runs_common.sh
. "$root/scripts/runs_common.sh"
runs_init "[JOBS=N] bash scripts/fig3a.sh LPSYNTH OUT_DIR BUDGET [TASKS] [SIZES] [SYSTEMS]" "$@"
sizes=${5:-"small medium large"}
systems=${6:-"rf-lstm rf lp"}

size_keys() { # SYSTEM SIZE: the size's sed expressions into the array keys
  local d f h l
  case "$2" in
    small) d=64 f=256 h=4 l=2 ;;
    medium) d=128 f=512 h=4 l=3 ;;
    large) d=256 f=1024 h=8 l=4 ;;
    *) echo "fig3a.sh: unknown size $2 (small medium large)" >&2; return 2 ;;
  esac
  keys=(-e "s/^d_model *=.*/d_model = $d/" -e "s/^d_ff *=.*/d_ff = $f/")
  if [ "$1" != rf-lstm ]; then
    keys+=(-e "s/^n_heads *=.*/n_heads = $h/" -e "s/^enc_layers *=.*/enc_layers = $l/")
    keys+=(-e "s/^dec_layers *=.*/dec_layers = $l/")
  fi
}
runs=()
for s in $systems; do
  case "$s" in rf-lstm | rf | lp) ;; *) echo "fig3a.sh: unknown system $s (rf-lstm rf lp)" >&2; exit 2 ;; esac
  for z in $sizes; do
    size_keys "$s" "$z"
    runs+=("$s-$z")
  done
done

run_one() { # SYSTEM-SIZE
  local s=${1%-*} z=${1##*-} keys=()
  size_keys "$s" "$z"
  short_cfg "$s" "${keys[@]}" > "$out/$1.cfg"
  train_eval "$1" 10 "$tasks"
}
run_jobs run_one "${runs[@]}"

python3 - "$out" <<'PY' | tee "$out/fig3a.md"
import glob, json, os, sys
out = sys.argv[1]
names = {"rf-lstm": "RobustFill[LSTM]", "rf": "RobustFill[Transformer]", "lp": "Latent Programmer"}
order = {"small": 0, "medium": 1, "large": 2}
rows = []
for path in glob.glob(os.path.join(out, "*.eval.json")):
    run = os.path.basename(path)[:-len(".eval.json")]
    s, z = run.rsplit("-", 1)
    if s not in names or z not in order:
        continue
    tr = json.load(open(os.path.join(out, run + ".train.json")))
    ev = json.load(open(path))
    acc = {r["beam"]: r["accuracy"] for r in ev["runs"]}
    rows.append((list(names).index(s), order[z], names[s], z, tr["num_params"], tr["end_step"],
                 tr["tasks_seen"], 100 * acc[10]))
print("| system | size | parameters | steps | tasks | B = 10 |")
print("|---|---|---|---|---|---|")
for r in sorted(rows):
    print("| %s | %s | %d | %d | %d | %.1f%% |" % r[2:])
PY

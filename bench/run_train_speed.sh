#!/usr/bin/env bash
# Training throughput, side by side: an old lpsynth binary against a new one on
# the real training step of three configs, runs alternating (old, new, old, new,
# ...) on the same machine with the same seeds and tasks, so load changes hit
# both alike. Each run is `lpsynth train ... --steps N --threads 2 --json` and
# reports its own tasks/s (the whole run: first step and final checkpoint
# included, the same for both binaries).
#
#   bash bench/run_train_speed.sh OLD_LPSYNTH NEW_LPSYNTH [ROUNDS] [CONFIGS]
#
# CONFIGS: any of rf-string lp-string rf-python (default: all three). The
# python runs need a tokenizer and pairs: PY_TOK (default: trained into a temp
# folder from PY_DATA with 16000 pieces) and PY_DATA (default
# ../shared/data/python/cdc-valid.jsonl). Prints one line per run and a table
# of medians and new/old ratios.
set -euo pipefail
old=${1:?usage: run_train_speed.sh OLD_LPSYNTH NEW_LPSYNTH [ROUNDS] [CONFIGS]}
new=${2:?usage: run_train_speed.sh OLD_LPSYNTH NEW_LPSYNTH [ROUNDS] [CONFIGS]}
rounds=${3:-3}
configs=${4:-"rf-string lp-string rf-python"}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py_data=${PY_DATA:-$here/../shared/data/python/cdc-valid.jsonl}

args_for() {
  case "$1" in
    rf-string) echo "--domain string --config $here/models/robustfill-string-1h.cfg --steps 12" ;;
    lp-string) echo "--domain string --config $here/models/lp-string-2h.cfg --steps 8" ;;
    rf-python)
      echo "--domain python --domain-options $py_tok --data $py_data --config $here/models/robustfill-python.cfg --steps 6"
      ;;
    *) echo "unknown config $1" >&2; exit 2 ;;
  esac
}

py_tok=${PY_TOK:-}
if [[ " $configs " == *" rf-python "* && -z "$py_tok" ]]; then
  py_tok=$tmp/tok.spm
  "$new" tokenizer train --domain python --corpus "$py_data" --vocab 16000 --out "$py_tok" >&2
fi

results=$tmp/results.txt
: > "$results"
for cfg in $configs; do
  for ((r = 1; r <= rounds; r++)); do
    for which in old new; do
      bin=$old
      [ "$which" = new ] && bin=$new
      # shellcheck disable=SC2046
      tps=$("$bin" train $(args_for "$cfg") --threads 2 --seed 1 --checkpoint-every 0 \
              --out "$tmp/$which.ckpt" --json 2>/dev/null |
            python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["tasks_per_s"])')
      load=$(cut -d' ' -f1 /proc/loadavg)
      echo "$cfg round $r $which: $tps tasks/s (load $load)"
      echo "$cfg $which $tps" >> "$results"
      rm -f "$tmp/$which.ckpt"*
    done
  done
done
python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print("\n| config | old tasks/s (median) | new tasks/s (median) | new / old |")
print("|---|---|---|---|")
for cfg in dict.fromkeys(r[0] for r in rows):
    o = statistics.median(float(r[2]) for r in rows if r[0] == cfg and r[1] == "old")
    n = statistics.median(float(r[2]) for r in rows if r[0] == cfg and r[1] == "new")
    print(f"| {cfg} | {o:.2f} | {n:.2f} | {n / o:.2f}x |")
EOF

# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # root: set by the sourcing script; tasks: used there
# Helpers shared by scripts/table1.sh, fig3a.sh and string_models.sh (sourced, not run):
# the systems' base configurations, the short-budget configuration, one
# train-then-evaluate run, and running the runs JOBS at a time.
# Needs root (the repository); runs_init sets bin (lpsynth), out (the results
# folder), budget and tasks.

# runs_init USAGE "$@": checks for LPSYNTH OUT_DIR BUDGET (else prints USAGE,
# exits 2) and JOBS; sets bin, out (made), budget and tasks (4th argument,
# default the held-out set).
runs_init() {
  local usage=$1
  shift
  if [ $# -lt 3 ]; then
    echo "usage: $usage" >&2
    exit 2
  fi
  case "${JOBS:-2}" in 1 | 2) ;; *) echo "JOBS must be 1 or 2 (got $JOBS)" >&2; exit 2 ;; esac
  bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
  out=$2
  budget=$3
  tasks=${4:-$root/domains/string/heldout-1000.jsonl}
  mkdir -p "$out"
}

# base_cfg SYSTEM: the shipped configuration a system starts from.
base_cfg() {
  case "$1" in
    rf-lstm) echo "$root/models/robustfill-lstm-string.cfg" ;;
    rf) echo "$root/models/robustfill-string.cfg" ;;
    lp) echo "$root/models/lp-string-2h.cfg" ;;
    ae) echo "$root/models/latent-ae-string.cfg" ;;
    vae) echo "$root/models/latent-vae-string.cfg" ;;
    *) echo "unknown system $1 (rf-lstm rf lp ae vae)" >&2; return 2 ;;
  esac
}

# short_cfg SYSTEM [SED-ARGS...]: the base configuration with the short-budget
# optimiser of the 2-hour runs (500 warm-up steps, no dropout, a checkpoint
# every 200 steps) and the given extra sed expressions, on stdout.
short_cfg() {
  local s=$1
  shift
  sed -e 's/^warmup *=.*/warmup = 500/' -e 's/^dropout *=.*/dropout = 0/' \
    -e 's/^attn_dropout *=.*/attn_dropout = 0/' -e 's/^checkpoint_every *=.*/checkpoint_every = 200/' \
    "$@" "$(base_cfg "$s")"
}

# train_eval NAME BEAMS TASKS: trains $out/NAME.cfg for $budget on one thread
# (--seed 1 --data-seed 1), then evaluates it at BEAMS with --search beam.
train_eval() {
  "$bin" train --domain string --config "$out/$1.cfg" --steps 100000000 --time-limit "$budget" \
    --threads 1 --seed 1 --data-seed 1 --out "$out/$1.ckpt" --log "$out/$1.csv" --log-every 50 \
    --json > "$out/$1.train.json" 2> "$out/$1.train.err"
  "$bin" eval --domain string --model "$out/$1.ckpt" --tasks "$3" --beam "$2" \
    --max-len 80 --search beam --threads 1 --json > "$out/$1.eval.json" 2> "$out/$1.eval.err"
}

# run_jobs FN ITEM...: FN ITEM for every item, $JOBS (1 or 2, default 2) at a time.
run_jobs() {
  local fn=$1 jobs=${JOBS:-2}
  shift
  case "$jobs" in 1 | 2) ;; *) echo "JOBS must be 1 or 2 (got $jobs)" >&2; return 2 ;; esac
  while [ $# -gt 0 ]; do
    local pids=()
    "$fn" "$1" & pids+=($!)
    shift
    if [ $# -gt 0 ] && [ "$jobs" -eq 2 ]; then
      "$fn" "$1" & pids+=($!)
      shift
    fi
    for p in "${pids[@]}"; do wait "$p"; done
  done
}

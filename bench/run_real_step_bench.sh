#!/usr/bin/env bash
# The real RobustFill training step, lpsynth against its PyTorch twin
# (bench/torch_rf_step.py), on the same tasks from one task file (issue 17).
#
# usage: bash bench/run_real_step_bench.sh LPSYNTH [MODE] [ROUNDS] [STEPS]
#   LPSYNTH  the lpsynth binary to measure (e.g. build/lpsynth, or the build of an
#            older commit in a git worktree); it and its plugins/ folder are copied
#            first, so a rebuild during the run does not change what is measured
#   MODE     speed   (default) ROUNDS alternating runs of STEPS steps each:
#                    `lpsynth train --threads 2` then the twin; a table of tasks/s
#                    (as lpsynth train reports it: steps x batch over the loop's
#                    wall time) and tasks per CPU-second (lpsynth: the whole
#                    process; the twin: its training loop), the ratios of the
#                    medians, and the load average before and after each run
#            losses  the loss of the first STEPS steps of both (each its own
#                    initialisation), and the same-function check: the twin started
#                    from lpsynth's checkpoint of step 1 recomputes lpsynth's losses
#                    of steps 2..6
#            threads the twin's thread settings on these cores (torch threads 1/2 x
#                    OpenBLAS threads 1/2), ROUNDS runs of STEPS steps each
#   ROUNDS   default 3; STEPS default 12 (speed, threads) or 20 (losses)
# environment:
#   CONFIG         model config (default models/robustfill-string-1h.cfg)
#   TASKS          task file to use (default: `LPSYNTH gen --domain string -n 640
#                  --seed 17`, written to the scratch folder)
#   TORCH_THREADS  torch.set_num_threads of the twin (default 1)
#   TORCH_BLAS     OPENBLAS_NUM_THREADS of the twin (default 1)
#   LABEL          what the binary is, for the header (e.g. "commit 83b271d")
#   KEEP=1         keep the scratch folder (printed)
# PyTorch: Debian's python3-torch (1.13) under /usr/bin/python3, CPU.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
[ $# -ge 1 ] || { sed -n '4,30p' "$0" >&2; exit 2; }
bin_in=$1
mode=${2:-speed}
rounds=${3:-3}
case $mode in
  speed|threads) steps=${4:-12} ;;
  losses) steps=${4:-20} ;;
  *) echo "unknown mode $mode (speed, losses, threads)" >&2; exit 2 ;;
esac
config=${CONFIG:-$root/models/robustfill-string-1h.cfg}
tthreads=${TORCH_THREADS:-1}
tblas=${TORCH_BLAS:-1}
py=/usr/bin/python3
twin=$here/torch_rf_step.py
[ -x "$bin_in" ] || { echo "no lpsynth binary at $bin_in" >&2; exit 1; }
$py -c "import torch" 2>/dev/null ||
  { echo "PyTorch missing: apt-get install python3-torch" >&2; exit 1; }

tmp=$(mktemp -d /tmp/rf_real_bench.XXXXXX)
if [ "${KEEP:-0}" = 1 ]; then echo "scratch: $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi

# a private copy of the binary and its plugins (found beside it in plugins/)
mkdir -p "$tmp/bin"
cp "$bin_in" "$tmp/bin/lpsynth"
bindir=$(cd "$(dirname "$bin_in")" && pwd)
[ -d "$bindir/plugins" ] && cp -r "$bindir/plugins" "$tmp/bin/plugins"
lp=$tmp/bin/lpsynth
src=$(git -C "$bindir" rev-parse --short HEAD 2>/dev/null || echo "?")
dirty=$(git -C "$bindir" status --porcelain --untracked-files=no 2>/dev/null |
          grep -c . || true)
echo "lpsynth: ${LABEL:+$LABEL, }$bin_in (built $(date -r "$bin_in" '+%F %T'), sha256 $(sha256sum "$bin_in" | cut -c1-16)," \
     "its source tree now at $src with $dirty modified tracked files)"
echo "pytorch: $($py -c 'import torch; print(torch.__version__)'), twin threads $tthreads," \
     "OPENBLAS_NUM_THREADS=$tblas; config $config; $(nproc) cores"

if [ -n "${TASKS:-}" ]; then
  tasks=$TASKS
else
  tasks=$tmp/tasks.jsonl
  nice "$lp" gen --domain string -n 640 --seed 17 --out "$tasks"
fi
echo "tasks: $tasks ($(wc -l < "$tasks") lines, sha256 $(sha256sum "$tasks" | cut -c1-16))"

load() { cut -d' ' -f1-3 /proc/loadavg; }
pre=""  # "nice" for the runs that are not timed

# lpsynth train (the speed mode spells its timed command out); prints its JSON summary
run_lp() { # steps out [extra args]
  local n=$1 out=$2
  shift 2
  LPSYNTH_PROGRESS=0 $pre "$lp" train --domain string --config "$config" --data "$tasks" \
    --steps "$n" --threads 2 --out "$out" --checkpoint-every 0 --json "$@"
}
run_torch() { # threads blas steps [extra args]
  local t=$1 b=$2 n=$3
  shift 3
  OPENBLAS_NUM_THREADS=$b $pre $py "$twin" --config "$config" --data "$tasks" --steps "$n" \
    --threads "$t" --json "$@"
}
field() { $py -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

case $mode in
speed)
  lps=() tps=() lpc=() tpc=()
  np_lp=""
  for r in $(seq "$rounds"); do
    l0=$(load)
    o=$(/usr/bin/time -f '%U %S' -o "$tmp/cpu" env LPSYNTH_PROGRESS=0 "$lp" train --domain string \
          --config "$config" --data "$tasks" --steps "$steps" --threads 2 --out "$tmp/x.ckpt" \
          --checkpoint-every 0 --json)
    np_lp=$(field "$o" num_params)
    l1=$(load)
    t=$(run_torch "$tthreads" "$tblas" "$steps" --expect-params "$np_lp")
    l2=$(load)
    lps+=("$(field "$o" tasks_per_s)")
    tps+=("$(field "$t" tasks_per_s)")
    # lpsynth: the whole process's CPU time (model setup and producer thread included)
    lpc+=("$(awk -v bs="$(field "$o" tasks_seen)" '{print bs / ($1 + $2)}' "$tmp/cpu")")
    tpc+=("$(field "$t" tasks_per_cpu_s)")
    printf 'round %d: lpsynth %.2f tasks/s, %.2f tasks/CPU-s (load %s); pytorch %.2f tasks/s, %.2f tasks/CPU-s, median %.0f ms/step (load %s; after %s)\n' \
      "$r" "${lps[-1]}" "${lpc[-1]}" "$l0" "${tps[-1]}" "${tpc[-1]}" "$(field "$t" median_ms)" "$l1" "$l2"
  done
  echo "parameters: lpsynth $np_lp, pytorch $(field "$t" num_params) (checked equal)"
  $py - "$steps" "${lps[*]}" "${tps[*]}" "${lpc[*]}" "${tpc[*]}" <<'PY'
import statistics, sys
steps = sys.argv[1]
o, t, oc, tc = ([float(x) for x in a.split()] for a in sys.argv[2:6])
med = statistics.median
print(f"\n| | {' | '.join(f'run {i + 1}' for i in range(len(o)))} | median |")
print(f"|---|{'---|' * len(o)}---|")
for name, v in (("lpsynth tasks/s", o), ("PyTorch tasks/s", t),
                ("lpsynth tasks per CPU-second", oc), ("PyTorch tasks per CPU-second", tc)):
    print(f"| {name} | {' | '.join(f'{x:.2f}' for x in v)} | **{med(v):.2f}** |")
print(f"\n{steps} steps per run; lpsynth / PyTorch = {med(o) / med(t):.2f}x in tasks/s, "
      f"{med(oc) / med(tc):.2f}x in tasks per CPU-second (ratios of the medians)")
PY
  ;;
losses)
  pre=nice
  # lpsynth's losses per step (its CSV log, one row a step), the twin's
  o=$(run_lp "$steps" "$tmp/l.ckpt" --log "$tmp/l.csv" --log-every 1)
  t=$(run_torch "$tthreads" "$tblas" "$steps" --expect-params "$(field "$o" num_params)")
  # the same function: the twin from lpsynth's step-1 checkpoint, steps 2..6
  run_lp 1 "$tmp/s1.ckpt" > /dev/null
  c=$(run_torch "$tthreads" "$tblas" $((steps - 1 < 5 ? steps - 1 : 5)) --from-ckpt "$tmp/s1.ckpt")
  echo "parameters: lpsynth $(field "$o" num_params), pytorch $(field "$t" num_params)"
  $py - "$tmp/l.csv" "$t" "$c" <<'PY'
import csv, json, sys
lp = [float(r["loss"]) for r in csv.DictReader(open(sys.argv[1]))]
tw, ck = json.loads(sys.argv[2])["loss"], json.loads(sys.argv[3])
print("\nEach from its own initialisation (lpsynth seed 1, torch seed 1), same tasks:")
print("| step | " + " | ".join(str(i + 1) for i in range(len(lp))) + " |")
print("|---|" + "---|" * len(lp))
print("| lpsynth loss | " + " | ".join(f"{v:.3f}" for v in lp) + " |")
print("| PyTorch loss | " + " | ".join(f"{v:.3f}" for v in tw) + " |")
k = ck["first_step"]
print(f"\nThe twin from lpsynth's checkpoint of step {k - 1} (parameters and Adam state):")
print("| step | lpsynth | twin | difference |")
print("|---|---|---|---|")
worst = 0.0
for i, v in enumerate(ck["loss"]):
    ref = lp[k - 1 + i]
    worst = max(worst, abs(v - ref))
    print(f"| {k + i} | {ref:.6g} | {v:.6g} | {v - ref:+.1e} |")
print(f"\nlargest difference {worst:.1e} (lpsynth's log rounds to 6 digits)")
sys.exit(0 if worst < 1e-3 else 1)
PY
  ;;
threads)
  declare -A res
  for r in $(seq "$rounds"); do
    for tb in "1 1" "1 2" "2 1" "2 2"; do
      set -- $tb
      t=$(run_torch "$1" "$2" "$steps")
      res["$1 $2"]+="$(field "$t" tasks_per_s) "
      printf 'round %d: torch threads %s, OPENBLAS_NUM_THREADS %s: %.2f tasks/s, %.2f tasks/CPU-s, median %.0f ms/step (load %s)\n' \
        "$r" "$1" "$2" "$(field "$t" tasks_per_s)" "$(field "$t" tasks_per_cpu_s)" "$(field "$t" median_ms)" "$(load)"
    done
  done
  for k in "1 1" "1 2" "2 1" "2 2"; do
    $py -c "import statistics,sys; v=[float(x) for x in sys.argv[2].split()]; print(f'torch threads / OpenBLAS threads {sys.argv[1]}: median {statistics.median(v):.2f} tasks/s', v)" "${k/ / \/ }" "${res[$k]}"
  done
  ;;
esac

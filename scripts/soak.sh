#!/usr/bin/env bash
# Soak test (not part of the normal suite): N random `kill -9` during
# training and during eval, then checks that
#   - after every kill the checkpoint on disk is one `ckpt info` accepts (the
#     run is resumable), and the --details file is absent or whole;
#   - resuming after the kills ends bit-exact with a straight run: the same
#     parameters, Adam state, model state, position and training statistics
#     (every checkpoint section but the wall-clock seconds), the same CSV log
#     (but for its clock columns), and the same eval details;
#   - no temporary file (*.tmp.PID) is left behind once the runs finish.
#
# usage: bash scripts/soak.sh [N] [BUILD_DIR]     (defaults: 10, build)
# Environment: SOAK_SEED (default 1) seeds the kill times; SOAK_DIR keeps the
# work folder (default: a temporary one, removed). Exit status 0 when every
# check holds; the last line is a one-line summary.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}
BUILD=${2:-build}
L=$(pwd)/$BUILD/lpsynth
if [ ! -x "$L" ]; then
  echo "soak: $L not found (build first: cmake -S . -B $BUILD && cmake --build $BUILD)" >&2
  exit 2
fi
CFG=$(pwd)/models/robustfill-tiny.cfg
MODEL=$(pwd)/models/rf-string/model.ckpt
TASKS=$(pwd)/domains/string/heldout-1000.jsonl
RANDOM=${SOAK_SEED:-1}
pid="" # the run in the background, killed if this script stops early
if [ -n "${SOAK_DIR:-}" ]; then
  W=$SOAK_DIR
  mkdir -p "$W"
  trap 'if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi' EXIT
else
  W=$(mktemp -d "${TMPDIR:-/tmp}/lpsynth-soak.XXXXXX")
  trap 'if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi; rm -rf -- "$W"' EXIT
fi
export LPSYNTH_PROGRESS=0 OPENBLAS_NUM_THREADS=1
fails=0
fail() {
  echo "soak: FAIL: $*" >&2
  fails=$((fails + 1))
}
# a random delay in seconds, between $1 and $2 tenths
pause() { awk -v t=$(($1 + RANDOM % ($2 - $1 + 1))) 'BEGIN { printf "%.1f", t / 10 }'; }
tmp_left() { find "$W" -name '*.tmp.*' | sed 's/^/  /'; }

# sections of two checkpoints equal (all but TPOS's seconds, bytes 48..56, and META)
same_ckpt() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
def sections(path):
    d = open(path, "rb").read()
    out, pos = {}, 24
    while pos < len(d) - 4:
        tag, _, n = struct.unpack_from("<4sIQ", d, pos)
        out[tag] = d[pos + 16:pos + 16 + n]
        pos += 16 + n
    return out
a, b = sections(sys.argv[1]), sections(sys.argv[2])
bad = [t.decode() for t in (b"CONF", b"DOMN", b"LAYT", b"PARM", b"ADAM", b"MSTA", b"STAT")
       if a.get(t) != b.get(t)]
if a[b"TPOS"][:48] != b[b"TPOS"][:48] or a[b"TPOS"][56:] != b[b"TPOS"][56:]:
    bad.append("TPOS")
if bad:
    sys.exit("differ: " + ", ".join(bad))
PY
}
# CSV logs equal but for the clock columns (seconds, tasks_per_s)
same_csv() {
  python3 - "$1" "$2" <<'PY'
import csv, sys
def rows(p):
    return [[c for i, c in enumerate(r) if i not in (1, 6)] for r in csv.reader(open(p))]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
if a != b:
    sys.exit(f"{len(a)} vs {len(b)} rows; first difference: "
             f"{next((x, y) for x, y in zip(a + [None], b + [None]) if x != y)}")
PY
}
# eval details whole: every line JSON, the same lines and beams as the
# reference's, in order; with a deterministic search (SAME=1) equal to it but
# for times
same_details() {
  SAME=${#search[@]} python3 - "$1" "$2" <<'PY'
import json, os, sys
def load(p):
    out = []
    for line in open(p, encoding="utf-8"):
        o = json.loads(line)
        out.append({k: v for k, v in o.items() if "second" not in k and "time" not in k})
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
key = lambda rows: [(r["line"], r["beam"]) for r in rows]
if key(a) != key(b):
    sys.exit(f"{len(a)} vs {len(b)} lines: not the same tasks")
if os.environ["SAME"] != "0" and a != b:
    sys.exit(f"{sum(x != y for x, y in zip(a, b))} of {len(a)} lines differ")
PY
}

# ---- training: a straight run, then one killed N times and resumed
STEPS=200
EVERY=3
TRAIN=(train --domain string --config "$CFG" --steps $STEPS --seed 11 --checkpoint-every $EVERY
  --log-every 4)
train() { "$L" "${TRAIN[@]}" "$@"; }
t0=$(date +%s)
train --out "$W/ref.ckpt" --log "$W/ref.csv" >"$W/ref.out" 2>&1 || fail "the straight run failed"
kills=0 resumable=0 starts=0
while [ $kills -lt "$N" ]; do
  args=(--out "$W/k.ckpt" --log "$W/k.csv")
  [ -s "$W/k.ckpt" ] && args+=(--resume "$W/k.ckpt")
  # the binary itself in the background (a function would run in a subshell,
  # and kill -9 would kill the subshell, not lpsynth)
  "$L" "${TRAIN[@]}" "${args[@]}" >"$W/k.out" 2>&1 &
  pid=$!
  starts=$((starts + 1))
  sleep "$(pause 2 15)"
  if ! kill -0 $pid 2>/dev/null; then
    wait $pid || fail "a training run failed: $(tail -n 2 "$W/k.out")"
    # it finished before the kill: start over from scratch to keep killing
    rm -f "$W/k.ckpt" "$W/k.csv"
    continue
  fi
  kill -9 $pid
  wait $pid 2>/dev/null || true
  kills=$((kills + 1))
  if [ -e "$W/k.ckpt" ]; then
    if "$L" ckpt info "$W/k.ckpt" >/dev/null 2>"$W/info.err"; then
      resumable=$((resumable + 1))
    else
      fail "after kill $kills the checkpoint is refused: $(cat "$W/info.err")"
    fi
  else
    resumable=$((resumable + 1)) # killed before the first checkpoint: a fresh start
  fi
done
args=(--out "$W/k.ckpt" --log "$W/k.csv")
[ -s "$W/k.ckpt" ] && args+=(--resume "$W/k.ckpt")
train "${args[@]}" >"$W/k.out" 2>&1 || fail "the final resume failed: $(tail -n 2 "$W/k.out")"
same_ckpt "$W/ref.ckpt" "$W/k.ckpt" || fail "the resumed checkpoint is not the straight run's"
same_csv "$W/ref.csv" "$W/k.csv" || fail "the resumed CSV log is not the straight run's"
ref_loss=$(grep -o 'loss [0-9.]*, token accuracy [0-9.]*' "$W/ref.out" || true)
grep -qF "$ref_loss" "$W/k.out" || fail "the resumed run reports another loss than the straight one"
left=$(tmp_left)
[ -z "$left" ] || fail "temporary files left after training:
$left"
train_s=$(($(date +%s) - t0))

# ---- eval: --details written atomically; killed N times, then run whole
t0=$(date +%s)
# plain beam search where eval offers other strategies: deterministic (the
# details of every run are the same), and a few seconds in all
search=()
if "$L" eval --search beam --help >/dev/null 2>&1; then search=(--search beam); fi
limit=200
[ ${#search[@]} -gt 0 ] || limit=20 # the default search takes seconds a task
EVAL=(eval --domain string --model "$MODEL" --tasks "$TASKS" --limit $limit --beam 4
  "${search[@]}")
ev() { "$L" "${EVAL[@]}" --details "$1" >/dev/null 2>"$W/ev.err"; }
ev "$W/ref.details" || fail "the reference eval failed: $(tail -n 2 "$W/ev.err")"
ekills=0 whole=0
while [ $ekills -lt "$N" ]; do
  "$L" "${EVAL[@]}" --details "$W/e.details" >/dev/null 2>"$W/ev.err" &
  pid=$!
  sleep "$(pause 1 20)"
  if ! kill -0 $pid 2>/dev/null; then
    wait $pid || fail "an eval run failed"
    rm -f "$W/e.details"
    continue
  fi
  kill -9 $pid
  wait $pid 2>/dev/null || true
  ekills=$((ekills + 1))
  # never a partial file: absent (first runs) or a whole earlier result
  if [ -e "$W/e.details" ]; then
    if same_details "$W/ref.details" "$W/e.details" 2>/dev/null; then
      whole=$((whole + 1))
    else
      fail "after eval kill $ekills the details file is partial"
    fi
  else
    whole=$((whole + 1))
  fi
done
ev "$W/e.details" || fail "the final eval failed"
eq="whole"
[ ${#search[@]} -eq 0 ] || eq="equal to a straight run's"
same_details "$W/ref.details" "$W/e.details" || fail "the final eval details differ"
left=$(tmp_left)
[ -z "$left" ] || fail "temporary files left after eval:
$left"
eval_s=$(($(date +%s) - t0))

echo "soak: training: $kills kill -9 in $starts runs, $resumable/$kills checkpoints accepted," \
  "resumed run bit-exact with the straight one (${train_s}s); eval: $ekills kill -9," \
  "$whole/$ekills details files absent or whole, final details ${eq} (${eval_s}s);" \
  "temporary files left: none; $fails failures"
[ $fails -eq 0 ]

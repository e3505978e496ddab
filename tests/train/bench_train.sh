#!/usr/bin/env bash
# lpsynth bench train: the real training step's report (tasks/s, FLOPs run
# and useful, phases, the products' precision), length bucketing (--chunk)
# leaving the loss alone while running fewer padded FLOPs, the fp32 fallback
# (LPSYNTH_PRECISION=fp32), and bad options.
#   bash bench_train.sh LPSYNTH MODELS_DIR
set -uo pipefail
L=${1:?usage: bench_train.sh LPSYNTH MODELS_DIR}
M=${2:?usage: bench_train.sh LPSYNTH MODELS_DIR}
fail=0
bad() { echo "FAIL: $*"; fail=1; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
run() { "$L" bench train --domain string --config "$M/robustfill-tiny.cfg" --steps 3 --warmup 1 \
          --seed 3 --json "$@"; }

# the report
j=$(run --chunk 1) || bad "bench train failed"
echo "$j"
[ "$(field "$j" steps)" = 3 ] || bad "steps: $(field "$j" steps)"
[ "$(field "$j" tasks)" = 12 ] || bad "tasks (3 steps x batch 4): $(field "$j" tasks)"
python3 - "$j" <<'PY' || bad "report values"
import json, sys
d = json.loads(sys.argv[1])
assert d["tasks_per_s"] > 0 and d["seconds"] > 0, d
assert d["gflop_per_task_run"] >= d["gflop_per_task_useful"] > 0, d
assert d["forward_passes"] == 12, d          # one pass per task with --chunk 1
assert d["enc_fwd_s"] > 0 and d["backward_s"] > 0 and d["optimizer_s"] > 0, d
PY
# the products' precision: bf16 where the CPU has AVX512_BF16, fp32 where it
# does not or when LPSYNTH_PRECISION=fp32
want=fp32
grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null && want=bf16
[ "$(field "$j" precision)" = "$want" ] || bad "precision $(field "$j" precision), want $want"
f=$(LPSYNTH_PRECISION=fp32 run --chunk 1) || bad "LPSYNTH_PRECISION=fp32 failed"
[ "$(field "$f" precision)" = fp32 ] || bad "LPSYNTH_PRECISION=fp32 gave $(field "$f" precision)"
p=$(run --chunk 1 --precision fp32) || bad "--precision fp32 failed"
[ "$(field "$p" precision)" = fp32 ] || bad "--precision fp32 gave $(field "$p" precision)"
# train itself: bf16 by default where available, fp32 on request or by the environment
ck=$(mktemp -d)
t=$("$L" train --domain string --config "$M/robustfill-tiny.cfg" --steps 2 --out "$ck/a.ckpt" --json) ||
  bad "train failed"
[ "$(field "$t" precision)" = "$want" ] || bad "train precision $(field "$t" precision), want $want"
t=$(LPSYNTH_PRECISION=fp32 "$L" train --domain string --config "$M/robustfill-tiny.cfg" --steps 2 \
      --precision bf16 --chunk 0 --out "$ck/b.ckpt" --json) || bad "train fp32 fallback failed"
[ "$(field "$t" precision)" = fp32 ] || bad "train under LPSYNTH_PRECISION=fp32: $(field "$t" precision)"
rm -rf "$ck"

# length bucketing: the same loss (fp32, no dropout noise: same rng stream per
# chunk count is not promised, so dropout is off in a copy of the config),
# fewer FLOPs run for the same useful ones
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
sed -e 's/^dropout.*/dropout = 0/' -e 's/^attn_dropout.*/attn_dropout = 0/' \
    "$M/robustfill-tiny.cfg" > "$cfg"
c0=$("$L" bench train --domain string --config "$cfg" --steps 3 --warmup 1 --seed 3 --json \
       --chunk 0 --precision fp32) || bad "--chunk 0 failed"
c1=$("$L" bench train --domain string --config "$cfg" --steps 3 --warmup 1 --seed 3 --json \
       --chunk 1 --precision fp32) || bad "--chunk 1 failed"
python3 - "$c0" "$c1" <<'PY' || bad "chunk 0 vs 1"
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("loss", a["loss"], b["loss"], "run GFLOP/task", a["gflop_per_task_run"], b["gflop_per_task_run"])
assert abs(a["loss"] - b["loss"]) <= 1e-5 * (1 + abs(a["loss"])), (a["loss"], b["loss"])
assert abs(a["gflop_per_task_useful"] - b["gflop_per_task_useful"]) <= 1e-9 * a["gflop_per_task_useful"]
assert b["gflop_per_task_run"] < a["gflop_per_task_run"]
assert a["forward_passes"] == 3 and b["forward_passes"] == 12
PY
# the LP runs too (its steps are not split into phases)
l=$("$L" bench train --domain string --config "$M/lp-tiny.cfg" --steps 2 --warmup 1 --json) ||
  bad "LP bench train failed"
python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert d['model']=='lp' and d['lp_step_s']>0, d" "$l" ||
  bad "LP report: $l"

# bad options: usage errors (exit 2) with a message naming the option
for args in "--precision fp16" "--chunk -1" "--steps 0" "--model rnn"; do
  # shellcheck disable=SC2086
  err=$("$L" bench train --domain string $args 2>&1 >/dev/null)
  rc=$?
  [ $rc = 2 ] || bad "$args: exit $rc"
  opt=${args%% *}
  [[ "$err" == *"$opt"* ]] || bad "$args: message does not name $opt: $err"
done
"$L" bench train --help | grep -q -- "--chunk K" || bad "--help"
exit $fail

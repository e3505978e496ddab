#!/usr/bin/env bash
# One task line means the same thing to `lpsynth train --data`, `eval --tasks`
# and `synth --examples` (they share the task reader, lpsynth/task.h): every
# bad line below gets the same FILE:LINE: message from the three verbs.
#   cli_same_errors.sh LPSYNTH MODELS_DIR
set -euo pipefail
LP=$(cd "$(dirname -- "$1")" && pwd)/$(basename -- "$1")
MODELS=$(cd "$2" && pwd)
export LPSYNTH_PROGRESS=0 OPENBLAS_NUM_THREADS=1
T=$(mktemp -d "${TMPDIR:-/tmp}/lpsynth-task.XXXXXX")
trap 'rm -rf -- "$T"' EXIT
cd "$T"
FAILED=0
fail() {
  echo "FAIL: $*" >&2
  FAILED=$((FAILED + 1))
}

"$LP" train --domain string --config "$MODELS/robustfill-tiny.cfg" --steps 1 --out m.ckpt \
  >/dev/null 2>&1 || { echo "cannot train the model" >&2; exit 1; }
long=$(printf 'a%.0s' $(seq 1 200))
lines=(
  '{"program": "ConstStr(1)", "inputs": ["a", "b"], "outputs": ["z"]}'
  '{"program": "Nope(", "inputs": ["a"], "outputs": ["b"]}'
  '{"tokens": [5, 9], "inputs": ["a"], "outputs": ["b"]}'
  '{"tokens": [5, 999, 2], "inputs": ["a"], "outputs": ["b"]}'
  '{"program": "ConstStr(1)", "inputs": ["a"]}'
  "{\"program\": \"ConstStr(1)\", \"inputs\": [\"$long\"], \"outputs\": [\"b\"]}"
  '{"docstring": "Return z.", "code": "ConstStr(1)"}'
  '{"program": "ConstStr(1)", "inputs": [], "outputs": []}'
)
# the message after "FILE:1: " on the verb's first stderr line naming the line
message() { grep -m1 -o 'bad\.jsonl:1: .*' "$1" | sed -e 's/^bad\.jsonl:1: //' -e 's/ (the checkpoint.*//'; }
n=0
for line in "${lines[@]}"; do
  n=$((n + 1))
  printf '%s\n' "$line" >bad.jsonl
  "$LP" train --domain string --config "$MODELS/robustfill-tiny.cfg" --data bad.jsonl --steps 1 \
    --out t.ckpt >/dev/null 2>train.err && fail "line $n: train accepted it"
  "$LP" eval --domain string --model m.ckpt --tasks bad.jsonl >/dev/null 2>eval.err &&
    fail "line $n: eval accepted it"
  "$LP" synth --domain string --model m.ckpt --examples bad.jsonl >/dev/null 2>synth.err &&
    fail "line $n: synth accepted it"
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' train.err eval.err synth.err; then
    fail "line $n: a sanitizer report"
  fi
  t=$(message train.err) e=$(message eval.err) s=$(message synth.err)
  if [ -z "$t" ] || [ "$t" != "$e" ] || [ "$t" != "$s" ]; then
    fail "line $n ($line): train \"$t\", eval \"$e\", synth \"$s\""
  fi
done
if [ "$FAILED" -ne 0 ]; then
  echo "cli_same_errors.sh: $FAILED of $n lines read differently" >&2
  exit 1
fi
echo "cli_same_errors.sh: $n lines, the same message from train, eval and synth"

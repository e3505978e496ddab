#!/usr/bin/env bash
# The shipped string models (models/rf-string, models/lp-string) work right
# after set-up: each checkpoint verifies, is stripped (no Adam state) and under
# the project's 20 MB limit for a tracked file; `synth --search beam` searches
# it (at most B programs, best first); `synth` (the default search: the
# solver, its programs ranked by the model) answers the paper's Figure 1 from
# three of its examples with a program that is also right on the fourth; and
# `demo` ranks with the shipped RobustFill model. Accuracy is measured in
# EXPERIMENTS.md, not here.
#   shipped_string_models.sh LPSYNTH MODELS_DIR
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../common/cli_scratch.sh
. "$(dirname -- "$0")/../common/cli_scratch.sh"
LP=$(abs_path "$1")
MODELS=$(abs_path "$2")
scratch_temp shipped-string
cat >fig1.jsonl <<'EOF'
{"inputs": ["Mason Smith", "Henry Myers", "Barry Underwood"], "outputs": ["Smith M", "Myers H", "Underwood B"], "held_inputs": ["Sandy Jones"], "held_outputs": ["Jones S"]}
EOF
for m in rf-string lp-string; do
  ck=$MODELS/$m/model.ckpt
  shipped_ckpt "$LP" "$m" "$ck" string || continue
  # stripped: training cannot resume from it
  expect_status 1 "$LP" train --domain string --resume "$ck" --steps 1 --out r.ckpt
  has err.txt "ckpt strip" "$m: --resume of the shipped file"
  # the paper's search: B programs, each with its score, best first
  st=0
  "$LP" synth --domain string --model "$ck" --examples fig1.jsonl --search beam --beam 10 --json \
    >out.txt 2>err.txt || st=$?
  [ "$st" -le 1 ] || fail "$m: synth --search beam: status $st: $(head -c 400 err.txt)"
  python3 - out.txt <<'PY' || fail "$m: synth --search beam: $(head -c 600 out.txt)"
import json, sys
ps = json.load(open(sys.argv[1]))["programs"]
assert 1 <= len(ps) <= 10, len(ps)
s = [p["score"] for p in ps]
assert s == sorted(s, reverse=True), s
PY
  # the default search, ranked by the model: Figure 1's program
  expect_status 0 "$LP" synth --domain string --model "$ck" --examples fig1.jsonl --json
  top=$(python3 -c 'import json, sys; p = json.load(open(sys.argv[1]))["programs"][0]
assert p["consistent"], p
print(p["program"])' out.txt) || fail "$m: synth: $(head -c 600 out.txt)"
  expect_status 0 "$LP" run --domain string --program "$top" --input "Sandy Jones" --json
  has out.txt '"Jones S"' "$m: Figure 1's fourth example with the answer $top"
done
expect_status 0 "$LP" demo
has out.txt "models/rf-string/model.ckpt" "demo: the shipped model it ranks with"
finish "shipped string models"

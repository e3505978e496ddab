#!/usr/bin/env bash
# The shipped python models (models/rf-python, models/lp-python) answer right
# after set-up: each checkpoint verifies, stores its parameters in fp16 (under
# the project's 20 MB limit for a tracked file), finds its tokenizer beside it,
# and `synth --spec` prints programs whose first one parses as Python (the
# search puts programs that parse first). Quality is measured in EXPERIMENTS.md,
# not here.
#   shipped_models.sh LPSYNTH MODELS_DIR PYTHON3
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../common/cli_scratch.sh
. "$(dirname -- "$0")/../common/cli_scratch.sh"
LP=$(abs_path "$1")
MODELS=$(abs_path "$2")
PY=$3
scratch_temp shipped
for m in rf-python lp-python; do
  ck=$MODELS/$m/model.ckpt
  shipped_ckpt "$LP" "$m" "$ck" python fp16 || continue
  [ -f "$ck.res" ] || fail "$m: its tokenizer $ck.res is missing"
  expect_status 0 "$LP" synth --domain python --model "$ck" \
    --spec "return the sum of the squares of a list" --beam 10 --json
  "$PY" - out.txt <<'PY' || fail "$m: synth: $(head -c 600 out.txt)"
import ast, json, sys
ps = json.load(open(sys.argv[1]))["programs"]
assert len(ps) >= 1, ps
top = ps[0]["program"]
assert top.startswith(("def ", "@")), top
ast.parse(top)
PY
done
finish "shipped python models"

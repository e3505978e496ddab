#!/usr/bin/env bash
# `synth` and `eval` --search beam|guided|solver|auto on the string domain:
# the solver without a model (Figure 1), the JSON output (stage, outputs), a
# task no program fits (exit 1, "no program found"), held-out examples and the
# generalisation / time figures of eval, and the bad inputs around them.
#   synth_search.sh LPSYNTH MODELS_DIR
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../common/cli_scratch.sh
. "$(dirname -- "$0")/../common/cli_scratch.sh"
LP=$(abs_path "$1")
MODELS=$(cd "$2" && pwd)
export LPSYNTH_PROGRESS=0 OPENBLAS_NUM_THREADS=1
scratch_temp synth-search

cat >fig1.jsonl <<'EOF'
{"inputs": ["Mason Smith", "Henry Myers", "Barry Underwood", "Sandy Jones"], "outputs": ["Smith M", "Myers H", "Underwood B", "Jones S"]}
EOF

# no model: the domain's solver, ranked by its prior
expect_status 0 "$LP" synth --domain string --examples fig1.jsonl --time-limit 0
has out.txt "found by solver search" "synth without a model names the stage"
grep -Eq '^\* +1 ' out.txt || fail "the top answer is marked: $(cat out.txt)"
has out.txt "Sandy Jones -> Jones S" "the answer's outputs"
expect_status 0 "$LP" synth --domain string --examples fig1.jsonl --json --show 3 --time-limit 0
python3 - out.txt <<'PY' || fail "synth --json: $(cat out.txt)"
import json, sys
o = json.load(open(sys.argv[1]))
ok = o["stage"] == "solver" and o["first_consistent"] == 1 and o["search"] == "auto"
ok = ok and o["outputs"] == ["Smith M", "Myers H", "Underwood B", "Jones S"]
ok = ok and 1 <= len(o["programs"]) <= 3 and all(p["consistent"] and p["stage"] == "solver" for p in o["programs"])
ok = ok and all("prior" in p for p in o["programs"]) and o["solver_programs"] >= len(o["programs"])
sys.exit(0 if ok else 1)
PY
# the same with --search solver, and --io
expect_status 0 "$LP" synth --domain string --search solver --io 'ab => b' --io 'cd => d' --time-limit 0
has out.txt "found by solver search" "--search solver with --io"

# a task no program fits (a character outside the DSL's alphabet): exit 1
expect_status 1 "$LP" synth --domain string --io 'ab => é' --time-limit 2
has out.txt "no program found within 2 s" "the impossible task is reported"

# modes that need a model, bad options
expect_status 1 "$LP" synth --domain string --examples fig1.jsonl --search guided
has err.txt "--search guided needs a model" "guided without a model"
expect_status 2 "$LP" synth --domain string --examples fig1.jsonl --search fast
has err.txt "--search must be beam, guided, solver or auto" "bad --search"
expect_status 2 "$LP" synth --domain string --examples fig1.jsonl --beam 100000
has err.txt "--beam expects an integer in 1..4096" "beam range at option parsing"
expect_status 2 "$LP" synth --domain string --examples fig1.jsonl --time-limit soon
has err.txt "--time-limit expects seconds" "bad --time-limit"
: >empty.jsonl
expect_status 1 "$LP" synth --domain string --examples empty.jsonl
has err.txt "empty.jsonl: the examples file is empty" "empty examples file named"
echo '{"inputs": ["a"], "outputs": []}' >noout.jsonl
expect_status 1 "$LP" synth --domain string --examples noout.jsonl
has err.txt "noout.jsonl:1: 1 inputs but 0 outputs" "examples without outputs: the file and line are named"

# with a (tiny, untrained) model: every mode runs; guided answers are consistent
expect_status 0 "$LP" train --domain string --config "$MODELS/robustfill-tiny.cfg" --steps 2 --out rf.ckpt
for mode in beam guided solver auto; do
  expect_status_any() { "$@" >out.txt 2>err.txt || true; }
  expect_status_any "$LP" synth --domain string --model rf.ckpt --examples fig1.jsonl --search $mode \
    --beam 3 --max-len 12 --time-limit 0 --json
  python3 - out.txt "$mode" <<'PY' || fail "synth --search $2 with a model: $(cat out.txt) $(cat err.txt)"
import json, sys
o = json.load(open(sys.argv[1]))
mode = sys.argv[2]
ok = o["search"] == mode
ok = ok and all(p["stage"] in ("beam", "guided", "solver") for p in o["programs"])
if mode in ("guided",):
    ok = ok and all(p["consistent"] for p in o["programs"]) and len(o["programs"]) <= 1
if mode in ("solver", "auto"):  # the solver always finds Figure 1
    ok = ok and o["first_consistent"] == 1 and o["programs"][0]["consistent"]
sys.exit(0 if ok else 1)
PY
done

# an example longer than the model takes: the message names the file
python3 -c 'import json; print(json.dumps({"inputs": ["a" * 5000], "outputs": ["a"]}))' >long.jsonl
expect_status 1 "$LP" synth --domain string --model rf.ckpt --examples long.jsonl --search beam
has err.txt "long.jsonl:1: input 1 has 5000 tokens, more than the model's max_spec_len" \
  "an over-long example names the file and line"

# eval: held-out examples (held_inputs/held_outputs, or --holdout K)
cat >held.jsonl <<'EOF'
{"inputs": ["Mason Smith", "Henry Myers", "Barry Underwood", "Sandy Jones"], "outputs": ["Smith M", "Myers H", "Underwood B", "Jones S"], "held_inputs": ["Ada Lovelace"], "held_outputs": ["Lovelace A"]}
{"inputs": ["ab 12", "cd 345"], "outputs": ["12", "345"], "held_inputs": ["x 7"], "held_outputs": ["7"]}
{"inputs": ["ab", "cd"], "outputs": ["b", "d"]}
EOF
# (no time limit: what is asserted must not depend on the machine's speed)
expect_status 0 "$LP" eval --domain string --tasks held.jsonl --json --details det.jsonl --time-limit 0
python3 - out.txt det.jsonl <<'PY' || fail "eval held-out: $(cat out.txt)"
import json, sys
o = json.load(open(sys.argv[1]))
r = o["runs"][0]
ok = o["tasks"] == 3 and r["solved"] == 3 and r["held_tasks"] == 2 and o["search"] == "auto"
ok = ok and 0 <= r["generalised"] <= 2 and abs(r["generalisation"] - r["generalised"] / 2) < 1e-9
ok = ok and 0 <= r["median_seconds"] <= r["p90_seconds"] <= r["max_seconds"]
ok = ok and r["found_by"]["solver"] == 3 and r["beam"] == 0
rows = [json.loads(l) for l in open(sys.argv[2])]
ok = ok and len(rows) == 3 and [("generalised" in x) for x in rows] == [True, True, False]
ok = ok and all(x["stage"] == "solver" and x["seconds"] >= 0 for x in rows)
sys.exit(0 if ok else 1)
PY
expect_status 0 "$LP" eval --domain string --tasks held.jsonl --time-limit 0
has out.txt "generalisation" "the text report has generalisation"
has out.txt "found by beam 0, guided 0, solver 3" "the text report names the stages"
# --holdout K: the last K examples of each line are held out
expect_status 0 "$LP" gen --domain string -n 6 --seed 3 --examples 6 --max-expr 2 --out six.jsonl
expect_status 0 "$LP" eval --domain string --tasks six.jsonl --holdout 2 --json --time-limit 0
python3 -c '
import json, sys
r = json.load(open("out.txt"))["runs"][0]
sys.exit(0 if r["held_tasks"] == 6 and r["solved"] == 6 and r["generalisation"] is not None else 1)' ||
  fail "eval --holdout: $(cat out.txt)"
expect_status 1 "$LP" eval --domain string --tasks held.jsonl --holdout 2
has err.txt "held.jsonl:2: --holdout 2 needs more than 2 examples" "holdout larger than a task"
# a reference program that does not parse is a bad line (not size 0)
{ cat held.jsonl; echo '{"program": "GetToken(NOPE, 1)", "inputs": ["a"], "outputs": ["a"]}'; } >badref.jsonl
expect_status 1 "$LP" eval --domain string --tasks badref.jsonl
has err.txt 'badref.jsonl:4: field "program":' "unparseable reference program"
has out.txt "3 tasks from badref.jsonl (1 bad lines)" "the others evaluated"
echo '{"inputs": ["a"], "outputs": ["a"], "held_inputs": ["b"]}' >halfheld.jsonl
expect_status 1 "$LP" eval --domain string --tasks halfheld.jsonl
has err.txt 'held_inputs" and "held_outputs" must come together' "held fields in pairs"
expect_status 2 "$LP" eval --domain string --tasks held.jsonl --search guided
has err.txt "--model CKPT is required" "guided eval without a model"

finish "synth search"

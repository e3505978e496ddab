#!/usr/bin/env bash
# `lpsynth eval --threads T`: T workers give the same report as one, except
# times. For RobustFill and LP models (exact metric) and BLEU on the string
# domain - and, when the python plugin is built, on docstring/code pairs with
# the tokenizer found beside the checkpoint - the --details file is the same
# bytes, the --json summary the same object without its time keys, and the text
# report the same without its tasks/s column and wall time, for T = 1, 2, 3.
# Bad lines and a failing search give the same messages (FILE:LINE) and exit
# status with T = 2 as with T = 1.
#   eval_threads.sh LPSYNTH MODELS_DIR HELDOUT.jsonl [STDLIB_DIR]
# (STDLIB_DIR: a folder of Python modules; given when the python plugin is built)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../common/cli_scratch.sh
. "$(dirname -- "$0")/../common/cli_scratch.sh"
LP=$(abs_path "$1")
MODELS=$(cd "$2" && pwd)
HELDOUT=$(abs_path "$3")
STDLIB=${4:-}
export LPSYNTH_PROGRESS=0 OPENBLAS_NUM_THREADS=1
scratch_temp eval-threads

# same_report NAME: compares NAME.1.{txt,json,det} with NAME.{2,3}.* (when present)
same_report() {
  python3 - "$1" <<'PY' || fail "$1: reports differ (above)"
import json, os, re, sys
name = sys.argv[1]
def text(p):  # without the tasks/s column and the wall time
    out = []
    for l in open(p):
        l = re.sub(r"^( +\d+ +\S+ +[\d.]+% \(\d+/\d+\)) +[\d.]+ ", r"\1 TPS ", l)
        l = re.sub(r"^( +\d+ +\S+ +[\d.]+ +[\d.]+) +[\d.]+ ", r"\1 TPS ", l)
        l = re.sub(r"median [\d.]+, p90 [\d.]+, max [\d.]+ s", "median M s", l)
        out.append(re.sub(r"wall time [\d.]+ s", "wall time W s", l))
    return out
def summary(p):  # without "seconds" and "tasks_per_second"
    o = json.load(open(p))
    assert o.pop("seconds") >= 0
    for r in o["runs"]:
        assert r.pop("tasks_per_second") >= 0
        for k in ("median_seconds", "p90_seconds", "max_seconds"):
            r.pop(k, None)
    return o
def details(p):  # without each task's "seconds"
    rows = [json.loads(l) for l in open(p)]
    for r in rows:
        r.pop("seconds", None)
    return rows
bad = []
for t in (2, 3):
    if not os.path.exists(f"{name}.{t}.txt"):
        continue
    if text(f"{name}.1.txt") != text(f"{name}.{t}.txt"):
        bad.append(f"text T={t}")
    if summary(f"{name}.1.json") != summary(f"{name}.{t}.json"):
        bad.append(f"json T={t}")
    if details(f"{name}.1.det") != details(f"{name}.{t}.det"):
        bad.append(f"details T={t}")
if not os.path.getsize(f"{name}.1.det"):
    bad.append("empty details")
print(f"  {name}: " + ("; ".join(bad) if bad else "the same for every T"))
sys.exit(1 if bad else 0)
PY
}
# run_all NAME THREADS... -- EVAL ARGS: text+details and --json for each T
run_all() {
  local name=$1
  shift
  local ts=()
  while [ "$1" != "--" ]; do
    ts+=("$1")
    shift
  done
  shift
  for t in "${ts[@]}"; do
    expect_status 0 "$LP" eval "$@" --threads "$t" --details "$name.$t.det"
    cp out.txt "$name.$t.txt"
    expect_status 0 "$LP" eval "$@" --threads "$t" --json
    cp out.txt "$name.$t.json"
  done
  same_report "$name"
}

# 16 tasks: enough for 3 workers to interleave, small enough for the sanitizer job
sed -n 1,16p "$HELDOUT" >tasks.jsonl
expect_status 0 "$LP" train --domain string --config "$MODELS/robustfill-tiny.cfg" --steps 8 --out rf.ckpt
expect_status 0 "$LP" train --domain string --config "$MODELS/lp-tiny.cfg" --steps 8 --out lp.ckpt

run_all rf 1 2 3 -- --domain string --model rf.ckpt --tasks tasks.jsonl --beam 1,3 --max-len 24 --search beam
run_all lp 1 2 3 -- --domain string --model lp.ckpt --tasks tasks.jsonl --beam 1,4 --latent-beam 1,2 --max-len 24 --search beam
run_all rfbleu 1 2 -- --domain string --model rf.ckpt --tasks tasks.jsonl --beam 2 --metric bleu --max-len 24
# more workers than tasks; --limit
run_all few 1 3 -- --domain string --model rf.ckpt --tasks tasks.jsonl --beam 2 --limit 2 --max-len 24 --search beam
has few.3.txt "2 tasks from tasks.jsonl (0 bad lines)" "--limit with 3 workers"

# bad lines: each reported as FILE:LINE in line order, the others evaluated, exit 1
long=$(printf 'a%.0s' $(seq 1 200))
{ sed -n 1,5p tasks.jsonl; echo '{"program": "Const(1)", "inputs": ["a"]}'; echo '{';
  echo "{\"inputs\": [\"$long\"], \"outputs\": [\"b\"]}"; sed -n 6,16p tasks.jsonl; } >bad.jsonl
for t in 1 2; do
  expect_status 1 "$LP" eval --domain string --model rf.ckpt --tasks bad.jsonl --beam 1,2 \
    --max-len 24 --threads $t --details "bad.$t.det" --search beam
  cp out.txt "bad.$t.txt"
  cp err.txt "bad.$t.err"
done
has bad.2.err 'bad.jsonl:6: missing field "outputs"' "missing outputs"
has bad.2.err "bad.jsonl:7: invalid JSON" "bad JSON"
has bad.2.err "bad.jsonl:8: input 1 has 200 tokens, more than the model's max_spec_len 128" "long input"
has bad.2.txt "16 tasks from bad.jsonl (3 bad lines)" "report after bad lines"
cmp -s bad.1.err bad.2.err || fail "bad lines: stderr differs: $(diff bad.1.err bad.2.err)"
python3 -c '
import json, sys
rows = lambda p: [{k: v for k, v in json.loads(l).items() if k != "seconds"} for l in open(p)]
sys.exit(0 if rows("bad.1.det") == rows("bad.2.det") else 1)' || fail "bad lines: details differ"

# a failing search stops the run: FILE:LINE: search: ..., exit 1, whatever T
for t in 1 2; do
  expect_status 1 "$LP" eval --domain string --model rf.ckpt --tasks tasks.jsonl --beam 1 \
    --max-len 70000 --threads $t --search beam
  cp err.txt "fail.$t.err"
done
has fail.2.err "tasks.jsonl:1: search: max_len 70000 too large" "failed search"
cmp -s fail.1.err fail.2.err || fail "failed search: stderr differs: $(diff fail.1.err fail.2.err)"

# usage
expect_status 2 "$LP" eval --domain string --model rf.ckpt --tasks tasks.jsonl --threads 0
expect_status 2 "$LP" eval --domain string --model rf.ckpt --tasks tasks.jsonl --threads 65
has err.txt "--threads expects an integer in 1..64" "--threads range"
expect_status 2 "$LP" eval --domain string --model rf.ckpt --tasks tasks.jsonl --beam 5000
has err.txt "--beam: 5000 is more than the largest beam, 4096" "beam limit"
expect_status 0 "$LP" eval --help
has out.txt "T workers search the tasks at once" "eval --help"

# python: docstring/code pairs, BLEU, each worker's domain made from CKPT.res
if [ -n "$STDLIB" ]; then
  mkdir lib
  for m in textwrap fnmatch; do cp "$STDLIB/$m.py" lib/; done
  expect_status 0 "$LP" corpus --domain python lib --out pairs.jsonl --valid-percent 0 --test-percent 0
  expect_status 0 "$LP" tokenizer train --domain python --corpus pairs.jsonl --split all --vocab 500 --out tok.model
  sed -e 's/^max_spec_len.*/max_spec_len = 16/' -e 's/^max_program_len.*/max_program_len = 64/' \
    "$MODELS/robustfill-tiny.cfg" >short.cfg
  expect_status 0 "$LP" train --domain python --domain-options tok.model --config short.cfg \
    --data pairs.jsonl --steps 20 --out py.ckpt
  run_all py 1 2 3 -- --domain python --model py.ckpt --tasks pairs.jsonl --beam 1,3 --max-len 24
  has py.2.txt "docstrings cut to max_spec_len 16 tokens" "python: cut docstrings"
  # the corpus BLEU of the top programs (summed per task by the workers) is what
  # `lpsynth score` gives for the top programs of --details
  python3 - py.3.det pairs.jsonl <<'PY' || fail "python: writing hyps/refs"
import json, sys
det = [json.loads(l) for l in open(sys.argv[1])]
pairs = [json.loads(l) for l in open(sys.argv[2])]
one = lambda s: s.replace("\r", " ").replace("\n", " ") + "\n"
for b in (1, 3):
    with open(f"hyps{b}.txt", "w") as h, open(f"refs{b}.txt", "w") as r:
        for x in det:
            if x["beam"] == b:
                h.write(one(x["top1"] or ""))
                r.write(one(pairs[x["line"] - 1]["code"]))
PY
  for b in 1 3; do
    expect_status 0 "$LP" score --metric bleu --refs "refs$b.txt" --hyps "hyps$b.txt" --json
    python3 -c '
import json, sys
s = json.load(open("out.txt"))["bleu"]
r = [r for r in json.load(open("py.3.json"))["runs"] if r["beam"] == int(sys.argv[1])][0]
sys.exit(0 if abs(s - r["corpus_bleu_top1"]) <= 1e-12 * max(1.0, s) else 1)' "$b" ||
      fail "python: corpus BLEU of beam $b differs from lpsynth score: $(cat out.txt)"
  done
  expect_status 0 "$LP" train --domain python --domain-options tok.model --config "$MODELS/lp-tiny.cfg" \
    --data pairs.jsonl --steps 10 --out pylp.ckpt
  run_all pylp 1 2 -- --domain python --model pylp.ckpt --tasks pairs.jsonl --beam 4 --latent-beam 1,2 --max-len 16
fi

finish "eval --threads"

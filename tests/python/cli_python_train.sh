#!/usr/bin/env bash
# The python domain end to end: `lpsynth train` on docstring/code pairs (with
# --split, skipped over-long programs, truncated docstrings), the tokenizer
# copied beside the checkpoint (CKPT.res, the domain resource; CKPT.spm of
# older runs) and found there by synth, eval and
# --resume, the vocabulary fingerprint refusing another tokenizer, `eval
# --metric bleu` (scores in range, --json, --details, beam diversity),
# `synth --spec`, malformed lines (FILE:LINE messages, non-zero exit), and a
# tiny overfit (8 pairs, 300 steps: BLEU at beam 1 above 50).
#   cli_python_train.sh LPSYNTH TMPDIR STDLIB_DIR PYTHON3 MODELS_DIR
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../common/cli_scratch.sh
. "$(dirname -- "$0")/../common/cli_scratch.sh"
LP=$(abs_path "$1")
TMP=$2 STDLIB=$3 PY=$4
MODELS=$(cd "$5" && pwd)
export LPSYNTH_PROGRESS=0 OPENBLAS_NUM_THREADS=1
scratch_in "$TMP"

# ---- data: a few standard-library modules, and 8 small functions ----
mkdir -p lib small
for m in textwrap shlex fnmatch glob calendar; do cp "$STDLIB/$m.py" lib/; done
cat >small/tiny.py <<'EOF'
def add(a, b):
    """Return the sum of two numbers."""
    return a + b


def square(x):
    """Square a number."""
    return x * x


def first(items):
    """Get the first element of a list."""
    return items[0]


def is_even(n):
    """Tell whether an integer is even."""
    return n % 2 == 0


def greet(name):
    """Make a greeting for a person."""
    return "Hello, " + name


def count_words(text):
    """Count the words in a text."""
    return len(text.split())


def last(values):
    """Get the last value."""
    return values[-1]


def reverse(s):
    """Reverse a string."""
    return s[::-1]
EOF
cp small/tiny.py lib/
expect_status 0 "$LP" corpus --domain python lib --out pairs.jsonl --valid-percent 25 --test-percent 25
expect_status 0 "$LP" corpus --domain python small --out small.jsonl --valid-percent 0 --test-percent 0
[ "$(wc -l <small.jsonl)" = 8 ] || fail "small corpus: $(wc -l <small.jsonl) pairs"
expect_status 0 "$LP" tokenizer train --domain python --corpus pairs.jsonl --split all --vocab 600 --out tok.model
expect_status 0 "$LP" tokenizer train --domain python --corpus pairs.jsonl --split all --vocab 500 --out tok2.model
n_train=$(grep -c '"split":"train"' pairs.jsonl || true)
n_test=$(grep -c '"split":"test"' pairs.jsonl || true)
[ "$n_train" -gt 4 ] && [ "$n_test" -gt 2 ] || fail "splits: train $n_train, test $n_test"

TINY="$MODELS/robustfill-tiny.cfg"
LPTINY="$MODELS/lp-tiny.cfg"
# max_program_len 64: some programs are longer (skipped); max_spec_len 16: docstrings are cut
sed -e 's/^max_spec_len.*/max_spec_len = 16/' -e 's/^max_program_len.*/max_program_len = 64/' "$TINY" >short.cfg

# ---- train: RobustFill on the train split; the tokenizer beside the checkpoint ----
expect_status 0 "$LP" train --domain python --domain-options tok.model --model robustfill \
  --config short.cfg --data pairs.jsonl --split train --steps 12 --out rf.ckpt
cp out.txt train.out
[ -f rf.ckpt.res ] || fail "no rf.ckpt.res beside the checkpoint"
cmp -s rf.ckpt.res tok.model || fail "rf.ckpt.res is not a copy of tok.model"
has train.out "domain options: rf.ckpt.res (a copy of tok.model)" "train summary"
grep -Eq "^pairs: [1-9][0-9]* skipped \(program longer than max_program_len 64\) and [1-9][0-9]* docstrings cut to max_spec_len 16" train.out ||
  fail "train summary lacks the skipped/cut counts: $(cat train.out)"
grep -Eq "one pass of pairs.jsonl: [1-9][0-9]* of $n_train lines of split train skipped" train.out ||
  fail "train summary lacks the per-pass count: $(cat train.out)"
# --json has the counts; no --split: every line (all splits)
expect_status 0 "$LP" train --domain python --domain-options tok.model --config short.cfg \
  --data pairs.jsonl --steps 4 --out all.ckpt --json
"$PY" -c '
import json, sys
o = json.load(open("out.txt"))
n = int(sys.argv[1])
ok = o["skipped_long"] > 0 and o["truncated_specs"] > 0 and o["domain_options_copy"] == "all.ckpt.res"
ok = ok and "split" not in o and (o.get("pass_lines", n) == n)
sys.exit(0 if ok else 1)' "$(wc -l <pairs.jsonl)" || fail "train --json: $(cat out.txt)"

# ---- eval --metric bleu (the default for python), CKPT.res found by itself ----
expect_status 0 "$LP" eval --domain python --model rf.ckpt --tasks pairs.jsonl --split test \
  --beam 1,2 --max-len 24 --json --details details.jsonl
"$PY" - out.txt details.jsonl "$n_test" <<'EOF' || fail "eval --json / --details (above)"
import json, sys
o = json.load(open(sys.argv[1]))
det = [json.loads(l) for l in open(sys.argv[2])]
n = int(sys.argv[3])
bad = []
if o["metric"] != "bleu" or o["tasks"] != n or o["split"] != "test" or o["bad_lines"] != 0:
    bad.append("header")
if [r["beam"] for r in o["runs"]] != [1, 2]:
    bad.append("beams")
for r in o["runs"]:
    if not (0 <= r["bleu"] <= 1 and 0 <= r["corpus_bleu_top1"] <= 1 and r["tasks_per_second"] > 0):
        bad.append(f"scores {r}")
    d = r["diversity"]
    if not all(0 <= d[f"distinct_{k}"] <= 1 for k in range(1, 5)) or r["latent_beam_used"] is not None:
        bad.append(f"diversity {r}")
if len(det) != 2 * n or any(not (0 <= x["bleu"] <= 1) or x["bleu"] < x["top1_bleu"] for x in det):
    bad.append("details")
# the run's score is the mean of the tasks' best-of-beam scores
for r in o["runs"]:
    m = sum(x["bleu"] for x in det if x["beam"] == r["beam"]) / n
    if abs(m - r["bleu"]) > 1e-9:
        bad.append(f"mean of details {m} != {r['bleu']}")
print("  " + "; ".join(bad) if bad else "  eval --json ok")
sys.exit(1 if bad else 0)
EOF
expect_status 0 "$LP" eval --domain python --model rf.ckpt --tasks pairs.jsonl --split test --beam 1,2 --max-len 24
cp out.txt eval.out
has eval.out "$n_test tasks from pairs.jsonl (split test)" "eval text"
has eval.out "metric bleu" "eval text"
"$PY" -c '
import re, sys
rows = [l.split() for l in open("eval.out") if re.match(r"^ +[12] +- ", l)]
ok = len(rows) == 2 and all(0 <= float(r[2]) <= 100 and 0 <= float(r[3]) <= 100 for r in rows)
sys.exit(0 if ok else 1)' || fail "eval text rows: $(cat eval.out)"
expect_status 2 "$LP" eval --domain python --model rf.ckpt --tasks pairs.jsonl --metric exact
has err.txt "--metric exact: domain python cannot check programs" "exact on python"

# ---- another tokenizer is refused, by eval, synth and --resume ----
expect_status 1 "$LP" eval --domain python --model rf.ckpt --domain-options tok2.model --tasks pairs.jsonl
has err.txt "vocabulary fingerprint mismatch" "other tokenizer (eval)"
has err.txt "tok2.model are not those the model was trained with" "other tokenizer (eval)"
expect_status 1 "$LP" synth --domain python --model rf.ckpt --domain-options tok2.model --spec "Square a number."
has err.txt "vocabulary fingerprint mismatch" "other tokenizer (synth)"
expect_status 1 "$LP" train --domain python --domain-options tok2.model --resume rf.ckpt \
  --data pairs.jsonl --steps 14 --out rf2.ckpt
has err.txt "vocabulary fingerprint mismatch" "other tokenizer (resume)"
# the same vocabulary size, trained on other texts: other pieces, other fingerprint
expect_status 0 "$LP" tokenizer train --domain python --corpus pairs.jsonl --split train --vocab 600 --out tok3.model
cmp -s tok.model tok3.model && fail "tok3.model equals tok.model"
expect_status 1 "$LP" eval --domain python --model rf.ckpt --domain-options tok3.model --tasks pairs.jsonl
has err.txt "vocabulary fingerprint mismatch" "same-size other tokenizer (eval)"
# no tokenizer at all: the message says where it was looked for
cp rf.ckpt lonely.ckpt
expect_status 1 "$LP" eval --domain python --model lonely.ckpt --tasks pairs.jsonl
has err.txt "no --domain-options given, and no domain resource lonely.ckpt.res (or lonely.ckpt.spm) beside the checkpoint" "no tokenizer"
# a checkpoint of an older run: its resource is CKPT.spm
cp rf.ckpt old.ckpt
cp rf.ckpt.res old.ckpt.spm
expect_status 0 "$LP" ckpt info old.ckpt
has out.txt "checked:    loads with" "ckpt info finds CKPT.spm of an older run"
expect_status 0 "$LP" synth --domain python --model old.ckpt --spec "Square a number." --beam 2 --max-len 12
# ckpt info checks as eval does: with CKPT.res beside it, with the options given, not without
expect_status 0 "$LP" ckpt info rf.ckpt
has out.txt "checked:    loads with" "ckpt info of a python checkpoint (CKPT.res beside it)"
expect_status 0 "$LP" ckpt info --domain-options tok.model lonely.ckpt
expect_status 1 "$LP" ckpt info --domain-options tok2.model rf.ckpt
has err.txt "vocabulary fingerprint mismatch" "other tokenizer (ckpt info)"
expect_status 1 "$LP" ckpt info lonely.ckpt
has err.txt "lonely.ckpt: " "ckpt info names the checkpoint without its tokenizer"

# ---- synth --spec prints decoded programs ----
expect_status 0 "$LP" synth --domain python --model rf.ckpt --spec "Square a number." --beam 2 --max-len 12
grep -Eq "^ +1 +-[0-9.]+" out.txt || fail "synth: $(cat out.txt)"
expect_status 0 "$LP" synth --domain python --model rf.ckpt --spec "Square a number." --beam 2 --max-len 12 --json
"$PY" -c '
import json
o = json.load(open("out.txt"))
ps = o["programs"]
ok = len(ps) >= 1 and all(isinstance(p["program"], str) and p["consistent"] is False for p in ps)
raise SystemExit(0 if ok else 1)' || fail "synth --json: $(cat out.txt)"

# ---- resume: CKPT.res and the split are the checkpoint's; same as straight through ----
expect_status 0 "$LP" train --domain python --domain-options tok.model --model lp --config "$LPTINY" \
  --data pairs.jsonl --split train --steps 8 --out lp8.ckpt
expect_status 0 "$LP" train --domain python --domain-options tok.model --model lp --config "$LPTINY" \
  --data pairs.jsonl --split train --steps 4 --out lp4.ckpt
expect_status 0 "$LP" train --domain python --resume lp4.ckpt --data pairs.jsonl --steps 8 --out lp48.ckpt
has err.txt 'lines of split "train" only' "resume keeps the split"
[ -f lp48.ckpt.res ] || fail "resume: no lp48.ckpt.res"
"$PY" - lp8.ckpt lp48.ckpt <<'EOF' || fail "resumed LP checkpoint differs from straight training"
import struct, sys
def sections(p):
    b = open(p, "rb").read()
    n, o, out = struct.unpack_from("<Q", b, 16)[0], 24, {}
    while o < n - 4:
        ln = struct.unpack_from("<Q", b, o + 8)[0]
        out[b[o:o + 4]] = b[o + 16:o + 16 + ln]
        o += 16 + ln
    return out
a, b = sections(sys.argv[1]), sections(sys.argv[2])
sys.exit(0 if all(a[t] == b[t] for t in (b"PARM", b"ADAM", b"MSTA")) else 1)
EOF
expect_status 2 "$LP" train --domain python --resume lp4.ckpt --data pairs.jsonl --split test --steps 8 --out x.ckpt
has err.txt 'was trained on split "train"' "resume with another split"
# an LP model: eval sweeps latent beams, (B, L) rows
expect_status 0 "$LP" eval --domain python --model lp8.ckpt --tasks pairs.jsonl --split test \
  --beam 1,4 --latent-beam 1,2 --max-len 16 --json
"$PY" -c '
import json
o = json.load(open("out.txt"))
got = [(r["beam"], r["latent_beam_used"]) for r in o["runs"]]
raise SystemExit(0 if got == [(1, 1), (4, 1), (4, 2)] and o["model"] == "lp" else 1)' ||
  fail "LP eval runs: $(cat out.txt)"

# ---- malformed lines: FILE:LINE, non-zero exit ----
head -n 2 pairs.jsonl >bad.jsonl
echo '{"docstring": "No code here.", "split": "train"}' >>bad.jsonl
expect_status 1 "$LP" train --domain python --domain-options tok.model --config "$TINY" --data bad.jsonl --steps 3 --out b.ckpt
has err.txt 'bad.jsonl:3: missing field "code" (a string)' "missing code (train)"
echo '{"docstring": 17, "code": "def f():\n    return 1\n", "split": "test"}' >bad2.jsonl
expect_status 1 "$LP" train --domain python --domain-options tok.model --config "$TINY" --data bad2.jsonl --steps 3 --out b.ckpt
has err.txt 'bad2.jsonl:1: field "docstring" must be a string' "non-string docstring (train)"
printf '%s\n' '{"docstring": "Square.", "code": "def f(x):\n    return x * x\n"}' >nosplit.jsonl
expect_status 1 "$LP" train --domain python --domain-options tok.model --config "$TINY" --data nosplit.jsonl --split train --steps 3 --out b.ckpt
has err.txt 'nosplit.jsonl:1: missing field "split"' "no split field (train)"
expect_status 1 "$LP" train --domain python --domain-options tok.model --config "$TINY" --data pairs.jsonl --split nope --steps 3 --out b.ckpt
has err.txt 'no line of split "nope"' "empty split (train)"
# eval reports each bad line, scores the others, and exits 1
{ grep '"split":"test"' pairs.jsonl | sed -n 1,2p; echo '{"docstring": "x", "split": "test"}';
  echo '{"docstring": ["x"], "code": "y", "split": "test"}'; echo 'not json'; } >bad3.jsonl
expect_status 1 "$LP" eval --domain python --model rf.ckpt --tasks bad3.jsonl --split test --beam 1 --max-len 8
has err.txt 'bad3.jsonl:3: missing field "code" (a string)' "missing code (eval)"
has err.txt 'bad3.jsonl:4: field "docstring" must be a string' "non-string docstring (eval)"
has err.txt 'bad3.jsonl:5: invalid JSON' "bad JSON (eval)"
has out.txt "2 tasks from bad3.jsonl (split test) (3 bad lines)" "eval goes on after bad lines"
# --split on a line without "split"
expect_status 1 "$LP" eval --domain python --model rf.ckpt --tasks nosplit.jsonl --split test
has err.txt 'nosplit.jsonl:1: missing field "split"' "no split field (eval)"

# ---- help ----
expect_status 0 "$LP" train --help
has out.txt "--split NAME" "train --help"
has out.txt "CKPT.res" "train --help"
has out.txt "CKPT.spm" "train --help names the older resource"
expect_status 0 "$LP" eval --help
has out.txt "--metric exact|bleu" "eval --help"
has out.txt "distinct n-grams" "eval --help"
expect_status 0 "$LP" synth --help
has out.txt "--domain-options STR" "synth --help"

# ---- overfit: 8 pairs, 300 steps; BLEU at beam 1 above 50 ----
cat >overfit.cfg <<'EOF'
model = robustfill
d_model = 64
d_ff = 128
n_heads = 4
enc_layers = 1
dec_layers = 1
dropout = 0
attn_dropout = 0
max_spec_len = 64
max_program_len = 64
batch_size = 8
lr = 5e-3
warmup = 20
weight_decay = 0
checkpoint_every = 0
EOF
expect_status 0 "$LP" train --domain python --domain-options tok.model --config overfit.cfg \
  --data small.jsonl --steps 300 --out of.ckpt
expect_status 0 "$LP" eval --domain python --model of.ckpt --tasks small.jsonl --beam 1 --json
"$PY" -c '
import json
o = json.load(open("out.txt"))
b = o["runs"][0]["bleu"]
print(f"  overfit: BLEU at beam 1 = {100 * b:.1f}")
raise SystemExit(0 if o["tasks"] == 8 and b > 0.5 else 1)' || fail "overfit: $(cat out.txt)"

finish "python train/eval/synth"

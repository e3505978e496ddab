#!/usr/bin/env bash
# scripts/normalise_python.py: code printed the way the code-docstring corpus
# prints it (the evaluation set's style), the tree mode feeding `lpsynth
# corpus` (same docstrings, same splits, normalised code), exclude, errors.
#   normalise.sh LPSYNTH TMPDIR SCRIPTS_DIR PYTHON3
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../common/cli_scratch.sh
. "$(dirname -- "$0")/../common/cli_scratch.sh"
LP=$(abs_path "$1")
TMP=$2 SCRIPTS=$(abs_path "$3") PY=$4
scratch_in "$TMP"
N() { "$PY" "$SCRIPTS/normalise_python.py" "$@"; }

# ---- the corpus's style, exactly ----
mkdir -p raw/pkg raw/pkg/__pycache__
cat >raw/pkg/m.py <<'EOF'
import numpy as np


def pick(values, i, n=-1):
    """Pick column i.

    More text.
    """
    # a comment
    x, y = values, (i + 1) * 2   # trailing comment

    if not x:
        return values[:, i], -2.5
    return {"k": y}[n], lambda a: -a
EOF
printf 'def old():\n    """Python 2."""\n    print "hello"\n' >raw/pkg/py2.py
printf 'def m(v):\n    """Match."""\n    match v:\n        case 1:\n            return 2\n' >raw/pkg/mt.py
printf 'def c():\n    """cached"""\n    return 1\n' >raw/pkg/__pycache__/c.py
expect_status 0 N tree raw norm
grep -q "normalise_python.py: raw: 3 files, 1 normalised into norm, 2 left out" err.txt ||
  fail "tree summary: $(cat err.txt)"
grep -q "raw/pkg/py2.py: Missing parentheses in call to 'print'" err.txt ||
  grep -q "raw/pkg/py2.py: .*(line 3); left out" err.txt || fail "py2 file not reported: $(cat err.txt)"
grep -q "raw/pkg/mt.py: astunparse cannot print it" err.txt || fail "match file not reported"
[ ! -e norm/pkg/py2.py ] && [ ! -e norm/pkg/mt.py ] && [ ! -e norm/pkg/__pycache__ ] ||
  fail "files left out or skipped were written"
cat >want.py <<'EOF'
import numpy as np
def pick(values, i, n=(-1)):
    'Pick column i.\n\n    More text.\n    '
    (x, y) = (values, ((i + 1) * 2))
    if (not x):
        return (values[:, i], (-2.5))
    return ({'k': y}[n], (lambda a: (- a)))
EOF
cmp -s want.py norm/pkg/m.py || fail "normalised text differs: $(diff want.py norm/pkg/m.py)"
expect_status 0 N tree norm norm2 # printing again changes nothing
cmp -s norm/pkg/m.py norm2/pkg/m.py || fail "normalising is not idempotent"

# ---- lpsynth corpus on the normalised tree: same docstring, same split ----
expect_status 0 "$LP" corpus --domain python raw --out raw.jsonl --test-percent 50
expect_status 0 "$LP" corpus --domain python norm --out norm.jsonl --test-percent 50
"$PY" - raw.jsonl norm.jsonl <<'EOF' || fail "corpus of the normalised tree"
import json, sys
raw = [json.loads(l) for l in open(sys.argv[1])]
norm = [json.loads(l) for l in open(sys.argv[2])]
assert [r["name"] for r in raw] == ["pick", "m"], raw  # mt.py: not in the normalised tree
assert len(norm) == 1, norm
r, n = raw[0], norm[0]
assert n["docstring"] == r["docstring"] == "Pick column i.\nMore text.", n["docstring"]
assert n["split"] == r["split"] and n["name"] == r["name"]
assert (r["path"], n["path"]) == ("raw/pkg/m.py", "norm/pkg/m.py"), (r["path"], n["path"])
assert n["code"] == ("def pick(values, i, n=(-1)):\n    (x, y) = (values, ((i + 1) * 2))\n"
                     "    if (not x):\n        return (values[:, i], (-2.5))\n"
                     "    return ({'k': y}[n], (lambda a: (- a)))\n"), n["code"]
EOF

# ---- exclude: equal code after normalising is dropped, the rest copied byte for byte ----
printf '%s\n' '{"docstring":"a","code":"def f(a):\n    return a+1\n","split":"train"}' \
  '{"docstring":"b","code":"def g(b):  # c\n    return b*2\n","split":"test","x":[1, 2]}' \
  '{"docstring":"c","code":"def h(:\n","split":"train"}' >in.jsonl
printf '%s\n' '{"docstring":"z","code":"def g(b):\n    return (b * 2)\n"}' >eval.jsonl
expect_status 0 N exclude in.jsonl out.jsonl eval.jsonl
grep -q "in.jsonl: 3 pairs, 1 equal to a pair of eval.jsonl dropped, 2 kept" err.txt ||
  fail "exclude summary: $(cat err.txt)"
{ sed -n 1p in.jsonl; sed -n 3p in.jsonl; } | cmp -s - out.jsonl || fail "exclude output: $(cat out.jsonl)"

# ---- self-check ----
"$PY" -c 'import json; print(json.dumps({"docstring": "d", "code": open("want.py").read()}))' >w.jsonl
expect_status 0 N self-check w.jsonl
grep -q "w.jsonl: 1 of 1 functions print back unchanged" out.txt || fail "self-check: $(cat out.txt)"

# ---- bad input: FILE:LINE: problem, status 1, nothing written ----
printf '%s\n' '{"code":"def f():\n    return 1\n"}' 'not json' >bad.jsonl
expect_status 1 N exclude bad.jsonl bad-out.jsonl eval.jsonl
grep -q "bad.jsonl:2: not a JSON object" err.txt || fail "bad line: $(cat err.txt)"
[ ! -e bad-out.jsonl ] || fail "output written despite a bad line"
printf '%s\n' '{"docstring":"x"}' >nocode.jsonl
expect_status 1 N exclude nocode.jsonl o.jsonl eval.jsonl
grep -q 'nocode.jsonl:1: no "code" string' err.txt || fail "no code: $(cat err.txt)"
printf '{"code":"\xff"}\n' >latin.jsonl
expect_status 1 N self-check latin.jsonl
grep -q "latin.jsonl:1: not UTF-8" err.txt || fail "not UTF-8: $(cat err.txt)"
expect_status 1 N tree missing-dir out-dir
grep -q "missing-dir: not a folder" err.txt || fail "missing folder: $(cat err.txt)"
expect_status 2 N frobnicate
expect_status 0 N --help
grep -q "normalise_python.py tree SRC_DIR DST_DIR" out.txt || fail "--help"
finish normalise

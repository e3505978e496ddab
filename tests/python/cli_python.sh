#!/usr/bin/env bash
# The python domain's CLI verbs: corpus, tokenizer train, score.
#   cli_python.sh LPSYNTH TMPDIR STDLIB_DIR PYTHON3
# corpus: same bytes twice; every file in one split, the one its relative path
# hashes to, wherever the tree lies; no program twice; unparsable, Python 2
# and non-UTF-8 files skipped, counted and reported; every program parses.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../common/cli_scratch.sh
. "$(dirname -- "$0")/../common/cli_scratch.sh"
LP=$(abs_path "$1")
TMP=$2 STDLIB=$3 PY=$4
scratch_in "$TMP"

# ---- a small source tree ----
mkdir -p root1/pkg/json root1/pkg/__pycache__ root1/.hidden root1/other root1/zcopy root1/empty
for m in textwrap shlex fnmatch string glob calendar gettext ipaddress; do
  cp "$STDLIB/$m.py" root1/pkg/
done
cp "$STDLIB"/json/*.py root1/pkg/json/
cp "$STDLIB/datetime.py" root1/other/
cp "$STDLIB/textwrap.py" root1/zcopy/textwrap.py # read after pkg/: every pair a duplicate
printf 'def f():\n    """Python 2."""\n    print "hello"\n' >root1/pkg/py2.py
printf 'def f(:\n    """Broken."""\n    return 1\n' >root1/pkg/broken.py
printf 'def f():\n    """caf\xe9"""\n    return 1\n' >root1/pkg/latin1.py
printf 'def f():\n    """hidden"""\n    return 1\n' >root1/.hidden/h.py
printf 'def f():\n    """cached"""\n    return 1\n' >root1/pkg/__pycache__/c.py
printf 'def f():\n    """not .py"""\n    return 1\n' >root1/pkg/notes.txt

# ---- corpus: determinism, splits, counts ----
expect_status 0 "$LP" corpus --domain python root1 --out a.jsonl --stats a.stats \
  --valid-percent 20 --test-percent 20
cp err.txt a.err
expect_status 0 "$LP" corpus --domain python root1 --out b.jsonl --stats b.stats \
  --valid-percent 20 --test-percent 20
cmp -s a.jsonl b.jsonl || fail "corpus is not deterministic"
cmp -s a.stats b.stats || fail "corpus stats are not deterministic"
grep -q "root1/pkg/py2.py:3:5: Python 2 print statement (file skipped)" a.err ||
  fail "Python 2 file not reported: $(cat a.err)"
grep -q "root1/pkg/broken.py:1:" a.err || fail "broken file not reported"
grep -q "root1/pkg/latin1.py: not UTF-8 text (skipped)" a.err || fail "latin-1 file not reported"
# the same tree elsewhere: same pairs, same splits
mkdir -p elsewhere/deeper
cp -r root1 elsewhere/deeper/tree
expect_status 0 "$LP" corpus --domain python elsewhere/deeper/tree/ --out c.jsonl \
  --valid-percent 20 --test-percent 20
"$PY" - a.jsonl a.stats c.jsonl <<'EOF' || fail "corpus checks (above)"
import ast, json, sys
def fnv1a64(b):
    h = 1469598103934665603
    for c in b:
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h
def split_of(rel):
    h = fnv1a64(rel.encode()) % 100
    return "test" if h < 20 else "valid" if h < 40 else "train"
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
stats = json.load(open(sys.argv[2]))
other = [json.loads(l) for l in open(sys.argv[3], encoding="utf-8")]
bad = 0
def check(cond, msg):
    global bad
    if not cond:
        print("  " + msg); bad += 1
splits, codes = {}, set()
for r in rows:
    rel = r["path"].split("root1/", 1)[1]
    splits.setdefault(rel, set()).add(r["split"])
    check(r["split"] == split_of(rel), f"{rel}: split {r['split']}, rule says {split_of(rel)}")
    check(r["code"] not in codes, f"{rel}:{r['line']}: code occurs twice")
    codes.add(r["code"])
    check(r["docstring"].strip() == r["docstring"] and r["docstring"], f"{rel}: docstring not cleaned")
    check(r["code"].endswith("\n") and not r["code"].startswith((" ", "\t")), f"{rel}: code not dedented")
    try:
        ast.parse(r["code"])
    except SyntaxError as e:
        check(False, f"{rel}:{r['line']}: code does not parse: {e}")
check(all(len(s) == 1 for s in splits.values()), "a file feeds two splits")
used = {s for v in splits.values() for s in v}
check(used == {"train", "valid", "test"}, f"splits used: {sorted(used)}")
check(not any("zcopy/" in r["path"] for r in rows), "duplicates were kept")
check(not any("/.hidden/" in r["path"] or "__pycache__" in r["path"] for r in rows), "hidden files read")
check(stats["files"] == 18, f"{stats['files']} files")
check(stats["files_unparsable"] == 2 and stats["files_not_utf8"] == 1, "unparsable/not UTF-8 counts")
check(sorted(p.rsplit("/", 1)[1] for p in stats["unparsable"]) == ["broken.py", "py2.py"], "unparsable list")
n_tw = sum(r["path"].endswith("pkg/textwrap.py") for r in rows)
check(stats["pairs"] == len(rows) and n_tw > 5 and stats["duplicates"] >= n_tw, f"pairs {stats['pairs']} duplicates {stats['duplicates']}")
check(sum(stats["splits"].values()) == len(rows), "split counts")
strip = lambda rs: [(r["path"].split("root1/" if "root1/" in r["path"] else "tree/", 1)[1], r["line"], r["split"], r["code"]) for r in rs]
check(strip(rows) == strip(other), "the same tree elsewhere gives other pairs or splits")
print(f"  {len(rows)} pairs from {len(splits)} files, splits {stats['splits']}")
sys.exit(1 if bad else 0)
EOF

# ---- bad sources: each reported as FILE:LINE:COLUMN, the others extracted ----
mkdir -p root2
printf 'def g(y):\n    """Doc of g."""\n    return y\n\ndef f(x):\n    """Unterminated\n    return x\n' >root2/open.py
printf 'def ok(a):\n    """Fine."""\n    return a\n' >root2/ok.py
"$PY" - root2/long.py <<'EOF'
import sys
body = "".join(f"    x{i} = a + {i}\n" for i in range(2500))
src = ('def small(a):\n    """Small."""\n    return a\n\n'
       'def big(a):\n    """Generated."""\n' + body + '    return a\n\n'
       'def after(b):\n    """After."""\n    return b\n')
open(sys.argv[1], "w").write(src)
EOF
head -c $((4 * 1024 * 1024 + 1)) /dev/zero | tr '\0' '#' >root2/huge.py
expect_status 0 "$LP" corpus --domain python root2 --out r2.jsonl
grep -q "root2/open.py:6:5: unterminated string literal (its closing quotes are missing) (file skipped)" err.txt ||
  fail "unterminated docstring not reported at its line: $(cat err.txt)"
grep -q "root2/long.py:5: function big is 2503 lines long, over the limit of 2000: skipped" err.txt ||
  fail "long function not reported: $(cat err.txt)"
grep -q "root2/huge.py: larger than 4 MiB (skipped)" err.txt || fail "huge file not reported: $(cat err.txt)"
grep -q "4 files: 2 parsed, 1 unparsable, 0 not UTF-8, 1 too large" err.txt ||
  fail "bad sources counts: $(cat err.txt)"
"$PY" -c '
import json, sys
names = sorted(json.loads(l)["name"] for l in open("r2.jsonl"))
sys.exit(0 if names == ["after", "ok", "small"] else "pairs: %s" % names)' || fail "pairs around the bad sources"

# ---- tokenizer train, then corpus with the tokenizer ----
expect_status 0 "$LP" tokenizer train --domain python --corpus a.jsonl --vocab 1000 --out tok.model
[ -s tok.model ] || fail "no tokenizer model"
grep -q "1000 pieces" err.txt || fail "tokenizer train report: $(cat err.txt)"
expect_status 0 "$LP" corpus --domain python --tokenizer tok.model root1 --out t.jsonl \
  --max-tokens 60 --stats t.stats
grep -q "anonymisation changed" err.txt || fail "no anonymisation report: $(cat err.txt)"
"$PY" - t.jsonl t.stats <<'EOF' || fail "tokenized corpus checks (above)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
st = json.load(open(sys.argv[2]))
ok = rows and all(0 < r["code_tokens"] <= 60 for r in rows) and st["too_long"] > 0
ok = ok and st["code_tokens"]["max"] <= 60 and 0 < st["anonymised_share"] <= 1
ok = ok and st["pairs"] + st["too_long"] + st["duplicates"] == st["pairs_found"]
print(f"  {len(rows)} pairs of at most 60 tokens, {st['too_long']} longer dropped, anonymised {st['anonymised_share']:.2f}")
sys.exit(0 if ok else 1)
EOF
# a split with no line
expect_status 1 "$LP" tokenizer train --domain python --corpus a.jsonl --vocab 1000 --out x.model --split nope
grep -q 'no line of split "nope"' err.txt || fail "empty split message: $(cat err.txt)"

# ---- score ----
printf 'return a + b\nx = [i for i in range(10)]\n' >refs.txt
cp refs.txt same.txt
printf 'return a - b\nx = list(range(10))\n' >hyps.txt
expect_status 0 "$LP" score --metric bleu --refs refs.txt --hyps same.txt
grep -q "^BLEU-4 = 100.00 " out.txt || fail "identical texts: $(cat out.txt)"
expect_status 0 "$LP" score --metric bleu --refs refs.txt --hyps hyps.txt --json --sentences
"$PY" -c '
import json, sys
o = json.load(open("out.txt"))
ok = o["metric"] == "bleu-4" and 0 < o["bleu"] < 1 and o["sentences"] == 2 and len(o["sentences_bleu"]) == 2
ok = ok and o["smoothing"] == "method1" and o["tokenize"] == "code" and len(o["precisions"]) == 4
sys.exit(0 if ok else 1)' || fail "score --json: $(cat out.txt)"
printf 'only one line\n' >short.txt
expect_status 1 "$LP" score --refs refs.txt --hyps short.txt
grep -q "has 2 lines but" err.txt || fail "line count mismatch message: $(cat err.txt)"

# ---- usage errors (2), help (0), wrong domain (1) ----
expect_status 2 "$LP" corpus --domain python root1
expect_status 2 "$LP" corpus --domain python --out x.jsonl
expect_status 2 "$LP" corpus --domain python root1 --out x.jsonl --max-tokens 10
expect_status 2 "$LP" corpus root1 --out x.jsonl
expect_status 2 "$LP" tokenizer
expect_status 2 "$LP" tokenizer fly
expect_status 2 "$LP" tokenizer train --domain python --corpus a.jsonl
expect_status 2 "$LP" score --metric rouge --refs refs.txt --hyps hyps.txt
expect_status 2 "$LP" score --refs refs.txt --hyps hyps.txt --smoothing method4
for v in corpus "tokenizer train" score; do
  # shellcheck disable=SC2086
  expect_status 0 "$LP" $v --help
  grep -q "^usage: lpsynth $v" out.txt || fail "$v --help: $(head -2 out.txt)"
done
expect_status 1 "$LP" corpus --domain string root1 --out x.jsonl
grep -q "cannot extract" err.txt || fail "string domain: $(cat err.txt)"
expect_status 1 "$LP" corpus --domain python --tokenizer missing.model root1 --out x.jsonl
grep -q "missing.model" err.txt || fail "missing tokenizer: $(cat err.txt)"
expect_status 0 "$LP" domains
grep -Eq "python +1.0.0 +ABI 1\.[0-9]+  \[anonymise,extract,tokenizer,wellformed\]" out.txt || fail "domains: $(cat out.txt)"

finish "python CLI"

#!/usr/bin/env bash
# gen / run / check / exec through `--domain path/to/lpsynth_toy.so`.
. "$(dirname -- "$0")/cli_lib.sh"

# ---- gen: deterministic in the seed
runcmd "$LPSYNTH" gen --domain "$TOY" -n 20 --seed 42
expect_rc 0 "gen seed 42"
cp "$T/out" "$T/gen42a"
runcmd "$LPSYNTH" gen --domain "$TOY" -n 20 --seed 42
cp "$T/out" "$T/gen42b"
expect_true "gen: same seed, different bytes" cmp -s "$T/gen42a" "$T/gen42b"
expect_true "gen: 20 lines" test "$(wc -l <"$T/gen42a")" -eq 20
runcmd "$LPSYNTH" gen --domain "$TOY" -n 20 --seed 43
expect_rc 0 "gen seed 43"
expect_true "gen: seeds 42 and 43 gave the same bytes" differ "$T/gen42a" "$T/out"
runcmd "$LPSYNTH" gen --domain "$TOY" -n 5 --seed 42
expect_true "gen: the first 5 tasks of a longer run differ" \
  cmp -s "$T/out" <(head -n 5 "$T/gen42a")
runcmd "$LPSYNTH" gen --domain "$TOY" -n 0 --seed 1
expect_rc 0 "gen -n 0"
expect_true "gen -n 0 prints nothing" test ! -s "$T/out"

# gen honours --min-expr/--max-expr/--examples (the toy's size unit: operations)
runcmd "$LPSYNTH" gen --domain "$TOY" -n 30 --seed 7 --min-expr 3 --max-expr 3 --examples 5
expect_rc 0 "gen 3 ops, 5 examples"
expect_true "gen: sizes/examples not honoured" python3 - "$T/out" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    t = json.loads(line)
    n += 1
    assert set(t) == {"program", "tokens", "inputs", "outputs"}, t
    assert t["program"].count(" ; ") == 2, t["program"]
    assert len(t["inputs"]) == 5 and len(t["outputs"]) == 5, t
    assert t["tokens"][-1] == 2 and 2 not in t["tokens"][:-1], t["tokens"]
assert n == 30, n
PY
runcmd "$LPSYNTH" gen --domain "$TOY" -n 1 --seed 7 --max-expr 17
expect_rc 1 "gen --max-expr above the toy's limit"
expect_has "$T/err" "above the limit of 16 operations" "gen --max-expr 17"

# ---- run
runcmd "$LPSYNTH" run --domain "$TOY" --program "upper ; first 3 ; append 'x'" --input hello --input ab
expect_rc 0 "run"
expect_true "run output" cmp -s "$T/out" <(printf 'HELx\nABx\n')
runcmd "$LPSYNTH" run --domain "$TOY" --program "upper;first 3;append 'x'" --input hello --json
expect_rc 0 "run --json"
expect_has "$T/out" '"tokens":[3,9,6,12,9,8,42,2]' "run --json tokens"
expect_has "$T/out" '"outputs":["HELx"]' "run --json outputs"
runcmd "$LPSYNTH" run --domain "$TOY" --program "upper ; frist 3" --input a
expect_rc 1 "run with a program that does not parse"
expect_has "$T/err" "column 9: expected an operation" "run: parse error column"
expect_true "run: nothing on stdout after an error" test ! -s "$T/out"
# the toy by name, through LPSYNTH_PLUGIN_PATH
runcmd env LPSYNTH_PLUGIN_PATH="$T/nowhere:$TOY_DIR" "$LPSYNTH" run --domain toy --program reverse --input abc
expect_rc 0 "run --domain toy via LPSYNTH_PLUGIN_PATH"
expect_true "run by name output" cmp -s "$T/out" <(printf 'cba\n')
runcmd "$LPSYNTH" run --domain toy --program reverse --input abc
expect_rc 1 "the toy is not on the default search path"
expect_has "$T/err" 'domain "toy" not found' "toy not found message"

# ---- check: generated tasks are consistent; a doctored output is not
runcmd "$LPSYNTH" check --domain "$TOY" "$T/gen42a"
expect_rc 0 "check generated tasks"
expect_true "check: 20 lines, all consistent" \
  test "$(grep -c '"consistent":true' "$T/out")" -eq 20 -a "$(wc -l <"$T/out")" -eq 20
python3 - "$T/gen42a" "$T/doctored" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
lines[3]["outputs"][0] += "!"
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for t in lines:
        f.write(json.dumps(t) + "\n")
PY
runcmd "$LPSYNTH" check --domain "$TOY" "$T/doctored"
expect_rc 0 "check with an inconsistent task (not a failure)"
expect_true "check: line 4 should be inconsistent, the rest consistent" python3 - "$T/out" <<'PY'
import json, sys
got = [json.loads(l)["consistent"] for l in open(sys.argv[1], encoding="utf-8")]
assert got == [True] * 3 + [False] + [True] * 16, got
PY
runcmd "$LPSYNTH" check --domain "$TOY" - <"$T/gen42a"
expect_rc 0 "check from stdin"

# ---- exec: re-running generated programs reproduces their outputs
runcmd "$LPSYNTH" exec --domain "$TOY" "$T/gen42a"
expect_rc 0 "exec generated tasks"
expect_true "exec outputs differ from gen's" python3 - "$T/gen42a" "$T/out" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
b = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert len(a) == len(b) == 20
for x, y in zip(a, b):
    assert x["outputs"] == y["outputs"] and x["tokens"] == y["tokens"], (x, y)
PY

finish

#!/usr/bin/env bash
# exec/check on bad input lines, missing files, --out, stdin.
. "$(dirname -- "$0")/cli_lib.sh"

# ---- one line of each kind: malformed JSON, no "inputs", bad program, good
cat >"$T/in.jsonl" <<'JSONL'
{"program": "upper", "inputs": ["a"
{"program": "upper"}
{"program": "uper", "inputs": ["a"]}
{"program": "reverse ; append 'z'", "inputs": ["abc", ""], "id": 7}
JSONL
runcmd "$LPSYNTH" exec --domain "$TOY" "$T/in.jsonl"
expect_rc 1 "exec with failing lines"
expect_true "exec: 4 lines in order with errors for 1-3" python3 - "$T/out" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert len(lines) == 4, lines
for n, want in [(1, "invalid JSON at column"), (2, 'missing field "inputs"'),
                (3, 'program: column 1: expected an operation')]:
    got = lines[n - 1]
    assert set(got) == {"line", "error"} and got["line"] == n and want in got["error"], (n, got)
assert '"uper"' in lines[2]["error"], lines[2]
good = lines[3]
assert good == {"program": "reverse ; append 'z'", "inputs": ["abc", ""], "id": 7,
                "tokens": [5, 9, 8, 44, 2], "outputs": ["cbaz", "z"]}, good
PY
expect_has "$T/err" "$T/in.jsonl:1: invalid JSON" "exec: stderr names file:line"
expect_has "$T/err" "$T/in.jsonl:2: missing field \"inputs\"" "exec: stderr line 2"
expect_has "$T/err" "3 of 4 lines failed" "exec: summary"

# ---- the same through --out: the file is written, nothing on stdout, no temp file left
runcmd "$LPSYNTH" exec --domain "$TOY" --out "$T/res.jsonl" "$T/in.jsonl"
expect_rc 1 "exec --out with failing lines"
expect_true "exec --out: stdout not empty" test ! -s "$T/out"
expect_true "exec --out: file differs from stdout run" \
  cmp -s "$T/res.jsonl" <("$LPSYNTH" exec --domain "$TOY" "$T/in.jsonl" 2>/dev/null || true)
expect_true "exec --out: a temp file is left behind" no_temp_files
# --out replaces an existing file
printf 'old content\n' >"$T/res2.jsonl"
runcmd "$LPSYNTH" gen --domain "$TOY" -n 3 --seed 9 -o "$T/res2.jsonl"
expect_rc 0 "gen -o over an existing file"
expect_true "gen -o: 3 lines" test "$(wc -l <"$T/res2.jsonl")" -eq 3
expect_lacks "$T/res2.jsonl" "old content" "gen -o replaced the file"
runcmd "$LPSYNTH" check --domain "$TOY" --out "$T/res3.jsonl" "$T/res2.jsonl"
expect_rc 0 "check --out"
expect_true "check --out: 3 consistent lines" test "$(grep -c '"consistent":true' "$T/res3.jsonl")" -eq 3
expect_true "no temp file left after gen/check --out" no_temp_files
# a failing run does not create the output file
runcmd "$LPSYNTH" exec --domain nosuch --out "$T/never.jsonl" "$T/in.jsonl"
expect_rc 1 "exec with an unknown domain"
expect_true "exec: output file created by a failed run" test ! -e "$T/never.jsonl"
runcmd "$LPSYNTH" exec --domain "$TOY" --out "$T/no-such-dir/x.jsonl" "$T/in.jsonl"
expect_rc 1 "exec --out into a missing folder"
expect_has "$T/err" "$T/no-such-dir/x.jsonl" "exec --out error names the file"

# ---- a missing input file
runcmd "$LPSYNTH" exec --domain "$TOY" "$T/absent.jsonl"
expect_rc 1 "exec on a missing file"
expect_has "$T/err" "$T/absent.jsonl: cannot open" "missing input message"
runcmd "$LPSYNTH" check --domain "$TOY" "$T/absent.jsonl"
expect_rc 1 "check on a missing file"
expect_has "$T/err" "$T/absent.jsonl" "check: missing input message"

# ---- blank lines, CRLF, stdin; line numbers count every physical line
printf '\n{"program":"upper","inputs":["a"]}\r\n   \n{"program":"lower","inputs":"x"}\r\n' >"$T/crlf.jsonl"
runcmd "$LPSYNTH" exec --domain "$TOY" - <"$T/crlf.jsonl"
expect_rc 1 "exec from stdin"
expect_true "exec stdin: two lines" test "$(wc -l <"$T/out")" -eq 2
expect_has "$T/out" '"outputs":["A"]' "exec: CRLF line"
expect_has "$T/out" '{"line":4,"error":"field \"inputs\" must be an array of strings"}' "exec: line 4"
expect_has "$T/err" "<stdin>:4:" "exec: stdin named <stdin>"

# ---- --max-line: an over-long line is an error line and the run goes on
{
  printf '{"program":"upper","inputs":["%s"]}\n' "$(head -c 300 /dev/zero | tr '\0' a)"
  printf '{"program":"upper","inputs":["b"]}\n'
} >"$T/long.jsonl"
runcmd "$LPSYNTH" exec --domain "$TOY" --max-line 100 "$T/long.jsonl"
expect_rc 1 "exec --max-line 100"
expect_has "$T/out" '{"line":1,"error":"line longer than the --max-line limit"}' "over-long line"
expect_has "$T/out" '"outputs":["B"]' "the line after the over-long one"
runcmd "$LPSYNTH" exec --domain "$TOY" --max-line 1000 "$T/long.jsonl"
expect_rc 0 "exec --max-line 1000"

# ---- check: inputs/outputs mismatch, and an output that is not UTF-8
printf '%s\n' '{"program":"upper","inputs":["a","b"],"outputs":["A"]}' \
  '{"program":"first 1","inputs":["\u00e9"]}' >"$T/misc.jsonl"
runcmd "$LPSYNTH" check --domain "$TOY" "$T/misc.jsonl"
expect_rc 1 "check with a mismatched line"
expect_has "$T/out" '{"line":1,"error":"2 inputs but 1 outputs"}' "check mismatch"
expect_has "$T/out" '{"line":2,"error":"missing field \"outputs\" (an array of strings)"}' "check needs outputs"
runcmd "$LPSYNTH" exec --domain "$TOY" "$T/misc.jsonl"
expect_rc 1 "exec with a non-UTF-8 output"
expect_has "$T/out" '{"line":2,"error":"output 1 is not valid UTF-8"}' "exec: cut UTF-8 output"

finish

#!/usr/bin/env bash
# `lpsynth eval` on the string domain: the (B, L) rows of the report, the beam
# diversity in the table, --json and --details, the latent beam of RobustFill
# models (ignored, with a warning), bad lines (FILE:LINE, exit 1).
#   eval_report.sh LPSYNTH MODELS_DIR HELDOUT.jsonl
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../common/cli_scratch.sh
. "$(dirname -- "$0")/../common/cli_scratch.sh"
LP=$(abs_path "$1")
MODELS=$(cd "$2" && pwd)
HELDOUT=$(abs_path "$3")
export LPSYNTH_PROGRESS=0 OPENBLAS_NUM_THREADS=1
scratch_temp eval

sed -n 1,3p "$HELDOUT" >tasks.jsonl
expect_status 0 "$LP" train --domain string --config "$MODELS/robustfill-tiny.cfg" --steps 3 --out rf.ckpt
expect_status 0 "$LP" train --domain string --config "$MODELS/lp-tiny.cfg" --steps 3 --out lp.ckpt

# RobustFill: no latent beam ('-'), --latent-beam ignored with a warning
expect_status 0 "$LP" eval --domain string --model rf.ckpt --tasks tasks.jsonl --beam 1,3 \
  --latent-beam 2,3 --max-len 20 --search beam
has err.txt "--latent-beam is ignored: rf.ckpt holds a robustfill model" "RobustFill latent beam"
has out.txt "metric exact" "default metric of the string domain"
has out.txt "distinct-1  distinct-2  distinct-3  distinct-4" "table header"
grep -Eq '^ +1 +- +[0-9.]+% \(0?[0-9]/3\) +[0-9.]+ +[01]\.[0-9]{3} +[01]\.[0-9]{3} +[01]\.[0-9]{3} +[01]\.[0-9]{3}$' out.txt ||
  fail "RobustFill row B=1: $(cat out.txt)"
[ "$(grep -Ec '^ +[13] +- ' out.txt)" = 2 ] || fail "RobustFill: want 2 rows: $(cat out.txt)"

# LP: rows (B, L) with the L used; (1, 2) is (1, 1) (clamped), run once
expect_status 0 "$LP" eval --domain string --model lp.ckpt --tasks tasks.jsonl --beam 1,4 \
  --latent-beam 1,2 --max-len 20 --details det.jsonl --search beam
for row in "1 1" "4 1" "4 2"; do
  set -- $row
  grep -Eq "^ +$1 +$2 +[0-9.]+% " out.txt || fail "LP row B=$1 L=$2: $(cat out.txt)"
done
[ "$(grep -Ec '^ +[0-9]+ +[0-9]+ +[0-9.]+% ' out.txt)" = 3 ] || fail "LP: want 3 rows: $(cat out.txt)"
has out.txt "  B 4 L 2:" "accuracy by size names (B, L)"
python3 - det.jsonl <<'PY' || fail "details (above)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = len(rows) == 9 and all(len(r["distinct"]) == 4 and all(0 <= d <= 1 for d in r["distinct"]) for r in rows)
ok = ok and {(r["beam"], r["latent_beam_used"]) for r in rows} == {(1, 1), (4, 1), (4, 2)}
ok = ok and all(r["tokens"] >= 0 and "solved" in r and "size" in r for r in rows)
sys.exit(0 if ok else 1)
PY
expect_status 0 "$LP" eval --domain string --model lp.ckpt --tasks tasks.jsonl --beam 4 \
  --latent-beam 1,4 --max-len 20 --json --search beam
python3 -c '
import json
o = json.load(open("out.txt"))
rs = o["runs"]
ok = o["metric"] == "exact" and [(r["beam"], r["latent_beam"], r["latent_beam_used"]) for r in rs] == [(4, 1, 1), (4, 4, 4)]
ok = ok and all(set(r["diversity"]) == {"distinct_1", "distinct_2", "distinct_3", "distinct_4", "tasks"} for r in rs)
ok = ok and all(0 <= r["accuracy"] <= 1 for r in rs)
raise SystemExit(0 if ok else 1)' || fail "eval --json: $(cat out.txt)"
# --len-alpha: the length penalty of both beam levels, echoed in the report
expect_status 0 "$LP" eval --domain string --model lp.ckpt --tasks tasks.jsonl --beam 4 \
  --latent-beam 2 --max-len 20 --json --search beam --len-alpha 0.6
python3 -c '
import json
o = json.load(open("out.txt"))
raise SystemExit(0 if o["len_alpha"] == 0.6 and len(o["runs"]) == 1 else 1)' || fail "eval --len-alpha: $(cat out.txt)"
expect_status 2 "$LP" eval --domain string --model lp.ckpt --tasks tasks.jsonl --len-alpha 11
has err.txt "--len-alpha expects a number in 0..10" "bad --len-alpha"
# --metric bleu on the string domain: the reference is "program"
expect_status 0 "$LP" eval --domain string --model rf.ckpt --tasks tasks.jsonl --beam 2 --metric bleu --max-len 20
has out.txt "metric bleu" "bleu on string"

# bad lines: reported with FILE:LINE, the others evaluated, exit 1
{ cat tasks.jsonl; echo '{"program": "Const(1)", "inputs": ["a"]}'; echo '{'; } >bad.jsonl
expect_status 1 "$LP" eval --domain string --model rf.ckpt --tasks bad.jsonl --beam 1 --max-len 20 --search beam
has err.txt 'bad.jsonl:4: missing field "outputs"' "missing outputs"
has err.txt "bad.jsonl:5: invalid JSON" "bad JSON"
has out.txt "3 tasks from bad.jsonl (2 bad lines)" "report after bad lines"
expect_status 2 "$LP" eval --domain string --model rf.ckpt --tasks tasks.jsonl --metric rouge
has err.txt "--metric must be exact or bleu" "bad metric"

finish "eval report"

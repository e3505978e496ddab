#!/usr/bin/env bash
# Acceptance: every conformance vector through `lpsynth exec` gives the vector's
# tokens and outputs, and `lpsynth check` finds every vector consistent.
# usage: exec_conformance.sh LPSYNTH CONFORMANCE.jsonl
set -euo pipefail
bin=$1 vec=$2
if [ ! -f "$vec" ]; then
  echo "conformance file not found: $vec (the repository's tests/data/strdsl.jsonl)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" exec --domain string "$vec" > "$tmp/exec.jsonl"
"$bin" check --domain string "$vec" > "$tmp/check.jsonl"
python3 - "$vec" "$tmp/exec.jsonl" "$tmp/check.jsonl" <<'PY'
import json, sys
want = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
got = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
chk = [json.loads(l) for l in open(sys.argv[3], encoding="utf-8")]
assert len(got) == len(want) == len(chk), (len(got), len(want), len(chk))
bad = 0
for i, (w, g, c) in enumerate(zip(want, got, chk), 1):
    if g.get("tokens") != w["tokens"] or g.get("outputs") != w["outputs"] or c.get("consistent") is not True:
        bad += 1
        if bad <= 10:
            print(f"line {i}: {w['program']}\n  want tokens {w['tokens']} outputs {w['outputs']}\n"
                  f"  got  tokens {g.get('tokens')} outputs {g.get('outputs')} consistent {c.get('consistent')}")
print(f"exec conformance: {len(want) - bad}/{len(want)} pass")
sys.exit(1 if bad else 0)
PY

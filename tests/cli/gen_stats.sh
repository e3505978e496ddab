#!/usr/bin/env bash
# Acceptance: `lpsynth gen` over 4,000 tasks matches the reference sampler's
# statistics within 10% (program tokens 22.3, input length 54.1, output length
# 50.7), every task re-checks as consistent with `lpsynth check`, outputs have
# 1..100 characters, and the same seed gives the same bytes.
# usage: gen_stats.sh LPSYNTH
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" gen --domain string -n 4000 --seed 7 > "$tmp/a.jsonl"
"$bin" gen --domain string -n 4000 --seed 7 --out "$tmp/b.jsonl"
cmp "$tmp/a.jsonl" "$tmp/b.jsonl" || { echo "same seed gave different bytes"; exit 1; }
"$bin" gen --domain string -n 10 --seed 8 > "$tmp/c.jsonl"
if cmp -s <(head -n 10 "$tmp/a.jsonl") "$tmp/c.jsonl"; then echo "different seeds gave the same tasks"; exit 1; fi
"$bin" check --domain string "$tmp/a.jsonl" > "$tmp/check.jsonl"
python3 - "$tmp/a.jsonl" "$tmp/check.jsonl" <<'PY'
import json, sys
tasks = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
chk = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert len(tasks) == 4000 and len(chk) == 4000
assert all(c["consistent"] is True for c in chk), "a generated task is not consistent"
ins = [len(s) for t in tasks for s in t["inputs"]]
outs = [len(s) for t in tasks for s in t["outputs"]]
toks = [len(t["tokens"]) for t in tasks]
assert all(1 <= n <= 100 for n in outs), "an output is empty or longer than 100"
assert all(n <= 100 for n in ins), "an input is longer than 100"
m = {"program tokens": (sum(toks) / len(toks), 22.3), "input length": (sum(ins) / len(ins), 54.1),
     "output length": (sum(outs) / len(outs), 50.7)}
ok = True
for k, (got, ref) in m.items():
    rel = abs(got - ref) / ref
    print(f"{k}: {got:.2f} (reference {ref}, {100 * rel:.1f}% off)")
    ok &= rel <= 0.10
print(f"max program tokens: {max(toks)}")
sys.exit(0 if ok else 1)
PY

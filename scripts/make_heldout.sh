#!/usr/bin/env bash
# Builds the string domain's held-out evaluation set: 100 generated tasks for
# each program length 1..10 expressions (1,000 tasks), task seeds derived from
# base seeds 900001..900010, which no training run uses (training runs use
# small seeds such as 1; task i of base seed S has seed splitmix(splitmix(S) ^ i)).
# usage: bash scripts/make_heldout.sh [LPSYNTH] [OUT]
set -euo pipefail
bin=${1:-./build/lpsynth}
out=${2:-domains/string/heldout-1000.jsonl}
tmp="$out.tmp.$$"
: > "$tmp"
for k in $(seq 1 10); do
  "$bin" gen --domain string -n 100 --seed $((900000 + k)) --min-size "$k" --max-size "$k" >> "$tmp"
done
mv "$tmp" "$out"
echo "wrote $(wc -l < "$out") tasks to $out"

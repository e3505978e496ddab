#!/usr/bin/env bash
# The python-domain experiment of EXPERIMENTS.md: RobustFill[Transformer] and the
# Latent Programmer trained at once (one thread each, so each gets one core of a
# 2-core machine) for the same wall-clock budget on the train split of the
# corpus of scripts/build_python_corpus.sh, then scored by BLEU on our test
# split and on ../shared/data/python/cdc-valid.jsonl.
#
#   bash scripts/python_experiment.sh [CORPUS_DIR] [OUT_DIR] [BUDGET] [N] [N100]
#        (defaults: build/python-corpus, py-experiment, 2h, 300, 50)
#
# Training reads a shuffled, length-bucketed copy of the train split
# (scripts/bucket_pairs.py, seed 1): `train --data` reads its file in order,
# and the corpus is in file order, so unshuffled batches would each come from
# one source file; bucketing makes batches 1.6x faster (less padding).
# Evaluation (search is the cost: about 0.1 / 0.3 / 2.5 s per task and core at
# B = 1 / 10 / 100 for these models): B = 1 and 10 on a seeded sample of N
# pairs of each set, B = 100 on the first N100 pairs of that sample. Set N=0 to
# score every pair. Samples: scripts/sample_lines.py, seed 2026.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LPSYNTH_BUILD:-$root/build}
corpus=$(cd "${1:-$root/build/python-corpus}" && pwd)
out=${2:-py-experiment}
budget=${3:-2h}
n=${4:-300}
n100=${5:-50}
L="$build/lpsynth"
mkdir -p "$out"
cd "$out"

if [ ! -e rf.ckpt ] || [ ! -e lp.ckpt ]; then
  python3 "$root/scripts/bucket_pairs.py" "$corpus/pairs.jsonl" train-bucket.jsonl \
    --split train --batch 32 --seed 1
  for m in rf lp; do
    cfg=$root/models/robustfill-python-2h.cfg
    [ $m = lp ] && cfg=$root/models/lp-python-2h.cfg
    "$L" train --domain python --domain-options "$corpus/python.spm.model" --config "$cfg" \
      --data train-bucket.jsonl --split train --steps 1000000 --time-limit "$budget" \
      --threads 1 --seed 1 --out $m.ckpt --log $m.csv --log-every 20 --json \
      > $m.train.json 2> $m.train.err &
  done
  wait
fi

# evaluation sets: our test split, and cdc-valid
python3 "$root/scripts/sample_lines.py" "$corpus/pairs.jsonl" test.sample.jsonl \
  --split test --n "$n" --seed 2026
python3 "$root/scripts/sample_lines.py" "$root/../shared/data/python/cdc-valid.jsonl" \
  cdc.sample.jsonl --n "$n" --seed 2026
ev() { # model set beams limit tag
  local lim=()
  [ "$4" -gt 0 ] && lim=(--limit "$4")
  "$L" eval --domain python --metric bleu --model $1.ckpt --tasks $2.sample.jsonl \
    --beam "$3" "${lim[@]}" --threads 1 --json --details $1.$2.$5.details.jsonl \
    > $1.$2.$5.json
}
for m in rf lp; do
  ( ev $m test 1,10 0 b1-10 && ev $m cdc 1,10 0 b1-10 &&
    ev $m test 100 "$n100" b100 && ev $m cdc 100 "$n100" b100 ) &
done
wait
echo "results in $out: {rf,lp}.{test,cdc}.{b1-10,b100}.json"

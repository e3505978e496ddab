#!/usr/bin/env bash
# The python-domain experiment of EXPERIMENTS.md: RobustFill[Transformer] and the
# Latent Programmer trained at once (one thread each, so each gets one core of a
# 2-core machine) for the same wall-clock budget on the train split of the
# corpus of scripts/build_python_corpus.sh, then scored by BLEU on our test
# split and on ../shared/data/python/cdc-valid.jsonl.
#
#   bash scripts/python_experiment.sh [CORPUS_DIR] [OUT_DIR] [BUDGET] [N100]
#        (defaults: build/python-corpus, py-experiment, 2h, 300)
#
# Training reads a shuffled, length-bucketed copy of the train split
# (scripts/bucket_pairs.py, seed 1): `train --data` reads its file in order,
# and the corpus is in file order, so unshuffled batches would each come from
# one source file; bucketing makes batches 1.6x faster (less padding).
# Evaluation (EXPERIMENTS.md): B = 1 and 10 on every pair of our test split and
# of cdc-valid, B = 100 on a seeded sample of N100 pairs of each
# (scripts/sample_lines.py, seed 2026; N100=0: every pair), two workers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LPSYNTH_BUILD:-$root/build}
corpus=$(cd "${1:-$root/build/python-corpus}" && pwd)
out=${2:-py-experiment}
budget=${3:-2h}
n100=${4:-300}
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

# evaluation: every pair at B = 1, 10; a sample at B = 100
cdc=$root/../shared/data/python/cdc-valid.jsonl
python3 "$root/scripts/sample_lines.py" "$corpus/pairs.jsonl" test.sample.jsonl \
  --split test --n "$n100" --seed 2026
python3 "$root/scripts/sample_lines.py" "$cdc" cdc.sample.jsonl --n "$n100" --seed 2026
ev() { # model tag beams eval-args...
  local m=$1 tag=$2 b=$3
  shift 3
  "$L" eval --domain python --metric bleu --model $m.ckpt --beam "$b" --threads 2 --json \
    --details $m.$tag.details.jsonl "$@" > $m.$tag.json
}
for m in rf lp; do
  ev $m test-all 1,10 --tasks "$corpus/pairs.jsonl" --split test
  ev $m cdc-all 1,10 --tasks "$cdc"
  ev $m test-sample 100 --tasks test.sample.jsonl
  ev $m cdc-sample 100 --tasks cdc.sample.jsonl
done
echo "results in $out: {rf,lp}.{test-all,cdc-all,test-sample,cdc-sample}.json"

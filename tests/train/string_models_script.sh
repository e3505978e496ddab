#!/usr/bin/env bash
# scripts/string_models.sh (EXPERIMENTS.md's protocol for the shipped string
# models) end to end on two tiny models trained here for 20 steps: with
# TRAIN=0 it evaluates OUT/rf.ckpt and OUT/lp.ckpt with the paper's beam and
# the guided beam at B = 1, 10, 100, sweeps the LP's latent beam, ranks the
# solver's answers by the prior, each model and hybrid on generated tasks with
# held-out examples, and writes summary.md with every table; without its
# arguments it prints its usage and exits 2. What tiny models find is not
# checked; that every run is made and reported is.
#   string_models_script.sh LPSYNTH MODELS_DIR SCRIPTS_DIR
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../common/cli_scratch.sh
. "$(dirname -- "$0")/../common/cli_scratch.sh"
LP=$(abs_path "$1")
MODELS=$(abs_path "$2")
SCRIPTS=$(abs_path "$3")
scratch_temp string-models
mkdir out
expect_status 0 "$LP" train --domain string --config "$MODELS/robustfill-tiny.cfg" --steps 20 \
  --seed 1 --out out/rf.ckpt
expect_status 0 "$LP" train --domain string --config "$MODELS/lp-tiny.cfg" --steps 20 \
  --seed 1 --out out/lp.ckpt
expect_status 0 "$LP" gen --domain string -n 6 --seed 3 --out tasks.jsonl
TRAIN=0 RANK_N=1 expect_status 0 bash "$SCRIPTS/string_models.sh" "$LP" out 1m tasks.jsonl
for f in rf.beam rf.guided lp.beam lp.guided lp.sweep rank-prior rank-rf-model rank-rf-hybrid \
  rank-lp-model rank-lp-hybrid; do
  python3 - "out/$f.json" "$f" <<'PY' || fail "$f.json: $(head -c 400 "out/$f.json")"
import json, sys
path, name = sys.argv[1], sys.argv[2]
o = json.load(open(path))
runs = o["runs"]
if name.startswith("rank-"):
    assert o["tasks"] == 10 and runs[0]["held_tasks"] == 10, (o["tasks"], runs)
elif name == "lp.sweep":
    assert o["tasks"] == 6 and [r["latent_beam"] for r in runs] == [1, 2, 3, 5, 10], runs
else:
    assert o["tasks"] == 6 and [r["beam"] for r in runs] == [1, 10, 100], runs
PY
done
for row in "| RobustFill[Transformer] | ? | beam |" "| RobustFill[Transformer] | ? | guided |" \
  "| Latent Programmer | ? | beam |" "| Latent Programmer | ? | guided |" "| 10 |" \
  "| domain prior |" "| hybrid, RobustFill |" "| hybrid, LP |" "Solver answers (10 tasks"; do
  has out/summary.md "$row" "summary.md"
done
expect_status 2 bash "$SCRIPTS/string_models.sh"
has err.txt "usage:" "string_models.sh without arguments"
finish "scripts/string_models.sh"

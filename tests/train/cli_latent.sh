#!/usr/bin/env bash
# Latent RobustFill [AE] or [VAE] through the CLI, end to end with
# models/latent-KIND-tiny.cfg on generated string tasks: `lpsynth train
# --config` (2 data-parallel workers), `ckpt info`, `train --resume`, `eval`
# at two beam sizes (these kinds are given each task's true program length:
# the tasks carry their programs) with the model's beam and the
# execution-guided beam, `synth` without a reference program (refused, saying
# why), and `bench train`. What the model learns in a few steps is not checked
# (a smoke run); that each verb runs and reports it is.
# usage: cli_latent.sh LPSYNTH STRING.so TOY.so MODELS_DIR KIND (latent-ae|latent-vae)
set -euo pipefail
TRAIN_CLI_EXTRA=KIND
# shellcheck source-path=SCRIPTDIR source=train_cli.sh
. "$(dirname -- "$0")/train_cli.sh" "$@"
KIND=$5
TINY="$MODELS/$KIND-tiny.cfg"
export OPENBLAS_NUM_THREADS=1

# ---- train, inspect, resume
train_smoke "$TINY" "$KIND"
runcmd "$LPSYNTH" train --domain "$STRING_SO" --model "$KIND" --config "$MODELS/lp-tiny.cfg" \
  --steps 1 --out "$T/x.ckpt"
expect_rc 2 "--model $KIND with an lp config"
expect_has "$T/err" "--model $KIND, but" "kind mismatch message"

# ---- search: eval (plain and guided beams) on tasks with their programs
runcmd "$LPSYNTH" gen --domain "$STRING_SO" -n 4 --seed 5 -o "$T/tasks.jsonl"
expect_rc 0 "gen"
runcmd "$LPSYNTH" eval --domain "$STRING_SO" --model "$T/m8.ckpt" --tasks "$T/tasks.jsonl" \
  --search beam --beam 1,4 --latent-beam 2 --json
expect_rc 0 "eval --search beam"
expect_has "$T/out" "\"model\":\"$KIND\"" "eval names the model"
expect_has "$T/out" '"beam":4' "eval at B = 4"
expect_has "$T/out" '"tasks":4' "eval read the 4 tasks"
expect_lacks "$T/err" "true program length" "eval: the tasks' programs give the length"
runcmd "$LPSYNTH" eval --domain "$STRING_SO" --model "$T/m8.ckpt" --tasks "$T/tasks.jsonl" \
  --search guided --beam 2 --time-limit 5
expect_rc 0 "eval --search guided"
# ---- synth from examples alone: no reference program, so no true length
runcmd "$LPSYNTH" synth --domain "$STRING_SO" --model "$T/m8.ckpt" --search beam --beam 3 \
  --io 'Mason Smith => Smith' --io 'Henry Myers => Myers'
expect_true "synth without a reference program fails" test "$rc" -ne 0
expect_has "$T/err" "is given the true program length" "synth says why"

# ---- bench train runs its step
runcmd "$LPSYNTH" bench train --domain "$STRING_SO" --config "$TINY" --steps 2 --warmup 1 --json
expect_rc 0 "bench train"
expect_has "$T/out" "\"model\":\"$KIND\"" "bench names the model"

finish

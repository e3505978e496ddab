#!/usr/bin/env bash
# RobustFill[LSTM] through the CLI, end to end with models/robustfill-lstm-tiny.cfg
# on generated string tasks: `lpsynth train --config` (2 data-parallel
# workers), `ckpt info`, `train --resume`, `train --model robustfill-lstm`,
# `eval` at two beam sizes with the model's beam and the execution-guided
# beam, `synth`, and `bench train`. What the model learns in a few steps is
# not checked (it is a smoke run); that each verb runs and reports it is.
# usage: cli_lstm.sh LPSYNTH STRING.so TOY.so MODELS_DIR
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=train_cli.sh
. "$(dirname -- "$0")/train_cli.sh" "$@"
TINY="$MODELS/robustfill-lstm-tiny.cfg"
export OPENBLAS_NUM_THREADS=1

# ---- train, inspect, resume
train_smoke "$TINY" robustfill-lstm
# --model alone gives the kind's defaults (checked, not run: the paper's size)
runcmd "$LPSYNTH" train --domain "$STRING_SO" --model robustfill-lstm --config "$MODELS/robustfill-tiny.cfg" \
  --steps 1 --out "$T/x.ckpt"
expect_rc 2 "--model robustfill-lstm with a robustfill config"
expect_has "$T/err" "--model robustfill-lstm, but" "kind mismatch message"

# ---- search: eval (plain and guided beams) and synth
runcmd "$LPSYNTH" gen --domain "$STRING_SO" -n 4 --seed 5 -o "$T/tasks.jsonl"
expect_rc 0 "gen"
runcmd "$LPSYNTH" eval --domain "$STRING_SO" --model "$T/m8.ckpt" --tasks "$T/tasks.jsonl" \
  --search beam --beam 1,3 --json
expect_rc 0 "eval --search beam"
expect_has "$T/out" '"model":"robustfill-lstm"' "eval names the model"
expect_has "$T/out" '"beam":3' "eval at B = 3"
runcmd "$LPSYNTH" eval --domain "$STRING_SO" --model "$T/m8.ckpt" --tasks "$T/tasks.jsonl" \
  --search guided --beam 2 --time-limit 5
expect_rc 0 "eval --search guided"
runcmd "$LPSYNTH" synth --domain "$STRING_SO" --model "$T/m8.ckpt" --search beam --beam 3 \
  --show 3 --io 'Mason Smith => Smith' --io 'Henry Myers => Myers'
expect_true "synth --search beam runs (status 0 or 1: no consistent program)" \
  test "$rc" -eq 0 -o "$rc" -eq 1
expect_lacks "$T/err" "failed" "synth: no search failure"
runcmd "$LPSYNTH" synth --domain "$STRING_SO" --model "$T/m8.ckpt" --search auto \
  --time-limit 5 --io 'Mason Smith => Smith' --io 'Henry Myers => Myers'
expect_rc 0 "synth --search auto (the solver's programs ranked by the LSTM)"

# ---- bench train runs its step
runcmd "$LPSYNTH" bench train --domain "$STRING_SO" --config "$TINY" --steps 2 --warmup 1 --json
expect_rc 0 "bench train"
expect_has "$T/out" '"model":"robustfill-lstm"' "bench names the model"

finish

#!/usr/bin/env bash
# `lpsynth ckpt strip --half fp16|bf16` end to end, for a tiny RobustFill and
# a tiny Latent Programmer trained on generated string tasks: the files (every
# section but the parameters byte for byte the same, the parameters rounded to
# nearest even, about half the size of the stripped fp32 file), ckpt info,
# the refusals (train --resume, a second rounding, fp16's range), and synth and
# eval with the full and the half models: the same top programs and the same
# eval rows.
#
# "The same": rounding the parameters moves every score a little (measured on
# these models: fp16 at most 0.009 nats, bf16 0.066), so the full and the half
# model list the same programs in the same order wherever the full model's
# scores are further apart than twice that; synth's scores must agree within
# TOL (fp16 0.03, bf16 0.15) and its programs must be in the same order at
# every rank the full model decides by 2 x TOL, and the top program must be
# decided on at least 3 of the 8 tasks for the check to mean something
# (measured: 4 to 8). An LP scores a program with the best of a beam of 3
# latent codes: where codes nearly tie, the rounded model may keep another
# code and every score of the task moves by whole nats (seen with bf16, on 1
# or 2 of the 8 tasks, for LPs trained in fp32 - as on CPUs without
# AVX512_BF16); ckpt_check.py reports such a task as a "flip" and it is not
# compared (nor counted as decided). A RobustFill's score has no such step: a
# flip there fails. The solver's candidates do not depend on the model, so
# eval's rows are the same but for the seconds (and "generalised" where the top
# program is not decided). The time limits are far above what a task takes, so
# that the results do not depend on the machine's speed.
# Three parts, three ctest tests (run at once where ctest -j can):
#   files       the files, ckpt info and the refusals, for both kinds, of models
#               trained 20 steps (what the files are does not depend on training),
#               and fp16's range and the usage errors: seconds, in every CI job
#   robustfill  search with the full and the half models, trained 300 steps (the
#   lp          scores must be far enough apart to compare): minutes, so labelled
#               "slow" and left out of the sanitizer job, as the overfit tests
# usage: cli_ckpt_half.sh LPSYNTH STRING.so TOY.so MODELS_DIR files|robustfill|lp
set -euo pipefail
TRAIN_CLI_EXTRA="files|robustfill|lp"
# shellcheck source-path=SCRIPTDIR source=train_cli.sh
. "$(dirname -- "$0")/train_cli.sh" "$@"
PART=$5
case $PART in
  files) KINDS="robustfill lp" STEPS=20 ;;
  robustfill | lp) KINDS=$PART STEPS=300 ;;
  *)
    echo "cli_ckpt_half.sh: the part must be files, robustfill or lp, not '$PART'" >&2
    exit 2
    ;;
esac
CHECK="$(dirname -- "$0")/ckpt_check.py"
export OPENBLAS_NUM_THREADS=1
N_TASKS=8
TOL_FP16=0.03
TOL_BF16=0.15
ALL_DECIDED=$(seq $N_TASKS | sed 's/.*/1/' | paste -sd, -)

quiet() { "$@" >/dev/null; }

# search M.ckpt NAME K: synth on the first K tasks (JSON in
# $T/NAME.synthI.json) and eval on all with the last example held out (rows in
# $T/NAME.eval.jsonl)
search() {
  local i
  for i in $(seq 1 "$3"); do
    runcmd "$LPSYNTH" synth --domain "$STRING_SO" --model "$1" --examples "$T/task$i.json" \
      --rank model --show 10 --time-limit 600 --json
    expect_rc 0 "synth with $2 on task $i"
    cp "$T/out" "$T/$2.synth$i.json"
  done
  runcmd "$LPSYNTH" eval --domain "$STRING_SO" --model "$1" --tasks "$T/tasks.jsonl" \
    --rank model --holdout 1 --beam 5 --time-limit 600 --details "$T/$2.eval.jsonl" --json
  expect_rc 0 "eval with $2"
}

# files_checks: the files of $m (KIND $kind, config $cfg), ckpt info and the refusals
files_checks() {
  local prec
  for prec in fp16 bf16; do
    runcmd python3 "$CHECK" sections "$m.fp32.ckpt" "$m.$prec.ckpt" $prec
    expect_rc 0 "$kind: $prec file: the other sections unchanged, rounded parameters, half the size"
    cat "$T/out"
    runcmd "$LPSYNTH" ckpt info "$m.$prec.ckpt"
    expect_rc 0 "$kind: ckpt info on the $prec file"
    expect_has "$T/out" "format version 2, checksum ok" "$kind: $prec file: version 2"
    expect_has "$T/out" "storage:    parameters in $prec (16 bits" "$kind: ckpt info names $prec"
    runcmd "$LPSYNTH" ckpt info --json "$m.$prec.ckpt"
    expect_has "$T/out" "\"param_precision\":\"$prec\"" "$kind: ckpt info --json names $prec"
    # stripping again keeps the storage (the same bytes); another --half is refused
    runcmd "$LPSYNTH" ckpt strip "$m.$prec.ckpt" "$T/again.ckpt"
    expect_rc 0 "$kind: $prec file stripped again"
    expect_true "$kind: $prec file stripped again: the same bytes" \
      cmp -s "$m.$prec.ckpt" "$T/again.ckpt"
    # train --resume refuses it and says why
    runcmd "$LPSYNTH" train --domain "$STRING_SO" --config "$cfg" --steps $((STEPS + 10)) \
      --resume "$m.$prec.ckpt" --out "$T/never.ckpt"
    expect_rc 1 "$kind: train --resume from the $prec file is refused"
    expect_has "$T/err" "$m.$prec.ckpt: the checkpoint stores its parameters as $prec and has no \
optimiser state (made by \`lpsynth ckpt strip --half\`), so training cannot resume from it" \
      "$kind: resume refusal message"
  done
  runcmd "$LPSYNTH" ckpt info "$m.fp32.ckpt"
  expect_has "$T/out" "storage:    parameters in fp32" "$kind: ckpt info names fp32"
  runcmd "$LPSYNTH" ckpt strip --half bf16 "$m.fp16.ckpt" "$T/never.ckpt"
  expect_rc 1 "$kind: --half bf16 of an fp16 file is refused"
  expect_has "$T/err" "stores its parameters as fp16 already" "$kind: second rounding message"
  expect_true "failed runs wrote nothing" test ! -e "$T/never.ckpt"
}

# search_checks: synth and eval with the full, stripped and half models of $m
search_checks() {
  local prec i k tol decided n_top n_ranks n_flips latent
  runcmd "$LPSYNTH" gen --domain "$STRING_SO" -n $N_TASKS --seed 11 -o "$T/tasks.jsonl"
  expect_rc 0 "gen tasks"
  python3 "$CHECK" holdout "$T/tasks.jsonl" "$T/task"
  # the full model, then the stripped and half ones
  search "$m.ckpt" "$kind.full" $N_TASKS
  search "$m.fp32.ckpt" "$kind.fp32" 2 # the same parameters: two tasks show it
  for i in 1 2; do
    expect_true "$kind: stripped fp32 model: synth on task $i the same (bitwise scores)" \
      quiet python3 "$CHECK" synth "$T/$kind.full.synth$i.json" "$T/$kind.fp32.synth$i.json" 0
  done
  for prec in fp16 bf16; do
    search "$m.$prec.ckpt" "$kind.$prec" $N_TASKS
    case $prec in
      fp16) tol=$TOL_FP16 ;;
      bf16) tol=$TOL_BF16 ;;
    esac
    decided=""
    n_top=0
    n_ranks=0
    n_flips=0
    latent=""
    if [ "$kind" = lp ]; then latent=latent; fi
    for i in $(seq 1 $N_TASKS); do
      runcmd python3 "$CHECK" synth "$T/$kind.full.synth$i.json" "$T/$kind.$prec.synth$i.json" \
        "$tol" $latent
      expect_rc 0 "$kind $prec: synth on task $i: the same top programs"
      k=$(cat "$T/out")
      if [ "$k" = flip ]; then
        n_flips=$((n_flips + 1))
        k=0
      fi
      k=${k:-0}
      n_ranks=$((n_ranks + k))
      if [ "$k" -gt 0 ]; then n_top=$((n_top + 1)); fi
      decided="$decided${decided:+,}$([ "$k" -gt 0 ] && echo 1 || echo 0)"
    done
    echo "$kind $prec: top program decided on $n_top of $N_TASKS tasks, $n_ranks ranks" \
      "compared, $n_flips latent flips"
    expect_true "$kind $prec: the top program decided on 3 or more tasks ($n_top of $N_TASKS)" \
      test "$n_top" -ge 3
    expect_true "$kind $prec: eval rows the same" \
      python3 "$CHECK" eval "$T/$kind.full.eval.jsonl" "$T/$kind.$prec.eval.jsonl" "$decided"
  done
  expect_true "$kind: stripped fp32 model: eval rows the same" \
    python3 "$CHECK" eval "$T/$kind.full.eval.jsonl" "$T/$kind.fp32.eval.jsonl" "$ALL_DECIDED"
}

# range_checks: fp16's range (a parameter over 65504 is refused, never
# saturated; bf16 takes it), a NaN, and --half's usage error, on the robustfill
# model of the files part
range_checks() {
  python3 "$CHECK" poke "$T/robustfill.fp32.ckpt" "$T/big.ckpt" 70000
  runcmd "$LPSYNTH" ckpt strip --half fp16 "$T/big.ckpt" "$T/never.ckpt"
  expect_rc 1 "a parameter of 70000 in fp16 is refused"
  expect_has "$T/err" \
    "parameters beyond fp16's range (|x| <= 65504): the largest is 70000 (parameter 0, tensor" \
    "fp16 range message names the largest"
  expect_true "the refused strip wrote nothing" test ! -e "$T/never.ckpt"
  runcmd "$LPSYNTH" ckpt strip --half bf16 "$T/big.ckpt" "$T/bigb.ckpt"
  expect_rc 0 "bf16 takes 70000"
  python3 "$CHECK" poke "$T/robustfill.fp32.ckpt" "$T/nan.ckpt" nan
  runcmd "$LPSYNTH" ckpt strip --half bf16 "$T/nan.ckpt" "$T/never.ckpt"
  expect_rc 1 "a NaN parameter is refused"
  expect_has "$T/err" "parameter 0 (tensor" "NaN message names the parameter"
  expect_has "$T/err" "is NaN; bf16 storage holds finite values only" "NaN message"
  runcmd "$LPSYNTH" ckpt strip --half fp8 "$T/robustfill.ckpt" "$T/never.ckpt"
  expect_rc 2 "--half fp8 is a usage error"
  expect_has "$T/err" "--half must be fp16 or bf16" "--half usage message"
}

for kind in $KINDS; do
  case $kind in
    robustfill) cfg="$MODELS/robustfill-tiny.cfg" ;;
    lp) cfg="$MODELS/lp-tiny.cfg" ;;
  esac
  m="$T/$kind"
  runcmd "$LPSYNTH" train --domain "$STRING_SO" --config "$cfg" --steps $STEPS --seed 3 \
    --out "$m.ckpt"
  expect_rc 0 "$kind: train $STEPS steps"
  runcmd "$LPSYNTH" ckpt strip "$m.ckpt" "$m.fp32.ckpt"
  expect_rc 0 "$kind: ckpt strip"
  for prec in fp16 bf16; do
    runcmd "$LPSYNTH" ckpt strip --half $prec "$m.ckpt" "$m.$prec.ckpt"
    expect_rc 0 "$kind: ckpt strip --half $prec"
  done
  if [ "$PART" = files ]; then
    files_checks
  else
    search_checks
  fi
done

if [ "$PART" = files ]; then range_checks; fi
expect_true "no temp files" no_temp_files

finish

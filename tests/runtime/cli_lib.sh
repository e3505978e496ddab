# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables below are used by the scripts that source this
# Helpers shared by the cli_*.sh tests (sourced, not run).
# Arguments of every script: LPSYNTH TOY.so FIXTURES_DIR STRING.so
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 LPSYNTH TOY.so FIXTURES_DIR STRING.so" >&2
  exit 2
fi
LPSYNTH=$1
TOY=$2
FIXTURES=$3
STRING_SO=$4
TOY_DIR=$(dirname -- "$TOY")
unset LPSYNTH_PLUGIN_PATH
export LPSYNTH_PROGRESS=0
# In a -DLP_SANITIZE=ON build a sanitizer report must not pass for the expected
# status 1: make it exit 99 (harmless in other builds), and check stderr too.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=99"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=99:print_stacktrace=1"
T=$(mktemp -d "${TMPDIR:-/tmp}/lpsynth-cli.XXXXXX")
trap 'rm -rf -- "$T"' EXIT
FAILED=0
CHECKS=0

fail() {
  echo "FAIL: $*" >&2
  FAILED=$((FAILED + 1))
}

show() {
  sed 's/^/    stdout: /' "$T/out" | head -n 20 >&2 || true
  sed 's/^/    stderr: /' "$T/err" | head -n 20 >&2 || true
}

# runcmd CMD...: runs CMD with stdout in $T/out, stderr in $T/err, status in $rc.
runcmd() {
  rc=0
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  sanitizer_clean
}

# Fails when the last command's stderr holds a sanitizer report.
sanitizer_clean() {
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/err"; then
    fail "sanitizer report (exit status $rc)"
    show
  fi
}

# expect_rc WANT WHAT: the last runcmd's exit status must be WANT.
expect_rc() {
  CHECKS=$((CHECKS + 1))
  if [ "$rc" -ne "$1" ]; then
    fail "$2: exit status $rc, want $1"
    show
  fi
}

# expect_has FILE TEXT WHAT: FILE contains the fixed string TEXT.
expect_has() {
  CHECKS=$((CHECKS + 1))
  if ! grep -qF -- "$2" "$1"; then
    fail "$3: $(basename -- "$1") lacks: $2"
    show
  fi
}

expect_lacks() {
  CHECKS=$((CHECKS + 1))
  if grep -qF -- "$2" "$1"; then
    fail "$3: $(basename -- "$1") should not contain: $2"
    show
  fi
}

# expect_true WHAT CMD...: CMD must succeed.
expect_true() {
  local what=$1
  shift
  CHECKS=$((CHECKS + 1))
  if ! "$@"; then
    fail "$what"
  fi
}

# differ A B: the files A and B are not identical.
differ() { ! cmp -s "$1" "$2"; }

# train_smoke CONFIG KIND: the start of the model kinds' CLI smoke runs
# (tests/train/cli_*.sh): `train --config CONFIG` 6 steps on 2 data-parallel
# workers into $T/m.ckpt (log $T/m.csv), `ckpt info` naming KIND, then
# `train --resume` to step 8 into $T/m8.ckpt.
train_smoke() {
  local cfg=$1 kind=$2
  runcmd "$LPSYNTH" train --domain "$STRING_SO" --config "$cfg" --steps 6 --threads 2 \
    --out "$T/m.ckpt" --log "$T/m.csv" --log-every 1
  expect_rc 0 "train --config $(basename -- "$cfg")"
  expect_has "$T/err" "$kind" "the start line names the model"
  expect_true "log has a header and 6 rows" test "$(wc -l <"$T/m.csv")" -eq 7
  runcmd "$LPSYNTH" ckpt info "$T/m.ckpt"
  expect_rc 0 "ckpt info"
  expect_has "$T/out" "model = $kind" "the stored config"
  runcmd "$LPSYNTH" train --domain "$STRING_SO" --config "$cfg" --steps 8 --threads 2 \
    --resume "$T/m.ckpt" --out "$T/m8.ckpt"
  expect_rc 0 "train --resume"
  runcmd "$LPSYNTH" ckpt info --json "$T/m8.ckpt"
  expect_has "$T/out" '"step":8' "resumed to step 8"
}

# no_temp_files: nothing named *.tmp* is left in $T.
no_temp_files() {
  local f
  for f in "$T"/*.tmp* "$T"/.*.tmp*; do
    [ -e "$f" ] && return 1
  done
  return 0
}

finish() {
  if [ "$FAILED" -ne 0 ]; then
    echo "$(basename -- "$0"): $FAILED of $CHECKS checks failed" >&2
    exit 1
  fi
  echo "$(basename -- "$0"): all $CHECKS checks passed"
}

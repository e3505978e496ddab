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

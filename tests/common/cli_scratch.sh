# shellcheck shell=bash
# Helpers of the CLI tests that work in a scratch folder (sourced, not run):
# every command checked with expect_status leaves its stdout in out.txt and
# its stderr in err.txt there; fail counts, finish reports.
set -euo pipefail
failures=0

# abs_path PATH: PATH made absolute (its folder must exist).
abs_path() { echo "$(cd "$(dirname -- "$1")" && pwd)/$(basename -- "$1")"; }

# scratch_in DIR: DIR, emptied (or made), becomes the working folder.
scratch_in() {
  rm -rf -- "$1"
  mkdir -p -- "$1"
  cd -- "$1"
}

# scratch_temp NAME: a new temporary folder lpsynth-NAME.XXXXXX, removed on
# exit, becomes the working folder; its path is in $T.
scratch_temp() {
  T=$(mktemp -d "${TMPDIR:-/tmp}/lpsynth-$1.XXXXXX")
  trap 'rm -rf -- "$T"' EXIT
  cd "$T"
}

# shipped_ckpt LP NAME CKPT DOMAIN [PRECISION]: the shipped checkpoint CKPT of
# model folder NAME (lp-*: the LP, else RobustFill) exists, is under the
# project's 20 MB limit for a tracked file, and `ckpt info` says DOMAIN, that
# model, a positive step and task count and (when given) PRECISION. Runs
# ${PY:-python3}; returns 1 (after fail) when CKPT is missing.
shipped_ckpt() {
  local lp=$1 name=$2 ck=$3 domain=$4 prec=${5:-}
  [ -f "$ck" ] || { fail "$name: $ck is missing"; return 1; }
  local size
  size=$(stat -c %s "$ck")
  [ "$size" -lt 20000000 ] || fail "$name: $size bytes, over 20 MB"
  expect_status 0 "$lp" ckpt info --json "$ck"
  "${PY:-python3}" - "$name" "$domain" "$prec" out.txt <<'PY' || fail "$name: ckpt info: $(head -c 400 out.txt)"
import json, sys
name, domain, prec, path = sys.argv[1:5]
o = json.load(open(path))
want = "lp" if name.startswith("lp") else "robustfill"
assert o["domain"] == domain and o["model"] == want, (o["domain"], o["model"])
assert o["tasks_seen"] > 0 and o["step"] > 0, (o["tasks_seen"], o["step"])
assert not prec or o["param_precision"] == prec, o["param_precision"]
PY
}

fail() {
  echo "FAILED: $*" >&2
  failures=$((failures + 1))
}

# expect_status WANT CMD...: runs CMD (stdout out.txt, stderr err.txt) and
# compares its exit status with WANT.
expect_status() {
  local want=$1
  shift
  local got=0
  "$@" >out.txt 2>err.txt || got=$?
  [ "$got" = "$want" ] || fail "status $got (want $want): $* :: $(head -c 600 err.txt)"
}

# has FILE TEXT WHAT: FILE contains the fixed string TEXT.
has() { grep -qF -- "$2" "$1" || fail "$3: $(basename -- "$1") lacks \"$2\": $(head -c 800 "$1")"; }

# finish WHAT: exits 1 after failures, else says "WHAT: all checks passed".
finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures failures" >&2
    exit 1
  fi
  echo "$1: all checks passed"
}

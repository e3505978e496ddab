#!/usr/bin/env bash
# --help on every verb (status 0, "usage:" on stdout) and usage errors (status 2).
. "$(dirname -- "$0")/cli_lib.sh"

runcmd "$LPSYNTH"
expect_rc 2 "no verb"
expect_has "$T/err" "usage:" "no verb prints usage on stderr"
for h in --help -h help; do
  runcmd "$LPSYNTH" "$h"
  expect_rc 0 "lpsynth $h"
  expect_has "$T/out" "usage: lpsynth VERB" "lpsynth $h"
done
runcmd "$LPSYNTH" --version
expect_rc 0 "--version"
expect_has "$T/out" "plugin ABI" "--version"
runcmd "$LPSYNTH" frobnicate
expect_rc 2 "unknown verb"
expect_has "$T/err" 'unknown verb "frobnicate"' "unknown verb message"

# every verb `lpsynth --help` lists (and at least the six of the plugin ABI's CLI)
runcmd "$LPSYNTH" --help
VERBS=$(sed -n '/^verbs:/,/^$/p' "$T/out" | sed -n 's/^  \([a-z][a-z_-]*\) .*/\1/p' | tr '\n' ' ')
for v in demo domains run exec gen check; do
  case " $VERBS " in
    *" $v "*) ;;
    *) fail "lpsynth --help does not list the verb $v (lists: $VERBS)" ;;
  esac
done
for verb in $VERBS; do
  runcmd "$LPSYNTH" "$verb" --help
  expect_rc 0 "$verb --help"
  expect_has "$T/out" "usage: lpsynth $verb" "$verb --help"
  expect_true "$verb --help writes nothing on stderr" test ! -s "$T/err"
  runcmd "$LPSYNTH" "$verb" --no-such-option
  expect_rc 2 "$verb --no-such-option"
done

# usage_error WHAT ARGS...: exit status 2, a message on stderr, nothing on stdout
usage_error() {
  local what=$1
  shift
  runcmd "$LPSYNTH" "$@"
  expect_rc 2 "$what"
  expect_true "$what: no message on stderr" test -s "$T/err"
  expect_true "$what: output on stdout" test ! -s "$T/out"
}
D=(--domain "$TOY")
usage_error "gen without -n" gen "${D[@]}" --seed 1
usage_error "gen without --seed" gen "${D[@]}" -n 1
usage_error "gen negative seed" gen "${D[@]}" -n 1 --seed -1
usage_error "gen -n abc" gen "${D[@]}" -n abc --seed 1
usage_error "gen --min-expr 0" gen "${D[@]}" -n 1 --seed 1 --min-expr 0
usage_error "gen --examples 1001" gen "${D[@]}" -n 1 --seed 1 --examples 1001
usage_error "gen min > max" gen "${D[@]}" -n 1 --seed 1 --min-expr 5 --max-expr 2
usage_error "gen extra argument" gen "${D[@]}" -n 1 --seed 1 extra
usage_error "gen --domain without value" gen -n 1 --seed 1 --domain
usage_error "run without --program" run "${D[@]}" --input a
usage_error "run without --input" run "${D[@]}" --program upper
usage_error "run extra argument" run "${D[@]}" --program upper --input a extra
usage_error "exec two files" exec "${D[@]}" a.jsonl b.jsonl
usage_error "exec --max-line 5" exec "${D[@]}" --max-line 5 /dev/null
usage_error "check --max-line x" check "${D[@]}" --max-line x /dev/null
usage_error "domains extra argument" domains extra
expect_has "$T/err" 'unexpected argument "extra"' "domains extra argument message"
usage_error "gen min > max message" gen "${D[@]}" -n 1 --seed 1 --min-expr 5 --max-expr 2
expect_has "$T/err" "--min-expr 5 is larger than --max-expr 2" "min > max message"

finish

#!/usr/bin/env bash
# `lpsynth domains`, refused plugins, and plugin errors through --domain.
. "$(dirname -- "$0")/cli_lib.sh"

ABI_HOST=$("$LPSYNTH" --version | grep -o 'plugin ABI [0-9]*\.[0-9]*' | grep -o '[0-9]*\.[0-9]*')
MAJOR=${ABI_HOST%.*}
MINOR=${ABI_HOST#*.}
ABI_NEXT_MAJOR="$((MAJOR + 1)).$MINOR"
ABI_NEXT_MINOR="$MAJOR.$((MINOR + 1))"

# ---- the default search path: the string plugin, not the toy
runcmd "$LPSYNTH" domains
expect_rc 0 "domains"
expect_has "$T/out" "search path:" "domains header"
expect_true "domains: the string plugin is not listed as loaded" \
  grep -qE "^  string +[^ ]+ +ABI $ABI_HOST " "$T/out"
expect_has "$T/out" "$STRING_SO" "domains: string plugin path"
expect_lacks "$T/out" "lpsynth_toy.so" "domains: the toy must only be reachable by path"
expect_lacks "$T/out" "(refused)" "domains: nothing refused on the default path"

# ---- fixtures: refused plugins are listed with the reason
runcmd env LPSYNTH_PLUGIN_PATH="$FIXTURES" "$LPSYNTH" domains
expect_rc 0 "domains with the fixtures"
expect_has "$T/out" "search path: $FIXTURES " "domains: LPSYNTH_PLUGIN_PATH searched first"
for fx in abi_major no_entry small_desc missing_fn cap_without_fn bad_name null_desc; do
  expect_has "$T/out" "(refused) $FIXTURES/lpsynth_fx_$fx.so" "domains: fixture $fx not refused"
done
# reason_has FIXTURE TEXT: the line after FIXTURE's "(refused)" line (its reason) contains TEXT
reason_has() {
  grep -A1 -F "(refused) $FIXTURES/lpsynth_fx_$1.so" "$T/out" | tail -n 1 | grep -qF -- "$2"
}
expect_true "reason for abi_major" reason_has abi_major \
  "built for plugin ABI $ABI_NEXT_MAJOR, but this lpsynth speaks ABI $ABI_HOST"
expect_true "reason for no_entry" reason_has no_entry "no exported symbol lp_plugin_entry"
expect_true "reason for small_desc" reason_has small_desc "smaller than the"
expect_true "reason for missing_fn" reason_has missing_fn "required function spec_encode is missing"
expect_true "reason for cap_without_fn" reason_has cap_without_fn "claims capability prefix_ok"
expect_true "reason for bad_name" reason_has bad_name '"Bad-Name"'
expect_true "reason for null_desc" reason_has null_desc "returned no descriptor"
expect_true "domains: the future-minor fixture should load" \
  grep -qE "^  fx_future_minor +0\.0\.1 +ABI $ABI_NEXT_MINOR +\[execute\]" "$T/out"
expect_true "domains: string still listed after the fixtures" grep -qE "^  string " "$T/out"

runcmd env LPSYNTH_PLUGIN_PATH="$FIXTURES:$TOY_DIR" "$LPSYNTH" domains --json
expect_rc 0 "domains --json"
expect_true "domains --json content" python3 - "$T/out" "$FIXTURES" "$TOY" <<'PY'
import json, sys
out, fixtures, toy = sys.argv[1:]
items = [json.loads(l) for l in open(out, encoding="utf-8")]
by_path = {i["path"]: i for i in items}
for fx in ["abi_major", "no_entry", "small_desc", "missing_fn", "cap_without_fn", "bad_name", "null_desc"]:
    it = by_path[f"{fixtures}/lpsynth_fx_{fx}.so"]
    assert set(it) == {"path", "error"} and it["path"] in it["error"], it
fut = by_path[f"{fixtures}/lpsynth_fx_future_minor.so"]
assert fut["name"] == "fx_future_minor" and "error" not in fut, fut
t = by_path[toy]
assert t["name"] == "toy" and t["capabilities"] == "execute,check,generate,size,solve", t
assert any(i.get("name") == "string" for i in items), items
PY

# ---- a refused plugin through --domain: status 1, stderr names the file and both versions
ABI_SO="$FIXTURES/lpsynth_fx_abi_major.so"
for verb in run gen exec check; do
  case $verb in
    run) runcmd "$LPSYNTH" run --domain "$ABI_SO" --program id --input a ;;
    gen) runcmd "$LPSYNTH" gen --domain "$ABI_SO" -n 1 --seed 1 ;;
    *) runcmd "$LPSYNTH" "$verb" --domain "$ABI_SO" /dev/null ;;
  esac
  expect_rc 1 "$verb with a wrong-ABI plugin"
  expect_has "$T/err" "$ABI_SO" "$verb: wrong-ABI message names the file"
  expect_has "$T/err" "ABI $ABI_NEXT_MAJOR" "$verb: wrong-ABI message names the plugin's ABI"
  expect_has "$T/err" "ABI $ABI_HOST" "$verb: wrong-ABI message names the host's ABI"
  expect_true "$verb: nothing on stdout" test ! -s "$T/out"
done
runcmd "$LPSYNTH" run --domain "$FIXTURES/lpsynth_fx_no_entry.so" --program id --input a
expect_rc 1 "run with a plugin without entry point"
expect_has "$T/err" "lpsynth_fx_no_entry.so: no exported symbol lp_plugin_entry" "no-entry message"
# the future-minor plugin works through --domain
runcmd "$LPSYNTH" run --domain "$FIXTURES/lpsynth_fx_future_minor.so" --program id --input same
expect_rc 0 "run with the future-minor plugin"
expect_true "future-minor output" cmp -s "$T/out" <(printf 'same\n')

# ---- plugins that are not there
runcmd "$LPSYNTH" run --domain nosuch --program x --input a
expect_rc 1 "unknown domain name"
expect_has "$T/err" 'domain "nosuch" not found: no lpsynth_nosuch.so' "unknown domain message"
runcmd "$LPSYNTH" gen --domain "$T/missing.so" -n 1 --seed 1
expect_rc 1 "missing plugin file"
expect_has "$T/err" "plugin $T/missing.so: no such file" "missing plugin message"
runcmd "$LPSYNTH" run --domain "$TOY" --domain-options bogus --program upper --input a
expect_rc 1 "bad --domain-options"
expect_has "$T/err" 'toy: unknown option "bogus"' "--domain-options message"
runcmd "$LPSYNTH" run --domain "$TOY" --domain-options max_ops=1 --program "upper ; lower" --input a
expect_rc 1 "program over the max_ops option"
expect_has "$T/err" "more than 1 operations" "max_ops message"

finish

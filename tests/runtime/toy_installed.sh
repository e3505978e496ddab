#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds the toy plugin from its
# source against the INSTALLED headers only (found with pkg-config lpsynth),
# and runs it with the installed lpsynth: a third party needs nothing else.
# usage: toy_installed.sh BUILD_DIR TOY_SOURCE.c
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR TOY_SOURCE.c" >&2
  exit 2
fi
BUILD=$1
SRC=$2
export LPSYNTH_PROGRESS=0
# shellcheck source-path=SCRIPTDIR source=../common/install_temp.sh
. "$(dirname -- "$0")/../common/install_temp.sh"
install_temp "$BUILD" install # $T (scratch), $P (the prefix)
PC=$(find "$P" -name lpsynth.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$PC" ] || die "no lpsynth.pc installed under $P"
[ -f "$P/include/lpsynth/plugin.h" ] || die "plugin.h not installed under $P/include/lpsynth"
[ -x "$P/bin/lpsynth" ] || die "lpsynth not installed in $P/bin"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname -- "$PC")
pkg-config --exists lpsynth || die "pkg-config does not find lpsynth in $PKG_CONFIG_PATH"

# The .pc file locates the prefix relative to itself (${pcfiledir}), so it is
# right wherever the tree was installed, whatever prefix was configured.
INCDIR=$(pkg-config --variable=includedir lpsynth)
[ -f "$INCDIR/lpsynth/plugin.h" ] || die "$PC says includedir=$INCDIR, which has no lpsynth/plugin.h"
CFLAGS=$(pkg-config --cflags lpsynth)
case "$CFLAGS" in
  -I*) inc=${CFLAGS#-I}; inc=${inc%% *}; [ -f "$inc/lpsynth/plugin.h" ] || die "pkg-config --cflags lpsynth gave '$CFLAGS', which has no lpsynth/plugin.h" ;;
  *) die "pkg-config --cflags lpsynth gave '$CFLAGS', not an -I flag" ;;
esac
[ "$(pkg-config --variable=plugindir lpsynth)" = "$P/lib/lpsynth/plugins" ] ||
  [ -d "$(pkg-config --variable=plugindir lpsynth)" ] || die "pkg-config plugindir is not a folder"

# Build the toy from a copy of its source, with nothing of the source tree visible.
mkdir "$T/src"
cp -- "$SRC" "$T/src/toy.c"
CC=${CC:-cc}
# shellcheck disable=SC2086 # CFLAGS is a list of flags
(cd "$T/src" && "$CC" -std=c11 -Wall -Wextra -Werror -O2 -fPIC -shared -fvisibility=hidden \
  -Wl,-z,defs $CFLAGS toy.c -o lpsynth_toy.so) || die "building the toy against the installed headers failed"

# The same with the out-of-tree CMake project of tests/toy/out-of-tree.
cp -- "$(dirname -- "$SRC")/out-of-tree/CMakeLists.txt" "$T/src/CMakeLists.txt"
if ! { cmake -S "$T/src" -B "$T/src/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" && cmake --build "$T/src/build"; } >"$T/cmake.log" 2>&1; then
  cat "$T/cmake.log" >&2
  die "the out-of-tree CMake build of the toy failed"
fi
[ -f "$T/src/build/lpsynth_toy.so" ] || die "the CMake build made no lpsynth_toy.so"

LP="$P/bin/lpsynth"
out=$("$LP" run --domain "$T/src/build/lpsynth_toy.so" --program "lower ; last 2" --input ABC 2>"$T/err") ||
  { cat "$T/err" >&2; die "installed lpsynth run with the CMake-built toy failed"; }
[ "$out" = "bc" ] || die "run (CMake-built toy) gave '$out'"
out=$("$LP" run --domain "$T/src/lpsynth_toy.so" --program "upper ; append 'x' ; reverse" \
  --input abc --input "" 2>"$T/err") || { cat "$T/err" >&2; die "installed lpsynth run --domain failed"; }
[ "$out" = $'xCBA\nx' ] || die "run gave '$out'"

"$LP" gen --domain "$T/src/lpsynth_toy.so" -n 10 --seed 5 >"$T/gen.jsonl" 2>"$T/err" ||
  { cat "$T/err" >&2; die "installed gen failed"; }
"$LP" check --domain "$T/src/lpsynth_toy.so" "$T/gen.jsonl" >"$T/check.jsonl" 2>"$T/err" ||
  { cat "$T/err" >&2; die "installed check failed"; }
[ "$(grep -c '"consistent":true' "$T/check.jsonl")" -eq 10 ] || die "generated tasks not consistent"

# The installed lpsynth finds the installed string plugin, and the toy by name.
LPSYNTH_PLUGIN_PATH="$T/src" "$LP" domains >"$T/domains" 2>&1 || die "installed domains failed"
grep -qE '^  toy +1\.0\.0 ' "$T/domains" || { cat "$T/domains" >&2; die "toy not listed by name"; }
grep -qF "$T/src/lpsynth_toy.so" "$T/domains" || die "toy listed from elsewhere"
grep -qE '^  string ' "$T/domains" || { cat "$T/domains" >&2; die "string plugin not listed"; }
grep -qF "$P/bin/../lib" "$T/domains" || grep -qF "$P/lib" "$T/domains" ||
  { cat "$T/domains" >&2; die "the string plugin is not taken from the installed plugin folder"; }

echo "toy_installed.sh: the toy built against $P/include and ran under $LP"

#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds an out-of-tree
# program (installed_user.c) against the INSTALLED libraries only, found with
# pkg-config: the engine alone (lpsynth-engine), then all three libraries
# (lpsynth-model) with cc and with CMake, and runs each. Nothing of the source
# tree is visible to the builds.
# usage: libs_installed.sh BUILD_DIR SOURCE_DIR_OF_THIS_TEST
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR_OF_THIS_TEST" >&2
  exit 2
fi
BUILD=$1
SRC=$2
# shellcheck source-path=SCRIPTDIR source=../common/install_temp.sh
. "$(dirname -- "$0")/../common/install_temp.sh"
install_temp "$BUILD" libs # $T (scratch), $P (the prefix)
PC=$(find "$P" -name lpsynth-model.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$PC" ] || die "no lpsynth-model.pc installed under $P"
PCDIR=$(dirname -- "$PC")
LIBDIR=$(dirname -- "$PCDIR")
for layer in runtime engine model; do
  [ -f "$PCDIR/lpsynth-$layer.pc" ] || die "lpsynth-$layer.pc not installed in $PCDIR"
  [ -f "$LIBDIR/liblpsynth_$layer.a" ] || die "liblpsynth_$layer.a not installed in $LIBDIR"
done
# Test code stays out of the installed engine and headers.
if nm "$LIBDIR/liblpsynth_engine.a" 2>/dev/null | grep -qE ' T (lp_gradcheck|lp_ops|lp_op_find)$'; then
  die "the installed engine holds test code (gradient checker / op table)"
fi
if grep -qE 'lp_gradcheck|lp_op_desc' "$P/include/lpsynth/"*.h; then
  die "an installed header declares test code (gradient checker / op table)"
fi
# The umbrella header includes every installed header.
for h in "$P/include/lpsynth/"*.h; do
  b=$(basename -- "$h")
  [ "$b" = lpsynth.h ] && continue
  grep -q "^#include \"lpsynth/$b\"" "$P/include/lpsynth/lpsynth.h" ||
    die "lpsynth/lpsynth.h (the umbrella) does not include the installed lpsynth/$b"
done
# The shipped models are installed whole: each tokenizer (model.ckpt.res)
# beside its checkpoint, without which a python model cannot be used.
for res in "$SRC"/../../models/*/*.ckpt.res; do
  [ -e "$res" ] || continue
  m=$(basename -- "$(dirname -- "$res")")/$(basename -- "$res")
  [ -f "$P/share/lpsynth/models/$m" ] || die "models/$m (a model's tokenizer) is not installed"
done
# ... and without the resumable training states (resume.ckpt), which only
# continuing a training run needs.
left=$(find "$P/share/lpsynth/models" -name resume.ckpt)
[ -z "$left" ] || die "resumable training states installed: $left"
export PKG_CONFIG_PATH=$PCDIR
for pc in lpsynth lpsynth-runtime lpsynth-engine lpsynth-model; do
  pkg-config --exists "$pc" || die "pkg-config does not find $pc in $PCDIR"
done
pkg-config --libs lpsynth-model | grep -qE -- '-llpsynth_model .*-llpsynth_engine' ||
  die "pkg-config --libs lpsynth-model does not link the model before the engine"

mkdir "$T/src"
cp -- "$SRC/installed_user.c" "$T/src/"
CC=${CC:-cc}
# In sanitizer builds the libraries are instrumented: link the runtimes too
# (a list of flags, split on purpose where it is used).
LDF=${LP_USER_LDFLAGS:-}
cd "$T/src"
# shellcheck disable=SC2046,SC2086 # pkg-config and $LDF are lists of flags
"$CC" -std=c11 -Wall -Wextra -Werror -pedantic -DLP_ENGINE_ONLY $(pkg-config --cflags lpsynth-engine) \
  installed_user.c $(pkg-config --libs lpsynth-engine) $LDF -o engine_user 2>"$T/cc.log" ||
  { cat "$T/cc.log" >&2; die "building against the installed engine (lpsynth-engine) failed"; }
out=$(./engine_user) || die "the program linked with the installed engine failed: $out"
[ "$out" = "ok: the installed engine" ] || die "engine program printed '$out'"

# shellcheck disable=SC2046,SC2086
"$CC" -std=c11 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags lpsynth-model) \
  installed_user.c $(pkg-config --libs lpsynth-model) $LDF -o model_user 2>"$T/cc.log" ||
  { cat "$T/cc.log" >&2; die "building against the installed libraries (lpsynth-model) failed"; }
# The runtime finds the installed string plugin by name.
PLUGINDIR=$(PKG_CONFIG_PATH=$PCDIR pkg-config --variable=plugindir lpsynth)
out=$(LPSYNTH_PLUGIN_PATH=$PLUGINDIR ./model_user string) ||
  die "the program linked with the installed libraries failed: $out"
[ "$out" = "ok: the installed engine, model and runtime" ] || die "model program printed '$out'"

cp -- "$SRC/out-of-tree/CMakeLists.txt" "$T/src/CMakeLists.txt"
if ! { cmake -S "$T/src" -B "$T/src/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER="$CC" \
  -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" -DCMAKE_EXE_LINKER_FLAGS="$LDF" &&
  cmake --build "$T/src/build"; } >"$T/cmake.log" 2>&1; then
  cat "$T/cmake.log" >&2
  die "the out-of-tree CMake build against lpsynth-model failed"
fi
out=$("$T/src/build/installed_user") || die "the CMake-built program failed: $out"
[ "$out" = "ok: the installed engine, model and runtime" ] || die "CMake-built program printed '$out'"

echo "libs_installed.sh: programs built against $P's lpsynth-engine and lpsynth-model ran"

# shellcheck shell=bash
# shellcheck disable=SC2034 # T and P are used by the scripts that source this
# Helper of the tests that install the build (sourced, not run).
# install_temp BUILD NAME: installs BUILD (cmake --install) into a new
# temporary prefix $P, inside $T = lpsynth-NAME.XXXXXX (removed on exit),
# with LPSYNTH_PLUGIN_PATH and PKG_CONFIG_PATH unset so that only the
# installed tree is seen. die MSG: fails the test with MSG.
set -euo pipefail

die() {
  echo "FAIL: $*" >&2
  exit 1
}

install_temp() {
  unset LPSYNTH_PLUGIN_PATH PKG_CONFIG_PATH
  T=$(mktemp -d "${TMPDIR:-/tmp}/lpsynth-$2.XXXXXX")
  trap 'rm -rf -- "$T"' EXIT
  P="$T/prefix"
  cmake --install "$1" --prefix "$P" >"$T/install.log" 2>&1 || {
    cat "$T/install.log" >&2
    die "cmake --install failed"
  }
}

# shellcheck shell=bash
# The start of tests/train's cli_*.sh scripts (sourced with their arguments:
# LPSYNTH STRING.so TOY.so MODELS_DIR, then the extra ones a script names in
# TRAIN_CLI_EXTRA, set before, for the usage line): checks the arguments, sets
# MODELS and sources the run-and-expect helpers of ../runtime/cli_lib.sh
# (which take LPSYNTH TOY.so FIXTURES_DIR STRING.so; no loader fixtures are
# used here).
set -euo pipefail
read -r -a _extra <<<"${TRAIN_CLI_EXTRA:-}"
if [ $# -ne $((4 + ${#_extra[@]})) ]; then
  echo "usage: $0 LPSYNTH STRING.so TOY.so MODELS_DIR${TRAIN_CLI_EXTRA:+ $TRAIN_CLI_EXTRA}" >&2
  exit 2
fi
# shellcheck disable=SC2034 # used by the scripts that source this
MODELS=$4
# shellcheck source-path=SCRIPTDIR source=../runtime/cli_lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../runtime/cli_lib.sh" "$1" "$3" "" "$2"

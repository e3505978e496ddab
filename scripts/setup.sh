#!/usr/bin/env bash
# Installs the Debian 12 packages lpsynth needs. Safe to run more than once.
# Usage: bash scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail
PKGS=(build-essential cmake pkg-config python3 libopenblas-dev libjansson-dev clang libclang-rt-14-dev)
# The python domain: tree-sitter (the Python grammar itself is fetched with npm
# at configure time), SentencePiece, NLTK for the BLEU tests, astunparse for
# the corpus's code normaliser (scripts/normalise_python.py).
PKGS+=(libtree-sitter-dev libsentencepiece-dev sentencepiece python3-nltk python3-astunparse)
# Data-parallel training across processes and hosts (`mpirun -np N lpsynth
# train`; built only when found): OpenMPI's headers, library and mpirun.
PKGS+=(libopenmpi-dev openmpi-bin)
# npm: Debian's package, unless Node.js already brings one (NodeSource's nodejs
# ships npm and conflicts with Debian's npm package).
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

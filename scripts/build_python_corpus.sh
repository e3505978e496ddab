#!/usr/bin/env bash
# Builds the python domain's corpus: (docstring, function) pairs from the
# Python 3.11 standard library and a fixed list of Debian python3-* packages,
# a SentencePiece tokenizer trained on its train split, and the final corpus
# with programs of at most 150 tokens (the paper's limit).
#
#   bash scripts/build_python_corpus.sh [OUT_DIR]       (default: build/python-corpus)
#
# NORMALISE=1 (the default): every source file is first printed back from its
# AST the way the code-docstring corpus prints code (scripts/normalise_python.py
# tree: no comments, fully parenthesised, astunparse; needs Debian's
# python3-astunparse, installed like the packages below), so training code
# looks like the evaluation code of cdc-valid.jsonl; NORMALISE=0 takes the
# files as written. Splits are by relative path either way, so both corpora
# split the same files alike.
# EXCLUDE: JSONL files whose pairs' code (normalised) must not occur in the
# corpus (dedupe against evaluation sets); default
# ../shared/data/python/cdc-valid.jsonl when that file exists, "" for none.
# VOCAB: the tokenizer's vocabulary (default 8000, as the shipped models
# models/{rf,lp}-python: their LP is under 20 MB in fp16 with it; the 2-hour
# models of 2026-11-24 used 16000).
#
# Installs the packages with apt when some are missing (as root, or with sudo;
# nothing is installed when they are all present) and builds lpsynth into
# build/ when $LPSYNTH is not set and build/lpsynth does not exist.
# Reproducible: the same package versions (recorded in OUT_DIR/sources.txt)
# give the same files, byte for byte (OUT_DIR/SHA256SUMS).
#
# Outputs (nothing here is committed):
#   pairs-all.jsonl, stats-all.json   every pair, before the length limit
#   python.spm.model                  the tokenizer (vocabulary $VOCAB)
#   pairs.jsonl, stats.json           the corpus: code of at most 150 tokens
#                                     (stats.json before EXCLUDE; exclude.log
#                                     says how many pairs EXCLUDE removed)
#   src/                              the normalised sources (NORMALISE=1)
#   sources.txt, SHA256SUMS           package versions, checksums
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/python-corpus}
VOCAB=${VOCAB:-8000}
MAX_TOKENS=150
MIN_PAIRS=40000
NORMALISE=${NORMALISE:-1}
case "$NORMALISE" in 0 | 1) ;; *) echo "build_python_corpus: NORMALISE must be 0 or 1" >&2; exit 2 ;; esac
if [ -z "${EXCLUDE+set}" ]; then
  EXCLUDE=""
  [ -f ../shared/data/python/cdc-valid.jsonl ] && EXCLUDE=$(cd ../shared/data/python && pwd)/cdc-valid.jsonl
fi

# Debian package -> the folders under /usr/lib/python3/dist-packages it provides.
PACKAGES=(
  python3-sympy:sympy python3-numpy:numpy python3-scipy:scipy python3-django:django
  python3-twisted:twisted python3-sqlalchemy:sqlalchemy python3-networkx:networkx
  python3-docutils:docutils python3-sphinx:sphinx python3-pandas:pandas
  python3-matplotlib:matplotlib python3-astropy:astropy python3-sklearn:sklearn
  python3-statsmodels:statsmodels python3-biopython:Bio python3-tornado:tornado
  python3-mpmath:mpmath python3-dask:dask python3-xarray:xarray python3-jedi:jedi
  python3-pygments:pygments python3-babel:babel python3-reportlab:reportlab
  python3-numba:numba python3-mne:mne python3-nltk:nltk
)
STDLIB=/usr/lib/python3.11
SITE=/usr/lib/python3/dist-packages

pkgs=(python3.11 python3-astunparse)
for e in "${PACKAGES[@]}"; do pkgs+=("${e%%:*}"); done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "build_python_corpus: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

LPSYNTH=${LPSYNTH:-build/lpsynth}
if [ ! -x "$LPSYNTH" ]; then
  echo "build_python_corpus: building lpsynth into build/"
  cmake -S . -B build >/dev/null
  cmake --build build -j2 --target lpsynth lpsynth_python
  LPSYNTH=build/lpsynth
fi

roots=("$STDLIB")
for e in "${PACKAGES[@]}"; do
  d="$SITE/${e#*:}"
  [ -d "$d" ] || { echo "build_python_corpus: $d is missing (package ${e%%:*})" >&2; exit 1; }
  roots+=("$d")
done

mkdir -p "$OUT"
if [ "$NORMALISE" = 1 ]; then
  echo "build_python_corpus: normalising ${#roots[@]} folders into $OUT/src (astunparse)"
  rm -rf "$OUT/src"
  : >"$OUT/normalise.log"
  norm=()
  for r in "${roots[@]}"; do
    d="$OUT/src/$(basename "$r")"
    /usr/bin/python3 scripts/normalise_python.py tree "$r" "$d" 2>>"$OUT/normalise.log" ||
      { tail -5 "$OUT/normalise.log" >&2; exit 1; }
    norm+=("$d")
  done
  grep '^normalise_python.py:' "$OUT/normalise.log" |
    awk -v lf="$OUT/normalise.log" '{f += $3; k += $5; o += $(NF-2)} END {print "build_python_corpus: " f " files, " k " normalised, " o " left out (Python cannot parse or print them; " lf ")"}'
  roots=("${norm[@]}")
fi
export LPSYNTH_PROGRESS=${LPSYNTH_PROGRESS:-0}
echo "build_python_corpus: pass 1: every pair (${#roots[@]} folders)"
"$LPSYNTH" corpus --domain python --out "$OUT/pairs-all.jsonl" --stats "$OUT/stats-all.json" \
  "${roots[@]}" 2>"$OUT/corpus-all.log" || { tail -5 "$OUT/corpus-all.log" >&2; exit 1; }
tail -2 "$OUT/corpus-all.log"
echo "build_python_corpus: tokenizer: SentencePiece, vocabulary $VOCAB, train split"
"$LPSYNTH" tokenizer train --domain python --corpus "$OUT/pairs-all.jsonl" --vocab "$VOCAB" \
  --out "$OUT/python.spm.model"
echo "build_python_corpus: pass 2: programs of at most $MAX_TOKENS tokens"
"$LPSYNTH" corpus --domain python --tokenizer "$OUT/python.spm.model" --max-tokens "$MAX_TOKENS" \
  --out "$OUT/pairs.jsonl" --stats "$OUT/stats.json" "${roots[@]}" 2>"$OUT/corpus.log" ||
  { tail -5 "$OUT/corpus.log" >&2; exit 1; }
tail -3 "$OUT/corpus.log"

{
  echo "# lpsynth python corpus sources ($(date -u +%Y-%m-%d))"
  echo "vocab=$VOCAB max_tokens=$MAX_TOKENS normalise=$NORMALISE exclude=$EXCLUDE"
  for p in "${pkgs[@]}"; do dpkg-query -W -f='${Package} ${Version}\n' "$p"; done
  echo "roots: ${roots[*]}"
} >"$OUT/sources.txt"
if [ -n "$EXCLUDE" ]; then
  /usr/bin/python3 scripts/normalise_python.py exclude "$OUT/pairs.jsonl" "$OUT/pairs.jsonl" \
    $EXCLUDE 2>"$OUT/exclude.log" || { cat "$OUT/exclude.log" >&2; exit 1; }
  sed 's/^normalise_python.py/build_python_corpus: exclude/' "$OUT/exclude.log"
fi
(cd "$OUT" && sha256sum pairs-all.jsonl python.spm.model pairs.jsonl >SHA256SUMS)

pairs=$(grep -c . "$OUT/pairs.jsonl" || true)
echo "build_python_corpus: $pairs pairs in $OUT/pairs.jsonl (stats: $OUT/stats.json)"
if [ "$pairs" -lt "$MIN_PAIRS" ]; then
  echo "build_python_corpus: fewer than $MIN_PAIRS pairs" >&2
  exit 1
fi

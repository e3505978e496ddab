#!/usr/bin/env bash
# Builds the python domain's corpus: (docstring, function) pairs from the
# Python 3.11 standard library and a fixed list of Debian python3-* packages,
# a SentencePiece tokenizer trained on its train split, and the final corpus
# with programs of at most 150 tokens (the paper's limit).
#
#   bash scripts/build_python_corpus.sh [OUT_DIR]       (default: build/python-corpus)
#   PACKAGES_FILE=scripts/python_corpus_packages.txt bash scripts/build_python_corpus.sh [OUT_DIR]
#
# Two ways to get the packages' sources:
# - PACKAGES_FILE unset or empty (the default; the corpus of EXPERIMENTS.md):
#   the 26 packages of PACKAGES below, installed on this machine (see below),
#   read from /usr/lib/python3/dist-packages.
# - PACKAGES_FILE=FILE: the packages FILE names (one Debian binary package a
#   line, '#' comments; scripts/python_corpus_packages.txt lists about 500 and
#   says how they were chosen; a relative path is taken from the current
#   folder, else from the repository root). Nothing is installed: each .deb is
#   fetched by `apt-get download` into OUT_DIR/debs/ (no root needed; one
#   already there is not fetched again) and unpacked by `dpkg-deb -x` into
#   OUT_DIR/pkgroot/PACKAGE/; a name apt cannot find (or fetch) is reported on
#   stderr and skipped, and the skipped ones are counted (and listed in
#   sources.txt). The roots are each top-level module folder under the
#   package's usr/lib/python3/dist-packages/ (*.dist-info, *.egg-info,
#   __pycache__ and folders without a *.py file left out) and, for its
#   top-level *.py files, a folder OUT_DIR/pyfiles/PACKAGE/ with copies of
#   them (so each such file splits as if given alone), in FILE's order. The
#   standard library stays the first root. Folders of the same name from two
#   packages (the twisted/ of python3-twisted, python3-autobahn and
#   python3-txtorcon, say) stay apart: normalised into src/pkgs/PACKAGE/MODULE
#   and src/pyfiles/PACKAGE.
# Duplicates: `lpsynth corpus` keeps only the first pair of each code text
# across all its roots (the standard library first, then the packages in
# order), after normalisation when NORMALISE=1, so no further step is needed.
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
# MIN_PAIRS: the script fails when the corpus has fewer pairs (default 40000).
#
# Installs the packages with apt when some are missing (as root, or with sudo;
# nothing is installed when they are all present; with PACKAGES_FILE only
# python3.11 and python3-astunparse) and builds lpsynth into build/ when
# $LPSYNTH is not set and build/lpsynth does not exist.
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
#   debs/, pkgroot/, pyfiles/         PACKAGES_FILE: the .debs, unpacked,
#   download.log                      top-level files; apt-get's output
set -euo pipefail
PACKAGES_FILE=${PACKAGES_FILE:-}
if [ -n "$PACKAGES_FILE" ] && [ -f "$PACKAGES_FILE" ]; then
  PACKAGES_FILE=$(cd "$(dirname "$PACKAGES_FILE")" && pwd)/$(basename "$PACKAGES_FILE")
fi
cd "$(dirname "$0")/.."
OUT=${1:-build/python-corpus}
VOCAB=${VOCAB:-8000}
MAX_TOKENS=150
MIN_PAIRS=${MIN_PAIRS:-40000}
case "$MIN_PAIRS" in '' | *[!0-9]*) echo "build_python_corpus: MIN_PAIRS must be a number" >&2; exit 2 ;; esac
if [ -n "$PACKAGES_FILE" ] && [ ! -f "$PACKAGES_FILE" ]; then
  echo "build_python_corpus: PACKAGES_FILE $PACKAGES_FILE: no such file" >&2
  exit 2
fi
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
if [ -z "$PACKAGES_FILE" ]; then
  for e in "${PACKAGES[@]}"; do pkgs+=("${e%%:*}"); done
fi
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

mkdir -p "$OUT"
# roots[i]: a folder to read; names[i]: its folder under $OUT/src (NORMALISE=1)
roots=("$STDLIB")
names=("$(basename "$STDLIB")")
debvers=()   # PACKAGES_FILE: "package version" of each .deb used
skipped=()   # PACKAGES_FILE: names apt could not find or fetch
if [ -z "$PACKAGES_FILE" ]; then
  for e in "${PACKAGES[@]}"; do
    d="$SITE/${e#*:}"
    [ -d "$d" ] || { echo "build_python_corpus: $d is missing (package ${e%%:*})" >&2; exit 1; }
    roots+=("$d")
    names+=("$(basename "$d")")
  done
else
  # the list: names in order, comments and blank lines dropped, repeats once
  want=()
  declare -A listed=()
  no=0
  while IFS= read -r line || [ -n "$line" ]; do
    no=$((no + 1))
    line=${line%%#*}
    line=${line//[[:space:]]/}
    [ -n "$line" ] || continue
    if [[ ! "$line" =~ ^[a-z0-9][a-z0-9+.-]+$ ]]; then
      echo "build_python_corpus: $PACKAGES_FILE:$no: \"$line\" is not a Debian package name" >&2
      exit 2
    fi
    if [ -n "${listed[$line]:-}" ]; then
      echo "build_python_corpus: $PACKAGES_FILE:$no: $line listed twice; taken once" >&2
      continue
    fi
    listed[$line]=1
    want+=("$line")
  done <"$PACKAGES_FILE"
  [ "${#want[@]}" -gt 0 ] || { echo "build_python_corpus: $PACKAGES_FILE names no package" >&2; exit 2; }

  # the .debs: $OUT/debs/PACKAGE_VERSION_ARCH.deb, fetched once
  mkdir -p "$OUT/debs"
  deb_of() { # the .deb of package $1 in $OUT/debs, or nothing
    local f=("$OUT/debs/$1"_*.deb)
    [ -e "${f[0]}" ] || return 0
    if [ "${#f[@]}" -gt 1 ]; then
      echo "build_python_corpus: several .debs of $1 in $OUT/debs; remove the old ones" >&2
      return 1
    fi
    echo "${f[0]}"
  }
  fetch=()
  for p in "${want[@]}"; do
    deb=$(deb_of "$p")
    [ -n "$deb" ] || fetch+=("$p")
  done
  if [ "${#fetch[@]}" -gt 0 ]; then
    # names apt knows as packages of their own (a name only another package
    # provides is answered with that package's name, so it is not found)
    declare -A known=()
    while IFS= read -r p; do known[$p]=1; done < <(
      apt-cache show --no-all-versions "${fetch[@]}" 2>/dev/null | sed -n 's/^Package: //p' || true)
    get=()
    for p in "${fetch[@]}"; do
      if [ -n "${known[$p]:-}" ]; then
        get+=("$p")
      else
        echo "build_python_corpus: apt cannot find package $p; skipped" >&2
        skipped+=("$p")
      fi
    done
    if [ "${#get[@]}" -gt 0 ]; then
      echo "build_python_corpus: apt-get download of ${#get[@]} packages into $OUT/debs"
      rm -rf "$OUT/debs/.partial"
      mkdir -p "$OUT/debs/.partial"
      : >"$OUT/download.log"
      # all at once; when that fails, one at a time to find the ones that fail
      if ! (cd "$OUT/debs/.partial" && apt-get download -q "${get[@]}") >>"$OUT/download.log" 2>&1; then
        for p in "${get[@]}"; do
          compgen -G "$OUT/debs/.partial/${p}_*.deb" >/dev/null && continue
          if ! (cd "$OUT/debs/.partial" && apt-get download -q "$p") >>"$OUT/download.log" 2>&1; then
            echo "build_python_corpus: apt-get download $p failed ($OUT/download.log); skipped" >&2
            skipped+=("$p")
          fi
        done
      fi
      for f in "$OUT/debs/.partial"/*.deb; do
        if [ -e "$f" ]; then mv -f "$f" "$OUT/debs/"; fi
      done
      rm -rf "$OUT/debs/.partial"
    fi
  fi
  declare -A skip=()
  for p in "${skipped[@]}"; do skip[$p]=1; done
  echo "build_python_corpus: ${#skipped[@]} of ${#want[@]} packages skipped (apt cannot find or fetch them)${skipped[*]:+: ${skipped[*]}}"

  # unpack each (again only when its .deb changed) and take its modules
  mkdir -p "$OUT/pkgroot"
  rm -rf "$OUT/pyfiles"
  nomods=()
  nmods=0
  for p in "${want[@]}"; do
    [ -z "${skip[$p]:-}" ] || continue
    deb=$(deb_of "$p")
    [ -n "$deb" ] || { echo "build_python_corpus: no .deb of $p in $OUT/debs" >&2; exit 1; }
    name=$(dpkg-deb -f "$deb" Package)
    [ "$name" = "$p" ] || { echo "build_python_corpus: $deb is package $name, not $p" >&2; exit 1; }
    debvers+=("$name $(dpkg-deb -f "$deb" Version)")
    # unpacked into $root.tmp, renamed; $root.stamp names the .deb it came from
    root="$OUT/pkgroot/$p"
    if [ ! -d "$root" ] || [ "$(cat "$root.stamp" 2>/dev/null)" != "$(basename "$deb")" ]; then
      rm -rf "$root" "$root.tmp" "$root.stamp"
      dpkg-deb -x "$deb" "$root.tmp"
      mv "$root.tmp" "$root"
      basename "$deb" >"$root.stamp"
    fi
    sp="$root/usr/lib/python3/dist-packages"
    n=0
    if [ -d "$sp" ]; then
      while IFS= read -r m; do
        [ -n "$(find "$sp/$m" -name '*.py' -print -quit)" ] || continue
        roots+=("$sp/$m")
        names+=("pkgs/$p/$m")
        n=$((n + 1))
      done < <(find "$sp" -mindepth 1 -maxdepth 1 -type d ! -name '.*' ! -name '__pycache__' \
        ! -name '*.dist-info' ! -name '*.egg-info' -printf '%f\n' | LC_ALL=C sort)
      files=()
      while IFS= read -r f; do files+=("$sp/$f"); done < <(
        find "$sp" -mindepth 1 -maxdepth 1 -type f -name '*.py' ! -name '.*' -printf '%f\n' | LC_ALL=C sort)
      if [ "${#files[@]}" -gt 0 ]; then
        mkdir -p "$OUT/pyfiles/$p"
        cp "${files[@]}" "$OUT/pyfiles/$p/"
        roots+=("$OUT/pyfiles/$p")
        names+=("pyfiles/$p")
        n=$((n + 1))
      fi
    fi
    [ "$n" -gt 0 ] || nomods+=("$p")
    nmods=$((nmods + n))
  done
  echo "build_python_corpus: ${#debvers[@]} packages unpacked into $OUT/pkgroot: $nmods roots;" \
    "${#nomods[@]} without a Python module under usr/lib/python3/dist-packages${nomods[*]:+: ${nomods[*]}}"
fi

if [ "$NORMALISE" = 1 ]; then
  echo "build_python_corpus: normalising ${#roots[@]} folders into $OUT/src (astunparse)"
  rm -rf "$OUT/src"
  : >"$OUT/normalise.log"
  norm=()
  for i in "${!roots[@]}"; do
    r=${roots[$i]}
    d="$OUT/src/${names[$i]}"
    /usr/bin/python3 scripts/normalise_python.py tree "$r" "$d" 2>>"$OUT/normalise.log" ||
      { tail -5 "$OUT/normalise.log" >&2; exit 1; }
    if [ -d "$d" ]; then
      norm+=("$d")
    else
      echo "build_python_corpus: $r: no file could be normalised; left out" >&2
    fi
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
  if [ -n "$PACKAGES_FILE" ]; then
    echo "packages_file=$PACKAGES_FILE: ${#debvers[@]} .debs (apt-get download), ${#skipped[@]} skipped${skipped[*]:+: ${skipped[*]}}"
    printf '%s\n' "${debvers[@]}"
  fi
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

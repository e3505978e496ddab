#!/usr/bin/env bash
# Times one training step of the same model in lpsynth and in PyTorch, alternating
# ROUNDS times (default 5), and prints each run and the ratio of the medians.
# PyTorch (Debian python3-torch, /usr/bin/python3) runs with torch.set_num_threads(1)
# and OPENBLAS_NUM_THREADS=2, its best setting on 2 cores; lpsynth with 2 OpenBLAS threads.
# usage: bash bench/run_step_bench.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
rounds=${2:-5}
bin="$build/bench/bench_step"
[ -x "$bin" ] || { echo "no $bin: cmake --build $build --target bench_step" >&2; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "PyTorch missing: apt-get install python3-torch" >&2; exit 1; }
ours=() theirs=()
for r in $(seq "$rounds"); do
  o=$("$bin" --steps 20 --warmup 3 --threads 2 --json)
  t=$(OPENBLAS_NUM_THREADS=2 /usr/bin/python3 "$here/torch_step.py" --steps 20 --warmup 3 --threads 1 --json)
  echo "round $r: $o"
  echo "round $r: $t"
  ours+=("$(echo "$o" | sed 's/.*"median_ms": *\([0-9.]*\).*/\1/')")
  theirs+=("$(echo "$t" | sed 's/.*"median_ms": *\([0-9.]*\).*/\1/')")
done
python3 - "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
o = [float(x) for x in sys.argv[1].split()]
t = [float(x) for x in sys.argv[2].split()]
mo, mt = statistics.median(o), statistics.median(t)
print(f"median of per-run medians: lpsynth {mo:.1f} ms, pytorch {mt:.1f} ms; pytorch/lpsynth = {mt / mo:.2f}x")
PY

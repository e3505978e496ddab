#!/usr/bin/env bash
# The shipped string models of EXPERIMENTS.md ("String models trained ten times
# longer"): RobustFill[Transformer] and the Latent Programmer at the small size
# (models/robustfill-string-small.cfg, models/lp-string-small.cfg) trained at
# once, one thread each (one core each of a 2-core machine: the same compute),
# on the same stream of generated tasks (--seed 1 --data-seed 1), then the
# paper's analyses on the held-out tasks:
#   OUT/M.beam.json    --search beam   B = 1, 10, 100 (Table 1; by program
#                      length: Figure 3(b); beam diversity)
#   OUT/M.guided.json  --search guided B = 1, 10, 100
#   OUT/lp.sweep.json  the LP's latent beam L = 1, 2, 3, 5, 10 at B = 10,
#                      with diversity (Figure 5(a))
#   OUT/rank-*.json    the solver's consistent programs ranked by the domain's
#                      prior, by each model, and hybrid (prior, ties by the
#                      model) on 300 generated tasks (30 per length, seeds
#                      9001..9010) with 8 examples, the last 4 held out:
#                      which ranking generalises best
#   OUT/summary.md     the tables
# RANK_N sets the ranking tasks per length (default 30). TRAIN=0 skips training (evaluates OUT/rf.ckpt and OUT/lp.ckpt as they
# are); a run whose checkpoint exists is resumed (--resume) to BUDGET more.
#
# usage: [TRAIN=0|1] [RANK_N=N] bash scripts/string_models.sh LPSYNTH OUT_DIR BUDGET [TASKS]
#   BUDGET: train --time-limit of this part (110m, 2h); TASKS: default every
#   5th line of domains/string/heldout-1000.jsonl (200 tasks, 20 per length)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=runs_common.sh
. "$root/scripts/runs_common.sh"
runs_init "[TRAIN=0|1] [RANK_N=N] bash scripts/string_models.sh LPSYNTH OUT_DIR BUDGET [TASKS]" "$@"
if [ $# -lt 4 ]; then
  tasks=$out/heldout-200.jsonl
  sed -n '1~5p' "$root/domains/string/heldout-1000.jsonl" > "$tasks"
fi
export LPSYNTH_PROGRESS=0

if [ "${TRAIN:-1}" = 1 ]; then
  for m in rf lp; do
    cfg=$root/models/robustfill-string-small.cfg
    [ $m = lp ] && cfg=$root/models/lp-string-small.cfg
    from=()
    [ -f "$out/$m.ckpt" ] && from=(--resume "$out/$m.ckpt")
    "$bin" train --domain string --config "$cfg" --steps 100000000 --time-limit "$budget" \
      --threads 1 --seed 1 --data-seed 1 "${from[@]}" --out "$out/$m.ckpt" --log "$out/$m.csv" \
      --log-every 50 --json > "$out/$m.train.json" 2> "$out/$m.train.err" &
  done
  wait
fi

ev() { # NAME MODEL ARGS...: one eval run into OUT/NAME.json; MODEL "-": none (the solver's prior)
  local name=$1 model=()
  [ "$2" = - ] || model=(--model "$2")
  shift 2
  "$bin" eval --domain string "${model[@]}" --max-len 80 --threads 2 --json \
    --details "$out/$name.details.jsonl" "$@" > "$out/$name.json"
}
for m in rf lp; do
  ev $m.beam "$out/$m.ckpt" --tasks "$tasks" --search beam --beam 1,10,100
  ev $m.guided "$out/$m.ckpt" --tasks "$tasks" --search guided --beam 1,10,100
done
ev lp.sweep "$out/lp.ckpt" --tasks "$tasks" --search beam --beam 10 --latent-beam 1,2,3,5,10

: > "$out/rank-tasks.jsonl"
for k in 1 2 3 4 5 6 7 8 9 10; do
  "$bin" gen --domain string -n "${RANK_N:-30}" --seed $((9000 + k)) --min-size "$k" --max-size "$k" \
    --examples 8 --out "$out/rank-len$k.jsonl"
  cat "$out/rank-len$k.jsonl" >> "$out/rank-tasks.jsonl"
done
ev rank-prior - --tasks "$out/rank-tasks.jsonl" --holdout 4 --search solver
for m in rf lp; do
  for r in model hybrid; do
    ev rank-$m-$r "$out/$m.ckpt" --tasks "$out/rank-tasks.jsonl" --holdout 4 --search solver --rank $r
  done
done

python3 - "$out" <<'PY' | tee "$out/summary.md"
import json, os, sys
out = sys.argv[1]
def load(n):
    p = os.path.join(out, n + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
names = {"rf": "RobustFill[Transformer]", "lp": "Latent Programmer"}
print("| model | steps (tasks) | search | B = 1 | B = 10 | B = 100 |")
print("|---|---|---|---|---|---|")
for m in ("rf", "lp"):
    tr = load(m + ".train")
    seen = f'{tr["end_step"]:,} ({tr["tasks_seen"]:,})' if tr else "?"
    for s in ("beam", "guided"):
        ev = load(f"{m}.{s}")
        if not ev:
            continue
        acc = {r["beam"]: f'{100 * r["accuracy"]:.1f}%' for r in ev["runs"]}
        print(f"| {names[m]} | {seen} | {s} | {acc.get(1)} | {acc.get(10)} | {acc.get(100)} |")
print()
print("Accuracy by program length (expressions), --search beam, B = 10:")
print()
print("| model | " + " | ".join(str(k) for k in range(1, 11)) + " |")
print("|---|" + "---|" * 10)
for m in ("rf", "lp"):
    ev = load(m + ".beam")
    if not ev:
        continue
    r = [r for r in ev["runs"] if r["beam"] == 10][0]
    bs = r["by_size"]
    cells = []
    for k in range(1, 11):
        e = bs.get(str(k)) if isinstance(bs, dict) else None
        cells.append(f'{round(e["accuracy"] * e["tasks"])}/{e["tasks"]}' if e else "-")
    print(f"| {names[m]} | " + " | ".join(cells) + " |")
sw = load("lp.sweep")
if sw:
    print()
    print("LP latent beam, B = 10: L, accuracy, diversity (distinct 1..4-grams / tokens):")
    print()
    print("| L | accuracy | diversity 1 / 2 / 3 / 4 |")
    print("|---|---|---|")
    for r in sw["runs"]:
        d = " / ".join(f'{r["diversity"][f"distinct_{n}"]:.3f}' for n in range(1, 5))
        print(f'| {r["latent_beam_used"]} | {100 * r["accuracy"]:.1f}% | {d} |')
print()
rp = load("rank-prior")
n = rp["tasks"] if rp else "?"
print(f"Solver answers ({n} tasks, 4 examples shown, 4 held out), by ranking:")
print()
print("| ranking | consistent | right on the held-out examples |")
print("|---|---|---|")
for n, label in (("rank-prior", "domain prior"), ("rank-rf-model", "RobustFill"),
                 ("rank-rf-hybrid", "hybrid, RobustFill"), ("rank-lp-model", "LP"),
                 ("rank-lp-hybrid", "hybrid, LP")):
    ev = load(n)
    if not ev:
        continue
    r = ev["runs"][0]
    print(f'| {label} | {r["solved"]}/{ev["tasks"]} | {r["generalised"]}/{r["held_tasks"]} '
          f'({100 * (r["generalisation"] or 0):.1f}%) |')
PY

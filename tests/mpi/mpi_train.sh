#!/usr/bin/env bash
# `mpirun -np N lpsynth train` (issue 15) against one process, with the tiny
# configs on generated string tasks. One case per call:
#   equal_robustfill, equal_lp  2 ranks x 1 thread == 1 rank x 2 threads within
#                       1e-5 at every step (CSV, --log-every 1) and in the final
#                       parameters, Adam moments and state; 3 ranks == 3 threads;
#                       rank 0 alone writes; the --json summary counts the ranks
#   resume_robustfill, resume_lp  a checkpoint of 2 ranks resumed at 1 rank (and
#                       one of 1 rank at 2) continues as the straight 2-rank run
#   fail_rank           a bad data line that only rank 1 reads (MPMD: its own
#                       --data) stops both ranks with rank 1's FILE:LINE message,
#                       rank 0 checkpointing the last step; rank 0 unable to
#                       write its checkpoint stops both
#   fail_early          rank 1 failing before training (a missing --config) stops
#                       rank 0, which waits in its first step; ranks started with
#                       different options are refused before the first step
#   kill_rank           SIGKILL to rank 1: mpirun ends the job, no hang
#   sigterm             SIGTERM to mpirun: the ranks stop after the same step, rank
#                       0 checkpoints, the checkpoint resumes; the same with SIGUSR1
#                       to mpirun (exit status 0) and with SIGTERM to rank 1 alone
#   bench               `lpsynth bench train` under mpirun reports once, with ranks
#   refuse              (a build without MPI) started as one of 2 ranks: refused
# usage: mpi_train.sh LPSYNTH MPIEXEC CKPT_COMPARE STRING.so MODELS_DIR CASE
set -uo pipefail
if [ $# -ne 6 ]; then
  echo "usage: $0 LPSYNTH MPIEXEC CKPT_COMPARE STRING.so MODELS_DIR CASE" >&2
  exit 2
fi
L=$1 MPIEXEC=$2 CMP=$3 STRING_SO=$4 MODELS=$5 CASE=$6
export OPENBLAS_NUM_THREADS=1 LPSYNTH_PROGRESS=0
T=$(mktemp -d)
BG=""
cleanup() {
  if [ -n "$BG" ]; then kill -KILL "$BG" 2>/dev/null || true; fi
  rm -rf -- "$T"
}
trap cleanup EXIT
cd "$T" || exit 2
MPI=("$MPIEXEC" --allow-run-as-root --oversubscribe)
FAILS=0
fail() {
  echo "FAIL: $*" >&2
  FAILS=$((FAILS + 1))
}
ok() { echo "ok: $*"; }
# check COND_STATUS WHAT
check() { if [ "$1" -eq 0 ]; then ok "$2"; else fail "$2"; fi; }
show() { for f in "$@"; do [ -f "$f" ] && sed 's/^/    | /' "$f" | tail -25; done; }

# train CFG ARGS...: one process
train() {
  local cfg=$1
  shift
  "$L" train --domain "$STRING_SO" --config "$MODELS/$cfg" "$@"
}
# mtrain N CFG ARGS...: N ranks (a timeout: no test may hang)
mtrain() {
  local n=$1 cfg=$2
  shift 2
  timeout 240 "${MPI[@]}" -np "$n" "$L" train --domain "$STRING_SO" --config "$MODELS/$cfg" "$@"
}

# csv_close A.csv B.csv TOL: same steps; loss, token_acc, grad_norm and the LP's
# loss terms and perplexity within TOL * (1 + |a|) at every step.
csv_close() {
  awk -F, -v tol="$3" '
    FNR == 1 { next }
    NR == FNR { n++; for (i = 1; i <= NF; i++) a[FNR, i] = $i; next }
    {
      m++
      if (a[FNR, 1] != $1) { printf "row %d: step %s vs %s\n", FNR, a[FNR, 1], $1; bad++; next }
      split("3 4 6 8 9 10 11 12", cols, " ")
      for (k in cols) {
        c = cols[k]; x = a[FNR, c] + 0; y = $c + 0; d = x - y; if (d < 0) d = -d
        ax = x < 0 ? -x : x
        if (d > tol * (1 + ax)) { printf "step %s column %d: %s vs %s\n", $1, c, a[FNR, c], $c; bad++ }
        if (d > worst) worst = d
      }
    }
    END {
      if (n != m) { printf "%d rows vs %d rows\n", n, m; bad++ }
      printf "%d steps compared, largest difference %g\n", m, worst
      exit bad > 0
    }' "$1" "$2"
}

# only_files REGEX: every entry of the working folder matches REGEX
only_files() {
  local f
  for f in * .[!.]*; do
    [ -e "$f" ] || continue
    [[ $f =~ $1 ]] || return 1
  done
}

# ckpt_step CKPT: the step a checkpoint holds
ckpt_step() { "$L" ckpt info --domain "$STRING_SO" "$1" 2>/dev/null | awk '/^step:/ { print $2 }'; }

case_equal() {
  local cfg=$1 steps=$2
  train "$cfg" --steps "$steps" --threads 2 --out a.ckpt --log a.csv --log-every 1 >a.out 2>a.err
  check $? "$cfg: 1 rank x 2 threads trains"
  mtrain 2 "$cfg" --steps "$steps" --threads 1 --out b.ckpt --log b.csv --log-every 1 --json \
    >b.out 2>b.err
  local rc=$?
  check $rc "$cfg: 2 ranks x 1 thread train"
  [ $rc -eq 0 ] || show b.out b.err
  csv_close a.csv b.csv 1e-5
  check $? "$cfg: 2 ranks == 2 threads at every step (loss within 1e-5)"
  "$CMP" a.ckpt b.ckpt 1e-5
  check $? "$cfg: 2 ranks == 2 threads: final parameters, Adam and state"
  [ "$(grep -c '"ranks":2' b.out)" = 1 ]
  check $? "$cfg: one --json summary (rank 0's), with \"ranks\":2"
  grep -q '"comm_share"' b.out
  check $? "$cfg: the summary reports the communication share"
  only_files '^(a|b)\.(ckpt|csv|out|err)$'
  check $? "$cfg: rank 1 wrote nothing (no other files, no temporaries)"
  [ "$(grep -c 'lpsynth train: robustfill\|lpsynth train: lp' b.err)" -le 1 ]
  check $? "$cfg: one banner (rank 0's)"
  # 3 ranks (a sum of three, not a power of two) against 3 threads: the
  # allreduce adds the three gradients in another order than the in-process
  # workers do, a float rounding that training amplifies step by step (seen:
  # 7e-4 in the loss by step 20 with OpenBLAS's AVX-512 kernels), so over the
  # first 6 steps only
  train "$cfg" --steps 6 --threads 3 --out c.ckpt --log c.csv --log-every 1 >c.out 2>c.err
  mtrain 3 "$cfg" --steps 6 --threads 1 --out d.ckpt --log d.csv --log-every 1 >d.out 2>d.err
  check $? "$cfg: 3 ranks train"
  csv_close c.csv d.csv 1e-5
  check $? "$cfg: 3 ranks == 3 threads at every step"
  "$CMP" c.ckpt d.ckpt 1e-5
  check $? "$cfg: 3 ranks == 3 threads: final state"
}

case_resume() {
  local cfg=$1 steps=$2 half=$3
  mtrain 2 "$cfg" --steps "$steps" --threads 1 --out s.ckpt --log s.csv --log-every 1 >s.out 2>s.err
  check $? "$cfg: straight 2-rank run"
  # 2 ranks, then 1 rank x 2 threads (the same 2 workers: a 1-thread
  # continuation would sum the chunks' gradients in another order, the same
  # function up to float rounding that training amplifies, seen 3e-4 after 10
  # steps)
  mtrain 2 "$cfg" --steps "$half" --threads 1 --out r.ckpt --log r.csv --log-every 1 >r.out 2>r.err
  check $? "$cfg: 2 ranks to step $half"
  [ "$(ckpt_step r.ckpt)" = "$half" ]
  check $? "$cfg: the 2-rank checkpoint holds step $half"
  train "$cfg" --resume r.ckpt --steps "$steps" --threads 2 --out r.ckpt --log r.csv --log-every 1 \
    >r2.out 2>r2.err
  check $? "$cfg: resumed at 1 rank x 2 threads"
  csv_close s.csv r.csv 1e-5
  check $? "$cfg: 2 ranks then 1 rank == 2 ranks straight, at every step"
  "$CMP" s.ckpt r.ckpt 1e-5
  check $? "$cfg: 2 ranks then 1 rank == 2 ranks straight: final state"
  # 1 rank (x 2 threads), then 2 ranks
  train "$cfg" --steps "$half" --threads 2 --out q.ckpt --log q.csv --log-every 1 >q.out 2>q.err
  mtrain 2 "$cfg" --resume q.ckpt --steps "$steps" --threads 1 --out q.ckpt --log q.csv \
    --log-every 1 >q2.out 2>q2.err
  check $? "$cfg: a 1-rank checkpoint resumed at 2 ranks"
  csv_close s.csv q.csv 1e-5
  check $? "$cfg: 1 rank then 2 ranks == 2 ranks straight, at every step"
  "$CMP" s.ckpt q.ckpt 1e-5
  check $? "$cfg: 1 rank then 2 ranks == 2 ranks straight: final state"
}

TINY=robustfill-tiny.cfg
case "$CASE" in
  equal_robustfill) case_equal robustfill-tiny.cfg 20 ;;
  equal_lp) case_equal lp-tiny.cfg 30 ;; # pretraining ends at step 20
  resume_robustfill) case_resume robustfill-tiny.cfg 20 10 ;;
  resume_lp) case_resume lp-tiny.cfg 30 15 ;; # pretraining ends at step 20
  fail_rank)
    "$L" gen --domain "$STRING_SO" -n 200 --seed 5 --out d.jsonl >/dev/null 2>&1
    sed '41s/.*/{"program": broken/' d.jsonl >bad.jsonl
    # batch 11 (tasks 40..43) holds line 41: steps 1..10 run, step 11 fails on rank 1
    timeout 120 "${MPI[@]}" -np 1 "$L" train --domain "$STRING_SO" --config "$MODELS/$TINY" \
      --data d.jsonl --steps 30 --out f.ckpt : -np 1 "$L" train --domain "$STRING_SO" \
      --config "$MODELS/$TINY" --data bad.jsonl --steps 30 --out f.ckpt >f.out 2>f.err
    rc=$?
    [ $rc -ne 0 ] && [ $rc -ne 124 ]
    check $? "a bad line on rank 1 ends the job with a failure status, no hang (status $rc)"
    grep -q 'lpsynth train: rank 1: bad.jsonl:41: ' f.err
    check $? "the message is rank 1's, with FILE:LINE"
    grep -q 'the checkpoint of step 10 was saved to f.ckpt' f.err
    check $? "rank 0 saved the checkpoint of the last step"
    [ "$(ckpt_step f.ckpt)" = 10 ]
    check $? "the checkpoint holds step 10"
    [ "$(grep -c 'bad.jsonl:41' f.err)" = 1 ]
    check $? "the message is printed once"
    [ $FAILS -eq 0 ] || show f.out f.err
    # rank 0 cannot write its checkpoint (at step 5): both ranks stop
    timeout 120 "${MPI[@]}" -np 2 "$L" train --domain "$STRING_SO" --config "$MODELS/$TINY" \
      --steps 30 --checkpoint-every 5 --out "$T/no/such/dir/x.ckpt" >w.out 2>w.err
    rc=$?
    [ $rc -ne 0 ] && [ $rc -ne 124 ]
    check $? "rank 0 unable to write its checkpoint ends the job, no hang (status $rc)"
    grep -q "rank 0: .*no/such/dir" w.err
    check $? "with rank 0's message naming the file"
    [ $FAILS -eq 0 ] || show w.out w.err
    ;;
  fail_early)
    timeout 120 "${MPI[@]}" -np 1 "$L" train --domain "$STRING_SO" --config "$MODELS/$TINY" \
      --steps 30 --out g.ckpt : -np 1 "$L" train --domain "$STRING_SO" --config nonexist.cfg \
      --steps 30 --out g.ckpt >g.out 2>g.err
    rc=$?
    [ $rc -ne 0 ] && [ $rc -ne 124 ]
    check $? "rank 1 failing before training ends the job, no hang (status $rc)"
    grep -q 'nonexist.cfg: cannot open' g.err
    check $? "rank 1's own message"
    grep -q 'lpsynth train: rank 1: failed before training' g.err
    check $? "rank 0 says that rank 1 failed"
    [ $FAILS -eq 0 ] || show g.out g.err
    # ranks started with different options: refused before the first step
    timeout 120 "${MPI[@]}" -np 1 "$L" train --domain "$STRING_SO" --config "$MODELS/$TINY" \
      --steps 30 --out h.ckpt : -np 1 "$L" train --domain "$STRING_SO" --config "$MODELS/$TINY" \
      --steps 31 --out h.ckpt >h.out 2>h.err
    rc=$?
    [ $rc -ne 0 ] && [ $rc -ne 124 ]
    check $? "ranks with different --steps: the job fails, no hang (status $rc)"
    grep -q 'the ranks differ in their options' h.err
    check $? "with a message saying that the ranks differ"
    [ "$(ckpt_step h.ckpt)" = 0 ]
    check $? "before any step"
    [ $FAILS -eq 0 ] || show h.out h.err
    ;;
  kill_rank)
    # each rank writes its pid, then becomes lpsynth
    # shellcheck disable=SC2016 # expanded by the rank's shell
    timeout 120 "${MPI[@]}" -np 2 bash -c 'echo $$ > pid.$OMPI_COMM_WORLD_RANK; exec "$0" "$@"' \
      "$L" train --domain "$STRING_SO" --config "$MODELS/$TINY" --steps 1000000 --threads 1 \
      --out k.ckpt --log k.csv --log-every 1 >k.out 2>k.err &
    BG=$!
    for _ in $(seq 1 600); do
      [ -f pid.1 ] && [ "$(wc -l <k.csv 2>/dev/null || echo 0)" -ge 4 ] && break
      sleep 0.1
    done
    [ -f pid.1 ] && kill -KILL "$(cat pid.1)"
    t0=$(date +%s)
    wait "$BG"
    rc=$?
    BG=""
    t1=$(date +%s)
    [ $rc -ne 0 ] && [ $rc -ne 124 ]
    check $? "SIGKILL to rank 1: the job ends with a failure status (status $rc)"
    [ $((t1 - t0)) -lt 60 ]
    check $? "within a minute ($((t1 - t0)) s), no hang"
    grep -q 'rank 1' k.err
    check $? "mpirun names rank 1"
    [ $FAILS -eq 0 ] || show k.out k.err
    ;;
  sigterm)
    "${MPI[@]}" -np 2 "$L" train --domain "$STRING_SO" --config "$MODELS/$TINY" --steps 1000000 \
      --threads 1 --out t.ckpt --log t.csv --log-every 1 >t.out 2>t.err &
    BG=$!
    for _ in $(seq 1 600); do
      [ "$(wc -l <t.csv 2>/dev/null || echo 0)" -ge 6 ] && break
      sleep 0.1
    done
    kill -TERM "$BG"
    t0=$(date +%s)
    wait "$BG"
    rc=$?
    BG=""
    t1=$(date +%s)
    [ $((t1 - t0)) -lt 60 ]
    check $? "SIGTERM to mpirun: the job ends within a minute ($((t1 - t0)) s; mpirun status $rc)"
    step=$(sed -n 's/^stopped by SIGTERM at step \([0-9]*\) of .*/\1/p' t.out)
    [ -n "$step" ] && [ "$step" -ge 5 ]
    check $? "rank 0 reports the stop by SIGTERM (at step ${step:-?})"
    [ "$(ckpt_step t.ckpt)" = "$step" ]
    check $? "the checkpoint holds that step"
    [ "$(tail -1 t.csv | cut -d, -f1)" = "$step" ]
    check $? "the log reaches that step"
    [ "$(grep -c '^stopped by SIGTERM' t.out)" = 1 ]
    check $? "one summary (rank 0's)"
    only_files '^t\.(ckpt|csv|out|err)$'
    check $? "no temporaries left"
    train "$TINY" --resume t.ckpt --steps $((step + 2)) --out t.ckpt >t2.out 2>t2.err
    check $? "the checkpoint resumes (1 rank)"
    [ $FAILS -eq 0 ] || show t.out t.err
    # SIGUSR1 to mpirun (forwarded at once, no SIGKILL after it): a clean stop, status 0
    "${MPI[@]}" -np 2 "$L" train --domain "$STRING_SO" --config "$MODELS/$TINY" --steps 1000000 \
      --threads 1 --out u.ckpt --log u.csv --log-every 1 >u.out 2>u.err &
    BG=$!
    for _ in $(seq 1 600); do
      [ "$(wc -l <u.csv 2>/dev/null || echo 0)" -ge 6 ] && break
      sleep 0.1
    done
    kill -USR1 "$BG"
    wait "$BG"
    rc=$?
    BG=""
    step=$(sed -n 's/^stopped by SIGUSR1 at step \([0-9]*\) of .*/\1/p' u.out)
    [ $rc -eq 0 ] && [ -n "$step" ] && [ "$(ckpt_step u.ckpt)" = "$step" ]
    check $? "SIGUSR1 to mpirun: status 0, stopped at step ${step:-?}, checkpoint of that step"
    [ $FAILS -eq 0 ] || show u.out u.err
    # SIGTERM to rank 1 alone: both ranks stop after the same step, rank 0 saves
    # shellcheck disable=SC2016 # expanded by the rank's shell
    "${MPI[@]}" -np 2 bash -c 'echo $$ > pid.$OMPI_COMM_WORLD_RANK; exec "$0" "$@"' \
      "$L" train --domain "$STRING_SO" --config "$MODELS/$TINY" --steps 1000000 --threads 1 \
      --out v.ckpt --log v.csv --log-every 1 >v.out 2>v.err &
    BG=$!
    for _ in $(seq 1 600); do
      [ -f pid.1 ] && [ "$(wc -l <v.csv 2>/dev/null || echo 0)" -ge 6 ] && break
      sleep 0.1
    done
    kill -TERM "$(cat pid.1)"
    wait "$BG"
    rc=$?
    BG=""
    step=$(sed -n 's/^stopped at step \([0-9]*\) of .*/\1/p' v.out)
    [ $rc -eq 0 ] && [ -n "$step" ] && [ "$(ckpt_step v.ckpt)" = "$step" ] &&
      [ "$(tail -1 v.csv | cut -d, -f1)" = "$step" ]
    check $? "SIGTERM to rank 1 only: status 0, all stopped at step ${step:-?}, rank 0 saved it"
    [ $FAILS -eq 0 ] || show v.out v.err
    ;;
  bench)
    timeout 240 "${MPI[@]}" -np 2 "$L" bench train --domain "$STRING_SO" --config "$MODELS/$TINY" \
      --steps 4 --warmup 1 --threads 1 --json >h.out 2>h.err
    check $? "bench train under mpirun"
    [ "$(wc -l <h.out)" = 1 ] && grep -q '"ranks":2' h.out && grep -q '"comm_share"' h.out
    check $? "one JSON line (rank 0's) with the ranks and the communication share"
    [ $FAILS -eq 0 ] || show h.out h.err
    ;;
  refuse) # a build without MPI only
    OMPI_COMM_WORLD_SIZE=2 "$L" train --domain "$STRING_SO" --config "$MODELS/$TINY" --steps 2 \
      --out r.ckpt >r.out 2>r.err
    rc=$?
    [ $rc -eq 1 ] && grep -q 'built without MPI, but it was started as one of 2 ranks' r.err
    check $? "train as one of 2 ranks without MPI: status 1 and a message (status $rc)"
    [ ! -e r.ckpt ]
    check $? "nothing written"
    "$L" train --domain "$STRING_SO" --config "$MODELS/$TINY" --steps 2 --out r.ckpt >r.out 2>r.err
    check $? "one process trains as before"
    [ $FAILS -eq 0 ] || show r.out r.err
    ;;
  *)
    echo "unknown case $CASE" >&2
    exit 2
    ;;
esac
if [ $FAILS -ne 0 ]; then
  echo "$CASE: $FAILS check(s) failed"
  exit 1
fi
echo "$CASE: ok"

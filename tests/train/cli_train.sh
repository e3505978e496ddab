#!/usr/bin/env bash
# `lpsynth train` and `lpsynth ckpt info` end to end with the tiny config on
# generated string tasks: the CSV log, checkpoints, resume, SIGINT/SIGTERM,
# bad checkpoints, bad configs and data files, usage errors.
# usage: cli_train.sh LPSYNTH STRING.so TOY.so MODELS_DIR
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=train_cli.sh
. "$(dirname -- "$0")/train_cli.sh" "$@"
TINY="$MODELS/robustfill-tiny.cfg"
export OPENBLAS_NUM_THREADS=1
BG=""
cleanup() {
  if [ -n "$BG" ]; then kill "$BG" 2>/dev/null || true; fi
  rm -rf -- "$T"
}
trap cleanup EXIT
train() { "$LPSYNTH" train --domain "$STRING_SO" --config "$TINY" "$@"; }
# ckpt_pair A.ckpt B.ckpt <<'PY' ... PY: runs the python on stdin with
# sections(path) ({tag: bytes} of a checkpoint) defined and a, b the sections
# of A and B.
ckpt_pair() {
  python3 -c 'import os, struct, sys
def sections(path):
    d = open(path, "rb").read()
    assert d[:8] == b"LPSYNCKP"
    out, pos = {}, 24
    while pos < len(d) - 4:
        tag, _, n = struct.unpack_from("<4sIQ", d, pos)
        out[tag] = d[pos + 16:pos + 16 + n]
        pos += 16 + n
    return out
a, b = sections(sys.argv[1]), sections(sys.argv[2])
'"$(cat)" "$@"
}

# ---- usage errors (exit 2) and --help
runcmd "$LPSYNTH" train --help
expect_rc 0 "train --help"
expect_has "$T/out" "--resume CKPT" "help mentions --resume"
expect_has "$T/out" "step,seconds,loss,token_acc,lr,grad_norm,tasks_per_s" "help shows the CSV columns"
runcmd "$LPSYNTH" train --model robustfill --steps 3 --out "$T/x.ckpt"
expect_rc 2 "no --domain"
expect_has "$T/err" "lpsynth train: --domain" "no --domain message"
runcmd "$LPSYNTH" train --domain "$STRING_SO" --model robustfill --out "$T/x.ckpt"
expect_rc 2 "no --steps"
runcmd "$LPSYNTH" train --domain "$STRING_SO" --model robustfill --steps 3
expect_rc 2 "no --out"
runcmd "$LPSYNTH" train --domain "$STRING_SO" --steps 3 --out "$T/x.ckpt"
expect_rc 2 "no --model"
runcmd "$LPSYNTH" train --domain "$STRING_SO" --model lstm --steps 3 --out "$T/x.ckpt"
expect_rc 2 "bad --model"
expect_has "$T/err" "--model must be robustfill, robustfill-lstm, lp, latent-ae or latent-vae" "bad --model message"
runcmd train --model lp --steps 3 --out "$T/x.ckpt"
expect_rc 2 "--model contradicting the config"
expect_has "$T/err" "says model = robustfill" "--model/--config message"
runcmd train --steps 0 --out "$T/x.ckpt"
expect_rc 2 "--steps 0"
runcmd train --steps 3 --out "$T/x.ckpt" extra
expect_rc 2 "extra argument"
runcmd "$LPSYNTH" ckpt
expect_rc 2 "ckpt without a subcommand"
runcmd "$LPSYNTH" ckpt info
expect_rc 2 "ckpt info without a file"
runcmd "$LPSYNTH" ckpt frob x
expect_rc 2 "ckpt unknown subcommand"
expect_true "usage errors wrote a checkpoint" test ! -e "$T/x.ckpt"

# ---- a short run: CSV log, checkpoint, summary
runcmd train --steps 20 --out "$T/a.ckpt" --log "$T/a.csv" --log-every 5 --checkpoint-every 10 --seed 3
expect_rc 0 "train 20 steps"
expect_has "$T/out" "trained steps 0..20 of 20" "summary"
expect_has "$T/out" "checkpoint: $T/a.ckpt (step 20" "summary names the checkpoint"
expect_has "$T/err" "lpsynth train: robustfill, d_model 32" "start line"
expect_has "$T/err" "lpsynth train: step 10/20  loss" "a plain line per checkpoint when not a terminal"
expect_true "CSV: header, rows at 5/10/15/20, finite numbers" python3 - "$T/a.csv" <<'PY'
import csv, math, sys
rows = list(csv.reader(open(sys.argv[1])))
head = rows[0]
assert head[:7] == ["step", "seconds", "loss", "token_acc", "lr", "grad_norm", "tasks_per_s"], head
body = rows[1:]
assert [int(r[0]) for r in body] == [5, 10, 15, 20], body
for r in body:
    assert len(r) == len(head), r
    v = [float(x) for x in r]
    assert all(math.isfinite(x) for x in v), r
    loss, acc, lr, g, tps = v[2], v[3], v[4], v[5], v[6]
    assert 0 < loss < 20 and 0 <= acc <= 1 and 0 < lr <= 1e-3 and g > 0 and tps > 0, r
secs = [float(r[1]) for r in body]
assert secs == sorted(secs), secs
PY
expect_true "no temp files after training" no_temp_files
runcmd "$LPSYNTH" ckpt info "$T/a.ckpt"
expect_rc 0 "ckpt info"
expect_has "$T/out" "step:       20 (80 tasks seen" "ckpt info step"
expect_has "$T/out" "domain:     string" "ckpt info domain"
expect_has "$T/out" "checksum ok" "ckpt info checksum"
expect_has "$T/out" "  d_model = 32" "ckpt info config"
expect_has "$T/out" "\"command\":[\"lpsynth\",\"train\"," "ckpt info metadata"
runcmd "$LPSYNTH" ckpt info --json "$T/a.ckpt"
expect_rc 0 "ckpt info --json"
expect_true "ckpt info --json fields" python3 - "$T/out" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
assert o["step"] == 20 and o["domain"] == "string" and o["model"] == "robustfill", o
assert o["adam_t"] == 20 and o["tasks_seen"] == 80 and o["init_seed"] == 3, o
assert o["config"]["d_model"] == 32 and o["config"]["batch_size"] == 4, o["config"]
assert o["metadata"]["command"][1] == "train" and o["metadata"]["seed"] == 3, o["metadata"]
assert o["data"] == "generated" and isinstance(o["data_seed"], int), o
PY

# ---- resume to 30 steps: the log continues, --json summary
runcmd train --steps 30 --resume "$T/a.ckpt" --out "$T/b.ckpt" --log "$T/a.csv" --log-every 5 --json
expect_rc 0 "resume to 30"
expect_true "resume --json summary" python3 - "$T/out" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
assert o["start_step"] == 20 and o["end_step"] == 30 and not o["stopped"], o
assert o["tasks_seen"] == 120 and o["seed"] == 3, o
PY
expect_true "resumed CSV rows 5..30" python3 - "$T/a.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
assert [int(r[0]) for r in rows[1:]] == [5, 10, 15, 20, 25, 30], rows
PY
# resuming at the target: nothing to do
runcmd train --steps 30 --resume "$T/b.ckpt" --out "$T/b.ckpt"
expect_rc 0 "resume at the target"
expect_has "$T/out" "nothing to do" "nothing to do message"
# resume == straight through, through the CLI: same parameters and Adam state
# and the same report: the summary's loss and accuracy are those of the last
# 8 steps, with the 4 before the resume (the checkpoint's STAT section)
for th in 1 2; do
runcmd train --steps 8 --out "$T/s8.ckpt" --seed 5 --threads $th
expect_rc 0 "straight 8 ($th threads)"
grep -o 'loss .* steps)' "$T/out" >"$T/s8.loss" || true
runcmd train --steps 4 --out "$T/h4.ckpt" --seed 5 --threads $th
expect_rc 0 "first 4 ($th threads)"
runcmd train --steps 8 --resume "$T/h4.ckpt" --out "$T/h4.ckpt" --threads $th
expect_rc 0 "resume 4..8 in place ($th threads)"
expect_has "$T/out" "$(cat "$T/s8.loss")" "resumed run reports the straight run's loss ($th threads)"
expect_has "$T/s8.loss" "(mean of the last 8 steps)" "straight run's loss line ($th threads)"
expect_true "CLI resume gives the straight-through bytes ($th threads)" ckpt_pair "$T/s8.ckpt" "$T/h4.ckpt" <<'PY'
for tag in (b"CONF", b"DOMN", b"LAYT", b"PARM", b"ADAM", b"MSTA", b"STAT"):
    assert a[tag] == b[tag], tag
# TPOS: everything but the training seconds (bytes 48..56)
assert a[b"TPOS"][:48] == b[b"TPOS"][:48] and a[b"TPOS"][56:] == b[b"TPOS"][56:]
PY
done

# ---- ckpt strip: a third of the size, same parameters, search works, resume refused
runcmd "$LPSYNTH" ckpt strip "$T/s8.ckpt" "$T/s8s.ckpt"
expect_rc 0 "ckpt strip"
expect_true "stripped: smaller, same parameters and config, no Adam moments" ckpt_pair "$T/s8.ckpt" "$T/s8s.ckpt" <<'PY'
for tag in (b"CONF", b"DOMN", b"LAYT", b"PARM", b"MSTA", b"TPOS"):
    assert a[tag] == b[tag], tag
assert struct.unpack_from("<Q", b[b"ADAM"], 8)[0] == 0
assert os.path.getsize(sys.argv[2]) * 2 < os.path.getsize(sys.argv[1])
PY
runcmd "$LPSYNTH" ckpt info "$T/s8s.ckpt"
expect_rc 0 "ckpt info on a stripped checkpoint"
runcmd "$LPSYNTH" synth --domain "$STRING_SO" --model "$T/s8s.ckpt" --io 'ab => a' --beam 2
expect_rc 0 "synth with a stripped checkpoint"
runcmd train --steps 10 --resume "$T/s8s.ckpt" --out "$T/s10.ckpt"
expect_rc 1 "resume from a stripped checkpoint is refused"
expect_has "$T/err" "no optimiser state" "the refusal says why"
# demo with a trained model: Figure 1 and the generated tasks through synth
runcmd "$LPSYNTH" demo --domain "$STRING_SO" --model "$T/s8s.ckpt"
expect_rc 0 "demo --model"
expect_has "$T/out" "ranked by the trained model" "demo ranks with the model"
expect_has "$T/out" "Figure 8, task 4:" "demo shows the Figure 8 tasks"
expect_has "$T/out" "Generated task 3:" "demo searches the generated tasks too"
runcmd "$LPSYNTH" demo --domain "$STRING_SO" --model "$T/missing.ckpt"
expect_rc 1 "demo with a missing model"
expect_has "$T/err" "missing.ckpt" "the error names the model file"
runcmd "$LPSYNTH" demo --domain "$STRING_SO" --model none
expect_rc 0 "demo --model none"
expect_has "$T/out" "Synthesis without a model" "demo without a model says so"
runcmd "$LPSYNTH" ckpt strip "$T/s8.ckpt"
expect_rc 2 "ckpt strip needs two files"
runcmd "$LPSYNTH" ckpt strip "$T/missing.ckpt" "$T/x.ckpt"
expect_rc 1 "ckpt strip of a missing file"

# ---- SIGINT and SIGTERM: the step finishes, a checkpoint is saved, exit 0
for sig in INT TERM; do
  rm -f "$T/sig.csv" "$T/sig.ckpt"
  # the binary itself in the background (not a function: a subshell would get the signal)
  "$LPSYNTH" train --domain "$STRING_SO" --config "$TINY" --steps 1000000 --out "$T/sig.ckpt" \
    --log "$T/sig.csv" --log-every 1 --checkpoint-every 0 >"$T/sig.out" 2>"$T/sig.err" &
  BG=$!
  for _ in $(seq 1 300); do
    if [ -f "$T/sig.csv" ] && [ "$(wc -l <"$T/sig.csv")" -ge 3 ]; then break; fi
    sleep 0.1
  done
  kill -s "$sig" "$BG"
  rc=0
  wait "$BG" || rc=$?
  BG=""
  cp "$T/sig.out" "$T/out"
  cp "$T/sig.err" "$T/err"
  sanitizer_clean
  expect_rc 0 "SIG$sig: clean exit"
  expect_has "$T/out" "stopped by SIG$sig at step" "SIG$sig summary"
  expect_true "SIG$sig: checkpoint saved" test -s "$T/sig.ckpt"
  runcmd "$LPSYNTH" ckpt info --json "$T/sig.ckpt"
  expect_rc 0 "SIG$sig: checkpoint readable"
  expect_true "SIG$sig: checkpoint step matches the log" python3 - "$T/out" "$T/sig.csv" <<'PY'
import csv, json, sys
o = json.load(open(sys.argv[1]))
rows = list(csv.reader(open(sys.argv[2])))
last = int(rows[-1][0])
assert o["step"] >= 2 and o["step"] == last, (o["step"], last)
PY
  expect_true "SIG$sig: no temp files" no_temp_files
done

# ---- --time-limit: a clean stop with a checkpoint once the time is up
runcmd train --steps 1000000 --out "$T/tl.ckpt" --time-limit 1s --checkpoint-every 0 --json
expect_rc 0 "--time-limit 1s"
expect_true "--time-limit summary" python3 - "$T/out" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
assert o["stopped"] and o["time_limited"] and o["end_step"] >= 1 and o["seconds"] < 30, o
PY
expect_true "--time-limit checkpoint" test -s "$T/tl.ckpt"
runcmd train --steps 10 --out "$T/x.ckpt" --time-limit 5x
expect_rc 2 "bad --time-limit"
expect_has "$T/err" "--time-limit expects a positive duration" "bad --time-limit message"

# ---- bad checkpoints through the CLI
python3 - "$T" <<'PY'
import struct, sys
t = sys.argv[1]
d = bytearray(open(t + "/a.ckpt", "rb").read())
open(t + "/trunc.ckpt", "wb").write(d[: len(d) // 2])
f = bytearray(d); f[len(d) // 3] ^= 0x40
open(t + "/flip.ckpt", "wb").write(f)
v = bytearray(d); struct.pack_into("<I", v, 8, 7)
open(t + "/v7.ckpt", "wb").write(v)
open(t + "/text.ckpt", "w").write("model = robustfill\n")
PY
for verb in info resume; do
  for case in "trunc:truncated checkpoint" "flip:checksum mismatch, the checkpoint is corrupted" \
    "v7:checkpoint format version 7, but this build reads versions 1 and 2" \
    "text:not an lpsynth checkpoint (bad magic"; do
    f=${case%%:*}
    want=${case#*:}
    if [ $verb = info ]; then
      runcmd "$LPSYNTH" ckpt info "$T/$f.ckpt"
    else
      runcmd train --steps 40 --resume "$T/$f.ckpt" --out "$T/never.ckpt"
    fi
    expect_rc 1 "$verb $f.ckpt"
    expect_has "$T/err" "$T/$f.ckpt: $want" "$verb $f.ckpt message"
  done
done
runcmd "$LPSYNTH" ckpt info "$T/absent.ckpt"
expect_rc 1 "ckpt info on a missing file"
expect_has "$T/err" "$T/absent.ckpt: cannot open" "missing checkpoint message"
# another domain: a toy-domain checkpoint resumed with --domain string
runcmd "$LPSYNTH" train --domain "$TOY" --config "$TINY" --steps 2 --out "$T/toy.ckpt"
expect_rc 0 "train on the toy domain"
runcmd train --steps 4 --resume "$T/toy.ckpt" --out "$T/never.ckpt"
expect_rc 1 "resume a toy checkpoint with the string domain"
expect_has "$T/err" "$T/toy.ckpt: the checkpoint is for domain \"toy\", not \"string\"" "other domain message"
# a config that differs from the checkpoint's
sed 's/^lr = .*/lr = 5e-4/' "$TINY" >"$T/other.cfg"
runcmd "$LPSYNTH" train --domain "$STRING_SO" --config "$T/other.cfg" --steps 40 --resume "$T/a.ckpt" --out "$T/never.ckpt"
expect_rc 1 "resume with another config"
expect_has "$T/err" "differs from the checkpoint's" "config mismatch message"
expect_true "failed runs wrote no checkpoint" test ! -e "$T/never.ckpt"

# ---- bad configs
printf 'model = robustfill\nd_model = 32\nbogus = 1\n' >"$T/bad.cfg"
runcmd "$LPSYNTH" train --domain "$STRING_SO" --config "$T/bad.cfg" --steps 2 --out "$T/never.ckpt"
expect_rc 1 "unknown config key"
expect_has "$T/err" "$T/bad.cfg:3: unknown key \"bogus\"" "unknown key message"
printf 'd_model = 30\nn_heads = 4\n' >"$T/bad2.cfg"
runcmd "$LPSYNTH" train --domain "$STRING_SO" --model robustfill --config "$T/bad2.cfg" --steps 2 --out "$T/never.ckpt"
expect_rc 1 "d_model not a multiple of n_heads"
expect_has "$T/err" "$T/bad2.cfg:1: d_model must be a positive multiple of n_heads" "relation message"
runcmd "$LPSYNTH" train --domain "$STRING_SO" --config "$T/absent.cfg" --steps 2 --out "$T/never.ckpt"
expect_rc 1 "missing config"
expect_has "$T/err" "$T/absent.cfg: cannot open" "missing config message"

# ---- training from a JSONL file (lpsynth gen output), and a bad line
runcmd "$LPSYNTH" gen --domain "$STRING_SO" -n 10 --seed 77 -o "$T/tasks.jsonl"
expect_rc 0 "gen tasks"
runcmd train --data "$T/tasks.jsonl" --steps 4 --out "$T/f.ckpt"
expect_rc 0 "train from a file"
expect_has "$T/err" "tasks from $T/tasks.jsonl" "start line names the data file"
runcmd "$LPSYNTH" ckpt info "$T/f.ckpt"
expect_has "$T/out" "data:       tasks from a file" "ckpt info data kind"
{ head -n 5 "$T/tasks.jsonl"; echo '{"program": "GetUpto(", "inputs": ["a"], "outputs": ["b"]}'; } >"$T/bad.jsonl"
runcmd train --data "$T/bad.jsonl" --steps 4 --out "$T/badf.ckpt"
expect_rc 1 "bad data line"
expect_has "$T/err" "$T/bad.jsonl:6: field \"program\"" "bad data line message names FILE:LINE"
expect_has "$T/err" "the checkpoint of step 1 was saved" "progress before the bad line saved"

finish

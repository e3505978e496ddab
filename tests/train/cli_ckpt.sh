#!/usr/bin/env bash
# Checkpoints and the files around training, end to end: `ckpt info` accepts
# exactly the checkpoints that synth loads (damaged ones with a recomputed
# checksum included) and checks them against their domain's plugin; the
# temporary files a killed run leaves are removed by the next write; a bad
# --data line is reported as FILE:LINE once.
# usage: cli_ckpt.sh LPSYNTH STRING.so TOY.so MODELS_DIR
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=train_cli.sh
. "$(dirname -- "$0")/train_cli.sh" "$@"
TINY="$MODELS/robustfill-tiny.cfg"
export OPENBLAS_NUM_THREADS=1
train() { "$LPSYNTH" train --domain "$STRING_SO" --config "$TINY" "$@"; }

runcmd train --steps 2 --out "$T/a.ckpt" --seed 3
expect_rc 0 "train 2 steps"
runcmd "$LPSYNTH" ckpt info "$T/a.ckpt"
expect_rc 0 "ckpt info"
expect_has "$T/out" "checked:    loads with " "ckpt info says what it checked with"

# ---- damaged checkpoints
# Damaged checkpoints whose checksum was recomputed (so only the content
# checks can catch them): bytes of the config text, the domain name and the
# tensor names replaced. `ckpt info` must accept exactly what synth loads.
PYTHONPATH="$(dirname -- "$0")" PYTHONDONTWRITEBYTECODE=1 python3 - "$T/a.ckpt" "$T/dmg" <<'PY'
import os, random, struct, sys
from ckpt_check import crc32c
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
d = open(src, "rb").read()
spans = {}  # where each kind of text lies in the file
pos = 24
while pos < len(d) - 4:
    tag, _, n = struct.unpack_from("<4sIQ", d, pos)
    body = pos + 16
    if tag == b"CONF":
        spans["config"] = [(body, body + n)]
    elif tag == b"DOMN":
        k = struct.unpack_from("<I", d, body)[0]
        spans["domain"] = [(body + 4, body + 4 + k)]
    elif tag == b"LAYT":
        names, p = [], body + 8
        for _ in range(struct.unpack_from("<Q", d, body)[0]):
            k = struct.unpack_from("<I", d, p)[0]
            names.append((p + 4, p + 4 + k))
            nd = struct.unpack_from("<I", d, p + 4 + k)[0]
            p += 4 + k + 4 + 4 * nd
        spans["tensor"] = names
    pos = body + n
rng = random.Random(7)
alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789_.= \n#\x00\xff"
for kind in ("config", "domain", "tensor"):
    for i in range(8):
        a, b = rng.choice(spans[kind])
        at = rng.randrange(a, b)
        x = bytearray(d)
        while x[at] == d[at]:
            x[at] = rng.choice(alphabet)
        struct.pack_into("<I", x, len(x) - 4, crc32c(bytes(x[:-4])))
        open(f"{out}/{kind}{i:02d}.ckpt", "wb").write(x)
PY
n_refused=0
n_agree=0
for f in "$T"/dmg/*.ckpt; do
  runcmd "$LPSYNTH" ckpt info "$f"
  info_rc=$rc
  if [ "$info_rc" -ne 0 ]; then expect_has "$T/err" "$f" "ckpt info names the damaged file"; fi
  runcmd "$LPSYNTH" synth --domain "$STRING_SO" --model "$f" --io 'ab => a' --beam 1
  if { [ "$info_rc" -eq 0 ] && [ "$rc" -eq 0 ]; } || { [ "$info_rc" -eq 1 ] && [ "$rc" -eq 1 ]; }; then
    n_agree=$((n_agree + 1))
  else
    fail "$(basename "$f"): ckpt info exit $info_rc, synth exit $rc: they must validate alike"
  fi
  if [ "$info_rc" -ne 0 ]; then n_refused=$((n_refused + 1)); fi
done
expect_true "ckpt info and synth agree on all 24 damaged checkpoints ($n_agree)" test "$n_agree" -eq 24
expect_true "most damaged checkpoints are refused ($n_refused of 24)" test "$n_refused" -ge 16
runcmd "$LPSYNTH" ckpt info "$T/dmg/tensor00.ckpt"
expect_has "$T/err" "parameter layout mismatch" "a damaged tensor name is a layout mismatch"

# ---- the domain's plugin: found by name, or given; another domain refused
runcmd "$LPSYNTH" train --domain "$TOY" --config "$TINY" --steps 2 --out "$T/toy.ckpt"
expect_rc 0 "train on the toy domain"
# ckpt info checks against the domain's plugin: the toy is not on the search path
runcmd "$LPSYNTH" ckpt info "$T/toy.ckpt"
expect_rc 1 "ckpt info: a checkpoint whose plugin is not found"
expect_has "$T/err" "$T/toy.ckpt: cannot check the checkpoint against its domain" "plugin not found message"
runcmd "$LPSYNTH" ckpt info --domain "$TOY" "$T/toy.ckpt"
expect_rc 0 "ckpt info --domain PATH.so"
expect_has "$T/out" "checked:    loads with $TOY" "ckpt info names the plugin it checked with"
runcmd "$LPSYNTH" ckpt info --domain "$STRING_SO" "$T/toy.ckpt"
expect_rc 1 "ckpt info with another domain"
expect_has "$T/err" "the checkpoint is for domain \"toy\", not \"string\"" "ckpt info --domain mismatch"

# ---- temporary files of a killed run: `kill -9` while a checkpoint (or an
# --out file) is written leaves CKPT.tmp.PID; the next write of that file
# removes those of dead processes and keeps those of running ones
sh -c 'exit 0' &
dead=$!
wait "$dead"
echo partial >"$T/st.ckpt.tmp.$dead"
echo partial >"$T/st.ckpt.tmp.$$" # this shell: alive
echo partial >"$T/st.ckpt.tmp.x$dead" # not a temp file of st.ckpt: never touched
runcmd train --steps 2 --out "$T/st.ckpt"
expect_rc 0 "train beside stale temp files"
expect_true "the dead process's temp file is removed" test ! -e "$T/st.ckpt.tmp.$dead"
expect_true "a running process's temp file is kept" test -e "$T/st.ckpt.tmp.$$"
expect_true "other files are kept" test -e "$T/st.ckpt.tmp.x$dead"
rm -f "$T/st.ckpt.tmp.$$" "$T/st.ckpt.tmp.x$dead"
echo partial >"$T/st.jsonl.tmp.$dead"
runcmd "$LPSYNTH" gen --domain "$STRING_SO" -n 2 --seed 1 -o "$T/st.jsonl"
expect_rc 0 "gen -o beside a stale temp file"
expect_true "gen -o removes the dead process's temp file" test ! -e "$T/st.jsonl.tmp.$dead"
expect_true "no temp files left" no_temp_files

# ---- a bad --data line
runcmd "$LPSYNTH" gen --domain "$STRING_SO" -n 10 --seed 77 -o "$T/tasks.jsonl"
expect_rc 0 "gen tasks"
# a line over --max-line: FILE:LINE once, not twice
runcmd train --data "$T/tasks.jsonl" --max-line 16 --steps 4 --out "$T/huge.ckpt"
expect_rc 1 "data line over --max-line"
expect_has "$T/err" "lpsynth train: $T/tasks.jsonl:1: line longer than the limit of 16 bytes" "over-long line message"
expect_lacks "$T/err" "$T/tasks.jsonl:1: $T/tasks.jsonl:1:" "the message names the file and line once"

finish

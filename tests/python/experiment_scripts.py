#!/usr/bin/env python3
"""Tests of the python experiment's data scripts: scripts/bucket_pairs.py (the
shuffled, length-bucketed training file) and scripts/sample_lines.py (the
seeded evaluation samples).  usage: experiment_scripts.py SCRIPTS_DIR TMP_DIR"""
import json, os, subprocess, sys

scripts, tmp = sys.argv[1], sys.argv[2]
os.makedirs(tmp, exist_ok=True)
fails = 0


def check(ok, what):
    global fails
    if not ok:
        fails += 1
        print("FAIL:", what)


def run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True)


# 300 pairs: 240 train, 60 test, lengths varying
src = os.path.join(tmp, "pairs.jsonl")
with open(src, "w") as f:
    for i in range(300):
        rec = {"docstring": "d" * (i * 7 % 50 + 1), "code": "def f():\n    return " + "x" * (i * 13 % 97),
               "path": f"p{i // 10}.py", "line": i, "split": "test" if i % 5 == 0 else "train"}
        f.write(json.dumps(rec) + "\n")
lines = open(src, "rb").read().splitlines(keepends=True)
train = [l for l in lines if json.loads(l)["split"] == "train"]

# bucket_pairs: the train lines exactly, each once; deterministic; sorted in batches
out1, out2, out3 = (os.path.join(tmp, n) for n in ("b1.jsonl", "b2.jsonl", "b3.jsonl"))
r = run(f"{scripts}/bucket_pairs.py", src, out1, "--batch", "8", "--window", "4", "--seed", "5")
check(r.returncode == 0, f"bucket_pairs ran: {r.stderr}")
run(f"{scripts}/bucket_pairs.py", src, out2, "--batch", "8", "--window", "4", "--seed", "5")
run(f"{scripts}/bucket_pairs.py", src, out3, "--batch", "8", "--window", "4", "--seed", "6")
b1 = open(out1, "rb").read()
got = b1.splitlines(keepends=True)
check(sorted(got) == sorted(train), "bucket_pairs keeps exactly the train lines")
check(b1 == open(out2, "rb").read(), "bucket_pairs: same seed, same bytes")
check(b1 != open(out3, "rb").read(), "bucket_pairs: another seed, another order")
check(got != train, "bucket_pairs shuffles")
keys = [(len(json.loads(l)["code"]), min(len(json.loads(l)["docstring"]), 1024)) for l in got]
check(all(keys[i:i + 8] == sorted(keys[i:i + 8]) for i in range(0, len(keys), 8)),
      "bucket_pairs: each batch of 8 is sorted by length")
spread = sum(max(k[0] for k in keys[i:i + 8]) - min(k[0] for k in keys[i:i + 8])
             for i in range(0, 240, 8)) / 30
check(spread < 40, f"bucket_pairs groups similar lengths (mean spread {spread:.1f} of 0..96)")
bad = os.path.join(tmp, "bad.jsonl")
with open(bad, "wb") as f:
    f.write(lines[1] + b'{"docstring": "x"}\n')
r = run(f"{scripts}/bucket_pairs.py", bad, out3)
check(r.returncode != 0 and "bad.jsonl:2:" in r.stderr, f"bucket_pairs names a bad line: {r.stderr}")
r = run(f"{scripts}/bucket_pairs.py", src, out3, "--split", "nosuch")
check(r.returncode != 0 and "no pair" in r.stderr, "bucket_pairs refuses an empty split")

# sample_lines: n distinct lines of the split, deterministic
s1, s2 = os.path.join(tmp, "s1.jsonl"), os.path.join(tmp, "s2.jsonl")
r = run(f"{scripts}/sample_lines.py", src, s1, "--split", "test", "--n", "25", "--seed", "3")
check(r.returncode == 0, f"sample_lines ran: {r.stderr}")
run(f"{scripts}/sample_lines.py", src, s2, "--split", "test", "--n", "25", "--seed", "3")
got = open(s1, "rb").read().splitlines(keepends=True)
test = [l for l in lines if json.loads(l)["split"] == "test"]
check(len(got) == 25 and len(set(got)) == 25 and all(l in test for l in got),
      "sample_lines: 25 distinct test lines")
check(open(s1, "rb").read() == open(s2, "rb").read(), "sample_lines: same seed, same bytes")
run(f"{scripts}/sample_lines.py", src, s2, "--split", "test", "--n", "0")
check(sorted(open(s2, "rb").read().splitlines(keepends=True)) == sorted(test),
      "sample_lines --n 0: every line of the split")
sys.exit(1 if fails else 0)

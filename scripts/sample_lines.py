#!/usr/bin/env python3
"""Writes a seeded random sample of the lines of a JSONL file, in sampled
order (the same input, --split, --n and --seed give the same bytes).

    python3 scripts/sample_lines.py IN.jsonl OUT.jsonl [--split NAME] [--n N] [--seed S]

--split keeps only the lines whose "split" is NAME first; --n 0 (or an N at
least the number of lines) keeps every line, shuffled. Written atomically.
"""
import argparse, json, random, sys

from atomic_write import write_lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--split", default="")
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--seed", type=int, default=2026)
    a = ap.parse_args()
    lines = []
    with open(a.inp, "rb") as f:
        for k, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            if a.split:
                try:
                    split = json.loads(raw).get("split")
                except (ValueError, AttributeError) as e:
                    sys.exit(f"{a.inp}:{k}: not a JSON object: {e}")
                if split != a.split:
                    continue
            lines.append(raw if raw.endswith(b"\n") else raw + b"\n")
    rng = random.Random(a.seed)
    rng.shuffle(lines)
    if a.n > 0:
        lines = lines[:a.n]
    write_lines(a.out, lines)
    print(f"sample_lines: {len(lines)} lines -> {a.out}")


if __name__ == "__main__":
    main()

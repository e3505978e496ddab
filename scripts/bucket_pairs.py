#!/usr/bin/env python3
"""Shuffles a docstring/code corpus and groups pairs of similar length into
consecutive batches, for `lpsynth train --data` (which reads its file in order,
cycled, and pads each batch to its longest docstring and program).

    python3 scripts/bucket_pairs.py IN.jsonl OUT.jsonl [--split train]
            [--batch 32] [--window 64] [--seed 1]

1. keeps the lines of --split (all lines when --split is empty);
2. shuffles them (seeded: the same input and seed give the same bytes);
3. cuts the shuffled list into windows of --window batches, sorts each window
   by length (program characters, then docstring characters, the docstring
   counted up to 1,024 characters - about the 256-token cut of
   models/*-python*.cfg), and cuts it into batches of --batch pairs;
4. shuffles the order of all batches (not the pairs inside them).

Lines are copied byte for byte. The output is written atomically (temporary
file, fsync, rename). --batch must equal the config's batch_size, or the
grouping is lost.
"""
import argparse, json, random, sys

from atomic_write import write_lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--split", default="train")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.batch < 1 or a.window < 1:
        sys.exit("bucket_pairs: --batch and --window must be positive")
    items = []
    with open(a.inp, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                doc, code = rec["docstring"], rec["code"]
                split = rec.get("split")
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"{a.inp}:{n}: not a docstring/code pair: {e}")
            if a.split and split != a.split:
                continue
            key = (len(code), min(len(doc), 1024))
            items.append((key, raw if raw.endswith(b"\n") else raw + b"\n"))
    if not items:
        sys.exit(f"{a.inp}: no pair of split {a.split!r}")
    rng = random.Random(a.seed)
    rng.shuffle(items)
    w = a.batch * a.window
    batches = []
    for s in range(0, len(items), w):
        win = sorted(items[s:s + w], key=lambda x: x[0])
        batches += [win[i:i + a.batch] for i in range(0, len(win), a.batch)]
    rng.shuffle(batches)
    write_lines(a.out, (raw for b in batches for _, raw in b))
    print(f"bucket_pairs: {len(items)} pairs in {len(batches)} batches -> {a.out}")


if __name__ == "__main__":
    main()

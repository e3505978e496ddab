#!/usr/bin/env python3
"""lpsynth's BLEU against NLTK, within 1e-6.

usage: check_bleu.py TEST_PYTHON_BLEU CASES.jsonl EXPECTED.json

Runs the C program on the cases and compares its tokens and scores (sentence
BLEU per case with smoothing method1 and none, corpus BLEU per tokenisation)
with EXPECTED.json, which NLTK 3.8 made (make_bleu_fixtures.py). When NLTK is
importable, also recomputes the expectations with it now and compares those
too (and says so); without NLTK only the committed fixture is used.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_bleu_fixtures as fx  # noqa: E402

TOL = 1e-6


def compare(got, want, label):
    bad = 0
    if len(got["cases"]) != len(want["cases"]):
        print(f"{label}: {len(got['cases'])} cases, expected {len(want['cases'])}")
        return 1
    for i, (g, w) in enumerate(zip(got["cases"], want["cases"])):
        if g["hyp_tokens"] != w["hyp_tokens"] or g["ref_tokens"] != w["ref_tokens"]:
            print(f"{label}: case {i + 1}: tokens differ:\n  C   {g['hyp_tokens']}\n  ref {w['hyp_tokens']}")
            bad += 1
        for sm in ("method1", "none"):
            if abs(g[sm] - w[sm]) > TOL:
                print(f"{label}: case {i + 1}: sentence BLEU ({sm}) {g[sm]!r}, expected {w[sm]!r}")
                bad += 1
    for how in ("code", "whitespace"):
        for sm in ("method1", "none"):
            a, b = got["corpus_" + how][sm], want["corpus_" + how][sm]
            if abs(a - b) > TOL:
                print(f"{label}: corpus BLEU ({how}, {sm}) {a!r}, expected {b!r}")
                bad += 1
    return bad


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    prog, cases_path, expected_path = sys.argv[1:]
    r = subprocess.run([prog, cases_path], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr, end="")
        print(f"{prog} failed with status {r.returncode}")
        return 1
    got = json.loads(r.stdout)
    with open(expected_path, encoding="utf-8") as f:
        want = json.load(f)
    bad = compare(got, want, "committed fixture")
    n = len(got["cases"])
    print(f"{n} cases: compared with the committed NLTK {want.get('nltk_version', '?')} fixture")
    try:
        import nltk  # noqa: F401
    except ImportError:
        print("NLTK is not importable here: live comparison skipped (install python3-nltk)")
    else:
        live = fx.nltk_scores(fx.read_cases(cases_path))
        bad += compare(got, live, f"NLTK {nltk.__version__} now")
        print(f"{n} cases: compared with NLTK {nltk.__version__} computed now")
    print("OK" if bad == 0 else f"{bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

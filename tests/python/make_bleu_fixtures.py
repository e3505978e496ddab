#!/usr/bin/env python3
"""BLEU fixtures for tests/python, made with NLTK (Debian python3-nltk 3.8).

usage:
  make_bleu_fixtures.py cases STDLIB_DIR CASES.jsonl     write the test cases
  make_bleu_fixtures.py expect CASES.jsonl EXPECTED.json  NLTK's scores for them

bleu_cases.jsonl and bleu_expected.json in this folder were made once with
  /usr/bin/python3 make_bleu_fixtures.py cases /usr/lib/python3.11 bleu_cases.jsonl
  /usr/bin/python3 make_bleu_fixtures.py expect bleu_cases.jsonl bleu_expected.json
(NLTK 3.8, Python 3.11.2). check_bleu.py uses the same functions at test time.
"""
import json
import random
import re
import sys
import warnings

# lpsynth's BLEU tokenisation (include/lpsynth/metrics.h), on UTF-8 bytes.
CODE_TOKEN = re.compile(rb"[A-Za-z0-9_\x80-\xff]+|[^A-Za-z0-9_\x80-\xff \t\n\x0b\x0c\r]")
WS_TOKEN = re.compile(rb"[^ \t\n\x0b\x0c\r]+")


def tokenize(text, how):
    pat = WS_TOKEN if how == "whitespace" else CODE_TOKEN
    return [t.decode("utf-8") for t in pat.findall(text.encode("utf-8"))]


def nltk_scores(cases):
    """Sentence BLEU per case and corpus BLEU per tokenisation, as NLTK gives them."""
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu

    sm = {"method1": SmoothingFunction().method1, "none": None}
    out = {"cases": []}
    groups = {"code": ([], []), "whitespace": ([], [])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # method0's "0 counts of n-gram overlaps" warnings
        for c in cases:
            how = c.get("tokenize", "code")
            hyp = tokenize(c["hyp"], how)
            refs = [tokenize(r, how) for r in c["refs"]]
            groups[how][0].append(refs)
            groups[how][1].append(hyp)
            item = {"hyp_tokens": hyp, "ref_tokens": refs}
            for name, fn in sm.items():
                item[name] = float(sentence_bleu(refs, hyp, smoothing_function=fn))
            out["cases"].append(item)
        for how, (refs, hyps) in groups.items():
            out["corpus_" + how] = {
                name: float(corpus_bleu(refs, hyps, smoothing_function=fn)) if hyps else 0.0
                for name, fn in sm.items()
            }
    return out


HAND = [
    {"hyp": "return a + b", "refs": ["return a + b"]},
    {"hyp": "", "refs": ["return x"]},
    {"hyp": "return x", "refs": [""]},
    {"hyp": "x", "refs": ["x"]},
    {"hyp": "x y", "refs": ["x y z"]},
    {"hyp": "a b c", "refs": ["a b c"]},
    {"hyp": "the the the the the the the", "refs": ["the cat is on the mat"], "tokenize": "whitespace"},
    {"hyp": "the cat the cat on the mat", "refs": ["the cat is on the mat", "there is a cat on the mat"],
     "tokenize": "whitespace"},
    {"hyp": "a b c d e", "refs": ["a b c d e f g", "a b c"]},  # tie-free closest length
    {"hyp": "a b c d", "refs": ["a b c d e f", "a b"]},  # tie: |6-4| = |2-4|, the shorter wins
    {"hyp": "def f(x):\n    return x * 2\n", "refs": ["def f(y):\n    return y * 2\n"]},
    {"hyp": "for i in range(10): total += i", "refs": ["for j in range(10):\n    total += j"]},
    {"hyp": "caf\u00e9 = '\u20ac'  # \U0001F40D", "refs": ["caf\u00e9 = '$'"]},
    {"hyp": "self.x+=f(1)", "refs": ["self . x += f ( 1 )"]},
    {"hyp": "x.y.z", "refs": ["x . y . z"], "tokenize": "whitespace"},
    {"hyp": "if a and b or c: pass", "refs": ["if a or b and c: pass"]},
    {"hyp": "return [v for v in values if v]", "refs": ["return list(filter(None, values))"]},
]


def make_cases(stdlib, path):
    import ast
    import os

    rng = random.Random(20210503)
    lines = []
    for name in ["textwrap.py", "shlex.py", "fnmatch.py", "string.py", "glob.py"]:
        src = open(os.path.join(stdlib, name), encoding="utf-8").read()
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.FunctionDef) and len(node.body) > 1:
                seg = ast.get_source_segment(src, node)
                if seg and len(seg) < 600:
                    lines.append(seg)
    rng.shuffle(lines)
    cases = list(HAND)
    for ref in lines[:40]:
        toks = tokenize(ref, "code")
        hyp = list(toks)
        for _ in range(rng.randint(0, max(1, len(toks) // 3))):
            op = rng.choice(["drop", "swap", "dup", "rename"])
            if not hyp:
                break
            i = rng.randrange(len(hyp))
            if op == "drop":
                del hyp[i]
            elif op == "swap" and len(hyp) > 1:
                j = rng.randrange(len(hyp))
                hyp[i], hyp[j] = hyp[j], hyp[i]
            elif op == "dup":
                hyp.insert(i, hyp[i])
            else:
                hyp[i] = "VAR_%d" % rng.randrange(5)
        refs = [ref]
        if rng.random() < 0.3:  # a second reference: a shortened copy
            refs.append(" ".join(toks[: max(1, len(toks) // 2)]))
        cases.append({"hyp": " ".join(hyp), "refs": refs})
    with open(path, "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")


def read_cases(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "cases":
        make_cases(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "expect":
        import nltk

        exp = nltk_scores(read_cases(sys.argv[2]))
        exp["nltk_version"] = nltk.__version__
        with open(sys.argv[3], "w", encoding="utf-8") as f:  # one case per line
            f.write('{"nltk_version": %s,\n "cases": [\n' % json.dumps(exp["nltk_version"]))
            f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in exp["cases"]))
            f.write("\n ],\n")
            f.write(' "corpus_code": %s,\n' % json.dumps(exp["corpus_code"]))
            f.write(' "corpus_whitespace": %s\n}\n' % json.dumps(exp["corpus_whitespace"]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

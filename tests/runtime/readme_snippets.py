#!/usr/bin/env python3
"""Checks that plugins/README.md matches the code it documents.

usage: readme_snippets.py README.md LPSYNTH TOY.so SOURCE...

* Every ```c and ```cmake block must be a verbatim excerpt of one of the
  SOURCE files. A block may elide code with a line that is just "..." or
  "/* ... */": each piece between elisions must then appear verbatim.
* In ```console blocks, every command of the form
  "$ lpsynth ... --domain ./lpsynth_toy.so ..." (or "$ ../../lpsynth ...")
  without pipes, redirections or comments
  is run (in the folder of TOY.so, with LPSYNTH as lpsynth) and its output
  (stdout, then stderr) must be the lines that follow it in the block.
"""
import os
import re
import shlex
import subprocess
import sys

ELISION = re.compile(r"^\s*(\.\.\.|/\* \.\.\. \*/|# \.\.\.)\s*$")


def blocks(text):
    """(language, first line number, lines) of every fenced block."""
    out, lang, start, cur = [], None, 0, []
    for n, line in enumerate(text.split("\n"), 1):
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if fence and lang is None:
            lang, start, cur = fence.group(1) or "text", n, []
        elif fence:
            out.append((lang, start, cur))
            lang = None
        elif lang is not None:
            cur.append(line)
    return out


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    readme, toy, sources = sys.argv[1], sys.argv[3], sys.argv[4:]
    lpsynth = os.path.abspath(sys.argv[2])
    text = open(readme, encoding="utf-8").read()
    corpus = {s: open(s, encoding="utf-8").read() for s in sources}
    failures, checked, ran = 0, 0, 0
    for lang, start, lines in blocks(text):
        if lang in ("c", "cmake"):
            pieces, cur = [], []
            for line in lines + ["..."]:
                if ELISION.match(line):
                    if any(l.strip() for l in cur):
                        pieces.append("\n".join(cur).strip("\n"))
                    cur = []
                else:
                    cur.append(line)
            for piece in pieces:
                checked += 1
                if not any(piece in src for src in corpus.values()):
                    failures += 1
                    print(f"{readme}:{start}: this {lang} snippet is not in any of "
                          f"{', '.join(os.path.basename(s) for s in sources)}:\n{piece}\n",
                          file=sys.stderr)
        elif lang == "console":
            i = 0
            while i < len(lines):
                line = lines[i]
                i += 1
                if not line.startswith("$ "):
                    continue
                cmd = line[2:]
                expected = []
                while i < len(lines) and not lines[i].startswith("$ "):
                    expected.append(lines[i])
                    i += 1
                if ("#" in cmd or any(c in cmd for c in "|<>") or not re.match(r"(\.\./\.\./)?lpsynth ", cmd)
                        or "./lpsynth_toy.so" not in cmd or any("..." in e for e in expected)):
                    continue
                argv = shlex.split(cmd)
                argv[0] = lpsynth
                env = dict(os.environ, LPSYNTH_PROGRESS="0")
                env.pop("LPSYNTH_PLUGIN_PATH", None)
                r = subprocess.run(argv, cwd=os.path.dirname(os.path.abspath(toy)), env=env,
                                   capture_output=True, text=True, timeout=30)
                ran += 1
                got = (r.stdout + r.stderr).rstrip("\n").split("\n") if (r.stdout + r.stderr) else []
                while expected and not expected[-1].strip():
                    expected.pop()
                if got != expected:
                    failures += 1
                    print(f"{readme}:{start}: `{cmd}` printed\n  " + "\n  ".join(got) +
                          "\nbut the guide shows\n  " + "\n  ".join(expected) + "\n",
                          file=sys.stderr)
    if checked == 0 or ran == 0:
        print(f"{readme}: no snippets found ({checked} code, {ran} console)", file=sys.stderr)
        return 1
    print(f"readme_snippets: {checked} code snippets and {ran} console examples checked, "
          f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Normalises Python code the way the code-docstring corpus (Barone and
Sennrich 2017; the paper's section 5.3 data, our cdc-valid.jsonl) prints it:
parse with Python's ast, print back with astunparse (Debian's
python3-astunparse), so comments, blank lines and the author's layout are
gone and every expression is fully parenthesised:

    x, y = a, (b + 1) * 2     ->   (x, y) = (a, ((b + 1) * 2))

Two differences of today's Python AST from the one that corpus was printed
from are undone, so that its own code prints back unchanged (1,901 of
cdc-valid's 1,947 functions do, byte for byte; `self-check` measures it):
a subscript with a slice inside a tuple prints `a[:, i]` (not `a[(:, i)]`,
which is not Python), a negative number prints `(-1)` (not `(- 1)`).

    normalise_python.py tree SRC_DIR DST_DIR
        every *.py file under SRC_DIR (hidden entries and __pycache__
        skipped, as `lpsynth corpus` does) printed back from its AST into
        the same relative path under DST_DIR, docstrings kept (as string
        literals); `lpsynth corpus DST_DIR` then extracts normalised pairs,
        split by file exactly as it splits SRC_DIR (same relative paths).
        A file Python cannot parse or read is left out and reported on
        stderr as FILE: problem; the summary counts them.
    normalise_python.py exclude IN.jsonl OUT.jsonl FILE.jsonl...
        IN's pairs without those whose code, normalised, equals the
        normalised code of a pair of one of the FILEs (dedupe against an
        evaluation set); kept lines are copied byte for byte.
    normalise_python.py self-check FILE.jsonl
        how many of FILE's functions print back unchanged.

A malformed JSONL line (not UTF-8, not JSON, no "code" string) stops with
FILE:LINE: problem and exit status 1. Outputs are written atomically (a
temporary file renamed over each).
"""
import ast
import io
import json
import os
import sys

try:
    import astunparse
except ImportError:  # pragma: no cover - reported to the user
    sys.stderr.write("normalise_python.py: needs Debian's python3-astunparse "
                     "(apt-get install python3-astunparse) under /usr/bin/python3\n")
    sys.exit(2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atomic_write import write_lines  # noqa: E402


class _Unparser(astunparse.Unparser):
    def _Subscript(self, t):
        self.dispatch(t.value)
        self.write("[")
        s = t.slice
        if isinstance(s, ast.Tuple) and any(isinstance(e, ast.Slice) for e in s.elts):
            for i, e in enumerate(s.elts):  # the old ExtSlice: no parentheses
                if i:
                    self.write(", ")
                self.dispatch(e)
        else:
            self.dispatch(s)
        self.write("]")

    def _UnaryOp(self, t):
        if (isinstance(t.op, ast.USub) and isinstance(t.operand, ast.Constant)
                and type(t.operand.value) in (int, float, complex)):
            self.write("(-")  # the old AST folded -1 into one number
            self.dispatch(t.operand)
            self.write(")")
        else:
            super()._UnaryOp(t)


def normalise(code):
    """The code printed back from its AST, without blank lines, ending in
    '\\n'. Raises SyntaxError (or ValueError, RecursionError) when Python
    cannot parse or print it."""
    buf = io.StringIO()
    _Unparser(ast.parse(code), file=buf)
    lines = [ln for ln in buf.getvalue().split("\n") if ln.strip()]
    return "\n".join(lines) + "\n"


def read_rows(path):
    """Yields (line number, raw bytes, object) of a JSONL file; exits 1 on a
    bad line."""
    try:
        f = open(path, "rb")
    except OSError as e:
        sys.stderr.write("normalise_python.py: %s: %s\n" % (path, e.strerror))
        sys.exit(1)
    with f:
        for no, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                sys.stderr.write("%s:%d: not UTF-8 (byte %d)\n" % (path, no, e.start))
                sys.exit(1)
            except ValueError as e:
                sys.stderr.write("%s:%d: not a JSON object (%s)\n" % (path, no, e))
                sys.exit(1)
            if not isinstance(obj, dict) or not isinstance(obj.get("code"), str):
                sys.stderr.write("%s:%d: no \"code\" string\n" % (path, no))
                sys.exit(1)
            yield no, raw, obj


def try_normalise(code):
    """(normalised code, None) or (None, the reason Python cannot parse it)."""
    try:
        return normalise(code), None
    except SyntaxError as e:
        return None, "%s (line %s)" % (e.msg or "syntax error", e.lineno)
    except AttributeError as e:  # a node astunparse 1.6 cannot print (match, except*)
        return None, "astunparse cannot print it (%s)" % e
    except (ValueError, RecursionError, MemoryError) as e:
        return None, type(e).__name__


def cmd_tree(src, dst):
    if not os.path.isdir(src):
        sys.stderr.write("normalise_python.py: %s: not a folder\n" % src)
        return 1
    n = bad = 0
    for top, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            if name.startswith(".") or not name.endswith(".py"):
                continue
            path = os.path.join(top, name)
            n += 1
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8")
            except (OSError, UnicodeDecodeError) as e:
                sys.stderr.write("%s: cannot read as UTF-8 (%s); left out\n" % (path, e))
                bad += 1
                continue
            out, problem = try_normalise(text)
            if problem:
                sys.stderr.write("%s: %s; left out\n" % (path, problem))
                bad += 1
                continue
            target = os.path.join(dst, os.path.relpath(path, src))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            write_lines(target, [out.encode("utf-8")])
    sys.stderr.write("normalise_python.py: %s: %d files, %d normalised into %s, %d left out\n"
                     % (src, n, n - bad, dst, bad))
    return 0


def cmd_exclude(src, dst, against):
    banned = set()
    for ex in against:
        for no, _, obj in read_rows(ex):
            out, _ = try_normalise(obj["code"])
            banned.add(out if out is not None else obj["code"])
    kept, dropped, lines = [], 0, 0
    for no, raw, obj in read_rows(src):
        lines += 1
        out, _ = try_normalise(obj["code"])
        if (out if out is not None else obj["code"]) in banned:
            dropped += 1
            continue
        kept.append(raw if raw.endswith(b"\n") else raw + b"\n")
    write_lines(dst, kept)
    sys.stderr.write("normalise_python.py: %s: %d pairs, %d equal to a pair of %s dropped, "
                     "%d kept -> %s\n" % (src, lines, dropped, ", ".join(against), len(kept), dst))
    return 0


def cmd_self_check(path):
    n = same = bad = 0
    for no, _, obj in read_rows(path):
        n += 1
        out, problem = try_normalise(obj["code"])
        if problem:
            bad += 1
        elif out == obj["code"].rstrip("\n") + "\n":
            same += 1
    print("%s: %d of %d functions print back unchanged (%d do not parse)" % (path, same, n, bad))
    return 0


def main(argv):
    a = argv[1:]
    if not a or a[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if a else 2
    if a[0] == "tree" and len(a) == 3:
        return cmd_tree(a[1], a[2])
    if a[0] == "exclude" and len(a) >= 4:
        return cmd_exclude(a[1], a[2], a[3:])
    if a[0] == "self-check" and len(a) == 2:
        return cmd_self_check(a[1])
    sys.stderr.write("normalise_python.py: bad arguments (see --help)\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

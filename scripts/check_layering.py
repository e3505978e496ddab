#!/usr/bin/env python3
"""Checks the layering of core/ (core/README.md, "Layers and the dependency rule").

core/ is three static libraries, lowest first:

    runtime  core/*.c, core/*.h         (plugin loader, host API, JSONL, files)
    engine   core/engine/**             (the generic neural engine)
    model    core/model/**              (configs, models, training, search)

A library may use the ones below it, never one above. The public headers of
include/lpsynth/ belong to the library that defines the functions they
declare (a header that declares none, plugin.h, is the ABI: below them all).

The script parses C roughly: it reads every core/**/*.c|h file's
`#include "..."` lines, the functions each .c file defines (at column 0,
followed by a body) and the identifiers each .c file uses that name a function
defined in another file of core/ (calls, and functions passed by name).
Static inline functions defined in a header count as the header's. From that
it builds the file graph (includes + uses) and the library graph, and reports

  (a) every include or use from a lower library of a higher one (always), and
  (b) with --files, every circle of includes or uses among core/ files: each
      one printed as a path, "a.c -> b.c (calls f) -> a.c (calls g)".
      --allow FILE names circles that exist today and are tolerated: one per
      line, the files of the circle separated by spaces ('#' comments). A
      circle passes when all its files lie in one allowed line; so a new
      circle, or a known one that takes in another file, fails.

Exit status: 0 when nothing is reported, 1 when something is, 2 on usage
errors. Python 3, standard library only.

usage: check_layering.py [--root DIR] [--files] [--allow FILE] [--graph]
"""
import argparse
import os
import re
import sys
from collections import defaultdict

LIBRARIES = ("abi", "runtime", "engine", "model")  # lowest first
RANK = {name: i for i, name in enumerate(LIBRARIES)}

KEYWORDS = set(
    "if else for while do switch case default return sizeof goto break continue "
    "typedef struct union enum static inline extern const volatile register "
    "restrict signed unsigned void char short int long float double _Bool "
    "_Static_assert _Alignof _Alignas _Atomic _Noreturn _Generic __attribute__ "
    "defined".split()
)

INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)
IDENT_RE = re.compile(r"[A-Za-z_]\w*")
# A candidate definition: at column 0, a head of words/stars, then name(.
DEF_RE = re.compile(r"^(?P<head>[A-Za-z_][\w \t\*]*?[\s\*])(?P<name>[A-Za-z_]\w*)[ \t]*\(", re.M)


def strip_comments(text, keep_strings):
    """Comments (and, unless keep_strings, string and char literals) become
    spaces; newlines stay, so line numbers do not move."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "/" and i + 1 < n and text[i + 1] == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(text[i:j] if keep_strings else c + " " * max(0, j - i - 2) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def matching_paren(text, i):
    """Index just after the ')' matching the '(' at i (or len(text))."""
    depth = 0
    n = len(text)
    while i < n:
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def definitions(code, prototypes=None):
    """[(name, is_static, line)] of the functions defined in code (comments
    and strings stripped): a column-0 declarator whose parameter list is
    followed by '{'. The positions of the names of column-0 prototypes (the
    list followed by ';') go to the set `prototypes` when given."""
    found = []
    for m in DEF_RE.finditer(code):
        head, name = m.group("head"), m.group("name")
        words = IDENT_RE.findall(head)
        if name in KEYWORDS or not words or words[0] in ("typedef", "return", "else"):
            continue
        j = matching_paren(code, m.end() - 1)
        while True:  # skip white space and __attribute__((...)) before the body
            while j < len(code) and code[j] in " \t\r\n":
                j += 1
            if code.startswith("__attribute__", j):
                j = code.find("(", j)
                j = matching_paren(code, j) if j >= 0 else len(code)
                continue
            break
        if j < len(code) and code[j] == "{":
            found.append((name, "static" in words, line_of(code, m.start())))
        elif j < len(code) and code[j] == ";" and prototypes is not None:
            prototypes.add(m.start("name"))
    return found


class File:
    def __init__(self, rel, lib, text):
        self.rel = rel
        self.lib = lib
        self.raw_includes = [
            (m.group(1), line_of(text, m.start()))
            for m in INCLUDE_RE.finditer(strip_comments(text, keep_strings=True))
        ]
        self.code = strip_comments(text, keep_strings=False)
        self.code = INCLUDE_RE.sub(lambda m: " " * len(m.group(0)), self.code)
        self.prototypes = set()  # offsets of the names of prototypes
        self.defs = definitions(self.code, self.prototypes)
        self.includes = []  # [(target rel, line, spelled)]


def library_of_core_file(rel):
    parts = rel.split("/")
    if len(parts) == 2:
        return "runtime"
    if parts[1] in ("engine", "model"):
        return parts[1]
    return None  # a folder of core/ the rule does not know


def load(root):
    """Reads core/**/*.c|h and include/lpsynth/*.h under root."""
    files = {}
    unknown = []
    for top in ("core", os.path.join("include", "lpsynth")):
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in sorted(filenames):
                if not fn.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, fn)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                if rel.startswith("include/"):
                    if not fn.endswith(".h"):
                        continue
                    lib = None  # decided from what it declares
                else:
                    lib = library_of_core_file(rel)
                    if lib is None:
                        unknown.append(rel)
                        continue
                with open(path, encoding="utf-8", errors="replace") as f:
                    files[rel] = File(rel, lib, f.read())
    return files, unknown


def resolve_includes(files):
    """Resolves each #include "x" as the compiler would for core/: the
    including file's folder, then include/ and core/ (the model's private
    path, for "engine/internal.h"). Includes of files outside the scanned set
    (system or third-party headers) are dropped."""
    for f in files.values():
        here = os.path.dirname(f.rel)
        for spelled, line in f.raw_includes:
            for cand in (os.path.join(here, spelled), os.path.join("include", spelled),
                         os.path.join("core", spelled)):
                cand = os.path.normpath(cand).replace(os.sep, "/")
                if cand in files:
                    f.includes.append((cand, line, spelled))
                    break


def build(files):
    """Fills library of public headers, and returns (edges, problems): edges
    {(a, b): [reason, ...]} among files, problems a list of messages about
    the scan itself (a function defined in two files)."""
    resolve_includes(files)
    problems = []
    # global functions: defined non-static in a .c, or static inline in a header
    owner = {}
    for f in files.values():
        is_header = f.rel.endswith(".h")
        for name, is_static, line in f.defs:
            if f.rel.startswith("include/"):
                continue
            if is_header or not is_static:
                if name in owner and owner[name] != f.rel:
                    problems.append("%s:%d: %s is also defined in %s" % (f.rel, line, name, owner[name]))
                    continue
                owner[name] = f.rel
    # public headers: the library that defines what they declare; one that
    # declares nothing of core/ takes the highest library it includes (the
    # umbrella header), else it is the ABI (plugin.h)
    pending = []
    for f in files.values():
        if f.lib is not None:
            continue
        libs = defaultdict(int)
        for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\(", f.code):
            o = owner.get(m.group(1))
            if o is not None and not o.endswith(".h"):
                libs[files[o].lib] += 1
        if libs:
            f.lib = max(sorted(libs), key=lambda k: libs[k])
        else:
            pending.append(f)
    for _ in range(len(pending) + 1):
        for f in pending:
            inc = [files[t].lib for t, _, _ in f.includes if files[t].lib is not None]
            f.lib = max(inc + ["abi"], key=lambda k: RANK[k])
    # what each file includes, directly or not (a header's inline functions
    # are seen only where the header is)
    seen = {}

    def reach(rel):
        if rel not in seen:
            seen[rel] = set()
            todo = [t for t, _, _ in files[rel].includes]
            while todo:
                t = todo.pop()
                if t not in seen[rel]:
                    seen[rel].add(t)
                    todo.extend(u for u, _, _ in files[t].includes)
        return seen[rel]
    edges = defaultdict(list)
    for f in files.values():
        for target, line, spelled in f.includes:
            edges[(f.rel, target)].append((line, 'includes "%s"' % spelled))
        if not f.rel.endswith(".c"):
            continue  # a header's prototypes use nothing; its inline bodies are its own
        local = {name for name, _, _ in f.defs}
        for m in IDENT_RE.finditer(f.code):
            name = m.group(0)
            o = owner.get(name)
            if o is None or o == f.rel or name in local:
                continue
            if o.endswith(".h") and o not in reach(f.rel):
                continue  # another function (or variable) of the same name
            before = f.code[max(0, m.start() - 2):m.start()].rstrip()
            if before.endswith(".") or before.endswith("->"):
                continue  # a struct member of the same name
            after = f.code[m.end():m.end() + 40].lstrip()
            if m.start() in f.prototypes:
                verb = "declares"
            else:
                verb = "calls" if after.startswith("(") else "uses"
            edges[(f.rel, o)].append((line_of(f.code, m.start()), "%s %s" % (verb, name)))
    return edges, problems


def best_reason(reasons):
    """The reason to show for an edge: a call or use before an include, a
    prototype last; the first in the file among equals."""
    order = {"calls": 0, "uses": 1, "includes": 2, "declares": 3}
    return min(reasons, key=lambda r: (order.get(r[1].split()[0], 4), r[0]))


def check_libraries(files, edges):
    """(a): messages for every edge from a lower library to a higher one."""
    bad = []
    for (a, b), reasons in sorted(edges.items()):
        la, lb = files[a].lib, files[b].lib
        if RANK[lb] > RANK[la]:
            for line, why in reasons:
                bad.append("%s:%d: %s (defined in %s): %s -> %s, a lower library using a higher one"
                           % (a, line, why, b, la, lb) if not why.startswith("includes")
                           else "%s:%d: %s: %s -> %s, a lower library using a higher one"
                           % (a, line, why, la, lb))
    return bad


def library_graph(files, edges):
    g = defaultdict(lambda: [0, 0])
    for (a, b), reasons in edges.items():
        la, lb = files[a].lib, files[b].lib
        if la == lb:
            continue
        for _, why in reasons:
            g[(la, lb)][0 if why.startswith("includes") else 1] += 1
    return g


def sccs(nodes, succ):
    """Tarjan's strongly connected components (iterative), each sorted."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(succ[w])))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def cycle_through(start, comp, succ):
    """A shortest cycle start -> ... -> start inside comp (BFS)."""
    inside = set(comp)
    prev = {start: None}
    queue = [start]
    for v in queue:
        for w in sorted(succ[v]):
            if w not in inside:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return [start, start]


def read_allow(path):
    allowed = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if line:
                allowed.append((frozenset(line), n))
    return allowed


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Check the layering of core/ (core/README.md).")
    ap.add_argument("--root", default=os.path.dirname(here), help="the repository (default: this script's parent folder)")
    ap.add_argument("--files", action="store_true", help="also report circles among core/ files")
    ap.add_argument("--allow", metavar="FILE", help="with --files: circles tolerated, one per line")
    ap.add_argument("--graph", action="store_true", help="print every file edge with its first reason")
    args = ap.parse_args(argv)
    if args.allow and not args.files:
        ap.error("--allow goes with --files")
    root = os.path.abspath(args.root)
    if not os.path.isdir(os.path.join(root, "core")):
        ap.error("%s has no core/ folder" % root)

    files, unknown = load(root)
    edges, problems = build(files)
    failed = False
    for rel in unknown:
        print("%s: in a folder of core/ that belongs to no library (runtime: core/, engine: core/engine/, "
              "model: core/model/)" % rel)
        failed = True
    for p in problems:
        print(p)
        failed = True

    count = defaultdict(int)
    for f in files.values():
        count[f.lib if not f.rel.startswith("include/") else "public headers"] += 1
    print("layering: %s" % ", ".join("%s %d files" % (k, count[k])
                                     for k in ("runtime", "engine", "model", "public headers") if count[k]))
    for rel in sorted(r for r in files if r.startswith("include/")):
        print("  %s belongs to %s" % (rel, files[rel].lib))
    g = library_graph(files, edges)
    print("library graph (includes, uses):")
    for (la, lb), (ni, nu) in sorted(g.items(), key=lambda kv: (-RANK[kv[0][0]], -RANK[kv[0][1]])):
        print("  %-7s -> %-7s %4d includes, %4d uses%s" % (la, lb, ni, nu,
                                                          "   <- WRONG WAY" if RANK[lb] > RANK[la] else ""))
    if args.graph:
        print("file graph:")
        for (a, b), reasons in sorted(edges.items()):
            line, why = best_reason(reasons)
            print("  %s -> %s  (%s:%d %s%s)" % (a, b, a, line, why,
                                               ", +%d more" % (len(reasons) - 1) if len(reasons) > 1 else ""))

    bad = check_libraries(files, edges)
    if bad:
        failed = True
        print("FAIL: %d includes or uses from a lower library of a higher one:" % len(bad))
        for b in bad:
            print("  " + b)
    else:
        print("ok: no include or use from a lower library of a higher one")

    if args.files:
        succ = defaultdict(set)
        for (a, b) in edges:
            succ[a].add(b)
        nodes = sorted(files)
        comps = sccs(nodes, succ)
        allowed = read_allow(args.allow) if args.allow else []
        used = set()
        new = 0
        for comp in comps:
            cyc = cycle_through(comp[0], comp, succ)
            steps = [cyc[0]]
            for a, b in zip(cyc, cyc[1:]):
                line, why = best_reason(edges[(a, b)])
                steps.append("%s (%s:%d %s)" % (b, a, line, why))
            match = [n for s, n in allowed if set(comp) <= s]
            tag = "allowed (%s:%d)" % (args.allow, match[0]) if match else "NEW"
            used.update(match)
            if not match:
                new += 1
            print("circle of %d files, %s: %s" % (len(comp), tag, " ".join(comp)))
            print("  e.g. " + "\n    -> ".join(steps))
        for s, n in allowed:
            if n not in used:
                print("note: %s:%d names a circle that is no longer there (%s): remove the line"
                      % (args.allow, n, " ".join(sorted(s))))
        if new:
            failed = True
            print("FAIL: %d circle%s among core/ files not in the allow-list" % (new, "s" if new > 1 else ""))
        elif comps:
            print("ok: no circle among core/ files beyond the %d allowed" % len(comps))
        else:
            print("ok: no circle among core/ files")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

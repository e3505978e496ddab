#!/usr/bin/env python3
"""Tests scripts/check_layering.py on small made-up trees: a clean one passes;
a runtime file calling the model, an engine file including a model header and
a circle of calls each fail with a message naming the place; the allow-list
lets a known circle pass but not a larger one.

usage: test_check_layering.py PATH/TO/check_layering.py"""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

CHECK = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "..", "scripts", "check_layering.py")
failures = 0


def tree(files):
    root = tempfile.mkdtemp(prefix="lp-layering-")
    atexit.register(shutil.rmtree, root, True)
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return root


def run(root, *args):
    p = subprocess.run([sys.executable, CHECK, "--root", root] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    return p.returncode, p.stdout


def expect(what, cond, out):
    global failures
    if not cond:
        failures += 1
        print("FAILED: %s\n--- output ---\n%s" % (what, out))
    else:
        print("ok: %s" % what)


BASE = {
    "include/lpsynth/plugin.h": "typedef struct lp_err { int code; } lp_err;\n",
    "include/lpsynth/runtime.h": '#include "lpsynth/plugin.h"\nint lp_err_set(lp_err *e, int c);\n',
    "include/lpsynth/engine.h": '#include "lpsynth/plugin.h"\nint lp_op(float *x);\n',
    "include/lpsynth/model.h": '#include "lpsynth/engine.h"\nint lp_model_new(void);\n',
    "core/err.c": '#include "lpsynth/runtime.h"\nint lp_err_set(lp_err *e, int c) {\n  return c;\n}\n',
    "core/engine/internal.h": "static inline int lp_twice(int x) { return 2 * x; }\n",
    "core/engine/ops.c": ('#include "internal.h"\n#include "lpsynth/engine.h"\n'
                          "/* lp_model_new( in a comment is no call */\n"
                          'int lp_op(float *x) {\n  const char *s = "lp_model_new(";\n'
                          "  (void)s;\n  return lp_twice((int)x[0]);\n}\n"),
    "core/model/model.c": ('#include "lpsynth/model.h"\n#include "lpsynth/runtime.h"\n'
                           "int lp_model_new(void) {\n  float x = 1;\n"
                           "  return lp_op(&x) + lp_err_set(0, 0);\n}\n"),
}

root = tree(BASE)
rc, out = run(root, "--files")
expect("a clean tree passes", rc == 0 and "ok: no circle" in out, out)
expect("public headers take their library", "include/lpsynth/model.h belongs to model" in out
       and "include/lpsynth/plugin.h belongs to abi" in out, out)

bad = dict(BASE)
bad["core/util.c"] = "int lp_model_new(void);\nint lp_util(void) {\n  return lp_model_new();\n}\n"
rc, out = run(tree(bad))
expect("the runtime calling the model fails", rc == 1 and
       "core/util.c:3: calls lp_model_new (defined in core/model/model.c): runtime -> model" in out, out)

bad = dict(BASE)
bad["core/engine/ops.c"] = '#include "lpsynth/model.h"\n' + BASE["core/engine/ops.c"]
rc, out = run(tree(bad))
expect("the engine including a model header fails", rc == 1 and
       'core/engine/ops.c:1: includes "lpsynth/model.h": engine -> model' in out, out)

circ = dict(BASE)
circ["core/model/a.c"] = "int lp_b(void);\nint lp_a(void) {\n  return lp_b();\n}\n"
circ["core/model/b.c"] = "int lp_a(void);\nint lp_b(void) {\n  return lp_a() + 1;\n}\n"
root = tree(circ)
rc, out = run(root)
expect("without --files a circle is not checked", rc == 0, out)
rc, out = run(root, "--files")
expect("a circle of calls fails and is printed", rc == 1 and
       "circle of 2 files, NEW: core/model/a.c core/model/b.c" in out and
       "core/model/a.c:3 calls lp_b" in out and "core/model/b.c:3 calls lp_a" in out, out)
allow = os.path.join(root, "allow.txt")
with open(allow, "w") as f:
    f.write("# known\ncore/model/b.c core/model/a.c\n")
rc, out = run(root, "--files", "--allow", allow)
expect("an allowed circle passes", rc == 0 and "allowed (" in out, out)
circ["core/model/c.c"] = "int lp_a(void);\nint lp_c(void) {\n  return lp_a();\n}\n"
circ["core/model/a.c"] = "int lp_b(void);\nint lp_c(void);\nint lp_a(void) {\n  return lp_b() + lp_c();\n}\n"
root2 = tree(circ)
rc, out = run(root2, "--files", "--allow", allow)
expect("a known circle that takes in another file fails", rc == 1 and "NEW" in out, out)
with open(allow, "w") as f:
    f.write("core/model/a.c core/model/b.c\ncore/model/x.c core/model/y.c\n")
rc, out = run(root, "--files", "--allow", allow)
expect("a stale allow-list line is noted, not failed", rc == 0 and "no longer there" in out, out)

print("check_layering tests: %d failed" % failures)
sys.exit(1 if failures else 0)

/* The python domain's text level, linked directly (py_core): anonymisation of
 * hand-written functions covering every construct, docstring decoding and
 * cleaning, pair extraction, the SentencePiece text mapping, UTF-8 checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/check.h"
#include "pyint.h"

/* ------------------------------------------------------------------------ */
/* Anonymisation                                                             */

typedef struct {
  const char *what, *in, *out;
  int status, n_args, n_vars; /* n_args/n_vars: -1 = not checked */
} anon_case;

static const anon_case anon_cases[] = {
    {"parameters: plain, default, typed, typed default, *args, keyword-only, **kwargs",
     "def f(a, b=1, c: int = 2, *args, d, e: str, **kw):\n    return a + b + c + d + e, args, kw\n",
     "def f(ARG_0, ARG_1=1, ARG_2: int = 2, *ARG_3, ARG_4, ARG_5: str, **ARG_6):\n"
     "    return ARG_0 + ARG_1 + ARG_2 + ARG_4 + ARG_5, ARG_3, ARG_6\n",
     PY_ANON_OK, 7, 0},
    {"positional-only and bare * separators take no index; typed *args/**kwargs",
     "def f(a, /, b, *, c, **kw: int):\n    return a, b, c, kw\n",
     "def f(ARG_0, /, ARG_1, *, ARG_2, **ARG_3: int):\n    return ARG_0, ARG_1, ARG_2, ARG_3\n",
     PY_ANON_OK, 4, 0},
    {"typed *args",
     "def f(*args: int):\n    return args\n",
     "def f(*ARG_0: int):\n    return ARG_0\n", PY_ANON_OK, 1, 0},
    {"defaults, annotations and decorators run outside the function: untouched",
     "@deco(a)\ndef f(a, b=a, c: a = None) -> a:\n    return a, b, c\n",
     "@deco(a)\ndef f(ARG_0, ARG_1=a, ARG_2: a = None) -> a:\n    return ARG_0, ARG_1, ARG_2\n",
     PY_ANON_OK, 3, 0},
    {"locals numbered by first appearance; assignment, augmented assignment, chains",
     "def f():\n    b = 1\n    a = b\n    a += 2\n    c = d = a\n    return a + b + c + d\n",
     "def f():\n    VAR_0 = 1\n    VAR_1 = VAR_0\n    VAR_1 += 2\n    VAR_2 = VAR_3 = VAR_1\n"
     "    return VAR_1 + VAR_0 + VAR_2 + VAR_3\n",
     PY_ANON_OK, 0, 4},
    {"a name augmented but never assigned is still local",
     "def f(x):\n    n += x\n    return n\n",
     "def f(ARG_0):\n    VAR_0 += ARG_0\n    return VAR_0\n", PY_ANON_OK, 1, 1},
    {"annotated assignment, with and without a value; annotation of a local",
     "def f():\n    x: int = 1\n    y: int\n    z: x = 2\n    return x\n",
     "def f():\n    VAR_0: int = 1\n    VAR_1: int\n    VAR_2: VAR_0 = 2\n    return VAR_0\n",
     PY_ANON_OK, 0, 3},
    {"tuple, list, parenthesised, nested and starred unpacking",
     "def f(p):\n    a, b = p\n    [c, d] = p\n    (e, (g, h)) = p\n    first, *rest = p\n"
     "    return a, b, c, d, e, g, h, first, rest\n",
     "def f(ARG_0):\n    VAR_0, VAR_1 = ARG_0\n    [VAR_2, VAR_3] = ARG_0\n"
     "    (VAR_4, (VAR_5, VAR_6)) = ARG_0\n    VAR_7, *VAR_8 = ARG_0\n"
     "    return VAR_0, VAR_1, VAR_2, VAR_3, VAR_4, VAR_5, VAR_6, VAR_7, VAR_8\n",
     PY_ANON_OK, 1, 9},
    {"attribute and subscript targets bind nothing; attributes never renamed",
     "def f(self, total):\n    self.total = total\n    self.items[0] = total\n"
     "    total.total = self.total\n    return self.total\n",
     "def f(ARG_0, ARG_1):\n    ARG_0.total = ARG_1\n    ARG_0.items[0] = ARG_1\n"
     "    ARG_1.total = ARG_0.total\n    return ARG_0.total\n",
     PY_ANON_OK, 2, 0},
    {"for targets (tuple), for-else, while",
     "def f(items):\n    for i, (k, v) in enumerate(items):\n        last = v\n    else:\n"
     "        last = None\n    while last:\n        last = last.next\n    return i, k, last\n",
     "def f(ARG_0):\n    for VAR_0, (VAR_1, VAR_2) in enumerate(ARG_0):\n        VAR_3 = VAR_2\n"
     "    else:\n        VAR_3 = None\n    while VAR_3:\n        VAR_3 = VAR_3.next\n"
     "    return VAR_0, VAR_1, VAR_3\n",
     PY_ANON_OK, 1, 4},
    {"with ... as: names, tuples, several items, no target",
     "def f(path):\n    with open(path) as fh, lock:\n        data = fh.read()\n"
     "    with ctx() as (a, b), other() as [c]:\n        pass\n    return data, a, b, c\n",
     "def f(ARG_0):\n    with open(ARG_0) as VAR_0, lock:\n        VAR_1 = VAR_0.read()\n"
     "    with ctx() as (VAR_2, VAR_3), other() as [VAR_4]:\n        pass\n"
     "    return VAR_1, VAR_2, VAR_3, VAR_4\n",
     PY_ANON_OK, 1, 5},
    {"with ... as an attribute binds nothing",
     "def f(self):\n    with g() as self.fh:\n        return self.fh\n",
     "def f(ARG_0):\n    with g() as ARG_0.fh:\n        return ARG_0.fh\n", PY_ANON_OK, 1, 0},
    {"except ... as; exception classes are globals",
     "def f():\n    try:\n        x = 1\n    except (KeyError, MyError) as err:\n        raise Wrap(err)\n"
     "    except Exception as e:\n        return e\n    finally:\n        x = 0\n    return x\n",
     "def f():\n    try:\n        VAR_0 = 1\n    except (KeyError, MyError) as VAR_1:\n"
     "        raise Wrap(VAR_1)\n    except Exception as VAR_2:\n        return VAR_2\n"
     "    finally:\n        VAR_0 = 0\n    return VAR_0\n",
     PY_ANON_OK, 0, 3},
    {"walrus, also inside a comprehension (binds in the function)",
     "def f(xs):\n    if (n := len(xs)) > 1:\n        pass\n"
     "    ys = [y for x in xs if (y := x * 2)]\n    return n, y, ys\n",
     "def f(ARG_0):\n    if (VAR_0 := len(ARG_0)) > 1:\n        pass\n"
     "    VAR_1 = [VAR_2 for VAR_3 in ARG_0 if (VAR_2 := VAR_3 * 2)]\n"
     "    return VAR_0, VAR_2, VAR_1\n",
     PY_ANON_OK, 1, 4},
    {"comprehensions: list, set, dict, generator, nested; first iterable reads the function",
     "def f(rows):\n    a = [x for x in rows]\n    b = {x for row in rows for x in row if x}\n"
     "    c = {k: v for k, v in rows}\n    d = sum(x * x for x in rows)\n"
     "    e = [[y for y in x] for x in rows]\n    return a, b, c, d, e\n",
     "def f(ARG_0):\n    VAR_0 = [VAR_1 for VAR_1 in ARG_0]\n"
     "    VAR_2 = {VAR_1 for VAR_3 in ARG_0 for VAR_1 in VAR_3 if VAR_1}\n"
     "    VAR_4 = {VAR_5: VAR_6 for VAR_5, VAR_6 in ARG_0}\n"
     "    VAR_7 = sum(VAR_1 * VAR_1 for VAR_1 in ARG_0)\n"
     "    VAR_8 = [[VAR_9 for VAR_9 in VAR_1] for VAR_1 in ARG_0]\n"
     "    return VAR_0, VAR_2, VAR_4, VAR_7, VAR_8\n",
     PY_ANON_OK, 1, 10},
    {"a comprehension variable that is a global elsewhere: only the comprehension's is renamed",
     "def f():\n    a = [item for item in range(3)]\n    return item, a\n",
     "def f():\n    VAR_0 = [VAR_1 for VAR_1 in range(3)]\n    return item, VAR_0\n",
     PY_ANON_OK, 0, 2},
    {"lambda parameters are renamed as locals; lambda defaults read the function",
     "def f(k):\n    key = lambda item, d=k: item[d]\n    return sorted(k, key=key)\n",
     "def f(ARG_0):\n    VAR_0 = lambda VAR_1, VAR_2=ARG_0: VAR_1[VAR_2]\n"
     "    return sorted(ARG_0, key=VAR_0)\n",
     PY_ANON_OK, 1, 3},
    {"nested def: its name, parameters and locals are locals of the outer function",
     "def outer(a):\n    def inner(b, c=a):\n        t = b + c\n        return t\n    return inner(a)\n",
     "def outer(ARG_0):\n    def VAR_0(VAR_1, VAR_2=ARG_0):\n        VAR_3 = VAR_1 + VAR_2\n"
     "        return VAR_3\n    return VAR_0(ARG_0)\n",
     PY_ANON_OK, 1, 4},
    {"a local of a nested function only: outer reads of that name are globals",
     "def f():\n    def g():\n        x = 1\n        return x\n    return x, g\n",
     "def f():\n    def VAR_0():\n        VAR_1 = 1\n        return VAR_1\n    return x, VAR_0\n",
     PY_ANON_OK, 0, 2},
    {"nonlocal- and global-declared names are never renamed, anywhere",
     "def f():\n    count = 0\n    def inc():\n        nonlocal count\n        count += 1\n"
     "    global total\n    total = count\n    return inc\n",
     "def f():\n    count = 0\n    def VAR_0():\n        nonlocal count\n        count += 1\n"
     "    global total\n    total = count\n    return VAR_0\n",
     PY_ANON_OK, 0, 1},
    {"keyword names in calls are never renamed; their values are",
     "def f(key, value):\n    d = dict(key=key, value=value)\n    return g(d, value=d)\n",
     "def f(ARG_0, ARG_1):\n    VAR_0 = dict(key=ARG_0, value=ARG_1)\n    return g(VAR_0, value=VAR_0)\n",
     PY_ANON_OK, 2, 1},
    {"imported names are never renamed",
     "def f(p):\n    import os.path\n    import json as js\n    from re import sub, compile as rc\n"
     "    return os.path.join(p, js.dumps(sub(rc('a'), '', p)))\n",
     "def f(ARG_0):\n    import os.path\n    import json as js\n    from re import sub, compile as rc\n"
     "    return os.path.join(ARG_0, js.dumps(sub(rc('a'), '', ARG_0)))\n",
     PY_ANON_OK, 1, 0},
    {"builtins are never renamed (even bound locally), but parameters always are",
     "def f(type, items):\n    list = [len(items), type]\n    n = max(list)\n    return n\n",
     "def f(ARG_0, ARG_1):\n    list = [len(ARG_1), ARG_0]\n    VAR_0 = max(list)\n    return VAR_0\n",
     PY_ANON_OK, 2, 1},
    {"names only read (globals, free names) stay",
     "def f(x):\n    return CONSTANT * helper(x) + math.pi\n",
     "def f(ARG_0):\n    return CONSTANT * helper(ARG_0) + math.pi\n", PY_ANON_OK, 1, 0},
    {"nothing to rename",
     "def f():\n    return CONSTANT\n", "def f():\n    return CONSTANT\n", PY_ANON_OK, 0, 0},
    {"recursion: the function's own name is not local",
     "def fact(n):\n    return 1 if n < 2 else n * fact(n - 1)\n",
     "def fact(ARG_0):\n    return 1 if ARG_0 < 2 else ARG_0 * fact(ARG_0 - 1)\n",
     PY_ANON_OK, 1, 0},
    {"class inside: its name is local, its body's names are attributes, methods are scopes",
     "def f(base):\n    class K(base):\n        size = 3\n        def m(self, v):\n"
     "            w = v * self.size\n            return w\n    return K\n",
     "def f(ARG_0):\n    class VAR_0(ARG_0):\n        size = 3\n        def m(VAR_1, VAR_2):\n"
     "            VAR_3 = VAR_2 * VAR_1.size\n            return VAR_3\n    return VAR_0\n",
     PY_ANON_OK, 1, 4},
    {"f-string interpolations are code",
     "def f(name, width):\n    label = f\"{name!r:>{width}} {name.upper()}\"\n    return label\n",
     "def f(ARG_0, ARG_1):\n    VAR_0 = f\"{ARG_0!r:>{ARG_1}} {ARG_0.upper()}\"\n    return VAR_0\n",
     PY_ANON_OK, 2, 1},
    {"match statement: captures bind, class names and dotted values are reads",
     "def f(cmd):\n    match cmd:\n        case Point(x=px, y=0) as pt:\n            return px, pt\n"
     "        case [first, *rest]:\n            return first, rest\n"
     "        case {\"k\": val, **others}:\n            return val, others\n"
     "        case Color.RED | None:\n            return cmd\n",
     "def f(ARG_0):\n    match ARG_0:\n        case Point(x=VAR_0, y=0) as VAR_1:\n"
     "            return VAR_0, VAR_1\n        case [VAR_2, *VAR_3]:\n            return VAR_2, VAR_3\n"
     "        case {\"k\": VAR_4, **VAR_5}:\n            return VAR_4, VAR_5\n"
     "        case Color.RED | None:\n            return ARG_0\n",
     PY_ANON_OK, 1, 6},
    {"async def, await, async for, async with",
     "async def f(url):\n    async with session() as s:\n        async for chunk in s.get(url):\n"
     "            data = await chunk\n    return data\n",
     "async def f(ARG_0):\n    async with session() as VAR_0:\n"
     "        async for VAR_1 in VAR_0.get(ARG_0):\n            VAR_2 = await VAR_1\n"
     "    return VAR_2\n",
     PY_ANON_OK, 1, 3},
    {"del of a local",
     "def f(d):\n    tmp = d.copy()\n    del tmp['a'], tmp\n    return d\n",
     "def f(ARG_0):\n    VAR_0 = ARG_0.copy()\n    del VAR_0['a'], VAR_0\n    return ARG_0\n",
     PY_ANON_OK, 1, 1},
    {"decorated method with docstring-free body and strings untouched",
     "@staticmethod\ndef f(a):\n    s = 'a b'\n    return s, \"a\"\n",
     "@staticmethod\ndef f(ARG_0):\n    VAR_0 = 'a b'\n    return VAR_0, \"a\"\n",
     PY_ANON_OK, 1, 1},
    {"more than 16 parameters: ARG_16 is plain text", 
     "def f(a0,a1,a2,a3,a4,a5,a6,a7,a8,a9,b0,b1,b2,b3,b4,b5,b6):\n    return b6\n",
     "def f(ARG_0,ARG_1,ARG_2,ARG_3,ARG_4,ARG_5,ARG_6,ARG_7,ARG_8,ARG_9,ARG_10,ARG_11,ARG_12,"
     "ARG_13,ARG_14,ARG_15,ARG_16):\n    return ARG_16\n",
     PY_ANON_OK, 17, 0},
    {"does not parse: kept as is",
     "def f(a:\n    return a\n", "def f(a:\n    return a\n", PY_ANON_UNPARSABLE, -1, -1},
    {"not one function: kept as is",
     "x = 1\ndef f(a):\n    return a\n", "x = 1\ndef f(a):\n    return a\n",
     PY_ANON_NOT_FUNCTION, -1, -1},
    {"a class: kept as is", "class A:\n    x = 1\n", "class A:\n    x = 1\n",
     PY_ANON_NOT_FUNCTION, -1, -1},
    {"already anonymised: kept as is (so anonymising is idempotent)",
     "def f(ARG_0):\n    VAR_0 = ARG_0\n    return VAR_0\n",
     "def f(ARG_0):\n    VAR_0 = ARG_0\n    return VAR_0\n", PY_ANON_CONFLICT, -1, -1},
    {"empty text", "", "", PY_ANON_NOT_FUNCTION, -1, -1},
};

static void test_anonymise(void) {
  for (size_t i = 0; i < sizeof anon_cases / sizeof *anon_cases; i++) {
    const anon_case *c = &anon_cases[i];
    py_buf out = {0};
    py_anon_info info;
    int rc = py_anonymise(c->in, strlen(c->in), &out, &info);
    const char *got = out.data ? out.data : "";
    CHECK(rc == PY_OK, "%s: rc %d", c->what, rc);
    CHECK(strcmp(got, c->out) == 0, "%s:\n--- input\n%s--- want\n%s--- got\n%s", c->what, c->in,
          c->out, got);
    CHECK(info.status == c->status, "%s: status %d, want %d", c->what, info.status, c->status);
    if (c->n_args >= 0)
      CHECK(info.n_args == c->n_args && info.n_vars == c->n_vars, "%s: %d args %d vars, want %d %d",
            c->what, info.n_args, info.n_vars, c->n_args, c->n_vars);
    /* anonymising the output again changes nothing */
    if (c->status == PY_ANON_OK && info.n_renamed > 0) {
      py_buf again = {0};
      py_anon_info i2;
      py_anonymise(out.data, out.len, &again, &i2);
      CHECK(i2.status == PY_ANON_CONFLICT && again.len == out.len &&
                memcmp(again.data, out.data, out.len) == 0,
            "%s: second pass status %d", c->what, i2.status);
      py_buf_free(&again);
    }
    py_buf_free(&out);
  }
  /* a very deep expression is refused, not a stack overflow */
  py_buf deep = {0}, out = {0};
  py_buf_put(&deep, "def f(a):\n    return ", 21);
  for (int i = 0; i < 5000; i++) py_buf_put(&deep, "(", 1);
  py_buf_put(&deep, "a", 1);
  for (int i = 0; i < 5000; i++) py_buf_put(&deep, ")", 1);
  py_buf_put(&deep, "\n", 1);
  py_anon_info info;
  CHECK(py_anonymise(deep.data, deep.len, &out, &info) == PY_OK &&
            (info.status == PY_ANON_TOO_DEEP || info.status == PY_ANON_UNPARSABLE) &&
            out.len == deep.len,
        "deep expression: status %d", info.status);
  py_buf_free(&deep);
  py_buf_free(&out);
}

/* ------------------------------------------------------------------------ */
/* Docstrings and extraction                                                 */

static void test_string_value(void) {
  struct {
    const char *lit, *want;
    int rc;
  } c[] = {
      {"'abc'", "abc", PY_OK},
      {"\"a\\tb\\n\\\\ \\x41\\u00e9\\U0001F40D \\101 \\N{DASH} \\q\"",
       "a\tb\n\\ A\xc3\xa9\xf0\x9f\x90\x8d A \\N{DASH} \\q", PY_OK},
      {"r'a\\tb'", "a\\tb", PY_OK},
      {"'nul: \\0 \\x00 \\u0000 \\000 end'", "nul: \\0 \\x00 \\u0000 \\000 end", PY_OK},
      {"u'''x\n  y'''", "x\n  y", PY_OK},
      {"'a\\\nb'", "ab", PY_OK},
      {"b'bytes'", "", PY_EPARSE},
      {"f'{x}'", "", PY_EPARSE},
      {"Rb'x'", "", PY_EPARSE},
  };
  for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
    py_buf out = {0};
    int rc = py_string_value(c[i].lit, strlen(c[i].lit), &out);
    CHECK(rc == c[i].rc, "literal %s: rc %d", c[i].lit, rc);
    if (rc == PY_OK)
      CHECK(out.data && strcmp(out.data, c[i].want) == 0, "literal %s: got [%s]", c[i].lit,
            out.data ? out.data : "(null)");
    py_buf_free(&out);
  }
  py_buf out = {0};
  const char *doc = "\n    Summary line.  \n\n    Details:\n\t  indented\n    \n";
  CHECK(py_clean_docstring(doc, strlen(doc), &out) == PY_OK && out.data &&
            strcmp(out.data, "Summary line.\nDetails:\nindented") == 0,
        "cleaned docstring [%s]", out.data ? out.data : "(null)");
  py_buf_free(&out);
}

typedef struct {
  char names[32][64];
  char docs[32][256];
  char codes[32][512];
  size_t lines[32];
  int n;
  int n_long; /* functions skipped as too long (told with too_long set) */
  size_t long_line, long_by;
  char long_name[64];
} pairs;

static int collect(void *ctx, const py_pair *p) {
  pairs *ps = ctx;
  if (p->too_long) {
    CHECK(!p->doc && !p->code, "a skipped function comes without doc or code");
    ps->n_long++;
    ps->long_line = p->line;
    ps->long_by = p->too_long;
    snprintf(ps->long_name, 64, "%.*s", (int)p->name_len, p->name);
    return 0;
  }
  if (ps->n >= 32) return 0;
  snprintf(ps->names[ps->n], 64, "%.*s", (int)p->name_len, p->name);
  snprintf(ps->docs[ps->n], 256, "%.*s", (int)p->doc_len, p->doc);
  snprintf(ps->codes[ps->n], 512, "%.*s", (int)p->code_len, p->code);
  ps->lines[ps->n] = p->line;
  ps->n++;
  return 0;
}

static int stop_at_second(void *ctx, const py_pair *p) {
  (void)p;
  return ++*(int *)ctx == 2 ? 42 : 0;
}

static void test_extract(void) {
  static const char src[] =
      "\"\"\"Module docstring.\"\"\"\n"
      "import os\n"
      "\n"
      "def top(a, b=1):  # trailing comment\n"
      "    \"\"\"Add things.\n"
      "\n"
      "    More.\n"
      "    \"\"\"\n"
      "    # a comment line\n"
      "\n"
      "    s = '''keep   \n"
      "\n"
      "  this'''   \n"
      "    return a + b  # done\n"
      "\n"
      "class K:\n"
      "    '''Class doc (not a pair).'''\n"
      "    @property\n"
      "    def p(self):\n"
      "        'Property.'\n"
      "        return 1\n"
      "    def only_doc(self):\n"
      "        \"\"\"Nothing else.\"\"\"\n"
      "    def f_string(self):\n"
      "        f\"\"\"not a docstring\"\"\"\n"
      "        return 2\n"
      "    class Inner:\n"
      "        def m(self): 'Inline.'; return 3\n"
      "\n"
      "if os.name == 'nt':\n"
      "    def win():\n"
      "        \"\"\"Windows.\"\"\"\n"
      "        def nested():\n"
      "            \"\"\"Nested functions are part of their parent.\"\"\"\n"
      "            return 4\n"
      "        return nested\n"
      "else:\n"
      "    def win():\n"
      "        'Other.'\n"
      "        return 5\n";
  pairs ps;
  memset(&ps, 0, sizeof ps);
  py_extract_info info;
  int rc = py_extract(src, sizeof src - 1, collect, &ps, &info);
  CHECK(rc == PY_OK, "extract rc %d (%s)", rc, info.err_what);
  CHECK(ps.n == 5, "%d pairs", ps.n);
  if (ps.n == 5) {
    CHECK(strcmp(ps.names[0], "top") == 0 && ps.lines[0] == 4, "pair 0: %s line %zu", ps.names[0],
          ps.lines[0]);
    CHECK(strcmp(ps.docs[0], "Add things.\nMore.") == 0, "doc 0 [%s]", ps.docs[0]);
    CHECK(strcmp(ps.codes[0],
                 "def top(a, b=1):\n    s = '''keep   \n\n  this'''\n    return a + b\n") == 0,
          "code 0 [%s]", ps.codes[0]);
    CHECK(strcmp(ps.names[1], "K.p") == 0 && ps.lines[1] == 18, "pair 1: %s line %zu",
          ps.names[1], ps.lines[1]);
    CHECK(strcmp(ps.codes[1], "@property\ndef p(self):\n    return 1\n") == 0, "code 1 [%s]",
          ps.codes[1]);
    CHECK(strcmp(ps.names[2], "K.Inner.m") == 0 &&
              strcmp(ps.codes[2], "def m(self): return 3\n") == 0 &&
              strcmp(ps.docs[2], "Inline.") == 0,
          "pair 2: %s [%s]", ps.names[2], ps.codes[2]);
    CHECK(strcmp(ps.names[3], "win") == 0 && strcmp(ps.docs[3], "Windows.") == 0 &&
              strcmp(ps.codes[3],
                     "def win():\n    def nested():\n        \"\"\"Nested functions are part of "
                     "their parent.\"\"\"\n        return 4\n    return nested\n") == 0,
          "pair 3: %s [%s]", ps.names[3], ps.codes[3]);
    CHECK(strcmp(ps.names[4], "win") == 0 && strcmp(ps.codes[4], "def win():\n    return 5\n") == 0,
          "pair 4: %s [%s]", ps.names[4], ps.codes[4]);
  }
  CHECK(info.functions == 7 && info.with_docstring == 6 && info.only_docstring == 1 &&
            info.emitted == 5 && info.broken == 0,
        "info: %zu functions, %zu with docstring, %zu only docstring, %zu emitted, %zu broken",
        info.functions, info.with_docstring, info.only_docstring, info.emitted, info.broken);

  /* the callback stops the walk with its own value */
  int seen = 0;
  CHECK(py_extract(src, sizeof src - 1, stop_at_second, &seen, NULL) == 42 && seen == 2,
        "stop: seen %d", seen);

  /* CRLF line ends and tab indentation */
  static const char crlf[] = "class A:\r\n\tdef f(self):\r\n\t\t\"\"\"Doc.\"\"\"\r\n\t\treturn 1\r\n";
  memset(&ps, 0, sizeof ps);
  CHECK(py_extract(crlf, sizeof crlf - 1, collect, &ps, NULL) == PY_OK && ps.n == 1 &&
            strcmp(ps.codes[0], "def f(self):\n\treturn 1\n") == 0,
        "crlf: %d pairs [%s]", ps.n, ps.codes[0]);

  /* files that do not parse, or are Python 2 */
  struct {
    const char *src, *what;
    size_t line;
  } bad[] = {
      {"def f(:\n    '''x'''\n    return 1\n", "syntax error", 1},
      {"x = 1\n\ndef f():\n    '''d'''\n    print 'hello'\n", "Python 2 print statement", 5},
      {"def f():\n    '''d'''\n    exec 'x = 1'\n", "Python 2 exec statement", 3},
      {"def f():\n    '''d'''\n    try:\n        pass\n    except E, e:\n        pass\n",
       "Python 2 \"except E, name\"", 5},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    memset(&ps, 0, sizeof ps);
    rc = py_extract(bad[i].src, strlen(bad[i].src), collect, &ps, &info);
    CHECK(rc == PY_EPARSE && ps.n == 0 && strstr(info.err_what, bad[i].what) &&
              info.err_line == bad[i].line,
          "bad source %zu: rc %d, %d pairs, line %zu: %s", i, rc, ps.n, info.err_line,
          info.err_what);
  }

  /* an unterminated docstring: the file is refused, and the message says
   * what and where (the opening quotes), whatever follows it */
  struct {
    const char *src;
    size_t line, col;
  } open_doc[] = {
      {"def g(y):\n    \"\"\"Doc of g.\"\"\"\n    return y\n\ndef f(x):\n    \"\"\"Open\n    return x\n",
       6, 5},
      {"def f(x):\n    '''Open", 2, 5},
      {"class K:\n    def f(self):\n        \"Open\n        return 1\n", 3, 9},
      {"def f(x):\n    \"\"\"abc'''\n    return x\n", 2, 5},
  };
  for (size_t i = 0; i < sizeof open_doc / sizeof *open_doc; i++) {
    memset(&ps, 0, sizeof ps);
    rc = py_extract(open_doc[i].src, strlen(open_doc[i].src), collect, &ps, &info);
    CHECK(rc == PY_EPARSE && ps.n == 0 && strstr(info.err_what, "unterminated string literal") &&
              info.err_line == open_doc[i].line && info.err_col == open_doc[i].col,
          "unterminated docstring %zu: rc %d, %d pairs, %zu:%zu: %s", i, rc, ps.n, info.err_line,
          info.err_col, info.err_what);
  }

  /* a function longer than PY_MAX_FUNC_LINES is skipped (and told), the
   * others are extracted */
  py_buf big = {0};
  const char *head = "def small(a):\n    'Small.'\n    return a\n\n"
                     "class C:\n    def big(self):\n        '''Big.'''\n";
  const char *tail = "        return self\n\ndef after(b):\n    'After.'\n    return b\n";
  py_buf_put(&big, head, strlen(head));
  for (int i = 0; i < PY_MAX_FUNC_LINES; i++) {
    char line[64];
    int k = snprintf(line, sizeof line, "        x%d = %d\n", i, i);
    py_buf_put(&big, line, (size_t)k);
  }
  py_buf_put(&big, tail, strlen(tail));
  memset(&ps, 0, sizeof ps);
  rc = py_extract(big.data, big.len, collect, &ps, &info);
  CHECK(rc == PY_OK && ps.n == 2 && ps.n_long == 1 && info.too_long == 1 && info.emitted == 2 &&
            !strcmp(ps.long_name, "C.big") && ps.long_line == 6 &&
            ps.long_by == PY_MAX_FUNC_LINES + 3,
        "long function: rc %d, %d pairs, %d skipped (%s, line %zu, %zu lines), info %zu/%zu", rc,
        ps.n, ps.n_long, ps.long_name, ps.long_line, ps.long_by, info.too_long, info.emitted);
  CHECK(ps.n == 2 && !strcmp(ps.names[0], "small") && !strcmp(ps.names[1], "after"),
        "the pairs around the long function");
  py_buf_free(&big);
}

/* ------------------------------------------------------------------------ */
/* Text mapping and UTF-8                                                    */

static void test_mapping(void) {
  static const char *texts[] = {
      "",
      "def f(a):\n\treturn a\n",
      "\xe2\x96\x81 literal space marker, " PY_NL " " PY_TAB " " PY_ESC " and " PY_ESC "a",
      "\xee\x80\x83 other private-use " "\xee\x80" /* truncated sequence at the end */,
      "ends with escape " PY_ESC,
  };
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    size_t n = strlen(texts[i]);
    py_buf m = {0}, back = {0};
    CHECK(py_map_text(texts[i], n, &m) == PY_OK, "map %zu", i);
    CHECK(!m.data || (!memchr(m.data, '\n', m.len) && !memchr(m.data, '\t', m.len)),
          "mapped text %zu still has a newline or tab", i);
    CHECK(!m.data || !strstr(m.data, "\xe2\x96\x81"), "mapped text %zu has U+2581", i);
    CHECK(py_unmap_text(m.data ? m.data : "", m.len, &back) == PY_OK && back.len == n &&
              (n == 0 || memcmp(back.data, texts[i], n) == 0),
          "round trip %zu: [%s]", i, back.data ? back.data : "");
    py_buf_free(&m);
    py_buf_free(&back);
  }
  py_buf m = {0};
  py_map_text("a\nb\tc", 5, &m);
  CHECK(m.len == 9 && memcmp(m.data, "a" PY_NL "b" PY_TAB "c", 9) == 0, "map of a\\nb\\tc");
  py_buf_free(&m);
  size_t bad = 0;
  CHECK(py_utf8_valid("h\xc3\xa9llo \xf0\x9f\x90\x8d", 11, &bad), "valid UTF-8");
  CHECK(!py_utf8_valid("ab\xc0\xaf", 4, &bad) && bad == 2, "overlong at %zu", bad);
  CHECK(!py_utf8_valid("\xed\xa0\x80", 3, &bad) && bad == 0, "surrogate");
  CHECK(!py_utf8_valid("abc\xe2\x82", 5, &bad) && bad == 3, "truncated at %zu", bad);
  CHECK(!py_utf8_valid("\xf4\x90\x80\x80", 4, &bad), "above U+10FFFF");
}

int main(void) {
  test_anonymise();
  test_string_value();
  test_extract();
  test_mapping();
  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}

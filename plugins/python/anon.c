/* Anonymisation of one Python function with tree-sitter: the i-th parameter
 * becomes ARG_i, every other local name VAR_j (j in order of first
 * appearance). The rules (plugins/python/README.md, "Anonymisation"):
 *
 *   - Scopes are resolved as Python does: the function, nested functions,
 *     lambdas and comprehensions are scopes whose bound names are renamed;
 *     class bodies are scopes whose names are attributes and are never
 *     renamed (nor visible from their methods). An identifier occurrence is
 *     renamed when it resolves to a binding inside the function; a name read
 *     but never bound inside (a global, a builtin, a free name) stays.
 *   - Bindings: parameters (plain, default, typed, *args, **kwargs, of the
 *     function, of nested functions and of lambdas), assignment and
 *     annotated-assignment targets, augmented assignment, tuple/list/star
 *     unpacking, for targets, with ... as, except ... as, walrus (in the
 *     nearest non-comprehension scope), comprehension variables, names of
 *     nested functions and classes, match-case captures.
 *   - One name, one placeholder: a name renamed anywhere in the function gets
 *     the same ARG_i/VAR_j wherever it resolves inside the function.
 *   - Never renamed: attributes (x.attr), keyword names in calls (f(key=1)),
 *     keyword patterns, imported names (import x, from m import y as z),
 *     names declared global or nonlocal anywhere in the function, names of
 *     builtins (except the function's own parameters), and everything in the
 *     function's decorators, default values and annotations of its own
 *     parameters (they run outside the function).
 *   - Kept as is: text that does not parse, that is not exactly one
 *     (decorated) function definition, that already uses a name of the form
 *     ARG_<digits> or VAR_<digits>, or that nests too deeply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tree_sitter/api.h>

#include "pyint.h"

#define MAX_DEPTH 1000

static const char *const builtin_names[] = {
    "ArithmeticError", "AssertionError", "AttributeError", "BaseException",
    "BaseExceptionGroup", "BlockingIOError", "BrokenPipeError", "BufferError", "BytesWarning",
    "ChildProcessError", "ConnectionAbortedError", "ConnectionError", "ConnectionRefusedError",
    "ConnectionResetError", "DeprecationWarning", "EOFError", "Ellipsis", "EncodingWarning",
    "EnvironmentError", "Exception", "ExceptionGroup", "False", "FileExistsError",
    "FileNotFoundError", "FloatingPointError", "FutureWarning", "GeneratorExit", "IOError",
    "ImportError", "ImportWarning", "IndentationError", "IndexError", "InterruptedError",
    "IsADirectoryError", "KeyError", "KeyboardInterrupt", "LookupError", "MemoryError",
    "ModuleNotFoundError", "NameError", "None", "NotADirectoryError", "NotImplemented",
    "NotImplementedError", "OSError", "OverflowError", "PendingDeprecationWarning",
    "PermissionError", "ProcessLookupError", "RecursionError", "ReferenceError",
    "ResourceWarning", "RuntimeError", "RuntimeWarning", "StopAsyncIteration", "StopIteration",
    "SyntaxError", "SyntaxWarning", "SystemError", "SystemExit", "TabError", "TimeoutError",
    "True", "TypeError", "UnboundLocalError", "UnicodeDecodeError", "UnicodeEncodeError",
    "UnicodeError", "UnicodeTranslateError", "UnicodeWarning", "UserWarning", "ValueError",
    "Warning", "ZeroDivisionError", "__build_class__", "__debug__", "__import__", "abs", "aiter",
    "all", "anext", "any", "ascii", "bin", "bool", "breakpoint", "bytearray", "bytes", "callable",
    "chr", "classmethod", "compile", "complex", "copyright", "credits", "delattr", "dict", "dir",
    "divmod", "enumerate", "eval", "exec", "exit", "filter", "float", "format", "frozenset",
    "getattr", "globals", "hasattr", "hash", "help", "hex", "id", "input", "int", "isinstance",
    "issubclass", "iter", "len", "license", "list", "locals", "map", "max", "memoryview", "min",
    "next", "object", "oct", "open", "ord", "pow", "print", "property", "quit", "range", "repr",
    "reversed", "round", "set", "setattr", "slice", "sorted", "staticmethod", "str", "sum",
    "super", "tuple", "type", "vars", "zip",
};

static int is_builtin(const char *s, size_t n) {
  size_t lo = 0, hi = sizeof builtin_names / sizeof *builtin_names;
  while (lo < hi) { /* the list is sorted (strcmp order) */
    size_t mid = (lo + hi) / 2;
    int c = strncmp(builtin_names[mid], s, n);
    if (c == 0) c = builtin_names[mid][n] ? 1 : 0;
    if (c == 0) return 1;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return 0;
}

enum { SC_FUNC, SC_LAMBDA, SC_COMP, SC_CLASS };
enum { N_IMPORTED = 1, N_DECLARED = 2, N_BUILTIN = 4 };
enum { R_READ, R_BIND };

typedef struct {
  int kind, parent;
} scope;
typedef struct {
  const char *s;
  size_t len;
  int flags;
  int arg;   /* parameter index of the function, or -1 */
  int var;   /* VAR index once numbered, or -1 */
} name;
typedef struct {
  size_t start, end;
  int name, scope;
} occ;
typedef struct {
  int scope, name;
} binding;

typedef struct anon {
  const char *src;
  scope *sc;
  size_t nsc, capsc;
  name *nm;
  size_t nnm, capnm;
  occ *oc;
  size_t noc, capoc;
  binding *bd;
  size_t nbd, capbd;
  int n_params, oom, deep;
} anon;

#define GROW(a, arr, n, cap)                                              \
  do {                                                                    \
    if ((a)->n == (a)->cap) {                                             \
      size_t nc_ = (a)->cap ? (a)->cap * 2 : 16;                          \
      void *p_ = realloc((a)->arr, nc_ * sizeof *(a)->arr);               \
      if (!p_) {                                                          \
        (a)->oom = 1;                                                     \
        return -1;                                                        \
      }                                                                   \
      (a)->arr = p_;                                                      \
      (a)->cap = nc_;                                                     \
    }                                                                     \
  } while (0)

static const char *type_of(TSNode n) { return ts_node_type(n); }
static int is(TSNode n, const char *t) { return strcmp(ts_node_type(n), t) == 0; }
static TSNode field(TSNode n, const char *f) {
  return ts_node_child_by_field_name(n, f, (uint32_t)strlen(f));
}

static int new_scope(anon *a, int kind, int parent) {
  GROW(a, sc, nsc, capsc);
  a->sc[a->nsc].kind = kind;
  a->sc[a->nsc].parent = parent;
  return (int)a->nsc++;
}

static int intern(anon *a, TSNode id) {
  const char *s = a->src + ts_node_start_byte(id);
  size_t len = ts_node_end_byte(id) - ts_node_start_byte(id);
  for (size_t i = 0; i < a->nnm; i++)
    if (a->nm[i].len == len && memcmp(a->nm[i].s, s, len) == 0) return (int)i;
  GROW(a, nm, nnm, capnm);
  name *x = &a->nm[a->nnm];
  x->s = s;
  x->len = len;
  x->flags = is_builtin(s, len) ? N_BUILTIN : 0;
  x->arg = -1;
  x->var = -1;
  return (int)a->nnm++;
}

static int is_bound(const anon *a, int scope_, int nm) {
  for (size_t i = 0; i < a->nbd; i++)
    if (a->bd[i].scope == scope_ && a->bd[i].name == nm) return 1;
  return 0;
}

static int bind(anon *a, int scope_, int nm) {
  if (is_bound(a, scope_, nm)) return 0;
  GROW(a, bd, nbd, capbd);
  a->bd[a->nbd].scope = scope_;
  a->bd[a->nbd].name = nm;
  a->nbd++;
  return 0;
}

/* Records an identifier occurrence in scope s; a binding one also binds. */
static int record(anon *a, TSNode id, int s, int role) {
  if (s < 0 || !is(id, "identifier")) return 0;
  int nm = intern(a, id);
  if (nm < 0) return -1;
  if (role == R_BIND && bind(a, s, nm)) return -1;
  GROW(a, oc, noc, capoc);
  occ *o = &a->oc[a->noc++];
  o->start = ts_node_start_byte(id);
  o->end = ts_node_end_byte(id);
  o->name = nm;
  o->scope = s;
  return 0;
}

static int flag_name(anon *a, TSNode id, int flag) {
  if (!is(id, "identifier")) return 0;
  int nm = intern(a, id);
  if (nm < 0) return -1;
  a->nm[nm].flags |= flag;
  return 0;
}

static void walk(anon *a, TSNode n, int s, int depth);
static void target(anon *a, TSNode n, int s, int depth);

#define DEPTH_CHECK(a, depth)        \
  do {                               \
    if ((depth) > MAX_DEPTH) {       \
      (a)->deep = 1;                 \
      return;                        \
    }                                \
    if ((a)->oom || (a)->deep) return; \
  } while (0)

static void walk_named_children(anon *a, TSNode n, int s, int depth) {
  uint32_t k = ts_node_named_child_count(n);
  for (uint32_t i = 0; i < k; i++) walk(a, ts_node_named_child(n, i), s, depth + 1);
}

/* The named children of n: those in the field `bind` are binding targets,
 * the others are walked (for_statement "left", as_pattern and except_clause
 * "alias"). */
static void walk_binding_field(anon *a, TSNode n, int s, int depth, const char *bind) {
  TSTreeCursor cur = ts_tree_cursor_new(n);
  if (ts_tree_cursor_goto_first_child(&cur)) do {
      TSNode x = ts_tree_cursor_current_node(&cur);
      const char *f = ts_tree_cursor_current_field_name(&cur);
      if (!ts_node_is_named(x)) continue;
      if (f && strcmp(f, bind) == 0) target(a, x, s, depth + 1);
      else walk(a, x, s, depth + 1);
    } while (ts_tree_cursor_goto_next_sibling(&cur));
  ts_tree_cursor_delete(&cur);
}

/* The identifier a parameter node introduces (NULL node if none). */
static void param(anon *a, TSNode p, int f, int outer, int depth) {
  DEPTH_CHECK(a, depth);
  if (is(p, "identifier")) {
    if (record(a, p, f, R_BIND)) return;
    if (outer) {
      int nm = a->oc[a->noc - 1].name;
      if (a->nm[nm].arg < 0) a->nm[nm].arg = a->n_params;
      a->n_params++;
    }
    return;
  }
  if (is(p, "list_splat_pattern") || is(p, "dictionary_splat_pattern") ||
      is(p, "tuple_pattern")) {
    uint32_t k = ts_node_named_child_count(p);
    for (uint32_t i = 0; i < k; i++) param(a, ts_node_named_child(p, i), f, outer, depth + 1);
  }
}

/* Parameters of a function or lambda: names bound in f; default values and
 * annotations evaluated in ds (-1: outside the function, not looked at). */
static void params(anon *a, TSNode ps, int f, int ds, int outer, int depth) {
  DEPTH_CHECK(a, depth);
  uint32_t k = ts_node_named_child_count(ps);
  for (uint32_t i = 0; i < k; i++) {
    TSNode p = ts_node_named_child(ps, i);
    const char *t = type_of(p);
    if (strcmp(t, "default_parameter") == 0 || strcmp(t, "typed_default_parameter") == 0) {
      param(a, field(p, "name"), f, outer, depth + 1);
      if (ds >= 0) {
        TSNode ty = field(p, "type"), v = field(p, "value");
        if (!ts_node_is_null(ty)) walk(a, ty, ds, depth + 1);
        if (!ts_node_is_null(v)) walk(a, v, ds, depth + 1);
      }
    } else if (strcmp(t, "typed_parameter") == 0) {
      if (ts_node_named_child_count(p) > 0) param(a, ts_node_named_child(p, 0), f, outer, depth + 1);
      TSNode ty = field(p, "type");
      if (ds >= 0 && !ts_node_is_null(ty)) walk(a, ty, ds, depth + 1);
    } else {
      param(a, p, f, outer, depth + 1); /* identifier, *args, **kwargs, separators */
    }
  }
}

/* A nested function definition in scope s. */
static void function_def(anon *a, TSNode fn, int s, int depth) {
  DEPTH_CHECK(a, depth);
  TSNode nmn = field(fn, "name"), ps = field(fn, "parameters"), rt = field(fn, "return_type"),
         body = field(fn, "body");
  if (!ts_node_is_null(nmn)) record(a, nmn, s, R_BIND);
  int f = new_scope(a, SC_FUNC, s);
  if (f < 0) return;
  if (!ts_node_is_null(ps)) params(a, ps, f, s, 0, depth + 1);
  if (!ts_node_is_null(rt)) walk(a, rt, s, depth + 1);
  if (!ts_node_is_null(body)) walk(a, body, f, depth + 1);
}

static void class_def(anon *a, TSNode c, int s, int depth) {
  DEPTH_CHECK(a, depth);
  TSNode nmn = field(c, "name"), sup = field(c, "superclasses"), body = field(c, "body");
  if (!ts_node_is_null(nmn)) record(a, nmn, s, R_BIND);
  if (!ts_node_is_null(sup)) walk(a, sup, s, depth + 1);
  int k = new_scope(a, SC_CLASS, s);
  if (k < 0) return;
  if (!ts_node_is_null(body)) walk(a, body, k, depth + 1);
}

static void lambda(anon *a, TSNode l, int s, int depth) {
  DEPTH_CHECK(a, depth);
  int f = new_scope(a, SC_LAMBDA, s);
  if (f < 0) return;
  TSNode ps = field(l, "parameters"), body = field(l, "body");
  if (!ts_node_is_null(ps)) params(a, ps, f, s, 0, depth + 1);
  if (!ts_node_is_null(body)) walk(a, body, f, depth + 1);
}

/* [body for t in it1 if c for u in it2 ...]: it1 runs in s, the rest in a
 * new comprehension scope. */
static void comprehension(anon *a, TSNode n, int s, int depth) {
  DEPTH_CHECK(a, depth);
  int c = new_scope(a, SC_COMP, s);
  if (c < 0) return;
  int first = 1;
  uint32_t k = ts_node_named_child_count(n);
  for (uint32_t i = 0; i < k; i++) {
    TSNode ch = ts_node_named_child(n, i);
    if (!is(ch, "for_in_clause")) {
      walk(a, ch, c, depth + 1);
      continue;
    }
    TSTreeCursor cur = ts_tree_cursor_new(ch);
    if (ts_tree_cursor_goto_first_child(&cur)) do {
        const char *f = ts_tree_cursor_current_field_name(&cur);
        TSNode x = ts_tree_cursor_current_node(&cur);
        if (!ts_node_is_named(x)) continue;
        if (f && strcmp(f, "left") == 0) target(a, x, c, depth + 1);
        else if (f && strcmp(f, "right") == 0) walk(a, x, first ? s : c, depth + 1);
        else walk(a, x, c, depth + 1);
      } while (ts_tree_cursor_goto_next_sibling(&cur));
    ts_tree_cursor_delete(&cur);
    first = 0;
  }
}

/* A dotted name that is a value (class pattern name, value pattern): its
 * first identifier is a read, the rest are attributes. */
static void dotted_value(anon *a, TSNode d, int s) {
  if (ts_node_named_child_count(d) > 0) record(a, ts_node_named_child(d, 0), s, R_READ);
}

static void pattern(anon *a, TSNode p, int s, int depth) {
  DEPTH_CHECK(a, depth);
  const char *t = type_of(p);
  uint32_t k = ts_node_named_child_count(p);
  if (strcmp(t, "dotted_name") == 0) {
    if (k == 1) record(a, ts_node_named_child(p, 0), s, R_BIND); /* capture */
    else dotted_value(a, p, s);
  } else if (strcmp(t, "as_pattern") == 0) {
    for (uint32_t i = 0; i < k; i++) {
      TSNode c = ts_node_named_child(p, i);
      if (is(c, "identifier")) record(a, c, s, R_BIND);
      else pattern(a, c, s, depth + 1);
    }
  } else if (strcmp(t, "keyword_pattern") == 0) {
    for (uint32_t i = 1; i < k; i++) pattern(a, ts_node_named_child(p, i), s, depth + 1);
  } else if (strcmp(t, "splat_pattern") == 0) {
    for (uint32_t i = 0; i < k; i++) record(a, ts_node_named_child(p, i), s, R_BIND);
  } else if (strcmp(t, "class_pattern") == 0) {
    for (uint32_t i = 0; i < k; i++) {
      TSNode c = ts_node_named_child(p, i);
      if (i == 0 && is(c, "dotted_name")) dotted_value(a, c, s);
      else pattern(a, c, s, depth + 1);
    }
  } else if (strcmp(t, "dict_pattern") == 0) {
    TSTreeCursor cur = ts_tree_cursor_new(p);
    if (ts_tree_cursor_goto_first_child(&cur)) do {
        TSNode x = ts_tree_cursor_current_node(&cur);
        const char *f = ts_tree_cursor_current_field_name(&cur);
        if (!ts_node_is_named(x)) continue;
        if (f && strcmp(f, "key") == 0) {
          if (is(x, "dotted_name")) dotted_value(a, x, s);
        } else {
          pattern(a, x, s, depth + 1);
        }
      } while (ts_tree_cursor_goto_next_sibling(&cur));
    ts_tree_cursor_delete(&cur);
  } else if (strcmp(t, "case_pattern") == 0 || strcmp(t, "union_pattern") == 0 ||
             strcmp(t, "list_pattern") == 0 || strcmp(t, "tuple_pattern") == 0) {
    for (uint32_t i = 0; i < k; i++) pattern(a, ts_node_named_child(p, i), s, depth + 1);
  }
  /* literals, complex numbers, '_': nothing */
}

static void match_stmt(anon *a, TSNode m, int s, int depth) {
  DEPTH_CHECK(a, depth);
  TSTreeCursor cur = ts_tree_cursor_new(m);
  if (ts_tree_cursor_goto_first_child(&cur)) do {
      TSNode x = ts_tree_cursor_current_node(&cur);
      const char *f = ts_tree_cursor_current_field_name(&cur);
      if (!ts_node_is_named(x)) continue;
      if (f && strcmp(f, "body") == 0) {
        uint32_t k = ts_node_named_child_count(x);
        for (uint32_t i = 0; i < k; i++) {
          TSNode cc = ts_node_named_child(x, i);
          if (!is(cc, "case_clause")) continue;
          uint32_t kk = ts_node_named_child_count(cc);
          for (uint32_t j = 0; j < kk; j++) {
            TSNode y = ts_node_named_child(cc, j);
            if (is(y, "case_pattern")) pattern(a, y, s, depth + 2);
            else walk(a, y, s, depth + 2); /* guard, consequence */
          }
        }
      } else {
        walk(a, x, s, depth + 1);
      }
    } while (ts_tree_cursor_goto_next_sibling(&cur));
  ts_tree_cursor_delete(&cur);
}

/* import x.y / import x as y / from m import a, b as c: the bound names are
 * marked never-renamed; nothing in an import is an occurrence. */
static void import_stmt(anon *a, TSNode st) {
  TSTreeCursor cur = ts_tree_cursor_new(st);
  if (ts_tree_cursor_goto_first_child(&cur)) do {
      TSNode x = ts_tree_cursor_current_node(&cur);
      const char *f = ts_tree_cursor_current_field_name(&cur);
      if (!f || strcmp(f, "name") != 0) continue;
      if (is(x, "aliased_import")) {
        TSNode al = field(x, "alias");
        if (!ts_node_is_null(al)) flag_name(a, al, N_IMPORTED);
      } else if (is(x, "dotted_name") && ts_node_named_child_count(x) > 0) {
        flag_name(a, ts_node_named_child(x, 0), N_IMPORTED);
      }
    } while (ts_tree_cursor_goto_next_sibling(&cur));
  ts_tree_cursor_delete(&cur);
}

/* Binding targets: names are bound in s; attributes and subscripts are reads. */
static void target(anon *a, TSNode n, int s, int depth) {
  DEPTH_CHECK(a, depth);
  const char *t = type_of(n);
  if (strcmp(t, "identifier") == 0) {
    record(a, n, s, R_BIND);
  } else if (strcmp(t, "pattern_list") == 0 || strcmp(t, "tuple_pattern") == 0 ||
             strcmp(t, "list_pattern") == 0 || strcmp(t, "tuple") == 0 ||
             strcmp(t, "list") == 0 || strcmp(t, "parenthesized_expression") == 0 ||
             strcmp(t, "expression_list") == 0 || strcmp(t, "list_splat_pattern") == 0 ||
             strcmp(t, "list_splat") == 0 || strcmp(t, "as_pattern_target") == 0) {
    uint32_t k = ts_node_named_child_count(n);
    for (uint32_t i = 0; i < k; i++) target(a, ts_node_named_child(n, i), s, depth + 1);
  } else if (strcmp(t, "comment") == 0 || strcmp(t, "keyword_identifier") == 0) {
    /* nothing */
  } else {
    walk(a, n, s, depth + 1); /* attribute, subscript: reads */
  }
}

/* The scope a walrus binds in: the nearest one that is not a comprehension. */
static int walrus_scope(const anon *a, int s) {
  while (s >= 0 && a->sc[s].kind == SC_COMP) s = a->sc[s].parent;
  return s;
}

static void walk(anon *a, TSNode n, int s, int depth) {
  DEPTH_CHECK(a, depth);
  const char *t = type_of(n);
  switch (t[0]) { /* cheap pre-dispatch on the first letter */
    case 'i':
      if (strcmp(t, "identifier") == 0) {
        record(a, n, s, R_READ);
        return;
      }
      if (strcmp(t, "import_statement") == 0 || strcmp(t, "import_from_statement") == 0) {
        import_stmt(a, n);
        return;
      }
      break;
    case 'a':
      if (strcmp(t, "attribute") == 0) {
        TSNode o = field(n, "object");
        if (!ts_node_is_null(o)) walk(a, o, s, depth + 1);
        return;
      }
      if (strcmp(t, "assignment") == 0 || strcmp(t, "augmented_assignment") == 0) {
        TSNode l = field(n, "left"), ty = field(n, "type"), r = field(n, "right");
        if (!ts_node_is_null(l)) target(a, l, s, depth + 1);
        if (!ts_node_is_null(ty)) walk(a, ty, s, depth + 1);
        if (!ts_node_is_null(r)) walk(a, r, s, depth + 1);
        return;
      }
      if (strcmp(t, "as_pattern") == 0) { /* with ... as x, except E as e */
        walk_binding_field(a, n, s, depth, "alias");
        return;
      }
      break;
    case 'k':
      if (strcmp(t, "keyword_argument") == 0) {
        TSNode v = field(n, "value");
        if (!ts_node_is_null(v)) walk(a, v, s, depth + 1);
        return;
      }
      if (strcmp(t, "keyword_identifier") == 0) return;
      break;
    case 'n':
      if (strcmp(t, "named_expression") == 0) {
        TSNode nmn = field(n, "name"), v = field(n, "value");
        if (!ts_node_is_null(nmn)) record(a, nmn, walrus_scope(a, s), R_BIND);
        if (!ts_node_is_null(v)) walk(a, v, s, depth + 1);
        return;
      }
      if (strcmp(t, "nonlocal_statement") == 0) {
        uint32_t k = ts_node_named_child_count(n);
        for (uint32_t i = 0; i < k; i++) flag_name(a, ts_node_named_child(n, i), N_DECLARED);
        return;
      }
      break;
    case 'g':
      if (strcmp(t, "global_statement") == 0) {
        uint32_t k = ts_node_named_child_count(n);
        for (uint32_t i = 0; i < k; i++) flag_name(a, ts_node_named_child(n, i), N_DECLARED);
        return;
      }
      if (strcmp(t, "generator_expression") == 0) {
        comprehension(a, n, s, depth + 1);
        return;
      }
      break;
    case 'f':
      if (strcmp(t, "for_statement") == 0) {
        walk_binding_field(a, n, s, depth, "left");
        return;
      }
      if (strcmp(t, "function_definition") == 0) {
        function_def(a, n, s, depth + 1);
        return;
      }
      if (strcmp(t, "future_import_statement") == 0) return;
      break;
    case 'e':
      if (strcmp(t, "except_clause") == 0) { /* "except E, e" (Python 2): alias field */
        walk_binding_field(a, n, s, depth, "alias");
        return;
      }
      break;
    case 'd':
      if (strcmp(t, "decorated_definition") == 0) {
        uint32_t k = ts_node_named_child_count(n);
        for (uint32_t i = 0; i < k; i++) {
          TSNode c = ts_node_named_child(n, i);
          if (is(c, "function_definition")) function_def(a, c, s, depth + 1);
          else if (is(c, "class_definition")) class_def(a, c, s, depth + 1);
          else walk(a, c, s, depth + 1); /* decorators run in s */
        }
        return;
      }
      if (strcmp(t, "dictionary_comprehension") == 0) {
        comprehension(a, n, s, depth + 1);
        return;
      }
      if (strcmp(t, "dotted_name") == 0) return;
      break;
    case 'c':
      if (strcmp(t, "class_definition") == 0) {
        class_def(a, n, s, depth + 1);
        return;
      }
      if (strcmp(t, "comment") == 0) return;
      break;
    case 'l':
      if (strcmp(t, "lambda") == 0) {
        lambda(a, n, s, depth + 1);
        return;
      }
      if (strcmp(t, "list_comprehension") == 0) {
        comprehension(a, n, s, depth + 1);
        return;
      }
      break;
    case 's':
      if (strcmp(t, "set_comprehension") == 0) {
        comprehension(a, n, s, depth + 1);
        return;
      }
      break;
    case 'm':
      if (strcmp(t, "match_statement") == 0) {
        match_stmt(a, n, s, depth + 1);
        return;
      }
      if (strcmp(t, "member_type") == 0) { /* T.attr in an annotation */
        if (ts_node_named_child_count(n) > 0) walk(a, ts_node_named_child(n, 0), s, depth + 1);
        return;
      }
      break;
    case 't':
      if (strcmp(t, "type_alias_statement") == 0) return;
      break;
    default:
      break;
  }
  walk_named_children(a, n, s, depth);
}

/* 1 when some identifier of the tree reads ARG_<digits> or VAR_<digits>. */
static int has_placeholder(const char *src, TSNode root) {
  TSTreeCursor c = ts_tree_cursor_new(root);
  int found = 0;
  for (;;) {
    TSNode x = ts_tree_cursor_current_node(&c);
    if (is(x, "identifier")) {
      const char *s = src + ts_node_start_byte(x);
      size_t n = ts_node_end_byte(x) - ts_node_start_byte(x);
      if (n > 4 && (memcmp(s, "ARG_", 4) == 0 || memcmp(s, "VAR_", 4) == 0)) {
        size_t i = 4;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == n) {
          found = 1;
          break;
        }
      }
    }
    if (ts_tree_cursor_goto_first_child(&c)) continue;
    while (!ts_tree_cursor_goto_next_sibling(&c))
      if (!ts_tree_cursor_goto_parent(&c)) goto done;
  }
done:
  ts_tree_cursor_delete(&c);
  return found;
}

/* Deepest nesting of the tree, counted without recursion, capped. */
static int depth_over(TSNode root, int limit) {
  TSTreeCursor c = ts_tree_cursor_new(root);
  int d = 0, over = 0;
  for (;;) {
    if (ts_tree_cursor_goto_first_child(&c)) {
      if (++d > limit) {
        over = 1;
        break;
      }
      continue;
    }
    while (!ts_tree_cursor_goto_next_sibling(&c)) {
      if (!ts_tree_cursor_goto_parent(&c)) goto done;
      d--;
    }
  }
done:
  ts_tree_cursor_delete(&c);
  return over;
}

static int cmp_occ(const void *x, const void *y) {
  const occ *a = x, *b = y;
  return a->start < b->start ? -1 : a->start > b->start;
}

/* Scope the name of occurrence o resolves to, or -1 (outside the function). */
static int resolve(const anon *a, const occ *o) {
  int s = o->scope, first = 1;
  while (s >= 0) {
    if (a->sc[s].kind == SC_CLASS && !first) {
      s = a->sc[s].parent;
      continue;
    }
    if (is_bound(a, s, o->name)) return s;
    first = 0;
    s = a->sc[s].parent;
  }
  return -1;
}

static void anon_free(anon *a) {
  free(a->sc);
  free(a->nm);
  free(a->oc);
  free(a->bd);
}

/* Renames into out; returns PY_OK/PY_ENOMEM, status in info. */
static int rename_function(const char *src, size_t len, TSNode fn, py_buf *out,
                           py_anon_info *info) {
  anon a;
  memset(&a, 0, sizeof a);
  a.src = src;
  int rc = PY_OK;
  int f = new_scope(&a, SC_FUNC, -1);
  TSNode ps = field(fn, "parameters"), body = field(fn, "body");
  if (f >= 0 && !ts_node_is_null(ps)) params(&a, ps, f, -1, 1, 1);
  if (f >= 0 && !ts_node_is_null(body)) walk(&a, body, f, 1);
  if (a.oom || f < 0) {
    anon_free(&a);
    return PY_ENOMEM;
  }
  if (a.deep) {
    info->status = PY_ANON_TOO_DEEP;
    anon_free(&a);
    return py_buf_put(out, src, len);
  }
  /* which occurrences are renamed: keep those in a.oc[0..k) */
  size_t k = 0;
  for (size_t i = 0; i < a.noc; i++) {
    occ o = a.oc[i];
    name *nm = &a.nm[o.name];
    if (nm->flags & (N_IMPORTED | N_DECLARED)) continue;
    if ((nm->flags & N_BUILTIN) && nm->arg < 0) continue;
    int r = resolve(&a, &o);
    if (r < 0 || a.sc[r].kind == SC_CLASS) continue;
    a.oc[k++] = o;
  }
  if (k > 1) qsort(a.oc, k, sizeof *a.oc, cmp_occ);
  int n_vars = 0;
  for (size_t i = 0; i < k; i++) {
    name *nm = &a.nm[a.oc[i].name];
    if (nm->arg < 0 && nm->var < 0) nm->var = n_vars++;
  }
  int n_args = 0;
  for (size_t i = 0; i < a.nnm; i++)
    if (a.nm[i].arg >= 0 && !(a.nm[i].flags & (N_IMPORTED | N_DECLARED))) n_args++;
  size_t pos = 0;
  char ph[32];
  size_t renamed = 0;
  for (size_t i = 0; i < k && rc == PY_OK; i++) {
    const occ *o = &a.oc[i];
    if (o->start < pos) continue; /* the same identifier recorded twice */
    const name *nm = &a.nm[o->name];
    int w = nm->arg >= 0 ? snprintf(ph, sizeof ph, "ARG_%d", nm->arg)
                         : snprintf(ph, sizeof ph, "VAR_%d", nm->var);
    if (py_buf_put(out, src + pos, o->start - pos) || py_buf_put(out, ph, (size_t)w))
      rc = PY_ENOMEM;
    pos = o->end;
    renamed++;
  }
  if (rc == PY_OK) rc = py_buf_put(out, src + pos, len - pos);
  info->status = PY_ANON_OK;
  info->n_args = n_args;
  info->n_vars = n_vars;
  info->n_renamed = renamed;
  anon_free(&a);
  return rc;
}

int py_parses(const char *src, size_t len, int *ok) {
  *ok = 0;
  size_t i = 0;
  while (i < len && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r')) i++;
  if (i == len || len > UINT32_MAX / 2) return PY_OK;
  TSParser *p = ts_parser_new();
  if (!p) return PY_ENOMEM;
  if (!ts_parser_set_language(p, tree_sitter_python())) {
    ts_parser_delete(p);
    return PY_OK;
  }
  TSTree *t = ts_parser_parse_string(p, NULL, src, (uint32_t)len);
  ts_parser_delete(p);
  if (!t) return PY_ENOMEM;
  *ok = !ts_node_has_error(ts_tree_root_node(t));
  ts_tree_delete(t);
  return PY_OK;
}

int py_anonymise(const char *src, size_t len, py_buf *out, py_anon_info *info) {
  py_anon_info dummy;
  if (!info) info = &dummy;
  memset(info, 0, sizeof *info);
  info->status = PY_ANON_UNPARSABLE;
  if (len > UINT32_MAX / 2) return py_buf_put(out, src, len);
  TSParser *p = ts_parser_new();
  if (!p) return PY_ENOMEM;
  if (!ts_parser_set_language(p, tree_sitter_python())) {
    ts_parser_delete(p);
    return py_buf_put(out, src, len);
  }
  TSTree *t = ts_parser_parse_string(p, NULL, src, (uint32_t)len);
  if (!t) {
    ts_parser_delete(p);
    return PY_ENOMEM;
  }
  TSNode root = ts_tree_root_node(t);
  int rc = PY_OK, done = 0;
  if (ts_node_has_error(root)) {
    info->status = PY_ANON_UNPARSABLE;
  } else if (depth_over(root, MAX_DEPTH - 50)) {
    info->status = PY_ANON_TOO_DEEP;
  } else {
    TSNode fn = {{0}, 0, 0};
    int n_stmt = 0;
    uint32_t k = ts_node_named_child_count(root);
    for (uint32_t i = 0; i < k; i++) {
      TSNode c = ts_node_named_child(root, i);
      if (is(c, "comment")) continue;
      n_stmt++;
      fn = c;
    }
    if (n_stmt == 1 && is(fn, "decorated_definition")) fn = field(fn, "definition");
    if (n_stmt != 1 || ts_node_is_null(fn) || !is(fn, "function_definition")) {
      info->status = PY_ANON_NOT_FUNCTION;
    } else if (has_placeholder(src, root)) {
      info->status = PY_ANON_CONFLICT;
    } else {
      rc = rename_function(src, len, fn, out, info);
      done = 1;
    }
  }
  if (!done) rc = py_buf_put(out, src, len);
  ts_tree_delete(t);
  ts_parser_delete(p);
  return rc;
}

/* (docstring, function) pairs from a Python source file, with tree-sitter.
 *
 * A file with any syntax error (an ERROR or MISSING node) or Python-2-only
 * syntax (print/exec statements, "except E, e:") yields no pair at all. In a
 * valid file, every function defined at module level, in a class body (also
 * nested classes), or in a module-level if/try/with/for/while block, whose
 * body starts with a str docstring and has another statement, gives a pair:
 *
 *   docstring: the literal's value (escapes decoded, except those of U+0000,
 *              which stay as written), each line stripped,
 *              blank lines dropped, joined by '\n';
 *   code:      the function from its first decorator (or "def") on, dedented
 *              to column 0, without the docstring statement, without
 *              comments, without blank lines and trailing spaces (never
 *              touching the inside of string literals), ending in '\n'.
 *
 * The cleaned code is parsed again; a pair whose code no longer parses is
 * dropped and counted (info->broken), which should never happen. A function
 * longer than PY_MAX_FUNC_LINES lines or PY_MAX_FUNC_BYTES bytes is skipped
 * before that (info->too_long; the callback is told, to report it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tree_sitter/api.h>

#include "pyint.h"

#define NODE_IS(n, t) (strcmp(ts_node_type(n), (t)) == 0)

static size_t nstart(TSNode n) { return ts_node_start_byte(n); }
static size_t nend(TSNode n) { return ts_node_end_byte(n); }

/* ------------------------------------------------------------------------ */
/* String literals and docstrings                                            */

static int put_cp(py_buf *b, uint32_t cp) {
  char t[4];
  size_t k;
  if (cp < 0x80) t[0] = (char)cp, k = 1;
  else if (cp < 0x800) t[0] = (char)(0xC0 | (cp >> 6)), t[1] = (char)(0x80 | (cp & 0x3F)), k = 2;
  else if (cp < 0x10000) {
    t[0] = (char)(0xE0 | (cp >> 12));
    t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    t[2] = (char)(0x80 | (cp & 0x3F));
    k = 3;
  } else {
    t[0] = (char)(0xF0 | (cp >> 18));
    t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    t[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    t[3] = (char)(0x80 | (cp & 0x3F));
    k = 4;
  }
  return py_buf_put(b, t, k);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int py_string_value(const char *s, size_t n, py_buf *out) {
  size_t i = 0;
  int raw = 0;
  while (i < n && strchr("rRuUbBfF", s[i]) && s[i]) {
    if (strchr("bBfF", s[i])) return PY_EPARSE;
    if (s[i] == 'r' || s[i] == 'R') raw = 1;
    i++;
  }
  if (i >= n || (s[i] != '\'' && s[i] != '"')) return PY_EPARSE;
  char q = s[i];
  size_t ql = (n - i >= 6 && s[i + 1] == q && s[i + 2] == q) ? 3 : 1;
  if (n - i < 2 * ql) return PY_EPARSE;
  size_t a = i + ql, b = n - ql;
  if (raw) return py_buf_put(out, s + a, b - a);
  size_t run = a;
  for (size_t k = a; k < b; k++) {
    if (s[k] != '\\' || k + 1 >= b) continue;
    if (py_buf_put(out, s + run, k - run)) return PY_ENOMEM;
    char c = s[k + 1];
    size_t used = 2;
    int rc = PY_OK;
    switch (c) {
      case '\n': break;
      case '\r': used = (k + 2 < b && s[k + 2] == '\n') ? 3 : 2; break;
      case '\\': case '\'': case '"': rc = py_buf_put(out, &c, 1); break;
      case 'a': rc = py_buf_put(out, "\a", 1); break;
      case 'b': rc = py_buf_put(out, "\b", 1); break;
      case 'f': rc = py_buf_put(out, "\f", 1); break;
      case 'n': rc = py_buf_put(out, "\n", 1); break;
      case 'r': rc = py_buf_put(out, "\r", 1); break;
      case 't': rc = py_buf_put(out, "\t", 1); break;
      case 'v': rc = py_buf_put(out, "\v", 1); break;
      case 'x': case 'u': case 'U': {
        size_t want = c == 'x' ? 2 : c == 'u' ? 4 : 8, j;
        uint32_t cp = 0;
        for (j = 0; j < want && k + 2 + j < b && hexval(s[k + 2 + j]) >= 0; j++)
          cp = cp * 16 + (uint32_t)hexval(s[k + 2 + j]);
        if (j == want && cp > 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF)) {
          rc = put_cp(out, cp);
          used = 2 + want;
        } else {
          rc = py_buf_put(out, s + k, 2); /* kept as written */
        }
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          uint32_t cp = 0;
          size_t j = 0;
          while (j < 3 && k + 1 + j < b && s[k + 1 + j] >= '0' && s[k + 1 + j] <= '7')
            cp = cp * 8 + (uint32_t)(s[k + 1 + j] - '0'), j++;
          used = 1 + j;
          /* U+0000 stays written as an escape: no NUL ever reaches a pair */
          rc = cp ? put_cp(out, cp) : py_buf_put(out, s + k, used);
        } else {
          rc = py_buf_put(out, s + k, 2); /* unknown escape (or \N{...}): kept */
        }
    }
    if (rc) return rc;
    k += used - 1;
    run = k + 1;
  }
  return py_buf_put(out, s + run, b - run);
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

int py_clean_docstring(const char *s, size_t n, py_buf *out) {
  size_t i = 0;
  int first = 1;
  while (i <= n) {
    size_t e = i;
    while (e < n && s[e] != '\n') e++;
    size_t a = i, b = e;
    while (a < b && is_ws(s[a])) a++;
    while (b > a && is_ws(s[b - 1])) b--;
    if (b > a) {
      if (!first && py_buf_put(out, "\n", 1)) return PY_ENOMEM;
      if (py_buf_put(out, s + a, b - a)) return PY_ENOMEM;
      first = 0;
    }
    i = e + 1;
  }
  if (!out->data && py_buf_put(out, "", 0)) return PY_ENOMEM;
  return PY_OK;
}

/* ------------------------------------------------------------------------ */
/* Parse errors and Python 2                                                 */

/* The string_start of an ERROR node's string that never ends (a literal
 * left open: tree-sitter puts its start into the ERROR node), if any. */
static int open_string(TSNode err, TSNode *start) {
  uint32_t nc = ts_node_child_count(err);
  int open = 0;
  for (uint32_t i = 0; i < nc; i++) {
    TSNode c = ts_node_child(err, i);
    const char *t = ts_node_type(c);
    if (strcmp(t, "string_start") == 0 && !open) {
      *start = c;
      open = 1;
    } else if (strcmp(t, "string_end") == 0) {
      open = 0;
    }
  }
  return open;
}

/* First ERROR/MISSING node in document order, or a Python-2-only construct. */
static int find_problem(TSNode n, const char *src, TSNode *where, const char **what) {
  const char *t = ts_node_type(n);
  if (ts_node_is_missing(n)) {
    *where = n;
    *what = strcmp(t, "string_end") == 0 ? "unterminated string literal"
                                          : "syntax error (missing token)";
    return 1;
  }
  if (strcmp(t, "ERROR") == 0) {
    *where = n;
    *what = "syntax error";
    TSNode s;
    if (open_string(n, &s)) {
      *where = s;
      *what = "unterminated string literal (its closing quotes are missing)";
    }
    return 1;
  }
  if (strcmp(t, "print_statement") == 0 || strcmp(t, "exec_statement") == 0) {
    *where = n;
    *what = t[0] == 'p' ? "Python 2 print statement" : "Python 2 exec statement";
    return 1;
  }
  uint32_t nc = ts_node_child_count(n);
  if (strcmp(t, "except_clause") == 0)
    for (uint32_t i = 0; i < nc; i++) {
      TSNode c = ts_node_child(n, i);
      if (!ts_node_is_named(c) && nend(c) - nstart(c) == 1 && src[nstart(c)] == ',') {
        *where = c;
        *what = "Python 2 \"except E, name\"";
        return 1;
      }
    }
  for (uint32_t i = 0; i < nc; i++)
    if (find_problem(ts_node_child(n, i), src, where, what)) return 1;
  return 0;
}

/* Depth-limited: find_problem recurses; tree-sitter trees of real code are
 * shallow except for long operator chains, which the parser nests left-deep.
 * Deeper than this the file is refused rather than risking the stack. */
#define MAX_DEPTH 3000
static int too_deep(TSNode root) {
  TSTreeCursor c = ts_tree_cursor_new(root);
  int depth = 0, deep = 0;
  for (;;) {
    if (ts_tree_cursor_goto_first_child(&c)) {
      if (++depth > MAX_DEPTH) {
        deep = 1;
        break;
      }
      continue;
    }
    while (!ts_tree_cursor_goto_next_sibling(&c)) {
      if (!ts_tree_cursor_goto_parent(&c)) goto done;
      depth--;
    }
  }
done:
  ts_tree_cursor_delete(&c);
  return deep;
}

/* Returns 0 when the tree is clean Python 3, else fills info and returns PY_EPARSE. */
static int check_tree(TSNode root, const char *src, py_extract_info *info) {
  TSNode where;
  const char *what = NULL;
  if (too_deep(root)) {
    where = root;
    what = "nested too deeply";
  } else if (!find_problem(root, src, &where, &what)) {
    return PY_OK;
  }
  if (info) {
    TSPoint p = ts_node_start_point(where);
    info->err_line = p.row + 1;
    info->err_col = p.column + 1;
    snprintf(info->err_what, sizeof info->err_what, "%s", what);
  }
  return PY_EPARSE;
}

/* ------------------------------------------------------------------------ */
/* Code cleaning                                                             */

enum { M_KEEP = 0, M_DEL = 1, M_PROT = 2 };

/* Marks comments (deleted) and strings (protected) of the subtree of n. */
static void mark(TSNode n, size_t base, unsigned char *mask, size_t mlen) {
  TSTreeCursor c = ts_tree_cursor_new(n);
  for (;;) {
    TSNode x = ts_tree_cursor_current_node(&c);
    const char *t = ts_node_type(x);
    size_t a = nstart(x), b = nend(x);
    int descend = 1;
    if (a >= base && b <= base + mlen) {
      if (strcmp(t, "comment") == 0) {
        memset(mask + (a - base), M_DEL, b - a);
        descend = 0;
      } else if (strcmp(t, "string") == 0) {
        for (size_t i = a; i < b; i++)
          if (mask[i - base] == M_KEEP) mask[i - base] = M_PROT;
        /* f-strings: comments cannot occur inside; nothing more to mark */
        descend = 0;
      }
    }
    if (descend && ts_tree_cursor_goto_first_child(&c)) continue;
    for (;;) {
      if (ts_tree_cursor_goto_next_sibling(&c)) break;
      if (!ts_tree_cursor_goto_parent(&c)) goto done;
    }
  }
done:
  ts_tree_cursor_delete(&c);
}

/* Builds the cleaned code of the definition outer (decorated or not), with
 * the docstring statement doc removed (with a following ';'). */
static int clean_code(const char *src, TSNode outer, TSNode doc, py_buf *out) {
  size_t s0 = nstart(outer), end = nend(outer);
  size_t base = s0;
  while (base > 0 && src[base - 1] != '\n') base--;
  size_t prefix = s0 - base;
  for (size_t i = base; i < s0; i++)
    if (!is_ws(src[i])) prefix = 0; /* cannot happen for a statement */
  size_t mlen = end - base;
  unsigned char *mask = calloc(mlen ? mlen : 1, 1);
  if (!mask) return PY_ENOMEM;
  /* the docstring statement first, so that its strings are not protected */
  size_t da = nstart(doc), db = nend(doc);
  size_t k = db;
  while (k < end && (src[k] == ' ' || src[k] == '\t')) k++;
  if (k < end && src[k] == ';') {
    k++;
    while (k < end && (src[k] == ' ' || src[k] == '\t')) k++;
    db = k;
  }
  memset(mask + (da - base), M_DEL, db - da);
  mark(outer, base, mask, mlen);
  int rc = PY_OK;
  py_buf line = {0};
  size_t ls = base;
  while (rc == PY_OK && ls < end) {
    size_t le = ls;
    while (le < end && src[le] != '\n') le++;
    int start_prot = ls > base && mask[ls - 1 - base] == M_PROT;
    int nl_prot = le < end && mask[le - base] == M_PROT;
    line.len = 0;
    for (size_t i = ls; i < le && rc == PY_OK; i++)
      if (mask[i - base] != M_DEL) rc = py_buf_put(&line, src + i, 1);
    if (rc) break;
    size_t a = 0, b = line.len;
    if (!start_prot)
      while (a < b && a < prefix && is_ws(line.data[a])) a++;
    if (!nl_prot)
      while (b > a && is_ws(line.data[b - 1])) b--;
    int blank = 1;
    for (size_t i = a; i < b; i++)
      if (!is_ws(line.data[i])) blank = 0;
    if (start_prot || nl_prot || !blank) {
      if (py_buf_put(out, line.data ? line.data + a : "", b - a) || py_buf_put(out, "\n", 1))
        rc = PY_ENOMEM;
    }
    ls = le + 1;
  }
  py_buf_free(&line);
  free(mask);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Walking the module                                                        */

typedef struct walker {
  const char *src;
  TSParser *parser;
  py_pair_cb cb;
  void *ctx;
  py_extract_info *info;
  py_buf name, doc, raw, code;
} walker;

/* The first statement of a block that is not a comment, and how many such. */
static TSNode first_stmt(TSNode block, uint32_t *count) {
  TSNode first = {{0}, 0, 0};
  int have = 0;
  *count = 0;
  uint32_t n = ts_node_named_child_count(block);
  for (uint32_t i = 0; i < n; i++) {
    TSNode c = ts_node_named_child(block, i);
    if (NODE_IS(c, "comment")) continue;
    if (!have) first = c, have = 1;
    ++*count;
  }
  return first;
}

/* The docstring value of a function body (cleaned into w->doc), or 0. */
static int docstring_of(walker *w, TSNode body, TSNode *stmt, uint32_t *n_stmts, int *rc) {
  *rc = PY_OK;
  TSNode s = first_stmt(body, n_stmts);
  if (*n_stmts == 0 || !NODE_IS(s, "expression_statement") || ts_node_named_child_count(s) != 1)
    return 0;
  TSNode lit = ts_node_named_child(s, 0);
  w->raw.len = 0;
  w->doc.len = 0;
  if (NODE_IS(lit, "string")) {
    int r = py_string_value(w->src + nstart(lit), nend(lit) - nstart(lit), &w->raw);
    if (r) {
      *rc = r == PY_ENOMEM ? r : PY_OK;
      return 0;
    }
  } else if (NODE_IS(lit, "concatenated_string")) {
    uint32_t k = ts_node_named_child_count(lit);
    for (uint32_t i = 0; i < k; i++) {
      TSNode p = ts_node_named_child(lit, i);
      if (!NODE_IS(p, "string")) return 0;
      int r = py_string_value(w->src + nstart(p), nend(p) - nstart(p), &w->raw);
      if (r) {
        *rc = r == PY_ENOMEM ? r : PY_OK;
        return 0;
      }
    }
  } else {
    return 0;
  }
  if ((*rc = py_clean_docstring(w->raw.data ? w->raw.data : "", w->raw.len, &w->doc))) return 0;
  *stmt = s;
  return w->doc.len > 0;
}

/* 1 when code parses cleanly as one (decorated) function definition. */
static int reparses(walker *w, const char *code, size_t len) {
  TSTree *t = ts_parser_parse_string(w->parser, NULL, code, (uint32_t)len);
  if (!t) return 0;
  TSNode root = ts_tree_root_node(t);
  int ok = !ts_node_has_error(root) && ts_node_named_child_count(root) == 1;
  if (ok) {
    TSNode d = ts_node_named_child(root, 0);
    if (NODE_IS(d, "decorated_definition")) d = ts_node_child_by_field_name(d, "definition", 10);
    ok = !ts_node_is_null(d) && NODE_IS(d, "function_definition");
  }
  ts_tree_delete(t);
  return ok;
}

static int visit_block(walker *w, TSNode block, size_t name_len);

static int visit_function(walker *w, TSNode fn, TSNode outer, size_t name_len) {
  w->info->functions++;
  TSNode nm = ts_node_child_by_field_name(fn, "name", 4);
  TSNode body = ts_node_child_by_field_name(fn, "body", 4);
  if (ts_node_is_null(nm) || ts_node_is_null(body)) return PY_OK;
  TSNode doc;
  uint32_t n_stmts;
  int rc;
  if (!docstring_of(w, body, &doc, &n_stmts, &rc)) return rc;
  w->info->with_docstring++;
  if (n_stmts < 2) {
    w->info->only_docstring++;
    return PY_OK;
  }
  w->name.len = name_len;
  if (py_buf_put(&w->name, w->src + nstart(nm), nend(nm) - nstart(nm))) return PY_ENOMEM;
  size_t lines = ts_node_end_point(outer).row - ts_node_start_point(outer).row + 1;
  size_t bytes = nend(outer) - nstart(outer);
  if (lines > PY_MAX_FUNC_LINES || bytes > PY_MAX_FUNC_BYTES) {
    w->info->too_long++;
    py_pair p = {ts_node_start_point(outer).row + 1, NULL, 0, NULL, 0, w->name.data,
                 w->name.len, lines > PY_MAX_FUNC_LINES ? lines : bytes,
                 lines > PY_MAX_FUNC_LINES ? 0 : 1};
    return w->cb(w->ctx, &p);
  }
  w->code.len = 0;
  if ((rc = clean_code(w->src, outer, doc, &w->code))) return rc;
  if (!reparses(w, w->code.data, w->code.len)) {
    w->info->broken++;
    return PY_OK;
  }
  py_pair p = {ts_node_start_point(outer).row + 1, w->doc.data, w->doc.len, w->code.data,
               w->code.len, w->name.data, w->name.len, 0, 0};
  w->info->emitted++;
  return w->cb(w->ctx, &p);
}

static int visit_class(walker *w, TSNode cls, size_t name_len) {
  TSNode nm = ts_node_child_by_field_name(cls, "name", 4);
  TSNode body = ts_node_child_by_field_name(cls, "body", 4);
  if (ts_node_is_null(nm) || ts_node_is_null(body)) return PY_OK;
  w->name.len = name_len;
  if (py_buf_put(&w->name, w->src + nstart(nm), nend(nm) - nstart(nm)) ||
      py_buf_put(&w->name, ".", 1))
    return PY_ENOMEM;
  return visit_block(w, body, w->name.len);
}

/* Blocks of compound statements (if/elif/else/try/except/finally/with/for/while). */
static int visit_compound(walker *w, TSNode st, size_t name_len) {
  uint32_t n = ts_node_named_child_count(st);
  for (uint32_t i = 0; i < n; i++) {
    TSNode c = ts_node_named_child(st, i);
    int rc = PY_OK;
    if (NODE_IS(c, "block")) rc = visit_block(w, c, name_len);
    else if (NODE_IS(c, "elif_clause") || NODE_IS(c, "else_clause") ||
             NODE_IS(c, "except_clause") || NODE_IS(c, "except_group_clause") ||
             NODE_IS(c, "finally_clause"))
      rc = visit_compound(w, c, name_len);
    if (rc) return rc;
  }
  return PY_OK;
}

static int visit_block(walker *w, TSNode block, size_t name_len) {
  uint32_t n = ts_node_named_child_count(block);
  for (uint32_t i = 0; i < n; i++) {
    TSNode st = ts_node_named_child(block, i);
    const char *t = ts_node_type(st);
    int rc = PY_OK;
    if (strcmp(t, "function_definition") == 0) {
      rc = visit_function(w, st, st, name_len);
    } else if (strcmp(t, "decorated_definition") == 0) {
      TSNode d = ts_node_child_by_field_name(st, "definition", 10);
      if (!ts_node_is_null(d) && NODE_IS(d, "function_definition"))
        rc = visit_function(w, d, st, name_len);
      else if (!ts_node_is_null(d) && NODE_IS(d, "class_definition"))
        rc = visit_class(w, d, name_len);
    } else if (strcmp(t, "class_definition") == 0) {
      rc = visit_class(w, st, name_len);
    } else if (strcmp(t, "if_statement") == 0 || strcmp(t, "try_statement") == 0 ||
               strcmp(t, "with_statement") == 0 || strcmp(t, "for_statement") == 0 ||
               strcmp(t, "while_statement") == 0) {
      rc = visit_compound(w, st, name_len);
    }
    if (rc) return rc;
  }
  return PY_OK;
}

int py_extract(const char *src, size_t len, py_pair_cb cb, void *ctx, py_extract_info *info) {
  py_extract_info dummy;
  if (!info) info = &dummy;
  memset(info, 0, sizeof *info);
  if (len > UINT32_MAX / 2) {
    snprintf(info->err_what, sizeof info->err_what, "file too large");
    info->err_line = 1;
    return PY_EPARSE;
  }
  TSParser *parser = ts_parser_new();
  if (!parser) return PY_ENOMEM;
  if (!ts_parser_set_language(parser, tree_sitter_python())) {
    ts_parser_delete(parser);
    snprintf(info->err_what, sizeof info->err_what, "grammar ABI mismatch");
    return PY_EPARSE;
  }
  TSTree *tree = ts_parser_parse_string(parser, NULL, src, (uint32_t)len);
  if (!tree) {
    ts_parser_delete(parser);
    return PY_ENOMEM;
  }
  TSNode root = ts_tree_root_node(tree);
  int rc = check_tree(root, src, info);
  if (rc == PY_OK) {
    walker w = {src, parser, cb, ctx, info, {0}, {0}, {0}, {0}};
    if (py_buf_put(&w.name, "", 0)) rc = PY_ENOMEM;
    else rc = visit_block(&w, root, 0);
    py_buf_free(&w.name);
    py_buf_free(&w.doc);
    py_buf_free(&w.raw);
    py_buf_free(&w.code);
  }
  ts_tree_delete(tree);
  ts_parser_delete(parser);
  return rc;
}

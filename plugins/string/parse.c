/* Canonical program text of the string DSL: strict parser and printer.
 *
 *   Program := Expr (" | " Expr)*
 *   Expr    := Name "(" Args ")"  |  "Compose(" Nesting ", " (Nesting | Substring) ")"
 *   Args    := (Arg (", " Arg)*)?   -- exactly the operation's arguments, in order
 *   Arg     := 'c' | '\''  (characters and delimiters)  | -?[1-9][0-9]* | 0  (integers)
 *            | NAME  (types, cases, START/END)
 *
 * Nothing else is accepted (no other spacing, no leading zeros, no "-0"). An
 * error reports the 1-based byte column where the text departs from the
 * grammar and what was expected there: "column C: expected X".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC visibility push(hidden) /* only lp_plugin_entry leaves the plugin */
#include "strdsl.h"

/* ------------------------------------------------------------------------ */
/* Parser                                                                    */

typedef struct parser {
  const char *s;
  size_t n, pos;
  char *err;
  size_t errlen;
} parser;

enum { ROLE_TOP = 0, ROLE_OUTER, ROLE_INNER };

static const char *const role_what[] = {
    "an operation (Compose, ConstStr, SubStr, GetSpan, GetToken, ToCase, Replace, Trim, "
    "GetUpto, GetFrom, GetFirst, GetAll)",
    "a nesting operation (GetToken, ToCase, Replace, Trim, GetUpto, GetFrom, GetFirst, GetAll) "
    "as Compose's first argument",
    "a nesting or substring operation (SubStr, GetSpan, GetToken, ToCase, Replace, Trim, GetUpto, "
    "GetFrom, GetFirst, GetAll) as Compose's second argument",
};
#define DELIMS_TEXT "& , . ? ! @ ( ) [ ] % { } / : ; $ # \" ' or space"
#define TYPES_TEXT "NUMBER, WORD, ALPHANUM, ALL_CAPS, PROP_CASE, LOWER, DIGIT, CHAR"

static int p_fail(parser *p, size_t at, const char *fmt, ...) {
  if (p->err && p->errlen) {
    int k = snprintf(p->err, p->errlen, "column %zu: expected ", at + 1);
    if (k >= 0 && (size_t)k < p->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
      va_end(ap);
    }
  }
  return -1;
}

static int p_lit(parser *p, const char *lit, const char *what) {
  size_t k = strlen(lit);
  if (p->n - p->pos >= k && memcmp(p->s + p->pos, lit, k) == 0) {
    p->pos += k;
    return 0;
  }
  return p_fail(p, p->pos, "%s", what);
}

static int is_ident_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Reads an identifier and returns its index in names[0..count), or -1 (pos unchanged). */
static int p_name(parser *p, const char *const *names, int count) {
  size_t e = p->pos;
  while (e < p->n && is_ident_char(p->s[e])) e++;
  size_t len = e - p->pos;
  if (len == 0) return -1;
  for (int i = 0; i < count; i++)
    if (strlen(names[i]) == len && memcmp(names[i], p->s + p->pos, len) == 0) {
      p->pos = e;
      return i;
    }
  return -1;
}

/* A quoted character: 'c' or '\'' for the quote. delim: only delimiters. */
static int p_char(parser *p, int delim, int *out) {
  const char *what = delim ? "a quoted delimiter (one of " DELIMS_TEXT ")"
                           : "a quoted character (a-z, A-Z, 0-9 or one of " DELIMS_TEXT ")";
  size_t q = p->pos;
  if (q >= p->n || p->s[q] != '\'') return p_fail(p, q, "%s", what);
  if (q + 1 >= p->n) return p_fail(p, q + 1, "%s", what);
  char c = p->s[q + 1];
  size_t close = q + 2;
  if (c == '\\') {
    if (q + 2 >= p->n || p->s[q + 2] != '\'')
      return p_fail(p, q + 2, "\"'\" after the backslash (the only escape is '\\'' for the quote)");
    c = '\'';
    close = q + 3;
  } else if (c == '\'') {
    return p_fail(p, q + 1, "a character (the quote itself is written '\\'')");
  }
  int ci = sd_char_index((unsigned char)c);
  if (ci < 0 || (delim && ci < SD_FIRST_DELIM)) return p_fail(p, q, "%s", what);
  if (close >= p->n || p->s[close] != '\'')
    return p_fail(p, close, "the closing quote \"'\" of the character");
  p->pos = close + 1;
  *out = delim ? ci - SD_FIRST_DELIM : ci;
  return 0;
}

/* A canonical decimal integer in lo..hi (0 excluded when nozero). */
static int p_int(parser *p, int lo, int hi, int nozero, const char *what, int *out) {
  size_t st = p->pos, i = st;
  int neg = 0;
  if (i < p->n && p->s[i] == '-') {
    neg = 1;
    i++;
  }
  if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') return p_fail(p, st, "%s", what);
  if (p->s[i] == '0' && (neg || (i + 1 < p->n && p->s[i + 1] >= '0' && p->s[i + 1] <= '9')))
    return p_fail(p, st, "%s (canonical decimal: no leading zeros, no -0)", what);
  long v = 0;
  while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') {
    if (v < 100000) v = v * 10 + (p->s[i] - '0');
    i++;
  }
  if (neg) v = -v;
  if (v < lo || v > hi || (nozero && v == 0)) return p_fail(p, st, "%s", what);
  p->pos = i;
  *out = (int)v;
  return 0;
}

static int p_arg(parser *p, int kind, int *v) {
  int r;
  switch (kind) {
  case SD_ARG_CHAR: return p_char(p, 0, v);
  case SD_ARG_DELIM: return p_char(p, 1, v);
  case SD_ARG_INT: return p_int(p, -100, 100, 0, "an integer in -100..100", v);
  case SD_ARG_INDEX: return p_int(p, -5, 5, 1, "an index in -5..-1 or 1..5", v);
  case SD_ARG_TYPE:
    if ((*v = p_name(p, sd_type_names, SD_NUM_TYPES)) < 0)
      return p_fail(p, p->pos, "a type (" TYPES_TEXT ")");
    return 0;
  case SD_ARG_REGEX:
    if (p->pos < p->n && p->s[p->pos] == '\'') {
      if ((r = p_char(p, 1, v)) != 0) return r;
      *v += SD_NUM_TYPES;
      return 0;
    }
    if ((*v = p_name(p, sd_type_names, SD_NUM_TYPES)) < 0)
      return p_fail(p, p->pos, "a type (" TYPES_TEXT ") or a quoted delimiter (one of " DELIMS_TEXT
                               ")");
    return 0;
  case SD_ARG_CASE:
    if ((*v = p_name(p, sd_case_names, SD_NUM_CASES)) < 0)
      return p_fail(p, p->pos, "a case (PROPER, ALL_CAPS, LOWER)");
    return 0;
  case SD_ARG_BOUND: {
    static const char *const bounds[] = {"START", "END"};
    if ((*v = p_name(p, bounds, 2)) < 0) return p_fail(p, p->pos, "START or END");
    return 0;
  }
  default: return p_fail(p, p->pos, "an argument");
  }
}

/* One operation. For ROLE_TOP a Compose is parsed into e; otherwise into f. */
static int p_fn(parser *p, int role, sd_fn *f, sd_expr *e) {
  size_t st = p->pos;
  int op = p_name(p, sd_op_names, SD_NUM_OPS);
  int ok = op >= 0;
  if (ok && role == ROLE_OUTER) ok = sd_op_is_nesting(op);
  if (ok && role == ROLE_INNER) ok = sd_op_is_nesting(op) || sd_op_is_substring(op);
  if (!ok) {
    p->pos = st;
    return p_fail(p, st, "%s", role_what[role]);
  }
  if (p_lit(p, "(", "\"(\"")) return -1;
  if (op == SD_COMPOSE) { /* only at the top (ROLE_OUTER/INNER refuse it above) */
    e->compose = 1;
    if (p_fn(p, ROLE_OUTER, &e->fn, NULL)) return -1;
    if (p_lit(p, ", ", "\", \" between Compose's two operations")) return -1;
    if (p_fn(p, ROLE_INNER, &e->inner, NULL)) return -1;
    return p_lit(p, ")", "\")\" closing Compose (it takes two operations)");
  }
  memset(f, 0, sizeof *f);
  f->op = (uint8_t)op;
  for (int j = 0; j < sd_op_nargs[op]; j++) {
    if (j > 0) {
      char what[96];
      snprintf(what, sizeof what, "\", \" before argument %d of %s (it takes %d)", j + 1,
               sd_op_names[op], sd_op_nargs[op]);
      if (p_lit(p, ", ", what)) return -1;
    }
    int v;
    if (p_arg(p, sd_op_arg[op][j], &v)) return -1;
    f->a[j] = (int16_t)v;
  }
  char what[96];
  if (sd_op_nargs[op] == 0)
    snprintf(what, sizeof what, "\")\": %s takes no arguments", sd_op_names[op]);
  else
    snprintf(what, sizeof what, "\")\" after the %s argument of %s",
             sd_op_nargs[op] == 1 ? "only" : "last", sd_op_names[op]);
  return p_lit(p, ")", what);
}

int sd_parse(const char *text, size_t len, sd_prog *out, char *err, size_t errlen) {
  parser p = {text ? text : "", text ? len : 0, 0, err, errlen};
  out->n = 0;
  if (err && errlen) err[0] = 0;
  for (;;) {
    if (out->n >= SD_MAX_EXPRS) {
      p_fail(&p, p.pos, "at most %d expressions", SD_MAX_EXPRS);
      out->n = 0;
      return SD_ELIMIT;
    }
    sd_expr e;
    memset(&e, 0, sizeof e);
    if (p_fn(&p, ROLE_TOP, &e.fn, &e)) {
      out->n = 0;
      return -1;
    }
    if (sd_prog_push(out, &e)) {
      if (err && errlen) snprintf(err, errlen, "out of memory");
      out->n = 0;
      return SD_ENOMEM;
    }
    if (p.pos == p.n) return 0;
    if (p_lit(&p, " | ", "\" | \" between expressions or the end of the text")) {
      out->n = 0;
      return -1;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Printer                                                                   */

typedef struct tbuf {
  char *s;
  size_t n, cap;
  int oom;
} tbuf;

static void t_put(tbuf *b, const char *s, size_t k) {
  if (b->oom) return;
  if (b->cap - b->n < k + 1) {
    size_t nc = b->cap ? b->cap * 2 : 128;
    while (nc - b->n < k + 1) nc *= 2;
    char *ns = realloc(b->s, nc);
    if (!ns) {
      b->oom = 1;
      return;
    }
    b->s = ns;
    b->cap = nc;
  }
  memcpy(b->s + b->n, s, k);
  b->n += k;
  b->s[b->n] = 0;
}

static void t_str(tbuf *b, const char *s) { t_put(b, s, strlen(s)); }

static void t_char(tbuf *b, int ci) {
  char c = sd_chars[ci];
  if (c == '\'') t_str(b, "'\\''");
  else t_put(b, (char[3]){'\'', c, '\''}, 3);
}

static void t_fn(tbuf *b, const sd_fn *f) {
  t_str(b, sd_op_names[f->op]);
  t_str(b, "(");
  for (int j = 0; j < sd_op_nargs[f->op]; j++) {
    int v = f->a[j];
    char num[16];
    if (j > 0) t_str(b, ", ");
    switch (sd_op_arg[f->op][j]) {
    case SD_ARG_CHAR: t_char(b, v); break;
    case SD_ARG_DELIM: t_char(b, SD_FIRST_DELIM + v); break;
    case SD_ARG_INT:
    case SD_ARG_INDEX:
      snprintf(num, sizeof num, "%d", v);
      t_str(b, num);
      break;
    case SD_ARG_TYPE: t_str(b, sd_type_names[v]); break;
    case SD_ARG_REGEX:
      if (v < SD_NUM_TYPES) t_str(b, sd_type_names[v]);
      else t_char(b, SD_FIRST_DELIM + v - SD_NUM_TYPES);
      break;
    case SD_ARG_CASE: t_str(b, sd_case_names[v]); break;
    default: t_str(b, v == SD_START ? "START" : "END"); break;
    }
  }
  t_str(b, ")");
}

int sd_print(const sd_prog *p, char **text, size_t *len) {
  for (size_t i = 0; i < p->n; i++)
    if (!sd_expr_valid(&p->e[i])) return -1;
  tbuf b = {NULL, 0, 0, 0};
  t_put(&b, "", 0); /* an empty program prints as "" */
  for (size_t i = 0; i < p->n; i++) {
    const sd_expr *e = &p->e[i];
    if (i > 0) t_str(&b, " | ");
    if (e->compose) {
      t_str(&b, "Compose(");
      t_fn(&b, &e->fn);
      t_str(&b, ", ");
      t_fn(&b, &e->inner);
      t_str(&b, ")");
    } else {
      t_fn(&b, &e->fn);
    }
  }
  if (b.oom) {
    free(b.s);
    return -1;
  }
  *text = b.s;
  *len = b.n;
  return 0;
}

#pragma GCC visibility pop

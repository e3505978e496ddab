/* The string (RobustFill) DSL: character tables, memory helpers,
 * tokens <-> program, lossless UTF-8 and the interpreter.
 * Behaviour: shared/spec/strdsl.md (the Python reference implementation is the
 * reference wherever the spec is silent; see strdsl.h for the code-point model).
 *
 * The interpreter allocates nothing but the output buffer it is handed
 * (sd_str, grown on demand and reused by the caller), keeps no mutable static
 * state and therefore is thread-safe. Every operation of the DSL is
 * non-expanding (output length <= input length; ConstStr gives one character),
 * so each expression is evaluated straight into the output buffer and a
 * Compose applies its outer operation in place on its inner result.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC visibility push(hidden) /* only lp_plugin_entry leaves the plugin */
#include "strdsl.h"

/* ------------------------------------------------------------------------ */
/* Tables                                                                    */

const char sd_chars[SD_NUM_CHARS + 1] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789&,.?!@()[]%{}/:;$#\"' ";

const char *const sd_op_names[SD_NUM_OPS] = {"Compose", "ConstStr", "SubStr",  "GetSpan",
                                             "GetToken", "ToCase",  "Replace", "Trim",
                                             "GetUpto", "GetFrom",  "GetFirst", "GetAll"};
const char *const sd_type_names[SD_NUM_TYPES] = {"NUMBER",    "WORD",  "ALPHANUM", "ALL_CAPS",
                                                 "PROP_CASE", "LOWER", "DIGIT",    "CHAR"};
const char *const sd_case_names[SD_NUM_CASES] = {"PROPER", "ALL_CAPS", "LOWER"};

/* Compose has no arguments of its own (an outer and an inner operation). */
const uint8_t sd_op_nargs[SD_NUM_OPS] = {0, 1, 2, 6, 2, 1, 2, 0, 1, 1, 2, 1};
const uint8_t sd_op_arg[SD_NUM_OPS][6] = {
    [SD_COMPOSE] = {0},
    [SD_CONSTSTR] = {SD_ARG_CHAR},
    [SD_SUBSTR] = {SD_ARG_INT, SD_ARG_INT},
    [SD_GETSPAN] = {SD_ARG_REGEX, SD_ARG_INDEX, SD_ARG_BOUND, SD_ARG_REGEX, SD_ARG_INDEX,
                    SD_ARG_BOUND},
    [SD_GETTOKEN] = {SD_ARG_TYPE, SD_ARG_INDEX},
    [SD_TOCASE] = {SD_ARG_CASE},
    [SD_REPLACE] = {SD_ARG_DELIM, SD_ARG_DELIM},
    [SD_TRIM] = {0},
    [SD_GETUPTO] = {SD_ARG_REGEX},
    [SD_GETFROM] = {SD_ARG_REGEX},
    [SD_GETFIRST] = {SD_ARG_TYPE, SD_ARG_INDEX},
    [SD_GETALL] = {SD_ARG_TYPE},
};

/* 1 + index in sd_chars of each ASCII byte, 0 when outside the alphabet. */
static const uint8_t char_idx1[128] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    83, 67, 81, 80, 79, 73, 63, 82, 69, 70, 0,  0,  64, 0,  65, 76,
    53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 77, 78, 0,  0,  0,  66,
    68, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41,
    42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 71, 0,  72, 0,  0,
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 74, 0,  75, 0,  0,
};

/* Character classes of the ASCII bytes. */
enum { C_DIG = 1, C_UP = 2, C_LOW = 4, C_CH = 8 /* one of the 83 characters */ };
static const uint8_t cls_tab[128] = {
    0, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    8, 8,  8,  8,  8,  8,  8,  8,  8,  8,  0,  0,  8,  0,  8,  8,
    9, 9,  9,  9,  9,  9,  9,  9,  9,  9,  8,  8,  0,  0,  0,  8,
    8, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 8, 0,  8,  0,  0,
    0, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 8, 0,  8,  0,  0,
};
/* The class a type's characters belong to (PROP_CASE is matched apart). */
static const uint8_t type_mask[SD_NUM_TYPES] = {
    [SD_NUMBER] = C_DIG, [SD_WORD] = C_UP | C_LOW, [SD_ALPHANUM] = C_DIG | C_UP | C_LOW,
    [SD_ALL_CAPS] = C_UP, [SD_PROP_CASE] = C_UP, [SD_LOWER] = C_LOW,
    [SD_DIGIT] = C_DIG,   [SD_CHAR] = C_CH};

static inline unsigned cls(uint32_t c) { return c < 128 ? cls_tab[c] : 0u; }

int sd_char_index(uint32_t c) { return c < 128 ? (int)char_idx1[c] - 1 : -1; }

int sd_op_is_nesting(int op) { return op >= SD_GETTOKEN && op <= SD_GETALL; }
int sd_op_is_substring(int op) { return op == SD_SUBSTR || op == SD_GETSPAN; }

int sd_arg_valid(int kind, int v) {
  switch (kind) {
  case SD_ARG_CHAR: return v >= 0 && v < SD_NUM_CHARS;
  case SD_ARG_DELIM: return v >= 0 && v < SD_NUM_DELIMS;
  case SD_ARG_INT: return v >= -100 && v <= 100;
  case SD_ARG_INDEX: return v >= -5 && v <= 5 && v != 0;
  case SD_ARG_TYPE: return v >= 0 && v < SD_NUM_TYPES;
  case SD_ARG_REGEX: return v >= 0 && v < SD_NUM_REGEX;
  case SD_ARG_CASE: return v >= 0 && v < SD_NUM_CASES;
  case SD_ARG_BOUND: return v == SD_START || v == SD_END;
  default: return 0;
  }
}

static int fn_valid(const sd_fn *f) {
  if (f->op <= SD_COMPOSE || f->op >= SD_NUM_OPS) return 0;
  for (int j = 0; j < sd_op_nargs[f->op]; j++)
    if (!sd_arg_valid(sd_op_arg[f->op][j], f->a[j])) return 0;
  return 1;
}

int sd_expr_valid(const sd_expr *e) {
  if (!e->compose) return fn_valid(&e->fn);
  return sd_op_is_nesting(e->fn.op) && fn_valid(&e->fn) &&
         (sd_op_is_nesting(e->inner.op) || sd_op_is_substring(e->inner.op)) &&
         fn_valid(&e->inner);
}

/* ------------------------------------------------------------------------ */
/* Memory                                                                    */

void sd_prog_clear(sd_prog *p) {
  free(p->e);
  p->e = NULL;
  p->n = p->cap = 0;
}

int sd_prog_push(sd_prog *p, const sd_expr *e) {
  if (p->n == p->cap) {
    size_t nc = p->cap ? p->cap * 2 : 8;
    if (nc > SIZE_MAX / sizeof *p->e) return -1;
    sd_expr *ne = realloc(p->e, nc * sizeof *ne);
    if (!ne) return -1;
    p->e = ne;
    p->cap = nc;
  }
  p->e[p->n++] = *e;
  return 0;
}

void sd_str_free(sd_str *s) {
  free(s->c);
  s->c = NULL;
  s->n = s->cap = 0;
}

int sd_str_reserve(sd_str *s, size_t n) {
  if (n <= s->cap) return 0;
  size_t nc = s->cap > SIZE_MAX / 2 ? n : s->cap * 2;
  if (nc < n) nc = n;
  if (nc < 64) nc = 64;
  if (nc > SIZE_MAX / sizeof *s->c) return -1;
  uint32_t *c = realloc(s->c, nc * sizeof *c);
  if (!c) return -1;
  s->c = c;
  s->cap = nc;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Tokens <-> program                                                        */

static int32_t arg_token(int kind, int v) {
  switch (kind) {
  case SD_ARG_CHAR: return SD_TOK_CHAR0 + v;
  case SD_ARG_DELIM: return SD_TOK_CHAR0 + SD_FIRST_DELIM + v;
  case SD_ARG_INT:
  case SD_ARG_INDEX: return SD_TOK_INT_ZERO + v;
  case SD_ARG_TYPE: return SD_TOK_TYPE0 + v;
  case SD_ARG_REGEX:
    return v < SD_NUM_TYPES ? SD_TOK_TYPE0 + v : SD_TOK_CHAR0 + SD_FIRST_DELIM + (v - SD_NUM_TYPES);
  case SD_ARG_CASE: return SD_TOK_CASE0 + v;
  default: return v == SD_START ? SD_TOK_START : SD_TOK_END;
  }
}

/* Token ranges of the argument kinds: id in [lo, hi] (but not hole) gives the
 * value id - base; REGEX has a second range (the delimiters, values 8..28). */
static const struct {
  int16_t lo, hi, base, hole, lo2, hi2, base2;
} kind_tok[] = {
    [SD_ARG_CHAR] = {SD_TOK_CHAR0, SD_TOK_TYPE0 - 1, SD_TOK_CHAR0, -1, 1, 0, 0},
    [SD_ARG_DELIM] = {SD_TOK_CHAR0 + SD_FIRST_DELIM, SD_TOK_TYPE0 - 1, SD_TOK_CHAR0 + SD_FIRST_DELIM,
                      -1, 1, 0, 0},
    [SD_ARG_INT] = {SD_TOK_INT_ZERO - 100, SD_TOK_INT_ZERO + 100, SD_TOK_INT_ZERO, -1, 1, 0, 0},
    [SD_ARG_INDEX] = {SD_TOK_INT_ZERO - 5, SD_TOK_INT_ZERO + 5, SD_TOK_INT_ZERO, SD_TOK_INT_ZERO, 1,
                      0, 0},
    [SD_ARG_TYPE] = {SD_TOK_TYPE0, SD_TOK_CASE0 - 1, SD_TOK_TYPE0, -1, 1, 0, 0},
    [SD_ARG_REGEX] = {SD_TOK_TYPE0, SD_TOK_CASE0 - 1, SD_TOK_TYPE0, -1,
                      SD_TOK_CHAR0 + SD_FIRST_DELIM, SD_TOK_TYPE0 - 1,
                      SD_TOK_CHAR0 + SD_FIRST_DELIM - SD_NUM_TYPES},
    [SD_ARG_CASE] = {SD_TOK_CASE0, SD_TOK_START - 1, SD_TOK_CASE0, -1, 1, 0, 0},
    [SD_ARG_BOUND] = {SD_TOK_START, SD_TOK_END, SD_TOK_START, -1, 1, 0, 0},
};

/* 1 and *v when id is a valid token for an argument of that kind. */
static inline int token_arg(int kind, int32_t id, int *v) {
  if ((unsigned)kind >= sizeof kind_tok / sizeof kind_tok[0]) return 0;
  if (id >= kind_tok[kind].lo && id <= kind_tok[kind].hi && id != kind_tok[kind].hole) {
    *v = id - kind_tok[kind].base;
    return 1;
  }
  if (id >= kind_tok[kind].lo2 && id <= kind_tok[kind].hi2) {
    *v = id - kind_tok[kind].base2;
    return 1;
  }
  return 0;
}

static int ids_push(int32_t **ids, size_t *n, size_t *cap, int32_t id) {
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 32;
    if (nc > SIZE_MAX / sizeof **ids) return -1;
    int32_t *p = realloc(*ids, nc * sizeof *p);
    if (!p) return -1;
    *ids = p;
    *cap = nc;
  }
  (*ids)[(*n)++] = id;
  return 0;
}

static int fn_tokens(const sd_fn *f, int32_t **ids, size_t *n, size_t *cap) {
  if (ids_push(ids, n, cap, SD_TOK_OP0 + f->op)) return -1;
  for (int j = 0; j < sd_op_nargs[f->op]; j++)
    if (ids_push(ids, n, cap, arg_token(sd_op_arg[f->op][j], f->a[j]))) return -1;
  return 0;
}

int sd_to_tokens(const sd_prog *p, int32_t **ids, size_t *n, size_t *cap) {
  for (size_t i = 0; i < p->n; i++)
    if (!sd_expr_valid(&p->e[i])) return -1;
  for (size_t i = 0; i < p->n; i++) {
    const sd_expr *e = &p->e[i];
    if (e->compose && ids_push(ids, n, cap, SD_TOK_OP0 + SD_COMPOSE)) return -1;
    if (fn_tokens(&e->fn, ids, n, cap)) return -1;
    if (e->compose && fn_tokens(&e->inner, ids, n, cap)) return -1;
  }
  return ids_push(ids, n, cap, SD_TOK_EOS);
}

/* Human-readable name of a token id for error messages. */
static void describe_id(int32_t id, char *buf, size_t len) {
  if (id < 0 || id >= SD_VOCAB_SIZE)
    snprintf(buf, len, "id %ld, outside 0..%d", (long)id, SD_VOCAB_SIZE - 1);
  else if (id == SD_TOK_PAD) snprintf(buf, len, "id 0 PAD");
  else if (id == SD_TOK_BOS) snprintf(buf, len, "id 1 BOS");
  else if (id == SD_TOK_EOS) snprintf(buf, len, "id 2 EOS");
  else if (id < SD_TOK_CHAR0)
    snprintf(buf, len, "id %ld, operation %s", (long)id, sd_op_names[id - SD_TOK_OP0]);
  else if (id < SD_TOK_TYPE0) {
    char c = sd_chars[id - SD_TOK_CHAR0];
    snprintf(buf, len, "id %ld, character %s", (long)id,
             c == '\'' ? "'\\''" : (char[4]){'\'', c, '\'', 0});
  } else if (id < SD_TOK_CASE0)
    snprintf(buf, len, "id %ld, type %s", (long)id, sd_type_names[id - SD_TOK_TYPE0]);
  else if (id < SD_TOK_START)
    snprintf(buf, len, "id %ld, case %s", (long)id, sd_case_names[id - SD_TOK_CASE0]);
  else if (id == SD_TOK_START) snprintf(buf, len, "id %ld, START", (long)id);
  else if (id == SD_TOK_END) snprintf(buf, len, "id %ld, END", (long)id);
  else snprintf(buf, len, "id %ld, integer %ld", (long)id, (long)(id - SD_TOK_INT_ZERO));
}

static const char *const arg_what[] = {
    [SD_ARG_CHAR] = "a character (ids 15..97)",
    [SD_ARG_DELIM] = "a delimiter character (ids 77..97)",
    [SD_ARG_INT] = "an integer -100..100 (ids 111..311)",
    [SD_ARG_INDEX] = "an index -5..-1 or 1..5 (ids 206..210, 212..216)",
    [SD_ARG_TYPE] = "a type (ids 98..105)",
    [SD_ARG_REGEX] = "a type or a delimiter character (ids 98..105, 77..97)",
    [SD_ARG_CASE] = "a case PROPER, ALL_CAPS or LOWER (ids 106..108)",
    [SD_ARG_BOUND] = "START or END (ids 109, 110)",
};
enum { ROLE_TOP = 0, ROLE_OUTER, ROLE_INNER };
static const char *const role_what[] = {
    "an operation (ids 3..14)",
    ("a nesting operation GetToken, ToCase, Replace, Trim, GetUpto, GetFrom, GetFirst or GetAll "
     "(ids 7..14) as Compose's outer operation"),
    "a nesting or substring operation (ids 5..6, 7..14) as Compose's inner operation",
};

typedef struct tokp {
  const int32_t *ids;
  size_t n, pos;
  char *err;
  size_t errlen;
} tokp;

#define TP_RANOUT 1 /* the ids ended inside an expression */

static int tp_fail(tokp *t, const char *what) {
  if (t->err && t->errlen) {
    char d[64];
    describe_id(t->ids[t->pos], d, sizeof d);
    snprintf(t->err, t->errlen, "token %zu (%s): expected %s", t->pos, d, what);
  }
  return -1;
}

static int tp_fn(tokp *t, sd_fn *f, int role) {
  if (t->pos >= t->n) return TP_RANOUT;
  int32_t id = t->ids[t->pos];
  int okop = id >= SD_TOK_OP0 && id < SD_TOK_OP0 + SD_NUM_OPS;
  int op = okop ? id - SD_TOK_OP0 : -1;
  if (okop && role == ROLE_OUTER) okop = sd_op_is_nesting(op);
  if (okop && role == ROLE_INNER) okop = sd_op_is_nesting(op) || sd_op_is_substring(op);
  if (!okop) return tp_fail(t, role_what[role]);
  f->op = (uint8_t)op; /* the caller zeroed *f */
  t->pos++;
  for (int j = 0; j < sd_op_nargs[op]; j++) {
    int kind = sd_op_arg[op][j], v;
    if (t->pos >= t->n) return TP_RANOUT;
    if (!token_arg(kind, t->ids[t->pos], &v)) {
      char what[160];
      snprintf(what, sizeof what, "%s as argument %d of %s", arg_what[kind], j + 1,
               sd_op_names[op]);
      return tp_fail(t, what);
    }
    f->a[j] = (int16_t)v;
    t->pos++;
  }
  return 0;
}

static int tp_expr(tokp *t, sd_expr *e) {
  memset(e, 0, sizeof *e);
  if (t->pos >= t->n) return TP_RANOUT;
  if (t->ids[t->pos] == SD_TOK_OP0 + SD_COMPOSE) {
    e->compose = 1;
    t->pos++;
    int r = tp_fn(t, &e->fn, ROLE_OUTER);
    if (r) return r;
    return tp_fn(t, &e->inner, ROLE_INNER);
  }
  return tp_fn(t, &e->fn, ROLE_TOP);
}

static int from_tokens(const int32_t *ids, size_t n, sd_prog *out, int prefix, int *ended,
                       char *err, size_t errlen) {
  tokp t = {ids, n, 0, err, errlen};
  out->n = 0;
  *ended = 0;
  if (err && errlen) err[0] = 0;
  for (;;) {
    if (t.pos >= n) {
      if (prefix || out->n > 0) return 0;
      if (err && errlen) snprintf(err, errlen, "empty program: no tokens before the end");
      return -1;
    }
    if (ids[t.pos] == SD_TOK_EOS) {
      if (out->n == 0) {
        if (err && errlen) snprintf(err, errlen, "token 0 (id 2 EOS): empty program, expected %s",
                                    role_what[ROLE_TOP]);
        return -1;
      }
      *ended = 1;
      return 0;
    }
    if (out->n >= SD_MAX_EXPRS) {
      if (err && errlen)
        snprintf(err, errlen, "token %zu: more than %d expressions (the limit)", t.pos,
                 SD_MAX_EXPRS);
      out->n = 0;
      return SD_ELIMIT;
    }
    if (out->n == out->cap) { /* room for one more, parsed in place */
      sd_expr dummy;
      memset(&dummy, 0, sizeof dummy);
      if (sd_prog_push(out, &dummy)) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        out->n = 0;
        return SD_ENOMEM;
      }
      out->n--;
    }
    size_t start = t.pos;
    int r = tp_expr(&t, &out->e[out->n]);
    if (r == TP_RANOUT) {
      if (prefix) return 0;
      if (err && errlen)
        snprintf(err, errlen,
                 "token %zu: the ids end inside the expression that starts at token %zu", n,
                 start);
      out->n = 0;
      return -1;
    }
    if (r) {
      out->n = 0;
      return r;
    }
    out->n++;
  }
}

int sd_from_tokens(const int32_t *ids, size_t n, sd_prog *out, char *err, size_t errlen) {
  int ended;
  return from_tokens(ids, n, out, 0, &ended, err, errlen);
}

int sd_from_tokens_prefix(const int32_t *ids, size_t n, sd_prog *out, int *ended, char *err,
                          size_t errlen) {
  int dummy;
  return from_tokens(ids, n, out, 1, ended ? ended : &dummy, err, errlen);
}

/* ------------------------------------------------------------------------ */
/* UTF-8 (lossless: a byte that is not part of a valid sequence becomes     */
/* SD_RAW_BYTE_BASE + byte and is written back as itself)                    */

size_t sd_utf8_next(const unsigned char *s, size_t len, uint32_t *cp) {
  unsigned b = s[0];
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  if (b >= 0xC2 && b <= 0xDF) {
    if (len >= 2 && (s[1] & 0xC0) == 0x80) {
      *cp = ((uint32_t)(b & 0x1F) << 6) | (s[1] & 0x3Fu);
      return 2;
    }
  } else if (b >= 0xE0 && b <= 0xEF) {
    unsigned lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    if (len >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80) {
      *cp = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3Fu);
      return 3;
    }
  } else if (b >= 0xF0 && b <= 0xF4) {
    unsigned lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    if (len >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 &&
        (s[3] & 0xC0) == 0x80) {
      *cp = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
            ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3Fu);
      return 4;
    }
  }
  *cp = SD_RAW_BYTE_BASE + b;
  return 1;
}

size_t sd_utf8_put(uint32_t c, char buf[4]) {
  if (c < 0x80) {
    buf[0] = (char)c;
    return 1;
  }
  if (c >= SD_RAW_BYTE_BASE + 0x80 && c <= SD_RAW_BYTE_BASE + 0xFF) {
    buf[0] = (char)(unsigned char)(c - SD_RAW_BYTE_BASE);
    return 1;
  }
  if (c < 0x800) {
    buf[0] = (char)(0xC0 | (c >> 6));
    buf[1] = (char)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c > 0x10FFFF) c = 0xFFFD; /* never produced by sd_decode */
  if (c < 0x10000) {
    buf[0] = (char)(0xE0 | (c >> 12));
    buf[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    buf[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  buf[0] = (char)(0xF0 | (c >> 18));
  buf[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  buf[2] = (char)(0x80 | ((c >> 6) & 0x3F));
  buf[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

/* Decoding never yields more code points than bytes: at most len are reserved. */
int sd_decode(const char *s, size_t len, sd_str *out) {
  out->n = 0;
  if (sd_str_reserve(out, len ? len : 1)) return -1;
  const unsigned char *u = (const unsigned char *)s;
  uint32_t *d = out->c;
  size_t i = 0, k = 0;
  while (i < len) {
    if (u[i] < 0x80) {
      d[k++] = u[i++];
      continue;
    }
    i += sd_utf8_next(u + i, len - i, &d[k]);
    k++;
  }
  out->n = k;
  return 0;
}

int sd_encode(const uint32_t *c, size_t n, char **out, size_t *len) {
  char tmp[4];
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += c[i] < 0x80 ? 1 : sd_utf8_put(c[i], tmp);
  char *b = malloc(total + 1);
  if (!b) return -1;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (c[i] < 0x80) b[o++] = (char)c[i];
    else o += sd_utf8_put(c[i], b + o);
  }
  b[o] = 0;
  *out = b;
  *len = o;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Interpreter                                                               */

/* Leftmost match of regex r (type 0..7 or 8 + delimiter) in s[i..n):
 * 1 and [*ms, *me), or 0. Matches never are empty. */
static inline int find_match(int r, const uint32_t *s, size_t n, size_t i, size_t *ms,
                             size_t *me) {
  if (r >= SD_NUM_TYPES) {
    if (r >= SD_NUM_REGEX) return 0;
    uint32_t d = (unsigned char)sd_chars[SD_FIRST_DELIM + r - SD_NUM_TYPES];
    for (; i < n; i++)
      if (s[i] == d) {
        *ms = i;
        *me = i + 1;
        return 1;
      }
    return 0;
  }
  if (r < 0) return 0;
  if (r == SD_PROP_CASE) { /* [A-Z][a-z]+ */
    for (; i + 1 < n; i++)
      if ((cls(s[i]) & C_UP) && (cls(s[i + 1]) & C_LOW)) {
        size_t j = i + 2;
        while (j < n && (cls(s[j]) & C_LOW)) j++;
        *ms = i;
        *me = j;
        return 1;
      }
    return 0;
  }
  unsigned m = type_mask[r];
  while (i < n && !(cls(s[i]) & m)) i++;
  if (i >= n) return 0;
  size_t j = i + 1;
  if (r != SD_DIGIT && r != SD_CHAR)
    while (j < n && (cls(s[j]) & m)) j++;
  *ms = i;
  *me = j;
  return 1;
}

/* The last match of r that ends at or before `end`, where end is n or the
 * start of a match: 1 and [*ms, *me), or 0. Every regex of the DSL matches
 * maximal runs (of a class, or a capital then a maximal run of lower-case
 * letters) or single characters, so scanning backwards finds exactly the
 * matches a left-to-right scan finds. */
static inline int find_match_rev(int r, const uint32_t *s, size_t end, size_t *ms, size_t *me) {
  size_t j = end;
  if (r >= SD_NUM_TYPES) {
    if (r >= SD_NUM_REGEX) return 0;
    uint32_t d = (unsigned char)sd_chars[SD_FIRST_DELIM + r - SD_NUM_TYPES];
    for (; j > 0; j--)
      if (s[j - 1] == d) {
        *ms = j - 1;
        *me = j;
        return 1;
      }
    return 0;
  }
  if (r < 0) return 0;
  if (r == SD_PROP_CASE) {
    for (;;) {
      while (j > 0 && !(cls(s[j - 1]) & C_LOW)) j--;
      if (j == 0) return 0;
      size_t i = j - 1; /* s[i .. j) is a maximal run of lower-case letters */
      while (i > 0 && (cls(s[i - 1]) & C_LOW)) i--;
      if (i > 0 && (cls(s[i - 1]) & C_UP)) {
        *ms = i - 1;
        *me = j;
        return 1;
      }
      j = i;
    }
  }
  unsigned m = type_mask[r];
  while (j > 0 && !(cls(s[j - 1]) & m)) j--;
  if (j == 0) return 0;
  size_t i = j - 1;
  if (r != SD_DIGIT && r != SD_CHAR)
    while (i > 0 && (cls(s[i - 1]) & m)) i--;
  *ms = i;
  *me = j;
  return 1;
}

/* The k-th match from the end (k >= 1): 1 and its span, or 0 with *found =
 * the number of matches there are (< k). */
static int nth_match_rev(int r, const uint32_t *s, size_t n, size_t k, size_t *ms, size_t *me,
                         size_t *found) {
  size_t end = n, a, b, m = 0;
  while (find_match_rev(r, s, end, &a, &b)) {
    if (++m == k) {
      *ms = a;
      *me = b;
      return 1;
    }
    end = a;
  }
  *found = m;
  return 0;
}

static size_t count_matches(int r, const uint32_t *s, size_t n) {
  size_t m = 0, pos = 0, a, b;
  while (find_match(r, s, n, pos, &a, &b)) {
    m++;
    pos = b;
  }
  return m;
}

/* The k-th (0-based) match: 1 and its span, or 0 with *found = the number of
 * matches there are (< k + 1). */
static int nth_match(int r, const uint32_t *s, size_t n, size_t k, size_t *ms, size_t *me,
                     size_t *found) {
  size_t pos = 0, a, b, m = 0;
  while (find_match(r, s, n, pos, &a, &b)) {
    if (m == k) {
      *ms = a;
      *me = b;
      return 1;
    }
    m++;
    pos = b;
  }
  *found = m;
  return 0;
}

/* Copies the matches of r, the first `limit` of them, to d (which may be s:
 * the write position never passes the read position). Returns the length. */
static size_t join_matches(int r, const uint32_t *s, size_t n, size_t limit, uint32_t *d) {
  size_t pos = 0, w = 0, a, b, m = 0;
  while (m < limit && find_match(r, s, n, pos, &a, &b)) {
    for (size_t k = a; k < b; k++) d[w++] = s[k];
    m++;
    pos = b;
  }
  return w;
}

/* Python's str.isspace() (what str.strip() strips). */
static inline int py_space(uint32_t c) {
  if (c < 128) return (c >= 9 && c <= 13) || (c >= 28 && c <= 32);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static inline uint32_t to_upper(uint32_t c) { return c - 'a' < 26u ? c - 32 : c; }
static inline uint32_t to_lower(uint32_t c) { return c - 'A' < 26u ? c + 32 : c; }

static size_t copy_range(const uint32_t *s, size_t a, size_t b, uint32_t *d) {
  if (b <= a) return 0;
  if (d + 0 != s + a) memmove(d, s + a, (b - a) * sizeof *d);
  return b - a;
}

/* One side of GetSpan (reference: Python's _index with the m-1 quirk). */
static ptrdiff_t span_pos(int r, int i, int bound, const uint32_t *s, size_t n) {
  size_t a = 0, b = 0, m;
  if (i > 0) {
    if (nth_match(r, s, n, (size_t)(i - 1), &a, &b, &m))
      return (ptrdiff_t)(bound == SD_START ? a : b);
    return m == 0 ? -1 : (ptrdiff_t)m - 1; /* index >= m */
  }
  if (i < 0) { /* k = m + i */
    if (nth_match_rev(r, s, n, (size_t)-i, &a, &b, &m))
      return (ptrdiff_t)(bound == SD_START ? a : b);
    return m == 0 ? -1 : 0; /* k < 0 */
  }
  m = count_matches(r, s, n); /* i == 0 (not a valid index): k = m */
  return m == 0 ? -1 : (ptrdiff_t)m - 1;
}

/* Applies one operation (not Compose) to s[0..n), writing to d. d may equal s
 * (every operation reads what it needs before it writes over it) or be
 * disjoint from it; d has room for max(n, 1). Returns the output length. */
static size_t apply(const sd_fn *f, const uint32_t *s, size_t n, uint32_t *d) {
  size_t a = 0, b = 0, m = 0;
  switch (f->op) {
  case SD_CONSTSTR:
    if (f->a[0] < 0 || f->a[0] >= SD_NUM_CHARS) return 0;
    d[0] = (unsigned char)sd_chars[f->a[0]];
    return 1;
  case SD_SUBSTR: {
    ptrdiff_t len = (ptrdiff_t)n, k1 = f->a[0], k2 = f->a[1];
    ptrdiff_t p1 = k1 > 0 ? k1 - 1 : len + k1, p2 = k2 > 0 ? k2 - 1 : len + k2;
    if (p1 >= p2) return 0;
    ptrdiff_t lo = p1, hi = p2 == len ? len : p2 + 1; /* value[p1:p2 + 1] */
    if (lo < 0) { /* Python slice normalisation */
      lo += len;
      if (lo < 0) lo = 0;
    } else if (lo > len) lo = len;
    if (hi < 0) {
      hi += len;
      if (hi < 0) hi = 0;
    } else if (hi > len) hi = len;
    return copy_range(s, (size_t)lo, (size_t)(hi > lo ? hi : lo), d);
  }
  case SD_GETSPAN: {
    ptrdiff_t p1 = span_pos(f->a[0], f->a[1], f->a[2], s, n);
    if (p1 < 0) return 0;
    ptrdiff_t p2 = span_pos(f->a[3], f->a[4], f->a[5], s, n);
    if (p2 < 0 || p1 >= p2) return 0;
    return copy_range(s, (size_t)p1, (size_t)p2, d);
  }
  case SD_GETTOKEN: {
    int r = f->a[0], i = f->a[1];
    if (r < 0 || r >= SD_NUM_TYPES) return 0;
    if (i > 0) {
      if (!nth_match(r, s, n, (size_t)(i - 1), &a, &b, &m)) return 0;
    } else {
      if (i == 0 || !nth_match_rev(r, s, n, (size_t)-i, &a, &b, &m)) return 0;
    }
    return copy_range(s, a, b, d);
  }
  case SD_TOCASE:
    if (n == 0) return 0;
    switch (f->a[0]) {
    case SD_PROPER:
      d[0] = to_upper(s[0]);
      for (size_t k = 1; k < n; k++) d[k] = to_lower(s[k]);
      return n;
    case SD_CASE_ALL_CAPS:
      for (size_t k = 0; k < n; k++) d[k] = to_upper(s[k]);
      return n;
    case SD_CASE_LOWER:
      for (size_t k = 0; k < n; k++) d[k] = to_lower(s[k]);
      return n;
    default: return 0;
    }
  case SD_REPLACE: {
    if (f->a[0] < 0 || f->a[0] >= SD_NUM_DELIMS || f->a[1] < 0 || f->a[1] >= SD_NUM_DELIMS)
      return 0;
    uint32_t c1 = (unsigned char)sd_chars[SD_FIRST_DELIM + f->a[0]];
    uint32_t c2 = (unsigned char)sd_chars[SD_FIRST_DELIM + f->a[1]];
    for (size_t k = 0; k < n; k++) d[k] = s[k] == c1 ? c2 : s[k];
    return n;
  }
  case SD_TRIM:
    a = 0;
    b = n;
    while (a < b && py_space(s[a])) a++;
    while (b > a && py_space(s[b - 1])) b--;
    return copy_range(s, a, b, d);
  case SD_GETUPTO:
    if (!find_match(f->a[0], s, n, 0, &a, &b)) return 0;
    return copy_range(s, 0, b, d);
  case SD_GETFROM:
    if (!find_match(f->a[0], s, n, 0, &a, &b)) return 0;
    return copy_range(s, b, n, d);
  case SD_GETFIRST: {
    int r = f->a[0], i = f->a[1];
    if (r < 0 || r >= SD_NUM_TYPES) return 0;
    if (i > 0) return join_matches(r, s, n, (size_t)i, d); /* min(i, m) matches */
    /* matches[:i] for i <= 0: the matches before the start of the |i|-th
     * match from the end (runs are never cut there) */
    if (i == 0 || !nth_match_rev(r, s, n, (size_t)-i, &a, &b, &m)) return 0;
    return join_matches(r, s, a, SIZE_MAX, d);
  }
  case SD_GETALL:
    if (f->a[0] < 0 || f->a[0] >= SD_NUM_TYPES) return 0;
    return join_matches(f->a[0], s, n, SIZE_MAX, d);
  default: return 0;
  }
}

/* Appends expression e's output on in[0..n) to out. It reserves at most
 * max(n, 1) code points beyond out->n (plugin.c's eval_into relies on it). */
static int eval_append(const sd_expr *e, const uint32_t *in, size_t n, sd_str *out) {
  size_t need = n ? n : 1;
  if (out->cap - out->n < need && sd_str_reserve(out, out->n + need)) return -1;
  uint32_t *d = out->c + out->n;
  size_t len;
  if (e->compose) {
    len = apply(&e->inner, in, n, d);
    len = apply(&e->fn, d, len, d);
  } else {
    len = apply(&e->fn, in, n, d);
  }
  out->n += len;
  return 0;
}

/* in may be out->c itself (evaluation in place); otherwise it must not point
 * into out's buffer. */
int sd_eval_expr(const sd_expr *e, const uint32_t *in, size_t n, sd_str *out) {
  out->n = 0;
  return eval_append(e, in, n, out);
}

/* in must not point into out's buffer. */
int sd_eval(const sd_prog *p, const uint32_t *in, size_t n, sd_str *out) {
  out->n = 0;
  for (size_t i = 0; i < p->n; i++)
    if (eval_append(&p->e[i], in, n, out)) return -1;
  return 0;
}

#pragma GCC visibility pop

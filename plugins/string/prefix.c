/* Judging program prefixes against examples, for execution-guided search
 * (strdsl.h, "prefix judgement"; the plugin's prefix_ok).
 *
 * A prefix is a run of complete expressions, then possibly one unfinished
 * trailing expression (or EOS). Concat only appends, so:
 *
 * 1. The complete expressions are run on each example input k; their output
 *    must be a prefix of out_k (equal to it once EOS was read). p_k is the
 *    length of that output (bytes: outputs are compared as the bytes they
 *    encode to, exactly as the plugin's check() compares them).
 * 2. The trailing expression, whatever its completion, outputs x_k on input k,
 *    and x_k must equal out_k[p_k : p_k + |x_k|] on every example (an output
 *    that would overrun the target fails). When the remaining argument slots
 *    have at most SD_PREFIX_MAX_COMPLETIONS completions, each completion is
 *    evaluated and the prefix is refused when none fits every example.
 *    Expressions that can output "" on every input whatever the given tokens
 *    are accepted without enumerating (the empty output always fits):
 *      - SubStr before its k2 (k2 = k1 gives ""),
 *      - GetSpan before r2 (the second side equal to the first gives ""),
 *      - Compose before its inner operation, or whose inner operation is one
 *        of these (every nesting operation maps "" to "").
 *    Every other unfinished expression has at most 21 * 21 = 441 completions
 *    (Replace(?, ?)), so it is always decided exactly.
 *
 * Exact: a prefix is refused only when no completion of it can be consistent
 * (what follows the trailing expression is left free).
 *
 * SD_PREFIX_PRODUCTIVE (opt-in, not exact): also refuses any expression that
 * outputs "" on every example (unless every target is ""), so a trailing
 * expression needs a fitting completion that outputs something somewhere
 * (tried up to SD_PREFIX_MAX_PRODUCTIVE completions, else "maybe"), and
 * nothing but EOS may follow once every target is complete. Removing such
 * expressions from a consistent program leaves a consistent program, whose
 * prefixes are all accepted: no behaviour is lost, only redundant programs.
 *
 * Nothing is cached between calls; the buffers are on the stack for ordinary
 * sizes, else on the heap, and released on return, so calls are thread-safe.
 * Never prints or exits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC visibility push(hidden)
#include "lpsynth/plugin.h"
#include "strdsl.h"

/* ------------------------------------------------------------------------ */
/* Argument values                                                           */

/* Number of values of an argument kind. */
static int kind_count(int kind) {
  switch (kind) {
  case SD_ARG_CHAR: return SD_NUM_CHARS;
  case SD_ARG_DELIM: return SD_NUM_DELIMS;
  case SD_ARG_INT: return 201;
  case SD_ARG_INDEX: return 10;
  case SD_ARG_TYPE: return SD_NUM_TYPES;
  case SD_ARG_REGEX: return SD_NUM_REGEX;
  case SD_ARG_CASE: return SD_NUM_CASES;
  default: return 2; /* SD_ARG_BOUND */
  }
}

/* The j-th value (0 <= j < kind_count) of a kind. */
static int kind_value(int kind, int j) {
  switch (kind) {
  case SD_ARG_INT: return j - 100;
  case SD_ARG_INDEX: return j < 5 ? j - 5 : j - 4; /* -5..-1, 1..5 */
  default: return j;
  }
}

/* The value of token id as an argument of that kind: 1 and *v, or 0. */
static int token_value(int kind, int32_t id, int *v) {
  const int32_t d0 = SD_TOK_CHAR0 + SD_FIRST_DELIM; /* first delimiter token */
  switch (kind) {
  case SD_ARG_CHAR:
    if (id < SD_TOK_CHAR0 || id >= SD_TOK_TYPE0) return 0;
    *v = id - SD_TOK_CHAR0;
    return 1;
  case SD_ARG_DELIM:
    if (id < d0 || id >= SD_TOK_TYPE0) return 0;
    *v = id - d0;
    return 1;
  case SD_ARG_INT:
  case SD_ARG_INDEX: {
    int k = (int)(id - SD_TOK_INT_ZERO);
    if (id < SD_TOK_INT_ZERO - 100 || id > SD_TOK_INT_ZERO + 100) return 0;
    if (kind == SD_ARG_INDEX && (k == 0 || k < -5 || k > 5)) return 0;
    *v = k;
    return 1;
  }
  case SD_ARG_TYPE:
    if (id < SD_TOK_TYPE0 || id >= SD_TOK_CASE0) return 0;
    *v = id - SD_TOK_TYPE0;
    return 1;
  case SD_ARG_REGEX:
    if (id >= SD_TOK_TYPE0 && id < SD_TOK_CASE0) *v = id - SD_TOK_TYPE0;
    else if (id >= d0 && id < SD_TOK_TYPE0) *v = SD_NUM_TYPES + (id - d0);
    else return 0;
    return 1;
  case SD_ARG_CASE:
    if (id < SD_TOK_CASE0 || id >= SD_TOK_START) return 0;
    *v = id - SD_TOK_CASE0;
    return 1;
  case SD_ARG_BOUND:
    if (id != SD_TOK_START && id != SD_TOK_END) return 0;
    *v = id == SD_TOK_START ? SD_START : SD_END;
    return 1;
  default: return 0;
  }
}

/* Tokens of a complete expression. */
static size_t expr_tokens(const sd_expr *e) {
  if (e->compose) return 3 + (size_t)sd_op_nargs[e->fn.op] + sd_op_nargs[e->inner.op];
  return 1 + (size_t)sd_op_nargs[e->fn.op];
}

/* ------------------------------------------------------------------------ */
/* The unfinished trailing expression                                        */

/* What the trailing tokens say: e (the fields given so far), and the
 * operation whose arguments are still open: *open (&e->fn or &e->inner) with
 * *given of its arguments given; *open = NULL when no argument is open but an
 * operation is (Compose without its outer or inner operation). 0, or -1 when
 * the tokens are malformed. n >= 1 and the tokens do not complete the
 * expression (the caller parsed the complete ones). */
static int parse_trailing(const int32_t *t, size_t n, sd_expr *e, sd_fn **open, int *given) {
  memset(e, 0, sizeof *e);
  *open = NULL;
  *given = 0;
  size_t pos = 0;
  if (t[0] == SD_TOK_OP0 + SD_COMPOSE) {
    e->compose = 1;
    pos = 1;
  }
  for (int role = 0; role < (e->compose ? 2 : 1); role++) {
    sd_fn *f = role == 0 ? &e->fn : &e->inner;
    if (pos >= n) return 0; /* the operation itself is still open */
    int32_t id = t[pos++];
    if (id < SD_TOK_OP0 || id >= SD_TOK_OP0 + SD_NUM_OPS) return -1;
    int op = id - SD_TOK_OP0;
    if (e->compose && role == 0 && !sd_op_is_nesting(op)) return -1;
    if (e->compose && role == 1 && !sd_op_is_nesting(op) && !sd_op_is_substring(op)) return -1;
    if (!e->compose && op == SD_COMPOSE) return -1;
    f->op = (uint8_t)op;
    int j = 0;
    for (; j < sd_op_nargs[op] && pos < n; j++) {
      int v;
      if (!token_value(sd_op_arg[op][j], t[pos++], &v)) return -1;
      f->a[j] = (int16_t)v;
    }
    if (j < sd_op_nargs[op]) {
      *open = f;
      *given = j;
      return pos == n ? 0 : -1;
    }
  }
  return -1; /* complete: not a trailing expression */
}

/* 1 when some completion of f's open arguments (those after the first
 * `given`) outputs "" on every input: SubStr before k2, GetSpan before r2. */
static int empty_reachable(const sd_fn *f, int given) {
  if (f->op == SD_SUBSTR) return given < 2;
  if (f->op == SD_GETSPAN) return given < 4;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Examples                                                                  */

typedef struct px_ex {
  const uint32_t *in; /* decoded input */
  size_t n;
  const char *out;    /* target bytes */
  size_t olen, off;   /* off: bytes of the target produced so far (p_k) */
} px_ex;

/* 1 when the bytes of c[0..n) equal b[off .. off + their length) (within
 * blen); *next = off + their length. */
static int match_at(const uint32_t *c, size_t n, const char *b, size_t blen, size_t off,
                    size_t *next) {
  for (size_t i = 0; i < n; i++) {
    if (c[i] < 0x80) {
      if (off >= blen || (unsigned char)b[off] != c[i]) return 0;
      off++;
    } else {
      char u[4];
      size_t k = sd_utf8_put(c[i], u);
      if (blen - off < k || memcmp(b + off, u, k) != 0) return 0;
      off += k;
    }
  }
  if (next) *next = off;
  return 1;
}

/* Decodes s[0..len) into d (room for len code points); returns the count. */
static size_t decode_into(const char *s, size_t len, uint32_t *d) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, k = 0;
  while (i < len) {
    if (u[i] < 0x80) d[k++] = u[i++];
    else i += sd_utf8_next(u + i, len - i, &d[k++]);
  }
  return k;
}

/* 1 when e's output on every example fits the target there (and, with
 * progress, is not "" on all of them). *first: the example to try first (the
 * one that failed last, moved to the front). */
static int fits(const sd_expr *e, const px_ex *xs, size_t n_ex, int progress, sd_str *scratch,
                size_t *first) {
  int moved = 0;
  for (size_t j = 0; j < n_ex; j++) {
    size_t k = j == 0 ? *first : (j <= *first ? j - 1 : j);
    const px_ex *x = &xs[k];
    if (sd_eval_expr(e, x->in, x->n, scratch)) return 0; /* cannot happen: room enough */
    if (!match_at(scratch->c, scratch->n, x->out, x->olen, x->off, NULL)) {
      *first = k;
      return 0;
    }
    moved |= scratch->n > 0;
  }
  return moved || !progress;
}

/* Whether some completion of the open arguments of e (open = &e->fn or
 * &e->inner, `given` of them given) fits every example: 1, 0, or -1 when
 * there are more than cap (undecided). */
static int some_completion_fits(sd_expr *e, sd_fn *open, int given, const px_ex *xs,
                                size_t n_ex, int progress, long cap, sd_str *scratch) {
  const int op = open->op, na = sd_op_nargs[op];
  long total = 1;
  for (int j = given; j < na; j++) {
    total *= kind_count(sd_op_arg[op][j]);
    if (total > cap) return -1;
  }
  int idx[6] = {0};
  size_t first = 0;
  for (long c = 0; c < total; c++) {
    for (int j = given; j < na; j++) open->a[j] = (int16_t)kind_value(sd_op_arg[op][j], idx[j]);
    if (fits(e, xs, n_ex, progress, scratch, &first)) return 1;
    for (int j = na - 1; j >= given; j--) { /* odometer, last argument fastest */
      if (++idx[j] < kind_count(sd_op_arg[op][j])) break;
      idx[j] = 0;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The check                                                                 */

#define PX_STACK_EXPRS 64
#define PX_STACK_EX 16
#define PX_STACK_CP 2048
#define PX_STACK_OUT 1024

int sd_prefix_check(const int32_t *ids, size_t n, const struct lp_example *ex, size_t n_ex,
                    unsigned flags, int *ok) {
  *ok = 0;
  sd_expr estk[PX_STACK_EXPRS];
  sd_prog p = {0, n <= PX_STACK_EXPRS ? estk : NULL, n <= PX_STACK_EXPRS ? PX_STACK_EXPRS : 0};
  px_ex xstk[PX_STACK_EX], *xs = xstk;
  uint32_t cstk[PX_STACK_CP], *cp = cstk;
  uint32_t ostk[PX_STACK_OUT];
  sd_str scratch = {ostk, 0, PX_STACK_OUT};
  int rc = 0, ended = 0;

  int r = sd_from_tokens_prefix(ids, n, &p, &ended, NULL, 0);
  if (r) { /* malformed ids or too many expressions: no program has this prefix */
    if (r == SD_ENOMEM) rc = SD_ENOMEM;
    goto done;
  }
  size_t pos = 0; /* where the trailing tokens start */
  for (size_t i = 0; i < p.n; i++) pos += expr_tokens(&p.e[i]);
  sd_expr te;
  sd_fn *open = NULL;
  int given = 0, trailing = !ended && pos < n;
  if (trailing && parse_trailing(ids + pos, n - pos, &te, &open, &given)) goto done;

  /* examples: decoded inputs; targets */
  size_t total_in = 0, max_in = 1;
  int all_empty = 1; /* every target is "" */
  for (size_t k = 0; k < n_ex; k++) {
    total_in += ex[k].len[0];
    if (ex[k].len[0] > max_in) max_in = ex[k].len[0];
    if (ex[k].len[1]) all_empty = 0;
  }
  /* productive: no expression that outputs "" on every example (pointless
   * unless every target is "") */
  const int progress = (flags & SD_PREFIX_PRODUCTIVE) && !all_empty;
  if (n_ex > PX_STACK_EX && !(xs = malloc(n_ex * sizeof *xs))) goto oom;
  if (total_in > PX_STACK_CP && !(cp = malloc(total_in * sizeof *cp))) goto oom;
  if (max_in > PX_STACK_OUT) {
    scratch = (sd_str){0};
    if (sd_str_reserve(&scratch, max_in)) goto oom;
  }
  size_t used = 0;
  for (size_t k = 0; k < n_ex; k++) {
    px_ex *x = &xs[k];
    x->in = cp + used;
    x->n = decode_into(ex[k].part[0] ? ex[k].part[0] : "", ex[k].len[0], cp + used);
    used += x->n;
    x->out = ex[k].part[1] ? ex[k].part[1] : "";
    x->olen = ex[k].len[1];
    x->off = 0;
  }
  /* 1. the complete expressions: their outputs must continue each target */
  for (size_t i = 0; i < p.n; i++) {
    int moved = 0;
    for (size_t k = 0; k < n_ex; k++) {
      px_ex *x = &xs[k];
      /* sd_eval_expr needs room for max(input length, 1): scratch has it */
      if (sd_eval_expr(&p.e[i], x->in, x->n, &scratch)) goto oom;
      if (!match_at(scratch.c, scratch.n, x->out, x->olen, x->off, &x->off)) goto done;
      moved |= scratch.n > 0;
    }
    if (progress && !moved) goto done;
  }
  int complete = 1; /* every target fully produced */
  for (size_t k = 0; k < n_ex; k++) {
    if (xs[k].off != xs[k].olen) complete = 0;
    if (ended && xs[k].off != xs[k].olen) goto done;
  }
  if (!trailing) {
    *ok = 1;
    goto done;
  }
  /* 2. the trailing expression */
  if (progress) {
    /* a productive expression overruns a complete target */
    if (complete) goto done;
    if (!open || (te.compose && open == &te.fn)) {
      *ok = 1; /* the inner operation is not known: too many completions to try */
      goto done;
    }
    r = some_completion_fits(&te, open, given, xs, n_ex, 1, SD_PREFIX_MAX_PRODUCTIVE, &scratch);
    *ok = r != 0;
    goto done;
  }
  /* Compose before its inner operation, or an open argument list that can
   * still give "" everywhere (of the top operation or of Compose's inner one,
   * since every nesting operation maps "" to ""): the completion with the
   * empty output fits whatever the targets are */
  if (!open || (te.compose && open == &te.fn) || empty_reachable(open, given)) {
    *ok = 1;
    goto done;
  }
  r = some_completion_fits(&te, open, given, xs, n_ex, 0, SD_PREFIX_MAX_COMPLETIONS, &scratch);
  *ok = r != 0; /* -1: too many completions to try, so "maybe" */
  goto done;
oom:
  rc = SD_ENOMEM;
  *ok = 0;
done:
  if (p.e != estk) sd_prog_clear(&p);
  if (xs != xstk) free(xs);
  if (cp != cstk) free(cp);
  if (scratch.c != ostk) sd_str_free(&scratch);
  return rc;
}

#pragma GCC visibility pop

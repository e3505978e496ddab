/* Helpers shared by the generator tests: structural validity of a sampled
 * program and consistency of a task with the interpreter. */
#ifndef LPSYNTH_TEST_GEN_CHECK_H
#define LPSYNTH_TEST_GEN_CHECK_H

#include "strdsl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int gc_is_nesting(int op) {
  return op == SD_GETTOKEN || op == SD_TOCASE || op == SD_REPLACE || op == SD_TRIM ||
         op == SD_GETUPTO || op == SD_GETFROM || op == SD_GETFIRST || op == SD_GETALL;
}
static inline int gc_is_substring(int op) { return op == SD_SUBSTR || op == SD_GETSPAN; }

static inline int gc_index_ok(int i) { return i >= -5 && i <= 5 && i != 0; }
static inline int gc_regex_ok(int r) { return r >= 0 && r < SD_NUM_REGEX; }
static inline int gc_type_ok(int t) { return t >= 0 && t < SD_NUM_TYPES; }

/* Arguments of one operation in range (spec grammar). */
static inline int gc_fn_ok(const sd_fn *f) {
  const int16_t *a = f->a;
  switch (f->op) {
    case SD_CONSTSTR: return a[0] >= 0 && a[0] < SD_NUM_CHARS;
    case SD_SUBSTR: return a[0] >= -100 && a[0] <= 100 && a[1] >= -100 && a[1] <= 100;
    case SD_GETSPAN:
      return gc_regex_ok(a[0]) && gc_index_ok(a[1]) && (a[2] == SD_START || a[2] == SD_END) &&
             gc_regex_ok(a[3]) && gc_index_ok(a[4]) && (a[5] == SD_START || a[5] == SD_END);
    case SD_GETTOKEN:
    case SD_GETFIRST: return gc_type_ok(a[0]) && gc_index_ok(a[1]);
    case SD_TOCASE: return a[0] >= 0 && a[0] < SD_NUM_CASES;
    case SD_REPLACE: return a[0] >= 0 && a[0] < SD_NUM_DELIMS && a[1] >= 0 && a[1] < SD_NUM_DELIMS;
    case SD_TRIM: return 1;
    case SD_GETUPTO:
    case SD_GETFROM: return gc_regex_ok(a[0]);
    case SD_GETALL: return gc_type_ok(a[0]);
    default: return 0;
  }
}

/* A valid expression of the grammar. */
static inline int gc_expr_ok(const sd_expr *e) {
  if (!e->compose) return e->fn.op != SD_COMPOSE && gc_fn_ok(&e->fn);
  return gc_is_nesting(e->fn.op) && gc_fn_ok(&e->fn) &&
         (gc_is_nesting(e->inner.op) || gc_is_substring(e->inner.op)) && gc_fn_ok(&e->inner);
}

/* Used arguments only: a parser may leave the unused ones as it likes. */
static inline int gc_nargs(int op) {
  static const int n[SD_NUM_OPS] = {0, 1, 2, 6, 2, 1, 2, 0, 1, 1, 2, 1};
  return op >= 0 && op < SD_NUM_OPS ? n[op] : 0;
}
static inline int gc_fn_same(const sd_fn *x, const sd_fn *y) {
  if (x->op != y->op) return 0;
  for (int k = 0; k < gc_nargs(x->op); k++)
    if (x->a[k] != y->a[k]) return 0;
  return 1;
}
static inline int gc_prog_same(const sd_prog *p, const sd_prog *q) {
  if (p->n != q->n) return 0;
  for (size_t i = 0; i < p->n; i++) {
    if (!p->e[i].compose != !q->e[i].compose) return 0;
    if (!gc_fn_same(&p->e[i].fn, &q->e[i].fn)) return 0;
    if (p->e[i].compose && !gc_fn_same(&p->e[i].inner, &q->e[i].inner)) return 0;
  }
  return 1;
}

static inline int gc_in_alphabet(const char *s) {
  for (; *s; s++)
    if (!strchr(sd_chars, *s)) return 0;
  return 1;
}

/* Checks one task: sizes, alphabet, program validity, outputs reproduced by
 * sd_eval, and every expression that the sampler redraws until non-empty is
 * non-empty on every input. Returns NULL or a static message. */
static inline const char *gc_check_task(const sd_task *t, int min_expr, int max_expr, int nex) {
  static char msg[512];
  if ((int)t->n_examples != nex) return "wrong number of examples";
  if ((int)t->prog.n < min_expr || (int)t->prog.n > max_expr) return "wrong number of expressions";
  for (size_t i = 0; i < t->prog.n; i++)
    if (!gc_expr_ok(&t->prog.e[i]) || !sd_expr_valid(&t->prog.e[i])) {
      snprintf(msg, sizeof msg, "expression %zu is not valid", i);
      return msg;
    }
  sd_str in = {0}, out = {0};
  const char *bad = NULL;
  for (size_t j = 0; j < t->n_examples && !bad; j++) {
    const size_t il = strlen(t->inputs[j]), ol = strlen(t->outputs[j]);
    if (il < 1 || il > 100) { bad = "input length out of 1..100"; break; }
    if (ol < 1 || ol > 100) { bad = "output length out of 1..100"; break; }
    if (!gc_in_alphabet(t->inputs[j])) { bad = "input character outside the alphabet"; break; }
    if (sd_decode(t->inputs[j], il, &in) != 0) { bad = "out of memory"; break; }
    if (sd_eval(&t->prog, in.c, in.n, &out) != 0) { bad = "out of memory"; break; }
    char *enc = NULL;
    size_t el = 0;
    if (sd_encode(out.c, out.n, &enc, &el) != 0) { bad = "out of memory"; break; }
    if (el != ol || memcmp(enc, t->outputs[j], ol) != 0) {
      snprintf(msg, sizeof msg, "example %zu: program gives \"%s\", task says \"%s\"", j, enc,
               t->outputs[j]);
      bad = msg;
    }
    free(enc);
    for (size_t i = 0; i < t->prog.n && !bad; i++) {
      const sd_expr *e = &t->prog.e[i];
      const int op = e->fn.op;
      if (!e->compose && (op == SD_TOCASE || op == SD_REPLACE || op == SD_TRIM || op == SD_CONSTSTR))
        continue;
      if (sd_eval_expr(e, in.c, in.n, &out) != 0) { bad = "out of memory"; break; }
      if (out.n == 0) {
        snprintf(msg, sizeof msg, "expression %zu is empty on input %zu \"%s\"", i, j, t->inputs[j]);
        bad = msg;
      }
    }
  }
  sd_str_free(&in);
  sd_str_free(&out);
  return bad;
}

#endif

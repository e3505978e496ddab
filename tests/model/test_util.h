/* Shared harness of the model tests (test_model.c, test_lp.c): EXPECT
 * macros, the LP_SLOW_BUILD switch, toy tasks of small random ids,
 * generated string-domain tasks, and the case table / main. Included by one
 * source file per executable (the statics are per executable), after
 * _POSIX_C_SOURCE is defined (clock_gettime). */
#ifndef LP_TESTS_MODEL_TEST_UTIL_H
#define LP_TESTS_MODEL_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradcheck.h" /* tests/engine: lp_gradcheck (lpsynth_engine_testkit) */
#include "lpsynth/engine.h"
#include "lpsynth/model.h"
#include "lpsynth/runtime.h"
#include "model_internal.h"
#include "strdsl.h"

static int g_failures;

/* Sanitizer and unoptimised builds run the finite-difference checks on a
 * sample of every tensor (the full check is the optimised build's). */
#if defined(__SANITIZE_ADDRESS__) || !defined(__OPTIMIZE__)
#define LP_SLOW_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define LP_SLOW_BUILD 1
#endif
#endif
#ifndef LP_SLOW_BUILD
#define LP_SLOW_BUILD 0
#endif

#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: EXPECT(%s) failed\n", __FILE__, __LINE__, #cond); \
      g_failures++;                                                            \
    }                                                                          \
  } while (0)

#define EXPECT_OK(expr)                                                               \
  do {                                                                                \
    int rc_ = (expr);                                                                 \
    if (rc_ != LP_OK) {                                                               \
      fprintf(stderr, "%s:%d: %s -> %d (%s)\n", __FILE__, __LINE__, #expr, rc_, err.msg); \
      g_failures++;                                                                   \
    }                                                                                 \
  } while (0)

static inline double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- toy tasks ------------------------------------------------------------------ */

#define TOY_MAX_E 4
#define TOY_MAX_LEN 32

static const lp_vocab_info k_spec_v = {20, 0, -1, -1, 19}; /* size pad bos eos unk */
static const lp_vocab_info k_prog_v = {20, 0, 1, 2, -1};

typedef struct toy_task {
  int32_t prog[TOY_MAX_LEN];
  size_t plen;
  size_t ne;
  int32_t spec[TOY_MAX_E * 2][TOY_MAX_LEN];
  size_t slen[TOY_MAX_E * 2];
  const int32_t *sp[TOY_MAX_E * 2];
} toy_task;

static inline int rnd(lp_rng *r, int lo, int hi) {
  return lo + (int)(lp_rng_next(r) % (uint64_t)(hi - lo + 1));
}

static inline void toy_make(toy_task *t, lp_rng *r, int ne, int n_parts, int smin, int smax,
                            int pmin, int pmax) {
  memset(t, 0, sizeof *t);
  t->ne = (size_t)ne;
  for (int e = 0; e < ne; e++)
    for (int p = 0; p < n_parts; p++) {
      int i = e * n_parts + p, len = rnd(r, smin, smax);
      for (int j = 0; j < len; j++) t->spec[i][j] = rnd(r, 1, k_spec_v.size - 1);
      t->slen[i] = (size_t)len;
      t->sp[i] = t->spec[i];
    }
  int len = rnd(r, pmin, pmax);
  for (int j = 0; j < len - 1; j++) t->prog[j] = rnd(r, 3, k_prog_v.size - 1);
  t->prog[len - 1] = k_prog_v.eos;
  t->plen = (size_t)len;
}

static inline int toy_batch(lp_batch *b, toy_task *tasks, int n, int n_parts, int with_prog,
                            const lp_model_cfg *c, lp_err *err) {
  lp_task_ids ids[16];
  for (int i = 0; i < n; i++) {
    memset(&ids[i], 0, sizeof ids[i]);
    ids[i].prog = with_prog ? tasks[i].prog : NULL;
    ids[i].prog_len = with_prog ? tasks[i].plen : 0;
    ids[i].n_examples = tasks[i].ne;
    ids[i].spec = tasks[i].sp;
    ids[i].spec_len = tasks[i].slen;
  }
  return lp_batch_fill(b, ids, n, n_parts, k_spec_v.pad, k_prog_v.pad, c, err);
}

/* The tiny model both test files start from (kind: LP_MODEL_ROBUSTFILL or
 * LP_MODEL_LP): d 16, ff 32, 2 heads, one layer each side, no dropout,
 * inputs and programs up to 16 tokens. */
static inline void tiny_cfg_base(lp_model_cfg *c, int kind) {
  lp_model_cfg_default(c, kind);
  c->d_model = 16;
  c->d_ff = 32;
  c->n_heads = 2;
  c->n_enc_layers = 1;
  c->n_dec_layers = 1;
  c->dropout = 0.0f;
  c->attn_dropout = 0.0f;
  c->max_spec_len = 16;
  c->max_program_len = 16;
}

/* Teacher-forced log-probability of ids[0..n) (ending with EOS) for task t
 * (any kind: with one task the time-major logits of RobustFill[LSTM] have
 * the rows of [B,T,V]); last_logits (V floats, or NULL) gets the last step's. */
static inline double seq_logprob(lp_model *m, const toy_task *task, const int32_t *ids, int n,
                                 const lp_model_cfg *c, float *last_logits) {
  lp_err err = {0};
  toy_task t = *task;
  for (int k = 0; k < TOY_MAX_E * 2; k++) t.sp[k] = t.spec[k];
  memcpy(t.prog, ids, sizeof(int32_t) * (size_t)n);
  t.plen = (size_t)n;
  lp_batch b = {0};
  EXPECT_OK(toy_batch(&b, &t, 1, m->n_parts, 1, c, &err));
  lp_step_stats st;
  EXPECT_OK(lp_model_eval_loss(m, &b, &st, &err));
  const int V = k_prog_v.size;
  const float *logits = m->lstm ? m->lstm->a.logits : m->acts.logits;
  double lp = 0.0;
  float *ls = malloc(sizeof(float) * (size_t)V);
  for (int s = 0; s < n; s++) {
    lp_log_softmax_forward(ls, logits + (size_t)s * V, 1, V);
    lp += ls[ids[s]];
  }
  if (last_logits) memcpy(last_logits, logits + (size_t)(n - 1) * V, sizeof(float) * V);
  free(ls);
  lp_batch_free(&b);
  return lp;
}

/* ---- gradient checks -------------------------------------------------------------- */

/* One gradient-check line; `width` pads the name column. */
static inline void print_gc(const char *name, int width, const lp_gc_result *r) {
  printf("gradcheck %-*s max_rel %.3e  max_abs %.3e  checked %zu  bad %zu  below rounding %zu  %s\n",
         width, name, r->max_rel, r->max_abs, r->n_checked, r->n_bad, r->n_unresolved,
         r->ok ? "ok" : "FAIL");
  if (!r->ok)
    printf("  worst element %zu: analytic %.6g numeric %.6g\n", r->worst, r->worst_analytic,
           r->worst_numeric);
}

/* The loss a gradient check differentiates (gc_loss): forward computes m's
 * loss on batch b (at `step`, for the LP) drawing dropout from r, which is
 * seeded `seed` when `train` and NULL otherwise; a failing forward's status
 * is kept in err. */
typedef struct gc_ctx gc_ctx;
struct gc_ctx {
  lp_model *m;
  lp_batch *b;
  int64_t step;
  int train;
  uint64_t seed;
  int err;
  int (*forward)(const gc_ctx *c, lp_rng *r, lp_step_stats *st, lp_err *err);
};

static inline double gc_loss(void *p) {
  gc_ctx *c = p;
  lp_step_stats st;
  lp_err err = {0};
  lp_rng r;
  lp_rng_seed(&r, c->seed);
  int rc = c->forward(c, c->train ? &r : NULL, &st, &err);
  if (rc != LP_OK) c->err = rc;
  return st.loss;
}

/* The model of a gradient check: config *c made by cfg_fn (with dropout 0.1
 * when `train`), n_parts spec parts, seed 7, its parameters perturbed by
 * 0.05 N(0, 1) (r seeded 99, left for the caller to draw on) so LayerNorm
 * parameters and biases are not trivial. NULL on an error, printed. */
static inline lp_model *gc_model(void (*cfg_fn)(lp_model_cfg *), int train, int n_parts,
                                 lp_model_cfg *c, lp_rng *r) {
  lp_err err = {0};
  cfg_fn(c);
  if (train) c->dropout = c->attn_dropout = 0.1f;
  lp_model *m = lp_model_new(c, &k_spec_v, &k_prog_v, n_parts, 7, &err);
  EXPECT(m != NULL);
  if (!m) {
    fprintf(stderr, "%s\n", err.msg);
    return NULL;
  }
  /* one padded pass: the checks read the step's activations (chunked steps
   * are compared with it in the "chunk" cases) */
  EXPECT(lp_model_set_chunk(m, 0, &err) == LP_OK);
  float *P = lp_model_params(m);
  const size_t np = lp_model_num_params(m);
  lp_rng_seed(r, 99);
  for (size_t i = 0; i < np; i++) P[i] += 0.05f * lp_rng_normal(r);
  return m;
}

/* Elements of each tensor the model gradient checks take (a sample spread
 * over the tensor, all of a smaller one): every tensor is checked, and the
 * test's time does not grow with the model (each element costs four forward
 * passes). max_checks of gradcheck_tensors; gc_expected says how many that
 * makes for m. */
#define GC_SAMPLE_RF (LP_SLOW_BUILD ? 48 : 256)
#define GC_SAMPLE_LP (LP_SLOW_BUILD ? 24 : 128)
static inline size_t gc_expected(lp_model *m, size_t max_checks) {
  const lp_layout *L = lp_model_layout(m);
  size_t n = 0;
  for (size_t i = 0; i < lp_layout_count(L); i++) {
    size_t k = lp_layout_param(L, i)->numel;
    n += max_checks && max_checks < k ? max_checks : k;
  }
  return n;
}

/* Finite-difference check of every parameter tensor of m (loss(ctx) against
 * the analytic gradient g) with eps 5e-2, order 4, tol 2e-2 (plus the
 * checker's float32 rounding allowance; fewer than half the elements may be
 * below it) and at most
 * max_checks elements per tensor (0: all), merged into *all. Prints a
 * tensor's line (name column `width` wide) when it fails or its name contains
 * `show` (NULL: only failures), and a line for each tensor whose gradient is
 * zero throughout; returns how many of those there are. */
static inline size_t gradcheck_tensors(lp_model *m, lp_gc_loss_fn loss, void *ctx, const float *g,
                                       size_t max_checks, int width, const char *show,
                                       lp_gc_result *all) {
  lp_err err = {0}; /* for EXPECT_OK */
  lp_gc_opts o;
  lp_gc_opts_default(&o);
  o.eps = 5e-2f;
  o.order = 4;
  o.tol = 2e-2;
  o.max_checks = max_checks;
  lp_gc_result_init(all);
  float *P = lp_model_params(m);
  const lp_layout *L = lp_model_layout(m);
  size_t n_zero = 0;
  for (size_t i = 0; i < lp_layout_count(L); i++) {
    const lp_param_info *p = lp_layout_param(L, i);
    lp_gc_result res;
    EXPECT_OK(lp_gradcheck(loss, ctx, P + p->offset, g + p->offset, p->numel, &o, &res));
    double gmax = 0.0;
    for (size_t j = 0; j < p->numel; j++) gmax = fmax(gmax, fabs(g[p->offset + j]));
    if (gmax == 0.0) {
      printf("  tensor %s has a zero gradient\n", p->name);
      n_zero++;
    }
    if (!res.ok || (show && strstr(p->name, show))) print_gc(p->name, width, &res);
    lp_gc_result_merge(all, &res);
  }
  /* The rounding allowance must not make the check vacuous: most elements'
   * gradients are far enough above float32's resolution to be held to tol. */
  EXPECT(all->n_unresolved * 2 < all->n_checked);
  return n_zero;
}

/* The largest |gradient difference| between models a and b (same layout);
 * *gmax: the largest |gradient| of a. */
static inline double grads_worst(lp_model *a, lp_model *b, double *gmax) {
  const size_t np = lp_model_num_params(a);
  const float *ga = lp_model_grads(a), *gb = lp_model_grads(b);
  double worst = 0.0;
  *gmax = 0.0;
  for (size_t i = 0; i < np; i++) {
    const double d = fabs((double)gb[i] - ga[i]);
    if (d > worst) worst = d;
    if (fabs(ga[i]) > *gmax) *gmax = fabs(ga[i]);
  }
  return worst;
}

/* Loss terms of w equal to those of s up to float rounding (relative 1e-5). */
static inline void expect_terms_close(const lp_step_stats *w, const lp_step_stats *s) {
  EXPECT(fabs(w->loss - s->loss) < 1e-5 * (1.0 + fabs(s->loss)));
  EXPECT(fabs(w->loss_prog - s->loss_prog) < 1e-5 * (1.0 + fabs(s->loss_prog)));
  EXPECT(fabs(w->loss_latent - s->loss_latent) < 1e-5 * (1.0 + fabs(s->loss_latent)));
  EXPECT(fabs(w->loss_commit - s->loss_commit) < 1e-5 * (1.0 + fabs(s->loss_commit)));
  EXPECT(fabs(w->loss_e2e - s->loss_e2e) < 1e-5 * (1.0 + fabs(s->loss_e2e)));
  EXPECT(w->n_tokens == s->n_tokens);
}

/* The chunked-step tests' batch into *b: 7 tasks (1..3 examples, 2 parts)
 * of DIFFERENT program lengths (2..12 tokens), drawn from *r seeded 93 here. */
static inline void chunk_batch(lp_batch *b, const lp_model_cfg *c, lp_rng *r) {
  lp_err err = {0};
  lp_rng_seed(r, 93);
  toy_task tasks[7];
  for (int i = 0; i < 7; i++) toy_make(&tasks[i], r, 1 + i % 3, 2, 1, 9, 2, 2 + (i * 5) % 11);
  EXPECT_OK(toy_batch(b, tasks, 7, 2, 1, c, &err));
}

/* A model of config c (seed 21, the toy vocabularies, 2 spec parts) with its
 * parameters perturbed by 0.2 N(0, 1) from *r (seeded 8 here), so that
 * searches meet no ties; NULL on an error. */
static inline lp_model *search_model(const lp_model_cfg *c, lp_rng *r) {
  lp_err err = {0};
  lp_model *m = lp_model_new(c, &k_spec_v, &k_prog_v, 2, 21, &err);
  EXPECT(m != NULL);
  if (!m) return NULL;
  float *P = lp_model_params(m);
  lp_rng_seed(r, 8);
  for (size_t i = 0; i < lp_model_num_params(m); i++) P[i] += 0.2f * lp_rng_normal(r);
  return m;
}

/* ---- whole-model gradient checks of the LP family (test_lp.c, test_latent.c) ------ */

static inline int lpm_gc_forward(const gc_ctx *c, lp_rng *r, lp_step_stats *st, lp_err *err) {
  return lpm_loss(c->m, c->b, c->step, r, 0, st, err);
}

/* The LP family's gradient-check batch into *b, drawn from r: 2 tasks, E = 2
 * (task 1: one example), programs of 9 and 5 tokens: 3 and 2 latents
 * (l = 2), the last latent of task 0 half padded; then m's loss at `step`
 * (dropout and sampled latents from an rng seeded 4321 when `train`) and its
 * gradients into m's zeroed grads; *st its statistics. */
static inline void lpm_gc_batch(lp_model *m, lp_batch *b, lp_rng *r, int n_parts, int64_t step,
                                int train, const lp_model_cfg *c, lp_step_stats *st) {
  lp_err err = {0};
  toy_task t[2];
  toy_make(&t[0], r, 2, n_parts, 2, 6, 9, 9);
  toy_make(&t[1], r, 1, n_parts, 3, 5, 5, 5);
  EXPECT_OK(toy_batch(b, t, 2, n_parts, 1, c, &err));
  memset(lp_model_grads(m), 0, sizeof(float) * lp_model_num_params(m));
  lp_rng dr;
  lp_rng_seed(&dr, 4321);
  EXPECT_OK(lpm_loss(m, b, step, train ? &dr : NULL, 1, st, &err));
}

/* Finite differences of every tensor of m (sampled: GC_SAMPLE_LP) against the
 * gradients lpm_gc_batch left in its grads, with the model frozen
 * (lpm_set_freeze: the codes or the AE/VAE targets, the max-pool choices);
 * the forward must give `loss` again. Prints the tensors whose name holds
 * `show` and the summary line `name`. */
static inline void lpm_gc_check(lp_model *m, lp_batch *b, int64_t step, int train, double loss,
                                const char *show, const char *name) {
  const size_t np = lp_model_num_params(m);
  float *g = malloc(sizeof(float) * np);
  memcpy(g, lp_model_grads(m), sizeof(float) * np);
  gc_ctx ctx = {.m = m, .b = b, .step = step, .train = train, .seed = 4321, .err = LP_OK,
                .forward = lpm_gc_forward};
  lpm_set_freeze(m, 1);
  double l0 = gc_loss(&ctx);
  EXPECT(fabs(l0 - loss) < 1e-5);
  lp_gc_result all;
  const size_t n_zero = gradcheck_tensors(m, gc_loss, &ctx, g, GC_SAMPLE_LP, 34, show, &all);
  EXPECT(ctx.err == LP_OK);
  EXPECT(n_zero == 0);
  print_gc(name, 34, &all);
  EXPECT(all.ok && all.n_checked == gc_expected(m, GC_SAMPLE_LP));
  lpm_set_freeze(m, 0);
  free(g);
}

/* ---- string-domain tasks ---------------------------------------------------------- */

typedef struct str_task {
  int32_t *prog;
  size_t plen;
  int32_t *spec[8];
  size_t slen[8];
  const int32_t *sp[8];
  size_t ne;
} str_task;

static const lp_vocab_info k_str_spec = {85, 0, -1, -1, 84};
static const lp_vocab_info k_str_prog = {SD_VOCAB_SIZE, 0, 1, 2, -1};

static inline int32_t *encode_chars(const char *s, size_t *n) {
  sd_str cps = {0};
  if (sd_decode(s, strlen(s), &cps) != 0) return NULL;
  int32_t *ids = malloc(sizeof(int32_t) * (cps.n ? cps.n : 1));
  for (size_t i = 0; i < cps.n; i++) {
    int ci = sd_char_index(cps.c[i]);
    ids[i] = ci < 0 ? 84 : ci + 1;
  }
  *n = cps.n;
  sd_str_free(&cps);
  return ids;
}

/* Generates a string-domain task; 0 ok. Tasks with a string longer than
 * max_str characters are skipped (returns 1) when max_str > 0. */
static inline int str_task_make(str_task *t, uint64_t seed, int min_e, int max_e, int max_str) {
  memset(t, 0, sizeof *t);
  sd_task st = {0};
  char emsg[128];
  if (sd_generate(seed, min_e, max_e, 4, &st, emsg, sizeof emsg) != 0) return -1;
  size_t cap = 0;
  if (sd_to_tokens(&st.prog, &t->prog, &t->plen, &cap) != 0) {
    sd_task_free(&st);
    return -1;
  }
  t->ne = st.n_examples;
  int skip = 0;
  for (size_t e = 0; e < st.n_examples && e < 4; e++) {
    t->spec[2 * e] = encode_chars(st.inputs[e], &t->slen[2 * e]);
    t->spec[2 * e + 1] = encode_chars(st.outputs[e], &t->slen[2 * e + 1]);
    t->sp[2 * e] = t->spec[2 * e], t->sp[2 * e + 1] = t->spec[2 * e + 1];
    if (max_str > 0 && (t->slen[2 * e] > (size_t)max_str || t->slen[2 * e + 1] > (size_t)max_str))
      skip = 1;
  }
  sd_task_free(&st);
  return skip;
}

static inline void str_task_free(str_task *t) {
  free(t->prog);
  for (int i = 0; i < 8; i++) free(t->spec[i]);
}

static inline void str_ids(lp_task_ids *ids, const str_task *t, int with_prog) {
  memset(ids, 0, sizeof *ids);
  ids->prog = with_prog ? t->prog : NULL;
  ids->prog_len = with_prog ? t->plen : 0;
  ids->n_examples = t->ne;
  ids->spec = t->sp;
  ids->spec_len = t->slen;
}

/* Whether hypothesis h is task t's program. */
static inline int same_prog(const lp_hyp *h, const str_task *t) {
  return (size_t)h->prog_len == t->plen &&
         memcmp(h->prog, t->prog, sizeof(int32_t) * t->plen) == 0;
}

/* ---- overfit (acceptance) ----------------------------------------------------------- */

#define OF_TASKS 64

/* The overfit tests' model of the given kind: 4 heads, no dropout, strings and
 * programs up to 128 tokens; d_model 64, d_ff 256 and 2+2 layers, or d_model
 * 32, d_ff 64 and 1+1 layers on a smaller problem in sanitizer/unoptimised
 * builds or with LP_OVERFIT_SMALL set. Returns whether it is the small one. */
static inline int overfit_cfg(lp_model_cfg *c, int kind) {
  const int slow = LP_SLOW_BUILD || getenv("LP_OVERFIT_SMALL") != NULL;
  lp_model_cfg_default(c, kind);
  c->d_model = slow ? 32 : 64, c->d_ff = slow ? 64 : 256, c->n_heads = 4;
  c->n_enc_layers = c->n_dec_layers = slow ? 1 : 2;
  c->dropout = c->attn_dropout = 0.0f;
  c->max_spec_len = 128, c->max_program_len = 128;
  return slow;
}

/* The overfit tests' budget in optimiser steps - not seconds, so that their
 * verdict does not depend on the machine's speed or load (the run is
 * deterministic: the same steps, the same accuracy) - LP_OVERFIT_STEPS or
 * dflt. */
static inline int overfit_max_steps(int dflt) {
  const char *s = getenv("LP_OVERFIT_STEPS");
  return s && atoi(s) > 0 ? atoi(s) : dflt;
}

/* An overfit run: the tasks, the model and its optimiser, the batches. */
typedef struct overfit_run {
  double t0; /* now_s() at the start */
  int n_tasks, min_e, max_e; /* the tasks' count and expressions */
  str_task tasks[OF_TASKS];
  lp_model *m;
  lp_adam *opt;
  lp_lr_schedule sched;
  lp_batch b, one; /* a training batch; one task to decode */
  lp_task_ids ids[OF_TASKS];
  int order[OF_TASKS]; /* the tasks in this epoch's order */
  lp_rng r;            /* shuffles the tasks */
  lp_step_stats st;    /* the last step's */
  int step;            /* steps taken */
  lp_rng *step_rng;    /* the train steps' rng (dropout, sampled latents), NULL: none */
} overfit_run;

/* Starts an overfit run of the model c (2 spec parts, seed 42) on 64
 * generated string tasks of 1..3 expressions (seeds from 1000), with Adam
 * without weight decay at a peak rate of 5e-3 after 40 warmup steps, on 2
 * OpenBLAS threads; when `slow` (overfit_cfg's small problem), on 16 tasks of
 * 1..2 expressions at 1e-2 after 20 steps. 0 ok; on an error the run holds
 * nothing to free. */
static inline int overfit_start(overfit_run *run, const lp_model_cfg *c, int slow) {
  lp_err err = {0};
  memset(run, 0, sizeof *run);
  run->t0 = now_s();
  lp_engine_set_threads(2);
  const int n_tasks = slow ? 16 : OF_TASKS;
  run->min_e = 1, run->max_e = slow ? 2 : 3;
  uint64_t seed = 1000;
  for (int i = 0; i < n_tasks; i++) {
    int rc;
    while ((rc = str_task_make(&run->tasks[i], seed++, run->min_e, run->max_e, 0)) != 0) {
      EXPECT(rc >= 0);
      if (rc < 0) return -1;
      str_task_free(&run->tasks[i]);
    }
  }
  run->m = lp_model_new(c, &k_str_spec, &k_str_prog, 2, 42, &err);
  EXPECT(run->m != NULL);
  if (!run->m) return -1;
  run->n_tasks = n_tasks;
  lp_adam_cfg ac;
  lp_adam_cfg_default(&ac);
  ac.weight_decay = 0.0f;
  run->opt = lp_adam_new(lp_model_num_params(run->m), &ac);
  run->sched = (lp_lr_schedule){slow ? 1e-2f : 5e-3f, slow ? 20 : 40};
  for (int i = 0; i < n_tasks; i++) run->order[i] = i;
  lp_rng_seed(&run->r, 77);
  return 0;
}

/* One epoch: shuffles the tasks, then trains on their consecutive batches of
 * 16 (gradients clipped to norm 1). */
static inline void overfit_epoch(overfit_run *run, const lp_model_cfg *c) {
  const int bs = 16;
  lp_err err = {0};
  const size_t np = lp_model_num_params(run->m);
  for (int i = run->n_tasks - 1; i > 0; i--) {
    int j = (int)(lp_rng_next(&run->r) % (uint64_t)(i + 1)), tmp = run->order[i];
    run->order[i] = run->order[j], run->order[j] = tmp;
  }
  for (int s = 0; s + bs <= run->n_tasks; s += bs) {
    for (int k = 0; k < bs; k++) str_ids(&run->ids[k], &run->tasks[run->order[s + k]], 1);
    EXPECT_OK(lp_batch_fill(&run->b, run->ids, bs, 2, 0, 0, c, &err));
    EXPECT_OK(lp_model_train_step(run->m, &run->b, run->step + 1, run->step_rng, &run->st, &err));
    lp_grad_clip(lp_model_grads(run->m), np, 1.0f, NULL);
    lp_adam_step(run->opt, lp_model_params(run->m), lp_model_grads(run->m),
                 lp_lr_at(&run->sched, run->step + 1), NULL);
    run->step++;
  }
}

/* Fills run->one with task i, without its program. */
static inline int overfit_one(overfit_run *run, int i, const lp_model_cfg *c, lp_err *err) {
  str_ids(&run->ids[0], &run->tasks[i], 0);
  return lp_batch_fill(&run->one, run->ids, 1, 2, 0, 0, c, err);
}

static inline void overfit_end(overfit_run *run) {
  lp_adam_free(run->opt);
  lp_batch_free(&run->b);
  lp_batch_free(&run->one);
  lp_model_free(run->m);
  for (int i = 0; i < run->n_tasks; i++) str_task_free(&run->tasks[i]);
}

/* ---- main -------------------------------------------------------------------------- */

typedef struct test_case {
  const char *name;
  void (*fn)(void);
} test_case;

/* `prog <case>` runs one case, `prog all` every case except overfit; when
 * extra_name is set, `prog <extra_name> ...` calls extra(argc, argv) instead.
 * Prints the verdict and the time; the exit status is 0 on a pass. */
static inline int test_main(int argc, char **argv, const test_case *cases, size_t n,
                            const char *usage, const char *extra_name,
                            void (*extra)(int, char **)) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s\n", usage);
    return 2;
  }
  double t0 = now_s();
  if (extra_name && strcmp(argv[1], extra_name) == 0) {
    extra(argc, argv);
  } else if (strcmp(argv[1], "all") == 0) {
    for (size_t i = 0; i < n; i++)
      if (strstr(cases[i].name, "overfit") == NULL) {
        printf("== %s\n", cases[i].name);
        cases[i].fn();
      }
  } else {
    size_t i = 0;
    while (i < n && strcmp(cases[i].name, argv[1]) != 0) i++;
    if (i == n) {
      fprintf(stderr, "unknown case %s\n", argv[1]);
      return 2;
    }
    cases[i].fn();
  }
  printf("%s: %s (%.2f s)\n", argv[1], g_failures ? "FAIL" : "ok", now_s() - t0);
  return g_failures ? 1 : 0;
}

#endif

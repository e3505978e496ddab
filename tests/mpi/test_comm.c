/* Multi-process train steps (lp_model_set_comm) without MPI: an in-process
 * communicator whose ranks are threads (barriers and shared buffers), so the
 * model library's side of issue 15 is tested on every build.
 *
 *   equal_robustfill, equal_lp, equal_latent_ae, equal_latent_vae: N ranks x
 *     1 thread give the losses,
 *     statistics, gradients, parameters and (LP) codebook state of one
 *     process with N threads over several steps with dropout (LP: across the
 *     end of pretraining) - bitwise with 2 ranks, within 1e-5 with 3.
 *   fail: one rank's bad batch is an error on every rank, with that rank's
 *     message; ranks with different thread counts are an error on every rank.
 *
 * The sums add the ranks' buffers in rank order, as one process adds its
 * workers' gradients (so 2 ranks are bitwise equal to 2 threads). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "test_util.h"

/* ---- the communicator ---------------------------------------------------------- */

#define MAXR 4

typedef struct world {
  int size;
  pthread_barrier_t bar;
  void *ptr[MAXR];
  int flags[MAXR], code[MAXR];
  const char *msg[MAXR];
} world;

typedef struct rank_ctx {
  world *w;
  int rank;
} rank_ctx;

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort();
  return p;
}

static int w_sum_f32(void *u, float *buf, size_t n) {
  rank_ctx *r = u;
  world *w = r->w;
  w->ptr[r->rank] = buf;
  pthread_barrier_wait(&w->bar);
  float *tmp = xmalloc(sizeof(float) * n);
  for (size_t i = 0; i < n; i++) {
    float s = ((const float *)w->ptr[0])[i];
    for (int k = 1; k < w->size; k++) s += ((const float *)w->ptr[k])[i];
    tmp[i] = s;
  }
  pthread_barrier_wait(&w->bar);
  memcpy(buf, tmp, sizeof(float) * n);
  free(tmp);
  return LP_OK;
}

static int w_sum_f64(void *u, double *buf, size_t n) {
  rank_ctx *r = u;
  world *w = r->w;
  w->ptr[r->rank] = buf;
  pthread_barrier_wait(&w->bar);
  double *tmp = xmalloc(sizeof(double) * n);
  for (size_t i = 0; i < n; i++) {
    double s = ((const double *)w->ptr[0])[i];
    for (int k = 1; k < w->size; k++) s += ((const double *)w->ptr[k])[i];
    tmp[i] = s;
  }
  pthread_barrier_wait(&w->bar);
  memcpy(buf, tmp, sizeof(double) * n);
  free(tmp);
  return LP_OK;
}

static int w_agree(void *u, int *flags, int *code, char *msg, size_t cap) {
  rank_ctx *r = u;
  world *w = r->w;
  w->flags[r->rank] = *flags;
  w->code[r->rank] = *code;
  w->msg[r->rank] = msg;
  pthread_barrier_wait(&w->bar);
  int f = 0, root = -1;
  for (int k = 0; k < w->size; k++) {
    f |= w->flags[k];
    if ((w->flags[k] & LP_COMM_FAIL) && root < 0) root = k;
  }
  char *tmp = xmalloc(cap);
  int c = root >= 0 ? w->code[root] : 0;
  if (root >= 0) snprintf(tmp, cap, "%s", w->msg[root]);
  pthread_barrier_wait(&w->bar);
  *flags = f;
  if (root >= 0) {
    *code = c;
    snprintf(msg, cap, "%s", tmp);
  }
  free(tmp);
  return LP_OK;
}

/* ---- runs -------------------------------------------------------------------------- */

#define NSTEP 4

typedef struct run {
  rank_ctx rc;
  lp_model *m;
  const lp_batch *b;
  const int64_t *steps;
  int n_steps;
  lp_step_stats st[NSTEP];
  int code[NSTEP];
  lp_err err;
} run;

/* Steps 0..n_steps of m with dropout from one fixed stream, each followed by
 * the same plain update p -= 0.05 g (so later steps see other parameters). */
static void run_steps(run *r) {
  lp_rng rng;
  lp_rng_seed(&rng, 4242);
  const size_t np = lp_model_num_params(r->m);
  for (int s = 0; s < r->n_steps; s++) {
    r->code[s] = lp_model_train_step(r->m, r->b, r->steps[s], &rng, &r->st[s], &r->err);
    if (r->code[s] != LP_OK) return;
    float *p = lp_model_params(r->m);
    const float *g = lp_model_grads(r->m);
    for (size_t i = 0; i < np; i++) p[i] -= 0.05f * g[i];
  }
}

static void *rank_main(void *arg) {
  run_steps(arg);
  return NULL;
}

static void test_cfg(lp_model_cfg *c, int kind) {
  tiny_cfg_base(c, kind);
  c->dropout = 0.1f;
  c->attn_dropout = 0.1f;
  if (LP_MODEL_HAS_LATENT(kind)) {
    c->latent_K = 5;
    c->latent_l = 2;
    c->pretrain_steps = 10;
    c->w_ae = 1.0f, c->w_latent = 0.7f, c->w_e2e = 0.9f;
    c->kl_weight = 0.6f;
  }
}

/* n_ranks fake ranks, rank r with threads[r] threads and batch bs[r], run
 * concurrently (models seeded alike). */
static void run_ranks(int n_ranks, const lp_model_cfg *c, const lp_batch *const *bs,
                      const int *threads, const int64_t *steps, int n_steps, run *rs) {
  lp_err err = {0};
  world w;
  memset(&w, 0, sizeof w);
  w.size = n_ranks;
  pthread_barrier_init(&w.bar, NULL, (unsigned)n_ranks);
  pthread_t th[MAXR];
  for (int k = 0; k < n_ranks; k++) {
    run *r = &rs[k];
    memset(r, 0, sizeof *r);
    r->rc.w = &w;
    r->rc.rank = k;
    r->b = bs[k];
    r->steps = steps;
    r->n_steps = n_steps;
    r->m = lp_model_new(c, &k_spec_v, &k_prog_v, 2, 5, &err);
    if (!r->m) abort();
    EXPECT_OK(lp_model_set_threads(r->m, threads[k], &err));
    lp_comm cm = {k, n_ranks, w_sum_f32, w_sum_f64, w_agree, &r->rc};
    EXPECT_OK(lp_model_set_comm(r->m, &cm, &err));
  }
  for (int k = 0; k < n_ranks; k++) pthread_create(&th[k], NULL, rank_main, &rs[k]);
  for (int k = 0; k < n_ranks; k++) pthread_join(th[k], NULL);
  pthread_barrier_destroy(&w.bar);
}

static double max_diff(const float *a, const float *b, size_t n, double *amax) {
  double d = 0.0, m = 0.0;
  for (size_t i = 0; i < n; i++) {
    double x = fabs((double)a[i] - (double)b[i]);
    if (x > d || x != x) d = x;
    if (fabs((double)a[i]) > m) m = fabs((double)a[i]);
  }
  if (amax) *amax = m;
  return d;
}

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * (1.0 + fabs(a)); }

static void run_equal(int kind) {
  lp_err err = {0};
  lp_model_cfg c;
  test_cfg(&c, kind);
  lp_rng r;
  lp_rng_seed(&r, 97);
  toy_task tasks[9];
  for (int i = 0; i < 9; i++)
    toy_make(&tasks[i], &r, 1 + (i * 5) % 4, 2, 1, 9, 2, 2 + (i * 7) % 13);
  lp_batch b = {0};
  EXPECT_OK(toy_batch(&b, tasks, 9, 2, 1, &c, &err));
  const int64_t steps_rf[] = {1, 2, 3, 4}, steps_lp[] = {1, 2, 11, 12};
  const int64_t *steps = kind == LP_MODEL_LP ? steps_lp : steps_rf;
  for (int n = 2; n <= 3; n++) {
    /* one process, n threads */
    run ref;
    memset(&ref, 0, sizeof ref);
    ref.m = lp_model_new(&c, &k_spec_v, &k_prog_v, 2, 5, &err);
    if (!ref.m) abort();
    EXPECT_OK(lp_model_set_threads(ref.m, n, &err));
    ref.b = &b, ref.steps = steps, ref.n_steps = NSTEP;
    run_steps(&ref);
    /* n ranks, one thread each */
    run rs[MAXR];
    const lp_batch *bs[MAXR] = {&b, &b, &b, &b};
    const int th[MAXR] = {1, 1, 1, 1};
    run_ranks(n, &c, bs, th, steps, NSTEP, rs);
    const double tol = n == 2 ? 0.0 : 1e-5;
    const size_t np = lp_model_num_params(ref.m);
    for (int s = 0; s < NSTEP; s++) {
      const lp_step_stats *a = &ref.st[s];
      EXPECT(ref.code[s] == LP_OK);
      for (int k = 0; k < n; k++) {
        const lp_step_stats *x = &rs[k].st[s];
        EXPECT(rs[k].code[s] == LP_OK);
        if (rs[k].code[s] != LP_OK) fprintf(stderr, "rank %d: %s\n", k, rs[k].err.msg);
        EXPECT(close_rel(a->loss, x->loss, tol) && close_rel(a->loss_prog, x->loss_prog, tol));
        EXPECT(close_rel(a->loss_latent, x->loss_latent, tol));
        EXPECT(close_rel(a->loss_commit, x->loss_commit, tol));
        EXPECT(close_rel(a->loss_e2e, x->loss_e2e, tol));
        EXPECT(close_rel(a->token_acc, x->token_acc, tol));
        EXPECT(close_rel(a->codebook_perplexity, x->codebook_perplexity, tol));
        EXPECT(a->n_tokens == x->n_tokens && a->dead_codes == x->dead_codes);
      }
      printf("  %d ranks, step %lld: loss %.9f (one process: %.9f)\n", n, (long long)steps[s],
             rs[n - 1].st[s].loss, a->loss);
    }
    double gmax = 0.0, pmax = 0.0;
    for (int k = 0; k < n; k++) {
      const double dg = max_diff(lp_model_grads(ref.m), lp_model_grads(rs[k].m), np, &gmax);
      const double dp = max_diff(lp_model_params(ref.m), lp_model_params(rs[k].m), np, &pmax);
      size_t ns = 0, ns2 = 0;
      const float *s1 = lp_model_state(ref.m, &ns), *s2 = lp_model_state(rs[k].m, &ns2);
      double smax = 0.0;
      const double ds = ns == ns2 && ns ? max_diff(s1, s2, ns, &smax) : 0.0;
      EXPECT(ns == ns2);
      printf("  %d ranks, rank %d: max |dgrad| %.3g (max %.3g), |dparam| %.3g, |dstate| %.3g\n",
             n, k, dg, gmax, dp, ds);
      EXPECT(dg <= tol * (1.0 + gmax));
      EXPECT(dp <= tol * (1.0 + pmax));
      EXPECT(ds <= tol * (1.0 + smax));
      /* the ranks among themselves: bitwise */
      EXPECT(!memcmp(lp_model_params(rs[0].m), lp_model_params(rs[k].m), sizeof(float) * np));
      EXPECT(ns == 0 || !memcmp(lp_model_state(rs[0].m, &ns), s2, sizeof(float) * ns));
    }
    for (int k = 0; k < n; k++) lp_model_free(rs[k].m);
    lp_model_free(ref.m);
  }
  lp_batch_free(&b);
  lp_engine_set_threads(1);
}

static void test_equal_robustfill(void) { run_equal(LP_MODEL_ROBUSTFILL); }
static void test_equal_lp(void) { run_equal(LP_MODEL_LP); }
/* Latent RobustFill [AE] / [VAE] (the VAE's sampled latents included) */
static void test_equal_latent_ae(void) { run_equal(LP_MODEL_LATENT_AE); }
static void test_equal_latent_vae(void) { run_equal(LP_MODEL_LATENT_VAE); }

static void test_fail(void) {
  lp_err err = {0};
  for (int kind = 0; kind < 2; kind++) {
    lp_model_cfg c;
    test_cfg(&c, kind);
    lp_rng r;
    lp_rng_seed(&r, 5);
    toy_task tasks[5];
    for (int i = 0; i < 5; i++) toy_make(&tasks[i], &r, 2, 2, 1, 9, 2, 9);
    lp_batch good = {0}, bad = {0};
    EXPECT_OK(toy_batch(&good, tasks, 5, 2, 1, &c, &err));
    EXPECT_OK(toy_batch(&bad, tasks, 5, 2, 1, &c, &err));
    bad.prog[3] = 999; /* outside the program vocabulary: rank 1's batch is bad */
    const int64_t steps[] = {1};
    const lp_batch *bs[2] = {&good, &bad};
    const int th1[2] = {1, 1};
    run rs[2];
    run_ranks(2, &c, bs, th1, steps, 1, rs);
    for (int k = 0; k < 2; k++) {
      printf("  %s, bad batch on rank 1: rank %d -> %d: %s\n", kind ? "lp" : "robustfill", k,
             rs[k].code[0], rs[k].err.msg);
      EXPECT(rs[k].code[0] == LP_EINVAL);
      EXPECT(!strncmp(rs[k].err.msg, "rank 1: ", 8));
      lp_model_free(rs[k].m);
    }
    /* rank 1 with 2 threads, rank 0 with 1: the plans disagree */
    const lp_batch *bg[2] = {&good, &good};
    const int th2[2] = {1, 2};
    run_ranks(2, &c, bg, th2, steps, 1, rs);
    for (int k = 0; k < 2; k++) {
      printf("  %s, threads 1 and 2: rank %d -> %d: %s\n", kind ? "lp" : "robustfill", k,
             rs[k].code[0], rs[k].err.msg);
      EXPECT(rs[k].code[0] == LP_EINVAL);
      EXPECT(strstr(rs[k].err.msg, "same --threads") != NULL);
      lp_model_free(rs[k].m);
    }
    lp_batch_free(&good);
    lp_batch_free(&bad);
  }
  /* set_comm refuses a bad communicator; NULL and size 1 are one process */
  lp_model_cfg c;
  test_cfg(&c, LP_MODEL_ROBUSTFILL);
  lp_model *m = lp_model_new(&c, &k_spec_v, &k_prog_v, 2, 5, &err);
  lp_comm bad = {2, 2, w_sum_f32, w_sum_f64, w_agree, NULL};
  EXPECT(lp_model_set_comm(m, &bad, &err) == LP_EINVAL);
  bad.rank = 0, bad.agree = NULL;
  EXPECT(lp_model_set_comm(m, &bad, &err) == LP_EINVAL);
  EXPECT_OK(lp_model_set_comm(m, NULL, &err));
  lp_comm one = {0, 1, NULL, NULL, NULL, NULL};
  EXPECT_OK(lp_model_set_comm(m, &one, &err));
  lp_model_free(m);
  lp_engine_set_threads(1);
}

static const test_case k_cases[] = {
    {"equal_robustfill", test_equal_robustfill},
    {"equal_lp", test_equal_lp},
    {"equal_latent_ae", test_equal_latent_ae},
    {"equal_latent_vae", test_equal_latent_vae},
    {"fail", test_fail},
};

int main(int argc, char **argv) {
  return test_main(argc, argv, k_cases, sizeof k_cases / sizeof k_cases[0],
                   "comm_tests <case>|all", NULL, NULL);
}

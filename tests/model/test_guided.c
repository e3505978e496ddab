/* Execution-guided search and teacher-forced scoring (RobustFill, LP and
 * Latent RobustFill [AE] / [VAE], those two given the task's true length):
 *  - guided: a prune callback refuses candidates; no returned program holds a
 *    refused prefix, the beam still returns B programs (refilled from the next
 *    best), and with a constant signature the answers collapse to one (the
 *    plain beam's best program that prune accepts, found with a smaller beam);
 *  - score: lp_model_score of each program a beam returns equals its beam
 *    score (RobustFill and AE exactly, up to float rounding; LP: at least the
 *    score under the code the beam used, since the best over the codes is
 *    taken; VAE: with L = 1, the mean sequence scoring uses), and bad
 *    programs are refused. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* refuses any prefix that holds token `banned` */
typedef struct ban_ctx {
  int32_t banned;
  long calls;
} ban_ctx;

static int ban_prune(void *ctx, const int32_t *ids, int n, int *ok, lp_err *err) {
  (void)err;
  ban_ctx *b = ctx;
  b->calls++;
  *ok = 1;
  for (int i = 0; i < n; i++)
    if (ids[i] == b->banned) *ok = 0;
  return LP_OK;
}

static int one_sig(void *ctx, const int32_t *ids, int n, uint64_t *sig, lp_err *err) {
  (void)ctx, (void)ids, (void)n, (void)err;
  *sig = 42;
  return LP_OK;
}

static int fail_prune(void *ctx, const int32_t *ids, int n, int *ok, lp_err *err) {
  (void)ctx, (void)ids, (void)n, (void)ok;
  return lp_err_set(err, LP_EINVAL, "prune failed on purpose");
}

static int has_tok(const lp_hyp *h, int32_t t) {
  for (int i = 0; i < h->prog_len; i++)
    if (h->prog[i] == t) return 1;
  return 0;
}

static void run(int kind) {
  lp_err err = {0};
  lp_model_cfg c;
  tiny_cfg_base(&c, kind);
  const char *name = lp_model_kind_name(kind);
  /* kinds with a latent beam; kinds given the true length (the batch's program) */
  const int lbeam = kind == LP_MODEL_LP || kind == LP_MODEL_LATENT_VAE;
  const int given = kind == LP_MODEL_LATENT_AE || kind == LP_MODEL_LATENT_VAE;
  if (LP_MODEL_HAS_LATENT(kind)) {
    c.latent_K = 5;
    c.latent_l = 2;
  }
  c.max_program_len = 10;
  lp_model *m = lp_model_new(&c, &k_spec_v, &k_prog_v, 2, 5, &err);
  EXPECT(m != NULL);
  if (!m) return;
  lp_rng r;
  lp_rng_seed(&r, 3);
  toy_task t;
  toy_make(&t, &r, 3, 2, 2, 8, 3, 6);
  for (int k = 0; k < TOY_MAX_E * 2; k++) t.sp[k] = t.spec[k];
  lp_batch b = {0};
  EXPECT_OK(toy_batch(&b, &t, 1, 2, given, &c, &err));
  const int B = 8;
  /* plain beam: the reference */
  lp_beam_opts po = {.beam = B, .latent_beam = lbeam ? 2 : 0};
  lp_beam_result plain = {0};
  EXPECT_OK(lp_model_search(m, &b, &po, &plain, &err));
  EXPECT(plain.n == B && plain.timed_out == 0);
  /* ban the most frequent non-EOS token among the plain beam's programs */
  int cnt[64] = {0}, banned = 3;
  for (int i = 0; i < plain.n; i++)
    for (int j = 0; j + 1 < plain.hyps[i].prog_len; j++) cnt[plain.hyps[i].prog[j] & 63]++;
  for (int v = 3; v < k_prog_v.size; v++)
    if (cnt[v] > cnt[banned]) banned = v;
  int n_plain_ok = 0;
  for (int i = 0; i < plain.n; i++) n_plain_ok += !has_tok(&plain.hyps[i], banned);
  EXPECT(n_plain_ok < plain.n); /* the ban removes something */
  ban_ctx bc = {banned, 0};
  lp_beam_opts go = po;
  go.prune = ban_prune;
  go.ctx = &bc;
  lp_beam_result guided = {0};
  EXPECT_OK(lp_model_search(m, &b, &go, &guided, &err));
  printf("%s: banned token %d: plain beam %d programs (%d without it), guided %d, %ld prune "
         "calls\n", name, banned, plain.n, n_plain_ok,
         guided.n, bc.calls);
  EXPECT(bc.calls > 0);
  /* the beam keeps B live candidates: B programs, none with the banned token */
  EXPECT(guided.n == B);
  for (int i = 0; i < guided.n; i++) EXPECT(!has_tok(&guided.hyps[i], banned));
  /* every plain program without the banned token scores no better than the
   * guided best (guided explores a superset of those prefixes) */
  for (int i = 0; i < plain.n && guided.n; i++)
    if (!has_tok(&plain.hyps[i], banned)) EXPECT(plain.hyps[i].score <= guided.hyps[0].score + 1e-4);
  /* one signature: one answer, the best accepted program */
  lp_beam_opts uo = go;
  uo.signature = one_sig;
  lp_beam_result uni = {0};
  EXPECT_OK(lp_model_search(m, &b, &uo, &uni, &err));
  EXPECT(uni.n == 1);
  if (uni.n == 1 && guided.n) {
    EXPECT(fabs(uni.hyps[0].score - guided.hyps[0].score) < 1e-4);
    EXPECT(uni.hyps[0].prog_len == guided.hyps[0].prog_len &&
           !memcmp(uni.hyps[0].prog, guided.hyps[0].prog,
                   sizeof(int32_t) * (size_t)uni.hyps[0].prog_len));
  }
  /* a failing prune stops the search with its message */
  lp_beam_opts fo = po;
  fo.prune = fail_prune;
  lp_beam_result fr = {0};
  lp_err e2 = {0};
  EXPECT(lp_model_search(m, &b, &fo, &fr, &e2) == LP_EINVAL && fr.n == 0);
  EXPECT(strstr(e2.msg, "on purpose") != NULL);

  /* scores: teacher forcing agrees with the beam */
  const int32_t *progs[16];
  int lens[16];
  double sc[16];
  for (int i = 0; i < plain.n; i++) progs[i] = plain.hyps[i].prog, lens[i] = plain.hyps[i].prog_len;
  EXPECT_OK(lp_model_score(m, &b, progs, lens, plain.n, 2, sc, &err));
  for (int i = 0; i < plain.n; i++) {
    if (kind == LP_MODEL_LP)
      EXPECT(sc[i] >= plain.hyps[i].score - 1e-3);
    else if (kind != LP_MODEL_LATENT_VAE) /* (VAE: programs of sampled sequences too) */
      EXPECT(fabs(sc[i] - plain.hyps[i].score) < 1e-3);
  }
  if (lbeam) { /* L = 1 beam: scoring with 1 code (the VAE's mean sequence) is exact */
    lp_beam_opts o1 = {.beam = 4, .latent_beam = 1};
    lp_beam_result r1 = {0};
    EXPECT_OK(lp_model_search(m, &b, &o1, &r1, &err));
    for (int i = 0; i < r1.n; i++) progs[i] = r1.hyps[i].prog, lens[i] = r1.hyps[i].prog_len;
    EXPECT_OK(lp_model_score(m, &b, progs, lens, r1.n, 1, sc, &err));
    for (int i = 0; i < r1.n; i++) EXPECT(fabs(sc[i] - r1.hyps[i].score) < 1e-3);
    lp_beam_free(&r1);
  }
  printf("%s: score of the plain best %.4f, teacher-forced %.4f\n", name, plain.hyps[0].score,
         sc[0]);
  /* bad programs: EOS missing, PAD inside, too long, empty */
  int32_t noeos[3] = {3, 4, 5}, padin[3] = {3, 0, 2}, longp[40];
  for (int i = 0; i < 40; i++) longp[i] = i == 39 ? 2 : 3;
  const int32_t *bad[4] = {noeos, padin, longp, noeos};
  int blen[4] = {3, 3, 40, 0};
  for (int i = 0; i < 4; i++) {
    lp_err e3 = {0};
    EXPECT(lp_model_score(m, &b, &bad[i], &blen[i], 1, 0, sc, &e3) == LP_EINVAL);
    EXPECT(e3.msg[0] != 0);
  }
  lp_beam_free(&plain);
  lp_beam_free(&guided);
  lp_beam_free(&uni);
  lp_batch_free(&b);
  lp_model_free(m);
}

static void test_robustfill(void) { run(LP_MODEL_ROBUSTFILL); }
static void test_lp(void) { run(LP_MODEL_LP); }
static void test_latent_ae(void) { run(LP_MODEL_LATENT_AE); }
static void test_latent_vae(void) { run(LP_MODEL_LATENT_VAE); }

static const test_case k_cases[] = {
    {"robustfill", test_robustfill},
    {"lp", test_lp},
    {"latent_ae", test_latent_ae},
    {"latent_vae", test_latent_vae},
};

int main(int argc, char **argv) {
  return test_main(argc, argv, k_cases, sizeof k_cases / sizeof k_cases[0],
                   "guided_tests <case>|all", NULL, NULL);
}

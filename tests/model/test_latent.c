/* Tests of Latent RobustFill [AE] and [VAE] (kinds latent-ae / latent-vae: the
 * LP's code in its continuous latent modes, core/model/lp.c, lp_search.c).
 *
 *   latent_tests <case>     one case (see k_cases); exit status 0 = pass
 *   latent_tests all        every case except the overfit ones
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static int g_kind = LP_MODEL_LATENT_AE; /* the kind tiny_cfg makes */

static void tiny_cfg(lp_model_cfg *c) {
  tiny_cfg_base(c, g_kind);
  c->latent_l = 2;
  c->w_ae = 1.0f, c->w_latent = 0.7f, c->w_e2e = 0.9f;
  c->kl_weight = 0.6f;
}

static const char *kind_name(void) { return lp_model_kind_name(g_kind); }

/* ---- gradient check of the whole loss -------------------------------------------- */

/* The whole loss of kind `kind` against finite differences of every tensor
 * (sampled) on lpm_gc_batch's 2 tasks (3 and 2 latents, task 0's last half
 * padded). With `train`: dropout, and for the VAE the sampled latent (eps
 * from the same seeded rng in every forward), so the reparameterisation is
 * checked too; without, the VAE decodes its mean. */
static void run_gradcheck(int kind, int n_parts, int train) {
  g_kind = kind;
  lp_model_cfg c;
  lp_rng r;
  lp_model *m = gc_model(tiny_cfg, train, n_parts, &c, &r);
  if (!m) return;
  lp_batch b = {0};
  lp_step_stats st;
  lpm_gc_batch(m, &b, &r, n_parts, 100, train, &c, &st);
  printf("%s: loss %.5f (prog %.4f kl %.4f latent %.4f e2e %.4f) acc %.3f params %zu\n",
         kind_name(), st.loss, st.loss_prog, st.loss_commit, st.loss_latent, st.loss_e2e,
         st.token_acc, lp_model_num_params(m));
  EXPECT(isfinite(st.loss) && st.loss_latent > 0 && st.loss_e2e > 0 && st.loss_prog > 0);
  EXPECT(kind == LP_MODEL_LATENT_VAE ? st.loss_commit > 0 : st.loss_commit == 0.0);
  EXPECT(st.latent_acc == 0.0 && st.codebook_perplexity == 0.0);
  size_t ns = 1;
  EXPECT(lp_model_state(m, &ns) == NULL && ns == 0); /* no codebook */
  int cB, cS;
  const int32_t *valid = lpm_last_codes(m, &cB, &cS);
  EXPECT(cB == 2 && cS == 3 && valid[0] == 0 && valid[2] == 0 && valid[4] == 0 && valid[5] < 0);
  char name[80];
  snprintf(name, sizeof name, "%s (%d part%s%s)", kind_name(), n_parts, n_parts > 1 ? "s" : "",
           train ? ", dropout" : "");
  lpm_gc_check(m, &b, 100, train, st.loss, "penc", name);
  lp_batch_free(&b);
  lp_model_free(m);
}

static void test_ae_gradcheck(void) {
  run_gradcheck(LP_MODEL_LATENT_AE, 2, 0);
  run_gradcheck(LP_MODEL_LATENT_AE, 1, 0);
  run_gradcheck(LP_MODEL_LATENT_AE, 2, 1);
}
static void test_vae_gradcheck(void) {
  run_gradcheck(LP_MODEL_LATENT_VAE, 2, 0);
  run_gradcheck(LP_MODEL_LATENT_VAE, 1, 0);
  run_gradcheck(LP_MODEL_LATENT_VAE, 2, 1);
}

/* ---- data-parallel and chunked steps ---------------------------------------------- */

/* Chunks of 1, 2 and 4 tasks on 1 and 2 workers, on tasks of different
 * program lengths, and 2 workers on padded shares of tasks alike in program
 * length (so that every term's normaliser splits with the tasks), give the
 * loss terms and gradients of one padded pass up to float rounding (no rng:
 * the VAE's latent is its mean, as every pass draws its own noise). */
static void run_parallel_chunk(int kind) {
  g_kind = kind;
  lp_err err = {0};
  lp_model_cfg c;
  tiny_cfg(&c);
  lp_rng r;
  lp_batch b = {0}, ba = {0};
  chunk_batch(&b, &c, &r);
  toy_task alike[6];
  for (int i = 0; i < 6; i++) toy_make(&alike[i], &r, 1 + i % 3, 2, 1, 9, 9, 9);
  EXPECT_OK(toy_batch(&ba, alike, 6, 2, 1, &c, &err));
  const int chunks[] = {0, 1, 2, 4}, workers[] = {1, 2};
  for (int k = 1; k < 8; k++) {
    lp_model *m1 = lp_model_new(&c, &k_spec_v, &k_prog_v, 2, 5, &err);
    lp_model *mw = lp_model_new(&c, &k_spec_v, &k_prog_v, 2, 5, &err);
    EXPECT(m1 && mw);
    if (!m1 || !mw) return;
    lp_step_stats s1, sw;
    const lp_batch *bk = chunks[k % 4] == 0 ? &ba : &b;
    EXPECT_OK(lp_model_set_chunk(m1, 0, &err));
    EXPECT_OK(lp_model_train_step(m1, bk, 30, NULL, &s1, &err));
    EXPECT_OK(lp_model_set_threads(mw, workers[k / 4], &err));
    EXPECT_OK(lp_model_set_chunk(mw, chunks[k % 4], &err));
    EXPECT_OK(lp_model_train_step(mw, bk, 30, NULL, &sw, &err));
    double gmax = 0.0;
    const double worst = grads_worst(m1, mw, &gmax);
    printf("  %s chunk %d, %d workers: loss %.7f vs %.7f, max |dgrad| %.3g (max %.3g)\n",
           kind_name(), chunks[k % 4], workers[k / 4], sw.loss, s1.loss, worst, gmax);
    expect_terms_close(&sw, &s1);
    EXPECT(worst <= 1e-5 * gmax + 1e-7);
    lp_model_free(m1);
    lp_model_free(mw);
  }
  lp_batch_free(&b);
  lp_batch_free(&ba);
  lp_engine_set_threads(1);
}

static void test_parallel_chunk(void) {
  run_parallel_chunk(LP_MODEL_LATENT_AE);
  run_parallel_chunk(LP_MODEL_LATENT_VAE);
}

/* ---- search ------------------------------------------------------------------------- */

/* The search is given the true length: refused (LP_EINVAL, a message that
 * says why) for a batch without the reference program; with it, AE returns
 * B programs of one latent sequence (L ignored) whose scores are their
 * teacher-forced lp_model_score; VAE with L = 2 returns, first among the
 * programs of latent rank 0, those of the mean sequence (the L = 1 search). */
static void test_search(void) {
  for (int kind = LP_MODEL_LATENT_AE; kind <= LP_MODEL_LATENT_VAE; kind++) {
    g_kind = kind;
    lp_err err = {0};
    lp_model_cfg c;
    tiny_cfg(&c);
    c.d_model = 32, c.n_heads = 4, c.d_ff = 64, c.n_dec_layers = 2;
    c.max_program_len = 12;
    lp_rng r;
    lp_model *m = search_model(&c, &r);
    if (!m) return;
    toy_task t;
    toy_make(&t, &r, 2, 2, 2, 7, 6, 6);
    lp_batch nb = {0}, b = {0};
    EXPECT_OK(toy_batch(&nb, &t, 1, 2, 0, &c, &err));
    EXPECT_OK(toy_batch(&b, &t, 1, 2, 1, &c, &err));
    lp_beam_opts o = {.beam = 4, .latent_beam = 2, .max_len = 0, .len_alpha = 0.0f};
    lp_beam_result res = {0};
    memset(&err, 0, sizeof err);
    EXPECT(lp_model_search(m, &nb, &o, &res, &err) == LP_EINVAL && res.n == 0);
    EXPECT(strstr(err.msg, "true program length") != NULL);
    printf("%s without a reference: %s\n", kind_name(), err.msg);
    const int32_t *one = t.prog;
    int one_len = (int)t.plen;
    double sc = 0.0;
    memset(&err, 0, sizeof err);
    EXPECT(lp_model_score(m, &nb, &one, &one_len, 1, 0, &sc, &err) == LP_EINVAL);
    EXPECT_OK(lp_model_search(m, &b, &o, &res, &err));
    EXPECT(res.n == 4);
    for (int i = 0; i < res.n; i++) {
      EXPECT(res.hyps[i].latent == NULL && res.hyps[i].latent_len == 0);
      if (i) EXPECT(res.hyps[i].score <= res.hyps[i - 1].score);
    }
    if (kind == LP_MODEL_LATENT_AE) {
      for (int i = 0; i < res.n; i++) {
        const int32_t *p = res.hyps[i].prog;
        int len = res.hyps[i].prog_len;
        EXPECT_OK(lp_model_score(m, &b, &p, &len, 1, 0, &sc, &err));
        EXPECT(fabs(sc - res.hyps[i].score) < 1e-3);
      }
      printf("%s: B = 4: %d programs, best %.4f (= its teacher-forced score)\n", kind_name(),
             res.n, res.hyps[0].score);
    } else {
      lp_beam_opts o1 = {.beam = 2, .latent_beam = 1, .max_len = 0, .len_alpha = 0.0f};
      lp_beam_result ref = {0};
      EXPECT_OK(lp_model_search(m, &b, &o1, &ref, &err));
      EXPECT(ref.n == 2);
      /* the mean sequence's two programs are among the four */
      int found = 0;
      for (int j = 0; j < ref.n; j++)
        for (int i = 0; i < res.n; i++)
          found += res.hyps[i].prog_len == ref.hyps[j].prog_len &&
                   !memcmp(res.hyps[i].prog, ref.hyps[j].prog,
                           sizeof(int32_t) * (size_t)ref.hyps[j].prog_len) &&
                   fabs(res.hyps[i].score - ref.hyps[j].score) < 1e-4;
      EXPECT(found >= 2);
      const int32_t *p = ref.hyps[0].prog;
      int len = ref.hyps[0].prog_len;
      EXPECT_OK(lp_model_score(m, &b, &p, &len, 1, 0, &sc, &err));
      EXPECT(fabs(sc - ref.hyps[0].score) < 1e-3);
      printf("%s: B = 4, L = 2: %d programs; the mean sequence's %d among them\n", kind_name(),
             res.n, found);
      lp_beam_free(&ref);
    }
    lp_beam_free(&res);
    lp_batch_free(&nb);
    lp_batch_free(&b);
    lp_model_free(m);
  }
}

/* ---- string-domain overfit ----------------------------------------------------------- */

/* The kind overfits the generated string tasks of overfit_start until the
 * search at B = 1 (given each task's true length) returns >= 90% of their
 * programs, within 300 optimiser steps (LP_OVERFIT_STEPS overrides); the VAE
 * trains with its sampled latents (a step rng). */
static void run_overfit(int kind) {
  lp_model_cfg c;
  const int slow = overfit_cfg(&c, kind);
  c.latent_l = 2;
  overfit_run run;
  if (overfit_start(&run, &c, slow) != 0) return;
  const double t0 = run.t0;
  const int n_tasks = run.n_tasks;
  lp_err err = {0};
  lp_rng srng;
  lp_rng_seed(&srng, 2024);
  run.step_rng = kind == LP_MODEL_LATENT_VAE ? &srng : NULL;
  const lp_step_stats *st = &run.st;
  double acc = 0.0;
  const int max_steps = overfit_max_steps(slow ? 1000 : 300);
  for (int epoch = 0; run.step < max_steps; epoch++) {
    overfit_epoch(&run, &c);
    if (!((epoch % 5 == 4 && st->loss < 0.5) || epoch % 20 == 19)) continue;
    int exact = 0;
    for (int i = 0; i < n_tasks; i++) {
      str_ids(&run.ids[0], &run.tasks[i], 1); /* with the program: its length is given */
      EXPECT_OK(lp_batch_fill(&run.one, run.ids, 1, 2, 0, 0, &c, &err));
      lp_beam_opts o = {.beam = 1, .latent_beam = 1, .max_len = 0, .len_alpha = 0.0f};
      lp_beam_result res = {0};
      EXPECT_OK(lp_model_search(run.m, &run.one, &o, &res, &err));
      if (res.n == 1) exact += same_prog(&res.hyps[0], &run.tasks[i]);
      lp_beam_free(&res);
    }
    acc = (double)exact / n_tasks;
    printf("epoch %d step %d loss %.4f (prog %.3f latent %.4f e2e %.3f kl %.3f) B = 1 exact "
           "%.1f%% (%.1f s)\n",
           epoch + 1, run.step, st->loss, st->loss_prog, st->loss_latent, st->loss_e2e,
           st->loss_commit, 100.0 * acc, now_s() - t0);
    fflush(stdout);
    if (acc >= 0.9) break;
  }
  printf("%s overfit: %d tasks, B = 1 exact accuracy %.1f%% after %d steps in %.1f s\n",
         lp_model_kind_name(kind), n_tasks, 100.0 * acc, run.step, now_s() - t0);
  EXPECT(acc >= 0.9);
  overfit_end(&run);
}

static void test_ae_overfit(void) { run_overfit(LP_MODEL_LATENT_AE); }
static void test_vae_overfit(void) { run_overfit(LP_MODEL_LATENT_VAE); }

static const test_case k_cases[] = {
    {"ae_gradcheck", test_ae_gradcheck},
    {"vae_gradcheck", test_vae_gradcheck},
    {"parallel_chunk", test_parallel_chunk},
    {"search", test_search},
    {"ae_overfit", test_ae_overfit},
    {"vae_overfit", test_vae_overfit},
};

int main(int argc, char **argv) {
  return test_main(argc, argv, k_cases, sizeof k_cases / sizeof k_cases[0],
                   "latent_tests <case>|all", NULL, NULL);
}

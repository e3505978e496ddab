/* Tests of RobustFill[LSTM] (kind LP_MODEL_RF_LSTM, core/model/rf_lstm.c).
 *
 *   lstm_tests <case>     one case (see k_cases); exit status 0 = pass
 *   lstm_tests all        every case except overfit
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* d 8, hidden 12, inputs and programs up to 16 tokens, no dropout */
static void tiny_cfg(lp_model_cfg *c) {
  tiny_cfg_base(c, LP_MODEL_RF_LSTM);
  c->d_model = 8;
  c->d_ff = 12;
}

/* ---- gradient check ------------------------------------------------------------- */

#ifndef GC_SCALE
#define GC_SCALE 1.0f
#endif
#ifndef GC_QSCALE
#define GC_QSCALE 4.0f
#endif

static int gc_forward(const gc_ctx *c, lp_rng *r, lp_step_stats *st, lp_err *err) {
  return rfl_forward(c->m, c->b, r, st, err);
}

/* Every parameter tensor of a tiny model through the whole loss (2 tasks, one
 * with an absent example slot, padded inputs, outputs and programs, one empty
 * input string), with the max-pool's selection frozen at the analytic point
 * (as model.gradcheck: the pool's own gradient is the engine's op test). */
static void run_gradcheck(int n_parts, int train) {
  lp_model_cfg c;
  lp_rng r;
  lp_model *m = gc_model(tiny_cfg, train, n_parts, &c, &r);
  if (!m) return;
  lp_err err = {0};
  const size_t np = lp_model_num_params(m);
  /* larger weights than at init (the perturbation of gc_model is 0.05): the
   * gradients of a 12-wide LSTM at init are mostly below what finite
   * differences of a float32 loss resolve */
  float *P = lp_model_params(m);
  for (size_t i = 0; i < np; i++) P[i] += GC_SCALE * lp_rng_normal(&r);
  /* and sharper attention: with queries of init size every score is about
   * the same and the queries' gradients are below float32's resolution */
  static const char *const queries[] = {"lstm.out.q", "lstm.dec.qi", "lstm.dec.qo"};
  for (int k = 0; k < 3; k++) {
    const lp_param_info *q = lp_layout_find(lp_model_layout(m), queries[k]);
    for (size_t i = 0; q && i < q->numel; i++) P[q->offset + i] *= GC_QSCALE;
  }
  toy_task t[2];
  toy_make(&t[0], &r, 2, n_parts, 2, 6, 4, 7);
  toy_make(&t[1], &r, 1, n_parts, 3, 5, 2, 5);
  t[0].slen[0] = 7; /* the longest input: others are padded */
  for (int j = 0; j < 7; j++) t[0].spec[0][j] = rnd(&r, 1, 19);
  t[0].slen[n_parts] = 0; /* example 1's input is empty: its encoder state stays zero */
  lp_batch b = {0};
  EXPECT_OK(toy_batch(&b, t, 2, n_parts, 1, &c, &err));
  EXPECT(b.E == 2 && b.emask[3] == 0 && b.T_spec[0] == 7);
  lp_step_stats st;
  lp_rng dr;
  lp_rng_seed(&dr, 1234);
  EXPECT_OK(lp_model_train_step(m, &b, 1, train ? &dr : NULL, &st, &err));
  printf("loss %.5f  token acc %.3f  tokens %d  params %zu\n", st.loss, st.token_acc,
         st.n_tokens, np);
  EXPECT(isfinite(st.loss) && st.loss > 0.5 && st.n_tokens == (int)(t[0].plen + t[1].plen));
  float *g = malloc(sizeof(float) * np);
  memcpy(g, lp_model_grads(m), sizeof(float) * np);
  gc_ctx ctx = {.m = m, .b = &b, .train = train, .seed = 1234, .err = LP_OK,
                .forward = gc_forward};
  EXPECT(fabs(gc_loss(&ctx) - st.loss) < 1e-9); /* deterministic, same as the step */
  const size_t npool = (size_t)b.T_prog * b.B * c.d_ff;
  int32_t *frozen = malloc(sizeof(int32_t) * npool);
  memcpy(frozen, m->lstm->a.argmax, sizeof(int32_t) * npool);
  size_t from_second = 0;
  for (size_t i = 0; i < npool; i++) from_second += frozen[i] == 1;
  EXPECT(from_second > npool / 8); /* both examples of task 0 feed the pool */
  m->freeze_argmax = frozen;
  EXPECT(fabs(gc_loss(&ctx) - st.loss) < 1e-9);
  lp_gc_result all;
  const size_t n_zero = gradcheck_tensors(m, gc_loss, &ctx, g, GC_SAMPLE_RF, 20, ".q", &all);
  EXPECT(ctx.err == LP_OK);
  EXPECT(n_zero == 0); /* every tensor is on the loss's path */
  char name[64];
  snprintf(name, sizeof name, "robustfill-lstm (%d part%s%s)", n_parts, n_parts > 1 ? "s" : "",
           train ? ", dropout" : "");
  print_gc(name, 20, &all);
  EXPECT(all.ok && all.n_checked == gc_expected(m, GC_SAMPLE_RF));
  m->freeze_argmax = NULL;
  free(frozen);
  free(g);
  lp_batch_free(&b);
  lp_model_free(m);
}

static void test_gradcheck(void) { run_gradcheck(2, 0); }
static void test_gradcheck_1part(void) { run_gradcheck(1, 0); }
static void test_gradcheck_dropout(void) { run_gradcheck(2, 1); }

/* ---- incremental decoding == teacher-forced forward ------------------------------ */

/* 3 programs of one task through the teacher-forced forward (as a batch of 3
 * tasks with the same spec), and as 3 hypotheses of the incremental decoder,
 * reordered (permuted, duplicated) on the way as beam search does. */
static void run_incremental(int n_parts) {
  lp_err err = {0};
  lp_model_cfg c;
  tiny_cfg(&c);
  c.d_model = 16, c.d_ff = 24, c.max_program_len = 24;
  lp_model *m = lp_model_new(&c, &k_spec_v, &k_prog_v, n_parts, 11, &err);
  EXPECT(m != NULL);
  if (!m) return;
  lp_rng r;
  lp_rng_seed(&r, 5);
  toy_task t[3];
  toy_make(&t[0], &r, 3, n_parts, 3, 9, 9, 9);
  for (int i = 1; i < 3; i++) {
    t[i] = t[0];
    const int len = i == 1 ? 6 : 12;
    for (int j = 0; j < len - 1; j++) t[i].prog[j] = rnd(&r, 3, 19);
    t[i].prog[len - 1] = 2;
    t[i].plen = (size_t)len;
  }
  for (int i = 0; i < 3; i++) {
    t[i].ne = 2; /* the third example slot is absent... */
    for (int k = 0; k < TOY_MAX_E * 2; k++) t[i].sp[k] = t[i].spec[k];
  }
  lp_batch full = {0}, one = {0};
  EXPECT_OK(toy_batch(&full, t, 3, n_parts, 1, &c, &err));
  lp_step_stats st;
  EXPECT_OK(lp_model_eval_loss(m, &full, &st, &err));
  const int T = full.T_prog, V = k_prog_v.size;
  float *ref = malloc(sizeof(float) * (size_t)3 * T * V);
  memcpy(ref, m->lstm->a.logits, sizeof(float) * (size_t)3 * T * V); /* [T,3,V] */
  EXPECT_OK(toy_batch(&one, t, 1, n_parts, 0, &c, &err));
  EXPECT_OK(rfl_encode(m, &one, NULL, &err));
  EXPECT_OK(rfl_inc_start(m, one.emask, 3, T, &err));
  int asg[3] = {0, 1, 2}; /* hypothesis j follows program asg[j] */
  int32_t tok[3];
  float *lg = malloc(sizeof(float) * 3 * (size_t)V);
  double worst = 0.0;
  for (int s = 0; s < T; s++) {
    const int32_t *par = NULL;
    static const int32_t perm[3] = {2, 0, 1}, dup[3] = {1, 1, 0}, keep[3] = {0, 0, 2};
    if (s == 3) par = perm;
    if (s == 6) par = dup;
    if (s == 8) par = keep;
    if (par) {
      int na[3] = {asg[par[0]], asg[par[1]], asg[par[2]]};
      EXPECT_OK(rfl_inc_reorder(m, par, 3, &err));
      memcpy(asg, na, sizeof asg);
    }
    for (int j = 0; j < 3; j++) tok[j] = s == 0 ? 1 : full.prog[(size_t)asg[j] * T + s - 1];
    EXPECT_OK(rfl_inc_step(m, tok, 3, lg, &err));
    for (int j = 0; j < 3; j++)
      for (int v = 0; v < V; v++) {
        double d = fabs((double)lg[(size_t)j * V + v] - ref[((size_t)s * 3 + asg[j]) * V + v]);
        worst = fmax(worst, d);
      }
  }
  EXPECT(rfl_inc_step(m, tok, 3, lg, &err) == LP_EINVAL); /* one position too many */
  printf("incremental vs teacher-forced forward (%d part%s, %d steps, reorders): max |diff| "
         "%.3e\n", n_parts, n_parts > 1 ? "s" : "", T, worst);
  EXPECT(worst < 1e-4);
  free(ref);
  free(lg);
  lp_batch_free(&full);
  lp_batch_free(&one);
  lp_model_free(m);
}

static void test_incremental(void) { run_incremental(2); }
static void test_incremental_1part(void) { run_incremental(1); }

/* ---- beam search and scoring --------------------------------------------------------- */

/* Beams of 1..16 (with and without length normalisation): finished programs,
 * best first, distinct, their scores the teacher-forced log-probabilities;
 * lp_model_score gives the same; the trained program comes out greedy. */
static void test_search(void) {
  lp_err err = {0};
  lp_model_cfg c;
  tiny_cfg(&c);
  c.max_program_len = 12;
  lp_model *m = lp_model_new(&c, &k_spec_v, &k_prog_v, 2, 21, &err);
  EXPECT(m != NULL);
  if (!m) return;
  lp_rng r;
  lp_rng_seed(&r, 8);
  toy_task t;
  toy_make(&t, &r, 2, 2, 2, 8, 5, 5);
  for (int k = 0; k < TOY_MAX_E * 2; k++) t.sp[k] = t.spec[k];
  lp_batch b = {0}, tb = {0};
  EXPECT_OK(toy_batch(&b, &t, 1, 2, 0, &c, &err));
  EXPECT_OK(toy_batch(&tb, &t, 1, 2, 1, &c, &err));
  lp_adam *opt = lp_adam_new(lp_model_num_params(m), NULL);
  lp_step_stats st;
  for (int s = 1; s <= 60; s++) {
    EXPECT_OK(lp_model_train_step(m, &tb, s, NULL, &st, &err));
    lp_adam_step(opt, lp_model_params(m), lp_model_grads(m), 1e-2f, NULL);
  }
  printf("trained 60 steps on one program: loss %.4f\n", st.loss);
  lp_adam_free(opt);
  for (int beam = 1; beam <= 16; beam *= 2)
    for (int norm = 0; norm < 2; norm++) {
      lp_beam_opts o = {.beam = beam, .max_len = 12, .len_alpha = norm ? 0.6f : 0.0f};
      lp_beam_result res = {0};
      EXPECT_OK(lp_model_search(m, &b, &o, &res, &err));
      EXPECT(res.n >= 1 && res.n <= beam);
      if (beam == 1) /* greedy: the trained program */
        EXPECT(res.n == 1 && (size_t)res.hyps[0].prog_len == t.plen &&
               !memcmp(res.hyps[0].prog, t.prog, sizeof(int32_t) * t.plen));
      const int32_t *progs[16];
      int lens[16];
      double sc[16];
      for (int i = 0; i < res.n; i++) {
        const lp_hyp *h = &res.hyps[i];
        EXPECT(h->prog_len >= 1 && h->prog_len <= 12 && h->prog[h->prog_len - 1] == 2);
        for (int j = 0; j + 1 < h->prog_len; j++) EXPECT(h->prog[j] > 2);
        if (i > 0) EXPECT(res.hyps[i - 1].score >= h->score);
        for (int k = 0; k < i; k++)
          EXPECT(res.hyps[k].prog_len != h->prog_len ||
                 memcmp(res.hyps[k].prog, h->prog, sizeof(int32_t) * (size_t)h->prog_len));
        const double lp = seq_logprob(m, &t, h->prog, h->prog_len, &c, NULL);
        EXPECT(fabs((norm ? lp / pow(h->prog_len, 0.6) : lp) - h->score) < 1e-3);
        progs[i] = h->prog, lens[i] = h->prog_len;
        (void)lp;
      }
      EXPECT_OK(lp_model_score(m, &b, progs, lens, res.n, 0, sc, &err));
      for (int i = 0; i < res.n; i++)
        EXPECT(fabs(sc[i] - seq_logprob(m, &t, progs[i], lens[i], &c, NULL)) < 1e-3);
      if (beam == 16 && !norm)
        printf("beam 16: %d programs, best %.4f worst %.4f\n", res.n, res.hyps[0].score,
               res.hyps[res.n - 1].score);
      lp_beam_free(&res);
    }
  lp_beam_opts bad = {.beam = 0};
  lp_beam_result res = {0};
  EXPECT(lp_model_search(m, &b, &bad, &res, &err) == LP_EINVAL && res.n == 0);
  lp_batch_free(&b);
  lp_batch_free(&tb);
  lp_model_free(m);
}

/* ---- data-parallel and chunked steps ------------------------------------------------ */

/* 1, 2 and 3 workers, chunks of 0 (one padded pass), 1, 2, 3 and 9 tasks: the
 * loss, accuracy and gradients of one padded pass, up to float rounding. */
static void test_parallel_chunk(void) {
  lp_err err = {0};
  lp_model_cfg c;
  tiny_cfg(&c);
  lp_rng r;
  lp_rng_seed(&r, 91);
  toy_task tasks[9];
  for (int i = 0; i < 9; i++)
    toy_make(&tasks[i], &r, 1 + (i * 5) % 4, 2, 1, 9, 2, 2 + (i * 7) % 13);
  lp_batch b = {0};
  EXPECT_OK(toy_batch(&b, tasks, 9, 2, 1, &c, &err));
  lp_model *m = lp_model_new(&c, &k_spec_v, &k_prog_v, 2, 5, &err);
  EXPECT(m != NULL);
  if (!m) return;
  const size_t np = lp_model_num_params(m);
  float *g0 = malloc(sizeof(float) * np);
  lp_step_stats s0, sc;
  lp_model_profile p0, pc;
  EXPECT_OK(lp_model_set_chunk(m, 0, &err));
  lp_model_profile_enable(m, 1);
  EXPECT_OK(lp_model_train_step(m, &b, 1, NULL, &s0, &err));
  lp_model_profile_get(m, &p0);
  memcpy(g0, lp_model_grads(m), sizeof(float) * np);
  EXPECT(p0.chunks == 1 && p0.flops_run > p0.flops_useful && p0.flops_useful > 0);
  const int chunks[] = {0, 1, 2, 3, 9}, workers[] = {1, 2, 3};
  for (int w = 0; w < 3; w++)
    for (int k = 0; k < 5; k++) {
      EXPECT_OK(lp_model_set_threads(m, workers[w], &err));
      EXPECT_OK(lp_model_set_chunk(m, chunks[k], &err));
      lp_model_profile_enable(m, 1);
      EXPECT_OK(lp_model_train_step(m, &b, 1, NULL, &sc, &err));
      lp_model_profile_get(m, &pc);
      const float *g = lp_model_grads(m);
      double worst = 0.0, gmax = 0.0;
      for (size_t i = 0; i < np; i++) {
        worst = fmax(worst, fabs((double)g[i] - g0[i]));
        gmax = fmax(gmax, fabs(g0[i]));
      }
      printf("  chunk %d, %d workers: loss %.7f vs %.7f, max |dgrad| %.3g (max |grad| %.3g), "
             "%lld passes\n", chunks[k], workers[w], sc.loss, s0.loss, worst, gmax, pc.chunks);
      EXPECT(fabs(sc.loss - s0.loss) < 1e-5 * (1.0 + fabs(s0.loss)));
      EXPECT(sc.n_tokens == s0.n_tokens);
      EXPECT(fabs(sc.token_acc - s0.token_acc) < 1e-9);
      EXPECT(worst <= 1e-5 * gmax + 1e-7);
      EXPECT(fabs(pc.flops_useful - p0.flops_useful) <= 1e-9 * p0.flops_useful);
      if (chunks[k] > 0 && chunks[k] < 9) EXPECT(pc.flops_run < p0.flops_run);
    }
  lp_model_profile_enable(m, 0);
  lp_model_free(m);
  lp_batch_free(&b);
  free(g0);
  lp_engine_set_threads(1);
}

/* ---- configurations and bad input ------------------------------------------------- */

static void test_config(void) {
  lp_err err = {0};
  lp_model_cfg c;
  lp_model_cfg_default(&c, LP_MODEL_RF_LSTM);
  /* the paper's sizes: embedding 128, hidden 512; one LSTM per stack */
  EXPECT(c.kind == LP_MODEL_RF_LSTM && c.d_model == 128 && c.d_ff == 512 &&
         c.n_enc_layers == 1 && c.n_dec_layers == 1);
  EXPECT_OK(lp_model_cfg_check(&c, &err));
  EXPECT(!strcmp(lp_model_kind_name(LP_MODEL_RF_LSTM), "robustfill-lstm"));
  EXPECT(lp_model_kind_parse("robustfill-lstm", 15) == LP_MODEL_RF_LSTM);
  EXPECT(lp_model_kind_parse("robustfill-lst", 14) < 0 && !lp_model_kind_name(LP_MODEL_KINDS));
  lp_model *m = lp_model_new(&c, &k_str_spec, &k_str_prog, 2, 1, &err);
  EXPECT(m != NULL);
  if (m) {
    printf("the paper-sized RobustFill[LSTM]: %zu parameters\n", lp_model_num_params(m));
    EXPECT(lp_layout_find(lp_model_layout(m), "dec.block0.ln1.scale") == NULL);
    const lp_param_info *w = lp_layout_find(lp_model_layout(m), "lstm.dec.wx");
    EXPECT(w && w->shape[0] == 128 + 2 * 512 && w->shape[1] == 4 * 512);
  }
  lp_model_free(m);
  /* n_heads is unused: no multiple-of relation */
  const char *ok = "model = robustfill-lstm\nd_model = 100\nn_heads = 3\n";
  EXPECT_OK(lp_model_cfg_parse(&c, ok, strlen(ok), "t.cfg", &err));
  EXPECT(c.kind == LP_MODEL_RF_LSTM && c.d_model == 100);
  /* more than one layer is refused, by the parser and by lp_model_new */
  const char *bad = "model = robustfill-lstm\ndec_layers = 2\n";
  EXPECT(lp_model_cfg_parse(&c, bad, strlen(bad), "t.cfg", &err) == LP_EINVAL);
  printf("two layers: %s\n", err.msg);
  EXPECT(strstr(err.msg, "t.cfg:2:") && strstr(err.msg, "must be 1"));
  tiny_cfg(&c);
  c.n_enc_layers = 2;
  EXPECT(lp_model_new(&c, &k_spec_v, &k_prog_v, 2, 1, &err) == NULL);
  EXPECT(strstr(err.msg, "enc_layers and dec_layers must be 1") != NULL);
  /* batches of the wrong shape or ids: errors, not crashes */
  tiny_cfg(&c);
  m = lp_model_new(&c, &k_spec_v, &k_prog_v, 2, 1, &err);
  EXPECT(m != NULL);
  if (!m) return;
  lp_rng r;
  lp_rng_seed(&r, 1);
  toy_task t[2];
  for (int i = 0; i < 2; i++) toy_make(&t[i], &r, 2, 2, 2, 8, 2, 6);
  lp_batch b = {0};
  lp_step_stats st;
  EXPECT_OK(toy_batch(&b, t, 2, 1, 1, &c, &err));
  EXPECT(lp_model_train_step(m, &b, 1, NULL, &st, &err) == LP_EINVAL); /* 1 part, model 2 */
  t[1].prog[0] = 400;
  EXPECT_OK(toy_batch(&b, t, 2, 2, 1, &c, &err));
  EXPECT(lp_model_eval_loss(m, &b, &st, &err) == LP_EINVAL && strstr(err.msg, "400"));
  EXPECT(rfl_backward(m, &b, &err) == LP_EINVAL); /* no forward to go back through */
  lp_beam_opts o = {.beam = 2};
  lp_beam_result res = {0};
  EXPECT(lp_model_search(m, &b, &o, &res, &err) == LP_EINVAL); /* two tasks */
  lp_batch_free(&b);
  lp_model_free(m);
}

/* ---- overfit (acceptance) ----------------------------------------------------------- */

/* A small RobustFill[LSTM] learns generated string tasks until greedy
 * decoding returns >= 95% of their programs exactly: overfit_run's 64 tasks
 * of 1..3 expressions (16 of 1..2 in sanitizer/unoptimised builds), a budget
 * of optimiser steps (LP_OVERFIT_STEPS), not seconds. */
static void test_overfit(void) {
  lp_model_cfg c;
  const int slow = overfit_cfg(&c, LP_MODEL_RF_LSTM);
  c.n_enc_layers = c.n_dec_layers = 1;
  c.d_model = slow ? 32 : 64;
  c.d_ff = slow ? 64 : 128;
  overfit_run run;
  if (overfit_start(&run, &c, slow) != 0) return;
  lp_err err = {0};
  double acc = 0.0;
  const int max_steps = overfit_max_steps(slow ? 1000 : 600);
  for (int epoch = 0; run.step < max_steps; epoch++) {
    overfit_epoch(&run, &c);
    if ((epoch % 5 == 4 && run.st.loss < 0.3) || epoch % 20 == 19) {
      int exact = 0;
      for (int i = 0; i < run.n_tasks; i++) {
        EXPECT_OK(overfit_one(&run, i, &c, &err));
        lp_beam_opts o = {.beam = 1};
        lp_beam_result res = {0};
        EXPECT_OK(lp_model_search(run.m, &run.one, &o, &res, &err));
        exact += res.n == 1 && same_prog(&res.hyps[0], &run.tasks[i]);
        lp_beam_free(&res);
      }
      acc = (double)exact / run.n_tasks;
      printf("epoch %d step %d loss %.4f greedy exact %.1f%% (%.1f s)\n", epoch + 1, run.step,
             run.st.loss, 100.0 * acc, now_s() - run.t0);
      fflush(stdout);
      if (acc >= 0.95) break;
    }
  }
  printf("overfit: %d tasks (%d..%d expressions), greedy exact accuracy %.1f%% after %d steps "
         "in %.1f s\n", run.n_tasks, run.min_e, run.max_e, 100.0 * acc, run.step,
         now_s() - run.t0);
  EXPECT(acc >= 0.95);
  overfit_end(&run);
}

static const test_case k_cases[] = {
    {"gradcheck", test_gradcheck},
    {"gradcheck_1part", test_gradcheck_1part},
    {"gradcheck_dropout", test_gradcheck_dropout},
    {"incremental", test_incremental},
    {"incremental_1part", test_incremental_1part},
    {"search", test_search},
    {"parallel_chunk", test_parallel_chunk},
    {"config", test_config},
    {"overfit", test_overfit},
};

int main(int argc, char **argv) {
  return test_main(argc, argv, k_cases, sizeof k_cases / sizeof k_cases[0],
                   "lstm_tests <case>|all", NULL, NULL);
}

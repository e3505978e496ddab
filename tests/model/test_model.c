/* Tests of the RobustFill[Transformer] model (include/lpsynth/model.h).
 *
 *   model_tests <case>     one case (see k_cases); exit status 0 = pass
 *   model_tests all        every case except overfit and bench
 *   model_tests bench [threads [train|search]]  timings of the paper config (not a test)
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static void tiny_cfg(lp_model_cfg *c) { tiny_cfg_base(c, LP_MODEL_ROBUSTFILL); }

/* ---- gradient check ------------------------------------------------------------- */

static int gc_forward(const gc_ctx *c, lp_rng *r, lp_step_stats *st, lp_err *err) {
  return rf_forward(c->m, c->b, r, st, err);
}

static void run_gradcheck(int n_parts, int train) {
  lp_model_cfg c;
  lp_rng r;
  lp_model *m = gc_model(tiny_cfg, train, n_parts, &c, &r);
  if (!m) return;
  lp_err err = {0};
  const size_t np = lp_model_num_params(m);
  /* 2 tasks, E = 2: task 1 has one example (the other slot is padding);
   * every part and program padded */
  toy_task t[2];
  toy_make(&t[0], &r, 2, n_parts, 2, 6, 4, 7);
  toy_make(&t[1], &r, 1, n_parts, 3, 5, 2, 5);
  t[0].slen[0] = 7; /* the longest input: others are padded */
  for (int j = 0; j < 7; j++) t[0].spec[0][j] = rnd(&r, 1, 19);
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
  /* The max-pool over examples has kinks where two examples tie; a finite
   * difference step that crosses one measures a different function. So the
   * check freezes the pool's selection at the point of the analytic
   * gradient (the max-pool's own gradient is checked by the engine's op
   * table): same loss and gradient there, and smooth around it. */
  const size_t npool = (size_t)b.B * b.T_prog * c.d_model;
  int32_t *frozen = malloc(sizeof(int32_t) * npool);
  memcpy(frozen, m->acts.argmax, sizeof(int32_t) * npool);
  size_t from_second = 0;
  for (size_t i = 0; i < npool; i++) from_second += frozen[i] == 1;
  EXPECT(from_second > npool / 8); /* both examples of task 0 feed the pool */
  m->freeze_argmax = frozen;
  EXPECT(fabs(gc_loss(&ctx) - st.loss) < 1e-9);
  lp_gc_result all;
  const size_t n_zero_tensors = gradcheck_tensors(m, gc_loss, &ctx, g, GC_SAMPLE_RF, 28,
                                                  NULL, &all);
  EXPECT(ctx.err == LP_OK);
  /* out.b of PAD/BOS: fine; a whole tensor with zero gradient means a missing path */
  EXPECT(n_zero_tensors == 0);
  char name[64];
  snprintf(name, sizeof name, "robustfill (%d part%s%s)", n_parts, n_parts > 1 ? "s" : "",
           train ? ", dropout" : "");
  print_gc(name, 28, &all);
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

/* The noncausal decoder block (the output-example encoder): gradient check of
 * the block alone, and position 0 sees later positions (unlike causal). */
typedef struct blk_ctx {
  lp_dec_block blk;
  lp_dec_block_acts *a;
  float *P, *x, *mem, *y, *w;
  uint8_t *xm, *mm;
  int B, T, S, D;
} blk_ctx;

static double blk_loss(void *p) {
  blk_ctx *c = p;
  lp_dec_block_forward(&c->blk, c->P, c->a, c->y, c->x, c->xm, c->mem, c->mm, c->B, c->T, c->S,
                       NULL);
  double s = 0.0;
  for (int i = 0; i < c->B * c->T * c->D; i++) s += (double)c->w[i] * c->y[i];
  return s;
}

static void test_noncausal_block(void) {
  blk_ctx c = {0};
  c.B = 2, c.T = 4, c.S = 3, c.D = 8;
  lp_block_cfg cfg;
  lp_block_cfg_default(&cfg, c.D, 2, 16);
  cfg.dropout = cfg.attn_dropout = 0.0f;
  cfg.noncausal = 1;
  lp_layout *L = lp_layout_new();
  EXPECT(lp_dec_block_init(&c.blk, &cfg, L, "x") == LP_OK);
  EXPECT(c.blk.cfg.noncausal == 1);
  size_t np = lp_layout_numel(L);
  c.P = malloc(sizeof(float) * np);
  float *G = calloc(np, sizeof(float));
  lp_layout_init_params(L, c.P, 5);
  lp_rng r;
  lp_rng_seed(&r, 3);
  for (size_t i = 0; i < np; i++) c.P[i] += 0.1f * lp_rng_normal(&r);
  size_t nx = (size_t)c.B * c.T * c.D, nm = (size_t)c.B * c.S * c.D;
  c.x = malloc(sizeof(float) * nx), c.y = malloc(sizeof(float) * nx);
  c.w = malloc(sizeof(float) * nx), c.mem = malloc(sizeof(float) * nm);
  float *gx = calloc(nx, sizeof(float)), *gm = calloc(nm, sizeof(float));
  for (size_t i = 0; i < nx; i++) c.x[i] = lp_rng_normal(&r), c.w[i] = lp_rng_normal(&r);
  for (size_t i = 0; i < nm; i++) c.mem[i] = lp_rng_normal(&r);
  uint8_t xm[8] = {1, 1, 1, 1, 1, 1, 1, 0}, mm[6] = {1, 1, 1, 1, 0, 0};
  c.xm = xm, c.mm = mm;
  c.a = lp_dec_block_acts_new(&c.blk, c.B, c.T, c.S);
  EXPECT(c.a != NULL);
  blk_loss(&c);
  /* position 0's output depends on position 2's input (not causal) */
  float y0[8];
  memcpy(y0, c.y, sizeof y0);
  c.x[2 * c.D] += 1.0f;
  blk_loss(&c);
  double d = 0.0;
  for (int i = 0; i < 8; i++) d = fmax(d, fabs(y0[i] - c.y[i]));
  EXPECT(d > 1e-4);
  c.x[2 * c.D] -= 1.0f;
  /* a padded key (task 1, position 3) does not matter */
  blk_loss(&c);
  memcpy(y0, c.y + 4 * c.D, sizeof y0);
  c.x[7 * c.D] += 3.0f;
  blk_loss(&c);
  d = 0.0;
  for (int i = 0; i < 8; i++) d = fmax(d, fabs(y0[i] - c.y[4 * c.D + i]));
  EXPECT(d < 1e-6);
  c.x[7 * c.D] -= 3.0f;
  blk_loss(&c);
  EXPECT(lp_dec_block_backward(&c.blk, c.P, G, c.a, gx, gm, c.w) == LP_OK);
  lp_gc_opts o;
  lp_gc_opts_default(&o);
  lp_gc_result all, res;
  lp_gc_result_init(&all);
  lp_gradcheck(blk_loss, &c, c.x, gx, nx, &o, &res);
  lp_gc_result_merge(&all, &res);
  lp_gradcheck(blk_loss, &c, c.mem, gm, nm, &o, &res);
  lp_gc_result_merge(&all, &res);
  lp_gradcheck(blk_loss, &c, c.P, G, np, &o, &res);
  lp_gc_result_merge(&all, &res);
  print_gc("decoder_block_noncausal", 28, &all);
  EXPECT(all.ok);
  /* a noncausal block has no incremental path */
  EXPECT(lp_dec_block_cache_new(&c.blk, 2, 4, 2, 3) == NULL);
  lp_dec_block_acts_free(c.a);
  lp_layout_free(L);
  free(c.P), free(G), free(c.x), free(c.y), free(c.w), free(c.mem), free(gx), free(gm);
}

/* ---- incremental decoding == teacher-forced forward ------------------------------ */

static void run_incremental(int n_parts) {
  lp_err err = {0};
  lp_model_cfg c;
  tiny_cfg(&c);
  c.d_model = 32, c.n_heads = 4, c.d_ff = 64, c.n_enc_layers = 2, c.n_dec_layers = 2;
  c.max_program_len = 24;
  lp_model *m = lp_model_new(&c, &k_spec_v, &k_prog_v, n_parts, 11, &err);
  EXPECT(m != NULL);
  if (!m) return;
  lp_rng r;
  lp_rng_seed(&r, 5);
  /* 3 tasks with the same spec (3 example slots, the last one absent) and
   * different programs */
  toy_task t[3];
  toy_make(&t[0], &r, 2, n_parts, 3, 9, 9, 9);
  for (int i = 1; i < 3; i++) {
    t[i] = t[0];
    for (int k = 0; k < TOY_MAX_E * 2; k++) t[i].sp[k] = t[i].spec[k];
    int len = i == 1 ? 6 : 12;
    for (int j = 0; j < len - 1; j++) t[i].prog[j] = rnd(&r, 3, 19);
    t[i].prog[len - 1] = 2;
    t[i].plen = (size_t)len;
  }
  t[0].ne = t[1].ne = t[2].ne = 2;
  /* the batch has E = 3: add an absent third slot via a 4th dummy? No: the
   * search batch below has E = 2 as well; emask padding is covered by the
   * 1-example task of the gradient check and by search(). */
  lp_batch full = {0}, one = {0};
  EXPECT_OK(toy_batch(&full, t, 3, n_parts, 1, &c, &err));
  lp_step_stats st;
  EXPECT_OK(lp_model_eval_loss(m, &full, &st, &err));
  const int T = full.T_prog, V = k_prog_v.size;
  float *ref = malloc(sizeof(float) * (size_t)3 * T * V);
  memcpy(ref, m->acts.logits, sizeof(float) * (size_t)3 * T * V);
  EXPECT_OK(toy_batch(&one, t, 1, n_parts, 0, &c, &err));
  EXPECT_OK(rf_encode(m, &one, NULL, &err));
  EXPECT_OK(rf_inc_start(m, one.emask, 3, T, &err));
  int asg[3] = {0, 1, 2}; /* hypothesis j follows program asg[j] */
  int32_t tok[3];
  float *lg = malloc(sizeof(float) * 3 * (size_t)V);
  double worst = 0.0;
  for (int s = 0; s < T; s++) {
    if (s == 3) { /* permutation */
      int32_t par[3] = {2, 0, 1};
      int na[3] = {asg[2], asg[0], asg[1]};
      EXPECT_OK(rf_inc_reorder(m, par, 3, &err));
      memcpy(asg, na, sizeof asg);
    }
    if (s == 6) { /* duplicate one, drop one */
      int32_t par[3] = {1, 1, 0};
      int na[3] = {asg[1], asg[1], asg[0]};
      EXPECT_OK(rf_inc_reorder(m, par, 3, &err));
      memcpy(asg, na, sizeof asg);
    }
    if (s == 8) { /* sources keep their rows: the in-place gather */
      int32_t par[3] = {0, 0, 2};
      int na[3] = {asg[0], asg[0], asg[2]};
      EXPECT_OK(rf_inc_reorder(m, par, 3, &err));
      memcpy(asg, na, sizeof asg);
    }
    for (int j = 0; j < 3; j++) tok[j] = s == 0 ? 1 : full.prog[(size_t)asg[j] * T + s - 1];
    EXPECT_OK(rf_inc_step(m, tok, 3, lg, &err));
    for (int j = 0; j < 3; j++)
      for (int v = 0; v < V; v++) {
        double d = fabs((double)lg[(size_t)j * V + v] - ref[((size_t)asg[j] * T + s) * V + v]);
        worst = fmax(worst, d);
      }
  }
  /* one position too many */
  EXPECT(rf_inc_step(m, tok, 3, lg, &err) == LP_EINVAL);
  printf("incremental vs teacher-forced forward (%d part%s, %d steps, reorders): max |diff| "
         "%.3e\n",
         n_parts, n_parts > 1 ? "s" : "", T, worst);
  EXPECT(worst < 1e-4);
  free(ref);
  free(lg);
  lp_batch_free(&full);
  lp_batch_free(&one);
  lp_model_free(m);
}

static void test_incremental(void) { run_incremental(2); }
static void test_incremental_1part(void) { run_incremental(1); }

/* ---- beam search ----------------------------------------------------------------- */

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
  /* make the distribution peakier than at init: a few steps towards one
   * program (so EOS shows up at various lengths) */
  toy_task t[2];
  toy_make(&t[0], &r, 3, 2, 2, 8, 5, 5);
  t[1] = t[0];
  t[1].ne = 2; /* E = 3 in the batch, one absent slot */
  for (int k = 0; k < TOY_MAX_E * 2; k++) t[0].sp[k] = t[0].spec[k], t[1].sp[k] = t[1].spec[k];
  lp_batch b = {0};
  EXPECT_OK(toy_batch(&b, &t[1], 1, 2, 0, &c, &err));
  const int V = k_prog_v.size;
  float *lg = malloc(sizeof(float) * (size_t)V);
  /* at init EOS is about as likely as any token: lower it so that greedy
   * paths and beams have various lengths */
  const lp_param_info *ob = lp_layout_find(lp_model_layout(m), "out.b");
  EXPECT(ob != NULL);
  for (int pass = 0; pass < 2; pass++) {
    const int max_len = pass ? 12 : 9;
    if (pass == 0) {
      lp_model_params(m)[ob->offset + 2] = -2.5f; /* greedy runs to max_len (EOS forced) */
    } else {
      /* a few steps towards one program, so that hypotheses end by themselves */
      lp_model_params(m)[ob->offset + 2] = 0.0f;
      toy_task tt = t[1];
      for (int k = 0; k < TOY_MAX_E * 2; k++) tt.sp[k] = tt.spec[k];
      lp_batch tb = {0};
      EXPECT_OK(toy_batch(&tb, &tt, 1, 2, 1, &c, &err));
      lp_adam *opt = lp_adam_new(lp_model_num_params(m), NULL);
      lp_step_stats st;
      for (int s = 1; s <= 30; s++) {
        EXPECT_OK(lp_model_train_step(m, &tb, s, NULL, &st, &err));
        lp_adam_step(opt, lp_model_params(m), lp_model_grads(m), 3e-3f, NULL);
      }
      printf("trained 30 steps on one program: loss %.4f\n", st.loss);
      lp_adam_free(opt);
      lp_batch_free(&tb);
    }
    /* greedy reference through the teacher-forced forward (PAD/BOS never
     * generated, EOS forced at max_len) */
    int32_t g[16];
    int gn = 0;
    for (;;) {
      g[gn] = 2;
      seq_logprob(m, &t[1], g, gn + 1, &c, lg);
      int best = -1;
      for (int v = 0; v < V; v++) {
        if (v == 0 || v == 1) continue;
        if (best < 0 || lg[v] > lg[best]) best = v;
      }
      if (gn + 1 == max_len) best = 2;
      g[gn++] = best;
      if (best == 2) break;
    }
    lp_beam_opts o = {.beam = 1, .latent_beam = 0, .max_len = max_len, .len_alpha = 0.0f};
    lp_beam_result res = {0};
    EXPECT_OK(lp_model_search(m, &b, &o, &res, &err));
    EXPECT(res.n == 1);
    if (res.n == 1) {
      EXPECT(res.hyps[0].prog_len == gn && res.hyps[0].latent == NULL);
      EXPECT(memcmp(res.hyps[0].prog, g, sizeof(int32_t) * (size_t)gn) == 0);
      double lp = seq_logprob(m, &t[1], res.hyps[0].prog, res.hyps[0].prog_len, &c, NULL);
      EXPECT(fabs(lp - res.hyps[0].score) < 1e-3);
      printf("greedy (max_len %d): %d tokens, score %.4f (teacher-forced %.4f)\n", max_len, gn,
             res.hyps[0].score, lp);
      if (pass == 0) EXPECT(gn == max_len); /* EOS forced at the last position */
      if (pass == 1) { /* the trained program, ended by the model itself */
        EXPECT(gn < max_len && (size_t)gn == t[1].plen);
        EXPECT(memcmp(g, t[1].prog, sizeof(int32_t) * t[1].plen) == 0);
      }
    }
    lp_beam_free(&res);
    for (int beam = 2; beam <= 16; beam *= 2)
      for (int norm = 0; norm < 2; norm++) {
        lp_beam_opts ob = {.beam = beam, .latent_beam = 0, .max_len = max_len, .len_alpha = norm ? 0.6f : 0.0f};
        EXPECT_OK(lp_model_search(m, &b, &ob, &res, &err));
        EXPECT(res.n >= 1 && res.n <= beam);
        for (int i = 0; i < res.n; i++) {
          const lp_hyp *h = &res.hyps[i];
          EXPECT(h->prog_len >= 1 && h->prog_len <= max_len);
          EXPECT(h->prog[h->prog_len - 1] == 2);
          for (int j = 0; j + 1 < h->prog_len; j++) EXPECT(h->prog[j] > 2);
          if (i > 0) EXPECT(res.hyps[i - 1].score >= h->score);
          for (int k = 0; k < i; k++)
            EXPECT(res.hyps[k].prog_len != h->prog_len ||
                   memcmp(res.hyps[k].prog, h->prog, sizeof(int32_t) * (size_t)h->prog_len));
          double lp = seq_logprob(m, &t[1], h->prog, h->prog_len, &c, NULL);
          double want = norm ? lp / pow(h->prog_len, 0.6) : lp;
          EXPECT(fabs(want - h->score) < 1e-3);
        }
        /* the best of a wider beam is no worse than greedy (no normalisation) */
        if (!norm && res.n) {
          double glp = seq_logprob(m, &t[1], g, gn, &c, NULL);
          EXPECT(res.hyps[0].score >= glp - 1e-4);
        }
        if (beam == 16 && !norm)
          printf("beam %d (max_len %d): %d hyps, best %.4f worst %.4f\n", beam, max_len, res.n,
                 res.hyps[0].score, res.hyps[res.n - 1].score);
        lp_beam_free(&res);
      }
  }
  /* bad options */
  lp_beam_opts bad = {.beam = 0, .latent_beam = 0, .max_len = 0, .len_alpha = 0.0f};
  lp_beam_result res = {0};
  EXPECT(lp_model_search(m, &b, &bad, &res, &err) == LP_EINVAL && res.n == 0);
  free(lg);
  lp_batch_free(&b);
  lp_model_free(m);
}

/* ---- bad input -------------------------------------------------------------------- */

static void test_badinput(void) {
  lp_err err = {0};
  lp_model_cfg c;
  tiny_cfg(&c);
  c.max_spec_len = 8;
  c.max_program_len = 6;
  lp_rng r;
  lp_rng_seed(&r, 1);
  toy_task t[3];
  for (int i = 0; i < 3; i++) toy_make(&t[i], &r, 2, 2, 2, 8, 2, 6);
  lp_batch b = {0};
  EXPECT_OK(toy_batch(&b, t, 3, 2, 1, &c, &err));
  /* pads only to the longest present */
  size_t mx = 0;
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 4; k += 2) mx = t[i].slen[k] > mx ? t[i].slen[k] : mx;
  EXPECT(b.T_spec[0] == (int)mx && b.B == 3 && b.E == 2);
  /* a spec part too long */
  t[1].slen[3] = 9;
  for (int j = 0; j < 9; j++) t[1].spec[3][j] = 4;
  err.msg[0] = 0;
  EXPECT(toy_batch(&b, t, 3, 2, 1, &c, &err) == LP_EINVAL);
  printf("over-long part: %s\n", err.msg);
  EXPECT(strstr(err.msg, "task 1") && strstr(err.msg, "9 tokens"));
  t[1].slen[3] = 3;
  /* a program too long */
  t[2].plen = 7;
  err.msg[0] = 0;
  EXPECT(toy_batch(&b, t, 3, 2, 1, &c, &err) == LP_EINVAL);
  printf("over-long program: %s\n", err.msg);
  EXPECT(strstr(err.msg, "task 2") && strstr(err.msg, "7 tokens"));
  t[2].plen = 6;
  EXPECT(toy_batch(&b, t, 3, 3, 1, &c, &err) == LP_EINVAL);
  EXPECT(toy_batch(&b, t, 0, 2, 1, &c, &err) == LP_EINVAL);
  /* ids out of the vocabulary: an error, not a crash */
  lp_model *m = lp_model_new(&c, &k_spec_v, &k_prog_v, 2, 1, &err);
  EXPECT(m != NULL);
  lp_step_stats st;
  t[0].spec[2][0] = 20; /* spec vocab is 20 */
  EXPECT_OK(toy_batch(&b, t, 3, 2, 1, &c, &err));
  EXPECT(lp_model_train_step(m, &b, 1, NULL, &st, &err) == LP_EINVAL);
  printf("spec id out of range: %s\n", err.msg);
  EXPECT(strstr(err.msg, "task 0") && strstr(err.msg, "20"));
  t[0].spec[2][0] = -3;
  EXPECT_OK(toy_batch(&b, t, 3, 2, 1, &c, &err));
  EXPECT(lp_model_eval_loss(m, &b, &st, &err) == LP_EINVAL);
  t[0].spec[2][0] = 4;
  t[2].prog[0] = 400;
  EXPECT_OK(toy_batch(&b, t, 3, 2, 1, &c, &err));
  EXPECT(lp_model_train_step(m, &b, 1, NULL, &st, &err) == LP_EINVAL);
  printf("program id out of range: %s\n", err.msg);
  EXPECT(strstr(err.msg, "task 2") && strstr(err.msg, "400"));
  t[2].prog[0] = 5;
  /* search: more than one task, bad spec ids */
  EXPECT_OK(toy_batch(&b, t, 3, 2, 0, &c, &err));
  lp_beam_opts o = {.beam = 4, .latent_beam = 0, .max_len = 0, .len_alpha = 0.0f};
  lp_beam_result res = {0};
  EXPECT(lp_model_search(m, &b, &o, &res, &err) == LP_EINVAL);
  t[0].spec[0][1] = 77;
  EXPECT_OK(toy_batch(&b, t, 1, 2, 0, &c, &err));
  EXPECT(lp_model_search(m, &b, &o, &res, &err) == LP_EINVAL && res.n == 0);
  printf("search with a bad id: %s\n", err.msg);
  t[0].spec[0][1] = 3;
  EXPECT_OK(toy_batch(&b, t, 1, 2, 0, &c, &err));
  EXPECT_OK(lp_model_search(m, &b, &o, &res, &err));
  EXPECT(res.n >= 1);
  lp_beam_free(&res);
  /* a batch with the wrong number of parts */
  EXPECT_OK(toy_batch(&b, t, 3, 1, 1, &c, &err));
  EXPECT(lp_model_train_step(m, &b, 1, NULL, &st, &err) == LP_EINVAL);
  lp_model_free(m);
  /* bad configurations and vocabularies */
  lp_model_cfg bc = c;
  bc.d_model = 15;
  EXPECT(lp_model_new(&bc, &k_spec_v, &k_prog_v, 2, 1, &err) == NULL);
  lp_vocab_info pv = k_prog_v;
  pv.eos = 20;
  EXPECT(lp_model_new(&c, &k_spec_v, &pv, 2, 1, &err) == NULL);
  EXPECT(lp_model_new(&c, &k_spec_v, &k_prog_v, 3, 1, &err) == NULL);
  lp_batch_free(&b);
  lp_batch_free(NULL);
  lp_model_free(NULL);
  lp_beam_free(NULL);
}

/* ---- overfit (acceptance) ----------------------------------------------------------- */

/* Acceptance: a small model overfits 64 generated string tasks (programs of
 * 1..3 expressions) until greedy decoding returns >= 95% of their programs
 * exactly, within 200 optimiser steps (a budget of steps, not of seconds: the
 * verdict is the same on a slow or loaded machine; 100 steps suffice with
 * OpenBLAS's default and Haswell kernels). Sanitizer/unoptimised builds (CI's ASan+UBSan run) are ~15x slower
 * per step, so they run the same code on a quarter of the problem: 16 tasks
 * of 1..2 expressions and a narrower model. */
static void test_overfit(void) {
  lp_model_cfg c;
  const int slow = overfit_cfg(&c, LP_MODEL_ROBUSTFILL);
  overfit_run run;
  if (overfit_start(&run, &c, slow) != 0) return;
  const double t0 = run.t0;
  const int n_tasks = run.n_tasks;
  lp_err err = {0};
  double acc = 0.0;
  int epoch = 0;
  const int max_steps = overfit_max_steps(slow ? 1000 : 200); /* 100 suffice */
  for (; run.step < max_steps; epoch++) {
    overfit_epoch(&run, &c);
    /* greedy decoding of all 64 tasks costs about one epoch: every 5 epochs
     * once the loss is low */
    if ((epoch % 5 == 4 && run.st.loss < 0.3) || epoch % 20 == 19) {
      /* greedy decoding of every task */
      int exact = 0;
      for (int i = 0; i < n_tasks; i++) {
        EXPECT_OK(overfit_one(&run, i, &c, &err));
        lp_beam_opts o = {.beam = 1, .latent_beam = 0, .max_len = 0, .len_alpha = 0.0f};
        lp_beam_result res = {0};
        EXPECT_OK(lp_model_search(run.m, &run.one, &o, &res, &err));
        exact += res.n == 1 && same_prog(&res.hyps[0], &run.tasks[i]);
        lp_beam_free(&res);
      }
      acc = (double)exact / n_tasks;
      printf("epoch %d step %d loss %.4f greedy exact %.1f%% (%.1f s)\n", epoch + 1, run.step,
             run.st.loss, 100.0 * acc, now_s() - t0);
      fflush(stdout);
      if (acc >= 0.95) break;
    }
  }
  printf("overfit: %d tasks (%d..%d expressions), greedy exact accuracy %.1f%% after %d steps "
         "in %.1f s\n",
         n_tasks, run.min_e, run.max_e, 100.0 * acc, run.step, now_s() - t0);
  EXPECT(acc >= 0.95);
  overfit_end(&run);
}

/* ---- bench: the paper config ----------------------------------------------------- */

static void bench(int threads, const char *what) {
  const int do_train = !what || strcmp(what, "search") != 0;
  const int do_search = !what || strcmp(what, "train") != 0;
  lp_err err = {0};
  lp_engine_set_threads(threads);
  lp_model_cfg c;
  lp_model_cfg_default(&c, LP_MODEL_ROBUSTFILL); /* 128 / 512 / 4 heads / 3+3, dropout 0.1 */
  lp_model *m = lp_model_new(&c, &k_str_spec, &k_str_prog, 2, 1, &err);
  if (!m) {
    fprintf(stderr, "%s\n", err.msg);
    g_failures++;
    return;
  }
  printf("paper config: %zu parameters, %d OpenBLAS threads\n", lp_model_num_params(m),
         lp_engine_get_threads());
  enum { NB = 4, BS = 32 };
  str_task tasks[NB * BS];
  uint64_t seed = 5;
  for (int i = 0; i < NB * BS; i++)
    while (str_task_make(&tasks[i], seed++, 1, 10, 0) != 0) str_task_free(&tasks[i]);
  lp_batch b[NB];
  lp_task_ids ids[BS];
  memset(b, 0, sizeof b);
  for (int k = 0; k < NB; k++) {
    for (int i = 0; i < BS; i++) str_ids(&ids[i], &tasks[k * BS + i], 1);
    EXPECT_OK(lp_batch_fill(&b[k], ids, BS, 2, 0, 0, &c, &err));
    printf("batch %d: T_in %d T_out %d T_prog %d\n", k, b[k].T_spec[0], b[k].T_spec[1],
           b[k].T_prog);
  }
  lp_rng r;
  lp_rng_seed(&r, 3);
  lp_step_stats st;
  EXPECT_OK(lp_model_train_step(m, &b[0], 1, &r, &st, &err)); /* warm-up (allocations) */
  const int n_steps = do_train ? 8 : 0;
  double t0 = now_s();
  clock_t c0 = clock();
  for (int s = 0; s < n_steps; s++)
    EXPECT_OK(lp_model_train_step(m, &b[s % NB], s + 2, &r, &st, &err));
  double dt = (now_s() - t0) / n_steps;
  double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC / (n_steps ? n_steps : 1);
  if (do_train)
    printf("train step (32 tasks x 4 examples, dropout 0.1): %.3f s/step (cpu %.3f s), loss "
           "%.3f\n",
           dt, cpu, st.loss);
  for (int beam = 10; do_search && beam <= 100; beam *= 10) {
    double tt = 0.0;
    clock_t c0 = clock();
    int n = 0, hyps = 0;
    for (int i = 0; i < (beam == 10 ? 8 : 3); i++) {
      lp_batch one = {0};
      str_ids(&ids[0], &tasks[i], 0);
      EXPECT_OK(lp_batch_fill(&one, ids, 1, 2, 0, 0, &c, &err));
      lp_beam_opts o = {.beam = beam, .latent_beam = 0, .max_len = 0, .len_alpha = 0.0f};
      lp_beam_result res = {0};
      double s0 = now_s();
      EXPECT_OK(lp_model_search(m, &one, &o, &res, &err));
      tt += now_s() - s0;
      n++;
      hyps += res.n;
      lp_beam_free(&res);
      lp_batch_free(&one);
    }
    printf("beam %d (untrained weights, max_len %d): %.3f s/task (cpu %.3f s, %.1f hyps)\n",
           beam, c.max_program_len, tt / n, (double)(clock() - c0) / CLOCKS_PER_SEC / n,
           (double)hyps / n);
  }
  for (int k = 0; k < NB; k++) lp_batch_free(&b[k]);
  for (int i = 0; i < NB * BS; i++) str_task_free(&tasks[i]);
  lp_model_free(m);
}

/* ---- main -------------------------------------------------------------------------- */

/* ---- data-parallel workers ------------------------------------------------------- */

/* lp_model_set_threads: 1, 2 and 3 workers (3 does not divide the batch, and the
 * shares have different token counts) give the same loss and gradients as one
 * worker, up to float rounding; 5 workers on a batch of 4 fall back to one. */
static void test_parallel(void) {
  lp_err err = {0};
  lp_model_cfg c;
  tiny_cfg(&c);
  lp_rng r;
  lp_rng_seed(&r, 77);
  toy_task tasks[7];
  for (int i = 0; i < 7; i++) toy_make(&tasks[i], &r, 1 + i % 3, 2, 1, 9, 2, 2 + 2 * i);
  lp_batch b = {0};
  EXPECT_OK(toy_batch(&b, tasks, 7, 2, 1, &c, &err));
  lp_model *m = lp_model_new(&c, &k_spec_v, &k_prog_v, 2, 5, &err);
  EXPECT(m != NULL);
  if (!m) return;
  EXPECT_OK(lp_model_set_chunk(m, 0, &err)); /* the padded shares (test_chunk: chunks) */
  const size_t np = lp_model_num_params(m);
  float *g1 = malloc(sizeof(float) * np);
  lp_step_stats s1, sw;
  EXPECT_OK(lp_model_train_step(m, &b, 1, NULL, &s1, &err));
  memcpy(g1, lp_model_grads(m), sizeof(float) * np);
  const int workers[] = {2, 3};
  for (int k = 0; k < 2; k++) {
    EXPECT_OK(lp_model_set_threads(m, workers[k], &err));
    EXPECT_OK(lp_model_train_step(m, &b, 1, NULL, &sw, &err));
    const float *g = lp_model_grads(m);
    double worst = 0.0, gmax = 0.0;
    for (size_t i = 0; i < np; i++) {
      double d = fabs((double)g[i] - g1[i]);
      if (d > worst) worst = d;
      if (fabs(g1[i]) > gmax) gmax = fabs(g1[i]);
    }
    printf("  %d workers: loss %.7f vs %.7f, max |dgrad| %.3g (max |grad| %.3g)\n", workers[k],
           sw.loss, s1.loss, worst, gmax);
    EXPECT(fabs(sw.loss - s1.loss) < 1e-5 * (1.0 + fabs(s1.loss)));
    EXPECT(sw.n_tokens == s1.n_tokens);
    EXPECT(fabs(sw.token_acc - s1.token_acc) < 1e-9);
    EXPECT(worst <= 1e-5 * gmax + 1e-7);
  }
  /* more workers than tasks: one worker does it all, bitwise equal */
  lp_batch b4 = {0};
  EXPECT_OK(toy_batch(&b4, tasks, 4, 2, 1, &c, &err));
  EXPECT_OK(lp_model_set_threads(m, 1, &err));
  EXPECT_OK(lp_model_train_step(m, &b4, 1, NULL, &s1, &err));
  memcpy(g1, lp_model_grads(m), sizeof(float) * np);
  EXPECT_OK(lp_model_set_threads(m, 5, &err));
  EXPECT_OK(lp_model_train_step(m, &b4, 1, NULL, &sw, &err));
  EXPECT(memcmp(g1, lp_model_grads(m), sizeof(float) * np) == 0);
  EXPECT(lp_model_set_threads(m, 0, &err) == LP_EINVAL);
  lp_model_free(m);
  lp_batch_free(&b);
  lp_batch_free(&b4);
  free(g1);
  lp_engine_set_threads(1);
}

/* Length-bucketed steps (lp_model_set_chunk): chunks of 1, 2, 3 tasks on 1, 2
 * and 3 workers give the loss, token accuracy and gradients of one padded pass
 * (chunk 0) up to float rounding, on tasks of different lengths; they run
 * fewer padded FLOPs for the same useful ones; chunk >= B is the padded pass. */
static void test_chunk(void) {
  lp_err err = {0};
  lp_model_cfg c;
  tiny_cfg(&c);
  lp_rng r;
  lp_rng_seed(&r, 91);
  toy_task tasks[9];
  for (int i = 0; i < 9; i++) toy_make(&tasks[i], &r, 1 + (i * 5) % 4, 2, 1, 9, 2, 2 + (i * 7) % 13);
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
  const int chunks[] = {1, 2, 3, 9}, workers[] = {1, 2, 3};
  for (int w = 0; w < 3; w++)
    for (int k = 0; k < 4; k++) {
      EXPECT_OK(lp_model_set_threads(m, workers[w], &err));
      EXPECT_OK(lp_model_set_chunk(m, chunks[k], &err));
      lp_model_profile_enable(m, 1);
      EXPECT_OK(lp_model_train_step(m, &b, 1, NULL, &sc, &err));
      lp_model_profile_get(m, &pc);
      const float *g = lp_model_grads(m);
      double worst = 0.0, gmax = 0.0;
      for (size_t i = 0; i < np; i++) {
        double d = fabs((double)g[i] - g0[i]);
        if (d > worst) worst = d;
        if (fabs(g0[i]) > gmax) gmax = fabs(g0[i]);
      }
      printf("  chunk %d, %d workers: loss %.7f vs %.7f, max |dgrad| %.3g (max |grad| %.3g), "
             "%lld passes, %.0f of %.0f FLOPs useful\n",
             chunks[k], workers[w], sc.loss, s0.loss, worst, gmax, pc.chunks, pc.flops_useful,
             pc.flops_run);
      EXPECT(fabs(sc.loss - s0.loss) < 1e-5 * (1.0 + fabs(s0.loss)));
      EXPECT(sc.n_tokens == s0.n_tokens);
      EXPECT(fabs(sc.token_acc - s0.token_acc) < 1e-9);
      EXPECT(worst <= 1e-5 * gmax + 1e-7);
      EXPECT(fabs(pc.flops_useful - p0.flops_useful) <= 1e-9 * p0.flops_useful);
      if (chunks[k] < 9) {
        EXPECT(pc.chunks == (9 + chunks[k] - 1) / chunks[k]);
        EXPECT(pc.flops_run < p0.flops_run);
      }
    }
  EXPECT(lp_model_set_chunk(m, -1, &err) == LP_EINVAL);
  lp_model_profile_enable(m, 0);
  lp_model_free(m);
  lp_batch_free(&b);
  free(g0);
  lp_engine_set_threads(1);
}

static const test_case k_cases[] = {
    {"gradcheck", test_gradcheck},
    {"gradcheck_1part", test_gradcheck_1part},
    {"gradcheck_dropout", test_gradcheck_dropout},
    {"noncausal_block", test_noncausal_block},
    {"incremental", test_incremental},
    {"incremental_1part", test_incremental_1part},
    {"search", test_search},
    {"badinput", test_badinput},
    {"parallel", test_parallel},
    {"chunk", test_chunk},
    {"overfit", test_overfit},
};

static void bench_main(int argc, char **argv) {
  bench(argc > 2 ? atoi(argv[2]) : 2, argc > 3 ? argv[3] : NULL);
}

int main(int argc, char **argv) {
  return test_main(argc, argv, k_cases, sizeof k_cases / sizeof k_cases[0],
                   "model_tests <case>|all|bench [threads]", "bench", bench_main);
}

/* eval's workers (cli/eval.h): T threads search and score the tasks of a
 * chunk, each with its own model and domain instance. */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"

/* What one worker owns: a model, a domain instance and scratch space. */
typedef struct eval_worker {
  lp_model *m;
  lp_domain *d;
  int own;                  /* 1: m and d are this worker's copies (freed with it) */
  lp_buf text;
  const int32_t **seqs;
  int *lens, cap_seqs;
} eval_worker;

struct eval_pool {
  const eval_settings *S;
  eval_worker *w;
  int n_workers;
  /* the chunk being run */
  eval_job *jobs;
  size_t n_jobs;
  atomic_size_t next;       /* the next job to take */
  atomic_size_t stop;       /* the first failed job (SIZE_MAX: none); later ones are skipped */
  atomic_size_t done;       /* tasks searched in this chunk */
  cli_progress *pg;
  uint64_t done_before;     /* tasks of earlier chunks */
};

char *eval_msg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  return s;
}

void eval_job_free(eval_job *J, int n_runs) {
  if (J->runs)
    for (int r = 0; r < n_runs; r++) free(J->runs[r].top);
  free(J->runs);
  free(J->msg);
  lp_batch_free(&J->b);
  lp_enc_task_free(&J->t);
  lp_record_free(&J->rec);
  memset(J, 0, sizeof *J);
}

int eval_latent_used(int beam, int lbeam) {
  int l = lbeam > 0 ? lbeam : (int)floor(sqrt((double)beam));
  if (l < 1) l = 1;
  if (l > beam) l = beam;
  return l;
}

/* ---------- one (B, L) run on one task ---------- */

/* exact: lp_synthesize as synth does; the answers become *res (a beam), for
 * the diversity. 0, or -1 with J->msg set. */
static int run_exact(const eval_settings *S, eval_worker *W, eval_job *J, int bi, int li,
                     run_res *R, lp_beam_result *res) {
  lp_err e = {0};
  lp_synth_opts so = {.mode = S->mode, .beam = S->beams[bi], .latent_beam = S->lbeams[li],
                      .max_len = S->max_len, .time_limit = S->tlimit, .len_alpha = S->len_alpha,
                      .keep_order = S->keep_order,
                      .max_candidates = S->cands, .rank = S->rank};
  lp_synth_result sr = {0};
  if (lp_synthesize(W->d, W->m, W->m ? &J->b : NULL, J->t.ex, J->t.n_examples, &so, &sr, &e)) {
    J->msg = eval_msg("%s:%zu: search: %s", S->tasks, J->lineno, e.msg);
    return -1;
  }
  R->first = sr.top;
  R->timed_out = sr.timed_out;
  if (sr.top >= 0) {
    const lp_synth_answer *a = &sr.ans[sr.top];
    R->stage = a->stage;
    int ok = 0;
    lp_err e2 = {0};
    if (J->t.n_held && lp_domain_check(W->d, a->prog, (size_t)a->prog_len, J->t.held,
                                       J->t.n_held, &ok, &e2) == 0)
      R->generalised = ok;
  }
  res->n = sr.n;
  res->hyps = sr.n ? calloc((size_t)sr.n, sizeof *res->hyps) : NULL;
  if (sr.n && !res->hyps) {
    lp_synth_result_free(&sr);
    J->msg = eval_msg("%s:%zu: out of memory", S->tasks, J->lineno);
    return -1;
  }
  for (int h = 0; h < sr.n; h++) {
    res->hyps[h].prog = sr.ans[h].prog, res->hyps[h].prog_len = sr.ans[h].prog_len;
    sr.ans[h].prog = NULL;
  }
  lp_synth_result_free(&sr);
  R->found = res->n;
  return 0;
}

/* bleu: the model's beam, each program decoded and scored against the
 * reference. 0, or -1 with J->msg set. */
static int run_bleu(const eval_settings *S, eval_worker *W, eval_job *J, int bi, int li,
                    run_res *R, lp_beam_result *res) {
  lp_err e = {0};
  lp_beam_opts o = {.beam = S->beams[bi], .latent_beam = S->lbeams[li], .max_len = S->max_len,
                    .len_alpha = (float)S->len_alpha};
  if (lp_model_search(W->m, &J->b, &o, res, &e)) {
    J->msg = eval_msg("%s:%zu: search: %s", S->tasks, J->lineno, e.msg);
    return -1;
  }
  int n_wf = -1;
  if (!S->keep_order && lp_beam_wellformed_first(W->d, res, &n_wf, &e)) {
    J->msg = eval_msg("%s:%zu: well-formed check: %s", S->tasks, J->lineno, e.msg);
    return -1;
  }
  R->top_wf = n_wf < 0 || res->n == 0 ? -1 : n_wf > 0;
  if (S->keep_order && res->n > 0 && lp_domain_has(W->d, LP_CAP_WELLFORMED)) {
    int w = 0;
    if (lp_domain_wellformed(W->d, res->hyps[0].prog, (size_t)res->hyps[0].prog_len, &w, &e)) {
      J->msg = eval_msg("%s:%zu: well-formed check: %s", S->tasks, J->lineno, e.msg);
      return -1;
    }
    R->top_wf = w;
  }
  R->found = res->n;
  const char *rs[1] = {J->t.ref};
  size_t rl[1] = {J->t.ref_len};
  for (int h = 0; h < res->n; h++) {
    lp_err e2 = {0};
    W->text.len = 0;
    if (lp_domain_program_decode(W->d, res->hyps[h].prog, (size_t)res->hyps[h].prog_len,
                                 &W->text, &e2))
      W->text.len = 0; /* not a well-formed program: scored as empty */
    const char *txt = W->text.data ? W->text.data : "";
    lp_bleu_stats one;
    memset(&one, 0, sizeof one);
    if (lp_bleu_add(&one, txt, W->text.len, rs, rl, 1, LP_BLEU_TOK_CODE, &e2)) {
      J->msg = eval_msg("%s:%zu: BLEU: %s", S->tasks, J->lineno, e2.msg);
      return -1;
    }
    double b = lp_bleu_score(&one, LP_BLEU_SMOOTH_METHOD1, NULL);
    if (h == 0) {
      R->top1 = b;
      R->top_stats = one;
      R->top_len = W->text.len;
      if (!(R->top = malloc(W->text.len + 1))) {
        J->msg = eval_msg("%s:%zu: out of memory", S->tasks, J->lineno);
        return -1;
      }
      memcpy(R->top, txt, W->text.len);
      R->top[W->text.len] = '\0';
    }
    if (R->best_rank == 0 || b > R->best) {
      R->best = b;
      R->best_rank = h + 1;
    }
  }
  /* an empty beam counts as an empty top program in the corpus BLEU */
  lp_err e2 = {0};
  if (res->n == 0 && lp_bleu_add(&R->top_stats, "", 0, rs, rl, 1, LP_BLEU_TOK_CODE, &e2)) {
    J->msg = eval_msg("%s:%zu: BLEU: %s", S->tasks, J->lineno, e2.msg);
    return -1;
  }
  return 0;
}

/* The diversity of the beam's programs (tokens without EOS). 0 or -1. */
static int run_diversity(const eval_settings *S, eval_worker *W, eval_job *J,
                         const lp_beam_result *res, run_res *R) {
  if (res->n > W->cap_seqs) {
    free(W->seqs);
    free(W->lens);
    W->seqs = malloc((size_t)res->n * sizeof *W->seqs);
    W->lens = malloc((size_t)res->n * sizeof *W->lens);
    W->cap_seqs = W->seqs && W->lens ? res->n : 0;
    if (!W->cap_seqs) {
      J->msg = eval_msg("%s:%zu: out of memory", S->tasks, J->lineno);
      return -1;
    }
  }
  for (int h = 0; h < res->n; h++) {
    int n = res->hyps[h].prog_len;
    if (n > 0 && res->hyps[h].prog[n - 1] == S->eos) n--;
    W->seqs[h] = res->hyps[h].prog;
    W->lens[h] = n;
  }
  R->ntok = cli_beam_diversity(W->seqs, W->lens, res->n, EVAL_DIV_N, R->div);
  if (R->ntok >= 0) return 0;
  J->msg = eval_msg("%s:%zu: out of memory", S->tasks, J->lineno);
  return -1;
}

/* Run (bi, li) on job J with worker W: search, score, diversity. Returns 0,
 * or -1 with J->msg set (the message names the file and line). */
static int eval_run(const eval_settings *S, eval_worker *W, eval_job *J, int bi, int li,
                    run_res *R) {
  lp_beam_result res = {0};
  double t0 = lp_now();
  R->first = -1;
  int rc = S->metric == CLI_METRIC_EXACT ? run_exact(S, W, J, bi, li, R, &res)
                                         : run_bleu(S, W, J, bi, li, R, &res);
  if (rc == 0) rc = run_diversity(S, W, J, &res, R);
  lp_beam_free(&res);
  R->secs = lp_now() - t0;
  return rc;
}

/* ---------- the workers ---------- */

static void worker_main(void *ctx, int w) {
  eval_pool *P = ctx;
  const eval_settings *S = P->S;
  eval_worker *W = &P->w[w];
  for (;;) {
    size_t j = atomic_fetch_add(&P->next, 1);
    if (j >= P->n_jobs || j > atomic_load(&P->stop)) break;
    eval_job *J = &P->jobs[j];
    if (J->bad) continue;
    for (int bi = 0; bi < S->n_beams && J->failed_run < 0; bi++)
      for (int li = 0; li < S->n_lbeams; li++) {
        int r = bi * S->n_lbeams + li;
        if (S->dup[r]) continue;
        if (eval_run(S, W, J, bi, li, &J->runs[r])) {
          J->failed_run = r;
          break;
        }
      }
    if (J->failed_run >= 0) { /* later jobs need not run: stop = min(stop, j) */
      size_t s = atomic_load(&P->stop);
      while (j < s && !atomic_compare_exchange_weak(&P->stop, &s, j)) {
      }
    }
    size_t d = atomic_fetch_add(&P->done, 1) + 1;
    if (w == 0) cli_progress_update(P->pg, P->done_before + d);
  }
}

void eval_pool_run(eval_pool *p, eval_job *jobs, size_t n, cli_progress *pg,
                   uint64_t done_before) {
  p->jobs = jobs;
  p->n_jobs = n;
  atomic_store(&p->next, 0);
  atomic_store(&p->stop, SIZE_MAX);
  atomic_store(&p->done, 0);
  p->pg = pg;
  p->done_before = done_before;
  if (n) lp_engine_parallel(p->n_workers, worker_main, p);
}

static void worker_free(eval_worker *W) {
  if (W->own) {
    lp_model_free(W->m);
    lp_domain_free(W->d);
  }
  lp_buf_free(&W->text);
  free(W->seqs);
  free(W->lens);
  memset(W, 0, sizeof *W);
}

/* Worker w > 0: a domain instance of its own (created with the options the
 * first one was) and a copy of the model (a new model of the same config with
 * the loaded parameters and state, as lp_ckpt_load makes it). */
static int worker_make(const char *domain, const cli_loaded *L, eval_worker *W) {
  lp_err e = {0};
  memset(W, 0, sizeof *W);
  W->own = 1;
  W->d = lp_domain_open(domain, L->dopts, &e);
  if (!W->d) {
    cli_error("eval", "worker domain: %s", e.msg);
    return -1;
  }
  lp_ckpt_domain dom;
  if (lp_ckpt_domain_of(W->d, &dom, &e) || dom.vocab_fp != L->dom.vocab_fp) {
    cli_error("eval", "worker domain: %s", e.msg[0] ? e.msg : "another vocabulary than the first "
              "instance's (did the domain options file change?)");
    return -1;
  }
  lp_model *m0 = L->m;
  if (!m0) return 0; /* the solver alone: a domain instance is all a worker needs */
  W->m = lp_model_new(lp_model_config(m0), &L->dom.spec, &L->dom.prog, (int)L->dom.n_parts, 0, &e);
  if (!W->m) {
    cli_error("eval", "worker model: %s", e.msg);
    return -1;
  }
  size_t n0 = 0, n1 = 0;
  float *s0 = lp_model_state(m0, &n0), *s1 = lp_model_state(W->m, &n1);
  if (!s0) n0 = 0;
  if (!s1) n1 = 0;
  if (lp_model_num_params(W->m) != lp_model_num_params(m0) || n0 != n1) {
    cli_error("eval", "worker model: the copy has another size than the loaded model");
    return -1;
  }
  memcpy(lp_model_params(W->m), lp_model_params(m0), lp_model_num_params(m0) * sizeof(float));
  if (n0) memcpy(s1, s0, n0 * sizeof(float));
  return 0;
}

eval_pool *eval_pool_new(const char *domain, const cli_loaded *L, int n_workers,
                         const eval_settings *S) {
  eval_pool *p = calloc(1, sizeof *p);
  eval_worker *w = calloc((size_t)n_workers, sizeof *w);
  if (!p || !w) {
    cli_error("eval", "out of memory");
    free(p);
    free(w);
    return NULL;
  }
  p->S = S;
  p->w = w;
  p->n_workers = n_workers;
  w[0].m = L->m;
  w[0].d = L->d;
  for (int i = 1; i < n_workers; i++)
    if (worker_make(domain, L, &w[i])) {
      eval_pool_free(p);
      return NULL;
    }
  return p;
}

void eval_pool_free(eval_pool *p) {
  if (!p) return;
  for (int i = 0; i < p->n_workers; i++) worker_free(&p->w[i]);
  free(p->w);
  free(p);
}

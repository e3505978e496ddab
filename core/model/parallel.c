/* Data-parallel and multi-process execution of a train step, for both models:
 * the replicas (lp_model_set_threads), the even split of a batch over the
 * workers (rf_par_*), length-bucketed chunks (rf_chunks_plan,
 * lp_model_set_chunk) and the collectives over the ranks (rf_comm_*,
 * lp_model_set_comm), and the train step of a model given as a teacher-forced
 * pass (rf_train_step_pass: one pass, data-parallel shares or chunks). What a
 * worker runs (the model's forward/backward) is the caller's: robustfill.c
 * and rf_lstm.c pass their passes in, lp.c its workers. Uses the stacks
 * (stacks.c: activations, the cost model) and RobustFill's incremental
 * decoder's release (rf_search.c); no model file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/runtime.h"
#include "model_internal.h"

/* ---- data-parallel training ---------------------------------------------------------- */

void rf_replicas_free(lp_model *m, void (*kind_free)(lp_model *r)) {
  for (int w = 1; m->replica && w < m->n_workers; w++) {
    lp_model *r = m->replica[w - 1];
    if (!r) continue;
    if (kind_free) kind_free(r);
    rf_acts_release(r);
    rf_inc_release(r);
    lp_batch_free(&r->cbatch);
    free(r->grads);
    free(r);
  }
  free(m->replica);
  m->replica = NULL;
  m->n_workers = 1;
}

int rf_replicas_set(lp_model *m, int n, int (*kind_init)(lp_model *r, const lp_model *m),
                    void (*kind_free)(lp_model *r), lp_err *err) {
  if (n < 1 || n > LP_ENGINE_MAX_WORKERS)
    return lp_err_set(err, LP_EINVAL, "threads must be 1..%d (got %d)", LP_ENGINE_MAX_WORKERS, n);
  rf_replicas_free(m, kind_free);
  lp_engine_set_threads(1);
  if (n == 1) return LP_OK;
  m->replica = calloc((size_t)n - 1, sizeof *m->replica);
  if (!m->replica) return lp_err_set(err, LP_ENOMEM, "out of memory for %d workers", n);
  m->n_workers = n;
  for (int w = 1; w < n; w++) {
    lp_model *r = malloc(sizeof *r);
    float *g = r ? calloc(m->n_params, sizeof(float)) : NULL;
    if (!g) {
      free(r);
      rf_replicas_free(m, kind_free);
      return lp_err_set(err, LP_ENOMEM, "out of memory for %d workers", n);
    }
    *r = *m; /* shares cfg, vocabularies, layout, block offsets and params */
    memset(&r->acts, 0, sizeof r->acts);
    memset(&r->inc, 0, sizeof r->inc);
    memset(&r->cbatch, 0, sizeof r->cbatch);
    r->grads = g;
    r->replica = NULL;
    r->n_workers = 1;
    r->is_replica = 1;
    r->freeze_argmax = NULL;
    r->fwd_ok = 0;
    r->lp = NULL;
    memset(&r->comm, 0, sizeof r->comm); /* only m talks to the other ranks */
    m->replica[w - 1] = r;
    if (kind_init && kind_init(r, m) != LP_OK) {
      rf_replicas_free(m, kind_free);
      return lp_err_set(err, LP_ENOMEM, "out of memory for %d workers", n);
    }
  }
  return LP_OK;
}

void rf_batch_view(lp_batch *v, const lp_batch *b, int t0, int t1) {
  const int E = b->E;
  *v = *b;
  v->B = t1 - t0;
  for (int p = 0; p < 2; p++)
    if (b->spec[p]) v->spec[p] = b->spec[p] + (size_t)t0 * E * b->T_spec[p];
  v->emask = b->emask + (size_t)t0 * E;
  v->prog = b->prog ? b->prog + (size_t)t0 * b->T_prog : NULL;
  v->prog_enc = b->prog_enc ? b->prog_enc + (size_t)t0 * b->T_prog : NULL;
  memset(v->cap_spec, 0, sizeof v->cap_spec);
  v->cap_prog = v->cap_emask = 0;
}

int rf_par_run(rf_par *j, lp_model *m, const lp_batch *b, lp_rng *rng,
               void (*worker)(void *ctx, int w), lp_err *err) {
  const int W = m->n_workers, B = b->B;
  j->m = m;
  j->use_rng = rng != NULL;
  for (int w = 0; w < W; w++) {
    rf_batch_view(&j->view[w], b, B * w / W, B * (w + 1) / W);
    if (rng) lp_rng_seed(&j->rng[w], lp_rng_next(rng));
  }
  int rc = lp_engine_parallel(W, worker, j);
  for (int w = 0; rc == LP_OK && w < W; w++)
    if (j->rc[w] != LP_OK) {
      rc = j->rc[w];
      if (err) *err = j->err[w];
    }
  return rc;
}

void rf_par_add_grads(lp_model *m, int w, float c) {
  const size_t np = m->n_params;
  float *G = m->grads;
  if (w == 0) {
    for (size_t i = 0; i < np; i++) G[i] *= c;
  } else {
    const float *g = m->replica[w - 1]->grads;
    for (size_t i = 0; i < np; i++) G[i] += c * g[i];
  }
}

/* ---- length-bucketed steps ---------------------------------------------------------- */

void rf_chunks_free(rf_chunks *c) {
  if (!c) return;
  free(c->order);
  free(c->cost);
  free(c->rng);
  free(c->st);
  free(c->red);
  free(c);
}

/* Sorts idx[0..n) by key ascending, ties by index (insertion sort: n <= B). */
static void sort_by_key(int *idx, int n, const double *key, int desc) {
  for (int i = 1; i < n; i++) {
    int v = idx[i], j = i;
    for (; j > 0; j--) {
      const double a = key[idx[j - 1]], k = key[v];
      const int after = desc ? (a < k || (a == k && idx[j - 1] > v))
                             : (a > k || (a == k && idx[j - 1] > v));
      if (!after) break;
      idx[j] = idx[j - 1];
    }
    idx[j] = v;
  }
}

/* Plans the chunks of batch b for m's workers (k tasks per chunk). */
rf_chunks *rf_chunks_plan(lp_model *m, const lp_batch *b, int k, lp_rng *rng, lp_err *err) {
  /* multi-process: the plan of size x threads virtual workers, the same on
   * every rank; this rank runs those of workers w0 .. w0 + threads - 1 */
  const int multi = rf_comm_on(m);
  const int B = b->B, E = b->E, n = (B + k - 1) / k;
  const int W = multi ? m->comm.size * m->n_workers : m->n_workers;
  rf_chunks *c = calloc(1, sizeof *c);
  if (c) c->order = malloc(sizeof(int) * ((size_t)B + 3 * (size_t)n + 1));
  if (c) c->cost = malloc(sizeof(double) * (size_t)B);
  if (c) c->rng = rng ? calloc((size_t)n, sizeof *c->rng) : NULL;
  if (c) c->st = calloc((size_t)n, sizeof *c->st);
  if (c && multi) c->red = malloc(sizeof(double) * RF_RED * (size_t)n);
  if (!c || !c->order || !c->cost || (rng && !c->rng) || !c->st || (multi && !c->red)) {
    rf_chunks_free(c);
    lp_err_set(err, LP_ENOMEM, "out of memory");
    return NULL;
  }
  c->m = m, c->b = b, c->n = n, c->use_rng = rng != NULL;
  c->W = W, c->w0 = multi ? m->comm.rank * m->n_workers : 0;
  c->start = c->order + B;
  c->owner = c->start + n + 1;
  c->tok = c->owner + n;
  /* per-task cost: the products per position, at the task's own lengths */
  const int Ti = b->T_spec[0], To = b->n_parts == 2 ? b->T_spec[1] : 0, T = b->T_prog;
  const int32_t sp = m->spec_v.pad, pp = m->prog_v.pad;
  c->n_tok = 0;
  for (int t = 0; t < B; t++) {
    int li = 0, lo = 0;
    for (int e = 0; e < E; e++) {
      int x = rf_used_len(b->spec[0] + ((size_t)t * E + e) * Ti, Ti, sp);
      if (x > li) li = x;
      if (To) {
        int y = rf_used_len(b->spec[1] + ((size_t)t * E + e) * To, To, sp);
        if (y > lo) lo = y;
      }
    }
    const int lt = rf_used_len(b->prog + (size_t)t * T, T, pp);
    c->cost[t] = E * rf_example_flops(m, li, lo, lt);
    c->order[t] = t;
  }
  if (k > 1) sort_by_key(c->order, B, c->cost, 0);
  for (int i = 0; i < n; i++) {
    c->start[i] = i * k;
    c->tok[i] = 0;
  }
  c->start[n] = B;
  /* chunk costs and token counts; then the chunks to the least loaded worker,
   * the dearest first */
  double *load = calloc((size_t)W, sizeof(double));
  double *cc = calloc((size_t)n, sizeof(double));
  int *ci = malloc(sizeof(int) * (size_t)n);
  if (!load || !cc || !ci) {
    free(load);
    free(cc);
    free(ci);
    rf_chunks_free(c);
    lp_err_set(err, LP_ENOMEM, "out of memory");
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    cc[i] = 0.0;
    for (int j = c->start[i]; j < c->start[i + 1]; j++) {
      const int t = c->order[j];
      cc[i] += c->cost[t];
      c->tok[i] += rf_used_len(b->prog + (size_t)t * T, T, pp);
    }
    c->n_tok += c->tok[i];
    ci[i] = i;
  }
  sort_by_key(ci, n, cc, 1);
  for (int i = 0; i < n; i++) {
    int w = 0;
    for (int v = 1; v < W; v++)
      if (load[v] < load[w]) w = v;
    c->owner[ci[i]] = w;
    load[w] += cc[ci[i]];
  }
  free(load);
  free(cc);
  free(ci);
  for (int i = 0; rng && i < n; i++) lp_rng_seed(&c->rng[i], lp_rng_next(rng));
  return c;
}

int lp_model_set_chunk(lp_model *m, int tasks_per_chunk, lp_err *err) {
  if (!m || m->is_replica) return lp_err_set(err, LP_EINVAL, "lp_model_set_chunk: bad model");
  if (tasks_per_chunk < 0 || tasks_per_chunk > 1 << 20)
    return lp_err_set(err, LP_EINVAL, "tasks per chunk must be 0..%d (got %d)", 1 << 20,
                      tasks_per_chunk);
  m->chunk_tasks = tasks_per_chunk;
  for (int w = 1; w < m->n_workers; w++) m->replica[w - 1]->chunk_tasks = tasks_per_chunk;
  return LP_OK;
}

/* ---- a model's train step over a teacher-forced pass ------------------------------- */
/* (RobustFill's and RobustFill[LSTM]'s steps: one pass, data-parallel shares,
 * length-bucketed chunks; the pass is the model's forward / backward) */

static void par_worker(void *ctx, int w) {
  rf_par *j = ctx;
  lp_model *m = w == 0 ? j->m : j->m->replica[w - 1];
  memset(m->grads, 0, sizeof(float) * m->n_params);
  j->rc[w] = j->pass->forward(m, &j->view[w], j->use_rng ? &j->rng[w] : NULL, &j->st[w],
                              &j->err[w]);
  if (j->rc[w] == LP_OK) j->rc[w] = j->pass->backward(m, &j->view[w], &j->err[w]);
}

/* One train step split over the workers: worker w takes tasks
 * [B*w/W, B*(w+1)/W) as a view of b (same padded lengths); its gradient of its
 * own token-mean loss is weighted by its share of the batch's target tokens. */
static int rf_train_parallel(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st,
                             const rf_pass *p, lp_err *err) {
  const int W = m->n_workers;
  rf_par *j = calloc(1, sizeof *j);
  if (!j) return lp_err_set(err, LP_ENOMEM, "out of memory");
  j->pass = p;
  int rc = rf_par_run(j, m, b, rng, par_worker, err);
  if (rc == LP_OK) {
    int n = 0;
    for (int w = 0; w < W; w++) n += j->st[w].n_tokens;
    lp_step_stats sum;
    memset(&sum, 0, sizeof sum);
    for (int w = 0; w < W; w++) {
      const double f = n ? (double)j->st[w].n_tokens / n : 1.0 / W;
      sum.loss += f * j->st[w].loss;
      sum.token_acc += f * j->st[w].token_acc;
      rf_par_add_grads(m, w, (float)f);
    }
    sum.loss_prog = sum.loss;
    sum.n_tokens = n;
    if (st) *st = sum;
  }
  free(j);
  return rc;
}

/* ---- length-bucketed steps ---------------------------------------------------------- */

static void chunk_worker(void *ctx, int w) {
  rf_chunks *c = ctx;
  lp_model *m = w == 0 ? c->m : c->m->replica[w - 1];
  memset(m->grads, 0, sizeof(float) * m->n_params);
  int rc = LP_OK;
  for (int i = 0; rc == LP_OK && i < c->n; i++) {
    if (c->owner[i] != c->w0 + w) continue;
    rc = lp_batch_subset(&m->cbatch, c->b, c->order + c->start[i], c->start[i + 1] - c->start[i],
                         m->spec_v.pad, m->prog_v.pad, &c->err[w]);
    m->loss_scale = c->n_tok ? (float)((double)c->tok[i] / c->n_tok) : 1.0f / c->n;
    if (rc == LP_OK)
      rc = c->pass->forward(m, &m->cbatch, c->use_rng ? &c->rng[i] : NULL, &c->st[i],
                            &c->err[w]);
    if (rc == LP_OK) rc = c->pass->backward(m, &m->cbatch, &c->err[w]);
    m->loss_scale = 1.0f;
  }
  c->rc[w] = rc;
}

/* One train step as chunks (lp_model_set_chunk): the same loss as one padded
 * pass - the token-weighted mean of the chunks' token means - and its gradient. */
static int rf_train_chunked(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st,
                            const rf_pass *p, lp_err *err) {
  const int W = m->n_workers;
  rf_chunks *c = NULL;
  int rc = rf_check_batch(m, b, 1, err);
  if (rc == LP_OK) {
    c = rf_chunks_plan(m, b, rf_comm_chunk(m, b), rng, err);
    if (!c) rc = err && err->code ? err->code : LP_ENOMEM;
    else c->pass = p;
  }
  if (rc == LP_OK)
    rc = W > 1 ? lp_engine_parallel(W, chunk_worker, c) : (chunk_worker(c, 0), LP_OK);
  for (int w = 0; rc == LP_OK && w < W; w++)
    if (c->rc[w] != LP_OK) {
      rc = c->rc[w];
      if (err) *err = c->err[w];
    }
  /* multi-process: every rank learns whether any failed, before the sums */
  rc = rf_comm_agree(m, rc, err);
  if (rc == LP_OK) {
    for (int w = 1; w < W; w++) rf_par_add_grads(m, w, 1.0f);
    if (rf_comm_on(m)) rc = rf_comm_reduce(m, c, NULL, 0, err);
  }
  if (rc == LP_OK) {
    lp_step_stats sum;
    memset(&sum, 0, sizeof sum);
    for (int i = 0; i < c->n; i++) {
      const double f = c->n_tok ? (double)c->tok[i] / c->n_tok : 1.0 / c->n;
      sum.loss += f * c->st[i].loss;
      sum.token_acc += f * c->st[i].token_acc;
    }
    sum.loss_prog = sum.loss;
    sum.n_tokens = c->n_tok;
    if (st) *st = sum;
  }
  rf_chunks_free(c);
  return rc;
}

int rf_train_step_pass(lp_model *m, const lp_batch *b, lp_rng *rng, lp_step_stats *st,
                       const rf_pass *p, lp_err *err) {
  memset(m->grads, 0, sizeof(float) * m->n_params);
  if (rf_comm_on(m) || (m->chunk_tasks > 0 && b->B > m->chunk_tasks))
    return rf_train_chunked(m, b, rng, st, p, err);
  if (m->n_workers > 1 && b->B >= m->n_workers) return rf_train_parallel(m, b, rng, st, p, err);
  lp_step_stats local;
  int rc = p->forward(m, b, rng, st ? st : &local, err);
  if (rc != LP_OK) return rc;
  return p->backward(m, b, err);
}

/* ---- multi-process steps ------------------------------------------------------------- */

int lp_model_set_comm(lp_model *m, const lp_comm *c, lp_err *err) {
  if (!m || m->is_replica) return lp_err_set(err, LP_EINVAL, "lp_model_set_comm: bad model");
  if (!c || c->size <= 1) {
    memset(&m->comm, 0, sizeof m->comm);
    return LP_OK;
  }
  if (c->rank < 0 || c->rank >= c->size || !c->allreduce_sum_f32 || !c->allreduce_sum_f64 ||
      !c->agree)
    return lp_err_set(err, LP_EINVAL,
                      "lp_model_set_comm: bad communicator (rank %d of %d, or a NULL callback)",
                      c->rank, c->size);
  m->comm = *c;
  return LP_OK;
}

int rf_comm_on(const lp_model *m) { return m->comm.size > 1; }

int rf_comm_chunk(const lp_model *m, const lp_batch *b) {
  const int k = m->chunk_tasks;
  if (!rf_comm_on(m) || (k > 0 && k < b->B)) return k;
  const int W = m->comm.size * m->n_workers;
  return b->B > W ? (b->B + W - 1) / W : 1;
}

int rf_comm_agree(lp_model *m, int rc, lp_err *err) {
  if (!rf_comm_on(m)) return rc;
  const lp_comm *c = &m->comm;
  int flags = rc != LP_OK ? LP_COMM_FAIL : 0, code = rc;
  char msg[LP_ERR_MSG_MAX];
  msg[0] = '\0';
  if (rc != LP_OK)
    snprintf(msg, sizeof msg, "rank %d: %.1000s", c->rank,
             err && err->msg[0] ? err->msg : "failed (no message)");
  int crc = c->agree(c->user, &flags, &code, msg, sizeof msg);
  if (crc != LP_OK)
    return lp_err_set(err, crc, "rank %d: the ranks could not agree on the step's status "
                      "(communication failed)", c->rank);
  if (!(flags & LP_COMM_FAIL)) return LP_OK;
  msg[sizeof msg - 1] = '\0';
  return lp_err_set(err, code < 0 ? code : LP_EINVAL, "%s", msg);
}

int rf_comm_sum_f32(lp_model *m, float *x, size_t n, lp_err *err) {
  const lp_comm *c = &m->comm;
  int rc = c->allreduce_sum_f32(c->user, x, n);
  if (rc != LP_OK)
    return lp_err_set(err, rc, "rank %d: summing %zu floats over the ranks failed", c->rank, n);
  return LP_OK;
}

int rf_comm_reduce(lp_model *m, rf_chunks *c, double *extra, size_t n_extra, lp_err *err) {
  const lp_comm *cm = &m->comm;
  const int n = c->n, T = m->n_workers;
  /* a chunk another rank ran adds -0.0 (x + -0.0 == x for every x, zeros too) */
  for (int i = 0; i < n; i++) {
    double *v = c->red + (size_t)i * RF_RED;
    const lp_step_stats *x = &c->st[i];
    if (c->owner[i] >= c->w0 && c->owner[i] < c->w0 + T) {
      v[0] = x->loss, v[1] = x->loss_prog, v[2] = x->loss_latent, v[3] = x->loss_commit;
      v[4] = x->loss_e2e, v[5] = x->token_acc, v[6] = x->n_tokens;
      v[7] = x->codebook_perplexity, v[8] = x->dead_codes, v[9] = 1.0, v[10] = x->latent_acc;
    } else {
      for (int k = 0; k < RF_RED; k++) v[k] = -0.0;
    }
  }
  int rc = rf_comm_sum_f32(m, m->grads, m->n_params, err);
  if (rc == LP_OK && cm->allreduce_sum_f64(cm->user, c->red, (size_t)n * RF_RED) != LP_OK)
    rc = lp_err_set(err, LP_EIO, "rank %d: summing the chunks' statistics failed", cm->rank);
  if (rc == LP_OK && extra && n_extra &&
      cm->allreduce_sum_f64(cm->user, extra, n_extra) != LP_OK)
    rc = lp_err_set(err, LP_EIO, "rank %d: summing the step's codebook data failed", cm->rank);
  if (rc != LP_OK) return rc;
  int bad = -1;
  for (int i = 0; i < n; i++) {
    const double *v = c->red + (size_t)i * RF_RED;
    lp_step_stats *x = &c->st[i];
    x->loss = v[0], x->loss_prog = v[1], x->loss_latent = v[2], x->loss_commit = v[3];
    x->loss_e2e = v[4], x->token_acc = v[5], x->n_tokens = (int)v[6];
    x->codebook_perplexity = v[7], x->dead_codes = (int)v[8], x->latent_acc = v[10];
    if (v[9] != 1.0 && bad < 0) bad = i;
  }
  if (bad < 0) return LP_OK;
  /* the same on every rank: they fail together (agreed, so the caller sees the
   * usual agreed failure) */
  const int runs = (int)c->red[(size_t)bad * RF_RED + 9];
  lp_err_set(err, LP_EINVAL,
             "chunk %d of the step ran on %d ranks instead of one: every rank must train with "
             "the same --threads and chunk settings", bad, runs);
  return rf_comm_agree(m, LP_EINVAL, err);
}

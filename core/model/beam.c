/* The generic beam search and teacher forcing over a decoder given as
 * callbacks (step / reorder / start), shared by RobustFill's search
 * (rf_search.c) and both levels of the Latent Programmer's (lp_search.c), and
 * the argument checks their public entry points share (rf_search_prep,
 * rf_score_check). Uses the stacks (stacks.c: the batch check and the spec
 * encoding); calls neither model. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lpsynth/runtime.h"
#include "model_internal.h"

/* ---- beam search ---------------------------------------------------------------- */

void lp_beam_free(lp_beam_result *r) {
  if (!r) return;
  for (int i = 0; i < r->n; i++) {
    free(r->hyps[i].prog);
    free(r->hyps[i].latent);
  }
  free(r->hyps);
  r->hyps = NULL;
  r->n = 0;
}

typedef struct cand {
  double s;  /* log-probability of the extended prefix */
  int32_t i; /* candidate index: hypothesis * V + token */
} cand;

/* a ranks before b: higher score, then lower index (deterministic). */
static int better(const cand *a, const cand *b) {
  return a->s > b->s || (a->s == b->s && a->i < b->i);
}

/* Min-heap (worst at the root) of the best K candidates. */
static void heap_push(cand *h, int *n, int K, cand c) {
  if (*n < K) {
    int i = (*n)++;
    h[i] = c;
    while (i > 0) {
      int p = (i - 1) / 2;
      if (!better(&h[p], &h[i])) break;
      cand t = h[p];
      h[p] = h[i];
      h[i] = t;
      i = p;
    }
    return;
  }
  if (!better(&c, &h[0])) return;
  h[0] = c;
  int i = 0;
  for (;;) {
    int l = 2 * i + 1, r = l + 1, w = i;
    if (l < *n && better(&h[w], &h[l])) w = l;
    if (r < *n && better(&h[w], &h[r])) w = r;
    if (w == i) break;
    cand t = h[w];
    h[w] = h[i];
    h[i] = t;
    i = w;
  }
}

static int cand_cmp(const void *pa, const void *pb) {
  const cand *a = pa, *b = pb;
  return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

/* ranks by key, then insertion order */
static int fin_cmp(const void *pa, const void *pb) {
  const rf_beam_fin *a = pa, *b = pb;
  if (a->key != b->key) return a->key > b->key ? -1 : 1;
  return a->order < b->order ? -1 : a->order > b->order ? 1 : 0;
}

void rf_beam_fins_free(rf_beam_fin *f, int n) {
  if (!f) return;
  for (int i = 0; i < n; i++) free(f[i].seq);
  free(f);
}

int rf_beam_run(const rf_beam_spec *s, void *ctx, rf_beam_step_fn step,
                rf_beam_reorder_fn reorder, rf_beam_fin **fins_out, int *n_out, int *timed_out,
                lp_err *err) {
  *fins_out = NULL;
  *n_out = 0;
  if (timed_out) *timed_out = 0;
  const int K = s->K, V = s->V, eos = s->eos, max_len = s->max_len;
  const double alpha = s->alpha;
  /* candidates considered per step: the best 2K, or with pruning all of them
   * (pruned ones are skipped and the next best take their places) */
  const int C = s->prune ? K * V : 2 * K;
  int rc = LP_OK;
  float *logits = malloc(sizeof(float) * (size_t)K * V);
  float *logp = malloc(sizeof(float) * (size_t)K * V);
  int32_t *pre = malloc(sizeof(int32_t) * (size_t)K * max_len);
  int32_t *pre2 = malloc(sizeof(int32_t) * (size_t)K * max_len);
  int32_t *seq = malloc(sizeof(int32_t) * (size_t)max_len); /* a candidate, for prune */
  double *score = malloc(sizeof(double) * (size_t)K), *score2 = malloc(sizeof(double) * (size_t)K);
  int32_t *tok = malloc(sizeof(int32_t) * (size_t)K), *parent = malloc(sizeof(int32_t) * (size_t)K);
  int32_t *cpar = malloc(sizeof(int32_t) * (size_t)K), *ctok = malloc(sizeof(int32_t) * (size_t)K);
  int32_t *slot = malloc(sizeof(int32_t) * (size_t)K);
  uint8_t *taken = malloc((size_t)K);
  double *cscore = malloc(sizeof(double) * (size_t)K);
  cand *heap = malloc(sizeof(cand) * (size_t)C);
  rf_beam_fin *fins = calloc((size_t)K, sizeof(rf_beam_fin));
  int n_fin = 0, sig_diverse = 0;
  uint64_t order = 0;
  if (!logits || !logp || !pre || !pre2 || !seq || !score || !score2 || !tok || !parent ||
      !heap || !fins || !cpar || !ctok || !slot || !taken || !cscore) {
    rc = lp_err_set(err, LP_ENOMEM, "%s: out of memory", s->who);
    goto done;
  }
  int nlive = 1;
  score[0] = 0.0;
  tok[0] = s->bos;
  for (int t = 0; t < max_len && nlive > 0; t++) {
    if (s->deadline > 0 && lp_now() > s->deadline) {
      if (timed_out) *timed_out = 1;
      break;
    }
    if ((rc = step(ctx, tok, nlive, logits, err)) != LP_OK) goto done;
    if (lp_log_softmax_forward(logp, logits, nlive, V) != LP_OK) {
      rc = lp_err_set(err, LP_EINVAL, "log-softmax failed");
      goto done;
    }
    const int last = t + 1 == max_len; /* only EOS may follow */
    int nh = 0;
    for (int i = 0; i < nlive; i++) {
      const float *row = logp + (size_t)i * V;
      if (last) {
        heap_push(heap, &nh, C, (cand){score[i] + row[eos], i * V + eos});
        continue;
      }
      for (int v = 0; v < V; v++) {
        if (v == s->ban1 || v == s->ban2 || (v == eos && t < s->min_len)) continue;
        cand c = {score[i] + row[v], i * V + v};
        if (nh == C && !better(&c, &heap[0])) continue;
        heap_push(heap, &nh, C, c);
      }
    }
    qsort(heap, (size_t)nh, sizeof(cand), cand_cmp);
    int nnew = 0, rank = 0; /* rank: candidates taken so far at this step (not pruned) */
    for (int r = 0; r < nh && nnew < K; r++) {
      const int i = heap[r].i / V, v = heap[r].i % V;
      if (s->prune) {
        int ok = 0;
        memcpy(seq, pre + (size_t)i * max_len, sizeof(int32_t) * (size_t)t);
        seq[t] = v;
        if ((rc = s->prune(s->gctx, seq, t + 1, &ok, err)) != LP_OK) goto done;
        if (!ok) continue;
      }
      const int rk = rank++;
      if (v == eos) {
        if (rk >= K) continue; /* only EOS among the best K candidates finishes */
        const int len = t + 1;
        const double key = alpha > 0.0 ? heap[r].s / pow((double)len, alpha) : heap[r].s;
        uint64_t sig = 0;
        int sl = n_fin;
        if (s->signature) {
          memcpy(seq, pre + (size_t)i * max_len, sizeof(int32_t) * (size_t)t);
          seq[t] = eos;
          if ((rc = s->signature(s->gctx, seq, len, &sig, err)) != LP_OK) goto done;
          int same = -1;
          for (int f = 0; f < n_fin && same < 0; f++)
            if (fins[f].sig == sig) same = f;
          if (n_fin > 0 && same < 0) sig_diverse = 1;
          if (same >= 0) { /* one answer per signature: keep the better */
            if (!(key > fins[same].key)) continue;
            sl = same;
            free(fins[sl].seq);
            fins[sl].seq = NULL;
          }
        }
        if (sl == n_fin && n_fin == K) { /* full: replace the worst if this one is better */
          sl = 0;
          for (int f = 1; f < n_fin; f++)
            if (fin_cmp(&fins[f], &fins[sl]) > 0) sl = f;
          if (!(key > fins[sl].key)) continue;
          free(fins[sl].seq);
          fins[sl].seq = NULL;
        }
        int32_t *p = malloc(sizeof(int32_t) * (size_t)len);
        if (!p) {
          rc = lp_err_set(err, LP_ENOMEM, "%s: out of memory", s->who);
          goto done;
        }
        memcpy(p, pre + (size_t)i * max_len, sizeof(int32_t) * (size_t)t);
        p[t] = eos;
        fins[sl] = (rf_beam_fin){key, heap[r].s, p, len, order++, sig};
        if (sl == n_fin) n_fin++;
      } else {
        cpar[nnew] = i;
        ctok[nnew] = v;
        cscore[nnew] = heap[r].s;
        nnew++;
      }
    }
    /* Slots: each parent's first (best) child stays in the parent's slot, so
     * its cached keys/values do not move; the other children take the free
     * slots (copies of their parent's cache rows). */
    for (int j = 0; j < nnew; j++) slot[j] = -1, taken[j] = 0;
    for (int j = 0; j < nnew; j++)
      if (cpar[j] < nnew && !taken[cpar[j]]) slot[j] = cpar[j], taken[cpar[j]] = 1;
    for (int j = 0, f = 0; j < nnew; j++)
      if (slot[j] < 0) {
        while (taken[f]) f++;
        slot[j] = f, taken[f] = 1;
      }
    for (int j = 0; j < nnew; j++) {
      const int d = slot[j];
      parent[d] = cpar[j];
      score2[d] = cscore[j];
      memcpy(pre2 + (size_t)d * max_len, pre + (size_t)cpar[j] * max_len,
             sizeof(int32_t) * (size_t)t);
      pre2[(size_t)d * max_len + t] = ctok[j];
    }
    /* swap in the new live set */
    int32_t *tp = pre;
    pre = pre2, pre2 = tp;
    double *ts = score;
    score = score2, score2 = ts;
    nlive = nnew;
    if (nlive == 0) break;
    for (int j = 0; j < nlive; j++) tok[j] = pre[(size_t)j * max_len + t];
    /* Stop when no live prefix can beat the worst of K finished hypotheses,
     * or, guided with signatures and every answer so far of one signature,
     * the best answer (a new answer would share that signature). */
    const int one_answer = s->prune && s->signature && n_fin > 0 && !sig_diverse;
    if (n_fin == K || one_answer) {
      double worst = fins[0].key, best = fins[0].key;
      for (int f = 1; f < n_fin; f++) {
        if (fins[f].key < worst) worst = fins[f].key;
        if (fins[f].key > best) best = fins[f].key;
      }
      double bound = score[0];
      for (int j = 1; j < nlive; j++) bound = score[j] > bound ? score[j] : bound;
      if (alpha > 0.0) bound /= pow((double)max_len, alpha);
      if (bound < (one_answer ? best : worst)) break;
    }
    if (t + 1 < max_len && (rc = reorder(ctx, parent, nlive, err)) != LP_OK) goto done;
  }
  qsort(fins, (size_t)n_fin, sizeof(rf_beam_fin), fin_cmp);
  *fins_out = fins;
  *n_out = n_fin;
  fins = NULL;
  rc = LP_OK;
done:
  rf_beam_fins_free(fins, n_fin);
  free(heap);
  free(cpar);
  free(ctok);
  free(slot);
  free(taken);
  free(cscore);
  free(parent);
  free(tok);
  free(score);
  free(score2);
  free(pre);
  free(pre2);
  free(seq);
  free(logp);
  free(logits);
  return rc;
}

int rf_beam_result(rf_beam_fin *fins, int n, lp_beam_result *out, const char *who, lp_err *err) {
  out->hyps = calloc((size_t)(n ? n : 1), sizeof(lp_hyp));
  if (!out->hyps) {
    rf_beam_fins_free(fins, n);
    return lp_err_set(err, LP_ENOMEM, "%s: out of memory", who);
  }
  for (int f = 0; f < n; f++) {
    out->hyps[f].prog = fins[f].seq;
    out->hyps[f].prog_len = fins[f].len;
    out->hyps[f].score = (float)fins[f].key;
    fins[f].seq = NULL;
  }
  out->n = n;
  rf_beam_fins_free(fins, n);
  return LP_OK;
}

int rf_beam_search(const lp_model *m, const lp_beam_opts *o, int max_len, void *ctx,
                   rf_beam_step_fn step, rf_beam_reorder_fn reorder, lp_beam_result *out,
                   lp_err *err) {
  const lp_vocab_info *pv = &m->prog_v;
  const rf_beam_spec s = {.V = pv->size, .bos = pv->bos, .eos = pv->eos, .ban1 = pv->pad,
                          .ban2 = pv->bos, .min_len = 0, .K = o->beam, .max_len = max_len,
                          .alpha = o->len_alpha, .who = "lp_model_search", .prune = o->prune,
                          .signature = o->signature, .gctx = o->ctx,
                          .deadline = o->time_limit > 0 ? lp_now() + o->time_limit : 0.0};
  rf_beam_fin *fins;
  int n;
  int rc = rf_beam_run(&s, ctx, step, reorder, &fins, &n, &out->timed_out, err);
  if (rc != LP_OK) return rc;
  return rf_beam_result(fins, n, out, s.who, err);
}

int rf_search_prep(lp_model *m, const lp_batch *b, int beam, int *max_len, float alpha,
                   lp_err *err) {
  int rc = rf_search_check(m, b, beam, max_len, alpha, err);
  if (rc != LP_OK) return rc;
  return rf_encode(m, b, NULL, err);
}

int rf_search_check(lp_model *m, const lp_batch *b, int beam, int *max_len, float alpha,
                    lp_err *err) {
  if (beam < 1 || beam > 4096)
    return lp_err_set(err, LP_EINVAL, "beam size %d outside [1, 4096]", beam);
  if (b->B != 1) return lp_err_set(err, LP_EINVAL, "search takes one task (batch of %d)", b->B);
  if (*max_len <= 0) *max_len = m->cfg.max_program_len;
  if (*max_len > 65536) return lp_err_set(err, LP_EINVAL, "max_len %d too large", *max_len);
  if (!(alpha >= 0.0f && alpha <= 10.0f))
    return lp_err_set(err, LP_EINVAL, "len_alpha %g outside [0, 10]", (double)alpha);
  return rf_check_batch(m, b, 0, err);
}

/* ---- teacher-forced scoring ------------------------------------------------------ */

/* lexicographic order of the sequences (for the prefix tree) */
static _Thread_local const int32_t *const *g_sort_seqs;
static _Thread_local const int *g_sort_lens;
static int seq_cmp(const void *pa, const void *pb) {
  const int a = *(const int *)pa, b = *(const int *)pb;
  const int la = g_sort_lens[a], lb = g_sort_lens[b], l = la < lb ? la : lb;
  for (int t = 0; t < l; t++)
    if (g_sort_seqs[a][t] != g_sort_seqs[b][t]) return g_sort_seqs[a][t] < g_sort_seqs[b][t] ? -1 : 1;
  return la != lb ? (la < lb ? -1 : 1) : (a < b ? -1 : a > b);
}

int rf_force(void *ctx, rf_force_start_fn start, rf_beam_step_fn step, rf_beam_reorder_fn reorder,
             int V, int bos, int H, const int32_t *const *seqs, const int *lens, int n,
             double *out, lp_err *err) {
  if (n <= 0) return LP_OK;
  const int h_max = n < H ? n : H;
  float *logits = malloc(sizeof(float) * (size_t)h_max * V);
  float *logp = malloc(sizeof(float) * (size_t)h_max * V);
  int32_t *tok = malloc(sizeof(int32_t) * (size_t)h_max), *par = malloc(sizeof(int32_t) * (size_t)h_max);
  int *order = malloc(sizeof(int) * (size_t)n), *g = malloc(sizeof(int) * (size_t)n);
  int *gp = malloc(sizeof(int) * (size_t)n);
  int rc = LP_OK;
  if (!logits || !logp || !tok || !par || !order || !g || !gp) {
    rc = lp_err_set(err, LP_ENOMEM, "scoring: out of memory");
    goto done;
  }
  /* Sorted, sequences that share a prefix are neighbours: each chunk of h_max
   * of them is decoded as a prefix tree, one hypothesis per distinct prefix
   * (at most h_max at any depth), the caches reordered as in beam search. */
  for (int i = 0; i < n; i++) order[i] = i, out[i] = 0.0;
  g_sort_seqs = seqs, g_sort_lens = lens; /* thread-local: workers score at once */
  qsort(order, (size_t)n, sizeof *order, seq_cmp);
  for (int c0 = 0; c0 < n && rc == LP_OK; c0 += h_max) {
    const int h = n - c0 < h_max ? n - c0 : h_max;
    const int *ord = order + c0;
    int cl = 0;
    for (int i = 0; i < h; i++) cl = lens[ord[i]] > cl ? lens[ord[i]] : cl;
    if ((rc = start(ctx, err)) != LP_OK) break;
    for (int t = 0; t < cl && rc == LP_OK; t++) {
      /* groups at depth t: the distinct prefixes seq[0..t) of the sequences
       * longer than t; group k's first member gives its input token and parent */
      int ng = 0, prev = -1;
      for (int i = 0; i < h; i++) {
        const int s = ord[i];
        if (lens[s] <= t) continue;
        const int same = prev >= 0 && (t == 0 || (gp[prev] == gp[i] && seqs[s][t - 1] == seqs[ord[prev]][t - 1]));
        if (!same) {
          tok[ng] = t == 0 ? bos : seqs[s][t - 1];
          par[ng] = t == 0 ? 0 : gp[i];
          ng++;
        }
        g[i] = ng - 1;
        prev = i;
      }
      if (t > 0 && (rc = reorder(ctx, par, ng, err)) != LP_OK) break;
      if ((rc = step(ctx, tok, ng, logits, err)) != LP_OK) break;
      if (lp_log_softmax_forward(logp, logits, ng, V) != LP_OK) {
        rc = lp_err_set(err, LP_EINVAL, "scoring: log-softmax failed");
        break;
      }
      for (int i = 0; i < h; i++) {
        const int s = ord[i];
        if (lens[s] <= t) continue;
        out[s] += logp[(size_t)g[i] * V + seqs[s][t]];
        gp[i] = g[i]; /* the group at this depth is the parent of the next */
      }
    }
  }
done:
  free(logits);
  free(logp);
  free(tok);
  free(par);
  free(order);
  free(g);
  free(gp);
  return rc;
}

/* checks the programs to score: ids in the vocabulary (not PAD or BOS), EOS
 * last and only there, at most max_len */
int rf_score_check(const lp_model *m, const int32_t *const *progs, const int *lens, int n,
                   int max_len, lp_err *err) {
  const lp_vocab_info *pv = &m->prog_v;
  if (n < 0 || (n > 0 && (!progs || !lens)))
    return lp_err_set(err, LP_EINVAL, "lp_model_score: bad arguments");
  for (int i = 0; i < n; i++) {
    if (lens[i] < 1 || lens[i] > max_len || !progs[i])
      return lp_err_set(err, LP_EINVAL, "program %d: %d ids (1..%d incl. EOS)", i, lens[i],
                        max_len);
    for (int t = 0; t < lens[i]; t++) {
      const int32_t v = progs[i][t];
      if (v < 0 || v >= pv->size || v == pv->pad || v == pv->bos ||
          (v == pv->eos) != (t == lens[i] - 1))
        return lp_err_set(err, LP_EINVAL, "program %d: id %d at position %d is not allowed "
                          "there (ids in [0, %d), EOS last)", i, (int)v, t, pv->size);
    }
  }
  return LP_OK;
}

/* Two-level beam search of the Latent Programmer (paper section 3.3).
 *
 * Beam B, latent beam L (0 = floor(sqrt(B)), clamped to [1, B]):
 *  1. beam search with L beams over latent sequences with the latent predictor
 *     (codes 0..K-1, EOS = K; BOS = K+1 is never generated; EOS is not allowed
 *     as the first token, so a code has at least one latent; at most
 *     ceil(max_len / 2^l) codes);
 *  2. for each of the (at most L) latent sequences found, a beam search with
 *     floor(B / L) beams over programs with the latent program decoder
 *     conditioned on that sequence (its codebook vectors + positions);
 *  3. the union, ranked by the TOTAL score
 *         score = latent score + program score
 *     (each the log-probability of its sequence, divided by len^len_alpha
 *     when len_alpha > 0, len counting EOS: the length penalty of both levels;
 *     the latent beam ranks its sequences by the same latent score),
 *     ties broken by latent rank, then program rank. lp_hyp.score is that
 *     total; lp_hyp.latent / latent_len / latent_score give the code used.
 *     The same program found under two codes is listed twice (unless
 *     lp_beam_opts.signature makes them one answer).
 * Execution guidance (lp_beam_opts.prune): the program level is guided like
 * RobustFill's beam; the latent level tries up to B codes, in the predictor's
 * order, until L of them have led to an accepted program.
 * With L = 1 this is plain beam search of B programs conditioned on the
 * predictor's greedy (best) code (test lp.search_l1).
 * Both levels batch their hypotheses through the decoders with key/value
 * caches (lp_dec_block_cache_*) and run beam.c's beam loop (rf_beam_run),
 * the RobustFill search's too, with lsx_step / lsx_reorder as the decoder.
 * model.c's lp_model_search / lp_model_score dispatch here (lpm_search,
 * lpm_score) for kind LP_MODEL_LP.
 *
 * Latent RobustFill [AE] / [VAE] (kinds latent-ae / latent-vae, continuous
 * latents: no search over latents; paper section 5): these baselines are GIVEN
 * THE TRUE PROGRAM LENGTH, as in the paper: the batch must carry the reference
 * program (lp_batch.prog, T_prog > 0; `lpsynth eval` and `synth` put a task's
 * program there for these kinds), and S = ceil(len / 2^l) latents are
 * predicted for its length len (tokens incl. EOS); without it the search (and
 * lp_model_score) fails with LP_EINVAL. The latent predictor runs
 * autoregressively for S positions, each input its previous output (the
 * first: the start input), giving the predicted latents m_1..m_S.
 *   AE: one latent sequence (L = 1: latent_beam is ignored), m; a beam of B
 *     programs conditioned on it.
 *   VAE: L sequences (latent_beam, 0 = floor(sqrt(B)), clamped to [1, B]):
 *     sequence 0 is m, sequence i >= 1 is m + eps_i, eps_i ~ N(0, I) (the
 *     prior's scale, which the KL term regularises the posteriors toward) from
 *     an lp_rng seeded with LPS_VAE_SEED + i (the search is deterministic);
 *     a beam of floor(B / L) programs for each.
 *   The union is ranked by the program score (ties: latent rank, then program
 *   rank); lp_hyp.latent is NULL (latent_len 0, latent_score 0).
 * lp_model_score: the program's teacher-forced log-probability given m. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/runtime.h"
#include "model_internal.h"


typedef struct lsx {
  lp_model *m;
  lpm_view v;
  int E, D, cap_H, mode; /* mode 0: latent predictor, 1: program decoder */
  lp_dec_block_cache **lc, **ac, **zc;
  float *x, *xz, *cat, *yc, *pooled;
  int32_t *am, *ids, *src;
  uint8_t *em;
} lsx;

static void lsx_free(lsx *c) {
  const int nd = c->m->cfg.n_dec_layers;
  for (int i = 0; i < nd; i++) {
    if (c->lc) lp_dec_block_cache_free(c->lc[i]);
    if (c->ac) lp_dec_block_cache_free(c->ac[i]);
    if (c->zc) lp_dec_block_cache_free(c->zc[i]);
  }
  free(c->lc), free(c->ac), free(c->zc);
  free(c->x), free(c->xz), free(c->cat), free(c->yc), free(c->pooled);
  free(c->am), free(c->ids), free(c->src), free(c->em);
}

/* caches for H hypotheses; latents of at most maxS, programs of at most maxT */
static int lsx_init(lsx *c, lp_model *m, int H, int maxS, int maxT, lp_err *err) {
  memset(c, 0, sizeof *c);
  c->m = m;
  lpm_get_view(m, &c->v);
  c->E = m->E, c->D = m->cfg.d_model, c->cap_H = H;
  const int nd = m->cfg.n_dec_layers, E = c->E, D = c->D;
  int Sm;
  const uint8_t *mmask;
  const float *mem = rf_memory(m, &Sm, &mmask);
  const size_t N = (size_t)H * E;
  c->lc = calloc((size_t)nd, sizeof *c->lc);
  c->ac = calloc((size_t)nd, sizeof *c->ac);
  c->zc = calloc((size_t)nd, sizeof *c->zc);
  c->x = malloc(sizeof(float) * N * D);
  c->xz = malloc(sizeof(float) * (size_t)H * D);
  c->cat = malloc(sizeof(float) * N * 2 * D);
  c->yc = malloc(sizeof(float) * N * D);
  c->pooled = malloc(sizeof(float) * (size_t)H * D);
  c->am = malloc(sizeof(int32_t) * (size_t)H * D);
  c->ids = malloc(sizeof(int32_t) * N);
  c->src = malloc(sizeof(int32_t) * N);
  c->em = malloc(N);
  int ok = c->lc && c->ac && c->zc && c->x && c->xz && c->cat && c->yc && c->pooled && c->am &&
           c->ids && c->src && c->em;
  for (int i = 0; ok && i < nd; i++) {
    ok = (c->lc[i] = lp_dec_block_cache_new(&c->v.lat[i], (int)N, maxS, E, Sm)) != NULL &&
         (c->ac[i] = lp_dec_block_cache_new(&m->dec[i], (int)N, maxT, E, Sm)) != NULL &&
         (c->zc[i] = lp_dec_block_cache_new(&c->v.zdec[i], H, maxT, 1, maxS)) != NULL;
    if (ok)
      ok = lp_dec_block_cache_set_mem(&c->v.lat[i], m->params, c->lc[i], mem, mmask, E, Sm) ==
               LP_OK &&
           lp_dec_block_cache_set_mem(&m->dec[i], m->params, c->ac[i], mem, mmask, E, Sm) ==
               LP_OK;
  }
  if (!ok) {
    lsx_free(c);
    return lp_err_set(err, LP_ENOMEM, "lp search: out of memory for the decoder caches");
  }
  return LP_OK;
}

/* program mode for the latent vectors vec[S,D] (the code's codebook vectors,
 * or AE/VAE latents; NULL with zm given): resets the caches, sets stack Z's
 * memory vec + PE */
static int lsx_set_vectors(lsx *c, const float *vec, int S, lp_err *err) {
  lp_model *m = c->m;
  const int D = c->D, nd = m->cfg.n_dec_layers;
  float *zm = malloc(sizeof(float) * (size_t)(S ? S : 1) * D);
  if (!zm) return lp_err_set(err, LP_ENOMEM, "lp search: out of memory");
  memcpy(zm, vec, sizeof(float) * (size_t)S * D);
  int rc = lp_posenc_forward(zm, zm, 1, S, D, 0);
  for (int i = 0; rc == LP_OK && i < nd; i++) {
    lp_dec_block_cache_reset(c->ac[i]);
    rc = lp_dec_block_cache_set_mem(&c->v.zdec[i], m->params, c->zc[i], zm, NULL, 1, S);
  }
  free(zm);
  if (rc != LP_OK) return lp_err_set(err, rc, "lp search: bad latent memory");
  c->mode = 1;
  return LP_OK;
}

/* program mode for the code z[0..S) */
static int lsx_set_code(lsx *c, const int32_t *z, int S, lp_err *err) {
  const int D = c->D;
  float *vec = malloc(sizeof(float) * (size_t)(S ? S : 1) * D);
  if (!vec) return lp_err_set(err, LP_ENOMEM, "lp search: out of memory");
  for (int s = 0; s < S; s++) {
    if (z[s] < 0 || z[s] >= c->v.K) {
      free(vec);
      return lp_err_set(err, LP_EINVAL, "latent code %d outside [0, %d)", (int)z[s], c->v.K);
    }
    memcpy(vec + (size_t)s * D, c->v.codebook + (size_t)z[s] * D, sizeof(float) * D);
  }
  int rc = lsx_set_vectors(c, vec, S, err);
  free(vec);
  return rc;
}

/* AE/VAE: the predictor's latents out[S,D] of one hypothesis, autoregressively
 * (input s: "lat.embed" row 0 + PE + out[s-1], the start without out), as
 * the teacher-forced training pass with its own outputs for the targets. */
static int lsx_cont_latents(lsx *c, int S, float *out, lp_err *err) {
  lp_model *m = c->m;
  const float *P = m->params;
  const int E = c->E, D = c->D, nd = m->cfg.n_dec_layers;
  for (int i = 0; i < nd; i++) lp_dec_block_cache_reset(c->lc[i]);
  for (int e = 0; e < E; e++) c->ids[e] = 0;
  int rc = LP_OK;
  for (int s = 0; rc == LP_OK && s < S; s++) {
    rc = lp_embedding_forward(c->x, c->ids, P + c->v.lat_emb, E, 1, D, -1);
    if (rc == LP_OK) rc = lp_posenc_forward(c->x, c->x, E, 1, D, s);
    for (int e = 0; rc == LP_OK && s > 0 && e < E; e++)
      for (int d = 0; d < D; d++) c->x[(size_t)e * D + d] += out[(size_t)(s - 1) * D + d];
    for (int i = 0; rc == LP_OK && i < nd; i++)
      rc = lp_dec_block_step(&c->v.lat[i], P, c->lc[i], c->x, c->x, E);
    if (rc == LP_OK)
      rc = lp_layernorm_forward(c->yc, NULL, NULL, c->x, P + c->v.lat_ln.g, P + c->v.lat_ln.b, E,
                                D, m->bcfg.ln_eps);
    if (rc == LP_OK) rc = lp_maxpool_examples_forward(c->pooled, c->am, c->yc, c->em, 1, E, D);
    if (rc == LP_OK)
      rc = lp_linear_forward(out + (size_t)s * D, c->pooled, P + c->v.lat_w, P + c->v.lat_b, 1, D,
                             D);
  }
  if (rc != LP_OK)
    return lp_err_set(err, rc, "lp search: latent prediction failed (%s)",
                      rc == LP_ENOMEM ? "out of memory" : "bad arguments");
  return LP_OK;
}

static int lsx_step(void *ctx, const int32_t *tok, int n, float *logits, lp_err *err) {
  lsx *c = ctx;
  lp_model *m = c->m;
  const float *P = m->params;
  const int E = c->E, D = c->D, N = n * E, nd = m->cfg.n_dec_layers;
  for (int h = 0; h < n; h++)
    for (int e = 0; e < E; e++) c->ids[h * E + e] = tok[h];
  int rc;
  lp_dec_block_cache **cc = c->mode ? c->ac : c->lc;
  const int pos = lp_dec_block_cache_len(cc[0]);
  if (c->mode == 0) {
    rc = lp_embedding_forward(c->x, c->ids, P + c->v.lat_emb, N, c->v.Vl, D, -1);
    if (rc == LP_OK) rc = lp_posenc_forward(c->x, c->x, N, 1, D, pos);
    for (int i = 0; rc == LP_OK && i < nd; i++)
      rc = lp_dec_block_step(&c->v.lat[i], P, c->lc[i], c->x, c->x, N);
    if (rc == LP_OK)
      rc = lp_layernorm_forward(c->yc, NULL, NULL, c->x, P + c->v.lat_ln.g, P + c->v.lat_ln.b,
                                N, D, m->bcfg.ln_eps);
    if (rc == LP_OK)
      rc = lp_maxpool_examples_forward(c->pooled, c->am, c->yc, c->em, n, E, D);
    if (rc == LP_OK)
      rc = lp_linear_forward(logits, c->pooled, P + c->v.lat_w, P + c->v.lat_b, n, D, c->v.Vl);
  } else {
    const int V = m->prog_v.size, pad = m->prog_v.pad;
    rc = lp_embedding_forward(c->x, c->ids, P + m->emb_prog, N, V, D, pad);
    if (rc == LP_OK) rc = lp_posenc_forward(c->x, c->x, N, 1, D, pos);
    for (int i = 0; rc == LP_OK && i < nd; i++)
      rc = lp_dec_block_step(&m->dec[i], P, c->ac[i], c->x, c->x, N);
    if (rc == LP_OK)
      rc = lp_layernorm_forward(c->yc, NULL, NULL, c->x, P + m->ln_dec.g, P + m->ln_dec.b, N, D,
                                m->bcfg.ln_eps);
    if (rc == LP_OK) rc = lp_embedding_forward(c->xz, tok, P + m->emb_prog, n, V, D, pad);
    if (rc == LP_OK) rc = lp_posenc_forward(c->xz, c->xz, n, 1, D, pos);
    for (int i = 0; rc == LP_OK && i < nd; i++)
      rc = lp_dec_block_step(&c->v.zdec[i], P, c->zc[i], c->xz, c->xz, n);
    if (rc == LP_OK)
      rc = lp_layernorm_forward(c->pooled, NULL, NULL, c->xz, P + c->v.zdec_ln.g,
                                P + c->v.zdec_ln.b, n, D, m->bcfg.ln_eps);
    if (rc == LP_OK) {
      for (int h = 0; h < n; h++)
        for (int e = 0; e < E; e++) {
          float *dst = c->cat + ((size_t)h * E + e) * 2 * D;
          memcpy(dst, c->yc + ((size_t)h * E + e) * D, sizeof(float) * D);
          memcpy(dst + D, c->pooled + (size_t)h * D, sizeof(float) * D);
        }
      rc = lp_linear_forward(c->yc, c->cat, P + c->v.cat_w, P + c->v.cat_b, N, 2 * D, D);
    }
    if (rc == LP_OK) rc = lp_maxpool_examples_forward(c->pooled, c->am, c->yc, c->em, n, E, D);
    if (rc == LP_OK) rc = lp_linear_forward(logits, c->pooled, P + m->out_w, P + m->out_b, n, D, V);
  }
  if (rc != LP_OK)
    return lp_err_set(err, rc, "lp search: decoding step failed (%s)",
                      rc == LP_ENOMEM ? "out of memory" : "bad arguments");
  return LP_OK;
}

static int lsx_reorder(void *ctx, const int32_t *parent, int n, lp_err *err) {
  lsx *c = ctx;
  const int E = c->E, nd = c->m->cfg.n_dec_layers;
  for (int h = 0; h < n; h++)
    for (int e = 0; e < E; e++) c->src[h * E + e] = parent[h] * E + e;
  int rc = LP_OK;
  for (int i = 0; rc == LP_OK && i < nd; i++) {
    if (c->mode == 0) {
      rc = lp_dec_block_cache_reorder(c->lc[i], c->src, n * E);
    } else {
      rc = lp_dec_block_cache_reorder(c->ac[i], c->src, n * E);
      if (rc == LP_OK) rc = lp_dec_block_cache_reorder(c->zc[i], parent, n);
    }
  }
  if (rc != LP_OK) return lp_err_set(err, LP_EINVAL, "lp search: reorder failed");
  return LP_OK;
}

/* ---- entry points ---------------------------------------------------------------- */

/* the program level: beam K over the program vocabulary (PAD and BOS never generated) */
static rf_beam_spec prog_spec(const lp_model *m, int K, int max_len, float alpha) {
  const lp_vocab_info *pv = &m->prog_v;
  return (rf_beam_spec){.V = pv->size, .bos = pv->bos, .eos = pv->eos, .ban1 = pv->pad,
                        .ban2 = pv->bos, .min_len = 0, .K = K, .max_len = max_len,
                        .alpha = alpha, .who = "lp search"};
}

/* the program level with o's execution guidance and deadline */
static rf_beam_spec prog_spec_guided(const lp_model *m, int K, int max_len, const lp_beam_opts *o,
                                     double deadline) {
  rf_beam_spec s = prog_spec(m, K, max_len, o->len_alpha);
  s.prune = o->prune;
  s.signature = o->signature;
  s.gctx = o->ctx;
  s.deadline = deadline;
  return s;
}

static int max_codes(const lp_model *m, int max_len) {
  int S = max_len;
  for (int j = 0; j < m->cfg.latent_l; j++) S = lp_conv1d_s2_out_len(S);
  return S;
}

typedef struct tot {
  double key;
  int lrank, prank;
  int32_t *prog;
  int plen;
  float lscore;
  const int32_t *code;
  int clen;
  uint64_t sig;
} tot;

static int tot_cmp(const void *pa, const void *pb) {
  const tot *a = pa, *b = pb;
  if (a->key != b->key) return a->key > b->key ? -1 : 1;
  if (a->lrank != b->lrank) return a->lrank < b->lrank ? -1 : 1;
  return a->prank < b->prank ? -1 : a->prank > b->prank ? 1 : 0;
}

/* Adds the npf programs pf found under latent rank li (total key lkey + the
 * program's; lscore, code[clen]: the latent, code NULL for AE/VAE) to all[*ntot]
 * (at most B; with o->signature one answer per signature, the better key);
 * takes the programs' sequences. */
static void tot_add(tot *all, int *ntot, int B, const lp_beam_opts *o, int li, double lkey,
                    float lscore, const int32_t *code, int clen, rf_beam_fin *pf, int npf) {
  for (int pi = 0; pi < npf && *ntot < B; pi++) {
    const double key = lkey + pf[pi].key;
    int same = -1; /* one answer per signature across the codes too */
    for (int k = 0; o->signature && k < *ntot && same < 0; k++)
      if (all[k].sig == pf[pi].sig) same = k;
    if (same >= 0 && !(key > all[same].key)) continue;
    tot *t = same >= 0 ? &all[same] : &all[(*ntot)++];
    free(t->prog);
    t->key = key;
    t->lrank = li, t->prank = pi;
    t->prog = pf[pi].seq, t->plen = pf[pi].len;
    t->sig = pf[pi].sig;
    pf[pi].seq = NULL;
    t->lscore = lscore;
    t->code = code, t->clen = clen;
  }
}

/* The program beam ps over the latent memory set in c (lsx_set_code /
 * _vectors), its programs added to all (tot_add, the other arguments); *found:
 * how many it finished. */
static int prog_beam_add(lsx *c, const rf_beam_spec *ps, tot *all, int *ntot, int B,
                         const lp_beam_opts *o, int li, double lkey, float lscore,
                         const int32_t *code, int clen, int *found, lp_beam_result *out,
                         lp_err *err) {
  rf_beam_fin *pf = NULL;
  int npf = 0, tmo = 0;
  int rc = rf_beam_run(ps, c, lsx_step, lsx_reorder, &pf, &npf, &tmo, err);
  if (rc == LP_OK) {
    out->timed_out |= tmo;
    tot_add(all, ntot, B, o, li, lkey, lscore, code, clen, pf, npf);
  }
  *found = npf;
  rf_beam_fins_free(pf, npf);
  return rc;
}

static void tot_free(tot *all, int ntot) {
  for (int i = 0; all && i < ntot; i++) free(all[i].prog);
  free(all);
}

/* all[ntot] ranked into out (the programs taken; latent copied, NULL without a code). */
static int tot_result(tot *all, int ntot, lp_beam_result *out, lp_err *err) {
  qsort(all, (size_t)ntot, sizeof(tot), tot_cmp);
  out->hyps = calloc((size_t)(ntot ? ntot : 1), sizeof(lp_hyp));
  if (!out->hyps) return lp_err_set(err, LP_ENOMEM, "lp search: out of memory");
  for (int i = 0; i < ntot; i++) {
    lp_hyp *h = &out->hyps[i];
    if (all[i].code) {
      h->latent = malloc(sizeof(int32_t) * (size_t)(all[i].clen ? all[i].clen : 1));
      if (!h->latent) {
        out->n = i;
        lp_beam_free(out);
        return lp_err_set(err, LP_ENOMEM, "lp search: out of memory");
      }
      memcpy(h->latent, all[i].code, sizeof(int32_t) * (size_t)all[i].clen);
      h->latent_len = all[i].clen;
    }
    h->latent_score = all[i].lscore;
    h->prog = all[i].prog;
    h->prog_len = all[i].plen;
    h->score = (float)all[i].key;
    all[i].prog = NULL;
  }
  out->n = ntot;
  return LP_OK;
}

/* AE/VAE: the number of latents of the batch's reference program (the true
 * length given to these baselines), or LP_EINVAL without one. */
static int true_latents(const lp_model *m, const lp_batch *b, int *S, lp_err *err) {
  const char *kind = lp_model_kind_name(m->cfg.kind);
  if (b->T_prog <= 0 || !b->prog)
    return lp_err_set(err, LP_EINVAL,
                      "model kind %s is given the true program length at inference (the paper's "
                      "Latent RobustFill baselines): the task needs its reference program "
                      "(\"program\"/\"tokens\"), and this one has none",
                      kind);
  int len = rf_used_len(b->prog, b->T_prog, m->prog_v.pad);
  if (len < 1)
    return lp_err_set(err, LP_EINVAL, "model kind %s: the task's reference program is empty",
                      kind);
  for (int j = 0; j < m->cfg.latent_l; j++) len = lp_conv1d_s2_out_len(len);
  *S = len;
  return LP_OK;
}

#define LPS_VAE_SEED 0x5641452d73616d70ULL

/* lp_model_search for AE/VAE (see the top of the file). */
static int cont_search(lp_model *m, const lp_batch *b, const lp_beam_opts *o, int vae,
                       lp_beam_result *out, lp_err *err) {
  const int B = o->beam;
  int max_len = o->max_len, S = 0;
  int rc = rf_search_prep(m, b, B, &max_len, o->len_alpha, err);
  if (rc == LP_OK) rc = true_latents(m, b, &S, err);
  if (rc != LP_OK) return rc;
  int L = !vae ? 1 : o->latent_beam > 0 ? o->latent_beam : (int)floor(sqrt((double)B));
  if (L < 1) L = 1;
  if (L > B) L = B;
  const int PB = B / L, D = m->cfg.d_model;
  const double deadline = o->time_limit > 0 ? lp_now() + o->time_limit : 0.0;
  lsx c;
  if ((rc = lsx_init(&c, m, PB, S, max_len, err)) != LP_OK) return rc;
  for (int h = 0; h < c.cap_H; h++) memcpy(c.em + (size_t)h * c.E, b->emask, (size_t)c.E);
  const rf_beam_spec ps = prog_spec_guided(m, PB, max_len, o, deadline);
  int ntot = 0, found = 0;
  tot *all = calloc((size_t)B, sizeof(tot));
  float *mean = malloc(sizeof(float) * (size_t)S * D), *z = malloc(sizeof(float) * (size_t)S * D);
  if (!all || !mean || !z) {
    rc = lp_err_set(err, LP_ENOMEM, "lp search: out of memory");
    goto done;
  }
  if ((rc = lsx_cont_latents(&c, S, mean, err)) != LP_OK) goto done;
  for (int li = 0; li < L && !out->timed_out; li++) {
    memcpy(z, mean, sizeof(float) * (size_t)S * D);
    if (li > 0) {
      lp_rng r;
      lp_rng_seed(&r, LPS_VAE_SEED + (uint64_t)li);
      for (size_t i = 0; i < (size_t)S * D; i++) z[i] += lp_rng_normal(&r);
    }
    if ((rc = lsx_set_vectors(&c, z, S, err)) != LP_OK ||
        (rc = prog_beam_add(&c, &ps, all, &ntot, B, o, li, 0.0, 0.0f, NULL, 0, &found, out,
                            err)) != LP_OK)
      goto done;
  }
  rc = tot_result(all, ntot, out, err);
done:
  tot_free(all, ntot);
  free(mean);
  free(z);
  lsx_free(&c);
  return rc;
}

int lpm_search(lp_model *m, const lp_batch *b, const lp_beam_opts *o, lp_beam_result *out,
               lp_err *err) {
  if (m->cfg.kind == LP_MODEL_LATENT_AE || m->cfg.kind == LP_MODEL_LATENT_VAE)
    return cont_search(m, b, o, m->cfg.kind == LP_MODEL_LATENT_VAE, out, err);
  out->hyps = NULL;
  out->n = 0;
  out->timed_out = 0;
  const int B = o->beam;
  int max_len = o->max_len;
  int rc = rf_search_prep(m, b, B, &max_len, o->len_alpha, err);
  if (rc != LP_OK) return rc;
  int L = o->latent_beam > 0 ? o->latent_beam : (int)floor(sqrt((double)B));
  if (L < 1) L = 1;
  if (L > B) L = B;
  const int PB = B / L;
  /* guided: up to B codes are tried, in the predictor's order, until L of them
   * have led to an accepted program */
  const int guided = o->prune != NULL, LW = guided ? B : L;
  const double deadline = o->time_limit > 0 ? lp_now() + o->time_limit : 0.0;
  const int maxS = max_codes(m, max_len) + 1;
  lsx c;
  if ((rc = lsx_init(&c, m, LW > PB ? LW : PB, maxS, max_len, err)) != LP_OK) return rc;
  for (int h = 0; h < c.cap_H; h++) memcpy(c.em + (size_t)h * c.E, b->emask, (size_t)c.E);
  /* latents: codes 0..K-1 and EOS = K after at least one code; BOS = K+1 never */
  const rf_beam_spec ls = {.V = c.v.Vl, .bos = c.v.K + 1, .eos = c.v.K, .ban1 = c.v.K + 1,
                           .ban2 = -1, .min_len = 1, .K = LW, .max_len = maxS,
                           .alpha = o->len_alpha, .who = "lp search", .deadline = deadline};
  const rf_beam_spec ps = prog_spec_guided(m, PB, max_len, o, deadline);
  rf_beam_fin *lat = NULL;
  int nlat = 0, ntot = 0, used = 0, tmo = 0;
  tot *all = calloc((size_t)B, sizeof(tot));
  if (!all) {
    rc = lp_err_set(err, LP_ENOMEM, "lp search: out of memory");
    goto done;
  }
  c.mode = 0;
  rc = rf_beam_run(&ls, &c, lsx_step, lsx_reorder, &lat, &nlat, &tmo, err);
  if (rc != LP_OK) goto done;
  out->timed_out |= tmo;
  for (int li = 0; li < nlat && used < L && !out->timed_out; li++) {
    int found = 0;
    if ((rc = lsx_set_code(&c, lat[li].seq, lat[li].len - 1, err)) != LP_OK ||
        (rc = prog_beam_add(&c, &ps, all, &ntot, B, o, li, lat[li].key, (float)lat[li].raw,
                            lat[li].seq, lat[li].len - 1, &found, out, err)) != LP_OK)
      goto done;
    if (found > 0 || !guided) used++;
  }
  rc = tot_result(all, ntot, out, err);
done:
  tot_free(all, ntot);
  rf_beam_fins_free(lat, nlat);
  lsx_free(&c);
  return rc;
}

int lpm_search_programs(lp_model *m, const lp_batch *b, const int32_t *code, int len, int beam,
                        int max_len, float len_alpha, lp_beam_result *out, lp_err *err) {
  if (!m || !m->lp || !b || !code || len < 1 || !out || m->cfg.kind != LP_MODEL_LP)
    return lp_err_set(err, LP_EINVAL, "lpm_search_programs: bad arguments (or not kind lp)");
  out->hyps = NULL;
  out->n = 0;
  int rc = rf_search_prep(m, b, beam, &max_len, len_alpha, err);
  if (rc != LP_OK) return rc;
  lsx c;
  if ((rc = lsx_init(&c, m, beam, len, max_len, err)) != LP_OK) return rc;
  for (int h = 0; h < c.cap_H; h++) memcpy(c.em + (size_t)h * c.E, b->emask, (size_t)c.E);
  rf_beam_fin *pf = NULL;
  int npf = 0;
  const rf_beam_spec ps = prog_spec(m, beam, max_len, len_alpha);
  if ((rc = lsx_set_code(&c, code, len, err)) == LP_OK)
    rc = rf_beam_run(&ps, &c, lsx_step, lsx_reorder, &pf, &npf, NULL, err);
  if (rc == LP_OK) rc = rf_beam_result(pf, npf, out, ps.who, err); /* frees pf */
  lsx_free(&c);
  return rc;
}

/* lsx in program mode for rf_force: each chunk restarts with the same code */
typedef struct lsx_force {
  lsx *c;
  const int32_t *code;
  int len;
  const float *vec; /* AE/VAE: the latents [len,D] instead of a code */
} lsx_force;

static int lsx_force_start(void *ctx, lp_err *err) {
  lsx_force *f = ctx;
  if (f->vec) return lsx_set_vectors(f->c, f->vec, f->len, err);
  return lsx_set_code(f->c, f->code, f->len, err);
}

static int lsx_force_step(void *ctx, const int32_t *tok, int n, float *logits, lp_err *err) {
  return lsx_step(((lsx_force *)ctx)->c, tok, n, logits, err);
}

static int lsx_force_reorder(void *ctx, const int32_t *parent, int n, lp_err *err) {
  return lsx_reorder(((lsx_force *)ctx)->c, parent, n, err);
}

/* lp_model_score for AE/VAE: given the predicted latents of the true length */
static int cont_score(lp_model *m, const lp_batch *b, const int32_t *const *progs, const int *lens,
                      int n, int max_len, double *scores, lp_err *err) {
  int S = 0;
  int rc = true_latents(m, b, &S, err);
  if (rc != LP_OK) return rc;
  const int H = n < RF_SCORE_CHUNK ? n : RF_SCORE_CHUNK;
  lsx c;
  if ((rc = lsx_init(&c, m, H, S, max_len, err)) != LP_OK) return rc;
  for (int h = 0; h < c.cap_H; h++) memcpy(c.em + (size_t)h * c.E, b->emask, (size_t)c.E);
  float *mean = malloc(sizeof(float) * (size_t)S * c.D);
  if (!mean) rc = lp_err_set(err, LP_ENOMEM, "lp scoring: out of memory");
  if (rc == LP_OK) rc = lsx_cont_latents(&c, S, mean, err);
  if (rc == LP_OK) {
    const lp_vocab_info *pv = &m->prog_v;
    lsx_force f = {&c, NULL, S, mean};
    rc = rf_force(&f, lsx_force_start, lsx_force_step, lsx_force_reorder, pv->size, pv->bos, H,
                  progs, lens, n, scores, err);
  }
  free(mean);
  lsx_free(&c);
  return rc;
}

int lpm_score(lp_model *m, const lp_batch *b, const int32_t *const *progs, const int *lens, int n,
              int latent_beam, int max_len, double *scores, lp_err *err) {
  if (m->cfg.kind == LP_MODEL_LATENT_AE || m->cfg.kind == LP_MODEL_LATENT_VAE)
    return cont_score(m, b, progs, lens, n, max_len, scores, err);
  const int L = latent_beam ? latent_beam : 3;
  const int H = n < RF_SCORE_CHUNK ? n : RF_SCORE_CHUNK;
  const int maxS = max_codes(m, max_len) + 1;
  lsx c;
  int rc = lsx_init(&c, m, L > H ? L : H, maxS, max_len, err);
  if (rc != LP_OK) return rc;
  for (int h = 0; h < c.cap_H; h++) memcpy(c.em + (size_t)h * c.E, b->emask, (size_t)c.E);
  const rf_beam_spec ls = {.V = c.v.Vl, .bos = c.v.K + 1, .eos = c.v.K, .ban1 = c.v.K + 1,
                           .ban2 = -1, .min_len = 1, .K = L, .max_len = maxS, .alpha = 0.0,
                           .who = "lp scoring"};
  rf_beam_fin *lat = NULL;
  int nlat = 0;
  double *one = malloc(sizeof(double) * (size_t)n);
  if (!one) {
    rc = lp_err_set(err, LP_ENOMEM, "lp scoring: out of memory");
    goto done;
  }
  c.mode = 0;
  if ((rc = rf_beam_run(&ls, &c, lsx_step, lsx_reorder, &lat, &nlat, NULL, err)) != LP_OK)
    goto done;
  for (int i = 0; i < n; i++) scores[i] = -INFINITY;
  const lp_vocab_info *pv = &m->prog_v;
  for (int li = 0; li < nlat; li++) {
    lsx_force f = {&c, lat[li].seq, lat[li].len - 1, NULL};
    rc = rf_force(&f, lsx_force_start, lsx_force_step, lsx_force_reorder, pv->size, pv->bos, H,
                  progs, lens, n, one, err);
    if (rc != LP_OK) goto done;
    for (int i = 0; i < n; i++)
      if (lat[li].raw + one[i] > scores[i]) scores[i] = lat[li].raw + one[i];
  }
done:
  free(one);
  rf_beam_fins_free(lat, nlat);
  lsx_free(&c);
  return rc;
}

/* Synthesis for one task: the search modes beam / guided / solver / auto
 * (see lpsynth/synth.h). The model searches (lp_model_search, guided by the
 * domain's prefix_ok), the domain's exact solver enumerates consistent
 * programs (lp_domain_solve), and the model ranks what execution verified
 * (lp_model_score). */
#define _POSIX_C_SOURCE 200809L
#include "lpsynth/synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

const char *lp_search_mode_name(int mode) {
  switch (mode) {
    case LP_SEARCH_AUTO: return "auto";
    case LP_SEARCH_BEAM: return "beam";
    case LP_SEARCH_GUIDED: return "guided";
    case LP_SEARCH_SOLVER: return "solver";
    default: return "?";
  }
}

const char *lp_stage_name(int stage) {
  switch (stage) {
    case LP_STAGE_BEAM: return "beam";
    case LP_STAGE_GUIDED: return "guided";
    case LP_STAGE_SOLVER: return "solver";
    default: return "none";
  }
}

const char *lp_rank_name(int rank) {
  return rank == LP_RANK_MODEL ? "model" : rank == LP_RANK_PRIOR ? "prior" : "hybrid";
}

int lp_rank_parse(const char *s) {
  for (int r = LP_RANK_HYBRID; r <= LP_RANK_PRIOR; r++)
    if (s && strcmp(s, lp_rank_name(r)) == 0) return r;
  return -1;
}

int lp_search_mode_parse(const char *s) {
  for (int m = LP_SEARCH_AUTO; m <= LP_SEARCH_SOLVER; m++)
    if (s && strcmp(s, lp_search_mode_name(m)) == 0) return m;
  return -1;
}

void lp_synth_result_free(lp_synth_result *r) {
  if (!r) return;
  for (int i = 0; i < r->n; i++) {
    free(r->ans[i].prog);
    free(r->ans[i].latent);
  }
  free(r->ans);
  memset(r, 0, sizeof *r);
  r->top = -1;
}

/* ---- execution guidance ---- */

int lp_guide_prune(void *ctx, const int32_t *ids, int n, int *ok, lp_err *err) {
  lp_guide *g = ctx;
  g->n_prune_calls++;
  const double t0 = lp_now();
  int rc = lp_domain_prefix_ok(g->d, ids, (size_t)n, g->ex, g->n_ex, ok, err);
  g->prune_seconds += lp_now() - t0;
  return rc;
}

int lp_guide_signature(void *ctx, const int32_t *ids, int n, uint64_t *sig, lp_err *err) {
  lp_guide *g = ctx;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < g->n_ex; i++) {
    g->out.len = 0;
    int rc =
        lp_domain_execute(g->d, ids, (size_t)n, g->ex[i].part[0], g->ex[i].len[0], &g->out, err);
    if (rc != LP_OK) return rc;
    uint64_t len = g->out.len;
    for (int k = 0; k < 8; k++) h = (h ^ ((len >> (8 * k)) & 0xff)) * 1099511628211ull;
    for (size_t k = 0; k < g->out.len; k++)
      h = (h ^ (unsigned char)g->out.data[k]) * 1099511628211ull;
  }
  *sig = h;
  return LP_OK;
}

/* ---- answers ---- */

typedef struct answers {
  lp_synth_answer *a;
  int n, cap;
} answers;

static lp_synth_answer *ans_push(answers *v) {
  if (v->n == v->cap) {
    int cap = v->cap ? 2 * v->cap : 16;
    lp_synth_answer *a = realloc(v->a, sizeof *a * (size_t)cap);
    if (!a) return NULL;
    v->a = a, v->cap = cap;
  }
  lp_synth_answer *x = &v->a[v->n++];
  memset(x, 0, sizeof *x);
  x->prior = NAN;
  return x;
}

static int same_prog(const lp_synth_answer *a, const int32_t *ids, size_t n) {
  return a->prog_len == (int)n && memcmp(a->prog, ids, sizeof(int32_t) * n) == 0;
}

/* solver callback: copies each program and its prior */
typedef struct solved {
  answers *v;
  int first; /* index of the first solver answer in v */
  int max;   /* programs wanted */
  int count;
  int oom;
} solved;

static int on_solution(void *ctx, const int32_t *ids, size_t n, double prior) {
  solved *s = ctx;
  s->count++;
  for (int i = 0; i < s->first; i++) /* already found by the guided beam */
    if (same_prog(&s->v->a[i], ids, n)) {
      s->v->a[i].prior = prior;
      return s->count >= s->max;
    }
  lp_synth_answer *x = ans_push(s->v);
  int32_t *p = x ? malloc(sizeof(int32_t) * (n ? n : 1)) : NULL;
  if (!p) {
    if (x) s->v->n--;
    s->oom = 1;
    return 1;
  }
  memcpy(p, ids, sizeof(int32_t) * n);
  x->prog = p;
  x->prog_len = (int)n;
  x->prior = prior;
  x->score = prior;
  x->consistent = 1;
  x->stage = LP_STAGE_SOLVER;
  return s->count >= s->max;
}

static _Thread_local int g_prior_first; /* rank_answers' order: prior before score */

static int ans_cmp(const void *pa, const void *pb) {
  const lp_synth_answer *a = pa, *b = pb;
  if (a->consistent != b->consistent) return a->consistent ? -1 : 1;
  const double pa_ = isnan(a->prior) ? -INFINITY : a->prior;
  const double pb_ = isnan(b->prior) ? -INFINITY : b->prior;
  if (g_prior_first && pa_ != pb_) return pa_ > pb_ ? -1 : 1;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  if (pa_ != pb_) return pa_ > pb_ ? -1 : 1;
  if (a->stage != b->stage) return a->stage < b->stage ? -1 : 1;
  return 0;
}

/* stable sort (qsort is not): insertion order breaks ties */
static int rank_answers(answers *v) {
  int *idx = malloc(sizeof(int) * (size_t)(v->n ? v->n : 1));
  lp_synth_answer *tmp = malloc(sizeof *tmp * (size_t)(v->n ? v->n : 1));
  if (!idx || !tmp) {
    free(idx);
    free(tmp);
    return LP_ENOMEM;
  }
  for (int i = 0; i < v->n; i++) idx[i] = i;
  /* insertion sort by (ans_cmp, index): candidate lists are short */
  for (int i = 1; i < v->n; i++) {
    int k = idx[i], j = i - 1;
    while (j >= 0 && ans_cmp(&v->a[idx[j]], &v->a[k]) > 0) {
      idx[j + 1] = idx[j];
      j--;
    }
    idx[j + 1] = k;
  }
  for (int i = 0; i < v->n; i++) tmp[i] = v->a[idx[i]];
  if (v->n) memcpy(v->a, tmp, sizeof *tmp * (size_t)v->n);
  free(idx);
  free(tmp);
  return LP_OK;
}

int lp_beam_wellformed_first(lp_domain *d, lp_beam_result *res, int *n_ok, lp_err *err) {
  if (n_ok) *n_ok = -1;
  if (!d || !res || !lp_domain_has(d, LP_CAP_WELLFORMED)) return LP_OK;
  if (res->n <= 0) {
    if (n_ok) *n_ok = 0;
    return LP_OK;
  }
  unsigned char *ok = malloc((size_t)res->n);
  lp_hyp *tmp = malloc(sizeof(lp_hyp) * (size_t)res->n);
  if (!ok || !tmp) {
    free(ok), free(tmp);
    return lp_err_set(err, LP_ENOMEM, "out of memory");
  }
  int good = 0;
  for (int i = 0; i < res->n; i++) {
    int w = 0, rc = lp_domain_wellformed(d, res->hyps[i].prog, (size_t)res->hyps[i].prog_len, &w,
                                         err);
    if (rc != LP_OK) {
      free(ok), free(tmp);
      return rc;
    }
    ok[i] = (unsigned char)(w != 0);
    good += ok[i];
  }
  int at = 0;
  for (int pass = 1; pass >= 0; pass--)
    for (int i = 0; i < res->n; i++)
      if (ok[i] == pass) tmp[at++] = res->hyps[i];
  memcpy(res->hyps, tmp, sizeof(lp_hyp) * (size_t)res->n);
  free(ok), free(tmp);
  if (n_ok) *n_ok = good;
  return LP_OK;
}

int lp_synthesize(lp_domain *d, lp_model *m, const lp_batch *b, const lp_example *ex, size_t n_ex,
                  const lp_synth_opts *o, lp_synth_result *out, lp_err *err) {
  if (!out) return lp_err_set(err, LP_EINVAL, "lp_synthesize: no result");
  memset(out, 0, sizeof *out);
  out->top = -1;
  if (!d || !o || (!ex && n_ex)) return lp_err_set(err, LP_EINVAL, "lp_synthesize: NULL argument");
  const double t0 = lp_now();
  const int mode = o->mode;
  if (mode < LP_SEARCH_AUTO || mode > LP_SEARCH_SOLVER)
    return lp_err_set(err, LP_EINVAL, "unknown search mode %d", mode);
  if (m && !b) return lp_err_set(err, LP_EINVAL, "lp_synthesize: a model needs the encoded task");
  const lp_domain_desc *desc = lp_domain_desc_of(d);
  const int io = desc->spec_parts == 2;
  const int can_check = io && lp_domain_has(d, LP_CAP_CHECK);
  const int can_prefix = io && lp_domain_has(d, LP_CAP_PREFIX);
  const int can_solve = io && lp_domain_has(d, LP_CAP_SOLVE);
  const char *dn = lp_domain_name(d);
  int run_beam = 0, guided = 0, run_solver = 0;
  switch (mode) {
    case LP_SEARCH_BEAM:
      if (!m) return lp_err_set(err, LP_EINVAL, "--search beam needs a model");
      run_beam = 1;
      break;
    case LP_SEARCH_GUIDED:
      if (!m) return lp_err_set(err, LP_EINVAL, "--search guided needs a model");
      if (!can_prefix)
        return lp_err_set(err, LP_EUNSUP,
                          "--search guided: domain %s cannot judge program "
                          "prefixes against examples (no prefix_ok)",
                          dn);
      run_beam = guided = 1;
      break;
    case LP_SEARCH_SOLVER:
      if (!can_solve)
        return lp_err_set(err, LP_EUNSUP, "--search solver: domain %s has no exact solver", dn);
      run_solver = 1;
      break;
    default: /* auto */
      run_beam = m != NULL;
      guided = m != NULL && can_prefix;
      run_solver = can_solve;
      if (!run_beam && !run_solver)
        return lp_err_set(err, LP_EINVAL, "domain %s has no exact solver: give a model", dn);
  }
  if ((guided || run_solver) && n_ex == 0)
    return lp_err_set(err, LP_EINVAL, "no examples to search for");
  const double limit = o->time_limit;
  const double deadline = limit > 0 ? t0 + limit : 0.0;
  answers v = {0};
  lp_guide g = {d, ex, n_ex, {0}, 0, 0.0};
  lp_beam_result res = {0};
  int rc = LP_OK;
  /* auto with a solver: the solver first (measured: as good, and faster; see
   * EXPERIMENTS.md), the guided beam only when it found no program and did not
   * exhaust its search space (then no program of up to its size fits) */
  const int solver_first = mode == LP_SEARCH_AUTO && run_solver;
  for (int pass = 0; pass < 2; pass++) {
    int beam_now = run_beam && (solver_first ? pass == 1 : pass == 0);
    const int solver_now = run_solver && (solver_first ? pass == 0 : pass == 1);
    if (solver_first && out->solver_complete) beam_now = 0;
    for (int i = 0; beam_now && solver_first && i < v.n; i++)
      if (v.a[i].consistent) beam_now = 0;
    const double beam_left = deadline > 0 ? deadline - lp_now() : 0.0;
    if (beam_now && deadline > 0 && beam_left <= 0) {
      out->timed_out = 1;
      beam_now = 0;
    }
    if (beam_now) {
      lp_beam_opts bo = {.beam = o->beam > 0 ? o->beam : 10,
                         .latent_beam = o->latent_beam,
                         .max_len = o->max_len,
                         .len_alpha = (float)o->len_alpha,
                         .prune = guided ? lp_guide_prune : NULL,
                         .signature = guided ? lp_guide_signature : NULL,
                         .ctx = &g,
                         .time_limit = beam_left};
      if ((rc = lp_model_search(m, b, &bo, &res, err)) != LP_OK) goto done;
      if (!can_check && !o->keep_order && (rc = lp_beam_wellformed_first(d, &res, NULL, err)) != LP_OK)
        goto done;
      out->timed_out |= res.timed_out;
      for (int i = 0; i < res.n; i++) {
        lp_synth_answer *x = ans_push(&v);
        if (!x) {
          rc = lp_err_set(err, LP_ENOMEM, "out of memory");
          goto done;
        }
        lp_hyp *h = &res.hyps[i];
        x->prog = h->prog, x->prog_len = h->prog_len;
        x->latent = h->latent, x->latent_len = h->latent_len;
        h->prog = NULL, h->latent = NULL;
        x->score = h->score;
        x->stage = guided ? LP_STAGE_GUIDED : LP_STAGE_BEAM;
        if (can_check) {
          lp_err e2 = {0};
          int ok = 0;
          if (lp_domain_check(d, x->prog, (size_t)x->prog_len, ex, n_ex, &ok, &e2) == LP_OK)
            x->consistent = ok;
        }
      }
    }
    if (solver_now) {
      double left = deadline > 0 ? deadline - lp_now() : 0.0;
      if (deadline > 0 && left <= 0) {
        out->timed_out = 1;
      } else {
        const int first = v.n;
        solved s = {&v, first, o->max_candidates > 0 ? o->max_candidates : 100, 0, 0};
        /* with a model, a tenth of the time is kept for scoring the candidates
         */
        lp_solve_opts so = {sizeof so, s.max, m && left > 0 ? 0.9 * left : left, 0};
        int complete = 0;
        if ((rc = lp_domain_solve(d, ex, n_ex, &so, on_solution, &s, &complete, err)) != LP_OK)
          goto done;
        if (s.oom) {
          rc = lp_err_set(err, LP_ENOMEM, "out of memory");
          goto done;
        }
        out->n_solver = s.count;
        out->solver_complete = complete;
        if (!complete && s.count < s.max && deadline > 0 && lp_now() >= deadline)
          out->timed_out = 1;
        /* verify (the domain promises consistency; a broken solver must not
         * hand out wrong answers) */
        for (int i = first; i < v.n; i++) {
          lp_err e2 = {0};
          int ok = 0;
          if (can_check &&
              lp_domain_check(d, v.a[i].prog, (size_t)v.a[i].prog_len, ex, n_ex, &ok, &e2) == LP_OK)
            v.a[i].consistent = ok;
        }
        if (m && v.n > first && o->rank != LP_RANK_PRIOR) { /* the model ranks what execution verified */
          const int max_len = lp_model_config(m)->max_program_len;
          const int nn = v.n - first;
          const int32_t **progs = malloc(sizeof *progs * (size_t)nn);
          int *lens = malloc(sizeof *lens * (size_t)nn),
              *which = malloc(sizeof *which * (size_t)nn);
          double *sc = malloc(sizeof *sc * (size_t)nn);
          int k = 0;
          if (!progs || !lens || !which || !sc) {
            rc = lp_err_set(err, LP_ENOMEM, "out of memory");
          } else {
            for (int i = first; i < v.n; i++) {
              v.a[i].score = -INFINITY; /* a program the model cannot read ranks last */
              if (v.a[i].prog_len <= max_len) {
                progs[k] = v.a[i].prog, lens[k] = v.a[i].prog_len, which[k] = i;
                k++;
              }
            }
            rc = lp_model_score(m, b, progs, lens, k, o->score_latent_beam, sc, err);
            for (int j = 0; rc == LP_OK && j < k; j++) v.a[which[j]].score = sc[j];
          }
          free(progs);
          free(lens);
          free(which);
          free(sc);
          if (rc != LP_OK) goto done;
        }
      }
    }
  } /* passes */
  /* with a model, HYBRID ranks by the prior first (answers of the beam stages
   * have none and come after the solver's), PRIOR by the prior alone */
  g_prior_first = !m || o->rank != LP_RANK_MODEL;
  if (mode != LP_SEARCH_BEAM && (rc = rank_answers(&v)) != LP_OK) {
    rc = lp_err_set(err, LP_ENOMEM, "out of memory");
    goto done;
  }
  for (int i = 0; i < v.n && out->top < 0; i++)
    if (v.a[i].consistent) out->top = i;
  out->ans = v.a, out->n = v.n;
  v.a = NULL, v.n = 0;
done:
  for (int i = 0; i < v.n; i++) {
    free(v.a[i].prog);
    free(v.a[i].latent);
  }
  free(v.a);
  lp_beam_free(&res);
  lp_buf_free(&g.out);
  out->prune_calls = g.n_prune_calls;
  out->prune_seconds = g.prune_seconds;
  out->seconds = lp_now() - t0;
  return rc;
}

/* lpsynth synthesis: one call that finds programs for one task's examples by
 * the search modes of `lpsynth synth` / `eval --search`:
 *
 *   beam    the model's beam search; programs checked afterwards (the paper's)
 *   guided  execution-guided beam search: a candidate prefix the domain says
 *           can no longer be consistent (prefix_ok) is dropped before it takes
 *           a beam slot; only consistent programs finish, one per behaviour
 *   solver  the domain's exact solver (ABI 1.2 solve) enumerates consistent
 *           programs best first by its prior; the model (when given) re-ranks
 *           them by its teacher-forced log-probability
 *   auto    the solver (when the domain has one), its programs ranked by the
 *           model (by the domain's prior without one); the guided beam (with a
 *           model) when there is no solver or it found no program in time
 *           (measured: solver-then-model is as accurate as guided-then-solver
 *           and faster, EXPERIMENTS.md)
 *
 * OWNERSHIP: lp_synth_result is caller-owned (zero-initialise it); its arrays
 * are released by lp_synth_result_free, which leaves it zeroed. The domain,
 * model and batch are borrowed for the call only.
 * ERRORS: negative LP_E* codes with a message in err; never exits or prints.
 */
#ifndef LPSYNTH_SYNTH_H
#define LPSYNTH_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "lpsynth/model.h"
#include "lpsynth/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

enum lp_search_mode { LP_SEARCH_AUTO = 0, LP_SEARCH_BEAM, LP_SEARCH_GUIDED, LP_SEARCH_SOLVER };
/* Which stage found an answer. */
enum lp_stage { LP_STAGE_NONE = 0, LP_STAGE_BEAM, LP_STAGE_GUIDED, LP_STAGE_SOLVER };

/* "auto", "beam", "guided", "solver" / "none", "beam", "guided", "solver" (static strings). */
const char *lp_search_mode_name(int mode);
const char *lp_stage_name(int stage);
/* The mode named s, or -1. */
int lp_search_mode_parse(const char *s);

typedef struct lp_synth_opts {
  int mode;            /* enum lp_search_mode */
  int beam;            /* B (beam and guided stages); 0: 10 */
  int latent_beam;     /* LP models: L (0: floor(sqrt(B))) */
  int max_len;         /* longest program in tokens incl. EOS (0: the model's) */
  double time_limit;   /* seconds for the whole call (<= 0: none) */
  int max_candidates;  /* solver: programs taken from the solver and ranked (0: 100) */
  int score_latent_beam; /* LP models: codes used to score solver programs (0: 3) */
  int rank;            /* enum lp_rank: how solver programs are ranked with a model */
  double len_alpha;    /* beam and guided stages: length normalisation exponent of
                          lp_beam_opts (0: none) */
  int keep_order;      /* 1: keep the beam's order; 0 (default): for a domain that
                          cannot check programs but can tell well-formed ones
                          (LP_CAP_WELLFORMED: python), well-formed programs first
                          (lp_beam_wellformed_first) */
} lp_synth_opts;

/* Ranking of the solver's programs when there is a model (without one: the
 * prior). HYBRID (the default): the domain's prior, ties broken by the model
 * (measured best with the shipped models, EXPERIMENTS.md); MODEL: the model's
 * log-probability alone; PRIOR: the prior alone (the model is not run). */
enum lp_rank { LP_RANK_HYBRID = 0, LP_RANK_MODEL, LP_RANK_PRIOR };
const char *lp_rank_name(int rank); /* "hybrid", "model", "prior" */
int lp_rank_parse(const char *s);   /* or -1 */

typedef struct lp_synth_answer {
  int32_t *prog;       /* ids incl. EOS (owned by the result) */
  int prog_len;
  double score;        /* model log-probability (beam/guided: the search's score;
                          solver programs: lp_model_score), or the prior without a model */
  double prior;        /* the domain's prior (solver answers), else NAN */
  int consistent;      /* 1 when the domain's check passed (0 where it cannot check) */
  int stage;           /* enum lp_stage */
  int32_t *latent;     /* LP: the latent code of a beam/guided answer (owned), else NULL */
  int latent_len;
} lp_synth_answer;

typedef struct lp_synth_result {
  lp_synth_answer *ans; /* ranked best first (beam mode: in beam order) */
  int n;
  int top;              /* index of the first consistent answer, or -1 */
  int timed_out;        /* 1 when the time limit cut a stage short */
  int solver_complete;  /* 1 when the solver exhausted its search space */
  int n_solver;         /* programs the solver reported */
  double seconds;       /* wall time of the call */
  long prune_calls;     /* guided: prefixes the domain judged */
  double prune_seconds; /* guided: the time those judgements took */
} lp_synth_result;

/* Finds programs for the examples ex[0..n_ex) (part 0 -> part 1). m may be
 * NULL (solver only; LP_EINVAL when the mode needs a model); b is the task
 * encoded for m (lp_batch_fill with B = 1; ignored without a model). A task no
 * program fits is not an error: out->top is then -1. */
int lp_synthesize(lp_domain *d, lp_model *m, const lp_batch *b, const lp_example *ex,
                  size_t n_ex, const lp_synth_opts *o, lp_synth_result *out, lp_err *err);
void lp_synth_result_free(lp_synth_result *r);

/* Reorders res->hyps so that the programs the domain calls well formed
 * (lp_domain_wellformed: python, the text parses) come first, each group in
 * its beam order (a stable partition). *n_ok (may be NULL) gets how many are
 * well formed. A domain without LP_CAP_WELLFORMED leaves res as it is and
 * sets *n_ok = -1. LP_OK, or the domain's error (res unchanged). */
int lp_beam_wellformed_first(lp_domain *d, lp_beam_result *res, int *n_ok, lp_err *err);

/* The execution-guidance callbacks lp_synthesize gives lp_model_search, for
 * callers that run the search themselves: ctx is an lp_guide. */
typedef struct lp_guide {
  lp_domain *d;
  const lp_example *ex;
  size_t n_ex;
  lp_buf out;           /* scratch (freed with lp_buf_free) */
  long n_prune_calls;   /* statistics: prefixes judged */
  double prune_seconds; /* statistics: time in prefix_ok */
} lp_guide;
int lp_guide_prune(void *ctx, const int32_t *ids, int n, int *ok, lp_err *err);
/* FNV-1a of the outputs on the examples' inputs (each output's length too). */
int lp_guide_signature(void *ctx, const int32_t *ids, int n, uint64_t *sig, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif

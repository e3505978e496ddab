/* lpsynth eval, in three files (not a public API):
 *   cmd_eval.c     the verb: options, the model, tasks read in chunks, in order
 *   eval_pool.c    T workers searching and scoring the tasks of a chunk
 *   eval_report.c  results taken in line order: --details lines, the summary
 *
 * The main thread reads a chunk of lines (parsing, encoding and batching
 * each task, which needs only the loaded domain and config), the workers
 * search and score the chunk's tasks, taking the next task from a shared
 * counter, each with its own model and its own domain instance, and the main
 * thread then accumulates the results and writes --details lines in line
 * order. Everything reported is therefore the same for any T, except times. */
#ifndef LPSYNTH_CLI_EVAL_H
#define LPSYNTH_CLI_EVAL_H
#include "cli.h"
#include "lpsynth/metrics.h"

#define EVAL_MAX_SIZE 32 /* program sizes counted apart (larger ones count as this) */
#define EVAL_DIV_N 4     /* distinct-n for n = 1..4 */

/* What every (B, L) run of the verb uses. */
typedef struct eval_settings {
  const char *tasks;        /* the file, for messages */
  int metric;               /* CLI_METRIC_EXACT or _BLEU */
  int mode, cands, rank;    /* exact: --search, --candidates, --rank */
  double tlimit;            /* exact: --time-limit */
  int max_len;
  double len_alpha;         /* --len-alpha */
  int keep_order;           /* --keep-order: no well-formed-first reordering */
  int is_lp;                /* the model has latent beams */
  int beams[CLI_MAX_LIST], n_beams; /* B (0: the solver alone) */
  int lbeams[CLI_MAX_LIST], n_lbeams; /* L (0: floor(sqrt(B))) */
  unsigned char dup[CLI_MAX_LIST * CLI_MAX_LIST]; /* run bi * n_lbeams + li repeats another */
  int32_t eos;              /* the program vocabulary's EOS */
} eval_settings;

static inline int eval_n_runs(const eval_settings *S) { return S->n_beams * S->n_lbeams; }
/* The latent beam lp_model_search uses for an LP model (lp_search.c). */
int eval_latent_used(int beam, int lbeam);

/* The result of one (B, L) run on one task. */
typedef struct run_res {
  double secs;
  int found;                /* programs returned */
  int first;                /* exact: index of the first consistent program, or -1 */
  double best, top1;        /* bleu: best sentence BLEU in the beam, and the top program's */
  int best_rank;            /* bleu: 1-based rank of the best (0: empty beam) */
  int top_wf;               /* bleu: the top program is well formed (1/0), or -1:
                               the domain cannot tell, or the beam is empty */
  char *top;                /* bleu: the top program's text (malloc'd), NULL when none */
  size_t top_len;
  lp_bleu_stats top_stats;  /* bleu: corpus statistics of the top program */
  long ntok;                /* tokens of the beam's programs (without EOS) */
  double div[EVAL_DIV_N];
  int stage;                /* exact: the stage that found the top answer */
  int generalised;          /* exact: the top answer is right on every held-out example */
  int timed_out;
} run_res;

/* One line of the tasks file that is a task or a bad line (lines of other
 * splits are not kept). */
typedef struct eval_job {
  size_t lineno;
  int bad;                  /* a bad line: msg (NULL when out of memory) is printed */
  char *msg;
  lp_record rec;
  lp_enc_task t;            /* views into rec; held-out examples in t.held */
  lp_batch b;
  int32_t size;             /* exact: the reference program's size, 0..EVAL_MAX_SIZE */
  run_res *runs;            /* [eval_n_runs], index bi * n_lbeams + li */
  int failed_run;           /* -1, or the run whose search or scoring failed (msg says why) */
} eval_job;

void eval_job_free(eval_job *J, int n_runs);
/* A malloc'd message (NULL when out of memory). */
char *eval_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- eval_pool.c ---- */
typedef struct eval_pool eval_pool;
/* Worker 0 uses L's model and domain; workers 1..T-1 get a domain instance
 * (opened from `domain` with L's options) and a copy of the model each.
 * NULL after a message. */
eval_pool *eval_pool_new(const char *domain, const cli_loaded *L, int n_workers,
                         const eval_settings *S);
/* Runs every (B, L) of jobs[0..n) that is not a bad line; a failed run stops
 * the later jobs (the job says which run failed). */
void eval_pool_run(eval_pool *p, eval_job *jobs, size_t n, cli_progress *pg, uint64_t done_before);
void eval_pool_free(eval_pool *p);

/* ---- eval_report.c ---- */
typedef struct eval_report eval_report;
/* details: the --details output, or NULL. NULL when out of memory (said). */
eval_report *eval_report_new(const eval_settings *S, FILE *details);
/* Takes one job, in line order: its bad line is reported, its runs added and
 * written to --details. EXIT_OK, or EXIT_FAIL when a run failed (reported). */
int eval_report_job(eval_report *R, const eval_job *J);
/* Tasks taken so far. */
long eval_report_tasks(const eval_report *R);
/* Prints the summary (text, or one JSON object with --json). */
typedef struct eval_summary_info {
  const char *split;
  const char *model;        /* "none", "lp" or "robustfill" */
  int max_spec_len;         /* for the cut docstrings line */
  int json;
  double wall;              /* seconds */
} eval_summary_info;
void eval_report_print(eval_report *R, const eval_summary_info *I);
/* Lines that were bad. */
long eval_report_bad(const eval_report *R);
void eval_report_free(eval_report *R);
#endif

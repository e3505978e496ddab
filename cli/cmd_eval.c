/* lpsynth eval: exact accuracy or BLEU of a trained model (or the domain's
 * solver) on JSONL tasks, by beam size; see cli/eval.h for its parts. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"

static const cli_verb_spec eval_verb = {
    CLI_EVAL, "eval", NULL,
    "Searches the model for each task (one JSONL line, read as train and synth\n"
    "read a task line: lpsynth/task.h) at every beam size B (and, for LP models,\n"
    "every latent beam size L) and reports, per (B, L):\n"
    "\n"
    "  exact (the default for domains that can check programs, e.g. string): a task\n"
    "      (\"inputs\", \"outputs\", optional \"program\") is solved when any of the B\n"
    "      programs is consistent with all of its examples (the domain's check);\n"
    "      accuracy, and accuracy by the reference program's size (the domain's unit:\n"
    "      expressions for the string domain).\n"
    "  bleu (the default, and the only metric, for domains without check, e.g. python):\n"
    "      a task (a \"docstring\"/\"code\" pair as `lpsynth corpus` writes it; or a\n"
    "      spec with a reference \"program\") scores the best sentence BLEU-4 among its\n"
    "      B programs (decoded to text) against the reference, as the Latent\n"
    "      Programmer paper does; reported: the mean of these scores x 100, and the\n"
    "      corpus BLEU-4 x 100 of the top-1 programs. Tokenisation `code` and smoothing\n"
    "      method1, as `lpsynth score` does by default. A docstring longer than the\n"
    "      model's max_spec_len tokens is cut to its first max_spec_len tokens (counted).\n"
    "\n"
    "Both also report tasks per second (of one worker: tasks / seconds of search and\n"
    "scoring at that (B, L), summed over the workers) and the diversity of the beams:\n"
    "for n = 1..4, the distinct n-grams of program tokens occurring in the B programs\n"
    "divided by the total tokens of the B programs (the paper's Figure 5(a)), the mean\n"
    "over the tasks whose beam has any token. In the table, L is the latent beam used\n"
    "(floor(sqrt(B)) by default, clamped to [1, B]; (B, L) pairs that come out the\n"
    "same are run once) and '-' for RobustFill models, which have none.\n"
    "A line that cannot be read or encoded (e.g. an example longer than the model's\n"
    "max_spec_len, or a reference program that does not parse) is reported as\n"
    "FILE:LINE: message, the run goes on, and the exit status is then 1; a search\n"
    "that fails stops the run (FILE:LINE: search: ...).\n"
    "\n"
    "With --threads T > 1, T workers search the tasks at once, each with its own copy\n"
    "of the model and its own domain instance and one OpenBLAS thread, taking tasks\n"
    "in turn; results are collected and reported in line order, so everything but the\n"
    "times (tasks/s, wall time, \"seconds\") is the same for every T.\n"
    "\n"
    "With --metric exact each task is searched as `lpsynth synth --search MODE` does\n"
    "(auto: the domain's solver, its programs ranked by the model; guided: the\n"
    "execution-guided beam; beam: the model's beam; solver: the solver alone or\n"
    "ranked by the model), within --time-limit seconds; the answer is the top-ranked\n"
    "consistent program. Without --model the domain's solver runs alone (one row, B\n"
    "'-'). A line may carry \"held_inputs\"/\"held_outputs\" (examples never shown to\n"
    "the search), or --holdout K keeps its last K examples out: a second table then\n"
    "reports generalisation (the answer is right on every held-out example), the\n"
    "median/p90/max seconds per task, the tasks the time limit cut short and the\n"
    "stage that found each answer.",
    NULL};

/* ---------- the runs ---------- */

/* The (B, L) runs the options ask for, before the model is known (B 0: the
 * solver alone, one run). EXIT_OK, or EXIT_USAGE after a message. */
static int settings_from_options(const cli_opts *o, eval_settings *S) {
  memset(S, 0, sizeof *S);
  S->tasks = o->tasks;
  S->metric = o->metric;
  S->mode = o->search;
  S->rank = o->rank;
  S->cands = (int)o->candidates;
  S->tlimit = o->time_limit;
  S->max_len = (int)o->max_len;
  S->len_alpha = o->len_alpha;
  S->keep_order = o->keep_order;
  memcpy(S->beams, o->beams.v, sizeof S->beams);
  S->n_beams = o->beams.n;
  if (o->latent_beams.n) {
    memcpy(S->lbeams, o->latent_beams.v, sizeof S->lbeams);
    S->n_lbeams = o->latent_beams.n;
  } else {
    S->n_lbeams = 1; /* lbeams[0] = 0: floor(sqrt(B)) */
  }
  const int beams_given = o->given[CLI_O_BEAMS];
  if (o->model && S->mode == LP_SEARCH_SOLVER && S->metric != CLI_METRIC_BLEU) { /* no beam */
    if (beams_given)
      fprintf(stderr, "lpsynth eval: warning: --beam is ignored with --search solver\n");
    S->n_beams = 1;
    S->beams[0] = 0;
  }
  if (!o->model) { /* the domain's solver alone: one run, no beam */
    if (S->mode == LP_SEARCH_BEAM || S->mode == LP_SEARCH_GUIDED || S->metric == CLI_METRIC_BLEU) {
      cli_error("eval", "--model CKPT is required (%s)",
                S->metric == CLI_METRIC_BLEU ? "--metric bleu scores a model's programs"
                                             : "--search beam and guided search a model");
      return EXIT_USAGE;
    }
    if (beams_given) fprintf(stderr, "lpsynth eval: warning: --beam is ignored without a model\n");
    S->n_beams = 1;
    S->beams[0] = 0;
  }
  for (int bi = 0; bi < S->n_beams; bi++)
    if (S->beams[bi] > 4096) { /* lp_model_search's limit */
      cli_error("eval", "--beam: %d is more than the largest beam, 4096", S->beams[bi]);
      return EXIT_USAGE;
    }
  return EXIT_OK;
}

/* What the loaded model and domain decide: the metric, the latent beams,
 * the (B, L) pairs run once. EXIT_OK, or EXIT_USAGE after a message. */
static int settings_for_model(const cli_opts *o, const cli_loaded *L, eval_settings *S) {
  int can_check = lp_domain_has(L->d, LP_CAP_CHECK) && L->dom.n_parts == 2;
  if (S->metric == CLI_METRIC_DEFAULT) S->metric = can_check ? CLI_METRIC_EXACT : CLI_METRIC_BLEU;
  if (S->metric == CLI_METRIC_EXACT && !can_check) {
    cli_error("eval", "--metric exact: domain %s cannot check programs against examples (it "
              "has no check capability); use --metric bleu", lp_domain_name(L->d));
    return EXIT_USAGE;
  }
  if (S->metric != CLI_METRIC_EXACT && o->holdout) {
    cli_error("eval", "--holdout needs --metric exact (examples to check)");
    return EXIT_USAGE;
  }
  /* kinds with a latent beam: lp, latent-vae (L sampled latent sequences) */
  S->is_lp = L->m && (lp_model_config(L->m)->kind == LP_MODEL_LP ||
                      lp_model_config(L->m)->kind == LP_MODEL_LATENT_VAE);
  S->eos = L->dom.prog.eos;
  if (!S->is_lp) {
    int any = 0;
    for (int i = 0; i < S->n_lbeams; i++) any |= S->lbeams[i] != 0;
    if (any)
      fprintf(stderr, "lpsynth eval: warning: --latent-beam is ignored: %s holds a %s "
              "model, which has no latent beam\n", o->model,
              L->m ? lp_model_kind_name(lp_model_config(L->m)->kind) : "robustfill");
    S->n_lbeams = 1;
    S->lbeams[0] = 0;
  }
  /* (B, L) pairs whose latent beam, clamped to [1, B], repeats an earlier one are run once */
  for (int bi = 0; bi < S->n_beams && S->is_lp; bi++)
    for (int li = 0; li < S->n_lbeams; li++)
      for (int lj = 0; lj < li; lj++)
        if (!S->dup[bi * S->n_lbeams + lj] &&
            eval_latent_used(S->beams[bi], S->lbeams[lj]) ==
                eval_latent_used(S->beams[bi], S->lbeams[li]))
          S->dup[bi * S->n_lbeams + li] = 1;
  return EXIT_OK;
}

/* ---------- reading tasks ---------- */

typedef struct eval_input {
  lp_jsonl *r;
  const cli_opts *o;
  const cli_loaded *L;
  const eval_settings *S;
  int64_t n_read;           /* tasks read (bad lines and other splits not counted) */
  int eof;
} eval_input;

/* The task of J's line (J->rec parsed): encoded, batched, sized. 0, or -1
 * with J->msg (NULL when out of memory). */
static int make_task(eval_input *in, eval_job *J) {
  const eval_settings *S = in->S;
  const cli_loaded *L = in->L;
  lp_err e = {0};
  lp_task_opts to = {.max_spec_len = cli_max_spec_len(L),
                     .flags = S->metric == CLI_METRIC_BLEU ? LP_TASK_NEED_PROGRAM : 0,
                     .holdout = (size_t)in->o->holdout};
  if (lp_enc_task_read(L->d, &J->rec, &to, &J->t, &e)) {
    J->msg = eval_msg("%s:%zu: %s", S->tasks, J->lineno, e.msg);
    return -1;
  }
  if (S->metric == CLI_METRIC_BLEU && !J->t.ref) {
    J->msg = eval_msg("%s:%zu: missing field \"program\" (the reference for BLEU)", S->tasks,
                      J->lineno);
    return -1;
  }
  if (L->m && cli_batch_task(L, &J->t, &J->b, &e)) {
    J->msg = eval_msg("%s:%zu: %s", S->tasks, J->lineno, e.msg);
    return -1;
  }
  if (S->metric == CLI_METRIC_EXACT && J->t.has_prog && lp_domain_has(L->d, LP_CAP_LENGTH))
    lp_domain_program_size(L->d, J->t.prog.data, J->t.prog.len, &J->size, &e);
  if (J->size < 0) J->size = 0;
  if (J->size > EVAL_MAX_SIZE) J->size = EVAL_MAX_SIZE;
  J->runs = calloc((size_t)eval_n_runs(S), sizeof *J->runs);
  return J->runs ? 0 : -1;
}

/* The next line into J: 1 (a task or a bad line), 0 (a line of another
 * split: nothing kept), -1 at the end of the file. */
static int read_job(eval_input *in, eval_job *J) {
  const char *line;
  size_t len, lineno;
  lp_err e = {0};
  int st = lp_jsonl_next(in->r, &line, &len, &lineno, &e);
  if (st == 0) return -1;
  memset(J, 0, sizeof *J);
  J->lineno = lineno;
  J->failed_run = -1;
  if (st < 0) {
    J->bad = 1;
    J->msg = eval_msg("%s", e.msg); /* it names the file and line */
    return 1;
  }
  if (lp_record_parse(line, len, &J->rec, &e)) {
    J->bad = 1;
    J->msg = eval_msg("%s:%zu: %s", in->S->tasks, lineno, e.msg);
    return 1;
  }
  const char *split = in->o->split;
  int r = split ? lp_task_in_split(&J->rec, split, &e) : 1;
  if (r == 0) {
    eval_job_free(J, 0);
    return 0;
  }
  if (r < 0) {
    J->bad = 1;
    J->msg = eval_msg("%s:%zu: %s", in->S->tasks, lineno, e.msg);
    return 1;
  }
  if (make_task(in, J))
    J->bad = 1;
  else
    in->n_read++;
  return 1;
}

/* Up to n tasks and bad lines into jobs (within --limit); how many. */
static size_t read_chunk(eval_input *in, eval_job *jobs, size_t n) {
  const int64_t limit = in->o->limit;
  size_t k = 0;
  while (k < n && !in->eof && (limit == 0 || in->n_read < limit)) {
    int r = read_job(in, &jobs[k]);
    if (r < 0) in->eof = 1;
    if (r > 0) k++;
  }
  return k;
}

/* ---------- the verb ---------- */

/* Reads, searches and reports every chunk of tasks. EXIT_OK or EXIT_FAIL. */
static int eval_tasks(eval_input *in, eval_pool *pool, eval_report *R, int n_workers) {
  const size_t chunk = (size_t)64 * (size_t)n_workers; /* lines read per round */
  eval_job *jobs = calloc(chunk, sizeof *jobs);
  if (!jobs) {
    cli_error("eval", "out of memory");
    return EXIT_FAIL;
  }
  const int n_runs = eval_n_runs(in->S);
  int rc = EXIT_OK;
  cli_progress pg;
  cli_progress_start(&pg, "eval", (uint64_t)in->o->limit);
  while (rc == EXIT_OK && !in->eof && (in->o->limit == 0 || in->n_read < in->o->limit)) {
    size_t n_jobs = read_chunk(in, jobs, chunk);
    eval_pool_run(pool, jobs, n_jobs, &pg, (uint64_t)eval_report_tasks(R));
    for (size_t j = 0; j < n_jobs && rc == EXIT_OK; j++) rc = eval_report_job(R, &jobs[j]);
    for (size_t j = 0; j < n_jobs; j++) eval_job_free(&jobs[j], n_runs);
  }
  cli_progress_end(&pg, (uint64_t)eval_report_tasks(R));
  free(jobs);
  return rc;
}

int cmd_eval(int argc, char **argv) {
  cli_opts o;
  int rc = cli_parse(&eval_verb, argc, argv, &o);
  if (rc != CLI_PARSED) return rc;
  eval_settings S;
  if ((rc = cli_no_operands(&o, argc, argv, NULL)) || (rc = settings_from_options(&o, &S))) {
    cli_opts_free(&o);
    return rc;
  }
  const int n_workers = o.threads > 1 ? (int)o.threads : 1;
  cli_loaded L;
  /* T workers: each runs its products on one OpenBLAS thread; one worker:
   * --threads 1 sets one OpenBLAS thread, no --threads leaves OpenBLAS as it is */
  if (o.model ? cli_load_model("eval", o.domain, o.domain_options, o.model,
                               n_workers > 1 ? 1 : (int)o.threads, &L)
              : cli_open_solver("eval", o.domain, o.domain_options, &L)) {
    cli_opts_free(&o);
    return EXIT_FAIL;
  }
  eval_pool *pool = NULL;
  eval_report *R = NULL;
  eval_input in = {.o = &o, .L = &L, .S = &S};
  cli_out dout = {0};
  lp_err e = {0};
  if ((rc = settings_for_model(&o, &L, &S))) goto done;
  rc = EXIT_FAIL;
  if (!(pool = eval_pool_new(o.domain, &L, n_workers, &S))) goto done;
  if (!(in.r = lp_jsonl_open(o.tasks, 0, &e))) {
    cli_error("eval", "%s", e.msg);
    goto done;
  }
  if (o.details && cli_out_open(&dout, o.details, "eval")) goto done;
  if (!(R = eval_report_new(&S, dout.f))) {
    cli_out_abort(&dout);
    goto done;
  }
  double wall0 = lp_now();
  rc = eval_tasks(&in, pool, R, n_workers);
  double wall = lp_now() - wall0;
  lp_jsonl_free(in.r);
  in.r = NULL;
  eval_pool_free(pool);
  pool = NULL;
  if (dout.f && (rc != EXIT_OK ? (cli_out_abort(&dout), 0) : cli_out_commit(&dout, "eval")))
    rc = EXIT_FAIL;
  if (eval_report_tasks(R) == 0) {
    if (o.split)
      cli_error("eval", "%s: no usable task of split \"%s\"", o.tasks, o.split);
    else
      cli_error("eval", "%s: no usable tasks", o.tasks);
    rc = EXIT_FAIL;
    goto done;
  }
  eval_summary_info info = {
      .split = o.split, .model = !L.m ? "none" : lp_model_kind_name(lp_model_config(L.m)->kind),
      .max_spec_len = (int)cli_max_spec_len(&L), .json = o.json, .wall = wall};
  eval_report_print(R, &info);
  if (rc == EXIT_OK && eval_report_bad(R)) rc = EXIT_FAIL;
done:
  eval_report_free(R);
  lp_jsonl_free(in.r);
  eval_pool_free(pool);
  cli_unload(&L);
  cli_opts_free(&o);
  return rc;
}

/* eval's report (cli/eval.h): the results of the tasks taken in line order,
 * the --details lines, and the summary by (B, L): accuracy or BLEU, beam
 * diversity, speed, generalisation. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"

/* Accumulators of one (beam, latent beam) run. */
typedef struct run_acc {
  double secs;
  /* exact */
  long solved, by_size[EVAL_MAX_SIZE + 1];
  /* bleu */
  double best_sum;          /* sum over tasks of the best sentence BLEU in the beam */
  lp_bleu_stats top1;       /* corpus statistics of the top-1 programs */
  long wf_top, wf_tasks;    /* tasks whose top program is well formed / could be told */
  /* diversity */
  double div_sum[EVAL_DIV_N];
  long div_tasks;           /* tasks whose beam has at least one token */
  /* exact: generalisation, stages, time per task */
  long held_tasks, generalised, timed_out, by_stage[4];
  double *times;            /* seconds per task */
  size_t n_times, cap_times;
} run_acc;

struct eval_report {
  const eval_settings *S;
  FILE *details;
  run_acc *acc;             /* [eval_n_runs] */
  long size_count[EVAL_MAX_SIZE + 1];
  long n_tasks, n_bad, n_trunc;
};

eval_report *eval_report_new(const eval_settings *S, FILE *details) {
  eval_report *R = calloc(1, sizeof *R);
  if (R) R->acc = calloc((size_t)eval_n_runs(S), sizeof *R->acc);
  if (!R || !R->acc) {
    cli_error("eval", "out of memory");
    free(R);
    return NULL;
  }
  R->S = S;
  R->details = details;
  return R;
}

void eval_report_free(eval_report *R) {
  if (!R) return;
  for (int ri = 0; ri < eval_n_runs(R->S); ri++) free(R->acc[ri].times);
  free(R->acc);
  free(R);
}

long eval_report_tasks(const eval_report *R) { return R->n_tasks; }
long eval_report_bad(const eval_report *R) { return R->n_bad; }

/* ---------- taking a job ---------- */

static void bleu_stats_sum(lp_bleu_stats *a, const lp_bleu_stats *b) {
  for (int n = 0; n < LP_BLEU_MAX_N; n++) {
    a->match[n] += b->match[n];
    a->total[n] += b->total[n];
  }
  a->hyp_len += b->hyp_len;
  a->ref_len += b->ref_len;
  a->n_sentences += b->n_sentences;
}

/* Adds run R of job J to a. 0, or -1 when out of memory. */
static int add_run(const eval_settings *S, run_acc *a, const eval_job *J, const run_res *R) {
  a->secs += R->secs;
  if (R->ntok > 0) {
    for (int n = 0; n < EVAL_DIV_N; n++) a->div_sum[n] += R->div[n];
    a->div_tasks++;
  }
  if (S->metric != CLI_METRIC_EXACT) {
    bleu_stats_sum(&a->top1, &R->top_stats);
    a->best_sum += R->best;
    if (R->top_wf >= 0) a->wf_tasks++, a->wf_top += R->top_wf;
    return 0;
  }
  if (R->first >= 0) {
    a->solved++;
    a->by_size[J->size]++;
    a->by_stage[R->stage & 3]++;
  }
  if (J->t.n_held) {
    a->held_tasks++;
    a->generalised += R->generalised;
  }
  a->timed_out += R->timed_out;
  if (a->n_times == a->cap_times) {
    size_t cap = a->cap_times ? 2 * a->cap_times : 256;
    double *tt = realloc(a->times, cap * sizeof *tt);
    if (!tt) return -1;
    a->times = tt, a->cap_times = cap;
  }
  a->times[a->n_times++] = R->secs;
  return 0;
}

/* The --details line of run (bi, li) of job J. */
static void details_line(const eval_settings *S, FILE *f, const eval_job *J, int bi, int li,
                         const run_res *R) {
  json_t *o = json_pack("{s:I, s:i, s:i, s:i, s:I, s:[f,f,f,f]}", "line", (json_int_t)J->lineno,
                        "beam", S->beams[bi], "latent_beam", S->lbeams[li], "found", R->found,
                        "tokens", (json_int_t)R->ntok, "distinct", R->div[0], R->div[1],
                        R->div[2], R->div[3]);
  if (S->is_lp)
    json_object_set_new(o, "latent_beam_used",
                        json_integer(eval_latent_used(S->beams[bi], S->lbeams[li])));
  if (S->metric == CLI_METRIC_EXACT) {
    json_object_set_new(o, "size", json_integer(J->size));
    json_object_set_new(o, "solved", json_boolean(R->first >= 0));
    json_object_set_new(o, "rank", json_integer(R->first + 1));
    json_object_set_new(o, "stage", json_string(lp_stage_name(R->stage)));
    json_object_set_new(o, "seconds", json_real(R->secs));
    if (R->timed_out) json_object_set_new(o, "timed_out", json_true());
    if (J->t.n_held) json_object_set_new(o, "generalised", json_boolean(R->generalised));
  } else {
    json_object_set_new(o, "bleu", json_real(R->best));
    json_object_set_new(o, "rank", json_integer(R->best_rank));
    json_object_set_new(o, "top1_bleu", json_real(R->top1));
    json_object_set_new(o, "top1", R->found ? cli_json_text(R->top, R->top_len) : json_null());
    if (J->t.truncated) json_object_set_new(o, "spec_truncated", json_true());
  }
  json_dumpf(o, f, JSON_COMPACT);
  fputc('\n', f);
  json_decref(o);
}

int eval_report_job(eval_report *R, const eval_job *J) {
  const eval_settings *S = R->S;
  if (J->bad) {
    cli_error("eval", "%s", J->msg ? J->msg : "out of memory");
    R->n_bad++;
    return EXIT_OK;
  }
  R->n_trunc += J->t.truncated ? 1 : 0;
  if (S->metric == CLI_METRIC_EXACT) R->size_count[J->size]++;
  for (int bi = 0; bi < S->n_beams; bi++)
    for (int li = 0; li < S->n_lbeams; li++) {
      int ri = bi * S->n_lbeams + li;
      if (S->dup[ri]) continue;
      if (ri == J->failed_run) {
        cli_error("eval", "%s", J->msg ? J->msg : "out of memory");
        return EXIT_FAIL;
      }
      if (add_run(S, &R->acc[ri], J, &J->runs[ri])) {
        cli_error("eval", "out of memory");
        return EXIT_FAIL;
      }
      if (R->details) details_line(S, R->details, J, bi, li, &J->runs[ri]);
    }
  R->n_tasks++;
  return EXIT_OK;
}

/* ---------- the summary ---------- */

static int dbl_cmp(const void *pa, const void *pb) {
  const double a = *(const double *)pa, b = *(const double *)pb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/* The q-quantile of sorted v[0..n) (nearest rank). */
static double pct(const double *v, size_t n, double q) {
  size_t k = (size_t)ceil(q * (double)n);
  if (k < 1) k = 1;
  return v[k - 1];
}

/* Median, p90 and max seconds per task of a (its times sorted). */
static void time_quantiles(const run_acc *a, double q[3]) {
  q[0] = q[1] = q[2] = 0;
  if (!a->n_times) return;
  q[0] = pct(a->times, a->n_times, 0.5);
  q[1] = pct(a->times, a->n_times, 0.9);
  q[2] = a->times[a->n_times - 1];
}

static void print_header(const eval_report *R, const eval_summary_info *I) {
  const eval_settings *S = R->S;
  printf("%ld tasks from %s%s%s%s (%ld bad lines), %s model, metric %s\n", R->n_tasks, S->tasks,
         I->split ? " (split " : "", I->split ? I->split : "", I->split ? ")" : "", R->n_bad,
         strcmp(I->model, "none") ? I->model : "no",
         S->metric == CLI_METRIC_EXACT
             ? "exact (a task is solved when a program found is consistent)"
             : "bleu (sentence BLEU-4 of the best of the B programs; code tokens, smoothing "
               "method1)");
  if (S->metric == CLI_METRIC_BLEU && R->n_trunc)
    printf("%ld docstring%s cut to max_spec_len %d tokens\n", R->n_trunc,
           R->n_trunc == 1 ? "" : "s", I->max_spec_len);
  if (S->metric == CLI_METRIC_EXACT)
    printf("\n     B      L  accuracy               tasks/s  distinct-1  distinct-2  distinct-3  "
           "distinct-4\n");
  else
    printf("\n     B      L  BLEU best-of-B  corpus BLEU top-1    tasks/s  distinct-1  distinct-2  "
           "distinct-3  distinct-4\n");
}

/* The exact metric's figures of run a into run (JSON). */
static void exact_json(const eval_report *R, run_acc *a, json_t *run) {
  double accu = (double)a->solved / (double)R->n_tasks;
  json_object_set_new(run, "accuracy", json_real(accu));
  json_object_set_new(run, "solved", json_integer(a->solved));
  json_t *bys = json_object();
  char key[16];
  for (int s = 0; s <= EVAL_MAX_SIZE; s++)
    if (R->size_count[s]) {
      snprintf(key, sizeof key, "%d", s);
      json_object_set_new(bys, key, json_pack("{s:I, s:f}", "tasks", (json_int_t)R->size_count[s],
                                              "accuracy",
                                              (double)a->by_size[s] / (double)R->size_count[s]));
    }
  json_object_set_new(run, "by_size", bys);
  if (a->n_times) qsort(a->times, a->n_times, sizeof *a->times, dbl_cmp);
  double q[3];
  time_quantiles(a, q);
  json_object_set_new(run, "median_seconds", json_real(q[0]));
  json_object_set_new(run, "p90_seconds", json_real(q[1]));
  json_object_set_new(run, "max_seconds", json_real(q[2]));
  json_object_set_new(run, "timed_out", json_integer(a->timed_out));
  json_object_set_new(run, "held_tasks", json_integer(a->held_tasks));
  json_object_set_new(run, "generalised", json_integer(a->generalised));
  json_object_set_new(run, "generalisation",
                      a->held_tasks ? json_real((double)a->generalised / (double)a->held_tasks)
                                    : json_null());
  json_object_set_new(run, "found_by",
                      json_pack("{s:I, s:I, s:I}", "beam", (json_int_t)a->by_stage[LP_STAGE_BEAM],
                                "guided", (json_int_t)a->by_stage[LP_STAGE_GUIDED], "solver",
                                (json_int_t)a->by_stage[LP_STAGE_SOLVER]));
}

/* Run (bi, li): its JSON object, and its table row (text output). */
static json_t *run_summary(const eval_report *R, int bi, int li, int text) {
  const eval_settings *S = R->S;
  run_acc *a = &R->acc[bi * S->n_lbeams + li];
  const int beam = S->beams[bi], lbeam = S->lbeams[li];
  double tps = a->secs > 0 ? R->n_tasks / a->secs : 0.0;
  double dv[EVAL_DIV_N];
  for (int n = 0; n < EVAL_DIV_N; n++)
    dv[n] = a->div_tasks ? a->div_sum[n] / (double)a->div_tasks : 0.0;
  json_t *run = json_pack("{s:i, s:i, s:f}", "beam", beam, "latent_beam", lbeam,
                          "tasks_per_second", tps);
  json_object_set_new(run, "latent_beam_used",
                      S->is_lp ? json_integer(eval_latent_used(beam, lbeam)) : json_null());
  json_object_set_new(run, "diversity",
                      json_pack("{s:f, s:f, s:f, s:f, s:I}", "distinct_1", dv[0], "distinct_2",
                                dv[1], "distinct_3", dv[2], "distinct_4", dv[3], "tasks",
                                (json_int_t)a->div_tasks));
  char lcol[16];
  if (S->is_lp)
    snprintf(lcol, sizeof lcol, "%d", eval_latent_used(beam, lbeam));
  else
    snprintf(lcol, sizeof lcol, "-");
  if (S->metric == CLI_METRIC_EXACT) {
    exact_json(R, a, run);
    if (text) {
      char accs[64], bcol[16];
      snprintf(accs, sizeof accs, "%6.2f%% (%ld/%ld)",
               100 * (double)a->solved / (double)R->n_tasks, a->solved, R->n_tasks);
      snprintf(bcol, sizeof bcol, beam ? "%d" : "-", beam);
      printf("%6s %6s  %-19s %10.2f  %10.3f  %10.3f  %10.3f  %10.3f\n", bcol, lcol, accs, tps,
             dv[0], dv[1], dv[2], dv[3]);
    }
  } else {
    double mean = a->best_sum / (double)R->n_tasks;
    lp_bleu_result br;
    double corpus = lp_bleu_score(&a->top1, LP_BLEU_SMOOTH_METHOD1, &br);
    json_object_set_new(run, "bleu", json_real(mean));
    json_object_set_new(run, "corpus_bleu_top1", json_real(corpus));
    json_object_set_new(run, "top1_wellformed",
                        a->wf_tasks ? json_real((double)a->wf_top / (double)a->wf_tasks)
                                    : json_null());
    if (text)
      printf("%6d %6s  %14.2f  %17.2f  %9.2f  %10.3f  %10.3f  %10.3f  %10.3f\n", beam, lcol,
             100 * mean, 100 * corpus, tps, dv[0], dv[1], dv[2], dv[3]);
  }
  return run;
}

/* "  B 10 L 3" (or "  solver" when bi has no beam and solver is set). */
static void print_run_name(const eval_settings *S, int bi, int li, int solver) {
  if (S->beams[bi] || !solver)
    printf("  B %d", S->beams[bi]);
  else
    printf("  solver");
  if (S->is_lp) printf(" L %d", eval_latent_used(S->beams[bi], S->lbeams[li]));
}

/* exact, text: generalisation, time and stages; accuracy by program size. */
static void print_exact_details(const eval_report *R) {
  const eval_settings *S = R->S;
  printf("\nsearch %s, time limit %g s per task; generalisation: the top-ranked consistent\n"
         "program is right on every held-out example; seconds per task:\n",
         lp_search_mode_name(S->mode), S->tlimit);
  for (int ri = 0; ri < eval_n_runs(S); ri++) {
    if (S->dup[ri]) continue;
    const run_acc *a = &R->acc[ri];
    char gen[64];
    if (a->held_tasks)
      snprintf(gen, sizeof gen, "%.2f%% (%ld/%ld)",
               100.0 * (double)a->generalised / (double)a->held_tasks, a->generalised,
               a->held_tasks);
    else
      snprintf(gen, sizeof gen, "- (no held-out examples)");
    double q[3];
    time_quantiles(a, q); /* sorted by exact_json */
    print_run_name(S, ri / S->n_lbeams, ri % S->n_lbeams, 1);
    printf(": generalisation %s, median %.3f, p90 %.3f, max %.3f s, timed out %ld; found by "
           "beam %ld, guided %ld, solver %ld\n", gen, q[0], q[1], q[2], a->timed_out,
           a->by_stage[LP_STAGE_BEAM], a->by_stage[LP_STAGE_GUIDED],
           a->by_stage[LP_STAGE_SOLVER]);
  }
  printf("\naccuracy by program size (the domain's unit):\n");
  for (int ri = 0; ri < eval_n_runs(S); ri++) {
    if (S->dup[ri]) continue;
    const run_acc *a = &R->acc[ri];
    print_run_name(S, ri / S->n_lbeams, ri % S->n_lbeams, 0);
    printf(":");
    for (int s = 0; s <= EVAL_MAX_SIZE; s++)
      if (R->size_count[s])
        printf(" %d:%.1f%%", s, 100.0 * a->by_size[s] / (double)R->size_count[s]);
    printf("\n");
  }
}

void eval_report_print(eval_report *R, const eval_summary_info *I) {
  const eval_settings *S = R->S;
  json_t *js = json_object();
  json_object_set_new(js, "metric",
                      json_string(S->metric == CLI_METRIC_EXACT ? "exact" : "bleu"));
  json_object_set_new(js, "model", json_string(I->model));
  json_object_set_new(js, "tasks", json_integer(R->n_tasks));
  json_object_set_new(js, "bad_lines", json_integer(R->n_bad));
  if (I->split) json_object_set_new(js, "split", json_string(I->split));
  if (S->metric == CLI_METRIC_BLEU) {
    json_object_set_new(js, "truncated_specs", json_integer(R->n_trunc));
    json_object_set_new(js, "tokenize", json_string("code"));
    json_object_set_new(js, "smoothing", json_string("method1"));
  }
  if (!I->json) print_header(R, I);
  json_t *runs = json_array();
  for (int ri = 0; ri < eval_n_runs(S); ri++)
    if (!S->dup[ri])
      json_array_append_new(runs, run_summary(R, ri / S->n_lbeams, ri % S->n_lbeams, !I->json));
  if (!I->json && S->metric == CLI_METRIC_EXACT) print_exact_details(R);
  if (!I->json)
    printf("\nB: beam size; L: latent beam size (LP models; '-': RobustFill has none);\n"
           "distinct-n: distinct n-grams of program tokens in the B programs / their total\n"
           "tokens, the mean over the tasks whose beam has any token; tasks/s: tasks per\n"
           "second of search and scoring at that (B, L) for one worker (the time summed\n"
           "over the workers); wall time %.2f s\n", I->wall);
  json_object_set_new(js, "runs", runs);
  if (S->metric == CLI_METRIC_EXACT) {
    json_object_set_new(js, "search", json_string(lp_search_mode_name(S->mode)));
    json_object_set_new(js, "time_limit", json_real(S->tlimit));
    json_object_set_new(js, "rank", json_string(lp_rank_name(S->rank)));
  }
  json_object_set_new(js, "len_alpha", json_real(S->len_alpha));
  json_object_set_new(js, "seconds", json_real(I->wall));
  if (I->json) {
    json_dumpf(js, stdout, JSON_COMPACT);
    putchar('\n');
  }
  json_decref(js);
}

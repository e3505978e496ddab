/* The option table of every verb (cli/opts.h): parsing and --help. */
#define _GNU_SOURCE
#include "opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lpsynth/engine.h"
#include "lpsynth/metrics.h"
#include "lpsynth/synth.h"

typedef struct cli_opt cli_opt;
/* Parses arg into the options; as is the spelling named in messages. 0, or
 * -1 after printing why. */
typedef int (*cli_set_fn)(const cli_opt *e, const char *as, const char *arg, cli_opts *o);

typedef struct cli_note {
  unsigned verbs;
  const char *text; /* appended to the help of those verbs */
} cli_note;

struct cli_opt {
  int id;               /* enum cli_opt_id: its index in the table */
  const char *name;     /* the canonical spelling (messages name it) */
  const char *also;     /* another spelling of the same option ("-o"), or NULL */
  const char *alias;    /* a former spelling kept working (named in messages when used) */
  const char *arg;      /* the argument's name in help; NULL: a flag */
  unsigned verbs;       /* CLI verbs that take it */
  unsigned required;    /* of those, the verbs that require it */
  cli_set_fn set;
  size_t off;           /* its field in cli_opts */
  int64_t lo, hi;       /* integers: the accepted range */
  const char *def;      /* the default, parsed by set before the command line; NULL: none */
  int repeat;           /* may be given more than once, each adding a value */
  const char *help;
  cli_note notes[6];
};

#define V(x) (1u << CLI_##x)
#define F(f) offsetof(cli_opts, f)
#define ALL_DOMAIN_VERBS                                                                        \
  (V(DEMO) | V(RUN) | V(EXEC) | V(GEN) | V(CHECK) | V(BENCH) | V(CORPUS) | V(TOKENIZER_TRAIN) | \
   V(TRAIN) | V(SYNTH) | V(EVAL) | V(CKPT_INFO) | V(BENCH_TRAIN))
#define FIELD(o, e, type) ((type *)(void *)((char *)(o) + (e)->off))

/* ---------- parse functions ---------- */

static int set_str(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  (void)as;
  *FIELD(o, e, const char *) = arg;
  return 0;
}

static int set_flag(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  (void)as, (void)arg;
  *FIELD(o, e, int) = 1;
  return 0;
}

static int set_i64(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  return cli_parse_i64(o->verb, as, arg, e->lo, e->hi, FIELD(o, e, int64_t));
}

static int set_u64(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  return cli_parse_u64(o->verb, as, arg, FIELD(o, e, uint64_t));
}

static int set_seconds(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  return cli_parse_seconds(o->verb, as, arg, FIELD(o, e, double));
}

/* The beam's length normalisation exponent, a number in [0, 10]. */
static int set_alpha(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  char *end;
  errno = 0;
  const double v = strtod(arg, &end);
  if (errno || end == arg || *end || !(v >= 0.0 && v <= 10.0)) {
    cli_error(o->verb, "%s expects a number in 0..10, got \"%s\"", as, arg);
    return -1;
  }
  *FIELD(o, e, double) = v;
  return 0;
}

/* A program size bound; the spelling given is kept for messages (--min-expr). */
static int set_size(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  if (set_i64(e, as, arg, o)) return -1;
  if (e->id == CLI_O_MIN_SIZE)
    o->min_size_as = as;
  else
    o->max_size_as = as;
  return 0;
}

/* "3600", "90s", "45m", "1.5h" -> seconds (train --time-limit). */
static int set_duration(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  char *end;
  double v = strtod(arg, &end), mult = -1;
  if (end != arg && v > 0 && v < 1e300) {
    if (!strcmp(end, "") || !strcmp(end, "s")) mult = 1;
    if (!strcmp(end, "m")) mult = 60;
    if (!strcmp(end, "h")) mult = 3600;
  }
  if (mult < 0) {
    cli_error(o->verb, "%s expects a positive duration (3600, 90s, 45m, 1.5h), got \"%s\"", as,
              arg);
    return -1;
  }
  *FIELD(o, e, double) = v * mult;
  return 0;
}

/* Comma-separated integers 1..100000 ("1,10,100"). */
static int set_list(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  cli_list *l = FIELD(o, e, cli_list);
  l->n = 0;
  for (const char *p = arg; *p;) {
    char *end;
    long x = strtol(p, &end, 10);
    if (end == p || x < 1 || x > 100000 || (*end && *end != ',') || l->n >= CLI_MAX_LIST) {
      cli_error(o->verb, "%s expects a comma-separated list of integers 1..100000, got \"%s\"",
                as, arg);
      return -1;
    }
    l->v[l->n++] = (int)x;
    p = *end ? end + 1 : end;
  }
  if (l->n == 0) {
    cli_error(o->verb, "%s is empty", as);
    return -1;
  }
  return 0;
}

static int set_split(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  if (!*arg) {
    cli_error(o->verb, "%s expects a split name (train, valid, test)", as);
    return -1;
  }
  return set_str(e, as, arg, o);
}

static int set_search(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  if ((*FIELD(o, e, int) = lp_search_mode_parse(arg)) >= 0) return 0;
  cli_error(o->verb, "%s must be beam, guided, solver or auto, got \"%s\"", as, arg);
  return -1;
}

static int set_rank(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  if ((*FIELD(o, e, int) = lp_rank_parse(arg)) >= 0) return 0;
  cli_error(o->verb, "%s must be hybrid, model or prior, got \"%s\"", as, arg);
  return -1;
}

static int set_metric(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  int *m = FIELD(o, e, int);
  if (!strcmp(arg, "exact"))
    *m = CLI_METRIC_EXACT;
  else if (!strcmp(arg, "bleu"))
    *m = CLI_METRIC_BLEU;
  else {
    cli_error(o->verb, "%s must be exact or bleu, got \"%s\"", as, arg);
    return -1;
  }
  return 0;
}

/* *field = va for arg a, vb for arg b; else says which are taken. */
static int set_one_of(const cli_opt *e, const char *as, const char *arg, cli_opts *o,
                      const char *a, int va, const char *b, int vb) {
  int *p = FIELD(o, e, int);
  if (!strcmp(arg, a))
    *p = va;
  else if (!strcmp(arg, b))
    *p = vb;
  else {
    cli_error(o->verb, "%s must be %s or %s (got \"%s\")", as, a, b, arg);
    return -1;
  }
  return 0;
}

static int set_precision(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  return set_one_of(e, as, arg, o, "bf16", LP_PREC_BF16, "fp32", LP_PREC_FP32);
}

/* ckpt strip --half fp16|bf16 */
static int set_half(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  return set_one_of(e, as, arg, o, "fp16", LP_CKPT_FP16, "bf16", LP_CKPT_BF16);
}

static int set_smoothing(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  lp_bleu_smoothing sm;
  if (lp_bleu_smoothing_parse(arg, &sm)) {
    cli_error(o->verb, "%s is method1 or none, not \"%s\"", as, arg);
    return -1;
  }
  *FIELD(o, e, int) = (int)sm;
  return 0;
}

static int set_tokenize(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  int *t = FIELD(o, e, int);
  if (!strcmp(arg, "code"))
    *t = LP_BLEU_TOK_CODE;
  else if (!strcmp(arg, "whitespace"))
    *t = LP_BLEU_TOK_WHITESPACE;
  else {
    cli_error(o->verb, "%s is code or whitespace, not \"%s\"", as, arg);
    return -1;
  }
  return 0;
}

static int push_text(cli_opts *o, lp_strs *v, const char *s, size_t n) {
  if (lp_strs_push(v, s, n) == 0) return 0;
  cli_error(o->verb, "out of memory");
  return -1;
}

/* synth --io 'IN => OUT' */
static int set_io(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  (void)e;
  const char *sep = strstr(arg, " => ");
  if (!sep) {
    cli_error(o->verb, "%s expects 'INPUT => OUTPUT', got \"%s\"", as, arg);
    return -1;
  }
  if (push_text(o, &o->io_in, arg, (size_t)(sep - arg))) return -1;
  return push_text(o, &o->io_out, sep + 4, strlen(sep + 4));
}

/* synth --spec TEXT */
static int set_spec(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  (void)e, (void)as;
  return push_text(o, &o->io_in, arg, strlen(arg));
}

/* run --input S (repeatable) */
static int set_input(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  (void)e, (void)as;
  const char **v = realloc(o->inputs, (o->n_inputs + 1) * sizeof *v);
  if (!v) {
    cli_error(o->verb, "out of memory");
    return -1;
  }
  o->inputs = v;
  o->inputs[o->n_inputs++] = arg;
  return 0;
}

/* score --refs FILE (repeatable) */
static int set_ref(const cli_opt *e, const char *as, const char *arg, cli_opts *o) {
  (void)e;
  if (o->n_refs == CLI_MAX_REFS) {
    cli_error(o->verb, "at most %d %s files", CLI_MAX_REFS, as);
    return -1;
  }
  o->refs[o->n_refs++] = arg;
  return 0;
}

/* ---------- the table ---------- */

#define RESOURCE_NOTE                                                                         \
  "(default: the domain resource beside the checkpoint - CKPT.res, or CKPT.spm as runs "      \
  "before it wrote it - when it exists, as `lpsynth train` writes it)"

static const cli_opt table[CLI_O_N] = {
    {CLI_O_DOMAIN, "--domain", NULL, NULL, "NAME|PATH.so", ALL_DOMAIN_VERBS,
     ALL_DOMAIN_VERBS & ~(V(DEMO) | V(CKPT_INFO)), set_str, F(domain), 0, 0, NULL, 0,
     "the domain plugin: a name (`lpsynth domains` lists them) or a plugin file",
     {{V(DEMO), "(default string)"},
      {V(CKPT_INFO), "(default: the one the checkpoint names, found as `--domain NAME` finds it)"},
      {V(CORPUS), "(it needs the extract capability)"},
      {V(TOKENIZER_TRAIN), "(it needs the tokenizer capability)"}}},
    {CLI_O_DOMAIN_OPTIONS, "--domain-options", NULL, NULL, "STR", ALL_DOMAIN_VERBS, 0, set_str,
     F(domain_options), 0, 0, NULL, 0, "options passed to the domain's create()",
     {{V(TRAIN), "; when STR is a file (python: the tokenizer model), it is copied atomically "
                 "to CKPT.res beside the checkpoint (the domain resource), where synth, eval, "
                 "ckpt info and --resume find it when no --domain-options is given"},
      {V(SYNTH) | V(EVAL) | V(CKPT_INFO), RESOURCE_NOTE}}},
    {CLI_O_CKPT, "--model", NULL, NULL, "CKPT", V(SYNTH) | V(EVAL) | V(DEMO), 0, set_str,
     F(model), 0, 0, NULL, 0, "the trained model (a checkpoint of `lpsynth train`)",
     {{V(SYNTH) | V(EVAL), "; optional where the domain has an exact solver, which then runs "
                           "alone"},
      {V(DEMO), "to rank with (\"none\": the solver and its prior; default: the shipped "
                "models/rf-string/model.ckpt when found beside the build or install)"}}},
    {CLI_O_MODEL_KIND, "--model", NULL, NULL, "KIND", V(TRAIN) | V(BENCH_TRAIN), 0,
     set_str, F(model), 0, 0, NULL, 0,
     "the model: robustfill, robustfill-lstm, lp, latent-ae or latent-vae",
     {{V(TRAIN), "(required unless --config or --resume says it)"},
      {V(BENCH_TRAIN), "whose defaults are used when no --config"}}},
    {CLI_O_CONFIG, "--config", NULL, NULL, "FILE", V(TRAIN) | V(BENCH_TRAIN), 0, set_str,
     F(config), 0, 0, NULL, 0,
     "model config (`key = value`, models/CONFIG.md); default: the model's defaults",
     {{V(TRAIN), ". With --resume it must equal the checkpoint's config"}}},
    {CLI_O_DATA, "--data", NULL, NULL, "FILE.jsonl", V(TRAIN) | V(BENCH_TRAIN), 0, set_str,
     F(data), 0, 0, NULL, 0, "train on these tasks (default: generate them)", {{0}}},
    {CLI_O_SPLIT, "--split", NULL, NULL, "NAME", V(TRAIN) | V(EVAL), 0, set_split, F(split), 0,
     0, NULL, 0, "only the lines whose \"split\" is NAME (e.g. train or test; a line without "
                 "\"split\" is an error)",
     {{V(TRAIN), "; with --data. Resuming keeps the checkpoint's split"}}},
    {CLI_O_TEXT_SPLIT, "--split", NULL, NULL, "NAME|all", V(TOKENIZER_TRAIN), 0, set_str,
     F(split), 0, 0, "train", 0, "train on the lines of this split only (lines without "
                                 "\"split\" too); all: every line", {{0}}},
    {CLI_O_TASKS, "--tasks", NULL, NULL, "FILE.jsonl", V(EVAL) | V(BENCH), V(EVAL), set_str,
     F(tasks), 0, 0, NULL, 0, "the tasks, one JSON line each",
     {{V(BENCH), "(interp: the programs and their inputs)"}}},
    {CLI_O_EXAMPLES_FILE, "--examples", NULL, NULL, "FILE.json", V(SYNTH), 0, set_str,
     F(examples_file), 0, 0, NULL, 0,
     "the task: the first JSON line of FILE, read as `train` and `eval` read a task line "
     "(\"inputs\"/\"outputs\", or a \"docstring\")", {{0}}},
    {CLI_O_IO, "--io", NULL, NULL, "'IN => OUT'", V(SYNTH), 0, set_io, 0, 0, 0, NULL, 1,
     "one example", {{0}}},
    {CLI_O_SPEC, "--spec", NULL, NULL, "TEXT", V(SYNTH), 0, set_spec, 0, 0, 0, NULL, 1,
     "a text specification (docstring domains such as python): a spec longer than the model's "
     "max_spec_len tokens is cut, with a warning", {{0}}},
    {CLI_O_PROGRAM, "--program", NULL, NULL, "TEXT", V(RUN), V(RUN), set_str, F(program), 0, 0,
     NULL, 0, "the program in the domain's canonical text", {{0}}},
    {CLI_O_INPUT, "--input", NULL, NULL, "S", V(RUN), V(RUN), set_input, 0, 0, 0, NULL, 1,
     "an input", {{0}}},
    {CLI_O_STEPS, "--steps", NULL, NULL, "N", V(TRAIN), V(TRAIN), set_i64, F(steps), 1,
     (int64_t)1 << 50, NULL, 0, "total steps to reach", {{0}}},
    {CLI_O_CKPT_OUT, "--out", NULL, NULL, "CKPT", V(TRAIN), V(TRAIN), set_str, F(out), 0, 0, NULL,
     0, "checkpoint file to write", {{0}}},
    {CLI_O_RESUME, "--resume", NULL, NULL, "CKPT", V(TRAIN), 0, set_str, F(resume), 0, 0, NULL, 0,
     "continue from this checkpoint (may equal --out)", {{0}}},
    {CLI_O_OUT, "--out", "-o", NULL, "FILE",
     V(EXEC) | V(CHECK) | V(GEN) | V(CORPUS) | V(TOKENIZER_TRAIN), V(CORPUS) | V(TOKENIZER_TRAIN),
     set_str, F(out), 0, 0, NULL, 0, "write to FILE atomically",
     {{V(EXEC) | V(CHECK) | V(GEN), "(default: stdout)"},
      {V(CORPUS), "(- = stdout)"},
      {V(TOKENIZER_TRAIN), ": the tokenizer model"}}},
    {CLI_O_NUM, "-n", "--num", NULL, "N", V(GEN) | V(BENCH), V(GEN), set_u64, F(num), 0, 0,
     "50000", 0, "number of tasks", {{0}}},
    {CLI_O_SEED, "--seed", "-s", NULL, "S", V(GEN) | V(BENCH) | V(TRAIN) | V(BENCH_TRAIN), V(GEN),
     set_u64, F(seed), 0, 0, "1", 0, "seed (an unsigned 64-bit integer)",
     {{V(GEN), ": the base seed of the tasks"},
      {V(TRAIN), ": parameter init and dropout"},
      {V(BENCH_TRAIN), ": parameter init, dropout and tasks"}}},
    {CLI_O_DATA_SEED, "--data-seed", NULL, NULL, "S", V(TRAIN), 0, set_u64, F(data_seed), 0, 0,
     NULL, 0, "base seed of generated tasks (default: derived from --seed; keep it apart from "
              "the seeds of evaluation sets)", {{0}}},
    {CLI_O_MIN_SIZE, "--min-size", NULL, "--min-expr", "A", V(GEN) | V(TRAIN), 0, set_size,
     F(min_size), 1, 1000, NULL, 0,
     "smallest program the generator makes, in the domain's unit (lp_gen_opts.min_size; "
     "string: expressions, default 1)", {{0}}},
    {CLI_O_MAX_SIZE, "--max-size", NULL, "--max-expr", "B", V(GEN) | V(TRAIN), 0, set_size,
     F(max_size), 1, 1000, NULL, 0,
     "largest program the generator makes (lp_gen_opts.max_size; string: expressions, default "
     "10)", {{0}}},
    {CLI_O_N_EXAMPLES, "--examples", NULL, NULL, "E", V(GEN) | V(TRAIN), 0, set_i64,
     F(n_examples), 1, 1000, NULL, 0, "examples per generated task (string default 4)", {{0}}},
    {CLI_O_SEARCH, "--search", NULL, NULL, "MODE", V(SYNTH) | V(EVAL), 0, set_search, F(search),
     0, 0, "auto", 0, "auto, guided, beam or solver",
     {{V(EVAL), "(see synth --help; --metric exact only)"}}},
    {CLI_O_TIME_LIMIT, "--time-limit", NULL, NULL, "S", V(SYNTH) | V(EVAL), 0, set_seconds,
     F(time_limit), 0, 0, "10", 0, "seconds",
     {{V(SYNTH), "for the whole search (0: none)"},
      {V(EVAL), "per task and (B, L) run (0: none)"}}},
    {CLI_O_DURATION, "--time-limit", NULL, NULL, "T", V(TRAIN), 0, set_duration, F(duration), 0,
     0, NULL, 0, "stop cleanly (with a checkpoint) after training for T (seconds, or with a "
                 "suffix: 90s, 45m, 1.5h)", {{0}}},
    {CLI_O_BEAM, "--beam", NULL, NULL, "B", V(SYNTH), 0, set_i64, F(beam), 1, 4096, "10", 0,
     "beam size, 1..4096", {{0}}},
    {CLI_O_BEAMS, "--beam", NULL, NULL, "LIST", V(EVAL), 0, set_list, F(beams), 0, 0, "1,10,100",
     0, "beam sizes", {{0}}},
    {CLI_O_LATENT_BEAM, "--latent-beam", NULL, NULL, "L", V(SYNTH), 0, set_i64, F(latent_beam), 1,
     4096, NULL, 0, "LP: latent beams (default floor(sqrt(B)))", {{0}}},
    {CLI_O_LATENT_BEAMS, "--latent-beam", NULL, NULL, "LIST", V(EVAL), 0, set_list,
     F(latent_beams), 0, 0, NULL, 0, "LP: latent beam sizes to sweep (default floor(sqrt(B))); "
                                     "ignored, with a warning, for RobustFill models", {{0}}},
    {CLI_O_MAX_LEN, "--max-len", NULL, NULL, "N", V(SYNTH), 0, set_i64, F(max_len), 1, 65536,
     NULL, 0, "longest program searched, in tokens incl. EOS (default: the model's "
              "max_program_len)", {{0}}},
    {CLI_O_MAX_LEN_EVAL, "--max-len", NULL, NULL, "N", V(EVAL), 0, set_i64, F(max_len), 1, 100000,
     NULL, 0, "longest program searched, in tokens incl. EOS (default: the model's "
              "max_program_len; more than it takes fails the search)", {{0}}},
    {CLI_O_LEN_ALPHA, "--len-alpha", NULL, NULL, "A", V(SYNTH) | V(EVAL), 0, set_alpha,
     F(len_alpha), 0, 0, "0", 0,
     "length normalisation of the beam: finished programs (and, for LP models, latent "
     "sequences) are ranked by log-probability / length^A (0: none; the paper: 0.6)", {{0}}},
    {CLI_O_KEEP_ORDER, "--keep-order", NULL, NULL, NULL, V(SYNTH) | V(EVAL), 0, set_flag,
     F(keep_order), 0, 0, NULL, 0,
     "keep the beam's order; without it, for a domain that cannot run programs but can tell "
     "well-formed ones (python: the text parses), well-formed programs are ranked first",
     {{0}}},
    {CLI_O_CANDIDATES, "--candidates", NULL, NULL, "N", V(SYNTH) | V(EVAL), 0, set_i64,
     F(candidates), 1, 100000, "100", 0, "solver: programs enumerated and ranked", {{0}}},
    {CLI_O_RANK, "--rank", NULL, NULL, "R", V(SYNTH) | V(EVAL), 0, set_rank, F(rank), 0, 0,
     "hybrid", 0, "with a model, the solver's programs are ranked by: hybrid (the domain's "
                  "prior, ties broken by the model), model (its log-probability alone) or prior",
     {{0}}},
    {CLI_O_SHOW, "--show", NULL, NULL, "N", V(SYNTH), 0, set_i64, F(show), 1, 100000, "10", 0,
     "programs printed", {{0}}},
    {CLI_O_METRIC, "--metric", NULL, NULL, "exact|bleu", V(EVAL), 0, set_metric, F(metric), 0, 0,
     NULL, 0, "see above (default: exact where the domain can check programs, else bleu)",
     {{0}}},
    {CLI_O_HOLDOUT, "--holdout", NULL, NULL, "K", V(EVAL), 0, set_i64, F(holdout), 1, 1000, NULL,
     0, "hold out the last K examples of every task", {{0}}},
    {CLI_O_LIMIT, "--limit", NULL, NULL, "N", V(EVAL), 0, set_i64, F(limit), 1, INT64_MAX, NULL, 0,
     "only the first N tasks (of the split)", {{0}}},
    {CLI_O_DETAILS, "--details", NULL, NULL, "FILE", V(EVAL), 0, set_str, F(details), 0, 0, NULL,
     0, "one JSON line per task and (B, L), written atomically: line, beam, latent_beam, found, "
        "tokens, distinct [n=1..4], and size, solved, rank, stage, seconds, generalised, "
        "timed_out (exact) or bleu (best, 0..1), rank (of the best), top1_bleu, top1 (the top "
        "program's text) (bleu)", {{0}}},
    {CLI_O_BLAS_THREADS, "--threads", NULL, NULL, "T", V(SYNTH), 0, set_i64, F(threads), 1, 256,
     NULL, 0, "OpenBLAS threads", {{0}}},
    {CLI_O_WORKERS, "--threads", NULL, NULL, "T", V(EVAL) | V(TRAIN) | V(BENCH_TRAIN), 0, set_i64,
     F(threads), 1, LP_ENGINE_MAX_WORKERS, NULL, 0, "T workers, 1..64",
     {{V(EVAL), "searching tasks at once, each with its own copy of the model, its own domain "
                "instance and one OpenBLAS thread (default: one worker, with OpenBLAS's own "
                "thread count; --threads 1: one OpenBLAS thread)"},
      {V(TRAIN), "(cores; default 1): data-parallel, each a share of the batch with one-thread "
                 "OpenBLAS (bitwise resume needs the same T throughout)"},
      {V(BENCH_TRAIN), "(default 1): data-parallel, as `train --threads`"}}},
    {CLI_O_LOG, "--log", NULL, NULL, "FILE.csv", V(TRAIN), 0, set_str, F(log), 0, 0, NULL, 0,
     "CSV log (columns: see below)", {{0}}},
    {CLI_O_LOG_EVERY, "--log-every", NULL, NULL, "N", V(TRAIN), 0, set_i64, F(log_every), 1,
     (int64_t)1 << 50, "100", 0, "a CSV row every N steps (means since the previous row)",
     {{0}}},
    {CLI_O_CKPT_EVERY, "--checkpoint-every", NULL, NULL, "K", V(TRAIN), 0, set_i64,
     F(checkpoint_every), 0, (int64_t)1 << 50, NULL, 0,
     "checkpoint every K steps (default: the config's checkpoint_every; 0: only at the end)",
     {{0}}},
    {CLI_O_MAX_LINE, "--max-line", NULL, NULL, "BYTES", V(EXEC) | V(CHECK) | V(TRAIN), 0, set_i64,
     F(max_line), 16, (int64_t)1 << 34, NULL, 0, "longest accepted input line",
     {{V(TRAIN), "of --data"}, {V(EXEC) | V(CHECK) | V(TRAIN), "(default 64 MiB)"}}},
    {CLI_O_SECONDS, "--seconds", NULL, NULL, "S", V(BENCH), 0, set_i64, F(seconds), 1, 3600, "3",
     0, "interp: repeat for at least S seconds", {{0}}},
    {CLI_O_BENCH_STEPS, "--steps", NULL, NULL, "N", V(BENCH_TRAIN), 0, set_i64, F(steps), 1,
     1000000, "20", 0, "profiled steps", {{0}}},
    {CLI_O_WARMUP, "--warmup", NULL, NULL, "N", V(BENCH_TRAIN), 0, set_i64, F(warmup), 0, 1000000,
     "3", 0, "steps run first and not counted", {{0}}},
    {CLI_O_CHUNK, "--chunk", NULL, NULL, "K", V(TRAIN) | V(BENCH_TRAIN), 0, set_i64, F(chunk), 0,
     1 << 20, NULL, 0, "tasks per length-bucketed chunk: each chunk padded only to its own "
                       "longest sequences, the same loss (0: one padded pass per worker; "
                       "default 1, LP_CHUNK_DEFAULT; robustfill-lstm: 8)", {{0}}},
    {CLI_O_PRECISION, "--precision", NULL, NULL, "bf16|fp32", V(TRAIN) | V(BENCH_TRAIN), 0,
     set_precision, F(precision), 0, 0, NULL, 0,
     "matrix products of the train steps (default bf16 with fp32 accumulation where the CPU "
     "has AVX512_BF16; fp32 elsewhere or with LPSYNTH_PRECISION=fp32)", {{0}}},
    {CLI_O_HALF, "--half", NULL, NULL, "fp16|bf16", V(CKPT_STRIP), 0, set_half, F(half), 0, 0,
     NULL, 0, "store the parameters in 16 bits, rounded to nearest (ties to even): OUT is about "
              "half the size of a stripped fp32 file. fp16: IEEE half precision (11 significant "
              "bits), refused - never saturated - when a parameter's magnitude exceeds 65504 "
              "(the message names the largest); bf16: bfloat16 (8 significant bits, fp32's "
              "range). NaN and infinity are refused. Readers widen them back to fp32: synth, "
              "eval, demo and ckpt info load OUT as any checkpoint (format version 2; "
              "lpsynth builds before it refuse it by its version). Default: as IN stores them",
     {{0}}},
    {CLI_O_PEAK_GFLOPS, "--peak-gflops", NULL, NULL, "G", V(BENCH_TRAIN), 0, set_i64,
     F(peak_gflops), 1, 1000000000, NULL, 0, "the machine's peak, to report the share of it "
                                             "(fp32: about 230 on the project's 2-core Zen 4)",
     {{0}}},
    {CLI_O_TOKENIZER, "--tokenizer", NULL, NULL, "MODEL", V(CORPUS), 0, set_str, F(tokenizer), 0,
     0, NULL, 0, "the domain's tokenizer model (same as --domain-options): count tokens, drop "
                 "long programs, measure anonymisation", {{0}}},
    {CLI_O_MAX_TOKENS, "--max-tokens", NULL, NULL, "N", V(CORPUS), 0, set_i64, F(max_tokens), 1,
     1000000, NULL, 0, "drop programs of more than N tokens, EOS not counted (default 150, the "
                       "paper's limit; needs --tokenizer)", {{0}}},
    {CLI_O_VALID_PCT, "--valid-percent", NULL, NULL, "P", V(CORPUS), 0, set_i64, F(valid_pct), 0,
     50, "5", 0, "share of files for \"valid\"", {{0}}},
    {CLI_O_TEST_PCT, "--test-percent", NULL, NULL, "P", V(CORPUS), 0, set_i64, F(test_pct), 0, 50,
     "5", 0, "share of files for \"test\"", {{0}}},
    {CLI_O_EXT, "--ext", NULL, NULL, "EXT", V(CORPUS), 0, set_str, F(ext), 0, 0, ".py", 0,
     "file name ending to look for", {{0}}},
    {CLI_O_STATS, "--stats", NULL, NULL, "FILE", V(CORPUS), 0, set_str, F(stats), 0, 0, NULL, 0,
     "write the counts as one JSON object to FILE", {{0}}},
    {CLI_O_CORPUS, "--corpus", NULL, NULL, "FILE", V(TOKENIZER_TRAIN), V(TOKENIZER_TRAIN),
     set_str, F(corpus), 0, 0, NULL, 0, "JSONL corpus (- = stdin)", {{0}}},
    {CLI_O_VOCAB, "--vocab", NULL, NULL, "N", V(TOKENIZER_TRAIN), V(TOKENIZER_TRAIN), set_i64,
     F(vocab), 1, 10000000, NULL, 0, "number of pieces, specials and bytes included", {{0}}},
    {CLI_O_FIELDS, "--fields", NULL, NULL, "F1,F2", V(TOKENIZER_TRAIN), 0, set_str, F(fields), 0,
     0, "docstring,code", 0, "string fields taken as texts", {{0}}},
    {CLI_O_SCORE_METRIC, "--metric", NULL, NULL, "bleu", V(SCORE), 0, set_str, F(score_metric), 0,
     0, "bleu", 0, "the metric (only bleu)", {{0}}},
    {CLI_O_REFS, "--refs", NULL, NULL, "FILE", V(SCORE), V(SCORE), set_ref, 0, 0, 0, NULL, 1,
     "references, one per line (at most 16 files)", {{0}}},
    {CLI_O_HYPS, "--hyps", NULL, NULL, "FILE", V(SCORE), V(SCORE), set_str, F(hyps), 0, 0, NULL, 0,
     "hypotheses, one per line (- = stdin)", {{0}}},
    {CLI_O_SMOOTHING, "--smoothing", NULL, NULL, "NAME", V(SCORE), 0, set_smoothing, F(smoothing),
     0, 0, "method1", 0, "method1 (NLTK's SmoothingFunction().method1, epsilon 0.1 for n-gram "
                         "orders without a match) or none", {{0}}},
    {CLI_O_TOKENIZE, "--tokenize", NULL, NULL, "HOW", V(SCORE), 0, set_tokenize, F(tokenize), 0, 0,
     "code", 0, "code (runs of [A-Za-z0-9_] and non-ASCII bytes, every other non-space "
                "character alone) or whitespace", {{0}}},
    {CLI_O_SENTENCES, "--sentences", NULL, NULL, NULL, V(SCORE), 0, set_flag, F(sentences), 0, 0,
     NULL, 0, "also the sentence BLEU of every line", {{0}}},
    {CLI_O_JSON, "--json", NULL, NULL, NULL,
     V(DOMAINS) | V(RUN) | V(BENCH) | V(SCORE) | V(TRAIN) | V(SYNTH) | V(EVAL) | V(CKPT_INFO) |
         V(BENCH_TRAIN),
     0,
     set_flag, F(json), 0, 0, NULL, 0, "JSON output",
     {{V(DOMAINS), ": one object per plugin"},
      {V(RUN), ": {\"program\",\"tokens\",\"outputs\"} as one line"},
      {V(SYNTH), ": one object: programs (rank, program, score, stage, consistent, prior, "
                 "latent), first_consistent, search, stage, outputs, seconds, timed_out"},
      {V(EVAL), ": the summary as one object (scores as fractions 0..1; \"seconds\": the wall "
                "time)"},
      {V(SCORE), ": one object (sentence scores under \"sentences_bleu\")"},
      {V(TRAIN) | V(CKPT_INFO) | V(BENCH) | V(BENCH_TRAIN), ": one object"}}},
    {CLI_O_HELP, "--help", NULL, NULL, NULL, ~0u, 0, NULL, 0, 0, 0, NULL, 0, "this text", {{0}}},
};

/* ---------- parsing ---------- */

static int takes(const cli_opt *e, int verb) { return (e->verbs >> verb) & 1u; }
static int short_of(const char *s) { return s && s[0] == '-' && s[1] && s[1] != '-' ? s[1] : 0; }
static int is_long(const char *s) { return s && s[0] == '-' && s[1] == '-'; }

void cli_opts_free(cli_opts *o) {
  free(o->inputs);
  lp_strs_free(&o->io_in);
  lp_strs_free(&o->io_out);
  o->inputs = NULL;
  o->n_inputs = 0;
}

static void missing(const cli_opt *e, const cli_opts *o) {
  cli_error(o->verb, "%s%s%s%s is required%s", e->repeat ? "at least one " : "", e->name,
            e->arg ? " " : "", e->arg ? e->arg : "",
            e->id == CLI_O_DOMAIN ? " (see `lpsynth domains`)" : "");
}

int cli_parse(const cli_verb_spec *v, int argc, char **argv, cli_opts *o) {
  memset(o, 0, sizeof *o);
  o->verb = v->name;
  o->search = LP_SEARCH_AUTO;
  o->rank = LP_RANK_HYBRID;
  o->checkpoint_every = -1; /* the config's */
  o->max_tokens = -1;       /* corpus: 150 with --tokenizer */
  o->chunk = -1;            /* bench train: the trainer's */
  o->precision = -1;        /* bench train: the engine's default */
  for (int i = 0; i < CLI_O_N; i++)
    if (takes(&table[i], v->id) && table[i].def && table[i].set(&table[i], table[i].name,
                                                                table[i].def, o))
      return EXIT_USAGE; /* a bad default: a bug the unit test catches */
  /* getopt's tables: every long spelling (value 1000 + entry), the short ones */
  struct option lo[3 * CLI_O_N + 1];
  char shorts[2 * CLI_O_N + 1];
  int n_lo = 0, n_sh = 0;
  for (int i = 0; i < CLI_O_N; i++) {
    const cli_opt *e = &table[i];
    if (!takes(e, v->id)) continue;
    const char *sp[3] = {e->name, e->also, e->alias};
    for (int k = 0; k < 3; k++) {
      if (is_long(sp[k]))
        lo[n_lo++] = (struct option){sp[k] + 2, e->arg ? required_argument : no_argument, NULL,
                                     1000 + i};
      else if (short_of(sp[k])) {
        shorts[n_sh++] = (char)short_of(sp[k]);
        if (e->arg) shorts[n_sh++] = ':';
      }
    }
  }
  lo[n_lo] = (struct option){0, 0, 0, 0};
  shorts[n_sh] = 0;
  int c, li, rc = CLI_PARSED;
  optind = 0; /* glibc: start afresh */
  while (rc == CLI_PARSED && (c = getopt_long(argc, argv, shorts, lo, &li)) != -1) {
    const cli_opt *e = NULL;
    const char *spelled = NULL;
    if (c >= 1000) {
      e = &table[c - 1000];
      spelled = lo[li].name;
    } else {
      for (int i = 0; i < CLI_O_N && !e; i++)
        if (takes(&table[i], v->id) &&
            (short_of(table[i].name) == c || short_of(table[i].also) == c))
          e = &table[i];
    }
    if (!e) { /* getopt said why */
      rc = EXIT_USAGE;
    } else if (e->id == CLI_O_HELP) {
      cli_help(v, stdout);
      rc = EXIT_OK;
    } else {
      /* messages name the canonical spelling, or the former one when it was used */
      const char *as = e->alias && spelled && !strcmp(spelled, e->alias + 2) ? e->alias : e->name;
      if (e->set(e, as, optarg, o))
        rc = EXIT_USAGE;
      else
        o->given[e->id] = 1;
    }
  }
  for (int i = 0; rc == CLI_PARSED && i < CLI_O_N; i++)
    if (((table[i].required >> v->id) & 1u) && !o->given[i]) {
      missing(&table[i], o);
      rc = EXIT_USAGE;
    }
  o->first_operand = optind;
  if (rc != CLI_PARSED) cli_opts_free(o);
  return rc;
}

int cli_no_operands(const cli_opts *o, int argc, char **argv, const char *hint) {
  if (o->first_operand >= argc) return 0;
  cli_error(o->verb, "unexpected argument \"%s\"%s%s", argv[o->first_operand], hint ? " " : "",
            hint ? hint : "");
  return EXIT_USAGE;
}

int cli_gen_opts(const cli_opts *o, lp_gen_opts *g) {
  if (o->min_size && o->max_size && o->min_size > o->max_size) {
    cli_error(o->verb, "%s %lld is larger than %s %lld", o->min_size_as, (long long)o->min_size,
              o->max_size_as, (long long)o->max_size);
    return EXIT_USAGE;
  }
  memset(g, 0, sizeof *g);
  g->struct_size = sizeof *g;
  g->min_size = (int32_t)o->min_size;
  g->max_size = (int32_t)o->max_size;
  g->n_examples = (int32_t)o->n_examples;
  return 0;
}

/* ---------- help ---------- */

#define HELP_COL 26 /* where option help starts */
#define WIDTH 79

/* Writes words of text from column col (the cursor's), breaking lines before
 * WIDTH and indenting continuation lines to indent. Returns the column. */
static int put_words(FILE *f, const char *text, int col, int indent) {
  const char *p = text;
  while (*p) {
    if (*p == ' ') {
      p++;
      continue;
    }
    size_t n = strcspn(p, " ");
    if (col > indent && col + 1 + (int)n > WIDTH) {
      fprintf(f, "\n%*s", indent, "");
      col = indent;
    } else if (col > indent) {
      fputc(' ', f);
      col++;
    }
    fwrite(p, 1, n, f);
    col += (int)n;
    p += n;
  }
  return col;
}

/* "-o, --out FILE": short spellings first. */
static void opt_label(const cli_opt *e, char *buf, size_t n) {
  const char *a = e->name, *b = e->also;
  if (b && short_of(b)) a = e->also, b = e->name;
  snprintf(buf, n, "%s%s%s%s%s", a, b ? ", " : "", b ? b : "", e->arg ? " " : "",
           e->arg ? e->arg : "");
}

static void opt_help(const cli_opt *e, int verb, FILE *f) {
  char label[96];
  opt_label(e, label, sizeof label);
  int col = fprintf(f, "  %s", label);
  if (col > HELP_COL - 2) {
    fprintf(f, "\n%*s", HELP_COL, "");
  } else {
    fprintf(f, "%*s", HELP_COL - col, "");
  }
  col = put_words(f, e->help, HELP_COL, HELP_COL);
  for (int k = 0; k < 6; k++)
    if (e->notes[k].text && ((e->notes[k].verbs >> verb) & 1u)) {
      const char *t = e->notes[k].text;
      if (t[0] && strchr(";:.,", t[0])) { /* glued to the text before */
        fputc(t[0], f);
        col++;
        t++;
      }
      col = put_words(f, t, col, HELP_COL);
    }
  if (e->alias) {
    char also[64];
    snprintf(also, sizeof also, "(also spelt %s)", e->alias);
    col = put_words(f, also, col, HELP_COL);
  }
  char extra[128] = "";
  if ((e->required >> verb) & 1u)
    snprintf(extra, sizeof extra, "(required%s)", e->repeat ? "; repeatable" : "");
  else if (e->def)
    snprintf(extra, sizeof extra, "(default %s%s)", e->def, e->repeat ? "; repeatable" : "");
  else if (e->repeat)
    snprintf(extra, sizeof extra, "(repeatable)");
  if (extra[0]) put_words(f, extra, col, HELP_COL);
  fputc('\n', f);
}

/* Writes word w (n bytes) at column *col, on a new line indented to indent
 * when it would pass WIDTH. */
static void synopsis_word(FILE *f, const char *w, int n, int *col, int indent) {
  if (*col + 1 + n > WIDTH) {
    fprintf(f, "\n%*s", indent, "");
    *col = indent;
  } else {
    fputc(' ', f);
    ++*col;
  }
  *col += fprintf(f, "%.*s", n, w);
}

void cli_synopsis(const cli_verb_spec *v, const char *prefix, FILE *f) {
  int col = fprintf(f, "%slpsynth %s", prefix, v->name), indent = col + 1;
  for (int i = 0; i < CLI_O_N; i++) {
    const cli_opt *e = &table[i];
    if (!takes(e, v->id) || e->id == CLI_O_HELP) continue;
    int req = (e->required >> v->id) & 1u;
    char w[128]; /* one word: an argument with spaces ('IN => OUT') stays on one line */
    int n = snprintf(w, sizeof w, "%s%s%s%s%s%s", req ? "" : "[", e->name, e->arg ? " " : "",
                     e->arg ? e->arg : "", e->repeat ? " ..." : "", req ? "" : "]");
    synopsis_word(f, w, n, &col, indent);
  }
  for (const char *p = v->operands; p && *p; p += strspn(p, " ")) {
    int n = (int)strcspn(p, " ");
    synopsis_word(f, p, n, &col, indent);
    p += n;
  }
  fputc('\n', f);
}

void cli_help(const cli_verb_spec *v, FILE *f) {
  cli_synopsis(v, "usage: ", f);
  fprintf(f, "\n%s\n", v->about);
  if (v->about_end) fprintf(f, "  %s\n", v->about_end());
  fprintf(f, "\noptions:\n");
  for (int i = 0; i < CLI_O_N; i++)
    if (takes(&table[i], v->id)) opt_help(&table[i], v->id, f);
}

int cli_group(const char *verb, const cli_sub *subs, size_t n, int argc, char **argv) {
  const size_t skip = strlen(verb) + 1; /* "ckpt " */
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    FILE *f = argc < 2 ? stderr : stdout;
    for (size_t i = 0; i < n; i++) cli_synopsis(subs[i].spec, i ? "       " : "usage: ", f);
    fputc('\n', f);
    for (size_t i = 0; i < n; i++)
      fprintf(f, "  %-6s %s\n", subs[i].spec->name + skip, subs[i].summary);
    fprintf(f, "\n`lpsynth %s SUBCOMMAND --help` describes one.\n", verb);
    return argc < 2 ? EXIT_USAGE : EXIT_OK;
  }
  char names[256] = "";
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(argv[1], subs[i].spec->name + skip)) return subs[i].fn(argc - 1, argv + 1);
    size_t l = strlen(names);
    snprintf(names + l, sizeof names - l, "%s%s", i ? ", " : "", subs[i].spec->name + skip);
  }
  cli_error(verb, "unknown subcommand \"%s\" (%s; see lpsynth %s --help)", argv[1], names, verb);
  return EXIT_USAGE;
}

/* ---------- the table's own rules (tests/cli/test_opts.c) ---------- */

int cli_opts_selfcheck(char *why, size_t n) {
  for (int i = 0; i < CLI_O_N; i++) {
    const cli_opt *e = &table[i];
    if (e->id != i) return snprintf(why, n, "entry %d (%s) has id %d", i, e->name, e->id), -1;
    if (e->required & ~e->verbs)
      return snprintf(why, n, "%s: required by a verb that does not take it", e->name), -1;
    if (e->id != CLI_O_HELP && !e->set)
      return snprintf(why, n, "%s: no parse function", e->name), -1;
    for (int j = 0; j < i; j++) {
      const cli_opt *d = &table[j];
      if (!(d->verbs & e->verbs)) continue;
      const char *a[3] = {e->name, e->also, e->alias}, *b[3] = {d->name, d->also, d->alias};
      for (int x = 0; x < 3; x++)
        for (int y = 0; y < 3; y++)
          if (a[x] && b[y] && !strcmp(a[x], b[y]))
            return snprintf(why, n, "%s is taken twice by a verb (entries %d and %d)", a[x], j,
                            i), -1;
    }
  }
  return 0;
}

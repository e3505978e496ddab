/* The options of every verb, declared once (cli/opts.c), after llama.cpp's
 * common/arg.h: each option is one entry of a table - its spellings, its
 * argument's name, its help text, the verbs that take it (and those that
 * require it), its default and the function that parses it into one options
 * struct. Parsing and `--help` of every verb are made from that table; a verb
 * adds only its synopsis operands and a description (cli_verb_spec).
 *
 * An entry is one meaning: where verbs read the same spelling differently
 * (synth --beam B, eval --beam LIST), the table holds one entry per reading,
 * with disjoint verbs; no verb takes a spelling twice (tests/cli/test_opts.c).
 * Not a public API. */
#ifndef LPSYNTH_CLI_OPTS_H
#define LPSYNTH_CLI_OPTS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lpsynth/runtime.h"

/* Verbs (a sub-command such as `ckpt info` is a verb of its own). */
enum cli_verb {
  CLI_DEMO, CLI_DOMAINS, CLI_RUN, CLI_EXEC, CLI_GEN, CLI_CHECK, CLI_BENCH, CLI_CORPUS,
  CLI_TOKENIZER_TRAIN, CLI_SCORE, CLI_TRAIN, CLI_SYNTH, CLI_EVAL, CLI_CKPT_INFO, CLI_CKPT_STRIP,
  CLI_BENCH_TRAIN, CLI_N_VERBS
};

/* Options: one id per table entry (cli/opts.c lists them in this order). */
enum cli_opt_id {
  CLI_O_DOMAIN, CLI_O_DOMAIN_OPTIONS, CLI_O_CKPT, CLI_O_MODEL_KIND, CLI_O_CONFIG, CLI_O_DATA,
  CLI_O_SPLIT, CLI_O_TEXT_SPLIT, CLI_O_TASKS, CLI_O_EXAMPLES_FILE, CLI_O_IO, CLI_O_SPEC,
  CLI_O_PROGRAM, CLI_O_INPUT, CLI_O_STEPS, CLI_O_CKPT_OUT, CLI_O_RESUME, CLI_O_OUT, CLI_O_NUM,
  CLI_O_SEED, CLI_O_DATA_SEED, CLI_O_MIN_SIZE, CLI_O_MAX_SIZE, CLI_O_N_EXAMPLES, CLI_O_SEARCH,
  CLI_O_TIME_LIMIT, CLI_O_DURATION, CLI_O_BEAM, CLI_O_BEAMS, CLI_O_LATENT_BEAM, CLI_O_LATENT_BEAMS,
  CLI_O_MAX_LEN, CLI_O_MAX_LEN_EVAL, CLI_O_LEN_ALPHA, CLI_O_KEEP_ORDER, CLI_O_CANDIDATES, CLI_O_RANK, CLI_O_SHOW, CLI_O_METRIC,
  CLI_O_HOLDOUT, CLI_O_LIMIT, CLI_O_DETAILS, CLI_O_BLAS_THREADS, CLI_O_WORKERS, CLI_O_LOG,
  CLI_O_LOG_EVERY, CLI_O_CKPT_EVERY, CLI_O_MAX_LINE, CLI_O_SECONDS, CLI_O_BENCH_STEPS,
  CLI_O_WARMUP, CLI_O_CHUNK, CLI_O_PRECISION, CLI_O_HALF, CLI_O_PEAK_GFLOPS, CLI_O_TOKENIZER,
  CLI_O_MAX_TOKENS, CLI_O_VALID_PCT, CLI_O_TEST_PCT, CLI_O_EXT, CLI_O_STATS, CLI_O_CORPUS,
  CLI_O_VOCAB, CLI_O_FIELDS, CLI_O_SCORE_METRIC, CLI_O_REFS, CLI_O_HYPS, CLI_O_SMOOTHING,
  CLI_O_TOKENIZE, CLI_O_SENTENCES, CLI_O_JSON, CLI_O_HELP,
  CLI_O_N
};

#define CLI_MAX_LIST 16 /* entries of a comma-separated list (--beam 1,10,100) */
#define CLI_MAX_REFS 16 /* score --refs files */

typedef struct cli_list {
  int v[CLI_MAX_LIST];
  int n;
} cli_list;

/* Every option's value. Strings point into argv. */
typedef struct cli_opts {
  const char *verb;                   /* the verb's name, for messages ("ckpt info") */
  unsigned char given[CLI_O_N];       /* 1: on the command line (not a default) */
  int first_operand;                  /* argv index of the first operand */
  /* the domain */
  const char *domain, *domain_options;
  /* files */
  const char *model;      /* synth, eval, demo: CKPT; train: robustfill|robustfill-lstm|lp|latent-ae|latent-vae */
  const char *config, *data, *tasks, *examples_file, *out, *resume, *details, *log, *tokenizer,
      *stats, *corpus, *hyps, *refs[CLI_MAX_REFS];
  int n_refs;
  /* the task on the command line */
  const char *program;                /* run --program */
  const char **inputs;                /* run --input (malloc'd array) */
  size_t n_inputs;
  lp_strs io_in, io_out;              /* synth --io (both) and --spec (io_in) */
  /* selection and generation */
  const char *split, *ext, *fields, *score_metric;
  uint64_t num, seed, data_seed;
  int64_t min_size, max_size, n_examples;
  const char *min_size_as, *max_size_as; /* the spelling given (--min-size or --min-expr) */
  /* search and evaluation */
  int search, rank, metric;           /* lp_search_mode, lp_rank, CLI_METRIC_* */
  double time_limit, duration;        /* synth/eval seconds; train --time-limit */
  double len_alpha;                   /* synth/eval --len-alpha */
  int keep_order;                     /* synth/eval --keep-order */
  int64_t beam, latent_beam, max_len, candidates, show, holdout, limit;
  cli_list beams, latent_beams;
  /* training */
  int64_t steps, threads, log_every, checkpoint_every, max_line;
  /* bench, corpus, tokenizer, score */
  int64_t seconds, warmup, chunk, peak_gflops, max_tokens, valid_pct, test_pct, vocab;
  int precision;                      /* lp_precision, or -1: the engine's default */
  int half;                           /* ckpt strip --half: lp_ckpt_prec (0: as IN stores them) */
  int smoothing, tokenize, sentences;
  int json;
} cli_opts;

enum { CLI_METRIC_DEFAULT = 0, CLI_METRIC_EXACT = 1, CLI_METRIC_BLEU = 2 };

/* What a verb adds to the table: its name, what follows the options in its
 * synopsis, and a description (paragraphs separated by blank lines). */
typedef struct cli_verb_spec {
  int id;                 /* enum cli_verb */
  const char *name;       /* "synth", "ckpt info" */
  const char *operands;   /* e.g. "[FILE|-]", or NULL */
  const char *about;
  const char *(*about_end)(void); /* NULL, or a line printed at the end of about */
} cli_verb_spec;

/* cli_parse's result when the verb goes on. */
#define CLI_PARSED (-1)

/* Parses argv[1..argc) (argv[0] is the verb, getopt's messages name it) for
 * verb v into *o: the defaults of the table first, then the options, then a
 * check that every option the verb requires was given. Returns CLI_PARSED
 * (operands are argv[o->first_operand..argc); free *o with cli_opts_free),
 * EXIT_OK after printing --help, or EXIT_USAGE after printing why (then *o
 * holds nothing to free). */
int cli_parse(const cli_verb_spec *v, int argc, char **argv, cli_opts *o);
void cli_opts_free(cli_opts *o);

/* The verb's help, made from the table: synopsis, description, options. */
void cli_help(const cli_verb_spec *v, FILE *f);
/* "usage: lpsynth NAME OPTIONS... OPERANDS" (wrapped), with prefix instead of
 * "usage: " (e.g. "       " for the second verb of a group). */
void cli_synopsis(const cli_verb_spec *v, const char *prefix, FILE *f);

/* A verb made of sub-commands (`ckpt info`, `tokenizer train`). */
typedef struct cli_sub {
  const cli_verb_spec *spec; /* its name is "VERB SUB" */
  int (*fn)(int argc, char **argv);
  const char *summary;
} cli_sub;
/* Runs `VERB SUB ARGS...` (argv[0] is VERB); without SUB, or with --help/-h,
 * prints the sub-commands' synopses and summaries (exit 2 on stderr / 0);
 * another word is a usage error. */
int cli_group(const char *verb, const cli_sub *subs, size_t n, int argc, char **argv);

/* EXIT_USAGE with "unexpected argument" (and hint) when operands follow the
 * options, else 0. */
int cli_no_operands(const cli_opts *o, int argc, char **argv, const char *hint);

/* The generator options of --min-size, --max-size, --examples (0: the
 * domain's default). 0, or EXIT_USAGE when min > max (said). */
int cli_gen_opts(const cli_opts *o, lp_gen_opts *g);

/* The table's own rules, for tests/cli/test_opts.c: entry i has id i; a verb
 * requires only options it takes; no verb takes a spelling twice. 0, or -1
 * with why. */
int cli_opts_selfcheck(char *why, size_t n);
#endif

/* Shared pieces of the lpsynth command-line tool (not a public API). */
#ifndef LPSYNTH_CLI_H
#define LPSYNTH_CLI_H
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "lpsynth/checkpoint.h"
#include "lpsynth/model.h"
#include "lpsynth/runtime.h"
#include "lpsynth/synth.h"
#include "lpsynth/task.h"
#include "opts.h"

/* Exit statuses. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Print "lpsynth VERB: message" to stderr. */
void cli_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse integers with range checks; on failure print an error naming the option. */
/* Seconds 0..1e6 (0: no limit); -1 with a message naming opt. */
int cli_parse_seconds(const char *verb, const char *opt, const char *s, double *out);
int cli_parse_i64(const char *verb, const char *opt, const char *s, int64_t lo, int64_t hi,
                  int64_t *out);
int cli_parse_u64(const char *verb, const char *opt, const char *s, uint64_t *out);

/* Output that is either stdout or a file written atomically (temp + fsync + rename). */
typedef struct cli_out {
  FILE *f;          /* write here: stdout, or the runtime's temporary file */
  lp_atomic_file a; /* the runtime's atomic writer (a.f == NULL for stdout) */
} cli_out;
int cli_out_open(cli_out *o, const char *path /* NULL or "-" = stdout */, const char *verb);
/* Flushes, fsyncs and renames into place. Returns 0 or prints an error and returns -1. */
int cli_out_commit(cli_out *o, const char *verb);
void cli_out_abort(cli_out *o);

/* Progress line on stderr (only when stderr is a terminal, or forced). */
typedef struct cli_progress {
  double t0, last;
  uint64_t total;
  int enabled;
  const char *what;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *what, uint64_t total);
void cli_progress_update(cli_progress *p, uint64_t done);
void cli_progress_end(cli_progress *p, uint64_t done);
/* Seconds as "42s", "3m07s", "2h05m" ("?" when negative or absurd). */
void cli_fmt_secs(double s, char *buf, size_t n);
/* An unsigned 64-bit value as a JSON integer, or a string past INT64_MAX (cmd_train.c). */
json_t *cli_json_u64(uint64_t v);
/* "lp" or "robustfill" (cmd_train.c). */
const char *cli_model_kind_name(int kind);

/* The domain resource beside a checkpoint: when train's --domain-options
 * names a file (python: its tokenizer model), `lpsynth train` copies it to
 * CKPT.res; synth, eval, ckpt info and train --resume use it when no
 * --domain-options is given. Checkpoints written before it have CKPT.spm,
 * which is read when there is no CKPT.res. */
/* "CKPT.res" (malloc'd; NULL when out of memory). */
char *cli_resource_path(const char *ckpt);
/* The resource beside ckpt (CKPT.res, else CKPT.spm) when it is a file, else
 * NULL (malloc'd). */
char *cli_resource_beside(const char *ckpt);
/* "no --domain-options given, and no domain resource CKPT.res (or CKPT.spm)
 * beside the checkpoint" in buf (returned). */
const char *cli_resource_missing(const char *ckpt, char *buf, size_t n);
/* Copy src to dst atomically (temp file, fsync, rename): 0; prints an error
 * and returns -1 on failure; returns 1 (nothing done) when src is dst. */
int cli_copy_file_atomic(const char *verb, const char *src, const char *dst);

/* A model and its domain as synth, eval and demo use them (cli/load.c). */
typedef struct cli_loaded {
  lp_domain *d;
  lp_model *m;         /* NULL: the domain's solver alone */
  lp_ckpt_domain dom;
  char *dopts;         /* the domain options used (given, or the resource), or NULL */
} cli_loaded;
/* Opens the domain (options: dopts, else the resource beside the checkpoint)
 * and loads the checkpoint, which must match the domain's vocabularies; sets
 * OpenBLAS threads when threads > 0. 0, or -1 after printing why. */
int cli_load_model(const char *verb, const char *domain, const char *dopts, const char *ckpt,
                   int threads, cli_loaded *L);
/* Opens the domain alone, for its exact solver (no model). 0 or -1 as above. */
int cli_open_solver(const char *verb, const char *domain, const char *dopts, cli_loaded *L);
void cli_unload(cli_loaded *L);
/* The model's max_spec_len (0 without a model): the task reader's limit. */
size_t cli_max_spec_len(const cli_loaded *L);
/* Task t as a batch of one for L's model (which must be loaded). */
int cli_batch_task(const cli_loaded *L, const lp_enc_task *t, lp_batch *b, lp_err *e);

/* Synthesis of one task as `lpsynth synth` runs it (cli/cmd_synth.c): the
 * task batched for L's model, when there is one, then lp_synthesize. */
int cli_synth(const cli_loaded *L, const lp_enc_task *t, const lp_synth_opts *so,
              lp_synth_result *res, lp_err *e);

/* A JSON string of text[0..n): as is when it is UTF-8, else each byte that is
 * not part of a well-formed sequence becomes U+FFFD. */
json_t *cli_json_text(const char *s, size_t n);

/* Diversity of a beam (Latent Programmer, Figure 5(a)): for n = 1..max_n,
 * out[n-1] = the number of distinct n-grams that occur in any of the k
 * sequences (n-grams lie within one sequence) divided by the total number of
 * tokens of the k sequences; every out[] is 0 when there are no tokens.
 * Returns that total, or -1 when out of memory. Pure. */
long cli_beam_diversity(const int32_t *const *seqs, const int *lens, int k, int max_n,
                        double *out);

/* Every line of a file (cli/lines.c), as `score` reads hypotheses and
 * references: '\n' and a '\r' before it removed, NUL bytes kept (len). */
typedef struct cli_lines {
  char **v;    /* NUL-terminated copies */
  size_t *len; /* their lengths */
  size_t n, cap;
} cli_lines;
enum { CLI_LINES_ENOMEM = -1, CLI_LINES_EIO = -2 };
/* Appends every line of f to out: 0, CLI_LINES_ENOMEM or CLI_LINES_EIO
 * (errno tells why). Prints nothing. */
int cli_lines_read(FILE *f, cli_lines *out);
void cli_lines_free(cli_lines *l);

/* Verbs. */
int cmd_domains(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_bench_train(int argc, char **argv); /* cmd_bench_train.c */
int cmd_corpus(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_ckpt(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_eval(int argc, char **argv);
#endif

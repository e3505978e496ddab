/* Shared pieces of the lpsynth command-line tool (not a public API). */
#ifndef LPSYNTH_CLI_H
#define LPSYNTH_CLI_H
#include <stdint.h>
#include <stdio.h>

#include "lpsynth/runtime.h"

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
  FILE *f;
  char *path, *tmp;
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
double cli_now(void);

/* The copy of a training run's domain options file beside its checkpoint:
 * "CKPT.spm" (malloc'd; NULL when out of memory). */
char *cli_options_path(const char *ckpt);
/* cli_options_path(ckpt) when that file exists, else NULL (malloc'd). */
char *cli_options_beside(const char *ckpt);
/* Copy src to dst atomically (temp file, fsync, rename): 0; prints an error
 * and returns -1 on failure; returns 1 (nothing done) when src is dst. */
int cli_copy_file_atomic(const char *verb, const char *src, const char *dst);

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
int cmd_corpus(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_ckpt(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_eval(int argc, char **argv);
#endif

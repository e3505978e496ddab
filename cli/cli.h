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

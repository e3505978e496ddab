/* The line reader of `lpsynth score` (hypotheses and references), apart
 * from the verb so that the score fuzz target (tests/fuzz/fuzz_score.c)
 * runs the very code the CLI runs. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cli.h"

void cli_lines_free(cli_lines *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  free(l->len);
  memset(l, 0, sizeof *l);
}

int cli_lines_read(FILE *f, cli_lines *out) {
  char *buf = NULL;
  size_t cap = 0;
  ssize_t r;
  int rc = 0;
  errno = 0;
  while ((r = getline(&buf, &cap, f)) >= 0) {
    size_t n = (size_t)r;
    if (n && buf[n - 1] == '\n') n--;
    if (n && buf[n - 1] == '\r') n--;
    if (out->n == out->cap) {
      size_t nc = out->cap ? out->cap * 2 : 256;
      char **v = realloc(out->v, nc * sizeof *v);
      if (v) out->v = v;
      size_t *l = v ? realloc(out->len, nc * sizeof *l) : NULL;
      if (!v || !l) {
        rc = CLI_LINES_ENOMEM;
        break;
      }
      out->len = l;
      out->cap = nc;
    }
    if (!(out->v[out->n] = malloc(n + 1))) {
      rc = CLI_LINES_ENOMEM;
      break;
    }
    memcpy(out->v[out->n], buf, n);
    out->v[out->n][n] = 0;
    out->len[out->n++] = n;
  }
  if (rc == 0 && ferror(f)) rc = CLI_LINES_EIO;
  free(buf);
  return rc;
}

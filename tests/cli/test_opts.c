/* The CLI's option table (cli/opts.c): its own rules (one entry per id, no
 * verb taking a spelling twice), defaults, former spellings, required
 * options, and a help made for every verb that fits 79 columns. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/check.h"
#include "cli.h"


static const char *const names[CLI_N_VERBS] = {
    "demo", "domains", "run", "exec", "gen", "check", "bench", "corpus", "tokenizer train",
    "score", "train", "synth", "eval", "ckpt info", "ckpt strip", "bench train"};

/* Parses a NULL-terminated argument list for verb v. */
static int parse(int v, cli_opts *o, const char *const *args) {
  static cli_verb_spec spec;
  spec = (cli_verb_spec){v, names[v], NULL, "about", NULL};
  char *argv[32];
  int argc = 0;
  argv[argc++] = (char *)names[v];
  for (; *args && argc < 31; args++) argv[argc++] = (char *)*args;
  argv[argc] = NULL;
  return cli_parse(&spec, argc, argv, o);
}

int main(void) {
  char why[256];
  CHECK(cli_opts_selfcheck(why, sizeof why) == 0, "%s", why);
  cli_opts o;

  /* defaults of the table, and the options given */
  CHECK(parse(CLI_EVAL, &o, (const char *[]){"--domain", "d", "--tasks", "t.jsonl", NULL}) ==
            CLI_PARSED,
        "eval parse");
  CHECK(o.beams.n == 3 && o.beams.v[2] == 100 && o.time_limit == 10 && o.candidates == 100 &&
            o.search == LP_SEARCH_AUTO && !o.given[CLI_O_BEAMS] && o.given[CLI_O_TASKS],
        "eval defaults");
  cli_opts_free(&o);
  CHECK(parse(CLI_SYNTH, &o, (const char *[]){"--domain", "d", "--io", "a => b", "--spec", "c",
                                              "--beam", "3", NULL}) == CLI_PARSED &&
            o.beam == 3 && o.io_in.len == 2 && o.io_out.len == 1 && o.show == 10,
        "synth --io/--spec");
  cli_opts_free(&o);

  /* the generator's size bounds: --min-size, or the former --min-expr */
  CHECK(parse(CLI_GEN, &o, (const char *[]){"--domain", "d", "--num", "7", "-s", "3",
                                            "--min-expr", "2", "--max-size", "4", NULL}) ==
            CLI_PARSED &&
            o.num == 7 && o.seed == 3 && o.min_size == 2 && o.max_size == 4 &&
            !strcmp(o.min_size_as, "--min-expr") && !strcmp(o.max_size_as, "--max-size"),
        "gen sizes");
  lp_gen_opts g;
  CHECK(cli_gen_opts(&o, &g) == 0 && g.min_size == 2 && g.max_size == 4 &&
            g.struct_size == sizeof g,
        "gen opts");
  cli_opts_free(&o);

  /* usage errors: a missing required option, a bad value, an unknown option */
  fprintf(stderr, "(usage messages expected below)\n");
  CHECK(parse(CLI_GEN, &o, (const char *[]){"--domain", "d", "-n", "1", NULL}) == EXIT_USAGE,
        "gen without --seed");
  CHECK(parse(CLI_SYNTH, &o, (const char *[]){"--domain", "d", "--beam", "0", NULL}) ==
            EXIT_USAGE,
        "synth --beam 0");
  CHECK(parse(CLI_TRAIN, &o, (const char *[]){"--domain", "d", "--steps", "1", "--out", "x",
                                              "--time-limit", "soon", NULL}) == EXIT_USAGE,
        "train --time-limit soon");
  CHECK(parse(CLI_RUN, &o, (const char *[]){"--domain", "d", "--program", "p", "--bogus", NULL}) ==
            EXIT_USAGE,
        "run --bogus");

  /* every verb's help: its usage line, its options, 79 columns */
  for (int v = 0; v < CLI_N_VERBS; v++) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cli_verb_spec spec = {v, names[v], "OPERANDS", "about", NULL};
    cli_help(&spec, f);
    fclose(f);
    char want[64];
    snprintf(want, sizeof want, "usage: lpsynth %s", names[v]);
    CHECK(!strncmp(buf, want, strlen(want)) && strstr(buf, "  --help "), "%s help:\n%s", names[v],
          buf);
    for (char *p = buf; *p;) {
      size_t n = strcspn(p, "\n");
      CHECK(n <= 79, "%s help: a line of %zu columns: %.*s", names[v], n, (int)n, p);
      p += n + (p[n] ? 1 : 0);
    }
    free(buf);
  }
  if (failures) {
    fprintf(stderr, "test_opts: %d of %d checks failed\n", failures, checks);
    return 1;
  }
  printf("test_opts: all %d checks passed\n", checks);
  return 0;
}

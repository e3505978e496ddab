/* lpsynth: the command-line tool. Only this program decides to exit. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
  const char *name;
  int (*fn)(int, char **);
  const char *summary;
} verbs[] = {
    {"demo", cmd_demo, "run the built-in example (the paper's Figure 1, generated tasks)"},
    {"domains", cmd_domains, "list the domain plugins found, with versions and capabilities"},
    {"run", cmd_run, "run one program on inputs given on the command line"},
    {"exec", cmd_exec, "run programs from JSONL ({\"program\",\"inputs\"} per line)"},
    {"gen", cmd_gen, "generate random tasks as JSONL"},
    {"check", cmd_check, "check programs against examples from JSONL"},
    {"bench", cmd_bench, "measure interpreter and generator throughput"},
    {"corpus", cmd_corpus, "extract (docstring, code) pairs from source trees as JSONL"},
    {"tokenizer", cmd_tokenizer, "train a domain's subword tokenizer (tokenizer train)"},
    {"score", cmd_score, "BLEU of hypotheses against references"},
    {"train", cmd_train, "train a model on generated or JSONL tasks, with checkpoints"},
    {"synth", cmd_synth, "search a trained model for programs that fit examples"},
    {"eval", cmd_eval, "exact accuracy of a trained model on JSONL tasks, by beam size"},
    {"ckpt", cmd_ckpt, "inspect a checkpoint (ckpt info CKPT)"},
};

static void usage(FILE *f) {
  fprintf(f,
          "usage: lpsynth VERB [OPTIONS]\n"
          "\n"
          "Neural program synthesis with the Latent Programmer. Domains are plugins,\n"
          "chosen with --domain NAME (e.g. string) or --domain PATH.so.\n"
          "\n"
          "verbs:\n");
  for (size_t i = 0; i < sizeof verbs / sizeof *verbs; i++)
    fprintf(f, "  %-9s %s\n", verbs[i].name, verbs[i].summary);
  fprintf(f,
          "\n"
          "`lpsynth VERB --help` describes a verb. Errors go to stderr; the exit status is\n"
          "0 on success, 1 when the work failed (or some input lines did), 2 on a usage error.\n"
          "Environment: LPSYNTH_PLUGIN_PATH (':'-separated plugin folders searched first),\n"
          "LPSYNTH_PROGRESS=1/0 (force the progress line on/off; default: on a terminal).\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  const char *v = argv[1];
  if (!strcmp(v, "--help") || !strcmp(v, "-h") || !strcmp(v, "help")) {
    usage(stdout);
    return EXIT_OK;
  }
  if (!strcmp(v, "--version") || !strcmp(v, "version")) {
    printf("lpsynth 0.1.0 (plugin ABI %d.%d)\n", LP_PLUGIN_ABI_MAJOR, LP_PLUGIN_ABI_MINOR);
    return EXIT_OK;
  }
  for (size_t i = 0; i < sizeof verbs / sizeof *verbs; i++)
    if (!strcmp(v, verbs[i].name)) return verbs[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "lpsynth: unknown verb \"%s\"\n\n", v);
  usage(stderr);
  return EXIT_USAGE;
}

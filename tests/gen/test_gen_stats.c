/* strdsl_gen_stats: 4,000 sampled tasks match the reference sampler's figures
 * (spec "Random tasks") and every one is consistent with the interpreter. */
#include "gen_check.h"

#include <math.h>

#define N_TASKS 4000
#define BASE_SEED 0x1a75e7a5c0ffee01ull

/* measured on 4,000 tasks of the reference sampler (spec) */
#define REF_TOKENS 22.3
#define REF_INPUT 54.1
#define REF_OUTPUT 50.7

static int within(const char *what, double got, double ref) {
  const int ok = fabs(got - ref) <= 0.10 * ref;
  printf("%-26s %7.2f  (reference %5.1f, %+.1f%%) %s\n", what, got, ref,
         100.0 * (got - ref) / ref, ok ? "ok" : "FAIL");
  return ok;
}

int main(void) {
  long tokens = 0, in_chars = 0, out_chars = 0, n_in = 0, n_out = 0;
  size_t max_tokens = 0;
  long hist[11] = {0};
  long ops[SD_NUM_OPS] = {0}, inner_ops[SD_NUM_OPS] = {0};
  int failures = 0;
  int32_t *ids = NULL;
  size_t nids = 0, cap = 0;
  char err[256];

  for (int i = 0; i < N_TASKS; i++) {
    sd_task t;
    const uint64_t seed = BASE_SEED + (uint64_t)i;
    if (sd_generate(seed, 1, 10, 4, &t, err, sizeof err) != 0) {
      fprintf(stderr, "seed %llu: sd_generate failed: %s\n", (unsigned long long)seed, err);
      return 1;
    }
    const char *bad = gc_check_task(&t, 1, 10, 4);
    if (bad) {
      char *text = NULL;
      size_t tl;
      if (sd_print(&t.prog, &text, &tl) != 0) text = NULL;
      fprintf(stderr, "seed %llu: %s\n  program: %s\n", (unsigned long long)seed, bad,
              text ? text : "?");
      free(text);
      if (++failures > 10) return 1;
    }
    nids = 0;
    if (sd_to_tokens(&t.prog, &ids, &nids, &cap) != 0) {
      fprintf(stderr, "out of memory\n");
      return 1;
    }
#ifndef GEN_TEST_NO_ROUNDTRIP
    {
      sd_prog back = {0};
      char perr[256];
      if (sd_from_tokens(ids, nids, &back, perr, sizeof perr) != 0 || !gc_prog_same(&back, &t.prog)) {
        fprintf(stderr, "seed %llu: tokens do not decode to the same program\n",
                (unsigned long long)seed);
        failures++;
      }
      sd_prog_clear(&back);
    }
#endif
    tokens += (long)nids;
    if (nids > max_tokens) max_tokens = nids;
    if (t.prog.n <= 10) hist[t.prog.n]++;
    for (size_t k = 0; k < t.prog.n; k++) {
      ops[t.prog.e[k].compose ? SD_COMPOSE : t.prog.e[k].fn.op]++;
      if (t.prog.e[k].compose) inner_ops[t.prog.e[k].inner.op]++;
    }
    for (size_t j = 0; j < t.n_examples; j++) {
      in_chars += (long)strlen(t.inputs[j]);
      out_chars += (long)strlen(t.outputs[j]);
      n_in++;
      n_out++;
    }
    sd_task_free(&t);
  }
  free(ids);

  int ok = failures == 0;
  printf("%d tasks, base seed %#llx\n", N_TASKS, (unsigned long long)BASE_SEED);
  ok &= within("program tokens incl. EOS", (double)tokens / N_TASKS, REF_TOKENS);
  ok &= within("input length", (double)in_chars / (double)n_in, REF_INPUT);
  ok &= within("output length", (double)out_chars / (double)n_out, REF_OUTPUT);
  printf("max program tokens         %zu (reference 62)\n", max_tokens);
  printf("expressions:");
  for (int n = 1; n <= 10; n++) printf(" %d:%ld", n, hist[n]);
  printf("\n");
  for (int n = 1; n <= 10; n++) {
    const double f = (double)hist[n] / N_TASKS;
    if (f < 0.05 || f > 0.15) {
      printf("FAIL: %d expressions in %.1f%% of the tasks (need 5..15%%)\n", n, 100 * f);
      ok = 0;
    }
  }
  static const char *names[SD_NUM_OPS] = {"Compose", "ConstStr", "SubStr", "GetSpan",
                                          "GetToken", "ToCase", "Replace", "Trim",
                                          "GetUpto", "GetFrom", "GetFirst", "GetAll"};
  long total = 0;
  for (int o = 0; o < SD_NUM_OPS; o++) total += ops[o];
  printf("top-level operations:");
  for (int o = 0; o < SD_NUM_OPS; o++) printf(" %s %.1f%%", names[o], 100.0 * (double)ops[o] / (double)total);
  printf("\ninner operations of Compose:");
  for (int o = 0; o < SD_NUM_OPS; o++)
    if (inner_ops[o]) printf(" %s %ld", names[o], inner_ops[o]);
  printf("\n");
  if (failures) printf("FAIL: %d inconsistent tasks\n", failures);
  printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

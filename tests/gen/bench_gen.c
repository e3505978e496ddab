/* bench_gen [tasks] [seed]: sd_generate throughput on one thread. */
#define _POSIX_C_SOURCE 200809L
#include "strdsl.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  const long n = argc > 1 ? atol(argv[1]) : 50000;
  const unsigned long long seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 42;
  char err[256];
  long exprs = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    sd_task t;
    if (sd_generate(seed + (unsigned long long)i, 1, 10, 4, &t, err, sizeof err) != 0) {
      fprintf(stderr, "sd_generate failed: %s\n", err);
      return 1;
    }
    exprs += (long)t.prog.n;
    sd_task_free(&t);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  printf("%ld tasks in %.3f s: %.0f tasks/s (%.2f expressions per task)\n", n, s, (double)n / s,
         (double)exprs / (double)n);
  return 0;
}

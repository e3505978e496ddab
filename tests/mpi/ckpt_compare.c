/* ckpt_compare A.ckpt B.ckpt TOL: the training state of two checkpoints is
 * the same up to TOL - the step, task position and dropout RNG exactly; the
 * parameters, Adam moments and model state (the LP's codebook statistics)
 * element by element within TOL * (1 + |a|). Prints the largest differences;
 * exit status 0 (same), 1 (different) or 2 (cannot read). For the
 * multi-process tests (tests/mpi). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "lpsynth/checkpoint.h"

/* The largest |a - b| / (1 + |a|) of n elements (0 when n is 0). */
static double worst(const float *a, const float *b, size_t n, double *abs_out) {
  double w = 0.0, wa = 0.0;
  for (size_t i = 0; i < n; i++) {
    const double d = fabs((double)a[i] - (double)b[i]), r = d / (1.0 + fabs((double)a[i]));
    if (r > w || r != r) w = r;
    if (d > wa) wa = d;
  }
  *abs_out = wa;
  return w;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: ckpt_compare A.ckpt B.ckpt TOL\n");
    return 2;
  }
  const double tol = atof(argv[3]);
  lp_ckpt a, b;
  lp_err err = {0};
  if (lp_ckpt_read(argv[1], 0, &a, &err) || lp_ckpt_read(argv[2], 0, &b, &err)) {
    fprintf(stderr, "ckpt_compare: %s\n", err.msg);
    return 2;
  }
  int same = 1;
  if (a.pos.step != b.pos.step || a.pos.next_task != b.pos.next_task ||
      a.pos.rng_state != b.pos.rng_state || a.adam_t != b.adam_t) {
    printf("position differs: step %lld / %lld, next task %llu / %llu, rng %llx / %llx\n",
           (long long)a.pos.step, (long long)b.pos.step, (unsigned long long)a.pos.next_task,
           (unsigned long long)b.pos.next_task, (unsigned long long)a.pos.rng_state,
           (unsigned long long)b.pos.rng_state);
    same = 0;
  }
  if (a.n_params != b.n_params || a.n_adam != b.n_adam || a.n_state != b.n_state) {
    printf("sizes differ: %zu/%zu parameters, %zu/%zu Adam, %zu/%zu state\n", a.n_params,
           b.n_params, a.n_adam, b.n_adam, a.n_state, b.n_state);
    same = 0;
  } else {
    const struct {
      const char *what;
      const float *x, *y;
      size_t n;
    } parts[] = {{"parameters", a.params, b.params, a.n_params},
                 {"adam_m", a.adam_m, b.adam_m, a.n_adam},
                 {"adam_v", a.adam_v, b.adam_v, a.n_adam},
                 {"state", a.state, b.state, a.n_state}};
    for (int k = 0; k < 4; k++) {
      double wa = 0.0;
      const double w = parts[k].n ? worst(parts[k].x, parts[k].y, parts[k].n, &wa) : 0.0;
      printf("%-10s %8zu values: max |a-b|/(1+|a|) %.3g, max |a-b| %.3g\n", parts[k].what,
             parts[k].n, w, wa);
      if (!(w <= tol)) same = 0;
    }
  }
  printf("%s (step %lld)\n", same ? "same" : "DIFFERENT", (long long)a.pos.step);
  lp_ckpt_free(&a);
  lp_ckpt_free(&b);
  return same ? 0 : 1;
}

/* Batches of tokenised tasks: B tasks x E example slots, each part padded to
 * the longest sequence present (not the configured maximum). */
#include <stdlib.h>
#include <string.h>

#include "lpsynth/model.h"
#include "lpsynth/runtime.h"
#include "model_internal.h" /* rf_used_len */

void lp_batch_free(lp_batch *b) {
  if (!b) return;
  free(b->spec[0]);
  free(b->spec[1]);
  free(b->prog); /* prog_enc, when set, points into the same block */
  free(b->emask);
  memset(b, 0, sizeof(*b));
}

/* Makes *p hold at least n elements of size sz (contents not kept). */
static int grow(void **p, size_t *cap, size_t n, size_t sz) {
  if (n <= *cap && *p) return LP_OK;
  size_t c = *cap ? *cap : 64;
  while (c < n) c *= 2;
  void *q = malloc(c * sz);
  if (!q) return LP_ENOMEM;
  free(*p);
  *p = q;
  *cap = c;
  return LP_OK;
}

int lp_batch_fill(lp_batch *b, const lp_task_ids *tasks, int n, int n_parts, int32_t spec_pad,
                  int32_t prog_pad, const lp_model_cfg *c, lp_err *err) {
  if (!b || !c || (n > 0 && !tasks))
    return lp_err_set(err, LP_EINVAL, "lp_batch_fill: NULL argument");
  if (n < 1) return lp_err_set(err, LP_EINVAL, "lp_batch_fill: empty batch (%d tasks)", n);
  if (n_parts != 1 && n_parts != 2)
    return lp_err_set(err, LP_EINVAL, "lp_batch_fill: n_parts must be 1 or 2 (got %d)",
                      n_parts);
  /* shapes and limits */
  size_t E = 1, Ts[2] = {1, 1}, Tp = 0;
  int any_enc = 0;
  for (int t = 0; t < n; t++) {
    const lp_task_ids *k = &tasks[t];
    if (k->n_examples > E) E = k->n_examples;
    if (k->n_examples > 0 && (!k->spec || !k->spec_len))
      return lp_err_set(err, LP_EINVAL, "task %d: NULL example arrays", t);
    for (size_t e = 0; e < k->n_examples; e++)
      for (int p = 0; p < n_parts; p++) {
        size_t i = e * (size_t)n_parts + (size_t)p, len = k->spec_len[i];
        if (len > 0 && !k->spec[i])
          return lp_err_set(err, LP_EINVAL, "task %d: example %zu part %d: NULL ids", t, e, p);
        if (len > (size_t)c->max_spec_len)
          return lp_err_set(err, LP_EINVAL,
                            "task %d: example %zu part %d has %zu tokens, more than "
                            "max_spec_len %d",
                            t, e, p, len, c->max_spec_len);
        if (len > Ts[p]) Ts[p] = len;
      }
    if (k->prog_len > 0 && !k->prog) return lp_err_set(err, LP_EINVAL, "task %d: NULL program", t);
    if (k->prog_len > (size_t)c->max_program_len)
      return lp_err_set(err, LP_EINVAL,
                        "task %d: program has %zu tokens (incl. EOS), more than "
                        "max_program_len %d",
                        t, k->prog_len, c->max_program_len);
    if (k->prog_len > Tp) Tp = k->prog_len;
    if (k->prog_enc) {
      if (k->prog_enc_len > (size_t)c->max_program_len)
        return lp_err_set(err, LP_EINVAL,
                          "task %d: encoder program has %zu tokens, more than "
                          "max_program_len %d",
                          t, k->prog_enc_len, c->max_program_len);
      if (k->prog_enc_len > Tp) Tp = k->prog_enc_len;
      any_enc = 1;
    }
  }
  if (E > 4096) return lp_err_set(err, LP_EINVAL, "lp_batch_fill: %zu examples in a task", E);
  /* storage */
  const size_t B = (size_t)n;
  int rc = grow((void **)&b->emask, &b->cap_emask, B * E, 1);
  for (int p = 0; p < n_parts && rc == LP_OK; p++)
    rc = grow((void **)&b->spec[p], &b->cap_spec[p], B * E * Ts[p], sizeof(int32_t));
  if (rc == LP_OK && Tp > 0)
    rc = grow((void **)&b->prog, &b->cap_prog, B * Tp * (any_enc ? 2 : 1), sizeof(int32_t));
  if (rc != LP_OK) return lp_err_set(err, rc, "lp_batch_fill: out of memory");
  b->B = n;
  b->E = (int)E;
  b->n_parts = n_parts;
  b->T_spec[0] = (int)Ts[0];
  b->T_spec[1] = n_parts == 2 ? (int)Ts[1] : 0;
  b->T_prog = (int)Tp;
  b->prog_enc = NULL;
  for (size_t t = 0; t < B; t++) {
    const lp_task_ids *k = &tasks[t];
    for (size_t e = 0; e < E; e++) {
      int present = e < k->n_examples;
      b->emask[t * E + e] = (uint8_t)present;
      for (int p = 0; p < n_parts; p++) {
        int32_t *dst = b->spec[p] + (t * E + e) * Ts[p];
        size_t len = present ? k->spec_len[e * (size_t)n_parts + (size_t)p] : 0;
        if (len) memcpy(dst, k->spec[e * (size_t)n_parts + (size_t)p], sizeof(int32_t) * len);
        for (size_t i = len; i < Ts[p]; i++) dst[i] = spec_pad;
      }
    }
  }
  if (Tp > 0) {
    for (size_t t = 0; t < B; t++) {
      const lp_task_ids *k = &tasks[t];
      int32_t *dst = b->prog + t * Tp;
      if (k->prog_len) memcpy(dst, k->prog, sizeof(int32_t) * k->prog_len);
      for (size_t i = k->prog_len; i < Tp; i++) dst[i] = prog_pad;
    }
    if (any_enc) {
      b->prog_enc = b->prog + B * Tp;
      for (size_t t = 0; t < B; t++) {
        const lp_task_ids *k = &tasks[t];
        const int32_t *src = k->prog_enc ? k->prog_enc : k->prog;
        size_t len = k->prog_enc ? k->prog_enc_len : k->prog_len;
        int32_t *dst = b->prog_enc + t * Tp;
        if (len) memcpy(dst, src, sizeof(int32_t) * len);
        for (size_t i = len; i < Tp; i++) dst[i] = prog_pad;
      }
    }
  }
  return LP_OK;
}

int rf_used_len(const int32_t *ids, int T, int32_t pad) {
  while (T > 0 && ids[T - 1] == pad) T--;
  return T;
}

int lp_batch_subset(lp_batch *dst, const lp_batch *b, const int *tasks, int n, int32_t spec_pad,
                    int32_t prog_pad, lp_err *err) {
  if (!dst || !b || !tasks || n < 1 || dst == b)
    return lp_err_set(err, LP_EINVAL, "lp_batch_subset: bad argument");
  const size_t E = (size_t)b->E;
  size_t Ts[2] = {1, 1}, Tp = 0;
  for (int i = 0; i < n; i++) {
    const int t = tasks[i];
    if (t < 0 || t >= b->B)
      return lp_err_set(err, LP_EINVAL, "lp_batch_subset: task %d outside [0, %d)", t, b->B);
    for (int p = 0; p < b->n_parts; p++)
      for (size_t e = 0; e < E; e++) {
        const int T = b->T_spec[p];
        size_t len = (size_t)rf_used_len(b->spec[p] + ((size_t)t * E + e) * T, T, spec_pad);
        if (len > Ts[p]) Ts[p] = len;
      }
    if (b->T_prog > 0) {
      const int T = b->T_prog;
      size_t len = (size_t)rf_used_len(b->prog + (size_t)t * T, T, prog_pad);
      if (b->prog_enc) {
        size_t le = (size_t)rf_used_len(b->prog_enc + (size_t)t * T, T, prog_pad);
        if (le > len) len = le;
      }
      if (len > Tp) Tp = len;
    }
  }
  if (b->T_prog > 0 && Tp < 1) Tp = 1;
  const size_t B = (size_t)n;
  int rc = grow((void **)&dst->emask, &dst->cap_emask, B * E, 1);
  for (int p = 0; p < b->n_parts && rc == LP_OK; p++)
    rc = grow((void **)&dst->spec[p], &dst->cap_spec[p], B * E * Ts[p], sizeof(int32_t));
  if (rc == LP_OK && Tp > 0)
    rc = grow((void **)&dst->prog, &dst->cap_prog, B * Tp * (b->prog_enc ? 2 : 1),
              sizeof(int32_t));
  if (rc != LP_OK) return lp_err_set(err, rc, "lp_batch_subset: out of memory");
  dst->B = n;
  dst->E = b->E;
  dst->n_parts = b->n_parts;
  dst->T_spec[0] = (int)Ts[0];
  dst->T_spec[1] = b->n_parts == 2 ? (int)Ts[1] : 0;
  dst->T_prog = (int)Tp;
  dst->prog_enc = b->prog_enc && Tp > 0 ? dst->prog + B * Tp : NULL;
  for (size_t i = 0; i < B; i++) {
    const size_t t = (size_t)tasks[i];
    memcpy(dst->emask + i * E, b->emask + t * E, E);
    for (int p = 0; p < b->n_parts; p++)
      for (size_t e = 0; e < E; e++)
        memcpy(dst->spec[p] + (i * E + e) * Ts[p], b->spec[p] + (t * E + e) * b->T_spec[p],
               sizeof(int32_t) * Ts[p]);
    if (Tp > 0) {
      memcpy(dst->prog + i * Tp, b->prog + t * b->T_prog, sizeof(int32_t) * Tp);
      if (dst->prog_enc)
        memcpy(dst->prog_enc + i * Tp, b->prog_enc + t * b->T_prog, sizeof(int32_t) * Tp);
    }
  }
  return LP_OK;
}

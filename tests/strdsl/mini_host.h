/* A minimal lp_host_api for the string plugin's tests that load the module
 * with dlopen (plugin_test.c, solve_test.c): malloc-backed buffers, no
 * logging, errors formatted into lp_err. Included once per test program. */
#ifndef LP_TEST_MINI_HOST_H
#define LP_TEST_MINI_HOST_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/plugin.h"

/* ---- a minimal host ---- */
static void *h_alloc(size_t n) { return malloc(n); }
static void *h_realloc(void *p, size_t n) { return realloc(p, n); }
static void h_free(void *p) { free(p); }
static int h_buf_append(lp_buf *b, const char *s, size_t n) {
  if (!b->data || b->cap - b->len < n + 1) {
    size_t nc = b->cap ? b->cap : 64;
    while (nc - b->len < n + 1) nc *= 2;
    char *d = realloc(b->data, nc);
    if (!d) return LP_ENOMEM;
    b->data = d;
    b->cap = nc;
  }
  if (n) memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
  return LP_OK;
}
static int h_ids_push(lp_ids *v, int32_t id) {
  if (v->len == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 16;
    int32_t *d = realloc(v->data, nc * sizeof *d);
    if (!d) return LP_ENOMEM;
    v->data = d;
    v->cap = nc;
  }
  v->data[v->len++] = id;
  return LP_OK;
}
static int h_strs_push(lp_strs *v, const char *s, size_t n) {
  if (v->len == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 8;
    lp_buf *d = realloc(v->items, nc * sizeof *d);
    if (!d) return LP_ENOMEM;
    v->items = d;
    v->cap = nc;
  }
  lp_buf b = {0};
  if (h_buf_append(&b, s, n)) return LP_ENOMEM;
  v->items[v->len++] = b;
  return LP_OK;
}
static void h_log(int level, const char *fmt, ...) {
  (void)level;
  (void)fmt;
}
static int h_set_error(lp_err *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}
static const lp_host_api host = {sizeof(lp_host_api), LP_PLUGIN_ABI_MAJOR, LP_PLUGIN_ABI_MINOR,
                                 h_alloc, h_realloc, h_free, h_buf_append, h_ids_push,
                                 h_strs_push, h_log, h_set_error,
                                 NULL /* write_file_atomic: the string domain writes no files */};

#endif

/* Host API: logging, growable buffers, and the table given to plugins (which
 * hands out these, the error setter of err.c and the file writer of util.c). */
#include "lpsynth/runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lp_log_fn log_fn = NULL;
static int log_min = LP_LOG_WARN;

void lp_set_log(lp_log_fn fn, int min_level) {
  log_fn = fn;
  log_min = min_level;
}

static void host_log(int level, const char *fmt, ...) {
  if (level < log_min) return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (log_fn) {
    log_fn(level, msg);
  } else {
    static const char *names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "lpsynth: %s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
  }
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return LP_OK;
  size_t nc = *cap ? *cap : 16;
  while (nc < need) {
    if (nc > SIZE_MAX / 2 / elem) return LP_ENOMEM;
    nc *= 2;
  }
  void *q = realloc(*p, nc * elem);
  if (!q) return LP_ENOMEM;
  *p = q;
  *cap = nc;
  return LP_OK;
}

int lp_buf_append(lp_buf *b, const char *s, size_t n) {
  if (n > SIZE_MAX - b->len - 1) return LP_ENOMEM;
  void *p = b->data;
  if (grow(&p, &b->cap, b->len + n + 1, 1)) return LP_ENOMEM;
  b->data = p;
  if (n) memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
  return LP_OK;
}

int lp_ids_push(lp_ids *v, int32_t id) {
  void *p = v->data;
  if (grow(&p, &v->cap, v->len + 1, sizeof *v->data)) return LP_ENOMEM;
  v->data = p;
  v->data[v->len++] = id;
  return LP_OK;
}

int lp_strs_push(lp_strs *v, const char *s, size_t n) {
  void *p = v->items;
  if (grow(&p, &v->cap, v->len + 1, sizeof *v->items)) return LP_ENOMEM;
  v->items = p;
  lp_buf b = {0};
  if (lp_buf_append(&b, s, n)) return LP_ENOMEM;
  v->items[v->len++] = b;
  return LP_OK;
}

void lp_buf_free(lp_buf *b) {
  if (!b) return;
  free(b->data);
  memset(b, 0, sizeof *b);
}

void lp_ids_free(lp_ids *v) {
  if (!v) return;
  free(v->data);
  memset(v, 0, sizeof *v);
}

void lp_strs_free(lp_strs *v) {
  if (!v) return;
  for (size_t i = 0; i < v->len; i++) free(v->items[i].data);
  free(v->items);
  memset(v, 0, sizeof *v);
}

void lp_task_free(lp_task *t) {
  if (!t) return;
  lp_ids_free(&t->program);
  lp_strs_free(&t->examples);
  t->n_parts = 0;
}

static void host_free(void *p) { free(p); }
static void *host_alloc(size_t n) { return malloc(n ? n : 1); }
static void *host_realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }

static const lp_host_api host_api = {
    .struct_size = sizeof(lp_host_api),
    .abi_major = LP_PLUGIN_ABI_MAJOR,
    .abi_minor = LP_PLUGIN_ABI_MINOR,
    .alloc = host_alloc,
    .realloc = host_realloc,
    .free = host_free,
    .buf_append = lp_buf_append,
    .ids_push = lp_ids_push,
    .strs_push = lp_strs_push,
    .log = host_log,
    .set_error = lp_err_set,
    .write_file_atomic = lp_write_file_atomic, /* ABI 1.3 */
};

const lp_host_api *lp_host_api_get(void) { return &host_api; }

#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void cli_error(const char *verb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "lpsynth %s: ", verb);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int cli_parse_seconds(const char *verb, const char *opt, const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= 0.0 && v <= 1e6)) {
    cli_error(verb, "%s expects seconds, a number in 0..1000000 (0: no limit), got \"%s\"", opt,
              s);
    return -1;
  }
  *out = v;
  return 0;
}

int cli_parse_i64(const char *verb, const char *opt, const char *s, int64_t lo, int64_t hi,
                  int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    cli_error(verb, "%s expects an integer in %lld..%lld, got \"%s\"", opt, (long long)lo,
              (long long)hi, s);
    return -1;
  }
  *out = v;
  return 0;
}

int cli_parse_u64(const char *verb, const char *opt, const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  if (*s == '-') {
    cli_error(verb, "%s expects a non-negative integer, got \"%s\"", opt, s);
    return -1;
  }
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end) {
    cli_error(verb, "%s expects a non-negative integer, got \"%s\"", opt, s);
    return -1;
  }
  *out = v;
  return 0;
}

int cli_out_open(cli_out *o, const char *path, const char *verb) {
  memset(o, 0, sizeof *o);
  if (!path || strcmp(path, "-") == 0) {
    o->f = stdout;
    return 0;
  }
  lp_err e = {0};
  if (lp_atomic_open(&o->a, path, &e) != LP_OK) { /* sweeps stale temp files first */
    cli_error(verb, "%s", e.msg);
    return -1;
  }
  o->f = o->a.f;
  return 0;
}

int cli_out_commit(cli_out *o, const char *verb) {
  if (!o->f) return 0;
  if (!o->a.f) {
    int bad = fflush(stdout) != 0 || ferror(stdout);
    o->f = NULL;
    if (bad) cli_error(verb, "writing standard output failed: %s", strerror(errno));
    return bad ? -1 : 0;
  }
  lp_err e = {0};
  o->f = NULL;
  if (lp_atomic_commit(&o->a, &e) != LP_OK) {
    cli_error(verb, "%s", e.msg);
    return -1;
  }
  return 0;
}

void cli_out_abort(cli_out *o) {
  lp_atomic_abort(&o->a);
  memset(o, 0, sizeof *o);
}

void cli_progress_start(cli_progress *p, const char *what, uint64_t total) {
  p->t0 = p->last = lp_now();
  p->total = total;
  p->what = what;
  const char *force = getenv("LPSYNTH_PROGRESS");
  p->enabled = force ? strcmp(force, "0") != 0 : isatty(2);
}

void cli_fmt_secs(double s, char *buf, size_t n) {
  if (s < 0 || s > 1e8 || !isfinite(s))
    snprintf(buf, n, "?");
  else if (s < 60)
    snprintf(buf, n, "%.0fs", s);
  else if (s < 3600)
    snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
  else
    snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void progress_print(cli_progress *p, uint64_t done, int final) {
  double t = lp_now(), el = t - p->t0;
  double rate = el > 0 ? done / el : 0;
  char eta[32], els[32];
  cli_fmt_secs(rate > 0 && p->total ? (p->total - done) / rate : -1, eta, sizeof eta);
  cli_fmt_secs(el, els, sizeof els);
  if (p->total)
    fprintf(stderr, "\r%s %llu/%llu (%.1f%%)  %.0f/s  elapsed %s  ETA %s   %s", p->what,
            (unsigned long long)done, (unsigned long long)p->total,
            100.0 * done / (double)p->total, rate, els, final ? "-" : eta, final ? "\n" : "");
  else
    fprintf(stderr, "\r%s %llu  %.0f/s  elapsed %s   %s", p->what, (unsigned long long)done, rate,
            els, final ? "\n" : "");
  fflush(stderr);
}

void cli_progress_update(cli_progress *p, uint64_t done) {
  if (!p->enabled) return;
  double t = lp_now();
  if (t - p->last < 0.25) return;
  p->last = t;
  progress_print(p, done, 0);
}

void cli_progress_end(cli_progress *p, uint64_t done) {
  if (p->enabled) progress_print(p, done, 1);
}

/* ---------- the domain resource beside a checkpoint ---------- */

static char *beside(const char *ckpt, const char *suffix) {
  size_t n = strlen(ckpt) + strlen(suffix) + 1;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s%s", ckpt, suffix);
  return p;
}

char *cli_resource_path(const char *ckpt) { return beside(ckpt, ".res"); }

char *cli_resource_beside(const char *ckpt) {
  static const char *const suffixes[] = {".res", ".spm" /* before CKPT.res */};
  for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
    char *p = beside(ckpt, suffixes[i]);
    struct stat sb;
    if (!p || (stat(p, &sb) == 0 && S_ISREG(sb.st_mode))) return p;
    free(p);
  }
  return NULL;
}

const char *cli_resource_missing(const char *ckpt, char *buf, size_t n) {
  snprintf(buf, n, "no --domain-options given, and no domain resource %s.res (or %s.spm) beside "
           "the checkpoint", ckpt, ckpt);
  return buf;
}

int cli_copy_file_atomic(const char *verb, const char *src, const char *dst) {
  struct stat a, b;
  if (stat(src, &a) == 0 && stat(dst, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
    return 1;
  FILE *f = fopen(src, "rb");
  if (!f) {
    cli_error(verb, "%s: cannot open: %s", src, strerror(errno));
    return -1;
  }
  lp_buf buf = {0};
  char chunk[65536];
  size_t n;
  int bad = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (lp_buf_append(&buf, chunk, n)) {
      bad = 1;
      break;
    }
  if (ferror(f)) bad = 1;
  fclose(f);
  if (bad) {
    cli_error(verb, "%s: cannot read it to copy it to %s", src, dst);
    lp_buf_free(&buf);
    return -1;
  }
  lp_err e = {0};
  int rc = lp_write_file_atomic(dst, buf.data ? buf.data : "", buf.len, &e);
  lp_buf_free(&buf);
  if (rc) {
    cli_error(verb, "copying %s: %s", src, e.msg);
    return -1;
  }
  return 0;
}

/* ---------- JSON ---------- */

/* A JSON string of text[0..n): as is when it is UTF-8, else each byte that is
 * not part of a well-formed sequence becomes U+FFFD (a sampled program of a
 * byte-fallback vocabulary may end inside a character). */
json_t *cli_json_text(const char *s, size_t n) {
  json_t *j = json_stringn(s ? s : "", n);
  if (j) return j;
  lp_buf b = {0};
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t k = u[i] < 0x80 ? 1 : u[i] >= 0xC2 && u[i] <= 0xDF ? 2 : u[i] >= 0xE0 && u[i] <= 0xEF ? 3
             : u[i] >= 0xF0 && u[i] <= 0xF4 ? 4 : 0;
    int ok = k > 0 && i + k <= n;
    for (size_t m = 1; ok && m < k; m++) ok = (u[i + m] & 0xC0) == 0x80;
    if (ok && k == 3)
      ok = !(u[i] == 0xE0 && u[i + 1] < 0xA0) && !(u[i] == 0xED && u[i + 1] >= 0xA0);
    if (ok && k == 4)
      ok = !(u[i] == 0xF0 && u[i + 1] < 0x90) && !(u[i] == 0xF4 && u[i + 1] >= 0x90);
    if (ok) {
      lp_buf_append(&b, s + i, k);
      i += k;
    } else {
      lp_buf_append(&b, "\xEF\xBF\xBD", 3);
      i++;
    }
  }
  j = json_stringn(b.data ? b.data : "", b.len);
  lp_buf_free(&b);
  return j ? j : json_string("");
}

/* ---------- beam diversity ---------- */

static uint64_t ngram_hash(const int32_t *p, int n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < n; i++) {
    h ^= (uint32_t)p[i];
    h *= 0x100000001b3ull;
  }
  return h ^ (h >> 29);
}

long cli_beam_diversity(const int32_t *const *seqs, const int *lens, int k, int max_n,
                        double *out) {
  long total = 0;
  for (int s = 0; s < k; s++)
    if (lens[s] > 0) total += lens[s];
  for (int n = 1; n <= max_n; n++) out[n - 1] = 0;
  if (total == 0) return 0;
  size_t cap = 16;
  while (cap < 2 * (size_t)total) cap *= 2;
  const int32_t **set = malloc(cap * sizeof *set); /* open addressing, n-gram starts */
  if (!set) return -1;
  for (int n = 1; n <= max_n; n++) {
    memset(set, 0, cap * sizeof *set);
    long distinct = 0;
    for (int s = 0; s < k; s++)
      for (int i = 0; i + n <= lens[s]; i++) {
        const int32_t *g = seqs[s] + i;
        size_t j = (size_t)ngram_hash(g, n) & (cap - 1);
        while (set[j] && memcmp(set[j], g, (size_t)n * sizeof *g) != 0) j = (j + 1) & (cap - 1);
        if (!set[j]) {
          set[j] = g;
          distinct++;
        }
      }
    out[n - 1] = (double)distinct / (double)total;
  }
  free(set);
  return total;
}

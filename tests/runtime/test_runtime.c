/* Runtime tests: the plugin loader (refusals with clear messages, lookup by
 * path and by name, the append-only ABI rule), the domain wrappers on the toy
 * plugin, the JSONL reader, the record parser and atomic file writes.
 *
 * usage: test_runtime TOY.so FIXTURES_DIR
 *   TOY.so        tests/toy's lpsynth_toy.so
 *   FIXTURES_DIR  the folder holding tests/toy/fixtures' lpsynth_fx_*.so
 */
#define _XOPEN_SOURCE 700
#include "lpsynth/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures, checks;

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    checks++;                                                                \
    if (!(cond)) {                                                           \
      failures++;                                                            \
      fprintf(stderr, "%s:%d: FAILED: %s\n    ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                          \
      fputc('\n', stderr);                                                   \
    }                                                                        \
  } while (0)

static int has(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }

static char *fmt(const char *f, ...) {
  static char bufs[8][4096];
  static int k;
  char *b = bufs[k++ & 7];
  va_list ap;
  va_start(ap, f);
  vsnprintf(b, sizeof bufs[0], f, ap);
  va_end(ap);
  return b;
}

/* Toy token ids (documented in tests/toy/toy.c). */
enum {
  T_PAD = 0,
  T_BOS = 1,
  T_EOS = 2,
  T_UPPER = 3,
  T_LOWER = 4,
  T_REVERSE = 5,
  T_FIRST = 6,
  T_LAST = 7,
  T_APPEND = 8,
  T_SEP = 9,
  T_NUM1 = 10,
  T_CHAR0 = 19,
  T_COUNT = 55
};

static const char *toy_path, *fix_dir;
static char toy_dir[4096], tmp_dir[64];

/* ---------------------------------------------------------------- fixtures */

static void expect_refused(const char *fixture, int code, const char *const *needles) {
  const char *path = fmt("%s/lpsynth_fx_%s.so", fix_dir, fixture);
  lp_err e = {0};
  lp_plugin *p = lp_plugin_load(path, &e);
  CHECK(p == NULL, "fixture %s was loaded but must be refused", fixture);
  lp_plugin_free(p);
  CHECK(e.code == code, "fixture %s: code %d, want %d (%s)", fixture, e.code, code, e.msg);
  CHECK(has(e.msg, path), "fixture %s: message does not name the file: %s", fixture, e.msg);
  for (size_t i = 0; needles && needles[i]; i++)
    CHECK(has(e.msg, needles[i]), "fixture %s: message lacks \"%s\": %s", fixture, needles[i],
          e.msg);
  /* lp_domain_open goes through the same loader. */
  lp_err e2 = {0};
  lp_domain *d = lp_domain_open(path, NULL, &e2);
  CHECK(d == NULL && e2.code == code && strcmp(e.msg, e2.msg) == 0,
        "fixture %s: lp_domain_open gave %d \"%s\"", fixture, e2.code, e2.msg);
  lp_domain_free(d);
}

static void test_fixtures(void) {
  char plugin_abi[32], host_abi[32];
  snprintf(plugin_abi, sizeof plugin_abi, "ABI %d.%d", LP_PLUGIN_ABI_MAJOR + 1,
           LP_PLUGIN_ABI_MINOR);
  snprintf(host_abi, sizeof host_abi, "ABI %d.%d", LP_PLUGIN_ABI_MAJOR, LP_PLUGIN_ABI_MINOR);
  expect_refused("abi_major", LP_EABI, (const char *const[]){plugin_abi, host_abi, "major", NULL});
  expect_refused("no_entry", LP_EABI,
                 (const char *const[]){"no exported symbol lp_plugin_entry", NULL});
  expect_refused(
      "small_desc", LP_EABI,
      (const char *const[]){
          fmt("descriptor is %zu bytes", (size_t)LP_DOMAIN_DESC_MIN_SIZE - sizeof(void *)),
          fmt("smaller than the %zu bytes", (size_t)LP_DOMAIN_DESC_MIN_SIZE), NULL});
  expect_refused("missing_fn", LP_EABI,
                 (const char *const[]){"required function spec_encode is missing", NULL});
  expect_refused(
      "cap_without_fn", LP_EABI,
      (const char *const[]){"claims capability prefix_ok but its function is missing", NULL});
  expect_refused("bad_name", LP_EABI, (const char *const[]){"\"Bad-Name\"", "[a-z0-9_]", NULL});
  expect_refused("null_desc", LP_EABI, (const char *const[]){"returned no descriptor", NULL});

  /* A file that does not exist, and a file that is not a shared object. */
  lp_err e = {0};
  const char *missing = fmt("%s/lpsynth_nope.so", tmp_dir);
  CHECK(lp_plugin_load(missing, &e) == NULL && e.code == LP_EIO && has(e.msg, missing) &&
            has(e.msg, "no such file"),
        "missing plugin file: %d %s", e.code, e.msg);
  const char *junk = fmt("%s/junk.so", tmp_dir);
  lp_err we = {0};
  CHECK(lp_write_file_atomic(junk, "not an ELF file\n", 16, &we) == LP_OK, "%s", we.msg);
  memset(&e, 0, sizeof e);
  CHECK(lp_plugin_load(junk, &e) == NULL && e.code == LP_EABI && has(e.msg, junk) &&
            has(e.msg, "cannot load"),
        "non-ELF plugin: %d %s", e.code, e.msg);

  /* Future minor: a bigger descriptor from a newer minor loads (append-only). */
  const char *future = fmt("%s/lpsynth_fx_future_minor.so", fix_dir);
  memset(&e, 0, sizeof e);
  lp_plugin *p = lp_plugin_load(future, &e);
  CHECK(p != NULL, "future-minor plugin refused: %s", e.msg);
  if (p) {
    const lp_domain_desc *d = lp_plugin_desc(p);
    CHECK(d->abi_major == LP_PLUGIN_ABI_MAJOR && d->abi_minor == LP_PLUGIN_ABI_MINOR + 1,
          "abi %u.%u", d->abi_major, d->abi_minor);
    CHECK(d->struct_size > sizeof(lp_domain_desc), "struct_size %u", d->struct_size);
    CHECK(strcmp(d->name, "fx_future_minor") == 0, "name %s", d->name);
    CHECK(d->caps == LP_CAP_EXECUTE && d->execute && !d->check, "caps 0x%x", d->caps);
    CHECK(strcmp(lp_plugin_path(p), future) == 0, "path %s", lp_plugin_path(p));
    lp_plugin_free(p);
  }
  lp_domain *dom = lp_domain_open(future, NULL, &e);
  CHECK(dom != NULL, "future-minor domain: %s", e.msg);
  if (dom) {
    lp_ids ids = {0};
    lp_buf out = {0};
    CHECK(lp_domain_program_encode(dom, "id", 2, &ids, &e) == LP_OK, "%s", e.msg);
    CHECK(lp_domain_execute(dom, ids.data, ids.len, "abc", 3, &out, &e) == LP_OK && out.len == 3 &&
              memcmp(out.data, "abc", 3) == 0,
          "execute: %s", e.msg);
    CHECK(lp_domain_check(dom, ids.data, ids.len, NULL, 0, NULL, &e) == LP_EUNSUP,
          "check on a domain without it");
    lp_ids_free(&ids);
    lp_buf_free(&out);
    lp_domain_free(dom);
  }
}

/* ------------------------------------------------------- loading by name */

static int copy_file(const char *from, const char *to) {
  FILE *f = fopen(from, "rb");
  if (!f) return -1;
  lp_buf b = {0};
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) lp_buf_append(&b, chunk, n);
  fclose(f);
  int rc = lp_write_file_atomic(to, b.data, b.len, NULL);
  lp_buf_free(&b);
  return rc;
}

static void test_by_name(void) {
  char env[8192];
  const char *nowhere = fmt("%s/nowhere", tmp_dir);
  snprintf(env, sizeof env, "%s:%s", nowhere, toy_dir);
  setenv("LPSYNTH_PLUGIN_PATH", env, 1);

  const char *dirs[32];
  size_t nd = lp_plugin_search_path(dirs, 32);
  CHECK(nd >= 3 && strcmp(dirs[0], nowhere) == 0 && strcmp(dirs[1], toy_dir) == 0,
        "search path does not start with $LPSYNTH_PLUGIN_PATH's folders (n=%zu, first %s)", nd,
        nd ? dirs[0] : "-");

  lp_err e = {0};
  lp_plugin *p = lp_plugin_load("toy", &e);
  CHECK(p != NULL, "toy by name: %s", e.msg);
  if (p) {
    CHECK(strcmp(lp_plugin_path(p), fmt("%s/lpsynth_toy.so", toy_dir)) == 0, "found at %s",
          lp_plugin_path(p));
    CHECK(strcmp(lp_plugin_desc(p)->name, "toy") == 0, "name %s", lp_plugin_desc(p)->name);
    lp_plugin_free(p);
  }
  lp_domain *d = lp_domain_open("toy", NULL, &e);
  CHECK(d != NULL && strcmp(lp_domain_name(d), "toy") == 0, "lp_domain_open(\"toy\"): %s", e.msg);
  lp_domain_free(d);

  /* Not found: the message names the domain, the file it looked for and the folders. */
  memset(&e, 0, sizeof e);
  CHECK(lp_plugin_load("nosuchdomain", &e) == NULL && e.code == LP_EIO &&
            has(e.msg, "lpsynth_nosuchdomain.so") && has(e.msg, nowhere) && has(e.msg, toy_dir) &&
            has(e.msg, "LPSYNTH_PLUGIN_PATH"),
        "unknown domain: %d %s", e.code, e.msg);
  memset(&e, 0, sizeof e);
  CHECK(lp_plugin_load("Bad!", &e) == NULL && e.code == LP_EINVAL && has(e.msg, "Bad!"),
        "bad domain name: %d %s", e.code, e.msg);
  memset(&e, 0, sizeof e);
  CHECK(lp_plugin_load("", &e) == NULL && e.code == LP_EINVAL, "empty name: %d %s", e.code, e.msg);

  /* The file name must match the declared name; the first folder wins. */
  const char *alias = fmt("%s/lpsynth_other.so", tmp_dir);
  const char *shadow = fmt("%s/lpsynth_toy.so", tmp_dir);
  CHECK(copy_file(toy_path, alias) == 0 && copy_file(toy_path, shadow) == 0, "copying %s",
        toy_path);
  snprintf(env, sizeof env, "%s:%s", tmp_dir, toy_dir);
  setenv("LPSYNTH_PLUGIN_PATH", env, 1);
  memset(&e, 0, sizeof e);
  CHECK(lp_plugin_load("other", &e) == NULL && e.code == LP_EABI && has(e.msg, alias) &&
            has(e.msg, "named for domain \"other\" but declares \"toy\""),
        "misnamed plugin: %d %s", e.code, e.msg);
  p = lp_plugin_load("toy", &e);
  CHECK(p && strcmp(lp_plugin_path(p), shadow) == 0, "first folder should win: %s",
        p ? lp_plugin_path(p) : e.msg);
  lp_plugin_free(p);

  /* Listing: every fixture appears, refused ones with the reason. */
  setenv("LPSYNTH_PLUGIN_PATH", fix_dir, 1);
  lp_plugin_info *v = NULL;
  size_t n = 0;
  CHECK(lp_plugin_list(&v, &n, &e) == LP_OK, "lp_plugin_list: %s", e.msg);
  static const char *const fixtures[] = {"abi_major",  "no_entry",       "small_desc",
                                         "missing_fn", "cap_without_fn", "bad_name",
                                         "null_desc",  "future_minor"};
  for (size_t k = 0; k < sizeof fixtures / sizeof *fixtures; k++) {
    const char *path = fmt("%s/lpsynth_fx_%s.so", fix_dir, fixtures[k]);
    const lp_plugin_info *it = NULL;
    for (size_t i = 0; i < n; i++)
      if (strcmp(v[i].path, path) == 0) it = &v[i];
    CHECK(it != NULL, "lp_plugin_list does not list %s", path);
    if (!it) continue;
    if (strcmp(fixtures[k], "future_minor") == 0) {
      CHECK(!it->error && it->name && strcmp(it->name, "fx_future_minor") == 0 &&
                it->abi_minor == LP_PLUGIN_ABI_MINOR + 1,
            "future_minor listed as refused: %s", it->error);
    } else {
      CHECK(it->error && has(it->error, path) && !it->name, "%s not listed as refused", path);
    }
  }
  lp_plugin_list_free(v, n);
  unsetenv("LPSYNTH_PLUGIN_PATH");
}

/* ------------------------------------------------------- the toy domain */

static void roundtrip(lp_domain *d, const char *text, const char *canonical) {
  lp_ids ids = {0}, ids2 = {0};
  lp_buf out = {0};
  lp_err e = {0};
  int rc = lp_domain_program_encode(d, text, strlen(text), &ids, &e);
  CHECK(rc == LP_OK, "encode \"%s\": %s", text, e.msg);
  if (rc == LP_OK) {
    CHECK(ids.len > 0 && ids.data[ids.len - 1] == T_EOS, "\"%s\" does not end with EOS", text);
    rc = lp_domain_program_decode(d, ids.data, ids.len, &out, &e);
    CHECK(rc == LP_OK && strcmp(out.data, canonical) == 0, "decode(encode(\"%s\")) = \"%s\" (%s)",
          text, out.data ? out.data : "", e.msg);
    rc = lp_domain_program_encode(d, out.data, out.len, &ids2, &e);
    CHECK(rc == LP_OK && ids2.len == ids.len &&
              memcmp(ids.data, ids2.data, ids.len * sizeof *ids.data) == 0,
          "re-encoding \"%s\" gives other ids", canonical);
  }
  lp_ids_free(&ids);
  lp_ids_free(&ids2);
  lp_buf_free(&out);
}

static void parse_error(lp_domain *d, const char *text, size_t len, int code, const char *n1,
                        const char *n2) {
  lp_ids ids = {0};
  lp_err e = {0};
  int rc = lp_domain_program_encode(d, text, len, &ids, &e);
  CHECK(rc == code && e.code == code, "encode \"%s\": rc %d, want %d (%s)", text, rc, code, e.msg);
  CHECK(has(e.msg, n1) && (!n2 || has(e.msg, n2)),
        "encode \"%s\": message \"%s\" lacks \"%s\"/\"%s\"", text, e.msg, n1, n2 ? n2 : "");
  lp_ids_free(&ids);
}

static void decode_error(lp_domain *d, const int32_t *ids, size_t n, const char *needle) {
  lp_buf out = {0};
  lp_err e = {0};
  int rc = lp_domain_program_decode(d, ids, n, &out, &e);
  CHECK(rc == LP_EINVAL && has(e.msg, needle), "decode of bad ids: rc %d \"%s\" (want \"%s\")", rc,
        e.msg, needle);
  lp_buf_free(&out);
}

static void run(lp_domain *d, const char *prog, const char *in, size_t in_len, const char *want,
                size_t want_len) {
  lp_ids ids = {0};
  lp_buf out = {0};
  lp_err e = {0};
  lp_buf_append(&out, "#", 1); /* execute appends */
  int rc = lp_domain_program_encode(d, prog, strlen(prog), &ids, &e);
  if (rc == LP_OK) rc = lp_domain_execute(d, ids.data, ids.len, in, in_len, &out, &e);
  CHECK(rc == LP_OK && out.len == want_len + 1 && out.data[0] == '#' &&
            memcmp(out.data + 1, want, want_len) == 0,
        "run \"%s\" on \"%.*s\": got \"%.*s\" (%s)", prog, (int)in_len, in, (int)out.len,
        out.data ? out.data : "", e.msg);
  lp_ids_free(&ids);
  lp_buf_free(&out);
}

static int task_equal(const lp_task *a, const lp_task *b) {
  if (a->program.len != b->program.len || a->examples.len != b->examples.len ||
      a->n_parts != b->n_parts)
    return 0;
  if (memcmp(a->program.data, b->program.data, a->program.len * sizeof(int32_t))) return 0;
  for (size_t i = 0; i < a->examples.len; i++)
    if (a->examples.items[i].len != b->examples.items[i].len ||
        memcmp(a->examples.items[i].data, b->examples.items[i].data, a->examples.items[i].len))
      return 0;
  return 1;
}

static int task_consistent(lp_domain *d, const lp_task *t, lp_err *e) {
  size_t n = t->examples.len / 2;
  lp_example ex[64];
  if (n > 64) n = 64;
  for (size_t i = 0; i < n; i++)
    for (int p = 0; p < 2; p++) {
      ex[i].part[p] = t->examples.items[2 * i + p].data;
      ex[i].len[p] = t->examples.items[2 * i + p].len;
    }
  int ok = -1;
  if (lp_domain_check(d, t->program.data, t->program.len, ex, n, &ok, e)) return -1;
  return ok;
}

static int fake_prefix_ok(void *self, const int32_t *ids, size_t n, const lp_example *ex,
                          size_t n_ex, int *ok, lp_err *err) {
  (void)self, (void)ids, (void)n, (void)ex, (void)n_ex, (void)err;
  *ok = 1;
  return LP_OK;
}

static void test_desc_validate(const lp_domain_desc *toy) {
  lp_domain_desc c = *toy, out;
  lp_err e = {0};
  /* A function whose capability is not claimed is dropped: the flags are the contract. */
  c.prefix_ok = fake_prefix_ok;
  memset(&out, 0xAB, sizeof out);
  CHECK(lp_desc_validate(&c, "x.so", &out, &e) == LP_OK && out.prefix_ok == NULL &&
            out.execute == toy->execute,
        "unclaimed prefix_ok should be dropped: %s", e.msg);
  c = *toy;
  c.caps |= 1u << 20;
  CHECK(lp_desc_validate(&c, "x.so", &out, &e) == LP_EABI &&
            has(e.msg, "unknown capability bits 0x100000"),
        "unknown cap bit: %s", e.msg);
  c = *toy;
  c.spec_parts = 3;
  CHECK(lp_desc_validate(&c, "x.so", &out, &e) == LP_EABI && has(e.msg, "spec_parts is 3"),
        "spec_parts 3: %s", e.msg);
  c = *toy;
  c.version = NULL;
  CHECK(lp_desc_validate(&c, "x.so", &out, &e) == LP_EABI && has(e.msg, "lacks its version"),
        "no version: %s", e.msg);
  char name[80];
  memset(name, 'a', 63);
  name[63] = 0;
  c = *toy;
  c.name = name;
  CHECK(lp_desc_validate(&c, "x.so", &out, &e) == LP_OK, "63-character name refused: %s", e.msg);
  strcat(name, "b");
  CHECK(lp_desc_validate(&c, "x.so", &out, &e) == LP_EABI, "64-character name accepted");
  CHECK(lp_desc_validate(NULL, "x.so", &out, &e) == LP_EABI && has(e.msg, "x.so"), "NULL desc");
  /* A plugin built against an older minor (ABI 1.2, before the host's
   * write_file_atomic slot) still loads. */
  c = *toy;
  c.abi_minor = 2;
  CHECK(lp_desc_validate(&c, "x.so", &out, &e) == LP_OK && out.abi_minor == 2,
        "ABI 1.2 plugin refused: %s", e.msg);
  /* An ABI 1.0 descriptor that stops right after the required part: the
   * optional slots beyond its struct_size read as NULL, whatever lies there. */
  c = *toy;
  c.struct_size = (uint32_t)LP_DOMAIN_DESC_MIN_SIZE;
  c.caps = 0;
  CHECK(lp_desc_validate(&c, "x.so", &out, &e) == LP_OK && !out.execute && !out.check &&
            !out.generate && !out.program_size && out.spec_encode == toy->spec_encode,
        "minimal descriptor: %s", e.msg);
  c.caps = LP_CAP_EXECUTE;
  CHECK(lp_desc_validate(&c, "x.so", &out, &e) == LP_EABI &&
            has(e.msg, "claims capability execute but its function is missing"),
        "execute beyond struct_size: %s", e.msg);
}

/* Programs reported by solve (toy programs have at most 3 * 16 ids). */
typedef struct solutions {
  int n, stop_after;
  int32_t ids[64][48];
  size_t len[64];
  double prior[64];
} solutions;

static int on_solution(void *ctx, const int32_t *ids, size_t n, double prior) {
  solutions *s = ctx;
  if (s->n < 64 && n <= 48) {
    memcpy(s->ids[s->n], ids, n * sizeof *ids);
    s->len[s->n] = n;
    s->prior[s->n] = prior;
  }
  s->n++;
  return s->stop_after && s->n >= s->stop_after;
}

/* solve (ABI 1.2): the toy tries every program, shortest first. */
static void test_toy_solve(lp_domain *d) {
  lp_err e = {0};
  lp_ids want = {0};
  CHECK(lp_domain_program_encode(d, "upper ; last 3 ; reverse", 24, &want, &e) == LP_OK, "%s",
        e.msg);
  const lp_example ex[2] = {{{"hello", "OLL"}, {5, 3}}, {{"ab", "BA"}, {2, 2}}};
  static solutions s;
  memset(&s, 0, sizeof s);
  int complete = -1, has_want = 0, ok_all = 1, distinct = 1, ordered = 1;
  CHECK(lp_domain_solve(d, ex, 2, NULL, on_solution, &s, &complete, &e) == LP_OK, "solve: %s",
        e.msg);
  CHECK(s.n > 1 && s.n < 64 && complete == 1, "solve: %d programs, complete %d", s.n, complete);
  for (int i = 0; i < s.n && i < 64; i++) {
    int ok = 0;
    if (lp_domain_check(d, s.ids[i], s.len[i], ex, 2, &ok, &e) != LP_OK || !ok) ok_all = 0;
    if (i && s.prior[i] > s.prior[i - 1]) ordered = 0;
    for (int j = 0; j < i; j++)
      if (s.len[i] == s.len[j] && !memcmp(s.ids[i], s.ids[j], s.len[i] * sizeof(int32_t)))
        distinct = 0;
    if (s.len[i] == want.len && !memcmp(s.ids[i], want.data, want.len * sizeof(int32_t)))
      has_want = 1;
  }
  CHECK(ok_all && ordered && distinct && has_want,
        "solutions: consistent %d, ordered %d, distinct %d, has the program %d", ok_all, ordered,
        distinct, has_want);
  CHECK(s.n > 0 && s.prior[0] == -3.0, "best prior %g (three operations)", s.n ? s.prior[0] : 0.0);
  lp_ids_free(&want);

  /* max_solutions, a callback that stops, a space without any solution */
  lp_solve_opts o = {sizeof o, 2, 0, 0};
  memset(&s, 0, sizeof s);
  CHECK(lp_domain_solve(d, ex, 2, &o, on_solution, &s, &complete, &e) == LP_OK && s.n == 2 &&
            complete == 0,
        "max_solutions 2: %d programs, complete %d", s.n, complete);
  memset(&s, 0, sizeof s);
  s.stop_after = 1;
  CHECK(lp_domain_solve(d, ex, 2, NULL, on_solution, &s, &complete, &e) == LP_OK && s.n == 1 &&
            complete == 0,
        "stopped by the callback: %d programs, complete %d", s.n, complete);
  const lp_example none[1] = {{{"abc", "ABCxyz"}, {3, 6}}};
  o = (lp_solve_opts){sizeof o, 0, 0, 2};
  memset(&s, 0, sizeof s);
  CHECK(lp_domain_solve(d, none, 1, &o, on_solution, &s, &complete, &e) == LP_OK && s.n == 0 &&
            complete == 1,
        "no program of 2 operations: %d programs, complete %d", s.n, complete);
  /* a writer of a shorter lp_solve_opts: max_size (past its struct_size) is not read */
  o = (lp_solve_opts){(uint32_t)(offsetof(lp_solve_opts, max_solutions) + sizeof(int32_t)), 1, 0,
                      999};
  memset(&s, 0, sizeof s);
  CHECK(lp_domain_solve(d, ex, 2, &o, on_solution, &s, &complete, &e) == LP_OK && s.n == 1,
        "short opts: %s", e.msg);
  /* bad arguments */
  o = (lp_solve_opts){sizeof o, 0, 0, 17};
  CHECK(lp_domain_solve(d, ex, 2, &o, on_solution, &s, &complete, &e) == LP_ELIMIT &&
            has(e.msg, "max_size 17"),
        "max_size 17: %s", e.msg);
  o = (lp_solve_opts){sizeof o, -1, 0, 0};
  CHECK(lp_domain_solve(d, ex, 2, &o, on_solution, &s, &complete, &e) == LP_EINVAL && e.msg[0],
        "max_solutions -1: %s", e.msg);
  CHECK(lp_domain_solve(d, ex, 2, NULL, NULL, NULL, &complete, &e) == LP_EINVAL && e.msg[0],
        "no callback: %s", e.msg);
}

static void test_toy(void) {
  lp_err e = {0};
  lp_domain *d = lp_domain_open(toy_path, NULL, &e);
  CHECK(d != NULL, "cannot open the toy by path: %s", e.msg);
  if (!d) return;
  const lp_domain_desc *desc = lp_domain_desc_of(d);
  CHECK(strcmp(lp_domain_name(d), "toy") == 0 && strcmp(lp_domain_path(d), toy_path) == 0,
        "name %s path %s", lp_domain_name(d), lp_domain_path(d));
  char caps[128];
  CHECK(strcmp(lp_caps_string(desc->caps, caps, sizeof caps),
               "execute,check,generate,size,solve") == 0,
        "caps %s", caps);
  CHECK(lp_domain_has(d, LP_CAP_EXECUTE | LP_CAP_CHECK | LP_CAP_GENERATE | LP_CAP_LENGTH |
                             LP_CAP_SOLVE) &&
            !lp_domain_has(d, LP_CAP_PREFIX) && !lp_domain_has(d, LP_CAP_ANONYMISE),
        "lp_domain_has");
  CHECK(desc->anonymise == NULL && desc->prefix_ok == NULL, "absent capabilities have functions");
  test_toy_solve(d);

  /* Wrappers refuse what the toy cannot do. */
  int32_t up[] = {T_UPPER, T_EOS};
  int ok = 7;
  lp_example ex1 = {{"a", "A"}, {1, 1}};
  CHECK(lp_domain_prefix_ok(d, up, 2, &ex1, 1, &ok, &e) == LP_EUNSUP && e.code == LP_EUNSUP &&
            has(e.msg, "toy") && has(e.msg, "prefix") && ok == 7,
        "prefix_ok: %d %s", e.code, e.msg);

  /* Vocabularies. */
  lp_vocab_info vi;
  CHECK(lp_domain_program_vocab(d, &vi) == LP_OK && vi.size == T_COUNT && vi.pad == T_PAD &&
            vi.bos == T_BOS && vi.eos == T_EOS && vi.unk == -1,
        "program vocab %d %d %d %d %d", vi.size, vi.pad, vi.bos, vi.eos, vi.unk);
  for (int32_t i = 0; i < vi.size; i++)
    CHECK(lp_domain_program_token(d, i) && *lp_domain_program_token(d, i), "token %d has no text",
          i);
  CHECK(!lp_domain_program_token(d, -1) && !lp_domain_program_token(d, vi.size),
        "out-of-range token");
  CHECK(strcmp(lp_domain_program_token(d, T_APPEND), "append") == 0 &&
            strcmp(lp_domain_program_token(d, T_CHAR0 + 25), "'z'") == 0 &&
            strcmp(lp_domain_program_token(d, T_NUM1 + 8), "9") == 0,
        "token texts");
  CHECK(lp_domain_spec_vocab(d, &vi) == LP_OK && vi.size == 99 && vi.unk == 3 && vi.eos == 2,
        "spec vocab size %d unk %d", vi.size, vi.unk);
  lp_ids sids = {0};
  size_t unk = 5;
  CHECK(lp_domain_spec_encode(d, 1, "Ab \x01\xff", 5, &sids, &unk, &e) == LP_OK && sids.len == 5 &&
            sids.data[0] == 4 + 'A' - 32 && sids.data[1] == 4 + 'b' - 32 && sids.data[2] == 4 &&
            sids.data[3] == 3 && sids.data[4] == 3 && unk == 7,
        "spec_encode: %s (unk %zu)", e.msg, unk);
  CHECK(lp_domain_spec_encode(d, 2, "a", 1, &sids, NULL, &e) == LP_EINVAL && has(e.msg, "part 2"),
        "spec part 2: %s", e.msg);
  lp_ids_free(&sids);

  /* Programs: round trips through encode/decode. */
  roundtrip(d, "upper", "upper");
  roundtrip(d, "reverse ; lower", "reverse ; lower");
  roundtrip(d, "first 3 ; append 'x' ; last 9 ; append '0'",
            "first 3 ; append 'x' ; last 9 ; append '0'");
  roundtrip(d, "  upper;first 3 ;\tappend 'q'  ", "upper ; first 3 ; append 'q'");
  roundtrip(d, "last   1", "last 1");
  roundtrip(d,
            "upper ; upper ; upper ; upper ; upper ; upper ; upper ; upper ; upper ; upper ; "
            "upper ; upper ; upper ; upper ; upper ; lower",
            "upper ; upper ; upper ; upper ; upper ; upper ; upper ; upper ; upper ; upper ; "
            "upper ; upper ; upper ; upper ; upper ; lower");
  {
    lp_ids ids = {0};
    CHECK(lp_domain_program_encode(d, "first 3 ; append 'x'", 20, &ids, &e) == LP_OK &&
              ids.len == 6 && ids.data[0] == T_FIRST && ids.data[1] == T_NUM1 + 2 &&
              ids.data[2] == T_SEP && ids.data[3] == T_APPEND && ids.data[4] == T_CHAR0 + 23 &&
              ids.data[5] == T_EOS,
          "ids of \"first 3 ; append 'x'\"");
    lp_ids_free(&ids);
  }

  /* Strict parsing: the message names the column and what was expected. */
  parse_error(d, "", 0, LP_EINVAL, "column 1:", "end of program");
  parse_error(d, "upper ; frist 3", 15, LP_EINVAL, "column 9:", "\"frist\"");
  parse_error(d, "upper ;", 7, LP_EINVAL, "column 8:", "end of program");
  parse_error(d, "upper lower", 11, LP_EINVAL, "column 7:", "expected \";\"");
  parse_error(d, "first 0", 7, LP_EINVAL, "column 7:", "count 1-9");
  parse_error(d, "first 10", 8, LP_EINVAL, "column 7:", "\"10\"");
  parse_error(d, "first3", 6, LP_EINVAL, "column 6:", "space after \"first\"");
  parse_error(d, "append 'X'", 10, LP_EINVAL, "column 8:", "quoted character");
  parse_error(d, "append x", 8, LP_EINVAL, "column 8:", "quoted character");
  parse_error(d, "UPPER", 5, LP_EINVAL, "column 1:", "expected an operation");
  parse_error(d, "upper\0", 6, LP_EINVAL, "column 6:", "byte 0x00");
  parse_error(d,
              "upper ; upper ; upper ; upper ; upper ; upper ; upper ; upper ; upper ; upper ; "
              "upper ; upper ; upper ; upper ; upper ; upper ; upper",
              133, LP_ELIMIT, "column 129:", "more than 16 operations");

  /* Decoding checks the ids; anything after EOS is ignored. */
  decode_error(d, (const int32_t[]){T_FIRST, T_EOS}, 2, "count");
  decode_error(d, (const int32_t[]){T_PAD}, 1, "expected an operation");
  decode_error(d, (const int32_t[]){99}, 1, "out-of-range");
  decode_error(d, (const int32_t[]){T_EOS, T_UPPER}, 2, "empty program");
  decode_error(d, NULL, 0, "empty program");
  decode_error(d, (const int32_t[]){T_UPPER, T_SEP, T_EOS}, 3, "after \";\"");
  decode_error(d, (const int32_t[]){T_UPPER, T_LOWER}, 2, "expected \";\"");
  decode_error(d, (const int32_t[]){T_APPEND, T_NUM1}, 2, "character");
  {
    lp_buf out = {0};
    CHECK(lp_domain_program_decode(d, (const int32_t[]){T_UPPER, T_EOS, 77, -5}, 4, &out, &e) ==
                  LP_OK &&
              strcmp(out.data, "upper") == 0,
          "ids after EOS: %s", e.msg);
    out.len = 0;
    CHECK(
        lp_domain_program_decode(d, (const int32_t[]){T_LAST, T_NUM1 + 1}, 2, &out, &e) == LP_OK &&
            strcmp(out.data, "last 2") == 0,
        "ids without EOS: %s", e.msg);
    lp_buf_free(&out);
  }

  /* Execution (appends to out; any bytes in, including NUL and non-UTF-8). */
  run(d, "upper", "Hello, World", 12, "HELLO, WORLD", 12);
  run(d, "lower ; reverse", "AbC", 3, "cba", 3);
  run(d, "first 3 ; append 'x'", "hello", 5, "helx", 4);
  run(d, "last 2", "a", 1, "a", 1);
  run(d, "last 2", "abcdef", 6, "ef", 2);
  run(d, "reverse", "", 0, "", 0);
  run(d, "append '7' ; append 'z' ; upper", "", 0, "7Z", 2);
  run(d, "reverse", "a\0\xff", 3, "\xff\0a", 3);
  {
    lp_buf out = {0};
    CHECK(lp_domain_execute(d, (const int32_t[]){T_SEP}, 1, "a", 1, &out, &e) == LP_EINVAL &&
              e.msg[0],
          "execute bad ids: %s", e.msg);
    lp_buf_free(&out);
  }

  /* check and program_size. */
  {
    lp_ids ids = {0};
    CHECK(lp_domain_program_encode(d, "upper ; last 3 ; reverse", 24, &ids, &e) == LP_OK, "%s",
          e.msg);
    lp_example ex[2] = {{{"hello", "OLL"}, {5, 3}}, {{"ab", "BA"}, {2, 2}}};
    ok = -1;
    CHECK(lp_domain_check(d, ids.data, ids.len, ex, 2, &ok, &e) == LP_OK && ok == 1,
          "consistent: %s", e.msg);
    ex[1].part[1] = "BX";
    CHECK(lp_domain_check(d, ids.data, ids.len, ex, 2, &ok, &e) == LP_OK && ok == 0,
          "inconsistent");
    ex[1].len[1] = 1;
    ex[1].part[1] = "B";
    CHECK(lp_domain_check(d, ids.data, ids.len, ex, 2, &ok, &e) == LP_OK && ok == 0,
          "shorter output");
    CHECK(lp_domain_check(d, ids.data, ids.len, ex, 0, &ok, &e) == LP_OK && ok == 1, "no examples");
    int32_t size = 0;
    CHECK(lp_domain_program_size(d, ids.data, ids.len, &size, &e) == LP_OK && size == 3, "size %d",
          (int)size);
    lp_ids_free(&ids);
  }

  /* generate: deterministic, honours min/max size and n_examples. */
  {
    lp_task a = {0}, b = {0};
    lp_gen_opts o = {sizeof o, 2, 5, 4};
    int seen[6] = {0}, bad = 0;
    for (uint64_t s = 0; s < 200 && !bad; s++) {
      lp_task_free(&a);
      if (lp_domain_generate(d, lp_task_seed(7, s), &o, &a, &e)) {
        CHECK(0, "generate seed %llu: %s", (unsigned long long)s, e.msg);
        bad = 1;
        break;
      }
      int32_t size = 0;
      lp_buf text = {0};
      lp_ids again = {0};
      lp_domain_program_size(d, a.program.data, a.program.len, &size, &e);
      int cons = task_consistent(d, &a, &e);
      int dec = lp_domain_program_decode(d, a.program.data, a.program.len, &text, &e);
      int enc = dec ? -1 : lp_domain_program_encode(d, text.data, text.len, &again, &e);
      if (size < 2 || size > 5 || a.n_parts != 2 || a.examples.len != 8 || cons != 1 || enc ||
          again.len != a.program.len ||
          memcmp(again.data, a.program.data, again.len * sizeof(int32_t))) {
        CHECK(0, "generated task %llu: size %d, parts %u, %zu strings, consistent %d, \"%s\" %s",
              (unsigned long long)s, (int)size, a.n_parts, a.examples.len, cons,
              text.data ? text.data : "", e.msg);
        bad = 1;
      } else {
        seen[size] = 1;
      }
      lp_buf_free(&text);
      lp_ids_free(&again);
    }
    CHECK(bad || (seen[2] && seen[3] && seen[4] && seen[5]), "sizes 2..5 not all generated");
    lp_task_free(&a);
    CHECK(lp_domain_generate(d, 12345, &o, &a, &e) == LP_OK &&
              lp_domain_generate(d, 12345, &o, &b, &e) == LP_OK && task_equal(&a, &b),
          "same seed, different task");
    lp_task_free(&b);
    CHECK(lp_domain_generate(d, 12346, &o, &b, &e) == LP_OK && !task_equal(&a, &b),
          "different seeds, same task");
    lp_task_free(&a);
    lp_task_free(&b);
    /* Defaults: opts NULL -> 1..4 operations, 3 examples. */
    int32_t size = 0;
    CHECK(lp_domain_generate(d, 1, NULL, &a, &e) == LP_OK && a.examples.len == 6 &&
              lp_domain_program_size(d, a.program.data, a.program.len, &size, &e) == LP_OK &&
              size >= 1 && size <= 4,
          "defaults: %zu strings, size %d, %s", a.examples.len, (int)size, e.msg);
    lp_task_free(&a);
    /* A writer of an older, shorter lp_gen_opts: fields past its struct_size are not read. */
    lp_gen_opts old = {(uint32_t)(offsetof(lp_gen_opts, min_size) + sizeof(int32_t)), 3, -99, 999};
    CHECK(lp_domain_generate(d, 2, &old, &a, &e) == LP_OK && a.examples.len == 6 &&
              lp_domain_program_size(d, a.program.data, a.program.len, &size, &e) == LP_OK &&
              size >= 3 && size <= 4,
          "short opts: %zu strings, size %d, %s", a.examples.len, (int)size, e.msg);
    lp_task_free(&a);
    o = (lp_gen_opts){sizeof o, 5, 3, 0};
    CHECK(lp_domain_generate(d, 1, &o, &a, &e) == LP_EINVAL && has(e.msg, "min_size 5"),
          "min > max: %s", e.msg);
    lp_task_free(&a);
    o = (lp_gen_opts){sizeof o, 1, 17, 0};
    CHECK(lp_domain_generate(d, 1, &o, &a, &e) == LP_ELIMIT && has(e.msg, "17"), "max 17: %s",
          e.msg);
    lp_task_free(&a);
  }

  test_desc_validate(desc);
  lp_domain_free(d);

  /* create() options. */
  d = lp_domain_open(toy_path, "max_ops=2", &e);
  CHECK(d != NULL, "max_ops=2: %s", e.msg);
  if (d) {
    parse_error(d, "upper ; lower ; reverse", 23, LP_ELIMIT, "column 17:", "more than 2");
    lp_domain_free(d);
  }
  memset(&e, 0, sizeof e);
  d = lp_domain_open(toy_path, "bogus", &e);
  CHECK(d == NULL && e.code == LP_EINVAL && has(e.msg, "cannot create an instance") &&
            has(e.msg, "\"bogus\"") && has(e.msg, toy_path),
        "bad options: %d %s", e.code, e.msg);
  lp_domain_free(d);
}

/* ------------------------------------------------------------------ JSONL */

typedef struct {
  int rc;
  size_t lineno;
  const char *text; /* expected line, for rc == 1 */
} want_line;

static void expect_lines(lp_jsonl *r, const char *what, const want_line *w, size_t n) {
  for (size_t i = 0; i <= n; i++) {
    const char *line = NULL;
    size_t len = 0, lineno = 0;
    lp_err e = {0};
    int rc = lp_jsonl_next(r, &line, &len, &lineno, &e);
    if (i == n) {
      CHECK(rc == 0, "%s: expected the end, got rc %d (line %zu)", what, rc, lineno);
      break;
    }
    CHECK(rc == w[i].rc && lineno == w[i].lineno,
          "%s: item %zu: rc %d line %zu, want rc %d line %zu (%s)", what, i, rc, lineno, w[i].rc,
          w[i].lineno, e.msg);
    if (rc == 1 && w[i].rc == 1)
      CHECK(len == strlen(w[i].text) && memcmp(line, w[i].text, len) == 0 && line[len] == 0,
            "%s: line %zu is \"%.*s\", want \"%s\"", what, lineno, (int)len, line, w[i].text);
    if (rc == LP_ELIMIT)
      CHECK(has(e.msg, fmt(":%zu: line longer than the limit", w[i].lineno)), "%s: message %s",
            what, e.msg);
    if (rc < 0 && rc != LP_ELIMIT) break;
  }
}

static void test_jsonl(void) {
  lp_err e = {0};
  const char *data = "{\"a\":1}\n\n   \t\n{\"b\":2}\r\n\r\nlast";
  lp_jsonl *r = lp_jsonl_open_mem(data, strlen(data), 0, &e);
  CHECK(r != NULL, "open_mem: %s", e.msg);
  expect_lines(r, "blank/CRLF",
               (const want_line[]){{1, 1, "{\"a\":1}"}, {1, 4, "{\"b\":2}"}, {1, 6, "last"}}, 3);
  lp_jsonl_free(r);

  /* Over-long lines are reported (with their number) and reading goes on. */
  const char *longer =
      "short\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nsixteen-bytes-"
      "ok\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
  r = lp_jsonl_open_mem(longer, strlen(longer), 16, &e);
  expect_lines(
      r, "max_line 16",
      (const want_line[]){
          {1, 1, "short"}, {LP_ELIMIT, 2, NULL}, {1, 3, "sixteen-bytes-ok"}, {LP_ELIMIT, 4, NULL}},
      4);
  lp_jsonl_free(r);

  r = lp_jsonl_open_mem("", 0, 0, &e);
  expect_lines(r, "empty", NULL, 0);
  lp_jsonl_free(r);

  /* Files: a 100000-byte line crosses the reader's 64 KiB buffer. */
  size_t big = 100000;
  lp_buf content = {0};
  char *line1 = malloc(big + 1);
  for (size_t i = 0; i < big; i++) line1[i] = (char)('a' + i % 26);
  line1[big] = 0;
  lp_buf_append(&content, line1, big);
  lp_buf_append(&content, "\r\n{\"k\":2}\r\n\n  \nend\n", 19);
  const char *path = fmt("%s/in.jsonl", tmp_dir);
  CHECK(lp_write_file_atomic(path, content.data, content.len, &e) == LP_OK, "%s", e.msg);
  r = lp_jsonl_open(path, 0, &e);
  CHECK(r != NULL, "open %s: %s", path, e.msg);
  if (r) {
    expect_lines(r, "file", (const want_line[]){{1, 1, line1}, {1, 2, "{\"k\":2}"}, {1, 5, "end"}},
                 3);
    lp_jsonl_free(r);
  }
  r = lp_jsonl_open(path, 1000, &e);
  if (r) {
    expect_lines(r, "file, max 1000",
                 (const want_line[]){{LP_ELIMIT, 1, NULL}, {1, 2, "{\"k\":2}"}, {1, 5, "end"}}, 3);
    lp_jsonl_free(r);
  }
  free(line1);
  lp_buf_free(&content);

  const char *missing = fmt("%s/no-such-input.jsonl", tmp_dir);
  memset(&e, 0, sizeof e);
  CHECK(lp_jsonl_open(missing, 0, &e) == NULL && e.code == LP_EIO && has(e.msg, missing) &&
            has(e.msg, "No such file"),
        "missing file: %d %s", e.code, e.msg);
}

static void record_error(const char *line, const char *n1, const char *n2) {
  lp_record rec;
  lp_err e = {0};
  int rc = lp_record_parse(line, strlen(line), &rec, &e);
  CHECK(rc == LP_EINVAL && e.code == LP_EINVAL && has(e.msg, n1) && (!n2 || has(e.msg, n2)),
        "record %s: rc %d \"%s\" (want \"%s\" \"%s\")", line, rc, e.msg, n1, n2 ? n2 : "");
  CHECK(rec.json == NULL && rec.inputs.len == 0, "a failed parse leaves a record to free");
  lp_record_free(&rec);
}

static void test_record(void) {
  lp_record rec;
  lp_err e = {0};
  const char *good =
      "{\"program\":\"upper\",\"inputs\":[\"a\",\"b\\u0000c\"],\"outputs\":[\"A\",\"B\"],"
      "\"tokens\":[3,2],\"extra\":{\"k\":[1]}}";
  CHECK(lp_record_parse(good, strlen(good), &rec, &e) == LP_OK, "good record: %s", e.msg);
  CHECK(rec.program && rec.program_len == 5 && strcmp(rec.program, "upper") == 0, "program");
  CHECK(rec.has_inputs && rec.inputs.len == 2 && rec.inputs.items[1].len == 3 &&
            memcmp(rec.inputs.items[1].data, "b\0c", 3) == 0,
        "inputs with NUL");
  CHECK(rec.has_outputs && rec.outputs.len == 2 && rec.has_tokens && rec.tokens.len == 2 &&
            rec.tokens.data[0] == 3,
        "outputs/tokens");
  CHECK(lp_record_require(&rec, LP_REC_PROGRAM | LP_REC_INPUTS | LP_REC_OUTPUTS | LP_REC_TOKENS,
                          &e) == LP_OK,
        "require");
  lp_record_free(&rec);
  lp_record_free(&rec); /* freeing twice is fine: free leaves it zeroed */

  const char *only = "{\"program\":\"upper\",\"inputs\":[]}";
  CHECK(lp_record_parse(only, strlen(only), &rec, &e) == LP_OK && rec.has_inputs &&
            rec.inputs.len == 0,
        "empty inputs: %s", e.msg);
  CHECK(lp_record_require(&rec, LP_REC_PROGRAM | LP_REC_OUTPUTS, &e) == LP_EINVAL &&
            has(e.msg, "missing field \"outputs\""),
        "require outputs: %s", e.msg);
  lp_record_free(&rec);
  const char *noin = "{\"program\":\"upper\"}";
  CHECK(lp_record_parse(noin, strlen(noin), &rec, &e) == LP_OK &&
            lp_record_require(&rec, LP_REC_PROGRAM | LP_REC_INPUTS, &e) == LP_EINVAL &&
            has(e.msg, "missing field \"inputs\""),
        "require inputs: %s", e.msg);
  lp_record_free(&rec);

  record_error("[1,2]", "not a JSON object", NULL);
  record_error("\"str\"", "invalid JSON at column",
               NULL); /* jansson: only arrays/objects at top level */
  record_error("{\"program\":\"upper\",\"inputs\":[\"a\",3]}",
               "field \"inputs\": element 2 is not a string", NULL);
  record_error("{\"outputs\":\"a\"}", "field \"outputs\" must be an array of strings", NULL);
  record_error("{\"program\":5}", "field \"program\" must be a string", NULL);
  record_error("{\"tokens\":[1,3000000000]}", "field \"tokens\": element 2 is not a 32-bit integer",
               NULL);
  record_error("{\"a\": }", "invalid JSON at column 7", NULL);
  record_error("{\"program\": \"upper\",}", "invalid JSON at column 21", NULL);
  record_error("{\"program\":\"\xff\"}", "invalid JSON at column 12", "0xff");
  record_error("{\"program\":\"\xc3\x28\"}", "invalid JSON", NULL);
  record_error("{\"program\":\"a\",\"program\":\"b\"}", "invalid JSON", "duplicate");
  record_error("{\"a\":1} x", "invalid JSON at column 9", NULL);
}

/* ------------------------------------------------------------ atomic write */

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  lp_buf b = {0};
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) lp_buf_append(&b, chunk, n);
  fclose(f);
  if (!b.data) lp_buf_append(&b, "", 0);
  *len = b.len;
  return b.data;
}

static int temp_files_left(const char *dir) {
  DIR *dp = opendir(dir);
  int n = 0;
  struct dirent *de;
  while (dp && (de = readdir(dp)))
    if (strstr(de->d_name, ".tmp")) n++;
  if (dp) closedir(dp);
  return n;
}

static void test_atomic(void) {
  const char *dir = fmt("%s/atomic", tmp_dir);
  mkdir(dir, 0755);
  const char *path = fmt("%s/out.txt", dir);
  lp_err e = {0};
  size_t len = 0;
  char *got;
  CHECK(lp_write_file_atomic(path, "hello, world\n", 13, &e) == LP_OK, "write: %s", e.msg);
  got = slurp(path, &len);
  CHECK(got && len == 13 && memcmp(got, "hello, world\n", 13) == 0,
        "content after the first write");
  free(got);
  CHECK(lp_write_file_atomic(path, "a\0b", 3, &e) == LP_OK, "replace: %s", e.msg);
  got = slurp(path, &len);
  CHECK(got && len == 3 && memcmp(got, "a\0b", 3) == 0, "content after the replacement (len %zu)",
        len);
  free(got);
  CHECK(lp_write_file_atomic(path, NULL, 0, &e) == LP_OK, "empty: %s", e.msg);
  got = slurp(path, &len);
  CHECK(got && len == 0, "empty file has %zu bytes", len);
  free(got);
  struct stat st;
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) != 0, "mode");
  CHECK(temp_files_left(dir) == 0, "a temp file is left in %s", dir);
  const char *bad = fmt("%s/no-such-dir/out.txt", tmp_dir);
  memset(&e, 0, sizeof e);
  CHECK(lp_write_file_atomic(bad, "x", 1, &e) == LP_EIO && has(e.msg, bad), "bad dir: %d %s",
        e.code, e.msg);
  CHECK(temp_files_left(dir) == 0, "a temp file is left");
  /* The streaming form: pieces through stdio, then commit or abort. */
  lp_atomic_file o;
  CHECK(lp_atomic_open(&o, path, &e) == LP_OK && o.f, "atomic open: %s", e.msg);
  if (o.f) {
    fprintf(o.f, "line %d\n", 1);
    fputs("line 2\n", o.f);
    CHECK(temp_files_left(dir) == 1, "no temporary file while writing");
    CHECK(lp_atomic_commit(&o, &e) == LP_OK && !o.f && !o.path && !o.tmp, "commit: %s", e.msg);
  }
  got = slurp(path, &len);
  CHECK(got && len == 14 && memcmp(got, "line 1\nline 2\n", 14) == 0, "streamed content");
  free(got);
  CHECK(lp_atomic_open(&o, path, &e) == LP_OK, "atomic open: %s", e.msg);
  if (o.f) fputs("never seen", o.f);
  lp_atomic_abort(&o);
  lp_atomic_abort(&o); /* twice: a no-op */
  got = slurp(path, &len);
  CHECK(got && len == 14 && temp_files_left(dir) == 0, "abort left the old file alone");
  free(got);
  memset(&e, 0, sizeof e);
  CHECK(lp_atomic_open(&o, dir, &e) == LP_OK, "open beside a folder: %s", e.msg);
  CHECK(lp_atomic_commit(&o, &e) == LP_EIO && has(e.msg, "rename failed") && has(e.msg, dir),
        "rename over a folder: %d %s", e.code, e.msg);
  CHECK(lp_atomic_commit(&o, &e) == LP_EINVAL, "commit with nothing open");
  CHECK(stat(fmt("%s.tmp.%ld", dir, (long)getpid()), &st) != 0 && temp_files_left(dir) == 0,
        "a temp file is left");
  /* Plugins reach the same writer and error setter through the host table
   * (write_file_atomic: ABI 1.3). */
  const lp_host_api *h = lp_host_api_get();
  CHECK(h->struct_size == sizeof(lp_host_api) && h->abi_minor == LP_PLUGIN_ABI_MINOR &&
            LP_PLUGIN_ABI_MINOR >= 3 && LP_HOST_HAS(h, write_file_atomic) &&
            h->write_file_atomic == lp_write_file_atomic && h->set_error == lp_err_set,
        "host table");
  CHECK(h->write_file_atomic(path, "via host", 8, &e) == LP_OK, "host write: %s", e.msg);
  got = slurp(path, &len);
  CHECK(got && len == 8 && memcmp(got, "via host", 8) == 0, "content written through the host");
  free(got);
  memset(&e, 0, sizeof e);
  CHECK(h->write_file_atomic(bad, "x", 1, &e) == LP_EIO && has(e.msg, bad), "host bad dir: %s",
        e.msg);
  CHECK(h->set_error(&e, LP_EINVAL, "n=%d", 7) == LP_EINVAL && e.code == LP_EINVAL &&
            strcmp(e.msg, "n=7") == 0 && h->set_error(NULL, LP_EIO, "x") == LP_EIO,
        "host set_error");
}

/* --------------------------------------------------------------------- main */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s TOY.so FIXTURES_DIR\n", argv[0]);
    return 2;
  }
  toy_path = argv[1];
  fix_dir = argv[2];
  snprintf(toy_dir, sizeof toy_dir, "%s", toy_path);
  char *slash = strrchr(toy_dir, '/');
  if (!slash) {
    fprintf(stderr, "TOY.so must be a path with a folder\n");
    return 2;
  }
  *slash = 0;
  const char *base = getenv("TMPDIR");
  snprintf(tmp_dir, sizeof tmp_dir, "%.40s/lpsynth-rt-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  unsetenv("LPSYNTH_PLUGIN_PATH");

  test_fixtures();
  test_by_name();
  test_toy();
  test_jsonl();
  test_record();
  test_atomic();

  nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  printf("test_runtime: %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}

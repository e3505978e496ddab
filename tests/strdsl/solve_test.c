/* strdsl_solve: the string domain's exact solver (solve, ABI 1.2).
 *
 * Through the plugin module loaded with dlopen (as the host does): the paper's
 * Figure 1 task and generated tasks (every reported program passes check(),
 * the programs are distinct, their priors never increase, max_solutions is
 * respected, a task whose complete search found nothing really has no
 * program), a task no program can fit, the option fields, a callback that
 * stops, every output empty, bad arguments. Through sd_solve (strdsl_core)
 * with self_check: the solver's shortcuts agree with the interpreter.
 * No timing assertions.
 *
 * Usage: strdsl_solve PATH/lpsynth_string.so PATH/figure1.jsonl */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_ON_STDOUT
#include "../common/check.h"
#include "lpsynth/plugin.h"
#include "strdsl.h"

#include "mini_host.h"

static const lp_domain_desc *D;
static void *self;

/* ---- collecting the reported programs ---- */
typedef struct found {
  int32_t **ids;
  size_t *len;
  double *prior;
  size_t n, cap;
  size_t stop_after; /* the callback asks to stop after this many (0: never) */
} found;

static int on_solution(void *ctx, const int32_t *ids, size_t n, double prior) {
  found *f = ctx;
  if (f->n == f->cap) {
    size_t nc = f->cap ? 2 * f->cap : 64;
    f->ids = realloc(f->ids, nc * sizeof *f->ids);
    f->len = realloc(f->len, nc * sizeof *f->len);
    f->prior = realloc(f->prior, nc * sizeof *f->prior);
    if (!f->ids || !f->len || !f->prior) abort();
    f->cap = nc;
  }
  f->ids[f->n] = malloc((n ? n : 1) * sizeof *ids);
  if (!f->ids[f->n]) abort();
  memcpy(f->ids[f->n], ids, n * sizeof *ids);
  f->len[f->n] = n;
  f->prior[f->n] = prior;
  f->n++;
  return f->stop_after && f->n >= f->stop_after;
}

static void found_clear(found *f) {
  for (size_t i = 0; i < f->n; i++) free(f->ids[i]);
  free(f->ids);
  free(f->len);
  free(f->prior);
  memset(f, 0, sizeof *f);
}

/* Every program passes check(), ends with EOS, has at most max_size
 * expressions; distinct; priors non-increasing; at most max_solutions. */
static void check_found(const char *what, const found *f, const lp_example *ex, size_t n_ex,
                        int max_solutions, int max_size) {
  lp_err err = {0};
  size_t bad_check = 0, bad_size = 0, dup = 0, order = 0;
  for (size_t i = 0; i < f->n; i++) {
    int ok = 0;
    int32_t size = 0;
    if (D->check(self, f->ids[i], f->len[i], ex, n_ex, &ok, &err) != LP_OK || !ok) bad_check++;
    if (!f->len[i] || f->ids[i][f->len[i] - 1] != 2 ||
        D->program_size(self, f->ids[i], f->len[i], &size, &err) != LP_OK || size < 1 ||
        size > max_size)
      bad_size++;
    if (i && f->prior[i] > f->prior[i - 1]) order++;
    for (size_t j = 0; j < i; j++)
      if (f->len[i] == f->len[j] && !memcmp(f->ids[i], f->ids[j], f->len[i] * sizeof(int32_t)))
        dup++;
  }
  CHECK(!bad_check, "%s: %zu of %zu programs fail check()", what, bad_check, f->n);
  CHECK(!bad_size, "%s: %zu programs without EOS or of a bad size", what, bad_size);
  CHECK(!dup, "%s: %zu repeated programs", what, dup);
  CHECK(!order, "%s: the prior increases %zu times", what, order);
  CHECK(f->n <= (size_t)max_solutions, "%s: %zu programs, max_solutions %d", what, f->n,
        max_solutions);
}

static int decode_prog(const int32_t *ids, size_t n, char *buf, size_t cap) {
  lp_buf b = {0};
  lp_err err = {0};
  int rc = D->program_decode(self, ids, n, &b, &err);
  const char *src = rc == LP_OK && b.data ? b.data : err.msg;
  size_t m = strlen(src) < cap - 1 ? strlen(src) : cap - 1;
  memcpy(buf, src, m);
  buf[m] = 0;
  free(b.data);
  return rc;
}

/* ---- the paper's Figure 1 ---- */
static void test_figure1(const char *path) {
  json_error_t jerr;
  FILE *fp = fopen(path, "r");
  CHECK(fp != NULL, "cannot open %s", path);
  if (!fp) return;
  char line[8192];
  json_t *root = fgets(line, sizeof line, fp) ? json_loads(line, 0, &jerr) : NULL;
  fclose(fp);
  json_t *jin = json_object_get(root, "inputs"), *jout = json_object_get(root, "outputs");
  CHECK(json_is_array(jin) && json_is_array(jout) && json_array_size(jin) == 4 &&
            json_array_size(jout) == 4,
        "%s: no inputs/outputs", path);
  if (!json_is_array(jin) || json_array_size(jin) != 4 || json_array_size(jout) != 4) {
    json_decref(root);
    return;
  }
  lp_example ex[4];
  for (size_t i = 0; i < 4; i++) {
    json_t *a = json_array_get(jin, i), *b = json_array_get(jout, i);
    ex[i].part[0] = json_string_value(a);
    ex[i].len[0] = json_string_length(a);
    ex[i].part[1] = json_string_value(b);
    ex[i].len[1] = json_string_length(b);
  }
  found f = {0};
  lp_err err = {0};
  int complete = -1;
  lp_solve_opts o = {sizeof o, 50, 60.0, 0};
  int rc = D->solve(self, ex, 4, &o, on_solution, &f, &complete, &err);
  CHECK(rc == LP_OK, "figure 1: %s", err.msg);
  CHECK(f.n == 50 && complete == 0, "figure 1: %zu programs (complete %d)", f.n, complete);
  check_found("figure 1", &f, ex, 4, 50, 20);
  /* the fewest expressions: three (a word, a space, a capital) */
  int32_t size = 0;
  if (f.n) {
    char text[512];
    decode_prog(f.ids[0], f.len[0], text, sizeof text);
    CHECK(D->program_size(self, f.ids[0], f.len[0], &size, &err) == LP_OK && size == 3 &&
              f.prior[0] > -4.0 && f.prior[0] <= -3.0,
          "figure 1: best program %s (size %d, prior %g)", text, (int)size, f.prior[0]);
    /* on a new name, the best program does what the paper's program does */
    lp_buf out = {0};
    CHECK(D->execute(self, f.ids[0], f.len[0], "Jacob Jones", 11, &out, &err) == LP_OK &&
              out.data && strcmp(out.data, "Jones J") == 0,
          "figure 1: %s on \"Jacob Jones\" gives \"%s\"", text, out.data ? out.data : err.msg);
    free(out.data);
  }
  found_clear(&f);

  /* max_solutions 1, and a callback that stops after 2 */
  o.max_solutions = 1;
  CHECK(D->solve(self, ex, 4, &o, on_solution, &f, &complete, &err) == LP_OK && f.n == 1 &&
            complete == 0,
        "figure 1, max_solutions 1: %zu programs", f.n);
  found_clear(&f);
  f.stop_after = 2;
  CHECK(D->solve(self, ex, 4, NULL, on_solution, &f, &complete, &err) == LP_OK && f.n == 2 &&
            complete == 0,
        "figure 1, stopped by the callback: %zu programs", f.n);
  found_clear(&f);
  json_decref(root);
}

/* ---- generated tasks ----
 * A generated program on the first SHORT characters of its inputs (outputs
 * recomputed with execute): small tasks keep the test fast, and the program
 * is consistent with them by construction. */
#define SHORT 16

static int short_task(uint64_t seed, lp_task *task, lp_example *ex, lp_buf *outs) {
  lp_err err = {0};
  lp_gen_opts g = {sizeof g, 1, 6, 4};
  memset(task, 0, sizeof *task);
  if (D->generate(self, seed, &g, task, &err) != LP_OK) {
    CHECK(0, "generate: %s", err.msg);
    return -1;
  }
  for (size_t i = 0; i < 4; i++) {
    const lp_buf *in = &task->examples.items[2 * i];
    ex[i].part[0] = in->data;
    ex[i].len[0] = in->len < SHORT ? in->len : SHORT;
    outs[i].len = 0;
    if (D->execute(self, task->program.data, task->program.len, ex[i].part[0], ex[i].len[0],
                   &outs[i], &err) != LP_OK) {
      CHECK(0, "execute: %s", err.msg);
      return -1;
    }
    ex[i].part[1] = outs[i].data ? outs[i].data : "";
    ex[i].len[1] = outs[i].len;
  }
  return 0;
}

static void task_free(lp_task *task) {
  free(task->program.data);
  for (size_t i = 0; i < task->examples.len; i++) free(task->examples.items[i].data);
  free(task->examples.items);
}

static void test_generated(void) {
  lp_err err = {0};
  const int n_tasks = 5, max_solutions = 25;
  size_t solved = 0;
  lp_buf outs[4];
  memset(outs, 0, sizeof outs);
  for (int t = 0; t < n_tasks; t++) {
    lp_task task;
    lp_example ex[4];
    if (short_task(1000 + (uint64_t)t, &task, ex, outs)) continue;
    found f = {0};
    int complete = -1;
    lp_solve_opts o = {sizeof o, max_solutions, 60.0, 10};
    char what[64];
    snprintf(what, sizeof what, "generated task %d", t);
    CHECK(D->solve(self, ex, 4, &o, on_solution, &f, &complete, &err) == LP_OK, "%s: %s", what,
          err.msg);
    check_found(what, &f, ex, 4, max_solutions, 10);
    /* the generating program has at most 6 expressions: a complete search finds some */
    CHECK(!(complete == 1 && f.n == 0), "%s: complete search without a program", what);
    if (f.n) solved++;
    found_clear(&f);
    task_free(&task);
  }
  for (size_t i = 0; i < 4; i++) free(outs[i].data);
  CHECK(solved == (size_t)n_tasks, "generated tasks: %zu of %d solved", solved, n_tasks);
}

/* sd_solve directly, with self_check: no shortcut disagrees with the
 * interpreter, and the programs it reports (as sd_prog) fit. */
typedef struct core_ctx {
  const sd_str *in, *out;
  size_t n_ex, n, bad;
  sd_str tmp;
} core_ctx;

static int on_core(void *ctx, const sd_prog *p, const int32_t *ids, size_t n, double prior) {
  core_ctx *c = ctx;
  (void)ids;
  (void)n;
  (void)prior;
  for (size_t k = 0; k < c->n_ex; k++) {
    if (sd_eval(p, c->in[k].c, c->in[k].n, &c->tmp) || c->tmp.n != c->out[k].n ||
        (c->tmp.n && memcmp(c->tmp.c, c->out[k].c, c->tmp.n * sizeof *c->tmp.c))) {
      c->bad++;
      break;
    }
  }
  c->n++;
  return 0;
}

static void test_core(void) {
  size_t mism = 0, bad = 0, solved = 0, tasks = 0;
  char msg[256];
  sd_str a = {0};
  sd_solve_opts so0 = {20, 30.0, 10, NULL, 1};
  CHECK(sd_solve(&a, &a, 1, &so0, NULL, NULL, NULL, NULL, msg, sizeof msg) == -1 && msg[0],
        "sd_solve without a callback: %s", msg);
  lp_buf outs[4];
  memset(outs, 0, sizeof outs);
  for (uint64_t seed = 2000; seed < 2003; seed++) {
    lp_task t;
    lp_example ex[4];
    char err[256];
    if (short_task(seed, &t, ex, outs)) continue;
    sd_str in[4], out[4];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    for (size_t i = 0; i < 4; i++) {
      sd_decode(ex[i].part[0], ex[i].len[0], &in[i]);
      sd_decode(ex[i].part[1], ex[i].len[1], &out[i]);
    }
    core_ctx c = {in, out, 4, 0, 0, {0}};
    sd_solve_opts so = {20, 60.0, 10, NULL, 1};
    sd_solve_stats st;
    int complete = -1;
    int rc = sd_solve(in, out, 4, &so, on_core, &c, &complete, &st, err, sizeof err);
    CHECK(rc == 0, "sd_solve seed %llu: %s", (unsigned long long)seed, err);
    mism += st.mismatches;
    bad += c.bad;
    solved += c.n > 0;
    tasks++;
    CHECK(st.reported == c.n, "stats: %zu reported, %zu seen", st.reported, c.n);
    sd_str_free(&c.tmp);
    for (size_t i = 0; i < 4; i++) {
      sd_str_free(&in[i]);
      sd_str_free(&out[i]);
    }
    task_free(&t);
  }
  for (size_t i = 0; i < 4; i++) free(outs[i].data);
  CHECK(mism == 0, "sd_solve: %zu shortcuts disagree with the interpreter", mism);
  CHECK(bad == 0, "sd_solve: %zu programs do not fit", bad);
  CHECK(solved == tasks, "sd_solve: %zu of %zu tasks solved", solved, tasks);
}

/* ---- special tasks ---- */
static void test_special(void) {
  lp_err err = {0};
  found f = {0};
  int complete = -1;
  /* '~' is outside the alphabet and in no input: no program */
  const lp_example none[2] = {{{"abc def", "abc~"}, {7, 4}}, {{"xy z", "xy~"}, {4, 3}}};
  CHECK(D->solve(self, none, 2, NULL, on_solution, &f, &complete, &err) == LP_OK && f.n == 0 &&
            complete == 1,
        "unsolvable: rc %d, %zu programs, complete %d: %s", err.code, f.n, complete, err.msg);
  found_clear(&f);
  /* characters outside the alphabet are fine when an input holds them */
  const lp_example uni[2] = {{{"h\xc3\xa9llo w\xc3\xb6rld", "w\xc3\xb6rld!"}, {13, 7}},
                             {{"\xc3\xa0 b\xff", "b\xff!"}, {5, 3}}};
  lp_solve_opts o = {sizeof o, 10, 30.0, 0};
  CHECK(D->solve(self, uni, 2, &o, on_solution, &f, &complete, &err) == LP_OK && f.n > 0,
        "outside the alphabet: %zu programs: %s", f.n, err.msg);
  check_found("outside the alphabet", &f, uni, 2, 10, 20);
  found_clear(&f);
  /* every output empty: single expressions that give "" */
  const lp_example empty[2] = {{{"abc", ""}, {3, 0}}, {{"", ""}, {0, 0}}};
  CHECK(D->solve(self, empty, 2, &o, on_solution, &f, &complete, &err) == LP_OK && f.n > 0 &&
            f.n <= 10,
        "empty outputs: %zu programs: %s", f.n, err.msg);
  check_found("empty outputs", &f, empty, 2, 10, 1);
  found_clear(&f);
  /* one example, a single constant */
  const lp_example one[1] = {{{"", "x"}, {0, 1}}};
  CHECK(D->solve(self, one, 1, &o, on_solution, &f, &complete, &err) == LP_OK && f.n >= 1,
        "constant: %zu programs: %s", f.n, err.msg);
  if (f.n) {
    char text[128];
    decode_prog(f.ids[0], f.len[0], text, sizeof text);
    CHECK(strcmp(text, "ConstStr('x')") == 0, "constant: %s", text);
  }
  check_found("constant", &f, one, 1, 10, 20);
  found_clear(&f);
  /* max_size 2 when 3 expressions are needed: nothing, complete */
  const lp_example three[2] = {{{"ab", "a.b"}, {2, 3}}, {{"cd", "c.d"}, {2, 3}}};
  o = (lp_solve_opts){sizeof o, 0, 0, 2};
  CHECK(D->solve(self, three, 2, &o, on_solution, &f, &complete, &err) == LP_OK && f.n == 0 &&
            complete == 1,
        "max_size 2: %zu programs, complete %d", f.n, complete);
  found_clear(&f);
  /* a shorter lp_solve_opts (an older caller): max_size past it is not read */
  o = (lp_solve_opts){(uint32_t)(offsetof(lp_solve_opts, max_solutions) + sizeof(int32_t)), 3, 0,
                      2};
  CHECK(D->solve(self, three, 2, &o, on_solution, &f, &complete, &err) == LP_OK && f.n == 3,
        "short opts: %zu programs: %s", f.n, err.msg);
  found_clear(&f);
}

static void expect_fail(const char *what, int code, const lp_example *ex, size_t n_ex,
                        const lp_solve_opts *o, lp_solution_fn fn, const char *needle) {
  lp_err err = {0};
  found f = {0};
  int complete = 7;
  int rc = D->solve(self, ex, n_ex, o, fn, &f, &complete, &err);
  CHECK(rc == code && err.code == code && strstr(err.msg, needle) && complete == 0 && f.n == 0,
        "%s: rc %d, message \"%s\"", what, rc, err.msg);
  found_clear(&f);
}

static void test_bad_args(void) {
  const lp_example ex[1] = {{{"ab", "a"}, {2, 1}}};
  lp_solve_opts o = {sizeof o, 0, 0, 0};
  expect_fail("no callback", LP_EINVAL, ex, 1, NULL, NULL, "callback");
  expect_fail("no examples", LP_EINVAL, ex, 0, NULL, on_solution, "at least one example");
  expect_fail("NULL examples", LP_EINVAL, NULL, 1, NULL, on_solution, "NULL");
  const lp_example nullpart[1] = {{{NULL, "a"}, {3, 1}}};
  expect_fail("NULL input", LP_EINVAL, nullpart, 1, NULL, on_solution, "NULL");
  o.max_solutions = -1;
  expect_fail("max_solutions -1", LP_EINVAL, ex, 1, &o, on_solution, "max_solutions");
  o.max_solutions = 0;
  o.max_size = -2;
  expect_fail("max_size -2", LP_EINVAL, ex, 1, &o, on_solution, "max_size");
  o.max_size = 5000;
  expect_fail("max_size 5000", LP_ELIMIT, ex, 1, &o, on_solution, "max_size 5000");
  o.max_size = 0;
  o.time_limit = 0.0 / 0.0;
  expect_fail("time_limit NaN", LP_EINVAL, ex, 1, &o, on_solution, "time_limit");
  char *big = malloc(1200);
  if (!big) abort();
  memset(big, 'a', 1200);
  const lp_example longer[1] = {{{big, "a"}, {1200, 1}}};
  expect_fail("a long input", LP_ELIMIT, longer, 1, NULL, on_solution, "at most 1000");
  free(big);
  big = malloc(5000);
  if (!big) abort();
  memset(big, 'b', 5000);
  const lp_example huge[1] = {{{"b", big}, {1, 5000}}};
  expect_fail("a huge output", LP_ELIMIT, huge, 1, NULL, on_solution, "at most 1000");
  free(big);
  lp_example *many = calloc(1001, sizeof *many);
  if (!many) abort();
  for (size_t i = 0; i < 1001; i++) many[i] = ex[0];
  expect_fail("1001 examples", LP_ELIMIT, many, 1001, NULL, on_solution, "at most 1000");
  free(many);
  lp_err err = {0};
  CHECK(D->solve(NULL, ex, 1, NULL, on_solution, NULL, NULL, &err) == LP_EINVAL && err.msg[0],
        "no instance: %s", err.msg);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s PATH/lpsynth_string.so PATH/figure1.jsonl\n", argv[0]);
    return 2;
  }
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    printf("cannot load %s: %s\n", argv[1], dlerror());
    return 1;
  }
  lp_plugin_entry_fn entry;
  void *sym = dlsym(h, LP_PLUGIN_ENTRY_SYMBOL);
  memcpy(&entry, &sym, sizeof entry);
  D = sym ? entry() : NULL;
  CHECK(D && (D->caps & LP_CAP_SOLVE) && D->solve && D->abi_minor >= 2, "no solve capability");
  lp_err err = {0};
  if (!D || !D->solve || D->create(&host, NULL, &self, &err) != LP_OK) {
    printf("cannot use the plugin: %s\n", err.msg);
    return 1;
  }
  test_bad_args();
  test_special();
  test_figure1(argv[2]);
  test_generated();
  test_core();
  D->destroy(self);
  dlclose(h);
  printf("strdsl solve: %d/%d checks pass\n", checks - failures, checks);
  return failures ? 1 : 0;
}

/* strdsl_prefix: exactness of sd_prefix_check (prefix.c), the string
 * domain's prefix judgement for execution-guided search.
 *
 *  - every prefix of the true program of many generated tasks is accepted;
 *  - random wrong prefixes (a true prefix, then a syntactically valid wrong
 *    token, then possibly more true tokens) get the same answer as a brute
 *    force oracle written independently of prefix.c: it walks the token tree
 *    of every completion of the trailing expression (with the DSL's parser),
 *    runs the whole program so far with sd_eval and compares bytes. Some of
 *    them must be refused;
 *  - hand-written cases (Figure 1 of the paper, empty targets, outputs already
 *    complete, bytes outside UTF-8);
 *  - the opt-in SD_PREFIX_PRODUCTIVE mode: accepts every prefix of the true
 *    programs (which have no expression that outputs "" everywhere), never
 *    accepts what the exact mode refuses, and hand-written cases.
 *
 * Usage: strdsl_prefix [--bench]   (--bench: prints the cost per call of
 * sd_prefix_check on the prefixes above, and on worst cases; no assertions on
 * times). Figure 1's examples are those of domains/string/figure1.jsonl. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK_ON_STDOUT
#include "../common/check.h"
#include "lpsynth/plugin.h"
#include "strdsl.h"

/* ---- small helpers ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct ids_t {
  int32_t *v;
  size_t n, cap;
} ids_t;

/* Tokens of program text (with EOS). Aborts the test on a bad text. */
static ids_t tokens_of(const char *text) {
  sd_prog p = {0};
  ids_t t = {0};
  char err[256];
  if (sd_parse(text, strlen(text), &p, err, sizeof err) || sd_to_tokens(&p, &t.v, &t.n, &t.cap)) {
    printf("FAIL: cannot tokenise %s: %s\n", text, err);
    exit(1);
  }
  sd_prog_clear(&p);
  return t;
}

static int judge_f(const int32_t *ids, size_t n, const lp_example *ex, size_t n_ex,
                   unsigned flags) {
  int ok = -1;
  int rc = sd_prefix_check(ids, n, ex, n_ex, flags, &ok);
  CHECK(rc == 0, "sd_prefix_check returned %d", rc);
  CHECK(ok == 0 || ok == 1, "ok = %d", ok);
  return ok;
}

static int judge(const int32_t *ids, size_t n, const lp_example *ex, size_t n_ex) {
  return judge_f(ids, n, ex, n_ex, 0);
}

static void print_ids(const int32_t *ids, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", (int)ids[i]);
}

/* ---- the oracle ----
 * Runs the complete expressions of ids[0..n) (plus, when trail is set, the
 * expression completing it) with sd_eval on each input and compares bytes. */

typedef struct oracle {
  const lp_example *ex;
  size_t n_ex;
  long budget;  /* parses + evaluations left; < 0: gave up */
  sd_prog p;
  sd_str in, out;
  char *enc;
} oracle;

/* 1 when program p's output is a prefix of every target (equal when full). */
static int oracle_fits(oracle *o, const sd_prog *p, int full) {
  for (size_t k = 0; k < o->n_ex; k++) {
    const lp_example *x = &o->ex[k];
    size_t len = 0;
    o->budget--;
    if (sd_decode(x->part[0] ? x->part[0] : "", x->len[0], &o->in) ||
        sd_eval(p, o->in.c, o->in.n, &o->out) || sd_encode(o->out.c, o->out.n, &o->enc, &len)) {
      printf("FAIL: out of memory in the oracle\n");
      exit(1);
    }
    int ok = len <= x->len[1] && (!full || len == x->len[1]) &&
             memcmp(o->enc, x->part[1] ? x->part[1] : "", len) == 0;
    free(o->enc);
    o->enc = NULL;
    if (!ok) return 0;
  }
  return 1;
}

/* Whether some completion of the unfinished last expression of buf[0..n)
 * (buf has room for 32 more ids) fits: tries every id 3..311 as the next
 * token, keeps those the parser accepts, recurses until the expression is
 * complete. 1, 0, or -1 when the budget ran out. */
static int oracle_complete(oracle *o, int32_t *buf, size_t n, size_t n_complete) {
  for (int32_t id = SD_TOK_OP0; id < SD_VOCAB_SIZE; id++) {
    if (--o->budget < 0) return -1;
    buf[n] = id;
    int ended = 0;
    if (sd_from_tokens_prefix(buf, n + 1, &o->p, &ended, NULL, 0)) continue;
    int r;
    if (o->p.n > n_complete) r = oracle_fits(o, &o->p, 0); /* the expression is complete */
    else r = oracle_complete(o, buf, n + 1, n_complete);
    if (r) return r;
  }
  return 0;
}

/* The oracle's answer on ids[0..n): 1, 0 or -1 (too expensive). */
static int oracle_judge(const int32_t *ids, size_t n, const lp_example *ex, size_t n_ex,
                        long budget) {
  oracle o = {ex, n_ex, budget, {0}, {0}, {0}, NULL};
  int ended = 0, r;
  int32_t *buf = malloc((n + 32) * sizeof *buf);
  if (!buf) exit(1);
  memcpy(buf, ids, n * sizeof *ids);
  if (sd_from_tokens_prefix(ids, n, &o.p, &ended, NULL, 0)) {
    r = 0;
  } else {
    size_t pos = 0, nc = o.p.n;
    for (size_t i = 0; i < nc; i++) { /* the tokens of the complete expressions */
      const sd_expr *e = &o.p.e[i];
      pos += e->compose ? 3 + sd_op_nargs[e->fn.op] + sd_op_nargs[e->inner.op]
                        : 1 + sd_op_nargs[e->fn.op];
    }
    r = oracle_fits(&o, &o.p, ended);
    if (r && !ended && pos < n) r = oracle_complete(&o, buf, n, nc);
  }
  free(buf);
  sd_prog_clear(&o.p);
  sd_str_free(&o.in);
  sd_str_free(&o.out);
  return r;
}

/* ---- generated tasks ---- */

typedef struct gtask {
  sd_task t;
  lp_example ex[8];
  ids_t ids;
} gtask;

static int gtask_make(gtask *g, uint64_t seed) {
  char err[256];
  memset(g, 0, sizeof *g);
  if (sd_generate(seed, 1, 10, 4, &g->t, err, sizeof err)) {
    printf("FAIL: sd_generate(%llu): %s\n", (unsigned long long)seed, err);
    return -1;
  }
  for (size_t k = 0; k < g->t.n_examples && k < 8; k++) {
    g->ex[k].part[0] = g->t.inputs[k];
    g->ex[k].len[0] = strlen(g->t.inputs[k]);
    g->ex[k].part[1] = g->t.outputs[k];
    g->ex[k].len[1] = strlen(g->t.outputs[k]);
  }
  if (sd_to_tokens(&g->t.prog, &g->ids.v, &g->ids.n, &g->ids.cap)) return -1;
  return 0;
}

static void gtask_free(gtask *g) {
  sd_task_free(&g->t);
  free(g->ids.v);
}

/* A wrong prefix of g's program: the true ids before a random position t,
 * a different id there that the parser accepts at t, then 0..3 of the true
 * ids after t (as far as they still parse). Its length, or 0. */
static size_t wrong_prefix(const gtask *g, int32_t *buf) {
  size_t n = g->ids.n, t = (size_t)(rnd() % n);
  memcpy(buf, g->ids.v, t * sizeof *buf);
  sd_prog p = {0};
  int ended, found = 0;
  for (int tries = 0; tries < 200 && !found; tries++) {
    int32_t id = tries == 0 && rnd() % 8 == 0 ? SD_TOK_EOS
                                              : (int32_t)(SD_TOK_OP0 + rnd() % (SD_VOCAB_SIZE - 3));
    if (id == g->ids.v[t]) continue;
    buf[t] = id;
    found = sd_from_tokens_prefix(buf, t + 1, &p, &ended, NULL, 0) == 0;
  }
  size_t len = found ? t + 1 : 0;
  for (size_t extra = rnd() % 4, j = 0; found && j < extra && t + 1 + j < n; j++) {
    buf[t + 1 + j] = g->ids.v[t + 1 + j];
    if (buf[t] == SD_TOK_EOS || sd_from_tokens_prefix(buf, t + 2 + j, &p, &ended, NULL, 0)) break;
    len = t + 2 + j;
  }
  sd_prog_clear(&p);
  return len;
}

static void test_generated(int n_tasks, int bench) {
  size_t n_true = 0, wrong = 0, refused = 0, decided = 0, prod_refused = 0;
  double t_true = 0, t_wrong = 0, t_prod = 0;
  int32_t buf[128];
  for (int s = 0; s < n_tasks; s++) {
    gtask g;
    if (gtask_make(&g, 1000 + (uint64_t)s)) {
      failures++;
      continue;
    }
    /* every prefix of the true program, EOS included, in both modes (the
     * sampler's programs have no expression that outputs "" on every input) */
    for (size_t n = 0; n <= g.ids.n; n++) {
      double t0 = now();
      int ok = judge(g.ids.v, n, g.ex, g.t.n_examples);
      t_true += now() - t0;
      int okp = judge_f(g.ids.v, n, g.ex, g.t.n_examples, SD_PREFIX_PRODUCTIVE);
      n_true++;
      if (ok != 1 || okp != 1) {
        printf("FAIL: task seed %d: the true prefix of %zu ids is refused (%s): ", 1000 + s, n,
               ok != 1 ? "exact" : "productive");
        print_ids(g.ids.v, n);
        printf("\n");
        failures++;
      }
    }
    /* wrong prefixes, against the oracle */
    for (int w = 0; w < 12; w++) {
      size_t n = wrong_prefix(&g, buf);
      if (n == 0 || n > sizeof buf / sizeof buf[0] - 32) continue;
      double t0 = now();
      int ok = judge(buf, n, g.ex, g.t.n_examples);
      double t1 = now();
      int okp = judge_f(buf, n, g.ex, g.t.n_examples, SD_PREFIX_PRODUCTIVE);
      t_prod += now() - t1;
      t_wrong += t1 - t0;
      wrong++;
      refused += ok == 0;
      prod_refused += okp == 0;
      CHECK(ok || !okp, "seed %d: productive accepts what exact refuses", 1000 + s);
      int want = oracle_judge(buf, n, g.ex, g.t.n_examples, 3000000);
      if (want < 0) {
        /* too expensive for the oracle: a refusal is then always a bug,
         * since prefix.c only refuses after trying at most 512 completions */
        CHECK(ok == 1, "seed %d: refused a prefix the oracle could not settle", 1000 + s);
        continue;
      }
      decided++;
      checks++;
      if (ok != want) {
        printf("FAIL: task seed %d: prefix ", 1000 + s);
        print_ids(buf, n);
        printf(": sd_prefix_check says %d, the oracle %d\n", ok, want);
        failures++;
      }
    }
    gtask_free(&g);
  }
  printf("generated: %d tasks, %zu true prefixes accepted; %zu wrong prefixes: %zu refused "
         "(%.0f%%; productive: %zu), %zu settled by the oracle too\n",
         n_tasks, n_true, wrong, refused, wrong ? 100.0 * (double)refused / (double)wrong : 0,
         prod_refused, decided);
  CHECK(refused > wrong / 5, "too few wrong prefixes refused: %zu of %zu", refused, wrong);
  if (bench)
    printf("bench: sd_prefix_check %.2f us per call on true prefixes (%zu calls), %.2f us on "
           "wrong ones (%zu calls; productive %.2f us)\n",
           1e6 * t_true / (double)(n_true ? n_true : 1), n_true,
           1e6 * t_wrong / (double)(wrong ? wrong : 1), wrong,
           1e6 * t_prod / (double)(wrong ? wrong : 1));
}

/* ---- hand-written cases ---- */

/* Expects sd_prefix_check on the tokens of `text` (without EOS unless eos),
 * less the last `cut` of them, to answer `want`; the oracle must agree. */
static void expect_n(int line, const lp_example *ex, size_t n_ex, const char *text, int cut,
                     int eos, int want) {
  ids_t t = tokens_of(text);
  size_t n = t.n - (eos ? 0 : 1);
  if ((size_t)cut > n) cut = (int)n;
  n -= (size_t)cut;
  int ok = judge(t.v, n, ex, n_ex);
  int orc = oracle_judge(t.v, n, ex, n_ex, 20000000);
  checks += 2;
  if (ok != want) {
    failures++;
    printf("FAIL line %d: %s less %d token(s)%s: got %d, want %d\n", line, text, cut,
           eos ? " (with EOS)" : "", ok, want);
  }
  if (orc >= 0 && orc != want) {
    failures++;
    printf("FAIL line %d: %s less %d token(s): the oracle says %d, want %d\n", line, text, cut,
           orc, want);
  }
  free(t.v);
}
#define EXPECT(ex, n_ex, text, cut, want) expect_n(__LINE__, ex, n_ex, text, cut, 0, want)
#define EXPECT_EOS(ex, n_ex, text, want) expect_n(__LINE__, ex, n_ex, text, 0, 1, want)

static void set_ex(lp_example *e, const char *in, const char *out) {
  e->part[0] = in;
  e->len[0] = strlen(in);
  e->part[1] = out;
  e->len[1] = strlen(out);
}

static void test_figure1(void) {
  lp_example f[4];
  set_ex(&f[0], "Mason Smith", "Smith M");
  set_ex(&f[1], "Henry Myers", "Myers H");
  set_ex(&f[2], "Barry Underwood", "Underwood B");
  set_ex(&f[3], "Sandy Jones", "Jones S");
  const char *prog = "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1)";
  ids_t t = tokens_of(prog);
  for (size_t n = 0; n <= t.n; n++) CHECK(judge(t.v, n, f, 4) == 1, "Figure 1: true prefix %zu", n);
  free(t.v);
  EXPECT(f, 4, "GetToken(PROP_CASE, 1)", 0, 0);   /* "Mason", the target starts with "Smith" */
  EXPECT(f, 4, "GetToken(PROP_CASE, -1)", 0, 1);
  EXPECT(f, 4, "GetToken(PROP_CASE, 1)", 1, 1);   /* the index is not known yet */
  EXPECT(f, 4, "GetToken(PROP_CASE, 1)", 2, 1);   /* GetToken(?, ?) */
  EXPECT(f, 4, "GetToken(LOWER, 1)", 1, 1);       /* "ason", "mith", or "" (index 3) */
  EXPECT(f, 4, "GetToken(CHAR, 1)", 1, 0);        /* -5 is 'S' and 'M' but 'r' in Underwood */
  EXPECT(f, 4, "GetToken(ALL_CAPS, 1)", 1, 1);    /* GetToken(ALL_CAPS, 2) = "S" fits */
  EXPECT(f, 4, "GetToken(DIGIT, 1)", 1, 1);       /* no digits: "" */
  EXPECT(f, 4, "ConstStr('S')", 1, 0);            /* S, M, U, J: no one character */
  EXPECT(f, 4, "ToCase(LOWER)", 1, 0);
  EXPECT(f, 4, "Trim()", 0, 0);
  EXPECT(f, 4, "GetFrom(' ')", 0, 1);             /* "Smith": the next piece */
  EXPECT(f, 4, "GetFrom(' ')", 1, 1);
  EXPECT(f, 4, "GetUpto(' ')", 0, 0);             /* "Mason " */
  EXPECT(f, 4, "GetUpto(' ')", 1, 1);             /* GetUpto(NUMBER): no match, "" */
  EXPECT(f, 4, "Replace(' ', ',')", 2, 0);        /* same length as the input: never fits */
  EXPECT(f, 4, "SubStr(1, 5)", 2, 1);             /* "" is possible */
  EXPECT(f, 4, "SubStr(1, 5)", 1, 1);             /* SubStr(1, 1): "" */
  EXPECT(f, 4, "SubStr(1, 5)", 0, 0);             /* "Mason" */
  EXPECT(f, 4, "SubStr(7, 11)", 0, 1);            /* "Smith", "Myers", "Under", "Jones" */
  EXPECT(f, 4, "GetSpan(' ', 1, END, WORD, 2, END)", 0, 1);
  EXPECT(f, 4, "GetSpan(' ', 1, END, WORD, 2, END)", 2, 1);
  EXPECT(f, 4, "GetSpan(' ', 1, START, WORD, 2, END)", 0, 0);
  EXPECT(f, 4, "GetSpan(' ', 1, START, WORD, 2, END)", 1, 0); /* " Smith" or " " on both ends */
  EXPECT(f, 4, "GetSpan(' ', 1, START, WORD, 2, END)", 2, 1); /* GetSpan(' ', 1, START, WORD,
                                                                 1, START) gives "" */
  EXPECT(f, 4, "Compose(ToCase(ALL_CAPS), GetToken(PROP_CASE, 2))", 0, 0); /* "SMITH" */
  EXPECT(f, 4, "Compose(ToCase(ALL_CAPS), GetToken(PROP_CASE, 2))", 1, 1); /* index 3: "" */
  EXPECT(f, 4, "Compose(ToCase(ALL_CAPS), GetToken(PROP_CASE, 2))", 2, 1); /* ALL_CAPS 2: "S" */
  EXPECT(f, 4, "Compose(ToCase(LOWER), GetToken(PROP_CASE, 2))", 0, 0); /* "smith" */
  EXPECT(f, 4, "Compose(ToCase(PROPER), GetToken(PROP_CASE, 2))", 2, 1);
  EXPECT(f, 4, "Compose(ToCase(ALL_CAPS), GetToken(PROP_CASE, 2))", 3, 1); /* inner unknown */
  EXPECT(f, 4, "Compose(ToCase(ALL_CAPS), SubStr(1, 2))", 1, 1); /* SubStr(1, 1): "" */
  EXPECT(f, 4, "Compose(ToCase(ALL_CAPS), SubStr(1, 2))", 0, 0);
  EXPECT(f, 4, "Compose(GetToken(WORD, 2), Replace(' ', ','))", 2, 1); /* Replace(d, d) */
  EXPECT(f, 4, "Compose(GetToken(WORD, 1), Replace(' ', ','))", 2, 0);
  /* after the surname */
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | ConstStr(' ')", 1, 1);
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | ConstStr('x')", 0, 0);
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | GetToken(CHAR, 1)", 1, 0); /* no index gives ' ' */
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | GetSpan(' ', 1, START, ' ', 1, END)", 0, 1);
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | GetSpan(' ', 1, START, ' ', 1, END)", 1, 1);
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | GetSpan(' ', 1, START, ' ', 1, END)", 2, 1);
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | GetSpan(' ', 1, START, WORD, 1, END)", 1, 1); /* "" */
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | GetSpan(' ', 1, START, WORD, -1, END)", 1, 1); /* " " */
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | GetSpan(' ', 1, START, WORD, -1, END)", 0, 0);
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | GetToken(ALL_CAPS, 1)", 0, 0); /* " M" needs the space */
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | GetToken(ALL_CAPS, 1)", 1, 1); /* index 3: "" */
  /* every output complete: only "" may follow */
  EXPECT_EOS(f, 4, prog, 1);
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1) | ConstStr('a')",
         1, 0);
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1) | ToCase(LOWER)",
         1, 0);
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1) | SubStr(1, 1)",
         2, 1);
  EXPECT(f, 4,
         "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1) | GetToken(NUMBER, 1)",
         1, 1); /* no numbers: "" */
  EXPECT(f, 4,
         "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1) | GetToken(WORD, 1)",
         1, 1); /* GetToken(WORD, 3 .. 5) and (WORD, -3 .. -5) give "" */
  EXPECT(f, 4,
         "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1) | GetToken(CHAR, 1)",
         1, 0); /* every input has 5 and more characters */
  EXPECT(f, 4, "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1) | Compose(Trim(), "
               "GetToken(NUMBER, 1))",
         2, 1);
  /* a complete program that is wrong, EOS */
  EXPECT_EOS(f, 4, "GetToken(PROP_CASE, 2) | ConstStr(' ')", 0);
  EXPECT_EOS(f, 4, "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, -1)", 0);
}

/* SD_PREFIX_PRODUCTIVE: no expression that outputs "" on every example */
static void expect_prod_n(int line, const lp_example *ex, size_t n_ex, const char *text, int cut,
                          int want) {
  ids_t t = tokens_of(text);
  size_t n = t.n - 1 - (size_t)cut;
  int ok = judge_f(t.v, n, ex, n_ex, SD_PREFIX_PRODUCTIVE);
  int exact = judge(t.v, n, ex, n_ex);
  CHECK(ok == want, "line %d: productive: %s less %d token(s): got %d, want %d", line, text, cut,
        ok, want);
  CHECK(exact || !ok, "line %d: productive accepts what exact refuses", line);
  free(t.v);
}
#define EXPECT_PROD(ex, n_ex, text, cut, want) expect_prod_n(__LINE__, ex, n_ex, text, cut, want)

static void test_productive(void) {
  lp_example f[4];
  set_ex(&f[0], "Mason Smith", "Smith M");
  set_ex(&f[1], "Henry Myers", "Myers H");
  set_ex(&f[2], "Barry Underwood", "Underwood B");
  set_ex(&f[3], "Sandy Jones", "Jones S");
  const char *prog = "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1)";
  ids_t t = tokens_of(prog);
  for (size_t n = 0; n <= t.n; n++)
    CHECK(judge_f(t.v, n, f, 4, SD_PREFIX_PRODUCTIVE) == 1, "productive: true prefix %zu", n);
  free(t.v);
  EXPECT_PROD(f, 4, "GetToken(DIGIT, 1)", 0, 0);  /* "" everywhere */
  EXPECT_PROD(f, 4, "GetToken(DIGIT, 1)", 1, 0);
  EXPECT_PROD(f, 4, "GetToken(LOWER, 1)", 1, 0);  /* only "" would fit */
  EXPECT_PROD(f, 4, "GetToken(ALL_CAPS, 1)", 1, 1); /* "S" */
  EXPECT_PROD(f, 4, "GetToken(PROP_CASE, 2) | GetToken(ALL_CAPS, 1)", 1, 0);
  EXPECT_PROD(f, 4, "SubStr(1, 5)", 1, 0);        /* SubStr(1, k2) starts with the first name */
  EXPECT_PROD(f, 4, "SubStr(7, 11)", 1, 1);
  EXPECT_PROD(f, 4, "SubStr(7, 11)", 2, 1);       /* 40401 completions: not tried */
  EXPECT_PROD(f, 4, "GetSpan(' ', 1, START, WORD, 2, END)", 1, 0);
  EXPECT_PROD(f, 4, "GetSpan(' ', 1, END, WORD, 2, END)", 3, 1);
  EXPECT_PROD(f, 4, "Compose(ToCase(ALL_CAPS), GetToken(PROP_CASE, 2))", 1, 0);
  EXPECT_PROD(f, 4, "Compose(ToCase(ALL_CAPS), GetToken(PROP_CASE, 2))", 2, 1);
  EXPECT_PROD(f, 4, "Compose(ToCase(ALL_CAPS), GetToken(PROP_CASE, 2))", 3, 1);
  /* every output complete: nothing but EOS */
  EXPECT_PROD(f, 4, "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1) | SubStr(1, 1)",
              2, 0);
  EXPECT_PROD(f, 4, "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1) | "
                    "Compose(Trim(), GetToken(NUMBER, 1))", 4, 0);
  /* every target "": as exact */
  lp_example e[2];
  set_ex(&e[0], "abc 12", "");
  set_ex(&e[1], "x", "");
  EXPECT_PROD(e, 2, "SubStr(1, 2)", 1, 1);
  EXPECT_PROD(e, 2, "GetToken(NUMBER, 2)", 0, 1);
  EXPECT_PROD(e, 2, "ConstStr('a')", 1, 0);
}

static void test_misc(void) {
  /* empty targets */
  lp_example e[2];
  set_ex(&e[0], "abc 12", "");
  set_ex(&e[1], "x", "");
  EXPECT(e, 2, "ConstStr('a')", 1, 0);
  EXPECT(e, 2, "SubStr(1, 2)", 2, 1);
  EXPECT(e, 2, "SubStr(1, 2)", 1, 1);
  EXPECT(e, 2, "SubStr(1, 2)", 0, 0);
  EXPECT(e, 2, "ToCase(LOWER)", 1, 0);
  EXPECT(e, 2, "Trim()", 0, 0);
  EXPECT(e, 2, "GetAll(WORD)", 1, 1); /* GetAll(ALL_CAPS): "" on both */
  EXPECT(e, 2, "GetAll(WORD)", 0, 0);
  EXPECT(e, 2, "GetFirst(NUMBER, 1)", 0, 0);
  EXPECT(e, 2, "GetFirst(NUMBER, 1)", 1, 1); /* GetFirst(NUMBER, -1): "" */
  EXPECT(e, 2, "GetUpto('@')", 0, 1);
  EXPECT(e, 2, "Compose(Trim(), GetToken(NUMBER, 1))", 2, 1);
  EXPECT_EOS(e, 2, "GetToken(NUMBER, 2)", 1);
  {
    int ok = -1;
    int32_t eos = SD_TOK_EOS;
    CHECK(sd_prefix_check(&eos, 1, e, 2, 0, &ok) == 0 && ok == 0, "EOS alone: refused");
    CHECK(sd_prefix_check(NULL, 0, e, 2, 0, &ok) == 0 && ok == 1, "the empty prefix: accepted");
    int32_t bad[3] = {SD_TOK_OP0 + SD_GETTOKEN, SD_TOK_CHAR0, SD_TOK_EOS};
    CHECK(sd_prefix_check(bad, 2, e, 2, 0, &ok) == 0 && ok == 0, "malformed: refused");
    int32_t bad2[3] = {SD_TOK_OP0 + SD_COMPOSE, SD_TOK_OP0 + SD_CONSTSTR};
    CHECK(sd_prefix_check(bad2, 2, e, 2, 0, &ok) == 0 && ok == 0, "Compose(ConstStr: refused");
    int32_t pad[1] = {SD_TOK_PAD};
    CHECK(sd_prefix_check(pad, 1, e, 2, 0, &ok) == 0 && ok == 0, "PAD: refused");
  }
  /* no examples: anything well-formed */
  EXPECT(e, 0, "ConstStr('a')", 1, 1);
  /* NULL parts of length 0 */
  {
    lp_example z[1] = {{{NULL, NULL}, {0, 0}}};
    EXPECT(z, 1, "ConstStr('a')", 1, 0);
    EXPECT(z, 1, "GetToken(WORD, 1)", 1, 1);
  }
  /* bytes: outputs are compared as the bytes they encode to. Raw bytes C3 and
   * A9 taken from two places of the input are "é" in the target. SubStr(-6, 1)
   * on 3 code points is the first one (Python slice [0:1]). */
  lp_example b[1];
  set_ex(&b[0], "\xC3,\xA9", "\xC3\xA9!");
  EXPECT(b, 1, "SubStr(-6, 1) | GetFrom(',') | ConstStr('!')", 1, 1);
  EXPECT(b, 1, "SubStr(-6, 1) | GetFrom(',') | ConstStr('!')", 2, 1);
  EXPECT(b, 1, "SubStr(-6, 1) | GetFrom(',') | ConstStr('!')", 3, 1);
  EXPECT_EOS(b, 1, "SubStr(-6, 1) | GetFrom(',') | ConstStr('!')", 1);
  EXPECT(b, 1, "SubStr(-6, 1) | GetUpto(',')", 0, 0);
  EXPECT(b, 1, "SubStr(-6, 1) | GetFrom(',') | ConstStr('?')", 0, 0);
  lp_example u[2];
  set_ex(&u[0], "\xC3\xA9t\xC3\xA9 Caf\xC3\xA9", "Caf\xC3\xA9!");
  set_ex(&u[1], "x Bon", "Bon!");
  EXPECT(u, 2, "GetFrom(' ') | ConstStr('!')", 1, 1);
  EXPECT(u, 2, "GetFrom(' ') | ConstStr('!')", 0, 1);
  EXPECT(u, 2, "GetFrom(' ') | ConstStr('?')", 0, 0);
  EXPECT(u, 2, "GetToken(WORD, 1)", 1, 1); /* "t", "x": no; "Caf", "Bon" (index 2 / -1): fits */
  EXPECT(u, 2, "GetToken(WORD, 1)", 0, 0);
  /* an output longer than the target overruns it */
  lp_example o[1];
  set_ex(&o[0], "abcdef", "abc");
  EXPECT(o, 1, "SubStr(1, 3)", 0, 1);
  EXPECT(o, 1, "SubStr(1, 4)", 0, 0);
  EXPECT(o, 1, "ToCase(LOWER)", 1, 0);
  EXPECT(o, 1, "GetToken(LOWER, 1)", 1, 1); /* index 2: "" */
  EXPECT(o, 1, "GetToken(LOWER, 1)", 0, 0);
  EXPECT(o, 1, "GetToken(CHAR, 1)", 1, 1);
}

/* Worst cases for the cost: refusals that try every completion. */
static void bench_worst(void) {
  lp_example f[4];
  set_ex(&f[0], "Mason Smith", "Smith M");
  set_ex(&f[1], "Henry Myers", "Myers H");
  set_ex(&f[2], "Barry Underwood", "Underwood B");
  set_ex(&f[3], "Sandy Jones", "Jones S");
  const char *cases[][2] = {{"Replace(' ', ',')", "2"},
                            {"Compose(GetToken(WORD, 1), Replace(' ', ','))", "2"},
                            {"ConstStr('S')", "1"},
                            {"GetToken(LOWER, 1)", "2"},
                            {"GetToken(PROP_CASE, 2)", "0"},
                            {"GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1)", "0"}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    ids_t t = tokens_of(cases[c][0]);
    size_t n = t.n - 1 - (size_t)atoi(cases[c][1]);
    int reps = 20000, ok = 0;
    double t0 = now();
    for (int r = 0; r < reps; r++) sd_prefix_check(t.v, n, f, 4, 0, &ok);
    double dt = (now() - t0) / reps;
    printf("bench: %-70s less %s: %s, %.2f us per call\n", cases[c][0], cases[c][1],
           ok ? "accepted" : "refused", 1e6 * dt);
    free(t.v);
  }
}

int main(int argc, char **argv) {
  int bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
  test_figure1();
  test_misc();
  test_productive();
  test_generated(bench ? 400 : 150, bench);
  if (bench) bench_worst();
  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}

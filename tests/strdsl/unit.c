/* strdsl_unit: parser errors, printing, semantics corner cases, lossless
 * bytes, big inputs and malformed token sequences of the string DSL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK_ON_STDOUT
#include "../common/check.h"
#include "strdsl.h"

static void put_esc(const char *s, size_t n) {
  for (size_t i = 0; i < n && i < 200; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 32 && c < 127) putchar(c);
    else printf("\\x%02x", c);
  }
}

/* Runs program text on in[0..inlen); returns malloc'd output (NULL on failure). */
static char *run(const char *prog, const char *in, size_t inlen, size_t *outlen) {
  sd_prog p = {0};
  sd_str s = {0}, o = {0};
  char err[256], *out = NULL;
  if (sd_parse(prog, strlen(prog), &p, err, sizeof err) != 0) {
    printf("parse failed: %s: %s\n", prog, err);
    return NULL;
  }
  if (sd_decode(in, inlen, &s) == 0 && sd_eval(&p, s.c, s.n, &o) == 0)
    sd_encode(o.c, o.n, &out, outlen);
  sd_prog_clear(&p);
  sd_str_free(&s);
  sd_str_free(&o);
  return out;
}

static void expect_run_n(int line, const char *prog, const char *in, size_t inlen,
                         const char *want, size_t wantlen) {
  size_t olen = 0;
  char *o = run(prog, in, inlen, &olen);
  checks++;
  if (!o || olen != wantlen || memcmp(o, want, wantlen) != 0) {
    failures++;
    printf("FAIL line %d: %s on \"", line, prog);
    put_esc(in, inlen);
    printf("\": want \"");
    put_esc(want, wantlen);
    printf("\" got \"");
    if (o) put_esc(o, olen);
    else printf("(null)");
    printf("\"\n");
  }
  free(o);
}
#define EXPECT_RUN(prog, in, want) expect_run_n(__LINE__, prog, in, strlen(in), want, strlen(want))

/* text must fail to parse with a message starting "column COL: expected" and
 * containing `has`. */
static void expect_parse_err(int line, const char *text, int col, const char *has) {
  sd_prog p = {0};
  char err[512] = "", pre[64];
  int r = sd_parse(text, strlen(text), &p, err, sizeof err);
  snprintf(pre, sizeof pre, "column %d: expected ", col);
  checks++;
  if (r == 0 || strncmp(err, pre, strlen(pre)) != 0 || !strstr(err, has) || p.n != 0) {
    failures++;
    printf("FAIL line %d: parse of \"%s\": r=%d err=\"%s\" (want \"%s...%s\")\n", line, text, r,
           err, pre, has);
  }
  sd_prog_clear(&p);
}
#define EXPECT_PERR(text, col, has) expect_parse_err(__LINE__, text, col, has)

static void expect_roundtrip(int line, const char *text) {
  sd_prog p = {0}, q = {0};
  char err[512] = "", *out = NULL, *out2 = NULL;
  size_t len = 0, len2 = 0;
  int32_t *ids = NULL;
  size_t n = 0, cap = 0;
  int ok = sd_parse(text, strlen(text), &p, err, sizeof err) == 0 &&
           sd_print(&p, &out, &len) == 0 && len == strlen(text) && memcmp(out, text, len) == 0 &&
           sd_to_tokens(&p, &ids, &n, &cap) == 0 && sd_from_tokens(ids, n, &q, err, sizeof err) == 0 &&
           sd_print(&q, &out2, &len2) == 0 && len2 == len && memcmp(out2, text, len) == 0;
  checks++;
  if (!ok) {
    failures++;
    printf("FAIL line %d: round trip of \"%s\" (err \"%s\", printed \"%s\")\n", line, text, err,
           out ? out : "");
  }
  free(out);
  free(out2);
  free(ids);
  sd_prog_clear(&p);
  sd_prog_clear(&q);
}
#define EXPECT_ROUNDTRIP(text) expect_roundtrip(__LINE__, text)

/* ids must be refused by sd_from_tokens with a message containing `has`. */
static void expect_tok_err(int line, const int32_t *ids, size_t n, const char *has) {
  sd_prog p = {0};
  char err[512] = "";
  int r = sd_from_tokens(ids, n, &p, err, sizeof err);
  checks++;
  if (r == 0 || !strstr(err, has) || p.n != 0) {
    failures++;
    printf("FAIL line %d: sd_from_tokens r=%d err=\"%s\" (want \"%s\")\n", line, r, err, has);
  }
  sd_prog_clear(&p);
}
#define EXPECT_TOKERR(has, ...)                                              \
  do {                                                                       \
    const int32_t ids_[] = {__VA_ARGS__};                                    \
    expect_tok_err(__LINE__, ids_, sizeof ids_ / sizeof ids_[0], has);       \
  } while (0)

enum { T_COMPOSE = SD_TOK_OP0 + SD_COMPOSE, T_CONST = SD_TOK_OP0 + SD_CONSTSTR,
       T_SUBSTR = SD_TOK_OP0 + SD_SUBSTR, T_GETSPAN = SD_TOK_OP0 + SD_GETSPAN,
       T_GETTOKEN = SD_TOK_OP0 + SD_GETTOKEN, T_TOCASE = SD_TOK_OP0 + SD_TOCASE,
       T_REPLACE = SD_TOK_OP0 + SD_REPLACE, T_TRIM = SD_TOK_OP0 + SD_TRIM,
       T_GETALL = SD_TOK_OP0 + SD_GETALL };
#define TI(k) (SD_TOK_INT_ZERO + (k))

static void test_parse_errors(void) {
  const char *ops = "an operation (Compose, ConstStr";
  EXPECT_PERR("", 1, ops);
  EXPECT_PERR("Foo(1)", 1, ops);
  EXPECT_PERR("GetTokens(WORD, 1)", 1, ops);
  EXPECT_PERR("ConstStr", 9, "\"(\"");
  EXPECT_PERR("SubStr(1, 2", 12, "\")\"");
  EXPECT_PERR("SubStr(1,2)", 9, "\", \"");
  EXPECT_PERR("SubStr(1, 2, 3)", 12, "\")\"");
  EXPECT_PERR("Trim( )", 6, "\")\"");
  EXPECT_PERR("Trim() x", 7, "\" | \"");
  EXPECT_PERR("Trim()|Trim()", 7, "\" | \"");
  EXPECT_PERR("Trim() | ", 10, ops);
  EXPECT_PERR("Trim() |  Trim()", 10, ops);
  EXPECT_PERR(" Trim()", 1, ops);
  EXPECT_PERR("Trim()\n", 7, "\" | \"");
  EXPECT_PERR("ConstStr('a)", 12, "closing quote");
  EXPECT_PERR("ConstStr(a)", 10, "a quoted character");
  EXPECT_PERR("ConstStr(\"a\")", 10, "a quoted character");
  EXPECT_PERR("ConstStr(''')", 11, "the quote itself is written");
  EXPECT_PERR("ConstStr('\\')", 13, "closing quote");
  EXPECT_PERR("ConstStr('\\a')", 12, "after the backslash");
  EXPECT_PERR("ConstStr('~')", 10, "a quoted character");
  EXPECT_PERR("ConstStr('\xc3\xa9')", 10, "a quoted character");
  EXPECT_PERR("ConstStr('ab')", 12, "closing quote");
  EXPECT_PERR("Replace('a', ',')", 9, "a quoted delimiter");
  EXPECT_PERR("Replace(',', 'b')", 14, "a quoted delimiter");
  EXPECT_PERR("SubStr(101, 1)", 8, "an integer in -100..100");
  EXPECT_PERR("SubStr(1, -101)", 11, "an integer in -100..100");
  EXPECT_PERR("SubStr(1, 99999999999999999999)", 11, "an integer in -100..100");
  EXPECT_PERR("SubStr(01, 2)", 8, "leading zeros");
  EXPECT_PERR("SubStr(-0, 2)", 8, "an integer");
  EXPECT_PERR("SubStr(+1, 2)", 8, "an integer");
  EXPECT_PERR("SubStr(x, 2)", 8, "an integer");
  EXPECT_PERR("GetToken(WORD, 0)", 16, "an index in -5..-1 or 1..5");
  EXPECT_PERR("GetToken(WORD, 6)", 16, "an index");
  EXPECT_PERR("GetToken(WORD, -6)", 16, "an index");
  EXPECT_PERR("GetFirst(WORD,  1)", 16, "an index");
  EXPECT_PERR("GetToken(word, 1)", 10, "a type (NUMBER");
  EXPECT_PERR("GetToken(',', 1)", 10, "a type (NUMBER");
  EXPECT_PERR("GetAll(WORDS)", 8, "a type");
  EXPECT_PERR("GetUpto(PROPER)", 9, "a type (NUMBER, WORD, ALPHANUM, ALL_CAPS, PROP_CASE, LOWER, DIGIT, CHAR) or a quoted delimiter");
  EXPECT_PERR("GetUpto('a')", 9, "a quoted delimiter");
  EXPECT_PERR("ToCase(UPPER)", 8, "a case (PROPER, ALL_CAPS, LOWER)");
  EXPECT_PERR("ToCase(WORD)", 8, "a case");
  EXPECT_PERR("GetSpan(WORD, 1, BEGIN, WORD, 2, END)", 18, "START or END");
  EXPECT_PERR("GetSpan(WORD, 1, START, WORD, 2)", 32, "\", \"");
  EXPECT_PERR("Compose(SubStr(1, 2), Trim())", 9, "a nesting operation");
  EXPECT_PERR("Compose(ConstStr('a'), Trim())", 9, "a nesting operation");
  EXPECT_PERR("Compose(Trim(), ConstStr('a'))", 17, "a nesting or substring operation");
  EXPECT_PERR("Compose(Trim(), Compose(Trim(), Trim()))", 17, "a nesting or substring");
  EXPECT_PERR("Compose(Trim())", 15, "\", \"");
  EXPECT_PERR("Compose(Trim(), Trim(), Trim())", 23, "\")\"");
  EXPECT_PERR("Trim() | Foo()", 10, ops);
  /* an embedded NUL byte */
  {
    sd_prog p = {0};
    char err[256] = "";
    int r = sd_parse("Trim()\0 | Trim()", 16, &p, err, sizeof err);
    CHECK(r == -1 && strncmp(err, "column 7: expected", 18) == 0, "NUL: r=%d %s", r, err);
    sd_prog_clear(&p);
  }
}

static void test_roundtrips(void) {
  EXPECT_ROUNDTRIP("Trim()");
  EXPECT_ROUNDTRIP("ConstStr('\\'')");
  EXPECT_ROUNDTRIP("ConstStr('\"') | ConstStr(' ') | ConstStr('Z') | ConstStr('0')");
  EXPECT_ROUNDTRIP("Replace(' ', '\\'') | Replace('\"', '#')");
  EXPECT_ROUNDTRIP("SubStr(-100, 100) | SubStr(0, 0) | SubStr(-1, 1)");
  EXPECT_ROUNDTRIP("GetSpan('\\'', -5, START, CHAR, 5, END)");
  EXPECT_ROUNDTRIP("GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1)");
  EXPECT_ROUNDTRIP("Compose(ToCase(LOWER), SubStr(1, 3)) | Compose(GetAll(DIGIT), GetSpan(' ', 1, END, ALPHANUM, -1, START))");
  EXPECT_ROUNDTRIP("GetUpto(' ') | GetFrom(NUMBER) | GetFirst(LOWER, -3) | GetAll(WORD) | ToCase(PROPER) | ToCase(ALL_CAPS)");

  /* tokens of a known program (values from the spec's table) */
  sd_prog p = {0};
  char err[256];
  int32_t *ids = NULL;
  size_t n = 0, cap = 0;
  const char *t = "Compose(Replace('%', ')'), GetFirst(PROP_CASE, 1)) | ConstStr('\\'') | SubStr(-100, 0)";
  const int32_t want[] = {3, 9, 87, 84, 13, 102, 212, 4, 96, 5, 111, 211, 2};
  int ok = sd_parse(t, strlen(t), &p, err, sizeof err) == 0 && sd_to_tokens(&p, &ids, &n, &cap) == 0 &&
           n == sizeof want / sizeof want[0] && memcmp(ids, want, sizeof want) == 0;
  CHECK(ok, "tokens of %s", t);
  free(ids);
  /* invalid fields are neither printed nor encoded */
  p.e[0].fn.a[0] = 99;
  char *txt = NULL;
  size_t len;
  ids = NULL;
  n = cap = 0;
  CHECK(sd_print(&p, &txt, &len) == -1, "print of invalid program");
  CHECK(sd_to_tokens(&p, &ids, &n, &cap) == -1, "tokens of invalid program");
  free(txt);
  free(ids);
  sd_prog_clear(&p);
  /* too many expressions */
  size_t big = (SD_MAX_EXPRS + 1) * 9;
  char *many = malloc(big + 1);
  size_t k = 0;
  for (int i = 0; i <= SD_MAX_EXPRS; i++) k += (size_t)sprintf(many + k, "%sTrim()", i ? " | " : "");
  CHECK(sd_parse(many, k, &p, err, sizeof err) == SD_ELIMIT && strstr(err, "at most 1024"),
        "1025 expressions: %s", err);
  free(many);
  sd_prog_clear(&p);
}

static void test_semantics(void) {
  /* SubStr: Python slicing */
  EXPECT_RUN("SubStr(-10, 3)", "abcdef", "c");
  EXPECT_RUN("SubStr(3, 3)", "abcdef", "");
  EXPECT_RUN("SubStr(1, 100)", "abcdef", "abcdef");
  EXPECT_RUN("SubStr(0, 0)", "abcdef", "");
  EXPECT_RUN("SubStr(2, -1)", "abcdef", "bcdef");
  EXPECT_RUN("SubStr(-100, -1)", "abcdef", "abcdef");
  EXPECT_RUN("SubStr(-3, -2)", "abcdef", "de");
  EXPECT_RUN("SubStr(-7, 1)", "abcdef", "");
  EXPECT_RUN("SubStr(-12, -11)", "abcdef", "ab");
  EXPECT_RUN("SubStr(-12, -10)", "abcdef", "abc");
  EXPECT_RUN("SubStr(4, 0)", "abcdef", "def");
  EXPECT_RUN("SubStr(-1, 0)", "abcdef", "f");
  EXPECT_RUN("SubStr(6, 7)", "abcdef", "f");
  EXPECT_RUN("SubStr(5, 100)", "abc", "");
  /* GetSpan: index >= m uses m-1 as a character position; index < 0 -> 0 */
  EXPECT_RUN("GetSpan(WORD, 1, START, WORD, 5, START)", "ab cd ef", "ab");
  EXPECT_RUN("GetSpan(WORD, -5, END, WORD, 2, END)", "ab cd ef", "ab cd");
  EXPECT_RUN("GetSpan(WORD, 4, START, WORD, -1, END)", "ab cd ef", " cd ef");
  EXPECT_RUN("GetSpan(NUMBER, 1, START, WORD, 1, END)", "ab cd ef", "");
  EXPECT_RUN("GetSpan(WORD, 2, START, WORD, 1, END)", "ab cd ef", "");
  EXPECT_RUN("GetSpan(WORD, 1, END, ' ', -1, START)", "ab cd ef", " cd");
  /* GetToken, GetFirst, GetAll, regexes */
  EXPECT_RUN("GetToken(PROP_CASE, -1)", "AbC Def GHi", "Hi");
  EXPECT_RUN("GetAll(PROP_CASE)", "AbC Def GHij", "AbDefHij");
  EXPECT_RUN("GetToken(WORD, 4)", "ab cd ef", "");
  EXPECT_RUN("GetToken(WORD, -4)", "ab cd ef", "");
  EXPECT_RUN("GetToken(WORD, -3)", "ab cd ef", "ab");
  EXPECT_RUN("GetFirst(WORD, -2)", "ab cd ef", "ab");
  EXPECT_RUN("GetFirst(WORD, -5)", "ab cd ef", "");
  EXPECT_RUN("GetFirst(WORD, 5)", "ab cd ef", "abcdef");
  EXPECT_RUN("GetFirst(DIGIT, 2) | GetAll(NUMBER)", "a12b345", "1212345");
  EXPECT_RUN("GetAll(ALL_CAPS) | ConstStr(':') | GetAll(LOWER)", "McDONALD x", "MDONALD:cx");
  EXPECT_RUN("GetAll(CHAR)", "a~b\tc d<>", "abc d");
  EXPECT_RUN("GetToken(CHAR, -1)", "ab~", "b");
  EXPECT_RUN("GetToken(ALPHANUM, 2)", "ab12 c3", "c3");
  EXPECT_RUN("GetUpto('.') | ConstStr(':') | GetFrom('.')", "a.b.c", "a.:b.c");
  EXPECT_RUN("GetUpto(NUMBER) | ConstStr(':') | GetFrom(NUMBER)", "ab12cd", "ab12:cd");
  EXPECT_RUN("GetUpto(' ') | GetFrom('#')", "abc", "");
  /* ToCase, Replace, Trim, Compose */
  EXPECT_RUN("ToCase(PROPER)", "hELLO wORLD", "Hello world");
  EXPECT_RUN("ToCase(PROPER)", ";XOW", ";xow");
  EXPECT_RUN("ToCase(ALL_CAPS) | ToCase(LOWER)", "aB1~", "AB1~ab1~");
  EXPECT_RUN("Replace(' ', '\\'')", "a b  c", "a'b''c");
  EXPECT_RUN("Trim()", " \t\n\v\f\r\x1c\x1d\x1e\x1f" "a b \x1f", "a b");
  EXPECT_RUN("Trim()", "\xc2\xa0\xc2\x85" "a\xe3\x80\x80", "a");       /* U+00A0 U+0085 U+3000 */
  EXPECT_RUN("Trim()", "\xa0" "a\x85", "\xa0" "a\x85");                /* raw bytes: not spaces */
  EXPECT_RUN("Compose(ToCase(LOWER), SubStr(1, 3))", "ABCDEF", "abc");
  EXPECT_RUN("Compose(GetAll(CHAR), GetAll(CHAR)) | ConstStr('!')", "a, b", "a, b!");
  EXPECT_RUN("Compose(GetToken(WORD, -1), GetSpan(' ', 1, END, ' ', -1, START))", "x ab cd ef y", "ef");
  EXPECT_RUN("Compose(GetFirst(LOWER, -1), GetAll(ALPHANUM))", "ab 1 cd 2 ef", "abcd");
  EXPECT_RUN("Compose(Trim(), GetFrom(':'))", "key:  value  ", "value");
  /* empty input */
  EXPECT_RUN("ConstStr('x') | SubStr(1, 3) | SubStr(-5, -1) | ToCase(PROPER) | Trim() | GetAll(CHAR) | "
             "GetToken(WORD, -1) | GetSpan(WORD, 1, START, WORD, 1, END) | GetFirst(DIGIT, 2) | "
             "GetUpto(' ') | GetFrom(' ') | Replace(' ', ',') | Compose(ToCase(LOWER), SubStr(1, 1))",
             "", "x");
  /* non-ASCII and invalid UTF-8 bytes pass through unchanged */
  expect_run_n(__LINE__, "Compose(ToCase(ALL_CAPS), SubStr(1, 100))", "\xff\xc3\xa9" "ab", 5,
               "\xff\xc3\xa9" "AB", 5);
  expect_run_n(__LINE__, "ToCase(PROPER) | SubStr(2, 3)", "\xc3\xa9" "AB", 4, "\xc3\xa9" "abAB", 6);
  expect_run_n(__LINE__, "ToCase(ALL_CAPS)", "a\0b\x80", 4, "A\0B\x80", 4);
  expect_run_n(__LINE__, "SubStr(1, 2) | ConstStr('.') | SubStr(-1, 0)", "\xc3x\xa9", 3, "\xc3x.\xa9", 4);
  /* raw bytes that meet in the output are written back as they are */
  expect_run_n(__LINE__, "SubStr(-1, 0) | SubStr(1, 2)", "\xa9x\xc3", 3, "\xc3\xa9x", 3);
  expect_run_n(__LINE__, "GetToken(WORD, 2)", "\xed\xa0\x80" "ab\xf4\x90\x80\x80" "cd\xe2\x82", 13, "cd", 2);
  expect_run_n(__LINE__, "SubStr(-1, 0)", "\xf0\x9f\x98\x80\xf0\x9f\x98\x81", 8, "\xf0\x9f\x98\x81", 4);
}

/* encode(decode(b)) == b for random byte strings. */
static void test_lossless(void) {
  uint64_t x = 88172645463325252ull;
  sd_str s = {0};
  int bad = 0;
  for (int t = 0; t < 3000 && !bad; t++) {
    unsigned char b[64];
    size_t n = (size_t)t % 64;
    for (size_t i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      unsigned v = (unsigned)(x >> 24);
      /* bias towards UTF-8 lead and continuation bytes */
      b[i] = (unsigned char)((v & 3) == 0 ? 0x80 | (v >> 8 & 0x3f) : (v & 3) == 1 ? 0xc0 | (v >> 8 & 0x3f) : v >> 8);
    }
    char *o = NULL;
    size_t olen = 0;
    if (sd_decode((const char *)b, n, &s) || sd_encode(s.c, s.n, &o, &olen) || olen != n ||
        memcmp(o, b, n) != 0)
      bad = 1;
    for (size_t i = 0; !bad && i < s.n; i++)
      if (s.c[i] >= 0xD800 && s.c[i] <= 0xDFFF && (s.c[i] < 0xDC80 || s.c[i] > 0xDCFF)) bad = 1;
    free(o);
  }
  CHECK(!bad, "decode/encode is not lossless");
  sd_str_free(&s);
}

static void test_big_input(void) {
  size_t n = 1u << 20;
  char *in = malloc(n);
  static const char *pieces[] = {"Mason ", "42 ", "O'Neil, ", "\xc3\xa9t\xc3\xa9 ", "SMITH; ", "x", "\xff", "  (555) "};
  size_t k = 0;
  for (unsigned i = 0; k < n; i++) {
    const char *p = pieces[(i * 7u + i / 3u) % 8u];
    size_t l = strlen(p);
    if (l > n - k) l = n - k;
    memcpy(in + k, p, l);
    k += l;
  }
  const char *progs[] = {
      "GetAll(WORD) | GetFirst(PROP_CASE, -2) | GetToken(NUMBER, -1) | GetAll(CHAR)",
      "GetSpan(WORD, -5, START, '(', -1, END) | GetSpan(WORD, 5, END, NUMBER, -2, START)",
      "Compose(ToCase(LOWER), GetFrom(' ')) | Compose(Trim(), GetUpto(';')) | Replace(' ', '#')",
      "SubStr(-100, 100) | SubStr(1, 0) | ToCase(PROPER) | Trim() | Compose(GetAll(DIGIT), SubStr(1, 0))",
  };
  size_t olen = 0;
  clock_t t0 = clock();
  for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
    char *o = run(progs[i], in, n, &olen);
    CHECK(o != NULL && olen > 0, "1 MB input: %s", progs[i]);
    free(o);
  }
  /* identity-like program keeps every byte */
  char *o = run("SubStr(1, 0)", in, n, &olen);
  CHECK(o && olen == n && memcmp(o, in, n) == 0, "1 MB SubStr(1, 0) is not the identity");
  free(o);
  o = run("GetToken(PROP_CASE, 1) | GetToken(NUMBER, 1)", in, n, &olen);
  CHECK(o && olen == 8 && memcmp(o, "Mason555", 8) == 0, "1 MB GetToken");
  free(o);
  double sec = (double)(clock() - t0) / CLOCKS_PER_SEC;
  CHECK(sec < 3.0, "1 MB programs took %.2f s", sec);
  free(in);
}

static void test_tokens(void) {
  const int32_t W = SD_TOK_TYPE0 + SD_WORD;
  EXPECT_TOKERR("empty program", SD_TOK_EOS);
  {
    sd_prog p = {0};
    char err[256] = "";
    CHECK(sd_from_tokens(NULL, 0, &p, err, sizeof err) == -1 && strstr(err, "empty"), "n=0: %s", err);
    sd_prog_clear(&p);
  }
  EXPECT_TOKERR("inside the expression", T_SUBSTR, TI(1));
  EXPECT_TOKERR("token 2 (id 2 EOS): expected an integer", T_SUBSTR, TI(1), SD_TOK_EOS);
  EXPECT_TOKERR("token 2 (id 98, type NUMBER): expected an integer", T_SUBSTR, TI(1), SD_TOK_TYPE0, TI(2), SD_TOK_EOS);
  EXPECT_TOKERR("token 0 (id 400, outside 0..311)", 400, SD_TOK_EOS);
  EXPECT_TOKERR("token 0 (id -1, outside 0..311)", -1);
  EXPECT_TOKERR("token 0 (id -2147483648, outside 0..311): expected an operation", INT32_MIN);
  EXPECT_TOKERR("token 1 (id 2147483647, outside 0..311): expected an operation", T_TRIM, INT32_MAX);
  EXPECT_TOKERR("token 1 (id -2147483646, outside 0..311): expected a nesting", T_COMPOSE, INT32_MIN + 2);
  EXPECT_TOKERR("token 1 (id -2147483648, outside 0..311): expected a character", T_CONST, INT32_MIN);
  EXPECT_TOKERR("token 2 (id 2147483647, outside 0..311): expected an integer", T_SUBSTR, TI(1), INT32_MAX);
  EXPECT_TOKERR("token 1 (id -2147483648", T_GETSPAN, INT32_MIN, TI(1), SD_TOK_START, 98, TI(1), SD_TOK_END);
  EXPECT_TOKERR("token 0 (id 0 PAD)", SD_TOK_PAD, T_TRIM);
  EXPECT_TOKERR("token 0 (id 1 BOS)", SD_TOK_BOS, T_TRIM, SD_TOK_EOS);
  EXPECT_TOKERR("token 1 (id 5, operation SubStr): expected a nesting operation", T_COMPOSE, T_SUBSTR, TI(1), TI(2), T_TRIM, SD_TOK_EOS);
  EXPECT_TOKERR("token 1 (id 3, operation Compose): expected a nesting", T_COMPOSE, T_COMPOSE, T_TRIM, T_TRIM, T_TRIM);
  EXPECT_TOKERR("token 2 (id 4, operation ConstStr): expected a nesting or substring", T_COMPOSE, T_TRIM, T_CONST, SD_TOK_CHAR0, SD_TOK_EOS);
  EXPECT_TOKERR("token 2 (id 3, operation Compose): expected a nesting or substring", T_COMPOSE, T_TRIM, T_COMPOSE, T_TRIM, T_TRIM);
  EXPECT_TOKERR("expected a delimiter", T_REPLACE, SD_TOK_CHAR0, SD_TOK_CHAR0 + SD_FIRST_DELIM, SD_TOK_EOS);
  EXPECT_TOKERR("token 2 (id 211, integer 0): expected an index", T_GETTOKEN, W, TI(0), SD_TOK_EOS);
  EXPECT_TOKERR("token 2 (id 217, integer 6): expected an index", T_GETTOKEN, W, TI(6), SD_TOK_EOS);
  EXPECT_TOKERR("expected a type", T_GETALL, SD_TOK_CHAR0 + SD_FIRST_DELIM, SD_TOK_EOS);
  EXPECT_TOKERR("expected a case", T_TOCASE, W, SD_TOK_EOS);
  EXPECT_TOKERR("token 3 (id 212, integer 1): expected START or END", T_GETSPAN, W, TI(1), TI(1), W, TI(1), SD_TOK_END, SD_TOK_EOS);
  EXPECT_TOKERR("expected a type or a delimiter", T_GETSPAN, SD_TOK_CHAR0, TI(1), SD_TOK_START, W, TI(1), SD_TOK_END, SD_TOK_EOS);
  EXPECT_TOKERR("expected a character", T_CONST, W, SD_TOK_EOS);
  EXPECT_TOKERR("token 1 (id 98, type NUMBER): expected an operation", T_TRIM, SD_TOK_TYPE0, SD_TOK_EOS);
  EXPECT_TOKERR("token 1 (id 1 BOS)", T_TRIM, SD_TOK_BOS);

  /* accepted: ids after EOS are ignored, and EOS may be missing */
  sd_prog p = {0};
  char err[256];
  const int32_t ok1[] = {T_TRIM, SD_TOK_EOS, 999, -5};
  CHECK(sd_from_tokens(ok1, 4, &p, err, sizeof err) == 0 && p.n == 1, "ids after EOS");
  const int32_t ok2[] = {T_TRIM, T_CONST, SD_TOK_CHAR0};
  CHECK(sd_from_tokens(ok2, 3, &p, err, sizeof err) == 0 && p.n == 2, "no EOS");

  /* prefixes */
  int ended = -1;
  const int32_t pre[] = {T_TRIM, T_COMPOSE, T_TOCASE, SD_TOK_CASE0, T_SUBSTR, TI(1), TI(2), SD_TOK_EOS};
  for (size_t n = 0; n <= 8; n++) {
    int r = sd_from_tokens_prefix(pre, n, &p, &ended, err, sizeof err);
    size_t want = n >= 7 ? 2 : n >= 1 ? 1 : 0;
    CHECK(r == 0 && p.n == want && ended == (n == 8), "prefix n=%zu: r=%d n=%zu ended=%d", n, r, p.n, ended);
  }
  const int32_t badpre[] = {T_COMPOSE, T_SUBSTR};
  CHECK(sd_from_tokens_prefix(badpre, 2, &p, &ended, err, sizeof err) == -1, "malformed prefix");
  const int32_t eospre[] = {T_SUBSTR, SD_TOK_EOS};
  CHECK(sd_from_tokens_prefix(eospre, 2, &p, &ended, err, sizeof err) == -1, "EOS inside an expression");
  sd_prog_clear(&p);

  /* every id sequence of length <= 2, and many random ones, is handled without crashing */
  uint64_t x = 1234567;
  for (int t = 0; t < 20000; t++) {
    int32_t ids[12];
    size_t n = (size_t)(t % 12) + 1;
    for (size_t i = 0; i < n; i++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      ids[i] = (int32_t)((x >> 33) % 320) - 4;
    }
    int r = sd_from_tokens(ids, n, &p, err, sizeof err);
    if (r == 0) {
      char *txt = NULL;
      size_t len;
      sd_prog q = {0};
      int ok = sd_print(&p, &txt, &len) == 0 && sd_parse(txt, len, &q, err, sizeof err) == 0 &&
               q.n == p.n && memcmp(q.e, p.e, p.n * sizeof *p.e) == 0;
      if (!ok) {
        CHECK(0, "random ids parsed but did not round-trip: %s", txt ? txt : "");
        t = 20000;
      }
      free(txt);
      sd_prog_clear(&q);
    }
  }
  sd_prog_clear(&p);
}

/* sd_eval_expr in place (in == out.c) and reuse of the buffer. */
static void test_eval_expr(void) {
  sd_prog p = {0};
  sd_str s = {0}, o = {0};
  char err[256];
  const char *t = "Compose(GetAll(LOWER), GetSpan(' ', 1, END, ' ', -1, START)) | ToCase(ALL_CAPS) | "
                  "Compose(GetAll(WORD), SubStr(2, -1))";
  CHECK(sd_parse(t, strlen(t), &p, err, sizeof err) == 0 && p.n == 3, "%s", err);
  sd_decode("X ab CD ef Y", 12, &s);
  CHECK(sd_eval_expr(&p.e[0], s.c, s.n, &o) == 0 && o.n == 4 && o.c[0] == 'a' && o.c[3] == 'f',
        "eval_expr");
  CHECK(sd_eval_expr(&p.e[1], o.c, o.n, &o) == 0 && o.n == 4 && o.c[0] == 'A' && o.c[3] == 'F',
        "eval_expr in place");
  CHECK(sd_eval_expr(&p.e[2], o.c, o.n, &o) == 0 && o.n == 3 && o.c[0] == 'B' && o.c[2] == 'F',
        "eval_expr Compose in place");
  sd_prog_clear(&p);
  sd_str_free(&s);
  sd_str_free(&o);
}

int main(void) {
  test_parse_errors();
  test_roundtrips();
  test_semantics();
  test_lossless();
  test_big_input();
  test_tokens();
  test_eval_expr();
  printf("strdsl unit: %d/%d checks pass\n", checks - failures, checks);
  return failures ? 1 : 0;
}

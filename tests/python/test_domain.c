/* The python domain through the plugin ABI, as the CLI reaches it:
 *   test_python_domain TMPDIR STDLIB_DIR
 * lists and loads the plugin by name, checks the instance without a model,
 * extracts the pairs of a few standard-library modules, trains a small
 * SentencePiece model (vocabulary 2000) on them through tokenizer_train, and
 * checks decode(encode(code)) == code for every function, the vocabularies,
 * the reserved symbols, anonymise on ids and the failure messages. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/check.h"
#include "lpsynth/runtime.h"
#include "lpsynth/synth.h"

static int has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *b = malloc(cap);
  size_t r;
  while (b && (r = fread(b + n, 1, cap - n - 1, f)) > 0) {
    n += r;
    if (n + 1 == cap) {
      char *p = realloc(b, cap *= 2);
      if (!p) {
        free(b);
        b = NULL;
      } else {
        b = p;
      }
    }
  }
  fclose(f);
  if (b) b[n] = 0;
  *len = n;
  return b;
}

typedef struct {
  lp_strs docs, codes;
} corpus;

static int collect(void *ctx, const lp_pair *p) {
  corpus *c = ctx;
  if (p->struct_size < sizeof(lp_pair) || !p->spec || !p->program || p->line == 0) return -7;
  if (lp_strs_push(&c->docs, p->spec, p->spec_len) ||
      lp_strs_push(&c->codes, p->program, p->program_len))
    return -8;
  return 0;
}

static void test_listing(void) {
  lp_plugin_info *v = NULL;
  size_t n = 0;
  lp_err e = {0};
  CHECK(lp_plugin_list(&v, &n, &e) == LP_OK, "list: %s", e.msg);
  int found = 0;
  for (size_t i = 0; i < n; i++) {
    if (!v[i].name || strcmp(v[i].name, "python") != 0) continue;
    found = 1;
    char caps[128];
    lp_caps_string(v[i].caps, caps, sizeof caps);
    CHECK(strcmp(caps, "anonymise,extract,tokenizer,wellformed") == 0, "python caps %s", caps);
    CHECK(v[i].abi_major == LP_PLUGIN_ABI_MAJOR && v[i].abi_minor == LP_PLUGIN_ABI_MINOR &&
              LP_PLUGIN_ABI_MINOR >= 1,
          "python ABI %u.%u", v[i].abi_major, v[i].abi_minor);
  }
  CHECK(found, "`lpsynth domains` would not list python");
  lp_plugin_list_free(v, n);
}

static void test_without_model(const char *tmp) {
  lp_err e = {0};
  lp_domain *d = lp_domain_open("python", NULL, &e);
  CHECK(d != NULL, "open python without a model: %s", e.msg);
  if (!d) return;
  const lp_domain_desc *desc = lp_domain_desc_of(d);
  CHECK(desc->spec_parts == 1 && strcmp(desc->name, "python") == 0, "descriptor");
  CHECK(lp_domain_has(d, LP_CAP_ANONYMISE | LP_CAP_EXTRACT | LP_CAP_TOKENIZER) &&
            !lp_domain_has(d, LP_CAP_EXECUTE) && !lp_domain_has(d, LP_CAP_CHECK) &&
            !lp_domain_has(d, LP_CAP_GENERATE),
        "capabilities 0x%x", desc->caps);
  lp_ids ids = {0};
  CHECK(lp_domain_program_encode(d, "x = 1\n", 6, &ids, &e) == LP_EINVAL &&
            has(e.msg, "no SentencePiece model") && has(e.msg, "--domain-options"),
        "encode without a model: %s", e.msg);
  lp_vocab_info vi;
  CHECK(lp_domain_program_vocab(d, &vi) != LP_OK && vi.size == 0, "vocab without a model");
  CHECK(lp_domain_program_token(d, 0) == NULL, "token without a model");
  lp_example ex = {{"a", "b"}, {1, 1}};
  int ok;
  CHECK(lp_domain_check(d, NULL, 0, &ex, 1, &ok, &e) == LP_EUNSUP, "check is unsupported");
  /* extraction needs no model; a syntax error names the file and line */
  int count = 0;
  corpus c = {0};
  const char *bad = "def f(:\n  pass\n";
  CHECK(lp_domain_extract_pairs(d, "bad.py", bad, strlen(bad), collect, &c, &e) == LP_EINVAL &&
            has(e.msg, "bad.py:1:7: ") && has(e.msg, "syntax error"),
        "syntax error: %s", e.msg);
  (void)count;
  lp_strs_free(&c.docs);
  lp_strs_free(&c.codes);
  /* training refuses silly sizes and empty input */
  lp_strs texts = {0};
  lp_strs_push(&texts, "def f():\n    pass\n", 18);
  char out[4096];
  snprintf(out, sizeof out, "%s/never.model", tmp);
  CHECK(lp_domain_tokenizer_train(d, &texts, 50, out, &e) == LP_EINVAL && has(e.msg, "50"),
        "vocab 50: %s", e.msg);
  lp_strs empty = {0};
  CHECK(lp_domain_tokenizer_train(d, &empty, 1000, out, &e) == LP_EINVAL, "no texts: %s", e.msg);
  /* a host of ABI 1.2 has no write_file_atomic: refused at once, nothing written */
  const lp_domain_desc *D = lp_domain_desc_of(d);
  lp_host_api old = *lp_host_api_get();
  old.struct_size = (uint32_t)offsetof(lp_host_api, write_file_atomic);
  old.abi_minor = 2;
  CHECK(!LP_HOST_HAS(&old, write_file_atomic) && LP_HOST_HAS(lp_host_api_get(), write_file_atomic),
        "LP_HOST_HAS");
  void *self = NULL;
  CHECK(D->create(&old, NULL, &self, &e) == LP_OK, "create on an ABI 1.2 host: %s", e.msg);
  if (self) {
    CHECK(D->tokenizer_train(self, &texts, 1000, out, &e) == LP_EABI &&
              has(e.msg, "write_file_atomic") && access(out, F_OK) != 0,
          "train on an ABI 1.2 host: %d %s", e.code, e.msg);
    D->destroy(self);
  }
  lp_strs_free(&texts);
  lp_domain_free(d);

  /* a model that is missing, or not a model */
  char path[4096];
  snprintf(path, sizeof path, "%s/missing.model", tmp);
  d = lp_domain_open("python", path, &e);
  CHECK(d == NULL && e.code == LP_EIO && has(e.msg, path) && has(e.msg, "cannot"),
        "missing model: %s", e.msg);
  lp_domain_free(d);
  snprintf(path, sizeof path, "%s/junk.model", tmp);
  lp_err we = {0};
  lp_write_file_atomic(path, "not a model\n", 12, &we);
  d = lp_domain_open("python", path, &e);
  CHECK(d == NULL && e.code == LP_EINVAL && has(e.msg, "SentencePiece model") && has(e.msg, path),
        "junk model: %s", e.msg);
  lp_domain_free(d);
}

static const char *const special[] = {
    "def f(a):\n\tif a:\n\t\treturn '\xe2\x96\x81'  # U+2581\n",
    "x = '\xee\x80\x80\xee\x80\x81\xee\x80\x82\x61'\n",
    "s = 'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d \xe4\xb8\xad\xe6\x96\x87'\r\n",
    "  leading spaces,   runs   of spaces, trailing   \n\n\n",
    "control \x01\x02\x1b[0m \x7f \f form feed \v",
    "nul \0 byte",
    "ARG_0 VAR_63 VAR_64 ARG_16ARG_1",
    "",
};

static void test_with_model(const char *tmp, const char *stdlib) {
  static const char *const modules[] = {"textwrap.py", "string.py", "shlex.py", "fnmatch.py",
                                        "glob.py",     "json/decoder.py", "json/encoder.py",
                                        "ipaddress.py", "calendar.py", "gettext.py",
                                        "mailbox.py",  "datetime.py", "pathlib.py"};
  lp_err e = {0};
  lp_domain *d = lp_domain_open("python", NULL, &e);
  CHECK(d != NULL, "open: %s", e.msg);
  if (!d) return;
  corpus c = {0};
  for (size_t i = 0; i < sizeof modules / sizeof *modules; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", stdlib, modules[i]);
    size_t len;
    char *text = slurp(path, &len);
    CHECK(text != NULL, "cannot read %s: %s", path, strerror(errno));
    if (!text) continue;
    int rc = lp_domain_extract_pairs(d, path, text, len, collect, &c, &e);
    CHECK(rc == LP_OK, "%s: %s", path, e.msg);
    free(text);
  }
  CHECK(c.codes.len >= 300, "only %zu functions with docstrings", c.codes.len);
  lp_strs texts = {0};
  for (size_t i = 0; i < c.codes.len; i++) {
    lp_strs_push(&texts, c.docs.items[i].data, c.docs.items[i].len);
    lp_strs_push(&texts, c.codes.items[i].data, c.codes.items[i].len);
  }
  char model[4096], stale[4200];
  snprintf(model, sizeof model, "%s/small.model", tmp);
  /* the temporary file of a killed writer (no process has that pid): the
   * host's writer sweeps it away */
  snprintf(stale, sizeof stale, "%s.tmp.999999999", model);
  lp_err we = {0};
  CHECK(lp_write_file_atomic(stale, "partial", 7, &we) == LP_OK, "stale file: %s", we.msg);
  CHECK(lp_domain_tokenizer_train(d, &texts, 2000, model, &e) == LP_OK, "train: %s", e.msg);
  CHECK(access(stale, F_OK) != 0, "the stale temporary file %s is still there", stale);
  lp_strs_free(&texts);
  lp_domain_free(d);

  d = lp_domain_open("python", model, &e);
  CHECK(d != NULL, "open with %s: %s", model, e.msg);
  if (!d) {
    lp_strs_free(&c.docs);
    lp_strs_free(&c.codes);
    return;
  }
  lp_vocab_info pv, sv;
  CHECK(lp_domain_program_vocab(d, &pv) == LP_OK && pv.size == 2000 && pv.pad == 0 &&
            pv.bos == 1 && pv.eos == 2 && pv.unk == 3,
        "program vocab %d pad %d bos %d eos %d unk %d", pv.size, pv.pad, pv.bos, pv.eos, pv.unk);
  CHECK(lp_domain_spec_vocab(d, &sv) == LP_OK && memcmp(&sv, &pv, sizeof sv) == 0,
        "the spec vocabulary is the program vocabulary");
  CHECK(strcmp(lp_domain_program_token(d, 0), "<pad>") == 0 &&
            strcmp(lp_domain_program_token(d, 2), "</s>") == 0 &&
            strcmp(lp_domain_program_token(d, 4), "<NL>") == 0 &&
            strcmp(lp_domain_program_token(d, 5), "<TAB>") == 0 &&
            strcmp(lp_domain_program_token(d, 6), "<ESC>") == 0 &&
            strcmp(lp_domain_program_token(d, 7), "ARG_0") == 0 &&
            lp_domain_program_token(d, 2000) == NULL && lp_domain_program_token(d, -1) == NULL,
        "token texts");

  /* every function and docstring round-trips exactly */
  lp_ids ids = {0};
  lp_buf back = {0};
  size_t bad = 0, total_tokens = 0;
  for (size_t i = 0; i < c.codes.len; i++) {
    const lp_buf *code = &c.codes.items[i];
    ids.len = 0;
    back.len = 0;
    int rc = lp_domain_program_encode(d, code->data, code->len, &ids, &e);
    if (rc == LP_OK) rc = lp_domain_program_decode(d, ids.data, ids.len, &back, &e);
    if (rc != LP_OK || back.len != code->len || memcmp(back.data, code->data, code->len) != 0) {
      if (bad++ < 3)
        fprintf(stderr, "round trip failed (%s):\n%s\n--- got\n%s\n", e.msg, code->data,
                back.data ? back.data : "");
    }
    CHECK(ids.len > 0 && ids.data[ids.len - 1] == 2, "program %zu does not end with EOS", i);
    total_tokens += ids.len;
    ids.len = 0;
    size_t unk = 0;
    rc = lp_domain_spec_encode(d, 0, c.docs.items[i].data, c.docs.items[i].len, &ids, &unk, &e);
    CHECK(rc == LP_OK && unk == 0 && (ids.len == 0 || ids.data[ids.len - 1] != 2),
          "docstring %zu: %s, %zu unknown", i, e.msg, unk);
  }
  CHECK(bad == 0, "%zu of %zu functions do not round-trip", bad, c.codes.len);
  printf("%zu functions round-trip, %.1f tokens each on average\n", c.codes.len,
         (double)total_tokens / (double)(c.codes.len ? c.codes.len : 1));

  /* special texts: newlines, tabs, reserved code points, non-ASCII, controls */
  for (size_t i = 0; i < sizeof special / sizeof *special; i++) {
    size_t n = i == 5 ? 10 : strlen(special[i]);
    ids.len = 0;
    back.len = 0;
    int rc = lp_domain_program_encode(d, special[i], n, &ids, &e);
    if (rc == LP_OK) rc = lp_domain_program_decode(d, ids.data, ids.len, &back, &e);
    CHECK(rc == LP_OK && back.len == n && (n == 0 || memcmp(back.data, special[i], n) == 0),
          "special text %zu does not round-trip (%s): [%s]", i, e.msg, back.data ? back.data : "");
  }
  /* newline, tab and the placeholders are one token each */
  ids.len = 0;
  CHECK(lp_domain_program_encode(d, "\n\tARG_3 VAR_42", 14, &ids, &e) == LP_OK && ids.len == 6 &&
            ids.data[0] == 4 && ids.data[1] == 5 &&
            strcmp(lp_domain_program_token(d, ids.data[2]), "ARG_3") == 0 &&
            strcmp(lp_domain_program_token(d, ids.data[4]), "VAR_42") == 0,
        "reserved symbols: %zu ids", ids.len);

  /* decode: stops at EOS; refuses bad ids */
  back.len = 0;
  int32_t eos_mid[] = {ids.data[2], 2, ids.data[4]};
  CHECK(lp_domain_program_decode(d, eos_mid, 3, &back, &e) == LP_OK && back.len == 5 &&
            memcmp(back.data, "ARG_3", 5) == 0,
        "decode stops at EOS: [%s]", back.data ? back.data : "");
  int32_t out_of_range[] = {7, 2000};
  CHECK(lp_domain_program_decode(d, out_of_range, 2, &back, &e) == LP_EINVAL &&
            has(e.msg, "token 2") && has(e.msg, "2000"),
        "out of range: %s", e.msg);
  int32_t pad_inside[] = {7, 0, 7};
  CHECK(lp_domain_program_decode(d, pad_inside, 3, &back, &e) == LP_EINVAL && has(e.msg, "PAD"),
        "PAD inside: %s", e.msg);
  ids.len = 0;
  CHECK(lp_domain_program_encode(d, "x = '\xff'", 7, &ids, &e) == LP_EINVAL &&
            has(e.msg, "UTF-8") && has(e.msg, "column 6"),
        "invalid UTF-8: %s", e.msg);
  CHECK(lp_domain_spec_encode(d, 1, "x", 1, &ids, NULL, &e) == LP_EINVAL && has(e.msg, "part 1"),
        "spec part 1: %s", e.msg);

  /* anonymise on ids: decode, rename, encode */
  const char *fn = "def area(width, height):\n    result = width * height\n    return result\n";
  const char *want = "def area(ARG_0, ARG_1):\n    VAR_0 = ARG_0 * ARG_1\n    return VAR_0\n";
  ids.len = 0;
  lp_ids an = {0};
  back.len = 0;
  CHECK(lp_domain_program_encode(d, fn, strlen(fn), &ids, &e) == LP_OK &&
            lp_domain_anonymise(d, ids.data, ids.len, &an, &e) == LP_OK &&
            an.len > 0 && an.data[an.len - 1] == 2 &&
            lp_domain_program_decode(d, an.data, an.len, &back, &e) == LP_OK &&
            back.data && strcmp(back.data, want) == 0,
        "anonymise: %s [%s]", e.msg, back.data ? back.data : "");
  /* a program that does not parse comes back as it was */
  const char *broken = "def f(:\n  return x\n";
  ids.len = 0;
  an.len = 0;
  CHECK(lp_domain_program_encode(d, broken, strlen(broken), &ids, &e) == LP_OK &&
            lp_domain_anonymise(d, ids.data, ids.len, &an, &e) == LP_OK && an.len == ids.len &&
            memcmp(an.data, ids.data, ids.len * sizeof *ids.data) == 0,
        "anonymise of a broken program: %s", e.msg);

  /* wellformed: the text parses; search ranks such programs first */
  lp_ids good = {0}, badp = {0}, blank = {0};
  int ok = -1;
  CHECK(lp_domain_has(d, LP_CAP_WELLFORMED), "python tells well-formed programs");
  CHECK(lp_domain_program_encode(d, fn, strlen(fn), &good, &e) == LP_OK &&
            lp_domain_program_encode(d, broken, strlen(broken), &badp, &e) == LP_OK &&
            lp_domain_program_encode(d, "  \n", 3, &blank, &e) == LP_OK,
        "encode: %s", e.msg);
  CHECK(lp_domain_wellformed(d, good.data, good.len, &ok, &e) == LP_OK && ok == 1,
        "a function parses: %d %s", ok, e.msg);
  CHECK(lp_domain_wellformed(d, badp.data, badp.len, &ok, &e) == LP_OK && ok == 0,
        "a broken function does not: %d %s", ok, e.msg);
  CHECK(lp_domain_wellformed(d, blank.data, blank.len, &ok, &e) == LP_OK && ok == 0,
        "a blank program is not a program: %d %s", ok, e.msg);
  int32_t outside[] = {999999, 2};
  CHECK(lp_domain_wellformed(d, outside, 2, &ok, &e) == LP_EINVAL && has(e.msg, "outside"),
        "an id outside the vocabulary: %s", e.msg);
  lp_hyp hy[4] = {{.prog = badp.data, .prog_len = (int)badp.len, .score = -1},
                  {.prog = good.data, .prog_len = (int)good.len, .score = -2},
                  {.prog = blank.data, .prog_len = (int)blank.len, .score = -3},
                  {.prog = good.data, .prog_len = (int)good.len, .score = -4}};
  lp_beam_result br = {.hyps = hy, .n = 4};
  int n_ok = -2;
  CHECK(lp_beam_wellformed_first(d, &br, &n_ok, &e) == LP_OK && n_ok == 2 &&
            hy[0].score == -2 && hy[1].score == -4 && hy[2].score == -1 && hy[3].score == -3,
        "well-formed first, each group in beam order: n_ok %d, scores %g %g %g %g", n_ok,
        hy[0].score, hy[1].score, hy[2].score, hy[3].score);
  lp_ids_free(&good);
  lp_ids_free(&badp);
  lp_ids_free(&blank);
  lp_ids_free(&an);
  lp_ids_free(&ids);
  lp_buf_free(&back);
  lp_strs_free(&c.docs);
  lp_strs_free(&c.codes);
  lp_domain_free(d);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_python_domain TMPDIR STDLIB_DIR\n");
    return 2;
  }
  mkdir(argv[1], 0755);
  test_listing();
  test_without_model(argv[1]);
  test_with_model(argv[1], argv[2]);
  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}

/* strdsl_plugin: loads the built plugin module (lpsynth_string.so) with
 * dlopen, as the host does, and exercises its lp_domain_desc through a
 * minimal host API of its own. Usage: strdsl_plugin PATH/lpsynth_string.so */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_ON_STDOUT
#include "../common/check.h"
#include "lpsynth/plugin.h"

#include "mini_host.h"

static void strs_free(lp_strs *v) {
  for (size_t i = 0; i < v->len; i++) free(v->items[i].data);
  free(v->items);
  memset(v, 0, sizeof *v);
}

static const lp_domain_desc *D;
static void *self;

static int encode(const char *text, lp_ids *ids, lp_err *err) {
  ids->len = 0;
  return D->program_encode(self, text, strlen(text), ids, err);
}

static void test_vocab(void) {
  lp_vocab_info v;
  CHECK(D->program_vocab(self, &v) == 0 && v.size == 312 && v.pad == 0 && v.bos == 1 &&
            v.eos == 2 && v.unk == -1, "program vocab");
  static const struct { int id; const char *text; } toks[] = {
      {0, "PAD"}, {1, "BOS"}, {2, "EOS"}, {3, "Compose"}, {4, "ConstStr"}, {14, "GetAll"},
      {15, "a"}, {41, "A"}, {67, "0"}, {77, "&"}, {95, "\""}, {96, "'"}, {97, " "},
      {98, "NUMBER"}, {105, "CHAR"}, {106, "PROPER"}, {107, "ALL_CAPS"}, {108, "LOWER"},
      {109, "START"}, {110, "END"}, {111, "-100"}, {210, "-1"}, {211, "0"}, {311, "100"}};
  for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
    const char *t = D->program_token(self, toks[i].id);
    CHECK(t && strcmp(t, toks[i].text) == 0, "program token %d: %s", toks[i].id, t ? t : "NULL");
  }
  CHECK(D->program_token(self, 312) == NULL && D->program_token(self, -1) == NULL, "token range");
  CHECK(D->spec_vocab(self, &v) == 0 && v.size == 85 && v.pad == 0 && v.bos == -1 &&
            v.eos == -1 && v.unk == 84, "spec vocab");
  CHECK(strcmp(D->spec_token(self, 1), "a") == 0 && strcmp(D->spec_token(self, 83), " ") == 0 &&
            strcmp(D->spec_token(self, 84), "UNK") == 0 && strcmp(D->spec_token(self, 0), "PAD") == 0 &&
            D->spec_token(self, 85) == NULL, "spec tokens");
  lp_ids ids = {0};
  lp_err err = {0};
  size_t unk = 1;
  const char *s = "aZ9 '~\xc3\xa9\xff";
  CHECK(D->spec_encode(self, 0, s, strlen(s), &ids, &unk, &err) == 0 && ids.len == 8 && unk == 4,
        "spec_encode: len %zu unk %zu", ids.len, unk);
  if (ids.len == 8)
    CHECK(ids.data[0] == 1 && ids.data[1] == 52 && ids.data[2] == 62 && ids.data[3] == 83 &&
              ids.data[4] == 82 && ids.data[5] == 84 && ids.data[6] == 84 && ids.data[7] == 84,
          "spec_encode ids");
  CHECK(D->spec_encode(self, 2, s, 1, &ids, NULL, &err) == LP_EINVAL && err.msg[0], "spec part 2");
  free(ids.data);
}

static void test_programs(void) {
  lp_ids ids = {0};
  lp_buf buf = {0};
  lp_err err = {0};
  const char *t = "GetToken(PROP_CASE, 2) | ConstStr(' ') | GetToken(ALL_CAPS, 1)";
  CHECK(encode(t, &ids, &err) == 0 && ids.len == 9 && ids.data[8] == 2, "encode: %s", err.msg);
  CHECK(D->program_decode(self, ids.data, ids.len, &buf, &err) == 0 && buf.data &&
            strcmp(buf.data, t) == 0, "decode: %s", buf.data ? buf.data : err.msg);
  int32_t size = 0;
  CHECK(D->program_size(self, ids.data, ids.len, &size, &err) == 0 && size == 3, "size %d", size);

  /* execute */
  buf.len = 0;
  const char *in = "jack Mason SMITH Zed";
  CHECK(D->execute(self, ids.data, ids.len, in, strlen(in), &buf, &err) == 0 &&
            strcmp(buf.data, "Zed M") == 0, "execute: %s", buf.data);
  buf.len = 0;
  CHECK(encode("Compose(ToCase(ALL_CAPS), SubStr(1, 100))", &ids, &err) == 0, "encode 2");
  CHECK(D->execute(self, ids.data, ids.len, "\xff\xc3\xa9" "a\0b", 6, &buf, &err) == 0 &&
            buf.len == 6 && memcmp(buf.data, "\xff\xc3\xa9" "A\0B", 6) == 0, "execute bytes");

  /* errors */
  err.msg[0] = 0;
  CHECK(encode("SubStr(1, 101)", &ids, &err) == LP_EINVAL && err.code == LP_EINVAL &&
            strstr(err.msg, "column 11: expected an integer in -100..100"), "encode error: %s", err.msg);
  const int32_t bad[] = {3, 5, 212, 212, 10, 2};
  buf.len = 0;
  CHECK(D->program_decode(self, bad, 6, &buf, &err) == LP_EINVAL && strstr(err.msg, "token 1"),
        "decode error: %s", err.msg);
  CHECK(D->execute(self, bad, 6, "x", 1, &buf, &err) == LP_EINVAL, "execute bad ids");
  CHECK(D->program_size(self, bad, 0, &size, &err) == LP_EINVAL, "size of nothing");

  /* check and prefix_ok */
  CHECK(encode("GetToken(WORD, 1) | ConstStr(':') | GetToken(NUMBER, -1)", &ids, &err) == 0, "encode 3");
  lp_example ex[2] = {{{"ab 12 cd 34", "ab:34"}, {11, 5}}, {{"x 9", "x:9"}, {3, 3}}};
  int c = -1;
  CHECK(D->check(self, ids.data, ids.len, ex, 2, &c, &err) == 0 && c == 1, "check consistent");
  ex[1].part[1] = "x:8";
  CHECK(D->check(self, ids.data, ids.len, ex, 2, &c, &err) == 0 && c == 0, "check inconsistent");
  int ok = -1;
  /* prefixes: [GetToken WORD 1 | ConstStr '-' | GetToken NUMBER -1 EOS] */
  CHECK(D->prefix_ok(self, ids.data, 0, ex, 2, &ok, &err) == 0 && ok == 1, "empty prefix");
  CHECK(D->prefix_ok(self, ids.data, 5, ex, 2, &ok, &err) == 0 && ok == 1, "prefix 5");
  CHECK(D->prefix_ok(self, ids.data, 8, ex, 2, &ok, &err) == 0 && ok == 0, "prefix 8: x:9 vs x:8");
  ex[1].part[1] = "x:9";
  CHECK(D->prefix_ok(self, ids.data, 8, ex, 2, &ok, &err) == 0 && ok == 1, "prefix 8");
  CHECK(D->prefix_ok(self, ids.data, 9, ex, 2, &ok, &err) == 0 && ok == 1, "complete");
  ex[1].part[1] = "x:9!";
  ex[1].len[1] = 4;
  CHECK(D->prefix_ok(self, ids.data, 8, ex, 2, &ok, &err) == 0 && ok == 1, "prefix of longer");
  CHECK(D->prefix_ok(self, ids.data, 9, ex, 2, &ok, &err) == 0 && ok == 0, "EOS: must be equal");
  CHECK(D->prefix_ok(self, bad, 2, ex, 2, &ok, &err) == 0 && ok == 0, "malformed prefix");
  const int32_t wrong[] = {4, 15 /* ConstStr('a') */};
  CHECK(D->prefix_ok(self, wrong, 2, ex, 2, &ok, &err) == 0 && ok == 0, "wrong first char");

  free(ids.data);
  free(buf.data);
}

static void test_generate(void) {
  lp_err err = {0};
  lp_gen_opts opts = {sizeof opts, 0, 0, 0};
  lp_ids first = {0};
  for (uint64_t seed = 1; seed <= 30; seed++) {
    lp_task t = {0};
    int rc = D->generate(self, seed, seed % 2 ? &opts : NULL, &t, &err);
    CHECK(rc == 0, "generate seed %llu: %s", (unsigned long long)seed, err.msg);
    if (rc) continue;
    CHECK(t.n_parts == 2 && t.examples.len == 8 && t.program.len >= 2 &&
              t.program.data[t.program.len - 1] == 2, "task shape (seed %llu)", (unsigned long long)seed);
    int32_t size = 0;
    CHECK(D->program_size(self, t.program.data, t.program.len, &size, &err) == 0 && size >= 1 &&
              size <= 10, "size %d", size);
    lp_example ex[4];
    for (size_t i = 0; i < 4 && i * 2 + 1 < t.examples.len; i++) {
      ex[i].part[0] = t.examples.items[2 * i].data;
      ex[i].len[0] = t.examples.items[2 * i].len;
      ex[i].part[1] = t.examples.items[2 * i + 1].data;
      ex[i].len[1] = t.examples.items[2 * i + 1].len;
      CHECK(ex[i].len[1] >= 1 && ex[i].len[1] <= 100, "output length %zu", ex[i].len[1]);
    }
    int c = 0;
    if (t.examples.len == 8)
      CHECK(D->check(self, t.program.data, t.program.len, ex, 4, &c, &err) == 0 && c == 1,
            "generated task inconsistent (seed %llu)", (unsigned long long)seed);
    if (seed == 1) {
      for (size_t i = 0; i < t.program.len; i++) h_ids_push(&first, t.program.data[i]);
    }
    free(t.program.data);
    strs_free(&t.examples);
  }
  lp_task t = {0};
  CHECK(D->generate(self, 1, NULL, &t, &err) == 0 && t.program.len == first.len &&
            memcmp(t.program.data, first.data, first.len * sizeof *first.data) == 0,
        "generate is not deterministic");
  free(t.program.data);
  strs_free(&t.examples);
  lp_gen_opts three = {sizeof three, 3, 3, 2};
  memset(&t, 0, sizeof t);
  int32_t size = 0;
  CHECK(D->generate(self, 7, &three, &t, &err) == 0 && t.examples.len == 4 &&
            D->program_size(self, t.program.data, t.program.len, &size, &err) == 0 && size == 3,
        "generate with 3 expressions, 2 examples: %s", err.msg);
  free(t.program.data);
  strs_free(&t.examples);
  lp_gen_opts bado = {sizeof bado, 5, 2, 0};
  memset(&t, 0, sizeof t);
  CHECK(D->generate(self, 1, &bado, &t, &err) == LP_EINVAL, "min > max");
  free(t.program.data);
  strs_free(&t.examples);
  free(first.data);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PATH/lpsynth_string.so\n", argv[0]);
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
  CHECK(sym != NULL, "no %s", LP_PLUGIN_ENTRY_SYMBOL);
  if (!sym) return 1;
  D = entry();
  CHECK(D && D->struct_size == sizeof(lp_domain_desc) && D->abi_major == LP_PLUGIN_ABI_MAJOR &&
            strcmp(D->name, "string") == 0 && D->spec_parts == 2 &&
            D->caps == (LP_CAP_EXECUTE | LP_CAP_CHECK | LP_CAP_GENERATE | LP_CAP_PREFIX |
                        LP_CAP_LENGTH | LP_CAP_SOLVE) &&
            D->execute && D->check && D->generate && D->prefix_ok && D->program_size && D->solve &&
            !D->anonymise,
        "descriptor");
  lp_err err = {0};
  void *other = NULL;
  CHECK(D->create(&host, "bogus", &other, &err) == LP_EINVAL && other == NULL && err.msg[0],
        "options refused");
  lp_host_api old = host;
  old.abi_major = 99;
  CHECK(D->create(&old, NULL, &other, &err) == LP_EABI && err.code == LP_EABI, "ABI refused");
  CHECK(D->create(&host, NULL, &self, &err) == 0 && self, "create: %s", err.msg);
  test_vocab();
  test_programs();
  test_generate();
  D->destroy(self);
  D->destroy(NULL);
  dlclose(h);
  printf("strdsl plugin: %d/%d checks pass\n", checks - failures, checks);
  return failures ? 1 : 0;
}

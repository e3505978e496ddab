/* strdsl_conformance: every vector of tests/data/strdsl.jsonl (a copy of
 * ../shared/conformance/strdsl.jsonl) must
 * pass: parse, tokens, canonical printing (from text and from tokens) and the
 * outputs of the program on every input, byte-exact.
 * Usage: strdsl_conformance PATH/strdsl.jsonl */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strdsl.h"

#define MAX_DETAIL 20

static size_t n_fail_lines;

/* Prints a byte string with C escapes (for failure reports). */
static void put_esc(const char *s, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n && i < 400; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c >= 32 && c < 127) putchar(c);
    else printf("\\x%02x", c);
  }
  if (n > 400) printf("...");
  putchar('"');
}

static int line_fail(size_t lineno, const char *what) {
  if (n_fail_lines < MAX_DETAIL) printf("line %zu: %s\n", lineno, what);
  return 1;
}

static int check_line(const char *line, size_t len, size_t lineno) {
  json_error_t jerr;
  json_t *root = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
  if (!root || !json_is_object(root)) {
    char msg[300];
    snprintf(msg, sizeof msg, "not a JSON object: %s", root ? "" : jerr.text);
    json_decref(root);
    return line_fail(lineno, msg);
  }
  int bad = 0;
  char err[512], msg[1024];
  sd_prog p = {0}, q = {0};
  char *text = NULL, *text2 = NULL;
  size_t tlen = 0, tlen2 = 0;
  int32_t *ids = NULL;
  size_t nids = 0, cap = 0;
  sd_str in = {0}, out = {0};

  json_t *jprog = json_object_get(root, "program"), *jtok = json_object_get(root, "tokens");
  json_t *jin = json_object_get(root, "inputs"), *jout = json_object_get(root, "outputs");
  if (!json_is_string(jprog) || !json_is_array(jtok) || !json_is_array(jin) ||
      !json_is_array(jout) || json_array_size(jin) != json_array_size(jout)) {
    bad = line_fail(lineno, "missing or malformed program/tokens/inputs/outputs");
    goto done;
  }
  const char *prog = json_string_value(jprog);
  size_t plen = json_string_length(jprog);

  /* 1. parse */
  if (sd_parse(prog, plen, &p, err, sizeof err) != 0) {
    snprintf(msg, sizeof msg, "sd_parse failed on %.300s: %s", prog, err);
    bad = line_fail(lineno, msg);
    goto done;
  }
  /* 2. tokens */
  if (sd_to_tokens(&p, &ids, &nids, &cap) != 0) {
    bad = line_fail(lineno, "sd_to_tokens failed");
    goto done;
  }
  int tok_ok = nids == json_array_size(jtok);
  for (size_t i = 0; tok_ok && i < nids; i++) {
    json_t *v = json_array_get(jtok, i);
    tok_ok = json_is_integer(v) && json_integer_value(v) == ids[i];
  }
  if (!tok_ok) {
    int k = snprintf(msg, sizeof msg, "tokens differ for %.200s: got", prog);
    for (size_t i = 0; i < nids && k > 0 && (size_t)k < sizeof msg - 16; i++)
      k += snprintf(msg + k, sizeof msg - (size_t)k, " %d", (int)ids[i]);
    bad = line_fail(lineno, msg);
  }
  /* 3. print(parse(text)) == text */
  if (sd_print(&p, &text, &tlen) != 0 || tlen != plen || memcmp(text, prog, plen) != 0) {
    snprintf(msg, sizeof msg, "print(parse(text)) differs:\n  text:    %.300s\n  printed: %.300s",
             prog, text ? text : "(failed)");
    bad = line_fail(lineno, msg);
  }
  /* 4. from_tokens(vector tokens) prints the same text */
  {
    size_t nt = json_array_size(jtok);
    int32_t *vt = malloc((nt ? nt : 1) * sizeof *vt);
    for (size_t i = 0; vt && i < nt; i++)
      vt[i] = (int32_t)json_integer_value(json_array_get(jtok, i));
    if (!vt || sd_from_tokens(vt, nt, &q, err, sizeof err) != 0) {
      snprintf(msg, sizeof msg, "sd_from_tokens failed: %s", vt ? err : "out of memory");
      bad = line_fail(lineno, msg);
    } else if (sd_print(&q, &text2, &tlen2) != 0 || tlen2 != plen ||
               memcmp(text2, prog, plen) != 0) {
      snprintf(msg, sizeof msg, "print(from_tokens(tokens)) differs:\n  text:    %.300s\n  printed: %.300s",
               prog, text2 ? text2 : "(failed)");
      bad = line_fail(lineno, msg);
    }
    free(vt);
  }
  /* 5. outputs */
  for (size_t i = 0; i < json_array_size(jin); i++) {
    json_t *a = json_array_get(jin, i), *b = json_array_get(jout, i);
    if (!json_is_string(a) || !json_is_string(b)) {
      bad = line_fail(lineno, "an input or output is not a string");
      break;
    }
    char *o = NULL;
    size_t olen = 0;
    if (sd_decode(json_string_value(a), json_string_length(a), &in) != 0 ||
        sd_eval(&p, in.c, in.n, &out) != 0 || sd_encode(out.c, out.n, &o, &olen) != 0) {
      bad = line_fail(lineno, "out of memory while running");
      break;
    }
    if (olen != json_string_length(b) || memcmp(o, json_string_value(b), olen) != 0) {
      bad = 1;
      if (n_fail_lines < MAX_DETAIL) {
        printf("line %zu: output %zu differs for %.300s\n  input:    ", lineno, i, prog);
        put_esc(json_string_value(a), json_string_length(a));
        printf("\n  expected: ");
        put_esc(json_string_value(b), json_string_length(b));
        printf("\n  got:      ");
        put_esc(o, olen);
        printf("\n");
      }
    }
    free(o);
  }
done:
  free(text);
  free(text2);
  free(ids);
  sd_prog_clear(&p);
  sd_prog_clear(&q);
  sd_str_free(&in);
  sd_str_free(&out);
  json_decref(root);
  return bad;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PATH/strdsl.jsonl\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    printf("conformance file not found: %s (the repository's tests/data/strdsl.jsonl)\n", argv[1]);
    return 1;
  }
  char *line = NULL;
  size_t cap = 0, total = 0, lineno = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) != -1) {
    lineno++;
    size_t n = (size_t)len;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    if (n == 0) continue;
    total++;
    if (check_line(line, n, lineno)) n_fail_lines++;
  }
  int rerr = ferror(f);
  free(line);
  fclose(f);
  if (n_fail_lines > MAX_DETAIL) printf("... (%zu more failing lines)\n", n_fail_lines - MAX_DETAIL);
  printf("strdsl conformance: %zu/%zu vectors pass (%zu fail)\n", total - n_fail_lines, total,
         n_fail_lines);
  if (rerr) {
    printf("read error on %s\n", argv[1]);
    return 1;
  }
  if (total == 0) {
    printf("no vectors in %s\n", argv[1]);
    return 1;
  }
  return n_fail_lines ? 1 : 0;
}

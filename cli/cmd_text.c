/* Verbs for text domains (natural-language specifications, real code):
 *   corpus     (docstring, code) pairs from source trees, split by file
 *   tokenizer  train a domain's subword tokenizer on a corpus
 *   score      BLEU of hypotheses against references
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "lpsynth/metrics.h"

static lp_domain *open_text_domain(const char *verb, const char *name, const char *options,
                                   uint32_t cap, const char *what) {
  lp_err e = {0};
  lp_domain *d = lp_domain_open(name, options, &e);
  if (!d) {
    cli_error(verb, "%s", e.msg);
    return NULL;
  }
  if (!lp_domain_has(d, cap)) {
    cli_error(verb, "domain %s (%s) cannot %s", lp_domain_name(d), lp_domain_path(d), what);
    lp_domain_free(d);
    return NULL;
  }
  return d;
}

static int read_file(const char *path, size_t max, char **data, size_t *len, int *too_big) {
  *data = NULL;
  *len = 0;
  if (too_big) *too_big = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  struct stat st;
  size_t cap = 4096, n = 0;
  if (fstat(fileno(f), &st) == 0) {
    if (st.st_size > 0 && (size_t)st.st_size > max) {
      fclose(f);
      if (too_big) *too_big = 1;
      return -1;
    }
    if (st.st_size > 0) cap = (size_t)st.st_size + 1;
  }
  char *buf = malloc(cap);
  while (buf) {
    if (n + 1 >= cap) {
      char *p = realloc(buf, cap * 2);
      if (!p) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = p;
      cap *= 2;
    }
    size_t r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
    if (n > max) {
      free(buf);
      fclose(f);
      if (too_big) *too_big = 1;
      return -1;
    }
  }
  int bad = !buf || ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return -1;
  }
  buf[n] = 0;
  *data = buf;
  *len = n;
  return 0;
}

/* ======================================================================== */
/* corpus                                                                    */

typedef struct src_file {
  char *path; /* as opened (ROOT/REL) */
  char *rel;  /* relative to its root: what the split is decided on */
} src_file;

typedef struct file_list {
  src_file *v;
  size_t n, cap;
} file_list;

static int add_file(file_list *l, const char *path, const char *rel) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 256;
    src_file *p = realloc(l->v, nc * sizeof *p);
    if (!p) return -1;
    l->v = p;
    l->cap = nc;
  }
  l->v[l->n].path = strdup(path);
  l->v[l->n].rel = strdup(rel);
  if (!l->v[l->n].path || !l->v[l->n].rel) return -1;
  l->n++;
  return 0;
}

static int cmp_cstr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Depth first, the entries of each folder in byte order; hidden entries and
 * __pycache__ skipped; symbolic links to files followed, to folders not. */
static int walk_dir(const char *root, const char *sub, const char *ext, file_list *out,
                    const char *verb) {
  char *dir = NULL;
  if (asprintf(&dir, "%s%s%s", root, *sub ? "/" : "", sub) < 0) {
    cli_error(verb, "out of memory");
    return -1;
  }
  DIR *dp = opendir(dir);
  if (!dp) {
    cli_error(verb, "%s: cannot open folder: %s", dir, strerror(errno));
    free(dir);
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(dp))) {
    if (de->d_name[0] == '.' || strcmp(de->d_name, "__pycache__") == 0) continue;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 64;
      char **p = realloc(names, nc * sizeof *p);
      if (!p) {
        rc = -1;
        break;
      }
      names = p;
      cap = nc;
    }
    if (!(names[n] = strdup(de->d_name))) {
      rc = -1;
      break;
    }
    n++;
  }
  closedir(dp);
  if (rc) cli_error(verb, "out of memory");
  if (n > 1) qsort(names, n, sizeof *names, cmp_cstr);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char *path = NULL, *rel = NULL;
    if (asprintf(&path, "%s/%s", dir, names[i]) < 0) path = NULL;
    if (asprintf(&rel, "%s%s%s", sub, *sub ? "/" : "", names[i]) < 0) rel = NULL;
    struct stat st;
    if (!path || !rel) {
      cli_error(verb, "out of memory");
      rc = -1;
    } else if (lstat(path, &st) != 0) {
      /* vanished: ignore */
    } else if (S_ISDIR(st.st_mode)) {
      rc = walk_dir(root, rel, ext, out, verb);
    } else if ((S_ISREG(st.st_mode) || (S_ISLNK(st.st_mode) && stat(path, &st) == 0 &&
                                        S_ISREG(st.st_mode))) &&
               ends_with(names[i], ext)) {
      if (add_file(out, path, rel)) {
        cli_error(verb, "out of memory");
        rc = -1;
      }
    }
    free(path);
    free(rel);
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  free(dir);
  return rc;
}

static uint64_t fnv1a64(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

/* A second, independent 64-bit hash (8 bytes at a time through mix64). */
static uint64_t hash2(const char *s, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    h = mix64(h ^ w) + 0x9E3779B97F4A7C15ull;
  }
  uint64_t w = 0;
  memcpy(&w, s + i, n - i);
  return mix64(h ^ w ^ ((uint64_t)(n - i) << 56));
}

/* Set of 128-bit hashes (the code of the pairs kept so far). */
typedef struct hset {
  uint64_t *k; /* pairs of words; (0, 0) = empty */
  size_t cap, n;
} hset;

static int hset_add(hset *s, uint64_t a, uint64_t b) { /* 1 added, 0 present, -1 oom */
  if (a == 0 && b == 0) b = 1;
  if (2 * (s->n + 1) > s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 1024;
    uint64_t *nk = calloc(nc * 2, sizeof *nk);
    if (!nk) return -1;
    for (size_t i = 0; i < s->cap; i++) {
      uint64_t x = s->k[2 * i], y = s->k[2 * i + 1];
      if (!x && !y) continue;
      size_t j = (size_t)(x ^ y) & (nc - 1);
      while (nk[2 * j] || nk[2 * j + 1]) j = (j + 1) & (nc - 1);
      nk[2 * j] = x;
      nk[2 * j + 1] = y;
    }
    free(s->k);
    s->k = nk;
    s->cap = nc;
  }
  size_t j = (size_t)(a ^ b) & (s->cap - 1);
  while (s->k[2 * j] || s->k[2 * j + 1]) {
    if (s->k[2 * j] == a && s->k[2 * j + 1] == b) return 0;
    j = (j + 1) & (s->cap - 1);
  }
  s->k[2 * j] = a;
  s->k[2 * j + 1] = b;
  s->n++;
  return 1;
}

typedef struct ivec {
  int32_t *v;
  size_t n, cap;
} ivec;
static int ivec_push(ivec *a, int32_t x) {
  if (a->n == a->cap) {
    size_t nc = a->cap ? a->cap * 2 : 1024;
    int32_t *p = realloc(a->v, nc * sizeof *p);
    if (!p) return -1;
    a->v = p;
    a->cap = nc;
  }
  a->v[a->n++] = x;
  return 0;
}

enum { SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST };
static const char *const split_names[3] = {"train", "valid", "test"};

typedef struct corpus_ctx {
  lp_domain *d;
  FILE *out;
  const char *path; /* the file being read */
  int split;
  int tokenize;
  int64_t max_tokens;
  hset seen;
  lp_ids ids, anon;
  ivec code_tok, doc_tok;
  /* counts */
  uint64_t pairs_found, duplicates, too_long, written, anon_changed;
  uint64_t per_split[3], files_per_split[3];
  uint64_t n_parsed, n_unparsable, n_not_utf8, n_too_big, n_unreadable; /* files */
  json_t *unparsable;  /* the unparsable files' paths */
  int test_pct, valid_pct;
  int file_had_pair;
  char error[LP_ERR_MSG_MAX + 256];
} corpus_ctx;

static int on_pair(void *vctx, const lp_pair *p) {
  corpus_ctx *c = vctx;
  c->pairs_found++;
  if (hset_add(&c->seen, fnv1a64(p->program, p->program_len), hash2(p->program, p->program_len)) ==
      0) {
    c->duplicates++;
    return 0;
  }
  lp_err e = {0};
  int32_t ntok = -1, ndoc = -1;
  if (c->tokenize) {
    c->ids.len = 0;
    if (lp_domain_program_encode(c->d, p->program, p->program_len, &c->ids, &e)) {
      snprintf(c->error, sizeof c->error, "%s:%u: code: %s", c->path, p->line, e.msg);
      return -1;
    }
    ntok = (int32_t)c->ids.len - 1; /* without EOS */
    if (ntok > c->max_tokens) {
      c->too_long++;
      return 0;
    }
    c->anon.len = 0;
    if (lp_domain_anonymise(c->d, c->ids.data, c->ids.len, &c->anon, &e)) {
      snprintf(c->error, sizeof c->error, "%s:%u: anonymise: %s", c->path, p->line, e.msg);
      return -1;
    }
    if (c->anon.len != c->ids.len ||
        memcmp(c->anon.data, c->ids.data, c->ids.len * sizeof *c->ids.data) != 0)
      c->anon_changed++;
    lp_ids spec = {0};
    size_t unk = 0;
    int r = lp_domain_spec_encode(c->d, 0, p->spec, p->spec_len, &spec, &unk, &e);
    ndoc = (int32_t)spec.len;
    lp_ids_free(&spec);
    if (r) {
      snprintf(c->error, sizeof c->error, "%s:%u: docstring: %s", c->path, p->line, e.msg);
      return -1;
    }
    if (ivec_push(&c->code_tok, ntok) || ivec_push(&c->doc_tok, ndoc)) {
      snprintf(c->error, sizeof c->error, "out of memory");
      return -1;
    }
  }
  json_t *o = json_object();
  json_t *ds = json_stringn(p->spec, p->spec_len), *cs = json_stringn(p->program, p->program_len);
  if (!o || !ds || !cs) {
    json_decref(o), json_decref(ds), json_decref(cs);
    snprintf(c->error, sizeof c->error, "%s:%u: the pair is not valid UTF-8", c->path, p->line);
    return -1;
  }
  json_object_set_new(o, "docstring", ds);
  json_object_set_new(o, "code", cs);
  json_object_set_new(o, "path", json_string(c->path));
  json_object_set_new(o, "line", json_integer(p->line));
  if (p->name) json_object_set_new(o, "name", json_stringn(p->name, p->name_len));
  json_object_set_new(o, "split", json_string(split_names[c->split]));
  if (c->tokenize) {
    json_object_set_new(o, "code_tokens", json_integer(ntok));
    json_object_set_new(o, "docstring_tokens", json_integer(ndoc));
  }
  int bad = json_dumpf(o, c->out, JSON_COMPACT) != 0 || fputc('\n', c->out) == EOF;
  json_decref(o);
  if (bad) {
    snprintf(c->error, sizeof c->error, "writing the output failed: %s", strerror(errno));
    return -1;
  }
  c->written++;
  c->per_split[c->split]++;
  c->file_had_pair = 1;
  return 0;
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return x < y ? -1 : x > y;
}

static json_t *len_stats(ivec *v) {
  if (v->n == 0) return json_null();
  qsort(v->v, v->n, sizeof *v->v, cmp_i32);
  double sum = 0;
  for (size_t i = 0; i < v->n; i++) sum += v->v[i];
  return json_pack("{s:f, s:i, s:i, s:i, s:i, s:i}", "mean", sum / (double)v->n, "min",
                   (json_int_t)v->v[0], "median", (json_int_t)v->v[v->n / 2], "p90",
                   (json_int_t)v->v[(v->n * 9) / 10], "p99", (json_int_t)v->v[(v->n * 99) / 100],
                   "max", (json_int_t)v->v[v->n - 1]);
}

/* Largest source file read: parsing takes about 50 bytes of memory per
 * byte (tree-sitter), so this bounds a file's cost to some 200 MB. The
 * largest file of Python's standard library is 0.75 MB. */
#define CORPUS_MAX_FILE ((size_t)4 << 20)

/* One source file: read, checked to be UTF-8 text, its pairs extracted into
 * the output (on_pair). 0, or -1 after a message (a skipped file is not an
 * error: it is counted and said on stderr). */
static int corpus_file(corpus_ctx *cx, const src_file *f) {
  char *text;
  size_t len;
  int too_big;
  if (read_file(f->path, CORPUS_MAX_FILE, &text, &len, &too_big)) {
    if (too_big) {
      cx->n_too_big++;
      fprintf(stderr, "lpsynth corpus: %s: larger than %zu MiB (skipped)\n", f->path,
              CORPUS_MAX_FILE >> 20);
    } else {
      cx->n_unreadable++;
      fprintf(stderr, "lpsynth corpus: %s: cannot read: %s (skipped)\n", f->path,
              strerror(errno));
    }
    return 0;
  }
  const char *t = text;
  size_t tl = len;
  if (tl >= 3 && memcmp(t, "\xef\xbb\xbf", 3) == 0) t += 3, tl -= 3; /* BOM */
  json_t *probe = json_stringn(t, tl); /* jansson checks UTF-8 (NUL allowed) */
  json_t *pname = json_string(f->path);
  int name_ok = pname != NULL;
  json_decref(pname);
  if (!probe || !name_ok || memchr(t, 0, tl)) {
    json_decref(probe);
    cx->n_not_utf8++;
    fprintf(stderr, "lpsynth corpus: %s: %s (skipped)\n", f->path,
            name_ok ? "not UTF-8 text" : "file name not UTF-8");
    free(text);
    return 0;
  }
  json_decref(probe);
  uint64_t h = fnv1a64(f->rel, strlen(f->rel)) % 100;
  cx->split = h < (uint64_t)cx->test_pct                    ? SPLIT_TEST
              : h < (uint64_t)(cx->test_pct + cx->valid_pct) ? SPLIT_VALID
                                                             : SPLIT_TRAIN;
  cx->path = f->path;
  cx->file_had_pair = 0;
  cx->error[0] = 0;
  lp_err e = {0};
  int r = lp_domain_extract_pairs(cx->d, f->path, t, tl, on_pair, cx, &e);
  free(text);
  if (r == LP_OK) {
    cx->n_parsed++;
    if (cx->file_had_pair) cx->files_per_split[cx->split]++;
    return 0;
  }
  if (cx->error[0]) {
    cli_error("corpus", "%s", cx->error);
    return -1;
  }
  if (r == LP_EINVAL) {
    cx->n_unparsable++;
    fprintf(stderr, "lpsynth corpus: %s (file skipped)\n", e.msg);
    json_array_append_new(cx->unparsable, json_string(f->path));
    return 0;
  }
  cli_error("corpus", "%s", e.msg);
  return -1;
}

/* --stats FILE: the counts as one JSON object, written atomically. 0 or -1. */
static int corpus_stats(corpus_ctx *cx, const char *statspath, size_t n_files) {
  json_t *s = json_object();
  json_object_set_new(s, "domain", json_string(lp_domain_name(cx->d)));
  json_object_set_new(s, "files", json_integer((json_int_t)n_files));
  json_object_set_new(s, "files_parsed", json_integer((json_int_t)cx->n_parsed));
  json_object_set_new(s, "files_unparsable", json_integer((json_int_t)cx->n_unparsable));
  json_object_set_new(s, "files_not_utf8", json_integer((json_int_t)cx->n_not_utf8));
  json_object_set_new(s, "files_too_large", json_integer((json_int_t)cx->n_too_big));
  json_object_set_new(s, "files_unreadable", json_integer((json_int_t)cx->n_unreadable));
  json_object_set_new(s, "pairs_found", json_integer((json_int_t)cx->pairs_found));
  json_object_set_new(s, "duplicates", json_integer((json_int_t)cx->duplicates));
  json_object_set_new(s, "max_tokens",
                      cx->max_tokens >= 0 ? json_integer(cx->max_tokens) : json_null());
  json_object_set_new(s, "too_long", json_integer((json_int_t)cx->too_long));
  json_object_set_new(s, "pairs", json_integer((json_int_t)cx->written));
  json_object_set_new(s, "splits",
                      json_pack("{s:I, s:I, s:I}", "train", (json_int_t)cx->per_split[0],
                                "valid", (json_int_t)cx->per_split[1], "test",
                                (json_int_t)cx->per_split[2]));
  json_object_set_new(s, "files_with_pairs_per_split",
                      json_pack("{s:I, s:I, s:I}", "train", (json_int_t)cx->files_per_split[0],
                                "valid", (json_int_t)cx->files_per_split[1], "test",
                                (json_int_t)cx->files_per_split[2]));
  json_object_set_new(s, "split_rule",
                      json_pack("{s:s, s:I, s:I}", "hash", "FNV-1a-64(relative path) mod 100",
                                "test_below", (json_int_t)cx->test_pct, "valid_below",
                                (json_int_t)(cx->test_pct + cx->valid_pct)));
  if (cx->tokenize) {
    json_object_set_new(s, "code_tokens", len_stats(&cx->code_tok));
    json_object_set_new(s, "docstring_tokens", len_stats(&cx->doc_tok));
    json_object_set_new(s, "anonymised", json_integer((json_int_t)cx->anon_changed));
    json_object_set_new(s, "anonymised_share",
                        json_real(cx->written ? (double)cx->anon_changed / (double)cx->written
                                              : 0));
  }
  json_object_set_new(s, "unparsable", json_incref(cx->unparsable));
  char *txt = json_dumps(s, JSON_INDENT(2));
  lp_err e = {0};
  int rc = 0;
  if (!txt || lp_write_file_atomic(statspath, txt, strlen(txt), &e)) {
    cli_error("corpus", "%s", txt ? e.msg : "out of memory");
    rc = -1;
  }
  free(txt);
  json_decref(s);
  return rc;
}

static const cli_verb_spec corpus_verb = {
    CLI_CORPUS, "corpus", "DIR|FILE...",
    "Walks the folders (depth first, each folder's entries in byte order; hidden\n"
    "entries and __pycache__ skipped) for files ending in EXT, asks the domain for\n"
    "the (specification, program) pairs of each file - for python: every function\n"
    "with a docstring - and writes them as JSONL, one pair per line:\n"
    "  {\"docstring\", \"code\", \"path\", \"line\", \"name\", \"split\"}\n"
    "plus \"code_tokens\" and \"docstring_tokens\" with --tokenizer.\n"
    "\n"
    "Splits are by file: a file goes wholly to \"test\" when FNV-1a-64(REL) mod 100 <\n"
    "P_test, else to \"valid\" when below P_test + P_valid, else to \"train\", where REL\n"
    "is the file's path relative to the DIR it was found under (its name for a FILE\n"
    "argument); so a file never feeds two splits and the split does not depend on\n"
    "where the tree lies. A pair whose code is byte-identical to an earlier pair's is\n"
    "dropped (whatever its docstring), so no program occurs twice. Files that do\n"
    "not parse, are not UTF-8 or are larger than 4 MiB are skipped, counted and\n"
    "reported on stderr (FILE:LINE:COLUMN: problem); so are functions the domain\n"
    "finds too long to be a pair (python: over 2,000 lines or 256 KiB). Same\n"
    "inputs, same output bytes.",
    NULL};

int cmd_corpus(int argc, char **argv) {
  cli_opts o;
  int orc = cli_parse(&corpus_verb, argc, argv, &o);
  if (orc != CLI_PARSED) return orc;
  cli_opts_free(&o); /* nothing allocated for these options */
  const char *domain = o.domain, *dopts = o.domain_options, *outpath = o.out, *tok = o.tokenizer,
             *ext = o.ext, *statspath = o.stats;
  int64_t max_tokens = o.max_tokens, valid_pct = o.valid_pct, test_pct = o.test_pct;
  const int first = o.first_operand;
  if (first >= argc) {
    cli_error("corpus", "give at least one folder or file to read");
    return EXIT_USAGE;
  }
  if (tok && dopts) {
    cli_error("corpus", "--tokenizer and --domain-options both give the domain's options: use one");
    return EXIT_USAGE;
  }
  if (max_tokens >= 0 && !tok) {
    cli_error("corpus", "--max-tokens needs --tokenizer MODEL to count tokens");
    return EXIT_USAGE;
  }
  if (valid_pct + test_pct > 90) {
    cli_error("corpus", "--valid-percent + --test-percent must leave at least 10%% for training");
    return EXIT_USAGE;
  }
  if (tok && max_tokens < 0) max_tokens = 150;
  lp_domain *d = open_text_domain("corpus", domain, tok ? tok : dopts, LP_CAP_EXTRACT,
                                  "extract (specification, program) pairs from source files");
  if (!d) return EXIT_FAIL;
  if (tok && !lp_domain_has(d, LP_CAP_ANONYMISE)) {
    cli_error("corpus", "domain %s cannot anonymise programs", lp_domain_name(d));
    lp_domain_free(d);
    return EXIT_FAIL;
  }

  file_list files = {0};
  int rc = EXIT_OK;
  for (int i = first; i < argc && rc == EXIT_OK; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      cli_error("corpus", "%s: %s", argv[i], strerror(errno));
      rc = EXIT_FAIL;
    } else if (S_ISDIR(st.st_mode)) {
      char *root = strdup(argv[i]);
      size_t rl = root ? strlen(root) : 0;
      while (rl > 1 && root[rl - 1] == '/') root[--rl] = 0;
      if (!root || walk_dir(root, "", ext, &files, "corpus")) rc = EXIT_FAIL;
      free(root);
    } else {
      const char *base = strrchr(argv[i], '/');
      if (add_file(&files, argv[i], base ? base + 1 : argv[i])) rc = EXIT_FAIL;
    }
  }
  cli_out out = {0};
  if (rc == EXIT_OK && cli_out_open(&out, outpath, "corpus")) rc = EXIT_FAIL;

  corpus_ctx cx;
  memset(&cx, 0, sizeof cx);
  cx.d = d;
  cx.out = out.f;
  cx.tokenize = tok != NULL;
  cx.max_tokens = max_tokens;
  cx.test_pct = (int)test_pct;
  cx.valid_pct = (int)valid_pct;
  cx.unparsable = json_array();
  cli_progress pg;
  cli_progress_start(&pg, "corpus", files.n);
  for (size_t i = 0; rc == EXIT_OK && i < files.n; i++) {
    cli_progress_update(&pg, i);
    if (corpus_file(&cx, &files.v[i])) rc = EXIT_FAIL;
  }
  cli_progress_end(&pg, files.n);
  if (rc == EXIT_OK) {
    if (cli_out_commit(&out, "corpus")) rc = EXIT_FAIL;
  } else {
    cli_out_abort(&out);
  }
  if (rc == EXIT_OK) {
    char dropped[96] = "";
    if (max_tokens >= 0)
      snprintf(dropped, sizeof dropped, ", %llu longer than %lld tokens dropped",
               (unsigned long long)cx.too_long, (long long)max_tokens);
    fprintf(stderr,
            "lpsynth corpus: %zu files: %llu parsed, %llu unparsable, %llu not UTF-8, %llu too "
            "large, %llu unreadable\n"
            "lpsynth corpus: %llu pairs found, %llu duplicates dropped%s; %llu written: train "
            "%llu, valid %llu, test %llu\n",
            files.n, (unsigned long long)cx.n_parsed, (unsigned long long)cx.n_unparsable,
            (unsigned long long)cx.n_not_utf8, (unsigned long long)cx.n_too_big,
            (unsigned long long)cx.n_unreadable, (unsigned long long)cx.pairs_found,
            (unsigned long long)cx.duplicates, dropped, (unsigned long long)cx.written,
            (unsigned long long)cx.per_split[0], (unsigned long long)cx.per_split[1],
            (unsigned long long)cx.per_split[2]);
    if (tok && cx.written)
      fprintf(stderr, "lpsynth corpus: anonymisation changed %llu of %llu programs (%.1f%%)\n",
              (unsigned long long)cx.anon_changed, (unsigned long long)cx.written,
              100.0 * (double)cx.anon_changed / (double)cx.written);
  }
  if (rc == EXIT_OK && statspath && corpus_stats(&cx, statspath, files.n)) rc = EXIT_FAIL;
  json_decref(cx.unparsable);
  for (size_t i = 0; i < files.n; i++) free(files.v[i].path), free(files.v[i].rel);
  free(files.v);
  free(cx.seen.k);
  lp_ids_free(&cx.ids);
  lp_ids_free(&cx.anon);
  free(cx.code_tok.v);
  free(cx.doc_tok.v);
  lp_domain_free(d);
  return rc;
}

/* ======================================================================== */
/* tokenizer                                                                 */

static const cli_verb_spec tokenizer_train_verb = {
    CLI_TOKENIZER_TRAIN, "tokenizer train", NULL,
    "Trains the domain's subword tokenizer (python: one joint SentencePiece model\n"
    "over docstrings and code) on the texts of a corpus JSONL (as written by\n"
    "`lpsynth corpus`) and writes the model to --out, which is then the domain's\n"
    "--domain-options. Lines with a \"split\" field other than --split are skipped.",
    NULL};

static int tokenizer_train(int argc, char **argv) {
  cli_opts o;
  int orc = cli_parse(&tokenizer_train_verb, argc, argv, &o);
  if (orc != CLI_PARSED) return orc;
  cli_opts_free(&o); /* nothing allocated for these options */
  if ((orc = cli_no_operands(&o, argc, argv, NULL))) return orc;
  const char *domain = o.domain, *dopts = o.domain_options, *corpus = o.corpus, *outpath = o.out,
             *split = o.split, *fields = o.fields;
  int64_t vocab = o.vocab;
  if (vocab > INT32_MAX) vocab = INT32_MAX;
  char *flist = strdup(fields);
  const char *fv[16];
  size_t nf = 0;
  char *save = NULL;
  for (char *t = strtok_r(flist, ",", &save); t && nf < 16; t = strtok_r(NULL, ",", &save))
    fv[nf++] = t;
  if (nf == 0) {
    cli_error("tokenizer train", "--fields names no field");
    free(flist);
    return EXIT_USAGE;
  }
  lp_domain *d = open_text_domain("tokenizer train", domain, dopts, LP_CAP_TOKENIZER,
                                  "train a tokenizer");
  if (!d) {
    free(flist);
    return EXIT_FAIL;
  }
  lp_err e = {0};
  lp_jsonl *r = lp_jsonl_open(corpus, LP_JSONL_DEFAULT_MAX_LINE, &e);
  if (!r) {
    cli_error("tokenizer train", "%s", e.msg);
    lp_domain_free(d);
    free(flist);
    return EXIT_FAIL;
  }
  lp_strs texts = {0};
  size_t lineno = 0, len, n_lines = 0, n_used = 0, bytes = 0;
  const char *line;
  int st, rc = EXIT_OK;
  int all = strcmp(split, "all") == 0;
  while ((st = lp_jsonl_next(r, &line, &len, &lineno, &e)) != 0) {
    if (st < 0) {
      cli_error("tokenizer train", "%s", e.msg); /* names the file and line */
      rc = EXIT_FAIL;
      break;
    }
    n_lines++;
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!o || !json_is_object(o)) {
      cli_error("tokenizer train", "%s:%zu: not a JSON object%s%s", corpus, lineno,
                o ? "" : ": ", o ? "" : je.text);
      json_decref(o);
      rc = EXIT_FAIL;
      break;
    }
    json_t *sp = json_object_get(o, "split");
    if (!all && sp && json_is_string(sp) && strcmp(json_string_value(sp), split) != 0) {
      json_decref(o);
      continue;
    }
    n_used++;
    for (size_t k = 0; k < nf && rc == EXIT_OK; k++) {
      json_t *v = json_object_get(o, fv[k]);
      if (!v || !json_is_string(v)) {
        cli_error("tokenizer train", "%s:%zu: field \"%s\" is missing or not a string", corpus,
                  lineno, fv[k]);
        rc = EXIT_FAIL;
      } else if (lp_strs_push(&texts, json_string_value(v), json_string_length(v))) {
        cli_error("tokenizer train", "out of memory");
        rc = EXIT_FAIL;
      } else {
        bytes += json_string_length(v);
      }
    }
    json_decref(o);
    if (rc) break;
  }
  lp_jsonl_free(r);
  if (rc == EXIT_OK && texts.len == 0) {
    cli_error("tokenizer train", "%s: no line of split \"%s\" (%zu lines read)", corpus, split,
              n_lines);
    rc = EXIT_FAIL;
  }
  if (rc == EXIT_OK) {
    double t0 = lp_now();
    if (lp_domain_tokenizer_train(d, &texts, (int32_t)vocab, outpath, &e)) {
      cli_error("tokenizer train", "%s", e.msg);
      rc = EXIT_FAIL;
    } else {
      fprintf(stderr,
              "lpsynth tokenizer train: wrote %s: %lld pieces, trained on %zu texts (%zu records, "
              "%.1f MB) in %.1f s\n",
              outpath, (long long)vocab, texts.len, n_used, (double)bytes / 1e6, lp_now() - t0);
    }
  }
  lp_strs_free(&texts);
  lp_domain_free(d);
  free(flist);
  return rc;
}

int cmd_tokenizer(int argc, char **argv) {
  static const cli_sub subs[] = {{&tokenizer_train_verb, tokenizer_train,
                                  "train the domain's subword tokenizer on a corpus"}};
  return cli_group("tokenizer", subs, sizeof subs / sizeof *subs, argc, argv);
}

/* ======================================================================== */
/* score                                                                     */

/* Every line of path (cli_lines_read); -1 with a message on error. */
static int read_lines(const char *verb, const char *path, cli_lines *out) {
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f) {
    cli_error(verb, "%s: %s", path, strerror(errno));
    return -1;
  }
  int rc = cli_lines_read(f, out);
  if (rc == CLI_LINES_ENOMEM) cli_error(verb, "%s: out of memory", path);
  else if (rc) cli_error(verb, "%s: read error: %s", path, strerror(errno));
  if (f != stdin) fclose(f);
  return rc ? -1 : 0;
}

static const cli_verb_spec score_verb = {
    CLI_SCORE, "score", NULL,
    "Corpus BLEU-4 of the hypotheses (one per line) against the references (line i\n"
    "of every --refs file is a reference of hypothesis i), as NLTK's corpus_bleu\n"
    "computes it: geometric mean of the clipped 1..4-gram precisions, brevity\n"
    "penalty against the closest reference length. Text output is in percent, JSON\n"
    "in 0..1.",
    NULL};

int cmd_score(int argc, char **argv) {
  cli_opts o;
  int orc = cli_parse(&score_verb, argc, argv, &o);
  if (orc != CLI_PARSED) return orc;
  cli_opts_free(&o); /* nothing allocated for these options */
  if ((orc = cli_no_operands(&o, argc, argv, NULL))) return orc;
  const char *metric = o.score_metric, *hyps = o.hyps, *const *refp = o.refs;
  const size_t n_refp = (size_t)o.n_refs;
  const lp_bleu_smoothing sm = (lp_bleu_smoothing)o.smoothing;
  const lp_bleu_tokenizer how = (lp_bleu_tokenizer)o.tokenize;
  const int json = o.json, sentences = o.sentences;
  if (strcmp(metric, "bleu") != 0) {
    cli_error("score", "unknown metric \"%s\" (the one metric is bleu)", metric);
    return EXIT_USAGE;
  }
  cli_lines h = {0}, r[16];
  memset(r, 0, sizeof r);
  int rc = read_lines("score", hyps, &h) ? EXIT_FAIL : EXIT_OK;
  for (size_t k = 0; rc == EXIT_OK && k < n_refp; k++) {
    if (read_lines("score", refp[k], &r[k])) rc = EXIT_FAIL;
    else if (r[k].n != h.n) {
      cli_error("score", "%s has %zu lines but %s has %zu", refp[k], r[k].n, hyps, h.n);
      rc = EXIT_FAIL;
    }
  }
  lp_bleu_stats st;
  memset(&st, 0, sizeof st);
  json_t *sj = sentences && json ? json_array() : NULL;
  for (size_t i = 0; rc == EXIT_OK && i < h.n; i++) {
    const char *rs[16];
    size_t rl[16];
    for (size_t k = 0; k < n_refp; k++) rs[k] = r[k].v[i], rl[k] = r[k].len[i];
    lp_err e = {0};
    lp_bleu_stats one;
    memset(&one, 0, sizeof one);
    if (lp_bleu_add(&one, h.v[i], h.len[i], rs, rl, n_refp, how, &e)) {
      cli_error("score", "line %zu: %s", i + 1, e.msg);
      rc = EXIT_FAIL;
      break;
    }
    for (int n = 0; n < LP_BLEU_MAX_N; n++) {
      st.match[n] += one.match[n];
      st.total[n] += one.total[n];
    }
    st.hyp_len += one.hyp_len;
    st.ref_len += one.ref_len;
    st.n_sentences++;
    if (sentences) {
      double b = lp_bleu_score(&one, sm, NULL);
      if (sj) json_array_append_new(sj, json_real(b));
      else if (!json) printf("%zu\t%.4f\n", i + 1, 100.0 * b);
    }
  }
  if (rc == EXIT_OK) {
    lp_bleu_result res;
    double b = lp_bleu_score(&st, sm, &res);
    if (json) {
      json_t *o = json_pack("{s:s, s:f, s:[f,f,f,f], s:f, s:I, s:I, s:I, s:s, s:s, s:I}",
                            "metric", "bleu-4", "bleu", b, "precisions", res.precision[0],
                            res.precision[1], res.precision[2], res.precision[3], "bp", res.bp,
                            "hyp_len", (json_int_t)res.hyp_len, "ref_len",
                            (json_int_t)res.ref_len, "sentences", (json_int_t)res.n_sentences,
                            "smoothing", lp_bleu_smoothing_name(sm), "tokenize",
                            how == LP_BLEU_TOK_CODE ? "code" : "whitespace", "references",
                            (json_int_t)n_refp);
      if (sj) json_object_set_new(o, "sentences_bleu", sj), sj = NULL;
      json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(17));
      fputc('\n', stdout);
      json_decref(o);
    } else {
      printf("BLEU-4 = %.2f  (%.1f/%.1f/%.1f/%.1f, BP %.3f, hyp_len %llu, ref_len %llu, %llu "
             "sentences, smoothing %s, tokenize %s)\n",
             100.0 * b, 100.0 * res.precision[0], 100.0 * res.precision[1],
             100.0 * res.precision[2], 100.0 * res.precision[3], res.bp,
             (unsigned long long)res.hyp_len, (unsigned long long)res.ref_len,
             (unsigned long long)res.n_sentences, lp_bleu_smoothing_name(sm),
             how == LP_BLEU_TOK_CODE ? "code" : "whitespace");
    }
    if (fflush(stdout) != 0) rc = EXIT_FAIL;
  }
  json_decref(sj);
  cli_lines_free(&h);
  for (size_t k = 0; k < n_refp; k++) cli_lines_free(&r[k]);
  return rc;
}

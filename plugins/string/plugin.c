/* lpsynth domain plugin "string": the RobustFill DSL of Latent Programmer
 * (shared/spec/strdsl.md) behind the lp_domain_desc ABI (lpsynth/plugin.h).
 *
 * Vocabularies
 *   program (312 ids, the spec's "Program tokens"): 0 "PAD", 1 "BOS", 2 "EOS",
 *     3..14 the operation names ("Compose", "ConstStr", ...), 15..97 the 83
 *     characters, each rendered as the one-character string itself: "a", "'",
 *     "\"", and " " (a single space) for the space; 98..105 the type names,
 *     106..108 the case names "PROPER", "ALL_CAPS", "LOWER" (ALL_CAPS and
 *     LOWER therefore occur twice: as a type and as a case), 109 "START",
 *     110 "END", 111..311 the integers -100..100 in decimal ("-100" .. "100").
 *   spec (85 ids): 0 "PAD", 1..83 the characters as above (a-z, A-Z, 0-9, then
 *     the delimiters), 84 "UNK" for any character outside the alphabet (one
 *     UNK per decoded code point, or per byte that is not valid UTF-8). No
 *     BOS/EOS (-1).
 *
 * solve (ABI 1.2): the exact solver of solve.c (sd_solve). Options left at 0
 * take the defaults: 100 programs, 10 seconds, 20 expressions (at most
 * SD_MAX_EXPRS); examples of up to SD_SOLVE_MAX_LEN characters. The prior is
 * -(expressions + cost sum / 65536): fewest expressions first, then the
 * per-expression costs of sd_solve_default_costs. Each program is checked
 * here as check() would before it is reported.
 *
 * The instance holds only the host table; every function is reentrant.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/plugin.h"
#include "strdsl.h"

#define SPEC_VOCAB (SD_NUM_CHARS + 2)
#define SPEC_UNK (SD_NUM_CHARS + 1)

typedef struct sd_inst {
  const lp_host_api *host;
} sd_inst;

static const char *const char_text[SD_NUM_CHARS] = {
    "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p",
    "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "A", "B", "C", "D", "E", "F",
    "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T", "U", "V",
    "W", "X", "Y", "Z", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "&", ",",
    ".", "?", "!", "@", "(", ")", "[", "]", "%", "{", "}", "/", ":", ";", "$", "#",
    "\"", "'", " ",
};

static const char *const int_text[201] = {
    "-100", "-99", "-98", "-97", "-96", "-95", "-94", "-93", "-92", "-91",
    "-90", "-89", "-88", "-87", "-86", "-85", "-84", "-83", "-82", "-81",
    "-80", "-79", "-78", "-77", "-76", "-75", "-74", "-73", "-72", "-71",
    "-70", "-69", "-68", "-67", "-66", "-65", "-64", "-63", "-62", "-61",
    "-60", "-59", "-58", "-57", "-56", "-55", "-54", "-53", "-52", "-51",
    "-50", "-49", "-48", "-47", "-46", "-45", "-44", "-43", "-42", "-41",
    "-40", "-39", "-38", "-37", "-36", "-35", "-34", "-33", "-32", "-31",
    "-30", "-29", "-28", "-27", "-26", "-25", "-24", "-23", "-22", "-21",
    "-20", "-19", "-18", "-17", "-16", "-15", "-14", "-13", "-12", "-11",
    "-10", "-9", "-8", "-7", "-6", "-5", "-4", "-3", "-2", "-1",
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
    "10", "11", "12", "13", "14", "15", "16", "17", "18", "19",
    "20", "21", "22", "23", "24", "25", "26", "27", "28", "29",
    "30", "31", "32", "33", "34", "35", "36", "37", "38", "39",
    "40", "41", "42", "43", "44", "45", "46", "47", "48", "49",
    "50", "51", "52", "53", "54", "55", "56", "57", "58", "59",
    "60", "61", "62", "63", "64", "65", "66", "67", "68", "69",
    "70", "71", "72", "73", "74", "75", "76", "77", "78", "79",
    "80", "81", "82", "83", "84", "85", "86", "87", "88", "89",
    "90", "91", "92", "93", "94", "95", "96", "97", "98", "99",
    "100",
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static int fail(const sd_inst *I, lp_err *err, int code, const char *fmt, ...) {
  char msg[LP_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (I && I->host && I->host->set_error) return I->host->set_error(err, code, "%s", msg);
  if (err) {
    err->code = code;
    snprintf(err->msg, sizeof err->msg, "%s", msg);
  }
  return code;
}

static int sd_code(int r) {
  return r == SD_ENOMEM ? LP_ENOMEM : r == SD_ELIMIT ? LP_ELIMIT : LP_EINVAL;
}

/* The hot paths (execute, check, prefix_ok) avoid the heap for ordinary
 * programs and strings. A program has at most as many expressions as ids, so
 * with n <= STACK_EXPRS ids sd_prog_push never grows the stack array. */
#define STACK_EXPRS 64
typedef struct progbuf {
  sd_prog p;
  sd_expr stk[STACK_EXPRS];
} progbuf;

static void progbuf_init(progbuf *b, size_t n_ids) {
  b->p.n = 0;
  b->p.e = n_ids <= STACK_EXPRS ? b->stk : NULL;
  b->p.cap = n_ids <= STACK_EXPRS ? STACK_EXPRS : 0;
}

static void progbuf_free(progbuf *b) {
  if (b->p.e != b->stk) sd_prog_clear(&b->p);
}

static int load_prog(const sd_inst *I, const int32_t *ids, size_t n, sd_prog *p, lp_err *err) {
  char msg[512];
  if (!ids && n) return fail(I, err, LP_EINVAL, "string: program ids are NULL");
  int r = sd_from_tokens(ids, n, p, msg, sizeof msg);
  if (r) return fail(I, err, sd_code(r), "string: bad program ids: %s", msg);
  return LP_OK;
}

static int load_progbuf(const sd_inst *I, const int32_t *ids, size_t n, progbuf *b,
                        lp_err *err) {
  progbuf_init(b, n);
  return load_prog(I, ids, n, &b->p, err);
}

/* Runs p on c[0..n): into stk (STACK_OUT code points) when the output surely
 * fits there (sd_eval reserves at most max(n, 1) more per expression, so it
 * never grows a buffer that holds p->n * max(n, 1)), else into heap. */
#define STACK_OUT 1024
static int eval_into(const sd_prog *p, const uint32_t *c, size_t n, uint32_t *stk, sd_str *heap,
                     const uint32_t **oc, size_t *on) {
  size_t per = n ? n : 1;
  if (p->n <= STACK_OUT / per) {
    sd_str o = {stk, 0, STACK_OUT};
    if (sd_eval(p, c, n, &o)) return -1;
    *oc = o.c;
    *on = o.n;
    return 0;
  }
  if (sd_eval(p, c, n, heap)) return -1;
  *oc = heap->c;
  *on = heap->n;
  return 0;
}

/* Decodes s[0..len) into stk (when it fits: decoding never gives more code
 * points than bytes) or into heap; *c, *n: the result. */
#define STACK_CP 512
static int decode_input(const char *s, size_t len, uint32_t *stk, sd_str *heap,
                        const uint32_t **c, size_t *n) {
  if (len <= STACK_CP) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k = 0;
    while (i < len) {
      if (u[i] < 0x80) stk[k++] = u[i++];
      else i += sd_utf8_next(u + i, len - i, &stk[k++]);
    }
    *c = stk;
    *n = k;
    return 0;
  }
  if (sd_decode(s, len, heap)) return -1;
  *c = heap->c;
  *n = heap->n;
  return 0;
}

/* Appends the bytes of c[0..n) to out. */
static int append_encoded(const sd_inst *I, lp_buf *out, const uint32_t *c, size_t n,
                          lp_err *err) {
  char tmp[1024];
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (k > sizeof tmp - 4) {
      if (I->host->buf_append(out, tmp, k)) return fail(I, err, LP_ENOMEM, "out of memory");
      k = 0;
    }
    if (c[i] < 0x80) tmp[k++] = (char)c[i];
    else k += sd_utf8_put(c[i], tmp + k);
  }
  if (I->host->buf_append(out, tmp, k)) return fail(I, err, LP_ENOMEM, "out of memory");
  return LP_OK;
}

/* 1 when the bytes of c[0..n) equal b[0..blen) (full) or are a prefix of it. */
static int bytes_match(const uint32_t *c, size_t n, const char *b, size_t blen, int full) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (c[i] < 0x80) {
      if (o >= blen || (unsigned char)b[o] != c[i]) return 0;
      o++;
    } else {
      char t[4];
      size_t k = sd_utf8_put(c[i], t);
      if (blen - o < k || memcmp(b + o, t, k) != 0) return 0;
      o += k;
    }
  }
  return full ? o == blen : 1;
}

static int check_examples(const sd_inst *I, const lp_example *ex, size_t n_ex, lp_err *err) {
  if (!ex && n_ex) return fail(I, err, LP_EINVAL, "string: examples are NULL");
  for (size_t i = 0; i < n_ex; i++)
    for (int j = 0; j < 2; j++)
      if (!ex[i].part[j] && ex[i].len[j])
        return fail(I, err, LP_EINVAL, "string: example %zu part %d is NULL", i, j);
  return LP_OK;
}

/* Runs p on every example; *ok = 1 when each output equals (full) or is a
 * prefix of (!full) the expected output. */
static int run_examples(const sd_inst *I, const sd_prog *p, const lp_example *ex, size_t n_ex,
                        int full, int *ok, lp_err *err) {
  uint32_t stk[STACK_CP], ostk[STACK_OUT];
  sd_str heap = {0}, o = {0};
  int rc = LP_OK, all = 1;
  for (size_t i = 0; i < n_ex && all; i++) {
    const uint32_t *c, *oc;
    size_t n, on;
    if (decode_input(ex[i].part[0] ? ex[i].part[0] : "", ex[i].len[0], stk, &heap, &c, &n) ||
        eval_into(p, c, n, ostk, &o, &oc, &on)) {
      rc = fail(I, err, LP_ENOMEM, "out of memory");
      break;
    }
    all = bytes_match(oc, on, ex[i].part[1], ex[i].len[1], full);
  }
  sd_str_free(&heap);
  sd_str_free(&o);
  if (rc == LP_OK) *ok = all;
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Descriptor functions                                                      */

static int str_create(const lp_host_api *host, const char *options, void **self, lp_err *err) {
  if (self) *self = NULL;
  if (!self) return fail(NULL, err, LP_EINVAL, "string: create() needs self");
  if (!host || host->struct_size < offsetof(lp_host_api, set_error) + sizeof host->set_error ||
      host->abi_major != LP_PLUGIN_ABI_MAJOR || !host->alloc || !host->free ||
      !host->buf_append || !host->ids_push || !host->strs_push || !host->set_error)
    return fail(NULL, err, LP_EABI,
                "string: the host API is missing or incompatible (plugin ABI %d.%d)",
                LP_PLUGIN_ABI_MAJOR, LP_PLUGIN_ABI_MINOR);
  if (options && options[0])
    return fail(NULL, err, LP_EINVAL, "string: the domain takes no options (got \"%.200s\")",
                options);
  sd_inst *I = host->alloc(sizeof *I);
  if (!I) return fail(NULL, err, LP_ENOMEM, "string: out of memory");
  I->host = host;
  *self = I;
  return LP_OK;
}

static void str_destroy(void *self) {
  sd_inst *I = self;
  if (I) I->host->free(I);
}

#define GET_INST(self, err)                                                         \
  const sd_inst *I = (const sd_inst *)(self);                                       \
  if (!I) return fail(NULL, err, LP_EINVAL, "string: no instance (create() first)")

static int str_program_vocab(void *self, lp_vocab_info *out) {
  (void)self;
  if (!out) return LP_EINVAL;
  out->size = SD_VOCAB_SIZE;
  out->pad = SD_TOK_PAD;
  out->bos = SD_TOK_BOS;
  out->eos = SD_TOK_EOS;
  out->unk = -1;
  return LP_OK;
}

static const char *str_program_token(void *self, int32_t id) {
  (void)self;
  if (id < 0 || id >= SD_VOCAB_SIZE) return NULL;
  if (id == SD_TOK_PAD) return "PAD";
  if (id == SD_TOK_BOS) return "BOS";
  if (id == SD_TOK_EOS) return "EOS";
  if (id < SD_TOK_CHAR0) return sd_op_names[id - SD_TOK_OP0];
  if (id < SD_TOK_TYPE0) return char_text[id - SD_TOK_CHAR0];
  if (id < SD_TOK_CASE0) return sd_type_names[id - SD_TOK_TYPE0];
  if (id < SD_TOK_START) return sd_case_names[id - SD_TOK_CASE0];
  if (id == SD_TOK_START) return "START";
  if (id == SD_TOK_END) return "END";
  return int_text[id - (SD_TOK_INT_ZERO - 100)];
}

static int str_program_encode(void *self, const char *text, size_t len, lp_ids *out,
                              lp_err *err) {
  GET_INST(self, err);
  if (!out) return fail(I, err, LP_EINVAL, "string: no output");
  if (!text && len) return fail(I, err, LP_EINVAL, "string: program text is NULL");
  char msg[512];
  sd_prog p = {0};
  int32_t *ids = NULL;
  size_t n = 0, cap = 0;
  int rc = LP_OK;
  int r = sd_parse(text, len, &p, msg, sizeof msg);
  if (r) rc = fail(I, err, sd_code(r), "string: program text: %s", msg);
  else if (sd_to_tokens(&p, &ids, &n, &cap)) rc = fail(I, err, LP_ENOMEM, "out of memory");
  for (size_t i = 0; rc == LP_OK && i < n; i++)
    if (I->host->ids_push(out, ids[i])) rc = fail(I, err, LP_ENOMEM, "out of memory");
  free(ids);
  sd_prog_clear(&p);
  return rc;
}

static int str_program_decode(void *self, const int32_t *ids, size_t n, lp_buf *out,
                              lp_err *err) {
  GET_INST(self, err);
  if (!out) return fail(I, err, LP_EINVAL, "string: no output");
  sd_prog p = {0};
  char *text = NULL;
  size_t len = 0;
  int rc = load_prog(I, ids, n, &p, err);
  if (rc == LP_OK && sd_print(&p, &text, &len)) rc = fail(I, err, LP_ENOMEM, "out of memory");
  if (rc == LP_OK && I->host->buf_append(out, text, len))
    rc = fail(I, err, LP_ENOMEM, "out of memory");
  free(text);
  sd_prog_clear(&p);
  return rc;
}

static int str_spec_vocab(void *self, lp_vocab_info *out) {
  (void)self;
  if (!out) return LP_EINVAL;
  out->size = SPEC_VOCAB;
  out->pad = 0;
  out->bos = -1;
  out->eos = -1;
  out->unk = SPEC_UNK;
  return LP_OK;
}

static const char *str_spec_token(void *self, int32_t id) {
  (void)self;
  if (id == 0) return "PAD";
  if (id >= 1 && id <= SD_NUM_CHARS) return char_text[id - 1];
  if (id == SPEC_UNK) return "UNK";
  return NULL;
}

static int str_spec_encode(void *self, uint32_t part, const char *text, size_t len, lp_ids *out,
                           size_t *n_unknown, lp_err *err) {
  GET_INST(self, err);
  if (part > 1)
    return fail(I, err, LP_EINVAL, "string: spec part %u does not exist (0 input, 1 output)",
                (unsigned)part);
  if (!out) return fail(I, err, LP_EINVAL, "string: no output");
  if (!text && len) return fail(I, err, LP_EINVAL, "string: spec text is NULL");
  const unsigned char *u = (const unsigned char *)text;
  size_t i = 0, unk = 0;
  while (i < len) {
    uint32_t cp;
    i += sd_utf8_next(u + i, len - i, &cp);
    int ci = sd_char_index(cp);
    if (ci < 0) unk++;
    if (I->host->ids_push(out, ci < 0 ? SPEC_UNK : ci + 1))
      return fail(I, err, LP_ENOMEM, "out of memory");
  }
  if (n_unknown) *n_unknown += unk;
  return LP_OK;
}

static int str_execute(void *self, const int32_t *ids, size_t n, const char *input, size_t len,
                       lp_buf *out, lp_err *err) {
  GET_INST(self, err);
  if (!out) return fail(I, err, LP_EINVAL, "string: no output");
  if (!input && len) return fail(I, err, LP_EINVAL, "string: input is NULL");
  progbuf pb;
  int rc = load_progbuf(I, ids, n, &pb, err);
  if (rc != LP_OK) {
    progbuf_free(&pb);
    return rc;
  }
  uint32_t stk[STACK_CP], ostk[STACK_OUT];
  sd_str heap = {0}, o = {0};
  const uint32_t *c, *oc;
  size_t cn, on;
  if (decode_input(input ? input : "", len, stk, &heap, &c, &cn) ||
      eval_into(&pb.p, c, cn, ostk, &o, &oc, &on))
    rc = fail(I, err, LP_ENOMEM, "out of memory");
  else rc = append_encoded(I, out, oc, on, err);
  sd_str_free(&heap);
  sd_str_free(&o);
  progbuf_free(&pb);
  return rc;
}

static int str_check(void *self, const int32_t *ids, size_t n, const lp_example *ex, size_t n_ex,
                     int *consistent, lp_err *err) {
  GET_INST(self, err);
  if (!consistent) return fail(I, err, LP_EINVAL, "string: no output");
  *consistent = 0;
  int rc = check_examples(I, ex, n_ex, err);
  if (rc != LP_OK) return rc;
  progbuf pb;
  rc = load_progbuf(I, ids, n, &pb, err);
  if (rc == LP_OK) rc = run_examples(I, &pb.p, ex, n_ex, 1, consistent, err);
  progbuf_free(&pb);
  return rc;
}

/* Beam-search pruning (prefix.c): the complete expressions of the prefix are
 * run, each output must be a prefix of the expected one (equal to it once EOS
 * was read), and an unfinished trailing expression must still have a
 * completion that outputs exactly the next piece of every expected output.
 * Malformed ids give *ok = 0 (not an error). */
static int str_prefix_ok(void *self, const int32_t *ids, size_t n, const lp_example *ex,
                         size_t n_ex, int *ok, lp_err *err) {
  GET_INST(self, err);
  if (!ok) return fail(I, err, LP_EINVAL, "string: no output");
  *ok = 0;
  if (!ids && n) return fail(I, err, LP_EINVAL, "string: program ids are NULL");
  int rc = check_examples(I, ex, n_ex, err);
  if (rc != LP_OK) return rc;
  if (sd_prefix_check(ids, n, ex, n_ex, 0, ok) == SD_ENOMEM)
    rc = fail(I, err, LP_ENOMEM, "out of memory");
  return rc;
}

static int str_generate(void *self, uint64_t seed, const lp_gen_opts *opts, lp_task *out,
                        lp_err *err) {
  GET_INST(self, err);
  if (!out) return fail(I, err, LP_EINVAL, "string: no output");
  int32_t mn = 0, mx = 0, ne = 0;
  if (opts) {
    size_t ss = opts->struct_size;
    if (ss >= offsetof(lp_gen_opts, min_size) + sizeof opts->min_size) mn = opts->min_size;
    if (ss >= offsetof(lp_gen_opts, max_size) + sizeof opts->max_size) mx = opts->max_size;
    if (ss >= offsetof(lp_gen_opts, n_examples) + sizeof opts->n_examples) ne = opts->n_examples;
  }
  if (mn < 0 || mx < 0 || ne < 0)
    return fail(I, err, LP_EINVAL, "string: generate options must not be negative");
  /* 0 selects sd_generate's default (1..10 expressions, 4 examples); it checks
   * the options itself. */
  sd_task t;
  memset(&t, 0, sizeof t);
  char msg[512] = "";
  if (sd_generate(seed, mn, mx, ne, &t, msg, sizeof msg)) {
    sd_task_free(&t);
    return fail(I, err, LP_EINVAL, "string: generate: %s", msg[0] ? msg : "failed");
  }
  int32_t *ids = NULL;
  size_t n = 0, cap = 0;
  int rc = LP_OK;
  if (sd_to_tokens(&t.prog, &ids, &n, &cap))
    rc = fail(I, err, LP_EINVAL, "string: generate produced an invalid program (or out of memory)");
  for (size_t i = 0; rc == LP_OK && i < n; i++)
    if (I->host->ids_push(&out->program, ids[i])) rc = fail(I, err, LP_ENOMEM, "out of memory");
  for (size_t i = 0; rc == LP_OK && i < t.n_examples; i++) {
    const char *a = t.inputs[i] ? t.inputs[i] : "", *b = t.outputs[i] ? t.outputs[i] : "";
    if (I->host->strs_push(&out->examples, a, strlen(a)) ||
        I->host->strs_push(&out->examples, b, strlen(b)))
      rc = fail(I, err, LP_ENOMEM, "out of memory");
  }
  if (rc == LP_OK) out->n_parts = 2;
  free(ids);
  sd_task_free(&t);
  return rc;
}

static int str_program_size(void *self, const int32_t *ids, size_t n, int32_t *size,
                            lp_err *err) {
  GET_INST(self, err);
  if (!size) return fail(I, err, LP_EINVAL, "string: no output");
  progbuf pb;
  int rc = load_progbuf(I, ids, n, &pb, err);
  if (rc == LP_OK) *size = (int32_t)pb.p.n;
  progbuf_free(&pb);
  return rc;
}

/* ---- exact search (solve.c) ----
 * Defaults for the fields of lp_solve_opts left at 0: */
#define SOLVE_DEF_MAX_SOLUTIONS 100
#define SOLVE_DEF_TIME_LIMIT 10.0 /* seconds */
#define SOLVE_DEF_MAX_SIZE 20     /* expressions */

typedef struct solve_ctx {
  const sd_inst *I;
  const lp_example *ex;
  size_t n_ex;
  lp_solution_fn fn;
  void *ctx;
  lp_err *err;
  int rc;
} solve_ctx;

/* Each program is checked as check() would before it is passed on (the
 * solver builds consistent programs; this makes the contract independent of
 * that). */
static int solve_report(void *vctx, const sd_prog *prog, const int32_t *ids, size_t n,
                        double prior) {
  solve_ctx *c = vctx;
  int ok = 0;
  int rc = run_examples(c->I, prog, c->ex, c->n_ex, 1, &ok, c->err);
  if (rc != LP_OK) {
    c->rc = rc;
    return 1;
  }
  if (!ok) return 0;
  return c->fn(c->ctx, ids, n, prior) != 0;
}

#define SOLVE_OPT(o, f) \
  ((o) && (o)->struct_size >= offsetof(lp_solve_opts, f) + sizeof((o)->f))

static int str_solve(void *self, const lp_example *ex, size_t n_ex, const lp_solve_opts *opts,
                     lp_solution_fn fn, void *ctx, int *complete, lp_err *err) {
  GET_INST(self, err);
  if (complete) *complete = 0;
  if (!fn) return fail(I, err, LP_EINVAL, "string: solve needs a callback for the programs");
  int rc = check_examples(I, ex, n_ex, err);
  if (rc != LP_OK) return rc;
  if (n_ex == 0) return fail(I, err, LP_EINVAL, "string: solve needs at least one example");
  sd_solve_opts so = {SOLVE_DEF_MAX_SOLUTIONS, SOLVE_DEF_TIME_LIMIT, SOLVE_DEF_MAX_SIZE, NULL, 0};
  if (SOLVE_OPT(opts, max_solutions) && opts->max_solutions != 0) {
    if (opts->max_solutions < 0)
      return fail(I, err, LP_EINVAL, "string: solve: max_solutions %d is negative",
                  (int)opts->max_solutions);
    so.max_solutions = opts->max_solutions;
  }
  if (SOLVE_OPT(opts, time_limit)) {
    double t = opts->time_limit;
    if (t != t) return fail(I, err, LP_EINVAL, "string: solve: time_limit is not a number");
    if (t > 0) so.time_limit = t;
  }
  if (SOLVE_OPT(opts, max_size) && opts->max_size != 0) {
    if (opts->max_size < 0)
      return fail(I, err, LP_EINVAL, "string: solve: max_size %d is negative",
                  (int)opts->max_size);
    if (opts->max_size > SD_MAX_EXPRS)
      return fail(I, err, LP_ELIMIT,
                  "string: solve: max_size %d is above the limit of %d expressions",
                  (int)opts->max_size, SD_MAX_EXPRS);
    so.max_size = opts->max_size;
  }
  /* refused before decoding anything big (sd_solve checks the exact limits) */
  if (n_ex > SD_SOLVE_MAX_EXAMPLES)
    return fail(I, err, LP_ELIMIT, "string: solve: %zu examples, at most %d", n_ex,
                SD_SOLVE_MAX_EXAMPLES);
  for (size_t i = 0; i < n_ex; i++)
    for (int j = 0; j < 2; j++)
      if (ex[i].len[j] > 4 * (size_t)SD_SOLVE_MAX_LEN)
        return fail(I, err, LP_ELIMIT,
                    "string: solve: example %zu: the %s has %zu bytes, the solver takes at most "
                    "%d characters",
                    i, j ? "output" : "input", ex[i].len[j], SD_SOLVE_MAX_LEN);
  sd_str *in = calloc(n_ex, sizeof *in), *out = calloc(n_ex, sizeof *out);
  if (!in || !out) rc = fail(I, err, LP_ENOMEM, "out of memory");
  for (size_t i = 0; rc == LP_OK && i < n_ex; i++)
    if (sd_decode(ex[i].part[0] ? ex[i].part[0] : "", ex[i].len[0], &in[i]) ||
        sd_decode(ex[i].part[1] ? ex[i].part[1] : "", ex[i].len[1], &out[i]))
      rc = fail(I, err, LP_ENOMEM, "out of memory");
  if (rc == LP_OK) {
    solve_ctx c = {I, ex, n_ex, fn, ctx, err, LP_OK};
    char msg[512] = "";
    int r = sd_solve(in, out, n_ex, &so, solve_report, &c, complete, NULL, msg, sizeof msg);
    if (r) rc = fail(I, err, sd_code(r), "string: solve: %s", msg[0] ? msg : "failed");
    else if (c.rc != LP_OK) rc = c.rc;
    if (rc != LP_OK && complete) *complete = 0;
  }
  for (size_t i = 0; i < n_ex; i++) {
    if (in) sd_str_free(&in[i]);
    if (out) sd_str_free(&out[i]);
  }
  free(in);
  free(out);
  return rc;
}

static const lp_domain_desc string_desc = {
    .struct_size = sizeof(lp_domain_desc),
    .abi_major = LP_PLUGIN_ABI_MAJOR,
    .abi_minor = LP_PLUGIN_ABI_MINOR,
    .caps = LP_CAP_EXECUTE | LP_CAP_CHECK | LP_CAP_GENERATE | LP_CAP_PREFIX | LP_CAP_LENGTH |
            LP_CAP_SOLVE,
    .name = "string",
    .version = "1.0.0",
    .description = "string transformations from I/O examples: the RobustFill DSL of "
                   "Latent Programmer",
    .spec_parts = 2,
    .reserved0 = 0,
    .create = str_create,
    .destroy = str_destroy,
    .program_vocab = str_program_vocab,
    .program_token = str_program_token,
    .program_encode = str_program_encode,
    .program_decode = str_program_decode,
    .spec_vocab = str_spec_vocab,
    .spec_token = str_spec_token,
    .spec_encode = str_spec_encode,
    .execute = str_execute,
    .check = str_check,
    .generate = str_generate,
    .anonymise = NULL,
    .prefix_ok = str_prefix_ok,
    .program_size = str_program_size,
    .solve = str_solve,
};

LP_PLUGIN_EXPORT const lp_domain_desc *lp_plugin_entry(void);
LP_PLUGIN_EXPORT const lp_domain_desc *lp_plugin_entry(void) { return &string_desc; }

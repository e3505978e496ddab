/* lpsynth_toy: a minimal example domain plugin (the running example of
 * plugins/README.md).
 *
 * It is written against include/lpsynth/plugin.h ONLY: it links against none
 * of lpsynth's core, and everything it needs from the host (allocation,
 * growable buffers, errors, logging) comes through the lp_host_api table that
 * create() receives.
 *
 * The DSL: a program is one to TOY_MAX_OPS operations joined by " ; ", applied
 * left to right to the input bytes:
 *
 *   upper        ASCII letters to upper case
 *   lower        ASCII letters to lower case
 *   reverse      reverse the bytes
 *   first N      keep the first N bytes (N = 1..9; all of them if fewer)
 *   last N       keep the last N bytes
 *   append 'c'   append the character c (c in a-z or 0-9)
 *
 *   e.g.  upper ; first 3 ; append 'x'     "hello" -> "HELx"
 *
 * Program tokens: <pad> <bos> <eos>, the six operation names, ";", the counts
 * 1..9 and the 36 quoted characters 'a'..'z' '0'..'9'. The program
 * "first 3 ; append 'x'" is the ids [first, 3, ;, append, 'x', <eos>].
 *
 * Specification: input/output example pairs (spec_parts = 2) over printable
 * ASCII; any other byte encodes as <unk>.
 *
 * Capabilities: execute, check, generate, program_size and (ABI 1.2) solve,
 * which simply tries every program, shortest first. It leaves out anonymise
 * and prefix_ok (their slots stay NULL and their flags unset).
 */
#include <lpsynth/plugin.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define TOY_MAX_OPS 16

/* ---------- program vocabulary ---------- */

enum {
  TOK_PAD = 0,
  TOK_BOS = 1,
  TOK_EOS = 2,
  TOK_UPPER = 3,
  TOK_LOWER = 4,
  TOK_REVERSE = 5,
  TOK_FIRST = 6,
  TOK_LAST = 7,
  TOK_APPEND = 8,
  TOK_SEP = 9,
  TOK_NUM1 = 10,  /* count N is TOK_NUM1 + N - 1, N = 1..9 */
  TOK_CHAR0 = 19, /* character toy_alphabet[k] is TOK_CHAR0 + k */
  TOK_COUNT = 55
};

static const char toy_alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789"; /* 36 */

/* clang-format off */
static const char *const program_tokens[TOK_COUNT] = {
    "<pad>", "<bos>", "<eos>", "upper", "lower", "reverse", "first", "last", "append", ";",
    "1", "2", "3", "4", "5", "6", "7", "8", "9",
    "'a'", "'b'", "'c'", "'d'", "'e'", "'f'", "'g'", "'h'", "'i'", "'j'", "'k'", "'l'", "'m'",
    "'n'", "'o'", "'p'", "'q'", "'r'", "'s'", "'t'", "'u'", "'v'", "'w'", "'x'", "'y'", "'z'",
    "'0'", "'1'", "'2'", "'3'", "'4'", "'5'", "'6'", "'7'", "'8'", "'9'"};
/* clang-format on */

/* ---------- specification vocabulary ---------- */

enum {
  SPEC_PAD = 0,
  SPEC_BOS = 1,
  SPEC_EOS = 2,
  SPEC_UNK = 3,
  SPEC_CHAR0 = 4, /* byte c in 32..126 is SPEC_CHAR0 + c - 32 */
  SPEC_COUNT = SPEC_CHAR0 + 95
};

/* ---------- the instance ---------- */

typedef struct toy {
  const lp_host_api *host; /* valid for the instance's life */
  int max_ops;             /* option "max_ops=K", default TOY_MAX_OPS */
  char spec_text[95][2];   /* texts of the printable spec tokens, owned by the instance */
} toy;

/* One decoded operation: a token (TOK_UPPER..TOK_APPEND) and its argument
 * (the count for first/last, the character for append). */
typedef struct toy_op {
  int32_t op;
  int32_t arg;
} toy_op;

static int toy_create(const lp_host_api *host, const char *options, void **self, lp_err *err) {
  int max_ops = TOY_MAX_OPS;
  if (options && *options) {
    /* The only option: "max_ops=K", K in 1..TOY_MAX_OPS. */
    const char *p = options;
    int k = 0;
    if (strncmp(p, "max_ops=", 8) == 0) {
      p += 8;
      while (*p >= '0' && *p <= '9' && k <= TOY_MAX_OPS) k = k * 10 + (*p++ - '0');
    }
    if (*p || k < 1 || k > TOY_MAX_OPS)
      return host->set_error(err, LP_EINVAL,
                             "toy: unknown option \"%.100s\" (the only option is max_ops=1..%d)",
                             options, TOY_MAX_OPS);
    max_ops = k;
  }
  toy *t = host->alloc(sizeof *t);
  if (!t) return host->set_error(err, LP_ENOMEM, "toy: out of memory");
  t->host = host;
  t->max_ops = max_ops;
  for (int c = 32; c < 127; c++) {
    t->spec_text[c - 32][0] = (char)c;
    t->spec_text[c - 32][1] = 0;
  }
  host->log(LP_LOG_DEBUG, "toy: instance created (max_ops=%d)", max_ops);
  *self = t;
  return LP_OK;
}

static void toy_destroy(void *self) {
  toy *t = self;
  if (t) t->host->free(t);
}

static int toy_program_vocab(void *self, lp_vocab_info *out) {
  (void)self;
  out->size = TOK_COUNT;
  out->pad = TOK_PAD;
  out->bos = TOK_BOS;
  out->eos = TOK_EOS;
  out->unk = -1; /* programs are parsed strictly: no unknown token */
  return LP_OK;
}

static const char *toy_program_token(void *self, int32_t id) {
  (void)self;
  return id >= 0 && id < TOK_COUNT ? program_tokens[id] : NULL;
}

/* ---------- parsing: text -> ids ---------- */

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* Describe the text at s[i..n) for an error message: "end of program",
 * "\"word\"" (a run of a-z0-9), "'c'" or "byte 0xNN". buf has room for 32. */
static void describe(const char *s, size_t n, size_t i, char *buf) {
  size_t w = 0;
  if (i >= n) {
    memcpy(buf, "end of program", sizeof "end of program");
    return;
  }
  while (i + w < n && w < 20 &&
         ((s[i + w] >= 'a' && s[i + w] <= 'z') || (s[i + w] >= '0' && s[i + w] <= '9')))
    w++;
  if (w > 0) {
    buf[0] = '"';
    memcpy(buf + 1, s + i, w);
    buf[w + 1] = '"';
    buf[w + 2] = 0;
    return;
  }
  unsigned char c = (unsigned char)s[i];
  static const char hex[] = "0123456789abcdef";
  if (c > 32 && c < 127 && c != '\'') {
    buf[0] = '\'';
    buf[1] = (char)c;
    buf[2] = '\'';
    buf[3] = 0;
  } else {
    memcpy(buf, "byte 0x", 7);
    buf[7] = hex[c >> 4];
    buf[8] = hex[c & 15];
    buf[9] = 0;
  }
}

#define OPS_EXPECTED "upper, lower, reverse, first N, last N or append 'c'"

static int toy_program_encode(void *self, const char *s, size_t n, lp_ids *out, lp_err *err) {
  const toy *t = self;
  const lp_host_api *h = t->host;
  static const struct {
    const char *word;
    int32_t tok;
  } ops[] = {{"upper", TOK_UPPER}, {"lower", TOK_LOWER}, {"reverse", TOK_REVERSE},
             {"first", TOK_FIRST}, {"last", TOK_LAST},   {"append", TOK_APPEND}};
  char what[32];
  size_t i = 0;
  int n_ops = 0;
  for (;;) {
    while (i < n && is_space(s[i])) i++;
    /* An operation name: the longest run of a-z. */
    size_t w = 0;
    while (i + w < n && s[i + w] >= 'a' && s[i + w] <= 'z') w++;
    int32_t tok = -1;
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++)
      if (strlen(ops[k].word) == w && memcmp(ops[k].word, s + i, w) == 0) tok = ops[k].tok;
    if (tok < 0) {
      describe(s, n, i, what);
      return h->set_error(err, LP_EINVAL,
                          "column %zu: expected an operation (" OPS_EXPECTED "), got %s", i + 1,
                          what);
    }
    if (++n_ops > t->max_ops)
      return h->set_error(err, LP_ELIMIT, "column %zu: more than %d operations", i + 1, t->max_ops);
    if (h->ids_push(out, tok)) return h->set_error(err, LP_ENOMEM, "toy: out of memory");
    i += w;
    if (tok == TOK_FIRST || tok == TOK_LAST || tok == TOK_APPEND) {
      const char *name = program_tokens[tok];
      if (i >= n || !is_space(s[i])) {
        describe(s, n, i, what);
        return h->set_error(err, LP_EINVAL, "column %zu: expected a space after \"%s\", got %s",
                            i + 1, name, what);
      }
      while (i < n && is_space(s[i])) i++;
      int32_t arg = -1;
      if (tok != TOK_APPEND) {
        if (i < n && s[i] >= '1' && s[i] <= '9' &&
            !(i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9'))
          arg = TOK_NUM1 + (s[i] - '1');
        if (arg < 0) {
          describe(s, n, i, what);
          return h->set_error(err, LP_EINVAL,
                              "column %zu: expected a count 1-9 after \"%s\", got %s", i + 1, name,
                              what);
        }
        i += 1;
      } else {
        const char *c = i + 2 < n && s[i] == '\'' && s[i + 2] == '\''
                            ? memchr(toy_alphabet, s[i + 1], sizeof toy_alphabet - 1)
                            : NULL;
        if (!c) {
          describe(s, n, i, what);
          return h->set_error(err, LP_EINVAL,
                              "column %zu: expected a quoted character 'c' (c in a-z or 0-9) after "
                              "\"append\", got %s",
                              i + 1, what);
        }
        arg = TOK_CHAR0 + (int32_t)(c - toy_alphabet);
        i += 3;
      }
      if (h->ids_push(out, arg)) return h->set_error(err, LP_ENOMEM, "toy: out of memory");
    }
    while (i < n && is_space(s[i])) i++;
    if (i == n) break;
    if (s[i] != ';') {
      describe(s, n, i, what);
      return h->set_error(err, LP_EINVAL, "column %zu: expected \";\" or end of program, got %s",
                          i + 1, what);
    }
    if (h->ids_push(out, TOK_SEP)) return h->set_error(err, LP_ENOMEM, "toy: out of memory");
    i++;
  }
  if (h->ids_push(out, TOK_EOS)) return h->set_error(err, LP_ENOMEM, "toy: out of memory");
  return LP_OK;
}

/* ---------- ids -> operations (used by decode, execute, check, size) ---------- */

static const char *tok_name(int32_t id) {
  return id >= 0 && id < TOK_COUNT ? program_tokens[id] : "an out-of-range id";
}

/* Reads ids[0..n) up to the first EOS as op (";" op)*. Fills ops (room for
 * TOY_MAX_OPS) and *n_ops. */
static int ids_to_ops(const toy *t, const int32_t *ids, size_t n, toy_op *ops, int *n_ops,
                      lp_err *err) {
  const lp_host_api *h = t->host;
  size_t end = 0;
  while (end < n && ids[end] != TOK_EOS) end++;
  if (end == 0) return h->set_error(err, LP_EINVAL, "empty program");
  int k = 0;
  for (size_t i = 0; i < end;) {
    int32_t op = ids[i];
    if (op < TOK_UPPER || op > TOK_APPEND)
      return h->set_error(err, LP_EINVAL, "token %zu: expected an operation, got %s (id %d)", i + 1,
                          tok_name(op), (int)op);
    if (k >= t->max_ops)
      return h->set_error(err, LP_ELIMIT, "token %zu: more than %d operations", i + 1, t->max_ops);
    int32_t arg = 0;
    i++;
    if (op == TOK_FIRST || op == TOK_LAST) {
      if (i >= end || ids[i] < TOK_NUM1 || ids[i] > TOK_NUM1 + 8)
        return h->set_error(err, LP_EINVAL, "token %zu: expected a count 1-9 after \"%s\", got %s",
                            i + 1, program_tokens[op], i >= end ? "the end" : tok_name(ids[i]));
      arg = ids[i++] - TOK_NUM1 + 1;
    } else if (op == TOK_APPEND) {
      if (i >= end || ids[i] < TOK_CHAR0 || ids[i] >= TOK_COUNT)
        return h->set_error(err, LP_EINVAL,
                            "token %zu: expected a character after \"append\", got %s", i + 1,
                            i >= end ? "the end" : tok_name(ids[i]));
      arg = toy_alphabet[ids[i++] - TOK_CHAR0];
    }
    ops[k].op = op;
    ops[k].arg = arg;
    k++;
    if (i < end) {
      if (ids[i] != TOK_SEP)
        return h->set_error(err, LP_EINVAL, "token %zu: expected \";\", got %s", i + 1,
                            tok_name(ids[i]));
      if (++i == end)
        return h->set_error(err, LP_EINVAL, "token %zu: expected an operation after \";\"", i + 1);
    }
  }
  *n_ops = k;
  return LP_OK;
}

static int toy_program_decode(void *self, const int32_t *ids, size_t n, lp_buf *out, lp_err *err) {
  const toy *t = self;
  const lp_host_api *h = t->host;
  toy_op ops[TOY_MAX_OPS];
  int n_ops = 0;
  int rc = ids_to_ops(t, ids, n, ops, &n_ops, err);
  if (rc) return rc;
  for (int k = 0; k < n_ops; k++) {
    const char *w = program_tokens[ops[k].op];
    char arg[8] = "";
    if (ops[k].op == TOK_FIRST || ops[k].op == TOK_LAST) {
      arg[0] = ' ';
      arg[1] = (char)('0' + ops[k].arg);
      arg[2] = 0;
    } else if (ops[k].op == TOK_APPEND) {
      memcpy(arg, " 'c'", 5);
      arg[2] = (char)ops[k].arg;
    }
    if ((k && h->buf_append(out, " ; ", 3)) || h->buf_append(out, w, strlen(w)) ||
        h->buf_append(out, arg, strlen(arg)))
      return h->set_error(err, LP_ENOMEM, "toy: out of memory");
  }
  return LP_OK;
}

/* ---------- specification ---------- */

static int toy_spec_vocab(void *self, lp_vocab_info *out) {
  (void)self;
  out->size = SPEC_COUNT;
  out->pad = SPEC_PAD;
  out->bos = SPEC_BOS;
  out->eos = SPEC_EOS;
  out->unk = SPEC_UNK;
  return LP_OK;
}

static const char *toy_spec_token(void *self, int32_t id) {
  const toy *t = self;
  static const char *const special[] = {"<pad>", "<bos>", "<eos>", "<unk>"};
  if (id >= 0 && id < SPEC_CHAR0) return special[id];
  if (id >= SPEC_CHAR0 && id < SPEC_COUNT) return t->spec_text[id - SPEC_CHAR0];
  return NULL;
}

static int toy_spec_encode(void *self, uint32_t part, const char *text, size_t len, lp_ids *out,
                           size_t *n_unknown, lp_err *err) {
  const toy *t = self;
  if (part > 1) return t->host->set_error(err, LP_EINVAL, "toy: no specification part %u", part);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    int32_t id = SPEC_UNK;
    if (c >= 32 && c < 127)
      id = SPEC_CHAR0 + (c - 32);
    else if (n_unknown)
      ++*n_unknown;
    if (t->host->ids_push(out, id)) return t->host->set_error(err, LP_ENOMEM, "toy: out of memory");
  }
  return LP_OK;
}

/* ---------- execution ---------- */

/* Applies ops to in[0..len) and appends the result to out. */
static int run_ops(const toy *t, const toy_op *ops, int n_ops, const char *in, size_t len,
                   lp_buf *out, lp_err *err) {
  const lp_host_api *h = t->host;
  /* Only append grows the string, by one byte per operation. */
  char *s = h->alloc(len + (size_t)n_ops + 1);
  if (!s) return h->set_error(err, LP_ENOMEM, "toy: out of memory");
  if (len) memcpy(s, in, len);
  size_t n = len;
  for (int k = 0; k < n_ops; k++) {
    size_t a = (size_t)ops[k].arg;
    switch (ops[k].op) {
      case TOK_UPPER:
        for (size_t i = 0; i < n; i++)
          if (s[i] >= 'a' && s[i] <= 'z') s[i] = (char)(s[i] - 'a' + 'A');
        break;
      case TOK_LOWER:
        for (size_t i = 0; i < n; i++)
          if (s[i] >= 'A' && s[i] <= 'Z') s[i] = (char)(s[i] - 'A' + 'a');
        break;
      case TOK_REVERSE:
        for (size_t i = 0; i < n / 2; i++) {
          char c = s[i];
          s[i] = s[n - 1 - i];
          s[n - 1 - i] = c;
        }
        break;
      case TOK_FIRST:
        if (n > a) n = a;
        break;
      case TOK_LAST:
        if (n > a) {
          memmove(s, s + n - a, a);
          n = a;
        }
        break;
      case TOK_APPEND:
        s[n++] = (char)a;
        break;
    }
  }
  int rc = h->buf_append(out, s, n) ? h->set_error(err, LP_ENOMEM, "toy: out of memory") : LP_OK;
  h->free(s);
  return rc;
}

static int toy_execute(void *self, const int32_t *ids, size_t n, const char *input, size_t len,
                       lp_buf *out, lp_err *err) {
  const toy *t = self;
  toy_op ops[TOY_MAX_OPS];
  int n_ops = 0;
  int rc = ids_to_ops(t, ids, n, ops, &n_ops, err);
  return rc ? rc : run_ops(t, ops, n_ops, input, len, out, err);
}

static int toy_check(void *self, const int32_t *ids, size_t n, const lp_example *ex, size_t n_ex,
                     int *consistent, lp_err *err) {
  const toy *t = self;
  toy_op ops[TOY_MAX_OPS];
  int n_ops = 0;
  int rc = ids_to_ops(t, ids, n, ops, &n_ops, err);
  if (rc) return rc;
  lp_buf got = {0}; /* memory from the host allocator: released with host->free */
  *consistent = 1;
  for (size_t i = 0; i < n_ex && *consistent; i++) {
    got.len = 0;
    rc = run_ops(t, ops, n_ops, ex[i].part[0], ex[i].len[0], &got, err);
    if (rc) break;
    *consistent =
        got.len == ex[i].len[1] && (got.len == 0 || memcmp(got.data, ex[i].part[1], got.len) == 0);
  }
  t->host->free(got.data);
  return rc;
}

static int toy_program_size(void *self, const int32_t *ids, size_t n, int32_t *size, lp_err *err) {
  toy_op ops[TOY_MAX_OPS];
  int n_ops = 0;
  int rc = ids_to_ops(self, ids, n, ops, &n_ops, err);
  if (rc == LP_OK) *size = n_ops;
  return rc;
}

/* ---------- generation ---------- */

/* splitmix64: the whole random state lives on the caller's stack, so generate
 * is deterministic in its seed and safe to call from several threads. */
static uint64_t next_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int32_t rand_below(uint64_t *s, int32_t n) { return (int32_t)(next_rand(s) % (uint64_t)n); }

/* Reads a field of a versioned struct only if the writer's struct_size has it. */
#define OPT_FIELD(o, f) \
  ((o) && (o)->struct_size >= offsetof(lp_gen_opts, f) + sizeof((o)->f) ? (o)->f : 0)

static int toy_generate(void *self, uint64_t seed, const lp_gen_opts *opts, lp_task *out,
                        lp_err *err) {
  const toy *t = self;
  const lp_host_api *h = t->host;
  int32_t min = OPT_FIELD(opts, min_size), max = OPT_FIELD(opts, max_size);
  int32_t n_ex = OPT_FIELD(opts, n_examples);
  if (min <= 0) min = 1;
  if (max <= 0) max = min > 4 ? min : 4;
  if (n_ex <= 0) n_ex = 3;
  if (min > max)
    return h->set_error(err, LP_EINVAL, "toy: min_size %d is larger than max_size %d", (int)min,
                        (int)max);
  if (max > t->max_ops)
    return h->set_error(err, LP_ELIMIT, "toy: max_size %d is above the limit of %d operations",
                        (int)max, t->max_ops);
  if (n_ex > 1000)
    return h->set_error(err, LP_ELIMIT, "toy: %d examples asked, at most 1000", (int)n_ex);

  /* The program: random tokens, read back like any other program. */
  uint64_t rng = seed;
  size_t start = out->program.len; /* out may already hold ids: append */
  int n_ops = (int)(min + rand_below(&rng, max - min + 1)), bad = 0;
  for (int k = 0; k < n_ops && !bad; k++) {
    int32_t op = TOK_UPPER + rand_below(&rng, 6);
    bad = (k && h->ids_push(&out->program, TOK_SEP)) || h->ids_push(&out->program, op);
    if (op == TOK_FIRST || op == TOK_LAST)
      bad = bad || h->ids_push(&out->program, TOK_NUM1 + rand_below(&rng, 9));
    else if (op == TOK_APPEND)
      bad = bad || h->ids_push(&out->program, TOK_CHAR0 + rand_below(&rng, 36));
  }
  if (bad || h->ids_push(&out->program, TOK_EOS))
    return h->set_error(err, LP_ENOMEM, "toy: out of memory");
  toy_op ops[TOY_MAX_OPS];
  int rc = ids_to_ops(t, out->program.data + start, out->program.len - start, ops, &n_ops, err);
  if (rc) return rc;

  /* The examples: random inputs and the program's outputs on them. */
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
  out->n_parts = 2;
  lp_buf output = {0};
  for (int32_t i = 0; i < n_ex && rc == LP_OK; i++) {
    char input[12];
    int32_t len = 1 + rand_below(&rng, (int32_t)sizeof input);
    for (int32_t j = 0; j < len; j++)
      input[j] = letters[rand_below(&rng, (int32_t)sizeof letters - 1)];
    output.len = 0;
    rc = run_ops(t, ops, n_ops, input, (size_t)len, &output, err);
    if (rc == LP_OK && (h->strs_push(&out->examples, input, (size_t)len) ||
                        h->strs_push(&out->examples, output.data ? output.data : "", output.len)))
      rc = h->set_error(err, LP_ENOMEM, "toy: out of memory");
  }
  h->free(output.data);
  return rc;
}

/* ---------- exact search (ABI 1.2) ---------- */

/* The operations one position of a program can hold, in token order:
 * upper, lower, reverse, first 1..9, last 1..9, append 'a'..'9'. */
#define TOY_CHOICES (3 + 9 + 9 + 36)
#define TOY_SOLVE_MAX_SIZE 3 /* default: up to 57^3 = 185,193 programs */

static toy_op toy_choice(int c) {
  toy_op o = {TOK_UPPER + c, 0};
  if (c >= 3 && c < 12) o = (toy_op){TOK_FIRST, c - 3 + 1};
  else if (c >= 12 && c < 21) o = (toy_op){TOK_LAST, c - 12 + 1};
  else if (c >= 21) o = (toy_op){TOK_APPEND, toy_alphabet[c - 21]};
  return o;
}

/* The ids of a program (ending with EOS); returns their count. */
static size_t toy_ids(const toy_op *ops, int n_ops, int32_t *ids) {
  size_t n = 0;
  for (int k = 0; k < n_ops; k++) {
    if (k) ids[n++] = TOK_SEP;
    ids[n++] = ops[k].op;
    if (ops[k].op == TOK_FIRST || ops[k].op == TOK_LAST) ids[n++] = TOK_NUM1 + ops[k].arg - 1;
    else if (ops[k].op == TOK_APPEND)
      ids[n++] = TOK_CHAR0 + (int32_t)((const char *)memchr(toy_alphabet, ops[k].arg, 36) -
                                       toy_alphabet);
  }
  ids[n++] = TOK_EOS;
  return n;
}

static double toy_now(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC); /* C11 */
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reads a field of lp_solve_opts only if the caller's struct_size has it. */
#define SOLVE_FIELD(o, f) \
  ((o) && (o)->struct_size >= offsetof(lp_solve_opts, f) + sizeof((o)->f) ? (o)->f : 0)

/* Tries every program of 1, 2, ... max_size operations (in token order) on
 * the examples and reports the consistent ones; the prior of a program is
 * minus its number of operations, so shorter programs come first. */
static int toy_solve(void *self, const lp_example *ex, size_t n_ex, const lp_solve_opts *opts,
                     lp_solution_fn fn, void *ctx, int *complete, lp_err *err) {
  const toy *t = self;
  const lp_host_api *h = t->host;
  if (complete) *complete = 0;
  int32_t max_solutions = SOLVE_FIELD(opts, max_solutions), max_size = SOLVE_FIELD(opts, max_size);
  double time_limit = SOLVE_FIELD(opts, time_limit);
  if (!fn || (!ex && n_ex))
    return h->set_error(err, LP_EINVAL, "toy: solve needs examples and a callback");
  if (max_solutions < 0 || max_size < 0 || time_limit != time_limit)
    return h->set_error(err, LP_EINVAL,
                        "toy: solve: max_solutions and max_size must not be negative, time_limit "
                        "must be a number");
  if (max_solutions == 0) max_solutions = 100;
  if (time_limit <= 0) time_limit = 10.0;
  if (max_size == 0) max_size = TOY_SOLVE_MAX_SIZE < t->max_ops ? TOY_SOLVE_MAX_SIZE : t->max_ops;
  if (max_size > t->max_ops)
    return h->set_error(err, LP_ELIMIT,
                        "toy: solve: max_size %d is above the limit of %d operations",
                        (int)max_size, t->max_ops);
  toy_op ops[TOY_MAX_OPS];
  int choice[TOY_MAX_OPS];
  int32_t ids[3 * TOY_MAX_OPS + 1];
  lp_buf got = {0};
  int32_t found = 0;
  int rc = LP_OK, stop = 0;
  unsigned long tried = 0;
  const double deadline = toy_now() + time_limit;
  for (int len = 1; len <= max_size && !stop && rc == LP_OK; len++) {
    for (int k = 0; k < len; k++) choice[k] = 0;
    for (;;) { /* an odometer over the choices of the len positions */
      if ((++tried & 1023) == 0 && toy_now() > deadline) {
        stop = 1;
        break;
      }
      for (int k = 0; k < len; k++) ops[k] = toy_choice(choice[k]);
      int ok = 1;
      for (size_t e = 0; e < n_ex && ok && rc == LP_OK; e++) {
        got.len = 0;
        rc = run_ops(t, ops, len, ex[e].part[0], ex[e].len[0], &got, err);
        ok = got.len == ex[e].len[1] &&
             (got.len == 0 || memcmp(got.data, ex[e].part[1], got.len) == 0);
      }
      if (rc != LP_OK) break;
      if (ok && (fn(ctx, ids, toy_ids(ops, len, ids), -(double)len) || ++found >= max_solutions)) {
        stop = 1;
        break;
      }
      int k = len - 1;
      while (k >= 0 && ++choice[k] == TOY_CHOICES) choice[k--] = 0;
      if (k < 0) break;
    }
  }
  h->free(got.data);
  if (rc == LP_OK && !stop && complete) *complete = 1;
  return rc;
}

/* ---------- the descriptor and the entry point ---------- */

static const lp_domain_desc toy_desc = {
    .struct_size = sizeof(lp_domain_desc),
    .abi_major = LP_PLUGIN_ABI_MAJOR,
    .abi_minor = LP_PLUGIN_ABI_MINOR,
    .caps = LP_CAP_EXECUTE | LP_CAP_CHECK | LP_CAP_GENERATE | LP_CAP_LENGTH | LP_CAP_SOLVE,
    .name = "toy",
    .version = "1.0.0",
    .description = "example domain: upper/lower/reverse/first N/last N/append 'c' pipelines",
    .spec_parts = 2,
    .create = toy_create,
    .destroy = toy_destroy,
    .program_vocab = toy_program_vocab,
    .program_token = toy_program_token,
    .program_encode = toy_program_encode,
    .program_decode = toy_program_decode,
    .spec_vocab = toy_spec_vocab,
    .spec_token = toy_spec_token,
    .spec_encode = toy_spec_encode,
    .execute = toy_execute,
    .check = toy_check,
    .generate = toy_generate,
    /* .anonymise and .prefix_ok are left NULL: no LP_CAP_ANONYMISE / LP_CAP_PREFIX */
    .program_size = toy_program_size,
    .solve = toy_solve, /* ABI 1.2 */
};

LP_PLUGIN_EXPORT const lp_domain_desc *lp_plugin_entry(void);

LP_PLUGIN_EXPORT const lp_domain_desc *lp_plugin_entry(void) { return &toy_desc; }

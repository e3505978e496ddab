/* Internal API of the string (RobustFill) DSL plugin. Not installed.
 * The behaviour is specified in shared/spec/strdsl.md.
 *
 * Strings inside the interpreter are arrays of code points (uint32_t):
 * input bytes are decoded as UTF-8; every byte that is not part of a valid
 * UTF-8 sequence becomes SD_RAW_BYTE_BASE + byte (like Python's
 * "surrogateescape") and is written back as that same byte, so execution is
 * lossless on any input bytes. Case mapping and the regex classes are ASCII,
 * exactly as the DSL's alphabet is; other code points are "characters outside
 * the alphabet": they never match a type or delimiter, ToCase leaves them as
 * they are, and Trim strips the whitespace Python's str.strip() strips in
 * ASCII/Latin-1 (' \t\n\r\v\f', 0x1c-0x1f, 0x85, 0xa0).
 */
#ifndef LPSYNTH_STRDSL_H
#define LPSYNTH_STRDSL_H

#include <stddef.h>
#include <stdint.h>

/* Operations; the program token of op o is SD_TOK_OP0 + o. */
enum sd_op {
  SD_COMPOSE = 0, SD_CONSTSTR, SD_SUBSTR, SD_GETSPAN, SD_GETTOKEN, SD_TOCASE,
  SD_REPLACE, SD_TRIM, SD_GETUPTO, SD_GETFROM, SD_GETFIRST, SD_GETALL, SD_NUM_OPS
};

/* Types (regex classes) 0..7, in the spec's order. */
enum sd_type { SD_NUMBER = 0, SD_WORD, SD_ALPHANUM, SD_ALL_CAPS, SD_PROP_CASE, SD_LOWER,
               SD_DIGIT, SD_CHAR, SD_NUM_TYPES };
enum sd_case { SD_PROPER = 0, SD_CASE_ALL_CAPS, SD_CASE_LOWER, SD_NUM_CASES };
enum sd_bound { SD_START = 0, SD_END = 1 };

#define SD_NUM_CHARS 83    /* a-z A-Z 0-9 then the 21 delimiters */
#define SD_NUM_DELIMS 21
#define SD_FIRST_DELIM 62  /* index of the first delimiter among the 83 characters */
/* A regex argument r is 0..7 for a type, or 8 + d for delimiter d (0..20). */
#define SD_NUM_REGEX (SD_NUM_TYPES + SD_NUM_DELIMS)

/* Token ids (see the spec). */
enum {
  SD_TOK_PAD = 0, SD_TOK_BOS = 1, SD_TOK_EOS = 2, SD_TOK_OP0 = 3, SD_TOK_CHAR0 = 15,
  SD_TOK_TYPE0 = 98, SD_TOK_CASE0 = 106, SD_TOK_START = 109, SD_TOK_END = 110,
  SD_TOK_INT_ZERO = 211, /* id of integer k is 211 + k, k in -100..100 */
  SD_VOCAB_SIZE = 312
};

#define SD_RAW_BYTE_BASE 0xDC00u
#define SD_MAX_EXPRS 1024   /* programs with more expressions are refused */

/* The 83 characters in token order: a-z A-Z 0-9 & , . ? ! @ ( ) [ ] % { } / : ; $ # " ' space */
extern const char sd_chars[SD_NUM_CHARS + 1];

/* One operation that is not Compose. Argument meaning by op:
 *  CONSTSTR  a[0] = character index 0..82
 *  SUBSTR    a[0] = k1, a[1] = k2                      (-100..100)
 *  GETSPAN   a[0] = r1, a[1] = i1, a[2] = b1, a[3] = r2, a[4] = i2, a[5] = b2
 *  GETTOKEN  a[0] = type, a[1] = i                    (i in -5..-1, 1..5)
 *  TOCASE    a[0] = case
 *  REPLACE   a[0] = d1, a[1] = d2                      (delimiter indices 0..20)
 *  TRIM      -
 *  GETUPTO   a[0] = r
 *  GETFROM   a[0] = r
 *  GETFIRST  a[0] = type, a[1] = i
 *  GETALL    a[0] = type
 */
typedef struct sd_fn {
  uint8_t op;
  int16_t a[6];
} sd_fn;

/* An expression: fn alone, or Compose(fn, inner) when compose != 0 (fn is then
 * a nesting operation and inner a nesting or substring operation). */
typedef struct sd_expr {
  uint8_t compose;
  sd_fn fn;
  sd_fn inner;
} sd_expr;

typedef struct sd_prog {
  size_t n;
  sd_expr *e;  /* n expressions; owned by whoever filled the program */
  size_t cap;
} sd_prog;

/* Growable code-point string. */
typedef struct sd_str {
  uint32_t *c;
  size_t n, cap;
} sd_str;

/* ---- memory (plain malloc; these never exit) ---- */
void sd_prog_clear(sd_prog *p);              /* frees p->e, keeps p usable */
int sd_prog_push(sd_prog *p, const sd_expr *e); /* 0 ok, -1 out of memory */
void sd_str_free(sd_str *s);
int sd_str_reserve(sd_str *s, size_t n);     /* 0 ok, -1 out of memory */

/* ---- text <-> program ----
 * sd_parse: strict canonical text. On error returns -1 and writes
 * "column C: expected X" (1-based column) into err. Replaces *out's contents. */
int sd_parse(const char *text, size_t len, sd_prog *out, char *err, size_t errlen);
/* Canonical text, malloc'd and NUL-terminated in *text (length *len). 0 or -1 (OOM). */
int sd_print(const sd_prog *p, char **text, size_t *len);

/* ---- tokens <-> program ----
 * Appends ids (prefix order, then EOS) to a malloc'd growable array. */
int sd_to_tokens(const sd_prog *p, int32_t **ids, size_t *n, size_t *cap);
/* Reads ids up to EOS (or n). -1 with a message naming the token position on
 * malformed ids. */
int sd_from_tokens(const int32_t *ids, size_t n, sd_prog *out, char *err, size_t errlen);

/* ---- interpreter ---- */
/* Decode bytes to code points (lossless, see above). 0 or -1 (OOM). */
int sd_decode(const char *s, size_t len, sd_str *out);
/* Encode code points back to bytes, malloc'd, NUL-terminated. 0 or -1 (OOM). */
int sd_encode(const uint32_t *c, size_t n, char **out, size_t *len);
/* Evaluate one expression on input in[0..n), replacing out's contents. 0 or -1 (OOM). */
int sd_eval_expr(const sd_expr *e, const uint32_t *in, size_t n, sd_str *out);
/* Evaluate a program (concatenation). 0 or -1 (OOM). */
int sd_eval(const sd_prog *p, const uint32_t *in, size_t n, sd_str *out);

/* ---- random tasks (gen.c) ---- */
typedef struct sd_task {
  sd_prog prog;
  size_t n_examples;
  char **inputs, **outputs;  /* malloc'd NUL-terminated strings */
} sd_task;
void sd_task_free(sd_task *t);
/* Sample one task as the reference sampler does (spec "Random tasks").
 * Deterministic in seed. min_expr/max_expr: 1..10 by default; n_examples: 4.
 * 0 ok, -1 OOM or impossible options (message in err). */
int sd_generate(uint64_t seed, int min_expr, int max_expr, int n_examples, sd_task *out,
                char *err, size_t errlen);

/* ---- additions (implemented in strdsl.c / parse.c) ---- */
/* Notes on the implementation:
 *  - Trim strips exactly what Python's str.strip() strips: besides the
 *    ASCII/Latin-1 whitespace named above also U+1680, U+2000..U+200A, U+2028,
 *    U+2029, U+202F, U+205F and U+3000 (raw bytes SD_RAW_BYTE_BASE + b never).
 *  - sd_from_tokens messages name the 0-based position of the offending id:
 *    "token 3 (id 57, character 'Q'): expected ...". Ids after EOS are ignored;
 *    PAD and BOS are refused like any id out of place.
 *  - sd_eval_expr may evaluate in place (in == out->c); sd_eval's in must not
 *    point into out's buffer. Each expression grows out by at most max(n, 1).
 *  - sd_print of an empty program gives "" (sd_parse refuses "").
 */
/* Return codes: sd_parse, sd_from_tokens and sd_from_tokens_prefix return -1
 * for malformed input (message in err), SD_ENOMEM when memory runs out and
 * SD_ELIMIT for more than SD_MAX_EXPRS expressions (message in err).
 * sd_print and sd_to_tokens also return -1 for a program whose fields are out
 * of range (they never print or encode something that would not parse). */
#define SD_ENOMEM (-2)
#define SD_ELIMIT (-3)

/* Argument kinds; sd_op_arg[op][j] is the kind of argument j of op (op != COMPOSE). */
enum sd_argkind { SD_ARG_CHAR = 0, SD_ARG_DELIM, SD_ARG_INT, SD_ARG_INDEX, SD_ARG_TYPE,
                  SD_ARG_REGEX, SD_ARG_CASE, SD_ARG_BOUND };
extern const uint8_t sd_op_nargs[SD_NUM_OPS];
extern const uint8_t sd_op_arg[SD_NUM_OPS][6];
extern const char *const sd_op_names[SD_NUM_OPS];     /* "Compose", "ConstStr", ... */
extern const char *const sd_type_names[SD_NUM_TYPES]; /* "NUMBER", ... "CHAR" */
extern const char *const sd_case_names[SD_NUM_CASES]; /* "PROPER", "ALL_CAPS", "LOWER" */
int sd_op_is_nesting(int op);    /* GetToken ToCase Replace Trim GetUpto GetFrom GetFirst GetAll */
int sd_op_is_substring(int op);  /* SubStr GetSpan */
int sd_arg_valid(int kind, int v); /* 1 when v is in range for that kind of argument */
/* 1 when e is a well-formed expression (ops, Compose roles and all arguments in range). */
int sd_expr_valid(const sd_expr *e);

/* Index 0..82 of code point c in sd_chars, or -1 outside the alphabet. */
int sd_char_index(uint32_t c);
/* One step of sd_decode: decodes the code point at s[0..len) (len >= 1) into *cp
 * and returns the bytes it used (1..4). */
size_t sd_utf8_next(const unsigned char *s, size_t len, uint32_t *cp);
/* One step of sd_encode: writes cp's bytes into buf, returns their count (1..4). */
size_t sd_utf8_put(uint32_t cp, char buf[4]);

/* Like sd_from_tokens for a prefix of a program's ids (as in beam search):
 * ids[0..n) may stop inside an expression. *out receives the complete
 * expressions only; *ended = 1 when an EOS was reached (the program is then
 * complete), else 0. n = 0 is fine (no expressions). Same return codes. */
int sd_from_tokens_prefix(const int32_t *ids, size_t n, sd_prog *out, int *ended,
                          char *err, size_t errlen);

/* ---- exact solver (solve.c) ----
 * FlashFill-style enumeration: every expression is run on the example inputs
 * and kept only when its output on each example is a substring of that
 * example's output; expressions with the same outputs on all examples form one
 * class (a cheapest member represents it; up to SD_SOLVE_MEMBERS alternatives,
 * cheapest first, are kept). Programs are paths through the graph of output
 * positions (one position per example), enumerated best first by the prior:
 * fewest expressions, then the smallest sum of member costs. */
#define SD_SOLVE_MEMBERS 6          /* alternative members kept per class */
#define SD_SOLVE_MAX_LEN 1000       /* longest input or output (code points) */
#define SD_SOLVE_MAX_EXAMPLES 1000
#define SD_SOLVE_MAX_COST 63        /* per expression; the prior needs it */

/* Per-expression costs (lower is preferred). An expression costs op[its op]
 * (a Compose: op[SD_COMPOSE] + op[outer] + op[inner]) plus the extras below,
 * capped at SD_SOLVE_MAX_COST. */
typedef struct sd_solve_costs {
  int op[SD_NUM_OPS];
  int index;       /* per step of |i| - 1 of an index (GetToken, GetFirst, GetSpan) */
  int neg_index;   /* an index counted from the end (i < 0) */
  int regex[SD_NUM_TYPES + 1]; /* a type argument (GetToken, GetFirst, GetAll, GetUpto,
                                  GetFrom, GetSpan sides); [SD_NUM_TYPES]: a delimiter */
  int absent;      /* a type whose tokens the inputs do not seem to hold (see solve.c) */
  int substr_neg;  /* per SubStr position counted from the end (k <= 0) */
  int substr_far;  /* a SubStr position beyond the shortest input (clamped) */
} sd_solve_costs;
extern const sd_solve_costs sd_solve_default_costs;

typedef struct sd_solve_opts {
  int max_solutions;           /* >= 1 */
  double time_limit;           /* seconds of wall time, > 0 */
  int max_size;                /* most expressions per program, 1..SD_MAX_EXPRS */
  const sd_solve_costs *costs; /* NULL: sd_solve_default_costs */
  int self_check;              /* tests: check the solver's shortcuts with the interpreter */
} sd_solve_opts;

/* What one call did (for tests and benchmarks). */
typedef struct sd_solve_stats {
  size_t classes, inner_tuples, states, edges, reported;
  size_t mismatches;           /* shortcuts that disagreed with the interpreter (a bug if > 0;
                                  members always, Compose shortcuts with self_check) */
  double t_enum, t_graph, t_search;  /* seconds */
  int timed_out, truncated;    /* time limit reached; a budget (classes, states) exceeded */
} sd_solve_stats;

/* Called for each program, best first: prog and ids (ending with EOS) are
 * views valid during the call; prior = -(expressions + cost sum / 65536).
 * Non-zero stops the search (sd_solve then returns 0). */
typedef int (*sd_solve_fn)(void *ctx, const sd_prog *prog, const int32_t *ids, size_t n,
                           double prior);

/* Solves inputs[k] -> outputs[k], k < n_ex, reporting programs to fn in
 * non-increasing prior order (distinct, each consistent with every example)
 * until opts->max_solutions, opts->time_limit or exhaustion (*complete = 1:
 * every program of at most max_size expressions built from the kept members
 * was reported; in particular none exists when none was reported). stats may
 * be NULL. 0 ok; -1 bad arguments, SD_ELIMIT (an example over the limits) or
 * SD_ENOMEM, with a message in err. When every output is empty, the programs
 * are single expressions that output "" on every input (complete = 0). */
int sd_solve(const sd_str *inputs, const sd_str *outputs, size_t n_ex, const sd_solve_opts *opts,
             sd_solve_fn fn, void *ctx, int *complete, sd_solve_stats *stats, char *err,
             size_t errlen);

/* ---- prefix judgement for execution-guided search (prefix.c) ----
 * *ok = 0 when no program that starts with ids[0..n) can be consistent with
 * the examples (part 0 input, part 1 expected output, compared as bytes as the
 * plugin's check() does), else 1. Decides what the prefix already settles:
 * the complete expressions' outputs must be a prefix of each target (equal to
 * it after EOS), and an unfinished trailing expression must have a completion
 * of its open arguments whose output on every example k is exactly the next
 * piece of the target (out_k[p_k : p_k + len], p_k: what the complete
 * expressions output) - tried when there are at most
 * SD_PREFIX_MAX_COMPLETIONS completions, which holds for every expression
 * that cannot output "" whatever its open arguments are. With flags 0 it never
 * refuses a prefix of a consistent program. Malformed ids (and more than
 * SD_MAX_EXPRS expressions) give *ok = 0. A part that is NULL is read as ""
 * (its length must then be 0). Reentrant (no state between calls). 0, or
 * SD_ENOMEM.
 * flags SD_PREFIX_PRODUCTIVE (not exact): also refuses a prefix with an
 * expression that outputs "" on every example (unless every target is ""),
 * a trailing expression none of whose fitting completions outputs anything
 * (tried when at most SD_PREFIX_MAX_PRODUCTIVE), and any expression after
 * every target is complete. Dropping such expressions from a consistent
 * program keeps it consistent; the prefixes of the program without them are
 * accepted. */
#define SD_PREFIX_MAX_COMPLETIONS 512
#define SD_PREFIX_PRODUCTIVE 1u
#define SD_PREFIX_MAX_PRODUCTIVE 4096
struct lp_example; /* lpsynth/plugin.h */
int sd_prefix_check(const int32_t *ids, size_t n, const struct lp_example *ex, size_t n_ex,
                    unsigned flags, int *ok);

#endif

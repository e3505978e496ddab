/* lpsynth domain plugin ABI.
 *
 * A domain plugin is a shared object that exports exactly one symbol,
 * LP_PLUGIN_ENTRY_SYMBOL ("lp_plugin_entry"), of type lp_plugin_entry_fn. It
 * returns a pointer to a const, statically allocated lp_domain_desc that the
 * plugin owns for as long as it is loaded. The host never writes to it.
 *
 * A plugin links against nothing of the core: everything it needs from the
 * host (allocation, growable buffers, logging, error reporting) comes through
 * the lp_host_api table passed to create().
 *
 * VERSIONING RULE (append-only)
 *   - LP_PLUGIN_ABI_MAJOR changes only when an existing field changes meaning,
 *     type or position. The host refuses a plugin whose major differs.
 *   - LP_PLUGIN_ABI_MINOR grows when fields are appended at the END of
 *     lp_domain_desc or lp_host_api. Nothing is ever removed or reordered.
 *   - Every versioned struct starts with its size (struct_size). A reader
 *     treats fields that lie beyond the writer's struct_size as absent (NULL/0).
 *     So an old plugin runs on a new host (new optional slots read as NULL) and
 *     a new plugin runs on an old host (it must check host->struct_size before
 *     using a host slot newer than the ABI minor it needs: LP_HOST_HAS).
 *   - History: 1.1 appended extract_pairs, tokenizer_train; 1.2 solve; 1.3
 *     the host slot write_file_atomic; 1.4 wellformed.
 *   - The required part of lp_domain_desc ends at LP_DOMAIN_DESC_MIN_SIZE; a
 *     descriptor smaller than that is refused.
 *
 * OWNERSHIP
 *   - Strings returned as `const char *` by a plugin (names, token texts) are
 *     owned by the plugin and stay valid until destroy() of the instance (for
 *     per-instance data) or unload (for the descriptor).
 *   - lp_buf / lp_ids / lp_strs passed in are owned by the caller; a plugin
 *     only appends to them through the host API (which may reallocate them).
 *   - lp_err is caller-owned; a failing function fills it and returns < 0.
 *
 * THREADS: a domain instance may be used from several threads at once for the
 * const operations (encode/decode/execute/check/generate with distinct output
 * buffers). create/destroy are not concurrent with anything.
 */
#ifndef LPSYNTH_PLUGIN_H
#define LPSYNTH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LP_PLUGIN_ABI_MAJOR 1
#define LP_PLUGIN_ABI_MINOR 4
#define LP_PLUGIN_ENTRY_SYMBOL "lp_plugin_entry"

/* Status codes: 0 success, negative failure. */
enum {
  LP_OK = 0,
  LP_EINVAL = -1,  /* bad input: malformed program, text, option, file content */
  LP_ENOMEM = -2,  /* allocation failed */
  LP_EIO = -3,     /* file system or read/write error */
  LP_EUNSUP = -4,  /* the domain does not have this capability */
  LP_EABI = -5,    /* plugin / ABI / format version mismatch */
  LP_ELIMIT = -6   /* an input exceeds a documented limit */
};

/* Error report, owned by the caller. msg is NUL-terminated. */
#define LP_ERR_MSG_MAX 1024
typedef struct lp_err {
  int code;
  char msg[LP_ERR_MSG_MAX];
} lp_err;

/* Growable byte string. data is NUL-terminated whenever data != NULL, and may
 * contain NUL bytes before len. Memory comes from the host allocator. */
typedef struct lp_buf {
  char *data;
  size_t len, cap;
} lp_buf;

/* Growable sequence of token ids. */
typedef struct lp_ids {
  int32_t *data;
  size_t len, cap;
} lp_ids;

/* Growable list of byte strings. */
typedef struct lp_strs {
  lp_buf *items;
  size_t len, cap;
} lp_strs;

/* A view of one example of a specification: parts[0..n_parts-1].
 * For I/O specifications part 0 is the input and part 1 the output; for a
 * natural-language specification part 0 is the text (n_parts = 1). */
typedef struct lp_example {
  const char *part[2];
  size_t len[2];
} lp_example;

/* A vocabulary's size and special ids; -1 where the vocabulary has none. */
typedef struct lp_vocab_info {
  int32_t size;
  int32_t pad, bos, eos, unk;
} lp_vocab_info;

/* Options for generate(); 0 means "domain default". struct_size first. */
typedef struct lp_gen_opts {
  uint32_t struct_size;
  int32_t min_size;     /* smallest program size (domain units, e.g. expressions) */
  int32_t max_size;     /* largest program size */
  int32_t n_examples;   /* examples per task */
} lp_gen_opts;

/* A task: a program (token ids incl. EOS) and its specification, stored as a
 * flat list: example i part j is examples.items[i * n_parts + j]. Owned by the
 * caller; the plugin appends through the host API. */
typedef struct lp_task {
  lp_ids program;
  lp_strs examples;
  uint32_t n_parts;
} lp_task;

/* One (specification, program) pair found in a source file by extract_pairs()
 * (ABI 1.1), e.g. a docstring and the function it documents. A view, valid
 * only during the callback. Versioned: struct_size first (fields beyond the
 * writer's struct_size are absent). */
typedef struct lp_pair {
  uint32_t struct_size;
  uint32_t line;          /* 1-based line of the file where the program starts */
  const char *spec;       /* the specification text (e.g. the cleaned docstring) */
  size_t spec_len;
  const char *program;    /* the program text (e.g. the function without its docstring) */
  size_t program_len;
  const char *name;       /* the program's name (e.g. "Class.method"); may be NULL */
  size_t name_len;
} lp_pair;

/* Called by extract_pairs() for each pair, in file order. Return 0 to go on;
 * any other value stops the walk, and extract_pairs() returns that value
 * without touching err. */
typedef int (*lp_pair_fn)(void *ctx, const lp_pair *pair);

enum { LP_LOG_DEBUG = 0, LP_LOG_INFO = 1, LP_LOG_WARN = 2, LP_LOG_ERROR = 3 };

/* What the host gives a plugin. All functions are thread-safe. */
typedef struct lp_host_api {
  uint32_t struct_size;
  uint32_t abi_major, abi_minor;
  void *(*alloc)(size_t n);               /* NULL on failure */
  void *(*realloc)(void *p, size_t n);    /* NULL on failure, p untouched */
  void (*free)(void *p);                  /* free(NULL) is a no-op */
  /* Append n bytes to b (keeps NUL termination). LP_OK or LP_ENOMEM. */
  int (*buf_append)(lp_buf *b, const char *s, size_t n);
  /* Append one id. LP_OK or LP_ENOMEM. */
  int (*ids_push)(lp_ids *v, int32_t id);
  /* Append a copy of s[0..n). LP_OK or LP_ENOMEM. */
  int (*strs_push)(lp_strs *v, const char *s, size_t n);
  /* Log a message (printf format). */
  void (*log)(int level, const char *fmt, ...);
  /* Fill err (if not NULL) with code and a printf-formatted message; returns code. */
  int (*set_error)(lp_err *err, int code, const char *fmt, ...);

  /* ---- appended (ABI 1.3): check LP_HOST_HAS(host, write_file_atomic) first ---- */

  /* Write data[0..len) to path atomically: a temporary file PATH.tmp.PID
   * beside it, fsync, rename over path (readers see the old file or the new
   * one, never a part). First removes the temporary files of path that
   * killed processes left behind. LP_OK, or LP_ENOMEM / LP_EIO with a message
   * naming path in err. The file and data are the caller's. */
  int (*write_file_atomic)(const char *path, const void *data, size_t len, lp_err *err);
} lp_host_api;

/* 1 when the host table h has the slot `slot` (its struct_size covers it): a
 * plugin checks this before using a slot appended after the ABI minor it
 * requires, since an older host's table ends earlier. */
#define LP_HOST_HAS(h, slot) \
  ((h)->struct_size >= offsetof(lp_host_api, slot) + sizeof((h)->slot))

/* Capability flags: which optional functions the descriptor provides. */
enum {
  LP_CAP_EXECUTE = 1u << 0,   /* execute() */
  LP_CAP_CHECK = 1u << 1,     /* check() */
  LP_CAP_GENERATE = 1u << 2,  /* generate() */
  LP_CAP_ANONYMISE = 1u << 3, /* anonymise() */
  LP_CAP_PREFIX = 1u << 4,    /* prefix_ok() */
  LP_CAP_LENGTH = 1u << 5,    /* program_size() */
  LP_CAP_EXTRACT = 1u << 6,   /* extract_pairs() (ABI 1.1) */
  LP_CAP_TOKENIZER = 1u << 7, /* tokenizer_train() (ABI 1.1) */
  LP_CAP_SOLVE = 1u << 8,     /* solve() (ABI 1.2) */
  LP_CAP_WELLFORMED = 1u << 9 /* wellformed() (ABI 1.4) */
};

/* Options for solve() (ABI 1.2); 0 means "domain default". struct_size first:
 * a plugin reads only the fields that lie within the caller's struct_size. */
typedef struct lp_solve_opts {
  uint32_t struct_size;
  int32_t max_solutions;  /* stop after reporting this many programs (0: domain default) */
  double time_limit;      /* seconds of wall time for the whole call (<= 0: domain default) */
  int32_t max_size;       /* largest program size in the domain's unit (0: domain default) */
} lp_solve_opts;

/* Called by solve() for each program found, best first by the domain's own
 * prior. ids[0..n) is the program's token ids ending with EOS (a view, valid
 * only during the call); prior is the domain's log-prior score of it (higher
 * is better; the order of the calls never increases it). Return 0 to go on;
 * any other value stops the search, and solve() returns LP_OK. */
typedef int (*lp_solution_fn)(void *ctx, const int32_t *ids, size_t n, double prior);

typedef struct lp_domain_desc {
  uint32_t struct_size;  /* sizeof(lp_domain_desc) as the plugin was compiled */
  uint32_t abi_major;    /* LP_PLUGIN_ABI_MAJOR the plugin was compiled with */
  uint32_t abi_minor;    /* LP_PLUGIN_ABI_MINOR the plugin was compiled with */
  uint32_t caps;         /* LP_CAP_* flags */
  const char *name;        /* short name used by --domain, [a-z0-9_]+ */
  const char *version;     /* the plugin's own version, e.g. "1.0.0" */
  const char *description; /* one line */
  uint32_t spec_parts;     /* 2 for input/output examples, 1 for a text spec */
  uint32_t reserved0;

  /* ---- required (ABI 1.0) ---- */

  /* Make an instance. options: NULL or a domain-specific string (e.g. a model
   * file path). host stays valid for the instance's life. *self may be NULL
   * for a stateless domain. */
  int (*create)(const lp_host_api *host, const char *options, void **self, lp_err *err);
  /* Free an instance; destroy(NULL) is a no-op. */
  void (*destroy)(void *self);

  /* Program vocabulary. */
  int (*program_vocab)(void *self, lp_vocab_info *out);
  /* Text of token id, or NULL when id is out of range. Owned by the plugin. */
  const char *(*program_token)(void *self, int32_t id);
  /* Parse/tokenise program text into ids ending with EOS (appended to out).
   * Strict: malformed text fails with a message naming the column and what
   * was expected. */
  int (*program_encode)(void *self, const char *text, size_t len, lp_ids *out, lp_err *err);
  /* Print ids (EOS and anything after it ignored) as canonical program text
   * (appended to out). Fails when the ids are not a well-formed program. */
  int (*program_decode)(void *self, const int32_t *ids, size_t n, lp_buf *out, lp_err *err);

  /* Specification vocabulary. */
  int (*spec_vocab)(void *self, lp_vocab_info *out);
  const char *(*spec_token)(void *self, int32_t id);
  /* Encode one part (0 = input or text, 1 = output) of one example, appending
   * ids to out (no BOS/EOS). Characters outside the vocabulary map to the unk
   * id; *n_unknown (if not NULL) is increased by their count. */
  int (*spec_encode)(void *self, uint32_t part, const char *text, size_t len, lp_ids *out,
                     size_t *n_unknown, lp_err *err);

  /* ---- optional (ABI 1.0); NULL unless the matching LP_CAP_ flag is set ---- */

  /* Run a program (ids, EOS-terminated or not) on one input; appends the
   * output to out. Never fails on any input bytes; fails only on bad ids. */
  int (*execute)(void *self, const int32_t *ids, size_t n, const char *input, size_t len,
                 lp_buf *out, lp_err *err);
  /* *consistent = 1 when the program maps every example's part 0 to its part 1. */
  int (*check)(void *self, const int32_t *ids, size_t n, const lp_example *ex, size_t n_ex,
               int *consistent, lp_err *err);
  /* One random task from a seed (deterministic: same seed, same task). */
  int (*generate)(void *self, uint64_t seed, const lp_gen_opts *opts, lp_task *out,
                  lp_err *err);
  /* The program as the program encoder should read it (e.g. variables renamed
   * to ARG_i/VAR_i); appends ids to out. */
  int (*anonymise)(void *self, const int32_t *ids, size_t n, lp_ids *out, lp_err *err);
  /* For search: *ok = 0 when no completion of the prefix ids[0..n) can be
   * consistent with the examples, 1 when it still may be. */
  int (*prefix_ok)(void *self, const int32_t *ids, size_t n, const lp_example *ex,
                   size_t n_ex, int *ok, lp_err *err);
  /* Program size in the domain's unit (string domain: expressions). */
  int (*program_size)(void *self, const int32_t *ids, size_t n, int32_t *size, lp_err *err);

  /* ---- optional (ABI 1.1); NULL unless the matching LP_CAP_ flag is set ---- */

  /* Finds every (specification, program) pair in one source file text[0..len)
   * (path only names it in messages) and calls fn(ctx, pair) for each, in file
   * order. Fails with LP_EINVAL (and a message naming the line) when the text
   * is not a valid source file of the domain's language; no pair is reported
   * then. Needs no model: works on an instance created without options. */
  int (*extract_pairs)(void *self, const char *path, const char *text, size_t len, lp_pair_fn fn,
                       void *ctx, lp_err *err);
  /* Trains the domain's subword tokenizer on texts (specifications and
   * programs, each a whole text that may span lines) with vocab_size pieces
   * in all, and writes the model to out_path (atomically). The instance can
   * then be re-created with that path as its options. Not concurrent with
   * other calls (the trainer may adjust process-wide logging). */
  int (*tokenizer_train)(void *self, const lp_strs *texts, int32_t vocab_size,
                         const char *out_path, lp_err *err);

  /* ---- optional (ABI 1.2); NULL unless the matching LP_CAP_ flag is set ---- */

  /* Exact search: enumerates programs consistent with every example (part 0
   * -> part 1) and reports each to fn, best first by the domain's prior,
   * until opts->max_solutions were reported, the search space is exhausted,
   * fn returns non-zero or opts->time_limit passes. Every program reported
   * must pass check() on ex. *complete (if not NULL) is set to 1 when the
   * search ended because the space was exhausted (no consistent program was
   * left out), 0 otherwise. Finding no program is not an error (LP_OK, fn
   * never called). Fails only on bad arguments or memory. opts may be NULL. */
  int (*solve)(void *self, const lp_example *ex, size_t n_ex, const lp_solve_opts *opts,
               lp_solution_fn fn, void *ctx, int *complete, lp_err *err);

  /* ---- optional (ABI 1.4); NULL unless the matching LP_CAP_ flag is set ---- */

  /* Is the program (ids[0..n), EOS optional) well formed in the domain's own
   * language - for code, does its decoded text parse? *ok = 1 or 0. For
   * domains that cannot run programs: search ranks the programs that are
   * well formed above those that are not. Fails only on bad ids or memory. */
  int (*wellformed)(void *self, const int32_t *ids, size_t n, int *ok, lp_err *err);
} lp_domain_desc;

/* Size of the part every ABI-1 descriptor must have (through spec_encode). */
#define LP_DOMAIN_DESC_MIN_SIZE \
  (offsetof(lp_domain_desc, spec_encode) + sizeof(((lp_domain_desc *)0)->spec_encode))

/* The one exported symbol. Returns a descriptor owned by the plugin. */
typedef const lp_domain_desc *(*lp_plugin_entry_fn)(void);

#if defined(_WIN32)
#define LP_PLUGIN_EXPORT __declspec(dllexport)
#else
#define LP_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
}
#endif
#endif /* LPSYNTH_PLUGIN_H */

/* lpsynth runtime: the host side of the plugin ABI (loading domains, calling
 * them safely), growable buffers, and the robust JSONL reader.
 *
 * OWNERSHIP
 *   - lp_*_new / lp_*_open return objects the caller owns and releases with the
 *     matching lp_*_free; every lp_*_free(NULL) is a no-op.
 *   - lp_buf / lp_ids / lp_strs / lp_task / lp_record are caller-owned structs
 *     (zero-initialise them); their memory is released with lp_*_free, which
 *     leaves them zeroed and reusable.
 *   - `const char *` results point into the object they came from and stay
 *     valid until that object is freed.
 * ERRORS: functions that can fail return a negative LP_E* code (see plugin.h)
 * and fill the caller's lp_err (which may be NULL). Nothing here exits or
 * prints to stdout/stderr, except through the log hook (lp_set_log).
 */
#ifndef LPSYNTH_RUNTIME_H
#define LPSYNTH_RUNTIME_H

#include <stdio.h> /* FILE (lp_atomic_file) */

#include "lpsynth/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- clock ---- */
/* Monotonic seconds (CLOCK_MONOTONIC; for durations only). */
double lp_now(void);

/* ---- errors and logging ---- */
int lp_err_set(lp_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix an existing message: "<prefix>: <old message>". Returns err->code. */
int lp_err_prefix(lp_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Where plugin/host log messages go (default: stderr for WARN and above). */
typedef void (*lp_log_fn)(int level, const char *msg);
void lp_set_log(lp_log_fn fn, int min_level);

/* The host API table handed to plugins. Static; never freed. */
const lp_host_api *lp_host_api_get(void);

/* ---- buffers ---- */
int lp_buf_append(lp_buf *b, const char *s, size_t n);
int lp_ids_push(lp_ids *v, int32_t id);
int lp_strs_push(lp_strs *v, const char *s, size_t n);
void lp_buf_free(lp_buf *b);
void lp_ids_free(lp_ids *v);
void lp_strs_free(lp_strs *v);
void lp_task_free(lp_task *t);

/* ---- plugins ---- */
typedef struct lp_plugin lp_plugin; /* a loaded shared object */

/* Validate a descriptor as the loader does, naming `origin` (a file) in every
 * message. On success copies it into *out, with every field beyond the
 * plugin's struct_size zeroed. Refuses: NULL, a struct_size below
 * LP_DOMAIN_DESC_MIN_SIZE, an ABI major other than LP_PLUGIN_ABI_MAJOR, a
 * missing name/version/description, a name not [a-z0-9_]{1,63}, spec_parts
 * not 1 or 2, a NULL required function, a capability flag without its
 * function, unknown capability bits. */
int lp_desc_validate(const lp_domain_desc *d, const char *origin, lp_domain_desc *out,
                     lp_err *err);

/* Load a plugin by name ("string": looked up as lpsynth_<name>.so on the
 * search path) or by path (anything containing '/' or ending in ".so").
 * dlopen(RTLD_NOW | RTLD_LOCAL); the entry symbol is checked and the
 * descriptor validated. Returns NULL and fills err on failure. */
lp_plugin *lp_plugin_load(const char *name_or_path, lp_err *err);
void lp_plugin_free(lp_plugin *p);
/* The validated copy of the plugin's descriptor (owned by p). */
const lp_domain_desc *lp_plugin_desc(const lp_plugin *p);
const char *lp_plugin_path(const lp_plugin *p);

/* The plugin search path, in order: every folder of $LPSYNTH_PLUGIN_PATH
 * (':'-separated), the "plugins" folder beside the running executable, the
 * installed plugin folder relative to the executable (../lib/lpsynth/plugins),
 * the build tree's plugin folder, the install prefix's plugin folder.
 * Returns the number of folders written to dirs (at most max), each a
 * pointer into static or environment storage valid until the next call. */
size_t lp_plugin_search_path(const char **dirs, size_t max);

typedef struct lp_plugin_info {
  char *path;        /* the file */
  char *name, *version, *description; /* NULL when the plugin was refused */
  uint32_t caps, abi_major, abi_minor;
  char *error;       /* NULL when loaded fine; else why it was refused */
} lp_plugin_info;
/* Every lpsynth_*.so on the search path (first of each file name wins). */
int lp_plugin_list(lp_plugin_info **out, size_t *n, lp_err *err);
void lp_plugin_list_free(lp_plugin_info *v, size_t n);

/* ---- domains: a plugin plus an instance of it ---- */
typedef struct lp_domain lp_domain;
/* Load (see lp_plugin_load) and create an instance with options (may be NULL). */
lp_domain *lp_domain_open(const char *name_or_path, const char *options, lp_err *err);
void lp_domain_free(lp_domain *d);
const lp_domain_desc *lp_domain_desc_of(const lp_domain *d);
const char *lp_domain_name(const lp_domain *d);
const char *lp_domain_path(const lp_domain *d);
int lp_domain_has(const lp_domain *d, uint32_t cap);
/* Names of capability bits, e.g. "execute,check,generate". Static storage per call site:
 * writes into buf (size n) and returns buf. */
const char *lp_caps_string(uint32_t caps, char *buf, size_t n);

/* Wrappers over the descriptor. They check the capability (LP_EUNSUP with a
 * message naming the domain when absent), clear nothing (they append), and
 * make sure a failing plugin always leaves a message in err. */
int lp_domain_program_vocab(lp_domain *d, lp_vocab_info *out);
const char *lp_domain_program_token(lp_domain *d, int32_t id);
int lp_domain_program_encode(lp_domain *d, const char *text, size_t len, lp_ids *out, lp_err *err);
int lp_domain_program_decode(lp_domain *d, const int32_t *ids, size_t n, lp_buf *out, lp_err *err);
int lp_domain_spec_vocab(lp_domain *d, lp_vocab_info *out);
int lp_domain_spec_encode(lp_domain *d, uint32_t part, const char *text, size_t len, lp_ids *out,
                          size_t *n_unknown, lp_err *err);
int lp_domain_execute(lp_domain *d, const int32_t *ids, size_t n, const char *in, size_t len,
                      lp_buf *out, lp_err *err);
int lp_domain_check(lp_domain *d, const int32_t *ids, size_t n, const lp_example *ex,
                    size_t n_ex, int *consistent, lp_err *err);
int lp_domain_generate(lp_domain *d, uint64_t seed, const lp_gen_opts *opts, lp_task *out,
                       lp_err *err);
int lp_domain_program_size(lp_domain *d, const int32_t *ids, size_t n, int32_t *size, lp_err *err);
int lp_domain_anonymise(lp_domain *d, const int32_t *ids, size_t n, lp_ids *out, lp_err *err);
int lp_domain_prefix_ok(lp_domain *d, const int32_t *ids, size_t n, const lp_example *ex,
                        size_t n_ex, int *ok, lp_err *err);
/* ABI 1.1. extract_pairs: every (specification, program) pair of one source
 * file, passed to fn in file order (see lp_domain_desc.extract_pairs); a
 * non-zero return of fn stops the walk and is returned as is. LP_EINVAL: the
 * text is not a valid source file of the domain (nothing was reported). */
int lp_domain_extract_pairs(lp_domain *d, const char *path, const char *text, size_t len,
                            lp_pair_fn fn, void *ctx, lp_err *err);
/* ABI 1.1. Train the domain's tokenizer on texts and write the model to out_path. */
int lp_domain_tokenizer_train(lp_domain *d, const lp_strs *texts, int32_t vocab_size,
                              const char *out_path, lp_err *err);

/* ABI 1.2. solve: the domain's exact search for programs consistent with ex
 * (see lp_domain_desc.solve); each found program goes to fn, best first by
 * the domain's prior. LP_EUNSUP when the domain has no solver. */
int lp_domain_solve(lp_domain *d, const lp_example *ex, size_t n_ex, const lp_solve_opts *opts,
                    lp_solution_fn fn, void *ctx, int *complete, lp_err *err);

/* ABI 1.4. wellformed: *ok = 1 when the program is well formed in the
 * domain's language (python: its text parses), else 0. LP_EUNSUP when the
 * domain cannot tell. */
int lp_domain_wellformed(lp_domain *d, const int32_t *ids, size_t n, int *ok, lp_err *err);

/* Seed of the i-th task of a run with base seed s (splitmix64 of s and i):
 * tasks are independent, so any subset can be regenerated or made in parallel. */
uint64_t lp_task_seed(uint64_t base, uint64_t i);

/* ---- JSONL reading ----
 * Reads a file (or stdin for "-") line by line. A line longer than max_line
 * bytes is reported as an LP_ELIMIT error for that line (the rest of it is
 * skipped) and reading goes on. */
typedef struct lp_jsonl lp_jsonl;
#define LP_JSONL_DEFAULT_MAX_LINE ((size_t)64 << 20)
lp_jsonl *lp_jsonl_open(const char *path, size_t max_line, lp_err *err);
/* Read from memory (not copied: data must outlive the reader). */
lp_jsonl *lp_jsonl_open_mem(const char *data, size_t len, size_t max_line, lp_err *err);
void lp_jsonl_free(lp_jsonl *r);
/* Next non-empty line (without the newline; a trailing '\r' is dropped).
 * Returns 1 and sets *line and *len (valid until the next call) and *lineno
 * (1-based), 0 at end of input, or a negative code for this line (too long,
 * read error) with *lineno set: after LP_ELIMIT the caller may go on. */
int lp_jsonl_next(lp_jsonl *r, const char **line, size_t *len, size_t *lineno, lp_err *err);

/* One parsed task line: {"program": str, "tokens": [int], "inputs": [str],
 * "outputs": [str], ...}, or a docstring/code pair as `lpsynth corpus` writes
 * it: {"docstring": str, "code": str, "split": str, ...}. Every field is
 * optional at this level; callers require what they need (lp_record_require).
 * A field that is present must have its type ("field \"code\" must be a
 * string"). Strings may hold NUL bytes. */
typedef struct lp_record {
  void *json;          /* the parsed object (a jansson json_t *), owned */
  const char *program; /* into json, or NULL */
  size_t program_len;
  lp_ids tokens;
  int has_tokens, has_inputs, has_outputs;
  lp_strs inputs, outputs;
  /* appended: pairs files (into json, or NULL) */
  const char *docstring, *code, *split;
  size_t docstring_len, code_len, split_len;
  /* appended: examples kept out of the specification, to test generalisation:
   * "held_inputs" / "held_outputs" (both or neither, the same length) */
  lp_strs held_inputs, held_outputs;
  int has_held;
} lp_record;
enum { LP_REC_PROGRAM = 1, LP_REC_TOKENS = 2, LP_REC_INPUTS = 4, LP_REC_OUTPUTS = 8,
       LP_REC_DOCSTRING = 16, LP_REC_CODE = 32, LP_REC_SPLIT = 64 };
/* Parse one line. The message says what is wrong ("field \"inputs\": element 3
 * is not a string", "invalid JSON at column 17: ..."). */
int lp_record_parse(const char *line, size_t len, lp_record *rec, lp_err *err);
/* LP_EINVAL naming the first missing field among `fields` (LP_REC_* bits). */
int lp_record_require(const lp_record *rec, unsigned fields, lp_err *err);
void lp_record_free(lp_record *rec);

/* ---- files ---- */
/* Write data to path atomically: a temp file beside it (PATH.tmp.PID), fsync,
 * rename. First removes the stale temp files of PATH (lp_tmp_sweep). Plugins
 * get this function as the host table's write_file_atomic (ABI 1.3). */
int lp_write_file_atomic(const char *path, const void *data, size_t len, lp_err *err);
/* The same writer for output made piece by piece (the one implementation:
 * lp_write_file_atomic is open + fwrite + commit). lp_atomic_open sweeps
 * path's stale temp files and creates PATH.tmp.PID (mode 0644 less the
 * umask); write to o->f with stdio; lp_atomic_commit flushes, fsyncs, closes
 * and renames it over path; lp_atomic_abort closes and removes it (no-op on a
 * zeroed or finished o). Each leaves *o zeroed when it returns, success or
 * not, so nothing is left to free. LP_OK, LP_EINVAL (no path), LP_ENOMEM,
 * LP_EIO with "PATH: cannot create temporary file: ...", "PATH: write
 * failed: ...", "PATH: fsync/close failed: ..." or "PATH: rename failed: ...". */
typedef struct lp_atomic_file {
  FILE *f;          /* the temporary file, open for writing (owned) */
  char *path, *tmp; /* owned copies of the names */
} lp_atomic_file;
int lp_atomic_open(lp_atomic_file *o, const char *path, lp_err *err);
int lp_atomic_commit(lp_atomic_file *o, lp_err *err);
void lp_atomic_abort(lp_atomic_file *o);
/* Removes the temporary files PATH.tmp.PID beside path that a process killed
 * while writing path left behind: those whose PID is not a running process
 * (kill(PID, 0) fails with ESRCH; never this process's own). A PID that was
 * reused by another process keeps its file until a later sweep. Returns how
 * many were removed (errors are ignored: it is housekeeping). */
size_t lp_tmp_sweep(const char *path);

#ifdef __cplusplus
}
#endif
#endif

/* Internals of the python domain shared by the plugin and its tests: text
 * mapping for SentencePiece, pair extraction and anonymisation with
 * tree-sitter. Plain C11; scratch memory from malloc; nothing prints. */
#ifndef LPSYNTH_PY_INT_H
#define LPSYNTH_PY_INT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { PY_OK = 0, PY_EPARSE = -1, PY_ENOMEM = -2 };

/* Growable byte string (malloc); data is NUL-terminated when not NULL. */
typedef struct py_buf {
  char *data;
  size_t len, cap;
} py_buf;
int py_buf_put(py_buf *b, const void *s, size_t n); /* PY_OK or PY_ENOMEM */
void py_buf_free(py_buf *b);

/* 1 when s[0..n) is valid UTF-8 (no overlongs, surrogates or code points
 * above U+10FFFF); else 0 and *bad (if not NULL) is the offset of the first
 * bad byte. */
int py_utf8_valid(const char *s, size_t n, size_t *bad);

/* ---- SentencePiece text mapping (pytext.c) ----
 * SentencePiece reads one sentence per line and turns spaces into U+2581, so
 * before it sees a text: '\n' becomes PY_NL (U+E000) and '\t' PY_TAB (U+E001),
 * both user-defined symbols of the model (one token each); a literal U+2581,
 * U+E000, U+E001 or U+E002 is escaped as PY_ESC (U+E002) followed by 'a',
 * 'b', 'c' or 'd'. py_unmap_text undoes it exactly, so for valid UTF-8 t:
 * unmap(map(t)) == t. */
#define PY_NL "\xee\x80\x80"  /* U+E000 */
#define PY_TAB "\xee\x80\x81" /* U+E001 */
#define PY_ESC "\xee\x80\x82" /* U+E002 */
int py_map_text(const char *s, size_t n, py_buf *out);
int py_unmap_text(const char *s, size_t n, py_buf *out);

/* Names of the placeholder symbols: ARG_0..ARG_{PY_N_ARG_SYMS-1} and
 * VAR_0..VAR_{PY_N_VAR_SYMS-1} are user-defined symbols of the model. */
#define PY_N_ARG_SYMS 16
#define PY_N_VAR_SYMS 64

/* ---- pair extraction (extract.c) ---- */
typedef struct py_pair {
  size_t line; /* 1-based line of the first decorator or of "def" */
  const char *doc;
  size_t doc_len; /* the cleaned docstring */
  const char *code;
  size_t code_len; /* the function without docstring and comments, dedented */
  const char *name;
  size_t name_len; /* "f", "Class.method", "Outer.Inner.method" */
  size_t too_long; /* 0; else the function is that many lines (or bytes, see
                      too_long_bytes) over the limit: doc and code are NULL, and
                      the callback is told so it can report the skip */
  int too_long_bytes; /* 1: too_long counts bytes (PY_MAX_FUNC_BYTES), 0: lines */
} py_pair;

/* Longest function extracted: a longer one (generated tables, say) is
 * skipped before its code is cleaned and parsed again - never a training
 * pair anyway (models take hundreds of tokens), and the two passes over a
 * 300,000-line function took half a gigabyte. */
#define PY_MAX_FUNC_LINES 2000
#define PY_MAX_FUNC_BYTES ((size_t)256 << 10)
typedef int (*py_pair_cb)(void *ctx, const py_pair *p);

typedef struct py_extract_info {
  size_t functions;      /* function definitions visited (module and class level) */
  size_t with_docstring; /* of which with a non-empty str docstring */
  size_t emitted;        /* pairs passed to the callback */
  size_t only_docstring; /* skipped: the body is nothing but the docstring */
  size_t broken;         /* skipped: the cleaned code did not parse (should be 0) */
  size_t too_long;       /* skipped: longer than PY_MAX_FUNC_LINES / _BYTES */
  size_t err_line, err_col; /* PY_EPARSE: 1-based position of the first error */
  char err_what[96];        /* PY_EPARSE: "syntax error", "unterminated string literal",
                               "Python 2 print statement", ... */
} py_extract_info;

/* Finds every function (at module level, in classes, and in module-level
 * if/try/with/for/while blocks; not inside other functions) whose body starts
 * with a str docstring and has at least one more statement, and calls cb for
 * each in file order (a function over PY_MAX_FUNC_LINES / _BYTES: cb with
 * too_long set and no doc or code). Returns PY_OK, PY_EPARSE (the file has a syntax error
 * or Python-2-only syntax; info->err_* say where; cb was not called),
 * PY_ENOMEM, or cb's non-zero return. info may be NULL. */
int py_extract(const char *src, size_t len, py_pair_cb cb, void *ctx, py_extract_info *info);

/* Cleans a docstring's value (already decoded from its literal): every line
 * stripped of surrounding whitespace, blank lines dropped, joined by '\n'. */
int py_clean_docstring(const char *s, size_t n, py_buf *out);
/* The value of a Python str literal's source text (prefix, quotes, escapes),
 * e.g. "'a\\tb'" -> "a<TAB>b"; escapes of U+0000 (and \N{...}, unknown
 * escapes) stay as written, so the value has no NUL byte. Returns PY_OK,
 * PY_EPARSE (not a str literal: bytes or f-string) or PY_ENOMEM. */
int py_string_value(const char *lit, size_t n, py_buf *out);

/* ---- anonymisation (anon.c) ---- */
enum {
  PY_ANON_OK = 0,          /* anonymised (possibly with nothing to rename) */
  PY_ANON_UNPARSABLE = 1,  /* tree-sitter found errors: kept as is */
  PY_ANON_NOT_FUNCTION = 2,/* the text is not one (decorated) function definition */
  PY_ANON_CONFLICT = 3,    /* it already uses names like ARG_0 / VAR_3: kept as is */
  PY_ANON_TOO_DEEP = 4     /* nested deeper than the walker allows: kept as is */
};
typedef struct py_anon_info {
  int status;       /* PY_ANON_* */
  int n_args;       /* parameters renamed ARG_i */
  int n_vars;       /* other names renamed VAR_i */
  size_t n_renamed; /* identifier occurrences replaced */
} py_anon_info;
/* Appends to out the function src[0..len) with its i-th parameter renamed
 * ARG_i and its other local names VAR_i (see plugins/python/README.md for the
 * rules), or src unchanged when info->status != PY_ANON_OK. Returns PY_OK or
 * PY_ENOMEM. */
int py_anonymise(const char *src, size_t len, py_buf *out, py_anon_info *info);

/* *ok = 1 when src[0..len) parses as Python with no error node (tree-sitter),
 * else 0 (also for an empty or blank text). Returns PY_OK or PY_ENOMEM. */
int py_parses(const char *src, size_t len, int *ok);

/* The tree-sitter grammar (fetched at build time, compiled in). */
struct TSLanguage;
const struct TSLanguage *tree_sitter_python(void);

#ifdef __cplusplus
}
#endif
#endif

/* A small C API over SentencePiece 0.1.97 (C++17), for the python domain.
 *
 * Every function catches every C++ exception: nothing is ever thrown across
 * this boundary. Failures return a negative status (PY_SPM_*) and write a
 * one-line message into msg[0..msg_len) (NUL-terminated, may be truncated).
 * Memory handed back (ids, text, model bytes) comes from malloc(); the caller
 * releases it with free().
 *
 * Thread safety: a loaded model is immutable; encode/decode/piece lookups on
 * one model may run concurrently. Training sets SentencePiece's process-wide
 * log level for its duration and is not concurrent with anything.
 */
#ifndef LPSYNTH_PY_SPM_H
#define LPSYNTH_PY_SPM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  PY_SPM_OK = 0,
  PY_SPM_EINVAL = -1, /* bad argument, bad model file, SentencePiece refused the input */
  PY_SPM_ENOMEM = -2, /* std::bad_alloc or malloc failed */
  PY_SPM_EIO = -3     /* file could not be read */
};

typedef struct py_spm py_spm; /* a loaded model */

/* Loads a model file. *out is NULL on failure. */
int py_spm_load(const char *path, py_spm **out, char *msg, size_t msg_len);
/* Loads a model from its serialized bytes (what py_spm_train returns). */
int py_spm_load_bytes(const char *data, size_t len, py_spm **out, char *msg, size_t msg_len);
void py_spm_free(py_spm *m);

/* Number of pieces; the special ids (-1 when the model has none). */
int32_t py_spm_size(const py_spm *m);
int32_t py_spm_pad_id(const py_spm *m);
int32_t py_spm_bos_id(const py_spm *m);
int32_t py_spm_eos_id(const py_spm *m);
int32_t py_spm_unk_id(const py_spm *m);

/* The piece text of id (as stored: "\xe2\x96\x81" for a space, "<0x0A>" for
 * a byte piece), valid as long as the model; NULL when id is out of range. */
const char *py_spm_piece(const py_spm *m, int32_t id);
/* The id of the piece s[0..len), or -1 when the model has no such piece. */
int32_t py_spm_piece_id(const py_spm *m, const char *s, size_t len);
/* 1 when id is a byte piece / a control symbol (PAD, BOS, EOS). */
int py_spm_is_byte(const py_spm *m, int32_t id);
int py_spm_is_control(const py_spm *m, int32_t id);

/* Segments text[0..len) (no BOS/EOS added): *ids (malloc) holds *n ids. */
int py_spm_encode(const py_spm *m, const char *text, size_t len, int32_t **ids, size_t *n,
                  char *msg, size_t msg_len);
/* Joins ids back into text: *text (malloc, NUL-terminated) holds *len bytes.
 * Every id must be in range; control ids decode to nothing. */
int py_spm_decode(const py_spm *m, const int32_t *ids, size_t n, char **text, size_t *len,
                  char *msg, size_t msg_len);

/* Trains a model on sentences[0..n) (each a whole sentence; they may contain
 * any byte but are usually pre-mapped by the caller). kv is a NULL-terminated
 * list of alternating trainer flag names and values, as spm_train takes them
 * without the leading "--" (e.g. "vocab_size", "8000", "model_type",
 * "unigram", NULL). The serialized model is returned in *model (malloc) of
 * *model_len bytes; nothing is written to disk. */
int py_spm_train(const char *const *sentences, const size_t *lens, size_t n,
                 const char *const *kv, unsigned seed, char **model, size_t *model_len,
                 char *msg, size_t msg_len);

#ifdef __cplusplus
}
#endif
#endif

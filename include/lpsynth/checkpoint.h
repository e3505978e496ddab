/* lpsynth checkpoints: one file holding a model (its config text and
 * parameters), the optimiser state, the model's non-gradient state, the
 * training position (step, dropout RNG, task stream) and free-form metadata,
 * so that training resumes exactly where it stopped.
 *
 * FILE FORMAT (versions 1 and 2; every integer little-endian, fixed width;
 * floats are IEEE-754 binary32 bit patterns stored as u32, doubles binary64
 * as u64)
 *
 *   offset 0   "LPSYNCKP"                 8 bytes, the magic
 *          8   u32 format version         LP_CKPT_VERSION (1): the parameters
 *                                         in PARM; LP_CKPT_VERSION_HALF (2):
 *                                         in PR16 (so that a reader that
 *                                         knows only version 1 refuses the
 *                                         file by its version)
 *         12   u32 reserved (0)
 *         16   u64 file length            bytes, including the checksum
 *         24   sections, each: u32 tag (4 ASCII bytes, e.g. "CONF" read as
 *              bytes), u32 reserved (0), u64 payload length, payload
 *    len - 4   u32 CRC-32C (Castagnoli) of bytes [0, len - 4)
 *
 *   CONF  the model config as canonical `key = value` text (models/CONFIG.md)
 *   DOMN  u32 n + the domain name; u64 vocabulary fingerprint; u32 spec
 *         parts; the spec then the program vocabulary as 5 x i32 (size, pad,
 *         bos, eos, unk)
 *   LAYT  u64 tensor count; per tensor: u32 n + name, u32 ndim, ndim x u32
 *         shape (offsets follow from the order)
 *   TPOS  i64 step, u64 dropout RNG state, u64 init seed, u32 data kind
 *         (0 generated, 1 file), u32 reserved, u64 data seed, u64 next task
 *         index, f64 training seconds so far, 3 x i32 generator options
 *         (min_size, max_size, n_examples; 0 = the domain's default), u32
 *         reserved
 *   PARM  (version 1 only) u64 n, n x f32 parameters (n = the layout's
 *         total)
 *   PR16  (version 2 only, instead of PARM: `lpsynth ckpt strip --half`)
 *         u64 n, u32 storage (1 = IEEE-754 binary16 "fp16", 2 = bfloat16
 *         "bf16"), u32 reserved (0), n x u16 parameters as 16-bit patterns,
 *         rounded to nearest, ties to even, from fp32 (finite only: no NaN or
 *         infinity; fp16 holds |x| <= 65504 only, a writer refuses larger
 *         values rather than saturate). Readers widen them to fp32 exactly,
 *         so every consumer sees fp32 parameters (lp_ckpt.params)
 *   ADAM  i64 t, u64 n (0: no optimiser state, always so in version 2; or
 *         the parameters' n), n x f32 m, n x f32 v
 *   MSTA  u64 n, n x f32 non-gradient model state (lp_model_state)
 *   META  free-form UTF-8 text (e.g. JSON of the command line)
 *   STAT  (optional; absent in older files, read as empty) the training
 *         statistics a resumed run continues from, so that it reports what
 *         training straight through reports: u64 n (steps recorded), u32 k =
 *         min(n, LP_TRAIN_HIST_N), u32 reserved, k x f64 loss, k x f64 token
 *         accuracy (ring slots: the i-th recorded step is in slot
 *         i % LP_TRAIN_HIST_N), i64 steps in the CSV window since the last
 *         log row, 9 x f64 the window's sums (loss, accuracy, gradient norm,
 *         program, latent, commitment and end-to-end losses, perplexity,
 *         latent accuracy; files written before 2026-12-07 hold the first 8)
 *
 * Readers refuse a file that is shorter than its header says (truncated),
 * lacks the magic (not a checkpoint), has another format version, fails the
 * checksum (corrupted), lacks a section (but STAT; PARM or PR16 as its
 * version says), or holds a field no writer makes (a domain name that is
 * not [a-z0-9_]+, spec parts other than 1 or 2, a vocabulary size outside
 * 1..LP_CKPT_MAX_VOCAB or a special id outside it, a bad tensor name or
 * shape, counts that disagree, PARM and PR16 both or the one its version
 * does not name, an unknown 16-bit storage, a 16-bit NaN or infinity);
 * unknown section tags are skipped. Writers write version 1 unless the
 * parameters are stored in 16 bits, to a temporary file, fsync and rename.
 *
 * Every message names the file. Library code: never prints or exits.
 */
#ifndef LPSYNTH_CHECKPOINT_H
#define LPSYNTH_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "lpsynth/engine.h"
#include "lpsynth/model.h"
#include "lpsynth/plugin.h"
#include "lpsynth/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP_CKPT_MAGIC "LPSYNCKP"
#define LP_CKPT_VERSION 1u      /* files with fp32 parameters (PARM) */
#define LP_CKPT_VERSION_HALF 2u /* files with 16-bit parameters (PR16) */

/* How a checkpoint stores its parameters (lp_ckpt.param_prec); the values in
 * memory are always fp32. */
typedef enum lp_ckpt_prec {
  LP_CKPT_FP32 = 0, /* PARM, version 1 */
  LP_CKPT_FP16 = 1, /* PR16 storage 1: IEEE binary16, |x| <= 65504 */
  LP_CKPT_BF16 = 2  /* PR16 storage 2: bfloat16 */
} lp_ckpt_prec;
/* "fp32", "fp16", "bf16" ("?" for anything else). */
const char *lp_ckpt_prec_name(int prec);

/* CRC-32C (Castagnoli, reflected, init and final xor 0xFFFFFFFF) of
 * data[0..n), continuing from crc (pass 0 to start). */
uint32_t lp_crc32c(uint32_t crc, const void *data, size_t n);

/* ---------------------------------------------------------------------- */
/* The domain a checkpoint belongs to.                                     */

#define LP_CKPT_DOMAIN_NAME_MAX 64
/* Readers refuse vocabularies larger than this (a damaged size). */
#define LP_CKPT_MAX_VOCAB (1 << 24)
typedef struct lp_ckpt_domain {
  char name[LP_CKPT_DOMAIN_NAME_MAX]; /* lp_domain_name */
  uint64_t vocab_fp;                  /* lp_vocab_fingerprint */
  uint32_t n_parts;                   /* spec parts (1 or 2) */
  lp_vocab_info spec, prog;           /* sizes and special ids */
} lp_ckpt_domain;

/* FNV-1a 64 over the domain's spec-part count, both vocabularies' sizes and
 * special ids, the text of every program token (lp_domain_program_token) and
 * the spec encoding of every single byte 0..255 of every part (the runtime
 * has no spec-token accessor; for character vocabularies this is the whole
 * mapping). Changes whenever a token's id or text changes. */
int lp_vocab_fingerprint(lp_domain *d, uint64_t *fp, lp_err *err);
/* Name, fingerprint, vocabularies and spec parts of an open domain. */
int lp_ckpt_domain_of(lp_domain *d, lp_ckpt_domain *out, lp_err *err);

/* ---------------------------------------------------------------------- */
/* Where training stands.                                                  */

enum { LP_DATA_GENERATED = 0, LP_DATA_FILE = 1 };

/* Steps whose loss the summary's mean is over; sums of the CSV window. */
#define LP_TRAIN_HIST_N 100
#define LP_TRAIN_WIN_SUMS 9

typedef struct lp_train_pos {
  int64_t step;        /* optimiser steps completed (= Adam's t) */
  uint64_t rng_state;  /* the dropout lp_rng after the last step */
  uint64_t init_seed;  /* seed the parameters were initialised from */
  uint32_t data_kind;  /* LP_DATA_GENERATED or LP_DATA_FILE */
  uint64_t data_seed;  /* generated: task i has seed lp_task_seed(data_seed, i) */
  uint64_t next_task;  /* index of the next task to train on (file: counts records, cycled) */
  double seconds;      /* training wall time so far */
  int32_t gen_min_size, gen_max_size, gen_n_examples; /* generator options (lp_gen_opts) */
  /* STAT: the statistics of the steps so far (what the summary's and the
   * progress line's means and the next CSV row are made of). hist_n steps
   * were recorded; the i-th (from 0) is in slot i % LP_TRAIN_HIST_N. */
  uint64_t hist_n;
  double hist_loss[LP_TRAIN_HIST_N], hist_acc[LP_TRAIN_HIST_N];
  int64_t win_n;   /* steps since the last CSV row */
  double win[LP_TRAIN_WIN_SUMS]; /* their sums: loss, token accuracy, gradient norm,
                                    program, latent, commitment and end-to-end
                                    losses, codebook perplexity, latent
                                    accuracy (absent in checkpoints before
                                    2026-12-07: read as 0) */
} lp_train_pos;

/* ---------------------------------------------------------------------- */
/* The format level: every field as plain data.                            */

typedef struct lp_ckpt {
  uint32_t version;      /* read: the file's version */
  char *config_text;     /* NUL-terminated */
  lp_ckpt_domain domain;
  lp_layout *layout;     /* names and shapes (read: built with init ZEROS) */
  lp_train_pos pos;
  size_t n_params;       /* = lp_layout_numel(layout) */
  float *params;         /* [n_params] (read: NULL with LP_CKPT_INFO_ONLY) */
  int param_prec;        /* lp_ckpt_prec: how the file stores params (read: the
                            file's, params widened to fp32; encode: rounds
                            params to it, refusing NaN, infinity and values
                            out of its range) */
  int64_t adam_t;
  size_t n_adam;         /* 0 (no optimiser state) or n_params */
  float *adam_m, *adam_v;/* [n_adam] */
  size_t n_state;
  float *state;          /* [n_state], NULL when n_state = 0 */
  char *metadata;        /* NUL-terminated, may be "" */
  size_t file_size;      /* read: bytes */
} lp_ckpt;

/* Encode c (its pointers are borrowed) into a new malloc'd buffer; c->version
 * is ignored (the file's follows c->param_prec). */
int lp_ckpt_encode(const lp_ckpt *c, unsigned char **data, size_t *len, lp_err *err);
/* Encode and write atomically (temp file beside path, fsync, rename). */
int lp_ckpt_write(const char *path, const lp_ckpt *c, lp_err *err);

/* Flags of lp_ckpt_read / lp_ckpt_decode. */
enum { LP_CKPT_INFO_ONLY = 1 /* verify everything, but keep no arrays */ };
/* Decode data[0..len) (origin names it in messages) into *out (zeroed
 * first; owned: release with lp_ckpt_free). */
int lp_ckpt_decode(const unsigned char *data, size_t len, const char *origin, unsigned flags,
                   lp_ckpt *out, lp_err *err);
/* Read and decode a file. */
int lp_ckpt_read(const char *path, unsigned flags, lp_ckpt *out, lp_err *err);
/* Frees what lp_ckpt_read / lp_ckpt_decode allocated and zeroes *c. Only for
 * structs filled by those (not for a caller-assembled struct). */
void lp_ckpt_free(lp_ckpt *c);

/* Refuses (LP_EINVAL naming origin) a checkpoint of another domain or with
 * other vocabularies than `expect`. */
int lp_ckpt_check_domain(const lp_ckpt *c, const char *origin, const lp_ckpt_domain *expect,
                         lp_err *err);
/* Refuses (LP_EINVAL naming origin and the first differing tensor) when the
 * checkpoint's layout `have` differs from `want` in names, order or shapes. */
int lp_ckpt_check_layout(const lp_layout *have, const lp_layout *want, const char *origin,
                         lp_err *err);

/* ---------------------------------------------------------------------- */
/* The model level.                                                        */

/* Whether lp_ckpt_load would accept c (from lp_ckpt_read / lp_ckpt_decode,
 * with or without its arrays) for the domain `dom` (NULL: the checkpoint's
 * own domain record, so only the file's consistency is checked): the domain
 * and vocabularies, the stored config (parsed as a config file), the model
 * it makes, and that model's layout, parameter count and state size against
 * the file's. It runs the very checks of lp_ckpt_load (`lpsynth ckpt info`
 * uses it, so it accepts what synth, eval and --resume load). LP_OK, or an
 * error naming origin. */
int lp_ckpt_check_model(const lp_ckpt *c, const char *origin, const lp_ckpt_domain *dom,
                        lp_err *err);

/* Write model m (config, layout, parameters, state), the optimiser (may be
 * NULL: no optimiser state), the domain, the position and the metadata (may
 * be NULL) to path atomically. */
int lp_ckpt_save(const char *path, lp_model *m, lp_adam *opt, const lp_ckpt_domain *dom,
                 const lp_train_pos *pos, const char *metadata, lp_err *err);

/* Read path, check it belongs to `dom`, make a new model from the stored
 * config (lp_model_new with the stored init seed), check its layout against
 * the stored one and restore parameters and state. opt (may be NULL) gets a
 * new Adam with the config's hyper-parameters and the stored t, m, v (zeroed
 * when the file has none); pos and metadata (malloc'd, may be NULL) likewise.
 * On failure nothing is returned (all outputs NULL). */
int lp_ckpt_load(const char *path, const lp_ckpt_domain *dom, lp_model **model, lp_adam **opt,
                 lp_train_pos *pos, char **metadata, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif

/* lpsynth tasks: what one task line means, read once for training (train.h),
 * evaluation and synthesis (`lpsynth eval`, `lpsynth synth --examples`).
 *
 * A TASK LINE is a JSON object (lp_record, runtime.h) of one of two kinds:
 *
 *   examples  the specification is a list of examples:
 *               two-part domains (input/output examples): "inputs" and
 *                 "outputs", string arrays of the same length >= 1;
 *               one-part domains (a text per example): "specs" (a string
 *                 array, as `lpsynth gen` writes it), or else "inputs";
 *             optionally the reference program: "tokens" (program ids incl.
 *             EOS, taken as they are) or else "program" (its text, encoded by
 *             the domain); optionally "held_inputs"/"held_outputs" (two-part:
 *             examples kept out of the specification, to test generalisation).
 *   pair      "docstring" (the specification: one text) and "code" (the
 *             program's text), as `lpsynth corpus` writes them; one-part
 *             domains only. A line with either field is a pair.
 *
 * Other fields ("split", "path", ...) are ignored here; lp_task_in_split
 * selects lines by "split".
 *
 * TRUNCATION (one rule): with a limit max_spec_len, a docstring (the text of a
 * pair, or a text given with cut = 1) longer than max_spec_len tokens is cut
 * to its first max_spec_len tokens and counted in `truncated`; an example
 * part (input, output or spec) longer than the limit is an error ("input 2
 * has 200 tokens, more than the model's max_spec_len 128"). Nothing else is
 * cut; a program longer than the model takes is the caller's affair (train
 * skips such pairs).
 *
 * OWNERSHIP: lp_enc_task is caller-owned: zero-initialise it, read into it as
 * often as wanted (its storage is reused), release it with lp_enc_task_free,
 * which leaves it zeroed; lp_enc_task_free of a zeroed task is a no-op. The
 * task owns its ids; its text views (ex, held, ref) point into the record (or
 * the caller's texts) it was read from, which must outlive their use.
 * ERRORS: negative LP_E* codes with a message that does not name the file
 * (callers prefix FILE:LINE); never prints or exits.
 */
#ifndef LPSYNTH_TASK_H
#define LPSYNTH_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "lpsynth/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A task encoded for a model: the specification's ids and text views, the
 * held-out examples and the reference program. */
typedef struct lp_enc_task {
  size_t n_examples;      /* examples of the specification */
  uint32_t n_parts;       /* the domain's spec parts: 1 or 2 */
  lp_ids *parts;          /* [n_examples * n_parts] ids of example e part p at
                             e * n_parts + p, as the domain encoded them */
  const int32_t **spec;   /* [n_examples * n_parts] views of parts[] (lp_task_ids.spec) */
  size_t *spec_len;       /* their lengths: parts[i].len, or max_spec_len where cut */
  lp_example *ex;         /* [n_examples] the examples' texts (views) */
  lp_example *held;       /* [n_held] held-out examples' texts (views; two-part) */
  size_t n_held;
  lp_ids prog;            /* the reference program's ids incl. EOS (len 0: none) */
  int has_prog;
  const char *ref;        /* the reference program's text ("program" or "code"), or NULL */
  size_t ref_len;
  int is_pair;            /* read from a "docstring"/"code" pair */
  size_t truncated;       /* texts cut to max_spec_len (the docstring rule) */
  size_t n_unknown;       /* characters outside the domain's alphabet (encoded as UNK) */
  /* storage kept between reads */
  size_t cap_parts, cap_ex, cap_held;
} lp_enc_task;

enum {
  /* the line must carry its program: "tokens" or "program" (a pair: "code") */
  LP_TASK_NEED_PROGRAM = 1u << 0
};

typedef struct lp_task_opts {
  size_t max_spec_len;    /* the model's limit in tokens (0: none, e.g. no model) */
  unsigned flags;         /* LP_TASK_* */
  size_t holdout;         /* two-part: the last `holdout` examples of the line are
                             held out of the specification (eval --holdout) */
} lp_task_opts;

/* Reads one task line into t (see above) for the domain d. */
int lp_enc_task_read(lp_domain *d, const lp_record *rec, const lp_task_opts *o, lp_enc_task *t,
                     lp_err *err);

/* A task from example texts ex[0..n_ex) (e.g. given on a command line, or
 * generated): encoded as a task line's examples are; cut = 1 applies the
 * docstring rule to every text instead (a text specification). The views
 * of ex are copied, not the texts. t's program is left empty. */
int lp_enc_task_encode(lp_domain *d, const lp_example *ex, size_t n_ex, const lp_task_opts *o,
                       int cut, lp_enc_task *t, lp_err *err);

/* Sets t's program to a copy of ids[0..n) once checked: it ends with the
 * domain's EOS and every id lies in its program vocabulary. */
int lp_enc_task_set_program(lp_domain *d, const int32_t *ids, size_t n, lp_enc_task *t,
                            lp_err *err);

void lp_enc_task_free(lp_enc_task *t);

/* 1 when the line's "split" is split, 0 when it is another; LP_EINVAL when
 * the line has no "split" (every line needs one once a split is chosen). */
int lp_task_in_split(const lp_record *rec, const char *split, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif

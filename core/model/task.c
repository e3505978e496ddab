/* The task reader (include/lpsynth/task.h): one meaning of a task line for
 * train, eval and synth. Never prints or exits. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/task.h"

/* Room for n parts (ids, views, lengths) and e examples. */
static int reserve(lp_enc_task *t, size_t n, size_t e, lp_err *err) {
  if (n > t->cap_parts) {
    lp_ids *p = realloc(t->parts, n * sizeof *p);
    if (!p) return lp_err_set(err, LP_ENOMEM, "out of memory");
    memset(p + t->cap_parts, 0, (n - t->cap_parts) * sizeof *p);
    t->parts = p;
    const int32_t **s = realloc(t->spec, n * sizeof *s);
    if (!s) return lp_err_set(err, LP_ENOMEM, "out of memory");
    t->spec = s;
    size_t *l = realloc(t->spec_len, n * sizeof *l);
    if (!l) return lp_err_set(err, LP_ENOMEM, "out of memory");
    t->spec_len = l;
    t->cap_parts = n;
  }
  if (e > t->cap_ex) {
    lp_example *x = realloc(t->ex, e * sizeof *x);
    if (!x) return lp_err_set(err, LP_ENOMEM, "out of memory");
    t->ex = x;
    t->cap_ex = e;
  }
  return LP_OK;
}

static int reserve_held(lp_enc_task *t, size_t n, lp_err *err) {
  if (n <= t->cap_held) return LP_OK;
  lp_example *x = realloc(t->held, n * sizeof *x);
  if (!x) return lp_err_set(err, LP_ENOMEM, "out of memory");
  t->held = x;
  t->cap_held = n;
  return LP_OK;
}

/* Forget the previous task, keeping the storage. */
static void reset(lp_enc_task *t, lp_domain *d) {
  t->n_examples = t->n_held = 0;
  t->n_parts = lp_domain_desc_of(d)->spec_parts;
  t->prog.len = 0;
  t->has_prog = 0;
  t->ref = NULL;
  t->ref_len = 0;
  t->is_pair = 0;
  t->truncated = t->n_unknown = 0;
}

/* The name of spec text i in messages: "docstring", "input 2", "spec 3". */
static void part_name(const lp_enc_task *t, size_t i, char *buf, size_t n) {
  if (t->is_pair)
    snprintf(buf, n, "docstring");
  else if (t->n_parts == 2)
    snprintf(buf, n, "%s %zu", i % 2 ? "output" : "input", i / 2 + 1);
  else
    snprintf(buf, n, "spec %zu", i + 1);
}

/* Encodes t->ex[0..n_examples) into t->parts under the truncation rule. */
static int encode_examples(lp_domain *d, lp_enc_task *t, size_t max, int cut, lp_err *err) {
  const size_t np = t->n_parts;
  for (size_t i = 0; i < t->n_examples * np; i++) {
    const lp_example *x = &t->ex[i / np];
    lp_ids *ids = &t->parts[i];
    ids->len = 0;
    size_t unk = 0;
    char what[48];
    if (lp_domain_spec_encode(d, (uint32_t)(i % np), x->part[i % np], x->len[i % np], ids, &unk,
                              err)) {
      part_name(t, i, what, sizeof what);
      return lp_err_prefix(err, "%s", what);
    }
    t->n_unknown += unk;
    size_t n = ids->len;
    if (max && n > max) {
      if (!cut) {
        part_name(t, i, what, sizeof what);
        return lp_err_set(err, LP_EINVAL, "%s has %zu tokens, more than the model's "
                          "max_spec_len %zu", what, n, max);
      }
      n = max;
      t->truncated++;
    }
    t->spec[i] = ids->data;
    t->spec_len[i] = n;
  }
  return LP_OK;
}

/* Checks t->prog: ends with EOS, every id in the program vocabulary. */
static int check_program(lp_domain *d, lp_enc_task *t, lp_err *err) {
  lp_vocab_info v;
  if (lp_domain_program_vocab(d, &v))
    return lp_err_set(err, LP_EINVAL, "domain %s: no program vocabulary", lp_domain_name(d));
  const lp_ids *p = &t->prog;
  if (p->len == 0 || p->data[p->len - 1] != v.eos)
    return lp_err_set(err, LP_EINVAL, "the program's tokens do not end with EOS (id %d)", v.eos);
  for (size_t i = 0; i < p->len; i++)
    if (p->data[i] < 0 || p->data[i] >= v.size)
      return lp_err_set(err, LP_EINVAL, "program token %zu is %d, outside the vocabulary "
                        "(0..%d)", i + 1, p->data[i], v.size - 1);
  t->has_prog = 1;
  return LP_OK;
}

int lp_enc_task_set_program(lp_domain *d, const int32_t *ids, size_t n, lp_enc_task *t,
                            lp_err *err) {
  t->prog.len = 0;
  t->has_prog = 0;
  for (size_t i = 0; i < n; i++)
    if (lp_ids_push(&t->prog, ids[i])) return lp_err_set(err, LP_ENOMEM, "out of memory");
  return check_program(d, t, err);
}

/* The program's text (field `field`) encoded by the domain. */
static int encode_program(lp_domain *d, const char *field, const char *text, size_t len,
                          lp_enc_task *t, lp_err *err) {
  t->ref = text;
  t->ref_len = len;
  if (lp_domain_program_encode(d, text, len, &t->prog, err))
    return lp_err_prefix(err, "field \"%s\"", field);
  return check_program(d, t, err);
}

int lp_enc_task_encode(lp_domain *d, const lp_example *ex, size_t n_ex, const lp_task_opts *o,
                       int cut, lp_enc_task *t, lp_err *err) {
  reset(t, d);
  if (n_ex == 0) return lp_err_set(err, LP_EINVAL, "no examples");
  int rc = reserve(t, n_ex * t->n_parts, n_ex, err);
  if (rc) return rc;
  memcpy(t->ex, ex, n_ex * sizeof *ex);
  t->n_examples = n_ex;
  return encode_examples(d, t, o->max_spec_len, cut, err);
}

/* A "docstring"/"code" pair. */
static int read_pair(lp_domain *d, const lp_record *rec, const lp_task_opts *o, lp_enc_task *t,
                     lp_err *err) {
  if (t->n_parts != 1)
    return lp_err_set(err, LP_EINVAL, "a \"docstring\"/\"code\" pair needs a domain whose "
                      "specification is one text; domain \"%s\" has %u parts (input/output "
                      "examples)", lp_domain_name(d), t->n_parts);
  unsigned need = LP_REC_DOCSTRING | (o->flags & LP_TASK_NEED_PROGRAM ? LP_REC_CODE : 0);
  if (lp_record_require(rec, need, err)) return LP_EINVAL;
  t->is_pair = 1;
  if (rec->code) {
    int rc = encode_program(d, "code", rec->code, rec->code_len, t, err);
    if (rc) return rc;
  }
  int rc = reserve(t, 1, 1, err);
  if (rc) return rc;
  memset(t->ex, 0, sizeof *t->ex);
  t->ex[0].part[0] = rec->docstring;
  t->ex[0].len[0] = rec->docstring_len;
  t->n_examples = 1;
  return encode_examples(d, t, o->max_spec_len, 1, err);
}

static const char *str_of(const lp_strs *v, size_t i) {
  return v->items[i].data ? v->items[i].data : "";
}

/* One-part specifications: "specs" (strings) or else "inputs". */
static int read_specs(const lp_record *rec, lp_enc_task *t, lp_err *err) {
  json_t *a = rec->json ? json_object_get((json_t *)rec->json, "specs") : NULL;
  if (!a) {
    if (lp_record_require(rec, LP_REC_INPUTS, err))
      return lp_err_set(err, LP_EINVAL, "missing field \"docstring\" (or \"inputs\" or "
                        "\"specs\")");
    if (rec->inputs.len == 0)
      return lp_err_set(err, LP_EINVAL, "no examples: field \"inputs\" is empty");
    int rc = reserve(t, rec->inputs.len, rec->inputs.len, err);
    if (rc) return rc;
    for (size_t i = 0; i < rec->inputs.len; i++) {
      memset(&t->ex[i], 0, sizeof t->ex[i]);
      t->ex[i].part[0] = str_of(&rec->inputs, i);
      t->ex[i].len[0] = rec->inputs.items[i].len;
    }
    t->n_examples = rec->inputs.len;
    return LP_OK;
  }
  if (!json_is_array(a) || json_array_size(a) == 0)
    return lp_err_set(err, LP_EINVAL, "field \"specs\" must be a non-empty array of strings");
  size_t n = json_array_size(a);
  int rc = reserve(t, n, n, err);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++) {
    json_t *s = json_array_get(a, i);
    if (!json_is_string(s))
      return lp_err_set(err, LP_EINVAL, "field \"specs\": element %zu is not a string", i + 1);
    memset(&t->ex[i], 0, sizeof t->ex[i]);
    t->ex[i].part[0] = json_string_value(s);
    t->ex[i].len[0] = json_string_length(s);
  }
  t->n_examples = n;
  return LP_OK;
}

/* Two-part examples: "inputs"/"outputs", the last `holdout` of them (or
 * "held_inputs"/"held_outputs") held out. */
static int read_io(const lp_record *rec, size_t holdout, lp_enc_task *t, lp_err *err) {
  if (lp_record_require(rec, LP_REC_INPUTS | LP_REC_OUTPUTS, err)) return LP_EINVAL;
  size_t n = rec->inputs.len;
  if (rec->outputs.len != n)
    return lp_err_set(err, LP_EINVAL, "%zu inputs but %zu outputs", n, rec->outputs.len);
  if (n == 0) return lp_err_set(err, LP_EINVAL, "no examples: field \"inputs\" is empty");
  const lp_strs *hi = &rec->held_inputs, *ho = &rec->held_outputs;
  size_t first_held = 0, n_held = rec->has_held ? hi->len : 0;
  if (holdout) {
    if (n <= holdout)
      return lp_err_set(err, LP_EINVAL, "--holdout %zu needs more than %zu examples (the line "
                        "has %zu)", holdout, holdout, n);
    hi = &rec->inputs, ho = &rec->outputs;
    first_held = n - holdout, n_held = holdout;
    n -= holdout;
  }
  int rc = reserve(t, 2 * n, n, err);
  if (rc == LP_OK) rc = reserve_held(t, n_held, err);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++) {
    t->ex[i].part[0] = str_of(&rec->inputs, i);
    t->ex[i].len[0] = rec->inputs.items[i].len;
    t->ex[i].part[1] = str_of(&rec->outputs, i);
    t->ex[i].len[1] = rec->outputs.items[i].len;
  }
  for (size_t i = 0; i < n_held; i++) {
    t->held[i].part[0] = str_of(hi, first_held + i);
    t->held[i].len[0] = hi->items[first_held + i].len;
    t->held[i].part[1] = str_of(ho, first_held + i);
    t->held[i].len[1] = ho->items[first_held + i].len;
  }
  t->n_examples = n;
  t->n_held = n_held;
  return LP_OK;
}

int lp_enc_task_read(lp_domain *d, const lp_record *rec, const lp_task_opts *o, lp_enc_task *t,
                     lp_err *err) {
  reset(t, d);
  if (rec->docstring || rec->code) return read_pair(d, rec, o, t, err);
  if (o->holdout && t->n_parts != 2)
    return lp_err_set(err, LP_EINVAL, "--holdout %zu needs input/output examples; domain %s has "
                      "a text specification", o->holdout, lp_domain_name(d));
  int rc = t->n_parts == 2 ? read_io(rec, o->holdout, t, err) : read_specs(rec, t, err);
  if (rc) return rc;
  if (rec->has_tokens)
    rc = lp_enc_task_set_program(d, rec->tokens.data, rec->tokens.len, t, err);
  else if (rec->program)
    rc = encode_program(d, "program", rec->program, rec->program_len, t, err);
  else if (o->flags & LP_TASK_NEED_PROGRAM)
    rc = lp_err_set(err, LP_EINVAL, "missing field \"tokens\" or \"program\"");
  if (rc) return rc;
  if (rec->program) { /* the text is the reference even where "tokens" gave the ids */
    t->ref = rec->program;
    t->ref_len = rec->program_len;
  }
  return encode_examples(d, t, o->max_spec_len, 0, err);
}

void lp_enc_task_free(lp_enc_task *t) {
  if (!t) return;
  for (size_t i = 0; i < t->cap_parts; i++) lp_ids_free(&t->parts[i]);
  free(t->parts);
  free(t->spec);
  free(t->spec_len);
  free(t->ex);
  free(t->held);
  lp_ids_free(&t->prog);
  memset(t, 0, sizeof *t);
}

int lp_task_in_split(const lp_record *rec, const char *split, lp_err *err) {
  if (!rec->split)
    return lp_err_set(err, LP_EINVAL, "missing field \"split\" (a string; --split %s needs it "
                      "on every line)", split);
  return rec->split_len == strlen(split) && memcmp(rec->split, split, rec->split_len) == 0;
}

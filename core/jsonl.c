/* JSONL reading: a bounded line reader and the task-record parser (jansson). */
#define _POSIX_C_SOURCE 200809L
#include "lpsynth/runtime.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lp_jsonl {
  FILE *f;          /* NULL for memory input */
  int own_f;
  const char *mem;  /* memory input */
  size_t mem_len, mem_pos;
  char *rbuf;       /* read buffer for files */
  size_t rlen, rpos;
  int eof;
  size_t max_line;
  size_t lineno;
  lp_buf line;
  char *name;
};

static lp_jsonl *reader_new(const char *name, size_t max_line, lp_err *err) {
  lp_jsonl *r = calloc(1, sizeof *r);
  if (r) r->name = strdup(name);
  if (!r || !r->name) {
    free(r);
    lp_err_set(err, LP_ENOMEM, "out of memory");
    return NULL;
  }
  r->max_line = max_line ? max_line : LP_JSONL_DEFAULT_MAX_LINE;
  return r;
}

lp_jsonl *lp_jsonl_open(const char *path, size_t max_line, lp_err *err) {
  int is_stdin = strcmp(path, "-") == 0;
  lp_jsonl *r = reader_new(is_stdin ? "<stdin>" : path, max_line, err);
  if (!r) return NULL;
  if (is_stdin) {
    r->f = stdin;
  } else {
    r->f = fopen(path, "rb");
    if (!r->f) {
      lp_err_set(err, LP_EIO, "%s: cannot open: %s", path, strerror(errno));
      lp_jsonl_free(r);
      return NULL;
    }
    r->own_f = 1;
  }
  r->rbuf = malloc(1 << 16);
  if (!r->rbuf) {
    lp_err_set(err, LP_ENOMEM, "out of memory");
    lp_jsonl_free(r);
    return NULL;
  }
  return r;
}

lp_jsonl *lp_jsonl_open_mem(const char *data, size_t len, size_t max_line, lp_err *err) {
  lp_jsonl *r = reader_new("<memory>", max_line, err);
  if (!r) return NULL;
  r->mem = data;
  r->mem_len = len;
  return r;
}

void lp_jsonl_free(lp_jsonl *r) {
  if (!r) return;
  if (r->own_f && r->f) fclose(r->f);
  free(r->rbuf);
  free(r->name);
  lp_buf_free(&r->line);
  free(r);
}

/* Next chunk of input: pointer and length, 0 at end. */
static int fill(lp_jsonl *r, const char **p, size_t *n, lp_err *err) {
  if (!r->f) {
    if (r->mem_pos >= r->mem_len) return 0;
    *p = r->mem + r->mem_pos;
    *n = r->mem_len - r->mem_pos;
    return 1;
  }
  if (r->rpos >= r->rlen) {
    if (r->eof) return 0;
    r->rlen = fread(r->rbuf, 1, 1 << 16, r->f);
    r->rpos = 0;
    if (r->rlen == 0) {
      r->eof = 1;
      if (ferror(r->f)) return lp_err_set(err, LP_EIO, "%s: read error: %s", r->name, strerror(errno));
      return 0;
    }
  }
  *p = r->rbuf + r->rpos;
  *n = r->rlen - r->rpos;
  return 1;
}

static void consume(lp_jsonl *r, size_t n) {
  if (r->f)
    r->rpos += n;
  else
    r->mem_pos += n;
}

static int blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
  return 1;
}

int lp_jsonl_next(lp_jsonl *r, const char **line, size_t *len, size_t *lineno, lp_err *err) {
  for (;;) {
    r->line.len = 0;
    int too_long = 0, got_any = 0, rc;
    const char *p = NULL;
    size_t n = 0;
    while ((rc = fill(r, &p, &n, err)) > 0) {
      got_any = 1;
      const char *nl = memchr(p, '\n', n);
      size_t take = nl ? (size_t)(nl - p) : n;
      if (!too_long) {
        /* One byte of slack for a '\r' before the newline, checked below. */
        if (r->line.len + take > r->max_line + 1) {
          too_long = 1;
        } else if (lp_buf_append(&r->line, p, take)) {
          return lp_err_set(err, LP_ENOMEM, "%s:%zu: out of memory", r->name, r->lineno + 1);
        }
      }
      consume(r, nl ? take + 1 : take);
      if (nl) break;
    }
    if (rc < 0) return rc;
    if (!got_any) return 0;
    *lineno = ++r->lineno;
    if (!too_long && r->line.len && r->line.data[r->line.len - 1] == '\r') r->line.data[--r->line.len] = 0;
    if (r->line.len > r->max_line) too_long = 1;
    if (too_long)
      return lp_err_set(err, LP_ELIMIT, "%s:%zu: line longer than the limit of %zu bytes", r->name,
                        r->lineno, r->max_line);
    if (blank(r->line.data ? r->line.data : "", r->line.len)) continue;
    *line = r->line.data;
    *len = r->line.len;
    return 1;
  }
}

static int get_strs(json_t *o, const char *key, lp_strs *out, int *has, lp_err *err) {
  json_t *a = json_object_get(o, key);
  if (!a) return LP_OK;
  if (!json_is_array(a))
    return lp_err_set(err, LP_EINVAL, "field \"%s\" must be an array of strings", key);
  for (size_t i = 0; i < json_array_size(a); i++) {
    json_t *s = json_array_get(a, i);
    if (!json_is_string(s))
      return lp_err_set(err, LP_EINVAL, "field \"%s\": element %zu is not a string", key, i + 1);
    if (lp_strs_push(out, json_string_value(s), json_string_length(s)))
      return lp_err_set(err, LP_ENOMEM, "out of memory");
  }
  *has = 1;
  return LP_OK;
}

static int get_str(json_t *o, const char *key, const char **out, size_t *len, lp_err *err) {
  json_t *v = json_object_get(o, key);
  if (!v) return LP_OK;
  if (!json_is_string(v)) return lp_err_set(err, LP_EINVAL, "field \"%s\" must be a string", key);
  *out = json_string_value(v);
  *len = json_string_length(v);
  return LP_OK;
}

int lp_record_parse(const char *line, size_t len, lp_record *rec, lp_err *err) {
  memset(rec, 0, sizeof *rec);
  json_error_t je;
  json_t *o = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
  if (!o) return lp_err_set(err, LP_EINVAL, "invalid JSON at column %d: %s", je.column, je.text);
  rec->json = o;
  if (!json_is_object(o)) {
    lp_record_free(rec);
    return lp_err_set(err, LP_EINVAL, "line is not a JSON object");
  }
  json_t *p = json_object_get(o, "program");
  if (p) {
    if (!json_is_string(p)) {
      lp_record_free(rec);
      return lp_err_set(err, LP_EINVAL, "field \"program\" must be a string");
    }
    rec->program = json_string_value(p);
    rec->program_len = json_string_length(p);
  }
  json_t *t = json_object_get(o, "tokens");
  if (t) {
    if (!json_is_array(t)) {
      lp_record_free(rec);
      return lp_err_set(err, LP_EINVAL, "field \"tokens\" must be an array of integers");
    }
    for (size_t i = 0; i < json_array_size(t); i++) {
      json_t *v = json_array_get(t, i);
      if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
          json_integer_value(v) > INT32_MAX) {
        lp_record_free(rec);
        return lp_err_set(err, LP_EINVAL, "field \"tokens\": element %zu is not a 32-bit integer",
                          i + 1);
      }
      if (lp_ids_push(&rec->tokens, (int32_t)json_integer_value(v))) {
        lp_record_free(rec);
        return lp_err_set(err, LP_ENOMEM, "out of memory");
      }
    }
    rec->has_tokens = 1;
  }
  if (get_str(o, "docstring", &rec->docstring, &rec->docstring_len, err) ||
      get_str(o, "code", &rec->code, &rec->code_len, err) ||
      get_str(o, "split", &rec->split, &rec->split_len, err)) {
    lp_record_free(rec);
    return err ? err->code : LP_EINVAL;
  }
  if (get_strs(o, "inputs", &rec->inputs, &rec->has_inputs, err) ||
      get_strs(o, "outputs", &rec->outputs, &rec->has_outputs, err) ||
      get_strs(o, "held_inputs", &rec->held_inputs, &rec->has_held, err) ||
      get_strs(o, "held_outputs", &rec->held_outputs, &rec->has_held, err)) {
    lp_record_free(rec);
    return err ? err->code : LP_EINVAL;
  }
  if ((json_object_get(o, "held_inputs") != NULL) != (json_object_get(o, "held_outputs") != NULL) ||
      rec->held_inputs.len != rec->held_outputs.len) {
    lp_record_free(rec);
    return lp_err_set(err, LP_EINVAL, "fields \"held_inputs\" and \"held_outputs\" must come "
                      "together, with as many strings each");
  }
  return LP_OK;
}

int lp_record_require(const lp_record *rec, unsigned fields, lp_err *err) {
  if ((fields & LP_REC_PROGRAM) && !rec->program)
    return lp_err_set(err, LP_EINVAL, "missing field \"program\" (a string)");
  if ((fields & LP_REC_TOKENS) && !rec->has_tokens)
    return lp_err_set(err, LP_EINVAL, "missing field \"tokens\" (an array of integers)");
  if ((fields & LP_REC_INPUTS) && !rec->has_inputs)
    return lp_err_set(err, LP_EINVAL, "missing field \"inputs\" (an array of strings)");
  if ((fields & LP_REC_OUTPUTS) && !rec->has_outputs)
    return lp_err_set(err, LP_EINVAL, "missing field \"outputs\" (an array of strings)");
  if ((fields & LP_REC_DOCSTRING) && !rec->docstring)
    return lp_err_set(err, LP_EINVAL, "missing field \"docstring\" (a string)");
  if ((fields & LP_REC_CODE) && !rec->code)
    return lp_err_set(err, LP_EINVAL, "missing field \"code\" (a string)");
  if ((fields & LP_REC_SPLIT) && !rec->split)
    return lp_err_set(err, LP_EINVAL, "missing field \"split\" (a string)");
  return LP_OK;
}

void lp_record_free(lp_record *rec) {
  if (!rec) return;
  if (rec->json) json_decref((json_t *)rec->json);
  lp_ids_free(&rec->tokens);
  lp_strs_free(&rec->inputs);
  lp_strs_free(&rec->outputs);
  lp_strs_free(&rec->held_inputs);
  lp_strs_free(&rec->held_outputs);
  memset(rec, 0, sizeof *rec);
}

/* lpsynth domain plugin "python": Python functions from docstrings (section
 * 5.3 of the Latent Programmer paper) behind the lp_domain_desc ABI 1.1.
 *
 * Vocabularies: one joint SentencePiece model over docstrings and code (the
 * paper's "language-independent tokenizer jointly on data"). Program and spec
 * vocabularies are both that model's pieces, id for id: PAD 0 "<pad>",
 * BOS 1 "<s>", EOS 2 "</s>", UNK 3 "<unk>" for models trained by
 * tokenizer_train (any model with PAD/BOS/EOS pieces is accepted; its own ids
 * are reported), then the user-defined symbols: newline (U+E000, shown as
 * "<NL>"), tab (U+E001, "<TAB>"), the escape (U+E002, "<ESC>"), ARG_0..ARG_15,
 * VAR_0..VAR_63; then 256 byte pieces and the learnt pieces.
 *
 * Options (create): the path of the SentencePiece model file. Without options
 * the instance has no vocabulary: extract_pairs, tokenizer_train and the
 * text-level anonymiser work, everything that encodes or decodes fails with a
 * message saying so.
 *
 * Capabilities: ANONYMISE, EXTRACT, TOKENIZER. No EXECUTE/CHECK/GENERATE:
 * programs are not run.
 *
 * Files: tokenizer_train writes its model through the host's
 * write_file_atomic (host API, ABI 1.3); the plugin has no file writer of its
 * own.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lpsynth/plugin.h"
#include "pyint.h"
#include "spm.h"

#define MIN_VOCAB 400     /* 4 specials + 83 user symbols + 256 bytes + a few pieces */
#define MAX_VOCAB 1000000
#define MAX_TEXT ((size_t)64 << 20)
#define TRAIN_SEED 20210503u

typedef struct py_inst {
  const lp_host_api *host;
  py_spm *spm;         /* NULL: no model */
  char *model_path;    /* host memory */
  int32_t size, pad, bos, eos, unk;
  const char **tok;    /* display text of every id (host memory; texts owned by spm or static) */
} py_inst;

static int fail(const lp_host_api *h, lp_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(const lp_host_api *h, lp_err *err, int code, const char *fmt, ...) {
  char msg[LP_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (h && h->set_error) return h->set_error(err, code, "%s", msg);
  if (err) {
    err->code = code;
    snprintf(err->msg, sizeof err->msg, "%s", msg);
  }
  return code;
}

static int spm_code(int r) {
  return r == PY_SPM_ENOMEM ? LP_ENOMEM : r == PY_SPM_EIO ? LP_EIO : LP_EINVAL;
}

#define NO_MODEL_MSG                                                                       \
  "python: no SentencePiece model loaded, so it cannot %s: pass the model file as the "   \
  "domain options (--domain-options MODEL; train one with `lpsynth tokenizer train`)"

#define GET_INST(self, err)                                                       \
  py_inst *I = (py_inst *)(self);                                                 \
  if (!I) return fail(NULL, err, LP_EINVAL, "python: no instance (create() first)")

/* ------------------------------------------------------------------------ */
/* Text <-> ids                                                              */

/* Maps and segments text, appending the ids to out; *n_unk counts UNK ids. */
static int encode_text(const py_inst *I, const char *text, size_t len, lp_ids *out,
                       size_t *n_unk, lp_err *err) {
  const lp_host_api *h = I->host;
  size_t bad;
  if (len > MAX_TEXT)
    return fail(h, err, LP_ELIMIT, "python: text of %zu bytes is over the %zu-byte limit", len,
                MAX_TEXT);
  if (!py_utf8_valid(text, len, &bad))
    return fail(h, err, LP_EINVAL, "python: column %zu: the text is not valid UTF-8", bad + 1);
  py_buf m = {0};
  if (py_map_text(text, len, &m)) {
    py_buf_free(&m);
    return fail(h, err, LP_ENOMEM, "python: out of memory");
  }
  int32_t *ids = NULL;
  size_t n = 0;
  char msg[512];
  int r = py_spm_encode(I->spm, m.data ? m.data : "", m.len, &ids, &n, msg, sizeof msg);
  py_buf_free(&m);
  if (r) return fail(h, err, spm_code(r), "python: %s", msg);
  int rc = LP_OK;
  for (size_t i = 0; i < n && rc == LP_OK; i++) {
    if (ids[i] == I->unk && n_unk) ++*n_unk;
    if (h->ids_push(out, ids[i])) rc = fail(h, err, LP_ENOMEM, "python: out of memory");
  }
  free(ids);
  return rc;
}

/* The text of ids[0..n) up to the first EOS, into *text (malloc). */
static int decode_ids(const py_inst *I, const int32_t *ids, size_t n, py_buf *text, lp_err *err) {
  const lp_host_api *h = I->host;
  if (!ids && n) return fail(h, err, LP_EINVAL, "python: program ids are NULL");
  size_t k = 0;
  while (k < n && ids[k] != I->eos) {
    int32_t id = ids[k];
    if (id < 0 || id >= I->size)
      return fail(h, err, LP_EINVAL, "python: token %zu: id %d is outside the vocabulary (0..%d)",
                  k + 1, id, I->size - 1);
    if (id == I->pad || id == I->bos)
      return fail(h, err, LP_EINVAL, "python: token %zu: %s cannot appear inside a program", k + 1,
                  id == I->pad ? "PAD" : "BOS");
    k++;
  }
  char *raw = NULL, msg[512];
  size_t rl = 0;
  int r = py_spm_decode(I->spm, ids, k, &raw, &rl, msg, sizeof msg);
  if (r) return fail(h, err, spm_code(r), "python: %s", msg);
  r = py_unmap_text(raw, rl, text);
  free(raw);
  if (r) return fail(h, err, LP_ENOMEM, "python: out of memory");
  if (!text->data && py_buf_put(text, "", 0)) return fail(h, err, LP_ENOMEM, "python: out of memory");
  return LP_OK;
}

/* ------------------------------------------------------------------------ */
/* Model loading and checks                                                  */

static const char *reserved[3] = {PY_NL, PY_TAB, PY_ESC};
static const char *reserved_show[3] = {"<NL>", "<TAB>", "<ESC>"};
static const char *reserved_what[3] = {"newline", "tab", "escape"};

/* A model is usable when it has PAD/BOS/EOS, the reserved symbols, and gives
 * back exactly what it was given. */
static int check_model(py_inst *I, const char *path, lp_err *err) {
  const lp_host_api *h = I->host;
  if (I->pad < 0 || I->bos < 0 || I->eos < 0)
    return fail(h, err, LP_EINVAL,
                "python: model %s has no %s piece (train it with `lpsynth tokenizer train "
                "--domain python`)",
                path, I->pad < 0 ? "PAD" : I->bos < 0 ? "BOS" : "EOS");
  for (int i = 0; i < 3; i++)
    if (py_spm_piece_id(I->spm, reserved[i], 3) < 0)
      return fail(h, err, LP_EINVAL,
                  "python: model %s lacks the reserved %s symbol U+E00%d (train it with "
                  "`lpsynth tokenizer train --domain python`)",
                  path, reserved_what[i], i);
  static const char probe[] =
      "def f(a,  b):\n\treturn  a ** 2 \xe2\x96\x81 '\xc3\xa9\xe2\x82\xac\xf0\x9f\x90\x8d' # \x01 "
      "\xee\x80\x80\xee\x80\x82\n  \r\n\n";
  lp_ids ids = {0};
  py_buf back = {0};
  int rc = encode_text(I, probe, sizeof probe - 1, &ids, NULL, err);
  if (rc == LP_OK) rc = decode_ids(I, ids.data, ids.len, &back, err);
  if (rc == LP_OK && (back.len != sizeof probe - 1 || memcmp(back.data, probe, back.len) != 0))
    rc = fail(h, err, LP_EINVAL,
              "python: model %s does not give code back exactly (it must use identity "
              "normalisation, keep whitespace and fall back to bytes: train it with `lpsynth "
              "tokenizer train --domain python`)",
              path);
  h->free(ids.data);
  py_buf_free(&back);
  return rc;
}

static int load_model(py_inst *I, const char *path, lp_err *err) {
  const lp_host_api *h = I->host;
  char msg[LP_ERR_MSG_MAX - 64];
  int r = py_spm_load(path, &I->spm, msg, sizeof msg);
  if (r) {
    if (r == PY_SPM_EIO)
      return fail(h, err, LP_EIO, "python: cannot open the SentencePiece model: %s", msg);
    return fail(h, err, spm_code(r), "python: cannot load the SentencePiece model %s", msg);
  }
  I->size = py_spm_size(I->spm);
  I->pad = py_spm_pad_id(I->spm);
  I->bos = py_spm_bos_id(I->spm);
  I->eos = py_spm_eos_id(I->spm);
  I->unk = py_spm_unk_id(I->spm);
  if (I->size <= 0) return fail(h, err, LP_EINVAL, "python: model %s has no pieces", path);
  I->tok = h->alloc((size_t)I->size * sizeof *I->tok);
  if (!I->tok) return fail(h, err, LP_ENOMEM, "python: out of memory");
  for (int32_t id = 0; id < I->size; id++) {
    const char *p = py_spm_piece(I->spm, id);
    I->tok[id] = p ? p : "";
    for (int k = 0; k < 3; k++)
      if (p && strcmp(p, reserved[k]) == 0) I->tok[id] = reserved_show[k];
  }
  if ((r = check_model(I, path, err))) return r;
  char sym[16];
  int missing = 0;
  for (int i = 0; i < PY_N_VAR_SYMS; i++) {
    int n = snprintf(sym, sizeof sym, "VAR_%d", i);
    if (py_spm_piece_id(I->spm, sym, (size_t)n) < 0) missing++;
    n = snprintf(sym, sizeof sym, "ARG_%d", i);
    if (i < PY_N_ARG_SYMS && py_spm_piece_id(I->spm, sym, (size_t)n) < 0) missing++;
  }
  if (missing && h->log)
    h->log(LP_LOG_WARN,
           "python: model %s lacks %d of the ARG_i/VAR_i symbols: anonymised programs will "
           "take more tokens",
           path, missing);
  return LP_OK;
}

/* ------------------------------------------------------------------------ */
/* Descriptor functions                                                      */

static void py_destroy(void *self) {
  py_inst *I = self;
  if (!I) return;
  py_spm_free(I->spm);
  I->host->free(I->tok);
  I->host->free(I->model_path);
  I->host->free(I);
}

static int py_create(const lp_host_api *host, const char *options, void **self, lp_err *err) {
  if (self) *self = NULL;
  if (!self) return fail(NULL, err, LP_EINVAL, "python: create() needs self");
  if (!host || host->struct_size < offsetof(lp_host_api, set_error) + sizeof host->set_error ||
      host->abi_major != LP_PLUGIN_ABI_MAJOR || !host->alloc || !host->free ||
      !host->buf_append || !host->ids_push || !host->set_error)
    return fail(NULL, err, LP_EABI,
                "python: the host API is missing or incompatible (plugin ABI %d.%d)",
                LP_PLUGIN_ABI_MAJOR, LP_PLUGIN_ABI_MINOR);
  py_inst *I = host->alloc(sizeof *I);
  if (!I) return fail(host, err, LP_ENOMEM, "python: out of memory");
  memset(I, 0, sizeof *I);
  I->host = host;
  I->pad = I->bos = I->eos = I->unk = -1;
  if (options && options[0]) {
    size_t n = strlen(options);
    I->model_path = host->alloc(n + 1);
    if (!I->model_path) {
      py_destroy(I);
      return fail(host, err, LP_ENOMEM, "python: out of memory");
    }
    memcpy(I->model_path, options, n + 1);
    int rc = load_model(I, options, err);
    if (rc) {
      py_destroy(I);
      return rc;
    }
  }
  *self = I;
  return LP_OK;
}

static int py_vocab(void *self, lp_vocab_info *out) {
  py_inst *I = self;
  if (!out) return LP_EINVAL;
  out->size = 0;
  out->pad = out->bos = out->eos = out->unk = -1;
  if (!I || !I->spm) return LP_EINVAL; /* no model: no vocabulary */
  out->size = I->size;
  out->pad = I->pad;
  out->bos = I->bos;
  out->eos = I->eos;
  out->unk = I->unk;
  return LP_OK;
}

static const char *py_token(void *self, int32_t id) {
  py_inst *I = self;
  if (!I || !I->spm || id < 0 || id >= I->size) return NULL;
  return I->tok[id];
}

static int py_program_encode(void *self, const char *text, size_t len, lp_ids *out, lp_err *err) {
  GET_INST(self, err);
  if (!I->spm) return fail(I->host, err, LP_EINVAL, NO_MODEL_MSG, "encode programs");
  if (!out) return fail(I->host, err, LP_EINVAL, "python: no output");
  if (!text && len) return fail(I->host, err, LP_EINVAL, "python: program text is NULL");
  int rc = encode_text(I, text ? text : "", len, out, NULL, err);
  if (rc == LP_OK && I->host->ids_push(out, I->eos))
    rc = fail(I->host, err, LP_ENOMEM, "python: out of memory");
  return rc;
}

static int py_program_decode(void *self, const int32_t *ids, size_t n, lp_buf *out, lp_err *err) {
  GET_INST(self, err);
  if (!I->spm) return fail(I->host, err, LP_EINVAL, NO_MODEL_MSG, "decode programs");
  if (!out) return fail(I->host, err, LP_EINVAL, "python: no output");
  py_buf text = {0};
  int rc = decode_ids(I, ids, n, &text, err);
  if (rc == LP_OK && I->host->buf_append(out, text.data, text.len))
    rc = fail(I->host, err, LP_ENOMEM, "python: out of memory");
  py_buf_free(&text);
  return rc;
}

static int py_spec_encode(void *self, uint32_t part, const char *text, size_t len, lp_ids *out,
                          size_t *n_unknown, lp_err *err) {
  GET_INST(self, err);
  if (part != 0)
    return fail(I->host, err, LP_EINVAL,
                "python: spec part %u does not exist (the specification is one docstring, part 0)",
                (unsigned)part);
  if (!I->spm) return fail(I->host, err, LP_EINVAL, NO_MODEL_MSG, "encode docstrings");
  if (!out) return fail(I->host, err, LP_EINVAL, "python: no output");
  if (!text && len) return fail(I->host, err, LP_EINVAL, "python: spec text is NULL");
  return encode_text(I, text ? text : "", len, out, n_unknown, err);
}

static int py_anonymise_ids(void *self, const int32_t *ids, size_t n, lp_ids *out, lp_err *err) {
  GET_INST(self, err);
  if (!I->spm) return fail(I->host, err, LP_EINVAL, NO_MODEL_MSG, "anonymise programs");
  if (!out) return fail(I->host, err, LP_EINVAL, "python: no output");
  py_buf text = {0}, anon = {0};
  py_anon_info info;
  int rc = decode_ids(I, ids, n, &text, err);
  if (rc == LP_OK && py_anonymise(text.data, text.len, &anon, &info))
    rc = fail(I->host, err, LP_ENOMEM, "python: out of memory");
  if (rc == LP_OK && info.status != PY_ANON_OK && I->host->log)
    I->host->log(LP_LOG_DEBUG, "python: anonymise: program kept as is (%s)",
                 info.status == PY_ANON_UNPARSABLE     ? "it does not parse"
                 : info.status == PY_ANON_NOT_FUNCTION ? "not one function definition"
                 : info.status == PY_ANON_CONFLICT     ? "it already uses ARG_i/VAR_i names"
                                                       : "nested too deeply");
  if (rc == LP_OK) rc = encode_text(I, anon.data ? anon.data : "", anon.len, out, NULL, err);
  if (rc == LP_OK && I->host->ids_push(out, I->eos))
    rc = fail(I->host, err, LP_ENOMEM, "python: out of memory");
  py_buf_free(&text);
  py_buf_free(&anon);
  return rc;
}

/* wellformed: the program's text parses as Python (tree-sitter, no error node). */
static int py_wellformed(void *self, const int32_t *ids, size_t n, int *ok, lp_err *err) {
  GET_INST(self, err);
  if (!I->spm) return fail(I->host, err, LP_EINVAL, NO_MODEL_MSG, "parse programs");
  if (!ok) return fail(I->host, err, LP_EINVAL, "python: no output");
  py_buf text = {0};
  int rc = decode_ids(I, ids, n, &text, err);
  if (rc == LP_OK && py_parses(text.data ? text.data : "", text.len, ok))
    rc = fail(I->host, err, LP_ENOMEM, "python: out of memory");
  py_buf_free(&text);
  return rc;
}

typedef struct extract_ctx {
  lp_pair_fn fn;
  void *ctx;
  int rc; /* the callback's non-zero return */
  const lp_host_api *host;
  const char *path;
} extract_ctx;

static int on_pair(void *ctx, const py_pair *p) {
  extract_ctx *x = ctx;
  if (p->too_long) {
    /* no pair: the host hears of it (FILE:LINE), the walk goes on */
    x->host->log(LP_LOG_WARN, "%s:%zu: function %.*s is %zu %s long, over the limit of %zu: skipped",
                 x->path, p->line, (int)p->name_len, p->name, p->too_long,
                 p->too_long_bytes ? "bytes" : "lines",
                 p->too_long_bytes ? PY_MAX_FUNC_BYTES : (size_t)PY_MAX_FUNC_LINES);
    return 0;
  }
  lp_pair lp = {sizeof(lp_pair), (uint32_t)p->line, p->doc, p->doc_len, p->code, p->code_len,
                p->name, p->name_len};
  int r = x->fn(x->ctx, &lp);
  if (r == 0) return 0;
  x->rc = r;
  return 1; /* stop */
}

static int py_extract_pairs(void *self, const char *path, const char *text, size_t len,
                            lp_pair_fn fn, void *ctx, lp_err *err) {
  GET_INST(self, err);
  if (!fn) return fail(I->host, err, LP_EINVAL, "python: extract_pairs needs a callback");
  if (!text && len) return fail(I->host, err, LP_EINVAL, "python: text is NULL");
  if (!path) path = "<text>";
  if (len > MAX_TEXT)
    return fail(I->host, err, LP_ELIMIT, "python: %s: %zu bytes is over the %zu-byte limit", path,
                len, MAX_TEXT);
  extract_ctx x = {fn, ctx, 0, I->host, path};
  py_extract_info info;
  int r = py_extract(text ? text : "", len, on_pair, &x, &info);
  if (r == PY_OK) return LP_OK;
  if (r == PY_ENOMEM) return fail(I->host, err, LP_ENOMEM, "python: out of memory");
  if (r == PY_EPARSE)
    return fail(I->host, err, LP_EINVAL, "%s:%zu:%zu: %s", path, info.err_line, info.err_col,
                info.err_what);
  return x.rc; /* stopped by the callback */
}

static int py_tokenizer_train(void *self, const lp_strs *texts, int32_t vocab_size,
                              const char *out_path, lp_err *err) {
  GET_INST(self, err);
  const lp_host_api *h = I->host;
  if (!texts || !out_path || !*out_path)
    return fail(h, err, LP_EINVAL, "python: tokenizer_train needs texts and an output path");
  /* The model file is written by the host (atomically, stale temporary files
   * swept): checked before the long training. */
  if (!LP_HOST_HAS(h, write_file_atomic) || !h->write_file_atomic)
    return fail(h, err, LP_EABI,
                "python: the host (plugin ABI %u.%u) cannot write files for plugins "
                "(write_file_atomic, ABI 1.3): use an lpsynth of ABI 1.3 or later",
                (unsigned)h->abi_major, (unsigned)h->abi_minor);
  if (vocab_size < MIN_VOCAB || vocab_size > MAX_VOCAB)
    return fail(h, err, LP_EINVAL,
                "python: vocabulary size %d is outside %d..%d (the model reserves 4 special "
                "pieces, 83 symbols and 256 bytes)",
                vocab_size, MIN_VOCAB, MAX_VOCAB);
  if (texts->len == 0) return fail(h, err, LP_EINVAL, "python: no texts to train the tokenizer on");
  size_t n = texts->len;
  py_buf *mapped = calloc(n, sizeof *mapped);
  const char **sent = calloc(n, sizeof *sent);
  size_t *lens = calloc(n, sizeof *lens);
  int rc = LP_OK;
  if (!mapped || !sent || !lens) rc = fail(h, err, LP_ENOMEM, "python: out of memory");
  for (size_t i = 0; rc == LP_OK && i < n; i++) {
    const lp_buf *t = &texts->items[i];
    size_t bad;
    if (!py_utf8_valid(t->data ? t->data : "", t->len, &bad))
      rc = fail(h, err, LP_EINVAL, "python: text %zu is not valid UTF-8 (byte %zu)", i + 1,
                bad + 1);
    else if (py_map_text(t->data ? t->data : "", t->len, &mapped[i]) ||
             py_buf_put(&mapped[i], "", 0))
      rc = fail(h, err, LP_ENOMEM, "python: out of memory");
    else
      sent[i] = mapped[i].data, lens[i] = mapped[i].len;
  }
  /* Trainer flags: see plugins/python/README.md, "Tokenizer". */
  char vs[32], thr[16], syms[2048];
  snprintf(vs, sizeof vs, "%d", (int)vocab_size);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  snprintf(thr, sizeof thr, "%ld", ncpu < 1 ? 1 : ncpu > 8 ? 8 : ncpu);
  size_t used = (size_t)snprintf(syms, sizeof syms, "%s,%s,%s", PY_NL, PY_TAB, PY_ESC);
  for (int i = 0; i < PY_N_ARG_SYMS; i++)
    used += (size_t)snprintf(syms + used, sizeof syms - used, ",ARG_%d", i);
  for (int i = 0; i < PY_N_VAR_SYMS; i++)
    used += (size_t)snprintf(syms + used, sizeof syms - used, ",VAR_%d", i);
  const char *kv[] = {"model_type", "unigram",
                      "vocab_size", vs,
                      "character_coverage", "0.9999",
                      "byte_fallback", "true",
                      "normalization_rule_name", "identity",
                      "remove_extra_whitespaces", "false",
                      "add_dummy_prefix", "false",
                      "split_by_whitespace", "true",
                      "allow_whitespace_only_pieces", "true",
                      "split_digits", "false",
                      "max_sentence_length", "262144",
                      "max_sentencepiece_length", "16",
                      "pad_id", "0", "bos_id", "1", "eos_id", "2", "unk_id", "3",
                      "pad_piece", "<pad>", "bos_piece", "<s>", "eos_piece", "</s>",
                      "unk_piece", "<unk>",
                      "user_defined_symbols", syms,
                      "hard_vocab_limit", "true",
                      "num_threads", thr,
                      NULL};
  char *model = NULL, msg[LP_ERR_MSG_MAX - 64];
  size_t model_len = 0;
  if (rc == LP_OK) {
    int r = py_spm_train(sent, lens, n, kv, TRAIN_SEED, &model, &model_len, msg, sizeof msg);
    if (r) rc = fail(h, err, spm_code(r), "python: tokenizer training failed: %s", msg);
  }
  for (size_t i = 0; mapped && i < n; i++) py_buf_free(&mapped[i]);
  free(mapped);
  free((void *)sent);
  free(lens);
  if (rc == LP_OK) {
    /* check the new model before putting it in place */
    py_inst probe;
    memset(&probe, 0, sizeof probe);
    probe.host = h;
    int r = py_spm_load_bytes(model, model_len, &probe.spm, msg, sizeof msg);
    if (r) {
      rc = fail(h, err, spm_code(r), "python: the trained model does not load: %s", msg);
    } else {
      probe.size = py_spm_size(probe.spm);
      probe.pad = py_spm_pad_id(probe.spm);
      probe.bos = py_spm_bos_id(probe.spm);
      probe.eos = py_spm_eos_id(probe.spm);
      probe.unk = py_spm_unk_id(probe.spm);
      rc = check_model(&probe, out_path, err);
      py_spm_free(probe.spm);
    }
  }
  if (rc == LP_OK) {
    rc = h->write_file_atomic(out_path, model, model_len, err);
    if (rc != LP_OK) rc = fail(h, err, rc, "python: %s", err ? err->msg : "cannot write the model");
  }
  free(model);
  return rc;
}

static const lp_domain_desc python_desc = {
    .struct_size = sizeof(lp_domain_desc),
    .abi_major = LP_PLUGIN_ABI_MAJOR,
    .abi_minor = LP_PLUGIN_ABI_MINOR,
    .caps = LP_CAP_ANONYMISE | LP_CAP_EXTRACT | LP_CAP_TOKENIZER | LP_CAP_WELLFORMED,
    .name = "python",
    .version = "1.0.0",
    .description = "Python functions from docstrings (code generation, section 5.3 of Latent "
                   "Programmer); SentencePiece vocabulary",
    .spec_parts = 1,
    .reserved0 = 0,
    .create = py_create,
    .destroy = py_destroy,
    .program_vocab = py_vocab,
    .program_token = py_token,
    .program_encode = py_program_encode,
    .program_decode = py_program_decode,
    .spec_vocab = py_vocab,
    .spec_token = py_token,
    .spec_encode = py_spec_encode,
    .anonymise = py_anonymise_ids,
    .extract_pairs = py_extract_pairs,
    .tokenizer_train = py_tokenizer_train,
    .wellformed = py_wellformed,
};

LP_PLUGIN_EXPORT const lp_domain_desc *lp_plugin_entry(void);
LP_PLUGIN_EXPORT const lp_domain_desc *lp_plugin_entry(void) { return &python_desc; }

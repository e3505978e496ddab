/* A minimal one-part ("text specification") domain for tests/task: a program
 * is any text without '!', one token per byte; a spec is one token per
 * printable ASCII byte (others: UNK, counted). Enough to read docstring/code
 * pairs and "specs" lines through the task reader. */
#include <string.h>

#include "lpsynth/plugin.h"

enum { P_PAD = 0, P_EOS = 1, P_BYTE0 = 2, P_COUNT = 258 };
enum { S_PAD = 0, S_UNK = 1, S_CHAR0 = 2, S_COUNT = 2 + 95 };

typedef struct fx {
  const lp_host_api *host;
  char text[256][2];
} fx;

static int fx_create(const lp_host_api *host, const char *options, void **self, lp_err *err) {
  (void)options;
  fx *t = host->alloc(sizeof *t);
  if (!t) return host->set_error(err, LP_ENOMEM, "fx_text: out of memory");
  t->host = host;
  for (int c = 0; c < 256; c++) t->text[c][0] = (char)c, t->text[c][1] = 0;
  *self = t;
  return LP_OK;
}

static void fx_destroy(void *self) {
  fx *t = self;
  if (t) t->host->free(t);
}

static int fx_program_vocab(void *self, lp_vocab_info *out) {
  (void)self;
  out->size = P_COUNT, out->pad = P_PAD, out->bos = -1, out->eos = P_EOS, out->unk = -1;
  return LP_OK;
}

static const char *fx_program_token(void *self, int32_t id) {
  const fx *t = self;
  if (id == P_PAD) return "<pad>";
  if (id == P_EOS) return "<eos>";
  return id >= P_BYTE0 && id < P_COUNT ? t->text[id - P_BYTE0] : NULL;
}

static int fx_program_encode(void *self, const char *text, size_t len, lp_ids *out, lp_err *err) {
  const fx *t = self;
  for (size_t i = 0; i < len; i++) {
    if (text[i] == '!')
      return t->host->set_error(err, LP_EINVAL, "fx_text: '!' at byte %zu", i + 1);
    if (t->host->ids_push(out, P_BYTE0 + (unsigned char)text[i]))
      return t->host->set_error(err, LP_ENOMEM, "fx_text: out of memory");
  }
  if (t->host->ids_push(out, P_EOS)) return t->host->set_error(err, LP_ENOMEM, "out of memory");
  return LP_OK;
}

static int fx_program_decode(void *self, const int32_t *ids, size_t n, lp_buf *out, lp_err *err) {
  const fx *t = self;
  for (size_t i = 0; i < n && ids[i] != P_EOS; i++) {
    if (ids[i] < P_BYTE0 || ids[i] >= P_COUNT)
      return t->host->set_error(err, LP_EINVAL, "fx_text: token %d", ids[i]);
    char c = (char)(ids[i] - P_BYTE0);
    if (t->host->buf_append(out, &c, 1)) return t->host->set_error(err, LP_ENOMEM, "no memory");
  }
  return LP_OK;
}

static int fx_spec_vocab(void *self, lp_vocab_info *out) {
  (void)self;
  out->size = S_COUNT, out->pad = S_PAD, out->bos = -1, out->eos = -1, out->unk = S_UNK;
  return LP_OK;
}

static const char *fx_spec_token(void *self, int32_t id) {
  const fx *t = self;
  if (id == S_PAD) return "<pad>";
  if (id == S_UNK) return "<unk>";
  return id >= S_CHAR0 && id < S_COUNT ? t->text[id - S_CHAR0 + 32] : NULL;
}

static int fx_spec_encode(void *self, uint32_t part, const char *text, size_t len, lp_ids *out,
                          size_t *n_unknown, lp_err *err) {
  const fx *t = self;
  if (part != 0) return t->host->set_error(err, LP_EINVAL, "fx_text: no part %u", part);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    int32_t id = c >= 32 && c < 127 ? S_CHAR0 + (c - 32) : S_UNK;
    if (id == S_UNK && n_unknown) ++*n_unknown;
    if (t->host->ids_push(out, id)) return t->host->set_error(err, LP_ENOMEM, "out of memory");
  }
  return LP_OK;
}

static const lp_domain_desc fx_desc = {
    .struct_size = sizeof(lp_domain_desc),
    .abi_major = LP_PLUGIN_ABI_MAJOR,
    .abi_minor = LP_PLUGIN_ABI_MINOR,
    .caps = 0,
    .name = "fx_text",
    .version = "1.0.0",
    .description = "test fixture: a one-part text domain (tests/task)",
    .spec_parts = 1,
    .create = fx_create,
    .destroy = fx_destroy,
    .program_vocab = fx_program_vocab,
    .program_token = fx_program_token,
    .program_encode = fx_program_encode,
    .program_decode = fx_program_decode,
    .spec_vocab = fx_spec_vocab,
    .spec_token = fx_spec_token,
    .spec_encode = fx_spec_encode,
};

LP_PLUGIN_EXPORT const lp_domain_desc *lp_plugin_entry(void);
LP_PLUGIN_EXPORT const lp_domain_desc *lp_plugin_entry(void) { return &fx_desc; }

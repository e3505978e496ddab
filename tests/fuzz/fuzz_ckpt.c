/* Fuzz target: the checkpoint reader, as `ckpt info`, synth/eval --model and
 * train --resume read a file: lp_ckpt_decode, then lp_ckpt_check_model (the
 * checks lp_ckpt_load runs before it trusts the file).
 *
 * Input: one mode byte, then the file. Mode bit 0: patch the header's length
 * field and the trailing CRC-32C to match the mutated bytes (else nearly
 * every mutation stops at the checksum); bit 1: LP_CKPT_INFO_ONLY.
 * Invariants: no crash, no leak, no sanitizer report; a refusal has a message
 * naming the origin; a decoded checkpoint has as many parameters as its
 * layout, encodes again, and decode(encode(c)) encodes to the same bytes; the
 * model check refuses with a message or accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/checkpoint.h"

static void put_le(unsigned char *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static int named(const lp_err *e) { return e->msg[0] && !strncmp(e->msg, "<fuzz>", 6); }

/* Building a model allocates by the config: only small ones (the committed
 * seeds are), so the target's memory stays bounded. */
static int small_model(const lp_ckpt *c) {
  lp_model_cfg cfg;
  lp_model_cfg_default(&cfg, LP_MODEL_ROBUSTFILL);
  lp_err e = {0};
  if (lp_model_cfg_parse(&cfg, c->config_text, strlen(c->config_text), "<fuzz>", &e)) return 1;
  return cfg.d_model <= 64 && cfg.d_ff <= 256 && cfg.n_heads <= 8 && cfg.n_enc_layers <= 2 &&
         cfg.n_dec_layers <= 2 && cfg.max_spec_len <= 64 && cfg.max_program_len <= 64 &&
         cfg.latent_K <= 64 && cfg.latent_l <= 4 && c->domain.spec.size <= 1024 &&
         c->domain.prog.size <= 1024;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned mode = data[0];
  data++, size--;
  unsigned char *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  if (size) memcpy(buf, data, size);
  if ((mode & 1) && size >= 28 && !memcmp(buf, LP_CKPT_MAGIC, 8)) {
    put_le(buf + 16, size, 8);
    put_le(buf + size - 4, lp_crc32c(0, buf, size - 4), 4);
  }
  unsigned flags = (mode & 2) ? LP_CKPT_INFO_ONLY : 0;
  lp_ckpt c;
  lp_err e = {0};
  if (lp_ckpt_decode(buf, size, "<fuzz>", flags, &c, &e) != LP_OK) {
    if (!named(&e)) abort();
    free(buf);
    return 0;
  }
  if (!c.layout || !c.config_text || !c.metadata || c.n_params != lp_layout_numel(c.layout))
    abort();
  if (!flags) {
    unsigned char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    lp_ckpt d;
    if (lp_ckpt_encode(&c, &a, &na, &e) != LP_OK) abort();
    if (lp_ckpt_decode(a, na, "<fuzz>", 0, &d, &e) != LP_OK) abort();
    if (lp_ckpt_encode(&d, &b, &nb, &e) != LP_OK) abort();
    if (na != nb || memcmp(a, b, na) != 0) abort();
    lp_ckpt_free(&d);
    free(a);
    free(b);
  }
  if (small_model(&c)) {
    lp_err me = {0};
    if (lp_ckpt_check_model(&c, "<fuzz>", NULL, &me) != LP_OK && !named(&me)) abort();
  }
  lp_ckpt_free(&c);
  free(buf);
  return 0;
}

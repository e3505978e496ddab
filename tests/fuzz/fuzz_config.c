/* Fuzz target: the model config parser (lp_model_cfg_parse), as train
 * --config reads a file and synth, eval and ckpt info read a checkpoint's
 * stored config. Input: one byte (bit 0: the kind the defaults start from),
 * then the text.
 * Invariants: no crash, no leak; a refusal has a message naming the origin;
 * an accepted config passes lp_model_cfg_check, and its canonical text
 * (lp_model_cfg_to_text, what checkpoints store) parses back to the same
 * canonical text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/model.h"
#include "lpsynth/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  lp_model_cfg c;
  lp_model_cfg_default(&c, (data[0] & 1) ? LP_MODEL_LP : LP_MODEL_ROBUSTFILL);
  lp_err e = {0};
  if (lp_model_cfg_parse(&c, (const char *)data + 1, size - 1, "<cfg>", &e) != LP_OK) {
    if (!e.msg[0] || strncmp(e.msg, "<cfg>", 5)) abort();
    return 0;
  }
  if (lp_model_cfg_check(&c, &e) != LP_OK) abort();
  lp_buf t = {0}, t2 = {0};
  if (lp_model_cfg_to_text(&c, &t) != LP_OK) abort();
  lp_model_cfg d;
  lp_model_cfg_default(&d, LP_MODEL_ROBUSTFILL);
  if (lp_model_cfg_parse(&d, t.data, t.len, "<canonical>", &e) != LP_OK) abort();
  if (lp_model_cfg_to_text(&d, &t2) != LP_OK) abort();
  if (t.len != t2.len || memcmp(t.data, t2.data, t.len) != 0) abort();
  lp_buf_free(&t);
  lp_buf_free(&t2);
  return 0;
}

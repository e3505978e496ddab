/* Fuzz target: the python domain's SentencePiece model loading path - what
 * `--domain-options MODEL` (and CKPT.spm beside a checkpoint) goes through:
 * the plugin's create() on a model file, then its vocabulary, encoders,
 * decoder and anonymiser on a loaded model.
 * The input is the model file (handed over as /proc/self/fd/N of a memfd).
 * Invariants: no crash, no leak, no abort from SentencePiece; a refused file
 * has a message; a loaded model has PAD/BOS/EOS within its vocabulary, every
 * id it encodes to is in range, and a program ends with EOS. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lpsynth/plugin.h"
#include "lpsynth/runtime.h"

const lp_domain_desc *lp_plugin_entry(void);

static void quiet(int level, const char *msg) { (void)level, (void)msg; }

static void check_ids(const lp_ids *v, const lp_vocab_info *vi) {
  for (size_t i = 0; i < v->len; i++)
    if (v->data[i] < 0 || v->data[i] >= vi->size) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int fd = -1;
  if (fd < 0) {
    lp_set_log(quiet, LP_LOG_DEBUG);
    fd = memfd_create("spm", 0);
    if (fd < 0) abort();
  }
  if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  const lp_domain_desc *d = lp_plugin_entry();
  void *self = NULL;
  lp_err e = {0};
  if (d->create(lp_host_api_get(), path, &self, &e) != LP_OK) {
    if (self || !e.msg[0]) abort();
    return 0;
  }
  lp_vocab_info v;
  if (d->program_vocab(self, &v) != LP_OK || v.size < 1) abort();
  if (v.pad < 0 || v.pad >= v.size || v.bos < 0 || v.bos >= v.size || v.eos < 0 ||
      v.eos >= v.size)
    abort();
  for (int32_t id = 0; id < v.size && id < 4096; id++)
    if (!d->program_token(self, id)) abort();
  static const char *texts[] = {
      "def f(a, b):\n    x = a + b\n    return x * 2\n",
      "Return the sum of two numbers.\n\tTabs, 'quotes', \xc3\xa9\xe2\x82\xac\xf0\x9f\x90\x8d",
      "class K:\n    def m(self, ARG_0):\n        return VAR_3 # \x01\xee\x80\x80\n",
  };
  for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
    lp_ids ids = {0}, anon = {0};
    lp_buf back = {0};
    size_t unk = 0;
    lp_err e2 = {0};
    if (d->program_encode(self, texts[k], strlen(texts[k]), &ids, &e2) == LP_OK) {
      check_ids(&ids, &v);
      if (!ids.len || ids.data[ids.len - 1] != v.eos) abort();
      d->program_decode(self, ids.data, ids.len, &back, &e2);
      if (d->anonymise(self, ids.data, ids.len, &anon, &e2) == LP_OK) check_ids(&anon, &v);
    } else if (!e2.msg[0]) {
      abort();
    }
    lp_ids_free(&ids);
    ids.len = 0;
    if (d->spec_encode(self, 0, texts[k], strlen(texts[k]), &ids, &unk, &e2) == LP_OK)
      check_ids(&ids, &v);
    lp_ids_free(&ids);
    lp_ids_free(&anon);
    lp_buf_free(&back);
  }
  d->destroy(self);
  return 0;
}

/* Fuzz target: the loader's descriptor checks (lp_desc_validate), fed
 * descriptors whose sizes, versions, flags, names and function slots come
 * from the input. Invariant: a descriptor that passes has every required
 * function, a function for every claimed capability, a valid name, and a
 * copy that is zero beyond the plugin's struct_size. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/runtime.h"

static void dummy(void) {}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 16) return 0;
  static const char *names[] = {"string", "toy", "", "Bad-Name", "a_very_long_name_that_goes_on_and_on_and_on_and_on_and_on_and_on_x",
                                "x1", NULL};
  lp_domain_desc d;
  memset(&d, 0, sizeof d);
  uint32_t sz;
  memcpy(&sz, data, 4);
  d.struct_size = sz % (sizeof d + 64);
  d.abi_major = data[4] % 3;
  d.abi_minor = data[5];
  d.caps = data[6] | ((uint32_t)(data[7] & 0xC0) << 2);
  d.spec_parts = data[8] % 4;
  d.name = names[data[9] % 7];
  d.version = (data[10] & 1) ? "1.0" : NULL;
  d.description = (data[10] & 2) ? "fuzz" : NULL;
  /* Function slots: one bit each, from the remaining bytes. */
  size_t first = offsetof(lp_domain_desc, create);
  size_t nslots = (sizeof d - first) / sizeof(void (*)(void));
  void (*fp)(void) = dummy;
  for (size_t i = 0; i < nslots; i++) {
    size_t byte = 11 + i / 8;
    int on = byte < size ? (data[byte] >> (i % 8)) & 1 : 1;
    if (on) memcpy((char *)&d + first + i * sizeof fp, &fp, sizeof fp);
  }
  lp_domain_desc out;
  lp_err e = {0};
  if (lp_desc_validate(&d, "fuzz.so", &out, &e) == LP_OK) {
    if (out.abi_major != LP_PLUGIN_ABI_MAJOR || out.struct_size < LP_DOMAIN_DESC_MIN_SIZE) abort();
    if (!out.create || !out.destroy || !out.program_vocab || !out.program_token ||
        !out.program_encode || !out.program_decode || !out.spec_vocab || !out.spec_token ||
        !out.spec_encode)
      abort();
    if (((out.caps & LP_CAP_EXECUTE) && !out.execute) || ((out.caps & LP_CAP_CHECK) && !out.check) ||
        ((out.caps & LP_CAP_GENERATE) && !out.generate) ||
        ((out.caps & LP_CAP_ANONYMISE) && !out.anonymise) ||
        ((out.caps & LP_CAP_PREFIX) && !out.prefix_ok) ||
        ((out.caps & LP_CAP_LENGTH) && !out.program_size))
      abort();
    if (!out.name || !out.name[0] || (out.spec_parts != 1 && out.spec_parts != 2)) abort();
    for (size_t i = out.struct_size; i < sizeof out; i++)
      if (((const unsigned char *)&out)[i]) abort();
  } else {
    if (!e.msg[0] || strstr(e.msg, "fuzz.so") == NULL) abort();
  }
  return 0;
}

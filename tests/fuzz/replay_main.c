/* Driver for fuzz targets in builds without libFuzzer: runs the target on
 * every file given, then on N deterministic mutations of them (bit flips,
 * byte changes, truncations, splices) so the suite exercises the same code
 * under ASan/UBSan. Usage: replay [-n N] FILE... */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

int main(int argc, char **argv) {
  long n = 10000;
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "-n") == 0) {
    n = atol(argv[2]);
    first = 3;
  }
  size_t nf = 0;
  uint8_t **bufs = calloc((size_t)argc, sizeof *bufs);
  size_t *lens = calloc((size_t)argc, sizeof *lens);
  for (int i = first; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      fprintf(stderr, "replay: cannot open %s\n", argv[i]);
      return 1;
    }
    uint8_t *b = malloc(1 << 20);
    size_t l = fread(b, 1, 1 << 20, f);
    fclose(f);
    LLVMFuzzerTestOneInput(b, l);
    bufs[nf] = b;
    lens[nf++] = l;
  }
  if (nf == 0) {
    fprintf(stderr, "replay: no corpus files\n");
    return 1;
  }
  uint8_t *m = malloc(1 << 21);
  for (long k = 0; k < n; k++) {
    size_t i = next() % nf, l = lens[i];
    memcpy(m, bufs[i], l);
    int edits = 1 + (int)(next() % 4);
    for (int e = 0; e < edits; e++) {
      switch (next() % 5) {
        case 0:
          if (l) m[next() % l] ^= (uint8_t)(1u << (next() % 8));
          break;
        case 1:
          if (l) m[next() % l] = (uint8_t)next();
          break;
        case 2:
          if (l) l = next() % l;
          break;
        case 3: { /* splice a piece of another file */
          size_t j = next() % nf;
          if (lens[j] && l + 64 < (1u << 21)) {
            size_t from = next() % lens[j], cnt = 1 + next() % 32;
            if (from + cnt > lens[j]) cnt = lens[j] - from;
            size_t at = l ? next() % l : 0;
            memmove(m + at + cnt, m + at, l - at);
            memcpy(m + at, bufs[j] + from, cnt);
            l += cnt;
          }
          break;
        }
        default:
          if (l < (1u << 21) - 1) m[l++] = (uint8_t)next();
      }
    }
    LLVMFuzzerTestOneInput(m, l);
  }
  printf("replay: %zu corpus files and %ld mutations ran clean\n", nf, n);
  for (size_t i = 0; i < nf; i++) free(bufs[i]);
  free(bufs);
  free(lens);
  free(m);
  return 0;
}

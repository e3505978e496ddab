/* cli_beam_diversity (cli/common.c): distinct n-grams in a beam / its tokens,
 * the measure of the Latent Programmer paper's Figure 5(a). Hand-computed
 * cases, then random beams against a brute-force count. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int failures;
#define CHECK(c, ...)                                   \
  do {                                                  \
    if (!(c)) {                                         \
      fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);   \
      fprintf(stderr, __VA_ARGS__);                     \
      fputc('\n', stderr);                              \
      failures++;                                       \
    }                                                   \
  } while (0)

static int near(double a, double b) { return a - b < 1e-12 && b - a < 1e-12; }

/* Distinct n-grams by pairwise comparison. */
static long brute(const int32_t *const *s, const int *len, int k, int n) {
  long d = 0;
  for (int a = 0; a < k; a++)
    for (int i = 0; i + n <= len[a]; i++) {
      int seen = 0;
      for (int b = 0; b <= a && !seen; b++)
        for (int j = 0; j + n <= len[b] && !seen; j++) {
          if (b == a && j >= i) break;
          seen = memcmp(s[a] + i, s[b] + j, (size_t)n * sizeof(int32_t)) == 0;
        }
      d += !seen;
    }
  return d;
}

int main(void) {
  double out[5];
  /* [1 2 3 4], [1 2 3 5], [9], []: 9 tokens.
   * 1-grams {1,2,3,4,5,9}: 6; 2-grams {12,23,34,35}: 4; 3-grams {123,234,235}: 3;
   * 4-grams {1234,1235}: 2; 5-grams: none. */
  {
    int32_t a[] = {1, 2, 3, 4}, b[] = {1, 2, 3, 5}, c[] = {9};
    const int32_t *s[] = {a, b, c, NULL};
    int len[] = {4, 4, 1, 0};
    long tot = cli_beam_diversity(s, len, 4, 5, out);
    CHECK(tot == 9, "total %ld, want 9", tot);
    CHECK(near(out[0], 6.0 / 9), "distinct-1 %g, want 6/9", out[0]);
    CHECK(near(out[1], 4.0 / 9), "distinct-2 %g, want 4/9", out[1]);
    CHECK(near(out[2], 3.0 / 9), "distinct-3 %g, want 3/9", out[2]);
    CHECK(near(out[3], 2.0 / 9), "distinct-4 %g, want 2/9", out[3]);
    CHECK(out[4] == 0, "distinct-5 %g, want 0", out[4]);
  }
  /* n-grams do not cross programs: [1 2], [3]: the 2-gram (2 3) is not there */
  {
    int32_t a[] = {1, 2}, b[] = {3};
    const int32_t *s[] = {a, b};
    int len[] = {2, 1};
    cli_beam_diversity(s, len, 2, 2, out);
    CHECK(near(out[0], 1.0) && near(out[1], 1.0 / 3), "across programs: %g %g", out[0], out[1]);
  }
  /* a beam of B copies of one program of m distinct tokens: distinct-n = (m-n+1) / (B m) */
  {
    int32_t a[] = {4, 8, 15, 16, 23, 42};
    const int32_t *s[10];
    int len[10];
    for (int i = 0; i < 10; i++) s[i] = a, len[i] = 6;
    long tot = cli_beam_diversity(s, len, 10, 4, out);
    CHECK(tot == 60, "copies: total %ld", tot);
    for (int n = 1; n <= 4; n++)
      CHECK(near(out[n - 1], (6.0 - n + 1) / 60), "copies: distinct-%d %g", n, out[n - 1]);
  }
  /* repeated token within one program: [7 7 7 7]: 1-grams 1, 2-grams 1, ... */
  {
    int32_t a[] = {7, 7, 7, 7};
    const int32_t *s[] = {a};
    int len[] = {4};
    cli_beam_diversity(s, len, 1, 4, out);
    for (int n = 1; n <= 4; n++) CHECK(near(out[n - 1], 0.25), "[7 7 7 7]: distinct-%d %g", n, out[n - 1]);
  }
  /* no tokens at all: 0, and every ratio 0 */
  {
    const int32_t *s[] = {NULL, NULL};
    int len[] = {0, 0};
    out[0] = out[1] = 9;
    CHECK(cli_beam_diversity(s, len, 2, 2, out) == 0 && out[0] == 0 && out[1] == 0, "empty beam");
    CHECK(cli_beam_diversity(s, len, 0, 2, out) == 0 && out[0] == 0, "no programs");
  }
  /* random beams (small alphabets, so n-grams repeat) against the brute-force count */
  srand(12345);
  for (int trial = 0; trial < 300; trial++) {
    int k = 1 + rand() % 12, alpha = 1 + rand() % 6;
    int32_t *buf[12];
    const int32_t *s[12];
    int len[12];
    long total = 0;
    for (int i = 0; i < k; i++) {
      len[i] = rand() % 30;
      buf[i] = malloc(sizeof(int32_t) * (size_t)(len[i] + 1));
      for (int j = 0; j < len[i]; j++) buf[i][j] = rand() % alpha - 2;
      s[i] = buf[i];
      total += len[i];
    }
    long tot = cli_beam_diversity(s, len, k, 5, out);
    CHECK(tot == total, "trial %d: total %ld, want %ld", trial, tot, total);
    for (int n = 1; n <= 5 && total; n++) {
      double want = (double)brute(s, len, k, n) / (double)total;
      CHECK(near(out[n - 1], want), "trial %d: distinct-%d %g, want %g", trial, n, out[n - 1], want);
    }
    for (int i = 0; i < k; i++) free(buf[i]);
  }
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  printf("beam diversity: all checks passed\n");
  return 0;
}

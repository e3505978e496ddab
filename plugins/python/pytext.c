/* Byte buffers, UTF-8 validation and the reversible text mapping applied
 * before SentencePiece sees a text (see pyint.h). */
#include <stdlib.h>
#include <string.h>

#include "pyint.h"

int py_buf_put(py_buf *b, const void *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 64;
    while (nc < b->len + n + 1) {
      if (nc > ((size_t)-1) / 2) return PY_ENOMEM;
      nc *= 2;
    }
    char *p = realloc(b->data, nc);
    if (!p) return PY_ENOMEM;
    b->data = p;
    b->cap = nc;
  }
  if (n) memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
  return PY_OK;
}

void py_buf_free(py_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t k;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) k = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) k = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) k = 4, cp = c & 0x07;
  else return 0;
  if (n < k) return 0;
  for (size_t i = 1; i < k; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return k;
}

int py_utf8_valid(const char *s, size_t n, size_t *bad) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    if (u[i] < 0x80) {
      i++;
      continue;
    }
    size_t k = utf8_seq(u + i, n - i);
    if (!k) {
      if (bad) *bad = i;
      return 0;
    }
    i += k;
  }
  return 1;
}

/* The four code points that need an escape, as UTF-8, and their letters. */
static const struct {
  const char *utf8;
  char letter;
} escaped[] = {
    {"\xe2\x96\x81", 'a'}, /* U+2581, SentencePiece's space marker */
    {PY_NL, 'b'},
    {PY_TAB, 'c'},
    {PY_ESC, 'd'},
};

int py_map_text(const char *s, size_t n, py_buf *out) {
  size_t run = 0; /* start of the pending verbatim run */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *rep = NULL;
    size_t skip = 1;
    char esc[4];
    if (c == '\n') {
      rep = PY_NL;
    } else if (c == '\t') {
      rep = PY_TAB;
    } else if ((c == 0xE2 || c == 0xEE) && n - i >= 3) {
      for (size_t k = 0; k < sizeof escaped / sizeof *escaped; k++)
        if (memcmp(s + i, escaped[k].utf8, 3) == 0) {
          memcpy(esc, PY_ESC, 3);
          esc[3] = escaped[k].letter;
          rep = esc;
          skip = 3;
          break;
        }
    }
    if (!rep) continue;
    if (py_buf_put(out, s + run, i - run) ||
        py_buf_put(out, rep, rep == esc ? 4 : 3))
      return PY_ENOMEM;
    i += skip - 1;
    run = i + 1;
  }
  return py_buf_put(out, s + run, n - run);
}

int py_unmap_text(const char *s, size_t n, py_buf *out) {
  size_t run = 0;
  for (size_t i = 0; i + 3 <= n; i++) {
    if ((unsigned char)s[i] != 0xEE || (unsigned char)s[i + 1] != 0x80) continue;
    unsigned char t = (unsigned char)s[i + 2];
    const char *rep = NULL;
    size_t used = 3, rl = 1;
    if (t == 0x80) {
      rep = "\n";
    } else if (t == 0x81) {
      rep = "\t";
    } else if (t == 0x82 && i + 3 < n) {
      for (size_t k = 0; k < sizeof escaped / sizeof *escaped; k++)
        if (s[i + 3] == escaped[k].letter) {
          rep = escaped[k].utf8;
          rl = 3;
          used = 4;
          break;
        }
    }
    if (!rep) continue; /* a stray escape stays as it is */
    if (py_buf_put(out, s + run, i - run) || py_buf_put(out, rep, rl)) return PY_ENOMEM;
    i += used - 1;
    run = i + 1;
  }
  return py_buf_put(out, s + run, n - run);
}

/* Random task generator of the string (RobustFill) DSL: spec "Random tasks".
 *
 * It follows the distributions of the Latent Programmer reference sampler
 * (12-operation version): inputs built from 3..10 tokens, expressions drawn
 * per category (substring, nesting, compose, ConstStr: 1/4 each) with their
 * arguments taken from the delimiters and types present in the inputs, each
 * expression redrawn until it is non-empty on every input (except ToCase,
 * Replace, Trim and ConstStr), and the whole program redrawn until every
 * output has 1..100 characters.
 *
 * Implementation notes
 *  - Randomness: xoshiro256** seeded by splitmix64 from the seed; integer-only
 *    uniform draws (Lemire's method with rejection). All state is local to one
 *    call, so the function is thread-safe and the same seed gives the same task
 *    on every machine.
 *  - Candidate expressions that are not Compose are judged from per-input
 *    tables of regex matches (computed lazily, once per regex and input set),
 *    without building their output strings. Compose candidates are evaluated
 *    with the interpreter (sd_eval_expr), except that an outer ToCase or
 *    Replace keeps the inner length; the final outputs come from sd_eval, so a
 *    task is always consistent with the interpreter.
 *  - The expressions of one program are independent draws, so they are drawn
 *    in a convenient order (categories first, the Compose ones last) and a
 *    program is abandoned as soon as a partial output exceeds 100 characters:
 *    this rejects exactly the programs the reference rejects, so the accepted
 *    distribution is the same, only faster.
 *  - Every redraw loop is bounded. An expression that cannot be drawn in
 *    GEN_TRIES_EXPR tries, or a program that cannot be drawn in GEN_TRIES_PROG
 *    tries, restarts the task from new inputs (keeping the number of
 *    expressions). After GEN_TRIES_RESTART input sets (options where the
 *    reference would practically never finish: from about 18 expressions up)
 *    the program is built expression by expression, each redrawn until the
 *    outputs still fit in 100 characters (a ConstStr always fits), so the call
 *    always ends. With the default options neither happens in practice.
 *  - Options: 0 selects the default (1..10 expressions, 4 examples); at most
 *    100 expressions (every expression but Trim adds at least one character to
 *    outputs of at most 100) and 1..16 examples.
 */
#include "strdsl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_MAX_IN 100          /* longest input */
#define GEN_MAX_OUT 100         /* longest output */
#define GEN_MAX_TOKEN_LEN 5     /* characters of a type token after its delimiter */
#define GEN_MAX_K 5             /* repetitions of an input token */
#define GEN_MIN_INPUT_TOKENS 3
#define GEN_MAX_INPUT_TOKENS 10
/* Early stop of the input tokens: 100 - 5 * 5 / 2 = 88, as the reference. */
#define GEN_STOP_LEN (GEN_MAX_IN - GEN_MAX_TOKEN_LEN * GEN_MAX_K / 2)
#define GEN_MAX_EXAMPLES 16
#define GEN_MAX_EXPR_OPT 100
#define GEN_MAX_PIECES (GEN_MAX_INPUT_TOKENS * GEN_MAX_K)
#define GEN_PIECE_MAX (2 + GEN_MAX_TOKEN_LEN) /* delimiter + capital + 5 lowercase */
#define GEN_PIECE_STRIDE 8                    /* pieces are copied 8 bytes at a time */
#define GEN_JOIN_MAX (GEN_MAX_IN + GEN_MAX_K * GEN_PIECE_MAX) /* longest joined input */
#define GEN_NUM_REGEX SD_NUM_REGEX

#define GEN_DEF_MIN_EXPR 1
#define GEN_DEF_MAX_EXPR 10
#define GEN_DEF_EXAMPLES 4

/* Bounds of the redraw loops. */
#define GEN_TRIES_INPUTS 10000  /* input sets longer than 100 characters */
#define GEN_TRIES_EXPR 1000     /* redraws of one expression until non-empty */
#define GEN_TRIES_PROG 4000     /* programs tried on the same inputs */
#define GEN_TRIES_RESTART 4     /* fresh inputs before the fallback */
#define GEN_TRIES_FALLBACK 200  /* expressions tried per position in the fallback */

/* ---------------------------------------------------------------- PRNG */

typedef struct gen_rng {
  uint64_t s[4];
} gen_rng;

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static void rng_seed(gen_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

/* xoshiro256** */
static inline uint64_t rng_next(gen_rng *r) {
  uint64_t *s = r->s;
  const uint64_t result = rotl64(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl64(s[3], 45);
  return result;
}

/* Uniform integer in [0, n), n >= 1 (Lemire's multiply-shift with rejection). */
static inline uint32_t rng_below(gen_rng *r, uint32_t n) {
  uint64_t m = (uint64_t)(uint32_t)(rng_next(r) >> 32) * n;
  uint32_t l = (uint32_t)m;
  if (l < n) {
    const uint32_t t = (uint32_t)(0u - n) % n;
    while (l < t) {
      m = (uint64_t)(uint32_t)(rng_next(r) >> 32) * n;
      l = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

/* Uniform integer in [lo, hi] (Python's random.randint). */
static inline int rng_range(gen_rng *r, int lo, int hi) {
  return lo + (int)rng_below(r, (uint32_t)(hi - lo + 1));
}

/* ------------------------------------------------------ characters */

enum { C_DIG = 1, C_UP = 2, C_LO = 4, C_DELIM = 8 };

/* Class bits of the ASCII characters of the alphabet (0 for the others). */
static const uint8_t gen_cls[128] = {
  ['0'] = C_DIG, ['1'] = C_DIG, ['2'] = C_DIG, ['3'] = C_DIG, ['4'] = C_DIG,
  ['5'] = C_DIG, ['6'] = C_DIG, ['7'] = C_DIG, ['8'] = C_DIG, ['9'] = C_DIG,
  ['A'] = C_UP, ['B'] = C_UP, ['C'] = C_UP, ['D'] = C_UP, ['E'] = C_UP, ['F'] = C_UP,
  ['G'] = C_UP, ['H'] = C_UP, ['I'] = C_UP, ['J'] = C_UP, ['K'] = C_UP, ['L'] = C_UP,
  ['M'] = C_UP, ['N'] = C_UP, ['O'] = C_UP, ['P'] = C_UP, ['Q'] = C_UP, ['R'] = C_UP,
  ['S'] = C_UP, ['T'] = C_UP, ['U'] = C_UP, ['V'] = C_UP, ['W'] = C_UP, ['X'] = C_UP,
  ['Y'] = C_UP, ['Z'] = C_UP,
  ['a'] = C_LO, ['b'] = C_LO, ['c'] = C_LO, ['d'] = C_LO, ['e'] = C_LO, ['f'] = C_LO,
  ['g'] = C_LO, ['h'] = C_LO, ['i'] = C_LO, ['j'] = C_LO, ['k'] = C_LO, ['l'] = C_LO,
  ['m'] = C_LO, ['n'] = C_LO, ['o'] = C_LO, ['p'] = C_LO, ['q'] = C_LO, ['r'] = C_LO,
  ['s'] = C_LO, ['t'] = C_LO, ['u'] = C_LO, ['v'] = C_LO, ['w'] = C_LO, ['x'] = C_LO,
  ['y'] = C_LO, ['z'] = C_LO,
  ['&'] = C_DELIM, [','] = C_DELIM, ['.'] = C_DELIM, ['?'] = C_DELIM, ['!'] = C_DELIM,
  ['@'] = C_DELIM, ['('] = C_DELIM, [')'] = C_DELIM, ['['] = C_DELIM, [']'] = C_DELIM,
  ['%'] = C_DELIM, ['{'] = C_DELIM, ['}'] = C_DELIM, ['/'] = C_DELIM, [':'] = C_DELIM,
  [';'] = C_DELIM, ['$'] = C_DELIM, ['#'] = C_DELIM, ['"'] = C_DELIM, ['\''] = C_DELIM,
  [' '] = C_DELIM,
};

/* Whitespace stripped by Trim (the header's list). */
static inline int is_ws(uint32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == 0x85 ||
         c == 0xa0;
}

/* Characters that a type's input token is made of, as a range of sd_chars
 * indices (a-z 0..25, A-Z 26..51, 0-9 52..61). */
static const uint8_t type_chars_lo[SD_NUM_TYPES] = {52, 0, 0, 26, 0, 0, 52, 0};
static const uint8_t type_chars_n[SD_NUM_TYPES] = {10, 52, 62, 26, 26, 26, 10, 62};

/* -------------------------------------------------------- state */

typedef struct gen_match {
  uint8_t s, e;   /* span [s, e) */
  uint16_t cum;   /* total length of the matches up to and including this one */
} gen_match;

typedef struct gen {
  gen_rng r;
  int nex;                                    /* examples */
  int len[GEN_MAX_EXAMPLES];
  int minlen, maxlen;
  uint32_t in[GEN_MAX_EXAMPLES][GEN_JOIN_MAX];
  uint8_t inb[GEN_MAX_EXAMPLES][GEN_JOIN_MAX + GEN_PIECE_STRIDE]; /* the same, as bytes */
  /* class bits of each input character (gen_cls) */
  uint8_t cl[GEN_MAX_EXAMPLES][GEN_JOIN_MAX];

  /* the reference's type_dict / delimiter_dict: counts, and their keys */
  int tcnt[SD_NUM_TYPES];
  int dcnt[SD_NUM_DELIMS];
  uint8_t tkeys[SD_NUM_TYPES];
  uint8_t dkeys[SD_NUM_DELIMS];
  int ntk, ndk;

  /* input pieces while building the inputs */
  uint8_t piece[GEN_MAX_EXAMPLES][GEN_MAX_PIECES][GEN_PIECE_STRIDE];
  uint8_t plen[GEN_MAX_EXAMPLES][GEN_MAX_PIECES];
  uint8_t perm[GEN_MAX_PIECES];

  /* lazily computed regex matches per (regex, input) */
  uint8_t have[GEN_NUM_REGEX];
  uint16_t mcnt[GEN_NUM_REGEX][GEN_MAX_EXAMPLES];
  uint32_t moff[GEN_NUM_REGEX][GEN_MAX_EXAMPLES];
  gen_match *pool;
  size_t pool_used;
  /* the matches of CHAR: every position, since inputs only hold alphabet characters */
  gen_match every[GEN_MAX_IN];

  /* output lengths of the last expression drawn, and of the program so far */
  int elen[GEN_MAX_EXAMPLES];
  int cum[GEN_MAX_EXAMPLES];

  sd_expr ex[GEN_MAX_EXPR_OPT];
  sd_str tmp;                       /* Compose candidates */
  sd_str outs[GEN_MAX_EXAMPLES];    /* final outputs */
} gen;

/* ---------------------------------------------------------- inputs */

static void reset_matches(gen *g) {
  memset(g->have, 0, sizeof g->have);
  g->pool_used = 0;
}

/* Draws the inputs and the type/delimiter counts as the reference does. */
static void sample_inputs(gen *g) {
  const int nex = g->nex;
  for (int tries = 0;; tries++) {
    memset(g->tcnt, 0, sizeof g->tcnt);
    memset(g->dcnt, 0, sizeof g->dcnt);
    const int ntok = rng_range(&g->r, GEN_MIN_INPUT_TOKENS, GEN_MAX_INPUT_TOKENS);
    int np = 0, input_length = 0;
    for (int t = 0; t < ntok; t++) {
      if (rng_range(&g->r, 1, 3) == 1) {
        /* one delimiter repeated k times, the same in every example */
        const int d = (int)rng_below(&g->r, SD_NUM_DELIMS);
        const int k = rng_range(&g->r, 1, GEN_MAX_K);
        g->dcnt[d] += k;
        for (int rep = 0; rep < k; rep++, np++) {
          for (int j = 0; j < nex; j++) {
            g->piece[j][np][0] = (uint8_t)sd_chars[SD_FIRST_DELIM + d];
            g->plen[j][np] = 1;
          }
          input_length += 1;
        }
      } else {
        /* a type repeated k times: per example a delimiter then 1..5 characters */
        const int ty = (int)rng_below(&g->r, SD_NUM_TYPES);
        const int k = rng_range(&g->r, 1, GEN_MAX_K);
        g->tcnt[ty] += k;
        for (int rep = 0; rep < k; rep++, np++) {
          int maxl = 0;
          for (int j = 0; j < nex; j++) {
            uint8_t *p = g->piece[j][np];
            const int l = rng_range(&g->r, 1, GEN_MAX_TOKEN_LEN);
            const int d = (int)rng_below(&g->r, SD_NUM_DELIMS);
            int n = 0;
            p[n++] = (uint8_t)sd_chars[SD_FIRST_DELIM + d];
            g->dcnt[d] += 1;
            if (ty == SD_PROP_CASE) p[n++] = (uint8_t)sd_chars[26 + rng_below(&g->r, 26)];
            const int lo = type_chars_lo[ty];
            const uint32_t nc = type_chars_n[ty];
            for (int c = 0; c < l; c++) p[n++] = (uint8_t)sd_chars[lo + (int)rng_below(&g->r, nc)];
            g->plen[j][np] = (uint8_t)n;
            if (n > maxl) maxl = n;
          }
          input_length += maxl;
        }
      }
      if (input_length >= GEN_STOP_LEN) break;
    }

    /* shuffle each example's pieces independently, then join them */
    int too_long = 0;
    g->minlen = 1 << 30;
    g->maxlen = 0;
    for (int j = 0; j < nex; j++) {
      for (int i = 0; i < np; i++) g->perm[i] = (uint8_t)i;
      for (int i = np - 1; i > 0; i--) {
        const int k = (int)rng_below(&g->r, (uint32_t)(i + 1));
        const uint8_t tmp = g->perm[i];
        g->perm[i] = g->perm[k];
        g->perm[k] = tmp;
      }
      int L = 0;
      uint8_t *b = g->inb[j];
      for (int i = 0; i < np; i++) {
        const int pi = g->perm[i];
        memcpy(b + L, g->piece[j][pi], GEN_PIECE_STRIDE);
        L += g->plen[j][pi];
      }
      for (int i = 0; i < L; i++) {
        g->in[j][i] = b[i];
        g->cl[j][i] = gen_cls[b[i]];
      }
      if (L > GEN_MAX_IN) {
        too_long = 1;
        if (tries + 1 >= GEN_TRIES_INPUTS) L = GEN_MAX_IN; /* never reached in practice */
      }
      g->len[j] = L;
      if (L < g->minlen) g->minlen = L;
      if (L > g->maxlen) g->maxlen = L;
    }
    if (too_long && tries + 1 < GEN_TRIES_INPUTS) continue;

    /* every character is a CHAR */
    g->tcnt[SD_CHAR] = g->maxlen;
    g->ntk = g->ndk = 0;
    for (int t = 0; t < SD_NUM_TYPES; t++)
      if (g->tcnt[t] > 0) g->tkeys[g->ntk++] = (uint8_t)t;
    for (int d = 0; d < SD_NUM_DELIMS; d++)
      if (g->dcnt[d] > 0) g->dkeys[g->ndk++] = (uint8_t)d;
    reset_matches(g);
    return;
  }
}

/* ------------------------------------------------------ regex matches */

/* 1 + index 0..20 of each delimiter character (sd_chars order), 0 for the others. */
static const uint8_t gen_delim1[128] = {
  ['&'] = 1,  [','] = 2,  ['.'] = 3,  ['?'] = 4,  ['!'] = 5,  ['@'] = 6,  ['('] = 7,
  [')'] = 8,  ['['] = 9,  [']'] = 10, ['%'] = 11, ['{'] = 12, ['}'] = 13, ['/'] = 14,
  [':'] = 15, [';'] = 16, ['$'] = 17, ['#'] = 18, ['"'] = 19, ['\''] = 20, [' '] = 21,
};

/* The matches of every delimiter, in one pass per input. */
static void compute_delim_matches(gen *g) {
  for (int j = 0; j < g->nex; j++) {
    const uint32_t *s = g->in[j];
    const uint8_t *cl = g->cl[j];
    const int L = g->len[j];
    uint16_t cnt[SD_NUM_DELIMS] = {0};
    for (int i = 0; i < L; i++)
      if (cl[i] & C_DELIM) cnt[gen_delim1[s[i]] - 1]++;
    for (int d = 0; d < SD_NUM_DELIMS; d++) {
      g->moff[SD_NUM_TYPES + d][j] = (uint32_t)g->pool_used;
      g->mcnt[SD_NUM_TYPES + d][j] = 0;
      g->pool_used += cnt[d];
    }
    for (int i = 0; i < L; i++) {
      if (!(cl[i] & C_DELIM)) continue;
      const int r = SD_NUM_TYPES + gen_delim1[s[i]] - 1;
      const int m = g->mcnt[r][j]++;
      gen_match *mt = g->pool + g->moff[r][j] + m;
      mt->s = (uint8_t)i;
      mt->e = (uint8_t)(i + 1);
      mt->cum = (uint16_t)(m + 1);
    }
  }
  for (int d = 0; d < SD_NUM_DELIMS; d++) g->have[SD_NUM_TYPES + d] = 1;
}

/* The matches of type r (not CHAR) on every input. */
static void compute_type_matches(gen *g, int r) {
  for (int j = 0; j < g->nex; j++) {
    const uint8_t *cl = g->cl[j];
    const int L = g->len[j];
    gen_match *out = g->pool + g->pool_used;
    int m = 0;
    unsigned tot = 0;
#define GEN_ADD(a, b)                 \
  do {                                \
    out[m].s = (uint8_t)(a);          \
    out[m].e = (uint8_t)(b);          \
    tot += (unsigned)((b) - (a));     \
    out[m].cum = (uint16_t)tot;       \
    m++;                              \
  } while (0)
    if (r == SD_PROP_CASE) {
      int i = 0;
      while (i < L) {
        if ((cl[i] & C_UP) && i + 1 < L && (cl[i + 1] & C_LO)) {
          const int st = i;
          i += 2;
          while (i < L && (cl[i] & C_LO)) i++;
          GEN_ADD(st, i);
        } else {
          i++;
        }
      }
    } else if (r == SD_DIGIT) {
      for (int i = 0; i < L; i++)
        if (cl[i] & C_DIG) GEN_ADD(i, i + 1);
    } else {
      unsigned mask;
      switch (r) {
        case SD_NUMBER: mask = C_DIG; break;
        case SD_WORD: mask = C_UP | C_LO; break;
        case SD_ALPHANUM: mask = C_DIG | C_UP | C_LO; break;
        case SD_ALL_CAPS: mask = C_UP; break;
        default: mask = C_LO; break; /* SD_LOWER */
      }
      int i = 0;
      while (i < L) {
        if (cl[i] & mask) {
          const int st = i;
          while (i < L && (cl[i] & mask)) i++;
          GEN_ADD(st, i);
        } else {
          i++;
        }
      }
    }
#undef GEN_ADD
    g->moff[r][j] = (uint32_t)g->pool_used;
    g->mcnt[r][j] = (uint16_t)m;
    g->pool_used += (size_t)m;
  }
  g->have[r] = 1;
}

static inline int matches(gen *g, int r, int j, const gen_match **mt) {
  if (r == SD_CHAR) {
    *mt = g->every;
    return g->len[j];
  }
  if (!g->have[r]) {
    if (r >= SD_NUM_TYPES) compute_delim_matches(g);
    else compute_type_matches(g, r);
  }
  *mt = g->pool + g->moff[r][j];
  return g->mcnt[r][j];
}

/* The index rule: position of match i among m. */
static inline int index_rule(int i, int m) { return i > 0 ? i - 1 : m + i; }

/* One side of GetSpan (the reference's quirks included). */
static int span_pos(gen *g, int r, int i, int b, int j) {
  const gen_match *mt;
  const int m = matches(g, r, j, &mt);
  if (m == 0) return -1;
  const int k = index_rule(i, m);
  if (k >= m) return m - 1;
  if (k < 0) return 0;
  return b == SD_START ? mt[k].s : mt[k].e;
}

/* Python slice s[a:b] length on a string of length L. */
static inline int slice_len(int a, int b, int L) {
  if (a < 0) { a += L; if (a < 0) a = 0; } else if (a > L) a = L;
  if (b < 0) { b += L; if (b < 0) b = 0; } else if (b > L) b = L;
  return b > a ? b - a : 0;
}

/* Output length of a non-Compose operation on input j. */
static int fn_len(gen *g, const sd_fn *f, int j) {
  const int L = g->len[j];
  const gen_match *mt;
  int m;
  switch (f->op) {
    case SD_CONSTSTR:
      return 1;
    case SD_SUBSTR: {
      const int k1 = f->a[0], k2 = f->a[1];
      const int p1 = k1 > 0 ? k1 - 1 : L + k1;
      const int p2 = k2 > 0 ? k2 - 1 : L + k2;
      if (p1 >= p2) return 0;
      if (p2 == L) return slice_len(p1, L, L);
      return slice_len(p1, p2 + 1, L);
    }
    case SD_GETSPAN: {
      const int p1 = span_pos(g, f->a[0], f->a[1], f->a[2], j);
      const int p2 = span_pos(g, f->a[3], f->a[4], f->a[5], j);
      if (p1 < 0 || p2 < 0) return 0;
      return slice_len(p1, p2, L);
    }
    case SD_GETTOKEN: {
      m = matches(g, f->a[0], j, &mt);
      const int k = index_rule(f->a[1], m);
      if (m == 0 || k < 0 || k >= m) return 0;
      return mt[k].e - mt[k].s;
    }
    case SD_TOCASE:
    case SD_REPLACE:
      return L;
    case SD_TRIM: {
      const uint32_t *s = g->in[j];
      int a = 0, b = L;
      while (a < b && is_ws(s[a])) a++;
      while (b > a && is_ws(s[b - 1])) b--;
      return b - a;
    }
    case SD_GETUPTO:
      m = matches(g, f->a[0], j, &mt);
      return m ? mt[0].e : 0;
    case SD_GETFROM:
      m = matches(g, f->a[0], j, &mt);
      return m ? L - mt[0].e : 0;
    case SD_GETFIRST: {
      m = matches(g, f->a[0], j, &mt);
      if (m == 0) return 0;
      const int i = f->a[1];
      int k;
      if (i >= m) k = m;
      else if (i >= 0) k = i;
      else k = m + i > 0 ? m + i : 0;
      return k ? mt[k - 1].cum : 0;
    }
    case SD_GETALL:
      m = matches(g, f->a[0], j, &mt);
      return m ? mt[m - 1].cum : 0;
    default:
      return 0;
  }
}

/* Fills g->elen with f's output lengths; 1 if all are non-empty. */
static int lens_nonempty(gen *g, const sd_fn *f) {
  for (int j = 0; j < g->nex; j++) {
    g->elen[j] = fn_len(g, f, j);
    if (g->elen[j] == 0) return 0;
  }
  return 1;
}

static void lens_all(gen *g, const sd_fn *f) {
  for (int j = 0; j < g->nex; j++) g->elen[j] = fn_len(g, f, j);
}

/* ------------------------------------------------------- samplers
 * Each returns 0 with the operation in *f and its lengths in g->elen, 1 when
 * it gave up (GEN_TRIES_EXPR draws without a non-empty one), -1 out of memory. */

static inline void fn_init(sd_fn *f, int op) {
  memset(f, 0, sizeof *f);
  f->op = (uint8_t)op;
}

/* An index among -5..-1, 1..5 no larger in absolute value than cnt. */
static inline int pick_index(gen *g, int cnt) {
  const int c = cnt < 5 ? cnt : 5;
  const int u = (int)rng_below(&g->r, (uint32_t)(2 * c));
  return u < c ? u - c : u - c + 1;
}

static inline int pick_type(gen *g) { return g->tkeys[rng_below(&g->r, (uint32_t)g->ntk)]; }
static inline int pick_delim(gen *g) { return g->dkeys[rng_below(&g->r, (uint32_t)g->ndk)]; }

/* A regex for GetSpan/GetUpto/GetFrom given the coin: a present delimiter or a
 * present type; *cnt receives its count. */
static inline int pick_regex(gen *g, int is_delim, int *cnt) {
  if (g->ndk > 0 && is_delim) {
    const int d = pick_delim(g);
    *cnt = g->dcnt[d];
    return SD_NUM_TYPES + d;
  }
  const int t = pick_type(g);
  *cnt = g->tcnt[t];
  return t;
}

static int s_substr(gen *g, sd_fn *f) {
  const int m = g->minlen;
  for (int t = 0; t < GEN_TRIES_EXPR; t++) {
    const int p1 = rng_range(&g->r, -m + 1, m);
    const int p2 = p1 > 0 ? rng_range(&g->r, p1, m) : rng_range(&g->r, p1, 0);
    fn_init(f, SD_SUBSTR);
    f->a[0] = (int16_t)p1;
    f->a[1] = (int16_t)p2;
    if (lens_nonempty(g, f)) return 0;
  }
  return 1;
}

static int s_getspan(gen *g, sd_fn *f) {
  for (int t = 0; t < GEN_TRIES_EXPR; t++) {
    const int c1 = rng_range(&g->r, 1, 2) == 1, c2 = rng_range(&g->r, 1, 2) == 1;
    int n1, n2;
    const int r1 = pick_regex(g, c1, &n1);
    const int i1 = pick_index(g, n1);
    const int r2 = pick_regex(g, c2, &n2);
    const int i2 = pick_index(g, n2);
    fn_init(f, SD_GETSPAN);
    f->a[0] = (int16_t)r1;
    f->a[1] = (int16_t)i1;
    f->a[2] = (int16_t)rng_below(&g->r, 2);
    f->a[3] = (int16_t)r2;
    f->a[4] = (int16_t)i2;
    f->a[5] = (int16_t)rng_below(&g->r, 2);
    if (lens_nonempty(g, f)) return 0;
  }
  return 1;
}

/* GetToken and GetFirst: a present type and an index bounded by its count. */
static int s_type_index(gen *g, sd_fn *f, int op) {
  for (int t = 0; t < GEN_TRIES_EXPR; t++) {
    const int ty = pick_type(g);
    fn_init(f, op);
    f->a[0] = (int16_t)ty;
    f->a[1] = (int16_t)pick_index(g, g->tcnt[ty]);
    if (lens_nonempty(g, f)) return 0;
  }
  return 1;
}

/* GetUpto and GetFrom: a coin, then a present delimiter or type. */
static int s_upto_from(gen *g, sd_fn *f, int op) {
  for (int t = 0; t < GEN_TRIES_EXPR; t++) {
    const int coin = rng_range(&g->r, 1, 2) == 1;
    int cnt;
    fn_init(f, op);
    f->a[0] = (int16_t)pick_regex(g, coin, &cnt);
    if (lens_nonempty(g, f)) return 0;
  }
  return 1;
}

static int s_getall(gen *g, sd_fn *f) {
  for (int t = 0; t < GEN_TRIES_EXPR; t++) {
    fn_init(f, SD_GETALL);
    f->a[0] = (int16_t)pick_type(g);
    if (lens_nonempty(g, f)) return 0;
  }
  return 1;
}

static int s_substring(gen *g, sd_fn *f) {
  return rng_below(&g->r, 2) == 0 ? s_substr(g, f) : s_getspan(g, f);
}

static int s_nesting(gen *g, sd_fn *f) {
  switch (rng_below(&g->r, 8)) {
    case 0: return s_type_index(g, f, SD_GETTOKEN);
    case 1:
      fn_init(f, SD_TOCASE);
      f->a[0] = (int16_t)rng_below(&g->r, SD_NUM_CASES);
      lens_all(g, f);
      return 0;
    case 2:
      fn_init(f, SD_REPLACE);
      f->a[0] = (int16_t)pick_delim(g);
      f->a[1] = (int16_t)rng_below(&g->r, SD_NUM_DELIMS);
      lens_all(g, f);
      return 0;
    case 3:
      fn_init(f, SD_TRIM);
      lens_all(g, f);
      return 0;
    case 4: return s_upto_from(g, f, SD_GETUPTO);
    case 5: return s_upto_from(g, f, SD_GETFROM);
    case 6: return s_type_index(g, f, SD_GETFIRST);
    default: return s_getall(g, f);
  }
}

static int s_compose(gen *g, sd_expr *e) {
  const int inner_substring = rng_below(&g->r, 2) == 1;
  for (int t = 0; t < GEN_TRIES_EXPR; t++) {
    int rc = s_nesting(g, &e->fn);
    if (rc) return rc;
    rc = inner_substring ? s_substring(g, &e->inner) : s_nesting(g, &e->inner);
    if (rc) return rc;
    e->compose = 1;
    int ok = 1;
    if (e->fn.op == SD_TOCASE || e->fn.op == SD_REPLACE) {
      /* these keep the length: g->elen already holds the inner lengths */
      for (int j = 0; j < g->nex && ok; j++) ok = g->elen[j] > 0;
    } else {
      for (int j = 0; j < g->nex && ok; j++) {
        if (sd_eval_expr(e, g->in[j], (size_t)g->len[j], &g->tmp) != 0) return -1;
        g->elen[j] = (int)g->tmp.n;
        ok = g->tmp.n > 0;
      }
    }
    if (ok) return 0;
  }
  return 1;
}

/* Expression categories, 1/4 each. */
enum { CAT_SUBSTRING = 0, CAT_NESTING, CAT_COMPOSE, CAT_CONST, NUM_CATS };

/* An expression of category cat. */
static int s_expr_cat(gen *g, sd_expr *e, int cat) {
  memset(e, 0, sizeof *e);
  switch (cat) {
    case CAT_SUBSTRING: return s_substring(g, &e->fn);
    case CAT_NESTING: return s_nesting(g, &e->fn);
    case CAT_COMPOSE: return s_compose(g, e);
    default:
      fn_init(&e->fn, SD_CONSTSTR);
      e->fn.a[0] = (int16_t)rng_below(&g->r, SD_NUM_CHARS);
      for (int j = 0; j < g->nex; j++) g->elen[j] = 1;
      return 0;
  }
}

static int s_expr(gen *g, sd_expr *e) { return s_expr_cat(g, e, (int)rng_below(&g->r, NUM_CATS)); }

/* ------------------------------------------------------- programs */

/* Evaluates the program g->ex[0..n) with the interpreter into g->outs;
 * 1 if every output has 1..100 characters, 0 if not, -1 out of memory. */
static int eval_outputs(gen *g, int n) {
  sd_prog p;
  p.n = (size_t)n;
  p.e = g->ex;
  p.cap = (size_t)n;
  int ok = 1;
  for (int j = 0; j < g->nex; j++) {
    if (sd_eval(&p, g->in[j], (size_t)g->len[j], &g->outs[j]) != 0) return -1;
    if (g->outs[j].n < 1 || g->outs[j].n > GEN_MAX_OUT) ok = 0;
  }
  return ok;
}

/* Draws expression k of category cat and adds its lengths to g->cum.
 * 1 if the outputs still fit, 0 if not, 2 gave up, -1 out of memory. */
static int add_expr(gen *g, int k, int cat) {
  const int rc = s_expr_cat(g, &g->ex[k], cat);
  if (rc) return rc < 0 ? -1 : 2;
  int fits = 1;
  for (int j = 0; j < g->nex; j++) {
    g->cum[j] += g->elen[j];
    if (g->cum[j] > GEN_MAX_OUT) fits = 0;
  }
  return fits;
}

/* The reference's loop: whole programs until every output fits.
 * The expressions of a program are independent draws, so they may be drawn in
 * any order: the categories first, then the cheap expressions, and the Compose
 * ones (evaluated by the interpreter) last, abandoning the program as soon as
 * an output exceeds 100 characters. The accepted programs have the
 * reference's distribution. 0 ok, 1 gave up, -1 out of memory. */
static int sample_program(gen *g, int n) {
  uint8_t cat[GEN_MAX_EXPR_OPT];
  for (int attempt = 0; attempt < GEN_TRIES_PROG; attempt++) {
    for (int j = 0; j < g->nex; j++) g->cum[j] = 0;
    for (int k = 0; k < n; k++) cat[k] = (uint8_t)rng_below(&g->r, NUM_CATS);
    int fits = 1;
    for (int pass = 0; pass < 2 && fits == 1; pass++)
      for (int k = 0; k < n && fits == 1; k++)
        if ((cat[k] == CAT_COMPOSE) == (pass == 1)) fits = add_expr(g, k, cat[k]);
    if (fits < 0) return -1;
    if (fits == 2) return 1;
    if (!fits) continue;
    int nonempty = 1;
    for (int j = 0; j < g->nex; j++)
      if (g->cum[j] == 0) nonempty = 0;
    if (!nonempty) continue;
    const int rc = eval_outputs(g, n);
    if (rc < 0) return -1;
    if (rc == 1) return 0;
  }
  return 1;
}

/* Fallback for options where whole-program rejection practically never ends:
 * each expression is redrawn until the outputs so far, plus one character for
 * each expression still to come, fit in 100 characters. 0 ok, 1 not this time,
 * -1 out of memory. */
static int sample_program_fallback(gen *g, int n) {
  for (int j = 0; j < g->nex; j++) g->cum[j] = 0;
  for (int k = 0; k < n; k++) {
    const int budget = GEN_MAX_OUT - (n - 1 - k);
    int placed = 0;
    for (int t = 0; t < GEN_TRIES_FALLBACK && !placed; t++) {
      const int rc = s_expr(g, &g->ex[k]);
      if (rc < 0) return -1;
      if (rc) continue;
      placed = 1;
      for (int j = 0; j < g->nex; j++)
        if (g->cum[j] + g->elen[j] > budget) placed = 0;
    }
    if (!placed) {
      memset(&g->ex[k], 0, sizeof g->ex[k]);
      fn_init(&g->ex[k].fn, SD_CONSTSTR);
      g->ex[k].fn.a[0] = (int16_t)rng_below(&g->r, SD_NUM_CHARS);
      for (int j = 0; j < g->nex; j++) g->elen[j] = 1;
    }
    for (int j = 0; j < g->nex; j++) g->cum[j] += g->elen[j];
  }
  /* an empty output (only possible through Trim) becomes non-empty by making
   * the last expression a ConstStr: every total is at most 99 before it */
  for (int j = 0; j < g->nex; j++) {
    if (g->cum[j] == 0) {
      memset(&g->ex[n - 1], 0, sizeof g->ex[n - 1]);
      fn_init(&g->ex[n - 1].fn, SD_CONSTSTR);
      g->ex[n - 1].fn.a[0] = (int16_t)rng_below(&g->r, SD_NUM_CHARS);
      break;
    }
  }
  const int rc = eval_outputs(g, n);
  if (rc < 0) return -1;
  return rc == 1 ? 0 : 1;
}

/* ------------------------------------------------------------ API */

void sd_task_free(sd_task *t) {
  if (!t) return;
  sd_prog_clear(&t->prog);
  for (size_t i = 0; i < t->n_examples; i++) {
    if (t->inputs) free(t->inputs[i]);
    if (t->outputs) free(t->outputs[i]);
  }
  free(t->inputs);
  free(t->outputs);
  memset(t, 0, sizeof *t);
}

static void gen_free(gen *g) {
  if (!g) return;
  free(g->pool);
  sd_str_free(&g->tmp);
  for (int j = 0; j < GEN_MAX_EXAMPLES; j++) sd_str_free(&g->outs[j]);
  free(g);
}

static void set_err(char *err, size_t errlen, const char *msg) {
  if (err && errlen > 0) snprintf(err, errlen, "%s", msg);
}

/* Copies the accepted task out of g. 0 or -1 (out of memory). */
static int fill_task(gen *g, int n, sd_task *out) {
  const size_t nex = (size_t)g->nex;
  out->prog.e = malloc((size_t)n * sizeof(sd_expr));
  if (!out->prog.e) return -1;
  memcpy(out->prog.e, g->ex, (size_t)n * sizeof(sd_expr));
  out->prog.n = out->prog.cap = (size_t)n;
  out->inputs = calloc(nex, sizeof(char *));
  out->outputs = calloc(nex, sizeof(char *));
  if (!out->inputs || !out->outputs) return -1;
  out->n_examples = nex;
  for (size_t j = 0; j < nex; j++) {
    const int L = g->len[j];
    char *s = malloc((size_t)L + 1);
    if (!s) return -1;
    memcpy(s, g->inb[j], (size_t)L); /* the alphabet is ASCII */
    s[L] = '\0';
    out->inputs[j] = s;
    size_t olen;
    if (sd_encode(g->outs[j].c, g->outs[j].n, &out->outputs[j], &olen) != 0) return -1;
  }
  return 0;
}

int sd_generate(uint64_t seed, int min_expr, int max_expr, int n_examples, sd_task *out,
                char *err, size_t errlen) {
  if (!out) {
    set_err(err, errlen, "no task to fill");
    return -1;
  }
  memset(out, 0, sizeof *out);
  /* 0 selects the default */
  if (min_expr == 0) min_expr = GEN_DEF_MIN_EXPR;
  if (max_expr == 0) max_expr = min_expr > GEN_DEF_MAX_EXPR ? min_expr : GEN_DEF_MAX_EXPR;
  if (n_examples == 0) n_examples = GEN_DEF_EXAMPLES;
  if (min_expr < 1 || max_expr > GEN_MAX_EXPR_OPT || min_expr > max_expr) {
    if (err && errlen > 0)
      snprintf(err, errlen,
               "bad number of expressions %d..%d (need 1 <= min <= max <= %d)", min_expr,
               max_expr, GEN_MAX_EXPR_OPT);
    return -1;
  }
  if (n_examples < 1 || n_examples > GEN_MAX_EXAMPLES) {
    if (err && errlen > 0)
      snprintf(err, errlen, "bad number of examples %d (need 1..%d)", n_examples,
               GEN_MAX_EXAMPLES);
    return -1;
  }

  gen *g = malloc(sizeof *g);
  if (!g) goto oom;
  memset(g->outs, 0, sizeof g->outs);
  memset(&g->tmp, 0, sizeof g->tmp);
  g->nex = n_examples;
  /* at most GEN_MAX_IN matches per regex and input */
  g->pool = malloc((size_t)GEN_NUM_REGEX * (size_t)n_examples * GEN_MAX_IN * sizeof(gen_match));
  if (!g->pool) goto oom;
  for (int i = 0; i < GEN_MAX_IN; i++) {
    g->every[i].s = (uint8_t)i;
    g->every[i].e = (uint8_t)(i + 1);
    g->every[i].cum = (uint16_t)(i + 1);
  }
  rng_seed(&g->r, seed);

  const int n = rng_range(&g->r, min_expr, max_expr);
  for (int restart = 0;; restart++) {
    if (restart >= GEN_TRIES_RESTART + GEN_TRIES_FALLBACK) {
      /* only if the interpreter disagreed with the lengths computed here */
      gen_free(g);
      set_err(err, errlen, "internal error: no task fits (interpreter and sampler disagree)");
      return -1;
    }
    sample_inputs(g);
    const int rc = restart < GEN_TRIES_RESTART ? sample_program(g, n)
                                               : sample_program_fallback(g, n);
    if (rc < 0) goto oom;
    if (rc == 0) break;
  }
  if (fill_task(g, n, out) != 0) goto oom;
  gen_free(g);
  return 0;

oom:
  gen_free(g);
  sd_task_free(out);
  set_err(err, errlen, "out of memory");
  return -1;
}

/* Exact solver of the string (RobustFill) DSL, FlashFill style (strdsl.h,
 * "exact solver").
 *
 * 1. Enumeration. Every expression of the DSL is run on the example inputs:
 *    ConstStr of each character, SubStr(k1, k2) for all k1, k2 in -100..100,
 *    GetSpan with every regex/index/bound on both sides, every nesting
 *    operation with all its arguments, and Compose(nesting, nesting or
 *    substring). An expression is kept only when its output on each example
 *    is a substring of that example's target output (and not empty on all of
 *    them). Kept expressions with the same outputs on every example form one
 *    class (observational equivalence); a class keeps its SD_SOLVE_MEMBERS
 *    cheapest members. Since every kept output is a substring of the target, a
 *    class is keyed by (first offset in the target, length) per example.
 *    Compose's outer operation is applied to the distinct outputs of the inner
 *    expressions (all of them, not only those found in the target): an inner
 *    output that is a piece of the input is represented by its first
 *    occurrence in the input, and the outer operation's result on each such
 *    piece is memoised per example.
 * 2. Graph. A state is one position per example in the target outputs; a
 *    class leads from (p_1..p_n) to (p_1 + len_1, ..., p_n + len_n) when its
 *    output on every example k equals out_k[p_k : p_k + len_k]. States are
 *    explored forward from (0, ..., 0); then the exact distance to the goal
 *    (len(out_1), ..., len(out_n)) is computed backwards: fewest expressions,
 *    then the smallest cost sum (every edge advances the sum of positions, so
 *    the graph is a DAG ordered by that sum).
 * 3. Search. Best-first over paths with the exact distance as heuristic; each
 *    path extends through a lazily sorted list of (class member, next state)
 *    moves, and a popped path pushes only its best extension and its next
 *    sibling, so complete programs come out in exact prior order, distinct
 *    (distinct member sequences), while the work per program stays small.
 *
 * Every member used by a reported program is checked once with the
 * interpreter (sd_eval_expr) against the part of the target it stands for;
 * a member that disagrees (a bug) is never reported (stats->mismatches).
 * Library code: never prints or exits; all memory is released on return.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#pragma GCC visibility push(hidden) /* only lp_plugin_entry leaves the plugin */
#include "strdsl.h"

#define NF 0xFFFFFFFFu /* "not a substring of the target" */
#define PACK(off, len) (((uint32_t)(off) << 16) | (uint32_t)(len))
#define P_OFF(v) ((int)((v) >> 16))
#define P_LEN(v) ((int)((v)&0xFFFFu))
#define INNER_MEMBERS 3                  /* members kept per distinct Compose inner output */
#define MAX_STATES ((size_t)1 << 21)     /* search graph budget */
#define MAX_EDGES ((size_t)1 << 24)
#define MAX_CELLS ((size_t)1 << 25)      /* table cells over all examples */
#define MAX_CLASSES ((size_t)1 << 20)    /* about 130 MB with their keys */
#define INF_N 0xFFFFu

/* The default costs, chosen on generated tasks (8 examples: solved on 4, the
 * top program judged on the other 4; tests/strdsl/solve_bench.c): fewest
 * expressions first already gives about 3 in 4; preferring the narrow types
 * over WORD and ALPHANUM, and the types the inputs seem to be made of
 * (infer_types), adds about 5 points; the costs of the operations matter
 * little (within 2 points). */
const sd_solve_costs sd_solve_default_costs = {
    .op = {[SD_COMPOSE] = 2, [SD_CONSTSTR] = 6, [SD_SUBSTR] = 12, [SD_GETSPAN] = 10,
           [SD_GETTOKEN] = 3, [SD_TOCASE] = 5, [SD_REPLACE] = 7, [SD_TRIM] = 5,
           [SD_GETUPTO] = 5, [SD_GETFROM] = 5, [SD_GETFIRST] = 6, [SD_GETALL] = 5},
    .index = 1,
    .neg_index = 0,
    .regex = {[SD_NUMBER] = 0, [SD_WORD] = 1, [SD_ALPHANUM] = 2, [SD_ALL_CAPS] = 0,
              [SD_PROP_CASE] = 0, [SD_LOWER] = 0, [SD_DIGIT] = 0, [SD_CHAR] = 0,
              [SD_NUM_TYPES] = 0},
    .absent = 3,
    .substr_neg = 1,
    .substr_far = 4,
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------------ */
/* Growable arrays                                                           */

/* p (capacity *cap elements of sz bytes) grown to hold at least `need`
 * elements; on failure p itself, with *cap unchanged. */
static void *regrow(void *p, size_t *cap, size_t need, size_t sz) {
  size_t nc = *cap ? *cap : 16;
  while (nc < need) {
    if (nc > SIZE_MAX / 2 / sz) return p;
    nc *= 2;
  }
  void *q = realloc(p, nc * sz);
  if (!q) return p;
  *cap = nc;
  return q;
}
/* Makes room for `need` elements in arr (capacity cap): 0, or -1 when out of
 * memory (arr unchanged). */
#define GROW(arr, cap, need)                                       \
  ((need) <= (cap) ? 0                                            \
                   : ((arr) = regrow((arr), &(cap), (need), sizeof *(arr)), \
                      (need) <= (cap) ? 0 : -1))

/* ------------------------------------------------------------------------ */
/* A set of fixed-length byte keys with dense ids (open addressing)          */

typedef struct keyset {
  size_t klen;      /* bytes per key */
  uint8_t *keys;    /* key of id i at keys + i * klen */
  size_t n, cap;    /* keys stored, capacity (in keys) */
  uint32_t *slot;   /* id + 1, 0 = empty */
  size_t scap;      /* power of two */
} keyset;

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  for (; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
  h ^= h >> 29;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 32;
  return h;
}

static void ks_free(keyset *s) {
  free(s->keys);
  free(s->slot);
  memset(s, 0, sizeof *s);
}

static int ks_rehash(keyset *s, size_t scap) {
  uint32_t *sl = calloc(scap, sizeof *sl);
  if (!sl) return -1;
  for (size_t id = 0; id < s->n; id++) {
    size_t m = (size_t)hash_bytes(s->keys + id * s->klen, s->klen) & (scap - 1);
    while (sl[m]) m = (m + 1) & (scap - 1);
    sl[m] = (uint32_t)id + 1;
  }
  free(s->slot);
  s->slot = sl;
  s->scap = scap;
  return 0;
}

/* The id of key; when absent, adds it (*created = 1) if add, else returns -1.
 * -2: out of memory. */
static long ks_get(keyset *s, const void *key, int add, int *created) {
  if (created) *created = 0;
  if (!s->scap && ks_rehash(s, 64)) return -2;
  size_t m = (size_t)hash_bytes(key, s->klen) & (s->scap - 1);
  while (s->slot[m]) {
    uint32_t id = s->slot[m] - 1;
    const uint8_t *a = s->keys + (size_t)id * s->klen, *b = key;
    size_t i = 0;
    while (i < s->klen && a[i] == b[i]) i++;
    if (i == s->klen) return (long)id;
    m = (m + 1) & (s->scap - 1);
  }
  if (!add) return -1;
  if (s->n >= UINT32_MAX - 1) return -2;
  if (s->n + 1 > s->cap) {
    s->keys = regrow(s->keys, &s->cap, s->n + 1, s->klen);
    if (s->n + 1 > s->cap) return -2;
  }
  memcpy(s->keys + s->n * s->klen, key, s->klen);
  s->slot[m] = (uint32_t)s->n + 1;
  long id = (long)s->n++;
  if (s->n * 2 > s->scap && ks_rehash(s, s->scap * 2)) return -2;
  if (created) *created = 1;
  return id;
}

/* ------------------------------------------------------------------------ */
/* Per-example tables                                                        */

typedef struct exm {
  const uint32_t *in, *out;
  int L, M;
  int16_t *focc;   /* [lo * (M+1) + len]: first offset of in[lo:lo+len] in out, -1 none */
  int16_t *canon;  /* [lo * (L+1) + len]: first offset of in[lo:lo+len] in in */
  int16_t *oocc;   /* [p * (M+1) + len]: first offset of out[p:p+len] in out */
  uint16_t *mspan; /* matches of regex r: pairs (start, end) from mspan + 2 * moff[r] */
  int mcnt[SD_NUM_REGEX], moff[SD_NUM_REGEX];
  uint32_t *memo;         /* Compose memo per input piece [2 * (lo * (L+1) + len)]: stamp, value */
  int16_t *fm, *lm;       /* per regex and position: see first_match_from */
  uint32_t *mapped;       /* the input under the current character map */
  int16_t *mfocc;         /* its first-occurrence table in the target */
  uint16_t *mchg;         /* prefix counts of the characters the map changed */
  long map_id;            /* the op those are for (-1: none) */
} exm;

/* Character classes (the spec's regexes): ASCII only. */
enum { K_DIG = 1, K_UP = 2, K_LOW = 4, K_ALPHA = 8 };
static unsigned kcls(uint32_t c) {
  if (c >= 128) return 0;
  unsigned k = sd_char_index(c) >= 0 ? K_ALPHA : 0;
  if (c >= '0' && c <= '9') k |= K_DIG;
  else if (c >= 'A' && c <= 'Z') k |= K_UP;
  else if (c >= 'a' && c <= 'z') k |= K_LOW;
  return k;
}

/* All matches of regex r in s[0..n) (leftmost, non-overlapping) as (start,
 * end) pairs into sp; returns their count. */
static int match_all(int r, const uint32_t *s, int n, uint16_t *sp) {
  int m = 0;
  if (r >= SD_NUM_TYPES) {
    uint32_t d = (unsigned char)sd_chars[SD_FIRST_DELIM + r - SD_NUM_TYPES];
    for (int i = 0; i < n; i++)
      if (s[i] == d) {
        sp[2 * m] = (uint16_t)i;
        sp[2 * m + 1] = (uint16_t)(i + 1);
        m++;
      }
    return m;
  }
  if (r == SD_PROP_CASE) {
    int i = 0;
    while (i + 1 < n) {
      if ((kcls(s[i]) & K_UP) && (kcls(s[i + 1]) & K_LOW)) {
        int j = i + 2;
        while (j < n && (kcls(s[j]) & K_LOW)) j++;
        sp[2 * m] = (uint16_t)i;
        sp[2 * m + 1] = (uint16_t)j;
        m++;
        i = j;
      } else {
        i++;
      }
    }
    return m;
  }
  unsigned mask;
  int single = 0;
  switch (r) {
  case SD_NUMBER: mask = K_DIG; break;
  case SD_WORD: mask = K_UP | K_LOW; break;
  case SD_ALPHANUM: mask = K_DIG | K_UP | K_LOW; break;
  case SD_ALL_CAPS: mask = K_UP; break;
  case SD_LOWER: mask = K_LOW; break;
  case SD_DIGIT: mask = K_DIG; single = 1; break;
  default: mask = K_ALPHA; single = 1; break; /* CHAR */
  }
  int i = 0;
  while (i < n) {
    if (kcls(s[i]) & mask) {
      int j = i + 1;
      if (!single)
        while (j < n && (kcls(s[j]) & mask)) j++;
      sp[2 * m] = (uint16_t)i;
      sp[2 * m + 1] = (uint16_t)j;
      m++;
      i = j;
    } else {
      i++;
    }
  }
  return m;
}

/* One side of GetSpan (the spec's index rule and quirks). */
static int side_pos(const exm *x, int r, int i, int b) {
  int m = x->mcnt[r];
  if (m == 0) return -1;
  int k = i > 0 ? i - 1 : m + i;
  if (k >= m) return m - 1;
  if (k < 0) return 0;
  const uint16_t *sp = x->mspan + 2 * (size_t)x->moff[r];
  return b == SD_START ? sp[2 * k] : sp[2 * k + 1];
}

/* SubStr(k1, k2) on a string of length L: the piece [*lo, *lo + *len). */
static void substr_piece(int k1, int k2, int L, int *lo, int *len) {
  int p1 = k1 > 0 ? k1 - 1 : L + k1, p2 = k2 > 0 ? k2 - 1 : L + k2;
  *lo = 0;
  *len = 0;
  if (p1 >= p2) return;
  int a = p1, b = p2 == L ? L : p2 + 1;
  if (a < 0) {
    a += L;
    if (a < 0) a = 0;
  } else if (a > L) a = L;
  if (b < 0) {
    b += L;
    if (b < 0) b = 0;
  } else if (b > L) b = L;
  if (b > a) {
    *lo = a;
    *len = b - a;
  }
}

static void ex_free(exm *x) {
  free(x->focc);
  free(x->canon);
  free(x->oocc);
  free(x->mspan);
  free(x->memo);
  free(x->fm);
  free(x->lm);
  free(x->mapped);
  free(x->mfocc);
  free(x->mchg);
}

/* First occurrence of s[0..len) in the target, packed; NF when absent. */
static uint32_t find_out(const exm *x, const uint32_t *s, size_t len) {
  if (len == 0) return 0;
  if (len > (size_t)x->M) return NF;
  for (size_t j = 0; j + len <= (size_t)x->M; j++)
    if (x->out[j] == s[0] && memcmp(x->out + j, s, len * sizeof *s) == 0)
      return PACK(j, len);
  return NF;
}

/* First occurrence of s[0..len) in the input (packed), NF when absent. */
static uint32_t find_in(const exm *x, const uint32_t *s, size_t len) {
  if (len == 0) return 0;
  if (len > (size_t)x->L) return NF;
  for (size_t j = 0; j + len <= (size_t)x->L; j++)
    if (x->in[j] == s[0] && memcmp(x->in + j, s, len * sizeof *s) == 0) return PACK(j, len);
  return NF;
}

/* The class key of the input piece [lo, lo+len) on this example. */
static inline uint32_t piece_out(const exm *x, int lo, int len) {
  if (len == 0) return 0;
  if (len > x->M) return NF;
  int o = x->focc[(size_t)lo * (size_t)(x->M + 1) + (size_t)len];
  return o < 0 ? NF : PACK(o, len);
}

static inline uint32_t piece_canon(const exm *x, int lo, int len) {
  if (len == 0) return 0;
  return PACK(x->canon[(size_t)lo * (size_t)(x->L + 1) + (size_t)len], len);
}

/* First-occurrence table: f[lo * (W+1) + len] = first j with a[lo:lo+len] ==
 * b[j:j+len], -1 when none (a has length A, b length W). */
static int first_occ_table(const uint32_t *a, int A, const uint32_t *b, int W, int16_t *f) {
  uint16_t *prev = calloc((size_t)W + 1, sizeof *prev), *cur = calloc((size_t)W + 1, sizeof *cur);
  if (!prev || !cur) {
    free(prev);
    free(cur);
    return -1;
  }
  for (int lo = A; lo >= 0; lo--) {
    int16_t *row = f + (size_t)lo * (size_t)(W + 1);
    row[0] = 0;
    for (int len = 1; len <= W; len++) row[len] = -1;
    if (lo == A) continue; /* prev stays all zero */
    for (int j = W - 1; j >= 0; j--) cur[j] = a[lo] == b[j] ? (uint16_t)(prev[j + 1] + 1) : 0;
    cur[W] = 0;
    int filled = 0;
    for (int j = 0; j < W; j++)
      while (filled < cur[j]) row[++filled] = (int16_t)j;
    uint16_t *t = prev;
    prev = cur;
    cur = t;
  }
  free(prev);
  free(cur);
  return 0;
}

static int match_tables(exm *x);

static int ex_init(exm *x, const sd_str *in, const sd_str *out) {
  memset(x, 0, sizeof *x);
  x->in = in->c;
  x->out = out->c;
  x->L = (int)in->n;
  x->M = (int)out->n;
  size_t L1 = (size_t)x->L + 1, M1 = (size_t)x->M + 1;
  x->focc = malloc(L1 * M1 * sizeof *x->focc);
  x->canon = malloc(L1 * L1 * sizeof *x->canon);
  x->oocc = malloc(M1 * M1 * sizeof *x->oocc);
  x->mspan = malloc((size_t)SD_NUM_REGEX * L1 * 2 * sizeof *x->mspan);
  x->memo = calloc(2 * L1 * L1, sizeof *x->memo);
  if (!x->focc || !x->canon || !x->oocc || !x->mspan || !x->memo) return -1;
  static const uint32_t empty[1] = {0};
  const uint32_t *ic = x->L ? x->in : empty, *oc = x->M ? x->out : empty;
  if (first_occ_table(ic, x->L, oc, x->M, x->focc) || first_occ_table(ic, x->L, ic, x->L, x->canon))
    return -1;
  if (first_occ_table(oc, x->M, oc, x->M, x->oocc)) return -1;
  int off = 0;
  for (int r = 0; r < SD_NUM_REGEX; r++) {
    x->moff[r] = off;
    x->mcnt[r] = match_all(r, ic, x->L, x->mspan + 2 * (size_t)off);
    off += x->mcnt[r];
  }
  x->map_id = -1;
  return match_tables(x);
}

/* ------------------------------------------------------------------------ */
/* Classes and their members                                                 */

/* Expressions are stored packed: an operation in 32 bits (4 bits of op, then
 * each argument in the bits its kind needs), an expression in 64 (the inner
 * operation of a Compose in the high half, 0 otherwise). */
static const uint8_t kind_bits[SD_ARG_BOUND + 1] = {
    [SD_ARG_CHAR] = 7, [SD_ARG_DELIM] = 5, [SD_ARG_INT] = 8, [SD_ARG_INDEX] = 4,
    [SD_ARG_TYPE] = 3, [SD_ARG_REGEX] = 5, [SD_ARG_CASE] = 2, [SD_ARG_BOUND] = 1};
static const int16_t kind_min[SD_ARG_BOUND + 1] = {[SD_ARG_INT] = -100, [SD_ARG_INDEX] = -5};

static uint32_t pack_fn(const sd_fn *f) {
  uint32_t v = f->op;
  int sh = 4;
  for (int j = 0; j < sd_op_nargs[f->op]; j++) {
    int kind = sd_op_arg[f->op][j];
    v |= (uint32_t)(f->a[j] - kind_min[kind]) << sh;
    sh += kind_bits[kind];
  }
  return v;
}

static void unpack_fn(uint32_t v, sd_fn *f) {
  memset(f, 0, sizeof *f);
  f->op = (uint8_t)(v & 15u);
  int sh = 4;
  for (int j = 0; j < sd_op_nargs[f->op]; j++) {
    int kind = sd_op_arg[f->op][j];
    f->a[j] = (int16_t)((int)((v >> sh) & ((1u << kind_bits[kind]) - 1)) + kind_min[kind]);
    sh += kind_bits[kind];
  }
}

static uint64_t pack_expr(const sd_expr *e) {
  return pack_fn(&e->fn) | (e->compose ? (uint64_t)pack_fn(&e->inner) << 32 : 0);
}

static void unpack_expr(uint64_t v, sd_expr *e) {
  memset(e, 0, sizeof *e);
  unpack_fn((uint32_t)v, &e->fn);
  if (v >> 32) {
    e->compose = 1;
    unpack_fn((uint32_t)(v >> 32), &e->inner);
  }
}

typedef struct member {
  uint64_t e;       /* packed expression */
  uint16_t cost;
  uint8_t verified; /* 0 not yet, 1 agrees with the interpreter, 2 does not */
} member;

typedef struct klass {
  uint8_t nmem;
  member mem[SD_SOLVE_MEMBERS];
} klass;

typedef struct imem {
  uint32_t f; /* packed operation */
  uint16_t cost;
} imem;

typedef struct inner {
  uint8_t nmem;
  imem mem[INNER_MEMBERS];
} inner;

/* Compose inner outputs that are not pieces of the inputs. */
typedef struct sinner {
  size_t off; /* n (offset, length) pairs into the pool start at soff[off] */
  inner in;
} sinner;

typedef struct sv {
  size_t n;
  exm *ex;
  sd_solve_costs c;
  double deadline;
  int timed_out;
  unsigned tick;
  int oom;
  int all_empty; /* every target is empty */

  keyset cks; /* classes: n packed (off, len) */
  klass *cls;
  uint16_t *cworst;      /* per class: the cost a new member must beat */
  size_t ccap;

  keyset iks; /* Compose inners that are input pieces: n packed (canonical start, len) */
  inner *iv;
  size_t ivcap;

  sinner *sv;            /* other Compose inners */
  size_t nsv, svcap;
  uint32_t *pool;        /* their strings */
  size_t npool, poolcap;
  size_t *soff;          /* per string inner: n (pool offset, length) pairs */
  size_t nsoff, soffcap;
  uint32_t *sslot;       /* hash table of string inners (id + 1) */
  size_t sscap;

  uint32_t *key, *key2;  /* scratch keys (n) */
  uint32_t *last_key;    /* add_compose's previous class key and id */
  long last_cid;
  sd_str tmp;
  sd_fn *ops;            /* nesting operations worth applying */
  size_t nops, opscap;
  uint8_t *outer_ok;     /* per op: worth trying as Compose's outer operation */
  uint8_t tpresent[SD_NUM_TYPES]; /* types the inputs seem to be made of */
  int self_check;        /* compare the Compose fast paths with the interpreter */
  int truncated;         /* some class was left out (budget) */
  size_t fast_mismatches;
} sv;

static int cap_cost(int c) {
  return c < 0 ? 0 : c > SD_SOLVE_MAX_COST ? SD_SOLVE_MAX_COST : c;
}

static int idx_cost(const sv *S, int i) {
  int a = i < 0 ? -i : i;
  return S->c.index * (a - 1) + (i < 0 ? S->c.neg_index : 0);
}

/* A regex argument: its own cost, and the penalty of a type that the
 * inputs do not seem to be made of. */
static int regex_cost(const sv *S, int r) {
  if (r >= SD_NUM_TYPES) return S->c.regex[SD_NUM_TYPES];
  return S->c.regex[r] + (S->tpresent[r] ? 0 : S->c.absent);
}

static int fn_cost(const sv *S, const sd_fn *f) {
  int c = S->c.op[f->op];
  switch (f->op) {
  case SD_GETTOKEN:
  case SD_GETFIRST:
    c += idx_cost(S, f->a[1]);
    /* fall through */
  case SD_GETALL:
  case SD_GETUPTO:
  case SD_GETFROM:
    c += regex_cost(S, f->a[0]);
    break;
  default: break;
  }
  return c;
}

static int side_cost(const sv *S, int r, int i) {
  return idx_cost(S, i) + regex_cost(S, r);
}

/* Inserts a member into a list kept sorted by cost (stable), at most K. */
static void member_add(member *m, uint8_t *nm, uint64_t e, int cost) {
  int K = SD_SOLVE_MEMBERS, n = *nm;
  if (n == K && cost >= m[K - 1].cost) return;
  int pos = n < K ? n : K - 1;
  while (pos > 0 && m[pos - 1].cost > cost) {
    m[pos] = m[pos - 1];
    pos--;
  }
  m[pos].e = e;
  m[pos].cost = (uint16_t)cost;
  m[pos].verified = 0;
  if (n < K) *nm = (uint8_t)(n + 1);
}

static void imem_add(inner *t, const sd_fn *f, int cost) {
  int K = INNER_MEMBERS, n = t->nmem;
  if (n == K && cost >= t->mem[K - 1].cost) return;
  int pos = n < K ? n : K - 1;
  while (pos > 0 && t->mem[pos - 1].cost > cost) {
    t->mem[pos] = t->mem[pos - 1];
    pos--;
  }
  t->mem[pos].f = pack_fn(f);
  t->mem[pos].cost = (uint16_t)cost;
  if (n < K) t->nmem = (uint8_t)(n + 1);
}

/* The class of key (created when new); -1 out of memory, -3 when the class
 * is new and the budget of classes is spent (it is left out). */
static long class_get(sv *S, const uint32_t *key) {
  int created;
  if (S->cks.n >= MAX_CLASSES) { /* over budget: existing classes only */
    long id = ks_get(&S->cks, key, 0, NULL);
    if (id == -1) S->truncated = 1;
    return id == -1 ? -3 : id;
  }
  long id = ks_get(&S->cks, key, 1, &created);
  if (id < 0) return -1;
  if (created) {
    size_t cap = S->ccap;
    if (GROW(S->cls, S->ccap, (size_t)id + 1)) return -1;
    if (S->ccap != cap) {
      uint16_t *w = realloc(S->cworst, S->ccap * sizeof *w);
      if (!w) return -1;
      S->cworst = w;
    }
    S->cls[id].nmem = 0;
    S->cworst[id] = UINT16_MAX;
  }
  return id;
}

/* Offers a member (packed) to class id (kept when among the cheapest). */
static inline void cls_add_packed(sv *S, long id, uint64_t e, int cost) {
  cost = cap_cost(cost);
  if (cost >= S->cworst[id]) return;
  klass *c = &S->cls[id];
  member_add(c->mem, &c->nmem, e, cost);
  if (c->nmem == SD_SOLVE_MEMBERS) S->cworst[id] = c->mem[SD_SOLVE_MEMBERS - 1].cost;
}

static inline void cls_add(sv *S, long id, const sd_expr *e, int cost) {
  if (cap_cost(cost) < S->cworst[id]) cls_add_packed(S, id, pack_expr(e), cost);
}

static int all_zero(const uint32_t *key, size_t n) {
  for (size_t k = 0; k < n; k++)
    if (key[k]) return 0;
  return 1;
}

static int add_class_member(sv *S, const uint32_t *key, const sd_expr *e, int cost) {
  if (!S->all_empty && all_zero(key, S->n)) return 0;
  long id = class_get(S, key);
  if (id == -3) return 0;
  if (id < 0) return -1;
  cls_add(S, id, e, cost);
  return 0;
}

static long inner_get(sv *S, const uint32_t *key) {
  int created;
  long id = ks_get(&S->iks, key, 1, &created);
  if (id < 0) return -1;
  if (created) {
    if (GROW(S->iv, S->ivcap, (size_t)id + 1)) return -1;
    S->iv[id].nmem = 0;
  }
  return id;
}

/* A Compose inner whose outputs (strs[k], lens[k]) are not all input pieces. */
static uint64_t strs_hash(const sv *S, uint32_t *const *strs, const size_t *lens) {
  uint64_t h = 1469598103934665603ull;
  for (size_t k = 0; k < S->n; k++)
    h = (h ^ hash_bytes((const uint8_t *)strs[k], lens[k] * sizeof(uint32_t))) * 0x100000001B3ull;
  return h;
}

static int sinner_eq(const sv *S, size_t id, uint32_t *const *strs, const size_t *lens) {
  const size_t *o = S->soff + S->sv[id].off;
  for (size_t k = 0; k < S->n; k++)
    if (o[2 * k + 1] != lens[k] ||
        (lens[k] && memcmp(S->pool + o[2 * k], strs[k], lens[k] * sizeof(uint32_t))))
      return 0;
  return 1;
}

static int sinner_rehash(sv *S, size_t cap) {
  uint32_t *sl = calloc(cap, sizeof *sl);
  if (!sl) return -1;
  for (size_t id = 0; id < S->nsv; id++) {
    const size_t *o = S->soff + S->sv[id].off;
    uint64_t h = 1469598103934665603ull;
    for (size_t k = 0; k < S->n; k++)
      h = (h ^ hash_bytes((const uint8_t *)(S->pool + o[2 * k]), o[2 * k + 1] * sizeof(uint32_t))) *
          0x100000001B3ull;
    size_t m = (size_t)h & (cap - 1);
    while (sl[m]) m = (m + 1) & (cap - 1);
    sl[m] = (uint32_t)id + 1;
  }
  free(S->sslot);
  S->sslot = sl;
  S->sscap = cap;
  return 0;
}

static long sinner_get(sv *S, uint32_t *const *strs, const size_t *lens) {
  if (!S->sscap && sinner_rehash(S, 64)) return -1;
  uint64_t h = strs_hash(S, strs, lens);
  size_t m = (size_t)h & (S->sscap - 1);
  while (S->sslot[m]) {
    size_t id = S->sslot[m] - 1;
    if (sinner_eq(S, id, strs, lens)) return (long)id;
    m = (m + 1) & (S->sscap - 1);
  }
  size_t total = 0;
  for (size_t k = 0; k < S->n; k++) total += lens[k];
  if (GROW(S->pool, S->poolcap, S->npool + total) ||
      GROW(S->soff, S->soffcap, S->nsoff + 2 * S->n) || GROW(S->sv, S->svcap, S->nsv + 1))
    return -1;
  size_t id = S->nsv++;
  S->sv[id].off = S->nsoff;
  S->sv[id].in.nmem = 0;
  for (size_t k = 0; k < S->n; k++) {
    S->soff[S->nsoff++] = S->npool;
    S->soff[S->nsoff++] = lens[k];
    if (lens[k]) memcpy(S->pool + S->npool, strs[k], lens[k] * sizeof(uint32_t));
    S->npool += lens[k];
  }
  S->sslot[m] = (uint32_t)id + 1;
  if (S->nsv * 2 > S->sscap && sinner_rehash(S, S->sscap * 2)) return -1;
  return (long)id;
}

/* 1 when the time is up (checked every 64 calls). */
static int time_up(sv *S) {
  if (S->timed_out) return 1;
  if ((++S->tick & 63) == 0 && now_s() > S->deadline) S->timed_out = 1;
  return S->timed_out;
}

/* ------------------------------------------------------------------------ */
/* Enumeration                                                               */

static int enum_const(sv *S) {
  for (int c = 0; c < SD_NUM_CHARS; c++) {
    uint32_t ch = (unsigned char)sd_chars[c];
    size_t k;
    for (k = 0; k < S->n; k++) {
      S->key[k] = find_out(&S->ex[k], &ch, 1);
      if (S->key[k] == NF) break;
    }
    if (k < S->n) continue;
    sd_expr e;
    memset(&e, 0, sizeof e);
    e.fn.op = SD_CONSTSTR;
    e.fn.a[0] = (int16_t)c;
    if (add_class_member(S, S->key, &e, S->c.op[SD_CONSTSTR])) return -1;
  }
  return 0;
}

/* Records a piece-valued expression (its pieces lo[k], len[k]) as a class
 * member (when found in the targets) and as a Compose inner. */
static int add_piece_expr(sv *S, const int *lo, const int *len, const sd_fn *f, int cost,
                          int as_inner) {
  int nonempty = 0, in_target = 1;
  for (size_t k = 0; k < S->n; k++) {
    if (len[k]) nonempty = 1;
    if (in_target) {
      S->key[k] = piece_out(&S->ex[k], lo[k], len[k]);
      if (S->key[k] == NF) in_target = 0;
    }
  }
  if (!nonempty && !S->all_empty) return 0;
  if (in_target) {
    sd_expr e;
    memset(&e, 0, sizeof e);
    e.fn = *f;
    if (add_class_member(S, S->key, &e, cost)) return -1;
  }
  if (as_inner && nonempty) {
    for (size_t k = 0; k < S->n; k++) S->key2[k] = piece_canon(&S->ex[k], lo[k], len[k]);
    long id = inner_get(S, S->key2);
    if (id < 0) return -1;
    imem_add(&S->iv[id], f, cost);
  }
  return 0;
}

static int substr_cost(const sv *S, int k1, int k2, int minL) {
  int c = S->c.op[SD_SUBSTR];
  if (k1 <= 0) c += S->c.substr_neg;
  if (k2 <= 0) c += S->c.substr_neg;
  if (k1 > minL || -k1 > minL || k2 > minL || -k2 > minL) c += S->c.substr_far;
  return c;
}

static int enum_substr(sv *S, int *lo, int *len) {
  int minL = S->ex[0].L;
  for (size_t k = 1; k < S->n; k++)
    if (S->ex[k].L < minL) minL = S->ex[k].L;
  for (int k1 = -100; k1 <= 100; k1++) {
    if (time_up(S)) return 0;
    for (int k2 = -100; k2 <= 100; k2++) {
      for (size_t k = 0; k < S->n; k++) substr_piece(k1, k2, S->ex[k].L, &lo[k], &len[k]);
      sd_fn f;
      memset(&f, 0, sizeof f);
      f.op = SD_SUBSTR;
      f.a[0] = (int16_t)k1;
      f.a[1] = (int16_t)k2;
      if (add_piece_expr(S, lo, len, &f, substr_cost(S, k1, k2, minL), 1)) return -1;
    }
  }
  return 0;
}

/* GetSpan: both sides are grouped by their positions on every example. */
typedef struct side {
  int16_t r, i, b, cost;
} side;
typedef struct sideclass {
  int nmem;
  side mem[SD_SOLVE_MEMBERS];
} sideclass;

static int enum_getspan(sv *S, int *lo, int *len) {
  keyset ks = {0};
  ks.klen = S->n * sizeof(int16_t);
  sideclass *sc = NULL;
  size_t sccap = 0;
  int16_t *pos = malloc(S->n * sizeof *pos);
  int rc = pos ? 0 : -1;
  for (int r = 0; r < SD_NUM_REGEX && !rc; r++)
    for (int i = -5; i <= 5 && !rc; i++) {
      if (i == 0) continue;
      for (int b = 0; b < 2 && !rc; b++) {
        int any = 0;
        for (size_t k = 0; k < S->n; k++) {
          pos[k] = (int16_t)side_pos(&S->ex[k], r, i, b);
          if (pos[k] >= 0) any = 1;
        }
        if (!any) continue;
        int created;
        long id = ks_get(&ks, pos, 1, &created);
        if (id < 0 || (created && GROW(sc, sccap, (size_t)id + 1))) {
          rc = -1;
          break;
        }
        if (created) sc[id].nmem = 0;
        sideclass *c = &sc[id];
        side sd = {(int16_t)r, (int16_t)i, (int16_t)b, (int16_t)side_cost(S, r, i)};
        if (c->nmem == SD_SOLVE_MEMBERS && sd.cost >= c->mem[SD_SOLVE_MEMBERS - 1].cost) continue;
        int p = c->nmem < SD_SOLVE_MEMBERS ? c->nmem : SD_SOLVE_MEMBERS - 1;
        while (p > 0 && c->mem[p - 1].cost > sd.cost) {
          c->mem[p] = c->mem[p - 1];
          p--;
        }
        c->mem[p] = sd;
        if (c->nmem < SD_SOLVE_MEMBERS) c->nmem++;
      }
    }
  const int16_t *P = (const int16_t *)ks.keys;
  for (size_t A = 0; A < ks.n && !rc; A++) {
    if (time_up(S)) break;
    for (size_t B = 0; B < ks.n && !rc; B++) {
      int nonempty = 0, in_target = 1;
      for (size_t k = 0; k < S->n; k++) {
        int p1 = P[A * S->n + k], p2 = P[B * S->n + k];
        if (p1 < 0 || p2 < 0 || p1 >= p2) {
          lo[k] = len[k] = 0;
        } else {
          lo[k] = p1;
          len[k] = p2 - p1;
          nonempty = 1;
        }
      }
      if (!nonempty) continue;
      for (size_t k = 0; k < S->n && in_target; k++) {
        S->key[k] = piece_out(&S->ex[k], lo[k], len[k]);
        if (S->key[k] == NF) in_target = 0;
      }
      long cid = -1, iid = -1;
      if (in_target && (cid = class_get(S, S->key)) < 0 && cid != -3) rc = -1;
      for (size_t k = 0; k < S->n; k++) S->key2[k] = piece_canon(&S->ex[k], lo[k], len[k]);
      if (!rc && (iid = inner_get(S, S->key2)) < 0) rc = -1;
      if (rc) break;
      for (int a = 0; a < sc[A].nmem; a++)
        for (int b = 0; b < sc[B].nmem; b++) {
          const side *x = &sc[A].mem[a], *y = &sc[B].mem[b];
          sd_expr e;
          memset(&e, 0, sizeof e);
          e.fn.op = SD_GETSPAN;
          e.fn.a[0] = x->r;
          e.fn.a[1] = x->i;
          e.fn.a[2] = x->b;
          e.fn.a[3] = y->r;
          e.fn.a[4] = y->i;
          e.fn.a[5] = y->b;
          int cost = S->c.op[SD_GETSPAN] + x->cost + y->cost;
          if (cid >= 0) cls_add(S, cid, &e, cost);
          imem_add(&S->iv[iid], &e.fn, cost);
        }
    }
  }
  free(pos);
  free(sc);
  ks_free(&ks);
  return rc;
}

/* The nesting operations worth running: types and regexes that match in some
 * input, Replace of a delimiter found in some input (as Compose's outer
 * operation only towards a delimiter found in some output: otherwise it is
 * the identity or fails). Arguments that match nothing give "" everywhere. */
/* The types the inputs seem to be made of: each maximal run of letters and
 * digits is taken as one token of the narrowest type that describes it
 * (digits: NUMBER and DIGIT; lower case: LOWER; capitals: ALL_CAPS; a
 * capital then lower case: PROP_CASE; other letters: WORD; letters and
 * digits: ALPHANUM); CHAR always counts. Random tasks build their inputs from
 * such tokens and draw the types of their expressions among those used. */
static void infer_types(sv *S) {
  memset(S->tpresent, 0, sizeof S->tpresent);
  S->tpresent[SD_CHAR] = 1;
  for (size_t k = 0; k < S->n; k++) {
    const exm *x = &S->ex[k];
    int i = 0;
    while (i < x->L) {
      unsigned all = 0;
      int j = i, caps = 0;
      while (j < x->L && (kcls(x->in[j]) & (K_DIG | K_UP | K_LOW))) {
        unsigned c = kcls(x->in[j]);
        all |= c;
        if ((c & K_UP) && j > i) caps = 2;
        j++;
      }
      if (j == i) {
        i++;
        continue;
      }
      all &= K_DIG | K_UP | K_LOW;
      if (all == K_DIG) S->tpresent[SD_NUMBER] = S->tpresent[SD_DIGIT] = 1;
      else if (all == K_LOW) S->tpresent[SD_LOWER] = 1;
      else if (all == K_UP) S->tpresent[SD_ALL_CAPS] = 1;
      else if (all == (K_UP | K_LOW) && !caps && (kcls(x->in[i]) & K_UP))
        S->tpresent[SD_PROP_CASE] = 1;
      else if (!(all & K_DIG)) S->tpresent[SD_WORD] = 1;
      else S->tpresent[SD_ALPHANUM] = 1;
      i = j;
    }
  }
}

static int list_ops(sv *S) {
  infer_types(S);
  int type_ok[SD_NUM_TYPES] = {0}, regex_ok[SD_NUM_REGEX] = {0}, d_out[SD_NUM_DELIMS] = {0};
  int maxm[SD_NUM_TYPES] = {0}; /* most matches of a type in one input */
  for (size_t k = 0; k < S->n; k++) {
    for (int r = 0; r < SD_NUM_REGEX; r++)
      if (S->ex[k].mcnt[r]) regex_ok[r] = 1;
    for (int t = 0; t < SD_NUM_TYPES; t++)
      if (S->ex[k].mcnt[t] > maxm[t]) maxm[t] = S->ex[k].mcnt[t];
    for (int j = 0; j < S->ex[k].M; j++) {
      int ci = sd_char_index(S->ex[k].out[j]);
      if (ci >= SD_FIRST_DELIM) d_out[ci - SD_FIRST_DELIM] = 1;
    }
  }
  for (int t = 0; t < SD_NUM_TYPES; t++) type_ok[t] = regex_ok[t];
  size_t n = 0;
#define ADD_OP(OP, A0, A1, OUTER)                                                   \
  do {                                                                           \
    if (GROW(S->ops, S->opscap, n + 1)) return -1;                               \
    if (n % 64 == 0) {                                                           \
      uint8_t *q = realloc(S->outer_ok, n + 64);                                 \
      if (!q) return -1;                                                         \
      S->outer_ok = q;                                                           \
    }                                                                            \
    memset(&S->ops[n], 0, sizeof S->ops[n]);                                     \
    S->ops[n].op = (OP);                                                         \
    S->ops[n].a[0] = (int16_t)(A0);                                              \
    S->ops[n].a[1] = (int16_t)(A1);                                              \
    S->outer_ok[n] = (uint8_t)(OUTER);                                           \
    n++;                                                                         \
  } while (0)
  /* GetToken(t, i) with |i| above every input's count of t gives "" on every
   * input and on every piece of one */
  for (int t = 0; t < SD_NUM_TYPES; t++) {
    if (!type_ok[t]) continue;
    for (int i = -5; i <= 5; i++)
      if (i && (i < 0 ? -i : i) <= maxm[t]) ADD_OP(SD_GETTOKEN, t, i, 1);
  }
  for (int c = 0; c < SD_NUM_CASES; c++) ADD_OP(SD_TOCASE, c, 0, 1);
  for (int d1 = 0; d1 < SD_NUM_DELIMS; d1++) {
    if (!regex_ok[SD_NUM_TYPES + d1]) continue;
    for (int d2 = 0; d2 < SD_NUM_DELIMS; d2++)
      if (d2 != d1) ADD_OP(SD_REPLACE, d1, d2, d_out[d2]);
  }
  ADD_OP(SD_TRIM, 0, 0, 1);
  for (int r = 0; r < SD_NUM_REGEX; r++)
    if (regex_ok[r]) ADD_OP(SD_GETUPTO, r, 0, 1);
  for (int r = 0; r < SD_NUM_REGEX; r++)
    if (regex_ok[r]) ADD_OP(SD_GETFROM, r, 0, 1);
  /* GetFirst(t, i): for i above every count it is GetFirst(t, max count) (all
   * matches) everywhere; for i <= -(max count) it gives "" everywhere */
  for (int t = 0; t < SD_NUM_TYPES; t++) {
    if (!type_ok[t]) continue;
    for (int i = -5; i <= 5; i++)
      if (i && (i > 0 ? i <= maxm[t] : -i < maxm[t])) ADD_OP(SD_GETFIRST, t, i, 1);
  }
  for (int t = 0; t < SD_NUM_TYPES; t++)
    if (type_ok[t]) ADD_OP(SD_GETALL, t, 0, 1);
#undef ADD_OP
  S->nops = n;
  return 0;
}

/* Nesting operations on the inputs: class members and Compose inners. */
static int enum_nesting(sv *S, uint32_t **strs, size_t *lens) {
  for (size_t o = 0; o < S->nops; o++) {
    const sd_fn *f = &S->ops[o];
    sd_expr e;
    memset(&e, 0, sizeof e);
    e.fn = *f;
    int nonempty = 0, in_target = 1, pieces = 1;
    for (size_t k = 0; k < S->n; k++) {
      exm *x = &S->ex[k];
      if (sd_eval_expr(&e, x->in, (size_t)x->L, &S->tmp)) return -1;
      lens[k] = S->tmp.n;
      if (S->tmp.n) {
        nonempty = 1;
        memcpy(strs[k], S->tmp.c, S->tmp.n * sizeof *S->tmp.c);
      }
      if (in_target && (S->key[k] = find_out(x, S->tmp.c, S->tmp.n)) == NF) in_target = 0;
      if (pieces && (S->key2[k] = find_in(x, S->tmp.c, S->tmp.n)) == NF) pieces = 0;
    }
    if (!nonempty && !S->all_empty) continue;
    int cost = fn_cost(S, f);
    if (in_target && add_class_member(S, S->key, &e, cost)) return -1;
    if (!nonempty) continue;
    long id;
    if (pieces) {
      if ((id = inner_get(S, S->key2)) < 0) return -1;
      imem_add(&S->iv[id], f, cost);
    } else {
      if ((id = sinner_get(S, strs, lens)) < 0) return -1;
      imem_add(&S->sv[id].in, f, cost);
    }
  }
  return 0;
}

/* Compose: the outer operation f on an input piece (packed canonical start,
 * length) of example k, as a class key part; IDB marks a result equal to the
 * piece. Fast paths: character maps (ToCase ALL_CAPS/LOWER, Replace) through
 * a first-occurrence table of the mapped input; GetToken, GetUpto and GetFrom
 * through the input's matches (inside a piece, the matches of a regex are the
 * input's matches that lie in it, clipped to it: runs are maximal runs, a
 * PROP_CASE match is a capital followed by lower-case letters, the others are
 * single characters); the rest through the interpreter. */
#define IDB 0x80000000u

/* Index of the first match of r in a piece starting at lo, and of the last
 * one in a piece ending at hi (-1 when none). */
static inline int first_match_from(const exm *x, int r, int lo) {
  return x->fm[(size_t)r * (size_t)(x->L + 1) + (size_t)lo];
}
static inline int last_match_before(const exm *x, int r, int hi) {
  return x->lm[(size_t)r * (size_t)(x->L + 1) + (size_t)hi];
}

/* The clipped span of match j of r in piece [lo, hi). */
static inline void clipped(const exm *x, int r, int j, int lo, int hi, int *a, int *b) {
  const uint16_t *sp = x->mspan + 2 * ((size_t)x->moff[r] + (size_t)j);
  *a = sp[0] > lo ? sp[0] : lo;
  *b = sp[1] < hi ? sp[1] : hi;
}

static int match_tables(exm *x) {
  size_t L1 = (size_t)x->L + 1;
  x->fm = malloc((size_t)SD_NUM_REGEX * L1 * sizeof *x->fm);
  x->lm = malloc((size_t)SD_NUM_REGEX * L1 * sizeof *x->lm);
  if (!x->fm || !x->lm) return -1;
  for (int r = 0; r < SD_NUM_REGEX; r++) {
    const uint16_t *sp = x->mspan + 2 * (size_t)x->moff[r];
    int m = x->mcnt[r], prop = r == SD_PROP_CASE;
    int16_t *fm = x->fm + (size_t)r * L1, *lm = x->lm + (size_t)r * L1;
    /* first: end > lo (a run may start before lo); PROP_CASE: start >= lo */
    int j = 0;
    for (int lo = 0; lo <= x->L; lo++) {
      while (j < m && (prop ? sp[2 * j] < lo : sp[2 * j + 1] <= lo)) j++;
      fm[lo] = (int16_t)(j < m ? j : -1);
    }
    /* last: start < hi; PROP_CASE: start + 1 < hi (a lower-case letter follows) */
    j = -1;
    for (int hi = 0; hi <= x->L; hi++) {
      while (j + 1 < m && sp[2 * (j + 1)] + (prop ? 1 : 0) < hi) j++;
      lm[hi] = (int16_t)j;
    }
  }
  return 0;
}

/* The character map of op f on the input into x->mapped, its first-occurrence
 * table in the target and the prefix counts of changed characters. */
static int load_map(exm *x, const sd_fn *f, long id) {
  if (x->map_id == id) return 0;
  size_t L1 = (size_t)x->L + 1, M1 = (size_t)x->M + 1;
  if (!x->mapped) {
    x->mapped = malloc(L1 * sizeof *x->mapped);
    x->mfocc = malloc(L1 * M1 * sizeof *x->mfocc);
    x->mchg = malloc((L1 + 1) * sizeof *x->mchg);
    if (!x->mapped || !x->mfocc || !x->mchg) return -1;
  }
  uint32_t c1 = 0, c2 = 0;
  if (f->op == SD_REPLACE) {
    c1 = (unsigned char)sd_chars[SD_FIRST_DELIM + f->a[0]];
    c2 = (unsigned char)sd_chars[SD_FIRST_DELIM + f->a[1]];
  }
  x->mchg[0] = 0;
  for (int i = 0; i < x->L; i++) {
    uint32_t c = x->in[i], d = c;
    if (f->op == SD_REPLACE) d = c == c1 ? c2 : c;
    else if (f->a[0] == SD_CASE_ALL_CAPS) d = c - 'a' < 26u ? c - 32 : c;
    else d = c - 'A' < 26u ? c + 32 : c;
    x->mapped[i] = d;
    x->mchg[i + 1] = (uint16_t)(x->mchg[i] + (d != c));
  }
  static const uint32_t empty[1] = {0};
  if (first_occ_table(x->L ? x->mapped : empty, x->L, x->M ? x->out : empty, x->M, x->mfocc))
    return -1;
  x->map_id = id;
  return 0;
}

static uint32_t piece_result(const exm *x, int a, int b, int len) {
  uint32_t v = piece_out(x, a, b - a);
  return v == NF ? NF : v | (b - a == len ? IDB : 0);
}

static uint32_t op_on_piece(sv *S, exm *x, const sd_expr *e, long id, int lo, int len) {
  const sd_fn *f = &e->fn;
  int hi = lo + len, r = f->a[0];
  switch (f->op) {
  case SD_TOCASE:
    if (f->a[0] == SD_PROPER) break;
    /* fall through */
  case SD_REPLACE: {
    if (load_map(x, f, id)) {
      S->oom = 1;
      return NF;
    }
    int o = len > x->M ? -1 : x->mfocc[(size_t)lo * (size_t)(x->M + 1) + (size_t)len];
    if (o < 0) return NF;
    return PACK(o, len) | (x->mchg[hi] == x->mchg[lo] ? IDB : 0);
  }
  case SD_GETTOKEN: {
    int j0 = first_match_from(x, r, lo), j1 = last_match_before(x, r, hi);
    int m = j0 < 0 || j1 < j0 ? 0 : j1 - j0 + 1, i = f->a[1];
    int idx = i > 0 ? i - 1 : m + i;
    if (idx < 0 || idx >= m) return 0;
    int a, b;
    clipped(x, r, j0 + idx, lo, hi, &a, &b);
    return piece_result(x, a, b, len);
  }
  case SD_GETUPTO:
  case SD_GETFROM: {
    int j0 = first_match_from(x, r, lo), j1 = last_match_before(x, r, hi);
    if (j0 < 0 || j1 < j0) return 0;
    int a, b;
    clipped(x, r, j0, lo, hi, &a, &b);
    return f->op == SD_GETUPTO ? piece_result(x, lo, b, len) : piece_result(x, b, hi, len);
  }
  default: break;
  }
  if (sd_eval_expr(e, x->in + lo, (size_t)len, &S->tmp)) {
    S->oom = 1;
    return NF;
  }
  uint32_t v = find_out(x, S->tmp.c, S->tmp.n);
  if (v != NF && S->tmp.n == (size_t)len &&
      memcmp(S->tmp.c, x->in + lo, (size_t)len * sizeof *S->tmp.c) == 0)
    v |= IDB;
  return v;
}

/* Memoised op_on_piece for the current stamp st. */
static uint32_t memo_apply(sv *S, exm *x, const sd_expr *e, long id, uint32_t piece, uint32_t st) {
  int lo = P_OFF(piece), len = P_LEN(piece);
  if (len == 0) return IDB;
  uint32_t *mm = x->memo + 2 * ((size_t)lo * (size_t)(x->L + 1) + (size_t)len);
  if (mm[0] != st) {
    mm[0] = st;
    uint32_t v = op_on_piece(S, x, e, id, lo, len);
    if (S->self_check && !S->oom) {
      /* the fast paths against the interpreter */
      int bad_ = sd_eval_expr(e, x->in + lo, (size_t)len, &S->tmp) != 0;
      if (!bad_) {
        uint32_t w = find_out(x, S->tmp.c, S->tmp.n);
        if (w != NF && S->tmp.n == (size_t)len &&
            memcmp(S->tmp.c, x->in + lo, (size_t)len * sizeof *S->tmp.c) == 0)
          w |= IDB;
        if (w != v) S->fast_mismatches++;
      }
    }
    mm[1] = v;
  }
  return mm[1];
}

/* Sorting the piece inners: lexicographic over the examples in the order
 * S->perm (longest inputs first: they have the most distinct pieces). */
typedef struct tsort {
  const uint32_t *K;
  const size_t *perm;
  size_t n;
} tsort;

static int cmp_tuples(const uint32_t *a, const uint32_t *b, const tsort *ts) {
  for (size_t j = 0; j < ts->n; j++) {
    uint32_t x = a[ts->perm[j]], y = b[ts->perm[j]];
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

/* A small merge sort of tuple ids (qsort has no context argument in C11). */
static void sort_ids(uint32_t *id, uint32_t *tmp, size_t n, const tsort *ts) {
  if (n < 2) return;
  size_t h = n / 2;
  sort_ids(id, tmp, h, ts);
  sort_ids(id + h, tmp, n - h, ts);
  size_t i = 0, j = h, o = 0;
  while (i < h && j < n)
    tmp[o++] = cmp_tuples(ts->K + (size_t)id[j] * ts->n, ts->K + (size_t)id[i] * ts->n, ts) < 0
                   ? id[j++]
                   : id[i++];
  while (i < h) tmp[o++] = id[i++];
  while (j < n) tmp[o++] = id[j++];
  memcpy(id, tmp, n * sizeof *id);
}

/* Offers Compose(f, each member of t) to the class S->key (the previous
 * call's class is remembered: consecutive pieces often give the same). */
static int add_compose(sv *S, const sd_fn *f, int fc, const inner *t) {
  long cid;
  size_t k = 0;
  if (S->last_cid >= 0)
    while (k < S->n && S->last_key[k] == S->key[k]) k++;
  if (S->last_cid >= 0 && k == S->n) {
    cid = S->last_cid;
  } else {
    cid = class_get(S, S->key);
    if (cid == -3) return 0;
    if (cid < 0) return -1;
    memcpy(S->last_key, S->key, S->n * sizeof *S->key);
    S->last_cid = cid;
  }
  uint64_t outer = pack_fn(f);
  for (int m = 0; m < t->nmem; m++)
    cls_add_packed(S, cid, outer | (uint64_t)t->mem[m].f << 32,
                   S->c.op[SD_COMPOSE] + fc + t->mem[m].cost);
  return 0;
}

static int enum_compose(sv *S) {
  /* The piece inners as a trie: sorted over the examples in perm order,
   * level j of row i is the piece of example perm[j]; dl[i] is the first
   * level where rows i and i+1 differ, nxt[j][i] the first row after i whose
   * levels 0..j differ from row i's. An outer operation whose result does not
   * fit at level j of a row skips all the rows that share its levels 0..j. */
  size_t ni = S->iks.n, n = S->n, nn = ni ? ni : 1;
  const uint32_t *K = (const uint32_t *)S->iks.keys;
  size_t *perm = malloc(n * sizeof *perm);
  uint32_t *tid = malloc(nn * sizeof *tid), *tmp = malloc(nn * sizeof *tmp);
  uint32_t *KB = malloc(nn * n * sizeof *KB), *nxt = malloc(nn * n * sizeof *nxt);
  uint16_t *dl = malloc(nn * sizeof *dl);
  uint32_t *vals = malloc(n * sizeof *vals);
  int rc = 0;
  if (!perm || !tid || !tmp || !KB || !nxt || !dl || !vals) rc = -1;
  if (!rc) {
    for (size_t k = 0; k < n; k++) perm[k] = k;
    for (size_t a = 1; a < n; a++) /* insertion sort: longest input first */
      for (size_t b = a; b > 0 && S->ex[perm[b]].L > S->ex[perm[b - 1]].L; b--) {
        size_t t = perm[b];
        perm[b] = perm[b - 1];
        perm[b - 1] = t;
      }
    tsort ts = {K, perm, n};
    for (size_t i = 0; i < ni; i++) tid[i] = (uint32_t)i;
    sort_ids(tid, tmp, ni, &ts);
    for (size_t i = 0; i < ni; i++)
      for (size_t j = 0; j < n; j++) KB[i * n + j] = K[(size_t)tid[i] * n + perm[j]];
    for (size_t i = 0; i < ni; i++) {
      size_t j = 0;
      if (i + 1 < ni)
        while (j < n && KB[i * n + j] == KB[(i + 1) * n + j]) j++;
      dl[i] = (uint16_t)j;
    }
    for (size_t j = 0; j < n; j++)
      for (size_t i = ni; i-- > 0;)
        nxt[j * nn + i] = i + 1 < ni && dl[i] > j ? nxt[j * nn + i + 1] : (uint32_t)(i + 1);
  }
  free(tmp);
  for (size_t k = 0; k < n; k++) S->ex[k].map_id = -1;
  uint32_t st = 0;
  for (size_t o = 0; o < S->nops && !rc; o++) {
    if (!S->outer_ok[o]) continue;
    if (now_s() > S->deadline) S->timed_out = 1;
    if (S->timed_out) break;
    const sd_fn *f = &S->ops[o];
    sd_expr e;
    memset(&e, 0, sizeof e);
    e.fn = *f;
    const int fc = fn_cost(S, f);
    st++;
    size_t i = 0, start = 0;
    while (i < ni) {
      size_t j;
      for (j = start; j < n; j++) {
        uint32_t v = memo_apply(S, &S->ex[perm[j]], &e, (long)o, KB[i * n + j], st);
        if (v == NF) break;
        vals[j] = v;
      }
      if (S->oom) {
        rc = -1;
        break;
      }
      if (j < n) { /* no fit: skip the rows sharing levels 0..j */
        size_t i2 = nxt[j * nn + i];
        if (i2 >= ni) break;
        start = dl[i2 - 1];
        i = i2;
        continue;
      }
      uint32_t ident = IDB, any = 0;
      for (j = 0; j < n; j++) {
        ident &= vals[j];
        any |= vals[j] & ~IDB;
        S->key[perm[j]] = vals[j] & ~IDB;
      }
      /* skipped: "" everywhere, or f changes nothing (the inner alone is the
       * same class, cheaper) */
      if (any && !ident) {
        if (add_compose(S, f, fc, &S->iv[tid[i]])) {
          rc = -1;
          break;
        }
      }
      if (i + 1 >= ni) break;
      start = dl[i];
      i++;
    }
    /* inners that are not pieces of the inputs: through the interpreter */
    for (size_t t = 0; t < S->nsv && !rc; t++) {
      const size_t *so = S->soff + S->sv[t].off;
      size_t k;
      int any = 0, ident = 1;
      for (k = 0; k < n; k++) {
        const uint32_t *str = S->pool + so[2 * k];
        size_t len = so[2 * k + 1];
        if (sd_eval_expr(&e, str, len, &S->tmp)) {
          rc = -1;
          break;
        }
        uint32_t v = find_out(&S->ex[k], S->tmp.c, S->tmp.n);
        if (v == NF) break;
        S->key[k] = v;
        if (v) any = 1;
        if (S->tmp.n != len || (len && memcmp(S->tmp.c, str, len * sizeof *str))) ident = 0;
      }
      if (rc || k < n || !any || ident) continue;
      if (add_compose(S, f, fc, &S->sv[t].in)) rc = -1;
    }
  }
  free(perm);
  free(tid);
  free(KB);
  free(nxt);
  free(dl);
  free(vals);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Search graph                                                              */

typedef struct graph {
  size_t nc;             /* classes in the graph (the all-empty one excluded) */
  uint32_t *cid;         /* graph class (row) -> class id; rows sorted by key */
  uint32_t *sk;          /* the rows' keys (n per row) */
  uint32_t *cand;        /* scratch: the rows occurring at a state */
  size_t ncand, ccap;
  uint16_t **lbk;        /* per example: fewest expressions from p to the end (lower bound) */
  /* one round (paths of at most `bound` expressions): */
  keyset st;             /* states: n uint16 positions */
  struct span { uint32_t beg, cnt; } *se; /* per state: its edges */
  uint16_t *depth;       /* fewest expressions from the start */
  size_t stcap, depcap;
  struct edge { uint32_t cls, next; } *ed; /* edges: graph class, next state */
  size_t ne, ecap;
  uint16_t *hn;          /* fewest expressions to the goal (INF_N: none) */
  uint32_t *hc;          /* least cost sum along such paths */
} graph;

/* Frees one round's states, edges and distances. */
static void round_free(graph *G) {
  ks_free(&G->st);
  free(G->se);
  free(G->depth);
  free(G->ed);
  free(G->hn);
  free(G->hc);
  G->se = NULL;
  G->depth = NULL;
  G->ed = NULL;
  G->hn = NULL;
  G->hc = NULL;
  G->stcap = G->depcap = G->ne = G->ecap = 0;
}

static void graph_free(graph *G, size_t n) {
  free(G->cid);
  free(G->sk);
  free(G->cand);
  for (size_t k = 0; G->lbk && k < n; k++) free(G->lbk[k]);
  free(G->lbk);
  round_free(G);
}

static inline const uint32_t *ckey(const sv *S, size_t id) {
  return (const uint32_t *)S->cks.keys + id * S->n;
}

/* 1 when class key c's output on example k occurs at position p. */
static inline int occurs_at(const exm *x, uint32_t v, int p) {
  int len = P_LEN(v);
  if (len == 0) return 1;
  if (p + len > x->M) return 0;
  return x->oocc[(size_t)p * (size_t)(x->M + 1) + (size_t)len] == P_OFF(v);
}

/* Sorting the classes of the graph by their keys (the order of examples). */
static int cmp_keys(const uint32_t *a, const uint32_t *b, size_t n) {
  for (size_t k = 0; k < n; k++)
    if (a[k] != b[k]) return a[k] < b[k] ? -1 : 1;
  return 0;
}

static void sort_classes(uint32_t *id, uint32_t *tmp, size_t m, const uint32_t *keys, size_t n) {
  if (m < 2) return;
  size_t h = m / 2;
  sort_classes(id, tmp, h, keys, n);
  sort_classes(id + h, tmp, m - h, keys, n);
  size_t i = 0, j = h, o = 0;
  while (i < h && j < m)
    tmp[o++] = cmp_keys(keys + (size_t)id[j] * n, keys + (size_t)id[i] * n, n) < 0 ? id[j++]
                                                                                 : id[i++];
  while (i < h) tmp[o++] = id[i++];
  while (j < m) tmp[o++] = id[j++];
  memcpy(id, tmp, m * sizeof *id);
}

/* The index of the search: the classes (but the all-empty one) sorted by
 * their keys form a trie over the examples (see collect); per example, the
 * lengths of the class outputs found at each position give a lower bound of
 * the expressions still needed from there. */
static int build_index(sv *S, graph *G) {
  size_t n = S->n, nc = 0;
  uint32_t *id = malloc((S->cks.n + 1) * sizeof *id), *tmp = malloc((S->cks.n + 1) * sizeof *tmp);
  G->lbk = calloc(n, sizeof *G->lbk);
  int rc = id && tmp && G->lbk ? 0 : -1;
  for (size_t c = 0; !rc && c < S->cks.n; c++)
    if (!all_zero(ckey(S, c), n) && S->cls[c].nmem) id[nc++] = (uint32_t)c;
  if (!rc) {
    sort_classes(id, tmp, nc, (const uint32_t *)S->cks.keys, n);
    G->nc = nc;
    G->cid = id;
    id = NULL;
    G->sk = malloc((nc ? nc : 1) * n * sizeof *G->sk);
    if (!G->sk) rc = -1;
    for (size_t r = 0; !rc && r < nc; r++)
      memcpy(G->sk + r * n, ckey(S, G->cid[r]), n * sizeof *G->sk);
  }
  free(id);
  free(tmp);
  for (size_t k = 0; !rc && k < n; k++) {
    const exm *x = &S->ex[k];
    size_t M1 = (size_t)x->M + 1;
    uint8_t *present = calloc(M1 * M1, 1); /* [off * (M+1) + len]: some class outputs it */
    uint16_t *lb = malloc(M1 * sizeof *lb);
    G->lbk[k] = lb;
    if (!present || !lb) {
      free(present);
      rc = -1;
      break;
    }
    for (size_t r = 0; r < nc; r++) {
      uint32_t v = G->sk[r * n + k];
      present[(size_t)P_OFF(v) * M1 + (size_t)P_LEN(v)] = 1;
    }
    /* fewest classes covering out[p:] on this example alone */
    lb[x->M] = 0;
    for (size_t p = (size_t)x->M; p-- > 0;) {
      uint32_t best = INF_N;
      for (size_t len = 1; p + len < M1; len++) {
        int off = x->oocc[p * M1 + len];
        if (present[(size_t)off * M1 + len] && lb[p + len] != INF_N && lb[p + len] + 1u < best)
          best = lb[p + len] + 1u;
      }
      lb[p] = (uint16_t)best;
    }
    free(present);
  }
  return rc;
}

/* Appends to G->cand the classes (rows) among rows [a, b) whose outputs on
 * examples k.. occur at positions P and lead to positions from which at most
 * `limit` more expressions may suffice (by the lower bounds): the rows of
 * [a, b) agree on examples before k and are sorted by their key on example k,
 * and at P[k] exactly one key per length can occur (its first offset), so
 * each length is a binary search; small ranges are scanned. */
static int collect(const sv *S, graph *G, const uint16_t *P, unsigned limit, size_t k, size_t a,
                   size_t b) {
  size_t n = S->n;
  if (a >= b) return 0;
  const exm *x = k < n ? &S->ex[k] : NULL;
  size_t room = k < n ? (size_t)(x->M - P[k]) : 0;
  if (k == n || b - a <= 4 * (room + 1)) {
    for (size_t r = a; r < b; r++) {
      const uint32_t *key = G->sk + r * n;
      size_t j = k;
      while (j < n && occurs_at(&S->ex[j], key[j], P[j]) &&
             G->lbk[j][P[j] + P_LEN(key[j])] <= limit)
        j++;
      if (j < n) continue;
      if (GROW(G->cand, G->ccap, G->ncand + 1)) return -1;
      G->cand[G->ncand++] = (uint32_t)r;
    }
    return 0;
  }
  size_t M1 = (size_t)x->M + 1;
  for (size_t len = 0; len <= room; len++) {
    if (G->lbk[k][P[k] + len] > limit) continue;
    uint32_t v = len ? PACK(x->oocc[(size_t)P[k] * M1 + len], len) : 0;
    size_t lo = a, hi = b; /* first row with key >= v */
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (G->sk[mid * n + k] < v) lo = mid + 1;
      else hi = mid;
    }
    size_t e = lo; /* first row with key > v */
    hi = b;
    while (e < hi) {
      size_t mid = e + (hi - e) / 2;
      if (G->sk[mid * n + k] <= v) e = mid + 1;
      else hi = mid;
    }
    if (e > lo && collect(S, G, P, limit, k + 1, lo, e)) return -1;
  }
  return 0;
}

/* Lower bound of the expressions from positions P to the goal. */
static unsigned lower_bound(const graph *G, const uint16_t *P, size_t n) {
  unsigned b = 0;
  for (size_t k = 0; k < n; k++)
    if (G->lbk[k][P[k]] > b) b = G->lbk[k][P[k]];
  return b;
}

/* Adds the state with positions P (created when new, at depth d); its id,
 * -1 on OOM, -2 over budget. */
static long state_get(graph *G, const uint16_t *P, unsigned d) {
  int created;
  if (G->st.n >= MAX_STATES) {
    long id = ks_get(&G->st, P, 0, NULL);
    return id >= 0 ? id : -2;
  }
  long id = ks_get(&G->st, P, 1, &created);
  if (id < 0) return -1;
  if (created) {
    if (GROW(G->se, G->stcap, (size_t)id + 1) || GROW(G->depth, G->depcap, (size_t)id + 1))
      return -1;
    G->se[id].beg = G->se[id].cnt = 0;
    G->depth[id] = (uint16_t)d;
  }
  return id;
}

/* Breadth-first exploration from the start of the states that lie on some
 * path of at most `bound` expressions (depth + lower bound <= bound): every
 * program of at most `bound` expressions is a path among them. 0, -1 OOM,
 * 1 over budget or out of time. */
static int explore(sv *S, graph *G, unsigned bound) {
  size_t n = S->n;
  round_free(G);
  G->st.klen = n * sizeof(uint16_t);
  uint16_t *P = calloc(n, sizeof *P), *Q = calloc(n, sizeof *Q);
  if (!P || !Q) {
    free(P);
    free(Q);
    return -1;
  }
  int rc = 0;
  if (state_get(G, P, 0) < 0) rc = -1;
  for (size_t s = 0; s < G->st.n && !rc; s++) {
    if (time_up(S)) {
      rc = 1;
      break;
    }
    memcpy(P, G->st.keys + s * G->st.klen, G->st.klen);
    unsigned d = G->depth[s];
    G->se[s].beg = (uint32_t)G->ne;
    unsigned lb = lower_bound(G, P, n);
    if (lb == 0 || d + lb > bound) continue; /* the goal, or too far */
    /* every class occurring at P */
    G->ncand = 0;
    if (collect(S, G, P, bound - d - 1, 0, 0, G->nc)) {
      rc = -1;
      break;
    }
    for (size_t i = 0; i < G->ncand && !rc; i++) {
      uint32_t g = G->cand[i];
      const uint32_t *key = G->sk + (size_t)g * n;
      size_t k;
      for (k = 0; k < n; k++) {
        Q[k] = (uint16_t)(P[k] + P_LEN(key[k]));
        if (d + 1 + G->lbk[k][Q[k]] > bound) break;
      }
      if (k < n) continue;
      long t = state_get(G, Q, d + 1);
      if (t == -1) rc = -1;
      else if (t == -2 || G->ne >= MAX_EDGES) rc = 1;
      else if (GROW(G->ed, G->ecap, G->ne + 1)) rc = -1;
      if (rc) break;
      G->ed[G->ne].cls = g;
      G->ed[G->ne].next = (uint32_t)t;
      G->ne++;
    }
    G->se[s].cnt = (uint32_t)(G->ne - G->se[s].beg);
  }
  free(P);
  free(Q);
  return rc;
}

typedef struct sumid {
  uint32_t sum, id;
} sumid;

static int cmp_sum_desc(const void *a, const void *b) {
  const sumid *x = a, *y = b;
  if (x->sum != y->sum) return x->sum > y->sum ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* Distances to the goal, in decreasing order of the position sum. */
static int distances(sv *S, graph *G, long goal) {
  size_t ns = G->st.n, n = S->n;
  G->hn = malloc((ns ? ns : 1) * sizeof *G->hn);
  G->hc = malloc((ns ? ns : 1) * sizeof *G->hc);
  sumid *order = malloc((ns ? ns : 1) * sizeof *order);
  if (!G->hn || !G->hc || !order) {
    free(order);
    return -1;
  }
  for (size_t s = 0; s < ns; s++) {
    const uint16_t *P = (const uint16_t *)(G->st.keys + s * G->st.klen);
    uint32_t sum = 0;
    for (size_t k = 0; k < n; k++) sum += P[k];
    order[s].sum = sum;
    order[s].id = (uint32_t)s;
  }
  qsort(order, ns, sizeof *order, cmp_sum_desc);
  for (size_t i = 0; i < ns; i++) {
    uint32_t s = order[i].id;
    if ((long)s == goal) {
      G->hn[s] = 0;
      G->hc[s] = 0;
      continue;
    }
    uint32_t bn = INF_N, bc = UINT32_MAX;
    for (uint32_t e = G->se[s].beg; e < G->se[s].beg + G->se[s].cnt; e++) {
      uint32_t t = G->ed[e].next;
      if (G->hn[t] == INF_N) continue;
      uint32_t cn = (uint32_t)G->hn[t] + 1;
      uint32_t cc = G->hc[t] + S->cls[G->cid[G->ed[e].cls]].mem[0].cost;
      if (cn < bn || (cn == bn && cc < bc)) {
        bn = cn;
        bc = cc;
      }
    }
    G->hn[s] = (uint16_t)(bn >= INF_N ? INF_N : bn);
    G->hc[s] = bc;
  }
  free(order);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Best-first enumeration of the programs                                    */

typedef struct move {
  uint32_t edge;
  uint8_t mem;
  uint16_t fn;  /* 1 + hn(next) */
  uint32_t fc;  /* member cost + hc(next) */
} move;

typedef struct node {
  int32_t parent;
  uint32_t state;
  uint32_t rank;  /* index of the move from the parent's state */
  uint16_t gn;
  uint32_t gc;
  uint16_t fn;    /* gn + hn(state) */
  uint32_t fc;
} node;

typedef struct search {
  move *mv;
  size_t nmv, mvcap;
  uint32_t *sbeg, *scnt; /* per state: its sorted moves (sbeg UINT32_MAX: not built) */
  node *nd;
  size_t nnd, ndcap;
  uint32_t *heap;
  size_t nh, hcap;
} search;

static int cmp_move(const void *a, const void *b) {
  const move *x = a, *y = b;
  if (x->fn != y->fn) return x->fn < y->fn ? -1 : 1;
  if (x->fc != y->fc) return x->fc < y->fc ? -1 : 1;
  if (x->edge != y->edge) return x->edge < y->edge ? -1 : 1;
  return (x->mem > y->mem) - (x->mem < y->mem);
}

static int build_moves(const sv *S, const graph *G, search *R, uint32_t s) {
  if (R->sbeg[s] != UINT32_MAX) return 0;
  size_t start = R->nmv;
  for (uint32_t e = G->se[s].beg; e < G->se[s].beg + G->se[s].cnt; e++) {
    uint32_t t = G->ed[e].next;
    if (G->hn[t] == INF_N) continue;
    const klass *c = &S->cls[G->cid[G->ed[e].cls]];
    for (int m = 0; m < c->nmem; m++) {
      if (GROW(R->mv, R->mvcap, R->nmv + 1)) return -1;
      move *v = &R->mv[R->nmv++];
      v->edge = e;
      v->mem = (uint8_t)m;
      v->fn = (uint16_t)(G->hn[t] + 1);
      v->fc = G->hc[t] + c->mem[m].cost;
    }
  }
  qsort(R->mv + start, R->nmv - start, sizeof *R->mv, cmp_move);
  R->sbeg[s] = (uint32_t)start;
  R->scnt[s] = (uint32_t)(R->nmv - start);
  return 0;
}

static int node_less(const node *a, uint32_t ia, const node *b, uint32_t ib) {
  if (a->fn != b->fn) return a->fn < b->fn;
  if (a->fc != b->fc) return a->fc < b->fc;
  return ia < ib;
}

static int heap_push(search *R, uint32_t id) {
  if (GROW(R->heap, R->hcap, R->nh + 1)) return -1;
  size_t i = R->nh++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!node_less(&R->nd[id], id, &R->nd[R->heap[p]], R->heap[p])) break;
    R->heap[i] = R->heap[p];
    i = p;
  }
  R->heap[i] = id;
  return 0;
}

static uint32_t heap_pop(search *R) {
  uint32_t top = R->heap[0], last = R->heap[--R->nh];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    uint32_t mid = last;
    if (l < R->nh && node_less(&R->nd[R->heap[l]], R->heap[l], &R->nd[mid], mid)) {
      m = l;
      mid = R->heap[l];
    }
    if (r < R->nh && node_less(&R->nd[R->heap[r]], R->heap[r], &R->nd[mid], mid)) {
      m = r;
      mid = R->heap[r];
    }
    if (m == i) break;
    R->heap[i] = R->heap[m];
    i = m;
  }
  if (R->nh) R->heap[i] = last;
  return top;
}

/* Pushes the node reached from node `parent` through its state's move `rank`
 * (when it exists and fits in max_size). */
static int push_move(const graph *G, search *R, int32_t parent, uint32_t rank, int max_size) {
  const node *p = &R->nd[parent];
  uint32_t s = p->state;
  if (rank >= R->scnt[s]) return 0;
  const move *v = &R->mv[R->sbeg[s] + rank];
  if ((int)p->gn + (int)v->fn > max_size) return 0; /* moves are sorted by fn */
  if (GROW(R->nd, R->ndcap, R->nnd + 1)) return -1;
  p = &R->nd[parent];
  node *c = &R->nd[R->nnd];
  c->parent = parent;
  c->state = G->ed[v->edge].next;
  c->rank = rank;
  c->gn = (uint16_t)(p->gn + 1);
  c->gc = p->gc + (v->fc - G->hc[c->state]);
  c->fn = (uint16_t)(p->gn + v->fn);
  c->fc = p->gc + v->fc;
  return heap_push(R, (uint32_t)R->nnd++);
}

/* Checks member m of class id with the interpreter (once). */
static int verify_member(sv *S, size_t id, int m) {
  member *mb = &S->cls[id].mem[m];
  if (mb->verified) return mb->verified == 1 ? 1 : 0;
  const uint32_t *key = ckey(S, id);
  int ok = 1;
  sd_expr e;
  unpack_expr(mb->e, &e);
  for (size_t k = 0; k < S->n && ok; k++) {
    exm *x = &S->ex[k];
    if (sd_eval_expr(&e, x->in, (size_t)x->L, &S->tmp)) return -1;
    size_t len = (size_t)P_LEN(key[k]);
    ok = S->tmp.n == len &&
         (len == 0 || memcmp(S->tmp.c, x->out + P_OFF(key[k]), len * sizeof *S->tmp.c) == 0);
  }
  mb->verified = ok ? 1 : 2;
  return ok;
}

typedef struct reporter {
  sd_solve_fn fn;
  void *ctx;
  sd_prog prog;
  int32_t *ids;
  size_t nids, idcap;
  size_t reported, mismatches;
  int stop;
} reporter;

/* Reports prog (already filled) with its prior. 0, or -1 OOM. */
static int report(reporter *P, int gn, uint32_t gc) {
  P->nids = 0;
  if (sd_to_tokens(&P->prog, &P->ids, &P->nids, &P->idcap)) return -1;
  double prior = -((double)gn + (double)gc / 65536.0);
  P->reported++;
  if (P->fn(P->ctx, &P->prog, P->ids, P->nids, prior)) P->stop = 1;
  return 0;
}

/* Reports the programs of min_n..max_size expressions, best first;
 * *complete = 1 when all were reported. */
static int run_search(sv *S, graph *G, long start, long goal, int max_solutions, int max_size,
                      int min_n, reporter *P, int *complete) {
  search R;
  memset(&R, 0, sizeof R);
  size_t ns = G->st.n;
  int rc = 0;
  R.sbeg = malloc(ns * sizeof *R.sbeg);
  R.scnt = malloc(ns * sizeof *R.scnt);
  sd_expr *pe = realloc(P->prog.e, ((size_t)max_size + 1) * sizeof *pe);
  if (pe) {
    P->prog.e = pe;
    P->prog.cap = (size_t)max_size + 1;
  }
  if (!R.sbeg || !R.scnt || !pe) {
    rc = -1;
    goto done;
  }
  for (size_t s = 0; s < ns; s++) R.sbeg[s] = UINT32_MAX;
  if (goal < 0 || G->hn[start] == INF_N || G->hn[start] > max_size) {
    *complete = 1;
    goto done;
  }
  if (GROW(R.nd, R.ndcap, 1)) {
    rc = -1;
    goto done;
  }
  R.nd[0] = (node){-1, (uint32_t)start, 0, 0, 0, G->hn[start], G->hc[start]};
  R.nnd = 1;
  if (heap_push(&R, 0)) {
    rc = -1;
    goto done;
  }
  while (R.nh && !P->stop && (int)P->reported < max_solutions) {
    if (time_up(S)) break;
    uint32_t id = heap_pop(&R);
    node x = R.nd[id];
    /* next sibling */
    if (x.parent >= 0 && push_move(G, &R, x.parent, x.rank + 1, max_size)) {
      rc = -1;
      break;
    }
    if ((long)x.state == goal) {
      if (x.gn < min_n) continue; /* reported in an earlier round */
      /* the program: walk back to the start */
      size_t len = x.gn, i = len;
      int ok = 1;
      for (int32_t v = (int32_t)id; R.nd[v].parent >= 0; v = R.nd[v].parent) {
        const node *c = &R.nd[v];
        const move *mv = &R.mv[R.sbeg[R.nd[c->parent].state] + c->rank];
        size_t cls = G->cid[G->ed[mv->edge].cls];
        int vr = verify_member(S, cls, mv->mem);
        if (vr < 0) {
          rc = -1;
          break;
        }
        if (!vr) {
          ok = 0;
          P->mismatches++;
        }
        unpack_expr(S->cls[cls].mem[mv->mem].e, &P->prog.e[--i]);
      }
      if (rc) break;
      P->prog.n = len;
      if (ok && report(P, x.gn, x.gc)) {
        rc = -1;
        break;
      }
      continue;
    }
    if (build_moves(S, G, &R, x.state) || push_move(G, &R, (int32_t)id, 0, max_size)) {
      rc = -1;
      break;
    }
  }
  if (!rc && R.nh == 0 && !P->stop) *complete = 1;
done:
  free(R.mv);
  free(R.sbeg);
  free(R.scnt);
  free(R.nd);
  free(R.heap);
  return rc;
}

/* Every target empty: single expressions with "" everywhere. */
static int report_empty(sv *S, int max_solutions, reporter *P) {
  for (size_t k = 0; k < S->n; k++) S->key[k] = 0;
  long id = ks_get(&S->cks, S->key, 0, NULL);
  if (id < 0) return 0;
  if (!P->prog.e && !(P->prog.e = malloc(sizeof *P->prog.e))) return -1;
  P->prog.cap = 1;
  for (int m = 0; m < S->cls[id].nmem && !P->stop && (int)P->reported < max_solutions; m++) {
    int vr = verify_member(S, (size_t)id, m);
    if (vr < 0) return -1;
    if (!vr) {
      P->mismatches++;
      continue;
    }
    unpack_expr(S->cls[id].mem[m].e, &P->prog.e[0]);
    P->prog.n = 1;
    if (report(P, 1, S->cls[id].mem[m].cost)) return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Entry point                                                               */

static int bad(char *err, size_t errlen, int code, const char *msg) {
  if (err && errlen) snprintf(err, errlen, "%s", msg);
  return code;
}

int sd_solve(const sd_str *inputs, const sd_str *outputs, size_t n_ex, const sd_solve_opts *opts,
             sd_solve_fn fn, void *ctx, int *complete, sd_solve_stats *stats, char *err,
             size_t errlen) {
  int dummy_complete;
  if (!complete) complete = &dummy_complete;
  *complete = 0;
  if (err && errlen) err[0] = 0;
  sd_solve_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  if (!fn) return bad(err, errlen, -1, "no callback for the programs");
  if (!opts) return bad(err, errlen, -1, "no options");
  if (n_ex == 0) return bad(err, errlen, -1, "no examples (at least one is needed)");
  if (!inputs || !outputs) return bad(err, errlen, -1, "examples are NULL");
  if (n_ex > SD_SOLVE_MAX_EXAMPLES) {
    if (err && errlen)
      snprintf(err, errlen, "%zu examples, the solver takes at most %d", n_ex,
               SD_SOLVE_MAX_EXAMPLES);
    return SD_ELIMIT;
  }
  if (opts->max_solutions < 1) return bad(err, errlen, -1, "max_solutions must be at least 1");
  if (opts->max_size < 1 || opts->max_size > SD_MAX_EXPRS) {
    if (err && errlen)
      snprintf(err, errlen, "max_size %d is outside 1..%d", opts->max_size, SD_MAX_EXPRS);
    return -1;
  }
  if (!(opts->time_limit > 0)) return bad(err, errlen, -1, "time_limit must be positive");
  size_t cells = 0;
  for (size_t k = 0; k < n_ex; k++) {
    size_t L = inputs[k].n, M = outputs[k].n;
    if ((L && !inputs[k].c) || (M && !outputs[k].c))
      return bad(err, errlen, -1, "an example's string is NULL");
    if (L > SD_SOLVE_MAX_LEN || M > SD_SOLVE_MAX_LEN) {
      if (err && errlen)
        snprintf(err, errlen,
                 "example %zu: %s has %zu characters, the solver takes at most %d", k,
                 L > SD_SOLVE_MAX_LEN ? "the input" : "the output", L > M ? L : M,
                 SD_SOLVE_MAX_LEN);
      return SD_ELIMIT;
    }
    cells += (L + 1) * (M + 1) + 3 * (L + 1) * (L + 1) + (M + 1) * (M + 1);
  }
  if (cells > MAX_CELLS) {
    if (err && errlen)
      snprintf(err, errlen,
               "the examples are too large together for the solver (%zu table cells, at most "
               "%zu): use fewer or shorter examples",
               cells, (size_t)MAX_CELLS);
    return SD_ELIMIT;
  }

  double t0 = now_s();
  sv S;
  memset(&S, 0, sizeof S);
  graph G;
  memset(&G, 0, sizeof G);
  reporter P;
  memset(&P, 0, sizeof P);
  P.fn = fn;
  P.ctx = ctx;
  S.n = n_ex;
  S.c = opts->costs ? *opts->costs : sd_solve_default_costs;
  S.self_check = opts->self_check;
  S.deadline = t0 + opts->time_limit;
  S.cks.klen = S.iks.klen = n_ex * sizeof(uint32_t);
  int rc = 0;
  int *lo = malloc(n_ex * sizeof *lo), *len = malloc(n_ex * sizeof *len);
  uint32_t **strs = calloc(n_ex, sizeof *strs);
  size_t *lens = malloc(n_ex * sizeof *lens);
  S.ex = calloc(n_ex, sizeof *S.ex);
  S.key = malloc(n_ex * sizeof *S.key);
  S.key2 = malloc(n_ex * sizeof *S.key2);
  S.last_key = malloc(n_ex * sizeof *S.last_key);
  S.last_cid = -1;
  if (!lo || !len || !strs || !lens || !S.ex || !S.key || !S.key2 || !S.last_key) {
    rc = SD_ENOMEM;
    goto out;
  }
  S.all_empty = 1;
  for (size_t k = 0; k < n_ex; k++) {
    if (outputs[k].n) S.all_empty = 0;
    if (ex_init(&S.ex[k], &inputs[k], &outputs[k]) ||
        !(strs[k] = malloc((inputs[k].n ? inputs[k].n : 1) * sizeof *strs[k]))) {
      rc = SD_ENOMEM;
      goto out;
    }
  }
  if (list_ops(&S) || enum_const(&S) || enum_substr(&S, lo, len) || enum_getspan(&S, lo, len) ||
      enum_nesting(&S, strs, lens) || (!S.all_empty && enum_compose(&S))) {
    rc = SD_ENOMEM;
    goto out;
  }
  stats->classes = S.cks.n;
  stats->inner_tuples = S.iks.n + S.nsv;
  double t1 = now_s();
  stats->t_enum = t1 - t0;
  if (S.timed_out) goto out;

  if (S.all_empty) {
    if (report_empty(&S, opts->max_solutions, &P)) rc = SD_ENOMEM;
    goto out;
  }

  if (build_index(&S, &G)) {
    rc = SD_ENOMEM;
    goto out;
  }
  /* Rounds of growing bounds on the number of expressions, from the lower
   * bound at the start: round `bound` explores the states of the programs of
   * at most `bound` expressions and reports those of exactly `bound` (every
   * shorter one was reported, since the previous round was exhausted). */
  uint16_t *zero = calloc(n_ex, sizeof *zero), *goalP = malloc(n_ex * sizeof *goalP);
  if (!zero || !goalP) {
    free(zero);
    free(goalP);
    rc = SD_ENOMEM;
    goto out;
  }
  for (size_t k = 0; k < n_ex; k++) goalP[k] = (uint16_t)S.ex[k].M;
  unsigned lb0 = lower_bound(&G, zero, n_ex);
  free(zero);
  double t2 = now_s();
  stats->t_graph = t2 - t1;
  if (lb0 == INF_N || lb0 > (unsigned)opts->max_size) {
    *complete = 1; /* no program can fit */
  } else {
    unsigned bound = lb0, done_below = 1;
    for (;;) {
      double ta = now_s();
      int er = explore(&S, &G, bound);
      stats->states += G.st.n;
      stats->edges += G.ne;
      stats->t_graph += now_s() - ta;
      if (er < 0) rc = SD_ENOMEM;
      if (er > 0 && !S.timed_out) stats->truncated = 1;
      if (er) break;
      long goal = ks_get(&G.st, goalP, 0, NULL);
      if (distances(&S, &G, goal)) {
        rc = SD_ENOMEM;
        break;
      }
      double tb = now_s();
      int exhausted = 0;
      int sr = run_search(&S, &G, 0, goal, opts->max_solutions, (int)bound, (int)done_below, &P,
                          &exhausted);
      stats->t_search += now_s() - tb;
      if (sr) {
        rc = SD_ENOMEM;
        break;
      }
      if (!exhausted) break;
      if (bound >= (unsigned)opts->max_size) {
        *complete = 1;
        break;
      }
      done_below = bound + 1;
      bound++;
    }
  }
  free(goalP);

out:
  if (rc == SD_ENOMEM) {
    *complete = 0;
    bad(err, errlen, SD_ENOMEM, "out of memory");
  }
  stats->timed_out = S.timed_out;
  stats->reported = P.reported;
  stats->mismatches = P.mismatches + S.fast_mismatches;
  if (S.timed_out) *complete = 0;
  if (S.truncated) { /* a class was left out: not exhaustive */
    stats->truncated = 1;
    *complete = 0;
  }
  graph_free(&G, n_ex);
  for (size_t k = 0; S.ex && k < n_ex; k++) {
    ex_free(&S.ex[k]);
    if (strs) free(strs[k]);
  }
  free(S.ex);
  free(strs);
  free(lens);
  free(lo);
  free(len);
  free(S.key);
  free(S.key2);
  free(S.last_key);
  ks_free(&S.cks);
  ks_free(&S.iks);
  free(S.cls);
  free(S.cworst);
  free(S.iv);
  free(S.sv);
  free(S.pool);
  free(S.soff);
  free(S.sslot);
  free(S.ops);
  free(S.outer_ok);
  sd_str_free(&S.tmp);
  free(P.prog.e);
  free(P.ids);
  return rc;
}

#pragma GCC visibility pop

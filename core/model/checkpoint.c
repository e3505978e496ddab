/* Checkpoint file format (see include/lpsynth/checkpoint.h): encoding,
 * decoding with clear refusals, CRC-32C, the vocabulary fingerprint. No
 * model code here (that is tr_ckpt.c), so tools and tests can use the format
 * on its own. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lpsynth/checkpoint.h"

/* ---------------------------------------------------------------------- */
/* CRC-32C, slicing by 8.                                                  */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_tab[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xFF];
}

uint32_t lp_crc32c(uint32_t crc, const void *data, size_t n) {
  pthread_once(&crc_once, crc_init);
  const unsigned char *p = data;
  uint32_t c = ~crc;
  while (n >= 8) {
    uint32_t lo = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                  (uint32_t)p[3] << 24;
    lo ^= c;
    c = crc_tab[7][lo & 0xFF] ^ crc_tab[6][(lo >> 8) & 0xFF] ^ crc_tab[5][(lo >> 16) & 0xFF] ^
        crc_tab[4][lo >> 24] ^ crc_tab[3][p[4]] ^ crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^
        crc_tab[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xFF];
  return ~c;
}

/* ---------------------------------------------------------------------- */
/* Vocabulary fingerprint (FNV-1a 64).                                     */

typedef struct fnv {
  uint64_t h;
} fnv;

static void fnv_bytes(fnv *f, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    f->h ^= p[i];
    f->h *= 0x100000001b3ull;
  }
}

static void fnv_u32(fnv *f, uint32_t v) {
  unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 24)};
  fnv_bytes(f, b, 4);
}

static void fnv_vocab(fnv *f, const lp_vocab_info *v) {
  fnv_u32(f, (uint32_t)v->size);
  fnv_u32(f, (uint32_t)v->pad);
  fnv_u32(f, (uint32_t)v->bos);
  fnv_u32(f, (uint32_t)v->eos);
  fnv_u32(f, (uint32_t)v->unk);
}

int lp_vocab_fingerprint(lp_domain *d, uint64_t *fp, lp_err *err) {
  if (!d || !fp) return lp_err_set(err, LP_EINVAL, "vocabulary fingerprint: NULL argument");
  const lp_domain_desc *desc = lp_domain_desc_of(d);
  lp_vocab_info pv, sv;
  memset(&pv, 0, sizeof pv);
  memset(&sv, 0, sizeof sv);
  if (lp_domain_program_vocab(d, &pv) || lp_domain_spec_vocab(d, &sv))
    return lp_err_set(err, LP_EINVAL, "domain \"%s\": cannot read its vocabularies",
                      lp_domain_name(d));
  fnv f = {0xcbf29ce484222325ull};
  static const char tag[] = "lpsynth-vocab-v1";
  fnv_bytes(&f, tag, sizeof tag - 1);
  uint32_t parts = desc ? desc->spec_parts : 0;
  fnv_u32(&f, parts);
  fnv_vocab(&f, &pv);
  for (int32_t i = 0; i < pv.size; i++) {
    const char *t = lp_domain_program_token(d, i);
    if (!t) {
      fnv_u32(&f, 0xFFFFFFFFu);
      continue;
    }
    size_t n = strlen(t);
    fnv_u32(&f, (uint32_t)n);
    fnv_bytes(&f, t, n);
  }
  fnv_vocab(&f, &sv);
  lp_ids ids = {0};
  for (uint32_t p = 0; p < parts; p++) {
    for (int b = 0; b < 256; b++) {
      char ch = (char)b;
      ids.len = 0;
      lp_err e = {0};
      int rc = lp_domain_spec_encode(d, p, &ch, 1, &ids, NULL, &e);
      if (rc) {
        fnv_u32(&f, 0xFFFFFFFEu);
        continue;
      }
      fnv_u32(&f, (uint32_t)ids.len);
      for (size_t i = 0; i < ids.len; i++) fnv_u32(&f, (uint32_t)ids.data[i]);
    }
  }
  lp_ids_free(&ids);
  *fp = f.h;
  return LP_OK;
}

int lp_ckpt_domain_of(lp_domain *d, lp_ckpt_domain *out, lp_err *err) {
  if (!d || !out) return lp_err_set(err, LP_EINVAL, "checkpoint domain: NULL argument");
  memset(out, 0, sizeof *out);
  const char *name = lp_domain_name(d);
  if (!name || strlen(name) >= sizeof out->name)
    return lp_err_set(err, LP_EINVAL, "domain name too long for a checkpoint");
  memcpy(out->name, name, strlen(name) + 1);
  const lp_domain_desc *desc = lp_domain_desc_of(d);
  out->n_parts = desc ? desc->spec_parts : 0;
  if (lp_domain_spec_vocab(d, &out->spec) || lp_domain_program_vocab(d, &out->prog))
    return lp_err_set(err, LP_EINVAL, "domain \"%s\": cannot read its vocabularies", name);
  return lp_vocab_fingerprint(d, &out->vocab_fp, err);
}

/* ---------------------------------------------------------------------- */
/* Little-endian writer over a preallocated buffer.                        */

typedef struct wbuf {
  unsigned char *p;
  size_t len, cap;
} wbuf;

static void w_bytes(wbuf *w, const void *s, size_t n) {
  if (n) memcpy(w->p + w->len, s, n);
  w->len += n;
}
static void w_u32(wbuf *w, uint32_t v) {
  unsigned char *q = w->p + w->len;
  q[0] = (unsigned char)v;
  q[1] = (unsigned char)(v >> 8);
  q[2] = (unsigned char)(v >> 16);
  q[3] = (unsigned char)(v >> 24);
  w->len += 4;
}
static void w_u64(wbuf *w, uint64_t v) {
  w_u32(w, (uint32_t)v);
  w_u32(w, (uint32_t)(v >> 32));
}
static void w_f32s(wbuf *w, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &x[i], 4);
    w_u32(w, u);
  }
}
static void w_f64(wbuf *w, double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  w_u64(w, u);
}
static void w_str(wbuf *w, const char *s) {
  size_t n = s ? strlen(s) : 0;
  w_u32(w, (uint32_t)n);
  w_bytes(w, s, n);
}
/* Section header; returns where its length goes (patched by sec_end). */
static size_t sec_begin(wbuf *w, const char tag[4]) {
  w_bytes(w, tag, 4);
  w_u32(w, 0);
  size_t at = w->len;
  w_u64(w, 0);
  return at;
}
static void sec_end(wbuf *w, size_t at) {
  uint64_t n = w->len - at - 8;
  size_t save = w->len;
  w->len = at;
  w_u64(w, n);
  w->len = save;
}

#define SEC_HDR 16u

/* ---------------------------------------------------------------------- */
/* 16-bit parameter storage (PR16): fp32 -> fp16 / bf16, rounded to nearest,
 * ties to even; and back, exactly. Callers pass finite values in range
 * (half_check). */

#define FP16_MAX 65504.0f
/* |x| whose bit pattern is at least this rounds to bf16 infinity. */
#define BF16_OVERFLOW_BITS 0x7F7F8000u

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static uint16_t f32_to_fp16(float f) {
  const uint32_t x = f32_bits(f), sign = (x >> 16) & 0x8000u, ax = x & 0x7FFFFFFFu;
  if (ax >= 0x38800000u) { /* |f| >= 2^-14: a normal fp16; rebias, drop 13 bits */
    const uint32_t m = ax - ((127u - 15u) << 23);
    return (uint16_t)(sign | ((m + 0xFFFu + ((m >> 13) & 1u)) >> 13));
  }
  if (ax < 0x33000000u) return (uint16_t)sign; /* |f| < 2^-25: rounds to zero */
  /* a subnormal fp16: the significand in units of 2^-24 */
  const uint32_t e = ax >> 23, mant = (ax & 0x7FFFFFu) | 0x800000u, shift = 126u - e;
  uint32_t q = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u))) q++;
  return (uint16_t)(sign | q); /* q = 0x400 is the smallest normal, rightly */
}

static uint16_t f32_to_bf16(float f) {
  const uint32_t x = f32_bits(f);
  return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

/* Whether a 16-bit pattern is NaN or infinite. */
static int half_nonfinite(uint16_t h, int prec) {
  return prec == LP_CKPT_FP16 ? (h & 0x7C00u) == 0x7C00u : (h & 0x7F80u) == 0x7F80u;
}

static float half_to_f32(uint16_t h, int prec) {
  uint32_t x;
  if (prec == LP_CKPT_BF16) {
    x = (uint32_t)h << 16;
  } else {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0 && m == 0) {
      x = sign;
    } else if (e == 0) { /* subnormal: normalise */
      e = 113;
      while (!(m & 0x400u)) {
        m <<= 1;
        e--;
      }
      x = sign | e << 23 | (m & 0x3FFu) << 13;
    } else {
      x = sign | (e + 112u) << 23 | m << 13;
    }
  }
  float f;
  memcpy(&f, &x, 4);
  return f;
}

static void w_halves(wbuf *w, const float *x, size_t n, int prec) {
  for (size_t i = 0; i < n; i++) {
    const uint16_t h = prec == LP_CKPT_FP16 ? f32_to_fp16(x[i]) : f32_to_bf16(x[i]);
    unsigned char *q = w->p + w->len;
    q[0] = (unsigned char)h;
    q[1] = (unsigned char)(h >> 8);
    w->len += 2;
  }
}

const char *lp_ckpt_prec_name(int prec) {
  switch (prec) {
    case LP_CKPT_FP32: return "fp32";
    case LP_CKPT_FP16: return "fp16";
    case LP_CKPT_BF16: return "bf16";
  }
  return "?";
}

/* The tensor of parameter i (its name, and i's index in it). */
static const char *tensor_of(const lp_layout *L, size_t i, size_t *at) {
  for (size_t t = 0; t < lp_layout_count(L); t++) {
    const lp_param_info *pi = lp_layout_param(L, t);
    if (i >= pi->offset && i - pi->offset < pi->numel) {
      *at = i - pi->offset;
      return pi->name;
    }
  }
  *at = i;
  return "?";
}

/* Refuses parameters c->param_prec cannot hold: NaN or infinity (the first
 * is named), magnitudes over fp16's 65504, or bf16 values that round to
 * infinity (the largest is named), never saturating. */
static int half_check(const lp_ckpt *c, lp_err *err) {
  const int fp16 = c->param_prec == LP_CKPT_FP16;
  const char *pn = lp_ckpt_prec_name(c->param_prec);
  size_t big = 0, at = 0;
  for (size_t i = 0; i < c->n_params; i++) {
    const uint32_t u = f32_bits(c->params[i]) & 0x7FFFFFFFu;
    if (u >= 0x7F800000u) {
      const char *t = tensor_of(c->layout, i, &at);
      return lp_err_set(err, LP_EINVAL,
                        "checkpoint encode: parameter %zu (tensor \"%s\", element %zu) is %s; "
                        "%s storage holds finite values only",
                        i, t, at, u > 0x7F800000u ? "NaN" : "infinite", pn);
    }
    if (u > (f32_bits(c->params[big]) & 0x7FFFFFFFu)) big = i;
  }
  const float x = c->n_params ? c->params[big] : 0.0f;
  const uint32_t ux = f32_bits(x) & 0x7FFFFFFFu;
  if (fp16 ? !(fabsf(x) > FP16_MAX) : ux < BF16_OVERFLOW_BITS) return LP_OK;
  const char *t = tensor_of(c->layout, big, &at);
  return lp_err_set(err, LP_EINVAL,
                    "checkpoint encode: parameters beyond %s's range (%s): the largest is %.9g "
                    "(parameter %zu, tensor \"%s\", element %zu); store them as %s",
                    pn,
                    fp16 ? "|x| <= 65504" : "|x| < 3.3961514e+38; larger values round to infinity",
                    (double)x, big, t, at, fp16 ? "bf16 or fp32" : "fp32");
}

int lp_ckpt_encode(const lp_ckpt *c, unsigned char **data, size_t *len, lp_err *err) {
  if (!c || !data || !len || !c->layout)
    return lp_err_set(err, LP_EINVAL, "checkpoint encode: NULL argument");
  size_t np = lp_layout_numel(c->layout), nt = lp_layout_count(c->layout);
  if (c->n_params != np || (np && !c->params))
    return lp_err_set(err, LP_EINVAL,
                      "checkpoint encode: %zu parameters given, the layout has %zu", c->n_params,
                      np);
  if (c->n_adam != 0 && (c->n_adam != np || !c->adam_m || !c->adam_v))
    return lp_err_set(err, LP_EINVAL, "checkpoint encode: optimiser state of %zu, want %zu",
                      c->n_adam, np);
  if (c->n_state && !c->state)
    return lp_err_set(err, LP_EINVAL, "checkpoint encode: state array missing");
  const int half = c->param_prec != LP_CKPT_FP32;
  if (half && c->param_prec != LP_CKPT_FP16 && c->param_prec != LP_CKPT_BF16)
    return lp_err_set(err, LP_EINVAL, "checkpoint encode: unknown parameter storage %d",
                      c->param_prec);
  if (half && c->n_adam)
    return lp_err_set(err, LP_EINVAL,
                      "checkpoint encode: %s parameters are for a model without its optimiser "
                      "state (a stripped checkpoint); drop the Adam moments first",
                      lp_ckpt_prec_name(c->param_prec));
  if (half) {
    int rc = half_check(c, err);
    if (rc) return rc;
  }
  size_t conf_n = c->config_text ? strlen(c->config_text) : 0;
  size_t meta_n = c->metadata ? strlen(c->metadata) : 0;
  size_t name_n = strlen(c->domain.name);
  size_t layt = 8;
  for (size_t i = 0; i < nt; i++) {
    const lp_param_info *pi = lp_layout_param(c->layout, i);
    layt += 4 + strlen(pi->name) + 4 + 4 * (size_t)pi->ndim;
  }
  size_t total = 24;
  total += SEC_HDR + conf_n;
  total += SEC_HDR + 4 + name_n + 8 + 4 + 40;
  total += SEC_HDR + layt;
  total += SEC_HDR + 72;
  total += half ? SEC_HDR + 16 + 2 * np : SEC_HDR + 8 + 4 * np;
  total += SEC_HDR + 16 + 8 * c->n_adam;
  total += SEC_HDR + 8 + 4 * c->n_state;
  total += SEC_HDR + meta_n;
  if (c->pos.win_n < 0)
    return lp_err_set(err, LP_EINVAL, "checkpoint encode: negative statistics window");
  const uint32_t hist_k =
      c->pos.hist_n < LP_TRAIN_HIST_N ? (uint32_t)c->pos.hist_n : LP_TRAIN_HIST_N;
  total += SEC_HDR + 16 + 16 * (size_t)hist_k + 8 + 8 * LP_TRAIN_WIN_SUMS;
  total += 4;
  wbuf w = {malloc(total), 0, total};
  if (!w.p) return lp_err_set(err, LP_ENOMEM, "checkpoint encode: out of memory (%zu bytes)", total);
  w_bytes(&w, LP_CKPT_MAGIC, 8);
  w_u32(&w, half ? LP_CKPT_VERSION_HALF : LP_CKPT_VERSION);
  w_u32(&w, 0);
  w_u64(&w, total);
  size_t s;
  s = sec_begin(&w, "CONF");
  w_bytes(&w, c->config_text, conf_n);
  sec_end(&w, s);
  s = sec_begin(&w, "DOMN");
  w_str(&w, c->domain.name);
  w_u64(&w, c->domain.vocab_fp);
  w_u32(&w, c->domain.n_parts);
  const lp_vocab_info *vs[2] = {&c->domain.spec, &c->domain.prog};
  for (int k = 0; k < 2; k++) {
    w_u32(&w, (uint32_t)vs[k]->size);
    w_u32(&w, (uint32_t)vs[k]->pad);
    w_u32(&w, (uint32_t)vs[k]->bos);
    w_u32(&w, (uint32_t)vs[k]->eos);
    w_u32(&w, (uint32_t)vs[k]->unk);
  }
  sec_end(&w, s);
  s = sec_begin(&w, "LAYT");
  w_u64(&w, nt);
  for (size_t i = 0; i < nt; i++) {
    const lp_param_info *pi = lp_layout_param(c->layout, i);
    w_str(&w, pi->name);
    w_u32(&w, (uint32_t)pi->ndim);
    for (int k = 0; k < pi->ndim; k++) w_u32(&w, (uint32_t)pi->shape[k]);
  }
  sec_end(&w, s);
  s = sec_begin(&w, "TPOS");
  w_u64(&w, (uint64_t)c->pos.step);
  w_u64(&w, c->pos.rng_state);
  w_u64(&w, c->pos.init_seed);
  w_u32(&w, c->pos.data_kind);
  w_u32(&w, 0);
  w_u64(&w, c->pos.data_seed);
  w_u64(&w, c->pos.next_task);
  w_f64(&w, c->pos.seconds);
  w_u32(&w, (uint32_t)c->pos.gen_min_size);
  w_u32(&w, (uint32_t)c->pos.gen_max_size);
  w_u32(&w, (uint32_t)c->pos.gen_n_examples);
  w_u32(&w, 0);
  sec_end(&w, s);
  if (half) {
    s = sec_begin(&w, "PR16");
    w_u64(&w, np);
    w_u32(&w, (uint32_t)c->param_prec);
    w_u32(&w, 0);
    w_halves(&w, c->params, np, c->param_prec);
  } else {
    s = sec_begin(&w, "PARM");
    w_u64(&w, np);
    w_f32s(&w, c->params, np);
  }
  sec_end(&w, s);
  s = sec_begin(&w, "ADAM");
  w_u64(&w, (uint64_t)c->adam_t);
  w_u64(&w, c->n_adam);
  if (c->n_adam) {
    w_f32s(&w, c->adam_m, c->n_adam);
    w_f32s(&w, c->adam_v, c->n_adam);
  }
  sec_end(&w, s);
  s = sec_begin(&w, "MSTA");
  w_u64(&w, c->n_state);
  w_f32s(&w, c->state, c->n_state);
  sec_end(&w, s);
  s = sec_begin(&w, "META");
  w_bytes(&w, c->metadata, meta_n);
  sec_end(&w, s);
  s = sec_begin(&w, "STAT");
  w_u64(&w, c->pos.hist_n);
  w_u32(&w, hist_k);
  w_u32(&w, 0);
  for (uint32_t i = 0; i < hist_k; i++) w_f64(&w, c->pos.hist_loss[i]);
  for (uint32_t i = 0; i < hist_k; i++) w_f64(&w, c->pos.hist_acc[i]);
  w_u64(&w, (uint64_t)c->pos.win_n);
  for (int i = 0; i < LP_TRAIN_WIN_SUMS; i++) w_f64(&w, c->pos.win[i]);
  sec_end(&w, s);
  w_u32(&w, lp_crc32c(0, w.p, w.len));
  if (w.len != total) {
    free(w.p);
    return lp_err_set(err, LP_EINVAL, "checkpoint encode: internal size error (%zu != %zu)",
                      w.len, total);
  }
  *data = w.p;
  *len = total;
  return LP_OK;
}

int lp_ckpt_write(const char *path, const lp_ckpt *c, lp_err *err) {
  unsigned char *data = NULL;
  size_t len = 0;
  int rc = lp_ckpt_encode(c, &data, &len, err);
  if (rc) return lp_err_prefix(err, "%s", path);
  rc = lp_write_file_atomic(path, data, len, err);
  free(data);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Reader.                                                                 */

typedef struct rbuf {
  const unsigned char *p;
  size_t len, pos;
  int bad;
} rbuf;

static int r_need(rbuf *r, size_t n) {
  if (r->bad || r->len - r->pos < n) {
    r->bad = 1;
    return 0;
  }
  return 1;
}
static uint32_t r_u32(rbuf *r) {
  if (!r_need(r, 4)) return 0;
  const unsigned char *q = r->p + r->pos;
  r->pos += 4;
  return (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
}
static uint16_t r_u16(rbuf *r) {
  if (!r_need(r, 2)) return 0;
  const unsigned char *q = r->p + r->pos;
  r->pos += 2;
  return (uint16_t)(q[0] | q[1] << 8);
}
static uint64_t r_u64(rbuf *r) {
  uint64_t lo = r_u32(r);
  uint64_t hi = r_u32(r);
  return lo | hi << 32;
}
static double r_f64(rbuf *r) {
  uint64_t u = r_u64(r);
  double d;
  memcpy(&d, &u, 8);
  return d;
}
/* n floats into dst (NULL: skip). */
static void r_f32s(rbuf *r, float *dst, size_t n) {
  if (n > (r->len - r->pos) / 4) {
    r->bad = 1;
    return;
  }
  if (!dst) {
    r->pos += 4 * n;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    uint32_t u = r_u32(r);
    memcpy(&dst[i], &u, 4);
  }
}
/* A length-prefixed string copied into a new NUL-terminated buffer. */
static char *r_strdup(rbuf *r, size_t n) {
  if (!r_need(r, n)) return NULL;
  char *s = malloc(n + 1);
  if (!s) return NULL;
  memcpy(s, r->p + r->pos, n);
  s[n] = 0;
  r->pos += n;
  return s;
}

void lp_ckpt_free(lp_ckpt *c) {
  if (!c) return;
  free(c->config_text);
  lp_layout_free(c->layout);
  free(c->params);
  free(c->adam_m);
  free(c->adam_v);
  free(c->state);
  free(c->metadata);
  memset(c, 0, sizeof *c);
}

/* A domain name as the plugin loader accepts it: [a-z0-9_]{1,63}, and no
 * byte after a NUL (n is the stored length). */
static int domain_name_ok(const char *s, uint32_t n) {
  if (n == 0 || n >= LP_CKPT_DOMAIN_NAME_MAX) return 0;
  for (uint32_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
  }
  return 1;
}

enum { S_CONF, S_DOMN, S_LAYT, S_TPOS, S_PARM, S_ADAM, S_MSTA, S_META, S_STAT, S_PR16, S_N };
static const char sec_tags[S_N][5] = {"CONF", "DOMN", "LAYT", "TPOS", "PARM",
                                      "ADAM", "MSTA", "META", "STAT", "PR16"};

#define CORRUPT(...)                                                                   \
  do {                                                                                 \
    rc = lp_err_set(err, LP_EINVAL, "%s: malformed checkpoint: " __VA_ARGS__);         \
    goto fail;                                                                         \
  } while (0)

static int read_section(int which, rbuf *r, const char *origin, unsigned flags, lp_ckpt *out,
                        lp_err *err) {
  int rc = LP_OK;
  switch (which) {
    case S_CONF:
      out->config_text = r_strdup(r, r->len);
      if (!out->config_text) goto nomem;
      if (memchr(out->config_text, 0, r->len)) CORRUPT("NUL byte in the config text", origin);
      break;
    case S_META:
      out->metadata = r_strdup(r, r->len);
      if (!out->metadata) goto nomem;
      break;
    case S_STAT: {
      uint64_t n = r_u64(r);
      uint32_t k = r_u32(r);
      (void)r_u32(r);
      if (r->bad || k != (n < LP_TRAIN_HIST_N ? n : LP_TRAIN_HIST_N))
        CORRUPT("%s", origin, "training statistics: bad step count");
      out->pos.hist_n = n;
      for (uint32_t i = 0; i < k; i++) out->pos.hist_loss[i] = r_f64(r);
      for (uint32_t i = 0; i < k; i++) out->pos.hist_acc[i] = r_f64(r);
      uint64_t wn = r_u64(r);
      if (r->bad || wn > (uint64_t)INT64_MAX)
        CORRUPT("%s", origin, "training statistics: bad window");
      out->pos.win_n = (int64_t)wn;
      /* the ninth sum (latent accuracy) came later: older files end after 8 */
      for (int i = 0; i < LP_TRAIN_WIN_SUMS; i++)
        out->pos.win[i] = i < 8 || r->len - r->pos >= 8 ? r_f64(r) : 0.0;
      break;
    }
    case S_DOMN: {
      uint32_t n = r_u32(r);
      if (r->bad || n >= sizeof out->domain.name || !r_need(r, n))
        CORRUPT("%s", origin, "bad domain name");
      memcpy(out->domain.name, r->p + r->pos, n);
      out->domain.name[n] = 0;
      r->pos += n;
      out->domain.vocab_fp = r_u64(r);
      out->domain.n_parts = r_u32(r);
      lp_vocab_info *vs[2] = {&out->domain.spec, &out->domain.prog};
      for (int k = 0; k < 2; k++) {
        vs[k]->size = (int32_t)r_u32(r);
        vs[k]->pad = (int32_t)r_u32(r);
        vs[k]->bos = (int32_t)r_u32(r);
        vs[k]->eos = (int32_t)r_u32(r);
        vs[k]->unk = (int32_t)r_u32(r);
      }
      if (r->bad) break;
      if (!domain_name_ok(out->domain.name, n))
        CORRUPT("domain name \"%.*s\" is not [a-z0-9_]+", origin, (int)n, out->domain.name);
      if (out->domain.n_parts < 1 || out->domain.n_parts > 2)
        CORRUPT("%u spec parts (1 or 2)", origin, out->domain.n_parts);
      for (int k = 0; k < 2; k++) {
        const lp_vocab_info *v = vs[k];
        if (v->size < 1 || v->size > LP_CKPT_MAX_VOCAB || v->pad < -1 || v->pad >= v->size ||
            v->bos < -1 || v->bos >= v->size || v->eos < -1 || v->eos >= v->size ||
            v->unk < -1 || v->unk >= v->size)
          CORRUPT("bad %s vocabulary (size %d, special ids %d %d %d %d)", origin,
                  k ? "program" : "spec", v->size, v->pad, v->bos, v->eos, v->unk);
      }
      break;
    }
    case S_LAYT: {
      uint64_t nt = r_u64(r);
      if (r->bad || nt > r->len / 8) CORRUPT("%s", origin, "bad tensor count");
      out->layout = lp_layout_new();
      if (!out->layout) goto nomem;
      for (uint64_t i = 0; i < nt; i++) {
        uint32_t n = r_u32(r);
        char name[LP_PARAM_NAME_MAX];
        if (r->bad || n == 0 || n >= sizeof name || !r_need(r, n))
          CORRUPT("bad name of tensor %llu", origin, (unsigned long long)i);
        memcpy(name, r->p + r->pos, n);
        name[n] = 0;
        r->pos += n;
        uint32_t nd = r_u32(r);
        int shape[LP_MAX_DIMS];
        if (r->bad || nd < 1 || nd > LP_MAX_DIMS)
          CORRUPT("tensor \"%s\" has %u dimensions", origin, name, nd);
        for (uint32_t k = 0; k < nd; k++) {
          uint32_t v = r_u32(r);
          if (v < 1 || v > 0x7FFFFFFFu) r->bad = 1;
          shape[k] = (int)v;
        }
        if (r->bad) CORRUPT("bad shape of tensor \"%s\"", origin, name);
        int e = lp_layout_add(out->layout, name, (int)nd, shape, LP_INIT_ZEROS, 0.0f, NULL);
        if (e == LP_ENOMEM) goto nomem;
        if (e) CORRUPT("tensor \"%s\" cannot be added to a layout (duplicate?)", origin, name);
      }
      break;
    }
    case S_TPOS:
      out->pos.step = (int64_t)r_u64(r);
      out->pos.rng_state = r_u64(r);
      out->pos.init_seed = r_u64(r);
      out->pos.data_kind = r_u32(r);
      (void)r_u32(r);
      out->pos.data_seed = r_u64(r);
      out->pos.next_task = r_u64(r);
      out->pos.seconds = r_f64(r);
      out->pos.gen_min_size = (int32_t)r_u32(r);
      out->pos.gen_max_size = (int32_t)r_u32(r);
      out->pos.gen_n_examples = (int32_t)r_u32(r);
      (void)r_u32(r);
      break;
    case S_PARM: {
      uint64_t n = r_u64(r);
      if (r->bad || n != (r->len - r->pos) / 4 || (r->len - r->pos) % 4)
        CORRUPT("%s", origin, "parameter count does not match the section size");
      out->n_params = (size_t)n;
      if (!(flags & LP_CKPT_INFO_ONLY)) {
        out->params = malloc(n ? n * 4 : 1);
        if (!out->params) goto nomem;
      }
      r_f32s(r, out->params, (size_t)n);
      break;
    }
    case S_PR16: {
      uint64_t n = r_u64(r);
      uint32_t st = r_u32(r);
      (void)r_u32(r);
      if (r->bad || n != (r->len - r->pos) / 2 || (r->len - r->pos) % 2)
        CORRUPT("%s", origin, "16-bit parameter count does not match the section size");
      if (st != LP_CKPT_FP16 && st != LP_CKPT_BF16)
        CORRUPT("unknown 16-bit parameter storage %u (1 fp16, 2 bf16)", origin, st);
      out->param_prec = (int)st;
      out->n_params = (size_t)n;
      if (!(flags & LP_CKPT_INFO_ONLY)) {
        out->params = malloc(n ? n * 4 : 1);
        if (!out->params) goto nomem;
      }
      for (size_t i = 0; i < (size_t)n; i++) {
        uint16_t h = r_u16(r);
        if (half_nonfinite(h, (int)st))
          CORRUPT("16-bit parameter %zu is NaN or infinite (%04x)", origin, i, h);
        if (out->params) out->params[i] = half_to_f32(h, (int)st);
      }
      break;
    }
    case S_ADAM: {
      out->adam_t = (int64_t)r_u64(r);
      uint64_t n = r_u64(r);
      if (r->bad || n > (r->len - r->pos) / 8 || n * 8 != r->len - r->pos)
        CORRUPT("%s", origin, "optimiser state size does not match the section size");
      out->n_adam = (size_t)n;
      if (n && !(flags & LP_CKPT_INFO_ONLY)) {
        out->adam_m = malloc(n * 4);
        out->adam_v = malloc(n * 4);
        if (!out->adam_m || !out->adam_v) goto nomem;
      }
      r_f32s(r, out->adam_m, (size_t)n);
      r_f32s(r, out->adam_v, (size_t)n);
      break;
    }
    case S_MSTA: {
      uint64_t n = r_u64(r);
      if (r->bad || n != (r->len - r->pos) / 4 || (r->len - r->pos) % 4)
        CORRUPT("%s", origin, "state count does not match the section size");
      out->n_state = (size_t)n;
      if (n && !(flags & LP_CKPT_INFO_ONLY)) {
        out->state = malloc(n * 4);
        if (!out->state) goto nomem;
      }
      r_f32s(r, out->state, (size_t)n);
      break;
    }
  }
  if (r->bad || r->pos != r->len)
    CORRUPT("section %s has %zu bytes, its fields take %zu", origin, sec_tags[which], r->len,
            r->pos);
  return LP_OK;
nomem:
  return lp_err_set(err, LP_ENOMEM, "%s: out of memory reading the checkpoint", origin);
fail:
  return rc;
}

int lp_ckpt_decode(const unsigned char *data, size_t len, const char *origin, unsigned flags,
                   lp_ckpt *out, lp_err *err) {
  if (!out) return lp_err_set(err, LP_EINVAL, "checkpoint decode: NULL argument");
  memset(out, 0, sizeof *out);
  if (!origin) origin = "<checkpoint>";
  if (!data && len) return lp_err_set(err, LP_EINVAL, "checkpoint decode: NULL data");
  int rc = LP_OK;
  out->file_size = len;
  /* magic first: a short file that starts like one is truncated, anything
   * else is not a checkpoint */
  size_t m = len < 8 ? len : 8;
  if (memcmp(data, LP_CKPT_MAGIC, m) != 0 || len == 0) {
    if (len == 0)
      return lp_err_set(err, LP_EINVAL, "%s: empty file, not an lpsynth checkpoint", origin);
    return lp_err_set(err, LP_EINVAL,
                      "%s: not an lpsynth checkpoint (bad magic: the file does not start with "
                      "\"" LP_CKPT_MAGIC "\")",
                      origin);
  }
  if (len < 28)
    return lp_err_set(err, LP_EINVAL,
                      "%s: truncated checkpoint (%zu bytes, shorter than the header)", origin,
                      len);
  rbuf h = {data, len, 8, 0};
  uint32_t version = r_u32(&h);
  (void)r_u32(&h);
  uint64_t flen = r_u64(&h);
  out->version = version;
  if (version != LP_CKPT_VERSION && version != LP_CKPT_VERSION_HALF)
    return lp_err_set(err, LP_EABI,
                      "%s: checkpoint format version %u, but this build reads versions %u and %u",
                      origin, version, LP_CKPT_VERSION, LP_CKPT_VERSION_HALF);
  if (flen > len)
    return lp_err_set(err, LP_EINVAL,
                      "%s: truncated checkpoint (%zu bytes, the header says %llu)", origin, len,
                      (unsigned long long)flen);
  if (flen < len)
    return lp_err_set(err, LP_EINVAL,
                      "%s: corrupted checkpoint (%zu bytes, the header says %llu: trailing data "
                      "or a damaged header)",
                      origin, len, (unsigned long long)flen);
  uint32_t stored = (uint32_t)data[len - 4] | (uint32_t)data[len - 3] << 8 |
                    (uint32_t)data[len - 2] << 16 | (uint32_t)data[len - 1] << 24;
  uint32_t crc = lp_crc32c(0, data, len - 4);
  if (crc != stored)
    return lp_err_set(err, LP_EINVAL,
                      "%s: checksum mismatch, the checkpoint is corrupted (stored CRC-32C "
                      "%08x, computed %08x)",
                      origin, stored, crc);
  /* sections */
  int seen[S_N] = {0};
  /* the parameters: PARM in version 1, PR16 in version 2 (the other is refused) */
  const int pk = version == LP_CKPT_VERSION ? S_PARM : S_PR16;
  const int other = pk == S_PARM ? S_PR16 : S_PARM;
  rbuf r = {data, len - 4, 24, 0};
  while (r.pos < r.len) {
    if (!r_need(&r, SEC_HDR)) CORRUPT("%s", origin, "section header cut short");
    char tag[5];
    memcpy(tag, r.p + r.pos, 4);
    tag[4] = 0;
    r.pos += 4;
    (void)r_u32(&r);
    uint64_t n = r_u64(&r);
    if (n > r.len - r.pos) CORRUPT("section %.4s runs past the end", origin, tag);
    int which = -1;
    for (int k = 0; k < S_N; k++)
      if (!memcmp(tag, sec_tags[k], 4)) which = k;
    if (which >= 0) {
      if (seen[which]) CORRUPT("section %s appears twice", origin, sec_tags[which]);
      if (which == other)
        CORRUPT("section %s in a version-%u file (its parameters belong in %s)", origin,
                sec_tags[other], version, sec_tags[pk]);
      seen[which] = 1;
      rbuf s = {r.p + r.pos, (size_t)n, 0, 0};
      rc = read_section(which, &s, origin, flags, out, err);
      if (rc) goto fail;
    }
    r.pos += (size_t)n;
  }
  for (int k = 0; k < S_N; k++)
    if (!seen[k] && k != S_STAT && k != other)
      CORRUPT("section %s is missing", origin, sec_tags[k]);
  if (pk == S_PR16 && out->n_adam)
    CORRUPT("optimiser state of %zu values beside %s parameters (16-bit parameters are for "
            "stripped checkpoints)",
            origin, out->n_adam, lp_ckpt_prec_name(out->param_prec));
  if (out->n_params != lp_layout_numel(out->layout))
    CORRUPT("%zu parameters, the layout has %zu", origin, out->n_params,
            lp_layout_numel(out->layout));
  if (out->n_adam && out->n_adam != out->n_params)
    CORRUPT("optimiser state of %zu values for %zu parameters", origin, out->n_adam,
            out->n_params);
  return LP_OK;
fail:
  lp_ckpt_free(out);
  return rc;
}

int lp_ckpt_read(const char *path, unsigned flags, lp_ckpt *out, lp_err *err) {
  if (!path || !out) return lp_err_set(err, LP_EINVAL, "checkpoint read: NULL argument");
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f) return lp_err_set(err, LP_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return lp_err_set(err, LP_EIO, "%s: not a regular file", path);
  }
  size_t len = (size_t)st.st_size;
  unsigned char *data = malloc(len ? len : 1);
  if (!data) {
    fclose(f);
    return lp_err_set(err, LP_ENOMEM, "%s: out of memory (%zu bytes)", path, len);
  }
  size_t got = fread(data, 1, len, f);
  int bad = ferror(f);
  fclose(f);
  if (bad || got != len) {
    free(data);
    return lp_err_set(err, LP_EIO, "%s: read failed", path);
  }
  int rc = lp_ckpt_decode(data, len, path, flags, out, err);
  free(data);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Compatibility checks.                                                   */

int lp_ckpt_check_domain(const lp_ckpt *c, const char *origin, const lp_ckpt_domain *expect,
                         lp_err *err) {
  if (!origin) origin = "<checkpoint>";
  if (strcmp(c->domain.name, expect->name) != 0)
    return lp_err_set(err, LP_EINVAL,
                      "%s: the checkpoint is for domain \"%s\", not \"%s\"", origin,
                      c->domain.name, expect->name);
  if (c->domain.vocab_fp != expect->vocab_fp || c->domain.n_parts != expect->n_parts ||
      memcmp(&c->domain.spec, &expect->spec, sizeof c->domain.spec) != 0 ||
      memcmp(&c->domain.prog, &expect->prog, sizeof c->domain.prog) != 0)
    return lp_err_set(err, LP_EINVAL,
                      "%s: vocabulary fingerprint mismatch: the checkpoint was trained with "
                      "domain \"%s\" vocabularies %016llx (program %d tokens, spec %d), the "
                      "loaded plugin has %016llx (program %d, spec %d); its tokens changed",
                      origin, c->domain.name, (unsigned long long)c->domain.vocab_fp,
                      c->domain.prog.size, c->domain.spec.size,
                      (unsigned long long)expect->vocab_fp, expect->prog.size,
                      expect->spec.size);
  return LP_OK;
}

static void shape_text(const lp_param_info *p, char *buf, size_t n) {
  size_t u = 0;
  buf[0] = 0;
  for (int k = 0; k < p->ndim && u < n; k++) {
    int w = snprintf(buf + u, n - u, "%s%d", k ? "," : "[", p->shape[k]);
    if (w > 0) u += (size_t)w;
  }
  if (u < n) snprintf(buf + u, n - u, "]");
}

static void describe(const lp_param_info *p, char *buf, size_t n) {
  if (!p) {
    snprintf(buf, n, "no tensor");
    return;
  }
  char sh[64];
  shape_text(p, sh, sizeof sh);
  snprintf(buf, n, "\"%s\" %s", p->name, sh);
}

static int same_param(const lp_param_info *a, const lp_param_info *b) {
  if (strcmp(a->name, b->name) || a->ndim != b->ndim) return 0;
  for (int k = 0; k < a->ndim; k++)
    if (a->shape[k] != b->shape[k]) return 0;
  return 1;
}

int lp_ckpt_check_layout(const lp_layout *have, const lp_layout *want, const char *origin,
                         lp_err *err) {
  if (!origin) origin = "<checkpoint>";
  size_t nh = lp_layout_count(have), nw = lp_layout_count(want);
  size_t n = nh < nw ? nh : nw;
  for (size_t i = 0; i <= n; i++) {
    const lp_param_info *a = i < nh ? lp_layout_param(have, i) : NULL;
    const lp_param_info *b = i < nw ? lp_layout_param(want, i) : NULL;
    if (a && b && same_param(a, b)) continue;
    if (!a && !b) return LP_OK;
    char da[LP_PARAM_NAME_MAX + 64], db[LP_PARAM_NAME_MAX + 64];
    describe(a, da, sizeof da);
    describe(b, db, sizeof db);
    return lp_err_set(err, LP_EINVAL,
                      "%s: parameter layout mismatch at tensor %zu: the checkpoint has %s, this "
                      "build's model has %s (%zu vs %zu tensors)",
                      origin, i, da, db, nh, nw);
  }
  return LP_OK;
}

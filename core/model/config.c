/* Model configuration: defaults, the `key = value` text format, range checks
 * and the canonical text (see include/lpsynth/model.h and models/CONFIG.md). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpsynth/model.h"
#include "lpsynth/runtime.h"

void lp_model_cfg_default(lp_model_cfg *c, int kind) {
  memset(c, 0, sizeof *c);
  c->kind = lp_model_kind_name(kind) ? kind : LP_MODEL_ROBUSTFILL;
  c->d_model = 128;
  c->d_ff = 512;
  c->n_heads = 4;
  /* RobustFill[LSTM]: one LSTM layer per encoder and in the decoder */
  c->n_enc_layers = c->kind == LP_MODEL_RF_LSTM ? 1 : 3;
  c->n_dec_layers = c->kind == LP_MODEL_RF_LSTM ? 1 : 3;
  c->dropout = 0.1f;
  c->attn_dropout = 0.1f;
  c->max_spec_len = 128;
  c->max_program_len = 128;
  c->batch_size = 32;
  c->lr = 1e-3f;
  c->warmup_steps = 16000;
  c->beta1 = 0.9f;
  c->beta2 = 0.98f;
  c->adam_eps = 1e-9f;
  c->weight_decay = 0.1f;
  c->clip_norm = 1.0f;
  c->checkpoint_every = 1000;
  c->latent_K = 40;
  c->latent_l = 2;
  c->commit_beta = 0.25f;
  c->ema_decay = 0.99f;
  c->ema_eps = 1e-5f;
  c->pretrain_steps = 10000;
  c->w_ae = 1.0f;
  c->w_latent = 1.0f;
  c->w_e2e = 1.0f;
  c->dead_code_restart = 0;
  c->kmeans_init = 0;
  c->ref_pretrain = 0;
  c->vq_norm = 0;
  c->kl_weight = 1.0f;
}

/* ---- the key table ---- */

enum { T_KIND, T_INT, T_I64, T_FLOAT };

typedef struct key_desc {
  const char *key;
  int type;
  size_t off;
  double lo, hi;    /* range; */
  int lo_open;      /* 1: lo excluded */
  int hi_open;      /* 1: hi excluded */
} key_desc;

#define OFF(f) offsetof(lp_model_cfg, f)
#define BIG 1e12

static const key_desc keys[] = {
    {"model", T_KIND, OFF(kind), 0, LP_MODEL_KINDS - 1, 0, 0},
    {"d_model", T_INT, OFF(d_model), 1, 16384, 0, 0},
    {"d_ff", T_INT, OFF(d_ff), 1, 1048576, 0, 0},
    {"n_heads", T_INT, OFF(n_heads), 1, 1024, 0, 0},
    {"enc_layers", T_INT, OFF(n_enc_layers), 1, 64, 0, 0},
    {"dec_layers", T_INT, OFF(n_dec_layers), 1, 64, 0, 0},
    {"dropout", T_FLOAT, OFF(dropout), 0, 1, 0, 1},
    {"attn_dropout", T_FLOAT, OFF(attn_dropout), 0, 1, 0, 1},
    {"max_spec_len", T_INT, OFF(max_spec_len), 1, 65536, 0, 0},
    {"max_program_len", T_INT, OFF(max_program_len), 2, 65536, 0, 0},
    {"batch_size", T_INT, OFF(batch_size), 1, 65536, 0, 0},
    {"lr", T_FLOAT, OFF(lr), 0, 10, 1, 0},
    {"warmup", T_I64, OFF(warmup_steps), 0, BIG, 0, 0},
    {"beta1", T_FLOAT, OFF(beta1), 0, 1, 0, 1},
    {"beta2", T_FLOAT, OFF(beta2), 0, 1, 0, 1},
    {"adam_eps", T_FLOAT, OFF(adam_eps), 0, 1, 0, 0},
    {"weight_decay", T_FLOAT, OFF(weight_decay), 0, 10, 0, 0},
    {"clip_norm", T_FLOAT, OFF(clip_norm), -1e9, 1e9, 0, 0},
    {"checkpoint_every", T_I64, OFF(checkpoint_every), 0, BIG, 0, 0},
    {"latent_k", T_INT, OFF(latent_K), 1, 65536, 0, 0},
    {"latent_l", T_INT, OFF(latent_l), 0, 8, 0, 0},
    {"commit_beta", T_FLOAT, OFF(commit_beta), 0, 1000, 0, 0},
    {"ema_decay", T_FLOAT, OFF(ema_decay), 0, 1, 0, 1},
    {"ema_eps", T_FLOAT, OFF(ema_eps), 0, 1, 1, 0},
    {"pretrain_steps", T_I64, OFF(pretrain_steps), 0, BIG, 0, 0},
    {"w_ae", T_FLOAT, OFF(w_ae), 0, 1000, 0, 0},
    {"w_latent", T_FLOAT, OFF(w_latent), 0, 1000, 0, 0},
    {"w_e2e", T_FLOAT, OFF(w_e2e), 0, 1000, 0, 0},
    {"dead_code_restart", T_INT, OFF(dead_code_restart), 0, 1, 0, 0},
    {"kmeans_init", T_INT, OFF(kmeans_init), 0, 1, 0, 0},
    {"ref_pretrain", T_INT, OFF(ref_pretrain), 0, 1, 0, 0},
    {"vq_norm", T_INT, OFF(vq_norm), 0, 1, 0, 0},
    {"kl_weight", T_FLOAT, OFF(kl_weight), 0, 1000, 0, 0},
};
#define N_KEYS (sizeof keys / sizeof *keys)

/* indexed by enum lp_model_kind */
static const char *const k_kind_names[LP_MODEL_KINDS] = {"robustfill", "lp", "robustfill-lstm",
                                                         "latent-ae", "latent-vae"};
#define KIND_LIST "robustfill, robustfill-lstm, lp, latent-ae or latent-vae"

const char *lp_model_kind_name(int kind) {
  return kind >= 0 && kind < LP_MODEL_KINDS ? k_kind_names[kind] : NULL;
}

int lp_model_kind_parse(const char *s, size_t len) {
  for (int k = 0; s && k < LP_MODEL_KINDS; k++)
    if (strlen(k_kind_names[k]) == len && !memcmp(k_kind_names[k], s, len)) return k;
  return -1;
}

static double get_val(const lp_model_cfg *c, const key_desc *k) {
  const char *p = (const char *)c + k->off;
  switch (k->type) {
    case T_KIND:
    case T_INT: {
      int v;
      memcpy(&v, p, sizeof v);
      return v;
    }
    case T_I64: {
      int64_t v;
      memcpy(&v, p, sizeof v);
      return (double)v;
    }
    default: {
      float v;
      memcpy(&v, p, sizeof v);
      return v;
    }
  }
}

/* The range of k as text, e.g. "[0, 1)" or "1..64". */
static void range_text(const key_desc *k, char *buf, size_t n) {
  if (k->type == T_FLOAT) {
    if (k->lo <= -1e9)
      snprintf(buf, n, "a finite number");
    else
      snprintf(buf, n, "in %c%g, %g%c", k->lo_open ? '(' : '[', k->lo, k->hi,
               k->hi_open ? ')' : ']');
  } else if (k->hi >= BIG) {
    snprintf(buf, n, "an integer >= %.0f", k->lo);
  } else {
    snprintf(buf, n, "an integer in %.0f..%.0f", k->lo, k->hi);
  }
}

static int in_range(const key_desc *k, double v) {
  if (!isfinite(v)) return 0;
  if (k->lo_open ? !(v > k->lo) : !(v >= k->lo)) return 0;
  if (k->hi_open ? !(v < k->hi) : !(v <= k->hi)) return 0;
  return 1;
}

/* Checks of one config. *bad_key gets the index of the key to blame (for
 * the line number in parse messages; *alt_key: the other key of a relation,
 * or N_KEYS); message without a location. */
static int check_cfg(const lp_model_cfg *c, size_t *bad_key, size_t *alt_key, lp_err *err) {
  *alt_key = N_KEYS;
  for (size_t i = 0; i < N_KEYS; i++) {
    const key_desc *k = &keys[i];
    double v = get_val(c, k);
    /* kl_weight (added with latent-vae) only where it matters, so that the
     * configs and checkpoints of the other kinds stay readable by builds
     * that predate it */
    if (k->off == OFF(kl_weight) && c->kind != LP_MODEL_LATENT_VAE && c->kl_weight == 1.0f)
      continue;
    if (k->type == T_KIND) {
      if (!lp_model_kind_name(c->kind)) {
        *bad_key = i;
        return lp_err_set(err, LP_EINVAL, "model must be " KIND_LIST " (kind %d)", c->kind);
      }
      continue;
    }
    if (!in_range(k, v)) {
      char r[64];
      range_text(k, r, sizeof r);
      *bad_key = i;
      return lp_err_set(err, LP_EINVAL, "%s must be %s, got %.9g", k->key, r, v);
    }
  }
  if (c->kind == LP_MODEL_RF_LSTM && (c->n_enc_layers != 1 || c->n_dec_layers != 1)) {
    for (size_t i = 0; i < N_KEYS; i++)
      if (!strcmp(keys[i].key, c->n_enc_layers != 1 ? "enc_layers" : "dec_layers")) *bad_key = i;
    return lp_err_set(err, LP_EINVAL,
                      "robustfill-lstm has one LSTM layer per encoder and in the decoder: "
                      "enc_layers and dec_layers must be 1 (got %d and %d)",
                      c->n_enc_layers, c->n_dec_layers);
  }
  /* (n_heads is unused by the LSTM) */
  if (c->kind != LP_MODEL_RF_LSTM && c->d_model % c->n_heads != 0) {
    for (size_t i = 0; i < N_KEYS; i++)
      if (!strcmp(keys[i].key, "d_model")) *bad_key = i;
    for (size_t i = 0; i < N_KEYS; i++)
      if (!strcmp(keys[i].key, "n_heads")) *alt_key = i;
    return lp_err_set(err, LP_EINVAL,
                      "d_model must be a positive multiple of n_heads (d_model %d, n_heads %d)",
                      c->d_model, c->n_heads);
  }
  return LP_OK;
}

int lp_model_cfg_check(const lp_model_cfg *c, lp_err *err) {
  if (!c) return lp_err_set(err, LP_EINVAL, "model config: NULL");
  size_t bad = 0, alt = 0;
  return check_cfg(c, &bad, &alt, err);
}

/* ---- parsing ---- */

static const key_desc *find_key(const char *s, size_t n) {
  for (size_t i = 0; i < N_KEYS; i++)
    if (strlen(keys[i].key) == n && !memcmp(keys[i].key, s, n)) return &keys[i];
  return NULL;
}

static int is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v'; }

/* Parses a number from v[0..n) (trimmed, no '#'). Integers accept a plain
 * decimal or an exactly integral float ("16e3"). 0 on success. */
static int parse_number(const key_desc *k, const char *v, size_t n, double *out) {
  char buf[128];
  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, v, n);
  buf[n] = 0;
  char *end;
  errno = 0;
  if (k->type == T_FLOAT) {
    double d = strtod(buf, &end);
    if (end == buf || *end || !isfinite(d)) return -1;
    /* must fit a float */
    if (fabs(d) > 3.4e38) return -1;
    *out = d;
    return 0;
  }
  long long ll = strtoll(buf, &end, 10);
  if (end != buf && !*end && !errno) {
    *out = (double)ll;
    return 0;
  }
  errno = 0;
  double d = strtod(buf, &end);
  if (end == buf || *end || !isfinite(d) || d != floor(d) || fabs(d) > 9e15) return -1;
  *out = d;
  return 0;
}

static void set_val(lp_model_cfg *c, const key_desc *k, double v) {
  char *p = (char *)c + k->off;
  switch (k->type) {
    case T_KIND:
    case T_INT: {
      int x = (int)v;
      memcpy(p, &x, sizeof x);
      break;
    }
    case T_I64: {
      int64_t x = (int64_t)v;
      memcpy(p, &x, sizeof x);
      break;
    }
    default: {
      float x = (float)v;
      memcpy(p, &x, sizeof x);
      break;
    }
  }
}

typedef struct line_kv {
  size_t ki; /* index into keys */
  const char *val;
  size_t val_len;
  size_t line;
} line_kv;

int lp_model_cfg_parse(lp_model_cfg *c, const char *text, size_t len, const char *origin,
                       lp_err *err) {
  if (!c || (!text && len)) return lp_err_set(err, LP_EINVAL, "model config: NULL argument");
  if (!origin) origin = "<config>";
  size_t key_line[N_KEYS];
  memset(key_line, 0, sizeof key_line);
  /* pass 1: split lines, find keys, reject unknown / duplicate / malformed */
  size_t cap = 0, n = 0;
  line_kv *kv = NULL;
  int rc = LP_OK;
  size_t lineno = 0, pos = 0;
  while (pos < len) {
    size_t start = pos;
    while (pos < len && text[pos] != '\n') pos++;
    size_t end = pos;
    if (pos < len) pos++; /* skip '\n' */
    lineno++;
    const char *s = text + start;
    size_t m = end - start;
    /* strip comment */
    for (size_t i = 0; i < m; i++)
      if (s[i] == '#') {
        m = i;
        break;
      }
    while (m && is_space(s[m - 1])) m--;
    while (m && is_space(*s)) {
      s++;
      m--;
    }
    if (!m) continue;
    if (memchr(s, '\0', m)) {
      rc = lp_err_set(err, LP_EINVAL, "%s:%zu: NUL byte in the line", origin, lineno);
      goto out;
    }
    const char *eq = memchr(s, '=', m);
    if (!eq) {
      rc = lp_err_set(err, LP_EINVAL, "%s:%zu: expected `key = value`, got \"%.*s\"", origin,
                      lineno, (int)(m > 60 ? 60 : m), s);
      goto out;
    }
    size_t kl = (size_t)(eq - s);
    while (kl && is_space(s[kl - 1])) kl--;
    const char *v = eq + 1;
    size_t vl = m - (size_t)(v - s);
    while (vl && is_space(*v)) {
      v++;
      vl--;
    }
    if (!kl) {
      rc = lp_err_set(err, LP_EINVAL, "%s:%zu: missing key before '='", origin, lineno);
      goto out;
    }
    const key_desc *k = find_key(s, kl);
    if (!k) {
      rc = lp_err_set(err, LP_EINVAL, "%s:%zu: unknown key \"%.*s\" (see models/CONFIG.md)",
                      origin, lineno, (int)(kl > 60 ? 60 : kl), s);
      goto out;
    }
    size_t ki = (size_t)(k - keys);
    if (key_line[ki]) {
      rc = lp_err_set(err, LP_EINVAL, "%s:%zu: duplicate key \"%s\" (first set on line %zu)",
                      origin, lineno, k->key, key_line[ki]);
      goto out;
    }
    key_line[ki] = lineno;
    if (!vl) {
      rc = lp_err_set(err, LP_EINVAL, "%s:%zu: missing value for \"%s\"", origin, lineno, k->key);
      goto out;
    }
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 32;
      line_kv *t = realloc(kv, nc * sizeof *kv);
      if (!t) {
        rc = lp_err_set(err, LP_ENOMEM, "%s: out of memory", origin);
        goto out;
      }
      kv = t;
      cap = nc;
    }
    kv[n].ki = ki;
    kv[n].val = v;
    kv[n].val_len = vl;
    kv[n].line = lineno;
    n++;
  }
  /* pass 2: defaults of the kind, then the values in file order */
  lp_model_cfg tmp;
  int kind = lp_model_kind_name(c->kind) ? c->kind : LP_MODEL_ROBUSTFILL;
  for (size_t i = 0; i < n; i++) {
    const key_desc *k = &keys[kv[i].ki];
    if (k->type != T_KIND) continue;
    kind = lp_model_kind_parse(kv[i].val, kv[i].val_len);
    if (kind < 0) {
      rc = lp_err_set(err, LP_EINVAL,
                      "%s:%zu: model must be " KIND_LIST ", got \"%.*s\" (a model kind this "
                      "build of lpsynth does not know)",
                      origin, kv[i].line, (int)(kv[i].val_len > 40 ? 40 : kv[i].val_len),
                      kv[i].val);
      goto out;
    }
  }
  lp_model_cfg_default(&tmp, kind);
  for (size_t i = 0; i < n; i++) {
    const key_desc *k = &keys[kv[i].ki];
    if (k->type == T_KIND) continue;
    double v;
    if (parse_number(k, kv[i].val, kv[i].val_len, &v)) {
      rc = lp_err_set(err, LP_EINVAL, "%s:%zu: %s: expected %s, got \"%.*s\"", origin,
                      kv[i].line, k->key, k->type == T_FLOAT ? "a number" : "an integer",
                      (int)(kv[i].val_len > 40 ? 40 : kv[i].val_len), kv[i].val);
      goto out;
    }
    if (!in_range(k, v)) {
      char r[64];
      range_text(k, r, sizeof r);
      rc = lp_err_set(err, LP_EINVAL, "%s:%zu: %s must be %s, got %.*s", origin, kv[i].line,
                      k->key, r, (int)(kv[i].val_len > 40 ? 40 : kv[i].val_len), kv[i].val);
      goto out;
    }
    set_val(&tmp, k, v);
  }
  /* relations (and anything a float conversion pushed out of range) */
  size_t bad = 0, alt = 0;
  lp_err e2 = {0};
  if (check_cfg(&tmp, &bad, &alt, &e2)) {
    if (!key_line[bad] && alt < N_KEYS) bad = alt;
    if (key_line[bad])
      rc = lp_err_set(err, e2.code, "%s:%zu: %s", origin, key_line[bad], e2.msg);
    else
      rc = lp_err_set(err, e2.code, "%s: %s", origin, e2.msg);
    goto out;
  }
  *c = tmp;
out:
  free(kv);
  return rc;
}

/* ---- canonical text ---- */

int lp_model_cfg_to_text(const lp_model_cfg *c, lp_buf *out) {
  if (!c || !out) return LP_EINVAL;
  for (size_t i = 0; i < N_KEYS; i++) {
    const key_desc *k = &keys[i];
    char line[160];
    int w;
    double v = get_val(c, k);
    /* kl_weight (added with latent-vae) only where it matters, so that the
     * configs and checkpoints of the other kinds stay readable by builds
     * that predate it */
    if (k->off == OFF(kl_weight) && c->kind != LP_MODEL_LATENT_VAE && c->kl_weight == 1.0f)
      continue;
    if (k->type == T_KIND) {
      if (!lp_model_kind_name(c->kind)) return LP_EINVAL;
      w = snprintf(line, sizeof line, "%s = %s\n", k->key, lp_model_kind_name(c->kind));
    }
    else if (k->type == T_FLOAT) {
      /* the shortest text that reads back as the same float */
      float f = (float)v;
      char num[48];
      for (int prec = 6; prec <= 9; prec++) {
        snprintf(num, sizeof num, "%.*g", prec, (double)f);
        if (strtof(num, NULL) == f) break;
      }
      w = snprintf(line, sizeof line, "%s = %s\n", k->key, num);
    }
    else
      w = snprintf(line, sizeof line, "%s = %.0f\n", k->key, v);
    if (w < 0 || (size_t)w >= sizeof line) return LP_EINVAL;
    if (lp_buf_append(out, line, (size_t)w)) return LP_ENOMEM;
  }
  return LP_OK;
}

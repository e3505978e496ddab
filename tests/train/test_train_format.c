/* Tests of the model config format and the checkpoint file format (no model
 * needed). Usage: test_train_format CASE [STRING.so TOY.so MODELS_DIR]
 * Cases: cfg_defaults cfg_roundtrip cfg_errors cfg_files ckpt_roundtrip
 *        ckpt_refusals ckpt_half ckpt_half_refusals ckpt_layout fingerprint
 *        crc */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

/* ---------------------------------------------------------------------- */
/* Config                                                                  */

static int parse(lp_model_cfg *c, const char *text, lp_err *e) {
  memset(e, 0, sizeof *e);
  lp_model_cfg_default(c, LP_MODEL_ROBUSTFILL);
  return lp_model_cfg_parse(c, text, strlen(text), "t.cfg", e);
}

static void cfg_defaults(void) {
  lp_model_cfg c;
  lp_err e = {0};
  lp_model_cfg_default(&c, LP_MODEL_ROBUSTFILL);
  CHECK(c.kind == LP_MODEL_ROBUSTFILL && c.d_model == 128 && c.d_ff == 512 && c.n_heads == 4 &&
            c.n_enc_layers == 3 && c.n_dec_layers == 3 && c.batch_size == 32 &&
            c.warmup_steps == 16000 && c.lr == 1e-3f && c.beta2 == 0.98f && c.adam_eps == 1e-9f &&
            c.weight_decay == 0.1f && c.clip_norm == 1.0f && c.checkpoint_every == 1000 &&
            c.max_spec_len == 128 && c.max_program_len == 128,
        "robustfill defaults");
  CHECK(lp_model_cfg_check(&c, &e) == LP_OK, "defaults check: %s", e.msg);
  lp_model_cfg_default(&c, LP_MODEL_LP);
  CHECK(c.kind == LP_MODEL_LP && c.latent_K == 40 && c.latent_l == 2 && c.commit_beta == 0.25f &&
            c.ema_decay == 0.99f && c.ema_eps == 1e-5f && c.pretrain_steps == 10000 &&
            c.w_ae == 1 && c.w_latent == 1 && c.w_e2e == 1 && c.dead_code_restart == 0,
        "lp defaults");
  CHECK(lp_model_cfg_check(&c, &e) == LP_OK, "lp defaults check: %s", e.msg);
  /* empty text and comments only: the defaults */
  lp_model_cfg d;
  CHECK(parse(&d, "", &e) == LP_OK, "empty: %s", e.msg);
  lp_model_cfg_default(&c, LP_MODEL_ROBUSTFILL);
  CHECK(cfg_eq(&c, &d), "empty text gives the defaults");
  CHECK(parse(&d, "# only a comment\n\n   \t\n# another\n", &e) == LP_OK, "comments: %s", e.msg);
  CHECK(cfg_eq(&c, &d), "comments give the defaults");
  /* parse starts from the defaults of *c's kind */
  lp_model_cfg_default(&d, LP_MODEL_LP);
  d.d_model = 999;
  CHECK(lp_model_cfg_parse(&d, "d_ff = 64\n", 10, "x", &e) == LP_OK, "lp kind: %s", e.msg);
  CHECK(d.kind == LP_MODEL_LP && d.d_model == 128 && d.d_ff == 64, "kind kept, defaults reset");
}

static void cfg_roundtrip(void) {
  lp_err e = {0};
  for (int kind = 0; kind < LP_MODEL_KINDS; kind++) {
    lp_model_cfg c, d;
    lp_model_cfg_default(&c, kind);
    if (kind == 1) {
      c.d_model = 96;
      c.n_heads = 3;
      c.lr = 3.3e-4f;
      c.dropout = 0.123456789f;
      c.adam_eps = 1.17e-9f;
      c.warmup_steps = 123456789012LL;
      c.clip_norm = -1;
      c.latent_K = 400;
      c.ema_eps = 1e-7f;
      c.dead_code_restart = 1;
      c.kmeans_init = 1;
      c.ref_pretrain = 1;
      c.vq_norm = 1;
      c.w_e2e = 0.3f;
    }
    if (kind == LP_MODEL_LATENT_VAE) c.kl_weight = 0.0625f, c.latent_l = 1;
    if (kind == LP_MODEL_LATENT_AE) c.w_latent = 2.5f;
    lp_buf b = {0};
    CHECK(lp_model_cfg_to_text(&c, &b) == LP_OK, "to_text");
    lp_model_cfg_default(&d, LP_MODEL_ROBUSTFILL);
    CHECK(lp_model_cfg_parse(&d, b.data, b.len, "rt", &e) == LP_OK, "parse(to_text): %s\n%s",
          e.msg, b.data);
    CHECK(cfg_eq(&c, &d), "parse(to_text(c)) == c (kind %d)\n%s", kind, b.data);
    /* every key appears exactly once */
    static const char *keys[] = {"model", "d_model", "d_ff", "n_heads", "enc_layers",
                                 "dec_layers", "dropout", "attn_dropout", "max_spec_len",
                                 "max_program_len", "batch_size", "lr", "warmup", "beta1",
                                 "beta2", "adam_eps", "weight_decay", "clip_norm",
                                 "checkpoint_every", "latent_k", "latent_l", "commit_beta",
                                 "ema_decay", "ema_eps", "pretrain_steps", "w_ae", "w_latent",
                                 "w_e2e", "dead_code_restart", "kmeans_init", "ref_pretrain",
                                 "vq_norm", "kl_weight"};
    /* kl_weight: written for latent-vae (or when not 1), so that older builds
     * read the other kinds' configs and checkpoints */
    const size_t n_keys = sizeof keys / sizeof *keys - (kind != LP_MODEL_LATENT_VAE);
    CHECK((kind == LP_MODEL_LATENT_VAE) == (strstr(b.data, "kl_weight") != NULL),
          "kl_weight only for latent-vae (kind %d)", kind);
    for (size_t i = 0; i < n_keys; i++) {
      char pat[64];
      snprintf(pat, sizeof pat, "\n%s = ", keys[i]);
      int at_start = !strncmp(b.data, pat + 1, strlen(pat) - 1);
      CHECK(at_start || has(b.data, pat), "key %s in to_text", keys[i]);
    }
    size_t lines = 0;
    for (size_t i = 0; i < b.len; i++) lines += b.data[i] == '\n';
    CHECK(lines == n_keys, "%zu lines, want %zu", lines, n_keys);
    lp_buf_free(&b);
  }
  /* `model =` sets that kind's defaults first, wherever it stands */
  lp_model_cfg c;
  CHECK(parse(&c, "d_model = 64  # inline comment\nmodel = lp\n", &e) == LP_OK, "%s", e.msg);
  CHECK(c.kind == LP_MODEL_LP && c.d_model == 64 && c.latent_K == 40, "model after a key");
  CHECK(parse(&c, "  model=robustfill\r\nwarmup = 16e3\nlr=0.0005\n", &e) == LP_OK, "%s", e.msg);
  CHECK(c.kind == LP_MODEL_ROBUSTFILL && c.warmup_steps == 16000 && c.lr == 5e-4f,
        "spacing, CRLF, 16e3");
  /* the continuous-latent kinds by name; kl_weight elsewhere when not 1 */
  CHECK(parse(&c, "model = latent-ae\n", &e) == LP_OK && c.kind == LP_MODEL_LATENT_AE, "%s", e.msg);
  CHECK(parse(&c, "model = latent-vae\nkl_weight = 0.5\n", &e) == LP_OK &&
            c.kind == LP_MODEL_LATENT_VAE && c.kl_weight == 0.5f,
        "%s", e.msg);
  CHECK(!strcmp(lp_model_kind_name(LP_MODEL_LATENT_AE), "latent-ae") &&
            !strcmp(lp_model_kind_name(LP_MODEL_LATENT_VAE), "latent-vae"),
        "kind names");
  {
    lp_model_cfg k;
    lp_model_cfg_default(&k, LP_MODEL_LP);
    k.kl_weight = 2.0f;
    lp_buf b = {0};
    CHECK(lp_model_cfg_to_text(&k, &b) == LP_OK && has(b.data, "kl_weight = 2\n"),
          "kl_weight != 1 written for lp");
    lp_model_cfg d;
    CHECK(lp_model_cfg_parse(&d, b.data, b.len, "rt", &e) == LP_OK && cfg_eq(&k, &d),
          "round trip of lp with kl_weight 2");
    lp_buf_free(&b);
  }
}

static void expect_err(const char *text, const char *want) {
  lp_model_cfg c;
  lp_err e = {0};
  lp_model_cfg_default(&c, LP_MODEL_ROBUSTFILL);
  c.d_model = 777; /* must stay untouched on failure */
  int rc = lp_model_cfg_parse(&c, text, strlen(text), "t.cfg", &e);
  CHECK(rc == LP_EINVAL, "\"%s\": rc %d, want LP_EINVAL", text, rc);
  CHECK(e.code == LP_EINVAL && has(e.msg, want), "\"%s\": message \"%s\", want \"%s\"", text,
        e.msg, want);
  CHECK(c.d_model == 777, "\"%s\": config changed on failure", text);
}

static void cfg_errors(void) {
  expect_err("d_model = 64\nfoo = 3\n", "t.cfg:2: unknown key \"foo\"");
  expect_err("d_model = 64\n\n# c\nd_model = 32\n",
             "t.cfg:4: duplicate key \"d_model\" (first set on line 1)");
  expect_err("d_model = abc\n", "t.cfg:1: d_model: expected an integer, got \"abc\"");
  expect_err("d_model = 12.5\n", "t.cfg:1: d_model: expected an integer");
  expect_err("lr = 1e-3x\n", "t.cfg:1: lr: expected a number, got \"1e-3x\"");
  expect_err("lr = nan\n", "t.cfg:1: lr: expected a number");
  expect_err("d_model =\n", "t.cfg:1: missing value for \"d_model\"");
  expect_err("just words\n", "t.cfg:1: expected `key = value`");
  expect_err("= 3\n", "t.cfg:1: missing key");
  expect_err("model = lstm\n",
             "t.cfg:1: model must be robustfill, robustfill-lstm, lp, latent-ae or latent-vae, got "
             "\"lstm\"");
  expect_err("model = robustfill-lstm\nenc_layers = 2\n",
             "t.cfg:2: robustfill-lstm has one LSTM layer per encoder and in the decoder");
  expect_err("\n\ndropout = 1\n", "t.cfg:3: dropout must be in [0, 1), got 1");
  expect_err("n_heads = 0\n", "t.cfg:1: n_heads must be an integer in 1..1024, got 0");
  expect_err("lr = 0\n", "t.cfg:1: lr must be in (0, 10], got 0");
  expect_err("warmup = -5\n", "t.cfg:1: warmup must be an integer >= 0, got -5");
  expect_err("batch_size = 99999999999999\n", "t.cfg:1: batch_size must be an integer in");
  expect_err("beta2 = 1.0\n", "t.cfg:1: beta2 must be in [0, 1)");
  expect_err("dead_code_restart = 2\n", "t.cfg:1: dead_code_restart must be an integer in 0..1");
  expect_err("max_program_len = 1\n", "t.cfg:1: max_program_len must be an integer in 2..");
  /* relations name the line of d_model (else of n_heads) */
  expect_err("n_heads = 3\n", "t.cfg:1: d_model must be a positive multiple of n_heads");
  expect_err("enc_layers = 2\nmodel = robustfill\nd_model = 102\n",
             "t.cfg:3: d_model must be a positive multiple of n_heads (d_model 102, n_heads 4)");
  expect_err("n_heads = 4\nd_model = 130\n",
             "t.cfg:2: d_model must be a positive multiple of n_heads (d_model 130, n_heads 4)");
  /* lp_model_cfg_check alone */
  lp_model_cfg c;
  lp_err e = {0};
  lp_model_cfg_default(&c, LP_MODEL_ROBUSTFILL);
  c.attn_dropout = -0.5f;
  CHECK(lp_model_cfg_check(&c, &e) == LP_EINVAL && has(e.msg, "attn_dropout must be in [0, 1)"),
        "check: %s", e.msg);
  lp_model_cfg_default(&c, LP_MODEL_ROBUSTFILL);
  c.kind = 7;
  CHECK(lp_model_cfg_check(&c, &e) == LP_EINVAL && has(e.msg, "model must be"), "check kind: %s",
        e.msg);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
    free(s);
    s = NULL;
  }
  fclose(f);
  if (s) s[n] = 0;
  *len = (size_t)n;
  return s;
}

/* Every shipped config parses, passes the checks, and its file name says its
 * model (robustfill-*.cfg, lp-*.cfg); python configs have the corpus's
 * lengths; three RobustFill configs have the sizes their comments give. */
static void cfg_files(void) {
  static const char *files[] = {"robustfill-string.cfg", "robustfill-tiny.cfg",
                                "robustfill-string-1h.cfg"};
  DIR *dir = opendir(models_dir);
  CHECK(dir != NULL, "cannot open %s", models_dir);
  if (!dir) return;
  int seen = 0, named = 0;
  for (struct dirent *de; (de = readdir(dir)) != NULL;) {
    size_t nl = strlen(de->d_name);
    if (nl < 5 || strcmp(de->d_name + nl - 4, ".cfg") != 0) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", models_dir, de->d_name);
    size_t n;
    char *s = slurp(path, &n);
    CHECK(s != NULL, "cannot read %s", path);
    if (!s) continue;
    lp_model_cfg c;
    lp_err e = {0};
    lp_model_cfg_default(&c, LP_MODEL_LP);
    CHECK(lp_model_cfg_parse(&c, s, n, path, &e) == LP_OK, "%s", e.msg);
    free(s);
    CHECK(lp_model_cfg_check(&c, &e) == LP_OK, "%s: %s", path, e.msg);
    const int lp = strncmp(de->d_name, "lp-", 3) == 0;
    const int lstm = strncmp(de->d_name, "robustfill-lstm-", 16) == 0;
    const int ae = strncmp(de->d_name, "latent-ae-", 10) == 0;
    const int vae = strncmp(de->d_name, "latent-vae-", 11) == 0;
    CHECK(lp || ae || vae || strncmp(de->d_name, "robustfill-", 11) == 0,
          "%s: name starts robustfill-, lp-, latent-ae- or latent-vae-", path);
    const int want = lp    ? LP_MODEL_LP
                     : ae  ? LP_MODEL_LATENT_AE
                     : vae ? LP_MODEL_LATENT_VAE
                     : lstm ? LP_MODEL_RF_LSTM
                            : LP_MODEL_ROBUSTFILL;
    if ((ae || vae) && strstr(de->d_name, "-string"))
      CHECK(c.d_model == 128 && c.d_ff == 512 && c.n_heads == 4 && c.n_enc_layers == 3 &&
                c.n_dec_layers == 3 && c.latent_l == 2,
            "%s: sized like lp-string.cfg", path);
    CHECK(c.kind == want, "%s: model = %s", path, lp_model_kind_name(want));
    if (lstm && strstr(de->d_name, "-string"))
      CHECK(c.d_model == 128 && c.d_ff == 512, "%s: the paper's embedding and hidden sizes", path);
    if (strstr(de->d_name, "-python"))
      CHECK(c.max_program_len == 151 && c.max_spec_len == 256,
            "%s: python lengths (150 tokens + EOS, docstrings cut at 256)", path);
    for (size_t i = 0; i < 3; i++) {
      if (strcmp(de->d_name, files[i]) != 0) continue;
      named++;
      if (i != 1)
        CHECK(c.d_model == 128 && c.d_ff == 512 && c.n_heads == 4 && c.n_enc_layers == 3 &&
                  c.n_dec_layers == 3,
              "%s: the paper's architecture", path);
      else
        CHECK(c.d_model <= 64 && c.batch_size <= 8 && c.max_spec_len >= 100,
              "%s: tiny (and string tasks fit)", path);
    }
    seen++;
  }
  closedir(dir);
  CHECK(named == 3, "%d of the 3 named configs found in %s", named, models_dir);
  CHECK(seen >= 10, "%d configs in %s, expected at least 10", seen, models_dir);
}

/* ---------------------------------------------------------------------- */
/* Checkpoints                                                             */

static uint64_t rs = 0x1234567;
static float frand(void) {
  rs = rs * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rs >> 40) & 0xFFFFFF) / 16777216.0f - 0.5f;
}

typedef struct sample {
  lp_layout *L;
  float *p, *m, *v, *st;
  lp_ckpt c;
  lp_buf conf;
} sample;

static void sample_make(sample *s) {
  memset(s, 0, sizeof *s);
  s->L = lp_layout_new();
  int sh1[2] = {3, 5}, sh2[1] = {7}, sh3[3] = {2, 2, 3};
  lp_layout_add(s->L, "emb.table", 2, sh1, LP_INIT_NORMAL, 1.0f, NULL);
  lp_layout_add(s->L, "dec.block0.ln1.scale", 1, sh2, LP_INIT_ONES, 1.0f, NULL);
  lp_layout_add(s->L, "conv.w", 3, sh3, LP_INIT_NORMAL, 1.0f, NULL);
  size_t n = lp_layout_numel(s->L);
  s->p = malloc(n * 4);
  s->m = malloc(n * 4);
  s->v = malloc(n * 4);
  s->st = malloc(5 * 4);
  for (size_t i = 0; i < n; i++) {
    s->p[i] = frand();
    s->m[i] = frand() * 1e-3f;
    s->v[i] = frand() * frand() * 1e-6f;
  }
  s->p[0] = -0.0f;
  s->p[1] = 1e-40f; /* a subnormal survives */
  for (int i = 0; i < 5; i++) s->st[i] = frand();
  lp_model_cfg cfg;
  lp_model_cfg_default(&cfg, LP_MODEL_LP);
  lp_model_cfg_to_text(&cfg, &s->conf);
  lp_ckpt *c = &s->c;
  c->version = LP_CKPT_VERSION;
  c->config_text = s->conf.data;
  snprintf(c->domain.name, sizeof c->domain.name, "string");
  c->domain.vocab_fp = 0xfeedfacecafebeefull;
  c->domain.n_parts = 2;
  c->domain.spec = (lp_vocab_info){85, 0, -1, -1, 84};
  c->domain.prog = (lp_vocab_info){312, 0, 1, 2, -1};
  c->layout = s->L;
  c->pos = (lp_train_pos){.step = 1234, .rng_state = 0xdeadbeef12345678ull, .init_seed = 42,
                          .data_kind = LP_DATA_GENERATED, .data_seed = 77, .next_task = 39488,
                          .seconds = 12.5, .gen_min_size = 1, .gen_max_size = 10,
                          .gen_n_examples = 4, .hist_n = 3, .hist_loss = {2.5, 2.25, 2.0},
                          .hist_acc = {0.1, 0.2, 0.3}, .win_n = 2,
                          .win = {4.25, 0.5, 1.5, 4.25, 0, 0, 0, 2}};
  c->n_params = n;
  c->params = s->p;
  c->adam_t = 1234;
  c->n_adam = n;
  c->adam_m = s->m;
  c->adam_v = s->v;
  c->n_state = 5;
  c->state = s->st;
  c->metadata = "{\"argv\": [\"lpsynth\", \"train\"]}";
}

static void sample_free(sample *s) {
  lp_layout_free(s->L);
  free(s->p);
  free(s->m);
  free(s->v);
  free(s->st);
  lp_buf_free(&s->conf);
}

static int write_bytes(const char *path, const void *d, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(d, 1, n, f) == n;
  return fclose(f) == 0 && ok ? 0 : -1;
}

static void ckpt_roundtrip(void) {
  sample s;
  sample_make(&s);
  lp_err e = {0};
  const char *path = tmp("a.ckpt");
  CHECK(lp_ckpt_write(path, &s.c, &e) == LP_OK, "write: %s", e.msg);
  lp_ckpt r;
  CHECK(lp_ckpt_read(path, 0, &r, &e) == LP_OK, "read: %s", e.msg);
  size_t n = s.c.n_params;
  CHECK(r.version == LP_CKPT_VERSION, "version");
  CHECK(r.config_text && !strcmp(r.config_text, s.c.config_text), "config text");
  CHECK(!memcmp(&r.domain, &s.c.domain, sizeof r.domain), "domain");
  CHECK(pos_eq(&r.pos, &s.c.pos), "position");
  CHECK(r.n_params == n && !memcmp(r.params, s.p, n * 4), "params bitwise");
  CHECK(r.adam_t == 1234 && r.n_adam == n && !memcmp(r.adam_m, s.m, n * 4) &&
            !memcmp(r.adam_v, s.v, n * 4),
        "adam bitwise");
  CHECK(r.n_state == 5 && !memcmp(r.state, s.st, 20), "state");
  CHECK(r.metadata && !strcmp(r.metadata, s.c.metadata), "metadata");
  CHECK(lp_ckpt_check_layout(r.layout, s.L, path, &e) == LP_OK, "layout: %s", e.msg);
  CHECK(lp_ckpt_check_domain(&r, path, &s.c.domain, &e) == LP_OK, "domain: %s", e.msg);
  lp_ckpt_free(&r);
  /* info only: no arrays, same metadata */
  CHECK(lp_ckpt_read(path, LP_CKPT_INFO_ONLY, &r, &e) == LP_OK, "info: %s", e.msg);
  CHECK(r.params == NULL && r.adam_m == NULL && r.n_params == n && r.pos.step == 1234 &&
            !strcmp(r.domain.name, "string") && r.file_size > 0,
        "info fields");
  lp_ckpt_free(&r);
  /* encoding is deterministic: same bytes twice */
  unsigned char *d1 = NULL, *d2 = NULL;
  size_t l1 = 0, l2 = 0;
  CHECK(lp_ckpt_encode(&s.c, &d1, &l1, &e) == LP_OK && lp_ckpt_encode(&s.c, &d2, &l2, &e) == 0,
        "encode");
  CHECK(l1 == l2 && !memcmp(d1, d2, l1), "deterministic bytes");
  CHECK(!memcmp(d1, "LPSYNCKP", 8) && d1[8] == 1 && d1[9] == 0, "magic + LE version");
  /* no optimiser state, no model state, empty metadata */
  s.c.n_adam = 0;
  s.c.adam_m = s.c.adam_v = NULL;
  s.c.n_state = 0;
  s.c.state = NULL;
  s.c.metadata = NULL;
  CHECK(lp_ckpt_write(path, &s.c, &e) == LP_OK, "write bare: %s", e.msg);
  CHECK(lp_ckpt_read(path, 0, &r, &e) == LP_OK, "read bare: %s", e.msg);
  CHECK(r.n_adam == 0 && r.adam_m == NULL && r.n_state == 0 && r.metadata && !r.metadata[0],
        "bare fields");
  lp_ckpt_free(&r);
  /* no temp file left beside it */
  char tmpname[300];
  snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
  CHECK(access(tmpname, F_OK) != 0, "temp file left: %s", tmpname);
  /* the encoder refuses inconsistent input */
  s.c.n_params = 3;
  CHECK(lp_ckpt_write(path, &s.c, &e) == LP_EINVAL && has(e.msg, path), "bad n_params: %s",
        e.msg);
  free(d1);
  free(d2);
  sample_free(&s);
}

static void expect_refused(const char *path, const unsigned char *d, size_t n, int code,
                           const char *want1, const char *want2) {
  lp_err e = {0};
  lp_ckpt r;
  CHECK(write_bytes(path, d, n) == 0, "write %s", path);
  int rc = lp_ckpt_read(path, 0, &r, &e);
  CHECK(rc == code, "%s: rc %d, want %d (%s)", want1, rc, code, e.msg);
  CHECK(has(e.msg, path), "message names the file: %s", e.msg);
  CHECK(has(e.msg, want1), "message \"%s\" lacks \"%s\"", e.msg, want1);
  if (want2) CHECK(has(e.msg, want2), "message \"%s\" lacks \"%s\"", e.msg, want2);
  if (rc == LP_OK) lp_ckpt_free(&r);
  /* info reads refuse the same way */
  rc = lp_ckpt_read(path, LP_CKPT_INFO_ONLY, &r, &e);
  CHECK(rc == code && has(e.msg, want1), "info: %s", e.msg);
  if (rc == LP_OK) lp_ckpt_free(&r);
}

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static void ckpt_refusals(void) {
  sample s;
  sample_make(&s);
  lp_err e = {0};
  unsigned char *d = NULL;
  size_t n = 0;
  CHECK(lp_ckpt_encode(&s.c, &d, &n, &e) == LP_OK, "encode: %s", e.msg);
  if (!d) {
    sample_free(&s);
    return;
  }
  unsigned char *x = malloc(n);
  const char *path = tmp("bad.ckpt");
  /* truncated, at several places */
  size_t cuts[] = {3, 8, 20, 27, 28, 100, n / 2, n - 4, n - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
    expect_refused(path, d, cuts[i], LP_EINVAL, "truncated", NULL);
  /* empty file */
  expect_refused(path, d, 0, LP_EINVAL, "not an lpsynth checkpoint", NULL);
  /* a flipped byte anywhere after the header: checksum */
  size_t flips[] = {30, n / 3, n / 2, n - 10, n - 2};
  for (size_t i = 0; i < sizeof flips / sizeof *flips; i++) {
    memcpy(x, d, n);
    x[flips[i]] ^= 0x10;
    expect_refused(path, x, n, LP_EINVAL, "checksum mismatch", "corrupted");
  }
  /* bad magic */
  memcpy(x, d, n);
  x[3] = 'X';
  expect_refused(path, x, n, LP_EINVAL, "not an lpsynth checkpoint", "bad magic");
  expect_refused(path, (const unsigned char *)"{\"program\": 1}\n", 15, LP_EINVAL,
                 "not an lpsynth checkpoint", NULL);
  /* another format version (both named), before the checksum is looked at */
  memcpy(x, d, n);
  put_u32(x + 8, 3);
  expect_refused(path, x, n, LP_EABI, "checkpoint format version 3",
                 "this build reads versions 1 and 2");
  /* extra bytes at the end */
  unsigned char *y = malloc(n + 3);
  memcpy(y, d, n);
  memset(y + n, 0, 3);
  expect_refused(path, y, n + 3, LP_EINVAL, "corrupted", "header says");
  free(y);
  /* a structurally bad file with a correct checksum: malformed */
  memcpy(x, d, n);
  memcpy(x + 24, "CONX", 4); /* CONF renamed: section missing */
  put_u32(x + n - 4, lp_crc32c(0, x, n - 4));
  expect_refused(path, x, n, LP_EINVAL, "section CONF is missing", NULL);
  /* missing file */
  lp_ckpt r;
  CHECK(lp_ckpt_read(tmp("nope.ckpt"), 0, &r, &e) == LP_EIO && has(e.msg, "nope.ckpt") &&
            has(e.msg, "cannot open"),
        "missing: %s", e.msg);
  /* other domain / other vocabularies */
  CHECK(lp_ckpt_decode(d, n, "mem.ckpt", 0, &r, &e) == LP_OK, "decode: %s", e.msg);
  lp_ckpt_domain want = s.c.domain;
  snprintf(want.name, sizeof want.name, "python");
  CHECK(lp_ckpt_check_domain(&r, "mem.ckpt", &want, &e) == LP_EINVAL &&
            has(e.msg, "mem.ckpt: the checkpoint is for domain \"string\", not \"python\""),
        "other domain: %s", e.msg);
  want = s.c.domain;
  want.vocab_fp ^= 1;
  CHECK(lp_ckpt_check_domain(&r, "mem.ckpt", &want, &e) == LP_EINVAL &&
            has(e.msg, "mem.ckpt: vocabulary fingerprint mismatch") &&
            has(e.msg, "feedfacecafebeef"),
        "other fingerprint: %s", e.msg);
  want = s.c.domain;
  want.prog.size = 313;
  CHECK(lp_ckpt_check_domain(&r, "mem.ckpt", &want, &e) == LP_EINVAL &&
            has(e.msg, "vocabulary fingerprint mismatch") && has(e.msg, "program 312") &&
            has(e.msg, "program 313"),
        "other vocab size: %s", e.msg);
  CHECK(lp_ckpt_check_domain(&r, "mem.ckpt", &s.c.domain, &e) == LP_OK, "same domain: %s",
        e.msg);
  lp_ckpt_free(&r);
  free(x);
  free(d);
  sample_free(&s);
}

/* ---------------------------------------------------------------------- */
/* 16-bit parameter storage (PR16, ckpt strip --half)                      */

/* x rounded to nearest, ties to even, in double arithmetic, to a binary
 * format of `mant` fraction bits whose smallest normal exponent is emin: the
 * value a 16-bit file must give back. fp16: (10, -14); bf16: (7, -126). */
static float ref_round(float x, int mant, int emin) {
  if (x == 0.0f) return x;
  int e;
  frexp(x, &e); /* |x| = m 2^e, m in [0.5, 1) */
  const double q = ldexp(1.0, (e - 1 < emin ? emin : e - 1) - mant);
  return (float)(nearbyint((double)x / q) * q);
}

static float ref_half(float x, int prec) {
  return prec == LP_CKPT_FP16 ? ref_round(x, 10, -14) : ref_round(x, 7, -126);
}

/* Values whose rounding is known: {x, fp16, bf16}. Ties to even, fp16's
 * subnormals and the carry into the next binade among them. */
static const float k_half_cases[][3] = {
    {-0.0f, -0.0f, -0.0f},
    {1e-40f, 0.0f, 0x1p-133f},                  /* a float subnormal */
    {1.0f + 0x1p-11f, 1.0f, 1.0f},              /* fp16 tie, to even (down) */
    {1.0f + 3 * 0x1p-11f, 1.0f + 0x1p-9f, 1.0f},/* fp16 tie, to even (up) */
    {1.0f + 0x1p-8f, 1.0f + 0x1p-8f, 1.0f},     /* bf16 tie, down */
    {1.0f + 3 * 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-6f}, /* bf16 tie, up */
    {0x1p-25f, 0.0f, 0x1p-25f},                 /* fp16: half the smallest subnormal */
    {3 * 0x1p-25f, 0x1p-23f, 3 * 0x1p-25f},     /* fp16 subnormal tie, up */
    {0x1p-24f, 0x1p-24f, 0x1p-24f},             /* fp16's smallest subnormal */
    {0x1p-14f - 0x1p-25f, 0x1p-14f, 0x1p-14f},  /* subnormal to the smallest normal */
    {2047.5f, 2048.0f, 2048.0f},                /* tie into the next binade */
    {65504.0f, 65504.0f, 65536.0f},             /* fp16's largest */
    {-65504.0f, -65504.0f, -65536.0f},
    {0.1f, 0.0999755859375f, 0.10009765625f},
};
#define N_HALF_CASES (sizeof k_half_cases / sizeof k_half_cases[0])

/* The sample without its optimiser state and with a 64 x 64 tensor "big.w"
 * more: values of every magnitude fp16 holds (2^-30 .. 2^15), then
 * k_half_cases. Returns where big.w starts. */
static size_t half_sample(sample *s) {
  sample_make(s);
  int sh[2] = {64, 64};
  lp_layout_add(s->L, "big.w", 2, sh, LP_INIT_NORMAL, 1.0f, NULL);
  const size_t n = lp_layout_numel(s->L), at = n - 64 * 64;
  s->p = realloc(s->p, n * 4);
  for (size_t i = 0; i < n; i++) s->p[i] = ldexpf(frand(), (int)(i % 46) - 30);
  for (size_t i = 0; i < N_HALF_CASES; i++) s->p[at + i] = k_half_cases[i][0];
  s->c.n_params = n;
  s->c.params = s->p;
  s->c.n_adam = 0;
  s->c.adam_m = s->c.adam_v = NULL;
  return at;
}

static void ckpt_half(void) {
  sample s;
  const size_t at = half_sample(&s), n = s.c.n_params;
  lp_err e = {0};
  /* the fp32 stripped file, for the sizes */
  unsigned char *d32 = NULL;
  size_t n32 = 0;
  CHECK(lp_ckpt_encode(&s.c, &d32, &n32, &e) == LP_OK, "encode fp32: %s", e.msg);
  CHECK(n32 > 24 && d32[8] == LP_CKPT_VERSION, "fp32: version 1");
  for (int prec = LP_CKPT_FP16; prec <= LP_CKPT_BF16; prec++) {
    const char *pn = lp_ckpt_prec_name(prec);
    const char *path = tmp(prec == LP_CKPT_FP16 ? "h16.ckpt" : "b16.ckpt");
    s.c.param_prec = prec;
    CHECK(lp_ckpt_write(path, &s.c, &e) == LP_OK, "%s write: %s", pn, e.msg);
    lp_ckpt r;
    if (lp_ckpt_read(path, 0, &r, &e) != LP_OK) {
      CHECK(0, "%s read: %s", pn, e.msg);
      continue;
    }
    CHECK(r.version == LP_CKPT_VERSION_HALF && r.param_prec == prec, "%s: version %u, prec %d",
          pn, r.version, r.param_prec);
    /* PR16 (16 + 2n bytes) instead of PARM (8 + 4n): half the parameters' bytes */
    CHECK(r.file_size + 2 * n - 8 == n32, "%s: %zu bytes, fp32 %zu, %zu parameters", pn,
          r.file_size, n32, n);
    /* the values: each the reference rounding, bit for bit */
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
      const float want = ref_half(s.p[i], prec);
      if (memcmp(&r.params[i], &want, 4) && !bad++) first = i;
    }
    CHECK(bad == 0, "%s: %zu of %zu values not rounded to nearest even, first %zu: %.9g -> %.9g "
          "(want %.9g)", pn, bad, n, first, (double)s.p[first], (double)r.params[first],
          (double)ref_half(s.p[first], prec));
    for (size_t i = 0; i < N_HALF_CASES; i++) { /* and the reference is right on them */
      const float want = k_half_cases[i][prec], ref = ref_half(k_half_cases[i][0], prec);
      CHECK(!memcmp(&r.params[at + i], &want, 4) && !memcmp(&ref, &want, 4),
            "%s: case %zu: %.9g -> %.9g (reference %.9g), want %.9g", pn, i,
            (double)k_half_cases[i][0], (double)r.params[at + i], (double)ref, (double)want);
    }
    /* everything else exactly as it was */
    CHECK(r.config_text && !strcmp(r.config_text, s.c.config_text), "%s: config", pn);
    CHECK(!memcmp(&r.domain, &s.c.domain, sizeof r.domain), "%s: domain", pn);
    CHECK(pos_eq(&r.pos, &s.c.pos), "%s: position", pn);
    CHECK(lp_ckpt_check_layout(r.layout, s.L, path, &e) == LP_OK, "%s: layout: %s", pn, e.msg);
    CHECK(r.n_state == 5 && !memcmp(r.state, s.st, 20), "%s: model state bitwise", pn);
    CHECK(r.adam_t == 1234 && r.n_adam == 0, "%s: no optimiser state", pn);
    CHECK(r.metadata && !strcmp(r.metadata, s.c.metadata), "%s: metadata", pn);
    /* the file written again from what was read: the same bytes (the widened
     * values round to themselves) */
    unsigned char *d1 = NULL, *d2 = NULL;
    size_t l1 = 0, l2 = 0;
    CHECK(lp_ckpt_encode(&s.c, &d1, &l1, &e) == LP_OK && lp_ckpt_encode(&r, &d2, &l2, &e) == 0,
          "%s: encode again: %s", pn, e.msg);
    CHECK(d1 && d2 && l1 == l2 && !memcmp(d1, d2, l1), "%s: re-encoded bytes differ", pn);
    CHECK(d1 && d1[8] == LP_CKPT_VERSION_HALF, "%s: version 2 in the header", pn);
    free(d1);
    free(d2);
    lp_ckpt_free(&r);
    /* info only: the storage, no arrays */
    CHECK(lp_ckpt_read(path, LP_CKPT_INFO_ONLY, &r, &e) == LP_OK, "%s info: %s", pn, e.msg);
    CHECK(r.params == NULL && r.param_prec == prec && r.n_params == n, "%s: info fields", pn);
    lp_ckpt_free(&r);
  }
  free(d32);

  /* values the storage cannot hold are refused, never saturated, and nothing
   * is written */
  const char *path = tmp("never.ckpt");
  s.c.param_prec = LP_CKPT_FP16;
  s.p[at + 40] = 70000.0f;
  s.p[at + 41] = -100000.0f;
  CHECK(lp_ckpt_write(path, &s.c, &e) == LP_EINVAL && has(e.msg, path) &&
            has(e.msg, "beyond fp16's range (|x| <= 65504): the largest is -100000") &&
            has(e.msg, "tensor \"big.w\", element 41"),
        "fp16 over 65504: %s", e.msg);
  CHECK(access(path, F_OK) != 0, "a refused file was written");
  s.c.param_prec = LP_CKPT_BF16; /* bf16 has fp32's range */
  CHECK(lp_ckpt_write(path, &s.c, &e) == LP_OK, "bf16 of -100000: %s", e.msg);
  s.p[at + 40] = s.p[at + 41] = 1.0f;
  s.c.param_prec = LP_CKPT_FP16;
  s.p[at + 42] = nextafterf(65504.0f, 1e9f); /* just over: refused */
  CHECK(lp_ckpt_write(path, &s.c, &e) == LP_EINVAL && has(e.msg, "the largest is 65504.0039"),
        "fp16 just over 65504: %s", e.msg);
  s.p[at + 42] = 3.4028235e38f; /* FLT_MAX rounds to bf16 infinity */
  s.c.param_prec = LP_CKPT_BF16;
  CHECK(lp_ckpt_write(path, &s.c, &e) == LP_EINVAL && has(e.msg, "beyond bf16's range") &&
            has(e.msg, "3.40282347e+38"),
        "bf16 FLT_MAX: %s", e.msg);
  s.p[at + 42] = 1.0f;
  for (int prec = LP_CKPT_FP16; prec <= LP_CKPT_BF16; prec++) {
    s.c.param_prec = prec;
    s.p[3] = NAN;
    CHECK(lp_ckpt_write(path, &s.c, &e) == LP_EINVAL &&
              has(e.msg, "parameter 3 (tensor \"emb.table\", element 3) is NaN"),
          "%s NaN: %s", lp_ckpt_prec_name(prec), e.msg);
    s.p[3] = -INFINITY;
    CHECK(lp_ckpt_write(path, &s.c, &e) == LP_EINVAL && has(e.msg, "is infinite"),
          "%s infinity: %s", lp_ckpt_prec_name(prec), e.msg);
    s.p[3] = 0.5f;
  }
  /* 16-bit parameters are for stripped checkpoints */
  s.c.n_adam = n;
  s.c.adam_m = s.c.adam_v = s.p;
  CHECK(lp_ckpt_write(path, &s.c, &e) == LP_EINVAL && has(e.msg, "optimiser state"),
        "half with Adam: %s", e.msg);
  s.c.n_adam = 0;
  s.c.param_prec = 7;
  CHECK(lp_ckpt_write(path, &s.c, &e) == LP_EINVAL && has(e.msg, "unknown parameter storage 7"),
        "storage 7: %s", e.msg);
  sample_free(&s);
}

/* Where section tag's payload starts in a file (0: not found), its length in *len. */
static size_t find_section(const unsigned char *d, size_t n, const char *tag, size_t *len) {
  size_t pos = 24;
  while (pos + 16 <= n - 4) {
    uint64_t k = 0;
    for (int b = 7; b >= 0; b--) k = k << 8 | d[pos + 8 + b];
    if (!memcmp(d + pos, tag, 4)) {
      *len = (size_t)k;
      return pos + 16;
    }
    pos += 16 + (size_t)k;
  }
  return 0;
}

/* The checksum of a file changed on purpose, made right again. */
static void reseal(unsigned char *x, size_t n) { put_u32(x + n - 4, lp_crc32c(0, x, n - 4)); }

static void ckpt_half_refusals(void) {
  sample s;
  half_sample(&s);
  lp_err e = {0};
  unsigned char *d = NULL;
  size_t n = 0, plen = 0;
  s.c.param_prec = LP_CKPT_FP16;
  CHECK(lp_ckpt_encode(&s.c, &d, &n, &e) == LP_OK, "encode: %s", e.msg);
  const size_t p16 = d ? find_section(d, n, "PR16", &plen) : 0;
  CHECK(p16 > 0 && plen == 16 + 2 * s.c.n_params, "PR16 at %zu, %zu bytes", p16, plen);
  if (!p16) {
    free(d);
    sample_free(&s);
    return;
  }
  unsigned char *x = malloc(n);
  const char *path = tmp("badh.ckpt");
  /* truncated inside the 16-bit values */
  size_t cuts[] = {p16 + 8, p16 + 20, p16 + plen / 2, p16 + plen - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
    expect_refused(path, d, cuts[i], LP_EINVAL, "truncated", NULL);
  /* a flipped bit in a value, in the storage field: checksum */
  size_t flips[] = {p16 + 8, p16 + 17, p16 + plen - 1};
  for (size_t i = 0; i < sizeof flips / sizeof *flips; i++) {
    memcpy(x, d, n);
    x[flips[i]] ^= 0x01;
    expect_refused(path, x, n, LP_EINVAL, "checksum mismatch", "corrupted");
  }
  /* with a correct checksum: a count that disagrees with the section's size */
  memcpy(x, d, n);
  put_u32(x + p16, (uint32_t)s.c.n_params + 1);
  reseal(x, n);
  expect_refused(path, x, n, LP_EINVAL, "malformed checkpoint",
                 "16-bit parameter count does not match the section size");
  /* a section one byte short (odd length) */
  memcpy(x, d, n);
  put_u32(x + p16 - 8, (uint32_t)plen - 1);
  reseal(x, n);
  expect_refused(path, x, n, LP_EINVAL, "malformed checkpoint",
                 "16-bit parameter count does not match the section size");
  /* an unknown storage */
  memcpy(x, d, n);
  put_u32(x + p16 + 8, 3);
  reseal(x, n);
  expect_refused(path, x, n, LP_EINVAL, "unknown 16-bit parameter storage 3", NULL);
  /* NaN and infinity, which no writer stores: fp16 0x7E00, 0xFC00; bf16 0x7F80 */
  const struct { int storage; unsigned char lo, hi; } nf[] = {
      {LP_CKPT_FP16, 0x00, 0x7E}, {LP_CKPT_FP16, 0x00, 0xFC}, {LP_CKPT_BF16, 0x80, 0x7F}};
  for (size_t i = 0; i < sizeof nf / sizeof *nf; i++) {
    memcpy(x, d, n);
    put_u32(x + p16 + 8, (uint32_t)nf[i].storage);
    x[p16 + 16 + 2 * 5] = nf[i].lo;
    x[p16 + 16 + 2 * 5 + 1] = nf[i].hi;
    reseal(x, n);
    expect_refused(path, x, n, LP_EINVAL, "16-bit parameter 5 is NaN or infinite", NULL);
  }
  /* the parameters in the section the version does not name */
  memcpy(x, d, n);
  put_u32(x + 8, LP_CKPT_VERSION);
  reseal(x, n);
  expect_refused(path, x, n, LP_EINVAL, "section PR16 in a version-1 file", NULL);
  memcpy(x, d, n);
  memcpy(x + p16 - 16, "PR1X", 4);
  reseal(x, n);
  expect_refused(path, x, n, LP_EINVAL, "section PR16 is missing", NULL);
  unsigned char *d32 = NULL;
  size_t n32 = 0;
  s.c.param_prec = LP_CKPT_FP32;
  CHECK(lp_ckpt_encode(&s.c, &d32, &n32, &e) == LP_OK, "encode fp32: %s", e.msg);
  if (d32) {
    put_u32(d32 + 8, LP_CKPT_VERSION_HALF);
    reseal(d32, n32);
    expect_refused(path, d32, n32, LP_EINVAL, "section PARM in a version-2 file", NULL);
  }
  free(d32);
  free(x);
  free(d);
  sample_free(&s);
}

static void ckpt_layout(void) {
  lp_err e = {0};
  lp_layout *a = lp_layout_new(), *b = lp_layout_new(), *c = lp_layout_new(),
            *d = lp_layout_new();
  int s1[2] = {4, 8}, s2[1] = {8}, s3[2] = {4, 9};
  lp_layout_add(a, "x.w", 2, s1, 0, 0, NULL);
  lp_layout_add(a, "x.b", 1, s2, 0, 0, NULL);
  lp_layout_add(b, "x.w", 2, s1, 0, 0, NULL);
  lp_layout_add(b, "x.bias", 1, s2, 0, 0, NULL);
  lp_layout_add(c, "x.w", 2, s3, 0, 0, NULL);
  lp_layout_add(c, "x.b", 1, s2, 0, 0, NULL);
  lp_layout_add(d, "x.w", 2, s1, 0, 0, NULL);
  CHECK(lp_ckpt_check_layout(a, a, "f.ckpt", &e) == LP_OK, "same: %s", e.msg);
  CHECK(lp_ckpt_check_layout(a, b, "f.ckpt", &e) == LP_EINVAL &&
            has(e.msg, "f.ckpt: parameter layout mismatch at tensor 1") &&
            has(e.msg, "\"x.b\" [8]") && has(e.msg, "\"x.bias\" [8]"),
        "name: %s", e.msg);
  CHECK(lp_ckpt_check_layout(a, c, "f.ckpt", &e) == LP_EINVAL &&
            has(e.msg, "tensor 0") && has(e.msg, "\"x.w\" [4,8]") && has(e.msg, "\"x.w\" [4,9]"),
        "shape: %s", e.msg);
  CHECK(lp_ckpt_check_layout(a, d, "f.ckpt", &e) == LP_EINVAL && has(e.msg, "tensor 1") &&
            has(e.msg, "no tensor") && has(e.msg, "(2 vs 1 tensors)"),
        "count: %s", e.msg);
  lp_layout_free(a);
  lp_layout_free(b);
  lp_layout_free(c);
  lp_layout_free(d);
}

static void fingerprint(void) {
  lp_err e = {0};
  lp_domain *s = lp_domain_open(string_so, NULL, &e);
  CHECK(s != NULL, "open %s: %s", string_so, e.msg);
  lp_domain *s2 = lp_domain_open(string_so, NULL, &e);
  lp_domain *t = lp_domain_open(toy_so, NULL, &e);
  CHECK(t != NULL, "open %s: %s", toy_so, e.msg);
  if (!s || !s2 || !t) return;
  uint64_t a = 0, b = 0, c = 0;
  CHECK(lp_vocab_fingerprint(s, &a, &e) == LP_OK, "%s", e.msg);
  CHECK(lp_vocab_fingerprint(s2, &b, &e) == LP_OK, "%s", e.msg);
  CHECK(lp_vocab_fingerprint(t, &c, &e) == LP_OK, "%s", e.msg);
  CHECK(a == b, "stable fingerprint");
  CHECK(a != c, "string and toy differ");
  lp_ckpt_domain d;
  CHECK(lp_ckpt_domain_of(s, &d, &e) == LP_OK, "%s", e.msg);
  CHECK(!strcmp(d.name, "string") && d.vocab_fp == a && d.n_parts == 2 && d.prog.size == 312 &&
            d.prog.eos == 2 && d.spec.pad == 0,
        "domain_of string");
  lp_domain_free(s);
  lp_domain_free(s2);
  lp_domain_free(t);
}

static void crc(void) {
  /* the standard check value of CRC-32C */
  CHECK(lp_crc32c(0, "123456789", 9) == 0xE3069283u, "crc32c(123456789) = %08x",
        lp_crc32c(0, "123456789", 9));
  /* chunked == whole */
  unsigned char buf[1000];
  for (int i = 0; i < 1000; i++) buf[i] = (unsigned char)(i * 7 + 3);
  uint32_t w = lp_crc32c(0, buf, 1000);
  uint32_t c = lp_crc32c(0, buf, 13);
  c = lp_crc32c(c, buf + 13, 500);
  c = lp_crc32c(c, buf + 513, 487);
  CHECK(w == c, "chunked crc");
  CHECK(lp_crc32c(0, "", 0) == 0, "empty crc");
}

static const test_case k_cases[] = {
    {"cfg_defaults", cfg_defaults},     {"cfg_roundtrip", cfg_roundtrip},
    {"cfg_errors", cfg_errors},         {"cfg_files", cfg_files},
    {"ckpt_roundtrip", ckpt_roundtrip}, {"ckpt_refusals", ckpt_refusals},
    {"ckpt_half", ckpt_half},           {"ckpt_half_refusals", ckpt_half_refusals},
    {"ckpt_layout", ckpt_layout},       {"fingerprint", fingerprint},
    {"crc", crc},
};

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s CASE [STRING.so TOY.so MODELS_DIR]\n", argv[0]);
    return 2;
  }
  string_so = argc > 2 ? argv[2] : "string";
  toy_so = argc > 3 ? argv[3] : "toy";
  models_dir = argc > 4 ? argv[4] : "models";
  return run_case(argv[1], k_cases, sizeof k_cases / sizeof k_cases[0], "/tmp/lptrain.XXXXXX");
}

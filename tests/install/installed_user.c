/* An out-of-tree program that uses the INSTALLED lpsynth libraries, built
 * with nothing of the source tree visible (tests/install/libs_installed.sh):
 *
 *   cc -DLP_ENGINE_ONLY $(pkg-config --cflags lpsynth-engine) installed_user.c \
 *      $(pkg-config --libs lpsynth-engine)        the engine alone
 *   cc $(pkg-config --cflags lpsynth-model) installed_user.c \
 *      $(pkg-config --libs lpsynth-model)         all three libraries
 *
 * It runs a little of each library and prints "ok: ..." (exit 0), or says
 * what failed (exit 1). With all three, argv[1] (optional) names a domain to
 * open through the runtime's plugin loader. */
#include <stdio.h>
#include <string.h>

#ifdef LP_ENGINE_ONLY
#include <lpsynth/engine.h>
#else
#include <lpsynth/lpsynth.h> /* the umbrella: every public header */
#endif

static int failures;
#define EXPECT(cond, what)                              \
  do {                                                  \
    if (!(cond)) {                                      \
      fprintf(stderr, "FAILED: %s (%s)\n", what, #cond); \
      failures++;                                       \
    }                                                   \
  } while (0)

/* The engine: a linear layer by hand, and one Adam step on a layout. */
static void use_engine(void) {
  const float x[2] = {1.0f, 2.0f}, W[4] = {1.0f, 2.0f, 3.0f, 4.0f}, b[2] = {0.5f, -1.0f};
  float y[2] = {0.0f, 0.0f};
  EXPECT(lp_linear_forward(y, x, W, b, 1, 2, 2) == LP_OK, "linear forward");
  EXPECT(y[0] == 7.5f && y[1] == 9.0f, "linear forward values"); /* [1,2] W + b */
  lp_layout *L = lp_layout_new();
  EXPECT(L != NULL, "layout");
  if (!L) return;
  const int shape[2] = {3, 4};
  size_t off = 99;
  EXPECT(lp_layout_add(L, "w", 2, shape, LP_INIT_NORMAL, 0.02f, &off) == LP_OK && off == 0,
         "layout add");
  float p[12], g[12];
  EXPECT(lp_layout_numel(L) == 12 && lp_layout_init_params(L, p, 7) == LP_OK, "init params");
  for (int i = 0; i < 12; i++) g[i] = 1.0f;
  lp_adam *opt = lp_adam_new(12, NULL);
  EXPECT(opt != NULL, "adam");
  const float before = p[0];
  if (opt) EXPECT(lp_adam_step(opt, p, g, 1e-3f, NULL) == LP_OK && p[0] < before, "adam step");
  lp_adam_free(opt);
  lp_layout_free(L);
}

#ifndef LP_ENGINE_ONLY
/* The model: a tiny RobustFill, its parameters laid out by the engine. */
static void use_model(void) {
  lp_model_cfg c;
  lp_model_cfg_default(&c, LP_MODEL_ROBUSTFILL);
  c.d_model = 8, c.d_ff = 16, c.n_heads = 2, c.n_enc_layers = 1, c.n_dec_layers = 1;
  c.max_spec_len = 8, c.max_program_len = 8;
  lp_err e = {0};
  EXPECT(lp_model_cfg_check(&c, &e) == LP_OK, e.msg);
  const lp_vocab_info v = {12, 0, 1, 2, 3};
  lp_model *m = lp_model_new(&c, &v, &v, 2, 1, &e);
  EXPECT(m != NULL, e.msg);
  if (!m) return;
  EXPECT(lp_model_num_params(m) > 0 &&
             lp_model_num_params(m) == lp_layout_numel(lp_model_layout(m)),
         "model parameters");
  lp_model_free(m);
}

/* The runtime: a JSONL record (jansson), BLEU, and a domain by name. */
static void use_runtime(const char *domain) {
  const char *line = "{\"program\": \"p\", \"inputs\": [\"a\"], \"outputs\": [\"b\"]}";
  lp_record r;
  memset(&r, 0, sizeof r);
  lp_err e = {0};
  EXPECT(lp_record_parse(line, strlen(line), &r, &e) == LP_OK && r.has_inputs &&
             r.inputs.len == 1,
         e.msg);
  lp_record_free(&r);
  EXPECT(lp_bleu_sentence("a b c d", 7, "a b c d", 7, LP_BLEU_TOK_CODE,
                          LP_BLEU_SMOOTH_NONE) == 1.0,
         "BLEU of a sentence with itself");
  if (!domain) return;
  lp_domain *d = lp_domain_open(domain, NULL, &e);
  EXPECT(d != NULL, e.msg);
  lp_vocab_info pv;
  if (d) EXPECT(lp_domain_program_vocab(d, &pv) == LP_OK && pv.size > 0, "program vocabulary");
  lp_domain_free(d);
}
#endif

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  use_engine();
#ifndef LP_ENGINE_ONLY
  use_model();
  use_runtime(argc > 1 ? argv[1] : NULL);
  const char *what = "engine, model and runtime";
#else
  const char *what = "engine";
#endif
  if (failures) return 1;
  printf("ok: the installed %s\n", what);
  return 0;
}

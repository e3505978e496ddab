/* One task line means the same thing to train, eval and synth: each reads a
 * line with lp_enc_task_read (lpsynth/task.h) and the options it passes
 * (core/model/train.c task_opts, cli/cmd_eval.c make_task, cli/cmd_synth.c
 * synth_task). Every line of the tables below is read as each of them reads
 * it - into a fresh task, and into one task reused line after line, as train
 * and eval do - and the readings must agree: the same error, or the same
 * spec ids, lengths, truncation, program ids and held-out examples; and they
 * must be the expected ones. tests/task/cli_same_errors.sh checks the verbs
 * themselves print the same FILE:LINE: message.
 *   test_task STRING.so FX_TEXT.so */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/check.h"
#include "lpsynth/task.h"


#define MAX_SPEC 8 /* the model's max_spec_len in these readings */

/* The readers: the options each caller passes. */
enum { TRAIN, EVAL_EXACT, EVAL_BLEU, SYNTH, N_READERS };
static const char *const reader_name[N_READERS] = {"train", "eval (exact)", "eval (bleu)",
                                                    "synth"};
static const lp_task_opts reader_opts[N_READERS] = {
    {MAX_SPEC, LP_TASK_NEED_PROGRAM, 0}, /* train: the config's max_spec_len */
    {MAX_SPEC, 0, 0},                    /* eval --metric exact */
    {MAX_SPEC, LP_TASK_NEED_PROGRAM, 0}, /* eval --metric bleu */
    {MAX_SPEC, 0, 0},                    /* synth --examples, with a model */
};

typedef struct reading {
  int rc;
  char msg[LP_ERR_MSG_MAX];
} reading;

typedef struct line_case {
  const char *line;
  const char *err;       /* the message every reader gives, or NULL: read fine */
  size_t n_examples, truncated, n_held;
  int has_prog;
} line_case;

/* Two readings agree: the same error, or the same task. */
static int same_task(const lp_enc_task *a, const lp_enc_task *b) {
  if (a->n_examples != b->n_examples || a->n_parts != b->n_parts ||
      a->truncated != b->truncated || a->n_held != b->n_held || a->has_prog != b->has_prog ||
      a->is_pair != b->is_pair || a->prog.len != b->prog.len || a->n_unknown != b->n_unknown)
    return 0;
  if (a->prog.len && memcmp(a->prog.data, b->prog.data, a->prog.len * sizeof *a->prog.data))
    return 0;
  for (size_t i = 0; i < a->n_examples * a->n_parts; i++)
    if (a->spec_len[i] != b->spec_len[i] || a->parts[i].len != b->parts[i].len ||
        (a->spec_len[i] && memcmp(a->spec[i], b->spec[i], a->spec_len[i] * sizeof(int32_t))))
      return 0;
  for (size_t i = 0; i < a->n_examples; i++)
    for (uint32_t p = 0; p < a->n_parts; p++)
      if (a->ex[i].len[p] != b->ex[i].len[p] ||
          memcmp(a->ex[i].part[p], b->ex[i].part[p], a->ex[i].len[p]))
        return 0;
  return 1;
}

static void run_cases(const char *domain_so, const line_case *cases, size_t n) {
  lp_err e = {0};
  lp_domain *d = lp_domain_open(domain_so, NULL, &e);
  CHECK(d, "open %s: %s", domain_so, e.msg);
  if (!d) return;
  lp_enc_task reused[N_READERS];
  memset(reused, 0, sizeof reused);
  for (size_t c = 0; c < n; c++) {
    const line_case *L = &cases[c];
    lp_record rec;
    memset(&rec, 0, sizeof rec);
    CHECK(lp_record_parse(L->line, strlen(L->line), &rec, &e) == 0, "parse %s: %s", L->line,
          e.msg);
    lp_enc_task fresh[N_READERS];
    reading r[N_READERS];
    memset(fresh, 0, sizeof fresh);
    for (int k = 0; k < N_READERS; k++) {
      lp_err ek = {0};
      r[k].rc = lp_enc_task_read(d, &rec, &reader_opts[k], &fresh[k], &ek);
      snprintf(r[k].msg, sizeof r[k].msg, "%s", ek.msg);
      lp_err er = {0};
      int rr = lp_enc_task_read(d, &rec, &reader_opts[k], &reused[k], &er);
      CHECK(rr == r[k].rc && !strcmp(er.msg, ek.msg) && (rr || same_task(&reused[k], &fresh[k])),
            "%s: %s: a reused task reads otherwise than a fresh one", reader_name[k], L->line);
    }
    for (int k = 0; k < N_READERS; k++) {
      if (L->err) {
        CHECK(r[k].rc != 0 && strstr(r[k].msg, L->err), "%s: %s: got \"%s\", want \"%s\"",
              reader_name[k], L->line, r[k].rc ? r[k].msg : "(no error)", L->err);
      } else {
        CHECK(r[k].rc == 0, "%s: %s: %s", reader_name[k], L->line, r[k].msg);
        if (r[k].rc) continue;
        CHECK(fresh[k].n_examples == L->n_examples && fresh[k].truncated == L->truncated &&
                  fresh[k].n_held == L->n_held && fresh[k].has_prog == L->has_prog,
              "%s: %s: %zu examples, %zu cut, %zu held, program %d", reader_name[k], L->line,
              fresh[k].n_examples, fresh[k].truncated, fresh[k].n_held, fresh[k].has_prog);
      }
      /* the same meaning for every reader */
      CHECK(r[k].rc == r[0].rc && !strcmp(r[k].msg, r[0].msg), "%s and %s disagree on %s: "
            "\"%s\" / \"%s\"", reader_name[0], reader_name[k], L->line, r[0].msg, r[k].msg);
      CHECK(r[k].rc || same_task(&fresh[k], &fresh[0]), "%s and %s read %s differently",
            reader_name[0], reader_name[k], L->line);
    }
    for (int k = 0; k < N_READERS; k++) lp_enc_task_free(&fresh[k]);
    lp_record_free(&rec);
  }
  for (int k = 0; k < N_READERS; k++) lp_enc_task_free(&reused[k]);
  lp_enc_task_free(&reused[0]); /* freeing a freed (zeroed) task is a no-op */
  lp_domain_free(d);
}

/* Input/output examples (the string domain). */
static const line_case io_cases[] = {
    {"{\"program\": \"GetUpto(' ')\", \"inputs\": [\"a b\"], \"outputs\": [\"a \"]}", NULL, 1, 0,
     0, 1},
    {"{\"tokens\": [4, 40, 2], \"program\": \"ConstStr('z')\", \"inputs\": [\"a\", \"b\"], "
     "\"outputs\": [\"z\", \"z\"], \"held_inputs\": [\"c\"], \"held_outputs\": [\"z\"]}",
     NULL, 2, 0, 1, 1},
    {"{\"program\": \"ConstStr('z')\", \"inputs\": [\"a\", \"b\"], \"outputs\": [\"z\"]}",
     "2 inputs but 1 outputs", 0, 0, 0, 0},
    {"{\"program\": \"ConstStr('z')\", \"inputs\": [\"abcdefghijkl\"], \"outputs\": [\"z\"]}",
     "input 1 has 12 tokens, more than the model's max_spec_len 8", 0, 0, 0, 0},
    {"{\"program\": \"ConstStr('z')\", \"inputs\": [\"a\"], \"outputs\": [\"abcdefghijkl\"]}",
     "output 1 has 12 tokens, more than the model's max_spec_len 8", 0, 0, 0, 0},
    {"{\"program\": \"Nope(\", \"inputs\": [\"a\"], \"outputs\": [\"b\"]}", "field \"program\": ",
     0, 0, 0, 0},
    {"{\"tokens\": [5, 9], \"inputs\": [\"a\"], \"outputs\": [\"b\"]}",
     "the program's tokens do not end with EOS", 0, 0, 0, 0},
    {"{\"tokens\": [5, 999, 2], \"inputs\": [\"a\"], \"outputs\": [\"b\"]}",
     "program token 2 is 999, outside the vocabulary", 0, 0, 0, 0},
    {"{\"program\": \"ConstStr('z')\", \"inputs\": [\"a\"]}", "missing field \"outputs\"", 0, 0,
     0, 0},
    {"{\"program\": \"ConstStr('z')\", \"inputs\": [], \"outputs\": []}", "no examples", 0, 0, 0,
     0},
    {"{\"docstring\": \"Return z.\", \"code\": \"ConstStr('z')\"}",
     "a \"docstring\"/\"code\" pair needs a domain whose specification is one text; domain "
     "\"string\" has 2 parts (input/output examples)", 0, 0, 0, 0},
};

/* One-part specifications (the fx_text fixture): pairs, "specs", "inputs". */
static const line_case text_cases[] = {
    {"{\"docstring\": \"Square.\", \"code\": \"x*x\"}", NULL, 1, 0, 0, 1},
    {"{\"docstring\": \"Return the square of a number.\", \"code\": \"x*x\"}", NULL, 1, 1, 0, 1},
    {"{\"docstring\": \"Caf\xc3\xa9.\", \"code\": \"c\"}", NULL, 1, 0, 0, 1},
    {"{\"specs\": [\"one\", \"two\"], \"program\": \"12\"}", NULL, 2, 0, 0, 1},
    {"{\"inputs\": [\"one\"], \"program\": \"1\", \"held_inputs\": [\"x\"], "
     "\"held_outputs\": [\"y\"]}", NULL, 1, 0, 0, 1},
    {"{\"specs\": [\"a much longer spec\"], \"program\": \"1\"}",
     "spec 1 has 18 tokens, more than the model's max_spec_len 8", 0, 0, 0, 0},
    {"{\"specs\": [], \"program\": \"1\"}", "field \"specs\" must be a non-empty array of strings",
     0, 0, 0, 0},
    {"{\"specs\": [\"a\", 3], \"program\": \"1\"}", "field \"specs\": element 2 is not a string", 0,
     0, 0, 0},
    {"{\"docstring\": \"Shout.\", \"code\": \"bang!\"}", "field \"code\": fx_text: '!' at byte 5",
     0, 0, 0, 0},
    {"{\"code\": \"x\"}", "missing field \"docstring\"", 0, 0, 0, 0},
    {"{\"program\": \"1\"}", "missing field \"docstring\" (or \"inputs\" or \"specs\")", 0, 0, 0,
     0},
};

/* What only a reader's needs decide: train (and eval's BLEU) need the program. */
static void program_needed(const char *text_so) {
  lp_err e = {0};
  lp_domain *d = lp_domain_open(text_so, NULL, &e);
  if (!d) return;
  static const char *const lines[] = {"{\"docstring\": \"Square.\"}", "{\"specs\": [\"a\"]}"};
  static const char *const want[] = {"missing field \"code\"",
                                     "missing field \"tokens\" or \"program\""};
  for (int i = 0; i < 2; i++) {
    lp_record rec;
    memset(&rec, 0, sizeof rec);
    CHECK(lp_record_parse(lines[i], strlen(lines[i]), &rec, &e) == 0, "%s", e.msg);
    for (int k = 0; k < N_READERS; k++) {
      lp_enc_task t = {0};
      lp_err ek = {0};
      int rc = lp_enc_task_read(d, &rec, &reader_opts[k], &t, &ek);
      int need = reader_opts[k].flags & LP_TASK_NEED_PROGRAM;
      CHECK(need ? rc != 0 && strstr(ek.msg, want[i]) : rc == 0 && !t.has_prog,
            "%s: %s: rc %d \"%s\"", reader_name[k], lines[i], rc, ek.msg);
      lp_enc_task_free(&t);
    }
    lp_record_free(&rec);
  }
  lp_domain_free(d);
}

/* Texts given on a command line: synth --spec cuts (the docstring rule),
 * --io does not; --holdout K keeps the last K examples out. */
static void encode_and_holdout(const char *string_so, const char *text_so) {
  lp_err e = {0};
  lp_domain *t = lp_domain_open(text_so, NULL, &e);
  lp_domain *s = lp_domain_open(string_so, NULL, &e);
  CHECK(t && s, "open: %s", e.msg);
  if (t && s) {
    lp_example ex[1] = {{{"a long text specification", NULL}, {25, 0}}};
    lp_task_opts o = {MAX_SPEC, 0, 0};
    lp_enc_task k = {0};
    CHECK(lp_enc_task_encode(t, ex, 1, &o, 1, &k, &e) == 0 && k.truncated == 1 &&
              k.spec_len[0] == MAX_SPEC && k.parts[0].len == 25,
          "--spec is cut: %s", e.msg);
    CHECK(lp_enc_task_encode(t, ex, 1, &o, 0, &k, &e) != 0 &&
              strstr(e.msg, "spec 1 has 25 tokens, more than the model's max_spec_len 8"),
          "an example is not cut: %s", e.msg);
    lp_enc_task_free(&k);
    const char *line = "{\"inputs\": [\"a\", \"b\", \"c\"], \"outputs\": [\"1\", \"2\", \"3\"]}";
    lp_record rec;
    memset(&rec, 0, sizeof rec);
    CHECK(lp_record_parse(line, strlen(line), &rec, &e) == 0, "%s", e.msg);
    lp_task_opts h = {MAX_SPEC, 0, 2};
    CHECK(lp_enc_task_read(s, &rec, &h, &k, &e) == 0 && k.n_examples == 1 && k.n_held == 2 &&
              k.held[1].len[0] == 1 && k.held[1].part[0][0] == 'c' && !k.has_prog,
          "holdout 2: %s", e.msg);
    h.holdout = 3;
    CHECK(lp_enc_task_read(s, &rec, &h, &k, &e) != 0 &&
              strstr(e.msg, "--holdout 3 needs more than 3 examples (the line has 3)"),
          "holdout 3: %s", e.msg);
    lp_enc_task_free(&k);
    lp_record_free(&rec);
  }
  lp_domain_free(t);
  lp_domain_free(s);
}

static void splits(void) {
  lp_record rec;
  lp_err e = {0};
  const char *a = "{\"split\": \"test\", \"inputs\": []}", *b = "{\"inputs\": []}";
  memset(&rec, 0, sizeof rec);
  CHECK(lp_record_parse(a, strlen(a), &rec, &e) == 0, "%s", e.msg);
  CHECK(lp_task_in_split(&rec, "test", &e) == 1 && lp_task_in_split(&rec, "train", &e) == 0 &&
            lp_task_in_split(&rec, "tes", &e) == 0,
        "split selection");
  lp_record_free(&rec);
  CHECK(lp_record_parse(b, strlen(b), &rec, &e) == 0, "%s", e.msg);
  CHECK(lp_task_in_split(&rec, "test", &e) < 0 &&
            strstr(e.msg, "missing field \"split\" (a string; --split test needs it"),
        "no split: %s", e.msg);
  lp_record_free(&rec);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s STRING.so FX_TEXT.so\n", argv[0]);
    return 2;
  }
  run_cases(argv[1], io_cases, sizeof io_cases / sizeof *io_cases);
  run_cases(argv[2], text_cases, sizeof text_cases / sizeof *text_cases);
  program_needed(argv[2]);
  encode_and_holdout(argv[1], argv[2]);
  splits();
  lp_enc_task_free(NULL);
  if (failures) {
    fprintf(stderr, "test_task: %d of %d checks failed\n", failures, checks);
    return 1;
  }
  printf("test_task: all %d checks passed\n", checks);
  return 0;
}

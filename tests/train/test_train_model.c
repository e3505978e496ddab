/* Training-loop and model-checkpoint tests on the real model (RobustFill,
 * models/robustfill-tiny.cfg) and the string domain.
 * Usage: train_model_tests CASE STRING.so TOY.so MODELS_DIR
 * Cases: model_ckpt resume_equal resume_report data_file data_errors stop_flag refuse_mismatch
 *        lstm_ckpt, latent_ae_ckpt, latent_vae_ckpt (the same checkpoint and resume checks
 *        for RobustFill[LSTM], Latent RobustFill [AE] and [VAE]) */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lpsynth/train.h"
#include "test_util.h"

static lp_domain *dom_string;
static lp_model_cfg tiny;

static int load_tiny(const char *file) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", models_dir, file);
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  char text[8192];
  size_t n = fread(text, 1, sizeof text, f);
  fclose(f);
  lp_err e = {0};
  lp_model_cfg_default(&tiny, LP_MODEL_ROBUSTFILL);
  if (lp_model_cfg_parse(&tiny, text, n, path, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return -1;
  }
  return 0;
}

static void base_opts(lp_train_opts *o) {
  lp_train_opts_default(o);
  o->domain = dom_string;
  o->cfg = &tiny;
  o->threads = 1;
  o->seed = 7;
  o->data_seed = 1234;
  o->log_every = 1;
}

/* ---------------------------------------------------------------------- */

static void model_ckpt(void) {
  lp_err e = {0};
  lp_ckpt_domain dom;
  CHECK(lp_ckpt_domain_of(dom_string, &dom, &e) == LP_OK, "%s", e.msg);
  lp_model *m = lp_model_new(&tiny, &dom.spec, &dom.prog, 2, 99, &e);
  CHECK(m != NULL, "model: %s", e.msg);
  if (!m) return;
  size_t n = lp_model_num_params(m);
  float *p = lp_model_params(m);
  for (size_t i = 0; i < n; i++) p[i] += (float)(i % 13) * 1e-3f;
  lp_adam *a = lp_adam_new(n, NULL);
  for (size_t i = 0; i < n; i++) {
    lp_adam_m(a)[i] = (float)i * 1e-6f;
    lp_adam_v(a)[i] = (float)(i % 7) * 1e-8f;
  }
  lp_adam_set_t(a, 17);
  lp_train_pos pos = {.step = 17, .rng_state = 0xabcdef, .init_seed = 99,
                      .data_kind = LP_DATA_GENERATED, .data_seed = 5, .next_task = 68,
                      .seconds = 3.25, .gen_min_size = 2, .gen_max_size = 7,
                      .gen_n_examples = 3};
  const char *path = tmp("m.ckpt");
  CHECK(lp_ckpt_save(path, m, a, &dom, &pos, "{\"x\":1}", &e) == LP_OK, "save: %s", e.msg);
  lp_model *m2 = NULL;
  lp_adam *a2 = NULL;
  lp_train_pos pos2;
  char *meta = NULL;
  CHECK(lp_ckpt_load(path, &dom, &m2, &a2, &pos2, &meta, &e) == LP_OK, "load: %s", e.msg);
  if (m2 && a2) {
    CHECK(lp_model_num_params(m2) == n && !memcmp(lp_model_params(m2), p, n * 4),
          "params bitwise");
    CHECK(lp_adam_t(a2) == 17 && !memcmp(lp_adam_m(a2), lp_adam_m(a), n * 4) &&
              !memcmp(lp_adam_v(a2), lp_adam_v(a), n * 4),
          "adam bitwise");
    CHECK(cfg_eq(lp_model_config(m2), &tiny), "config");
    CHECK(pos_eq(&pos2, &pos), "position");
    CHECK(meta && !strcmp(meta, "{\"x\":1}"), "metadata");
    const lp_adam_cfg *ac = lp_adam_config(a2);
    CHECK(ac->beta2 == tiny.beta2 && ac->eps == tiny.adam_eps &&
              ac->weight_decay == tiny.weight_decay,
          "adam hyper-parameters from the config");
  }
  lp_model_free(m2);
  lp_adam_free(a2);
  free(meta);
  /* another domain and other vocabularies are refused, naming the file */
  lp_domain *toy = lp_domain_open(toy_so, NULL, &e);
  lp_ckpt_domain tdom;
  CHECK(toy && lp_ckpt_domain_of(toy, &tdom, &e) == LP_OK, "toy: %s", e.msg);
  m2 = (lp_model *)1;
  CHECK(lp_ckpt_load(path, &tdom, &m2, &a2, NULL, NULL, &e) == LP_EINVAL && m2 == NULL &&
            has(e.msg, path) && has(e.msg, "for domain \"string\", not \"toy\""),
        "toy: %s", e.msg);
  lp_ckpt_domain other = dom;
  other.vocab_fp += 1;
  CHECK(lp_ckpt_load(path, &other, &m2, &a2, NULL, NULL, &e) == LP_EINVAL &&
            has(e.msg, "vocabulary fingerprint mismatch"),
        "fp: %s", e.msg);
  lp_domain_free(toy);
  /* a config whose layout differs (more layers) under the same file: refused
   * by tensor name */
  lp_ckpt c;
  CHECK(lp_ckpt_read(path, 0, &c, &e) == LP_OK, "%s", e.msg);
  lp_model_cfg big = tiny;
  if (tiny.kind == LP_MODEL_RF_LSTM)
    big.d_ff *= 2; /* one layer only: wider instead */
  else
    big.n_dec_layers = 2;
  lp_buf t = {0};
  lp_model_cfg_to_text(&big, &t);
  free(c.config_text);
  c.config_text = strdup(t.data);
  const char *p2 = tmp("layout.ckpt");
  CHECK(lp_ckpt_write(p2, &c, &e) == LP_OK, "%s", e.msg);
  CHECK(lp_ckpt_load(p2, &dom, &m2, &a2, NULL, NULL, &e) == LP_EINVAL &&
            has(e.msg, "parameter layout mismatch at tensor") && has(e.msg, p2),
        "layout: %s", e.msg);
  lp_buf_free(&t);
  lp_ckpt_free(&c);
  lp_model_free(m);
  lp_adam_free(a);
}

/* ---------------------------------------------------------------------- */

static int run(lp_train_opts *o, lp_train_result *r, lp_err *e) {
  memset(e, 0, sizeof *e);
  int rc = lp_train_run(o, r, e);
  if (rc) fprintf(stderr, "  lp_train_run: %s\n", e->msg);
  return rc;
}

/* Two checkpoints hold the same training state (everything but the clock
 * and the metadata). */
static void same_state(const char *a, const char *b, const char *what) {
  lp_ckpt x, y;
  lp_err e = {0};
  CHECK(lp_ckpt_read(a, 0, &x, &e) == LP_OK, "%s", e.msg);
  CHECK(lp_ckpt_read(b, 0, &y, &e) == LP_OK, "%s", e.msg);
  if (e.code) return;
  size_t n = x.n_params;
  CHECK(n == y.n_params && n > 0, "%s: sizes", what);
  if (n == y.n_params) {
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += memcmp(&x.params[i], &y.params[i], 4) != 0;
    CHECK(diff == 0, "%s: %zu of %zu parameters differ", what, diff, n);
    CHECK(x.n_adam == n && y.n_adam == n && !memcmp(x.adam_m, y.adam_m, n * 4) &&
              !memcmp(x.adam_v, y.adam_v, n * 4) && x.adam_t == y.adam_t,
          "%s: Adam state differs", what);
  }
  CHECK(x.pos.step == y.pos.step && x.pos.rng_state == y.pos.rng_state &&
            x.pos.next_task == y.pos.next_task && x.pos.data_seed == y.pos.data_seed &&
            x.pos.init_seed == y.pos.init_seed,
        "%s: position differs (step %lld/%lld, rng %llx/%llx, task %llu/%llu)", what,
        (long long)x.pos.step, (long long)y.pos.step, (unsigned long long)x.pos.rng_state,
        (unsigned long long)y.pos.rng_state, (unsigned long long)x.pos.next_task,
        (unsigned long long)y.pos.next_task);
  CHECK(!strcmp(x.config_text, y.config_text), "%s: config", what);
  /* the statistics a resumed run continues from (STAT) */
  size_t hk = x.pos.hist_n < LP_TRAIN_HIST_N ? (size_t)x.pos.hist_n : LP_TRAIN_HIST_N;
  CHECK(x.pos.hist_n == y.pos.hist_n && x.pos.win_n == y.pos.win_n &&
            !memcmp(x.pos.hist_loss, y.pos.hist_loss, hk * sizeof(double)) &&
            !memcmp(x.pos.hist_acc, y.pos.hist_acc, hk * sizeof(double)) &&
            !memcmp(x.pos.win, y.pos.win, sizeof x.pos.win),
        "%s: training statistics differ (%llu/%llu steps recorded, window %lld/%lld)", what,
        (unsigned long long)x.pos.hist_n, (unsigned long long)y.pos.hist_n,
        (long long)x.pos.win_n, (long long)y.pos.win_n);
  lp_ckpt_free(&x);
  lp_ckpt_free(&y);
}

static int count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int n = 0, ch;
  while ((ch = fgetc(f)) != EOF) n += ch == '\n';
  fclose(f);
  return n;
}

static void resume_equal(void) {
  const int N = 6;
  lp_train_opts o;
  lp_train_result r;
  lp_err e;
  /* straight: 2N steps (with a checkpoint in the middle, which must not matter) */
  base_opts(&o);
  o.steps = 2 * N;
  o.out_path = tmp("straight.ckpt");
  o.log_path = tmp("straight.csv");
  o.checkpoint_every = 4;
  o.queue_depth = 1;
  CHECK(run(&o, &r, &e) == LP_OK, "straight");
  CHECK(r.start_step == 0 && r.end_step == 2 * N && !r.stopped && !r.resumed &&
            r.tasks_seen == 2 * N * tiny.batch_size && r.checkpoints == 3,
        "straight result: %lld..%lld, %lld checkpoints", (long long)r.start_step,
        (long long)r.end_step, (long long)r.checkpoints);
  CHECK(isfinite(r.final_loss) && r.final_loss > 0, "final loss %g", r.final_loss);
  CHECK(count_lines(tmp("straight.csv")) == 2 * N + 1, "csv rows: %d",
        count_lines(tmp("straight.csv")));
  /* N steps, then resume to 2N */
  base_opts(&o);
  o.steps = N;
  o.out_path = tmp("half.ckpt");
  o.log_path = tmp("half.csv");
  o.queue_depth = 3;
  CHECK(run(&o, &r, &e) == LP_OK, "first half");
  CHECK(r.end_step == N, "first half ends at %lld", (long long)r.end_step);
  /* rows past the checkpoint (a run that crashed after it) are dropped on resume */
  FILE *lf = fopen(tmp("half.csv"), "a");
  fprintf(lf, "%d,1,2,3,4,5,6,7,8,9,10,11,12\n", N + 1);
  fclose(lf);
  base_opts(&o);
  o.seed = 555;      /* ignored on resume: the checkpoint's seeds are used */
  o.data_seed = 999;
  o.steps = 2 * N;
  o.resume_path = tmp("half.ckpt");
  o.out_path = tmp("resumed.ckpt");
  o.log_path = tmp("half.csv");
  CHECK(run(&o, &r, &e) == LP_OK, "second half");
  CHECK(r.start_step == N && r.end_step == 2 * N && r.resumed && r.seed == 7 &&
            r.data_seed == 1234,
        "resume result %lld..%lld seed %llu", (long long)r.start_step, (long long)r.end_step,
        (unsigned long long)r.seed);
  same_state(tmp("straight.ckpt"), tmp("resumed.ckpt"), "resume vs straight");
  /* the log continues: header + 2N rows, same steps as the straight run */
  CHECK(count_lines(tmp("half.csv")) == 2 * N + 1, "resumed csv rows: %d",
        count_lines(tmp("half.csv")));
  /* the same again: training is deterministic */
  base_opts(&o);
  o.steps = 2 * N;
  o.out_path = tmp("again.ckpt");
  CHECK(run(&o, &r, &e) == LP_OK, "again");
  same_state(tmp("straight.ckpt"), tmp("again.ckpt"), "two straight runs");
  /* resuming at the target does nothing */
  base_opts(&o);
  o.steps = 2 * N;
  o.resume_path = tmp("again.ckpt");
  o.out_path = tmp("noop.ckpt");
  CHECK(run(&o, &r, &e) == LP_OK && r.start_step == 2 * N && r.end_step == 2 * N,
        "resume at the target");
  CHECK(access(tmp("noop.ckpt"), F_OK) != 0, "nothing written when there is nothing to do");
}

/* ---------------------------------------------------------------------- */

/* What a resumed run reports equals what the straight run reports: the
 * summary's mean loss and accuracy, and the CSV rows (but for the clock and
 * tasks/s), also when the checkpoint fell between two log rows - as when a
 * run is killed after a checkpoint and resumed from it. */
typedef struct snap_ctx {
  int64_t at;
  const char *ckpt, *csv, *ckpt_copy, *csv_copy;
  int done;
} snap_ctx;

static int copy_file(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
  int ok = a && b;
  char buf[65536];
  size_t n;
  while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, n, b) == n;
  if (a) fclose(a);
  if (b && fclose(b)) ok = 0;
  return ok ? 0 : -1;
}

/* progress callback: copies the checkpoint and the log as they are right
 * after the checkpoint of step `at` (what a kill -9 then would leave) */
static int snapshot(const lp_train_progress *p, void *user) {
  snap_ctx *c = user;
  if (p->step == c->at && p->checkpoint_written)
    c->done = !copy_file(c->ckpt, c->ckpt_copy) && !copy_file(c->csv, c->csv_copy);
  return 0;
}

/* The CSV without the clock columns (seconds, tasks_per_s), one string. */
static char *csv_sans_clock(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  lp_buf out = {0};
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    char *col = line;
    for (int k = 0; col; k++) {
      char *next = strpbrk(col, ",\n");
      size_t n = next ? (size_t)(next - col) : strlen(col);
      if (k != 1 && k != 6) {
        lp_buf_append(&out, col, n);
        lp_buf_append(&out, ",", 1);
      }
      col = next && *next == ',' ? next + 1 : NULL;
    }
    lp_buf_append(&out, "\n", 1);
  }
  fclose(f);
  return out.data;
}

static void resume_report(void) {
  lp_train_opts o;
  lp_train_result straight, resumed;
  lp_err e;
  snap_ctx sc = {8, tmp("rr.ckpt"), tmp("rr.csv"), tmp("rr8.ckpt"), tmp("rr8.csv"), 0};
  base_opts(&o);
  o.steps = 12;
  o.out_path = sc.ckpt;
  o.log_path = sc.csv;
  o.log_every = 5;        /* rows at 5, 10, 12 */
  o.checkpoint_every = 4; /* checkpoints at 4, 8: step 8 lies inside the row of 10 */
  o.progress = snapshot;
  o.user = &sc;
  CHECK(run(&o, &straight, &e) == LP_OK, "straight");
  CHECK(sc.done, "no snapshot of the checkpoint of step 8");
  base_opts(&o);
  o.steps = 12;
  o.log_every = 5;
  o.resume_path = sc.ckpt_copy;
  o.out_path = tmp("rr_resumed.ckpt");
  o.log_path = sc.csv_copy;
  CHECK(run(&o, &resumed, &e) == LP_OK, "resumed");
  same_state(sc.ckpt, tmp("rr_resumed.ckpt"), "resume from inside a log row vs straight");
  CHECK(straight.final_loss == resumed.final_loss && straight.final_acc == resumed.final_acc &&
            straight.final_n == 12 && resumed.final_n == 12,
        "reported loss %.9g / %.9g, accuracy %.9g / %.9g over %lld / %lld steps",
        straight.final_loss, resumed.final_loss, straight.final_acc, resumed.final_acc,
        (long long)straight.final_n, (long long)resumed.final_n);
  char *a = csv_sans_clock(sc.csv), *b = csv_sans_clock(sc.csv_copy);
  CHECK(a && b && count_lines(sc.csv) == 4 && !strcmp(a, b),
        "CSV rows differ:\n--- straight\n%s--- resumed\n%s", a ? a : "(none)",
        b ? b : "(none)");
  free(a);
  free(b);
}

/* ---------------------------------------------------------------------- */

/* Writes n generated tasks as JSONL: even lines with "tokens", odd with
 * "program" text only. */
static int write_tasks(const char *path, int n, uint64_t seed) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  lp_gen_opts go = {sizeof go, 0, 0, 0};
  for (int i = 0; i < n; i++) {
    lp_task t;
    memset(&t, 0, sizeof t);
    lp_err e = {0};
    if (lp_domain_generate(dom_string, lp_task_seed(seed, (uint64_t)i), &go, &t, &e)) return -1;
    lp_buf prog = {0};
    if (lp_domain_program_decode(dom_string, t.program.data, t.program.len, &prog, &e)) return -1;
    fputc('{', f);
    if (i % 2 == 0) {
      fputs("\"tokens\": [", f);
      for (size_t k = 0; k < t.program.len; k++)
        fprintf(f, "%s%d", k ? ", " : "", t.program.data[k]);
      fputs("], ", f);
    } else {
      fputs("\"program\": \"", f);
      for (size_t k = 0; k < prog.len; k++) {
        char ch = prog.data[k];
        if (ch == '"' || ch == '\\') fputc('\\', f);
        fputc(ch, f);
      }
      fputs("\", ", f);
    }
    for (int part = 0; part < 2; part++) {
      fprintf(f, "\"%s\": [", part ? "outputs" : "inputs");
      for (size_t x = part; x < t.examples.len; x += 2) {
        fputs(x >= 2 ? ", \"" : "\"", f);
        const lp_buf *s = &t.examples.items[x];
        for (size_t k = 0; k < s->len; k++) {
          char ch = s->data[k];
          if (ch == '"' || ch == '\\') fputc('\\', f);
          fputc(ch, f);
        }
        fputc('"', f);
      }
      fputs(part ? "]" : "], ", f);
    }
    fputs("}\n", f);
    lp_buf_free(&prog);
    lp_task_free(&t);
  }
  return fclose(f);
}

static void data_file(void) {
  const char *data = tmp("tasks.jsonl");
  CHECK(write_tasks(data, 10, 42) == 0, "write tasks");
  lp_train_opts o;
  lp_train_result r;
  lp_err e;
  /* 10 records, batch 4: steps 1..7 cycle through the file 2.8 times */
  base_opts(&o);
  o.data_path = data;
  o.steps = 7;
  o.out_path = tmp("file_straight.ckpt");
  CHECK(run(&o, &r, &e) == LP_OK, "file straight");
  CHECK(r.tasks_seen == 28, "tasks seen %lld", (long long)r.tasks_seen);
  base_opts(&o);
  o.data_path = data;
  o.steps = 3; /* stops mid-file (task 12 = record 2 of the second pass) */
  o.out_path = tmp("file_half.ckpt");
  CHECK(run(&o, &r, &e) == LP_OK, "file half");
  base_opts(&o);
  o.data_path = data;
  o.steps = 7;
  o.resume_path = tmp("file_half.ckpt");
  o.out_path = tmp("file_resumed.ckpt");
  CHECK(run(&o, &r, &e) == LP_OK, "file resumed");
  same_state(tmp("file_straight.ckpt"), tmp("file_resumed.ckpt"), "file: resume vs straight");
  /* the data file's tasks are the generator's: training on the file gives the
   * same state as training on generated tasks with the same seed, when the
   * file is long enough */
  const char *data2 = tmp("tasks2.jsonl");
  CHECK(write_tasks(data2, 12, 1234) == 0, "write tasks2");
  base_opts(&o);
  o.data_path = data2;
  o.steps = 3;
  o.out_path = tmp("from_file.ckpt");
  CHECK(run(&o, &r, &e) == LP_OK, "from file");
  base_opts(&o);
  o.steps = 3;
  o.out_path = tmp("from_gen.ckpt");
  CHECK(run(&o, &r, &e) == LP_OK, "from generator");
  lp_ckpt x, y;
  CHECK(lp_ckpt_read(tmp("from_file.ckpt"), 0, &x, &e) == LP_OK &&
            lp_ckpt_read(tmp("from_gen.ckpt"), 0, &y, &e) == LP_OK,
        "%s", e.msg);
  CHECK(x.n_params == y.n_params && !memcmp(x.params, y.params, 4 * x.n_params),
        "file tasks == generated tasks");
  CHECK(x.pos.data_kind == LP_DATA_FILE && y.pos.data_kind == LP_DATA_GENERATED, "data kinds");
  lp_ckpt_free(&x);
  lp_ckpt_free(&y);
}

static void expect_data_error(const char *content, const char *want, const char *what) {
  const char *data = tmp("bad.jsonl");
  FILE *f = fopen(data, "w");
  fputs(content, f);
  fclose(f);
  lp_train_opts o;
  lp_train_result r;
  lp_err e = {0};
  base_opts(&o);
  o.data_path = data;
  o.steps = 3;
  o.out_path = tmp("bad.ckpt");
  unlink(o.out_path);
  int rc = lp_train_run(&o, &r, &e);
  char full[600];
  snprintf(full, sizeof full, "%s%s", data, want);
  CHECK(rc != LP_OK && has(e.msg, full), "%s: rc %d, message \"%s\", want \"%s\"", what, rc,
        e.msg, full);
}

static void data_errors(void) {
  static const char good[] =
      "{\"program\": \"GetUpto(' ')\", \"inputs\": [\"a b\"], \"outputs\": [\"a \"]}\n";
  char buf[4096];
  expect_data_error("", ": no tasks in the file", "empty file");
  snprintf(buf, sizeof buf, "%s%s\n{\"program\": \"GetUpto(' ')\", \"inputs\": [\"a\"\n", good,
           good);
  expect_data_error(buf, ":4: invalid JSON", "bad JSON on line 4 (after a blank line)");
  snprintf(buf, sizeof buf, "%s{\"program\": \"GetUpto(' ')\", \"inputs\": [\"a b\"]}\n", good);
  expect_data_error(buf, ":2: missing field \"outputs\"", "no outputs");
  snprintf(buf, sizeof buf, "%s{\"program\": \"Nope(\", \"inputs\": [\"a\"], \"outputs\": [\"b\"]}\n",
           good);
  expect_data_error(buf, ":2: field \"program\"", "bad program");
  snprintf(buf, sizeof buf, "%s{\"tokens\": [5, 9], \"inputs\": [\"a\"], \"outputs\": [\"b\"]}\n",
           good);
  expect_data_error(buf, ":2: the program's tokens do not end with EOS", "no EOS");
  snprintf(buf, sizeof buf,
           "%s{\"tokens\": [5, 999, 2], \"inputs\": [\"a\"], \"outputs\": [\"b\"]}\n", good);
  expect_data_error(buf, ":2: program token 2 is 999, outside the vocabulary", "id range");
  char longs[300];
  memset(longs, 'a', 200);
  longs[200] = 0;
  snprintf(buf, sizeof buf,
           "%s{\"program\": \"GetUpto(' ')\", \"inputs\": [\"%s\"], \"outputs\": [\"b\"]}\n",
           good, longs);
  expect_data_error(buf, ":2: input 1 has 200 tokens, more than the model's max_spec_len 128",
                    "too long");
  snprintf(buf, sizeof buf,
           "%s{\"program\": \"GetUpto(' ')\", \"inputs\": [\"a\", \"b\"], \"outputs\": [\"b\"]}\n",
           good);
  expect_data_error(buf, ":2: 2 inputs but 1 outputs", "count mismatch");
  /* a missing file */
  lp_train_opts o;
  lp_train_result r;
  lp_err e = {0};
  base_opts(&o);
  o.data_path = tmp("absent.jsonl");
  o.steps = 2;
  CHECK(lp_train_run(&o, &r, &e) != LP_OK && has(e.msg, "absent.jsonl"), "absent: %s", e.msg);
  /* a bad line after some steps: the steps done are saved, the message says so */
  snprintf(buf, sizeof buf, "%s%s%s%s%s%s%s%s{\"oops\": 1}\n", good, good, good, good, good, good,
           good, good);
  const char *data = tmp("late.jsonl");
  FILE *f = fopen(data, "w");
  fputs(buf, f);
  fclose(f);
  base_opts(&o);
  o.data_path = data;
  o.steps = 5;
  o.out_path = tmp("late.ckpt");
  int rc = lp_train_run(&o, &r, &e);
  CHECK(rc != LP_OK && has(e.msg, "late.jsonl:9: missing field") &&
            has(e.msg, "the checkpoint of step 2 was saved"),
        "late error: %s", e.msg);
  lp_ckpt c;
  CHECK(lp_ckpt_read(tmp("late.ckpt"), LP_CKPT_INFO_ONLY, &c, &e) == LP_OK && c.pos.step == 2 &&
            c.pos.next_task == 8,
        "late checkpoint: %s step %lld", e.msg, (long long)c.pos.step);
  lp_ckpt_free(&c);
}

/* ---------------------------------------------------------------------- */

typedef struct cb_state {
  int64_t calls, stop_at, last_step;
  volatile sig_atomic_t *flag;
  int ok;
} cb_state;

static int on_progress(const lp_train_progress *p, void *user) {
  cb_state *s = user;
  s->calls++;
  if (p->step != s->last_step + 1 || !isfinite(p->loss) || p->lr <= 0 || p->tasks_per_s <= 0 ||
      p->total_steps != 1000 || !p->stats || p->token_acc < 0 || p->token_acc > 1)
    s->ok = 0;
  s->last_step = p->step;
  if (p->step == s->stop_at) {
    if (s->flag)
      *s->flag = 1; /* as a signal handler would */
    else
      return 1;
  }
  return 0;
}

static void stop_flag(void) {
  for (int use_flag = 0; use_flag < 2; use_flag++) {
    volatile sig_atomic_t flag = 0;
    cb_state s = {0, 3, 0, use_flag ? &flag : NULL, 1};
    lp_train_opts o;
    lp_train_result r;
    lp_err e;
    base_opts(&o);
    o.steps = 1000;
    o.out_path = tmp("stop.ckpt");
    o.log_path = tmp("stop.csv");
    o.log_every = 2;
    o.stop = &flag;
    o.progress = on_progress;
    o.user = &s;
    o.metadata = "{\"test\": \"stop\"}";
    CHECK(run(&o, &r, &e) == LP_OK, "stopped run");
    CHECK(r.stopped && r.end_step == 3 && r.checkpoints == 1 && s.calls == 3 && s.ok,
          "stop (flag %d): stopped %d at %lld, %lld checkpoints, %lld calls, ok %d", use_flag,
          r.stopped, (long long)r.end_step, (long long)r.checkpoints, (long long)s.calls, s.ok);
    lp_ckpt c;
    CHECK(lp_ckpt_read(tmp("stop.ckpt"), LP_CKPT_INFO_ONLY, &c, &e) == LP_OK && c.pos.step == 3 &&
              !strcmp(c.metadata, "{\"test\": \"stop\"}"),
          "stop checkpoint");
    lp_ckpt_free(&c);
    /* rows at step 2 (log_every) and 3 (where it stopped: the log reaches the checkpoint) */
    CHECK(count_lines(tmp("stop.csv")) == 3, "stop csv lines %d", count_lines(tmp("stop.csv")));
  }
  /* a flag already set: no step, the (untrained) state is saved */
  volatile sig_atomic_t flag = 1;
  lp_train_opts o;
  lp_train_result r;
  lp_err e;
  base_opts(&o);
  o.steps = 10;
  o.out_path = tmp("stop0.ckpt");
  o.stop = &flag;
  CHECK(run(&o, &r, &e) == LP_OK && r.stopped && r.end_step == 0, "stop before the first step");
  CHECK(access(tmp("stop0.ckpt"), F_OK) == 0, "step-0 checkpoint written");
}

static void refuse_mismatch(void) {
  lp_train_opts o;
  lp_train_result r;
  lp_err e;
  base_opts(&o);
  o.steps = 2;
  o.out_path = tmp("base.ckpt");
  CHECK(run(&o, &r, &e) == LP_OK, "base");
  /* a different config with cfg_must_match */
  lp_model_cfg c2 = tiny;
  c2.lr = 5e-4f;
  base_opts(&o);
  o.cfg = &c2;
  o.cfg_must_match = 1;
  o.steps = 4;
  o.resume_path = tmp("base.ckpt");
  memset(&e, 0, sizeof e);
  CHECK(lp_train_run(&o, &r, &e) == LP_EINVAL && has(e.msg, "base.ckpt") &&
            has(e.msg, "differs from the checkpoint's") && has(e.msg, "lr = 0.001") &&
            has(e.msg, "lr = 0.0005"),
        "config mismatch: %s", e.msg);
  /* the same config is fine */
  o.cfg = &tiny;
  CHECK(run(&o, &r, &e) == LP_OK && r.end_step == 4, "same config resumes");
  /* generated -> file is refused */
  base_opts(&o);
  o.steps = 4;
  o.resume_path = tmp("base.ckpt");
  o.data_path = tmp("whatever.jsonl");
  memset(&e, 0, sizeof e);
  CHECK(lp_train_run(&o, &r, &e) == LP_EINVAL && has(e.msg, "trained on generated tasks"),
        "data kind: %s", e.msg);
  /* other domain */
  lp_domain *toy = lp_domain_open(toy_so, NULL, &e);
  base_opts(&o);
  o.domain = toy;
  o.steps = 4;
  o.resume_path = tmp("base.ckpt");
  memset(&e, 0, sizeof e);
  CHECK(lp_train_run(&o, &r, &e) == LP_EINVAL && has(e.msg, "not \"toy\""), "domain: %s", e.msg);
  lp_domain_free(toy);
  /* a corrupted checkpoint */
  FILE *f = fopen(tmp("base.ckpt"), "r+b");
  fseek(f, 200, SEEK_SET);
  fputc(0x5a, f);
  fclose(f);
  base_opts(&o);
  o.steps = 4;
  o.resume_path = tmp("base.ckpt");
  memset(&e, 0, sizeof e);
  CHECK(lp_train_run(&o, &r, &e) == LP_EINVAL && has(e.msg, "checksum mismatch"),
        "corrupted: %s", e.msg);
}

/* A kind added after the first ones (the tiny config `file` of kind `kind`):
 * the checkpoint round trip of model_ckpt, resume == straight through
 * (resume_equal, bit for bit), the same with 2 data-parallel workers and
 * chunks of 2 tasks, and a checkpoint whose config names a kind this build
 * does not know (as this kind is to older builds) is refused with a message
 * that says so. */
static void kind_ckpt(const char *file, int kind) {
  if (load_tiny(file)) {
    CHECK(0, "cannot load %s", file);
    return;
  }
  CHECK(tiny.kind == kind, "%s: model = %s", file, lp_model_kind_name(kind));
  model_ckpt();
  resume_equal();
  /* data-parallel chunked steps resume exactly too */
  lp_train_opts o;
  lp_train_result r;
  lp_err e;
  base_opts(&o);
  o.threads = 2;
  o.chunk_tasks = 2;
  o.steps = 6;
  o.out_path = tmp("p_straight.ckpt");
  CHECK(run(&o, &r, &e) == LP_OK, "2 threads straight");
  o.steps = 3;
  o.out_path = tmp("p_half.ckpt");
  CHECK(run(&o, &r, &e) == LP_OK, "2 threads, first half");
  o.steps = 6;
  o.resume_path = tmp("p_half.ckpt");
  o.out_path = tmp("p_resumed.ckpt");
  CHECK(run(&o, &r, &e) == LP_OK && r.resumed && r.end_step == 6, "2 threads, resumed");
  same_state(tmp("p_straight.ckpt"), tmp("p_resumed.ckpt"), "2 threads: resume vs straight");
  /* a kind this build does not know: the name with its last letter changed */
  lp_ckpt c;
  CHECK(lp_ckpt_read(tmp("p_straight.ckpt"), 0, &c, &e) == LP_OK, "%s", e.msg);
  char line[64], unknown[48];
  snprintf(line, sizeof line, "model = %s\n", lp_model_kind_name(kind));
  snprintf(unknown, sizeof unknown, "%s", lp_model_kind_name(kind));
  unknown[strlen(unknown) - 1] = '9';
  char *at = strstr(c.config_text, line);
  CHECK(at != NULL, "the checkpoint records its kind: %s", c.config_text);
  if (at) {
    at[strlen(line) - 2] = '9';
    CHECK(lp_ckpt_write(tmp("unknown.ckpt"), &c, &e) == LP_OK, "%s", e.msg);
    lp_ckpt_domain dom;
    lp_model *m = NULL;
    lp_adam *a = NULL;
    CHECK(lp_ckpt_domain_of(dom_string, &dom, &e) == LP_OK, "%s", e.msg);
    memset(&e, 0, sizeof e);
    CHECK(lp_ckpt_load(tmp("unknown.ckpt"), &dom, &m, &a, NULL, NULL, &e) == LP_EINVAL &&
              m == NULL && has(e.msg, "unknown.ckpt") &&
              has(e.msg, unknown) && has(e.msg, "does not know"),
          "unknown kind: %s", e.msg);
  }
  lp_ckpt_free(&c);
}

/* RobustFill[LSTM] (models/robustfill-lstm-tiny.cfg) */
static void lstm_ckpt(void) { kind_ckpt("robustfill-lstm-tiny.cfg", LP_MODEL_RF_LSTM); }
/* Latent RobustFill [AE] / [VAE] (models/latent-ae-tiny.cfg, latent-vae-tiny.cfg) */
static void latent_ae_ckpt(void) { kind_ckpt("latent-ae-tiny.cfg", LP_MODEL_LATENT_AE); }
static void latent_vae_ckpt(void) { kind_ckpt("latent-vae-tiny.cfg", LP_MODEL_LATENT_VAE); }

static const test_case k_cases[] = {
    {"lstm_ckpt", lstm_ckpt},     {"latent_ae_ckpt", latent_ae_ckpt},
    {"latent_vae_ckpt", latent_vae_ckpt},
    {"model_ckpt", model_ckpt},   {"resume_equal", resume_equal}, {"data_file", data_file},
    {"data_errors", data_errors}, {"stop_flag", stop_flag},
    {"refuse_mismatch", refuse_mismatch}, {"resume_report", resume_report},
};

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s CASE STRING.so TOY.so MODELS_DIR\n", argv[0]);
    return 2;
  }
  string_so = argv[2];
  toy_so = argv[3];
  models_dir = argv[4];
  lp_err e = {0};
  dom_string = lp_domain_open(string_so, NULL, &e);
  if (!dom_string || load_tiny("robustfill-tiny.cfg")) {
    fprintf(stderr, "setup: %s\n", e.msg);
    return 1;
  }
  int rc = run_case(argv[1], k_cases, sizeof k_cases / sizeof k_cases[0], "/tmp/lptrainm.XXXXXX");
  lp_domain_free(dom_string);
  return rc;
}

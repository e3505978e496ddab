/* lpsynth train: the training loop of lpsynth/train.h with a progress line,
 * signal handling and a summary. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "lpsynth/train.h"
#include "mpi_comm.h"

static const cli_verb_spec train_verb = {
    CLI_TRAIN, "train", NULL,
    "Trains a model on tasks generated on the fly by the domain (task i from the seed\n"
    "derived from (data seed, i)) or read from a JSONL file, cycled. A line of the\n"
    "file is a task line as eval and synth read it (lpsynth/task.h): \"tokens\" or\n"
    "\"program\" and \"inputs\"/\"outputs\" (or \"specs\"), or - for a domain whose\n"
    "specification is one text, such as python - a pair as `lpsynth corpus` writes\n"
    "it: \"docstring\" (the spec) and \"code\" (the program). A pair's docstring\n"
    "longer than max_spec_len tokens is cut to its first max_spec_len tokens; a pair\n"
    "whose program is longer than max_program_len is skipped, and the summary says\n"
    "how many were cut and skipped. A bad line stops training with FILE:LINE:\n"
    "message.\n"
    "\n"
    "Each step: forward and backward on one batch, gradient-norm clipping, Adam with\n"
    "decoupled weight decay and the warm-up / inverse-square-root learning rate. The\n"
    "checkpoint (config, parameters, Adam state, RNG and task position) is written\n"
    "atomically every K steps, at the end, and when SIGINT/SIGTERM arrives (the\n"
    "current step finishes first; a second signal kills at once). --resume continues\n"
    "from a checkpoint's step to N total steps and, with one thread, gives the same\n"
    "bytes as training straight through; without --domain-options it uses the domain\n"
    "resource beside that checkpoint (CKPT.res, or CKPT.spm of older runs).\n"
    "\n"
    "Under mpirun -np N (a build with MPI), the N processes train as one with N x T\n"
    "workers (T = --threads, the same on every rank): each runs its share of every\n"
    "batch, the gradients are summed, rank 0 alone prints and writes the checkpoint\n"
    "and the log, and a checkpoint resumes at any number of ranks. An error on any\n"
    "rank stops all of them with its message; SIGTERM or SIGUSR1 to mpirun, or a\n"
    "signal to any one rank, stops all after the same step (SIGUSR1 reaches the ranks\n"
    "at once; SIGTERM after mpirun's odls_base_sigkill_timeout, which also bounds the\n"
    "time they get: README).\n"
    "\n"
    "The progress line (stderr) shows step, loss, token accuracy, learning rate,\n"
    "gradient norm, tasks/s and ETA; LPSYNTH_PROGRESS=1/0 forces it on/off. --json\n"
    "prints the summary as one JSON object. The columns of the --log CSV:",
    lp_train_csv_header};

/* ---------- helpers ---------- */

static char *slurp(const char *verb, const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    cli_error(verb, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  lp_buf b = {0};
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (lp_buf_append(&b, chunk, n)) {
      cli_error(verb, "%s: out of memory", path);
      fclose(f);
      lp_buf_free(&b);
      return NULL;
    }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    cli_error(verb, "%s: read failed", path);
    lp_buf_free(&b);
    return NULL;
  }
  *len = b.len;
  if (!b.data) return calloc(1, 1);
  return b.data;
}

json_t *cli_json_u64(uint64_t v) {
  if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
  char b[32];
  snprintf(b, sizeof b, "%llu", (unsigned long long)v);
  return json_string(b);
}

const char *cli_model_kind_name(int kind) {
  const char *s = lp_model_kind_name(kind);
  return s ? s : "(unknown kind)";
}

/* ---------- the progress line, signals ---------- */

static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_signal;
/* Multi-process training (mpi_comm.h): rank 0 prints; size 1 without MPI. */
static cli_mpi g_mpi;

static void on_signal(int sig) {
  g_stop = 1;
  g_signal = sig;
}

typedef struct progress_ctx {
  cli_progress pg; /* only for its enabled flag and clock */
  double last;
  int printed, json;
} progress_ctx;

static int on_progress(const lp_train_progress *p, void *user) {
  progress_ctx *c = user;
  if (!c->pg.enabled) {
    /* no live line (not a terminal): one plain line per checkpoint */
    if (p->checkpoint_written && !c->json) {
      char eta[32];
      cli_fmt_secs(p->eta_s, eta, sizeof eta);
      fprintf(stderr,
              "lpsynth train: step %lld/%lld  loss %.4f  acc %.3f  lr %.2e  %.1f tasks/s  ETA %s"
              "  (checkpoint saved)\n",
              (long long)p->step, (long long)p->total_steps, p->loss_avg, p->acc_avg, p->lr,
              p->tasks_per_s, eta);
    }
    return 0;
  }
  double t = lp_now();
  if (t - c->last < 0.25 && p->step != p->total_steps && !p->checkpoint_written) return 0;
  c->last = t;
  char el[32], eta[32];
  cli_fmt_secs(p->elapsed_s, el, sizeof el);
  cli_fmt_secs(p->eta_s, eta, sizeof eta);
  fprintf(stderr,
          "\rtrain step %lld/%lld (%.1f%%)  loss %.4f (avg %.4f)  acc %.3f  lr %.2e  |g| %.3g  "
          "%.0f tasks/s  elapsed %s  ETA %s%s   ",
          (long long)p->step, (long long)p->total_steps,
          100.0 * (double)p->step / (double)p->total_steps, p->loss, p->loss_avg, p->acc_avg,
          p->lr, p->grad_norm, p->tasks_per_s, el, eta, p->checkpoint_written ? "  [saved]" : "");
  fflush(stderr);
  c->printed = 1;
  return 0;
}

/* ---------- one run, in steps ---------- */

/* What the steps of a run decide, and what they own. */
typedef struct train_run {
  const cli_opts *o;
  int argc;
  char **argv;
  int kind;                 /* --model: LP_MODEL_*, or -1 */
  lp_model_cfg cfg;
  int have_cfg;             /* cfg is the run's (else the checkpoint's is taken) */
  lp_ckpt info;             /* resuming: what the checkpoint holds */
  const char *split, *domain_opts;
  uint64_t data_seed;
  lp_domain *d;
  char *split_keep, *opts_keep, *meta, *copy; /* owned */
  int copied;               /* copy was written by this run (not the options file itself) */
} train_run;

static void run_free(train_run *R) {
  lp_ckpt_free(&R->info);
  lp_domain_free(R->d);
  free(R->split_keep);
  free(R->opts_keep);
  free(R->meta);
  free(R->copy);
  memset(R, 0, sizeof *R);
}

/* The options that need no file. EXIT_OK or EXIT_USAGE. */
static int check_options(train_run *R) {
  const cli_opts *o = R->o;
  R->kind = -1;
  if (o->model) {
    R->kind = lp_model_kind_parse(o->model, strlen(o->model));
    if (R->kind < 0) {
      cli_error(o->verb, "--model must be robustfill, robustfill-lstm, lp, latent-ae or "
                "latent-vae, got \"%s\"",
                o->model);
      return EXIT_USAGE;
    }
  }
  if (!o->model && !o->config && !o->resume) {
    cli_error(o->verb, "--model robustfill|robustfill-lstm|lp|latent-ae|latent-vae is required "
              "(or --config FILE, or "
              "--resume CKPT)");
    return EXIT_USAGE;
  }
  if (o->split && !o->data) {
    cli_error(o->verb, "--split selects lines of a data file: give --data FILE.jsonl");
    return EXIT_USAGE;
  }
  lp_gen_opts g;
  return cli_gen_opts(o, &g);
}

/* The model config: --config, else the defaults of --model (a fresh run).
 * EXIT_OK, EXIT_FAIL or EXIT_USAGE. */
static int load_config(train_run *R) {
  const cli_opts *o = R->o;
  lp_err e = {0};
  lp_model_cfg_default(&R->cfg, R->kind < 0 ? LP_MODEL_ROBUSTFILL : R->kind);
  if (!o->config) {
    R->have_cfg = !o->resume;
    return EXIT_OK;
  }
  size_t len;
  char *text = slurp(o->verb, o->config, &len);
  if (!text) return EXIT_FAIL;
  int rc = lp_model_cfg_parse(&R->cfg, text, len, o->config, &e);
  free(text);
  if (rc) {
    cli_error(o->verb, "%s", e.msg);
    return EXIT_FAIL;
  }
  if (R->kind >= 0 && R->cfg.kind != R->kind) {
    cli_error(o->verb, "--model %s, but %s says model = %s", o->model, o->config,
              cli_model_kind_name(R->cfg.kind));
    return EXIT_USAGE;
  }
  R->have_cfg = 1;
  return EXIT_OK;
}

/* The split a checkpoint was trained on (its metadata's "split"), malloc'd, or NULL. */
static char *metadata_split(const char *metadata) {
  if (!metadata || !*metadata) return NULL;
  json_error_t je;
  json_t *m = json_loads(metadata, 0, &je);
  json_t *s = m ? json_object_get(m, "split") : NULL;
  char *r = json_is_string(s) ? strdup(json_string_value(s)) : NULL;
  json_decref(m);
  return r;
}

/* Resuming: what the checkpoint holds must agree with the options (refusals
 * name the file); its config, split and data seed are kept. */
static int read_resume(train_run *R) {
  const cli_opts *o = R->o;
  lp_err e = {0};
  if (lp_ckpt_read(o->resume, LP_CKPT_INFO_ONLY, &R->info, &e)) {
    cli_error(o->verb, "%s", e.msg);
    return EXIT_FAIL;
  }
  lp_model_cfg rc_cfg;
  lp_model_cfg_default(&rc_cfg, LP_MODEL_ROBUSTFILL);
  if (lp_model_cfg_parse(&rc_cfg, R->info.config_text, strlen(R->info.config_text), o->resume,
                         &e)) {
    cli_error(o->verb, "%s", e.msg);
    return EXIT_FAIL;
  }
  if (R->kind >= 0 && rc_cfg.kind != R->kind) {
    cli_error(o->verb, "--model %s, but the checkpoint %s holds a %s model", o->model, o->resume,
              cli_model_kind_name(rc_cfg.kind));
    return EXIT_USAGE;
  }
  if (!R->have_cfg) R->cfg = rc_cfg;
  char *ck_split = metadata_split(R->info.metadata);
  if (o->split && ck_split && strcmp(o->split, ck_split) != 0) {
    cli_error(o->verb, "--split %s, but the checkpoint %s was trained on split \"%s\" (resuming "
              "keeps it)", o->split, o->resume, ck_split);
    free(ck_split);
    return EXIT_USAGE;
  }
  if (o->split && !ck_split && R->info.pos.data_kind == LP_DATA_FILE) {
    cli_error(o->verb, "--split %s, but the checkpoint %s was trained on every line of its data "
              "file (resuming keeps that)", o->split, o->resume);
    return EXIT_USAGE;
  }
  if (!o->split && ck_split)
    R->split = R->split_keep = ck_split;
  else
    free(ck_split);
  if (o->given[CLI_O_DATA_SEED] && R->info.pos.data_kind == LP_DATA_GENERATED &&
      R->info.pos.data_seed != o->data_seed) {
    cli_error(o->verb, "--data-seed %llu, but the checkpoint %s was trained with data seed %llu "
              "(resuming keeps it)", (unsigned long long)o->data_seed, o->resume,
              (unsigned long long)R->info.pos.data_seed);
    return EXIT_USAGE;
  }
  return EXIT_OK;
}

/* The domain (resuming without --domain-options: with the resource beside
 * the checkpoint, and checked against it); a domain options file is copied
 * beside the new checkpoint as its resource. EXIT_OK or EXIT_FAIL. */
static int open_domain(train_run *R) {
  const cli_opts *o = R->o;
  lp_err e = {0};
  if (o->resume && !R->domain_opts) R->domain_opts = R->opts_keep = cli_resource_beside(o->resume);
  R->d = lp_domain_open(o->domain, R->domain_opts, &e);
  if (!R->d) {
    cli_error(o->verb, "%s", e.msg);
    return EXIT_FAIL;
  }
  if (o->resume) {
    lp_ckpt_domain cd;
    if (lp_ckpt_domain_of(R->d, &cd, &e) || lp_ckpt_check_domain(&R->info, o->resume, &cd, &e)) {
      cli_error(o->verb, "%s%s%s%s", e.msg, R->domain_opts ? " (domain options: " : "",
                R->domain_opts ? R->domain_opts : "", R->domain_opts ? ")" : "");
      return EXIT_FAIL;
    }
  }
  struct stat sb;
  if (R->domain_opts && stat(R->domain_opts, &sb) == 0 && S_ISREG(sb.st_mode)) {
    R->copy = cli_resource_path(o->out);
    int cr = R->copy ? cli_copy_file_atomic(o->verb, R->domain_opts, R->copy) : -1;
    if (cr < 0) {
      if (!R->copy) cli_error(o->verb, "out of memory");
      return EXIT_FAIL;
    }
    R->copied = cr == 0;
  }
  return EXIT_OK;
}

/* JSON of the command line and the run, stored in checkpoints. */
static char *make_metadata(const train_run *R, uint64_t seed, uint64_t data_seed) {
  const cli_opts *o = R->o;
  json_t *m = json_object(), *a = json_array();
  json_array_append_new(a, json_string("lpsynth"));
  for (int i = 0; i < R->argc; i++) {
    json_t *s = json_string(R->argv[i]);
    json_array_append_new(a, s ? s : json_string("(not UTF-8)"));
  }
  json_object_set_new(m, "command", a);
  json_object_set_new(m, "lpsynth", json_string("0.1.0"));
  time_t now = time(NULL);
  struct tm tm;
  char ts[64] = "";
  if (gmtime_r(&now, &tm)) strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_object_set_new(m, "started", json_string(ts));
  json_object_set_new(m, "domain", json_string(lp_domain_name(R->d)));
  json_object_set_new(m, "seed", cli_json_u64(seed));
  if (o->data) {
    json_t *s = json_string(o->data);
    json_object_set_new(m, "data", s ? s : json_string("(not UTF-8)"));
  } else {
    json_object_set_new(m, "data_seed", cli_json_u64(data_seed));
  }
  if (R->split) {
    json_t *s = json_string(R->split);
    json_object_set_new(m, "split", s ? s : json_string("(not UTF-8)"));
  }
  if (R->copy) {
    json_t *s = json_string(R->copy);
    if (s) json_object_set_new(m, "domain_options_copy", s);
  }
  json_object_set_new(m, "threads", json_integer(R->o->threads));
  char *s = json_dumps(m, JSON_COMPACT);
  json_decref(m);
  return s;
}

/* What the run is about to do (stderr). */
static void print_banner(const train_run *R) {
  const cli_opts *o = R->o;
  const lp_model_cfg *c = &R->cfg;
  if (o->resume)
    fprintf(stderr, "lpsynth train: resuming %s (%s) from step %lld to %lld, domain %s, %s\n",
            o->resume, cli_model_kind_name(c->kind), (long long)R->info.pos.step,
            (long long)o->steps, lp_domain_name(R->d),
            R->info.pos.data_kind == LP_DATA_FILE ? "tasks from a file" : "generated tasks");
  else
    fprintf(stderr,
            "lpsynth train: %s, d_model %d, %d+%d layers, batch %d, domain %s, %s%s, steps "
            "%lld, %lld thread%s, seed %llu\n",
            cli_model_kind_name(c->kind), c->d_model, c->n_enc_layers, c->n_dec_layers,
            c->batch_size, lp_domain_name(R->d), o->data ? "tasks from " : "generated tasks",
            o->data ? o->data : "", (long long)o->steps, (long long)o->threads,
            o->threads == 1 ? "" : "s", (unsigned long long)o->seed);
  if (R->split) fprintf(stderr, "lpsynth train: lines of split \"%s\" only\n", R->split);
  if (R->copied)
    fprintf(stderr, "lpsynth train: domain options %s copied to %s\n", R->domain_opts, R->copy);
}

/* Trains (SIGINT / SIGTERM: finish the step, save, return; a second signal
 * kills). EXIT_OK or EXIT_FAIL. */
static int run_training(train_run *R, lp_train_result *res) {
  const cli_opts *o = R->o;
  lp_train_opts t;
  lp_train_opts_default(&t);
  t.domain = R->d;
  t.cfg = &R->cfg;
  t.cfg_must_match = o->resume && o->config;
  t.data_path = o->data;
  t.data_seed = R->data_seed;
  cli_gen_opts(o, &t.gen); /* checked by check_options */
  t.max_line = (size_t)o->max_line;
  t.steps = o->steps;
  t.threads = (int)o->threads;
  t.chunk_tasks = (int)o->chunk;
  t.precision = o->precision;
  t.seed = o->seed;
  t.out_path = o->out;
  t.resume_path = o->resume;
  t.log_path = o->log;
  t.log_every = o->log_every;
  t.checkpoint_every = o->checkpoint_every;
  t.metadata = R->meta;
  t.stop = &g_stop;
  t.max_seconds = o->duration;
  t.split = R->split;
  if (g_mpi.comm.size > 1) t.comm = &g_mpi.comm;
  progress_ctx pc;
  memset(&pc, 0, sizeof pc);
  pc.json = o->json;
  cli_progress_start(&pc.pg, "train", (uint64_t)o->steps);
  t.progress = on_progress;
  t.user = &pc;
  if (!o->json && cli_mpi_root(&g_mpi)) print_banner(R);
  if (!o->json && cli_mpi_root(&g_mpi) && g_mpi.comm.size > 1)
    fprintf(stderr, "lpsynth train: %d MPI ranks x %lld thread(s); rank 0 writes\n",
            g_mpi.comm.size, (long long)o->threads);
  lp_ckpt_free(&R->info);
  struct sigaction sa, old_int, old_term, old_usr1;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  g_stop = 0;
  g_signal = 0;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGUSR1, &sa, &old_usr1); /* what mpirun forwards to the ranks at once */
  lp_err e = {0};
  int rc = lp_train_run(&t, res, &e);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  sigaction(SIGUSR1, &old_usr1, NULL);
  if (pc.printed) fputc('\n', stderr);
  lp_domain_free(R->d);
  R->d = NULL;
  if (!rc) return EXIT_OK;
  /* several ranks: an agreed failure is printed once, by rank 0 */
  if (cli_mpi_root(&g_mpi) || !g_mpi.agreed) cli_error(o->verb, "%s", e.msg);
  /* no checkpoint was written: no copy of the options beside it either */
  struct stat sb;
  if (R->copied && stat(o->out, &sb) != 0) unlink(R->copy);
  return EXIT_FAIL;
}

static void report_json(const train_run *R, const lp_train_result *r) {
  const cli_opts *o = R->o;
  json_t *j = json_object();
  json_object_set_new(j, "checkpoint", json_string(o->out));
  json_object_set_new(j, "model", json_string(cli_model_kind_name(r->cfg.kind)));
  json_object_set_new(j, "start_step", json_integer((json_int_t)r->start_step));
  json_object_set_new(j, "end_step", json_integer((json_int_t)r->end_step));
  json_object_set_new(j, "target_steps", json_integer((json_int_t)o->steps));
  json_object_set_new(j, "stopped", json_boolean(r->stopped));
  if (g_signal)
    json_object_set_new(j, "signal", json_string(g_signal == SIGINT    ? "SIGINT"
                                                 : g_signal == SIGUSR1 ? "SIGUSR1"
                                                                       : "SIGTERM"));
  if (r->time_limited) json_object_set_new(j, "time_limited", json_true());
  json_object_set_new(j, "seconds", json_real(r->seconds));
  json_object_set_new(j, "tasks_per_s", json_real(r->tasks_per_s));
  json_object_set_new(j, "precision", json_string(r->precision == LP_PREC_BF16 ? "bf16" : "fp32"));
  if (r->ranks > 1) { /* multi-process: ranks and this rank's time in the collectives */
    json_object_set_new(j, "ranks", json_integer(r->ranks));
    json_object_set_new(j, "comm_seconds", json_real(r->comm_seconds));
    json_object_set_new(j, "comm_share", json_real(r->seconds > 0 ? r->comm_seconds / r->seconds
                                                                  : 0.0));
    json_object_set_new(j, "comm_sum_seconds", json_real(r->comm_sum_seconds));
  }
  if (r->end_step - r->start_step) {
    json_object_set_new(j, "loss", json_real(r->final_loss));
    json_object_set_new(j, "token_acc", json_real(r->final_acc));
  }
  json_object_set_new(j, "checkpoints", json_integer((json_int_t)r->checkpoints));
  json_object_set_new(j, "tasks_seen", json_integer((json_int_t)r->tasks_seen));
  json_object_set_new(j, "num_params", json_integer((json_int_t)r->num_params));
  json_object_set_new(j, "seed", cli_json_u64(r->seed));
  if (!o->data) json_object_set_new(j, "data_seed", cli_json_u64(r->data_seed));
  if (R->split) json_object_set_new(j, "split", json_string(R->split));
  if (R->copy) json_object_set_new(j, "domain_options_copy", json_string(R->copy));
  if (o->data) {
    json_object_set_new(j, "skipped_long", json_integer((json_int_t)r->skipped_long));
    json_object_set_new(j, "truncated_specs", json_integer((json_int_t)r->truncated_specs));
    if (r->pass_lines >= 0) {
      json_object_set_new(j, "pass_lines", json_integer((json_int_t)r->pass_lines));
      json_object_set_new(j, "pass_skipped", json_integer((json_int_t)r->pass_skipped));
    }
  }
  json_dumpf(j, stdout, JSON_COMPACT);
  fputc('\n', stdout);
  json_decref(j);
}

static void report_text(const train_run *R, const lp_train_result *r) {
  const cli_opts *o = R->o;
  int64_t done = r->end_step - r->start_step;
  char el[32];
  cli_fmt_secs(r->seconds, el, sizeof el);
  if (done == 0 && !r->stopped) {
    printf("nothing to do: %s is already at step %lld (--steps %lld)\n",
           o->resume ? o->resume : o->out, (long long)r->end_step, (long long)o->steps);
    return;
  }
  printf("trained steps %lld..%lld of %lld in %s (%.1f tasks/s)", (long long)r->start_step,
         (long long)r->end_step, (long long)o->steps, el, r->tasks_per_s);
  if (done)
    printf("; loss %.4f, token accuracy %.3f (mean of the last %lld steps)", r->final_loss,
           r->final_acc, (long long)r->final_n);
  printf("\ncheckpoint: %s (step %lld, %lld tasks seen, %zu parameters)\n", o->out,
         (long long)r->end_step, (long long)r->tasks_seen, r->num_params);
  if (R->copied) printf("domain options: %s (a copy of %s)\n", R->copy, R->domain_opts);
  if (r->skipped_long || r->truncated_specs || r->pass_skipped > 0) {
    printf("pairs: %lld skipped (program longer than max_program_len %d) and %lld "
           "docstrings cut to max_spec_len %d while reading this run's batches",
           (long long)r->skipped_long, r->cfg.max_program_len, (long long)r->truncated_specs,
           r->cfg.max_spec_len);
    if (r->pass_lines >= 0)
      printf("; one pass of %s: %lld of %lld lines%s%s skipped", o->data,
             (long long)r->pass_skipped, (long long)r->pass_lines, R->split ? " of split " : "",
             R->split ? R->split : "");
    printf("\n");
  }
  if (r->stopped)
    printf("stopped%s at step %lld of %lld; continue with: lpsynth train ... --resume %s "
           "--steps %lld\n",
           g_signal == SIGINT    ? " by SIGINT"
           : g_signal == SIGTERM ? " by SIGTERM"
           : g_signal == SIGUSR1 ? " by SIGUSR1"
           : r->time_limited     ? " at the time limit"
                                 : "",
           (long long)r->end_step, (long long)o->steps, o->out, (long long)o->steps);
}

int cmd_train(int argc, char **argv) {
  cli_opts o;
  int rc = cli_parse(&train_verb, argc, argv, &o);
  if (rc != CLI_PARSED) return rc;
  if (!o.given[CLI_O_WORKERS]) o.threads = 1;
  if (cli_mpi_start(o.verb, &g_mpi)) { /* under mpirun: MPI, or a message */
    cli_mpi_end(&g_mpi, 1);
    cli_opts_free(&o);
    return EXIT_FAIL;
  }
  train_run R;
  memset(&R, 0, sizeof R);
  R.o = &o;
  R.argc = argc;
  R.argv = argv;
  R.split = o.split;
  R.domain_opts = o.domain_options;
  if ((rc = cli_no_operands(&o, argc, argv, NULL)) || (rc = check_options(&R)) ||
      (rc = load_config(&R)) || (o.resume && (rc = read_resume(&R))))
    goto done;
  /* default: a 52-bit seed derived from --seed (apart from `lpsynth gen --seed S` sets) */
  R.data_seed = o.given[CLI_O_DATA_SEED] ? o.data_seed
                                         : lp_task_seed(o.seed, 0x64617461ull /* "data" */) >> 12;
  if ((rc = open_domain(&R))) goto done;
  R.meta = make_metadata(&R, o.resume ? R.info.pos.init_seed : o.seed,
                         o.resume ? R.info.pos.data_seed : R.data_seed);
  lp_train_result res;
  if ((rc = run_training(&R, &res))) goto done;
  if (!cli_mpi_root(&g_mpi))
    ; /* several ranks: rank 0 reports */
  else if (o.json)
    report_json(&R, &res);
  else
    report_text(&R, &res);
  fflush(stdout);
done:
  /* several ranks: a rank that failed before training tells the others */
  if (rc && !g_mpi.agreed) cli_mpi_fail_early(&g_mpi, "failed before training (see its message)");
  cli_mpi_end(&g_mpi, 0);
  run_free(&R);
  cli_opts_free(&o);
  return rc;
}

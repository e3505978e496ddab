/* lpsynth train (the training loop of lpsynth/train.h with a progress line,
 * signal handling and a summary) and lpsynth ckpt info (what a checkpoint
 * holds). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "lpsynth/checkpoint.h"
#include "lpsynth/model.h"
#include "lpsynth/train.h"

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

static void fmt_secs(double s, char *buf, size_t n) {
  if (s < 0 || s > 1e8 || !isfinite(s))
    snprintf(buf, n, "?");
  else if (s < 60)
    snprintf(buf, n, "%.0fs", s);
  else if (s < 3600)
    snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
  else
    snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

/* An unsigned 64-bit value as a JSON integer, or a string past INT64_MAX. */
static json_t *json_u64(uint64_t v) {
  if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
  char b[32];
  snprintf(b, sizeof b, "%llu", (unsigned long long)v);
  return json_string(b);
}

static const char *kind_name(int kind) { return kind == LP_MODEL_LP ? "lp" : "robustfill"; }

/* ---------- train ---------- */

static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_signal;

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
      fmt_secs(p->eta_s, eta, sizeof eta);
      fprintf(stderr,
              "lpsynth train: step %lld/%lld  loss %.4f  acc %.3f  lr %.2e  %.1f tasks/s  ETA %s"
              "  (checkpoint saved)\n",
              (long long)p->step, (long long)p->total_steps, p->loss_avg, p->acc_avg, p->lr,
              p->tasks_per_s, eta);
    }
    return 0;
  }
  double t = cli_now();
  if (t - c->last < 0.25 && p->step != p->total_steps && !p->checkpoint_written) return 0;
  c->last = t;
  char el[32], eta[32];
  fmt_secs(p->elapsed_s, el, sizeof el);
  fmt_secs(p->eta_s, eta, sizeof eta);
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

/* JSON of the command line and the run, stored in checkpoints. */
static char *make_metadata(int argc, char **argv, const char *domain, uint64_t seed,
                           uint64_t data_seed, const char *data, const char *split,
                           const char *options_copy, int threads) {
  json_t *o = json_object(), *a = json_array();
  json_array_append_new(a, json_string("lpsynth"));
  for (int i = 0; i < argc; i++) {
    json_t *s = json_string(argv[i]);
    json_array_append_new(a, s ? s : json_string("(not UTF-8)"));
  }
  json_object_set_new(o, "command", a);
  json_object_set_new(o, "lpsynth", json_string("0.1.0"));
  time_t now = time(NULL);
  struct tm tm;
  char ts[64] = "";
  if (gmtime_r(&now, &tm)) strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_object_set_new(o, "started", json_string(ts));
  json_object_set_new(o, "domain", json_string(domain));
  json_object_set_new(o, "seed", json_u64(seed));
  if (data) {
    json_t *s = json_string(data);
    json_object_set_new(o, "data", s ? s : json_string("(not UTF-8)"));
  } else {
    json_object_set_new(o, "data_seed", json_u64(data_seed));
  }
  if (split) {
    json_t *s = json_string(split);
    json_object_set_new(o, "split", s ? s : json_string("(not UTF-8)"));
  }
  if (options_copy) {
    json_t *s = json_string(options_copy);
    if (s) json_object_set_new(o, "domain_options_copy", s);
  }
  json_object_set_new(o, "threads", json_integer(threads));
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

enum {
  OPT_DOMAIN = 1000, OPT_DOMAIN_OPTIONS, OPT_MODEL, OPT_CONFIG, OPT_DATA, OPT_STEPS, OPT_OUT,
  OPT_RESUME, OPT_THREADS, OPT_SEED, OPT_DATA_SEED, OPT_LOG, OPT_LOG_EVERY, OPT_CKPT_EVERY,
  OPT_JSON, OPT_HELP, OPT_MIN_EXPR, OPT_MAX_EXPR, OPT_EXAMPLES, OPT_MAX_LINE, OPT_TIME_LIMIT,
  OPT_SPLIT
};

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

/* "3600", "90s", "45m", "1.5h" -> seconds; -1 when malformed. */
static double parse_duration(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || !isfinite(v) || v <= 0) return -1;
  if (!strcmp(end, "") || !strcmp(end, "s")) return v;
  if (!strcmp(end, "m")) return v * 60;
  if (!strcmp(end, "h")) return v * 3600;
  return -1;
}

static void train_help(void) {
  printf(
      "usage: lpsynth train --domain D --model robustfill|lp [--config FILE] [--data FILE.jsonl]\n"
      "                     [--split NAME] --steps N --out CKPT [--resume CKPT] [--threads T]\n"
      "                     [--seed S] [--log FILE.csv] [--checkpoint-every K] [--json]\n\n"
      "Trains a model on tasks generated on the fly by the domain (task i from the seed\n"
      "derived from (data seed, i)) or read from a JSONL file, cycled. A line of the\n"
      "file is a task with \"tokens\" or \"program\" and \"inputs\"/\"outputs\" (or\n"
      "\"specs\"), or - for a domain whose specification is one text, such as python - a\n"
      "pair as `lpsynth corpus` writes it: \"docstring\" (the spec) and \"code\" (the\n"
      "program). A pair's docstring longer than max_spec_len tokens is cut to its first\n"
      "max_spec_len tokens; a pair whose program is longer than max_program_len is\n"
      "skipped, and the summary says how many were cut and skipped. A bad line stops\n"
      "training with FILE:LINE: message.\n\n"
      "Each step: forward and backward on one batch, gradient-norm clipping, Adam with\n"
      "decoupled weight decay and the warm-up / inverse-square-root learning rate. The\n"
      "checkpoint (config, parameters, Adam state, RNG and task position) is written\n"
      "atomically every K steps, at the end, and when SIGINT/SIGTERM arrives (the\n"
      "current step finishes first; a second signal kills at once). --resume continues\n"
      "from a checkpoint's step to N total steps and, with one thread, gives the same\n"
      "bytes as training straight through.\n\n"
      "  --domain NAME|PATH.so   the domain plugin (required)\n"
      "  --domain-options STR    options passed to the domain's create(); when STR is a\n"
      "                          file (python: the tokenizer model), it is copied\n"
      "                          atomically to CKPT.spm beside the checkpoint, where\n"
      "                          synth, eval and --resume find it when no\n"
      "                          --domain-options is given\n"
      "  --model robustfill|lp   the model (required unless --config or --resume says it)\n"
      "  --config FILE           model config (`key = value`, models/CONFIG.md); default:\n"
      "                          the model's defaults. With --resume it must equal the\n"
      "                          checkpoint's config\n"
      "  --data FILE.jsonl       train on these tasks (default: generate them)\n"
      "  --split NAME            with --data: only the lines whose \"split\" is NAME (e.g.\n"
      "                          train; a line without \"split\" is an error). Resuming\n"
      "                          keeps the checkpoint's split\n"
      "  --steps N               total steps to reach (required)\n"
      "  --out CKPT              checkpoint file to write (required)\n"
      "  --resume CKPT           continue from this checkpoint (may equal --out)\n"
      "  --threads T             cores (default 1): T data-parallel workers, each a\n"
      "                          share of the batch with one-thread OpenBLAS\n"
      "                          (bitwise resume needs the same T throughout)\n"
      "  --seed S                parameter init and dropout seed (default 1)\n"
      "  --data-seed S           base seed of generated tasks (default: derived from --seed;\n"
      "                          keep it apart from the seeds of evaluation sets)\n"
      "  --min-expr A, --max-expr B, --examples E\n"
      "                          generator options (domain defaults; see `lpsynth gen`)\n"
      "  --log FILE.csv          CSV log: %s\n"
      "  --log-every N           a CSV row every N steps (means since the previous row;\n"
      "                          default 100)\n"
      "  --checkpoint-every K    checkpoint every K steps (default: the config's\n"
      "                          checkpoint_every; 0: only at the end)\n"
      "  --time-limit T          stop cleanly (with a checkpoint) after training for T\n"
      "                          (seconds, or with a suffix: 90s, 45m, 1.5h)\n"
      "  --max-line BYTES        longest accepted line of --data (default 64 MiB)\n"
      "  --json                  print the summary as one JSON object\n"
      "  --help                  this text\n\n"
      "The progress line (stderr) shows step, loss, token accuracy, learning rate,\n"
      "gradient norm, tasks/s and ETA; LPSYNTH_PROGRESS=1/0 forces it on/off.\n",
      lp_train_csv_header());
}

int cmd_train(int argc, char **argv) {
  static const struct option lo[] = {
      {"domain", required_argument, 0, OPT_DOMAIN},
      {"domain-options", required_argument, 0, OPT_DOMAIN_OPTIONS},
      {"model", required_argument, 0, OPT_MODEL},
      {"config", required_argument, 0, OPT_CONFIG},
      {"data", required_argument, 0, OPT_DATA},
      {"steps", required_argument, 0, OPT_STEPS},
      {"out", required_argument, 0, OPT_OUT},
      {"resume", required_argument, 0, OPT_RESUME},
      {"threads", required_argument, 0, OPT_THREADS},
      {"seed", required_argument, 0, OPT_SEED},
      {"data-seed", required_argument, 0, OPT_DATA_SEED},
      {"log", required_argument, 0, OPT_LOG},
      {"log-every", required_argument, 0, OPT_LOG_EVERY},
      {"checkpoint-every", required_argument, 0, OPT_CKPT_EVERY},
      {"min-expr", required_argument, 0, OPT_MIN_EXPR},
      {"max-expr", required_argument, 0, OPT_MAX_EXPR},
      {"examples", required_argument, 0, OPT_EXAMPLES},
      {"max-line", required_argument, 0, OPT_MAX_LINE},
      {"time-limit", required_argument, 0, OPT_TIME_LIMIT},
      {"split", required_argument, 0, OPT_SPLIT},
      {"json", no_argument, 0, OPT_JSON},
      {"help", no_argument, 0, OPT_HELP},
      {0, 0, 0, 0}};
  const char *V = "train";
  const char *domain = NULL, *domain_opts = NULL, *model = NULL, *config = NULL, *data = NULL,
             *out = NULL, *resume = NULL, *logp = NULL, *split = NULL;
  int64_t steps = 0, threads = 1, log_every = 100, ck_every = -1, mn = 0, mx = 0, nex = 0,
          max_line = 0;
  uint64_t seed = 1, data_seed = 0;
  double time_limit = 0;
  int have_steps = 0, have_data_seed = 0, json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (c) {
      case OPT_DOMAIN: domain = optarg; break;
      case OPT_DOMAIN_OPTIONS: domain_opts = optarg; break;
      case OPT_MODEL: model = optarg; break;
      case OPT_CONFIG: config = optarg; break;
      case OPT_DATA: data = optarg; break;
      case OPT_OUT: out = optarg; break;
      case OPT_RESUME: resume = optarg; break;
      case OPT_LOG: logp = optarg; break;
      case OPT_JSON: json = 1; break;
      case OPT_SPLIT:
        if (!*optarg) {
          cli_error(V, "--split expects a split name (train, valid, test)");
          return EXIT_USAGE;
        }
        split = optarg;
        break;
      case OPT_STEPS:
        if (cli_parse_i64(V, "--steps", optarg, 1, (int64_t)1 << 50, &steps)) return EXIT_USAGE;
        have_steps = 1;
        break;
      case OPT_THREADS:
        if (cli_parse_i64(V, "--threads", optarg, 1, 64, &threads)) return EXIT_USAGE;
        break;
      case OPT_SEED:
        if (cli_parse_u64(V, "--seed", optarg, &seed)) return EXIT_USAGE;
        break;
      case OPT_DATA_SEED:
        if (cli_parse_u64(V, "--data-seed", optarg, &data_seed)) return EXIT_USAGE;
        have_data_seed = 1;
        break;
      case OPT_LOG_EVERY:
        if (cli_parse_i64(V, "--log-every", optarg, 1, (int64_t)1 << 50, &log_every))
          return EXIT_USAGE;
        break;
      case OPT_CKPT_EVERY:
        if (cli_parse_i64(V, "--checkpoint-every", optarg, 0, (int64_t)1 << 50, &ck_every))
          return EXIT_USAGE;
        break;
      case OPT_MIN_EXPR:
        if (cli_parse_i64(V, "--min-expr", optarg, 1, 1000, &mn)) return EXIT_USAGE;
        break;
      case OPT_MAX_EXPR:
        if (cli_parse_i64(V, "--max-expr", optarg, 1, 1000, &mx)) return EXIT_USAGE;
        break;
      case OPT_EXAMPLES:
        if (cli_parse_i64(V, "--examples", optarg, 1, 1000, &nex)) return EXIT_USAGE;
        break;
      case OPT_MAX_LINE:
        if (cli_parse_i64(V, "--max-line", optarg, 16, (int64_t)1 << 34, &max_line))
          return EXIT_USAGE;
        break;
      case OPT_TIME_LIMIT:
        time_limit = parse_duration(optarg);
        if (time_limit <= 0) {
          cli_error(V, "--time-limit expects a positive duration (3600, 90s, 45m, 1.5h), got "
                    "\"%s\"", optarg);
          return EXIT_USAGE;
        }
        break;
      case OPT_HELP:
        train_help();
        return EXIT_OK;
      default:
        return EXIT_USAGE;
    }
  }
  if (optind < argc) {
    cli_error(V, "unexpected argument \"%s\"", argv[optind]);
    return EXIT_USAGE;
  }
  if (!domain) {
    cli_error(V, "--domain NAME|PATH.so is required (see `lpsynth domains`)");
    return EXIT_USAGE;
  }
  if (!have_steps) {
    cli_error(V, "--steps N is required");
    return EXIT_USAGE;
  }
  if (!out) {
    cli_error(V, "--out CKPT is required");
    return EXIT_USAGE;
  }
  int kind = -1;
  if (model) {
    if (!strcmp(model, "robustfill"))
      kind = LP_MODEL_ROBUSTFILL;
    else if (!strcmp(model, "lp"))
      kind = LP_MODEL_LP;
    else {
      cli_error(V, "--model must be robustfill or lp, got \"%s\"", model);
      return EXIT_USAGE;
    }
  }
  if (!model && !config && !resume) {
    cli_error(V, "--model robustfill|lp is required (or --config FILE, or --resume CKPT)");
    return EXIT_USAGE;
  }
  if (split && !data) {
    cli_error(V, "--split selects lines of a data file: give --data FILE.jsonl");
    return EXIT_USAGE;
  }
  if (mn && mx && mn > mx) {
    cli_error(V, "--min-expr %lld is larger than --max-expr %lld", (long long)mn, (long long)mx);
    return EXIT_USAGE;
  }

  /* the model config */
  lp_model_cfg cfg;
  int have_cfg = 0;
  lp_err e = {0};
  lp_model_cfg_default(&cfg, kind < 0 ? LP_MODEL_ROBUSTFILL : kind);
  if (config) {
    size_t len;
    char *text = slurp(V, config, &len);
    if (!text) return EXIT_FAIL;
    int rc = lp_model_cfg_parse(&cfg, text, len, config, &e);
    free(text);
    if (rc) {
      cli_error(V, "%s", e.msg);
      return EXIT_FAIL;
    }
    if (kind >= 0 && cfg.kind != kind) {
      cli_error(V, "--model %s, but %s says model = %s", model, config, kind_name(cfg.kind));
      return EXIT_USAGE;
    }
    have_cfg = 1;
  } else if (!resume) {
    have_cfg = 1; /* the defaults of --model */
  }
  /* resuming: what the checkpoint holds (refusals come with the file's name) */
  lp_ckpt info;
  memset(&info, 0, sizeof info);
  char *split_keep = NULL, *opts_keep = NULL; /* owned copies of defaults */
  if (resume) {
    if (lp_ckpt_read(resume, LP_CKPT_INFO_ONLY, &info, &e)) {
      cli_error(V, "%s", e.msg);
      return EXIT_FAIL;
    }
    lp_model_cfg rc_cfg;
    lp_model_cfg_default(&rc_cfg, LP_MODEL_ROBUSTFILL);
    if (lp_model_cfg_parse(&rc_cfg, info.config_text, strlen(info.config_text), resume, &e)) {
      cli_error(V, "%s", e.msg);
      lp_ckpt_free(&info);
      return EXIT_FAIL;
    }
    if (kind >= 0 && rc_cfg.kind != kind) {
      cli_error(V, "--model %s, but the checkpoint %s holds a %s model", model, resume,
                kind_name(rc_cfg.kind));
      lp_ckpt_free(&info);
      return EXIT_USAGE;
    }
    if (!have_cfg) cfg = rc_cfg;
    char *ck_split = metadata_split(info.metadata);
    if (split && ck_split && strcmp(split, ck_split) != 0) {
      cli_error(V, "--split %s, but the checkpoint %s was trained on split \"%s\" (resuming "
                "keeps it)", split, resume, ck_split);
      free(ck_split);
      lp_ckpt_free(&info);
      return EXIT_USAGE;
    }
    if (split && !ck_split && info.pos.data_kind == LP_DATA_FILE) {
      cli_error(V, "--split %s, but the checkpoint %s was trained on every line of its data "
                "file (resuming keeps that)", split, resume);
      lp_ckpt_free(&info);
      return EXIT_USAGE;
    }
    if (!split && ck_split) split = split_keep = ck_split;
    else free(ck_split);
    if (have_data_seed && info.pos.data_kind == LP_DATA_GENERATED &&
        info.pos.data_seed != data_seed) {
      cli_error(V, "--data-seed %llu, but the checkpoint %s was trained with data seed %llu "
                "(resuming keeps it)", (unsigned long long)data_seed, resume,
                (unsigned long long)info.pos.data_seed);
      lp_ckpt_free(&info);
      free(split_keep);
      return EXIT_USAGE;
    }
  }
  /* default: a 52-bit seed derived from --seed (apart from `lpsynth gen --seed S` sets) */
  if (!have_data_seed) data_seed = lp_task_seed(seed, 0x64617461ull /* "data" */) >> 12;

  /* resuming without --domain-options: the copy beside the checkpoint */
  if (resume && !domain_opts) {
    opts_keep = cli_options_beside(resume);
    domain_opts = opts_keep;
  }
  int fail_rc = EXIT_FAIL;
  char *meta = NULL, *copy = NULL;
  int copied = 0; /* copy was written by this run (not the options file itself) */
  lp_domain *d = lp_domain_open(domain, domain_opts, &e);
  if (!d) {
    cli_error(V, "%s", e.msg);
    lp_ckpt_free(&info);
    goto fail;
  }
  if (resume) {
    lp_ckpt_domain cd;
    if (lp_ckpt_domain_of(d, &cd, &e) || lp_ckpt_check_domain(&info, resume, &cd, &e)) {
      cli_error(V, "%s%s%s%s", e.msg, domain_opts ? " (domain options: " : "",
                domain_opts ? domain_opts : "", domain_opts ? ")" : "");
      lp_ckpt_free(&info);
      goto fail;
    }
  }
  /* a domain options file (the python tokenizer) goes beside the checkpoint */
  if (domain_opts) {
    struct stat sb;
    if (stat(domain_opts, &sb) == 0 && S_ISREG(sb.st_mode)) {
      copy = cli_options_path(out);
      int cr = copy ? cli_copy_file_atomic(V, domain_opts, copy) : -1;
      if (cr < 0) {
        if (!copy) cli_error(V, "out of memory");
        lp_ckpt_free(&info);
        goto fail;
      }
      copied = cr == 0;
    }
  }
  meta = make_metadata(argc, argv, lp_domain_name(d), resume ? info.pos.init_seed : seed,
                       resume ? info.pos.data_seed : data_seed, data, split, copy,
                       (int)threads);

  lp_train_opts o;
  lp_train_opts_default(&o);
  o.domain = d;
  o.cfg = &cfg;
  o.cfg_must_match = resume && config;
  o.data_path = data;
  o.data_seed = data_seed;
  o.gen.struct_size = sizeof o.gen;
  o.gen.min_size = (int32_t)mn;
  o.gen.max_size = (int32_t)mx;
  o.gen.n_examples = (int32_t)nex;
  o.max_line = (size_t)max_line;
  o.steps = steps;
  o.threads = (int)threads;
  o.seed = seed;
  o.out_path = out;
  o.resume_path = resume;
  o.log_path = logp;
  o.log_every = log_every;
  o.checkpoint_every = ck_every;
  o.metadata = meta;
  o.stop = &g_stop;
  o.max_seconds = time_limit;
  o.split = split;
  progress_ctx pc;
  memset(&pc, 0, sizeof pc);
  pc.json = json;
  cli_progress_start(&pc.pg, "train", (uint64_t)steps);
  o.progress = on_progress;
  o.user = &pc;

  if (!json) {
    if (resume)
      fprintf(stderr, "lpsynth train: resuming %s (%s) from step %lld to %lld, domain %s, %s\n",
              resume, kind_name(cfg.kind), (long long)info.pos.step, (long long)steps,
              lp_domain_name(d),
              info.pos.data_kind == LP_DATA_FILE ? "tasks from a file" : "generated tasks");
    else
      fprintf(stderr,
              "lpsynth train: %s, d_model %d, %d+%d layers, batch %d, domain %s, %s%s, steps "
              "%lld, %lld thread%s, seed %llu\n",
              kind_name(cfg.kind), cfg.d_model, cfg.n_enc_layers, cfg.n_dec_layers,
              cfg.batch_size, lp_domain_name(d), data ? "tasks from " : "generated tasks",
              data ? data : "", (long long)steps, (long long)threads, threads == 1 ? "" : "s",
              (unsigned long long)seed);
    if (split) fprintf(stderr, "lpsynth train: lines of split \"%s\" only\n", split);
    if (copied)
      fprintf(stderr, "lpsynth train: domain options %s copied to %s\n", domain_opts, copy);
  }
  lp_ckpt_free(&info);

  /* SIGINT / SIGTERM: finish the step, save, return. A second signal kills. */
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  g_stop = 0;
  g_signal = 0;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  lp_train_result r;
  memset(&e, 0, sizeof e);
  int rc = lp_train_run(&o, &r, &e);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  if (pc.printed) fputc('\n', stderr);
  free(meta);
  meta = NULL;
  lp_domain_free(d);
  d = NULL;
  if (rc) {
    cli_error(V, "%s", e.msg);
    /* no checkpoint was written: no copy of the options beside it either */
    struct stat sb;
    if (copied && stat(out, &sb) != 0) unlink(copy);
    goto fail;
  }
  int64_t done = r.end_step - r.start_step;
  if (json) {
    json_t *j = json_object();
    json_object_set_new(j, "checkpoint", json_string(out));
    json_object_set_new(j, "model", json_string(kind_name(r.cfg.kind)));
    json_object_set_new(j, "start_step", json_integer((json_int_t)r.start_step));
    json_object_set_new(j, "end_step", json_integer((json_int_t)r.end_step));
    json_object_set_new(j, "target_steps", json_integer((json_int_t)steps));
    json_object_set_new(j, "stopped", json_boolean(r.stopped));
    if (g_signal)
      json_object_set_new(j, "signal", json_string(g_signal == SIGINT ? "SIGINT" : "SIGTERM"));
    if (r.time_limited) json_object_set_new(j, "time_limited", json_true());
    json_object_set_new(j, "seconds", json_real(r.seconds));
    json_object_set_new(j, "tasks_per_s", json_real(r.tasks_per_s));
    if (done) {
      json_object_set_new(j, "loss", json_real(r.final_loss));
      json_object_set_new(j, "token_acc", json_real(r.final_acc));
    }
    json_object_set_new(j, "checkpoints", json_integer((json_int_t)r.checkpoints));
    json_object_set_new(j, "tasks_seen", json_integer((json_int_t)r.tasks_seen));
    json_object_set_new(j, "num_params", json_integer((json_int_t)r.num_params));
    json_object_set_new(j, "seed", json_u64(r.seed));
    if (!data) json_object_set_new(j, "data_seed", json_u64(r.data_seed));
    if (split) json_object_set_new(j, "split", json_string(split));
    if (copy) json_object_set_new(j, "domain_options_copy", json_string(copy));
    if (data) {
      json_object_set_new(j, "skipped_long", json_integer((json_int_t)r.skipped_long));
      json_object_set_new(j, "truncated_specs", json_integer((json_int_t)r.truncated_specs));
      if (r.pass_lines >= 0) {
        json_object_set_new(j, "pass_lines", json_integer((json_int_t)r.pass_lines));
        json_object_set_new(j, "pass_skipped", json_integer((json_int_t)r.pass_skipped));
      }
    }
    json_dumpf(j, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(j);
  } else {
    char el[32];
    fmt_secs(r.seconds, el, sizeof el);
    if (done == 0 && !r.stopped) {
      printf("nothing to do: %s is already at step %lld (--steps %lld)\n", resume ? resume : out,
             (long long)r.end_step, (long long)steps);
    } else {
      printf("trained steps %lld..%lld of %lld in %s (%.1f tasks/s)", (long long)r.start_step,
             (long long)r.end_step, (long long)steps, el, r.tasks_per_s);
      if (done) printf("; loss %.4f, token accuracy %.3f (mean of the last %lld steps)",
                       r.final_loss, r.final_acc, (long long)r.final_n);
      printf("\ncheckpoint: %s (step %lld, %lld tasks seen, %zu parameters)\n", out,
             (long long)r.end_step, (long long)r.tasks_seen, r.num_params);
      if (copied) printf("domain options: %s (a copy of %s)\n", copy, domain_opts);
      if (r.skipped_long || r.truncated_specs || r.pass_skipped > 0) {
        printf("pairs: %lld skipped (program longer than max_program_len %d) and %lld "
               "docstrings cut to max_spec_len %d while reading this run's batches",
               (long long)r.skipped_long, r.cfg.max_program_len, (long long)r.truncated_specs,
               r.cfg.max_spec_len);
        if (r.pass_lines >= 0)
          printf("; one pass of %s: %lld of %lld lines%s%s skipped", data,
                 (long long)r.pass_skipped, (long long)r.pass_lines, split ? " of split " : "",
                 split ? split : "");
        printf("\n");
      }
      if (r.stopped)
        printf("stopped%s at step %lld of %lld; continue with: lpsynth train ... --resume %s "
               "--steps %lld\n",
               g_signal == SIGINT    ? " by SIGINT"
               : g_signal == SIGTERM ? " by SIGTERM"
               : r.time_limited      ? " at the time limit"
                                     : "",
               (long long)r.end_step, (long long)steps, out, (long long)steps);
    }
  }
  fflush(stdout);
  fail_rc = EXIT_OK;
fail:
  lp_domain_free(d);
  free(meta);
  free(copy);
  free(split_keep);
  free(opts_keep);
  return fail_rc;
}

/* ---------- ckpt ---------- */

static json_t *config_json(const char *text) {
  json_t *o = json_object();
  const char *p = text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    char line[256];
    if (n < sizeof line) {
      memcpy(line, p, n);
      line[n] = 0;
      char *eq = strstr(line, " = ");
      if (eq) {
        *eq = 0;
        const char *v = eq + 3;
        char *end;
        long long ll = strtoll(v, &end, 10);
        if (*v && !*end) {
          json_object_set_new(o, line, json_integer(ll));
        } else {
          double dv = strtod(v, &end);
          json_object_set_new(o, line, *v && !*end ? json_real(dv) : json_string(v));
        }
      }
    }
    p += n + (nl ? 1 : 0);
  }
  return o;
}

/* Checks checkpoint k (read from path) as synth, eval and --resume load it:
 * against the domain `domain` (NULL: the one the checkpoint names) opened
 * with `dopts` (NULL: the CKPT.spm that train copied beside it, if any), then
 * lp_ckpt_check_model - the checks of lp_ckpt_load. 0, or prints why not
 * and returns -1. *plugin gets the plugin's file (malloc'd) on success. */
static int ckpt_info_check(const char *path, const lp_ckpt *k, const char *domain,
                           const char *dopts, char **plugin) {
  const char *V = "ckpt info";
  lp_err e = {0};
  char *beside = dopts ? NULL : cli_options_beside(path);
  if (beside) dopts = beside;
  int rc = -1;
  lp_domain *d = lp_domain_open(domain ? domain : k->domain.name, dopts, &e);
  lp_ckpt_domain dom;
  if (!d) {
    cli_error(V, "%s: cannot check the checkpoint against its domain: %s%s", path, e.msg,
              domain ? "" : " (give the plugin with --domain PATH.so)");
  } else if (lp_ckpt_domain_of(d, &dom, &e)) {
    if (dopts)
      cli_error(V, "%s: %s (domain options: %s)", path, e.msg, dopts);
    else
      cli_error(V, "%s: %s (no --domain-options given, and no %s.spm beside the checkpoint)", path,
                e.msg, path);
  } else if (lp_ckpt_check_model(k, path, &dom, &e)) {
    cli_error(V, "%s", e.msg);
  } else {
    const char *pp = lp_domain_path(d);
    *plugin = strdup(pp ? pp : lp_domain_name(d));
    rc = *plugin ? 0 : -1;
    if (rc) cli_error(V, "out of memory");
  }
  lp_domain_free(d);
  free(beside);
  return rc;
}

static int ckpt_info(int argc, char **argv) {
  static const struct option lo[] = {{"json", no_argument, 0, 'j'},
                                     {"domain", required_argument, 0, 'd'},
                                     {"domain-options", required_argument, 0, 'o'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  int json = 0, c;
  const char *domain = NULL, *dopts = NULL;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    if (c == 'j') {
      json = 1;
      continue;
    }
    if (c == 'd') {
      domain = optarg;
      continue;
    }
    if (c == 'o') {
      dopts = optarg;
      continue;
    }
    if (c == 'h') {
      printf("usage: lpsynth ckpt info [--json] [--domain NAME|PATH.so] [--domain-options STR] "
             "CKPT\n\n"
             "Verifies a checkpoint as synth, eval and train --resume load it - the file\n"
             "(magic, format version, length, CRC-32C, every section), its domain's plugin\n"
             "and vocabularies (the fingerprint), the stored config, and the model that\n"
             "config makes against the stored tensor layout - and prints its domain, step,\n"
             "training position, model config and metadata. Exit status 1 when it would\n"
             "not load.\n\n"
             "  --json                  one JSON object\n"
             "  --domain NAME|PATH.so   the domain plugin (default: the one the checkpoint\n"
             "                          names, found as `--domain NAME` finds it)\n"
             "  --domain-options STR    the domain's options (default: CKPT.spm beside the\n"
             "                          checkpoint, if any, as synth and eval do)\n");
      return EXIT_OK;
    }
    return EXIT_USAGE;
  }
  if (optind + 1 != argc) {
    cli_error("ckpt info", optind < argc ? "one checkpoint file at a time"
                                         : "a checkpoint file is required");
    return EXIT_USAGE;
  }
  const char *path = argv[optind];
  lp_ckpt k;
  lp_err e = {0};
  if (lp_ckpt_read(path, LP_CKPT_INFO_ONLY, &k, &e)) {
    cli_error("ckpt info", "%s", e.msg);
    return EXIT_FAIL;
  }
  char *plugin = NULL;
  if (ckpt_info_check(path, &k, domain, dopts, &plugin)) {
    lp_ckpt_free(&k);
    return EXIT_FAIL;
  }
  lp_model_cfg cfg;
  lp_model_cfg_default(&cfg, LP_MODEL_ROBUSTFILL);
  lp_err ce = {0};
  int cfg_ok = lp_model_cfg_parse(&cfg, k.config_text, strlen(k.config_text), path, &ce) == 0;
  char fp[32];
  snprintf(fp, sizeof fp, "%016llx", (unsigned long long)k.domain.vocab_fp);
  const char *dk = k.pos.data_kind == LP_DATA_FILE ? "file" : "generated";
  if (json) {
    json_t *o = json_pack("{s:s, s:I, s:i, s:s, s:s, s:i, s:i, s:i, s:s?, s:I, s:I, s:I, s:f, "
                          "s:s, s:I, s:I, s:I, s:s}",
                          "path", path, "bytes", (json_int_t)k.file_size, "version",
                          (int)k.version, "domain", k.domain.name, "vocab_fingerprint", fp,
                          "spec_parts", (int)k.domain.n_parts, "program_vocab",
                          (int)k.domain.prog.size, "spec_vocab", (int)k.domain.spec.size,
                          "model", cfg_ok ? kind_name(cfg.kind) : NULL, "step",
                          (json_int_t)k.pos.step, "tasks_seen", (json_int_t)k.pos.next_task,
                          "adam_t", (json_int_t)k.adam_t, "seconds", k.pos.seconds, "data", dk,
                          "num_params", (json_int_t)k.n_params, "tensors",
                          (json_int_t)lp_layout_count(k.layout), "state_values",
                          (json_int_t)k.n_state, "config_text", k.config_text);
    if (o) {
      if (k.pos.data_kind == LP_DATA_GENERATED)
        json_object_set_new(o, "data_seed", json_u64(k.pos.data_seed));
      json_object_set_new(o, "init_seed", json_u64(k.pos.init_seed));
      json_object_set_new(o, "plugin", json_string(plugin));
      json_object_set_new(o, "config", config_json(k.config_text));
      json_error_t je;
      json_t *m = k.metadata && *k.metadata ? json_loads(k.metadata, 0, &je) : NULL;
      if (m)
        json_object_set_new(o, "metadata", m);
      else
        json_object_set_new(o, "metadata", json_string(k.metadata ? k.metadata : ""));
      json_dumpf(o, stdout, JSON_COMPACT);
      fputc('\n', stdout);
      json_decref(o);
    }
  } else {
    char el[32];
    fmt_secs(k.pos.seconds, el, sizeof el);
    printf("file:       %s (%zu bytes, format version %u, checksum ok)\n", path, k.file_size,
           k.version);
    printf("domain:     %s (vocabulary fingerprint %s; program %d tokens, spec %d, %u part%s)\n",
           k.domain.name, fp, k.domain.prog.size, k.domain.spec.size, k.domain.n_parts,
           k.domain.n_parts == 1 ? "" : "s");
    printf("checked:    loads with %s (vocabularies, config and tensor layout match)\n", plugin);
    printf("model:      %s, %zu parameters in %zu tensors\n",
           cfg_ok ? kind_name(cfg.kind) : "(unreadable config)", k.n_params,
           lp_layout_count(k.layout));
    printf("step:       %lld (%llu tasks seen, %s of training; Adam t = %lld)\n",
           (long long)k.pos.step, (unsigned long long)k.pos.next_task, el,
           (long long)k.adam_t);
    if (k.pos.data_kind == LP_DATA_GENERATED)
      printf("data:       generated tasks, data seed %llu; init seed %llu\n",
             (unsigned long long)k.pos.data_seed, (unsigned long long)k.pos.init_seed);
    else
      printf("data:       tasks from a file; init seed %llu\n",
             (unsigned long long)k.pos.init_seed);
    if (k.n_state) printf("state:      %zu values\n", k.n_state);
    printf("metadata:   %s\n", k.metadata && *k.metadata ? k.metadata : "(none)");
    printf("config:\n");
    const char *p = k.config_text;
    while (*p) {
      const char *nl = strchr(p, '\n');
      size_t n = nl ? (size_t)(nl - p) : strlen(p);
      printf("  %.*s\n", (int)n, p);
      p += n + (nl ? 1 : 0);
    }
  }
  lp_ckpt_free(&k);
  free(plugin);
  return EXIT_OK;
}

/* ckpt strip IN OUT: the checkpoint without its optimiser state (a third of
 * the size), for shipping a model; `train --resume` refuses the result. */
static int ckpt_strip(int argc, char **argv) {
  static const struct option lo[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    if (c == 'h') {
      printf("usage: lpsynth ckpt strip IN.ckpt OUT.ckpt\n\n"
             "Writes IN without its Adam moments (OUT is about a third of the size): a\n"
             "model for synth and eval, with its config, domain fingerprint, parameters,\n"
             "model state, training position and metadata. Training cannot resume from\n"
             "it (`train --resume` refuses). OUT is written atomically; it may equal IN.\n");
      return EXIT_OK;
    }
    return EXIT_USAGE;
  }
  if (optind + 2 != argc) {
    cli_error("ckpt strip", "two files are required: IN.ckpt OUT.ckpt");
    return EXIT_USAGE;
  }
  lp_ckpt k;
  lp_err e = {0};
  if (lp_ckpt_read(argv[optind], 0, &k, &e)) {
    cli_error("ckpt strip", "%s", e.msg);
    return EXIT_FAIL;
  }
  free(k.adam_m);
  free(k.adam_v);
  k.adam_m = k.adam_v = NULL;
  k.n_adam = 0;
  int rc = lp_ckpt_write(argv[optind + 1], &k, &e);
  if (rc) cli_error("ckpt strip", "%s", e.msg);
  lp_ckpt_free(&k);
  return rc ? EXIT_FAIL : EXIT_OK;
}

int cmd_ckpt(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    FILE *f = argc < 2 ? stderr : stdout;
    fprintf(f, "usage: lpsynth ckpt info [--json] [--domain D] [--domain-options STR] CKPT\n"
               "       lpsynth ckpt strip IN.ckpt OUT.ckpt\n\n"
               "  info   verify a checkpoint and print what it holds\n"
               "  strip  the checkpoint without its optimiser state (for shipping a model)\n");
    return argc < 2 ? EXIT_USAGE : EXIT_OK;
  }
  if (!strcmp(argv[1], "info")) return ckpt_info(argc - 1, argv + 1);
  if (!strcmp(argv[1], "strip")) return ckpt_strip(argc - 1, argv + 1);
  cli_error("ckpt", "unknown subcommand \"%s\" (try: lpsynth ckpt info CKPT, ckpt strip IN OUT)",
            argv[1]);
  return EXIT_USAGE;
}

/* lpsynth bench train: the real training step of a config - the trainer's own
 * loop (lp_train_run: producer thread, train step, clipping, Adam), no
 * checkpoint - with the time per phase and the FLOPs of the shapes run. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lpsynth/train.h"
#include "mpi_comm.h"

static const char *V = "bench train";

/* The trainer's default chunk, for the help. */
static const char *chunk_default_line(void) {
  static char line[64];
  snprintf(line, sizeof line, "the trainer's default --chunk: %d", LP_CHUNK_DEFAULT);
  return line;
}

static const cli_verb_spec bench_train_verb = {
    CLI_BENCH_TRAIN, "bench train", NULL,
    "Runs the real training step of a config - the trainer's own loop: tasks from\n"
    "the domain's generator (or --data), forward and backward, clipping and Adam -\n"
    "for W warm-up steps, then N profiled steps, and reports tasks/s, the time per\n"
    "phase and the FLOPs of the products and attention as run (padded shapes)\n"
    "against those on the non-pad positions (RobustFill; the LP's phases are not\n"
    "split). Phase times are summed over the workers (T workers: about T times the\n"
    "wall time). Nothing is written. Under mpirun (N ranks) the steps are\n"
    "multi-process ones, as `train`'s: rank 0 reports the job's tasks/s, its own\n"
    "phases and its time in the collectives (comm).",
    chunk_default_line};

/* The whole file as a NUL-terminated string (NULL after a message). */
static char *read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    cli_error(V, "%s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *s = malloc(cap);
  while (s) {
    if (n + 1 >= cap) {
      char *q = cap < ((size_t)1 << 24) ? realloc(s, cap *= 2) : NULL;
      if (!q) {
        free(s);
        s = NULL;
        cli_error(V, "%s: larger than 16 MiB or out of memory", path);
        break;
      }
      s = q;
    }
    size_t r = fread(s + n, 1, cap - 1 - n, f);
    n += r;
    if (r == 0) break;
  }
  if (s && ferror(f)) {
    cli_error(V, "%s: read error", path);
    free(s);
    s = NULL;
  }
  fclose(f);
  if (s) s[n] = '\0', *len = n;
  return s;
}

int cmd_bench_train(int argc, char **argv) {
  cli_opts opts;
  int prc = cli_parse(&bench_train_verb, argc, argv, &opts);
  if (prc != CLI_PARSED) return prc;
  cli_opts_free(&opts); /* nothing allocated for these options */
  if ((prc = cli_no_operands(&opts, argc, argv, NULL))) return prc;
  const char *domain = opts.domain, *dopts = opts.domain_options, *config = opts.config,
             *model = opts.model, *data = opts.data;
  const int64_t steps = opts.steps, warm = opts.warmup, chunk = opts.chunk,
                peak = opts.peak_gflops, threads = opts.given[CLI_O_WORKERS] ? opts.threads : 1;
  const uint64_t seed = opts.seed;
  const int json = opts.json, prec = opts.precision;
  int kind = model ? lp_model_kind_parse(model, strlen(model)) : LP_MODEL_ROBUSTFILL;
  if (kind < 0) {
    cli_error(V, "--model must be robustfill, robustfill-lstm, lp, latent-ae or latent-vae "
              "(got \"%s\")", model);
    return EXIT_USAGE;
  }
  lp_err e = {0};
  lp_model_cfg cfg;
  lp_model_cfg_default(&cfg, kind);
  if (config) {
    size_t len;
    char *text = read_text(config, &len);
    if (!text) return EXIT_FAIL;
    int rc = lp_model_cfg_parse(&cfg, text, len, config, &e);
    free(text);
    if (rc) {
      cli_error(V, "%s", e.msg);
      return EXIT_FAIL;
    }
  }
  cli_mpi mx; /* under mpirun: MPI (mpi_comm.h) */
  if (cli_mpi_start(V, &mx)) {
    cli_mpi_end(&mx, 1);
    return EXIT_FAIL;
  }
  lp_domain *d = lp_domain_open(domain, dopts, &e);
  if (!d) {
    cli_error(V, "%s", e.msg);
    cli_mpi_fail_early(&mx, e.msg);
    cli_mpi_end(&mx, 0);
    return EXIT_FAIL;
  }
  lp_train_opts o;
  lp_train_opts_default(&o);
  o.domain = d;
  o.cfg = &cfg;
  o.data_path = data;
  o.data_seed = lp_task_seed(seed, 0x62656e6368ULL); /* "bench": apart from train's */
  o.seed = seed;
  o.steps = warm + steps;
  o.threads = (int)threads;
  o.checkpoint_every = 0;
  o.chunk_tasks = (int)chunk;
  o.precision = prec;
  o.profile_after = warm > 0 ? warm : 1;
  if (warm == 0) o.steps = steps + 1; /* the first step sizes the buffers: never profiled */
  lp_train_result r;
  memset(&r, 0, sizeof r);
  if (mx.comm.size > 1) o.comm = &mx.comm;
  int rc = lp_train_run(&o, &r, &e);
  lp_domain_free(d);
  const int root = cli_mpi_root(&mx);
  cli_mpi_end(&mx, 0);
  if (rc) {
    if (root || !mx.agreed) cli_error(V, "%s", e.msg);
    return EXIT_FAIL;
  }
  if (!root) return EXIT_OK; /* several ranks: rank 0 reports */
  const lp_model_profile *p = &r.profile;
  const double secs = r.profiled_seconds, tasks = (double)r.profiled_tasks;
  const double comm_share = secs > 0 ? r.profiled_comm_seconds / secs : 0.0;
  const double tps = secs > 0 ? tasks / secs : 0.0;
  const double gf_run = secs > 0 ? p->flops_run / secs * 1e-9 : 0.0;
  const double gf_use = secs > 0 ? p->flops_useful / secs * 1e-9 : 0.0;
  const double phases = p->enc_fwd + p->dec_fwd + p->loss_fwd + p->bwd + p->other;
  const char *kname = lp_model_kind_name(cfg.kind);
  if (json) {
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(kname));
    json_object_set_new(j, "threads", json_integer(threads));
    json_object_set_new(j, "precision", json_string(r.precision == LP_PREC_BF16 ? "bf16" : "fp32"));
    json_object_set_new(j, "ranks", json_integer(r.ranks));
    json_object_set_new(j, "chunk", json_integer(chunk < 0 ? LP_CHUNK_DEFAULT : chunk));
    json_object_set_new(j, "steps", json_integer(r.profiled_steps));
    json_object_set_new(j, "tasks", json_integer(r.profiled_tasks));
    json_object_set_new(j, "seconds", json_real(secs));
    json_object_set_new(j, "tasks_per_s", json_real(tps));
    json_object_set_new(j, "ms_per_step",
                        json_real(r.profiled_steps ? 1e3 * secs / r.profiled_steps : 0.0));
    json_object_set_new(j, "gflop_per_task_run", json_real(tasks ? p->flops_run / tasks * 1e-9 : 0));
    json_object_set_new(j, "gflop_per_task_useful",
                        json_real(tasks ? p->flops_useful / tasks * 1e-9 : 0));
    json_object_set_new(j, "gflops_run", json_real(gf_run));
    json_object_set_new(j, "gflops_useful", json_real(gf_use));
    if (peak) json_object_set_new(j, "peak_share_useful", json_real(gf_use / (double)peak));
    json_object_set_new(j, "data_wait_s", json_real(r.data_seconds));
    json_object_set_new(j, "optimizer_s", json_real(r.opt_seconds));
    json_object_set_new(j, "comm_s", json_real(r.profiled_comm_seconds));
    json_object_set_new(j, "comm_share", json_real(comm_share));
    json_object_set_new(j, "comm_sum_s", json_real(r.profiled_comm_sum_seconds));
    json_object_set_new(j, "enc_fwd_s", json_real(p->enc_fwd));
    json_object_set_new(j, "dec_fwd_s", json_real(p->dec_fwd));
    json_object_set_new(j, "loss_fwd_s", json_real(p->loss_fwd));
    json_object_set_new(j, "backward_s", json_real(p->bwd));
    json_object_set_new(j, "lp_step_s", json_real(p->other));
    json_object_set_new(j, "forward_passes", json_integer(p->chunks));
    json_object_set_new(j, "loss", json_real(r.final_loss));
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(j);
    if (!s) return EXIT_FAIL;
    puts(s);
    free(s);
    return EXIT_OK;
  }
  printf("%s, %lld worker(s), chunk %lld, %s products: %lld steps of %d tasks in %.2f s\n",
         kname, (long long)threads, (long long)(chunk < 0 ? LP_CHUNK_DEFAULT : chunk),
         r.precision == LP_PREC_BF16 ? "bf16" : "fp32",
         (long long)r.profiled_steps, cfg.batch_size, secs);
  if (r.ranks > 1)
    printf("  x %d MPI ranks (the FLOPs and phases below are rank 0's share)\n", r.ranks);
  printf("  %.2f tasks/s, %.1f ms/step\n", tps,
         r.profiled_steps ? 1e3 * secs / r.profiled_steps : 0.0);
  if (p->flops_run > 0) {
    printf("  GFLOP per task: %.3f run, %.3f on non-pad positions (%.0f%% useful)\n",
           p->flops_run / tasks * 1e-9, p->flops_useful / tasks * 1e-9,
           100.0 * p->flops_useful / p->flops_run);
    printf("  GFLOP/s: %.1f run, %.1f useful", gf_run, gf_use);
    if (peak) printf(" (%.1f%% of a %lld GFLOP/s peak)", 100.0 * gf_use / (double)peak, (long long)peak);
    printf("\n");
  }
  printf("  wall: %.2f s waiting for batches, %.2f s clipping and Adam\n", r.data_seconds,
         r.opt_seconds);
  if (r.ranks > 1)
    printf("  %d ranks: rank 0 spent %.2f s (%.1f%% of the steps' wall time) in the collectives: "
           "%.2f s (%.1f%%) summing gradients and statistics, the rest in the agreements "
           "(mostly waiting for the slower rank)\n",
           r.ranks, r.profiled_comm_seconds, 100.0 * comm_share, r.profiled_comm_sum_seconds,
           secs > 0 ? 100.0 * r.profiled_comm_sum_seconds / secs : 0.0);
  if (phases > 0)
    printf("  phases (summed over workers): spec encoder %.2f s (%.0f%%), decoder %.2f s (%.0f%%), "
           "pool+output+loss %.2f s (%.0f%%), backward %.2f s (%.0f%%)%s\n",
           p->enc_fwd, 100 * p->enc_fwd / phases, p->dec_fwd, 100 * p->dec_fwd / phases,
           p->loss_fwd, 100 * p->loss_fwd / phases, p->bwd, 100 * p->bwd / phases,
           p->other > 0 ? ", LP steps (not split)" : "");
  printf("  loss %.4f\n", r.final_loss);
  return EXIT_OK;
}

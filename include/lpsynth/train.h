/* lpsynth training loop, as library code: a task producer thread (generated
 * tasks or a JSONL file) fills batches into a small bounded queue; the main
 * thread runs lp_model_train_step -> lp_grad_clip -> lp_adam_step with the
 * config's learning-rate schedule, reports every step through a callback,
 * appends a CSV log, writes checkpoints atomically and stops cleanly when the
 * caller's stop flag is set (finishing the step and saving a checkpoint).
 *
 * DETERMINISM: batch k holds tasks k*bs .. k*bs+bs-1 of the stream whatever
 * the timing (generated task i has seed lp_task_seed(data_seed, i); file
 * record i is the i-th non-empty line, cycled - with opts.split, of that
 * split, and without the pairs skipped as too long (PAIRS); a bad line stops
 * training with a FILE:LINE message). With the same options and one
 * OpenBLAS thread, training N steps, saving, and resuming to 2N gives the
 * same bytes as training 2N steps straight (parameters, Adam, RNG).
 *
 * PAIRS: a data-file line with "docstring" and "code" (as `lpsynth corpus`
 * writes them) is one task for a domain of one spec part: one example whose
 * spec is the docstring, the program the code (program_encode; the LP's
 * encoder reads its anonymised form). A docstring longer than max_spec_len
 * tokens is truncated to its first max_spec_len tokens; a pair whose program
 * (or anonymised program) is longer than max_program_len is skipped - it is
 * not a task, takes no place in the stream and is counted (lp_train_result).
 * Other lines keep the rule of the config: too long is an error.
 *
 * MULTI-PROCESS (opts.comm, size N > 1; the lpsynth CLI runs it under mpirun):
 * every rank runs lp_train_run with the same options; each builds every batch
 * whole (generated tasks and file lines alike) and the model's step is a
 * collective (lp_model_set_comm: each rank runs its chunks of the batch, the
 * gradients and statistics are summed), so all ranks hold the same parameters
 * and the run is that of one process with N x threads workers, up to float
 * rounding. Only rank 0 writes the checkpoint and the CSV log and calls the
 * progress callback; the others ignore out_path, log_path and progress. A
 * checkpoint holds no rank count: one written at N ranks resumes at any M
 * (the step's RNG and the task position are global). Each step starts with
 * an agreement (lp_comm.agree): the OR of the ranks' stop flags (opts.stop,
 * the time limit, rank 0's progress callback) stops every rank after the same
 * step, and a failure of any rank (its producer, its share of the step, rank
 * 0's checkpoint or log) stops every rank with that rank's message, so no rank
 * waits forever; a rank that fails outside the loop takes part in the next
 * agreement with its failure. At the end the ranks compare a hash of their
 * parameters and state (a difference is an error on every rank), then agree
 * once more on the status. The caller's part: a rank that fails before or
 * instead of calling lp_train_run must call comm->agree once with
 * LP_COMM_FAIL (the others wait in their first agreement); after lp_train_run
 * returns, an error is known to every rank unless the transport failed.
 *
 * Never prints or exits; errors are negative LP_E* codes with a message.
 */
#ifndef LPSYNTH_TRAIN_H
#define LPSYNTH_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "lpsynth/checkpoint.h"
#include "lpsynth/model.h"
#include "lpsynth/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the progress callback sees after each step. */
typedef struct lp_train_progress {
  int64_t step;          /* steps completed (1-based count) */
  int64_t total_steps;   /* the target */
  int64_t start_step;    /* where this run started (resume: the checkpoint's step) */
  double loss;           /* this step's loss */
  double token_acc;      /* this step's teacher-forced token accuracy */
  double loss_avg;       /* mean loss of the last (up to) 100 steps */
  double acc_avg;        /* mean token accuracy of the last (up to) 100 steps */
  double lr;             /* learning rate used by this step */
  double grad_norm;      /* gradient norm before clipping */
  double tasks_per_s;    /* training throughput of this run so far */
  double elapsed_s;      /* wall seconds of this run */
  double eta_s;          /* estimated seconds to total_steps (< 0: unknown) */
  const lp_step_stats *stats; /* the model's full stats of this step */
  int checkpoint_written;     /* 1 when a checkpoint was written after this step */
} lp_train_progress;

/* Return non-zero to stop (like the stop flag). */
typedef int (*lp_train_progress_fn)(const lp_train_progress *p, void *user);

typedef struct lp_train_opts {
  lp_domain *domain;          /* required; borrowed */
  /* Model config of a fresh run (ignored when resuming: the checkpoint's is
   * used; see cfg_must_match). */
  const lp_model_cfg *cfg;
  int cfg_must_match;         /* resuming: refuse when *cfg differs from the checkpoint's */
  const char *data_path;      /* JSONL tasks (cycled); NULL: generate with the domain */
  uint64_t data_seed;         /* generated task i: lp_task_seed(data_seed, i) (fresh runs) */
  lp_gen_opts gen;            /* generator options of a fresh run (struct_size 0: the
                                 domain's defaults); resuming uses the checkpoint's */
  size_t max_line;            /* JSONL: longest line (0: LP_JSONL_DEFAULT_MAX_LINE) */
  int64_t steps;              /* total steps to reach (>= 1) */
  int threads;                /* OpenBLAS threads (0: leave as is) */
  uint64_t seed;              /* fresh runs: parameter init and dropout RNG */
  const char *out_path;       /* checkpoint written here (NULL: none) */
  const char *resume_path;    /* resume from this checkpoint (NULL: fresh) */
  const char *log_path;       /* CSV log (NULL: none); resuming keeps the rows up to the
                                 checkpoint's step and appends */
  int64_t log_every;          /* CSV row every N steps (0: 100) */
  int64_t checkpoint_every;   /* < 0: the config's checkpoint_every; 0: only at the end */
  const char *metadata;       /* stored in checkpoints (e.g. JSON of the command line) */
  volatile sig_atomic_t *stop;/* set (e.g. from a signal handler) to stop after the step */
  double max_seconds;         /* > 0: stop (as by the flag) once this run has trained this
                                 long; the checkpoint is written as usual */
  lp_train_progress_fn progress; /* called after every step (may be NULL) */
  void *user;
  int queue_depth;            /* batches prepared ahead (0: 4) */
  /* appended */
  const char *split;          /* data file: keep only lines whose "split" equals this
                                 (a line without "split" is an error); NULL: every line */
  /* appended (speed) */
  int chunk_tasks;            /* length-bucketed steps, lp_model_set_chunk (< 0: the
                                 model's default; 0: off) */
  int64_t profile_after;      /* > 0: profile the steps of this run after this many
                                 (warm-up) into lp_train_result.profile; 0: no profile */
  /* appended (multi-process): NULL or size 1: one process. See MULTI-PROCESS. */
  const lp_comm *comm;
  /* appended (speed) */
  int precision;              /* matrix products of the train steps (lp_engine_set_precision):
                                 LP_PREC_FP32, LP_PREC_BF16 (where the CPU has it, else
                                 fp32), or < 0: the default, bf16 where available */
} lp_train_opts;

void lp_train_opts_default(lp_train_opts *o);

typedef struct lp_train_result {
  int64_t start_step, end_step; /* steps completed before and after this run */
  int stopped;                  /* 1: stopped early by the flag, the callback or the time limit */
  int time_limited;             /* 1: stopped by max_seconds */
  int resumed;                  /* 1: started from a checkpoint */
  double seconds;               /* wall seconds of this run */
  double tasks_per_s;
  double final_loss, final_acc; /* mean of the last (up to) 100 steps - with those
                                   before a resume (the checkpoint's STAT), so a
                                   resumed run reports what a straight one does */
  int64_t checkpoints;          /* checkpoints written */
  int64_t tasks_seen;           /* tasks trained on, in total (= next task index) */
  uint64_t seed, data_seed;     /* the seeds in effect (resume: the checkpoint's) */
  size_t num_params;
  lp_model_cfg cfg;             /* the config in effect */
  /* appended: docstring/code pairs of a data file (see PAIRS below) */
  int64_t skipped_long;         /* pairs skipped while reading the batches of this run's
                                   steps: program (or its anonymised form) longer than
                                   max_program_len */
  int64_t truncated_specs;      /* pairs of those batches whose docstring was cut to
                                   max_spec_len tokens */
  int64_t pass_lines;           /* once the reader has gone through the whole file: its
                                   lines of the selected split (-1: not known) */
  int64_t pass_skipped;         /* of those, pairs skipped as too long (-1: not known) */
  int64_t final_n;              /* steps final_loss and final_acc are the mean of */
  /* appended (speed): with opts.profile_after > 0, the steps after the warm-up */
  int64_t profiled_steps, profiled_tasks;
  double profiled_seconds;      /* wall seconds of those steps */
  double data_seconds;          /* of which waiting for the producer's batches */
  double opt_seconds;           /* of which gradient clipping and Adam */
  lp_model_profile profile;     /* the model's phases (lp_model_profile_get) */
  /* appended (multi-process) */
  int ranks;                    /* processes that trained (1 without opts.comm) */
  double comm_seconds;          /* wall seconds of this rank in the collectives (the
                                   sums and agreements, waiting for the other ranks
                                   included) */
  double profiled_comm_seconds; /* of which in the profiled steps */
  int precision;                /* the products' precision in effect (lp_precision) */
  /* appended (multi-process) */
  double comm_sum_seconds;      /* of comm_seconds, in the sums (gradients, statistics);
                                   the rest in agreements, mostly waiting for the
                                   slowest rank */
  double profiled_comm_sum_seconds; /* of which in the profiled steps */
} lp_train_result;

/* Runs training as described above. On error returns < 0 with a message
 * (a checkpoint of the steps done so far is still written when possible,
 * and the message says so). */
int lp_train_run(const lp_train_opts *o, lp_train_result *res, lp_err *err);

/* The CSV log's header line (without newline). */
const char *lp_train_csv_header(void);

#ifdef __cplusplus
}
#endif
#endif

/* The training loop (include/lpsynth/train.h): a producer thread turning
 * tasks into batches in a bounded queue, and the optimisation loop with
 * logging, checkpoints and a clean stop. Never prints or exits. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lpsynth/task.h"
#include "lpsynth/train.h"


void lp_train_opts_default(lp_train_opts *o) {
  memset(o, 0, sizeof *o);
  o->steps = 1;
  o->log_every = 100;
  o->checkpoint_every = -1;
  o->chunk_tasks = -1;
  o->precision = -1;
}

/* Columns of the CSV log. The row of step N holds means over the steps since
 * the previous row (loss .. codebook_perplexity, tasks_per_s, latent_acc) and
 * the values of step N (lr, dead_codes). seconds: training wall time since step 0
 * (across resumes). */
const char *lp_train_csv_header(void) {
  return "step,seconds,loss,token_acc,lr,grad_norm,tasks_per_s,loss_prog,loss_latent,"
         "loss_commit,loss_e2e,codebook_perplexity,dead_codes,latent_acc";
}

/* ====================================================================== */
/* Producer: tasks -> encoded ids -> batches.                             */

/* One task of a batch: its spec and program ids (lpsynth/task.h) and what
 * training adds. */
typedef struct enc_task {
  lp_enc_task task;      /* read from a line or encoded from a generated task */
  lp_ids prog_enc;       /* the anonymised program (LP's program encoder) */
  int has_enc;
  size_t line;           /* file line (0: generated) */
} enc_task;

typedef struct producer {
  /* fixed */
  lp_domain *d;
  const lp_model_cfg *cfg;
  int n_parts, bs, use_enc;
  int32_t spec_pad, prog_pad;
  int from_file;
  const char *path;
  const char *split;     /* keep only lines of this split (NULL: all) */
  size_t max_line;
  uint64_t data_seed;
  lp_gen_opts gen;
  /* producer-thread state */
  uint64_t next_task;    /* next task index to produce */
  lp_jsonl *r;
  uint64_t file_records; /* lines in one pass (0 until known) */
  uint64_t pass_pos;     /* record index within the current pass */
  uint64_t pass_skipped; /* pairs skipped (too long) within the current pass */
  int64_t file_skipped;  /* pairs skipped in one pass (-1 until known) */
  int64_t b_skip, b_trunc; /* pairs skipped / docstrings truncated for the batch being made */
  enc_task *et;          /* [bs] */
  lp_task_ids *ti;       /* [bs] */
  lp_task task;
  /* queue */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  lp_batch *slots;
  int64_t *slot_skip, *slot_trunc; /* [depth] b_skip / b_trunc of each slot's batch */
  int depth, head, count;
  int shutdown, failed;
  lp_err err;            /* the producer's error (failed = 1) */
} producer;

static void et_free(enc_task *t) {
  lp_enc_task_free(&t->task);
  lp_ids_free(&t->prog_enc);
  memset(t, 0, sizeof *t);
}

/* Where a task came from, for messages. */
static void task_where(const producer *P, const enc_task *t, uint64_t idx, char *buf, size_t n) {
  if (P->from_file)
    snprintf(buf, n, "%s:%zu", P->path, t->line);
  else
    snprintf(buf, n, "generated task %llu (seed %llu)", (unsigned long long)idx,
             (unsigned long long)lp_task_seed(P->data_seed, idx));
}

/* The task reader's options: the config's max_spec_len; a program required. */
static lp_task_opts task_opts(const producer *P) {
  lp_task_opts o = {.max_spec_len = (size_t)P->cfg->max_spec_len,
                    .flags = LP_TASK_NEED_PROGRAM};
  return o;
}

/* skip != NULL (pairs): a program longer than max_program_len, or whose
 * anonymised form is, sets *skip instead of failing. */
static int finish_program(producer *P, enc_task *t, const char *where, int *skip, lp_err *err) {
  const lp_ids *prog = &t->task.prog; /* checked by the reader: ends with EOS, in the vocabulary */
  if (prog->len > (size_t)P->cfg->max_program_len) {
    if (skip) {
      *skip = 1;
      return LP_OK;
    }
    return lp_err_set(err, LP_EINVAL,
                      "%s: the program has %zu tokens (incl. EOS), more than max_program_len %d",
                      where, prog->len, P->cfg->max_program_len);
  }
  t->has_enc = 0;
  if (P->use_enc) {
    t->prog_enc.len = 0;
    if (lp_domain_anonymise(P->d, prog->data, prog->len, &t->prog_enc, err))
      return lp_err_prefix(err, "%s: anonymise", where);
    t->has_enc = 1;
    if (skip && t->prog_enc.len > (size_t)P->cfg->max_program_len) *skip = 1;
  }
  return LP_OK;
}

static int gen_task(producer *P, uint64_t idx, enc_task *t, lp_err *err) {
  char where[160];
  t->line = 0;
  task_where(P, t, idx, where, sizeof where);
  lp_task_free(&P->task);
  int rc = lp_domain_generate(P->d, lp_task_seed(P->data_seed, idx), &P->gen, &P->task, err);
  if (rc) return lp_err_prefix(err, "%s", where);
  size_t np = (size_t)P->n_parts;
  if (P->task.examples.len % np)
    return lp_err_set(err, LP_EINVAL, "%s: %zu spec parts, not a multiple of %zu", where,
                      P->task.examples.len, np);
  size_t n = P->task.examples.len / np;
  lp_example *ex = calloc(n ? n : 1, sizeof *ex);
  if (!ex) return lp_err_set(err, LP_ENOMEM, "out of memory");
  for (size_t i = 0; i < n * np; i++) {
    const lp_buf *s = &P->task.examples.items[i];
    ex[i / np].part[i % np] = s->data ? s->data : "";
    ex[i / np].len[i % np] = s->len;
  }
  lp_task_opts o = task_opts(P);
  rc = lp_enc_task_encode(P->d, ex, n, &o, 0, &t->task, err);
  free(ex);
  if (rc == LP_OK)
    rc = lp_enc_task_set_program(P->d, P->task.program.data, P->task.program.len, &t->task, err);
  if (rc) return lp_err_prefix(err, "%s", where);
  return finish_program(P, t, where, NULL, err);
}

/* Next line of the file, reopening at the end (cycling). line, len and lineno
 * as lp_jsonl_next. 1, or < 0 on error. */
static int file_next(producer *P, const char **line, size_t *len, size_t *lineno, lp_err *err) {
  for (int attempt = 0; attempt < 2; attempt++) {
    if (!P->r) {
      P->r = lp_jsonl_open(P->path, P->max_line, err);
      if (!P->r) return err && err->code ? err->code : LP_EIO;
    }
    int rc = lp_jsonl_next(P->r, line, len, lineno, err);
    if (rc == 1) return 1;
    if (rc < 0) return rc; /* the reader's message names the file and line */
    /* end of a pass */
    lp_jsonl_free(P->r);
    P->r = NULL;
    if (P->pass_pos == 0) {
      if (P->pass_skipped)
        return lp_err_set(err, LP_EINVAL,
                          "%s: no usable task: all %llu pairs%s%s%s have a program longer than "
                          "max_program_len %d",
                          P->path, (unsigned long long)P->pass_skipped,
                          P->split ? " of split \"" : "", P->split ? P->split : "",
                          P->split ? "\"" : "", P->cfg->max_program_len);
      if (P->split)
        return lp_err_set(err, LP_EINVAL, "%s: no line of split \"%s\"", P->path, P->split);
      return lp_err_set(err, LP_EINVAL, "%s: no tasks in the file", P->path);
    }
    P->file_records = P->pass_pos;
    P->file_skipped = (int64_t)P->pass_skipped;
    P->pass_pos = 0;
    P->pass_skipped = 0;
  }
  return lp_err_set(err, LP_EIO, "%s: cannot read", P->path);
}

/* A task line, read as eval and synth read it (lpsynth/task.h): *skip = 1
 * for a pair whose program is too long (see PAIRS in train.h). */
static int record_task(producer *P, const lp_record *rec, enc_task *t, const char *where,
                       int *skip, lp_err *err) {
  lp_task_opts o = task_opts(P);
  if (lp_enc_task_read(P->d, rec, &o, &t->task, err)) return lp_err_prefix(err, "%s", where);
  P->b_trunc += (int64_t)t->task.truncated;
  return finish_program(P, t, where, t->task.is_pair ? skip : NULL, err);
}

static int file_task(producer *P, enc_task *t, lp_err *err);

/* Skips k records (resume), using the pass length once known. Records are
 * the tasks file_task returns (lines of other splits and skipped pairs are
 * not records), so the pairs are encoded again to find the skipped ones. */
static int file_skip(producer *P, uint64_t k, lp_err *err) {
  while (k > 0) {
    if (P->file_records && P->pass_pos == 0) k %= P->file_records;
    if (k == 0) break;
    int rc = file_task(P, &P->et[0], err);
    if (rc < 0) return rc;
    k--;
  }
  P->b_skip = P->b_trunc = 0;
  return LP_OK;
}

/* The next record of the stream into t: the next line of the selected split
 * that is not a skipped pair, cycling. */
static int file_task(producer *P, enc_task *t, lp_err *err) {
  for (;;) {
    const char *line;
    size_t len, lineno = 0;
    int rc = file_next(P, &line, &len, &lineno, err);
    if (rc < 0) return rc;
    t->line = lineno;
    char where[1100];
    snprintf(where, sizeof where, "%s:%zu", P->path, lineno);
    lp_record rec;
    memset(&rec, 0, sizeof rec);
    rc = lp_record_parse(line, len, &rec, err);
    if (rc) {
      lp_record_free(&rec);
      return lp_err_prefix(err, "%s", where);
    }
    if (P->split && (rc = lp_task_in_split(&rec, P->split, err)) <= 0) {
      lp_record_free(&rec);
      if (rc < 0) return lp_err_prefix(err, "%s", where);
      continue;
    }
    int skip = 0;
    rc = record_task(P, &rec, t, where, &skip, err);
    lp_record_free(&rec);
    if (rc) return rc;
    if (skip) {
      P->pass_skipped++;
      P->b_skip++;
      continue;
    }
    P->pass_pos++;
    return LP_OK;
  }
}

/* Fills *b with tasks next_task .. next_task+bs-1. */
static int make_batch(producer *P, lp_batch *b, lp_err *err) {
  P->b_skip = P->b_trunc = 0;
  for (int j = 0; j < P->bs; j++) {
    enc_task *t = &P->et[j];
    uint64_t idx = P->next_task + (uint64_t)j;
    int rc = P->from_file ? file_task(P, t, err) : gen_task(P, idx, t, err);
    if (rc) return rc;
    lp_task_ids *k = &P->ti[j];
    k->prog = t->task.prog.data;
    k->prog_len = t->task.prog.len;
    k->prog_enc = t->has_enc ? t->prog_enc.data : NULL;
    k->prog_enc_len = t->has_enc ? t->prog_enc.len : 0;
    k->n_examples = t->task.n_examples;
    k->spec = t->task.spec;
    k->spec_len = t->task.spec_len;
  }
  int rc = lp_batch_fill(b, P->ti, P->bs, P->n_parts, P->spec_pad, P->prog_pad, P->cfg, err);
  if (rc) {
    char where[160];
    task_where(P, &P->et[0], P->next_task, where, sizeof where);
    return lp_err_prefix(err, "batch starting at %s", where);
  }
  P->next_task += (uint64_t)P->bs;
  return LP_OK;
}

static void *producer_main(void *arg) {
  producer *P = arg;
  for (;;) {
    pthread_mutex_lock(&P->mu);
    while (!P->shutdown && P->count == P->depth) pthread_cond_wait(&P->cv, &P->mu);
    if (P->shutdown) {
      pthread_mutex_unlock(&P->mu);
      break;
    }
    int slot = (P->head + P->count) % P->depth;
    pthread_mutex_unlock(&P->mu);
    /* the slot is not visible to the consumer until count grows */
    lp_err e;
    memset(&e, 0, sizeof e);
    int rc = make_batch(P, &P->slots[slot], &e);
    pthread_mutex_lock(&P->mu);
    if (rc) {
      P->failed = 1;
      P->err = e;
      if (!P->err.code) P->err.code = rc;
      pthread_cond_broadcast(&P->cv);
      pthread_mutex_unlock(&P->mu);
      break;
    }
    P->slot_skip[slot] = P->b_skip;
    P->slot_trunc[slot] = P->b_trunc;
    P->count++;
    pthread_cond_broadcast(&P->cv);
    pthread_mutex_unlock(&P->mu);
  }
  return NULL;
}

/* Consumer side: the next batch (borrowed until producer_release), or NULL
 * with the producer's error in err. */
static lp_batch *producer_take(producer *P, int64_t *skipped, int64_t *truncated,
                               lp_err *err) {
  pthread_mutex_lock(&P->mu);
  while (P->count == 0 && !P->failed) pthread_cond_wait(&P->cv, &P->mu);
  lp_batch *b = NULL;
  if (P->count > 0) {
    b = &P->slots[P->head];
    *skipped = P->slot_skip[P->head];
    *truncated = P->slot_trunc[P->head];
  } else if (err)
    *err = P->err;
  pthread_mutex_unlock(&P->mu);
  return b;
}

static void producer_release(producer *P) {
  pthread_mutex_lock(&P->mu);
  P->head = (P->head + 1) % P->depth;
  P->count--;
  pthread_cond_broadcast(&P->cv);
  pthread_mutex_unlock(&P->mu);
}

static void producer_destroy(producer *P) {
  for (int j = 0; P->et && j < P->bs; j++) et_free(&P->et[j]);
  free(P->et);
  free(P->ti);
  for (int s = 0; P->slots && s < P->depth; s++) lp_batch_free(&P->slots[s]);
  free(P->slots);
  free(P->slot_skip);
  free(P->slot_trunc);
  lp_task_free(&P->task);
  lp_jsonl_free(P->r);
  P->r = NULL;
}

/* ====================================================================== */
/* CSV log.                                                               */

/* Resuming: keep the header and the rows of steps <= step, then append. */
static FILE *log_open(const char *path, int resume, int64_t step, lp_err *err) {
  if (resume) {
    FILE *f = fopen(path, "rb");
    if (f) {
      lp_buf keep = {0};
      char *line = NULL;
      size_t cap = 0;
      ssize_t n;
      int first = 1, rc = 0;
      while ((n = getline(&line, &cap, f)) > 0) {
        long long s = 0;
        int is_row = sscanf(line, "%lld,", &s) == 1;
        if ((first && !is_row) || (is_row && s <= step))
          rc |= lp_buf_append(&keep, line, (size_t)n);
        first = 0;
      }
      free(line);
      fclose(f);
      if (rc == 0 && keep.len == 0) {
        rc |= lp_buf_append(&keep, lp_train_csv_header(), strlen(lp_train_csv_header()));
        rc |= lp_buf_append(&keep, "\n", 1);
      }
      if (rc) {
        lp_buf_free(&keep);
        lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
        return NULL;
      }
      if (lp_write_file_atomic(path, keep.data, keep.len, err)) {
        lp_buf_free(&keep);
        return NULL;
      }
      lp_buf_free(&keep);
      FILE *a = fopen(path, "ab");
      if (!a) lp_err_set(err, LP_EIO, "%s: cannot open for appending: %s", path, strerror(errno));
      return a;
    }
  }
  FILE *f = fopen(path, "wb");
  if (!f) {
    lp_err_set(err, LP_EIO, "%s: cannot create: %s", path, strerror(errno));
    return NULL;
  }
  fprintf(f, "%s\n", lp_train_csv_header());
  if (fflush(f) != 0) {
    fclose(f);
    lp_err_set(err, LP_EIO, "%s: write failed: %s", path, strerror(errno));
    return NULL;
  }
  return f;
}

typedef struct window {
  int64_t n;
  double loss, acc, gnorm, lprog, llat, lcom, le2e, ppl, lacc, t0;
  double lr;  /* of the last step */
  int dead;   /* of the last step */
} window;

/* One CSV row of the steps in *w (ending at `step`, time t); resets *w. */
static int log_row(FILE *f, int64_t step, double seconds, window *w, int bs, double t) {
  double dt = t - w->t0, k = (double)w->n;
  fprintf(f, "%lld,%.3f,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%d,%.6g\n",
          (long long)step, seconds, w->loss / k, w->acc / k, w->lr, w->gnorm / k,
          dt > 0 ? k * bs / dt : 0.0, w->lprog / k, w->llat / k, w->lcom / k, w->le2e / k,
          w->ppl / k, w->dead, w->lacc / k);
  int bad = fflush(f) != 0 || ferror(f);
  memset(w, 0, sizeof *w);
  w->t0 = t;
  return bad ? -1 : 0;
}

/* ====================================================================== */
/* The loop.                                                              */

#define AVG_N LP_TRAIN_HIST_N

/* The statistics window into / out of the position saved in checkpoints. */
static void win_to_pos(const window *w, lp_train_pos *pos) {
  pos->win_n = w->n;
  const double v[LP_TRAIN_WIN_SUMS] = {w->loss, w->acc,  w->gnorm, w->lprog, w->llat,
                                       w->lcom, w->le2e, w->ppl,   w->lacc};
  memcpy(pos->win, v, sizeof v);
}
static void win_from_pos(window *w, const lp_train_pos *pos) {
  w->n = pos->win_n;
  w->loss = pos->win[0], w->acc = pos->win[1], w->gnorm = pos->win[2], w->lprog = pos->win[3];
  w->llat = pos->win[4], w->lcom = pos->win[5], w->le2e = pos->win[6], w->ppl = pos->win[7];
  w->lacc = pos->win[8];
}
/* Mean of the recorded steps' loss and accuracy (the last AVG_N at most),
 * summed in slot order, so a resumed run sums as the straight one does. */
static void hist_mean(const lp_train_pos *pos, double *loss, double *acc) {
  int64_t hn = pos->hist_n < AVG_N ? (int64_t)pos->hist_n : AVG_N;
  *loss = *acc = 0;
  for (int64_t i = 0; i < hn; i++) {
    *loss += pos->hist_loss[i];
    *acc += pos->hist_acc[i];
  }
  if (hn) {
    *loss /= (double)hn;
    *acc /= (double)hn;
  }
}

/* ====================================================================== */
/* Multi-process runs (opts.comm).                                        */

/* The caller's communicator, wrapped to time its collectives and to know
 * when a failure has been agreed on by every rank (the model's step calls
 * the wrapper too). */
typedef struct tr_comm {
  lp_comm c;      /* the caller's */
  int agreed;     /* an agreement reported a failure: every rank knows it */
  double seconds; /* in the collectives */
  double sum_seconds; /* of which in the sums */
} tr_comm;

static int trc_f32(void *u, float *buf, size_t n) {
  tr_comm *t = u;
  double t0 = lp_now();
  int rc = t->c.allreduce_sum_f32(t->c.user, buf, n);
  const double dt = lp_now() - t0;
  t->seconds += dt, t->sum_seconds += dt;
  return rc;
}

static int trc_f64(void *u, double *buf, size_t n) {
  tr_comm *t = u;
  double t0 = lp_now();
  int rc = t->c.allreduce_sum_f64(t->c.user, buf, n);
  const double dt = lp_now() - t0;
  t->seconds += dt, t->sum_seconds += dt;
  return rc;
}

static int trc_agree(void *u, int *flags, int *code, char *msg, size_t cap) {
  tr_comm *t = u;
  double t0 = lp_now();
  int rc = t->c.agree(t->c.user, flags, code, msg, cap);
  t->seconds += lp_now() - t0;
  if (rc == LP_OK && (*flags & LP_COMM_FAIL)) t->agreed = 1;
  return rc;
}

/* One agreement of lp_train_run: this rank's failure (rc, message in err) and
 * stop wish in; *stop = the OR of the wishes; returns LP_OK, or the agreed
 * failure (the lowest failing rank's code and message, in err). */
static int tr_agree(tr_comm *t, int rc, int want_stop, int *stop, lp_err *err) {
  int flags = (rc != LP_OK ? LP_COMM_FAIL : 0) | (want_stop ? LP_COMM_STOP : 0), code = rc;
  char msg[LP_ERR_MSG_MAX];
  msg[0] = '\0';
  if (rc != LP_OK) {
    /* a message that names a rank already (the model's) keeps its own */
    if (err && !strncmp(err->msg, "rank ", 5))
      snprintf(msg, sizeof msg, "%s", err->msg);
    else
      snprintf(msg, sizeof msg, "rank %d: %.1000s", t->c.rank,
               err && err->msg[0] ? err->msg : "failed (no message)");
  }
  int crc = trc_agree(t, &flags, &code, msg, sizeof msg);
  if (crc != LP_OK)
    return lp_err_set(err, crc, "rank %d: the ranks could not agree (communication failed)",
                      t->c.rank);
  if (stop) *stop = (flags & LP_COMM_STOP) != 0;
  if (!(flags & LP_COMM_FAIL)) return LP_OK;
  msg[sizeof msg - 1] = '\0';
  return lp_err_set(err, code < 0 ? code : LP_EINVAL, "%s", msg);
}

/* 64-bit FNV-1a of n bytes, continuing from h. */
static uint64_t fnv64(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
  return h;
}

/* The ranks compare a hash of the parameters and the model's state: three
 * 20-bit pieces h, summed with their squares (exact in doubles); all ranks
 * hold the same h exactly when size * sum(h^2) == (sum h)^2 for each piece.
 * A difference is an error on every rank. */
static int tr_check_same(tr_comm *t, lp_model *m, int64_t step, lp_err *err) {
  size_t ns = 0;
  const float *st = lp_model_state(m, &ns);
  uint64_t h = fnv64(0xcbf29ce484222325ULL, lp_model_params(m),
                     sizeof(float) * lp_model_num_params(m));
  if (st && ns) h = fnv64(h, st, sizeof(float) * ns);
  double v[6];
  for (int k = 0; k < 3; k++) {
    const double x = (double)((h >> (20 * k)) & 0xfffffu);
    v[2 * k] = x, v[2 * k + 1] = x * x;
  }
  int rc = trc_f64(t, v, 6);
  if (rc != LP_OK)
    return lp_err_set(err, rc, "rank %d: comparing the parameters of the ranks failed",
                      t->c.rank);
  int same = 1;
  for (int k = 0; k < 3; k++) {
    const uint64_t s1 = (uint64_t)v[2 * k], s2 = (uint64_t)v[2 * k + 1];
    if ((uint64_t)t->c.size * s2 != s1 * s1) same = 0;
  }
  if (same) return LP_OK;
  lp_err_set(err, LP_EINVAL,
             "the ranks' parameters differ after step %lld (they should be equal: every rank "
             "must start from the same checkpoint and options)",
             (long long)step);
  return tr_agree(t, LP_EINVAL, 0, NULL, err);
}

/* Before the first step: the ranks compare what must be the same on all of
 * them - the options that shape the steps, the position and a hash of the
 * parameters - as 29 bits of a hash ORed in one agreement (a rank whose bits
 * differ from the OR has seen a difference), then agree on the verdict. */
static int tr_check_start(tr_comm *t, const lp_train_opts *o, lp_model *m,
                          const lp_train_pos *pos, lp_err *err) {
  const int64_t v[] = {o->steps, lp_model_config(m)->batch_size, o->threads, o->chunk_tasks,
                       pos->step, (int64_t)pos->next_task, (int64_t)pos->rng_state,
                       (int64_t)pos->data_seed, o->data_path != NULL};
  uint64_t h = fnv64(0xcbf29ce484222325ULL, v, sizeof v);
  h = fnv64(h, lp_model_params(m), sizeof(float) * lp_model_num_params(m));
  size_t ns = 0;
  const float *st = lp_model_state(m, &ns);
  if (st && ns) h = fnv64(h, st, sizeof(float) * ns);
  const int mine = (int)(((h ^ (h >> 32)) & 0x1fffffffu) << 2); /* bits 2..30 */
  int flags = mine, code = LP_OK;
  char msg[LP_ERR_MSG_MAX];
  msg[0] = '\0';
  int rc = trc_agree(t, &flags, &code, msg, sizeof msg);
  if (rc != LP_OK)
    return lp_err_set(err, rc, "rank %d: the ranks could not agree (communication failed)",
                      t->c.rank);
  if (flags & LP_COMM_FAIL) { /* a rank failed before its first step */
    msg[sizeof msg - 1] = '\0';
    return lp_err_set(err, code < 0 ? code : LP_EINVAL, "%s", msg);
  }
  rc = LP_OK;
  if ((flags & ~(LP_COMM_FAIL | LP_COMM_STOP)) != mine)
    rc = lp_err_set(err, LP_EINVAL,
                    "the ranks differ in their options, position or parameters (steps, batch "
                    "size, threads, chunk, the checkpoint resumed): start every rank with the "
                    "same command and files");
  return tr_agree(t, rc, 0, NULL, err);
}

static int cfg_text(const lp_model_cfg *c, lp_buf *b) {
  b->len = 0;
  return lp_model_cfg_to_text(c, b);
}

/* First line where the canonical texts differ, for the message. */
static void first_diff(const char *a, const char *b, char *out, size_t n) {
  while (*a || *b) {
    const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
    size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
    if (la != lb || memcmp(a, b, la)) {
      snprintf(out, n, "the checkpoint has \"%.*s\", the given config \"%.*s\"", (int)la, a,
               (int)lb, b);
      return;
    }
    a += la + (ea ? 1 : 0);
    b += lb + (eb ? 1 : 0);
  }
  snprintf(out, n, "(no difference found)");
}

int lp_train_run(const lp_train_opts *o, lp_train_result *res, lp_err *err) {
  lp_train_result rdummy;
  if (!res) res = &rdummy;
  memset(res, 0, sizeof *res);
  res->pass_lines = res->pass_skipped = -1;
  if (!o || !o->domain) return lp_err_set(err, LP_EINVAL, "train: no domain");
  if (o->steps < 1) return lp_err_set(err, LP_EINVAL, "train: steps must be >= 1");
  if (!o->resume_path && !o->cfg) return lp_err_set(err, LP_EINVAL, "train: no model config");
  const lp_domain_desc *desc = lp_domain_desc_of(o->domain);
  int n_parts = desc ? (int)desc->spec_parts : 0;
  if (n_parts != 1 && n_parts != 2)
    return lp_err_set(err, LP_EINVAL, "train: domain has %d spec parts", n_parts);
  if (!o->data_path && !lp_domain_has(o->domain, LP_CAP_GENERATE))
    return lp_err_set(err, LP_EUNSUP,
                      "domain \"%s\" cannot generate tasks: give a data file (JSONL)",
                      lp_domain_name(o->domain));

  /* multi-process: only rank 0 writes and reports (the others see a copy of
   * the options without out_path, log_path and progress) */
  tr_comm tc;
  memset(&tc, 0, sizeof tc);
  lp_comm wc;
  memset(&wc, 0, sizeof wc);
  lp_train_opts o_rank;
  const int multi = o->comm && o->comm->size > 1;
  int end_agreed = 0, stop_req = 0;
  res->ranks = multi ? o->comm->size : 1;
  if (multi) {
    const lp_comm *c = o->comm;
    if (c->rank < 0 || c->rank >= c->size || !c->allreduce_sum_f32 || !c->allreduce_sum_f64 ||
        !c->agree)
      return lp_err_set(err, LP_EINVAL, "train: bad communicator (rank %d of %d)", c->rank,
                        c->size);
    tc.c = *c;
    wc.rank = c->rank, wc.size = c->size;
    wc.allreduce_sum_f32 = trc_f32, wc.allreduce_sum_f64 = trc_f64, wc.agree = trc_agree;
    wc.user = &tc;
    if (c->rank != 0) {
      o_rank = *o;
      o_rank.out_path = o_rank.log_path = NULL;
      o_rank.progress = NULL;
      o = &o_rank;
    }
  }

  int rc = LP_OK;
  lp_ckpt_domain dom;
  lp_model *m = NULL;
  lp_adam *opt = NULL;
  uint8_t *mask = NULL;
  FILE *logf = NULL;
  lp_buf t1 = {0}, t2 = {0};
  producer P;
  memset(&P, 0, sizeof P);
  int thread_started = 0, sync_ready = 0, prec_set = 0;
  lp_precision prec_before = LP_PREC_FP32;
  pthread_t th;
  memset(&th, 0, sizeof th);
  lp_train_pos pos;
  memset(&pos, 0, sizeof pos);
  lp_rng rng;
  int64_t last_saved = -1;
  rc = lp_ckpt_domain_of(o->domain, &dom, err);
  if (rc) return rc;

  /* ---- model, optimiser, position ---- */
  if (o->resume_path) {
    rc = lp_ckpt_load(o->resume_path, &dom, &m, &opt, &pos, NULL, err);
    if (rc) goto out;
    lp_ckpt info;
    if ((rc = lp_ckpt_read(o->resume_path, LP_CKPT_INFO_ONLY, &info, err)) != LP_OK) goto out;
    const int stripped = info.n_adam == 0 && info.pos.step > 0, prec = info.param_prec;
    lp_ckpt_free(&info);
    if (prec != LP_CKPT_FP32) {
      rc = lp_err_set(err, LP_EINVAL,
                      "%s: the checkpoint stores its parameters as %s and has no optimiser "
                      "state (made by `lpsynth ckpt strip --half`), so training cannot resume "
                      "from it; resume from the full checkpoint",
                      o->resume_path, lp_ckpt_prec_name(prec));
      goto out;
    }
    if (stripped) {
      rc = lp_err_set(err, LP_EINVAL,
                      "%s: the checkpoint has no optimiser state (made by `lpsynth ckpt "
                      "strip`), so training cannot resume from it exactly; resume from the "
                      "full checkpoint",
                      o->resume_path);
      goto out;
    }
    if (o->cfg && o->cfg_must_match) {
      if (cfg_text(o->cfg, &t1) || cfg_text(lp_model_config(m), &t2)) {
        rc = lp_err_set(err, LP_ENOMEM, "out of memory");
        goto out;
      }
      if (strcmp(t1.data, t2.data) != 0) {
        char d[512];
        first_diff(t2.data, t1.data, d, sizeof d);
        rc = lp_err_set(err, LP_EINVAL,
                        "%s: the given model config differs from the checkpoint's: %s (resume "
                        "without --config, or start a new run)",
                        o->resume_path, d);
        goto out;
      }
    }
    if ((pos.data_kind == LP_DATA_FILE) != (o->data_path != NULL)) {
      rc = lp_err_set(err, LP_EINVAL,
                      "%s: the checkpoint was trained on %s; resume it with %s",
                      o->resume_path,
                      pos.data_kind == LP_DATA_FILE ? "a data file" : "generated tasks",
                      pos.data_kind == LP_DATA_FILE ? "its data file" : "no data file");
      goto out;
    }
    if (lp_adam_t(opt) != pos.step) {
      rc = lp_err_set(err, LP_EINVAL, "%s: optimiser step %lld differs from training step %lld",
                      o->resume_path, (long long)lp_adam_t(opt), (long long)pos.step);
      goto out;
    }
    rng.state = pos.rng_state;
    res->resumed = 1;
  } else {
    rc = lp_model_cfg_check(o->cfg, err);
    if (rc) goto out;
    m = lp_model_new(o->cfg, &dom.spec, &dom.prog, n_parts, o->seed, err);
    if (!m) {
      rc = err && err->code ? err->code : LP_EINVAL;
      goto out;
    }
    const lp_model_cfg *c = lp_model_config(m);
    lp_adam_cfg ac = {c->beta1, c->beta2, c->adam_eps, c->weight_decay};
    opt = lp_adam_new(lp_model_num_params(m), &ac);
    if (!opt) {
      rc = lp_err_set(err, LP_ENOMEM, "train: cannot create the optimiser");
      goto out;
    }
    lp_rng_seed(&rng, lp_task_seed(o->seed, 0x64726f706f7574ull /* "dropout" */));
    pos.step = 0;
    pos.init_seed = o->seed;
    pos.data_kind = o->data_path ? LP_DATA_FILE : LP_DATA_GENERATED;
    pos.data_seed = o->data_path ? 0 : o->data_seed;
    pos.next_task = 0;
    pos.seconds = 0;
    if (!o->data_path && o->gen.struct_size) {
      pos.gen_min_size = o->gen.min_size;
      pos.gen_max_size = o->gen.max_size;
      pos.gen_n_examples = o->gen.n_examples;
    }
  }
  /* RobustFill: data-parallel workers; LP: OpenBLAS threads (model.h) */
  if (o->threads > 0 && (rc = lp_model_set_threads(m, o->threads, err)) != LP_OK) goto out;
  if (o->chunk_tasks >= 0 && (rc = lp_model_set_chunk(m, o->chunk_tasks, err)) != LP_OK) goto out;
  /* the products of the steps: bf16 where the CPU has it unless asked otherwise
   * (this thread's setting, which the data-parallel workers inherit; restored
   * before returning) */
  prec_before = lp_engine_precision();
  res->precision = (int)lp_engine_set_precision(o->precision == LP_PREC_FP32 ? LP_PREC_FP32
                                                                            : LP_PREC_BF16);
  prec_set = 1;
  if (multi && (rc = lp_model_set_comm(m, &wc, err)) != LP_OK) goto out;
  const lp_model_cfg *cfg = lp_model_config(m);
  res->cfg = *cfg;
  res->num_params = lp_model_num_params(m);
  res->seed = pos.init_seed;
  res->data_seed = pos.data_seed;
  res->start_step = res->end_step = pos.step;
  res->tasks_seen = (int64_t)pos.next_task;
  size_t np = lp_model_num_params(m);
  mask = malloc(np ? np : 1);
  if (!mask) {
    rc = lp_err_set(err, LP_ENOMEM, "train: out of memory");
    goto out;
  }
  lp_layout_decay_mask(lp_model_layout(m), mask);
  lp_lr_schedule sched = {cfg->lr, cfg->warmup_steps};
  int64_t ck_every = o->checkpoint_every < 0 ? cfg->checkpoint_every : o->checkpoint_every;
  int64_t log_every = o->log_every > 0 ? o->log_every : 100;
  const int bs = cfg->batch_size;

  if (pos.step >= o->steps) goto out; /* nothing to do */

  if (o->log_path) {
    logf = log_open(o->log_path, o->resume_path != NULL, pos.step, err);
    if (!logf) {
      rc = err && err->code ? err->code : LP_EIO;
      goto out;
    }
  }

  /* ---- producer ---- */
  lp_vocab_info sv = dom.spec, pv = dom.prog;
  P.d = o->domain;
  P.cfg = cfg;
  P.n_parts = n_parts;
  P.bs = bs;
  P.use_enc = LP_MODEL_HAS_LATENT(cfg->kind) && lp_domain_has(o->domain, LP_CAP_ANONYMISE);
  P.spec_pad = sv.pad >= 0 ? sv.pad : 0;
  P.prog_pad = pv.pad >= 0 ? pv.pad : 0;
  P.from_file = o->data_path != NULL;
  P.path = o->data_path;
  P.split = o->split;
  P.file_skipped = -1;
  P.max_line = o->max_line ? o->max_line : LP_JSONL_DEFAULT_MAX_LINE;
  P.data_seed = pos.data_seed;
  /* the generator options of the run (resume: the checkpoint's) */
  P.gen.struct_size = sizeof P.gen;
  P.gen.min_size = pos.gen_min_size;
  P.gen.max_size = pos.gen_max_size;
  P.gen.n_examples = pos.gen_n_examples;
  P.next_task = pos.next_task;
  P.depth = o->queue_depth > 0 ? o->queue_depth : 4;
  P.et = calloc((size_t)bs, sizeof *P.et);
  P.ti = calloc((size_t)bs, sizeof *P.ti);
  P.slots = calloc((size_t)P.depth, sizeof *P.slots);
  P.slot_skip = calloc((size_t)P.depth, sizeof *P.slot_skip);
  P.slot_trunc = calloc((size_t)P.depth, sizeof *P.slot_trunc);
  if (!P.et || !P.ti || !P.slots || !P.slot_skip || !P.slot_trunc) {
    rc = lp_err_set(err, LP_ENOMEM, "train: out of memory");
    goto out;
  }
  if (P.from_file && pos.next_task) {
    rc = file_skip(&P, pos.next_task, err);
    if (rc) goto out;
  }
  if (pthread_mutex_init(&P.mu, NULL) || pthread_cond_init(&P.cv, NULL)) {
    rc = lp_err_set(err, LP_ENOMEM, "train: cannot create the queue");
    goto out;
  }
  sync_ready = 1;
  {
    /* the producer takes no signals: they go to the training thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&th, NULL, producer_main, &P);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
      rc = lp_err_set(err, LP_ENOMEM, "train: cannot start the task producer thread");
      goto out;
    }
    thread_started = 1;
  }

  /* ---- steps ---- */
  float *params = lp_model_params(m), *grads = lp_model_grads(m);
  double t_start = lp_now(), t_last = t_start, sec0 = pos.seconds;
  /* the statistics continue from the checkpoint's (STAT; empty when fresh) */
  window w;
  memset(&w, 0, sizeof w);
  win_from_pos(&w, &pos);
  w.t0 = t_start;
  int stopping = 0;
  last_saved = -1; /* the output file gets this run's state even when no step is done */
  int64_t start = pos.step;
  if (multi && (rc = tr_check_start(&tc, o, m, &pos, err)) != LP_OK) goto save_and_out;
  while (pos.step < o->steps && !stopping) {
    if (!multi && o->stop && *o->stop) {
      stopping = 1;
      break;
    }
    lp_err pe;
    memset(&pe, 0, sizeof pe);
    int64_t n_skip = 0, n_trunc = 0;
    const int prof = o->profile_after > 0 && pos.step - start >= o->profile_after;
    if (prof && pos.step - start == o->profile_after) lp_model_profile_enable(m, 1);
    double tp0 = prof ? lp_now() : 0.0;
    lp_batch *b = producer_take(&P, &n_skip, &n_trunc, &pe);
    if (prof) res->data_seconds += lp_now() - tp0;
    const double comm0 = tc.seconds, csum0 = tc.sum_seconds;
    if (multi) {
      /* every rank: go on, stop (any rank's wish) or fail (any rank's failure) */
      int stop_all = 0;
      if (!b && !pe.code) pe.code = LP_EINVAL;
      rc = tr_agree(&tc, b ? LP_OK : pe.code, stop_req || (o->stop && *o->stop), &stop_all,
                    &pe);
      if (rc != LP_OK || stop_all) {
        if (b) producer_release(&P);
        if (rc != LP_OK) {
          if (err) *err = pe;
          goto save_and_out;
        }
        stopping = 1;
        break;
      }
    }
    if (!b) {
      rc = lp_err_set(err, pe.code ? pe.code : LP_EINVAL, "%s", pe.msg);
      goto save_and_out;
    }
    int64_t step = pos.step + 1;
    lp_step_stats st;
    memset(&st, 0, sizeof st);
    lp_rng rng_before = rng;
    rc = lp_model_train_step(m, b, step, &rng, &st, err);
    producer_release(&P);
    res->skipped_long += n_skip;
    res->truncated_specs += n_trunc;
    if (rc) {
      rng = rng_before;
      lp_err_prefix(err, "step %lld", (long long)step);
      goto save_and_out;
    }
    double gnorm = 0, tp1 = prof ? lp_now() : 0.0;
    if (cfg->clip_norm > 0)
      lp_grad_clip(grads, np, cfg->clip_norm, &gnorm);
    else
      gnorm = lp_grad_norm(grads, np);
    if (!isfinite(st.loss) || !isfinite(gnorm)) {
      rng = rng_before;
      rc = lp_err_set(err, LP_EINVAL,
                      "step %lld: the loss (%g) or the gradient norm (%g) is not finite; "
                      "stopped before updating the parameters",
                      (long long)step, st.loss, gnorm);
      goto save_and_out;
    }
    float lr = lp_lr_at(&sched, lp_adam_t(opt) + 1);
    lp_adam_step(opt, params, grads, lr, mask);
    if (prof) {
      double tp2 = lp_now();
      res->opt_seconds += tp2 - tp1;
      res->profiled_comm_seconds += tc.seconds - comm0;
      res->profiled_comm_sum_seconds += tc.sum_seconds - csum0;
      res->profiled_seconds += tp2 - tp0;
      res->profiled_steps++;
      res->profiled_tasks += bs;
    }
    pos.step = step;
    pos.next_task += (uint64_t)bs;
    pos.rng_state = rng.state;
    double t = lp_now();
    pos.seconds = sec0 + (t - t_start);
    /* statistics */
    pos.hist_loss[pos.hist_n % AVG_N] = st.loss;
    pos.hist_acc[pos.hist_n % AVG_N] = st.token_acc;
    pos.hist_n++;
    w.n++;
    w.loss += st.loss;
    w.acc += st.token_acc;
    w.gnorm += gnorm;
    w.lprog += st.loss_prog;
    w.llat += st.loss_latent;
    w.lcom += st.loss_commit;
    w.le2e += st.loss_e2e;
    w.ppl += st.codebook_perplexity;
    w.lacc += st.latent_acc;
    w.lr = lr;
    w.dead = st.dead_codes;
    if (step % log_every == 0 || step == o->steps) {
      /* a row ends the window (with or without a log, so that the window a
       * checkpoint holds is the same either way) */
      if (!logf) {
        memset(&w, 0, sizeof w);
        w.t0 = t;
      } else if (log_row(logf, step, pos.seconds, &w, bs, t)) {
        rc = lp_err_set(err, LP_EIO, "%s: write failed: %s", o->log_path, strerror(errno));
        goto save_and_out;
      }
    }
    int wrote = 0;
    if (o->out_path && ck_every > 0 && step % ck_every == 0 && step < o->steps) {
      win_to_pos(&w, &pos);
      rc = lp_ckpt_save(o->out_path, m, opt, &dom, &pos, o->metadata, err);
      if (rc) goto out;
      last_saved = step;
      res->checkpoints++;
      wrote = 1;
    }
    t_last = lp_now();
    double el = t_last - t_start;
    res->end_step = step;
    if (o->progress) {
      lp_train_progress pr;
      memset(&pr, 0, sizeof pr);
      pr.step = step;
      pr.total_steps = o->steps;
      pr.start_step = start;
      pr.loss = st.loss;
      pr.token_acc = st.token_acc;
      hist_mean(&pos, &pr.loss_avg, &pr.acc_avg);
      pr.lr = lr;
      pr.grad_norm = gnorm;
      pr.elapsed_s = el;
      pr.tasks_per_s = el > 0 ? (double)(step - start) * bs / el : 0;
      pr.eta_s = el > 0 ? (double)(o->steps - step) * el / (double)(step - start) : -1;
      pr.stats = &st;
      pr.checkpoint_written = wrote;
      if (o->progress(&pr, o->user)) stop_req = 1;
    }
    if (o->stop && *o->stop) stop_req = 1;
    if (o->max_seconds > 0 && lp_now() - t_start >= o->max_seconds && pos.step < o->steps) {
      stop_req = 1;
      res->time_limited = 1;
    }
    /* multi-process: the ranks stop together at the next step's agreement */
    if (!multi) stopping = stop_req;
  }
  res->stopped = stopping;
  /* stopped between rows: one more row, so the log reaches the checkpoint's
   * step (it ends the window: the checkpoint then holds an empty one) */
  if (logf && w.n > 0 && pos.step > start &&
      log_row(logf, pos.step, pos.seconds, &w, bs, lp_now())) {
    rc = lp_err_set(err, LP_EIO, "%s: write failed: %s", o->log_path, strerror(errno));
    goto save_and_out;
  }

save_and_out:
  if (o->out_path && pos.step != last_saved) {
    lp_err se;
    memset(&se, 0, sizeof se);
    win_to_pos(&w, &pos);
    int src = lp_ckpt_save(o->out_path, m, opt, &dom, &pos, o->metadata, &se);
    if (src == LP_OK) {
      res->checkpoints++;
      last_saved = pos.step;
      if (rc && err) {
        /* keep the original message; say the state was saved */
        char msg[LP_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        lp_err_set(err, rc, "%.700s (the checkpoint of step %lld was saved to %.200s)", msg,
                   (long long)pos.step, o->out_path);
      }
    } else if (rc == LP_OK) {
      rc = src;
      if (err) *err = se;
    }
  }
  if (multi && !tc.agreed) {
    /* every rank learns whether any failed (rank 0's checkpoint included),
     * then, all well, that they hold the same parameters */
    end_agreed = 1;
    rc = tr_agree(&tc, rc, 0, NULL, err);
    if (rc == LP_OK) rc = tr_check_same(&tc, m, pos.step, err);
  }
  {
    double el = lp_now() - t_start;
    res->seconds = el;
    res->end_step = pos.step;
    res->tasks_seen = (int64_t)pos.next_task;
    res->tasks_per_s = el > 0 ? (double)(pos.step - start) * bs / el : 0;
    hist_mean(&pos, &res->final_loss, &res->final_acc);
    res->final_n = pos.hist_n < AVG_N ? (int64_t)pos.hist_n : AVG_N;
    if (o->profile_after > 0) lp_model_profile_get(m, &res->profile);
  }

out:
  /* multi-process: a failure the other ranks do not know yet goes to their
   * next agreement */
  if (multi && rc != LP_OK && !tc.agreed && !end_agreed) {
    end_agreed = 1;
    rc = tr_agree(&tc, rc, 0, NULL, err);
  }
  res->comm_seconds = tc.seconds;
  res->comm_sum_seconds = tc.sum_seconds;
  if (thread_started) {
    pthread_mutex_lock(&P.mu);
    P.shutdown = 1;
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
    pthread_join(th, NULL);
  }
  if (P.file_records) {
    res->pass_lines = (int64_t)P.file_records + P.file_skipped;
    res->pass_skipped = P.file_skipped;
  }
  if (sync_ready) {
    pthread_mutex_destroy(&P.mu);
    pthread_cond_destroy(&P.cv);
  }
  producer_destroy(&P);
  if (logf && fclose(logf) != 0 && rc == LP_OK)
    rc = lp_err_set(err, LP_EIO, "%s: write failed", o->log_path);
  free(mask);
  lp_buf_free(&t1);
  lp_buf_free(&t2);
  lp_model_free(m);
  lp_adam_free(opt);
  if (prec_set) lp_engine_set_precision(prec_before);
  return rc;
}

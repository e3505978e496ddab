/* The lp_comm of lpsynth/model.h over MPI (built when CMake finds MPI; see
 * mpi_comm.h). Only the training thread calls MPI (MPI_THREAD_FUNNELED); the
 * collectives run on a duplicate of MPI_COMM_WORLD.
 *
 * The agreement that starts each step is where a rank waits for the slowest
 * one: it waits sleeping (MPI_Iallreduce, then MPI_Test with short sleeps)
 * rather than in MPI's busy poll, so a waiting rank leaves its core to the
 * ranks still computing when there are fewer cores than ranks x threads. The
 * sums that follow it find every rank ready and run blocking. */
#define _GNU_SOURCE
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mpi_comm.h"

static MPI_Comm g_comm = MPI_COMM_NULL;

int cli_mpi_built(void) { return 1; }

/* Sums n elements of `type` in place, in pieces of at most INT_MAX. */
static int sum_in_place(cli_mpi *x, void *buf, size_t n, MPI_Datatype type, size_t elem) {
  char *p = buf;
  while (n > 0) {
    const int k = n > (size_t)INT_MAX ? INT_MAX : (int)n;
    if (MPI_Allreduce(MPI_IN_PLACE, p, k, type, MPI_SUM, g_comm) != MPI_SUCCESS) {
      x->comm_failed = 1;
      return LP_EIO;
    }
    p += (size_t)k * elem;
    n -= (size_t)k;
  }
  return LP_OK;
}

static int sum_f32(void *u, float *buf, size_t n) {
  return sum_in_place(u, buf, n, MPI_FLOAT, sizeof(float));
}

static int sum_f64(void *u, double *buf, size_t n) {
  return sum_in_place(u, buf, n, MPI_DOUBLE, sizeof(double));
}

/* Completes req, sleeping between tests: 2 us at first, doubling up to 200 us. */
static int wait_sleeping(MPI_Request *req) {
  long ns = 2000;
  for (;;) {
    int done = 0;
    if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return -1;
    if (done) return 0;
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
    if (ns < 200000) ns *= 2;
  }
}

/* The bitwise OR of the flags and the lowest failing rank (a MAX of
 * size - 1 - rank), whose code and message are then broadcast. */
static int agree(void *u, int *flags, int *code, char *msg, size_t cap) {
  cli_mpi *x = u;
  const int rank = x->comm.rank, size = x->comm.size, fail = (*flags & LP_COMM_FAIL) != 0;
  int f = *flags, low = fail ? size - 1 - rank : -1;
  MPI_Request req[2];
  if (MPI_Iallreduce(MPI_IN_PLACE, &f, 1, MPI_INT, MPI_BOR, g_comm, &req[0]) != MPI_SUCCESS ||
      MPI_Iallreduce(MPI_IN_PLACE, &low, 1, MPI_INT, MPI_MAX, g_comm, &req[1]) != MPI_SUCCESS ||
      wait_sleeping(&req[0]) != 0 || wait_sleeping(&req[1]) != 0) {
    x->comm_failed = 1;
    return LP_EIO;
  }
  *flags = f;
  if (!(f & LP_COMM_FAIL)) return LP_OK;
  const int root = size - 1 - low;
  const int n = cap > (size_t)INT_MAX ? INT_MAX : (int)cap;
  if (MPI_Bcast(code, 1, MPI_INT, root, g_comm) != MPI_SUCCESS ||
      (n > 0 && MPI_Bcast(msg, n, MPI_CHAR, root, g_comm) != MPI_SUCCESS)) {
    x->comm_failed = 1;
    return LP_EIO;
  }
  if (n > 0) msg[n - 1] = '\0';
  x->agreed = 1;
  return LP_OK;
}

int cli_mpi_start(const char *verb, cli_mpi *x) {
  memset(x, 0, sizeof *x);
  x->comm.size = 1;
  if (cli_mpi_launched() <= 1) return 0;
  int provided = 0, rank = 0, size = 1;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    cli_error(verb, "MPI_Init_thread failed");
    return -1;
  }
  x->active = 1;
  if (MPI_Comm_dup(MPI_COMM_WORLD, &g_comm) != MPI_SUCCESS ||
      MPI_Comm_rank(g_comm, &rank) != MPI_SUCCESS ||
      MPI_Comm_size(g_comm, &size) != MPI_SUCCESS) {
    cli_error(verb, "MPI: cannot set up the communicator");
    x->comm_failed = 1;
    return -1;
  }
  if (provided < MPI_THREAD_FUNNELED) {
    /* the training thread is the only one that calls MPI; the library still
     * has to tolerate the process's other threads */
    if (rank == 0)
      fprintf(stderr, "lpsynth %s: warning: the MPI library gives thread level %d (< "
              "MPI_THREAD_FUNNELED)\n", verb, provided);
  }
  x->comm.rank = rank;
  x->comm.size = size;
  x->comm.allreduce_sum_f32 = sum_f32;
  x->comm.allreduce_sum_f64 = sum_f64;
  x->comm.agree = agree;
  x->comm.user = x;
  return 0;
}

int cli_mpi_root(const cli_mpi *x) { return x->comm.rank == 0; }

void cli_mpi_fail_early(cli_mpi *x, const char *msg) {
  if (!x->active || x->comm.size <= 1 || x->comm_failed || x->agreed) return;
  char m[LP_ERR_MSG_MAX];
  snprintf(m, sizeof m, "rank %d: %.1000s", x->comm.rank, msg);
  int flags = LP_COMM_FAIL, code = LP_EINVAL;
  agree(x, &flags, &code, m, sizeof m);
}

void cli_mpi_end(cli_mpi *x, int abort_job) {
  if (!x->active) return;
  x->active = 0;
  if (x->comm_failed || abort_job) {
    MPI_Abort(MPI_COMM_WORLD, 1);
    return;
  }
  if (g_comm != MPI_COMM_NULL) MPI_Comm_free(&g_comm);
  MPI_Finalize();
}

/* Multi-process training for `lpsynth train` and `lpsynth bench train`: the
 * lp_comm of lpsynth/model.h over MPI (mpi_comm.c, built when CMake finds
 * MPI), or a stand-in that refuses to run under mpirun (mpi_none.c).
 *
 * A process is one rank of an MPI job when it was launched by mpirun (or
 * srun) with more than one rank - OMPI_COMM_WORLD_SIZE (OpenMPI) or PMI_SIZE
 * (MPICH, Slurm) > 1 - or LPSYNTH_MPI=1 says so (LPSYNTH_MPI=0: never, even under
 * mpirun). Otherwise nothing here touches MPI and the comm has size 1.
 *
 * OWNERSHIP: the cli_mpi is the caller's and must stay where it is from
 * cli_mpi_start to cli_mpi_end (x->comm.user points to it).
 */
#ifndef LPSYNTH_CLI_MPI_COMM_H
#define LPSYNTH_CLI_MPI_COMM_H

#include <stdlib.h>

#include "lpsynth/model.h"

typedef struct cli_mpi {
  lp_comm comm;     /* size 1 when not in MPI */
  int active;       /* MPI was started (cli_mpi_end finalizes it) */
  int comm_failed;  /* a collective failed: the ranks may be out of step */
  int agreed;       /* an agreement reported a failure: every rank knows it */
} cli_mpi;

/* The number of ranks the launcher says this job has (1: not launched as
 * several; LPSYNTH_MPI=1 counts as 2 or more, LPSYNTH_MPI=0 as 1). */
static inline int cli_mpi_launched(void) {
  const char *f = getenv("LPSYNTH_MPI");
  if (f && *f) return f[0] == '0' ? 1 : 2;
  const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
  for (int i = 0; i < 2; i++) {
    const char *v = getenv(vars[i]);
    if (v && atoi(v) > 1) return atoi(v);
  }
  return 1;
}

/* 1 when this build has MPI. */
int cli_mpi_built(void);
/* Starts MPI when this process is one of several ranks (above); without MPI
 * in this build that is an error (a message naming the fix). 0, or -1 after
 * a message (cli_error(verb, ...)). */
int cli_mpi_start(const char *verb, cli_mpi *x);
/* 1 on the rank that prints reports and progress (rank 0, or no MPI). */
int cli_mpi_root(const cli_mpi *x);
/* This rank failed before it could call lp_train_run (it has said why on its
 * stderr): one agreement with LP_COMM_FAIL, so the others (waiting in their
 * first agreement) stop with `msg`. No-op without MPI. */
void cli_mpi_fail_early(cli_mpi *x, const char *msg);
/* Ends MPI (no-op without it): MPI_Finalize, or MPI_Abort when a collective
 * failed or `abort_job` (other ranks may be waiting for this one). */
void cli_mpi_end(cli_mpi *x, int abort_job);

#endif

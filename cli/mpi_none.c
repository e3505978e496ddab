/* mpi_comm.h without MPI (CMake did not find it): one process; started by
 * mpirun as one of several ranks, training refuses with a message saying how
 * to get MPI. */
#define _GNU_SOURCE
#include <string.h>

#include "cli.h"
#include "mpi_comm.h"

int cli_mpi_built(void) { return 0; }

int cli_mpi_start(const char *verb, cli_mpi *x) {
  memset(x, 0, sizeof *x);
  x->comm.size = 1;
  const int n = cli_mpi_launched();
  if (n <= 1) return 0;
  cli_error(verb,
            "this lpsynth was built without MPI, but it was started as one of %s ranks (mpirun, "
            "srun or LPSYNTH_MPI=1): install OpenMPI (bash scripts/setup.sh installs "
            "libopenmpi-dev and openmpi-bin) and rebuild, or run it as one process",
            getenv("LPSYNTH_MPI") ? "several" : (getenv("OMPI_COMM_WORLD_SIZE")
                                                     ? getenv("OMPI_COMM_WORLD_SIZE")
                                                     : getenv("PMI_SIZE")));
  return -1;
}

int cli_mpi_root(const cli_mpi *x) { return x->comm.rank == 0; }

void cli_mpi_fail_early(cli_mpi *x, const char *msg) {
  (void)x;
  (void)msg;
}

void cli_mpi_end(cli_mpi *x, int abort_job) {
  (void)x;
  (void)abort_job;
}

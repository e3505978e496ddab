/* Small runtime utilities: task seeds, capability names, atomic file writes
 * (the one writer: lp_atomic_* and lp_write_file_atomic on top of it, which
 * plugins reach through the host table's write_file_atomic). */
#define _POSIX_C_SOURCE 200809L
#include "lpsynth/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t lp_task_seed(uint64_t base, uint64_t i) { return splitmix64(splitmix64(base) ^ i); }

const char *lp_caps_string(uint32_t caps, char *buf, size_t n) {
  static const char *names[] = {"execute", "check",   "generate", "anonymise",
                                "prefix",  "size",    "extract",  "tokenizer", "solve",
                                "wellformed"};
  size_t used = 0;
  if (n) buf[0] = 0;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    if (!(caps & (1u << i))) continue;
    int w = snprintf(buf + used, used < n ? n - used : 0, "%s%s", used ? "," : "", names[i]);
    if (w > 0) used += (size_t)w;
  }
  if (n && used == 0) snprintf(buf, n, "-");
  return buf;
}

size_t lp_tmp_sweep(const char *path) {
  if (!path || !*path) return 0;
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t dl = slash ? (size_t)(slash - path) : 0, bl = strlen(base);
  if (!bl) return 0;
  char *dir = malloc(dl + 2);
  if (!dir) return 0;
  if (slash) {
    memcpy(dir, path, dl ? dl : 1); /* "/x": the root */
    dir[dl ? dl : 1] = 0;
  } else {
    strcpy(dir, ".");
  }
  size_t removed = 0;
  DIR *dp = opendir(dir);
  if (dp) {
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
      const char *n = de->d_name;
      if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".tmp.", 5) != 0) continue;
      const char *num = n + bl + 5;
      if (!*num || strlen(num) > 9) continue;
      long pid = 0;
      int digits = 1;
      for (const char *q = num; *q; q++) {
        if (*q < '0' || *q > '9') digits = 0;
        else pid = pid * 10 + (*q - '0');
      }
      if (!digits || pid <= 0 || pid == (long)getpid()) continue;
      if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive (or not ours to know) */
      size_t fl = strlen(dir) + 1 + strlen(n) + 1;
      char *full = malloc(fl);
      if (!full) continue;
      snprintf(full, fl, "%s/%s", dir, n);
      if (unlink(full) == 0) removed++;
      free(full);
    }
    closedir(dp);
  }
  free(dir);
  return removed;
}

int lp_atomic_open(lp_atomic_file *o, const char *path, lp_err *err) {
  memset(o, 0, sizeof *o);
  if (!path || !*path) return lp_err_set(err, LP_EINVAL, "no file name to write");
  lp_tmp_sweep(path); /* temporary files of writers killed while writing path */
  size_t pl = strlen(path);
  o->path = malloc(pl + 1);
  o->tmp = malloc(pl + 32);
  if (!o->path || !o->tmp) {
    lp_atomic_abort(o);
    return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
  }
  memcpy(o->path, path, pl + 1);
  snprintf(o->tmp, pl + 32, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0 && !(o->f = fdopen(fd, "wb"))) close(fd);
  if (!o->f) {
    int e = errno;
    if (fd >= 0) unlink(o->tmp);
    lp_atomic_abort(o);
    return lp_err_set(err, LP_EIO, "%s: cannot create temporary file: %s", path, strerror(e));
  }
  return LP_OK;
}

int lp_atomic_commit(lp_atomic_file *o, lp_err *err) {
  if (!o->f) return lp_err_set(err, LP_EINVAL, "no file open for writing");
  const char *what = NULL;
  if (fflush(o->f) != 0 || ferror(o->f)) what = "write failed";
  else if (fsync(fileno(o->f)) != 0) what = "fsync/close failed";
  int e = errno;
  if (fclose(o->f) != 0 && !what) what = "fsync/close failed", e = errno;
  o->f = NULL;
  if (!what && rename(o->tmp, o->path) != 0) what = "rename failed", e = errno;
  int rc = LP_OK;
  if (what) {
    rc = lp_err_set(err, LP_EIO, "%s: %s: %s", o->path, what, strerror(e));
    unlink(o->tmp);
  }
  lp_atomic_abort(o); /* frees the names; the file is closed already */
  return rc;
}

void lp_atomic_abort(lp_atomic_file *o) {
  if (!o) return;
  if (o->f) {
    fclose(o->f);
    unlink(o->tmp);
  }
  free(o->path);
  free(o->tmp);
  memset(o, 0, sizeof *o);
}

int lp_write_file_atomic(const char *path, const void *data, size_t len, lp_err *err) {
  lp_atomic_file o;
  int rc = lp_atomic_open(&o, path, err);
  if (rc != LP_OK) return rc;
  if (len && fwrite(data, 1, len, o.f) != len) {
    int e = errno;
    lp_atomic_abort(&o);
    return lp_err_set(err, LP_EIO, "%s: write failed: %s", path, strerror(e));
  }
  return lp_atomic_commit(&o, err);
}

double lp_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

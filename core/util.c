/* Small runtime utilities: task seeds, capability names, atomic file writes. */
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
                                "prefix",  "size",    "extract",  "tokenizer", "solve"};
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

int lp_write_file_atomic(const char *path, const void *data, size_t len, lp_err *err) {
  lp_tmp_sweep(path);
  size_t pl = strlen(path);
  char *tmp = malloc(pl + 32);
  if (!tmp) return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
  snprintf(tmp, pl + 32, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return lp_err_set(err, LP_EIO, "%s: cannot create temporary file: %s", path, strerror(e));
  }
  const char *p = data;
  size_t left = len;
  while (left) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(tmp);
      free(tmp);
      return lp_err_set(err, LP_EIO, "%s: write failed: %s", path, strerror(e));
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int e = errno;
    unlink(tmp);
    free(tmp);
    return lp_err_set(err, LP_EIO, "%s: fsync/close failed: %s", path, strerror(e));
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    free(tmp);
    return lp_err_set(err, LP_EIO, "%s: rename failed: %s", path, strerror(e));
  }
  free(tmp);
  return LP_OK;
}

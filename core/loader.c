/* Plugin loader: search path, dlopen, descriptor validation, domain wrappers. */
#define _GNU_SOURCE
#include "lpsynth/runtime.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct lp_plugin {
  void *handle;
  char *path;
  lp_domain_desc desc; /* validated copy */
};

struct lp_domain {
  lp_plugin *plugin;
  void *self;
};

static const struct {
  uint32_t cap;
  size_t off;
  const char *name;
} cap_fns[] = {
    {LP_CAP_EXECUTE, offsetof(lp_domain_desc, execute), "execute"},
    {LP_CAP_CHECK, offsetof(lp_domain_desc, check), "check"},
    {LP_CAP_GENERATE, offsetof(lp_domain_desc, generate), "generate"},
    {LP_CAP_ANONYMISE, offsetof(lp_domain_desc, anonymise), "anonymise"},
    {LP_CAP_PREFIX, offsetof(lp_domain_desc, prefix_ok), "prefix_ok"},
    {LP_CAP_LENGTH, offsetof(lp_domain_desc, program_size), "program_size"},
    {LP_CAP_EXTRACT, offsetof(lp_domain_desc, extract_pairs), "extract_pairs"},
    {LP_CAP_TOKENIZER, offsetof(lp_domain_desc, tokenizer_train), "tokenizer_train"},
    {LP_CAP_SOLVE, offsetof(lp_domain_desc, solve), "solve"},
    {LP_CAP_WELLFORMED, offsetof(lp_domain_desc, wellformed), "wellformed"},
};
#define LP_CAP_ALL (LP_CAP_EXECUTE | LP_CAP_CHECK | LP_CAP_GENERATE | LP_CAP_ANONYMISE | \
                    LP_CAP_PREFIX | LP_CAP_LENGTH | LP_CAP_EXTRACT | LP_CAP_TOKENIZER | \
                    LP_CAP_SOLVE | LP_CAP_WELLFORMED)

static const struct {
  size_t off;
  const char *name;
} required_fns[] = {
    {offsetof(lp_domain_desc, create), "create"},
    {offsetof(lp_domain_desc, destroy), "destroy"},
    {offsetof(lp_domain_desc, program_vocab), "program_vocab"},
    {offsetof(lp_domain_desc, program_token), "program_token"},
    {offsetof(lp_domain_desc, program_encode), "program_encode"},
    {offsetof(lp_domain_desc, program_decode), "program_decode"},
    {offsetof(lp_domain_desc, spec_vocab), "spec_vocab"},
    {offsetof(lp_domain_desc, spec_token), "spec_token"},
    {offsetof(lp_domain_desc, spec_encode), "spec_encode"},
};

static int fn_present(const lp_domain_desc *d, size_t off) {
  void (*f)(void);
  memcpy(&f, (const char *)d + off, sizeof f);
  return f != NULL;
}

static int valid_name(const char *s) {
  size_t n = 0;
  for (; s[n]; n++) {
    char c = s[n];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    if (n >= 63) return 0;
  }
  return n > 0;
}

int lp_desc_validate(const lp_domain_desc *d, const char *origin, lp_domain_desc *out,
                     lp_err *err) {
  if (!d) return lp_err_set(err, LP_EABI, "plugin %s: its entry point returned no descriptor", origin);
  /* Read the size-stamp and versions first: they are at the same place in every ABI. */
  if (d->abi_major != LP_PLUGIN_ABI_MAJOR)
    return lp_err_set(err, LP_EABI,
                      "plugin %s: built for plugin ABI %u.%u, but this lpsynth speaks ABI %d.%d "
                      "(major versions must match): rebuild the plugin against this lpsynth's headers",
                      origin, d->abi_major, d->abi_minor, LP_PLUGIN_ABI_MAJOR, LP_PLUGIN_ABI_MINOR);
  if (d->struct_size < LP_DOMAIN_DESC_MIN_SIZE)
    return lp_err_set(err, LP_EABI,
                      "plugin %s: descriptor is %u bytes, smaller than the %zu bytes every ABI %d "
                      "descriptor must have (plugin ABI %u.%u)",
                      origin, d->struct_size, (size_t)LP_DOMAIN_DESC_MIN_SIZE, LP_PLUGIN_ABI_MAJOR,
                      d->abi_major, d->abi_minor);
  lp_domain_desc c;
  memset(&c, 0, sizeof c);
  size_t n = d->struct_size < sizeof c ? d->struct_size : sizeof c;
  memcpy(&c, d, n);
  if (!c.name || !c.version || !c.description)
    return lp_err_set(err, LP_EABI, "plugin %s: descriptor lacks its %s", origin,
                      !c.name ? "name" : !c.version ? "version" : "description");
  if (!valid_name(c.name))
    return lp_err_set(err, LP_EABI,
                      "plugin %s: domain name \"%.80s\" is not 1-63 characters of [a-z0-9_]", origin,
                      c.name);
  if (c.spec_parts != 1 && c.spec_parts != 2)
    return lp_err_set(err, LP_EABI, "plugin %s (domain %s): spec_parts is %u, must be 1 or 2",
                      origin, c.name, c.spec_parts);
  for (size_t i = 0; i < sizeof required_fns / sizeof *required_fns; i++)
    if (!fn_present(&c, required_fns[i].off))
      return lp_err_set(err, LP_EABI, "plugin %s (domain %s): required function %s is missing",
                        origin, c.name, required_fns[i].name);
  if (c.caps & ~(uint32_t)LP_CAP_ALL)
    return lp_err_set(err, LP_EABI,
                      "plugin %s (domain %s): unknown capability bits 0x%x (plugin ABI %u.%u, "
                      "this lpsynth %d.%d)",
                      origin, c.name, c.caps & ~(uint32_t)LP_CAP_ALL, c.abi_major, c.abi_minor,
                      LP_PLUGIN_ABI_MAJOR, LP_PLUGIN_ABI_MINOR);
  for (size_t i = 0; i < sizeof cap_fns / sizeof *cap_fns; i++) {
    int has = fn_present(&c, cap_fns[i].off);
    if ((c.caps & cap_fns[i].cap) && !has)
      return lp_err_set(err, LP_EABI,
                        "plugin %s (domain %s): claims capability %s but its function is missing",
                        origin, c.name, cap_fns[i].name);
    if (!(c.caps & cap_fns[i].cap) && has) {
      /* Ignore a function whose capability is not claimed: the flags are the contract. */
      memset((char *)&c + cap_fns[i].off, 0, sizeof(void (*)(void)));
    }
  }
  if (out) *out = c;
  return LP_OK;
}

static int looks_like_path(const char *s) {
  size_t n = strlen(s);
  return strchr(s, '/') != NULL || (n > 3 && strcmp(s + n - 3, ".so") == 0);
}

static char exe_dirs[2][PATH_MAX + 64];

/* 1 when dir (or the same folder by realpath) is already among dirs[0..k). */
static int seen(const char **dirs, size_t k, const char *dir) {
  char a[PATH_MAX], b[PATH_MAX];
  const char *ra = realpath(dir, a) ? a : dir;
  for (size_t i = 0; i < k; i++) {
    const char *rb = realpath(dirs[i], b) ? b : dirs[i];
    if (strcmp(ra, rb) == 0) return 1;
  }
  return 0;
}

size_t lp_plugin_search_path(const char **dirs, size_t max) {
  size_t k = 0;
#define ADD(x)                                       \
  do {                                               \
    if (k < max && (x) && *(x) && !seen(dirs, k, (x))) dirs[k++] = (x); \
  } while (0)
  static char envcopy[8192];
  const char *env = getenv("LPSYNTH_PLUGIN_PATH");
  if (env && *env) {
    snprintf(envcopy, sizeof envcopy, "%s", env);
    char *save = NULL;
    for (char *t = strtok_r(envcopy, ":", &save); t; t = strtok_r(NULL, ":", &save)) ADD(t);
  }
  char exe[PATH_MAX];
  ssize_t r = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (r > 0) {
    exe[r] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = 0;
      snprintf(exe_dirs[0], sizeof exe_dirs[0], "%.3900s/plugins", exe);
      snprintf(exe_dirs[1], sizeof exe_dirs[1], "%.3900s/../%s", exe, LP_PLUGIN_SUBDIR);
      ADD(exe_dirs[0]);
      ADD(exe_dirs[1]);
    }
  }
  ADD(LP_BUILD_PLUGIN_DIR);
  ADD(LP_INSTALL_PLUGIN_DIR);
#undef ADD
  return k;
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static lp_plugin *load_file(const char *path, const char *want_name, lp_err *err) {
  dlerror();
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    lp_err_set(err, LP_EABI, "plugin %s: cannot load: %s", path, e ? e : "unknown error");
    return NULL;
  }
  dlerror();
  void *sym = dlsym(h, LP_PLUGIN_ENTRY_SYMBOL);
  if (!sym) {
    lp_err_set(err, LP_EABI,
               "plugin %s: no exported symbol %s - not an lpsynth domain plugin", path,
               LP_PLUGIN_ENTRY_SYMBOL);
    dlclose(h);
    return NULL;
  }
  lp_plugin_entry_fn entry;
  memcpy(&entry, &sym, sizeof entry);
  const lp_domain_desc *d = entry();
  lp_plugin *p = calloc(1, sizeof *p);
  if (!p) {
    dlclose(h);
    lp_err_set(err, LP_ENOMEM, "out of memory");
    return NULL;
  }
  if (lp_desc_validate(d, path, &p->desc, err)) {
    dlclose(h);
    free(p);
    return NULL;
  }
  if (want_name && strcmp(want_name, p->desc.name) != 0) {
    lp_err_set(err, LP_EABI, "plugin %s: file is named for domain \"%s\" but declares \"%s\"", path,
               want_name, p->desc.name);
    dlclose(h);
    free(p);
    return NULL;
  }
  p->handle = h;
  p->path = strdup(path);
  if (!p->path) {
    lp_plugin_free(p);
    lp_err_set(err, LP_ENOMEM, "out of memory");
    return NULL;
  }
  return p;
}

lp_plugin *lp_plugin_load(const char *name_or_path, lp_err *err) {
  if (!name_or_path || !*name_or_path) {
    lp_err_set(err, LP_EINVAL, "no domain given (use --domain NAME or --domain PATH.so)");
    return NULL;
  }
  if (looks_like_path(name_or_path)) {
    if (!file_exists(name_or_path)) {
      lp_err_set(err, LP_EIO, "plugin %s: no such file", name_or_path);
      return NULL;
    }
    /* dlopen needs a '/' to take the name as a path rather than search LD paths. */
    if (!strchr(name_or_path, '/')) {
      char buf[PATH_MAX];
      snprintf(buf, sizeof buf, "./%s", name_or_path);
      return load_file(buf, NULL, err);
    }
    return load_file(name_or_path, NULL, err);
  }
  if (!valid_name(name_or_path)) {
    lp_err_set(err, LP_EINVAL, "domain name \"%.80s\" is not [a-z0-9_]+ (or give a path to a .so)",
               name_or_path);
    return NULL;
  }
  const char *dirs[32];
  size_t nd = lp_plugin_search_path(dirs, 32);
  char file[PATH_MAX];
  for (size_t i = 0; i < nd; i++) {
    snprintf(file, sizeof file, "%s/lpsynth_%s.so", dirs[i], name_or_path);
    if (file_exists(file)) return load_file(file, name_or_path, err);
  }
  char searched[2048] = "";
  size_t used = 0;
  for (size_t i = 0; i < nd && used < sizeof searched; i++) {
    int w = snprintf(searched + used, sizeof searched - used, "%s%s", i ? ":" : "", dirs[i]);
    if (w > 0) used += (size_t)w;
  }
  lp_err_set(err, LP_EIO,
             "domain \"%s\" not found: no lpsynth_%s.so in the plugin search path (%s); set "
             "LPSYNTH_PLUGIN_PATH or pass a path to the .so (see `lpsynth domains`)",
             name_or_path, name_or_path, searched);
  return NULL;
}

void lp_plugin_free(lp_plugin *p) {
  if (!p) return;
  if (p->handle) dlclose(p->handle);
  free(p->path);
  free(p);
}

const lp_domain_desc *lp_plugin_desc(const lp_plugin *p) { return &p->desc; }
const char *lp_plugin_path(const lp_plugin *p) { return p->path; }

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int lp_plugin_list(lp_plugin_info **out, size_t *n, lp_err *err) {
  *out = NULL;
  *n = 0;
  const char *dirs[32];
  size_t nd = lp_plugin_search_path(dirs, 32);
  lp_plugin_info *v = NULL;
  size_t len = 0, cap = 0;
  lp_strs seen = {0};
  for (size_t i = 0; i < nd; i++) {
    DIR *dp = opendir(dirs[i]);
    if (!dp) continue;
    struct dirent *de;
    char *names[512];
    size_t nn = 0;
    while ((de = readdir(dp)) && nn < 512) {
      size_t l = strlen(de->d_name);
      if (l > 11 && strncmp(de->d_name, "lpsynth_", 8) == 0 && strcmp(de->d_name + l - 3, ".so") == 0)
        names[nn++] = strdup(de->d_name);
    }
    closedir(dp);
    qsort(names, nn, sizeof *names, cmp_str);
    for (size_t j = 0; j < nn; j++) {
      if (!names[j]) continue;
      int dup = 0;
      for (size_t s = 0; s < seen.len; s++)
        if (strcmp(seen.items[s].data, names[j]) == 0) dup = 1;
      if (!dup && lp_strs_push(&seen, names[j], strlen(names[j])) == LP_OK) {
        if (len == cap) {
          size_t nc = cap ? cap * 2 : 8;
          lp_plugin_info *q = realloc(v, nc * sizeof *q);
          if (!q) {
            free(names[j]);
            continue;
          }
          v = q;
          cap = nc;
        }
        lp_plugin_info *pi = &v[len++];
        memset(pi, 0, sizeof *pi);
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dirs[i], names[j]);
        pi->path = strdup(path);
        size_t l = strlen(names[j]);
        char want[64];
        snprintf(want, sizeof want, "%.*s", (int)(l - 11), names[j] + 8);
        lp_err e = {0};
        lp_plugin *p = load_file(path, want, &e);
        if (p) {
          pi->name = strdup(p->desc.name);
          pi->version = strdup(p->desc.version);
          pi->description = strdup(p->desc.description);
          pi->caps = p->desc.caps;
          pi->abi_major = p->desc.abi_major;
          pi->abi_minor = p->desc.abi_minor;
          lp_plugin_free(p);
        } else {
          pi->error = strdup(e.msg);
        }
      }
      free(names[j]);
    }
  }
  lp_strs_free(&seen);
  (void)err;
  *out = v;
  *n = len;
  return LP_OK;
}

void lp_plugin_list_free(lp_plugin_info *v, size_t n) {
  if (!v) return;
  for (size_t i = 0; i < n; i++) {
    free(v[i].path);
    free(v[i].name);
    free(v[i].version);
    free(v[i].description);
    free(v[i].error);
  }
  free(v);
}

lp_domain *lp_domain_open(const char *name_or_path, const char *options, lp_err *err) {
  lp_plugin *p = lp_plugin_load(name_or_path, err);
  if (!p) return NULL;
  lp_domain *d = calloc(1, sizeof *d);
  if (!d) {
    lp_plugin_free(p);
    lp_err_set(err, LP_ENOMEM, "out of memory");
    return NULL;
  }
  d->plugin = p;
  lp_err e = {0};
  int rc = p->desc.create(lp_host_api_get(), options, &d->self, &e);
  if (rc != LP_OK) {
    lp_err_set(err, rc < 0 ? rc : LP_EINVAL, "domain %s (%s): cannot create an instance: %s",
               p->desc.name, p->path, e.msg[0] ? e.msg : "no reason given");
    lp_plugin_free(p);
    free(d);
    return NULL;
  }
  return d;
}

void lp_domain_free(lp_domain *d) {
  if (!d) return;
  if (d->plugin) {
    d->plugin->desc.destroy(d->self);
    lp_plugin_free(d->plugin);
  }
  free(d);
}

const lp_domain_desc *lp_domain_desc_of(const lp_domain *d) { return &d->plugin->desc; }
const char *lp_domain_name(const lp_domain *d) { return d->plugin->desc.name; }
const char *lp_domain_path(const lp_domain *d) { return d->plugin->path; }
int lp_domain_has(const lp_domain *d, uint32_t cap) { return (d->plugin->desc.caps & cap) == cap; }

/* A plugin that fails must say why; make sure the message is never empty. */
static int after(lp_domain *d, int rc, const char *fn, lp_err *err) {
  if (rc == LP_OK) return LP_OK;
  if (rc > 0) rc = LP_EINVAL;
  if (err) {
    err->code = rc;
    if (!err->msg[0])
      snprintf(err->msg, sizeof err->msg, "domain %s: %s failed (code %d) without a message",
               d->plugin->desc.name, fn, rc);
  }
  return rc;
}

static int need(lp_domain *d, uint32_t cap, const char *what, lp_err *err) {
  if (d->plugin->desc.caps & cap) return LP_OK;
  return lp_err_set(err, LP_EUNSUP, "domain %s (%s) cannot %s", d->plugin->desc.name,
                    d->plugin->path, what);
}

#define CLEAR_ERR(err) \
  do {                 \
    if (err) {         \
      (err)->code = 0; \
      (err)->msg[0] = 0; \
    }                  \
  } while (0)

int lp_domain_program_vocab(lp_domain *d, lp_vocab_info *out) {
  return d->plugin->desc.program_vocab(d->self, out);
}
const char *lp_domain_program_token(lp_domain *d, int32_t id) {
  return d->plugin->desc.program_token(d->self, id);
}
int lp_domain_spec_vocab(lp_domain *d, lp_vocab_info *out) {
  return d->plugin->desc.spec_vocab(d->self, out);
}

int lp_domain_program_encode(lp_domain *d, const char *text, size_t len, lp_ids *out, lp_err *err) {
  CLEAR_ERR(err);
  return after(d, d->plugin->desc.program_encode(d->self, text, len, out, err), "program_encode", err);
}

int lp_domain_program_decode(lp_domain *d, const int32_t *ids, size_t n, lp_buf *out, lp_err *err) {
  CLEAR_ERR(err);
  return after(d, d->plugin->desc.program_decode(d->self, ids, n, out, err), "program_decode", err);
}

int lp_domain_spec_encode(lp_domain *d, uint32_t part, const char *text, size_t len, lp_ids *out,
                          size_t *n_unknown, lp_err *err) {
  CLEAR_ERR(err);
  if (part >= d->plugin->desc.spec_parts)
    return lp_err_set(err, LP_EINVAL, "domain %s: specification part %u out of range",
                      d->plugin->desc.name, part);
  return after(d, d->plugin->desc.spec_encode(d->self, part, text, len, out, n_unknown, err),
               "spec_encode", err);
}

int lp_domain_execute(lp_domain *d, const int32_t *ids, size_t n, const char *in, size_t len,
                      lp_buf *out, lp_err *err) {
  CLEAR_ERR(err);
  if (need(d, LP_CAP_EXECUTE, "execute programs", err)) return LP_EUNSUP;
  return after(d, d->plugin->desc.execute(d->self, ids, n, in, len, out, err), "execute", err);
}

int lp_domain_check(lp_domain *d, const int32_t *ids, size_t n, const lp_example *ex, size_t n_ex,
                    int *consistent, lp_err *err) {
  CLEAR_ERR(err);
  if (need(d, LP_CAP_CHECK, "check programs against examples", err)) return LP_EUNSUP;
  return after(d, d->plugin->desc.check(d->self, ids, n, ex, n_ex, consistent, err), "check", err);
}

int lp_domain_generate(lp_domain *d, uint64_t seed, const lp_gen_opts *opts, lp_task *out,
                       lp_err *err) {
  CLEAR_ERR(err);
  if (need(d, LP_CAP_GENERATE, "generate tasks", err)) return LP_EUNSUP;
  return after(d, d->plugin->desc.generate(d->self, seed, opts, out, err), "generate", err);
}

int lp_domain_program_size(lp_domain *d, const int32_t *ids, size_t n, int32_t *size, lp_err *err) {
  CLEAR_ERR(err);
  if (need(d, LP_CAP_LENGTH, "measure program size", err)) return LP_EUNSUP;
  return after(d, d->plugin->desc.program_size(d->self, ids, n, size, err), "program_size", err);
}

int lp_domain_anonymise(lp_domain *d, const int32_t *ids, size_t n, lp_ids *out, lp_err *err) {
  CLEAR_ERR(err);
  if (need(d, LP_CAP_ANONYMISE, "anonymise programs", err)) return LP_EUNSUP;
  return after(d, d->plugin->desc.anonymise(d->self, ids, n, out, err), "anonymise", err);
}

int lp_domain_prefix_ok(lp_domain *d, const int32_t *ids, size_t n, const lp_example *ex,
                        size_t n_ex, int *ok, lp_err *err) {
  CLEAR_ERR(err);
  if (need(d, LP_CAP_PREFIX, "judge program prefixes", err)) return LP_EUNSUP;
  return after(d, d->plugin->desc.prefix_ok(d->self, ids, n, ex, n_ex, ok, err), "prefix_ok", err);
}

int lp_domain_extract_pairs(lp_domain *d, const char *path, const char *text, size_t len,
                            lp_pair_fn fn, void *ctx, lp_err *err) {
  CLEAR_ERR(err);
  if (need(d, LP_CAP_EXTRACT, "extract (specification, program) pairs from source files", err))
    return LP_EUNSUP;
  if (!fn || (!text && len))
    return lp_err_set(err, LP_EINVAL, "domain %s: extract_pairs needs a callback and text",
                      d->plugin->desc.name);
  return after(d, d->plugin->desc.extract_pairs(d->self, path ? path : "<text>", text ? text : "",
                                                len, fn, ctx, err),
               "extract_pairs", err);
}

int lp_domain_tokenizer_train(lp_domain *d, const lp_strs *texts, int32_t vocab_size,
                              const char *out_path, lp_err *err) {
  CLEAR_ERR(err);
  if (need(d, LP_CAP_TOKENIZER, "train a tokenizer", err)) return LP_EUNSUP;
  if (!texts || !out_path || !*out_path)
    return lp_err_set(err, LP_EINVAL, "domain %s: tokenizer_train needs texts and an output path",
                      d->plugin->desc.name);
  return after(d, d->plugin->desc.tokenizer_train(d->self, texts, vocab_size, out_path, err),
               "tokenizer_train", err);
}

int lp_domain_wellformed(lp_domain *d, const int32_t *ids, size_t n, int *ok, lp_err *err) {
  CLEAR_ERR(err);
  if (need(d, LP_CAP_WELLFORMED, "tell well-formed programs", err)) return LP_EUNSUP;
  if ((!ids && n) || !ok)
    return lp_err_set(err, LP_EINVAL, "domain %s: wellformed needs ids and a result",
                      d->plugin->desc.name);
  *ok = 0;
  return after(d, d->plugin->desc.wellformed(d->self, ids, n, ok, err), "wellformed", err);
}

int lp_domain_solve(lp_domain *d, const lp_example *ex, size_t n_ex, const lp_solve_opts *opts,
                    lp_solution_fn fn, void *ctx, int *complete, lp_err *err) {
  CLEAR_ERR(err);
  if (complete) *complete = 0;
  if (need(d, LP_CAP_SOLVE, "solve for programs (it has no exact solver)", err))
    return LP_EUNSUP;
  if (!fn || (!ex && n_ex))
    return lp_err_set(err, LP_EINVAL, "domain %s: solve needs examples and a callback",
                      d->plugin->desc.name);
  return after(d, d->plugin->desc.solve(d->self, ex, n_ex, opts, fn, ctx, complete, err), "solve",
               err);
}

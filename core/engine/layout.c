/* Parameter layout: (name, shape, offset, init, decay) of every tensor in a
 * model's single parameter array, and its initialisation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct lp_layout {
  lp_param_info *items;
  size_t len, cap;
  size_t numel;
};

lp_layout *lp_layout_new(void) { return calloc(1, sizeof(lp_layout)); }

void lp_layout_free(lp_layout *L) {
  if (!L) return;
  free(L->items);
  free(L);
}

const lp_param_info *lp_layout_find(const lp_layout *L, const char *name) {
  if (!L || !name) return NULL;
  for (size_t i = 0; i < L->len; i++)
    if (strcmp(L->items[i].name, name) == 0) return &L->items[i];
  return NULL;
}

int lp_layout_add(lp_layout *L, const char *name, int ndim, const int *shape,
                  int init, float init_scale, size_t *offset_out) {
  LP_REQUIRE(L && name && shape && ndim >= 1 && ndim <= LP_MAX_DIMS);
  size_t nlen = strlen(name);
  LP_REQUIRE(nlen > 0 && nlen < LP_PARAM_NAME_MAX);
  LP_REQUIRE(init >= LP_INIT_ZEROS && init <= LP_INIT_XAVIER_UNIFORM);
  LP_REQUIRE(init != LP_INIT_XAVIER_UNIFORM || ndim >= 2);
  LP_REQUIRE(isfinite(init_scale));
  LP_REQUIRE(lp_layout_find(L, name) == NULL);
  size_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    LP_REQUIRE(shape[i] >= 1);
    LP_REQUIRE(numel <= SIZE_MAX / (size_t)shape[i]);
    numel *= (size_t)shape[i];
  }
  LP_REQUIRE(L->numel <= SIZE_MAX - numel);
  if (L->len == L->cap) {
    size_t cap = L->cap ? 2 * L->cap : 16;
    lp_param_info *items = realloc(L->items, cap * sizeof(*items));
    if (!items) return LP_ENOMEM;
    L->items = items;
    L->cap = cap;
  }
  lp_param_info *p = &L->items[L->len++];
  memset(p, 0, sizeof(*p));
  memcpy(p->name, name, nlen + 1);
  p->ndim = ndim;
  for (int i = 0; i < ndim; i++) p->shape[i] = shape[i];
  p->offset = L->numel;
  p->numel = numel;
  p->init = init;
  p->init_scale = init_scale;
  p->decay = 1;
  L->numel += numel;
  if (offset_out) *offset_out = p->offset;
  return LP_OK;
}

size_t lp_layout_numel(const lp_layout *L) { return L ? L->numel : 0; }

size_t lp_layout_count(const lp_layout *L) { return L ? L->len : 0; }

const lp_param_info *lp_layout_param(const lp_layout *L, size_t i) {
  if (!L || i >= L->len) return NULL;
  return &L->items[i];
}

size_t lp_layout_set_decay(lp_layout *L, const char *substr, int decay) {
  if (!L) return 0;
  size_t changed = 0;
  for (size_t i = 0; i < L->len; i++) {
    if (substr && substr[0] && !strstr(L->items[i].name, substr)) continue;
    L->items[i].decay = decay ? 1 : 0;
    changed++;
  }
  return changed;
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

int lp_layout_init_params(const lp_layout *L, float *params, uint64_t seed) {
  LP_REQUIRE(L && (params || L->numel == 0));
  for (size_t i = 0; i < L->len; i++) {
    const lp_param_info *p = &L->items[i];
    float *w = params + p->offset;
    lp_rng rng;
    lp_rng_seed(&rng, seed ^ fnv1a(p->name));
    lp_rng_next(&rng);
    switch (p->init) {
      case LP_INIT_ZEROS:
        memset(w, 0, p->numel * sizeof(float));
        break;
      case LP_INIT_ONES:
        for (size_t j = 0; j < p->numel; j++) w[j] = 1.0f;
        break;
      case LP_INIT_NORMAL:
        for (size_t j = 0; j < p->numel; j++) w[j] = p->init_scale * lp_rng_normal(&rng);
        break;
      case LP_INIT_UNIFORM:
        for (size_t j = 0; j < p->numel; j++)
          w[j] = p->init_scale * (2.0f * lp_rng_uniform(&rng) - 1.0f);
        break;
      case LP_INIT_XAVIER_UNIFORM: {
        double r = 1.0;
        for (int d = 0; d + 2 < p->ndim; d++) r *= p->shape[d];
        double fan_in = p->shape[p->ndim - 2] * r, fan_out = p->shape[p->ndim - 1] * r;
        float a = (float)(p->init_scale * sqrt(6.0 / (fan_in + fan_out)));
        for (size_t j = 0; j < p->numel; j++) w[j] = a * (2.0f * lp_rng_uniform(&rng) - 1.0f);
        break;
      }
      default:
        return LP_EINVAL;
    }
  }
  return LP_OK;
}

int lp_layout_decay_mask(const lp_layout *L, uint8_t *mask) {
  LP_REQUIRE(L && (mask || L->numel == 0));
  for (size_t i = 0; i < L->len; i++)
    memset(mask + L->items[i].offset, L->items[i].decay ? 1 : 0, L->items[i].numel);
  return LP_OK;
}

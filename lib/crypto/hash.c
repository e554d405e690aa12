/* Digest dispatch: OpenSSL EVP for SHA-2, SHA-3, BLAKE2b-512 and BLAKE2s-256; crypto/keccak.c for
 * Keccak; a small BLAKE2b here for BLAKE2b-256, because OpenSSL 3.0's BLAKE2B-512 digest has no
 * settable output size (that arrived in 3.2) and its BLAKE2BMAC refuses an empty key. */
#include "crypto/hash.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/macro.h"
#include "crypto/keccak.h"
#include "crypto/ossl.h"

enum hash_impl { IMPL_EVP, IMPL_KECCAK, IMPL_BLAKE2B };

struct hash_info {
  const char *name;
  const char *ossl_name; /* EVP_MD name for IMPL_EVP */
  size_t size;
  enum hash_impl impl;
};

static const struct hash_info infos[_HASH_ALG_MAX] = {
    [HASH_SHA256] = {"sha256", "SHA256", 32, IMPL_EVP},
    [HASH_SHA384] = {"sha384", "SHA384", 48, IMPL_EVP},
    [HASH_SHA512] = {"sha512", "SHA512", 64, IMPL_EVP},
    [HASH_SHA3_256] = {"sha3-256", "SHA3-256", 32, IMPL_EVP},
    [HASH_SHA3_384] = {"sha3-384", "SHA3-384", 48, IMPL_EVP},
    [HASH_SHA3_512] = {"sha3-512", "SHA3-512", 64, IMPL_EVP},
    [HASH_KECCAK256] = {"keccak256", NULL, 32, IMPL_KECCAK},
    [HASH_KECCAK384] = {"keccak384", NULL, 48, IMPL_KECCAK},
    [HASH_KECCAK512] = {"keccak512", NULL, 64, IMPL_KECCAK},
    [HASH_SHA224] = {"sha224", "SHA224", 28, IMPL_EVP},
    [HASH_SHA512_224] = {"sha512-224", "SHA512-224", 28, IMPL_EVP},
    [HASH_SHA512_256] = {"sha512-256", "SHA512-256", 32, IMPL_EVP},
    [HASH_SHA3_224] = {"sha3-224", "SHA3-224", 28, IMPL_EVP},
    [HASH_KECCAK224] = {"keccak224", NULL, 28, IMPL_KECCAK},
    [HASH_BLAKE2B256] = {"blake2b256", NULL, 32, IMPL_BLAKE2B},
    [HASH_BLAKE2B512] = {"blake2b512", "BLAKE2B-512", 64, IMPL_EVP},
    [HASH_BLAKE2S256] = {"blake2s256", "BLAKE2S-256", 32, IMPL_EVP},
};

/* EVP_MD objects fetched once per process (a fetch costs a locked lookup by name); freed at
 * exit, before OpenSSL's own cleanup (registered earlier, so it runs later). */
static _Atomic(EVP_MD *) md_cache[_HASH_ALG_MAX];
static atomic_flag md_atexit = ATOMIC_FLAG_INIT;

static void md_cache_free(void) {
  for (size_t i = 0; i < _HASH_ALG_MAX; i++)
    EVP_MD_free(atomic_exchange(&md_cache[i], NULL));
}

const EVP_MD *hash_alg_md(enum hash_alg alg) {
  if ((unsigned)alg >= _HASH_ALG_MAX || infos[alg].impl != IMPL_EVP)
    return NULL;
  EVP_MD *md = atomic_load_explicit(&md_cache[alg], memory_order_acquire);
  if (md)
    return md;
  md = EVP_MD_fetch(NULL, infos[alg].ossl_name, NULL);
  if (!md) {
    ERR_clear_error();
    return NULL;
  }
  EVP_MD *expected = NULL;
  if (!atomic_compare_exchange_strong(&md_cache[alg], &expected, md)) {
    EVP_MD_free(md); /* another thread was first */
    return expected;
  }
  if (!atomic_flag_test_and_set(&md_atexit))
    (void)atexit(md_cache_free);
  return md;
}

static const struct hash_info *info_get(enum hash_alg alg) {
  if ((unsigned)alg >= _HASH_ALG_MAX)
    return NULL;
  return &infos[alg];
}

int hash_alg_from_name(const char *name, enum hash_alg *ret) {
  if (!name || !ret)
    return -EINVAL;
  for (unsigned i = 0; i < _HASH_ALG_MAX; i++)
    if (strcasecmp(name, infos[i].name) == 0) {
      *ret = (enum hash_alg)i;
      return 0;
    }
  return -EINVAL;
}

const char *hash_alg_name(enum hash_alg alg) {
  const struct hash_info *i = info_get(alg);
  return i ? i->name : NULL;
}

size_t hash_alg_size(enum hash_alg alg) {
  const struct hash_info *i = info_get(alg);
  return i ? i->size : 0;
}

/* ---- BLAKE2b (RFC 7693), unkeyed, any output size 1..64 ---- */

struct blake2b_state {
  uint64_t h[8];
  uint64_t t[2]; /* bytes compressed so far */
  uint8_t block[128];
  size_t fill;
  size_t out_len;
};

static const uint64_t blake2b_iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t blake2b_sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t rotr64(uint64_t v, unsigned n) {
  return (v >> n) | (v << (64 - n));
}

static void blake2b_mix(uint64_t v[16], unsigned a, unsigned b, unsigned c, unsigned d, uint64_t x,
                        uint64_t y) {
  v[a] = v[a] + v[b] + x;
  v[d] = rotr64(v[d] ^ v[a], 32);
  v[c] = v[c] + v[d];
  v[b] = rotr64(v[b] ^ v[c], 24);
  v[a] = v[a] + v[b] + y;
  v[d] = rotr64(v[d] ^ v[a], 16);
  v[c] = v[c] + v[d];
  v[b] = rotr64(v[b] ^ v[c], 63);
}

static void blake2b_compress(struct blake2b_state *s, bool last) {
  uint64_t m[16], v[16];

  for (unsigned i = 0; i < 16; i++)
    m[i] = le64_read(s->block + 8 * i);
  for (unsigned i = 0; i < 8; i++) {
    v[i] = s->h[i];
    v[i + 8] = blake2b_iv[i];
  }
  v[12] ^= s->t[0];
  v[13] ^= s->t[1];
  if (last)
    v[14] = ~v[14];
  for (unsigned r = 0; r < 12; r++) {
    const uint8_t *sg = blake2b_sigma[r];
    blake2b_mix(v, 0, 4, 8, 12, m[sg[0]], m[sg[1]]);
    blake2b_mix(v, 1, 5, 9, 13, m[sg[2]], m[sg[3]]);
    blake2b_mix(v, 2, 6, 10, 14, m[sg[4]], m[sg[5]]);
    blake2b_mix(v, 3, 7, 11, 15, m[sg[6]], m[sg[7]]);
    blake2b_mix(v, 0, 5, 10, 15, m[sg[8]], m[sg[9]]);
    blake2b_mix(v, 1, 6, 11, 12, m[sg[10]], m[sg[11]]);
    blake2b_mix(v, 2, 7, 8, 13, m[sg[12]], m[sg[13]]);
    blake2b_mix(v, 3, 4, 9, 14, m[sg[14]], m[sg[15]]);
  }
  for (unsigned i = 0; i < 8; i++)
    s->h[i] ^= v[i] ^ v[i + 8];
  secure_wipe(m, sizeof(m));
  secure_wipe(v, sizeof(v));
}

static void blake2b_init(struct blake2b_state *s, size_t out_len) {
  memset(s, 0, sizeof(*s));
  memcpy(s->h, blake2b_iv, sizeof(s->h));
  /* parameter block: digest length, key length 0, fanout 1, depth 1 */
  s->h[0] ^= 0x01010000ULL ^ (uint64_t)out_len;
  s->out_len = out_len;
}

static void blake2b_add_count(struct blake2b_state *s, size_t n) {
  s->t[0] += n;
  if (s->t[0] < n)
    s->t[1]++;
}

static void blake2b_update(struct blake2b_state *s, const uint8_t *p, size_t len) {
  while (len > 0) {
    /* The last block is compressed only at final time, so flush a full block lazily. */
    if (s->fill == sizeof(s->block)) {
      blake2b_add_count(s, sizeof(s->block));
      blake2b_compress(s, false);
      s->fill = 0;
    }
    size_t n = MIN(len, sizeof(s->block) - s->fill);
    memcpy(s->block + s->fill, p, n);
    s->fill += n;
    p += n;
    len -= n;
  }
}

static void blake2b_final(struct blake2b_state *s, uint8_t *out) {
  blake2b_add_count(s, s->fill);
  memset(s->block + s->fill, 0, sizeof(s->block) - s->fill);
  blake2b_compress(s, true);
  for (size_t i = 0; i < s->out_len; i++)
    out[i] = (uint8_t)(s->h[i / 8] >> (8 * (i % 8)));
  secure_wipe(s, sizeof(*s));
}

/* ---- dispatch ---- */

struct hash_ctx {
  enum hash_alg alg;
  const struct hash_info *info;
  bool done;
  EVP_MD_CTX *md;
  struct keccak_ctx keccak;
  struct blake2b_state blake2b;
};

int hash_ctx_new(enum hash_alg alg, struct hash_ctx **ret) {
  const struct hash_info *info = info_get(alg);
  if (!info || !ret)
    return -EINVAL;

  struct hash_ctx *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  c->alg = alg;
  c->info = info;
  switch (info->impl) {
  case IMPL_EVP: {
    const EVP_MD *md = hash_alg_md(alg);
    c->md = EVP_MD_CTX_new();
    if (!md || !c->md || EVP_DigestInit_ex2(c->md, md, NULL) != 1) {
      ERR_clear_error();
      hash_ctx_free(c);
      return md ? -ENOMEM : -ENOTSUP;
    }
    break;
  }
  case IMPL_KECCAK:
    (void)keccak_init(&c->keccak, info->size);
    break;
  case IMPL_BLAKE2B:
    blake2b_init(&c->blake2b, info->size);
    break;
  }
  *ret = c;
  return 0;
}

int hash_ctx_update(struct hash_ctx *c, const void *data, size_t len) {
  if (!c || c->done || (!data && len))
    return -EINVAL;
  if (len == 0)
    return 0;
  switch (c->info->impl) {
  case IMPL_EVP:
    if (EVP_DigestUpdate(c->md, data, len) != 1) {
      ERR_clear_error();
      return -EIO;
    }
    break;
  case IMPL_KECCAK:
    keccak_update(&c->keccak, data, len);
    break;
  case IMPL_BLAKE2B:
    blake2b_update(&c->blake2b, data, len);
    break;
  }
  return 0;
}

int hash_ctx_final(struct hash_ctx *c, uint8_t *out) {
  if (!c || c->done || !out)
    return -EINVAL;
  c->done = true;
  switch (c->info->impl) {
  case IMPL_EVP: {
    unsigned n = 0;
    if (EVP_DigestFinal_ex(c->md, out, &n) != 1 || n != c->info->size) {
      ERR_clear_error();
      return -EIO;
    }
    break;
  }
  case IMPL_KECCAK:
    keccak_final(&c->keccak, out);
    break;
  case IMPL_BLAKE2B:
    blake2b_final(&c->blake2b, out);
    break;
  }
  return 0;
}

enum hash_alg hash_ctx_alg(const struct hash_ctx *c) {
  return c->alg;
}

void hash_ctx_free(struct hash_ctx *c) {
  if (!c)
    return;
  EVP_MD_CTX_free(c->md);
  secure_wipe(c, sizeof(*c));
  free(c);
}

int hash_buf(enum hash_alg alg, const void *data, size_t len, uint8_t *out) {
  const struct hash_info *info = info_get(alg);
  if (!info || !out || (!data && len))
    return -EINVAL;

  switch (info->impl) {
  case IMPL_KECCAK: {
    struct keccak_ctx k;
    (void)keccak_init(&k, info->size);
    keccak_update(&k, data, len);
    keccak_final(&k, out);
    return 0;
  }
  case IMPL_BLAKE2B: {
    struct blake2b_state b;
    blake2b_init(&b, info->size);
    blake2b_update(&b, data, len);
    blake2b_final(&b, out);
    return 0;
  }
  case IMPL_EVP:
    break;
  }

  const EVP_MD *md = hash_alg_md(alg);
  if (!md) {
    ERR_clear_error();
    return -ENOTSUP;
  }
  unsigned n = 0;
  if (EVP_Digest(data ? data : "", len, out, &n, md, NULL) != 1 || n != info->size) {
    ERR_clear_error();
    return -EIO;
  }
  return 0;
}

static void hash_or_abort(enum hash_alg alg, const void *data, size_t len, uint8_t *out) {
  if (hash_buf(alg, data, len, out) < 0)
    abort();
}

void sha256(const void *data, size_t len, uint8_t out[32]) {
  hash_or_abort(HASH_SHA256, data, len, out);
}
void sha384(const void *data, size_t len, uint8_t out[48]) {
  hash_or_abort(HASH_SHA384, data, len, out);
}
void sha512(const void *data, size_t len, uint8_t out[64]) {
  hash_or_abort(HASH_SHA512, data, len, out);
}

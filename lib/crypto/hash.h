/* Message digests: the SHA-2, SHA-3 and Keccak families plus BLAKE2, one-shot and streaming.
 * SHA-2/SHA-3/BLAKE2 come from OpenSSL; Keccak (original 0x01 padding) from crypto/keccak.c. */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

enum hash_alg {
  HASH_SHA256,
  HASH_SHA384,
  HASH_SHA512,
  HASH_SHA3_256,
  HASH_SHA3_384,
  HASH_SHA3_512,
  HASH_KECCAK256,
  HASH_KECCAK384,
  HASH_KECCAK512,
  HASH_SHA224,
  HASH_SHA512_224,
  HASH_SHA512_256,
  HASH_SHA3_224,
  HASH_KECCAK224,
  HASH_BLAKE2B256,
  HASH_BLAKE2B512,
  HASH_BLAKE2S256,
  _HASH_ALG_MAX,
};

/* Largest digest any algorithm here produces. */
#define HASH_MAX_SIZE 64

/* Names as iohash and the tappd API spell them: "sha256", "sha384", "sha512", "sha224",
 * "sha512-224", "sha512-256", "sha3-224".."sha3-512", "keccak224".."keccak512", "blake2b256",
 * "blake2b512", "blake2s256" (ASCII case-insensitive). -EINVAL for anything else. */
int hash_alg_from_name(const char *name, enum hash_alg *ret);
/* Canonical lowercase name, or NULL for an invalid value. */
const char *hash_alg_name(enum hash_alg alg);
/* Digest size in bytes, 0 for an invalid value. */
size_t hash_alg_size(enum hash_alg alg);

/* The OpenSSL digest of an OpenSSL-backed algorithm, fetched once per process and kept (do not
 * free it); NULL for Keccak / BLAKE2b-256 or when OpenSSL lacks it. */
const EVP_MD *hash_alg_md(enum hash_alg alg);

/* One-shot digest into out (hash_alg_size(alg) bytes). */
int hash_buf(enum hash_alg alg, const void *data, size_t len, uint8_t *out);

struct hash_ctx;
int hash_ctx_new(enum hash_alg alg, struct hash_ctx **ret);
int hash_ctx_update(struct hash_ctx *c, const void *data, size_t len);
/* Writes hash_alg_size() bytes; the context is finished afterwards (further use: -EINVAL). */
int hash_ctx_final(struct hash_ctx *c, uint8_t *out);
enum hash_alg hash_ctx_alg(const struct hash_ctx *c);
void hash_ctx_free(struct hash_ctx *c);
static inline void hash_ctx_freep(struct hash_ctx **c) {
  hash_ctx_free(*c);
}

/* Infallible shortcuts (abort() only if OpenSSL itself is broken). */
void sha256(const void *data, size_t len, uint8_t out[32]);
void sha384(const void *data, size_t len, uint8_t out[48]);
void sha512(const void *data, size_t len, uint8_t out[64]);

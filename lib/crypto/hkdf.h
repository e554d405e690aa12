/* HKDF-SHA256 (RFC 5869) and the upstream ra-tls key derivations built on it. */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Generic HKDF-SHA256 extract+expand. salt/info may be NULL when their length is 0.
 * out_len must be 1..255*32 (-EINVAL otherwise). */
int hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);

/* HKDF-SHA256 with salt = ASCII "RATLS" and info = concatenation of ctx[0..n_ctx) (upstream
 * ra-tls kdf.rs derive_key). ctx may be NULL when n_ctx is 0. Total info capped at 64 KiB
 * (-ENOBUFS). */
int kdf_derive_key(const uint8_t *ikm, size_t ikm_len, const struct slice *ctx, size_t n_ctx,
                   uint8_t *out, size_t out_len);

/* kdf_derive_key(ikm, ctx, 32) used directly as a P-256 private scalar (upstream
 * derive_p256_key_pair / derive_ecdsa_key_pair): -EINVAL when it is 0 or >= n, no retry.
 * ikm is normally the 32-byte scalar of the parent P-256 key (key_ec_private_scalar). */
int kdf_derive_p256_key(const uint8_t *ikm, size_t ikm_len, const struct slice *ctx, size_t n_ctx,
                        EVP_PKEY **ret);

/* SHA-256 of the PKCS#8 DER (key_to_pkcs8_der layout) of kdf_derive_p256_key(ikm, ctx)
 * (upstream derive_dh_secret: disk key, env X25519 secret). */
int kdf_derive_dh_secret(const uint8_t *ikm, size_t ikm_len, const struct slice *ctx, size_t n_ctx,
                         uint8_t ret[32]);

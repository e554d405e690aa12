/* Asymmetric keys as OpenSSL EVP_PKEY: P-256, secp256k1, Ed25519, X25519. Construction from raw
 * secrets, raw public/private export, PKCS#8 / SPKI encodings, ECDSA-SHA256 with raw (r||s) and
 * DER signatures, and secp256k1 recoverable signatures (libsecp256k1).
 *
 * Errors: -EINVAL bad argument or wrong key type, -EBADMSG malformed encoding or signature that
 * does not verify, -ENOBUFS input over the cap, -ENOMEM, -EIO unexpected OpenSSL failure. */
#pragma once

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "crypto/ossl.h"

/* Largest PEM/DER key input accepted. */
#define KEY_INPUT_MAX ((size_t)64 * 1024)

enum key_type {
  KEY_TYPE_UNKNOWN,
  KEY_TYPE_P256,
  KEY_TYPE_SECP256K1,
  KEY_TYPE_ED25519,
  KEY_TYPE_X25519,
};

enum key_type key_get_type(EVP_PKEY *k);
/* true when k holds a private part. */
bool key_has_private(EVP_PKEY *k);
/* 0 when both hold the same public key, -EBADMSG when they differ, -EINVAL on NULL. */
int key_public_equal(EVP_PKEY *a, EVP_PKEY *b);

/* --- construction --- */
int key_p256_generate(EVP_PKEY **ret);
/* Big-endian scalar; -EINVAL if 0 or >= n. */
int key_p256_from_scalar(const uint8_t scalar[32], EVP_PKEY **ret);
/* Public-only P-256 key from X||Y (how Intel quotes carry keys); -EBADMSG if not on the curve. */
int key_p256_from_public_raw(const uint8_t xy[64], EVP_PKEY **ret);
/* Public-only key of the given EC type (P256 or SECP256K1) from SEC1 bytes: 65 uncompressed
 * (04||X||Y) or 33 compressed (02/03||X). */
int key_ec_from_public_sec1(enum key_type type, const uint8_t *pub, size_t len, EVP_PKEY **ret);
/* secp256k1 secret scalar (big-endian); -EINVAL if 0 or >= n. */
int key_secp256k1_from_secret(const uint8_t s[32], EVP_PKEY **ret);
int key_secp256k1_generate(EVP_PKEY **ret);
int key_ed25519_from_secret(const uint8_t s[32], EVP_PKEY **ret);
int key_ed25519_from_public(const uint8_t pub[32], EVP_PKEY **ret);
int key_x25519_from_secret(const uint8_t s[32], EVP_PKEY **ret);
int key_x25519_from_public(const uint8_t pub[32], EVP_PKEY **ret);
int key_x25519_generate(EVP_PKEY **ret);

/* --- raw export --- */
/* EC keys (P-256, secp256k1): 04||X||Y. */
int key_ec_public_point(EVP_PKEY *k, uint8_t ret[65]);
/* EC keys: 02/03||X. */
int key_ec_public_compressed(EVP_PKEY *k, uint8_t ret[33]);
/* EC keys: big-endian private scalar, left-padded to 32 bytes. Wipe it after use. */
int key_ec_private_scalar(EVP_PKEY *k, uint8_t ret[32]);
/* Ed25519/X25519: the 32-byte public key. */
int key_raw_public(EVP_PKEY *k, uint8_t ret[32]);
/* Ed25519/X25519: the 32-byte secret. Wipe it after use. */
int key_raw_private(EVP_PKEY *k, uint8_t ret[32]);

/* --- encodings --- */
/* PKCS#8 PrivateKeyInfo DER, appended to out (use a secret buffer). For P-256 the layout is
 * fixed to the 138-byte form ring/rcgen and RustCrypto emit (see keys.c). */
int key_to_pkcs8_der(EVP_PKEY *k, struct buf *out);
/* "-----BEGIN PRIVATE KEY-----" PEM of the above, with '\n' line ends, appended to out. */
int key_to_pkcs8_pem(EVP_PKEY *k, struct buf *out);
/* SubjectPublicKeyInfo DER, appended to out. */
int key_to_spki_der(EVP_PKEY *k, struct buf *out);
/* "-----BEGIN PUBLIC KEY-----" PEM, appended to out. */
int key_to_spki_pem(EVP_PKEY *k, struct buf *out);
/* A private key from PKCS#8 PEM ("PRIVATE KEY"), SEC1 PEM ("EC PRIVATE KEY") or PKCS#8 DER.
 * Inputs over KEY_INPUT_MAX: -ENOBUFS; unparsable or trailing garbage: -EBADMSG. */
int key_from_pem_or_der(const void *data, size_t len, EVP_PKEY **ret);
/* A public key from SPKI DER or "PUBLIC KEY" PEM. */
int key_public_from_pem_or_der(const void *data, size_t len, EVP_PKEY **ret);

/* --- ECDSA with SHA-256 (P-256 and secp256k1) --- */
int key_ecdsa_sign_raw(EVP_PKEY *k, const void *msg, size_t len, uint8_t ret_sig[64]);
/* 0 when valid, -EBADMSG when not. */
int key_ecdsa_verify_raw(EVP_PKEY *pub, const void *msg, size_t len, const uint8_t sig[64]);
/* P-256 public key given as X||Y (64 bytes). */
int key_ecdsa_verify_raw_pub(const uint8_t pub_xy[64], const void *msg, size_t len,
                             const uint8_t sig[64]);
/* DER ECDSA-Sig-Value, appended to out. */
int key_ecdsa_sign_der(EVP_PKEY *k, const void *msg, size_t len, struct buf *out);
int key_ecdsa_verify_der(EVP_PKEY *pub, const void *msg, size_t len, const uint8_t *sig,
                         size_t sig_len);
/* Conversions between r||s (32+32, big-endian) and DER. */
int key_ecdsa_sig_raw_to_der(const uint8_t sig[64], struct buf *out);
int key_ecdsa_sig_der_to_raw(const uint8_t *der, size_t len, uint8_t ret[64]);

/* --- Ed25519 / X25519 --- */
int key_ed25519_sign(EVP_PKEY *k, const void *msg, size_t len, uint8_t ret_sig[64]);
int key_ed25519_verify(EVP_PKEY *pub, const void *msg, size_t len, const uint8_t sig[64]);
/* Raw X25519 shared secret; -EBADMSG for an all-zero result (small-order peer point). */
int key_x25519_derive(EVP_PKEY *priv, const uint8_t peer_pub[32], uint8_t ret_secret[32]);

/* --- secp256k1 through libsecp256k1 --- */
/* Compressed (33) public key of a secret; -EINVAL if the secret is invalid. */
int key_secp256k1_public_from_secret(const uint8_t secret[32], uint8_t ret_pub33[33]);
/* Recoverable ECDSA over a 32-byte prehash: r||s||v with low s and v = recovery id (0..3, not
 * +27), as k256's sign_prehash_recoverable produces. Deterministic (RFC 6979). */
int key_secp256k1_sign_recoverable(const uint8_t secret[32], const uint8_t hash[32],
                                   uint8_t ret_sig65[65]);
/* Recovers the compressed public key from r||s||v (v = 0..3, or 27..30 accepted);
 * -EBADMSG when no key recovers. */
int key_secp256k1_recover(const uint8_t hash[32], const uint8_t sig65[65], uint8_t ret_pub33[33]);
/* Plain ECDSA over a 32-byte prehash, r||s with low s. */
int key_secp256k1_sign_prehash(const uint8_t secret[32], const uint8_t hash[32],
                               uint8_t ret_sig64[64]);
/* Verifies r||s (high s is rejected, as libsecp256k1 does) against a 33- or 65-byte SEC1 key. */
int key_secp256k1_verify_prehash(const uint8_t *pub, size_t pub_len, const uint8_t hash[32],
                                 const uint8_t sig64[64]);

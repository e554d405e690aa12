/* Encrypted app environment variables, in the format the dstack SDKs' encryptEnvVars() emit:
 *
 *   blob = X25519 ephemeral public key (32) || AES-256-GCM IV (12) || ciphertext || tag (16)
 *
 * The AES key is the raw X25519 shared secret between the ephemeral key and the app's env key
 * (no KDF); the plaintext is the JSON text {"env":[{"key":"NAME","value":"..."},...]}. The blob
 * travels hex-encoded (SDK output, VM creation requests) or raw (file in the guest's shared dir).
 *
 * Also the message the KMS signs when it publishes an app's env public key
 * (KMS.GetAppEnvEncryptPubKey): Keccak-256 of "dstack-env-encrypt-pubkey" ":" app_id
 * [be64(timestamp)] public_key, signed with a recoverable secp256k1 signature (r||s||v).
 *
 * Errors: -EBADMSG malformed input or authentication failure (the two are not told apart),
 * -ENOBUFS input or output over its cap, -EINVAL bad argument or env variable name,
 * -ENOMEM, -EIO unexpected OpenSSL failure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define ENVCRYPT_PUBKEY_LEN 32
#define ENVCRYPT_IV_LEN 12
#define ENVCRYPT_TAG_LEN 16
#define ENVCRYPT_OVERHEAD (ENVCRYPT_PUBKEY_LEN + ENVCRYPT_IV_LEN + ENVCRYPT_TAG_LEN)
/* Largest plaintext JSON accepted or produced. */
#define ENVCRYPT_MAX_JSON ((size_t)1024 * 1024)
/* Largest raw blob, and its hex form (an optional "0x" prefix is allowed on top). */
#define ENVCRYPT_MAX_BLOB (ENVCRYPT_MAX_JSON + ENVCRYPT_OVERHEAD)
#define ENVCRYPT_MAX_HEX (2 * ENVCRYPT_MAX_BLOB)
/* Limits of a parsed environment. */
#define ENVCRYPT_MAX_VARS 1024
#define ENVCRYPT_MAX_KEY_LEN 256

/* The X25519 public key of an env secret (what KMS.GetAppEnvEncryptPubKey publishes). */
int envcrypt_public_key(const uint8_t env_key_secret[32], uint8_t ret_pub[32]);

/* Decrypts a hex blob (either case, optional 0x prefix, no whitespace) and appends the plaintext
 * JSON to ret_json, which is marked secret (wiped on free). The plaintext is not validated: use
 * envcrypt_parse_env(). -EBADMSG for bad hex, a short blob or a failed authentication; -ENOBUFS
 * when the blob is over ENVCRYPT_MAX_HEX or the plaintext does not fit ret_json's cap. */
int envcrypt_decrypt(const uint8_t env_key_secret[32], const char *hex, size_t len,
                     struct buf *ret_json);
/* Same for the raw blob. */
int envcrypt_decrypt_raw(const uint8_t env_key_secret[32], const uint8_t *blob, size_t len,
                         struct buf *ret_json);

/* Encrypts json (any bytes up to ENVCRYPT_MAX_JSON) to recipient_pub with a fresh ephemeral
 * key and IV; appends the lowercase hex blob (no prefix) to ret_hex. For tests and tools. */
int envcrypt_encrypt(const uint8_t recipient_pub[32], const void *json, size_t len,
                     struct buf *ret_hex);
/* Same, appending the raw blob. */
int envcrypt_encrypt_raw(const uint8_t recipient_pub[32], const void *json, size_t len,
                         struct buf *ret_blob);

/* --- the plaintext --- */
struct envcrypt_var {
  char *key;
  char *value;
  size_t value_len;
};

struct envcrypt_env {
  struct envcrypt_var *vars;
  size_t n;
};

/* Wipes the values and frees everything; the env becomes empty. NULL is fine. */
void envcrypt_env_free(struct envcrypt_env *e);
static inline void envcrypt_env_freep(struct envcrypt_env *e) {
  envcrypt_env_free(e);
}
#define _cleanup_envcrypt_env_ _cleanup_(envcrypt_env_freep)

/* true for [A-Za-z_][A-Za-z0-9_]* of at most ENVCRYPT_MAX_KEY_LEN characters. */
bool envcrypt_key_valid(const char *key, size_t len);
/* Appends one variable (copies key and value). -EINVAL for a bad name or a value holding a NUL,
 * -EEXIST when the name is already present, -ENOBUFS past ENVCRYPT_MAX_VARS. */
int envcrypt_env_add(struct envcrypt_env *e, const char *key, size_t key_len, const char *value,
                     size_t value_len);
/* Parses {"env":[{"key":..,"value":..},...]} (other members are ignored) into ret (which must be
 * empty). -EBADMSG for malformed JSON or a wrong shape, -EINVAL for a bad or duplicated name,
 * -ENOBUFS over ENVCRYPT_MAX_JSON or ENVCRYPT_MAX_VARS. ret is left empty on failure. */
int envcrypt_parse_env(const char *json, size_t len, struct envcrypt_env *ret);
/* Appends the canonical JSON {"env":[{"key":..,"value":..},...]} (compact, in order) to out. */
int envcrypt_env_to_json(const struct envcrypt_env *e, struct buf *out);

/* Decrypt + parse in one step (what a guest does with its env key). */
int envcrypt_decrypt_env(const uint8_t env_key_secret[32], const uint8_t *blob, size_t len,
                         bool is_hex, struct envcrypt_env *ret);

/* --- the KMS signature over a published env public key --- */
#define ENVCRYPT_PUBKEY_SIG_PREFIX "dstack-env-encrypt-pubkey"
/* Keccak-256 of prefix ":" app_id [be64(*timestamp)] pub. timestamp NULL gives the legacy
 * message (PublicKeyResponse.signature); non-NULL the v1 one (signature_v1). */
int envcrypt_pubkey_sig_digest(const uint8_t *app_id, size_t app_id_len,
                               const uint64_t *timestamp, const uint8_t pub[32],
                               uint8_t ret_hash[32]);
/* Recovers the compressed secp256k1 public key (33 bytes) of the signer of such a message from
 * a 65-byte r||s||v signature (v = 0..3 or 27..30). -EBADMSG when nothing recovers. The caller
 * compares the result with the KMS key it trusts (GetMeta k256_pubkey). */
int envcrypt_pubkey_sig_recover(const uint8_t *app_id, size_t app_id_len,
                                const uint64_t *timestamp, const uint8_t pub[32],
                                const uint8_t sig65[65], uint8_t ret_signer[33]);

/* The app's encrypted environment (`.encrypted-env` on the config disk): decrypted with the
 * app's env key from the KMS and cut down to the names app-compose.json allows, so neither the
 * host nor whoever encrypted the blob can set variables the app's owner did not name.
 *
 * Errors: -EBADMSG (why says what) for a malformed blob, plaintext or variable, or one over the
 * caps; -EKEYREJECTED when a well-formed blob does not authenticate under env_key (the wrong
 * key, or bytes changed in transit); -EINVAL bad arguments; -ENOMEM. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define APPENV_MAX_VARS 512
#define APPENV_MAX_BYTES ((size_t)64 * 1024) /* all "KEY=VALUE" strings together */

struct appenv {
  char **envp; /* "KEY=VALUE", NULL-terminated too; values are secrets: wiped on free */
  size_t n;
  char **dropped; /* names not in allowed (names only), NULL-terminated too */
  size_t n_dropped;
};

/* blob: .encrypted-env as teepod writes it (raw bytes: X25519 pub(32) || IV(12) || AES-256-GCM
 * ciphertext+tag), or the same as hex text (optional 0x, trailing whitespace allowed). Keeps
 * only names in allowed (n_allowed == 0: keeps none), in the blob's order; refuses invalid names
 * ([A-Za-z_][A-Za-z0-9_]*), duplicated names, values with NUL, more than APPENV_MAX_VARS
 * variables or APPENV_MAX_BYTES in all. ret is zeroed first and left empty on failure. */
int appenv_decrypt(const uint8_t env_key[32], const uint8_t *blob, size_t len,
                   const char *const *allowed, size_t n_allowed, struct appenv *ret, char *why,
                   size_t whylen);
void appenv_free(struct appenv *e);

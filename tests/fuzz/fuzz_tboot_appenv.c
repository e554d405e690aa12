/* The app's encrypted environment (appenv_decrypt): the input once as the blob itself (raw or
 * hex: what the host could put on the config disk) and once as the plaintext sealed to the env
 * key (what a careless or hostile encrypter could send). No crash, and what is kept obeys the
 * caps, the allowed names and the KEY=VALUE form. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tboot_appenv.h"
#include "base/buf.h"
#include "crypto/envcrypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[32] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01};
static const char *const allowed[] = {"A", "DB_PASS", "PATH"};

static void check(const uint8_t *blob, size_t len) {
  struct appenv e;
  char why[128];
  int r = appenv_decrypt(key, blob, len, allowed, 3, &e, why, sizeof(why));
  if (r < 0) {
    if (e.envp || e.dropped || (r != -EBADMSG && r != -EKEYREJECTED && r != -ENOMEM))
      abort();
    return;
  }
  size_t total = 0;
  if (e.n + e.n_dropped > APPENV_MAX_VARS)
    abort();
  for (size_t i = 0; i < e.n; i++) {
    const char *eq = strchr(e.envp[i], '=');
    if (!eq)
      abort();
    size_t kl = (size_t)(eq - e.envp[i]);
    bool ok = false;
    for (size_t k = 0; k < 3; k++)
      ok |= strlen(allowed[k]) == kl && memcmp(allowed[k], e.envp[i], kl) == 0;
    if (!ok)
      abort();
    total += strlen(e.envp[i]);
  }
  if (total > APPENV_MAX_BYTES || e.envp[e.n])
    abort();
  appenv_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 256 * 1024)
    return 0;
  check(data, size);
  static uint8_t pub[32];
  static bool have_pub;
  if (!have_pub) {
    if (envcrypt_public_key(key, pub) < 0)
      abort();
    have_pub = true;
  }
  struct buf b = BUF_INIT(ENVCRYPT_MAX_BLOB);
  if (envcrypt_encrypt_raw(pub, data, size, &b) < 0)
    abort();
  check(b.data, b.len);
  buf_free(&b);
  return 0;
}

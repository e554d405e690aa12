/* The app's encrypted environment: decryption and parsing come from crypto/envcrypt (the
 * format the SDKs emit); this adds the guest's policy: the caps and the allowed names. */
#include "tboot_appenv.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "base/buf.h"
#include "base/hex.h"
#include "base/macro.h"
#include "base/str.h"
#include "crypto/envcrypt.h"

/* Hex text: an optional 0x, hex digits, then only whitespace. A raw blob starts with an X25519
 * public key, whose 32 bytes are all hex digits with a chance of about 1e-34. */
static bool blob_is_hex(const uint8_t *p, size_t len, size_t *ret_len, size_t *ret_digits) {
  size_t i = 0;
  if (len >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
    i = 2;
  size_t start = i;
  while (i < len && hex_digit_value((char)p[i]) >= 0)
    i++;
  size_t end = i;
  while (i < len && char_is_space((char)p[i]))
    i++;
  if (i != len || end == start)
    return false;
  *ret_len = end;
  *ret_digits = end - start;
  return true;
}

static void strv_wipe_free(char **l) {
  if (!l)
    return;
  for (char **p = l; *p; p++) {
    secure_wipe(*p, strlen(*p));
    free(*p);
  }
  free(l);
}

void appenv_free(struct appenv *e) {
  if (!e)
    return;
  strv_wipe_free(e->envp);
  strv_free(e->dropped);
  memset(e, 0, sizeof(*e));
}

static bool allowed_has(const char *const *allowed, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (allowed[i] && str_eq(allowed[i], name))
      return true;
  return false;
}

int appenv_decrypt(const uint8_t env_key[32], const uint8_t *blob, size_t len,
                   const char *const *allowed, size_t n_allowed, struct appenv *ret, char *why,
                   size_t whylen) {
  if (!env_key || (!blob && len) || (!allowed && n_allowed) || !ret)
    return str_err(why, whylen, -EINVAL, "invalid arguments");
  memset(ret, 0, sizeof(*ret));

  _cleanup_buf_ struct buf text = BUF_INIT_SECRET(ENVCRYPT_MAX_JSON);
  size_t hexlen = 0, digits = 0;
  bool hex = blob_is_hex(blob, len, &hexlen, &digits);
  if (hex && digits % 2)
    return str_err(why, whylen, -EBADMSG, "the encrypted env is hex of an odd length");
  size_t raw_len = hex ? digits / 2 : len;
  if (raw_len < ENVCRYPT_OVERHEAD)
    return str_err(why, whylen, -EBADMSG, "the encrypted env is too short (%zu bytes)", raw_len);
  if (raw_len > ENVCRYPT_MAX_BLOB)
    return str_err(why, whylen, -EBADMSG, "the encrypted env is larger than %zu bytes",
                   ENVCRYPT_MAX_BLOB);
  int r = hex ? envcrypt_decrypt(env_key, (const char *)blob, hexlen, &text)
              : envcrypt_decrypt_raw(env_key, blob, len, &text);
  if (r == -ENOMEM)
    return str_err(why, whylen, r, "out of memory");
  if (r < 0)
    return str_err(why, whylen, -EKEYREJECTED,
                   "the encrypted env does not decrypt with the app's env key");

  _cleanup_envcrypt_env_ struct envcrypt_env env = {0};
  r = envcrypt_parse_env((const char *)text.data, text.len, &env);
  if (r == -ENOMEM)
    return str_err(why, whylen, r, "out of memory");
  if (r == -EINVAL)
    return str_err(why, whylen, -EBADMSG,
                   "the decrypted env names a variable twice or with an invalid name");
  if (r < 0)
    return str_err(why, whylen, -EBADMSG, "the decrypted env is not {\"env\":[{key,value}...]}");
  if (env.n > APPENV_MAX_VARS)
    return str_err(why, whylen, -EBADMSG, "the decrypted env holds more than %d variables",
                   APPENV_MAX_VARS);

  size_t total = 0;
  for (size_t i = 0; i < env.n; i++) {
    const struct envcrypt_var *v = &env.vars[i];
    if (!envcrypt_key_valid(v->key, strlen(v->key)))
      return str_err(why, whylen, -EBADMSG, "the decrypted env has an invalid variable name");
    if (memchr(v->value, 0, v->value_len))
      return str_err(why, whylen, -EBADMSG, "the value of %.64s holds a NUL byte", v->key);
    size_t one = strlen(v->key) + 1 + v->value_len;
    if (!size_add(total, one, &total) || total > APPENV_MAX_BYTES)
      return str_err(why, whylen, -EBADMSG, "the decrypted env is larger than %zu bytes",
                     APPENV_MAX_BYTES);
  }

  struct appenv e = {0};
  e.envp = calloc(env.n + 1, sizeof(char *));
  if (!e.envp)
    goto nomem;
  for (size_t i = 0; i < env.n; i++) {
    const struct envcrypt_var *v = &env.vars[i];
    if (!allowed_has(allowed, n_allowed, v->key)) {
      if (strv_push_dup(&e.dropped, v->key) < 0)
        goto nomem;
      e.n_dropped++;
      continue;
    }
    size_t klen = strlen(v->key), n = klen + 1 + v->value_len + 1;
    char *s = malloc(n);
    if (!s)
      goto nomem;
    memcpy(s, v->key, klen);
    s[klen] = '=';
    memcpy(s + klen + 1, v->value, v->value_len);
    s[n - 1] = 0;
    e.envp[e.n++] = s;
  }
  *ret = e;
  return 0;
nomem:
  appenv_free(&e);
  return str_err(why, whylen, -ENOMEM, "out of memory");
}

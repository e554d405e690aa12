/* Encrypted app environment: X25519 + AES-256-GCM blobs, their JSON plaintext, and the KMS
 * signature over a published env public key. See envcrypt.h for the format. */
#include "crypto/envcrypt.h"

#include <errno.h>
#include <openssl/rand.h>
#include <string.h>

#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"

int envcrypt_public_key(const uint8_t env_key_secret[32], uint8_t ret_pub[32]) {
  if (!env_key_secret || !ret_pub)
    return -EINVAL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
  int r = key_x25519_from_secret(env_key_secret, &k);
  if (r < 0)
    return r;
  return key_raw_public(k, ret_pub);
}

/* AES-256-GCM with a 12-byte IV and the 16-byte tag after the ciphertext. Decryption writes
 * the plaintext to out (len - 16 bytes) and wipes it again when the tag does not match. */
static int gcm_crypt(bool enc, const uint8_t key[32], const uint8_t iv[ENVCRYPT_IV_LEN],
                     const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[ENVCRYPT_TAG_LEN]) {
  if (len > (size_t)INT32_MAX)
    return -ENOBUFS;
  _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx)
    return -ENOMEM;
  int n = 0, fin = 0;
  if (EVP_CipherInit_ex2(ctx, EVP_aes_256_gcm(), key, iv, enc ? 1 : 0, NULL) != 1)
    goto fail;
  if (len > 0 && (EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1 || (size_t)n != len))
    goto fail;
  if (enc) {
    if (EVP_CipherFinal_ex(ctx, out + n, &fin) != 1 || fin != 0 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ENVCRYPT_TAG_LEN, tag) != 1)
      goto fail;
    return 0;
  }
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ENVCRYPT_TAG_LEN, tag) != 1)
    goto fail;
  if (EVP_CipherFinal_ex(ctx, out + n, &fin) != 1 || fin != 0) {
    ERR_clear_error();
    secure_wipe(out, len);
    return -EBADMSG;
  }
  return 0;
fail:
  ERR_clear_error();
  if (!enc)
    secure_wipe(out, len);
  return -EIO;
}

/* X25519 ignores bit 255 of a public key and reduces values >= p = 2^255 - 19, so several
 * encodings give one shared secret. Only the canonical one (what every X25519 implementation
 * emits) is accepted, so that no bit of a blob can change without the decryption failing. */
static bool x25519_pub_canonical(const uint8_t u[32]) {
  if (u[31] & 0x80)
    return false;
  if (u[31] != 0x7f || u[0] < 0xed)
    return true;
  for (int i = 1; i < 31; i++)
    if (u[i] != 0xff)
      return true;
  return false;
}

int envcrypt_decrypt_raw(const uint8_t env_key_secret[32], const uint8_t *blob, size_t len,
                         struct buf *ret_json) {
  if (!env_key_secret || (!blob && len) || !ret_json)
    return -EINVAL;
  if (len > ENVCRYPT_MAX_BLOB)
    return -ENOBUFS;
  if (len < ENVCRYPT_OVERHEAD || !x25519_pub_canonical(blob))
    return -EBADMSG;
  size_t ct_len = len - ENVCRYPT_OVERHEAD;
  const uint8_t *peer = blob, *iv = blob + ENVCRYPT_PUBKEY_LEN,
                *ct = blob + ENVCRYPT_PUBKEY_LEN + ENVCRYPT_IV_LEN;
  uint8_t tag[ENVCRYPT_TAG_LEN];
  memcpy(tag, ct + ct_len, sizeof(tag));

  ret_json->secret = true;
  int r = buf_reserve(ret_json, ct_len);
  if (r < 0)
    return r;

  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
  r = key_x25519_from_secret(env_key_secret, &k);
  if (r < 0)
    return r;
  uint8_t shared[32];
  r = key_x25519_derive(k, peer, shared);
  if (r < 0) {
    secure_wipe(shared, sizeof(shared));
    /* a small-order or otherwise unusable ephemeral key is malformed input */
    return r == -EINVAL || r == -EBADMSG ? -EBADMSG : r;
  }
  r = gcm_crypt(false, shared, iv, ct, ct_len, ret_json->data + ret_json->len, tag);
  secure_wipe(shared, sizeof(shared));
  if (r < 0) {
    log_debug("envcrypt: decryption failed (%d)", r);
    return r;
  }
  ret_json->len += ct_len;
  return 0;
}

int envcrypt_decrypt(const uint8_t env_key_secret[32], const char *hex, size_t len,
                     struct buf *ret_json) {
  if (!hex && len)
    return -EINVAL;
  if (len >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) {
    hex += 2;
    len -= 2;
  }
  if (len > ENVCRYPT_MAX_HEX)
    return -ENOBUFS;
  if (len % 2)
    return -EBADMSG;
  _cleanup_buf_ struct buf blob = BUF_INIT(ENVCRYPT_MAX_BLOB);
  int r = hex_decode_buf(hex, len, false, &blob);
  if (r < 0)
    return r == -EINVAL ? -EBADMSG : r;
  return envcrypt_decrypt_raw(env_key_secret, blob.data, blob.len, ret_json);
}

int envcrypt_encrypt_raw(const uint8_t recipient_pub[32], const void *json, size_t len,
                         struct buf *ret_blob) {
  if (!recipient_pub || (!json && len) || !ret_blob)
    return -EINVAL;
  if (len > ENVCRYPT_MAX_JSON)
    return -ENOBUFS;
  size_t start = ret_blob->len;
  int r = buf_reserve(ret_blob, len + ENVCRYPT_OVERHEAD);
  if (r < 0)
    return r;

  _cleanup_(EVP_PKEY_freep) EVP_PKEY *eph = NULL;
  if ((r = key_x25519_generate(&eph)) < 0)
    return r;
  uint8_t *p = ret_blob->data + start;
  if ((r = key_raw_public(eph, p)) < 0)
    return r;
  uint8_t *iv = p + ENVCRYPT_PUBKEY_LEN;
  if (RAND_bytes(iv, ENVCRYPT_IV_LEN) != 1) {
    ERR_clear_error();
    return -EIO;
  }
  uint8_t shared[32];
  r = key_x25519_derive(eph, recipient_pub, shared);
  if (r < 0) {
    secure_wipe(shared, sizeof(shared));
    return r == -EBADMSG ? -EINVAL : r; /* an unusable recipient key is a bad argument */
  }
  uint8_t *ct = iv + ENVCRYPT_IV_LEN;
  r = gcm_crypt(true, shared, iv, json, len, ct, ct + len);
  secure_wipe(shared, sizeof(shared));
  if (r < 0)
    return r;
  ret_blob->len = start + len + ENVCRYPT_OVERHEAD;
  return 0;
}

int envcrypt_encrypt(const uint8_t recipient_pub[32], const void *json, size_t len,
                     struct buf *ret_hex) {
  if (!ret_hex)
    return -EINVAL;
  _cleanup_buf_ struct buf blob = BUF_INIT(ENVCRYPT_MAX_BLOB);
  int r = envcrypt_encrypt_raw(recipient_pub, json, len, &blob);
  if (r < 0)
    return r;
  size_t start = ret_hex->len;
  r = hex_append(ret_hex, blob.data, blob.len);
  if (r < 0)
    ret_hex->len = start;
  return r;
}

/* --- the plaintext --- */

void envcrypt_env_free(struct envcrypt_env *e) {
  if (!e)
    return;
  for (size_t i = 0; i < e->n; i++) {
    struct envcrypt_var *v = &e->vars[i];
    if (v->value)
      secure_wipe(v->value, v->value_len);
    free(v->key);
    free(v->value);
  }
  free(e->vars);
  e->vars = NULL;
  e->n = 0;
}

bool envcrypt_key_valid(const char *key, size_t len) {
  if (!key || len == 0 || len > ENVCRYPT_MAX_KEY_LEN)
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = key[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

int envcrypt_env_add(struct envcrypt_env *e, const char *key, size_t key_len, const char *value,
                     size_t value_len) {
  if (!e || (!value && value_len))
    return -EINVAL;
  if (!envcrypt_key_valid(key, key_len))
    return -EINVAL;
  if (value_len && memchr(value, 0, value_len))
    return -EINVAL;
  if (value_len > ENVCRYPT_MAX_JSON)
    return -ENOBUFS;
  for (size_t i = 0; i < e->n; i++)
    if (strlen(e->vars[i].key) == key_len && memcmp(e->vars[i].key, key, key_len) == 0)
      return -EEXIST;
  if (e->n >= ENVCRYPT_MAX_VARS)
    return -ENOBUFS;
  struct envcrypt_var *vars = realloc(e->vars, (e->n + 1) * sizeof(*vars));
  if (!vars)
    return -ENOMEM;
  e->vars = vars;
  char *k = strndup(key, key_len);
  char *v = malloc(value_len + 1);
  if (!k || !v) {
    free(k);
    free(v);
    return -ENOMEM;
  }
  if (value_len)
    memcpy(v, value, value_len);
  v[value_len] = '\0';
  e->vars[e->n++] = (struct envcrypt_var){.key = k, .value = v, .value_len = value_len};
  return 0;
}

/* jansson keeps its own copies of the values; overwrite them before the tree is released. */
static void json_wipe_strings(json_t *j) {
  if (json_is_string(j)) {
    secure_wipe((char *)json_string_value(j), json_string_length(j));
  } else if (json_is_array(j)) {
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) json_wipe_strings(v);
  } else if (json_is_object(j)) {
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) json_wipe_strings(v);
  }
}

static void json_wipe_decref(json_t **j) {
  if (*j) {
    json_wipe_strings(*j);
    json_decref(*j);
  }
}

int envcrypt_parse_env(const char *json, size_t len, struct envcrypt_env *ret) {
  if (!ret || ret->n || (!json && len))
    return -EINVAL;
  _cleanup_(json_wipe_decref) json_t *root = NULL;
  int r = json_parse_buf(json, len, ENVCRYPT_MAX_JSON, &root);
  if (r < 0)
    return r;
  json_t *arr = NULL;
  if (!json_is_object(root) || json_get_array(root, "env", &arr) < 0)
    return -EBADMSG;
  if (json_array_size(arr) > ENVCRYPT_MAX_VARS)
    return -ENOBUFS;
  struct envcrypt_env e = {};
  size_t i;
  json_t *item;
  json_array_foreach(arr, i, item) {
    json_t *k = json_is_object(item) ? json_object_get(item, "key") : NULL;
    json_t *v = json_is_object(item) ? json_object_get(item, "value") : NULL;
    if (!json_is_string(k) || !json_is_string(v)) {
      r = -EBADMSG;
      break;
    }
    r = envcrypt_env_add(&e, json_string_value(k), json_string_length(k), json_string_value(v),
                         json_string_length(v));
    if (r < 0) {
      if (r == -EEXIST)
        r = -EINVAL;
      break;
    }
  }
  if (r < 0) {
    envcrypt_env_free(&e);
    return r;
  }
  *ret = e;
  return 0;
}

int envcrypt_env_to_json(const struct envcrypt_env *e, struct buf *out) {
  if (!e || !out)
    return -EINVAL;
  _cleanup_(json_wipe_decref) json_t *root = json_object();
  json_t *arr = json_array();
  if (!root || !arr || json_object_set_new(root, "env", arr) < 0)
    return -ENOMEM;
  for (size_t i = 0; i < e->n; i++) {
    json_t *item = json_object();
    if (!item || json_array_append_new(arr, item) < 0)
      return -ENOMEM;
    json_t *v = json_stringn(e->vars[i].value, e->vars[i].value_len);
    if (!v)
      return -EINVAL; /* not UTF-8 */
    /* key before value, as the SDK writes it (jansson keeps insertion order) */
    if (json_object_set_new(item, "key", json_string(e->vars[i].key)) < 0) {
      json_wipe_decref(&v);
      return -ENOMEM;
    }
    if (json_object_set_new(item, "value", v) < 0)
      return -ENOMEM;
  }
  return json_dump_buf(root, JSON_COMPACT, out);
}

int envcrypt_decrypt_env(const uint8_t env_key_secret[32], const uint8_t *blob, size_t len,
                         bool is_hex, struct envcrypt_env *ret) {
  struct buf text;
  buf_init_secret(&text, ENVCRYPT_MAX_JSON);
  int r = is_hex ? envcrypt_decrypt(env_key_secret, (const char *)blob, len, &text)
                 : envcrypt_decrypt_raw(env_key_secret, blob, len, &text);
  if (r == 0)
    r = envcrypt_parse_env((const char *)text.data, text.len, ret);
  buf_free(&text);
  return r;
}

/* --- the KMS signature over a published env public key --- */

int envcrypt_pubkey_sig_digest(const uint8_t *app_id, size_t app_id_len,
                               const uint64_t *timestamp, const uint8_t pub[32],
                               uint8_t ret_hash[32]) {
  if ((!app_id && app_id_len) || !pub || !ret_hash)
    return -EINVAL;
  if (app_id_len > 1024)
    return -ENOBUFS;
  _cleanup_(hash_ctx_freep) struct hash_ctx *c = NULL;
  int r = hash_ctx_new(HASH_KECCAK256, &c);
  if (r < 0)
    return r;
  static const char prefix[] = ENVCRYPT_PUBKEY_SIG_PREFIX ":";
  uint8_t ts[8];
  if (timestamp)
    for (int i = 0; i < 8; i++)
      ts[i] = (uint8_t)(*timestamp >> (56 - 8 * i));
  if ((r = hash_ctx_update(c, prefix, sizeof(prefix) - 1)) < 0 ||
      (app_id_len && (r = hash_ctx_update(c, app_id, app_id_len)) < 0) ||
      (timestamp && (r = hash_ctx_update(c, ts, sizeof(ts))) < 0) ||
      (r = hash_ctx_update(c, pub, 32)) < 0)
    return r;
  return hash_ctx_final(c, ret_hash);
}

int envcrypt_pubkey_sig_recover(const uint8_t *app_id, size_t app_id_len,
                                const uint64_t *timestamp, const uint8_t pub[32],
                                const uint8_t sig65[65], uint8_t ret_signer[33]) {
  if (!sig65 || !ret_signer)
    return -EINVAL;
  uint8_t h[32];
  int r = envcrypt_pubkey_sig_digest(app_id, app_id_len, timestamp, pub, h);
  if (r < 0)
    return r;
  return key_secp256k1_recover(h, sig65, ret_signer);
}

/* Root keys: generation, loading, storing. */
#include "kms_rootkeys.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/fileset.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/str.h"
#include "kms_config.h"
#include "crypto/keys.h"
#include "crypto/x509.h"

#define PEM_MAX ((size_t)64 * 1024)

static void keys_init(struct kms_root_keys *k) {
  memset(k, 0, sizeof(*k));
  buf_init(&k->ca_cert_pem, PEM_MAX);
  buf_init(&k->tmp_ca_cert_pem, PEM_MAX);
  buf_init_secret(&k->tmp_ca_key_pem, PEM_MAX);
}

void kms_root_keys_free(struct kms_root_keys *k) {
  if (!k)
    return;
  EVP_PKEY_free(k->ca_key);
  X509_free(k->ca_cert);
  EVP_PKEY_free(k->tmp_ca_key);
  X509_free(k->tmp_ca_cert);
  buf_free(&k->ca_cert_pem);
  buf_free(&k->tmp_ca_cert_pem);
  buf_free(&k->tmp_ca_key_pem);
  secure_wipe(k, sizeof(*k));
}

static int ca_build(EVP_PKEY *key, const char *cn, int path_len, X509 **ret) {
  struct x509_params p = {
      .subject_cn = cn,
      .subject_org = KMS_CA_ORG,
      .is_ca = true,
      .path_len = path_len,
      .key_usage = X509_KU_KEY_CERT_SIGN | X509_KU_CRL_SIGN | X509_KU_DIGITAL_SIGNATURE,
      .skid_akid = true,
  };
  return x509_cert_build(&p, key, NULL, key, ret);
}

/* Fills the derived members (scalar, k256 public key, PEM texts) once the objects are set. */
static int keys_finish(struct kms_root_keys *k) {
  int r;
  if ((r = key_ec_private_scalar(k->ca_key, k->ca_scalar)) < 0 ||
      (r = key_secp256k1_public_from_secret(k->k256, k->k256_pub)) < 0)
    return r;
  buf_reset(&k->ca_cert_pem);
  buf_reset(&k->tmp_ca_cert_pem);
  buf_reset(&k->tmp_ca_key_pem);
  if ((r = x509_cert_to_pem(k->ca_cert, &k->ca_cert_pem)) < 0 ||
      (r = buf_terminate(&k->ca_cert_pem)) < 0 ||
      (r = x509_cert_to_pem(k->tmp_ca_cert, &k->tmp_ca_cert_pem)) < 0 ||
      (r = buf_terminate(&k->tmp_ca_cert_pem)) < 0 ||
      (r = key_to_pkcs8_pem(k->tmp_ca_key, &k->tmp_ca_key_pem)) < 0 ||
      (r = buf_terminate(&k->tmp_ca_key_pem)) < 0)
    return r;
  return 0;
}

int kms_root_keys_generate(struct kms_root_keys *ret) {
  struct kms_root_keys k;
  keys_init(&k);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k256 = NULL;
  int r;
  if ((r = key_p256_generate(&k.ca_key)) < 0 ||
      (r = ca_build(k.ca_key, KMS_ROOT_CA_CN, 3, &k.ca_cert)) < 0 ||
      (r = key_p256_generate(&k.tmp_ca_key)) < 0 ||
      (r = ca_build(k.tmp_ca_key, KMS_TMP_CA_CN, 1, &k.tmp_ca_cert)) < 0 ||
      (r = key_secp256k1_generate(&k256)) < 0 || (r = key_ec_private_scalar(k256, k.k256)) < 0 ||
      (r = keys_finish(&k)) < 0) {
    kms_root_keys_free(&k);
    return r;
  }
  *ret = k;
  secure_wipe(&k, sizeof(k));
  return 0;
}

/* A CA certificate (first of the PEM text) and its private key. */
static int load_ca(const char *what, const char *cert_pem, size_t cert_len, const char *key_pem,
                   size_t key_len, X509 **ret_cert, EVP_PKEY **ret_key, char *err,
                   size_t errlen) {
  _cleanup_(X509_freep) X509 *cert = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  int r = x509_cert_from_pem(cert_pem, cert_len, &cert);
  if (r < 0)
    return str_err(err, errlen, r, "%s certificate: not a PEM certificate", what);
  r = key_from_pem_or_der(key_pem, key_len, &key);
  if (r < 0)
    return str_err(err, errlen, r, "%s key: not a PEM private key", what);
  if (key_get_type(key) != KEY_TYPE_P256)
    return str_err(err, errlen, -EINVAL, "%s key: not a P-256 key", what);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
  if ((r = x509_cert_public_key(cert, &pub)) < 0 || key_public_equal(pub, key) != 0)
    return str_err(err, errlen, -EINVAL, "%s key does not match its certificate", what);
  bool ca = false;
  int pl;
  if (x509_cert_basic_constraints(cert, &ca, &pl) < 0 || !ca)
    return str_err(err, errlen, -EINVAL, "%s certificate is not a CA certificate", what);
  *ret_cert = TAKE_PTR(cert);
  *ret_key = TAKE_PTR(key);
  return 0;
}

static int parse_k256(const uint8_t *data, size_t len, uint8_t out[32]) {
  if (len == 32) {
    memcpy(out, data, 32);
    return 0;
  }
  struct slice s = slice_strip(SLICE(data, len));
  if (s.len != 64)
    return -EINVAL;
  return hex_decode_exact((const char *)s.ptr, s.len, out, 32);
}

int kms_root_keys_from_pem(const char *ca_cert_pem, size_t ca_cert_len, const char *ca_key_pem,
                           size_t ca_key_len, const uint8_t *k256, size_t k256_len,
                           const char *tmp_cert_pem, size_t tmp_cert_len, const char *tmp_key_pem,
                           size_t tmp_key_len, struct kms_root_keys *ret, char *err,
                           size_t errlen) {
  struct kms_root_keys k;
  keys_init(&k);
  uint8_t pub[33];
  int r = load_ca("root CA", ca_cert_pem, ca_cert_len, ca_key_pem, ca_key_len, &k.ca_cert,
                  &k.ca_key, err, errlen);
  if (r < 0)
    goto fail;
  r = load_ca("temporary CA", tmp_cert_pem, tmp_cert_len, tmp_key_pem, tmp_key_len,
              &k.tmp_ca_cert, &k.tmp_ca_key, err, errlen);
  if (r < 0)
    goto fail;
  if (parse_k256(k256, k256_len, k.k256) < 0 || key_secp256k1_public_from_secret(k.k256, pub) < 0) {
    r = str_err(err, errlen, -EINVAL, "k256 key: expected a 32-byte secp256k1 secret");
    goto fail;
  }
  if ((r = keys_finish(&k)) < 0) {
    str_err(err, errlen, r, "encoding the root keys: %s", strerror(-r));
    goto fail;
  }
  *ret = k;
  secure_wipe(&k, sizeof(k));
  return 0;
fail:
  kms_root_keys_free(&k);
  return r;
}

static int read_file(const char *path, bool secret, struct buf *out, char *err, size_t errlen) {
  int r = file_read_capped(path, PEM_MAX, secret, out);
  if (r == -EFBIG)
    return str_err(err, errlen, r, "reading %s: larger than %zu bytes", path, (size_t)PEM_MAX);
  if (r < 0)
    return str_err(err, errlen, r, "reading %s: %s", path, strerror(-r));
  return 0;
}

int kms_root_keys_load(const struct kms_config *c, struct kms_root_keys *ret, char *err,
                       size_t errlen) {
  _cleanup_buf_ struct buf cc = {0}, ck = {0}, k2 = {0}, tc = {0}, tk = {0};
  int r;
  if ((r = read_file(c->root_ca_cert, false, &cc, err, errlen)) < 0 ||
      (r = read_file(c->root_ca_key, true, &ck, err, errlen)) < 0 ||
      (r = read_file(c->k256_key, true, &k2, err, errlen)) < 0 ||
      (r = read_file(c->tmp_ca_cert, false, &tc, err, errlen)) < 0 ||
      (r = read_file(c->tmp_ca_key, true, &tk, err, errlen)) < 0)
    return r;
  return kms_root_keys_from_pem((const char *)cc.data, cc.len, (const char *)ck.data, ck.len,
                                k2.data, k2.len, (const char *)tc.data, tc.len,
                                (const char *)tk.data, tk.len, ret, err, errlen);
}

/* The five files in the order they are staged and linked (keys first: a certificate without
 * its key is useless, never the other way round). */
static void file_paths(const struct kms_config *c, const char *ret[KMS_ROOT_KEY_FILES]) {
  ret[0] = c->root_ca_key;
  ret[1] = c->k256_key;
  ret[2] = c->tmp_ca_key;
  ret[3] = c->root_ca_cert;
  ret[4] = c->tmp_ca_cert;
}

/* Where the files are staged: KMS_ROOT_KEYS_STAGING in the directory of root_ca_key. */
static char *staging_path(const struct kms_config *c) {
  const char *slash = strrchr(c->root_ca_key, '/');
  if (!slash)
    return strdup(KMS_ROOT_KEYS_STAGING);
  return str_printf("%.*s/%s", (int)(slash == c->root_ca_key ? 1 : slash - c->root_ca_key),
                    c->root_ca_key, KMS_ROOT_KEYS_STAGING);
}

static bool paths_set(const struct kms_config *c) {
  const char *files[KMS_ROOT_KEY_FILES];
  file_paths(c, files);
  for (size_t i = 0; i < ARRAY_SIZE(files); i++)
    if (str_isempty(files[i]))
      return false;
  return true;
}

int kms_root_keys_store(const struct kms_root_keys *k, const struct kms_config *c, char *err,
                        size_t errlen) {
  return kms_root_keys_store_stepped(k, c, NULL, NULL, err, errlen);
}

int kms_root_keys_store_stepped(const struct kms_root_keys *k, const struct kms_config *c,
                                fileset_step_fn step, void *userdata, char *err,
                                size_t errlen) {
  if (!paths_set(c))
    return str_err(err, errlen, -EINVAL, "the root key file paths are not all set");
  _cleanup_free_ char *staging = staging_path(c);
  if (!staging)
    return -ENOMEM;
  _cleanup_buf_ struct buf ca_key;
  buf_init_secret(&ca_key, PEM_MAX);
  int r = key_to_pkcs8_pem(k->ca_key, &ca_key);
  if (r < 0)
    return str_err(err, errlen, r, "encoding the root CA key: %s", strerror(-r));
  const char *paths[KMS_ROOT_KEY_FILES];
  file_paths(c, paths);
  const struct fileset_file files[KMS_ROOT_KEY_FILES] = {
      {paths[0], ca_key.data, ca_key.len, 0600},
      {paths[1], k->k256, sizeof(k->k256), 0600},
      {paths[2], k->tmp_ca_key_pem.data, k->tmp_ca_key_pem.len, 0600},
      {paths[3], k->ca_cert_pem.data, k->ca_cert_pem.len, 0644},
      {paths[4], k->tmp_ca_cert_pem.data, k->tmp_ca_cert_pem.len, 0644},
  };
  r = fileset_create(staging, files, ARRAY_SIZE(files), step, userdata);
  if (r == -EEXIST)
    return str_err(err, errlen, r,
                   "root key files (or %s) exist already; not replacing them", staging);
  if (r == -EXDEV)
    return str_err(err, errlen, r, "the root key files must be on the file system of %s",
                   staging);
  if (r < 0)
    return str_err(err, errlen, r, "creating the root key files (staged in %s): %s", staging,
                   strerror(-r));
  return 0;
}

int kms_root_keys_recover(const struct kms_config *c, char *err, size_t errlen) {
  return kms_root_keys_recover_stepped(c, NULL, NULL, err, errlen);
}

int kms_root_keys_recover_stepped(const struct kms_config *c, fileset_step_fn step,
                                  void *userdata, char *err, size_t errlen) {
  if (!paths_set(c))
    return 0; /* kms_config_check reports it */
  _cleanup_free_ char *staging = staging_path(c);
  if (!staging)
    return -ENOMEM;
  const char *paths[KMS_ROOT_KEY_FILES];
  file_paths(c, paths);
  enum fileset_recovery what;
  int r = fileset_recover(staging, paths, ARRAY_SIZE(paths), step, userdata, &what);
  if (r < 0)
    return str_err(err, errlen, r,
                   "%s: root key files whose creation was interrupted cannot be completed: %s "
                   "(nothing was replaced; move the files aside to start over)",
                   staging, strerror(-r));
  if (what == FILESET_REMOVED)
    log_warn("removed %s: root keys whose creation a crash interrupted before any key file "
             "was in place",
             staging);
  else if (what == FILESET_FINISHED)
    log_warn("finished creating the root key files a crash interrupted (%s, ...)",
             c->root_ca_key);
  return 0;
}

int kms_root_keys_present(const struct kms_config *c) {
  const char *files[] = {c->root_ca_cert, c->root_ca_key, c->k256_key, c->tmp_ca_cert,
                         c->tmp_ca_key};
  int n = 0;
  for (size_t i = 0; i < ARRAY_SIZE(files); i++)
    if (!str_isempty(files[i]) && access(files[i], F_OK) == 0)
      n++;
  return n;
}

int kms_init_dir(const char *dir, struct kms_root_keys *ret, char *err, size_t errlen) {
  struct kms_config c;
  int r = kms_config_init(&c);
  if (r < 0)
    return r;
  struct {
    char **field;
    const char *name;
  } files[] = {{&c.root_ca_cert, "root-ca.cert"},
               {&c.root_ca_key, "root-ca.key"},
               {&c.k256_key, "root-k256.key"},
               {&c.tmp_ca_cert, "tmp-ca.cert"},
               {&c.tmp_ca_key, "tmp-ca.key"}};
  for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
    char *p = str_printf("%s/%s", dir, files[i].name);
    if (!p) {
      r = -ENOMEM;
      goto out;
    }
    free(*files[i].field);
    *files[i].field = p;
  }
  if ((r = mkdir_p(dir, 0700)) < 0) {
    str_err(err, errlen, r, "creating %s: %s", dir, strerror(-r));
    goto out;
  }
  if ((r = kms_root_keys_recover(&c, err, errlen)) < 0)
    goto out;
  if (kms_root_keys_present(&c) > 0) {
    r = str_err(err, errlen, -EEXIST, "%s already holds KMS keys; not overwriting them", dir);
    goto out;
  }
  struct kms_root_keys k;
  if ((r = kms_root_keys_generate(&k)) < 0) {
    str_err(err, errlen, r, "generating keys: %s", strerror(-r));
    goto out;
  }
  r = kms_root_keys_store(&k, &c, err, errlen);
  if (r < 0 || !ret)
    kms_root_keys_free(&k);
  else
    *ret = k;
  secure_wipe(&k, sizeof(k));
out:
  kms_config_free(&c);
  return r;
}

/* ACME account and historical certificate keys from certbot's workdir. */
#include "tproxy_acme.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"

#define ACME_FILE_MAX ((size_t)1024 * 1024)

static char *account_read(const char *workdir) {
  _cleanup_free_ char *path = str_printf("%s/credentials.json", workdir);
  _cleanup_buf_ struct buf b = BUF_INIT(ACME_FILE_MAX);
  _cleanup_json_ json_t *j = NULL;
  const char *id = NULL;
  if (!path)
    return NULL;
  if (file_read_all(path, ACME_FILE_MAX, &b) < 0 ||
      json_parse_buf((const char *)b.data, b.len, ACME_FILE_MAX, &j) < 0 ||
      json_get_str(j, "account_id", &id) < 0) {
    log_debug("%s: no account_id", path);
    return strdup("");
  }
  return strdup(id);
}

static int key_cmp(const void *a, const void *b) {
  const struct acme_key *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->der, y->der, n);
  if (c)
    return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

static int key_of(const char *path, struct acme_key *ret) {
  _cleanup_buf_ struct buf pem = BUF_INIT(ACME_FILE_MAX);
  _cleanup_buf_ struct buf der = BUF_INIT(64 * 1024);
  _cleanup_(X509_freep) X509 *c = NULL;
  int r;
  if ((r = file_read_all(path, ACME_FILE_MAX, &pem)) < 0 ||
      (r = x509_cert_from_pem(pem.data, pem.len, &c)) < 0 || (r = x509_cert_spki_der(c, &der)) < 0)
    return r;
  ret->der = malloc(der.len);
  if (!ret->der)
    return -ENOMEM;
  memcpy(ret->der, der.data, der.len);
  ret->len = der.len;
  return 0;
}

int acme_info_read(const char *workdir, struct acme_info *ret) {
  memset(ret, 0, sizeof(*ret));
  ret->account_uri = account_read(workdir);
  if (!ret->account_uri)
    return -ENOMEM;
  _cleanup_free_ char *bdir = str_printf("%s/backup", workdir);
  if (!bdir)
    return -ENOMEM;
  DIR *d = opendir(bdir);
  if (!d)
    return 0;
  size_t cap = 0, seen = 0;
  int r = 0;
  struct dirent *de;
  while ((de = readdir(d)) && seen < ACME_MAX_BACKUPS) {
    if (de->d_name[0] == '.')
      continue;
    seen++;
    _cleanup_free_ char *p = str_printf("%s/%s/cert.pem", bdir, de->d_name);
    if (!p) {
      r = -ENOMEM;
      break;
    }
    struct acme_key k;
    if (key_of(p, &k) < 0) {
      log_debug("%s: no certificate", p);
      continue;
    }
    if (ret->n_keys == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      struct acme_key *nk = realloc(ret->keys, ncap * sizeof(*nk));
      if (!nk) {
        free(k.der);
        r = -ENOMEM;
        break;
      }
      ret->keys = nk;
      cap = ncap;
    }
    ret->keys[ret->n_keys++] = k;
  }
  closedir(d);
  if (r < 0) {
    acme_info_free(ret);
    return r;
  }
  if (ret->n_keys > 1) {
    qsort(ret->keys, ret->n_keys, sizeof(*ret->keys), key_cmp);
    size_t w = 1;
    for (size_t i = 1; i < ret->n_keys; i++) {
      if (key_cmp(&ret->keys[i], &ret->keys[w - 1]) == 0)
        free(ret->keys[i].der);
      else
        ret->keys[w++] = ret->keys[i];
    }
    ret->n_keys = w;
  }
  return 0;
}

void acme_info_free(struct acme_info *a) {
  if (!a)
    return;
  free(a->account_uri);
  for (size_t i = 0; i < a->n_keys; i++)
    free(a->keys[i].der);
  free(a->keys);
  memset(a, 0, sizeof(*a));
}

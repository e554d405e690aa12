/* ACME account, historical certificate keys and their quotes from certbot's workdir. */
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
#include "attest/quoted_key.h"

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

/* The text of a quote file when it holds well-formed evidence and fits in *budget (which it
 * then uses up); NULL otherwise (*ret_r < 0 only when out of memory). */
static char *quote_read(const char *path, size_t *budget, int *ret_r) {
  _cleanup_buf_ struct buf b = BUF_INIT(QUOTED_KEY_MAX_TEXT);
  struct quoted_key_evidence e;
  *ret_r = 0;
  int r = file_read_all(path, QUOTED_KEY_MAX_TEXT, &b);
  if (r == -ENOENT)
    return NULL;
  if (r < 0) {
    log_debug("%s: %s", path, strerror(-r));
    return NULL;
  }
  r = quoted_key_evidence_parse((const char *)b.data, b.len, &e);
  quoted_key_evidence_free(&e);
  if (r < 0) {
    log_debug("%s: not quote evidence: %s", path, strerror(-r));
    if (r == -ENOMEM)
      *ret_r = r;
    return NULL;
  }
  if (b.len > *budget) {
    log_debug("%s: skipped, the quotes are over %zu bytes in all", path, ACME_MAX_QUOTE_BYTES);
    return NULL;
  }
  if (buf_terminate(&b) < 0) {
    *ret_r = -ENOMEM;
    return NULL;
  }
  *budget -= b.len;
  return (char *)buf_steal(&b, NULL);
}

static int key_cmp(const void *a, const void *b) {
  const struct acme_key *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->der, y->der, n);
  if (c)
    return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

static int quoted_cmp(const void *a, const void *b) {
  const struct acme_quoted_key *x = a, *y = b;
  int c = key_cmp(&(struct acme_key){x->der, x->len}, &(struct acme_key){y->der, y->len});
  return c ? c : strcmp(x->quote, y->quote);
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

/* Grows an array of elements of size sz to hold one more. */
static int grow(void **arr, size_t n, size_t *cap, size_t sz) {
  if (n < *cap)
    return 0;
  size_t ncap = *cap ? *cap * 2 : 8;
  void *p = realloc(*arr, ncap * sz);
  if (!p)
    return -ENOMEM;
  *arr = p;
  *cap = ncap;
  return 0;
}

/* The key of backup/<name>/cert.pem, and with its cert.quote, into ret. */
static int backup_read(const char *bdir, const char *name, struct acme_info *ret, size_t *cap,
                       size_t *qcap, size_t *budget) {
  _cleanup_free_ char *p = str_printf("%s/%s/cert.pem", bdir, name);
  _cleanup_free_ char *qp = str_printf("%s/%s/%s", bdir, name, QUOTED_KEY_CERT_FILE);
  if (!p || !qp)
    return -ENOMEM;
  struct acme_key k;
  if (key_of(p, &k) < 0) {
    log_debug("%s: no certificate", p);
    return 0;
  }
  int r;
  char *quote = quote_read(qp, budget, &r);
  if (r < 0 || grow((void **)&ret->keys, ret->n_keys, cap, sizeof(*ret->keys)) < 0) {
    free(k.der);
    free(quote);
    return -ENOMEM;
  }
  if (quote) {
    uint8_t *copy = malloc(k.len);
    if (!copy || grow((void **)&ret->quoted, ret->n_quoted, qcap, sizeof(*ret->quoted)) < 0) {
      free(copy);
      free(k.der);
      free(quote);
      return -ENOMEM;
    }
    memcpy(copy, k.der, k.len);
    ret->quoted[ret->n_quoted++] = (struct acme_quoted_key){copy, k.len, quote};
  }
  ret->keys[ret->n_keys++] = k;
  return 0;
}

int acme_info_read(const char *workdir, struct acme_info *ret) {
  memset(ret, 0, sizeof(*ret));
  size_t budget = ACME_MAX_QUOTE_BYTES;
  int r = 0;
  ret->account_uri = account_read(workdir);
  if (!ret->account_uri)
    return -ENOMEM;
  if (ret->account_uri[0]) {
    _cleanup_free_ char *qp = str_printf("%s/%s", workdir, QUOTED_KEY_ACCOUNT_FILE);
    if (!qp) {
      acme_info_free(ret);
      return -ENOMEM;
    }
    ret->account_quote = quote_read(qp, &budget, &r);
  }
  if (!ret->account_quote && r == 0)
    ret->account_quote = strdup("");
  if (!ret->account_quote) {
    acme_info_free(ret);
    return -ENOMEM;
  }
  _cleanup_free_ char *bdir = str_printf("%s/backup", workdir);
  if (!bdir) {
    acme_info_free(ret);
    return -ENOMEM;
  }
  DIR *d = opendir(bdir);
  if (!d)
    return 0;
  size_t cap = 0, qcap = 0, seen = 0;
  struct dirent *de;
  while ((de = readdir(d)) && seen < ACME_MAX_BACKUPS) {
    if (de->d_name[0] == '.')
      continue;
    seen++;
    if ((r = backup_read(bdir, de->d_name, ret, &cap, &qcap, &budget)) < 0)
      break;
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
  if (ret->n_quoted > 1) {
    qsort(ret->quoted, ret->n_quoted, sizeof(*ret->quoted), quoted_cmp);
    size_t w = 1;
    for (size_t i = 1; i < ret->n_quoted; i++) {
      if (quoted_cmp(&ret->quoted[i], &ret->quoted[w - 1]) == 0) {
        free(ret->quoted[i].der);
        free(ret->quoted[i].quote);
      } else {
        ret->quoted[w++] = ret->quoted[i];
      }
    }
    ret->n_quoted = w;
  }
  return 0;
}

void acme_info_free(struct acme_info *a) {
  if (!a)
    return;
  free(a->account_uri);
  free(a->account_quote);
  for (size_t i = 0; i < a->n_keys; i++)
    free(a->keys[i].der);
  free(a->keys);
  for (size_t i = 0; i < a->n_quoted; i++) {
    free(a->quoted[i].der);
    free(a->quoted[i].quote);
  }
  free(a->quoted);
  memset(a, 0, sizeof(*a));
}

/* PEM certificate lists read by one strict grammar, keeping each certificate's exact DER. */
#include "crypto/x509_pem.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "base/base64.h"
#include "base/log.h"

#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_END "-----END CERTIFICATE-----"
#define PEM_DASHES "-----"

/* One line of text at *pos: [*ret_start, *ret_end) without its EOL; *ret_eol whether it had one
 * ("\n" or "\r\n"). Moves *pos past the line. */
static void line_next(const char *text, size_t len, size_t *pos, size_t *ret_start,
                      size_t *ret_end, bool *ret_eol) {
  size_t s = *pos;
  const char *nl = memchr(text + s, '\n', len - s);
  size_t e = nl ? (size_t)(nl - text) : len;
  *pos = nl ? e + 1 : len;
  *ret_eol = nl != NULL;
  if (nl && e > s && text[e - 1] == '\r')
    e--;
  *ret_start = s;
  *ret_end = e;
}

static bool line_is(const char *text, size_t s, size_t e, const char *what) {
  size_t n = strlen(what);
  return e - s == n && memcmp(text + s, what, n) == 0;
}

static bool is_b64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/' || c == '=';
}

/* The lines after a BEGIN line, up to and with the END line (which may lack its EOL only at the
 * end of the text): the DER appended to l->der, the certificate to l->c. *pos is moved past the
 * END line. */
static int block_read(const char *text, size_t len, size_t *pos, bool der_only,
                      struct x509_pem_certs *l) {
  _cleanup_buf_ struct buf b64 = BUF_INIT(X509_INPUT_MAX);
  size_t lines = 0;
  while (*pos < len) {
    size_t s, e;
    bool eol;
    line_next(text, len, pos, &s, &e, &eol);
    if (line_is(text, s, e, PEM_END)) {
      if (lines == 0)
        return -EBADMSG;
      size_t off = l->der.len;
      int r = base64_decode_buf((const char *)b64.data, b64.len, &l->der);
      if (r < 0)
        return r == -ENOBUFS ? r : -EBADMSG;
      if (l->der.len == off)
        return -EBADMSG;
      X509 *c = NULL;
      if (!der_only && (r = x509_cert_from_der(l->der.data + off, l->der.len - off, &c)) < 0)
        return r;
      l->c[l->n++] = (struct x509_pem_cert){.cert = c, .der_off = off, .der_len = l->der.len - off};
      return 0;
    }
    if (!eol || s == e)
      return -EBADMSG; /* no END line, or a blank line */
    for (size_t i = s; i < e; i++)
      if (!is_b64(text[i]))
        return -EBADMSG;
    int r = buf_append(&b64, text + s, e - s);
    if (r < 0)
      return r;
    lines++;
  }
  return -EBADMSG;
}

int x509_pem_certs_parse(const void *data, size_t len, unsigned flags,
                         struct x509_pem_certs *ret) {
  if (!ret || (!data && len))
    return -EINVAL;
  *ret = (struct x509_pem_certs){.der = BUF_INIT(X509_INPUT_MAX)};
  if (len > X509_INPUT_MAX)
    return -ENOBUFS;
  const bool strict = flags & X509_PEM_STRICT;
  const char *text = data;
  if (strict && len > 0 && text[len - 1] == '\0')
    len--; /* the one NUL Intel's QE puts at the end */
  size_t pos = 0;
  int r = 0;
  while (pos < len) {
    size_t s, e;
    bool eol;
    line_next(text, len, &pos, &s, &e, &eol);
    if (line_is(text, s, e, PEM_BEGIN)) {
      if (!eol) {
        r = -EBADMSG;
        goto fail;
      }
      if (ret->n >= X509_CHAIN_MAX) {
        r = -ENOBUFS;
        goto fail;
      }
      if ((r = block_read(text, len, &pos, flags & X509_PEM_DER_ONLY, ret)) < 0)
        goto fail;
      continue;
    }
    if (strict || (e - s >= 11 && memcmp(text + s, PEM_DASHES "BEGIN ", 11) == 0)) {
      r = -EBADMSG; /* text outside the blocks, or another PEM type */
      goto fail;
    }
  }
  if (ret->n == 0) {
    r = -ENOENT;
    goto fail;
  }
  return 0;
fail:
  log_debug("PEM certificates: %s at byte %zu", strerror(-r), pos);
  x509_pem_certs_free(ret);
  return r;
}

void x509_pem_certs_free(struct x509_pem_certs *l) {
  if (!l)
    return;
  for (size_t i = 0; i < l->n; i++)
    X509_free(l->c[i].cert);
  buf_free(&l->der);
  *l = (struct x509_pem_certs){0};
}

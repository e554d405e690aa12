#include "ratls/ratls.h"

#include <errno.h>
#include <string.h>

#include "attest/eventlog.h"
#include "attest/quote.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/log.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"

void ratls_cert_params_default(struct ratls_cert_params *p) {
  *p = (struct ratls_cert_params){.ca_level = -1};
}

int ratls_report_data_for_key(EVP_PKEY *key, uint8_t ret[64]) {
  uint8_t point[65];
  if (!key || key_get_type(key) != KEY_TYPE_P256)
    return -EINVAL;
  int r = key_ec_public_point(key, point);
  if (r < 0)
    return r;
  sha512(point, sizeof(point), ret);
  return 0;
}

/* DER definite length: short form below 128, else the minimal long form (up to 4 bytes). */
int ratls_ext_wrap(const void *data, size_t len, struct buf *out) {
  uint8_t hdr[6];
  size_t n = 0;
  if (len > UINT32_MAX)
    return -ENOBUFS;
  hdr[n++] = 0x04;
  if (len < 0x80) {
    hdr[n++] = (uint8_t)len;
  } else {
    size_t bytes = len > 0xffffff ? 4 : len > 0xffff ? 3 : len > 0xff ? 2 : 1;
    hdr[n++] = (uint8_t)(0x80 | bytes);
    for (size_t i = bytes; i > 0; i--)
      hdr[n++] = (uint8_t)(len >> (8 * (i - 1)));
  }
  size_t old = out->len;
  int r = buf_append(out, hdr, n);
  if (r == 0 && len)
    r = buf_append(out, data, len);
  if (r < 0)
    out->len = old;
  return r;
}

int ratls_ext_unwrap(const uint8_t *der, size_t len, size_t max, struct slice *ret) {
  struct cursor c;
  uint8_t tag, l0;
  size_t clen;
  int r;

  if (!der && len)
    return -EINVAL;
  cursor_init(&c, der, len);
  if ((r = cursor_u8(&c, &tag)) < 0 || (r = cursor_u8(&c, &l0)) < 0)
    return r;
  if (tag != 0x04)
    return -EBADMSG;
  if (l0 < 0x80) {
    clen = l0;
  } else {
    size_t nbytes = l0 & 0x7f;
    /* 0x80 is the indefinite form (not DER); more than 4 length bytes is beyond any cap. */
    if (nbytes == 0 || nbytes > 4)
      return -EBADMSG;
    clen = 0;
    for (size_t i = 0; i < nbytes; i++) {
      uint8_t b;
      if ((r = cursor_u8(&c, &b)) < 0)
        return r;
      if (i == 0 && b == 0)
        return -EBADMSG; /* leading zero: not minimal */
      clen = (clen << 8) | b;
    }
    if (clen < 0x80)
      return -EBADMSG; /* long form for a short length: not minimal */
  }
  if (clen > cursor_left(&c))
    return -EBADMSG;
  if (clen != cursor_left(&c))
    return -EBADMSG; /* trailing bytes after the inner OCTET STRING */
  if (clen > max)
    return -ENOBUFS;
  return cursor_slice(&c, clen, ret);
}

int ratls_cert_build(const struct ratls_cert_params *p, EVP_PKEY *key,
                     const struct ratls_evidence *ev, X509 *issuer, EVP_PKEY *issuer_key,
                     X509 **ret) {
  struct ratls_cert_params def;
  _cleanup_buf_ struct buf wq = BUF_INIT(RATLS_MAX_QUOTE + 8);
  _cleanup_buf_ struct buf we = BUF_INIT(RATLS_MAX_EVENT_LOG + 8);
  _cleanup_buf_ struct buf wa = BUF_INIT(RATLS_MAX_APP_INFO + 8);
  struct x509_ext exts[3];
  size_t n_exts = 0;
  int r;

  if (!key || !ev || !ret || !ev->quote || ev->quote_len == 0)
    return -EINVAL;
  if (!p) {
    ratls_cert_params_default(&def);
    p = &def;
  }
  if (ev->quote_len > RATLS_MAX_QUOTE || ev->event_log_len > RATLS_MAX_EVENT_LOG ||
      p->app_info_len > RATLS_MAX_APP_INFO)
    return -ENOBUFS;
  if ((ev->event_log_len && !ev->event_log) || (p->app_info_len && !p->app_info))
    return -EINVAL;

  if ((r = ratls_ext_wrap(ev->quote, ev->quote_len, &wq)) < 0 ||
      (r = ratls_ext_wrap(ev->event_log, ev->event_log_len, &we)) < 0)
    return r;
  exts[n_exts++] = (struct x509_ext){.oid = RATLS_OID_QUOTE, .value = wq.data, .len = wq.len};
  exts[n_exts++] = (struct x509_ext){.oid = RATLS_OID_EVENT_LOG, .value = we.data, .len = we.len};
  if (p->app_info_len) {
    if ((r = ratls_ext_wrap(p->app_info, p->app_info_len, &wa)) < 0)
      return r;
    exts[n_exts++] = (struct x509_ext){.oid = RATLS_OID_APP_INFO, .value = wa.data, .len = wa.len};
  }

  const char *sans[1] = {p->alt_subject};
  struct x509_params xp = {
      .subject_cn = p->subject_cn ? p->subject_cn : RATLS_DEFAULT_CN,
      .subject_org = p->org_name,
      .dns_sans = p->alt_subject ? sans : NULL,
      .n_dns_sans = p->alt_subject ? 1 : 0,
      .is_ca = p->ca_level >= 0,
      .path_len = p->ca_level >= 0 ? p->ca_level : -1,
      .key_usage = p->ca_level >= 0 ? X509_KU_KEY_CERT_SIGN | X509_KU_CRL_SIGN : 0,
      .not_before = p->not_before,
      .not_after = p->not_after,
      .serial_from_spki = true,
      .exts = exts,
      .n_exts = n_exts,
      .skid_akid = p->ca_level >= 0,
  };
  return x509_cert_build(&xp, key, issuer, issuer ? issuer_key : NULL, ret);
}

int ratls_cert_generate(const struct ratls_cert_params *p, struct tee *tee, X509 *issuer,
                        EVP_PKEY *issuer_key, X509 **ret_cert, EVP_PKEY **ret_key) {
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  _cleanup_buf_ struct buf quote = BUF_INIT(RATLS_MAX_QUOTE);
  _cleanup_buf_ struct buf evlog = BUF_INIT(RATLS_MAX_EVENT_LOG);
  _cleanup_free_ char *evpath = NULL;
  uint8_t rd[64];
  int r;

  if (!tee || !ret_cert || !ret_key || (issuer && !issuer_key))
    return -EINVAL;
  if ((r = key_p256_generate(&key)) < 0)
    return r;
  if ((r = ratls_report_data_for_key(key, rd)) < 0)
    return r;
  if ((r = tee_get_quote(tee, rd, &quote)) < 0)
    return log_debug_errno(r, "ratls: getting a quote");

  r = tee_eventlog_path(tee, &evpath);
  if (r == 0) {
    r = file_read_all(evpath, RATLS_MAX_EVENT_LOG, &evlog);
    if (r == -ENOENT)
      r = 0; /* no events yet: empty log */
    else if (r == -EFBIG)
      r = -ENOBUFS;
  } else if (r == -ENOTSUP) {
    r = 0;
  }
  if (r < 0)
    return log_debug_errno(r, "ratls: reading the event log");

  struct ratls_evidence ev = {
      .quote = quote.data,
      .quote_len = quote.len,
      .event_log = evlog.data,
      .event_log_len = evlog.len,
  };
  _cleanup_(X509_freep) X509 *cert = NULL;
  if ((r = ratls_cert_build(p, key, &ev, issuer, issuer_key, &cert)) < 0)
    return r;
  *ret_cert = TAKE_PTR(cert);
  *ret_key = TAKE_PTR(key);
  return 0;
}

void ratls_attestation_init(struct ratls_attestation *a) {
  buf_init(&a->quote, RATLS_MAX_QUOTE);
  buf_init(&a->event_log, RATLS_MAX_EVENT_LOG);
  buf_init(&a->app_info, RATLS_MAX_APP_INFO);
}

void ratls_attestation_free(struct ratls_attestation *a) {
  if (!a)
    return;
  buf_free(&a->quote);
  buf_free(&a->event_log);
  buf_free(&a->app_info);
}

/* Unwraps one extension into out. -ENOENT when absent. */
static int ratls_ext_extract(X509 *cert, const char *oid, struct buf *out) {
  struct slice outer, inner;
  int r = x509_cert_ext_find(cert, oid, &outer, NULL);
  if (r < 0)
    return r;
  if ((r = ratls_ext_unwrap(outer.ptr, outer.len, out->max, &inner)) < 0)
    return r;
  return buf_append(out, inner.ptr, inner.len);
}

int ratls_cert_attestation(X509 *cert, struct ratls_attestation *ret) {
  int r;
  if (!cert || !ret)
    return -EINVAL;
  ratls_attestation_init(ret);
  r = ratls_ext_extract(cert, RATLS_OID_QUOTE, &ret->quote);
  if (r < 0)
    goto fail;
  r = ratls_ext_extract(cert, RATLS_OID_EVENT_LOG, &ret->event_log);
  if (r < 0 && r != -ENOENT)
    goto fail;
  r = ratls_ext_extract(cert, RATLS_OID_APP_INFO, &ret->app_info);
  if (r < 0 && r != -ENOENT)
    goto fail;
  return 0;
fail:
  ratls_attestation_free(ret);
  return r;
}

int ratls_report_data_binds_key(X509 *cert, const struct ratls_attestation *a) {
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
  uint8_t want[64];
  struct quote q;
  int r;

  if (!cert || !a)
    return -EINVAL;
  if ((r = quote_parse(a->quote.data, a->quote.len, &q)) < 0)
    return r;
  if ((r = x509_cert_public_key(cert, &pub)) < 0)
    return r;
  if ((r = ratls_report_data_for_key(pub, want)) < 0)
    return r;
  const uint8_t *have = quote_report_data(&q);
  if (!have)
    return -EBADMSG;
  return memcmp_ct(have, want, sizeof(want)) == 0 ? 0 : -EPERM;
}

/* Onboarding a replica over mutually attested RA-TLS.
 *
 * libcurl is used directly (not net/http_client.h) because the client certificate lives in
 * memory and the server's certificate must be checked between the TLS handshake and the
 * request: CURLOPT_SSL_CTX_FUNCTION installs our certificate and key, CURLOPT_PREREQFUNCTION
 * runs the attestation check on the server's certificate and aborts before anything is sent
 * when it fails. TLS chain validation is off on purpose: trust comes from the quote, which binds
 * the certificate's key (and the handshake proves the server holds that key). */
#include "kms_onboard.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "attest/tee.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/x509.h"
#include "kms_rpc.pb-c.h"
#include "kms_server.h"
#include "kms_service.h"
#include "kms_verify.h"

#define ONBOARD_MAX_BODY ((size_t)1024 * 1024)
#define ONBOARD_TIMEOUT_MS 60000L
#define ONBOARD_CONNECT_TIMEOUT_MS 10000L

struct ob {
  CURL *h;
  const struct kms_config *c;
  struct ratls_verifier *v;
  int64_t now;
  X509 *cert;
  EVP_PKEY *key;
  bool attested;
  enum kms_reason reason;
  char why[512];
  struct buf body; /* secret */
};

static CURLcode ssl_ctx_cb(CURL *h, void *ssl_ctx, void *ud) {
  (void)h;
  struct ob *o = ud;
  SSL_CTX *ctx = ssl_ctx;
  if (!SSL_CTX_use_certificate(ctx, o->cert) || !SSL_CTX_use_PrivateKey(ctx, o->key) ||
      !SSL_CTX_check_private_key(ctx))
    return CURLE_SSL_CERTPROBLEM;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  return CURLE_OK;
}

/* The server's certificate, after the handshake, before the request. */
static int prereq_cb(void *ud, char *ip, char *local_ip, int port, int local_port) {
  (void)ip;
  (void)local_ip;
  (void)port;
  (void)local_port;
  struct ob *o = ud;
  struct curl_tlssessioninfo *ti = NULL;
  if (curl_easy_getinfo(o->h, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || !ti ||
      ti->backend != CURLSSLBACKEND_OPENSSL || !ti->internals) {
    o->reason = KMS_R_INTERNAL;
    snprintf(o->why, sizeof(o->why), "no TLS session to check");
    return CURL_PREREQFUNC_ABORT;
  }
  X509 *peer = SSL_get1_peer_certificate((SSL *)ti->internals);
  struct ratls_peer p;
  struct ratls_app_identity id;
  ratls_peer_init(&p);
  o->reason = kms_verify_peer(o->v, peer, o->now, &p, o->why, sizeof(o->why));
  if (o->reason == KMS_OK) {
    char idwhy[256];
    enum kms_reason ir = kms_identity_from_log(o->c, &p.log, &id, idwhy, sizeof(idwhy));
    bool have_id = ir == KMS_OK;
    if (ir != KMS_OK && !kms_reason_no_identity(ir)) {
      /* A log that breaks the boot-event rules is a forgery, identity needed or not. */
      o->reason = ir;
      snprintf(o->why, sizeof(o->why), "%s", idwhy);
    } else {
      struct kms_policy_input in;
      kms_peer_policy_input(&p, have_id ? &id : NULL, &in);
      o->reason = kms_policy_check(&o->c->onboard, &in, o->now, o->why, sizeof(o->why));
    }
  }
  _cleanup_buf_ struct buf d = BUF_INIT(4096);
  (void)ratls_peer_describe(&p, NULL, &d);
  (void)buf_terminate(&d);
  if (o->reason == KMS_OK)
    log_info("onboard: the source KMS passed attestation;%s", d.data ? (char *)d.data : "");
  else
    log_warn("onboard: refusing the source KMS: %s: %s;%s", kms_reason_code(o->reason), o->why,
             d.data ? (char *)d.data : "");
  ratls_peer_free(&p);
  X509_free(peer);
  o->attested = o->reason == KMS_OK;
  return o->attested ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud) {
  struct ob *o = ud;
  size_t len = size * n;
  if (!o->attested || buf_append(&o->body, p, len) < 0)
    return 0; /* aborts the transfer */
  return len;
}

static int base_url(const char *src, char **ret) {
  if (!str_startswith(src, "https://"))
    return -EINVAL;
  _cleanup_free_ char *u = strdup(src);
  if (!u)
    return -ENOMEM;
  size_t n = strlen(u);
  while (n > 0 && u[n - 1] == '/')
    u[--n] = '\0';
  if (str_endswith(u, "/prpc"))
    u[n - 5] = '\0';
  *ret = str_printf("%s/prpc/KMS.GetKmsKey", u);
  return *ret ? 0 : -ENOMEM;
}

/* ProtoError{string message = 1} of a failed call, printable characters only. */
static void proto_error_text(const struct buf *b, char *out, size_t outlen) {
  snprintf(out, outlen, "(no message)");
  if (b->len < 2 || b->data[0] != 0x0a)
    return;
  size_t len = 0, i = 1;
  for (int shift = 0; i < b->len && shift < 28; shift += 7) {
    uint8_t c = b->data[i++];
    len |= (size_t)(c & 0x7f) << shift;
    if (!(c & 0x80))
      break;
  }
  if (len > b->len - i)
    len = b->len - i;
  size_t k = 0;
  for (; k < len && k + 1 < outlen; k++) {
    char c = (char)b->data[i + k];
    out[k] = (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  out[k] = '\0';
}

int kms_onboard(const struct kms_config *c, const char *source_url, int64_t now,
                struct kms_root_keys *ret, char *err, size_t errlen) {
  struct ob o = {.c = c, .now = now};
  buf_init_secret(&o.body, ONBOARD_MAX_BODY);
  _cleanup_free_ char *url = NULL;
  _cleanup_(tee_freep) struct tee *tee = NULL;
  Kms__KmsKeyResponse *resp = NULL;
  struct curl_slist *hdrs = NULL;
  int r = base_url(source_url, &url);
  if (r < 0) {
    str_err(err, errlen, r, "--source: expected an https:// URL of the source KMS");
    goto out;
  }
  if ((r = kms_verifier_new(c, false, &o.v, err, errlen)) < 0)
    goto out;
  if ((r = kms_tee_open(c, &tee)) < 0) {
    str_err(err, errlen, r, "opening this KMS's TEE: %s", strerror(-r));
    goto out;
  }
  if ((r = kms_ratls_cert_make(tee, "dstack-kms-replica", NULL, NULL, NULL, &o.cert, &o.key)) <
      0) {
    str_err(err, errlen, r, "making the RA-TLS client certificate: %s", strerror(-r));
    goto out;
  }
  o.h = curl_easy_init();
  hdrs = curl_slist_append(NULL, "Content-Type: application/octet-stream");
  if (!o.h || !hdrs) {
    r = -ENOMEM;
    goto out;
  }
  curl_easy_setopt(o.h, CURLOPT_URL, url);
  curl_easy_setopt(o.h, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(o.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(o.h, CURLOPT_TIMEOUT_MS, ONBOARD_TIMEOUT_MS);
  curl_easy_setopt(o.h, CURLOPT_CONNECTTIMEOUT_MS, ONBOARD_CONNECT_TIMEOUT_MS);
  curl_easy_setopt(o.h, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(o.h, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(o.h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
  curl_easy_setopt(o.h, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
  curl_easy_setopt(o.h, CURLOPT_SSL_CTX_DATA, &o);
  curl_easy_setopt(o.h, CURLOPT_PREREQFUNCTION, prereq_cb);
  curl_easy_setopt(o.h, CURLOPT_PREREQDATA, &o);
  curl_easy_setopt(o.h, CURLOPT_POST, 1L);
  curl_easy_setopt(o.h, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(o.h, CURLOPT_POSTFIELDSIZE, 0L);
  curl_easy_setopt(o.h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(o.h, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(o.h, CURLOPT_WRITEDATA, &o);
  CURLcode cc = curl_easy_perform(o.h);
  if (cc == CURLE_ABORTED_BY_CALLBACK || (!o.attested && o.reason != KMS_OK)) {
    r = str_err(err, errlen, -EPERM, "%s: the source KMS failed attestation: %s",
             kms_reason_code(o.reason), o.why);
    goto out;
  }
  if (cc != CURLE_OK) {
    r = str_err(err, errlen, -EIO, "calling %s: %s", url, curl_easy_strerror(cc));
    goto out;
  }
  long status = 0;
  curl_easy_getinfo(o.h, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    char msg[512];
    proto_error_text(&o.body, msg, sizeof(msg));
    r = str_err(err, errlen, -EPERM, "the source KMS refused (HTTP %ld): %s", status, msg);
    goto out;
  }
  resp = kms__kms_key_response__unpack(NULL, o.body.len, o.body.data);
  if (!resp || resp->n_keys < 1 || !resp->keys[0] || str_isempty(resp->keys[0]->ca_cert) ||
      str_isempty(resp->keys[0]->ca_key) || str_isempty(resp->temp_ca_cert) ||
      str_isempty(resp->temp_ca_key)) {
    r = str_err(err, errlen, -EBADMSG,
             "the source KMS's answer lacks keys or certificates (not a dstack-in-C KMS?)");
    goto out;
  }
  const Kms__KmsKeys *kk = resp->keys[0];
  r = kms_root_keys_from_pem(kk->ca_cert, strlen(kk->ca_cert), kk->ca_key, strlen(kk->ca_key),
                             kk->k256_key.data, kk->k256_key.len, resp->temp_ca_cert,
                             strlen(resp->temp_ca_cert), resp->temp_ca_key,
                             strlen(resp->temp_ca_key), ret, err, errlen);
out:
  if (resp)
    kms_reply_free(&resp->base, NULL);
  curl_slist_free_all(hdrs);
  if (o.h)
    curl_easy_cleanup(o.h);
  buf_free(&o.body);
  X509_free(o.cert);
  EVP_PKEY_free(o.key);
  ratls_verifier_free(o.v);
  return r;
}

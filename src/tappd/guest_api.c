/* Service DstackGuest on dstack.sock, mounted at the root (upstream dstack). */
#include <errno.h>
#include <string.h>

#include "tappd_api.h"
#include "dstack_guest.pb-c.h"
#include "net/prpc_json.h"

static int m_get_tls_key(void *ud, struct http_request *req, const ProtobufCMessage *in,
                         ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  const Dstack__GetTlsKeyArgs *a = (const Dstack__GetTlsKeyArgs *)in;
  struct tappd_cert_req cr = {
      .subject = a->subject,
      .alt_names = a->alt_names,
      .n_alt_names = a->n_alt_names,
      .usage_ra_tls = a->usage_ra_tls,
      .usage_server_auth = a->usage_server_auth,
      .usage_client_auth = a->usage_client_auth,
      .has_not_before = a->not_before != 0,
      .not_before = a->not_before,
      .has_not_after = a->not_after != 0,
      .not_after = a->not_after,
      .with_app_info = a->with_app_info,
  };
  struct tappd_tls_key k;
  int r = tappd_get_tls_key(ud, &cr, &k, ret_error);
  if (r < 0)
    return r;
  ProtobufCMessage *out = NULL;
  if ((r = prpc_message_new(&dstack__get_tls_key_response__descriptor, &out)) >= 0)
    r = api_fill_tls_key(out, &k);
  tappd_tls_key_free(&k);
  return prpc_reply_done(r, out, ret_out);
}

static int m_get_key(void *ud, struct http_request *req, const ProtobufCMessage *in,
                     ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  const Dstack__GetKeyArgs *a = (const Dstack__GetKeyArgs *)in;
  struct tappd_key k;
  int r = tappd_get_key(ud, a->path, a->purpose, a->algorithm, &k, ret_error);
  if (r < 0)
    return r;
  ProtobufCMessage *out = NULL;
  if ((r = prpc_message_new(&dstack__get_key_response__descriptor, &out)) >= 0 &&
      (r = api_set_bytes(out, "key", k.key, 32)) >= 0 &&
      (r = api_add_bytes(out, "signature_chain", k.sig, 65)) >= 0)
    r = api_add_bytes(out, "signature_chain", k.kms_sig.data, k.kms_sig.len);
  tappd_key_free(&k);
  return prpc_reply_done(r, out, ret_out);
}

static int m_get_quote(void *ud, struct http_request *req, const ProtobufCMessage *in,
                       ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  const Dstack__RawQuoteArgs *a = (const Dstack__RawQuoteArgs *)in;
  uint8_t rd[64];
  int r = tappd_pad_report_data(a->report_data.data, a->report_data.len, rd, ret_error);
  if (r < 0)
    return r;
  ProtobufCMessage *out = NULL;
  if ((r = prpc_message_new(&dstack__get_quote_response__descriptor, &out)) >= 0)
    r = api_fill_quote(ud, out, rd, ret_error);
  return prpc_reply_done(r, out, ret_out);
}

static int m_attest(void *ud, struct http_request *req, const ProtobufCMessage *in,
                    ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  const Dstack__RawQuoteArgs *a = (const Dstack__RawQuoteArgs *)in;
  uint8_t rd[64];
  int r = tappd_pad_report_data(a->report_data.data, a->report_data.len, rd, ret_error);
  if (r < 0)
    return r;
  _cleanup_buf_ struct buf att = BUF_INIT(BUF_MAX_QUOTE + TAPPD_EVENTLOG_MAX + 4096);
  if ((r = tappd_attest(ud, rd, &att, ret_error)) < 0)
    return r;
  ProtobufCMessage *out = NULL;
  if ((r = prpc_message_new(&dstack__attest_response__descriptor, &out)) >= 0)
    r = api_set_bytes(out, "attestation", att.data, att.len);
  return prpc_reply_done(r, out, ret_out);
}

static int m_emit_event(void *ud, struct http_request *req, const ProtobufCMessage *in,
                        ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  const Dstack__EmitEventArgs *a = (const Dstack__EmitEventArgs *)in;
  int r = tappd_emit_app_event(ud, a->event, a->payload.data, a->payload.len, ret_error);
  if (r < 0)
    return prpc_error(ret_error, r, "emitting the event: %s", strerror(-r));
  *ret_out = NULL;
  return 0;
}

static int m_info(void *ud, struct http_request *req, const ProtobufCMessage *in,
                  ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  (void)in;
  return api_info_reply(ud, false, &dstack__app_info__descriptor, ret_out, ret_error);
}

static int m_version(void *ud, struct http_request *req, const ProtobufCMessage *in,
                     ProtobufCMessage **ret_out, char **ret_error) {
  (void)ud;
  (void)req;
  (void)in;
  (void)ret_error;
  return api_version_reply(&dstack__worker_version__descriptor, ret_out);
}

static int m_sign(void *ud, struct http_request *req, const ProtobufCMessage *in,
                  ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  const Dstack__SignRequest *a = (const Dstack__SignRequest *)in;
  struct tappd_signature s;
  int r = tappd_sign(ud, a->algorithm, a->data.data, a->data.len, &s, ret_error);
  if (r < 0)
    return r;
  ProtobufCMessage *out = NULL;
  if ((r = prpc_message_new(&dstack__sign_response__descriptor, &out)) >= 0 &&
      (r = api_set_bytes(out, "signature", s.sig, 64)) >= 0 &&
      (r = api_add_bytes(out, "signature_chain", s.sig, 64)) >= 0 &&
      (r = api_add_bytes(out, "signature_chain", s.key.sig, 65)) >= 0 &&
      (r = api_add_bytes(out, "signature_chain", s.key.kms_sig.data, s.key.kms_sig.len)) >= 0)
    r = api_set_bytes(out, "public_key", s.pub, s.pub_len);
  tappd_signature_free(&s);
  return prpc_reply_done(r, out, ret_out);
}

static int m_verify(void *ud, struct http_request *req, const ProtobufCMessage *in,
                    ProtobufCMessage **ret_out, char **ret_error) {
  (void)ud;
  (void)req;
  const Dstack__VerifyRequest *a = (const Dstack__VerifyRequest *)in;
  bool valid;
  int r = tappd_verify(a->algorithm, a->data.data, a->data.len, a->signature.data,
                       a->signature.len, a->public_key.data, a->public_key.len, &valid,
                       ret_error);
  if (r < 0)
    return r;
  ProtobufCMessage *out = NULL;
  if ((r = prpc_message_new(&dstack__verify_response__descriptor, &out)) >= 0)
    r = api_set_bool(out, "valid", valid);
  return prpc_reply_done(r, out, ret_out);
}

int guest_api_methods(prpc_method_fn *table, size_t n, char *err, size_t errlen) {
  static const struct prpc_method_entry m[] = {
      {"GetTlsKey", m_get_tls_key}, {"GetKey", m_get_key},     {"GetQuote", m_get_quote},
      {"Attest", m_attest},         {"EmitEvent", m_emit_event}, {"Info", m_info},
      {"Version", m_version},       {"Sign", m_sign},          {"Verify", m_verify},
  };
  return prpc_methods_fill(&dstack__dstack_guest__descriptor, m, ARRAY_SIZE(m), table, n, err, errlen);
}

/* Service Tappd on tappd.sock (legacy API, upstream dstack). */
#include <errno.h>
#include <string.h>

#include "tappd_api.h"
#include "net/prpc_json.h"
#include "tappd_rpc.pb-c.h"

/* Finishes a handler: on success hands out the reply, else frees it. */
static int m_derive_key(void *ud, struct http_request *req, const ProtobufCMessage *in,
                        ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  struct tappd *t = ud;
  const Tappd__DeriveKeyArgs *a = (const Tappd__DeriveKeyArgs *)in;
  struct tappd_cert_req cr = {
      .subject = a->subject,
      .alt_names = a->alt_names,
      .n_alt_names = a->n_alt_names,
      .usage_ra_tls = a->usage_ra_tls,
      .usage_server_auth = a->usage_server_auth,
      .usage_client_auth = a->usage_client_auth,
  };
  struct tappd_tls_key k;
  int r = tappd_derive_key(t, a->path, a->random_seed, &cr, &k, ret_error);
  if (r < 0)
    return r;
  ProtobufCMessage *out = NULL;
  r = prpc_message_new(&tappd__derive_key_response__descriptor, &out);
  if (r >= 0)
    r = api_fill_tls_key(out, &k);
  tappd_tls_key_free(&k);
  return prpc_reply_done(r, out, ret_out);
}

static int m_derive_k256_key(void *ud, struct http_request *req, const ProtobufCMessage *in,
                             ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  struct tappd *t = ud;
  const Tappd__GetKeyArgs *a = (const Tappd__GetKeyArgs *)in;
  struct tappd_key k;
  int r = tappd_get_key(t, a->path, a->purpose, a->algorithm, &k, ret_error);
  if (r < 0)
    return r;
  ProtobufCMessage *out = NULL;
  if ((r = prpc_message_new(&tappd__derive_k256_key_response__descriptor, &out)) >= 0 &&
      (r = api_set_bytes(out, "k256_key", k.key, 32)) >= 0 &&
      (r = api_add_bytes(out, "k256_signature_chain", k.sig, 65)) >= 0)
    r = api_add_bytes(out, "k256_signature_chain", k.kms_sig.data, k.kms_sig.len);
  tappd_key_free(&k);
  return prpc_reply_done(r, out, ret_out);
}

static int quote_reply(struct tappd *t, const uint8_t *data, size_t len, const char *hash,
                       const char *prefix, ProtobufCMessage **ret_out, char **ret_error) {
  uint8_t rd[64];
  int r = tappd_report_data(hash, prefix, data, len, rd, ret_error);
  if (r < 0)
    return r;
  ProtobufCMessage *out = NULL;
  if ((r = prpc_message_new(&tappd__tdx_quote_response__descriptor, &out)) >= 0 &&
      (r = api_fill_quote(t, out, rd, ret_error)) >= 0 &&
      (r = api_set_string(out, "hash_algorithm", tappd_report_data_hash_name(hash))) >= 0)
    r = api_set_string(out, "prefix", tappd_report_data_prefix(hash, prefix));
  return prpc_reply_done(r, out, ret_out);
}

static int m_tdx_quote(void *ud, struct http_request *req, const ProtobufCMessage *in,
                       ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  const Tappd__TdxQuoteArgs *a = (const Tappd__TdxQuoteArgs *)in;
  return quote_reply(ud, a->report_data.data, a->report_data.len, a->hash_algorithm, a->prefix,
                     ret_out, ret_error);
}

static int m_raw_quote(void *ud, struct http_request *req, const ProtobufCMessage *in,
                       ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  const Tappd__RawQuoteArgs *a = (const Tappd__RawQuoteArgs *)in;
  return quote_reply(ud, a->report_data.data, a->report_data.len, "raw", "", ret_out, ret_error);
}

static int m_info(void *ud, struct http_request *req, const ProtobufCMessage *in,
                  ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  (void)in;
  return api_info_reply(ud, false, &tappd__app_info__descriptor, ret_out, ret_error);
}

static int m_version(void *ud, struct http_request *req, const ProtobufCMessage *in,
                     ProtobufCMessage **ret_out, char **ret_error) {
  (void)ud;
  (void)req;
  (void)in;
  (void)ret_error;
  return api_version_reply(&tappd__worker_version__descriptor, ret_out);
}

int tappd_api_methods(prpc_method_fn *table, size_t n, char *err, size_t errlen) {
  static const struct prpc_method_entry m[] = {
      {"DeriveKey", m_derive_key}, {"DeriveK256Key", m_derive_k256_key},
      {"TdxQuote", m_tdx_quote},   {"RawQuote", m_raw_quote},
      {"Info", m_info},            {"Version", m_version},
  };
  return prpc_methods_fill(&tappd__tappd__descriptor, m, ARRAY_SIZE(m), table, n, err, errlen);
}

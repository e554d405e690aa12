/* pRPC JSON codec on the tappd and dstack service messages. Input: one byte picking the message
 * type, one byte of flags, then the JSON text (also tried as a URL query string). Whatever
 * decodes must encode to JSON, decode again to a message with the same protobuf encoding, and
 * survive a protobuf round trip unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "dstack_guest.pb-c.h"
#include "net/prpc_json.h"
#include "tappd_rpc.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const descs[] = {
    &tappd__derive_key_args__descriptor,
    &tappd__derive_key_response__descriptor,
    &tappd__get_key_args__descriptor,
    &tappd__derive_k256_key_response__descriptor,
    &tappd__tdx_quote_args__descriptor,
    &tappd__raw_quote_args__descriptor,
    &tappd__tdx_quote_response__descriptor,
    &tappd__app_info__descriptor,
    &tappd__worker_version__descriptor,
    &tappd__worker_info__descriptor,
    &tappd__list_containers_response__descriptor,
    &tappd__container__descriptor,
    &tappd__get_attestation_for_app_key_request__descriptor,
    &tappd__get_quote_response__descriptor,
    &tappd__empty__descriptor,
    &dstack__get_tls_key_args__descriptor,
    &dstack__get_tls_key_response__descriptor,
    &dstack__get_key_args__descriptor,
    &dstack__get_key_response__descriptor,
    &dstack__raw_quote_args__descriptor,
    &dstack__get_quote_response__descriptor,
    &dstack__attest_response__descriptor,
    &dstack__emit_event_args__descriptor,
    &dstack__app_info__descriptor,
    &dstack__worker_version__descriptor,
    &dstack__sign_request__descriptor,
    &dstack__sign_response__descriptor,
    &dstack__verify_request__descriptor,
    &dstack__verify_response__descriptor,
};

static uint8_t *pack(const ProtobufCMessage *m, size_t *ret_len) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *p = malloc(n + 1);
  if (!p)
    abort();
  if (protobuf_c_message_pack(m, p) != n)
    abort();
  *ret_len = n;
  return p;
}

static void check_roundtrip(const ProtobufCMessage *m, unsigned flags) {
  json_t *j = NULL;
  if (prpc_message_to_json_full(m, flags, &j) < 0)
    abort(); /* anything decoded from JSON can be encoded */
  ProtobufCMessage *m2 = NULL;
  char err[128];
  if (prpc_json_to_message(m->descriptor, j, &m2, err, sizeof(err)) < 0)
    abort();
  size_t n1, n2;
  uint8_t *p1 = pack(m, &n1), *p2 = pack(m2, &n2);
  if (n1 != n2 || memcmp(p1, p2, n1) != 0)
    abort();

  /* Protobuf round trip gives the same JSON. */
  ProtobufCMessage *m3 = protobuf_c_message_unpack(m->descriptor, NULL, n1, p1);
  json_t *j3 = NULL;
  if (!m3 || prpc_message_to_json_full(m3, flags, &j3) < 0 || !json_equal(j, j3))
    abort();

  json_decref(j3);
  prpc_message_free(m3);
  free(p1);
  free(p2);
  prpc_message_free(m2);
  json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  const ProtobufCMessageDescriptor *d = descs[data[0] % (sizeof(descs) / sizeof(descs[0]))];
  unsigned flags = data[1] & PRPC_JSON_BYTES_0X;
  const char *text = (const char *)data + 2;
  size_t len = size - 2;
  char err[256];

  ProtobufCMessage *m = NULL;
  if (prpc_json_text_to_message(d, text, len, 1 << 20, data[1] & PRPC_JSON_SCALAR_STRINGS, &m,
                                err, sizeof(err)) == 0) {
    check_roundtrip(m, flags);
    prpc_message_free(m);
  } else if (m)
    abort();

  /* The same bytes as a query string. */
  char *q = malloc(len + 1);
  if (!q)
    return 0;
  memcpy(q, text, len);
  q[len] = 0;
  m = NULL;
  if (prpc_query_to_message(d, q, &m, err, sizeof(err)) == 0) {
    check_roundtrip(m, flags);
    prpc_message_free(m);
  } else if (m)
    abort();
  free(q);

  /* And as protobuf wire data: whatever protobuf-c accepts must encode to JSON, except
   * uint64 values past INT64_MAX and strings that are not UTF-8. */
  m = protobuf_c_message_unpack(d, NULL, len, (const uint8_t *)text);
  if (m) {
    json_t *j = NULL;
    int r = prpc_message_to_json_full(m, flags, &j);
    if (r < 0 && r != -ERANGE && r != -EBADMSG)
      abort();
    json_decref(j);
    prpc_message_free(m);
  }
  return 0;
}

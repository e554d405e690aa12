/* Service Worker on the external port (/prpc/Worker.*): Info, Version, GetAttestationForAppKey
 * through the pRPC dispatcher, and ListContainers on its own route (it waits for the Docker
 * engine without blocking the loop). */
#include <errno.h>
#include <string.h>

#include "tappd_api.h"
#include "base/base64.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/str.h"
#include "base/log.h"
#include "tappd_docker.h"
#include "net/http_server.h"
#include "net/prpc.h"
#include "net/prpc_json.h"
#include "tappd_server.h"
#include "tappd_rpc.pb-c.h"

static void version_header(struct http_request *req) {
  if (req)
    (void)http_reply_header(req, "X-App-Version", tappd_version());
}

static int m_info(void *ud, struct http_request *req, const ProtobufCMessage *in,
                  ProtobufCMessage **ret_out, char **ret_error) {
  (void)in;
  struct tappd_info info;
  int r = tappd_info(ud, true, &info, ret_error);
  if (r < 0)
    return r;
  ProtobufCMessage *out = NULL;
  _cleanup_free_ char *app_id = hex_encode_alloc(info.app_id.data, info.app_id.len);
  if (!app_id)
    r = -ENOMEM;
  if (r >= 0 && (r = prpc_message_new(&tappd__worker_info__descriptor, &out)) >= 0 &&
      (r = api_set_string(out, "app_id", app_id)) >= 0 &&
      (r = api_set_string(out, "app_cert", info.app_cert)) >= 0)
    r = api_set_string(out, "tcb_info", info.tcb_info);
  tappd_info_free(&info);
  version_header(req);
  return prpc_reply_done(r, out, ret_out);
}

static int m_version(void *ud, struct http_request *req, const ProtobufCMessage *in,
                     ProtobufCMessage **ret_out, char **ret_error) {
  (void)ud;
  (void)in;
  (void)ret_error;
  ProtobufCMessage *out = NULL;
  int r = prpc_message_new(&tappd__worker_version__descriptor, &out);
  if (r >= 0)
    r = api_fill_version(out);
  version_header(req);
  return prpc_reply_done(r, out, ret_out);
}

/* ListContainersResponse of the Docker list. */
static int containers_message(const struct docker_container *cs, size_t n,
                              ProtobufCMessage **ret_out) {
  ProtobufCMessage *out = NULL;
  int r = prpc_message_new(&tappd__list_containers_response__descriptor, &out);
  for (size_t i = 0; r >= 0 && i < n; i++) {
    ProtobufCMessage *c = NULL;
    if ((r = prpc_message_new(&tappd__container__descriptor, &c)) < 0)
      break;
    const struct docker_container *d = &cs[i];
    if ((r = api_set_string(c, "id", d->id)) >= 0 &&
        (r = api_set_string(c, "image", d->image)) >= 0 &&
        (r = api_set_string(c, "image_id", d->image_id)) >= 0 &&
        (r = api_set_string(c, "command", d->command)) >= 0 &&
        (r = api_set_int64(c, "created", d->created)) >= 0 &&
        (r = api_set_string(c, "state", d->state)) >= 0)
      r = api_set_string(c, "status", d->status);
    for (size_t k = 0; r >= 0 && d->names && d->names[k]; k++)
      r = api_add_string(c, "names", d->names[k]);
    if (r < 0) {
      prpc_message_free(c);
      break;
    }
    r = api_add_message(out, "containers", c);
  }
  return prpc_reply_done(r, out, ret_out);
}

static void list_containers_reply(struct tappd_server *srv, struct http_request *req, int err,
                                  const struct docker_container *cs, size_t n) {
  bool json = prpc_request_wants_json(req);
  version_header(req);
  if (err < 0) {
    _cleanup_free_ char *msg = str_printf("listing containers: %s", strerror(-err));
    prpc_reply_error(req, json, 400, msg ? msg : "listing containers failed");
    return;
  }
  ProtobufCMessage *out = NULL;
  _cleanup_buf_ struct buf body = BUF_INIT(BUF_MAX_FILE);
  int r = containers_message(cs, n, &out);
  if (r >= 0 && json) {
    _cleanup_json_ json_t *j = NULL;
    r = prpc_message_to_json_full(out, srv->api.worker_svcs[0].json_flags, &j);
    if (r >= 0)
      r = json_dump_buf(j, JSON_COMPACT, &body);
  } else if (r >= 0) {
    size_t len = protobuf_c_message_get_packed_size(out);
    r = buf_reserve(&body, len);
    if (r >= 0)
      body.len = protobuf_c_message_pack(out, body.data);
  }
  prpc_message_free(out);
  if (r < 0) {
    prpc_reply_error(req, json, 500, "failed to encode the reply");
    return;
  }
  (void)http_reply(req, 200, json ? "application/json" : "application/octet-stream", body.data,
                   body.len);
}

void worker_list_containers_http_handler(struct http_request *req, void *ud) {
  struct tappd_server *srv = ud;
  const char *m = http_request_method(req);
  if (!str_eq(http_request_path(req), "/prpc/Worker.ListContainers")) {
    prpc_http_handler(req, &srv->api.worker); /* another method: the dispatcher answers */
    return;
  }
  if (!str_eq(m, "GET") && !str_eq(m, "POST")) {
    prpc_reply_error(req, prpc_request_wants_json(req), 405, "only GET and POST are allowed");
    return;
  }
  /* The request type is Empty: the body is not looked at. */
  tappd_server_with_containers(srv, req, list_containers_reply);
}

/* Quote binding the app's "vms"/"signing" key: report data "dip1::<kind>-pk:<base64url>". */
static int m_get_attestation_for_app_key(void *ud, struct http_request *req,
                                         const ProtobufCMessage *in, ProtobufCMessage **ret_out,
                                         char **ret_error) {
  const Tappd__GetAttestationForAppKeyRequest *a = (const Tappd__GetAttestationForAppKeyRequest *)in;
  enum tappd_key_alg alg;
  const char *name = a->algorithm;
  if (str_eq_ptr(name, "secp256k1_prehashed"))
    name = "secp256k1";
  if (str_isempty(name) || tappd_key_alg_from_name(name, &alg) < 0)
    return prpc_error(ret_error, -EINVAL, "Unsupported algorithm");
  struct tappd_key k;
  int r = tappd_get_key(ud, "vms", "signing", name, &k, ret_error);
  if (r < 0)
    return r;
  _cleanup_buf_ struct buf b64 = BUF_INIT(128);
  _cleanup_buf_ struct buf rdtext = BUF_INIT(128);
  r = base64url_encode_buf(k.pub, k.pub_len, false, &b64);
  tappd_key_free(&k);
  if (r < 0 || (r = buf_terminate(&b64)) < 0)
    return r;
  if ((r = buf_printf(&rdtext, "dip1::%s-pk:%s",
                      alg == TAPPD_KEY_ED25519 ? "ed25519" : "secp256k1c",
                      (const char *)b64.data)) < 0)
    return r;
  uint8_t rd[64];
  if ((r = tappd_pad_report_data(rdtext.data, rdtext.len, rd, ret_error)) < 0)
    return r;
  ProtobufCMessage *out = NULL;
  if ((r = prpc_message_new(&tappd__get_quote_response__descriptor, &out)) >= 0)
    r = api_fill_quote(ud, out, rd, ret_error);
  version_header(req);
  return prpc_reply_done(r, out, ret_out);
}

int worker_api_methods(prpc_method_fn *table, size_t n, char *err, size_t errlen) {
  static const struct prpc_method_entry m[] = {
      {"Info", m_info},
      {"Version", m_version},
      {"GetAttestationForAppKey", m_get_attestation_for_app_key},
  };
  return prpc_methods_fill(&tappd__worker__descriptor, m, ARRAY_SIZE(m), table, n, err, errlen);
}

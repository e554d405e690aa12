/* GetAppEnvEncryptPubKey, answered from the KMS. */
#include "teepod_envkey.h"

#include <errno.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "crypto/envcrypt.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/offload.h"
#include "net/prpc.h"
#include "net/prpc_json.h"
#include "teepod.h"
#include "vmm_rpc.pb-c.h"

#define KMS_TIMEOUT_MS 10000
#define MAX_AGE_S 300
#define MAX_AHEAD_S 60

bool teepod_envkey_path(const char *path) {
  return str_eq(path, "/prpc/GetAppEnvEncryptPubKey") ||
         str_eq(path, "/prpc/Vmm.GetAppEnvEncryptPubKey") ||
         str_eq(path, "/prpc/Teepod.GetAppEnvEncryptPubKey");
}

int teepod_envkey_check(const uint8_t *app_id, size_t app_id_len, const uint8_t pub[32],
                        const uint8_t *sig, size_t sig_len, const uint8_t *sig_v1,
                        size_t sig_v1_len, uint64_t timestamp, uint64_t now,
                        const uint8_t k256_pub[33], const char **ret_why) {
  uint8_t signer[33];
  if (sig_v1_len == 65) {
    if (timestamp + MAX_AGE_S < now) {
      *ret_why = "the KMS's signature is too old";
      return -ESTALE;
    }
    if (timestamp > now + MAX_AHEAD_S) {
      *ret_why = "the KMS's signature is from the future";
      return -ESTALE;
    }
    if (envcrypt_pubkey_sig_recover(app_id, app_id_len, &timestamp, pub, sig_v1, signer) < 0 ||
        memcmp(signer, k256_pub, 33) != 0) {
      *ret_why = "signature_v1 is not the KMS root key's";
      return -EBADMSG;
    }
    return 0;
  }
  if (sig_len != 65) {
    *ret_why = "the KMS sent no signature";
    return -EBADMSG;
  }
  if (envcrypt_pubkey_sig_recover(app_id, app_id_len, NULL, pub, sig, signer) < 0 ||
      memcmp(signer, k256_pub, 33) != 0) {
    *ret_why = "signature is not the KMS root key's";
    return -EBADMSG;
  }
  return 0;
}

struct job {
  struct http_request *req; /* NULL once the client went away */
  char **pins;              /* hex root keys from the config; NULL: the KMS's own claim */
  bool json;
  uint8_t app_id[64];
  size_t app_id_len;
  char **urls;
  /* result */
  uint8_t pub[32], sig[65], sig_v1[65];
  size_t sig_len, sig_v1_len;
  uint64_t timestamp;
  char why[256];
};

static void job_free(struct job *j) {
  strv_free(j->urls);
  strv_free(j->pins);
  free(j);
}

static int get_hex(json_t *o, const char *key, uint8_t *out, size_t max, size_t *ret_len) {
  const char *s = NULL;
  if (json_get_str(o, key, &s) < 0 || !s)
    return -EBADMSG;
  _cleanup_buf_ struct buf b = BUF_INIT(max);
  if (hex_decode_buf(s, strlen(s), false, &b) < 0)
    return -EBADMSG;
  memcpy(out, b.data, b.len);
  *ret_len = b.len;
  return 0;
}

static int kms_call(const char *base, const char *method, const char *body, json_t **ret,
                    char *why, size_t whylen) {
  size_t bl = strlen(base);
  while (bl && base[bl - 1] == '/')
    bl--;
  _cleanup_free_ char *url = str_printf("%.*s/prpc/%s?json", (int)bl, base, method);
  if (!url)
    return -ENOMEM;
  /* the KMS serves RA-TLS; what makes the answer trustworthy is its root key's signature */
  struct http_client_opts o = {.timeout_ms = KMS_TIMEOUT_MS, .insecure_skip_verify = true,
                               .max_body = 64 * 1024};
  struct http_response resp = {0};
  int r = http_post(url, "application/json", body, strlen(body), &o, &resp);
  if (r < 0)
    return str_err(why, whylen, r, "KMS %s: %s", base, strerror(-r));
  if (resp.status != 200) {
    http_response_free(&resp);
    return str_err(why, whylen, -EIO, "KMS %s: %s answered HTTP %ld", base, method, resp.status);
  }
  r = json_parse_buf((const char *)resp.body.data, resp.body.len, 64 * 1024, ret);
  http_response_free(&resp);
  if (r < 0 || !json_is_object(*ret))
    return str_err(why, whylen, -EBADMSG, "KMS %s: %s: not a JSON object", base, method);
  return 0;
}

static int work(void *ud) {
  struct job *j = ud;
  int r = -ENOENT;
  snprintf(j->why, sizeof(j->why), "no KMS configured (kms_urls)");
  _cleanup_free_ char *app_hex = hex_encode_alloc(j->app_id, j->app_id_len);
  _cleanup_free_ char *body = app_hex ? str_printf("{\"app_id\":\"%s\"}", app_hex) : NULL;
  if (!body)
    return -ENOMEM;
  for (char **u = j->urls; u && *u; u++) {
    _cleanup_json_ json_t *rep = NULL, *meta = NULL;
    size_t n;
    uint8_t k256[33];
    if ((r = kms_call(*u, "GetAppEnvEncryptPubKey", body, &rep, j->why, sizeof(j->why))) < 0 ||
        (r = kms_call(*u, "GetMeta", "{}", &meta, j->why, sizeof(j->why))) < 0)
      continue;
    if (get_hex(rep, "public_key", j->pub, 32, &n) < 0 || n != 32 ||
        get_hex(meta, "k256_pubkey", k256, 33, &n) < 0 || n != 33) {
      r = str_err(j->why, sizeof(j->why), -EBADMSG, "KMS %s: malformed public key", *u);
      continue;
    }
    /* the KMS's own claim about its root key comes over TLS nobody verified: with pins it
     * must be one of them */
    if (j->pins) {
      _cleanup_free_ char *kh = hex_encode_alloc(k256, 33);
      if (!kh)
        return -ENOMEM;
      if (!strv_contains(j->pins, kh)) {
        r = str_err(j->why, sizeof(j->why), -EPERM,
                    "KMS %s: its root key is not one of [cvm] kms_pubkeys", *u);
        continue;
      }
    }
    if (get_hex(rep, "signature", j->sig, 65, &j->sig_len) < 0)
      j->sig_len = 0;
    if (get_hex(rep, "signature_v1", j->sig_v1, 65, &j->sig_v1_len) < 0)
      j->sig_v1_len = 0;
    j->timestamp = 0;
    json_get_u64(rep, "timestamp", &j->timestamp);
    const char *why = NULL;
    if ((r = teepod_envkey_check(j->app_id, j->app_id_len, j->pub, j->sig, j->sig_len, j->sig_v1,
                                 j->sig_v1_len, j->timestamp, (uint64_t)time(NULL), k256,
                                 &why)) < 0) {
      str_err(j->why, sizeof(j->why), r, "KMS %s: %s", *u, why);
      continue;
    }
    return 0;
  }
  return r;
}

static void on_client_gone(void *ud) {
  ((struct job *)ud)->req = NULL;
}

static void done(void *ud, int result) {
  struct job *j = ud;
  struct http_request *req = j->req;
  if (!req) {
    job_free(j);
    return;
  }
  http_request_on_close(req, NULL, NULL);
  if (result < 0) {
    log_warn("GetAppEnvEncryptPubKey: %s", j->why);
    prpc_reply_error(req, j->json, 400, j->why);
    job_free(j);
    return;
  }
  Vmm__PublicKeyResponse m;
  vmm__public_key_response__init(&m);
  m.timestamp = j->timestamp;
  int r;
  if ((r = prpc_bytes_set(&m.public_key, j->pub, 32)) < 0 ||
      (r = prpc_bytes_set(&m.signature, j->sig, j->sig_len)) < 0 ||
      (r = prpc_bytes_set(&m.signature_v1, j->sig_v1, j->sig_v1_len)) < 0) {
    prpc_reply_error(req, j->json, 500, "out of memory");
    goto out;
  }
  if (j->json) {
    _cleanup_buf_ struct buf b = BUF_INIT(64 * 1024);
    if (prpc_message_to_json_text(&m.base, 0, &b) < 0)
      prpc_reply_error(req, true, 500, "cannot encode the reply");
    else
      http_reply(req, 200, "application/json", b.data, b.len);
  } else {
    size_t n = protobuf_c_message_get_packed_size(&m.base);
    _cleanup_free_ uint8_t *p = malloc(n ? n : 1);
    if (!p)
      prpc_reply_error(req, false, 500, "out of memory");
    else {
      protobuf_c_message_pack(&m.base, p);
      http_reply(req, 200, "application/octet-stream", p, n);
    }
  }
out:
  free(m.public_key.data);
  free(m.signature.data);
  free(m.signature_v1.data);
  job_free(j);
}

void teepod_envkey_handle(struct teepod *tp, struct offload *off, struct http_request *req) {
  bool json = prpc_request_wants_json(req);
  const char *m = http_request_method(req);
  if (!str_eq(m, "POST") && !str_eq(m, "GET")) {
    prpc_reply_error(req, json, 405, "method not allowed");
    return;
  }
  ProtobufCMessage *in = NULL;
  char err[256] = "";
  int r;
  if (str_eq(m, "GET"))
    r = prpc_query_to_message(&vmm__app_id__descriptor, http_request_query(req), &in, err,
                              sizeof(err));
  else if (json) {
    struct slice body = http_request_body(req);
    r = prpc_json_text_to_message(&vmm__app_id__descriptor, (const char *)body.ptr, body.len,
                                  body.len, 0, &in, err, sizeof(err));
  } else {
    struct slice body = http_request_body(req);
    in = protobuf_c_message_unpack(&vmm__app_id__descriptor, NULL, body.len, body.ptr);
    r = in ? 0 : -EBADMSG;
  }
  if (r < 0) {
    prpc_reply_error(req, json, 400, err[0] ? err : "bad request");
    prpc_message_free(in);
    return;
  }
  const Vmm__AppId *a = (const Vmm__AppId *)in;
  if (a->app_id.len == 0 || a->app_id.len > 64) {
    prpc_message_free(in);
    prpc_reply_error(req, json, 400, "app_id must be 1..64 bytes");
    return;
  }
  struct job *j = calloc(1, sizeof(*j));
  if (!j) {
    prpc_message_free(in);
    prpc_reply_error(req, json, 500, "out of memory");
    return;
  }
  j->req = req;
  j->json = json;
  memcpy(j->app_id, a->app_id.data, a->app_id.len);
  j->app_id_len = a->app_id.len;
  prpc_message_free(in);
  if ((tp->cfg->kms_pubkeys && tp->cfg->kms_pubkeys[0] &&
       strv_copy(tp->cfg->kms_pubkeys, &j->pins) < 0) ||
      strv_copy(tp->cfg->kms_urls, &j->urls) < 0) {
    job_free(j);
    prpc_reply_error(req, json, 500, "out of memory");
    return;
  }
  http_request_on_close(req, on_client_gone, j);
  if ((r = offload_submit(off, work, done, j)) < 0) {
    http_request_on_close(req, NULL, NULL);
    job_free(j);
    prpc_reply_error(req, json, 503, "too many KMS requests in flight");
  }
}

/* The KMS pRPC methods. */
#include "kms_service.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/hex.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "kms_derive.h"
#include "kms_rpc.pb-c.h"
#include "net/http_server.h"
#include "net/prpc_json.h"
#include "kms_policy.h"
#include "kms_verify.h"

/* Apps whose id-only keys are kept (kms_key_cache_new). */
#define KEY_CACHE_APPS 256

int64_t kms_now(const struct kms *k) {
  return k && k->now ? k->now() : (int64_t)time(NULL);
}

static void warn_policy(const char *sec, const struct kms_policy *p) {
  if (p->allow_all)
    log_warn("POLICY [%s] allow_all = true: ANY attested TD passes the measurement and app "
             "checks. Dev only; never in production.",
             sec);
  if (p->allow_simulator)
    log_warn("POLICY [%s] allow_simulator = true: quotes from the simulated platform are "
             "accepted. Dev only.",
             sec);
}

int kms_new_with_keys(const struct kms_config *cfg, struct kms_root_keys *keys, struct kms **ret,
                      char *err, size_t errlen) {
  struct kms *k = calloc(1, sizeof(*k));
  if (!k)
    return -ENOMEM;
  k->cfg = cfg;
  k->keys = *keys;
  secure_wipe(keys, sizeof(*keys));
  k->started = time(NULL);
  int r = kms_verifier_new(cfg, true, &k->verifier, err, errlen);
  if (r >= 0 && (r = kms_key_cache_new(KEY_CACHE_APPS, &k->key_cache)) < 0 && err && errlen)
    snprintf(err, errlen, "out of memory");
  if (r < 0) {
    kms_free(k);
    return r;
  }
  warn_policy("core.allowed_mr", &cfg->apps);
  if (cfg->onboard_enabled)
    warn_policy("core.onboard.allowed_mr", &cfg->onboard);
  *ret = k;
  return 0;
}

int kms_new(const struct kms_config *cfg, struct kms **ret, char *err, size_t errlen) {
  struct kms_root_keys keys;
  int r = kms_root_keys_load(cfg, &keys, err, errlen);
  if (r < 0)
    return r;
  r = kms_new_with_keys(cfg, &keys, ret, err, errlen);
  kms_root_keys_free(&keys);
  return r;
}

void kms_free(struct kms *k) {
  if (!k)
    return;
  kms_root_keys_free(&k->keys);
  ratls_verifier_free(k->verifier);
  kms_key_cache_free(k->key_cache);
  free(k);
}

/* ---- reply helpers (every member malloc'd, as protobuf-c's unpacker lays messages out) ---- */

static int set_string(char **dst, const char *s) {
  if (!s || !*s)
    return 0; /* the default "" (protobuf-c's static empty string) stays */
  char *c = strdup(s);
  if (!c)
    return -ENOMEM;
  *dst = c;
  return 0;
}

static void wipe_bytes(ProtobufCBinaryData *b) {
  if (b->data)
    secure_wipe(b->data, b->len);
}

static void wipe_string(char *s) {
  if (s && s != protobuf_c_empty_string)
    secure_wipe(s, strlen(s));
}

void kms_reply_free(ProtobufCMessage *m, void *ud) {
  (void)ud;
  if (!m)
    return;
  if (m->descriptor == &kms__app_key_response__descriptor) {
    Kms__AppKeyResponse *r = (Kms__AppKeyResponse *)m;
    wipe_bytes(&r->disk_crypt_key);
    wipe_bytes(&r->env_crypt_key);
    wipe_bytes(&r->k256_key);
    wipe_string(r->app_key);
  } else if (m->descriptor == &kms__kms_key_response__descriptor) {
    Kms__KmsKeyResponse *r = (Kms__KmsKeyResponse *)m;
    wipe_string(r->temp_ca_key);
    for (size_t i = 0; i < r->n_keys; i++) {
      if (!r->keys[i])
        continue;
      wipe_string(r->keys[i]->ca_key);
      wipe_bytes(&r->keys[i]->k256_key);
    }
  }
  protobuf_c_message_free_unpacked(m, NULL);
}

/* Logs a refusal with the measured values and answers the client with the reason code. */
static int refuse(struct kms *k, struct http_request *req, const char *method,
                  enum kms_reason rr, const char *why, const struct ratls_peer *p,
                  const struct ratls_app_identity *id, char **ret_error) {
  _cleanup_buf_ struct buf d = BUF_INIT(4096);
  (void)ratls_peer_describe(p, id, &d);
  (void)buf_terminate(&d);
  k->stats.refused++;
  log_warn("%s from %s refused: %s: %s;%s", method, http_request_remote(req),
           kms_reason_code(rr), why, d.data ? (const char *)d.data : "");
  return prpc_error(ret_error, rr == KMS_R_INTERNAL ? -EIO : -EPERM, "%s: %s",
                    kms_reason_code(rr), why);
}

/* Verifies the peer and checks policy pol; identity required for apps, optional otherwise. */
static enum kms_reason check_peer(struct kms *k, struct http_request *req,
                                  const struct kms_policy *pol, bool need_id, struct ratls_peer *p,
                                  struct ratls_app_identity *id, bool *have_id, char *why,
                                  size_t whylen) {
  int64_t now = kms_now(k);
  *have_id = false;
  enum kms_reason rr = kms_verify_peer(k->verifier, http_request_peer_cert(req), now, p, why,
                                       whylen);
  if (rr != KMS_OK)
    return rr;
  char idwhy[256] = "";
  rr = kms_identity_from_log(k->cfg, &p->log, id, idwhy, sizeof(idwhy));
  if (rr == KMS_OK)
    *have_id = true;
  else if (need_id || !kms_reason_no_identity(rr)) {
    /* A log that breaks the boot-event rules is a forgery, identity needed or not. */
    snprintf(why, whylen, "%s", idwhy);
    return rr;
  }
  struct kms_policy_input in;
  kms_peer_policy_input(p, *have_id ? id : NULL, &in);
  return kms_policy_check(pol, &in, now, why, whylen);
}

/* check_peer, its CPU time counted as verification. */
static enum kms_reason check_peer_timed(struct kms *k, struct http_request *req,
                                        const struct kms_policy *pol, bool need_id,
                                        struct ratls_peer *p, struct ratls_app_identity *id,
                                        bool *have_id, char *why, size_t whylen) {
  uint64_t t0 = kms_cpu_ns();
  enum kms_reason rr = check_peer(k, req, pol, need_id, p, id, have_id, why, whylen);
  kms_phase_add(&k->metrics.verify, t0);
  return rr;
}

static int build_app_reply(struct kms *k, const struct ratls_peer *p,
                           const struct ratls_app_identity *id, const struct kms_app_keys *keys,
                           Kms__AppKeyResponse **ret) {
  _cleanup_(X509_freep) X509 *cert = NULL;
  _cleanup_buf_ struct buf cert_pem = BUF_INIT(256 * 1024);
  int r;
  if (!keys->app_key_pem.data)
    return -EINVAL;
  if ((r = kms_app_cert_build(&k->keys, id, keys->app_key, &p->att, k->cfg->subject_postfix,
                              &cert)) < 0 ||
      (r = x509_cert_to_pem(cert, &cert_pem)) < 0 || (r = buf_terminate(&cert_pem)) < 0)
    return r;
  Kms__AppKeyResponse *m = malloc(sizeof(*m));
  if (!m)
    return -ENOMEM;
  kms__app_key_response__init(m);
  const char *chain[2] = {(const char *)cert_pem.data, (const char *)k->keys.ca_cert_pem.data};
  if ((r = set_string(&m->ca_cert, (const char *)k->keys.ca_cert_pem.data)) < 0 ||
      (r = prpc_bytes_set(&m->disk_crypt_key, keys->disk_crypt_key.data, keys->disk_crypt_key.len)) <
          0 ||
      (r = prpc_bytes_set(&m->env_crypt_key, keys->env_crypt_key, 32)) < 0 ||
      (r = prpc_bytes_set(&m->k256_key, keys->k256_key, 32)) < 0 ||
      (r = prpc_bytes_set(&m->k256_signature, keys->k256_signature, 65)) < 0 ||
      (r = set_string(&m->tproxy_app_id, k->cfg->gateway_app_id)) < 0 ||
      (r = set_string(&m->gateway_app_id, k->cfg->gateway_app_id)) < 0 ||
      (r = prpc_bytes_set(&m->os_image_hash, id->os_image_hash, id->os_image_hash_len)) < 0 ||
      (r = set_string(&m->app_key, (const char *)keys->app_key_pem.data)) < 0)
    goto fail;
  m->certificate_chain = calloc(2, sizeof(char *));
  if (!m->certificate_chain) {
    r = -ENOMEM;
    goto fail;
  }
  for (size_t i = 0; i < 2; i++) {
    m->certificate_chain[i] = strdup(chain[i]);
    if (!m->certificate_chain[i]) {
      r = -ENOMEM;
      goto fail;
    }
    m->n_certificate_chain = i + 1;
  }
  *ret = m;
  return 0;
fail:
  kms_reply_free(&m->base, NULL);
  return r;
}

static int m_get_app_key(void *ud, struct http_request *req, const ProtobufCMessage *in,
                         ProtobufCMessage **ret_out, char **ret_error) {
  struct kms *k = ud;
  const Kms__GetAppKeyRequest *rq = (const Kms__GetAppKeyRequest *)in;
  if (rq->api_version > 1)
    return refuse(k, req, "GetAppKey", KMS_R_BAD_REQUEST, "unsupported api_version", NULL, NULL,
                  ret_error);
  struct ratls_peer p;
  struct ratls_app_identity id;
  bool have_id;
  char why[512] = "";
  ratls_peer_init(&p);
  enum kms_reason rr =
      check_peer_timed(k, req, &k->cfg->apps, true, &p, &id, &have_id, why, sizeof(why));
  if (rr != KMS_OK) {
    int r = refuse(k, req, "GetAppKey", rr, why, &p, have_id ? &id : NULL, ret_error);
    ratls_peer_free(&p);
    return r;
  }
  struct kms_app_keys keys;
  Kms__AppKeyResponse *m = NULL;
  uint64_t t0 = kms_cpu_ns();
  int r = kms_derive_app_keys_cached(k->key_cache, &k->keys, &id, &keys);
  if (r >= 0) {
    r = build_app_reply(k, &p, &id, &keys, &m);
    kms_app_keys_free(&keys);
  }
  kms_phase_add(&k->metrics.derive, t0);
  if (r < 0) {
    snprintf(why, sizeof(why), "deriving the keys: %s", strerror(-r));
    r = refuse(k, req, "GetAppKey", KMS_R_INTERNAL, why, &p, &id, ret_error);
    ratls_peer_free(&p);
    return r;
  }
  k->stats.granted++;
  log_info("GetAppKey from %s: keys for app %s (%s era, TCB %s%s)", http_request_remote(req),
           id.app_id_hex, id.era == RATLS_ERA_SEED ? "seed" : "newest",
           dcap_status_name(p.dcap.status), p.dcap.simulated ? ", simulated" : "");
  ratls_peer_free(&p);
  secure_wipe(&id, sizeof(id));
  *ret_out = &m->base;
  return 0;
}

static int m_get_env_pubkey(void *ud, struct http_request *req, const ProtobufCMessage *in,
                            ProtobufCMessage **ret_out, char **ret_error) {
  struct kms *k = ud;
  (void)req;
  const Kms__AppId *rq = (const Kms__AppId *)in;
  if (rq->app_id.len == 0 || rq->app_id.len > RATLS_APP_ID_MAX)
    return prpc_error(ret_error, -EINVAL, "%s: app_id must be 1..%d bytes",
                      kms_reason_code(KMS_R_BAD_REQUEST), RATLS_APP_ID_MAX);
  uint8_t pub[32], sig[65], sig1[65];
  uint64_t ts = (uint64_t)kms_now(k);
  uint64_t t0 = kms_cpu_ns();
  int r = kms_env_pubkey(&k->keys, rq->app_id.data, rq->app_id.len, ts, pub, sig, sig1);
  kms_phase_add(&k->metrics.derive, t0);
  if (r < 0)
    return prpc_error(ret_error, r, "internal: deriving the env key: %s", strerror(-r));
  Kms__PublicKeyResponse *m = malloc(sizeof(*m));
  if (!m)
    return -ENOMEM;
  kms__public_key_response__init(m);
  m->timestamp = ts;
  if ((r = prpc_bytes_set(&m->public_key, pub, 32)) < 0 || (r = prpc_bytes_set(&m->signature, sig, 65)) < 0 ||
      (r = prpc_bytes_set(&m->signature_v1, sig1, 65)) < 0) {
    kms_reply_free(&m->base, NULL);
    return r;
  }
  *ret_out = &m->base;
  return 0;
}

static int m_get_meta(void *ud, struct http_request *req, const ProtobufCMessage *in,
                      ProtobufCMessage **ret_out, char **ret_error) {
  struct kms *k = ud;
  (void)req;
  (void)in;
  (void)ret_error;
  Kms__GetMetaResponse *m = malloc(sizeof(*m));
  if (!m)
    return -ENOMEM;
  kms__get_meta_response__init(m);
  m->is_dev = k->cfg->dev;
  int r;
  if ((r = set_string(&m->ca_cert, (const char *)k->keys.ca_cert_pem.data)) < 0 ||
      (r = prpc_bytes_set(&m->k256_pubkey, k->keys.k256_pub, 33)) < 0 ||
      (r = set_string(&m->gateway_app_id, k->cfg->gateway_app_id)) < 0) {
    kms_reply_free(&m->base, NULL);
    return r;
  }
  *ret_out = &m->base;
  return 0;
}

static int m_get_temp_ca_cert(void *ud, struct http_request *req, const ProtobufCMessage *in,
                              ProtobufCMessage **ret_out, char **ret_error) {
  struct kms *k = ud;
  (void)req;
  (void)in;
  (void)ret_error;
  Kms__GetTempCaCertResponse *m = malloc(sizeof(*m));
  if (!m)
    return -ENOMEM;
  kms__get_temp_ca_cert_response__init(m);
  int r;
  if ((r = set_string(&m->temp_ca_cert, (const char *)k->keys.tmp_ca_cert_pem.data)) < 0 ||
      (r = set_string(&m->temp_ca_key, (const char *)k->keys.tmp_ca_key_pem.data)) < 0 ||
      (r = set_string(&m->ca_cert, (const char *)k->keys.ca_cert_pem.data)) < 0) {
    kms_reply_free(&m->base, NULL);
    return r;
  }
  *ret_out = &m->base;
  return 0;
}

static int build_kms_keys(struct kms *k, Kms__KmsKeyResponse **ret) {
  _cleanup_buf_ struct buf ca_key;
  buf_init_secret(&ca_key, 16 * 1024);
  int r = key_to_pkcs8_pem(k->keys.ca_key, &ca_key);
  if (r >= 0)
    r = buf_terminate(&ca_key);
  if (r < 0)
    return r;
  Kms__KmsKeyResponse *m = malloc(sizeof(*m));
  if (!m)
    return -ENOMEM;
  kms__kms_key_response__init(m);
  m->keys = calloc(1, sizeof(*m->keys));
  Kms__KmsKeys *kk = malloc(sizeof(*kk));
  if (!m->keys || !kk) {
    free(kk);
    r = -ENOMEM;
    goto fail;
  }
  kms__kms_keys__init(kk);
  m->keys[0] = kk;
  m->n_keys = 1;
  if ((r = set_string(&kk->ca_key, (const char *)ca_key.data)) < 0 ||
      (r = prpc_bytes_set(&kk->k256_key, k->keys.k256, 32)) < 0 ||
      (r = set_string(&kk->ca_cert, (const char *)k->keys.ca_cert_pem.data)) < 0 ||
      (r = set_string(&m->temp_ca_key, (const char *)k->keys.tmp_ca_key_pem.data)) < 0 ||
      (r = set_string(&m->temp_ca_cert, (const char *)k->keys.tmp_ca_cert_pem.data)) < 0)
    goto fail;
  *ret = m;
  return 0;
fail:
  kms_reply_free(&m->base, NULL);
  return r;
}

static int m_get_kms_key(void *ud, struct http_request *req, const ProtobufCMessage *in,
                         ProtobufCMessage **ret_out, char **ret_error) {
  struct kms *k = ud;
  (void)in;
  if (!k->cfg->onboard_enabled)
    return refuse(k, req, "GetKmsKey", KMS_R_ONBOARDING_DISABLED,
                  "this KMS does not hand out its root keys ([core.onboard] enabled = false)",
                  NULL, NULL, ret_error);
  struct ratls_peer p;
  struct ratls_app_identity id;
  bool have_id;
  char why[512] = "";
  ratls_peer_init(&p);
  enum kms_reason rr =
      check_peer_timed(k, req, &k->cfg->onboard, false, &p, &id, &have_id, why, sizeof(why));
  if (rr != KMS_OK) {
    int r = refuse(k, req, "GetKmsKey", rr, why, &p, have_id ? &id : NULL, ret_error);
    ratls_peer_free(&p);
    return r;
  }
  Kms__KmsKeyResponse *m = NULL;
  uint64_t t0 = kms_cpu_ns();
  int r = build_kms_keys(k, &m);
  kms_phase_add(&k->metrics.derive, t0);
  if (r < 0) {
    snprintf(why, sizeof(why), "encoding the keys: %s", strerror(-r));
    r = refuse(k, req, "GetKmsKey", KMS_R_INTERNAL, why, &p, NULL, ret_error);
    ratls_peer_free(&p);
    return r;
  }
  _cleanup_buf_ struct buf d = BUF_INIT(4096);
  (void)ratls_peer_describe(&p, have_id ? &id : NULL, &d);
  (void)buf_terminate(&d);
  k->stats.onboarded++;
  log_warn("GetKmsKey from %s: ROOT KEYS RELEASED to an attested replica;%s",
           http_request_remote(req), d.data ? (const char *)d.data : "");
  ratls_peer_free(&p);
  *ret_out = &m->base;
  return 0;
}

int kms_api_init(struct kms *k, struct kms_api *ret, char *err, size_t errlen) {
  const ProtobufCServiceDescriptor *d = &kms__kms__descriptor;
  /* Methods that hand out keys answer 0x-prefixed hex in JSON like upstream; the others not. */
  static const struct prpc_method_entry secret[] = {
      {"GetAppKey", m_get_app_key},
      {"GetKmsKey", m_get_kms_key},
  };
  static const struct prpc_method_entry public[] = {
      {"GetAppEnvEncryptPubKey", m_get_env_pubkey},
      {"GetMeta", m_get_meta},
      {"GetTempCaCert", m_get_temp_ca_cert},
  };
  memset(ret, 0, sizeof(*ret));
  int r = prpc_methods_fill(d, secret, ARRAY_SIZE(secret), ret->secret_methods,
                            ARRAY_SIZE(ret->secret_methods), err, errlen);
  if (r >= 0)
    r = prpc_methods_fill(d, public, ARRAY_SIZE(public), ret->public_methods,
                          ARRAY_SIZE(ret->public_methods), err, errlen);
  if (r < 0)
    return r;
  for (size_t i = 0; i < ARRAY_SIZE(ret->svcs); i++) {
    bool is_secret = i % 2 == 0;
    ret->svcs[i] = (struct prpc_service){
        .desc = d,
        .mount = i < 2 ? "/prpc/KMS." : "/prpc/",
        .methods = is_secret ? ret->secret_methods : ret->public_methods,
        .n_methods = d->n_methods,
        .ud = k,
        .json_flags = is_secret ? PRPC_JSON_BYTES_0X : 0,
        .free_out = kms_reply_free,
    };
  }
  ret->router = (struct prpc_router){.svcs = ret->svcs, .n = ARRAY_SIZE(ret->svcs)};
  return 0;
}

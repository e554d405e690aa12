/* The HTTPS listener, the KMS's own RA-TLS certificate, status and health pages. */
#include "kms_server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "attest/tee.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "daemon/rpc_server.h"
#include "net/http_tls.h"
#include "ratls/ratls.h"
#include "ratls/ratls_verify.h"

/* Collateral fetches run on these threads (each waits on the network, not the CPU); more at once
 * than KMS_FETCH_PENDING are not started (the verifier caps itself lower). */
#define KMS_FETCH_THREADS 4
#define KMS_FETCH_PENDING 64

int kms_tee_open(const struct kms_config *c, struct tee **ret) {
  if (str_eq_ptr(c->tee, "sim"))
    return tee_sim_new(c->sim_dir, ret);
  return tee_open(str_isempty(c->tee) ? NULL : c->tee, ret);
}

static bool is_ip(const char *s) {
  return strchr(s, ':') || strspn(s, "0123456789.") == strlen(s);
}

static int san_add(GENERAL_NAMES *gens, const char *name) {
  GENERAL_NAME *g = GENERAL_NAME_new();
  if (!g)
    return -ENOMEM;
  if (is_ip(name)) {
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
    if (!ip) {
      GENERAL_NAME_free(g);
      return -EINVAL;
    }
    GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
  } else {
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    if (!s || !ASN1_STRING_set(s, name, -1)) {
      ASN1_IA5STRING_free(s);
      GENERAL_NAME_free(g);
      return -ENOMEM;
    }
    GENERAL_NAME_set0_value(g, GEN_DNS, s);
  }
  if (!sk_GENERAL_NAME_push(gens, g)) {
    GENERAL_NAME_free(g);
    return -ENOMEM;
  }
  return 0;
}

/* DER of a SubjectAltName value: localhost, 127.0.0.1, ::1 and the extra names. */
static int san_der(char *const *alt_names, struct buf *out) {
  _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
  if (!gens)
    return -ENOMEM;
  const char *fixed[] = {"localhost", "127.0.0.1", "::1"};
  int r = 0;
  for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(fixed); i++)
    r = san_add(gens, fixed[i]);
  for (size_t i = 0; r >= 0 && alt_names && alt_names[i]; i++)
    r = san_add(gens, alt_names[i]);
  if (r < 0)
    return r;
  _cleanup_ossl_free_ unsigned char *der = NULL;
  int n = i2d_GENERAL_NAMES(gens, &der);
  if (n <= 0)
    return -EIO;
  return buf_append(out, der, (size_t)n);
}

/* A quote over report_data plus the event log that matches it (both under LOCK_SH). */
static int quote_and_log(struct tee *tee, const uint8_t rd[64], struct buf *quote,
                         struct buf *log) {
  _cleanup_free_ char *path = NULL;
  int fd = -1, r = tee_eventlog_path(tee, &path);
  if (r == -ENOTSUP)
    path = NULL;
  else if (r < 0)
    return r;
  if (path) {
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT)
      return -errno;
    if (fd >= 0 && flock(fd, LOCK_SH) < 0) {
      r = -errno;
      close(fd);
      return r;
    }
  }
  r = tee_get_quote(tee, rd, quote);
  if (r >= 0 && fd >= 0) {
    r = fd_read_all(fd, RATLS_MAX_EVENT_LOG, log);
    if (r == -EFBIG)
      r = -ENOBUFS;
  }
  if (fd >= 0) {
    (void)flock(fd, LOCK_UN);
    close(fd);
  }
  return r;
}

int kms_ratls_cert_make(struct tee *tee, const char *cn, char *const *alt_names, X509 *issuer,
                        EVP_PKEY *issuer_key, X509 **ret_cert, EVP_PKEY **ret_key) {
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  _cleanup_buf_ struct buf quote = BUF_INIT(RATLS_MAX_QUOTE);
  _cleanup_buf_ struct buf log = BUF_INIT(RATLS_MAX_EVENT_LOG);
  _cleanup_buf_ struct buf san = BUF_INIT(16 * 1024);
  _cleanup_buf_ struct buf q_ext = BUF_INIT(RATLS_MAX_QUOTE + 16);
  _cleanup_buf_ struct buf l_ext = BUF_INIT(RATLS_MAX_EVENT_LOG + 16);
  uint8_t rd[64];
  int r;
  if ((r = key_p256_generate(&key)) < 0 || (r = ratls_report_data_for_key(key, rd)) < 0 ||
      (r = quote_and_log(tee, rd, &quote, &log)) < 0 || (r = san_der(alt_names, &san)) < 0 ||
      (r = ratls_ext_wrap(quote.data, quote.len, &q_ext)) < 0 ||
      (r = ratls_ext_wrap(log.data, log.len, &l_ext)) < 0)
    return r;
  struct x509_ext exts[] = {
      {.oid = "2.5.29.17", .value = san.data, .len = san.len},
      {.oid = RATLS_OID_QUOTE, .value = q_ext.data, .len = q_ext.len},
      {.oid = RATLS_OID_EVENT_LOG, .value = l_ext.data, .len = l_ext.len},
  };
  struct x509_params p = {
      .subject_cn = cn,
      .subject_org = "Dstack",
      .key_usage = X509_KU_DIGITAL_SIGNATURE,
      .ext_key_usage = X509_EKU_SERVER_AUTH | X509_EKU_CLIENT_AUTH,
      .exts = exts,
      .n_exts = ARRAY_SIZE(exts),
  };
  r = x509_cert_build(&p, key, issuer, issuer ? issuer_key : key, ret_cert);
  if (r < 0)
    return r;
  *ret_key = TAKE_PTR(key);
  return 0;
}

static int load_chain(const char *path, STACK_OF(X509) **ret, char *err, size_t errlen) {
  _cleanup_buf_ struct buf pem = BUF_INIT(X509_INPUT_MAX);
  int r = file_read_all(path, X509_INPUT_MAX, &pem);
  if (r >= 0)
    r = x509_chain_from_pem(pem.data, pem.len, ret);
  if (r < 0)
    return str_err(err, errlen, r, "reading certificates from %s: %s", path, strerror(-r));
  return 0;
}

/* No session resumption: a CVM asks for its keys once per boot on a new connection, so tickets
 * and cached sessions would never be used (and issuing tickets costs a session copy each). */
static int tls_ctx(struct kms *k, SSL_CTX **ret, char *err, size_t errlen) {
  const struct kms_config *c = k->cfg;
  _cleanup_x509_chain_ STACK_OF(X509) *client_cas = NULL;
  int r;
  if (!str_isempty(c->mutual_ca_certs) &&
      (r = load_chain(c->mutual_ca_certs, &client_cas, err, errlen)) < 0)
    return r;
  if (c->tls_ra) {
    _cleanup_(tee_freep) struct tee *tee = NULL;
    _cleanup_(X509_freep) X509 *cert = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
    _cleanup_x509_chain_ STACK_OF(X509) *chain = sk_X509_new_null();
    if (!chain)
      return -ENOMEM;
    if ((r = kms_tee_open(c, &tee)) < 0)
      return str_err(err, errlen, r, "[tls] ra_tls: opening the TEE: %s", strerror(-r));
    const char *cn = c->tls_alt_names && c->tls_alt_names[0] ? c->tls_alt_names[0] : "localhost";
    r = kms_ratls_cert_make(tee, cn, c->tls_alt_names, k->keys.ca_cert, k->keys.ca_key, &cert,
                            &key);
    if (r < 0)
      return str_err(err, errlen, r, "[tls] ra_tls: making the RA-TLS server certificate: %s",
                  strerror(-r));
    if (!X509_up_ref(k->keys.ca_cert))
      return -ENOMEM;
    if (!sk_X509_push(chain, k->keys.ca_cert)) {
      X509_free(k->keys.ca_cert);
      return -ENOMEM;
    }
    struct http_tls_mem m = {.cert = cert, .chain = chain, .key = key, .client_cas = client_cas,
                             .client_cert_optional = !c->mutual_mandatory,
                             .no_resumption = true};
    r = http_tls_ctx_new_mem(&m, ret);
  } else {
    struct http_tls_files f = {.cert_file = c->tls_certs, .key_file = c->tls_key,
                               .client_ca_file = str_isempty(c->mutual_ca_certs)
                                                     ? NULL
                                                     : c->mutual_ca_certs,
                               .client_cert_optional = !c->mutual_mandatory,
                               .no_resumption = true};
    r = http_tls_ctx_new(&f, ret);
  }
  if (r < 0)
    return str_err(err, errlen, r, "[tls] setting up TLS: %s", strerror(-r));
  /* Ask for client certificates always: chained to the client CAs, or self-signed RA-TLS. */
  SSL_CTX_set_verify(*ret,
                     SSL_VERIFY_PEER | (c->mutual_mandatory ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                     ratls_tls_verify_cb);
  SSL_CTX_set_verify_depth(*ret, 8);
  return 0;
}

int kms_status_render(const struct kms *k, struct buf *out) {
  uint8_t fp[32];
  char fph[65], k256[67];
  _cleanup_buf_ struct buf der = BUF_INIT(64 * 1024);
  int r = x509_cert_to_der(k->keys.ca_cert, &der);
  if (r < 0)
    return r;
  sha256(der.data, der.len, fp);
  hex_encode(fp, sizeof(fp), fph);
  hex_encode(k->keys.k256_pub, sizeof(k->keys.k256_pub), k256);
  long up = (long)(time(NULL) - k->started);
  return buf_printf(out,
                    "KMS Server is running!\n"
                    "\n"
                    "mode:                 %s\n"
                    "root CA (SHA-256):    %s\n"
                    "root k256 public key: %s\n"
                    "uptime:               %lds\n"
                    "keys granted:         %llu\n"
                    "requests refused:     %llu\n"
                    "replicas onboarded:   %llu\n"
                    "onboarding:           %s\n"
                    "collateral:           %s%s%s\n",
                    k->cfg->dev ? "dev (simulated TDX trusted)" : "production", fph, k256, up,
                    (unsigned long long)k->stats.granted, (unsigned long long)k->stats.refused,
                    (unsigned long long)k->stats.onboarded,
                    k->cfg->onboard_enabled ? "enabled" : "disabled",
                    str_isempty(k->cfg->pccs_url) ? "no PCCS" : k->cfg->pccs_url,
                    kms_config_uses_simulator(k->cfg) ? ", simulator " : "",
                    kms_config_uses_simulator(k->cfg) ? k->cfg->simulator_dir : "");
}

static int status_page(void *ud, struct buf *out, const char **ret_ctype) {
  struct kms_server *s = ud;
  *ret_ctype = "text/plain; charset=utf-8";
  return kms_status_render(s->k, out);
}

static int health_fields(void *ud, json_t *j) {
  struct kms_server *s = ud;
  int r = json_set_bool(j, "keys_loaded", true);
  if (r >= 0)
    r = json_set_u64(j, "uptime", (uint64_t)(time(NULL) - s->k->started));
  return r < 0 ? r : 1;
}

static int metrics_page(void *ud, struct buf *out) {
  struct kms_server *s = ud;
  return kms_metrics_render(&s->k->metrics, &s->k->stats, (int64_t)s->k->started, out);
}

static int64_t server_now(void *ud) {
  return kms_now(ud);
}

int kms_server_new(struct kms *k, struct event_base *base, FILE *out, struct kms_server **ret,
                   char *err, size_t errlen) {
  struct kms_server *s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  s->k = k;
  const struct kms_config *c = k->cfg;
  int r = kms_api_init(k, &s->api, err, errlen);
  if (r < 0)
    goto fail;
  if ((r = tls_ctx(k, &s->tls, err, errlen)) < 0)
    goto fail;
  if ((r = kms_metrics_attach_tls(s->tls, &k->metrics)) < 0) {
    str_err(err, errlen, r, "setting up TLS metrics: %s", strerror(-r));
    goto fail;
  }
  struct rpc_server_config rc = {
      .address = c->address,
      .port = c->port,
      .tls = s->tls,
      .http = {.max_body = 1024 * 1024,
               .request_timeout_s = c->request_timeout,
               .max_conns = c->max_conns,
               .max_conns_per_source = c->max_conns_per_source,
               .handshake_timeout_s = c->handshake_timeout},
      .router = &s->api.router,
      .verifier = k->verifier,
      .now = server_now,
      .now_ud = k,
      /* without a PCCS there is nothing to fetch */
      .fetch_threads = str_isempty(c->pccs_url) ? 0 : KMS_FETCH_THREADS,
      .fetch_pending = KMS_FETCH_PENDING,
      .pages = {.index = status_page, .index_max = 16 * 1024, .health = health_fields,
                .metrics = metrics_page, .metrics_max = 64 * 1024, .ud = s},
  };
  if ((r = rpc_server_new(base, &rc, out, &s->rpc, err, errlen)) < 0)
    goto fail;
  s->port = rpc_server_port(s->rpc);
  *ret = s;
  return 0;
fail:
  kms_server_free(s);
  return r;
}

void kms_server_free(struct kms_server *s) {
  if (!s)
    return;
  rpc_server_free(s->rpc); /* before the verifier (kms_free) */
  if (s->tls)
    SSL_CTX_free(s->tls);
  free(s);
}

/* Step 5: join the gateway (tproxy). An RA-TLS certificate of this TD issued by the app CA (the
 * KMS's app key and certificate) proves to tproxy which app this is; RegisterCvm hands back a
 * WireGuard address and the server's key, and the interface comes up with one peer per gateway
 * server. A gateway that cannot be reached is reported, with retries; the app still starts. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "attest/tee.h"
#include "base/base64.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "net/http_client.h"
#include "ratls/ratls.h"
#include "tboot.h"

#define WG_IFACE "dstack-wg0"
#define GW_ROUNDS 4 /* with 10 s per call: about a minute per gateway before giving up */
#define IP_TOOL "/sbin/ip"
#define WG_TOOL "/usr/bin/wg"

static int run(const char *const *argv, char *why, size_t whylen) {
  _cleanup_buf_ struct buf out = BUF_INIT(8192);
  struct tboot_cmd c = {.argv = argv, .timeout_ms = 20000, .output = &out};
  int r = tboot_cmd_run(&c, NULL);
  if (r < 0) {
    char text[301];
    tboot_printable(out.data, out.len, text, sizeof(text));
    snprintf(why, whylen, "%s %s: %s", argv[0], argv[1], out.len ? text : strerror(-r));
  }
  return r;
}

/* The app's TLS client certificate: RA-TLS, issued by the app CA; chain file = leaf + app CA. */
static int app_cert(struct tboot *t, char **ret_chain, char **ret_key, char *why, size_t whylen) {
  const char *app_key_pem;
  json_t *chain = json_object_get(t->kms_reply, "certificate_chain");
  const char *ca_pem = json_string_value(json_array_get(chain, 0));
  if (json_get_str(t->kms_reply, "app_key", &app_key_pem) < 0 || !app_key_pem || !ca_pem) {
    snprintf(why, whylen, "no app CA in the KMS reply");
    return -ENOENT;
  }
  _cleanup_(X509_freep) X509 *ca = NULL, *cert = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = NULL, *key = NULL;
  int r = x509_cert_from_pem(ca_pem, strlen(ca_pem), &ca);
  if (r >= 0)
    r = key_from_pem_or_der(app_key_pem, strlen(app_key_pem), &ca_key);
  if (r < 0) {
    snprintf(why, whylen, "the app CA does not parse");
    return r;
  }
  char app_id[41];
  hex_encode(t->app.app_id, 20, app_id);
  struct ratls_cert_params p;
  ratls_cert_params_default(&p);
  p.subject_cn = app_id;
  if ((r = ratls_cert_generate(&p, t->tee, ca, ca_key, &cert, &key)) < 0) {
    snprintf(why, whylen, "making the app's RA-TLS certificate: %s", strerror(-r));
    return r;
  }
  _cleanup_buf_ struct buf cpem = BUF_INIT(512 * 1024), kpem = BUF_INIT_SECRET(16 * 1024);
  _cleanup_free_ char *cp = str_printf("%s/gateway-client.crt", t->paths->work);
  _cleanup_free_ char *kp = str_printf("%s/gateway-client.key", t->paths->work);
  if (!cp || !kp)
    return -ENOMEM;
  if ((r = x509_cert_to_pem(cert, &cpem)) < 0 || (r = buf_append_str(&cpem, ca_pem)) < 0 ||
      (r = key_to_pkcs8_pem(key, &kpem)) < 0 ||
      (r = file_write_atomic(cp, cpem.data, cpem.len, 0600)) < 0 ||
      (r = file_write_atomic(kp, kpem.data, kpem.len, 0600)) < 0) {
    snprintf(why, whylen, "writing the app certificate: %s", strerror(-r));
    return r;
  }
  *ret_chain = TAKE_PTR(cp);
  *ret_key = TAKE_PTR(kp);
  return 0;
}

struct wg_keys {
  char priv[64], pub[64]; /* base64 */
};

static int wg_keys_new(struct wg_keys *k) {
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  uint8_t priv[32], pub[32];
  _cleanup_buf_ struct buf a = BUF_INIT_SECRET(64), b = BUF_INIT(64);
  int r = key_x25519_generate(&key);
  if (r >= 0)
    r = key_raw_private(key, priv);
  if (r >= 0)
    r = key_raw_public(key, pub);
  if (r >= 0)
    r = base64_encode_buf(priv, 32, &a);
  if (r >= 0)
    r = base64_encode_buf(pub, 32, &b);
  if (r >= 0 && (a.len >= sizeof(k->priv) || b.len >= sizeof(k->pub)))
    r = -EINVAL;
  if (r >= 0) {
    memcpy(k->priv, a.data, a.len);
    k->priv[a.len] = 0;
    memcpy(k->pub, b.data, b.len);
    k->pub[b.len] = 0;
  }
  explicit_bzero(priv, sizeof(priv));
  return r;
}

/* A value from the reply that goes into wg's config or ip's argv: printable, no spaces. */
static bool safe_token(const char *s, size_t max) {
  if (!s || !*s || strlen(s) > max)
    return false;
  for (const char *p = s; *p; p++)
    if (*p <= ' ' || *p >= 0x7f || *p == '#' || *p == '=')
      return false;
  return true;
}

static bool ipv4(const char *s) {
  struct in_addr a;
  return s && strlen(s) <= 15 && inet_pton(AF_INET, s, &a) == 1;
}

/* host:port, the host a name or an IPv4 address (no list, no spaces) */
static bool endpoint_ok(const char *s) {
  if (!safe_token(s, 261) || strchr(s, ',') || strchr(s, '/'))
    return false;
  const char *c = strrchr(s, ':');
  if (!c || c == s || !c[1] || strlen(c + 1) > 5)
    return false;
  for (const char *p = c + 1; *p; p++)
    if (*p < '0' || *p > '9')
      return false;
  return atoi(c + 1) > 0 && atoi(c + 1) < 65536;
}

static bool safe_b64(const char *s) {
  if (!s || strlen(s) != 44 || s[43] != '=')
    return false;
  for (int i = 0; i < 43; i++)
    if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '/'))
      return false;
  return true;
}

static int wg_up(struct tboot *t, const struct wg_keys *k, json_t *wg, char *why, size_t whylen) {
  const char *client_ip = NULL, *server_ip = NULL, *server_pub = NULL, *endpoint = NULL;
  json_get_str(wg, "client_ip", &client_ip);
  json_get_str(wg, "server_ip", &server_ip);
  json_get_str(wg, "server_public_key", &server_pub);
  json_get_str(wg, "server_endpoint", &endpoint);
  if (!ipv4(client_ip) || !ipv4(server_ip) || !safe_b64(server_pub) || !endpoint_ok(endpoint)) {
    snprintf(why, whylen, "RegisterCvm: the reply's wg settings are missing or malformed");
    return -EBADMSG;
  }
  _cleanup_buf_ struct buf conf = BUF_INIT_SECRET(8192);
  int r = buf_printf(&conf, "[Interface]\nPrivateKey = %s\n\n[Peer]\nPublicKey = %s\n"
                     "AllowedIPs = %s/32\nEndpoint = %s\nPersistentKeepalive = 25\n",
                     k->priv, server_pub, server_ip, endpoint);
  json_t *servers = json_object_get(wg, "servers");
  for (size_t i = 0; r >= 0 && json_is_array(servers) && i < json_array_size(servers) && i < 8; i++) {
    json_t *s = json_array_get(servers, i);
    const char *pk = NULL, *ip = NULL, *ep = NULL;
    json_get_str(s, "pk", &pk);
    json_get_str(s, "ip", &ip);
    json_get_str(s, "endpoint", &ep);
    if (!safe_b64(pk) || !ipv4(ip) || !endpoint_ok(ep) || str_eq(pk, server_pub))
      continue;
    r = buf_printf(&conf, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\nEndpoint = %s\n"
                   "PersistentKeepalive = 25\n", pk, ip, ep);
  }
  _cleanup_free_ char *path = str_printf("%s/%s.conf", t->paths->work, WG_IFACE);
  _cleanup_free_ char *addr = str_printf("%s/24", client_ip);
  if (r < 0 || !path || !addr)
    return -ENOMEM;
  if ((r = file_write_atomic(path, conf.data, conf.len, 0600)) < 0) {
    snprintf(why, whylen, "writing %s: %s", path, strerror(-r));
    return r;
  }
  const char *del[] = {IP_TOOL, "link", "del", WG_IFACE, NULL};
  _cleanup_buf_ struct buf del_out = BUF_INIT(4096);
  struct tboot_cmd c = {.argv = del, .timeout_ms = 10000, .output = &del_out};
  (void)tboot_cmd_run(&c, NULL);
  const char *add[] = {IP_TOOL, "link", "add", WG_IFACE, "type", "wireguard", NULL};
  const char *set[] = {WG_TOOL, "setconf", WG_IFACE, path, NULL};
  const char *ad[] = {IP_TOOL, "address", "add", addr, "dev", WG_IFACE, NULL};
  const char *up[] = {IP_TOOL, "link", "set", WG_IFACE, "up", NULL};
  r = run(add, why, whylen);
  if (r >= 0)
    r = run(set, why, whylen);
  (void)unlink(path); /* the key lives in the kernel only, whatever happened */
  if (r >= 0)
    r = run(ad, why, whylen);
  if (r >= 0)
    r = run(up, why, whylen);
  if (r < 0)
    return r;
  t->wg_ip = strdup(client_ip);
  return 0;
}

static int try_gateway(struct tboot *t, const char *url, const char *chain, const char *key,
                       const char *root_path, char *why, size_t whylen) {
  if (!str_startswith(url, "https://")) {
    snprintf(why, whylen, "%s: a gateway is reached over https only", url);
    return -EPROTO;
  }
  struct wg_keys k;
  _cleanup_json_ json_t *j = NULL;
  _cleanup_free_ char *body = NULL;
  int r = wg_keys_new(&k);
  if (r < 0)
    return r;
  if (!(body = str_printf("{\"client_public_key\":\"%s\"}", k.pub))) {
    r = -ENOMEM;
    goto out;
  }
  struct http_client_opts o = {.timeout_ms = 10000, .connect_timeout_ms = 5000,
                               .max_body = 256 * 1024, .ca_file = root_path, .ca_pins_peer = true,
                               .client_cert_file = chain, .client_key_file = key};
  if ((r = tboot_post_json(url, "Tproxy.RegisterCvm", body, &o, &j, why, whylen)) < 0)
    goto out;
  if (!json_is_object(json_object_get(j, "wg"))) {
    snprintf(why, whylen, "RegisterCvm at %s: the reply has no wg settings", url);
    r = -EBADMSG;
    goto out;
  }
  r = wg_up(t, &k, json_object_get(j, "wg"), why, whylen);
out:
  explicit_bzero(&k, sizeof(k));
  return r;
}

int tboot_gateway_setup(struct tboot *t) {
  char why[512] = "";
  if (!t->have_keys)
    return tboot_fail(t, -ENOKEY, "gateway: no app keys (kms_enabled is false), not registering");
  if (t->sys.n_gateway_urls == 0)
    return tboot_fail(t, -ENOENT, "gateway_enabled, but .sys-config.json names no gateway_urls");
  _cleanup_free_ char *chain = NULL, *key = NULL;
  _cleanup_free_ char *root = str_printf("%s/kms-root-ca.crt", t->paths->work);
  if (!root)
    return -ENOMEM;
  int r = app_cert(t, &chain, &key, why, sizeof(why));
  if (r < 0)
    return tboot_fail(t, r, "gateway: %s", why);
  const char *const mods[] = {"wireguard", NULL};
  tboot_modules_load(mods);
  unsigned delay = 1;
  for (unsigned round = 0; round < GW_ROUNDS; round++) {
    for (size_t i = 0; i < t->sys.n_gateway_urls; i++) {
      tboot_progress(t, "registering with the gateway %s", t->sys.gateway_urls[i]);
      r = try_gateway(t, t->sys.gateway_urls[i], chain, key, root, why, sizeof(why));
      if (r >= 0) {
        t->gateway_ready = true;
        tboot_progress(t, "WireGuard up, address %s", t->wg_ip ? t->wg_ip : "?");
        return 0;
      }
      log_warn("%s", why);
    }
    if (round + 1 < GW_ROUNDS) {
      struct timespec ts = {delay, 0};
      nanosleep(&ts, NULL);
      delay = MIN(delay * 2, 8u);
    }
  }
  return tboot_fail(t, r, "gateway: %s (the app starts without it)", why);
}

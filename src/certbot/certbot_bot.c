/* The bot: account, workdir, renewal, quotes. */
#include "certbot_bot.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attest/eventlog.h"
#include "attest/quoted_key.h"
#include "attest/tee.h"
#include "base/base64.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "certbot_acme.h"
#include "certbot_caa.h"
#include "certbot_dns_cf.h"
#include "certbot_dns_rfc2136.h"
#include "certbot_names.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"

#define CRED_MAX ((size_t)64 * 1024)
#define CERT_MAX ((size_t)1024 * 1024)

int certbot_dns_open(const struct certbot_config *c, struct certbot_dns **ret, char *err,
                     size_t errlen) {
  if (str_eq(c->dns_provider, "rfc2136")) {
    struct certbot_rfc2136_opts o = {
        .server = c->rfc2136.server,
        .port = c->rfc2136.port,
        .zone = c->rfc2136.zone,
        .tsig_key_name = c->rfc2136.tsig_key_name,
        .tsig_algorithm = c->rfc2136.tsig_algorithm,
        .tsig_secret = c->rfc2136.tsig_secret,
    };
    return certbot_dns_rfc2136_new(&o, ret, err, errlen);
  }
  if (str_eq(c->dns_provider, "cloudflare")) {
    struct certbot_dns_cf_opts o = {
        .api_url = c->cf_api_url,
        .api_token = c->cf_api_token,
        .zone_id = c->cf_zone_id,
        .name_servers = strv_length(c->cf_name_servers) ? c->cf_name_servers : NULL,
    };
    return certbot_dns_cf_new(&o, ret, err, errlen);
  }
  return str_err(err, errlen, -EOPNOTSUPP, "dns_provider %s is not available in this build",
                 c->dns_provider);
}

static char *wpath(const struct certbot_config *c, const char *name) {
  return str_printf("%s/%s", c->workdir, name);
}

/* Writes the evidence of attest/quoted_key.h ({"quote":"<hex>","event_log":"<json text>"})
 * for report_data to path. */
static int quote_write(struct tee *tee, const char *path, const uint8_t rd[64]) {
  _cleanup_buf_ struct buf q = BUF_INIT(QUOTED_KEY_MAX_QUOTE), ev = BUF_INIT(EVENTLOG_MAX_LOG),
                           text = BUF_INIT(QUOTED_KEY_MAX_EVENT_LOG),
                           out = BUF_INIT(QUOTED_KEY_MAX_TEXT);
  _cleanup_free_ char *elpath = NULL;
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  int r;
  if ((r = tee_get_quote(tee, rd, &q)) < 0)
    return r;
  if (tee_eventlog_path(tee, &elpath) < 0 || file_read_all(elpath, EVENTLOG_MAX_LOG, &ev) < 0 ||
      eventlog_parse_json((const char *)ev.data, ev.len, &log) < 0 ||
      eventlog_to_json_text(&log, 0, &text) < 0) {
    buf_reset(&text);
    if ((r = buf_append_str(&text, "[]")) < 0)
      return r;
  }
  if ((r = quoted_key_evidence_format(q.data, q.len, (const char *)text.data, text.len, &out)) <
      0)
    return r;
  return file_write_atomic(path, out.data, out.len, 0644);
}

static int key_load(const char *path, EVP_PKEY **ret) {
  _cleanup_buf_ struct buf b = BUF_INIT_SECRET(KEY_INPUT_MAX);
  int r = file_read_capped(path, KEY_INPUT_MAX, true, &b);
  if (r < 0)
    return r;
  return key_from_pem_or_der(b.data, b.len, ret);
}

/* credentials.json: {"account_id": URL, "credentials": {"id": URL, "key_pkcs8": base64url
 * (no padding) of the PKCS#8 DER of the P-256 account key, "directory": acme_url}}. */
static int creds_load(const struct certbot_config *c, EVP_PKEY **ret_key, char **ret_kid) {
  _cleanup_free_ char *path = wpath(c, "credentials.json");
  _cleanup_buf_ struct buf b = BUF_INIT_SECRET(CRED_MAX), der = BUF_INIT_SECRET(CRED_MAX);
  _cleanup_json_ json_t *j = NULL;
  json_t *cr = NULL;
  const char *id = NULL, *k = NULL;
  int r;
  if (!path)
    return -ENOMEM;
  if ((r = file_read_capped(path, CRED_MAX, true, &b)) < 0)
    return r;
  if ((r = json_parse_buf((const char *)b.data, b.len, CRED_MAX, &j)) < 0 ||
      json_get_str(j, "account_id", &id) < 0 || json_get_object(j, "credentials", &cr) < 0 ||
      json_get_str(cr, "key_pkcs8", &k) < 0)
    return -EBADMSG;
  if ((r = base64url_decode_buf(k, strlen(k), &der)) < 0 ||
      (r = key_from_pem_or_der(der.data, der.len, ret_key)) < 0)
    return -EBADMSG;
  if (key_get_type(*ret_key) != KEY_TYPE_P256) {
    EVP_PKEY_free(*ret_key);
    *ret_key = NULL;
    return -EBADMSG;
  }
  if (!(*ret_kid = strdup(id))) {
    EVP_PKEY_free(*ret_key);
    *ret_key = NULL;
    return -ENOMEM;
  }
  return 0;
}

static int creds_store(const struct certbot_config *c, EVP_PKEY *key, const char *kid) {
  _cleanup_free_ char *path = wpath(c, "credentials.json");
  _cleanup_buf_ struct buf der = BUF_INIT_SECRET(CRED_MAX), b64 = BUF_INIT_SECRET(CRED_MAX);
  _cleanup_json_ json_t *j = NULL;
  int r;
  if (!path)
    return -ENOMEM;
  if ((r = key_to_pkcs8_der(key, &der)) < 0 ||
      (r = base64url_encode_buf(der.data, der.len, false, &b64)) < 0 ||
      (r = buf_terminate(&b64)) < 0)
    return r;
  j = json_pack("{s:s,s:{s:s,s:s,s:s}}", "account_id", kid, "credentials", "id", kid, "key_pkcs8",
                (const char *)b64.data, "directory", c->acme_url);
  if (!j)
    return -ENOMEM;
  char *s = json_dumps(j, JSON_INDENT(2));
  if (!s)
    return -ENOMEM;
  r = file_write_atomic(path, s, strlen(s), 0600);
  secure_wipe(s, strlen(s));
  free(s);
  return r;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int acme_open(const struct certbot_config *c, struct certbot_acme **ret, char *err,
                     size_t errlen) {
  struct certbot_acme_opts o = {
      .directory_url = c->acme_url,
      .ca_file = str_isempty(c->acme_ca_file) ? NULL : c->acme_ca_file,
      .deadline_ms = mono_ms() + (int64_t)c->renew_timeout * 1000,
  };
  return certbot_acme_new(&o, ret, err, errlen);
}

/* The account: loads it, or creates it (with its quote) when credentials.json is missing. */
static int domains_get(const struct certbot_config *c, char ***ret);

/* The CAA procedure (certbot_caa.h) for the configured domains and account. */
static int caa_set(const struct certbot_config *c, const char *account_uri, char *err,
                   size_t errlen) {
  struct certbot_dns *d = NULL;
  char **domains = NULL;
  int r = domains_get(c, &domains);
  if (r < 0)
    return str_err(err, errlen, r, "out of memory");
  if ((r = certbot_dns_open(c, &d, err, errlen)) >= 0)
    r = certbot_caa_set(d, domains, account_uri, c->caa_issuer, err, errlen);
  if (d)
    d->ops->free(d);
  strv_free(domains);
  if (r >= 0)
    log_info("CAA records allow only %s for account %s", c->caa_issuer, account_uri);
  return r;
}

int certbot_bot_set_caa(const struct certbot_config *c, char *err, size_t errlen) {
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  _cleanup_free_ char *kid = NULL;
  int r = creds_load(c, &key, &kid);
  if (r < 0)
    return str_err(err, errlen, r, "%s/credentials.json: %s (run certbot init first)",
                   c->workdir, r == -EBADMSG ? "malformed" : strerror(-r));
  return caa_set(c, kid, err, errlen);
}

static int account_get(const struct certbot_config *c, struct tee *tee, struct certbot_acme *a,
                       bool *ret_created, char *err, size_t errlen) {
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  _cleanup_free_ char *kid = NULL;
  int r = creds_load(c, &key, &kid);
  if (ret_created)
    *ret_created = false;
  if (r >= 0) {
    EVP_PKEY_up_ref(key);
    return certbot_acme_account(a, key, kid, NULL, err, errlen);
  }
  if (r != -ENOENT)
    return str_err(err, errlen, r, "%s/credentials.json: %s", c->workdir,
                   r == -EBADMSG ? "malformed" : strerror(-r));
  if ((r = mkdir_p(c->workdir, 0700)) < 0)
    return str_err(err, errlen, r, "creating %s: %s", c->workdir, strerror(-r));
  if ((r = key_p256_generate(&key)) < 0)
    return str_err(err, errlen, r, "generating the account key");
  EVP_PKEY_up_ref(key);
  if ((r = certbot_acme_account(a, key, NULL, &kid, err, errlen)) < 0)
    return r;
  if ((r = creds_store(c, key, kid)) < 0)
    return str_err(err, errlen, r, "writing %s/credentials.json: %s", c->workdir, strerror(-r));
  log_info("ACME account %s created", kid);
  if (tee) {
    uint8_t rd[64];
    _cleanup_free_ char *qp = wpath(c, QUOTED_KEY_ACCOUNT_FILE);
    if (!qp || (r = quoted_key_report_data_account(kid, rd)) < 0 ||
        (r = quote_write(tee, qp, rd)) < 0)
      return str_err(err, errlen, r < 0 ? r : -ENOMEM, "writing the account quote");
  }
  if (ret_created)
    *ret_created = true;
  /* CAA records are set when the account is made (and by set-caa), never on renewals. */
  if (c->auto_set_caa && (r = caa_set(c, kid, err, errlen)) < 0)
    return r;
  return 0;
}

int certbot_bot_account(const struct certbot_config *c, struct tee *tee, bool *ret_created,
                        char *err, size_t errlen) {
  struct certbot_acme *a = NULL;
  int r = acme_open(c, &a, err, errlen);
  if (r >= 0)
    r = account_get(c, tee, a, ret_created, err, errlen);
  certbot_acme_free(a);
  return r;
}

static int domains_get(const struct certbot_config *c, char ***ret) {
  if (strv_length(c->domains) > 0) {
    char **l = NULL;
    for (size_t i = 0; c->domains[i]; i++)
      if (strv_push_dup(&l, c->domains[i]) < 0) {
        strv_free(l);
        return -ENOMEM;
      }
    *ret = l;
    return 0;
  }
  char **l = NULL;
  if (strv_push_dup(&l, c->domain) < 0)
    return -ENOMEM;
  *ret = l;
  return 0;
}

/* Stores chain + key under backup/<time>/ and points live/ at them. */
static int cert_store(const struct certbot_config *c, struct tee *tee, const struct buf *chain,
                      EVP_PKEY *key, char *err, size_t errlen) {
  struct timespec now;
  struct tm tm;
  char stamp[64], tbuf[32];
  _cleanup_buf_ struct buf kpem = BUF_INIT_SECRET(KEY_INPUT_MAX), spki = BUF_INIT(4096);
  _cleanup_free_ char *dir = NULL, *certp = NULL, *keyp = NULL, *live = NULL, *absdir = NULL;
  int r;
  {
    /* The leaf must carry our key: anything else is not stored. */
    _cleanup_(X509_freep) X509 *leaf = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
    if ((r = x509_cert_from_pem(chain->data, chain->len, &leaf)) < 0 ||
        (r = x509_cert_public_key(leaf, &pub)) < 0 || (r = key_public_equal(pub, key)) < 0)
      return str_err(err, errlen, r < 0 ? r : -EBADMSG,
                     "the certificate from the CA does not carry the requested key");
  }
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(stamp, sizeof(stamp), "%s.%09ldZ", tbuf, now.tv_nsec);
  if (!(dir = str_printf("%s/backup/%s", c->workdir, stamp)) ||
      !(live = str_printf("%s/live", c->workdir)))
    return -ENOMEM;
  if ((r = mkdir_p(dir, 0700)) < 0 || (r = mkdir_p(live, 0700)) < 0)
    return str_err(err, errlen, r, "creating %s: %s", dir, strerror(-r));
  if (!(absdir = realpath(dir, NULL)))
    return str_err(err, errlen, -errno, "resolving %s", dir);
  if (!(certp = str_printf("%s/cert.pem", absdir)) || !(keyp = str_printf("%s/key.pem", absdir)))
    return -ENOMEM;
  if ((r = key_to_pkcs8_pem(key, &kpem)) < 0 ||
      (r = file_write_atomic(keyp, kpem.data, kpem.len, 0600)) < 0 ||
      (r = file_write_atomic(certp, chain->data, chain->len, 0644)) < 0)
    return str_err(err, errlen, r, "writing %s: %s", absdir, strerror(-r));
  if (tee) {
    uint8_t rd[64];
    _cleanup_free_ char *qp = str_printf("%s/%s", absdir, QUOTED_KEY_CERT_FILE);
    if ((r = key_to_spki_der(key, &spki)) < 0)
      return r;
    if (!qp || (r = quoted_key_report_data_cert(spki.data, spki.len, rd)) < 0 ||
        (r = quote_write(tee, qp, rd)) < 0)
      return str_err(err, errlen, r < 0 ? r : -ENOMEM, "writing the certificate quote");
  }
  /* live/cert.pem and live/key.pem: a symlink under a temporary name, renamed over the old one. */
  static const char *const names[] = {"cert.pem", "key.pem"};
  for (size_t i = 0; i < 2; i++) {
    _cleanup_free_ char *target = str_printf("%s/%s", absdir, names[i]);
    _cleanup_free_ char *link = str_printf("%s/%s", live, names[i]);
    _cleanup_free_ char *tmp = str_printf("%s/.%s.tmp%d", live, names[i], (int)getpid());
    if (!target || !link || !tmp)
      return -ENOMEM;
    (void)unlink(tmp);
    if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
      r = -errno;
      (void)unlink(tmp);
      return str_err(err, errlen, r, "linking %s: %s", link, strerror(-r));
    }
  }
  (void)dir_fsync(live);
  log_info("certificate stored in %s", absdir);
  return 0;
}

/* The names a renewal asks for: the SANs of the certificate in place (as upstream renews), or
 * the configured ones when they cannot be used, or with force when the two differ. The
 * difference is logged either way. ret takes conf or a new list. */
static int renewal_names(X509 *cur, const char *path, bool force, char ***conf, char ***ret) {
  char **sans = NULL;
  size_t n = 0;
  _cleanup_strv_free_ char **from = NULL;
  _cleanup_free_ char *have = NULL, *want = NULL;
  int r = x509_cert_dns_sans(cur, &sans, &n);
  if (r >= 0)
    r = certbot_names_from_sans(sans, n, &from);
  x509_strv_free(sans);
  if (r == -ENOMEM)
    return r;
  if (r < 0) {
    log_warn("%s: its names cannot be asked for again (%s): requesting the configured ones",
             path, r == -ENOENT   ? "no DNS name"
                   : r == -E2BIG ? "too many names"
                                 : "a name that is not a valid DNS name");
    *ret = TAKE_PTR(*conf);
    return 0;
  }
  if (certbot_names_same(from, *conf)) {
    *ret = TAKE_PTR(*conf);
    return 0;
  }
  if (strv_join(from, ", ", &have) < 0 || strv_join(*conf, ", ", &want) < 0)
    return -ENOMEM;
  if (force) {
    log_warn("the certificate in place is for %s, the configuration lists %s: --force requests "
             "the configured names", have, want);
    *ret = TAKE_PTR(*conf);
  } else {
    log_warn("the certificate in place is for %s, the configuration lists %s: renewing the "
             "certificate's names; `renew --force` requests the configured ones", have, want);
    *ret = TAKE_PTR(from);
  }
  return 0;
}

static void hook_run(const char *hook) {
  if (str_isempty(hook))
    return;
  pid_t pid = fork();
  if (pid < 0) {
    log_warn("renewed_hook: fork: %s", strerror(errno));
    return;
  }
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", hook, (char *)NULL);
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    log_warn("renewed_hook exited with status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

int certbot_bot_renew_once(const struct certbot_config *c, struct tee *tee, bool force, char *err,
                           size_t errlen) {
  _cleanup_free_ char *lc = str_printf("%s/live/cert.pem", c->workdir);
  _cleanup_free_ char *lk = str_printf("%s/live/key.pem", c->workdir);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  _cleanup_(X509_freep) X509 *cur = NULL;
  _cleanup_strv_free_ char **domains = NULL;
  _cleanup_buf_ struct buf chain = BUF_INIT(CERT_MAX);
  struct certbot_acme *a = NULL;
  struct certbot_dns *dns = NULL;
  int r;
  if (!lc || !lk)
    return -ENOMEM;
  bool have = access(lc, F_OK) == 0 && access(lk, F_OK) == 0;
  if (have) {
    _cleanup_buf_ struct buf pem = BUF_INIT(CERT_MAX);
    int64_t nb, na;
    if ((r = file_read_capped(lc, CERT_MAX, false, &pem)) < 0 ||
        (r = x509_cert_from_pem(pem.data, pem.len, &cur)) < 0 ||
        (r = x509_cert_validity(cur, &nb, &na)) < 0)
      return str_err(err, errlen, r, "reading %s", lc);
    int64_t due = (int64_t)time(NULL) + (int64_t)c->renew_days_before * 86400;
    if (!force && na >= due) {
      log_info("certificate valid until %lld, not due for renewal", (long long)na);
      return 0;
    }
  }
  if (access(lk, F_OK) == 0) {
    if ((r = key_load(lk, &key)) < 0)
      return str_err(err, errlen, r, "reading %s", lk);
  } else if ((r = key_p256_generate(&key)) < 0) {
    return str_err(err, errlen, r, "generating the certificate key");
  }
  {
    _cleanup_strv_free_ char **conf = NULL;
    if ((r = domains_get(c, &conf)) < 0)
      return r;
    if (cur)
      r = renewal_names(cur, lc, force, &conf, &domains);
    else
      domains = TAKE_PTR(conf);
    if (r < 0)
      return r;
  }
  if ((r = certbot_dns_open(c, &dns, err, errlen)) < 0)
    goto out;
  if ((r = acme_open(c, &a, err, errlen)) < 0 ||
      (r = account_get(c, tee, a, NULL, err, errlen)) < 0)
    goto out;
  if ((r = certbot_acme_issue(a, domains, key, dns, c->max_dns_wait * 1000u, &chain, err, errlen)) <
      0)
    goto out;
  if ((r = cert_store(c, tee, &chain, key, err, errlen)) < 0)
    goto out;
  hook_run(c->renewed_hook);
  r = 1;
out:
  certbot_acme_free(a);
  if (dns)
    dns->ops->free(dns);
  return r;
}

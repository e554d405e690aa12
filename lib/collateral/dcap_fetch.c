/* Collateral fetching from a PCCS / Intel PCS (see dcap_fetch.h). */
#include "collateral/dcap_fetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/x509v3.h>

#include "collateral/dcap_cache.h"
#include "attest/dcap_collateral.h"
#include "attest/pck.h"
#include "attest/quote.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"

#define FETCH_DEFAULT_MAX_BODY ((size_t)4 * 1024 * 1024)
#define FETCH_MAX_CACHES 16
#define URL_MAX 4096

const char *dcap_tee_name(enum dcap_tee t) {
  return t == DCAP_TEE_TDX ? "tdx" : "sgx";
}

const char *dcap_pck_ca_name(enum dcap_pck_ca c) {
  return c == DCAP_PCK_CA_PROCESSOR ? "processor" : "platform";
}

int dcap_fetch_base_url(const char *base_url, char **ret) {
  static const char *const suffixes[] = {"/sgx/certification/v4", "/tdx/certification/v4"};
  if (!base_url || !ret)
    return -EINVAL;
  if (strncasecmp(base_url, "http://", 7) != 0 && strncasecmp(base_url, "https://", 8) != 0)
    return -EINVAL;
  size_t n = strlen(base_url);
  if (n > URL_MAX || strpbrk(base_url, " \t\r\n?#"))
    return -EINVAL;
  char *s = strndup(base_url, n);
  if (!s)
    return -ENOMEM;
  while (n > 0 && s[n - 1] == '/')
    s[--n] = '\0';
  for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
    size_t l = strlen(suffixes[i]);
    if (n > l && strcasecmp(s + n - l, suffixes[i]) == 0) {
      n -= l;
      s[n] = '\0';
      break;
    }
  }
  while (n > 0 && s[n - 1] == '/')
    s[--n] = '\0';
  /* A host must be left after the scheme. */
  const char *sep = strstr(s, "://");
  if (!sep || !sep[3] || sep[3] == '/') {
    free(s);
    return -EINVAL;
  }
  *ret = s;
  return 0;
}

/* CN of an X509_NAME as a NUL-terminated string in out; -ENOENT when none. */
static int name_cn(const X509_NAME *name, char *out, size_t outlen) {
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0)
    return -ENOENT;
  const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  if (!s)
    return -EBADMSG;
  int len = ASN1_STRING_length(s);
  if (len <= 0 || (size_t)len >= outlen)
    return -EBADMSG;
  memcpy(out, ASN1_STRING_get0_data(s), (size_t)len);
  out[len] = '\0';
  if (strlen(out) != (size_t)len)
    return -EBADMSG;
  return 0;
}

int dcap_quote_fetch_params(const struct quote *q, enum dcap_tee *ret_tee, uint8_t ret_fmspc[6],
                            enum dcap_pck_ca *ret_ca) {
  if (!q || !ret_fmspc || !ret_ca || !ret_tee)
    return -EINVAL;
  if (q->tee_type == QUOTE_TEE_TDX)
    *ret_tee = DCAP_TEE_TDX;
  else if (q->tee_type == QUOTE_TEE_SGX)
    *ret_tee = DCAP_TEE_SGX;
  else
    return -ENOTSUP;
  if (!q->pck_chain_pem.ptr || q->pck_chain_pem.len == 0)
    return -EINVAL;
  _cleanup_(x509_chain_freep) STACK_OF(X509) *chain = NULL;
  int r = x509_chain_from_pem(q->pck_chain_pem.ptr, q->pck_chain_pem.len, &chain);
  if (r < 0)
    return r == -ENOMEM ? r : -EBADMSG;
  X509 *leaf = sk_X509_value(chain, 0);
  struct pck_ext ext;
  r = pck_cert_ext(leaf, &ext);
  if (r < 0)
    return r == -ENOMEM ? r : -EBADMSG;
  /* The CA that issued the PCK certificate: the intermediate's subject, or the leaf's issuer. */
  char cn[256];
  if (sk_X509_num(chain) >= 2)
    r = name_cn(X509_get_subject_name(sk_X509_value(chain, 1)), cn, sizeof(cn));
  else
    r = name_cn(X509_get_issuer_name(leaf), cn, sizeof(cn));
  if (r < 0)
    return -EBADMSG;
  if (strstr(cn, "PCK Platform CA"))
    *ret_ca = DCAP_PCK_CA_PLATFORM;
  else if (strstr(cn, "PCK Processor CA"))
    *ret_ca = DCAP_PCK_CA_PROCESSOR;
  else
    return -EBADMSG;
  memcpy(ret_fmspc, ext.fmspc, 6);
  return 0;
}

/* ---- HTTP ---- */

static int status_to_errno(long status) {
  if (status == 200)
    return 0;
  if (status == 404)
    return -ENOENT;
  return -EIO;
}

static int fetch(const char *url, const struct http_client_opts *ho, struct http_response *ret) {
  int r = http_get(url, ho, ret);
  if (r < 0)
    return log_debug_errno(r, "GET %s", url);
  r = status_to_errno(ret->status);
  if (r < 0) {
    log_debug("GET %s: HTTP %ld", url, ret->status);
    http_response_free(ret);
  }
  return r;
}

/* The first present header of names, URL-decoded. -EBADMSG when none is there. */
static int chain_header(const struct http_response *resp, const char *const *names,
                        char **ret) {
  for (; *names; names++) {
    const char *v = http_response_header(resp, *names);
    if (!v)
      continue;
    int r = str_pct_decode(v, strlen(v), 0, ret, NULL);
    return r == -ENOMEM ? r : (r < 0 ? -EBADMSG : 0);
  }
  return -EBADMSG;
}

/* The first http(s) CRL distribution point URI of the last certificate of a PEM chain. */
int dcap_fetch_root_crl_url(const char *chain_pem, char **ret) {
  _cleanup_(x509_chain_freep) STACK_OF(X509) *chain = NULL;
  int r = x509_chain_from_pem(chain_pem, strlen(chain_pem), &chain);
  if (r < 0)
    return r;
  X509 *root = sk_X509_value(chain, sk_X509_num(chain) - 1);
  STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(root, NID_crl_distribution_points, NULL, NULL);
  ERR_clear_error();
  if (!dps)
    return -ENOENT;
  r = -ENOENT;
  for (int i = 0; i < sk_DIST_POINT_num(dps) && r == -ENOENT; i++) {
    DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
    if (!dp->distpoint || dp->distpoint->type != 0)
      continue;
    GENERAL_NAMES *names = dp->distpoint->name.fullname;
    for (int k = 0; k < sk_GENERAL_NAME_num(names); k++) {
      GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, k);
      if (gn->type != GEN_URI)
        continue;
      const ASN1_IA5STRING *uri = gn->d.uniformResourceIdentifier;
      int len = ASN1_STRING_length(uri);
      const char *p = (const char *)ASN1_STRING_get0_data(uri);
      if (len <= 0 || len > URL_MAX || memchr(p, '\0', (size_t)len))
        continue;
      if (strncasecmp(p, "http://", MIN((size_t)len, 7)) != 0 &&
          strncasecmp(p, "https://", MIN((size_t)len, 8)) != 0)
        continue;
      if (!(*ret = strndup(p, (size_t)len)))
        r = -ENOMEM;
      else
        r = 0;
      break;
    }
  }
  CRL_DIST_POINTS_free(dps);
  return r;
}

static int fetch_all(const char *base, enum dcap_tee tee, const uint8_t fmspc[6],
                     enum dcap_pck_ca ca, const struct dcap_fetch_opts *o,
                     struct dcap_collateral *ret) {
  static const char *const tcb_hdrs[] = {"TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain",
                                         NULL};
  static const char *const qe_hdrs[] = {"SGX-Enclave-Identity-Issuer-Chain",
                                        "Enclave-Identity-Issuer-Chain", NULL};
  static const char *const crl_hdrs[] = {"SGX-PCK-CRL-Issuer-Chain", "PCK-CRL-Issuer-Chain",
                                         NULL};
  struct http_client_opts ho = o ? o->http : (struct http_client_opts){0};
  if (!ho.max_body)
    ho.max_body = FETCH_DEFAULT_MAX_BODY;
  struct http_response tcb = {0}, qe = {0}, crl = {0}, root = {0};
  char *tcb_chain = NULL, *qe_chain = NULL, *crl_chain = NULL, *root_url = NULL;
  char url[URL_MAX + 256], fmspc_hex[13];
  const char *t = dcap_tee_name(tee);
  int r;

  hex_encode(fmspc, 6, fmspc_hex);
  for (char *p = fmspc_hex; *p; p++)
    if (*p >= 'a' && *p <= 'f')
      *p = (char)(*p - 'a' + 'A');

  snprintf(url, sizeof(url), "%s/%s/certification/v4/tcb?fmspc=%s", base, t, fmspc_hex);
  if ((r = fetch(url, &ho, &tcb)) < 0)
    goto out;
  if ((r = chain_header(&tcb, tcb_hdrs, &tcb_chain)) < 0)
    goto out;

  snprintf(url, sizeof(url), "%s/%s/certification/v4/qe/identity", base, t);
  if ((r = fetch(url, &ho, &qe)) < 0)
    goto out;
  if ((r = chain_header(&qe, qe_hdrs, &qe_chain)) < 0)
    goto out;

  snprintf(url, sizeof(url), "%s/sgx/certification/v4/pckcrl?ca=%s&encoding=der", base,
           dcap_pck_ca_name(ca));
  if ((r = fetch(url, &ho, &crl)) < 0)
    goto out;
  if ((r = chain_header(&crl, crl_hdrs, &crl_chain)) < 0)
    goto out;

  if (o && o->root_ca_crl_url) {
    r = fetch(o->root_ca_crl_url, &ho, &root);
  } else {
    snprintf(url, sizeof(url), "%s/sgx/certification/v4/rootcacrl", base);
    r = fetch(url, &ho, &root);
    if (r == -ENOENT) {
      /* No such endpoint (Intel PCS): the root certificate's CRL distribution point. */
      r = dcap_fetch_root_crl_url(crl_chain, &root_url);
      if (r < 0) {
        r = r == -ENOMEM ? r : -ENOENT;
        goto out;
      }
      r = fetch(root_url, &ho, &root);
    }
  }
  if (r < 0)
    goto out;

  r = dcap_collateral_from_pcs((const char *)tcb.body.data, tcb.body.len, tcb_chain,
                               (const char *)qe.body.data, qe.body.len, qe_chain,
                               root.body.data, root.body.len, crl.body.data, crl.body.len,
                               crl_chain, ret);
  if (r < 0)
    log_debug_errno(r, "collateral from %s", base);
out:
  http_response_free(&tcb);
  http_response_free(&qe);
  http_response_free(&crl);
  http_response_free(&root);
  free(tcb_chain);
  free(qe_chain);
  free(crl_chain);
  free(root_url);
  return r;
}

/* ---- process-wide caches, one per directory (NULL = memory only) ---- */

static pthread_mutex_t caches_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dcap_cache *caches[FETCH_MAX_CACHES];
static size_t n_caches;

static struct dcap_cache *shared_cache(const char *dir) {
  struct dcap_cache *c = NULL;
  pthread_mutex_lock(&caches_lock);
  for (size_t i = 0; i < n_caches; i++) {
    const char *d = dcap_cache_dir(caches[i]);
    if ((!d && !dir) || (d && dir && strcmp(d, dir) == 0)) {
      c = caches[i];
      goto out;
    }
  }
  if (n_caches < FETCH_MAX_CACHES && dcap_cache_new(dir, &c) == 0)
    caches[n_caches++] = c;
out:
  pthread_mutex_unlock(&caches_lock);
  return c; /* NULL: no cache (too many directories or out of memory) */
}

void dcap_fetch_caches_free(void) {
  pthread_mutex_lock(&caches_lock);
  for (size_t i = 0; i < n_caches; i++) {
    dcap_cache_free(caches[i]);
    caches[i] = NULL;
  }
  n_caches = 0;
  pthread_mutex_unlock(&caches_lock);
}

int dcap_fetch_collateral_for(const char *base_url, enum dcap_tee tee, const uint8_t fmspc[6],
                              enum dcap_pck_ca ca, const struct dcap_fetch_opts *o,
                              struct dcap_collateral *ret) {
  if (!base_url || !fmspc || !ret || (tee != DCAP_TEE_SGX && tee != DCAP_TEE_TDX) ||
      (ca != DCAP_PCK_CA_PLATFORM && ca != DCAP_PCK_CA_PROCESSOR))
    return -EINVAL;
  _cleanup_free_ char *base = NULL;
  int r = dcap_fetch_base_url(base_url, &base);
  if (r < 0)
    return r;
  if (o && o->root_ca_crl_url && strncasecmp(o->root_ca_crl_url, "http://", 7) != 0 &&
      strncasecmp(o->root_ca_crl_url, "https://", 8) != 0)
    return -EINVAL;

  int64_t now = o && o->now ? o->now : (int64_t)time(NULL);
  struct dcap_cache *cache = NULL;
  if (!(o && o->no_cache)) {
    if (o && o->cache) {
      cache = o->cache;
    } else {
      const char *dir = o ? o->cache_dir : NULL;
      if (!dir) {
        dir = secure_getenv("DSTACK_DCAP_CACHE_DIR");
        if (dir && !*dir)
          dir = NULL;
      }
      cache = shared_cache(dir);
    }
  }

  char key[DCAP_CACHE_KEY_MAX], fmspc_hex[13];
  hex_encode(fmspc, 6, fmspc_hex);
  snprintf(key, sizeof(key), "%s-%s-%s", dcap_tee_name(tee), fmspc_hex, dcap_pck_ca_name(ca));

  if (cache) {
    r = dcap_cache_get(cache, key, now, ret);
    if (r == 0) {
      log_debug("dcap collateral %s: from cache", key);
      return 0;
    }
    if (r != -ENOENT)
      return r;
  }
  if (o && o->cache_only)
    return -ENOENT;

  struct dcap_collateral col = {0};
  r = fetch_all(base, tee, fmspc, ca, o, &col);
  if (r < 0)
    return r;
  if (cache) {
    int k = dcap_cache_put(cache, key, &col, now);
    if (k < 0)
      log_debug_errno(k, "dcap collateral %s: not cached", key);
  }
  *ret = col;
  return 0;
}

int dcap_fetch_collateral(const char *base_url, const struct quote *q,
                          const struct dcap_fetch_opts *o, struct dcap_collateral *ret) {
  if (!base_url || !q || !ret)
    return -EINVAL;
  enum dcap_tee tee;
  enum dcap_pck_ca ca;
  uint8_t fmspc[6];
  int r = dcap_quote_fetch_params(q, &tee, fmspc, &ca);
  if (r < 0)
    return r;
  return dcap_fetch_collateral_for(base_url, tee, fmspc, ca, o, ret);
}

/* Key derivation and certificate issuance: DeriveKey, GetTlsKey, GetKey/DeriveK256Key, Sign,
 * Verify. */
#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/hex.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "crypto/hkdf.h"
#include "crypto/keccak.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "ratls/ratls.h"
#include "tappd.h"

/* The app-info extension (upstream dstack) of certificates asked for with_app_info. */
#define TAPPD_OID_APP_INFO "1.3.6.1.4.1.62397.1.9"
/* The special-usage extension (1.3.6.1.4.1.62397.1.4) of app certificates issued locally. */
#define TAPPD_OID_CERT_USAGE "1.3.6.1.4.1.62397.1.4"
#define TAPPD_CERT_USAGE "app:custom"
/* Newest default validity of issued certificates: ten years from now. */
#define TAPPD_CERT_LIFETIME ((int64_t)86400 * 365 * 10)

void tappd_tls_key_free(struct tappd_tls_key *k) {
  if (!k)
    return;
  if (k->key_pem) {
    secure_wipe(k->key_pem, strlen(k->key_pem));
    free(k->key_pem);
  }
  strv_free(k->chain);
  memset(k, 0, sizeof(*k));
}

void tappd_key_free(struct tappd_key *k) {
  if (!k)
    return;
  secure_wipe(k->key, sizeof(k->key));
  buf_free(&k->kms_sig);
}

void tappd_signature_free(struct tappd_signature *s) {
  if (!s)
    return;
  tappd_key_free(&s->key);
}

static bool dns_name_valid(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > TAPPD_MAX_ALT_NAME)
    return false;
  for (const char *p = s; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f)
      return false;
  return true;
}

static int check_cert_req(const struct tappd_cert_req *req, char **ret_error) {
  if (strlen(req->subject ? req->subject : "") > TAPPD_MAX_SUBJECT)
    return prpc_error(ret_error, -EINVAL, "subject is longer than %d bytes", TAPPD_MAX_SUBJECT);
  if (req->n_alt_names > TAPPD_MAX_ALT_NAMES)
    return prpc_error(ret_error, -EINVAL, "more than %d alt_names", TAPPD_MAX_ALT_NAMES);
  for (size_t i = 0; i < req->n_alt_names; i++)
    if (!dns_name_valid(req->alt_names[i]))
      return prpc_error(ret_error, -EINVAL, "alt_names[%zu] is not a DNS name", i);
  if (req->has_not_before && req->has_not_after && req->not_after < req->not_before)
    return prpc_error(ret_error, -EINVAL, "not_after is before not_before");
  /* X.509 GeneralizedTime ends at year 9999. */
  if ((req->has_not_before && req->not_before > 253402300799ULL) ||
      (req->has_not_after && req->not_after > 253402300799ULL))
    return prpc_error(ret_error, -EINVAL, "validity beyond year 9999");
  return 0;
}

/* ---- key cache ----
 * GetKey is deterministic: the key is HKDF(k256 app key, path), and the app key's signature over
 * "<purpose>:<pub hex>" is RFC 6979 (deterministic nonce). So the result of one (path, purpose,
 * algorithm) never changes while the app keys are loaded, and a bounded LRU of results spares
 * the HKDF and two secp256k1 scalar multiplications on a repeated request. DeriveKey without
 * random_seed derives its P-256 key from the path alone: the key (and its PKCS#8 PEM) is kept
 * the same way, while its certificate is issued afresh on every call, as upstream does.
 * Entries are named by the kind and the length-prefixed request fields themselves (requests
 * whose fields are longer than KEY_CACHE_NAME_MAX bytes are not cached), found through a seeded
 * hash; secrets are wiped on eviction and when the cache is freed. */
#define KEY_CACHE_SIZE 1024
#define KEY_CACHE_BUCKETS 2048 /* power of two */
#define KEY_CACHE_NAME_MAX 256

/* kind, algorithm, |a| (2 bytes, little-endian), a, b */
struct cache_name {
  uint32_t hash;
  uint16_t len;
  uint8_t b[KEY_CACHE_NAME_MAX];
};

enum key_cache_kind { KC_GET_KEY = 1, KC_DERIVE_KEY = 2 };

struct key_cache_entry {
  struct cache_name name;
  enum key_cache_kind kind;
  union {
    struct {
      uint8_t key[32]; /* secret */
      uint8_t pub[33];
      uint8_t pub_len;
      uint8_t sig[65];
    } gk;
    struct {
      EVP_PKEY *key;
      char *pem; /* PKCS#8, secret */
      size_t pem_len;
    } dk;
  };
  int32_t prev, next; /* LRU list (head = most recent), -1 ends */
  int32_t chain;      /* next entry of the same bucket, -1 ends */
};

struct tappd_key_cache {
  pthread_mutex_t lock;
  uint32_t seed; /* of the bucket hash */
  size_t n;
  int32_t head, tail;
  int32_t bucket[KEY_CACHE_BUCKETS];
  struct key_cache_entry e[KEY_CACHE_SIZE];
};

static void entry_clear(struct key_cache_entry *e) {
  if (e->kind == KC_DERIVE_KEY) {
    EVP_PKEY_free(e->dk.key);
    if (e->dk.pem) {
      secure_wipe(e->dk.pem, e->dk.pem_len);
      free(e->dk.pem);
    }
  }
  secure_wipe(e, sizeof(*e));
}

void tappd_key_cache_free(struct tappd_key_cache *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->n; i++)
    entry_clear(&c->e[i]);
  pthread_mutex_destroy(&c->lock);
  secure_wipe(c, sizeof(*c));
  free(c);
}

int tappd_key_cache_new(struct tappd_key_cache **ret) {
  struct tappd_key_cache *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  if (pthread_mutex_init(&c->lock, NULL) != 0) {
    free(c);
    return -ENOMEM;
  }
  c->head = c->tail = -1;
  for (size_t i = 0; i < KEY_CACHE_BUCKETS; i++)
    c->bucket[i] = -1;
  if (RAND_bytes((unsigned char *)&c->seed, sizeof(c->seed)) != 1)
    c->seed = 0x9e3779b9u; /* still works, only more predictable buckets */
  *ret = c;
  return 0;
}

/* The name of a request; false when its fields are too long to be cached. */
static bool cache_name_make(const struct tappd_key_cache *c, enum key_cache_kind kind,
                            unsigned alg, const char *a, const char *b, struct cache_name *ret) {
  size_t la = strlen(a), lb = strlen(b);
  if (la + lb > KEY_CACHE_NAME_MAX - 4)
    return false;
  ret->b[0] = (uint8_t)kind;
  ret->b[1] = (uint8_t)alg;
  ret->b[2] = (uint8_t)(la & 0xff);
  ret->b[3] = (uint8_t)(la >> 8);
  memcpy(ret->b + 4, a, la);
  memcpy(ret->b + 4 + la, b, lb);
  ret->len = (uint16_t)(4 + la + lb);
  uint32_t h = 2166136261u ^ c->seed; /* FNV-1a, seeded */
  for (size_t i = 0; i < ret->len; i++)
    h = (h ^ ret->b[i]) * 16777619u;
  ret->hash = h;
  return true;
}

static bool cache_name_eq(const struct cache_name *x, const struct cache_name *y) {
  return x->hash == y->hash && x->len == y->len && memcmp(x->b, y->b, x->len) == 0;
}

static uint32_t key_cache_bucket(const struct cache_name *n) {
  return n->hash & (KEY_CACHE_BUCKETS - 1);
}

static void lru_unlink(struct tappd_key_cache *c, int32_t i) {
  struct key_cache_entry *e = &c->e[i];
  if (e->prev >= 0)
    c->e[e->prev].next = e->next;
  else
    c->head = e->next;
  if (e->next >= 0)
    c->e[e->next].prev = e->prev;
  else
    c->tail = e->prev;
  e->prev = e->next = -1;
}

static void lru_push_front(struct tappd_key_cache *c, int32_t i) {
  struct key_cache_entry *e = &c->e[i];
  e->prev = -1;
  e->next = c->head;
  if (c->head >= 0)
    c->e[c->head].prev = i;
  c->head = i;
  if (c->tail < 0)
    c->tail = i;
}

/* The entry of name, made the most recent; NULL if absent. Called with the lock held. */
static struct key_cache_entry *key_cache_find(struct tappd_key_cache *c,
                                              const struct cache_name *name) {
  for (int32_t i = c->bucket[key_cache_bucket(name)]; i >= 0; i = c->e[i].chain) {
    if (!cache_name_eq(&c->e[i].name, name))
      continue;
    if (c->head != i) {
      lru_unlink(c, i);
      lru_push_front(c, i);
    }
    return &c->e[i];
  }
  return NULL;
}

/* A cleared entry of name, linked in as the most recent (evicting the least recent one when
 * full); the caller fills kind and value. Called with the lock held; name is known absent. */
static struct key_cache_entry *key_cache_add(struct tappd_key_cache *c,
                                             const struct cache_name *name) {
  int32_t i;
  if (c->n < KEY_CACHE_SIZE) {
    i = (int32_t)c->n++;
  } else {
    i = c->tail;
    lru_unlink(c, i);
    int32_t *p = &c->bucket[key_cache_bucket(&c->e[i].name)];
    while (*p != i)
      p = &c->e[*p].chain;
    *p = c->e[i].chain;
    entry_clear(&c->e[i]);
  }
  struct key_cache_entry *e = &c->e[i];
  e->name = *name;
  uint32_t b = key_cache_bucket(name);
  e->chain = c->bucket[b];
  c->bucket[b] = i;
  lru_push_front(c, i);
  return e;
}

/* MessagePack: the field name (a str of fewer than 32 bytes), then its bytes (a bin). */
static int mp_field(struct buf *out, const char *name, const void *p, size_t n) {
  size_t kl = strlen(name);
  uint8_t h[3];
  size_t hn;
  if (n < 0x100) {
    h[0] = 0xc4, h[1] = (uint8_t)n, hn = 2;
  } else if (n < 0x10000) {
    h[0] = 0xc5, h[1] = (uint8_t)(n >> 8), h[2] = (uint8_t)n, hn = 3;
  } else {
    return -ENOBUFS;
  }
  int r = buf_append_u8(out, (uint8_t)(0xa0 | kl));
  if (r >= 0)
    r = buf_append(out, name, kl);
  if (r >= 0)
    r = buf_append(out, h, hn);
  if (r >= 0 && n)
    r = buf_append(out, p, n);
  return r;
}

/* The app-info extension content as upstream writes it: the app info of the running TD (what
 * Info reports, plus mr_system) as a MessagePack map from field name to bytes, in upstream's
 * field order. */
static int app_info_ext(struct tappd *t, struct buf *out, char **ret_error) {
  struct tappd_info i;
  int r = tappd_info(t, false, &i, ret_error);
  if (r < 0)
    return r;
  const char *kp = i.key_provider_info ? i.key_provider_info : "";
  if ((r = buf_append_u8(out, 0x88)) < 0 || /* fixmap, 8 entries */
      (r = mp_field(out, "app_id", i.app_id.data, i.app_id.len)) < 0 ||
      (r = mp_field(out, "compose_hash", i.compose_hash.data, i.compose_hash.len)) < 0 ||
      (r = mp_field(out, "instance_id", i.instance_id.data, i.instance_id.len)) < 0 ||
      (r = mp_field(out, "device_id", i.device_id.data, i.device_id.len)) < 0 ||
      (r = mp_field(out, "mr_system", i.mr_system, sizeof(i.mr_system))) < 0 ||
      (r = mp_field(out, "mr_aggregated", i.mr_aggregated.data, i.mr_aggregated.len)) < 0 ||
      (r = mp_field(out, "os_image_hash", i.os_image_hash.data, i.os_image_hash.len)) < 0 ||
      (r = mp_field(out, "key_provider_info", kp, strlen(kp))) < 0)
    r = r == -ENOBUFS ? prpc_error(ret_error, r, "app info too large") : r;
  tappd_info_free(&i);
  return r < 0 ? r : 0;
}

/* Issues a certificate for key, signed by the app CA. newest: the certificate shape of the newest
 * agent (KeyUsage digitalSignature, usage extension, ten-year validity); otherwise the seed era's
 * rcgen defaults (CN only, 1975..4096). Both carry SANs / EKUs / the quote when asked. */
static int issue_cert(struct tappd *t, EVP_PKEY *key, const char *key_pem,
                      const struct tappd_cert_req *req, bool newest, struct tappd_tls_key *ret,
                      char **ret_error) {
  int r;
  if (!t->keys.ca_cert || !t->keys.ca_key)
    return prpc_error(ret_error, -ENOKEY, "no app CA key to issue certificates with");

  struct x509_ext exts[4];
  size_t n_exts = 0;
  _cleanup_buf_ struct buf usage = BUF_INIT(64);
  _cleanup_buf_ struct buf info = BUF_INIT(65536), winfo = BUF_INIT(65536 + 16);
  if (req->with_app_info) {
    if ((r = app_info_ext(t, &info, ret_error)) < 0)
      return r;
    if ((r = ratls_ext_wrap(info.data, info.len, &winfo)) < 0)
      return r;
    exts[n_exts++] =
        (struct x509_ext){.oid = TAPPD_OID_APP_INFO, .value = winfo.data, .len = winfo.len};
  }
  _cleanup_buf_ struct buf wq = BUF_INIT(BUF_MAX_QUOTE + 16);
  _cleanup_buf_ struct buf we = BUF_INIT(TAPPD_EVENTLOG_MAX + 16);
  if (newest) {
    if ((r = ratls_ext_wrap(TAPPD_CERT_USAGE, strlen(TAPPD_CERT_USAGE), &usage)) < 0)
      return r;
    exts[n_exts++] = (struct x509_ext){.oid = TAPPD_OID_CERT_USAGE, .value = usage.data,
                                       .len = usage.len};
  }
  if (req->usage_ra_tls) {
    /* report_data = SHA-512("ratls-cert:" || SPKI DER), the newest binding. */
    _cleanup_buf_ struct buf spki = BUF_INIT(1024);
    _cleanup_buf_ struct buf quote = BUF_INIT(BUF_MAX_QUOTE);
    _cleanup_buf_ struct buf log = BUF_INIT(TAPPD_EVENTLOG_MAX);
    uint8_t rd[64];
    if ((r = key_to_spki_der(key, &spki)) < 0)
      return r;
    r = tappd_report_data("sha512", "ratls-cert", spki.data, spki.len, rd, ret_error);
    if (r < 0)
      return r;
    r = tappd_quote(t, rd, &quote, NULL, &log);
    if (r < 0)
      return prpc_error(ret_error, r, "getting a quote: %s", tappd_quote_strerror(r));
    if ((r = ratls_ext_wrap(quote.data, quote.len, &wq)) < 0 ||
        (r = ratls_ext_wrap(log.data, log.len, &we)) < 0)
      return r;
    exts[n_exts++] = (struct x509_ext){.oid = RATLS_OID_QUOTE, .value = wq.data, .len = wq.len};
    exts[n_exts++] =
        (struct x509_ext){.oid = RATLS_OID_EVENT_LOG, .value = we.data, .len = we.len};
  }

  struct x509_params p = {
      /* An empty subject gives an empty DN (the X.509 builder refuses an empty CN). */
      .subject_cn = str_isempty(req->subject) ? NULL : req->subject,
      .dns_sans = (const char *const *)req->alt_names,
      .n_dns_sans = req->n_alt_names,
      .path_len = -1,
      .key_usage = newest ? X509_KU_DIGITAL_SIGNATURE : 0,
      .ext_key_usage = (req->usage_server_auth ? X509_EKU_SERVER_AUTH : 0) |
                       (req->usage_client_auth ? X509_EKU_CLIENT_AUTH : 0),
      .serial_from_spki = true,
      .exts = exts,
      .n_exts = n_exts,
  };
  if (newest) {
    p.not_before = req->has_not_before ? (int64_t)req->not_before : X509_RCGEN_NOT_BEFORE;
    p.not_after =
        req->has_not_after ? (int64_t)req->not_after : (int64_t)time(NULL) + TAPPD_CERT_LIFETIME;
  } else if (req->has_not_before || req->has_not_after) {
    p.not_before = req->has_not_before ? (int64_t)req->not_before : X509_RCGEN_NOT_BEFORE;
    p.not_after = req->has_not_after ? (int64_t)req->not_after : X509_RCGEN_NOT_AFTER;
  }

  _cleanup_(X509_freep) X509 *cert = NULL;
  r = x509_cert_build(&p, key, t->keys.ca_cert, t->keys.ca_key, &cert);
  if (r < 0)
    return prpc_error(ret_error, r, "issuing the certificate: %s", strerror(-r));

  _cleanup_buf_ struct buf leaf = BUF_INIT(BUF_MAX_QUOTE + TAPPD_EVENTLOG_MAX + 65536);
  _cleanup_buf_ struct buf pem;
  buf_init_secret(&pem, 4096);
  if ((r = x509_cert_to_pem(cert, &leaf)) < 0 || (r = buf_terminate(&leaf)) < 0)
    return r;
  if (key_pem)
    r = buf_append_str(&pem, key_pem);
  else
    r = key_to_pkcs8_pem(key, &pem);
  if (r < 0 || (r = buf_terminate(&pem)) < 0)
    return r;
  char **chain = NULL;
  if ((r = strv_push(&chain, (char *)buf_steal(&leaf, NULL))) < 0 ||
      (r = strv_push_dup(&chain, t->keys.ca_pem)) < 0) {
    strv_free(chain);
    return r;
  }
  ret->chain = chain;
  ret->key_pem = (char *)buf_steal(&pem, NULL);
  return 0;
}

/* The P-256 key DeriveKey derives from ikm and path, with its PKCS#8 PEM (*ret_pem, secret). */
static int derive_p256(const uint8_t ikm[32], const char *path, EVP_PKEY **ret_key,
                       char **ret_pem, size_t *ret_pem_len) {
  struct slice ctx = SLICE_STR(path);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  int r = kdf_derive_p256_key(ikm, 32, &ctx, 1, &key);
  if (r < 0)
    return r;
  _cleanup_buf_ struct buf pem;
  buf_init_secret(&pem, 4096);
  if ((r = key_to_pkcs8_pem(key, &pem)) < 0 || (r = buf_terminate(&pem)) < 0)
    return r;
  *ret_pem_len = pem.len;
  *ret_pem = (char *)buf_steal(&pem, NULL);
  *ret_key = TAKE_PTR(key);
  return 0;
}

int tappd_derive_key(struct tappd *t, const char *path, bool random_seed,
                     const struct tappd_cert_req *req, struct tappd_tls_key *ret,
                     char **ret_error) {
  memset(ret, 0, sizeof(*ret));
  int r = check_cert_req(req, ret_error);
  if (r < 0)
    return r;
  path = path ? path : "";
  if (strlen(path) > TAPPD_MAX_PATH)
    return prpc_error(ret_error, -EINVAL, "path is longer than %d bytes", TAPPD_MAX_PATH);

  uint8_t ikm[32];
  bool newest = t->keys.has_k256;
  /* ikm is fixed by the loaded app keys (k256 key, else the app CA scalar), so the key of a
   * path can be kept; not with random_seed. */
  struct cache_name name;
  struct tappd_key_cache *c = random_seed ? NULL : t->key_cache;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  char *pem = NULL;
  size_t pem_len = 0;
  if (c && !cache_name_make(c, KC_DERIVE_KEY, newest, path, "", &name))
    c = NULL;
  if (c) {
    pthread_mutex_lock(&c->lock);
    struct key_cache_entry *e = key_cache_find(c, &name);
    if (e && EVP_PKEY_up_ref(e->dk.key) == 1) {
      key = e->dk.key;
      pem = strdup(e->dk.pem);
      pem_len = e->dk.pem_len;
    }
    pthread_mutex_unlock(&c->lock);
    if (key && !pem)
      return -ENOMEM;
  }
  if (!key) {
    if (random_seed) {
      if (RAND_bytes(ikm, sizeof(ikm)) != 1)
        return -EIO;
    } else if (t->keys.has_k256) {
      memcpy(ikm, t->keys.k256_key, sizeof(ikm));
    } else if (t->keys.ca_key) {
      /* Seed era: the app CA's P-256 scalar. */
      r = key_ec_private_scalar(t->keys.ca_key, ikm);
      if (r < 0)
        return r;
    } else {
      return prpc_error(ret_error, -ENOKEY, "no app key to derive from");
    }
    r = derive_p256(ikm, path, &key, &pem, &pem_len);
    secure_wipe(ikm, sizeof(ikm));
    if (r == -EINVAL)
      return prpc_error(ret_error, r, "the derived scalar is not a valid P-256 key");
    if (r < 0)
      return r;
    if (c) {
      pthread_mutex_lock(&c->lock);
      char *copy = NULL;
      if (!key_cache_find(c, &name) && EVP_PKEY_up_ref(key) == 1) {
        if ((copy = strdup(pem))) {
          struct key_cache_entry *e = key_cache_add(c, &name);
          e->kind = KC_DERIVE_KEY;
          e->dk.key = key;
          e->dk.pem = copy;
          e->dk.pem_len = pem_len;
        } else {
          EVP_PKEY_free(key); /* the reference taken for the cache */
        }
      }
      pthread_mutex_unlock(&c->lock);
    }
  }
  r = issue_cert(t, key, pem, req, newest, ret, ret_error);
  secure_wipe(pem, pem_len);
  free(pem);
  if (r < 0)
    tappd_tls_key_free(ret);
  return r;
}

int tappd_get_tls_key(struct tappd *t, const struct tappd_cert_req *req, struct tappd_tls_key *ret,
                      char **ret_error) {
  memset(ret, 0, sizeof(*ret));
  int r = check_cert_req(req, ret_error);
  if (r < 0)
    return r;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  if ((r = key_p256_generate(&key)) < 0)
    return r;
  r = issue_cert(t, key, NULL, req, true, ret, ret_error);
  if (r < 0)
    tappd_tls_key_free(ret);
  return r;
}

int tappd_key_alg_from_name(const char *name, enum tappd_key_alg *ret) {
  if (str_isempty(name) || str_eq(name, "secp256k1") || str_eq(name, "k256")) {
    *ret = TAPPD_KEY_SECP256K1;
    return 0;
  }
  if (str_eq(name, "ed25519")) {
    *ret = TAPPD_KEY_ED25519;
    return 0;
  }
  return -EINVAL;
}

/* The uncached derivation: key, public key and the app key's signature. */
static int get_key_compute(struct tappd *t, const char *path, const char *purpose,
                           enum tappd_key_alg alg, struct tappd_key *ret, char **ret_error) {
  struct slice ctx = SLICE_STR(path);
  int r = kdf_derive_key(t->keys.k256_key, 32, &ctx, 1, ret->key, 32);
  if (r < 0)
    return r;
  if (alg == TAPPD_KEY_SECP256K1) {
    r = key_secp256k1_public_from_secret(ret->key, ret->pub);
    if (r < 0)
      return prpc_error(ret_error, -EINVAL, "the derived key is not a valid secp256k1 key");
    ret->pub_len = 33;
  } else {
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
    if ((r = key_ed25519_from_secret(ret->key, &k)) < 0 || (r = key_raw_public(k, ret->pub)) < 0)
      return r;
    ret->pub_len = 32;
  }

  /* The app key vouches for the derived key: Keccak256("<purpose>:<pubkey hex>"). */
  char pubhex[67];
  hex_encode(ret->pub, ret->pub_len, pubhex);
  _cleanup_buf_ struct buf msg = BUF_INIT(2 * TAPPD_MAX_PATH + 128);
  uint8_t digest[32];
  if ((r = buf_printf(&msg, "%s:%s", purpose, pubhex)) < 0)
    return r;
  keccak256(msg.data, msg.len, digest);
  return key_secp256k1_sign_recoverable(t->keys.k256_key, digest, ret->sig);
}

int tappd_get_key(struct tappd *t, const char *path, const char *purpose, const char *algorithm,
                  struct tappd_key *ret, char **ret_error) {
  memset(ret, 0, sizeof(*ret));
  buf_init(&ret->kms_sig, 1024);
  enum tappd_key_alg alg;
  int r;
  path = path ? path : "";
  purpose = purpose ? purpose : "";
  if (tappd_key_alg_from_name(algorithm, &alg) < 0)
    return prpc_error(ret_error, -EINVAL, "unsupported algorithm");
  if (strlen(path) > TAPPD_MAX_PATH || strlen(purpose) > TAPPD_MAX_PATH)
    return prpc_error(ret_error, -EINVAL, "path or purpose longer than %d bytes",
                       TAPPD_MAX_PATH);
  if (!t->keys.has_k256)
    return prpc_error(ret_error, -ENOKEY, "the app keys have no k256 key");

  struct cache_name name;
  struct tappd_key_cache *c = t->key_cache;
  struct key_cache_entry *e = NULL;
  if (c && !cache_name_make(c, KC_GET_KEY, alg, path, purpose, &name))
    c = NULL;
  if (c) {
    pthread_mutex_lock(&c->lock);
    if ((e = key_cache_find(c, &name))) {
      memcpy(ret->key, e->gk.key, 32);
      memcpy(ret->pub, e->gk.pub, e->gk.pub_len);
      ret->pub_len = e->gk.pub_len;
      memcpy(ret->sig, e->gk.sig, 65);
    }
    pthread_mutex_unlock(&c->lock);
  }
  if (!e) {
    if ((r = get_key_compute(t, path, purpose, alg, ret, ret_error)) < 0)
      goto fail;
    if (c) {
      pthread_mutex_lock(&c->lock);
      if (!key_cache_find(c, &name)) { /* another thread may have been faster */
        e = key_cache_add(c, &name);
        e->kind = KC_GET_KEY;
        memcpy(e->gk.key, ret->key, 32);
        memcpy(e->gk.pub, ret->pub, ret->pub_len);
        e->gk.pub_len = (uint8_t)ret->pub_len;
        memcpy(e->gk.sig, ret->sig, 65);
      }
      pthread_mutex_unlock(&c->lock);
    }
  }
  if ((r = buf_append(&ret->kms_sig, t->keys.k256_signature.data, t->keys.k256_signature.len)) < 0)
    goto fail;
  return 0;
fail:
  tappd_key_free(ret);
  return r;
}

static int sign_alg(const char *name, enum tappd_key_alg *key_alg, bool *prehashed) {
  *prehashed = false;
  if (str_eq_ptr(name, "secp256k1_prehashed")) {
    *key_alg = TAPPD_KEY_SECP256K1;
    *prehashed = true;
    return 0;
  }
  if (str_isempty(name))
    return -EINVAL; /* Sign and Verify name their algorithm */
  return tappd_key_alg_from_name(name, key_alg);
}

int tappd_sign(struct tappd *t, const char *algorithm, const uint8_t *data, size_t len,
               struct tappd_signature *ret, char **ret_error) {
  memset(ret, 0, sizeof(*ret));
  enum tappd_key_alg alg;
  bool prehashed;
  int r;
  if (sign_alg(algorithm, &alg, &prehashed) < 0)
    return prpc_error(ret_error, -EINVAL, "unsupported algorithm");
  if (len > TAPPD_MAX_SIGN_DATA)
    return prpc_error(ret_error, -EINVAL, "data is longer than %zu bytes", TAPPD_MAX_SIGN_DATA);
  if (prehashed && len != 32)
    return prpc_error(ret_error, -EINVAL,
                       "Pre-hashed signing requires a 32-byte digest, but received %zu bytes",
                       len);
  r = tappd_get_key(t, "vms", "signing", alg == TAPPD_KEY_ED25519 ? "ed25519" : "secp256k1",
                    &ret->key, ret_error);
  if (r < 0)
    return r;
  memcpy(ret->pub, ret->key.pub, ret->key.pub_len);
  ret->pub_len = ret->key.pub_len;
  if (alg == TAPPD_KEY_ED25519) {
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
    if ((r = key_ed25519_from_secret(ret->key.key, &k)) < 0 ||
        (r = key_ed25519_sign(k, data ? (const void *)data : "", len, ret->sig)) < 0)
      goto fail;
  } else {
    uint8_t h[32];
    if (prehashed)
      memcpy(h, data, 32);
    else
      sha256(data ? (const void *)data : "", len, h);
    if ((r = key_secp256k1_sign_prehash(ret->key.key, h, ret->sig)) < 0)
      goto fail;
  }
  return 0;
fail:
  tappd_signature_free(ret);
  return r;
}

int tappd_verify(const char *algorithm, const uint8_t *data, size_t len, const uint8_t *sig,
                 size_t sig_len, const uint8_t *pub, size_t pub_len, bool *ret_valid,
                 char **ret_error) {
  enum tappd_key_alg alg;
  bool prehashed;
  int r;
  *ret_valid = false;
  if (sign_alg(algorithm, &alg, &prehashed) < 0)
    return prpc_error(ret_error, -EINVAL, "unsupported algorithm");
  if (sig_len != 64)
    return prpc_error(ret_error, -EINVAL, "signature must be 64 bytes");
  if (alg == TAPPD_KEY_ED25519) {
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
    if (pub_len != 32 || key_ed25519_from_public(pub, &k) < 0)
      return prpc_error(ret_error, -EINVAL, "invalid public key");
    r = key_ed25519_verify(k, data ? (const void *)data : "", len, sig);
    *ret_valid = r == 0;
    return 0;
  }
  uint8_t h[32];
  if (prehashed) {
    if (len != 32)
      return prpc_error(ret_error, -EINVAL, "prehashed data must be 32 bytes");
    memcpy(h, data, 32);
  } else {
    sha256(data ? (const void *)data : "", len, h);
  }
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
  if ((pub_len != 33 && pub_len != 65) ||
      key_ec_from_public_sec1(KEY_TYPE_SECP256K1, pub, pub_len, &k) < 0)
    return prpc_error(ret_error, -EINVAL, "invalid public key");
  r = key_secp256k1_verify_prehash(pub, pub_len, h, sig);
  *ret_valid = r == 0;
  return 0;
}

/* DCAP quote verification with caches of verified chains and collateral. */
#include "attest/dcap.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attest/dcap_tcb.h"
#include "attest/pck.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "crypto/x509_pem.h"

/* Intel SGX Root CA (DER); its SHA-256 is checked against DCAP_INTEL_ROOT_SHA256_HEX. */
static const uint8_t intel_root_der[] = {
    0x30, 0x82, 0x02, 0x8f, 0x30, 0x82, 0x02, 0x34, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x14, 0x22,
    0x65, 0x0c, 0xd6, 0x5a, 0x9d, 0x34, 0x89, 0xf3, 0x83, 0xb4, 0x95, 0x52, 0xbf, 0x50, 0x1b, 0x39,
    0x27, 0x06, 0xac, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x30,
    0x68, 0x31, 0x1a, 0x30, 0x18, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x11, 0x49, 0x6e, 0x74, 0x65,
    0x6c, 0x20, 0x53, 0x47, 0x58, 0x20, 0x52, 0x6f, 0x6f, 0x74, 0x20, 0x43, 0x41, 0x31, 0x1a, 0x30,
    0x18, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x11, 0x49, 0x6e, 0x74, 0x65, 0x6c, 0x20, 0x43, 0x6f,
    0x72, 0x70, 0x6f, 0x72, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x31, 0x14, 0x30, 0x12, 0x06, 0x03, 0x55,
    0x04, 0x07, 0x0c, 0x0b, 0x53, 0x61, 0x6e, 0x74, 0x61, 0x20, 0x43, 0x6c, 0x61, 0x72, 0x61, 0x31,
    0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x08, 0x0c, 0x02, 0x43, 0x41, 0x31, 0x0b, 0x30, 0x09,
    0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, 0x55, 0x53, 0x30, 0x1e, 0x17, 0x0d, 0x31, 0x38, 0x30,
    0x35, 0x32, 0x31, 0x31, 0x30, 0x34, 0x35, 0x31, 0x30, 0x5a, 0x17, 0x0d, 0x34, 0x39, 0x31, 0x32,
    0x33, 0x31, 0x32, 0x33, 0x35, 0x39, 0x35, 0x39, 0x5a, 0x30, 0x68, 0x31, 0x1a, 0x30, 0x18, 0x06,
    0x03, 0x55, 0x04, 0x03, 0x0c, 0x11, 0x49, 0x6e, 0x74, 0x65, 0x6c, 0x20, 0x53, 0x47, 0x58, 0x20,
    0x52, 0x6f, 0x6f, 0x74, 0x20, 0x43, 0x41, 0x31, 0x1a, 0x30, 0x18, 0x06, 0x03, 0x55, 0x04, 0x0a,
    0x0c, 0x11, 0x49, 0x6e, 0x74, 0x65, 0x6c, 0x20, 0x43, 0x6f, 0x72, 0x70, 0x6f, 0x72, 0x61, 0x74,
    0x69, 0x6f, 0x6e, 0x31, 0x14, 0x30, 0x12, 0x06, 0x03, 0x55, 0x04, 0x07, 0x0c, 0x0b, 0x53, 0x61,
    0x6e, 0x74, 0x61, 0x20, 0x43, 0x6c, 0x61, 0x72, 0x61, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55,
    0x04, 0x08, 0x0c, 0x02, 0x43, 0x41, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13,
    0x02, 0x55, 0x53, 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x0b, 0xa9,
    0xc4, 0xc0, 0xc0, 0xc8, 0x61, 0x93, 0xa3, 0xfe, 0x23, 0xd6, 0xb0, 0x2c, 0xda, 0x10, 0xa8, 0xbb,
    0xd4, 0xe8, 0x8e, 0x48, 0xb4, 0x45, 0x85, 0x61, 0xa3, 0x6e, 0x70, 0x55, 0x25, 0xf5, 0x67, 0x91,
    0x8e, 0x2e, 0xdc, 0x88, 0xe4, 0x0d, 0x86, 0x0b, 0xd0, 0xcc, 0x4e, 0xe2, 0x6a, 0xac, 0xc9, 0x88,
    0xe5, 0x05, 0xa9, 0x53, 0x55, 0x8c, 0x45, 0x3f, 0x6b, 0x09, 0x04, 0xae, 0x73, 0x94, 0xa3, 0x81,
    0xbb, 0x30, 0x81, 0xb8, 0x30, 0x1f, 0x06, 0x03, 0x55, 0x1d, 0x23, 0x04, 0x18, 0x30, 0x16, 0x80,
    0x14, 0x22, 0x65, 0x0c, 0xd6, 0x5a, 0x9d, 0x34, 0x89, 0xf3, 0x83, 0xb4, 0x95, 0x52, 0xbf, 0x50,
    0x1b, 0x39, 0x27, 0x06, 0xac, 0x30, 0x52, 0x06, 0x03, 0x55, 0x1d, 0x1f, 0x04, 0x4b, 0x30, 0x49,
    0x30, 0x47, 0xa0, 0x45, 0xa0, 0x43, 0x86, 0x41, 0x68, 0x74, 0x74, 0x70, 0x73, 0x3a, 0x2f, 0x2f,
    0x63, 0x65, 0x72, 0x74, 0x69, 0x66, 0x69, 0x63, 0x61, 0x74, 0x65, 0x73, 0x2e, 0x74, 0x72, 0x75,
    0x73, 0x74, 0x65, 0x64, 0x73, 0x65, 0x72, 0x76, 0x69, 0x63, 0x65, 0x73, 0x2e, 0x69, 0x6e, 0x74,
    0x65, 0x6c, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x49, 0x6e, 0x74, 0x65, 0x6c, 0x53, 0x47, 0x58, 0x52,
    0x6f, 0x6f, 0x74, 0x43, 0x41, 0x2e, 0x64, 0x65, 0x72, 0x30, 0x1d, 0x06, 0x03, 0x55, 0x1d, 0x0e,
    0x04, 0x16, 0x04, 0x14, 0x22, 0x65, 0x0c, 0xd6, 0x5a, 0x9d, 0x34, 0x89, 0xf3, 0x83, 0xb4, 0x95,
    0x52, 0xbf, 0x50, 0x1b, 0x39, 0x27, 0x06, 0xac, 0x30, 0x0e, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01,
    0x01, 0xff, 0x04, 0x04, 0x03, 0x02, 0x01, 0x06, 0x30, 0x12, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01,
    0x01, 0xff, 0x04, 0x08, 0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x01, 0x30, 0x0a, 0x06, 0x08,
    0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x03, 0x49, 0x00, 0x30, 0x46, 0x02, 0x21, 0x00,
    0xe5, 0xbf, 0xe5, 0x09, 0x11, 0xf9, 0x2f, 0x42, 0x89, 0x20, 0xdc, 0x36, 0x8a, 0x30, 0x2e, 0xe3,
    0xd1, 0x2e, 0xc5, 0x86, 0x7f, 0xf6, 0x22, 0xec, 0x64, 0x97, 0xf7, 0x80, 0x60, 0xc1, 0x3c, 0x20,
    0x02, 0x21, 0x00, 0xe0, 0x9d, 0x25, 0xac, 0x7a, 0x0c, 0xb3, 0xe5, 0xe8, 0xe6, 0x8f, 0xec, 0x5f,
    0xa3, 0xbd, 0x41, 0x6c, 0x47, 0x44, 0x0b, 0xd9, 0x50, 0x63, 0x9d, 0x45, 0x0e, 0xdc, 0xbe, 0xa4,
    0x57, 0x6a, 0xa2};

static const uint8_t intel_qe_vendor_id[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                               0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

#define DCAP_CACHE_DEFAULT 64
#define DCAP_MAX_WINDOWS 24
#define DCAP_MAX_INPUT ((size_t)1024 * 1024)

enum anchor_kind {
  ANCHOR_INTEL = 0,
  ANCHOR_SIM = 1,
  _ANCHOR_MAX,
};

struct anchor {
  X509 *cert;
  EVP_PKEY *pub;
  struct buf der;     /* a root in a chain must be these bytes exactly */
  X509_STORE *store;  /* OpenSSL's verifier trusts this root, and only it */
};

/* A validity interval checked against `now` on every verification; an entry holds at most
 * DCAP_MAX_WINDOWS (Intel collateral needs 8 to 10, a PCK chain 3); more is an error. */
enum window_kind { WIN_CERT, WIN_JSON, WIN_CRL };
struct window {
  char what[40];
  enum window_kind kind;
  int64_t not_before, not_after;
};

struct windows {
  struct window w[DCAP_MAX_WINDOWS];
  size_t n;
};

/* Common head of cache entries (refcounted; immutable once built). */
struct entry {
  uint8_t key[32];
  unsigned refs;
  uint64_t tick;
  void (*free_fn)(struct entry *e);
};

struct chain_entry {
  struct entry e;
  enum anchor_kind anchor;
  STACK_OF(X509) * certs; /* leaf, CAs (not the root) */
  X509 *leaf;             /* certs[0] */
  EVP_PKEY *leaf_pub;
  EVP_PKEY *ca_pub; /* the leaf's issuer */
  struct buf leaf_issuer_der;
  struct pck_ext ext;
  char ca[16];
  struct windows win;
  /* Memos of the latest QE of this platform, under the verifier lock: the QE report and
   * signature that verified with leaf_pub (SHA-256), and the attestation key as an EVP_PKEY. */
  bool qe_memo_set;
  uint8_t qe_memo[32];
  uint8_t attest_raw[64];
  EVP_PKEY *attest_pub;
  /* The collateral (its cache key) whose CRLs this chain passed last (pck_crls_check). */
  bool crl_memo_set;
  uint8_t crl_memo[32];
};

struct coll_entry {
  struct entry e;
  enum anchor_kind anchor;
  struct dcap_tcb_info tcb;
  struct dcap_qe_identity qe;
  X509_CRL *root_crl, *pck_crl;
  struct buf pck_crl_issuer_der;
  int64_t expiry;
  struct windows win;
};

struct cache {
  struct entry **slots;
  size_t max;
};

struct dcap_verifier {
  pthread_mutex_t lock;
  struct anchor anchors[_ANCHOR_MAX]; /* cert NULL = not trusted */
  struct cache chains, colls;
  uint64_t tick;
};

static void errf(char *err, size_t n, const char *fmt, ...) _printf_(3, 4);
static void errf(char *err, size_t n, const char *fmt, ...) {
  if (!err || !n)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, n, fmt, ap);
  va_end(ap);
}

/* ---- cache ---- */

static void entry_unref_locked(struct entry *e) {
  if (e && --e->refs == 0)
    e->free_fn(e);
}

static void entry_unref(struct dcap_verifier *v, struct entry *e) {
  if (!e)
    return;
  pthread_mutex_lock(&v->lock);
  entry_unref_locked(e);
  pthread_mutex_unlock(&v->lock);
}

/* A new reference to the cached entry with this key, or NULL. */
static struct entry *cache_get(struct dcap_verifier *v, struct cache *c, const uint8_t key[32]) {
  struct entry *found = NULL;
  pthread_mutex_lock(&v->lock);
  for (size_t i = 0; i < c->max; i++) {
    struct entry *e = c->slots[i];
    if (e && memcmp(e->key, key, 32) == 0) {
      e->refs++;
      e->tick = ++v->tick;
      found = e;
      break;
    }
  }
  pthread_mutex_unlock(&v->lock);
  return found;
}

/* Inserts e (the cache takes one more reference); when another thread inserted the same key
 * first, returns that one instead (and drops e). Evicts the least recently used entry. */
static struct entry *cache_put(struct dcap_verifier *v, struct cache *c, struct entry *e) {
  pthread_mutex_lock(&v->lock);
  size_t victim = 0;
  uint64_t oldest = UINT64_MAX;
  for (size_t i = 0; i < c->max; i++) {
    struct entry *x = c->slots[i];
    if (x && memcmp(x->key, e->key, 32) == 0) {
      x->refs++;
      x->tick = ++v->tick;
      entry_unref_locked(e);
      pthread_mutex_unlock(&v->lock);
      return x;
    }
    uint64_t t = x ? x->tick : 0;
    if (t < oldest) {
      oldest = t;
      victim = i;
    }
  }
  entry_unref_locked(c->slots[victim]);
  e->refs++;
  e->tick = ++v->tick;
  c->slots[victim] = e;
  pthread_mutex_unlock(&v->lock);
  return e;
}

static void cache_clear_locked(struct cache *c) {
  for (size_t i = 0; c->slots && i < c->max; i++) {
    entry_unref_locked(c->slots[i]);
    c->slots[i] = NULL;
  }
}

/* ---- verifier ---- */

static int anchor_set(struct anchor *a, X509 *cert) {
  a->der = BUF_INIT(X509_INPUT_MAX);
  int r = x509_cert_to_der(cert, &a->der);
  if (r < 0)
    return r;
  r = x509_cert_public_key(cert, &a->pub);
  if (r < 0)
    return r;
  a->store = X509_STORE_new();
  if (!a->store || X509_STORE_add_cert(a->store, cert) != 1) {
    ERR_clear_error();
    return -ENOMEM;
  }
  a->cert = cert;
  return 0;
}

static int load_sim_root(const struct dcap_verifier_opts *o, X509 **ret) {
  _cleanup_buf_ struct buf pem = BUF_INIT(X509_INPUT_MAX);
  int r;
  if (o->simulator_root_pem_data)
    r = buf_append_str(&pem, o->simulator_root_pem_data);
  else
    r = file_read_all(o->simulator_root_pem, X509_INPUT_MAX, &pem);
  if (r < 0)
    return r;
  return x509_cert_from_pem(pem.data, pem.len, ret);
}

int dcap_verifier_new(const struct dcap_verifier_opts *o, struct dcap_verifier **ret) {
  if (!ret)
    return -EINVAL;
  struct dcap_verifier_opts def = {};
  if (!o)
    o = &def;
  if (o->allow_simulator && !o->simulator_root_pem && !o->simulator_root_pem_data)
    return -EINVAL;
  struct dcap_verifier *v = calloc(1, sizeof(*v));
  if (!v)
    return -ENOMEM;
  pthread_mutex_init(&v->lock, NULL);
  size_t max = o->cache_max_entries ? o->cache_max_entries : DCAP_CACHE_DEFAULT;
  v->chains.max = v->colls.max = max;
  v->chains.slots = calloc(max, sizeof(struct entry *));
  v->colls.slots = calloc(max, sizeof(struct entry *));
  int r = (v->chains.slots && v->colls.slots) ? 0 : -ENOMEM;

  X509 *root = NULL;
  if (r >= 0)
    r = x509_cert_from_der(intel_root_der, sizeof(intel_root_der), &root);
  if (r >= 0) {
    r = anchor_set(&v->anchors[ANCHOR_INTEL], root);
    if (r < 0)
      X509_free(root);
  }
  if (r >= 0) {
    uint8_t pin[32], h[32];
    const struct buf *der = &v->anchors[ANCHOR_INTEL].der;
    sha256(der->data, der->len, h);
    if (hex_decode_exact(DCAP_INTEL_ROOT_SHA256_HEX, 64, pin, 32) < 0 || memcmp(pin, h, 32) != 0 ||
        der->len != sizeof(intel_root_der) || memcmp(der->data, intel_root_der, der->len) != 0)
      r = -EIO;
  }
  if (r >= 0 && o->allow_simulator) {
    X509 *sim = NULL;
    r = load_sim_root(o, &sim);
    if (r >= 0) {
      r = anchor_set(&v->anchors[ANCHOR_SIM], sim);
      if (r < 0)
        X509_free(sim);
    }
    if (r >= 0 && v->anchors[ANCHOR_SIM].der.len == v->anchors[ANCHOR_INTEL].der.len &&
        memcmp(v->anchors[ANCHOR_SIM].der.data, v->anchors[ANCHOR_INTEL].der.data,
               v->anchors[ANCHOR_SIM].der.len) == 0)
      r = -EINVAL;
  }
  if (r < 0) {
    dcap_verifier_free(v);
    return r;
  }
  *ret = v;
  return 0;
}

void dcap_verifier_flush(struct dcap_verifier *v) {
  if (!v)
    return;
  pthread_mutex_lock(&v->lock);
  cache_clear_locked(&v->chains);
  cache_clear_locked(&v->colls);
  pthread_mutex_unlock(&v->lock);
}

void dcap_verifier_free(struct dcap_verifier *v) {
  if (!v)
    return;
  dcap_verifier_flush(v);
  free(v->chains.slots);
  free(v->colls.slots);
  for (size_t i = 0; i < _ANCHOR_MAX; i++) {
    X509_free(v->anchors[i].cert);
    EVP_PKEY_free(v->anchors[i].pub);
    X509_STORE_free(v->anchors[i].store);
    buf_free(&v->anchors[i].der);
  }
  pthread_mutex_destroy(&v->lock);
  free(v);
}

/* ---- helpers ---- */

static int asn1_time_unix(const ASN1_TIME *t, int64_t *ret) {
  struct tm tm;
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
    return -EBADMSG;
  *ret = (int64_t)timegm(&tm);
  return 0;
}

/* A full array is an error, never a window left unchecked. */
static int window_add(struct windows *w, const char *what, enum window_kind kind, int64_t nb,
                      int64_t na, char *err, size_t errlen) {
  if (w->n >= DCAP_MAX_WINDOWS) {
    errf(err, errlen, "%s: too many validity windows (over %d certificates, CRLs and documents)",
         what, DCAP_MAX_WINDOWS);
    return -ENOBUFS;
  }
  struct window *x = &w->w[w->n++];
  snprintf(x->what, sizeof(x->what), "%s", what);
  x->kind = kind;
  x->not_before = nb;
  x->not_after = na;
  return 0;
}

static int windows_check(const struct windows *w, enum window_kind kind, int64_t now, char *err,
                         size_t errlen) {
  for (size_t i = 0; i < w->n; i++) {
    const struct window *x = &w->w[i];
    if (x->kind != kind)
      continue;
    char d[32];
    if (now < x->not_before) {
      dcap_format_date(x->not_before, d);
      switch (x->kind) {
      case WIN_CERT:
        errf(err, errlen, "%s: certificate not yet valid (notBefore %s)", x->what, d);
        break;
      case WIN_JSON:
        errf(err, errlen, "%s not yet valid (issueDate %s)", x->what, d);
        break;
      case WIN_CRL:
        errf(err, errlen, "%s not yet valid (thisUpdate %s)", x->what, d);
        break;
      }
      return -EACCES;
    }
    if (now > x->not_after) {
      dcap_format_date(x->not_after, d);
      if (x->kind == WIN_CERT)
        errf(err, errlen, "%s: certificate expired at %s", x->what, d);
      else
        errf(err, errlen, "%s expired at %s", x->what, d);
      return -EACCES;
    }
  }
  return 0;
}

static bool cn_contains(X509 *c, const char *needle) {
  _cleanup_buf_ struct buf cn = BUF_INIT(4096);
  if (x509_cert_subject_cn(c, &cn) < 0 || buf_terminate(&cn) < 0)
    return false;
  return strstr((const char *)cn.data, needle) != NULL;
}

static int name_der(const X509_NAME *n, struct buf *out) {
  _cleanup_ossl_free_ unsigned char *p = NULL;
  int len = i2d_X509_NAME(n, &p);
  if (len <= 0)
    return -EBADMSG;
  return buf_append(out, p, (size_t)len);
}

static bool self_issued(X509 *c) {
  return X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)) == 0;
}

/* ---- chains ---- */

/* The anchor whose root is the certificate der byte for byte, or -1. */
static int anchor_by_der(const struct dcap_verifier *v, struct slice der) {
  for (int k = 0; k < _ANCHOR_MAX; k++)
    if (v->anchors[k].cert && der.len == v->anchors[k].der.len &&
        memcmp(der.ptr, v->anchors[k].der.data, der.len) == 0)
      return k;
  return -1;
}

/* The anchor a chain (leaf first, from chain_order) ends in. Its last certificate, when
 * self-issued, must be an anchor's root byte for byte: root_der, the bytes it came from, not
 * OpenSSL's encoding of what it parsed. Otherwise the last certificate's issuer must be an
 * anchor's subject. */
static int chain_anchor_find(struct dcap_verifier *v, STACK_OF(X509) * sk, struct slice root_der,
                             const char *what, enum anchor_kind *ret, char *err, size_t errlen) {
  int n = sk_X509_num(sk);
  if (n < 1) {
    errf(err, errlen, "%s: no certificates", what);
    return -EBADMSG;
  }
  X509 *last = sk_X509_value(sk, n - 1);
  if (self_issued(last)) {
    int k = anchor_by_der(v, root_der);
    if (k >= 0 && n == 1) {
      errf(err, errlen, "%s: only a root certificate", what);
      return -EBADMSG;
    }
    if (k >= 0) {
      *ret = (enum anchor_kind)k;
      return 0;
    }
    if (cn_contains(last, "Simulated"))
      errf(err, errlen, "%s: root CA not trusted (simulator root; simulator not allowed)", what);
    else
      errf(err, errlen, "%s: root CA not trusted (Intel test root?)", what);
    return -EACCES;
  }
  for (int k = 0; k < _ANCHOR_MAX; k++)
    if (v->anchors[k].cert &&
        X509_NAME_cmp(X509_get_issuer_name(last), X509_get_subject_name(v->anchors[k].cert)) == 0) {
      *ret = (enum anchor_kind)k;
      return 0;
    }
  errf(err, errlen, "%s: root CA not trusted (issuer not a trusted root)", what);
  return -EACCES;
}

/* The validity of every certificate of sk, and of the root when sk does not end in it. */
static int chain_windows_add(STACK_OF(X509) * sk, X509 *root, const char *what,
                             struct windows *win, char *err, size_t errlen) {
  int n = sk_X509_num(sk);
  for (int i = 0; i <= n; i++) {
    X509 *c = i < n ? sk_X509_value(sk, i) : root;
    if (i == n && self_issued(sk_X509_value(sk, n - 1)))
      break;
    int64_t nb, na;
    if (x509_cert_validity(c, &nb, &na) < 0) {
      errf(err, errlen, "%s: bad certificate validity", what);
      return -EBADMSG;
    }
    int r = window_add(win, what, WIN_CERT, nb, na, err, errlen);
    if (r < 0)
      return r;
  }
  return 0;
}

/* CRLs a chain is checked against; either may be NULL. */
struct crls {
  X509_CRL *root; /* the root CA's */
  X509_CRL *pck;  /* the PCK (platform or processor) CA's */
  /* Only the leaf is checked: a collateral signer is issued by the root itself (a longer
   * chain finds no CRL for its leaf and is refused), and the root, the trust anchor, is not
   * revoked by its own CRL. Otherwise every certificate of the path is checked. */
  bool leaf_only;
};

/* Validity periods are judged by the windows (see chain_validate), so OpenSSL's verdicts on
 * them are not fatal; everything else is. The CRL a fatal verdict is about is noted in the
 * context's app data (OpenSSL forgets it once the verification returns). */
static int chain_verify_cb(int ok, X509_STORE_CTX *ctx) {
  if (ok)
    return 1;
  switch (X509_STORE_CTX_get_error(ctx)) {
  case X509_V_ERR_CERT_NOT_YET_VALID:
  case X509_V_ERR_CERT_HAS_EXPIRED:
  case X509_V_ERR_CRL_NOT_YET_VALID:
  case X509_V_ERR_CRL_HAS_EXPIRED:
    return 1;
  default: {
    X509_CRL **crl = X509_STORE_CTX_get_app_data(ctx);
    if (crl)
      *crl = X509_STORE_CTX_get0_current_crl(ctx);
    return 0;
  }
  }
}

/* Why OpenSSL found no issuer for c: asks the certificate named as its issuer. */
static const char *issuer_missing_reason(X509 *c, STACK_OF(X509) * sk, X509 *root) {
  if (!c)
    return "issuer certificate not found";
  int n = sk_X509_num(sk);
  for (int i = 0; i <= n; i++) {
    X509 *x = i < n ? sk_X509_value(sk, i) : root;
    if (x == c || X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(c)) != 0)
      continue;
    switch (X509_check_issued(x, c)) {
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
      return "issuer key usage does not allow certificate signing";
    case X509_V_ERR_AKID_SKID_MISMATCH:
    case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
      return "issuer key identifier mismatch";
    default:
      break;
    }
  }
  return "issuer certificate not found";
}

/* The message for OpenSSL's verdict on a chain. */
static int chain_error(X509_STORE_CTX *ctx, STACK_OF(X509) * sk, X509 *root,
                       const struct crls *crls, const X509_CRL *bad_crl, const char *what,
                       char *err, size_t errlen) {
  int e = X509_STORE_CTX_get_error(ctx);
  int depth = X509_STORE_CTX_get_error_depth(ctx);
  X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
  bool root_crl = crls && bad_crl && bad_crl == crls->root;
  const char *crl = root_crl                                 ? "root CA CRL"
                    : crls && bad_crl && bad_crl == crls->pck ? "PCK CRL"
                                                              : "CRL";
  switch (e) {
  case X509_V_ERR_CERT_SIGNATURE_FAILURE:
  case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
  case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
    errf(err, errlen, "%s: certificate signature invalid", what);
    return -EBADMSG;
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    errf(err, errlen, "%s: %s", what, issuer_missing_reason(cur, sk, root));
    return -EBADMSG;
  case X509_V_ERR_INVALID_CA:
    if (cur && (X509_get_extension_flags(cur) & EXFLAG_CA))
      errf(err, errlen, "%s: issuer key usage does not allow certificate signing", what);
    else
      errf(err, errlen, "%s: issuer is not a CA", what);
    return -EBADMSG;
  case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    errf(err, errlen, "%s: path length constraint exceeded", what);
    return -EBADMSG;
  case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
    errf(err, errlen, "%s: certificate has an unknown critical extension", what);
    return -EBADMSG;
  case X509_V_ERR_CERT_REVOKED:
    errf(err, errlen, "%s: certificate revoked", what);
    return -EACCES;
  case X509_V_ERR_CRL_SIGNATURE_FAILURE:
  case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    if (root_crl)
      errf(err, errlen, "root CA CRL: not signed by the root CA");
    else
      errf(err, errlen, "%s: signature invalid", crl);
    return -EBADMSG;
  case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
    errf(err, errlen, "%s: unknown critical extension", crl);
    return -EBADMSG;
  case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    errf(err, errlen, "%s: issuer key usage does not allow CRL signing", crl);
    return -EBADMSG;
  case X509_V_ERR_UNABLE_TO_GET_CRL:
    errf(err, errlen, "%s: no CRL applies to certificate %d", what, depth);
    return -EACCES;
  default:
    errf(err, errlen, "%s: %s (certificate %d)", what, X509_verify_cert_error_string(e), depth);
    return -EBADMSG;
  }
}

/* The path OpenSSL verified must be sk itself (and the root when sk does not end in it): the
 * windows were taken from these certificates. */
static int chain_path_check(STACK_OF(X509) * path, STACK_OF(X509) * sk, X509 *root,
                            const char *what, char *err, size_t errlen) {
  int n = sk_X509_num(sk), m = sk_X509_num(path);
  bool with_root = X509_cmp(sk_X509_value(sk, n - 1), root) == 0;
  bool same = m == (with_root ? n : n + 1);
  for (int i = 0; same && i < m; i++)
    same = X509_cmp(sk_X509_value(path, i), i < n ? sk_X509_value(sk, i) : root) == 0;
  if (!same) {
    errf(err, errlen, "%s: the verified path is not the chain given", what);
    return -EBADMSG;
  }
  return 0;
}

/* Path validation by OpenSSL from sk[0] (the leaf) to the anchor's root, the only trusted
 * certificate, with the rest of sk as untrusted intermediates: signatures, issuer names and key
 * identifiers, CA flags and path lengths, issuers' key usage, unknown critical extensions and
 * RFC 5280's stricter rules (X509_V_FLAG_X509_STRICT); with crls, revocation (a CRL must be
 * there for each certificate checked, and is checked for its signature, issuer, key usage and
 * critical extensions). Validity periods are judged at now but are left to the windows: they
 * are checked on every use of an entry, new or cached, in one order (collateral dates, CRLs,
 * certificates), and that is what lets a cached result be reused while now stays inside them
 * and never outside. */
static int chain_validate(const struct anchor *a, STACK_OF(X509) * sk, const struct crls *crls,
                          int64_t now, const char *what, char *err, size_t errlen) {
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  STACK_OF(X509_CRL) *crl_sk = sk_X509_CRL_new_null();
  X509_CRL *bad_crl = NULL;
  int r = -ENOMEM;
  if (!ctx || !crl_sk)
    goto out;
  if (crls && ((crls->root && !sk_X509_CRL_push(crl_sk, crls->root)) ||
               (crls->pck && !sk_X509_CRL_push(crl_sk, crls->pck))))
    goto out;
  r = -EIO;
  if (X509_STORE_CTX_init(ctx, a->store, sk_X509_value(sk, 0), sk) != 1)
    goto out;
  X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
  unsigned long flags = X509_V_FLAG_X509_STRICT;
  if (crls)
    flags |= X509_V_FLAG_CRL_CHECK | (crls->leaf_only ? 0 : X509_V_FLAG_CRL_CHECK_ALL);
  if (X509_VERIFY_PARAM_set_flags(param, flags) != 1)
    goto out;
  X509_VERIFY_PARAM_set_time(param, (time_t)now);
  X509_STORE_CTX_set0_crls(ctx, crl_sk); /* not owned by ctx */
  X509_STORE_CTX_set_verify_cb(ctx, chain_verify_cb);
  if (X509_STORE_CTX_set_app_data(ctx, &bad_crl) != 1)
    goto out;
  if (X509_verify_cert(ctx) != 1)
    r = chain_error(ctx, sk, a->cert, crls, bad_crl, what, err, errlen);
  else
    r = chain_path_check(X509_STORE_CTX_get0_chain(ctx), sk, a->cert, what, err, errlen);
out:
  ERR_clear_error();
  X509_STORE_CTX_free(ctx);
  sk_X509_CRL_free(crl_sk);
  return r;
}

/* The end of a chain that signs (PCK certificate, TCB signing certificate): not a CA (no
 * CA:TRUE, no keyCertSign), and its key usage (which must be there) allows digital signatures.
 * OpenSSL leaves both to purposes, and none of its purposes fits these certificates. */
static int leaf_signer_check(X509 *leaf, const char *what, char *err, size_t errlen) {
  if ((X509_get_extension_flags(leaf) & EXFLAG_CA) || X509_check_ca(leaf) != 0) {
    errf(err, errlen, "%s: leaf certificate is a CA", what);
    return -EBADMSG;
  }
  if (!(X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) ||
      !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE)) {
    errf(err, errlen, "%s: leaf key usage does not allow digital signatures", what);
    return -EBADMSG;
  }
  return 0;
}

/* The end of the PCK CRL issuer chain: a CA whose key usage allows CRL signing. */
static int leaf_crl_issuer_check(X509 *ca, const char *what, char *err, size_t errlen) {
  if (!(X509_get_extension_flags(ca) & EXFLAG_CA)) {
    errf(err, errlen, "%s: CRL issuer is not a CA", what);
    return -EBADMSG;
  }
  if (!(X509_get_extension_flags(ca) & EXFLAG_KUSAGE) || !(X509_get_key_usage(ca) & KU_CRL_SIGN)) {
    errf(err, errlen, "%s: CRL issuer key usage does not allow CRL signing", what);
    return -EBADMSG;
  }
  return 0;
}

/* Puts the certificates of in in issuing order starting from the first one (the leaf): each
 * next certificate is the issuer of the previous one; the others are left in in. The X509s
 * move to *ret; *ret_last is the index in in of the last one, *ret_root whether it is
 * self-issued (the root). */
static int chain_order(struct x509_pem_certs *in, STACK_OF(X509) * *ret, size_t *ret_last,
                       bool *ret_root) {
  _cleanup_x509_chain_ STACK_OF(X509) *out = sk_X509_new_null();
  if (!out)
    return -ENOMEM;
  bool used[X509_CHAIN_MAX] = {};
  size_t cur = 0;
  *ret_root = false;
  for (size_t steps = 0; steps < in->n; steps++) {
    X509 *c = in->c[cur].cert;
    if (!sk_X509_push(out, c))
      return -ENOMEM;
    in->c[cur].cert = NULL; /* owned by out now */
    used[cur] = true;
    *ret_last = cur;
    if (self_issued(c)) {
      *ret_root = true;
      break;
    }
    size_t next = in->n;
    for (size_t i = 0; i < in->n && next == in->n; i++)
      if (!used[i] &&
          X509_NAME_cmp(X509_get_subject_name(in->c[i].cert), X509_get_issuer_name(c)) == 0)
        next = i;
    if (next == in->n)
      break;
    cur = next;
  }
  *ret = TAKE_PTR(out);
  return 0;
}

static int chain_parse_error(int r, const char *what, char *err, size_t errlen) {
  errf(err, errlen, "%s: %s", what, r == -ENOENT ? "no certificates" : "malformed certificate");
  return r == -ENOENT ? -EBADMSG : r;
}

/* Certificate i of in as an X509: the anchor's own when its bytes are a root's (not parsed
 * again), parsed otherwise. */
static int chain_cert_load(const struct dcap_verifier *v, struct x509_pem_certs *in, size_t i) {
  struct slice d = x509_pem_cert_der(in, i);
  int k = anchor_by_der(v, d);
  if (k < 0)
    return x509_cert_from_der(d.ptr, d.len, &in->c[i].cert);
  if (X509_up_ref(v->anchors[k].cert) != 1)
    return -ENOMEM;
  in->c[i].cert = v->anchors[k].cert;
  return 0;
}

/* A collateral chain (PEM) in issuing order (chain_order); text between the certificates and
 * certificates that are not on the chain are ignored. ret_root_der gets the exact DER of the
 * root when the chain ends in one. */
static int chain_parse(const struct dcap_verifier *v, const char *pem, size_t len,
                       const char *what, STACK_OF(X509) * *ret, struct buf *ret_root_der,
                       char *err, size_t errlen) {
  _cleanup_x509_pem_certs_ struct x509_pem_certs in = {};
  int r = x509_pem_certs_parse(pem, len, X509_PEM_DER_ONLY, &in);
  if (r < 0)
    return chain_parse_error(r, what, err, errlen);
  for (size_t i = 0; i < in.n; i++)
    if ((r = chain_cert_load(v, &in, i)) < 0)
      return chain_parse_error(r, what, err, errlen);
  size_t last;
  bool root;
  if ((r = chain_order(&in, ret, &last, &root)) < 0)
    return r;
  if (root) {
    struct slice d = x509_pem_cert_der(&in, last);
    if ((r = buf_append(ret_root_der, d.ptr, d.len)) < 0)
      return r;
  }
  return 0;
}

/* The quote's PCK chain, strictly: its text is exactly PEM certificates (and a final NUL), one
 * of them byte for byte a trusted root (looked for first: nothing is parsed or verified under
 * another root), all of them on the chain from the first (the leaf) to that root. */
static int pck_chain_parse(struct dcap_verifier *v, const char *pem, size_t len,
                           const char *what, STACK_OF(X509) * *ret, struct buf *ret_root_der,
                           char *err, size_t errlen) {
  _cleanup_x509_pem_certs_ struct x509_pem_certs in = {};
  int r = x509_pem_certs_parse(pem, len, X509_PEM_STRICT | X509_PEM_DER_ONLY, &in);
  if (r < 0)
    return chain_parse_error(r, what, err, errlen);
  size_t root_at = in.n;
  int anchor = -1;
  for (size_t i = 0; i < in.n && anchor < 0; i++)
    if ((anchor = anchor_by_der(v, x509_pem_cert_der(&in, i))) >= 0)
      root_at = i;
  if (anchor < 0) {
    /* which root it is, for the message: the last certificate as a rule */
    _cleanup_(X509_freep) X509 *last = NULL;
    struct slice d = x509_pem_cert_der(&in, in.n - 1);
    if (x509_cert_from_der(d.ptr, d.len, &last) < 0)
      return chain_parse_error(-EBADMSG, what, err, errlen);
    if (cn_contains(last, "Simulated"))
      errf(err, errlen, "%s: root CA not trusted (simulator root; simulator not allowed)", what);
    else
      errf(err, errlen, "%s: root CA not trusted (Intel test root?)", what);
    return -EACCES;
  }
  for (size_t i = 0; i < in.n; i++)
    if ((r = chain_cert_load(v, &in, i)) < 0)
      return chain_parse_error(r, what, err, errlen);
  _cleanup_x509_chain_ STACK_OF(X509) *sk = NULL;
  size_t last;
  bool root;
  if ((r = chain_order(&in, &sk, &last, &root)) < 0)
    return r;
  if ((size_t)sk_X509_num(sk) != in.n || !root || last != root_at) {
    errf(err, errlen, "%s: %s", what,
         (size_t)sk_X509_num(sk) != in.n ? "a certificate is not on the chain"
                                         : "the chain does not end in the root");
    return -EBADMSG;
  }
  struct slice d = x509_pem_cert_der(&in, root_at);
  if ((r = buf_append(ret_root_der, d.ptr, d.len)) < 0)
    return r;
  *ret = TAKE_PTR(sk);
  return 0;
}

/* ---- PCK chain entries ---- */

static void chain_entry_free(struct entry *e) {
  struct chain_entry *c = (struct chain_entry *)e;
  x509_chain_free(c->certs);
  EVP_PKEY_free(c->leaf_pub);
  EVP_PKEY_free(c->ca_pub);
  EVP_PKEY_free(c->attest_pub);
  buf_free(&c->leaf_issuer_der);
  free(c);
}

/* The PCK leaf and its CA: what Intel's names and the SGX extension say. */
static int chain_pck_check(struct dcap_verifier *v, struct chain_entry *c, const char *what,
                           char *err, size_t errlen) {
  bool sim = c->anchor == ANCHOR_SIM;
  if (!cn_contains(c->leaf, "SGX PCK Certificate") || (!sim && cn_contains(c->leaf, "Simulated"))) {
    errf(err, errlen, "%s: leaf is not an SGX PCK certificate", what);
    return -EBADMSG;
  }
  int r = leaf_signer_check(c->leaf, what, err, errlen);
  if (r < 0)
    return r;
  X509 *ca = sk_X509_num(c->certs) > 1 ? sk_X509_value(c->certs, 1) : v->anchors[c->anchor].cert;
  if (cn_contains(ca, "SGX PCK Platform CA"))
    snprintf(c->ca, sizeof(c->ca), "platform");
  else if (cn_contains(ca, "SGX PCK Processor CA"))
    snprintf(c->ca, sizeof(c->ca), "processor");
  else {
    errf(err, errlen, "%s: issuer is not an SGX PCK Platform/Processor CA", what);
    return -EBADMSG;
  }
  if (!sim && cn_contains(ca, "Simulated")) {
    errf(err, errlen, "%s: simulated CA under the Intel root", what);
    return -EBADMSG;
  }
  if (x509_cert_public_key(c->leaf, &c->leaf_pub) < 0 || x509_cert_public_key(ca, &c->ca_pub) < 0) {
    errf(err, errlen, "%s: bad public key", what);
    return -EBADMSG;
  }
  if (EVP_PKEY_get_base_id(c->leaf_pub) != EVP_PKEY_EC) {
    errf(err, errlen, "%s: PCK key is not ECDSA", what);
    return -EBADMSG;
  }
  r = pck_cert_ext(c->leaf, &c->ext);
  if (r < 0) {
    errf(err, errlen, "%s: %s SGX extension", what, r == -ENOENT ? "no" : "malformed");
    return -EBADMSG;
  }
  r = name_der(X509_get_issuer_name(c->leaf), &c->leaf_issuer_der);
  if (r < 0) {
    errf(err, errlen, "%s: bad issuer name", what);
    return r;
  }
  return 0;
}

/* A new entry: the chain parsed, its windows recorded, its names and PCK extension checked. Not
 * validated yet (chain_validate): see chain_get. */
static int chain_build(struct dcap_verifier *v, const struct slice pem, const uint8_t key[32],
                       struct chain_entry **ret, char *err, size_t errlen) {
  static const char what[] = "PCK chain";
  struct chain_entry *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  c->e.refs = 1;
  c->e.free_fn = chain_entry_free;
  memcpy(c->e.key, key, 32);
  buf_init(&c->leaf_issuer_der, 4096);
  _cleanup_buf_ struct buf root_der = BUF_INIT(X509_INPUT_MAX);
  int r = pck_chain_parse(v, (const char *)pem.ptr, pem.len, what, &c->certs, &root_der, err,
                          errlen);
  if (r >= 0)
    r = chain_anchor_find(v, c->certs, buf_slice(&root_der), what, &c->anchor, err, errlen);
  if (r >= 0)
    r = chain_windows_add(c->certs, v->anchors[c->anchor].cert, what, &c->win, err, errlen);
  if (r < 0)
    goto fail;
  /* keep only the leaf and CAs (the root is the anchor's) */
  X509_free(sk_X509_pop(c->certs));
  c->leaf = sk_X509_value(c->certs, 0);
  r = chain_pck_check(v, c, what, err, errlen);
  if (r < 0)
    goto fail;
  *ret = c;
  return 0;
fail:
  chain_entry_free(&c->e);
  return r;
}

/* The cached entry of the chain pem, or a new one (*ret_fresh) that its caller validates, with
 * or without the collateral's CRLs, and then caches (chain_put): only validated chains are
 * cached, and a chain that comes with collateral is validated once, not twice. */
static int chain_get(struct dcap_verifier *v, struct slice pem, struct chain_entry **ret,
                     bool *ret_fresh, char *err, size_t errlen) {
  uint8_t key[32];
  sha256(pem.ptr, pem.len, key);
  struct entry *e = cache_get(v, &v->chains, key);
  *ret_fresh = !e;
  if (!e) {
    struct chain_entry *c = NULL;
    int r = chain_build(v, pem, key, &c, err, errlen);
    if (r < 0)
      return r;
    e = &c->e;
  }
  *ret = (struct chain_entry *)e;
  return 0;
}

/* Caches a fresh entry that passed; *c becomes the cached one (another thread's, maybe). */
static void chain_put(struct dcap_verifier *v, struct chain_entry **c) {
  *c = (struct chain_entry *)cache_put(v, &v->chains, &(*c)->e);
}

/* ---- collateral entries ---- */

static void coll_entry_free(struct entry *e) {
  struct coll_entry *c = (struct coll_entry *)e;
  dcap_tcb_info_free(&c->tcb);
  dcap_qe_identity_free(&c->qe);
  X509_CRL_free(c->root_crl);
  X509_CRL_free(c->pck_crl);
  buf_free(&c->pck_crl_issuer_der);
  free(c);
}

static int crl_load(const struct buf *der, const char *what, X509_CRL **ret, struct windows *win,
                    int64_t *ret_next, char *err, size_t errlen) {
  const unsigned char *p = der->data;
  _cleanup_(X509_CRL_freep) X509_CRL *crl = der->len ? d2i_X509_CRL(NULL, &p, (long)der->len)
                                                      : NULL;
  ERR_clear_error();
  if (!crl || p != der->data + der->len) {
    errf(err, errlen, "%s: malformed", what);
    return -EBADMSG;
  }
  int64_t t1, t2;
  if (asn1_time_unix(X509_CRL_get0_lastUpdate(crl), &t1) < 0 ||
      asn1_time_unix(X509_CRL_get0_nextUpdate(crl), &t2) < 0) {
    errf(err, errlen, "%s: missing thisUpdate/nextUpdate", what);
    return -EBADMSG;
  }
  int r = window_add(win, what, WIN_CRL, t1, t2, err, errlen);
  if (r < 0)
    return r;
  *ret_next = t2;
  /* sort the revoked list now, before the CRL is shared between threads */
  X509_REVOKED *rev;
  _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *zero = ASN1_INTEGER_new();
  if (zero)
    (void)X509_CRL_get0_by_serial(crl, &rev, zero);
  *ret = TAKE_PTR(crl);
  return 0;
}

/* TCB info and QE identity, parsed; their dates become windows. */
static int coll_json_load(struct coll_entry *c, const struct dcap_collateral *col, char *err,
                          size_t errlen) {
  if (!col->tcb_info || !col->qe_identity) {
    errf(err, errlen, "collateral: TCB info or QE identity missing");
    return -EBADMSG;
  }
  int r = dcap_tcb_info_parse(col->tcb_info, strlen(col->tcb_info), &c->tcb);
  if (r < 0) {
    errf(err, errlen, "TCB info: %s",
         r == -ENOTSUP ? "unsupported id or version (need v3)" : "malformed");
    return r;
  }
  r = dcap_qe_identity_parse(col->qe_identity, strlen(col->qe_identity), &c->qe);
  if (r < 0) {
    errf(err, errlen, "QE identity: %s",
         r == -ENOTSUP ? "unsupported id or version (need v2)" : "malformed");
    return r;
  }
  r = window_add(&c->win, "TCB info", WIN_JSON, c->tcb.issue_date, c->tcb.next_update, err,
                 errlen);
  if (r >= 0)
    r = window_add(&c->win, "QE identity", WIN_JSON, c->qe.issue_date, c->qe.next_update, err,
                   errlen);
  return r;
}

/* The root CA CRL and the PCK CRL, parsed; their dates become windows. */
static int coll_crls_load(struct coll_entry *c, const struct dcap_collateral *col, char *err,
                          size_t errlen) {
  int64_t root_next, pck_next;
  int r = crl_load(&col->root_ca_crl, "root CA CRL", &c->root_crl, &c->win, &root_next, err,
                   errlen);
  if (r < 0)
    return r;
  r = crl_load(&col->pck_crl, "PCK CRL", &c->pck_crl, &c->win, &pck_next, err, errlen);
  if (r < 0)
    return r;
  r = name_der(X509_CRL_get_issuer(c->pck_crl), &c->pck_crl_issuer_der);
  if (r < 0) {
    errf(err, errlen, "PCK CRL: bad issuer name");
    return r;
  }
  c->expiry = MIN(MIN(c->tcb.next_update, c->qe.next_update), MIN(root_next, pck_next));
  return 0;
}

/* A chain of the collateral, parsed and ordered, its anchor found, its certificates' validity
 * recorded; verified later (coll_signed_check, coll_pck_crl_check). */
struct coll_chain {
  char what[40];
  STACK_OF(X509) * certs;
  enum anchor_kind anchor;
};

static void coll_chain_done(struct coll_chain *ch) {
  x509_chain_free(ch->certs);
  ch->certs = NULL;
}

static int coll_chain_load(struct dcap_verifier *v, struct coll_entry *c, const char *pem,
                           const char *what, struct coll_chain *ret, char *err, size_t errlen) {
  snprintf(ret->what, sizeof(ret->what), "%s", what);
  if (!pem) {
    errf(err, errlen, "%s: missing", what);
    return -EBADMSG;
  }
  _cleanup_buf_ struct buf root_der = BUF_INIT(X509_INPUT_MAX);
  int r = chain_parse(v, pem, strlen(pem), what, &ret->certs, &root_der, err, errlen);
  if (r >= 0)
    r = chain_anchor_find(v, ret->certs, buf_slice(&root_der), what, &ret->anchor, err, errlen);
  if (r >= 0)
    r = chain_windows_add(ret->certs, v->anchors[ret->anchor].cert, what, &c->win, err, errlen);
  return r;
}

/* TCB info or QE identity: signed (over the exact text) by the leaf of its chain, an SGX TCB
 * signing certificate; the chain validated against the root CA CRL unless done already (the
 * same chain as the TCB info's). */
static int coll_signed_check(struct dcap_verifier *v, const struct coll_entry *c,
                             const struct coll_chain *ch, bool validated, const char *what,
                             const char *text, const uint8_t sig[64], int64_t now, char *err,
                             size_t errlen) {
  X509 *leaf = sk_X509_value(ch->certs, 0);
  if (!cn_contains(leaf, "SGX TCB Signing")) {
    errf(err, errlen, "%s: leaf is not an SGX TCB Signing certificate", ch->what);
    return -EBADMSG;
  }
  const struct crls crls = {.root = c->root_crl, .leaf_only = true};
  int r = validated ? 0
                    : chain_validate(&v->anchors[ch->anchor], ch->certs, &crls, now, ch->what,
                                     err, errlen);
  if (r >= 0)
    r = leaf_signer_check(leaf, ch->what, err, errlen);
  if (r < 0)
    return r;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
  if (x509_cert_public_key(leaf, &pub) < 0 ||
      key_ecdsa_verify_raw(pub, text, strlen(text), sig) < 0) {
    errf(err, errlen, "%s signature invalid", what);
    return -EBADMSG;
  }
  return 0;
}

/* The PCK CRL issued by the leaf of its issuer chain (a PCK CA under the root). Done once per
 * collateral; the PCK chain of each quote is checked against the CRL later (pck_crls_check). */
static int coll_pck_crl_check(struct dcap_verifier *v, const struct coll_entry *c,
                              const struct coll_chain *ch, int64_t now, char *err,
                              size_t errlen) {
  const struct crls crls = {.root = c->root_crl, .leaf_only = true};
  int r = chain_validate(&v->anchors[ch->anchor], ch->certs, &crls, now, ch->what, err, errlen);
  if (r < 0)
    return r;
  X509 *ca = sk_X509_value(ch->certs, 0);
  r = leaf_crl_issuer_check(ca, ch->what, err, errlen);
  if (r < 0)
    return r;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
  bool ok = X509_NAME_cmp(X509_CRL_get_issuer(c->pck_crl), X509_get_subject_name(ca)) == 0 &&
            x509_cert_public_key(ca, &pub) >= 0 && X509_CRL_verify(c->pck_crl, pub) == 1;
  ERR_clear_error();
  if (!ok) {
    errf(err, errlen, "PCK CRL: signature invalid or issuer mismatch");
    return -EBADMSG;
  }
  return 0;
}

/* Everything is parsed and every window recorded first, then verified: the TCB info and QE
 * identity signing chains and the PCK CRL issuer chain (all against the root CA CRL), the
 * signatures over the JSON texts, and the PCK CRL's. */
static int coll_build(struct dcap_verifier *v, const struct dcap_collateral *col,
                      const uint8_t key[32], int64_t now, struct coll_entry **ret, char *err,
                      size_t errlen) {
  struct coll_entry *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  c->e.refs = 1;
  c->e.free_fn = coll_entry_free;
  memcpy(c->e.key, key, 32);
  buf_init(&c->pck_crl_issuer_der, 4096);
  struct coll_chain tcb = {}, qe_own = {}, pck = {};
  const struct coll_chain *qe = &qe_own;
  bool pck_chain = col->pck_crl_issuer_chain && col->pck_crl_issuer_chain[0];
  /* the TCB info and QE identity are signed by the same chain as a rule: validated once */
  bool same = col->tcb_info_issuer_chain && col->qe_identity_issuer_chain &&
              str_eq(col->tcb_info_issuer_chain, col->qe_identity_issuer_chain);

  int r = coll_json_load(c, col, err, errlen);
  if (r >= 0)
    r = coll_crls_load(c, col, err, errlen);
  if (r >= 0)
    r = coll_chain_load(v, c, col->tcb_info_issuer_chain, "TCB info signing chain", &tcb, err,
                        errlen);
  if (r >= 0 && same)
    qe = &tcb;
  else if (r >= 0)
    r = coll_chain_load(v, c, col->qe_identity_issuer_chain, "QE identity signing chain",
                        &qe_own, err, errlen);
  if (r >= 0 && pck_chain)
    r = coll_chain_load(v, c, col->pck_crl_issuer_chain, "PCK CRL issuer chain", &pck, err,
                        errlen);
  if (r < 0)
    goto out;

  r = -EACCES;
  if (tcb.anchor != qe->anchor) {
    errf(err, errlen, "collateral: TCB info and QE identity chain to different roots");
    goto out;
  }
  if (pck_chain && pck.anchor != tcb.anchor) {
    errf(err, errlen, "collateral: PCK CRL issuer chain has another root");
    goto out;
  }
  c->anchor = tcb.anchor;
  if (X509_NAME_cmp(X509_CRL_get_issuer(c->root_crl),
                    X509_get_subject_name(v->anchors[c->anchor].cert)) != 0) {
    errf(err, errlen, "root CA CRL: not issued by the root CA");
    r = -EBADMSG;
    goto out;
  }

  r = coll_signed_check(v, c, &tcb, false, "TCB info", col->tcb_info, col->tcb_info_signature,
                        now, err, errlen);
  if (r >= 0)
    r = coll_signed_check(v, c, qe, same, "QE identity", col->qe_identity,
                          col->qe_identity_signature, now, err, errlen);
  if (r >= 0 && pck_chain)
    r = coll_pck_crl_check(v, c, &pck, now, err, errlen);
out:
  coll_chain_done(&tcb);
  coll_chain_done(&qe_own);
  coll_chain_done(&pck);
  if (r < 0) {
    coll_entry_free(&c->e);
    return r;
  }
  *ret = c;
  return 0;
}

static void hash_field(struct hash_ctx *h, const void *p, size_t n) {
  uint8_t len[8];
  le64_write(len, n);
  (void)hash_ctx_update(h, len, 8);
  if (n)
    (void)hash_ctx_update(h, p, n);
}

static void hash_str(struct hash_ctx *h, const char *s) {
  hash_field(h, s ? s : "", s ? strlen(s) + 1 : 0);
}

static int coll_key(const struct dcap_collateral *c, uint8_t key[32]) {
  struct hash_ctx *h = NULL;
  int r = hash_ctx_new(HASH_SHA256, &h);
  if (r < 0)
    return r;
  hash_str(h, c->pck_crl_issuer_chain);
  hash_field(h, c->root_ca_crl.data, c->root_ca_crl.len);
  hash_field(h, c->pck_crl.data, c->pck_crl.len);
  hash_str(h, c->tcb_info_issuer_chain);
  hash_str(h, c->tcb_info);
  hash_field(h, c->tcb_info_signature, 64);
  hash_str(h, c->qe_identity_issuer_chain);
  hash_str(h, c->qe_identity);
  hash_field(h, c->qe_identity_signature, 64);
  r = hash_ctx_final(h, key);
  hash_ctx_free(h);
  return r;
}

static int coll_get(struct dcap_verifier *v, const struct dcap_collateral *col, int64_t now,
                    struct coll_entry **ret, char *err, size_t errlen) {
  uint8_t key[32];
  int r = coll_key(col, key);
  if (r < 0)
    return r;
  struct entry *e = cache_get(v, &v->colls, key);
  if (!e) {
    struct coll_entry *c = NULL;
    r = coll_build(v, col, key, now, &c, err, errlen);
    if (r < 0)
      return r;
    e = cache_put(v, &v->colls, &c->e);
  }
  *ret = (struct coll_entry *)e;
  return 0;
}

/* ---- results ---- */

void dcap_result_free(struct dcap_result *r) {
  if (!r)
    return;
  strv_free(r->advisory_ids);
  free(r->quote_data);
  *r = (struct dcap_result){};
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int advisories_collect(const struct dcap_tcb_outcome *o, struct dcap_result *res) {
  const char *const *lists[3] = {
      (const char *const *)o->platform_level->advisory_ids,
      (const char *const *)o->qe_level->advisory_ids,
      o->module_level ? (const char *const *)o->module_level->advisory_ids : NULL,
  };
  size_t counts[3] = {o->platform_level->n_advisory_ids, o->qe_level->n_advisory_ids,
                      o->module_level ? o->module_level->n_advisory_ids : 0};
  size_t total = counts[0] + counts[1] + counts[2];
  if (total == 0)
    return 0;
  char **v = calloc(total + 1, sizeof(char *));
  if (!v)
    return -ENOMEM;
  size_t n = 0;
  for (size_t l = 0; l < 3; l++)
    for (size_t i = 0; i < counts[l]; i++) {
      v[n] = strdup(lists[l][i]);
      if (!v[n]) {
        strv_free(v);
        return -ENOMEM;
      }
      n++;
    }
  qsort(v, n, sizeof(char *), cmp_str);
  size_t u = 0;
  for (size_t i = 0; i < n; i++) {
    if (u > 0 && str_eq(v[u - 1], v[i])) {
      free(v[i]);
      v[i] = NULL;
      continue;
    }
    v[u++] = v[i];
    if (u - 1 != i)
      v[i] = NULL;
  }
  v[u] = NULL;
  res->advisory_ids = v;
  res->n_advisory_ids = u;
  return 0;
}

/* ---- verification ---- */

/* The quote's QE and certification data are what this verifier knows: Intel's QE, a PCK chain. */
static int quote_kind_check(const struct quote *q, char *err, size_t errlen) {
  if (memcmp(q->qe_vendor_id, intel_qe_vendor_id, 16) != 0) {
    errf(err, errlen, "quote: unsupported QE vendor ID");
    return -ENOTSUP;
  }
  if (q->cert_type != QUOTE_CERT_PCK_CHAIN || q->pck_chain_pem.len == 0) {
    errf(err, errlen, "quote: certification data type %u is not a PCK chain", q->cert_type);
    return -ENOTSUP;
  }
  return 0;
}

/* quote[0..len) copied into res (which owns it from then on) and parsed there. */
static int quote_load(const uint8_t *quote, size_t len, struct dcap_result *res, char *err,
                      size_t errlen) {
  if (len > DCAP_MAX_INPUT) {
    errf(err, errlen, "quote too large");
    return -ENOBUFS;
  }
  res->quote_data = malloc(len ? len : 1);
  if (!res->quote_data)
    return -ENOMEM;
  memcpy(res->quote_data, quote, len);
  res->quote_len = len;
  char why[160] = "";
  int r = quote_parse_msg(res->quote_data, len, &res->quote, why, sizeof(why));
  if (r < 0) {
    errf(err, errlen, "quote: %s", why[0] ? why : "malformed");
    return r;
  }
  return quote_kind_check(&res->quote, err, errlen);
}

/* The QE report signed by the PCK key; verified once per distinct report of this PCK (the
 * chain entry remembers the latest). */
static int qe_report_sig_check(struct dcap_verifier *v, struct chain_entry *ch,
                               const struct quote *q, char *err, size_t errlen) {
  uint8_t memo[32];
  struct hash_ctx *h = NULL;
  int r = hash_ctx_new(HASH_SHA256, &h);
  if (r >= 0)
    r = hash_ctx_update(h, q->qe_report_raw, QUOTE_QE_REPORT_SIZE);
  if (r >= 0)
    r = hash_ctx_update(h, q->qe_report_sig, 64);
  if (r >= 0)
    r = hash_ctx_final(h, memo);
  hash_ctx_free(h);
  if (r < 0)
    return r;
  pthread_mutex_lock(&v->lock);
  bool known = ch->qe_memo_set && memcmp(ch->qe_memo, memo, 32) == 0;
  pthread_mutex_unlock(&v->lock);
  if (known)
    return 0;
  if (key_ecdsa_verify_raw(ch->leaf_pub, q->qe_report_raw, QUOTE_QE_REPORT_SIZE,
                           q->qe_report_sig) < 0) {
    errf(err, errlen, "QE report signature invalid");
    return -EBADMSG;
  }
  pthread_mutex_lock(&v->lock);
  memcpy(ch->qe_memo, memo, 32);
  ch->qe_memo_set = true;
  pthread_mutex_unlock(&v->lock);
  return 0;
}

/* The QE report's data: SHA-256(attestation key || QE auth data) || 0*32. */
static int qe_report_binding_check(const struct quote *q, char *err, size_t errlen) {
  struct hash_ctx *h = NULL;
  uint8_t rd[64] = {};
  int r = hash_ctx_new(HASH_SHA256, &h);
  if (r >= 0)
    r = hash_ctx_update(h, q->attest_key, 64);
  if (r >= 0 && q->qe_auth_data.len)
    r = hash_ctx_update(h, q->qe_auth_data.ptr, q->qe_auth_data.len);
  if (r >= 0)
    r = hash_ctx_final(h, rd);
  hash_ctx_free(h);
  if (r < 0)
    return r;
  if (memcmp(rd, q->qe_report.report_data, 64) != 0) {
    errf(err, errlen, "QE report data does not bind the attestation key");
    return -EBADMSG;
  }
  return 0;
}

/* The quote signed by the attestation key (its EVP_PKEY is kept with the PCK chain). */
static int quote_sig_check(struct dcap_verifier *v, struct chain_entry *ch, const struct quote *q,
                           char *err, size_t errlen) {
  EVP_PKEY *ak = NULL;
  pthread_mutex_lock(&v->lock);
  if (ch->attest_pub && memcmp(ch->attest_raw, q->attest_key, 64) == 0 &&
      EVP_PKEY_up_ref(ch->attest_pub) == 1)
    ak = ch->attest_pub;
  pthread_mutex_unlock(&v->lock);
  if (!ak) {
    if (key_p256_from_public_raw(q->attest_key, &ak) < 0) {
      errf(err, errlen, "quote: attestation key is not a P-256 point");
      return -EBADMSG;
    }
    pthread_mutex_lock(&v->lock);
    if (EVP_PKEY_up_ref(ak) == 1) {
      EVP_PKEY_free(ch->attest_pub);
      ch->attest_pub = ak;
      memcpy(ch->attest_raw, q->attest_key, 64);
    }
    pthread_mutex_unlock(&v->lock);
  }
  int r = key_ecdsa_verify_raw(ak, q->signed_data.ptr, q->signed_data.len, q->signature);
  EVP_PKEY_free(ak);
  if (r < 0) {
    errf(err, errlen, "quote signature invalid");
    return -EBADMSG;
  }
  return 0;
}

/* The signatures a quote carries, checked with its (verified) PCK chain: the QE report signed by
 * the PCK key, its report data binding the attestation key, the quote signed by that key. */
static int quote_sigs_check(struct dcap_verifier *v, struct chain_entry *ch, const struct quote *q,
                            char *err, size_t errlen) {
  int r = qe_report_sig_check(v, ch, q, err, errlen);
  if (r >= 0)
    r = qe_report_binding_check(q, err, errlen);
  if (r >= 0)
    r = quote_sig_check(v, ch, q, err, errlen);
  return r;
}

/* The PCK chain and the collateral: the same root, and now inside every validity window
 * (collateral dates first, the usual reason, then CRLs, then certificates). */
static int coll_chain_match(const struct chain_entry *ch, const struct coll_entry *co, int64_t now,
                            char *err, size_t errlen) {
  if (ch->anchor != co->anchor) {
    errf(err, errlen, "collateral and PCK chain have different roots (%s vs %s)",
         co->anchor == ANCHOR_SIM ? "simulator" : "Intel",
         ch->anchor == ANCHOR_SIM ? "simulator" : "Intel");
    return -EACCES;
  }
  int r;
  if ((r = windows_check(&co->win, WIN_JSON, now, err, errlen)) < 0 ||
      (r = windows_check(&co->win, WIN_CRL, now, err, errlen)) < 0 ||
      (r = windows_check(&ch->win, WIN_CERT, now, err, errlen)) < 0 ||
      (r = windows_check(&co->win, WIN_CERT, now, err, errlen)) < 0)
    return r;
  return 0;
}

/* The PCK chain validated against the collateral's root CA CRL and PCK CRL, once per chain and
 * collateral: the chain entry remembers the collateral (its cache key, which covers the CRLs'
 * bytes) it last passed with. The work is done outside the verifier lock. A fresh entry
 * (chain_get) is cached once it passed. */
static int pck_crls_check(struct dcap_verifier *v, struct chain_entry **chp, bool fresh,
                          const struct coll_entry *co, int64_t now, char *err, size_t errlen) {
  struct chain_entry *ch = *chp;
  const struct anchor *a = &v->anchors[ch->anchor];
  int r;
  if (ch->leaf_issuer_der.len != co->pck_crl_issuer_der.len ||
      memcmp(ch->leaf_issuer_der.data, co->pck_crl_issuer_der.data, ch->leaf_issuer_der.len) != 0) {
    /* a broken chain says so first */
    if (fresh && (r = chain_validate(a, ch->certs, NULL, now, "PCK chain", err, errlen)) < 0)
      return r;
    if (fresh)
      chain_put(v, chp); /* ch may be gone now */
    errf(err, errlen, "PCK CRL: issuer is not the PCK certificate's issuer (a %s CA)",
         (*chp)->ca);
    return -EACCES;
  }
  pthread_mutex_lock(&v->lock);
  bool known = ch->crl_memo_set && memcmp(ch->crl_memo, co->e.key, 32) == 0;
  pthread_mutex_unlock(&v->lock);
  if (known)
    return 0;
  const struct crls crls = {.root = co->root_crl, .pck = co->pck_crl};
  r = chain_validate(a, ch->certs, &crls, now, "PCK chain", err, errlen);
  if (r < 0)
    return r;
  pthread_mutex_lock(&v->lock);
  memcpy(ch->crl_memo, co->e.key, 32);
  ch->crl_memo_set = true;
  pthread_mutex_unlock(&v->lock);
  if (fresh)
    chain_put(v, chp);
  return 0;
}

/* The QE identity and TCB levels the quote matches, into res. */
static int tcb_match(const struct chain_entry *ch, const struct coll_entry *co,
                     const struct quote *q, struct dcap_result *res, char *err, size_t errlen) {
  const struct dcap_isv_level *qe_level = NULL;
  char why[160] = "";
  int r = dcap_qe_identity_check(&co->qe, q->tee_type, &q->qe_report, &qe_level, why,
                                 sizeof(why));
  if (r < 0) {
    errf(err, errlen, "%s", why);
    return r;
  }
  struct dcap_tcb_outcome o;
  r = dcap_tcb_evaluate(&co->tcb, q, &ch->ext, qe_level, &o, why, sizeof(why));
  if (r < 0) {
    errf(err, errlen, "%s", why);
    return r;
  }
  r = advisories_collect(&o, res);
  if (r < 0)
    return r;
  res->status = o.status;
  res->platform_status = o.platform_status;
  res->qe_status = o.qe_status;
  res->module_status = o.module_status;
  res->tcb_date = o.platform_level->tcb_date;
  return 0;
}

int dcap_verify(struct dcap_verifier *v, const uint8_t *quote, size_t len,
                const struct dcap_collateral *col, int64_t now, struct dcap_result *ret, char *err,
                size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (ret)
    *ret = (struct dcap_result){};
  if (!v || !quote || !col || !ret) {
    errf(err, errlen, "invalid argument");
    return -EINVAL;
  }
  struct dcap_result res = {};
  struct chain_entry *ch = NULL;
  struct coll_entry *co = NULL;
  bool fresh = false;
  const struct quote *q = &res.quote;
  int r = quote_load(quote, len, &res, err, errlen);
  if (r >= 0)
    r = chain_get(v, q->pck_chain_pem, &ch, &fresh, err, errlen);
  if (r >= 0)
    r = coll_get(v, col, now, &co, err, errlen);
  if (r >= 0)
    r = coll_chain_match(ch, co, now, err, errlen);
  if (r >= 0)
    r = pck_crls_check(v, &ch, fresh, co, now, err, errlen);
  if (r >= 0)
    r = quote_sigs_check(v, ch, q, err, errlen);
  if (r >= 0)
    r = tcb_match(ch, co, q, &res, err, errlen);
  if (r < 0)
    goto out;
  memcpy(res.fmspc, ch->ext.fmspc, 6);
  memcpy(res.pce_id, ch->ext.pceid, 2);
  snprintf(res.pck_ca, sizeof(res.pck_ca), "%s", ch->ca);
  res.tee_type = q->tee_type;
  res.collateral_expiry = co->expiry;
  res.tcb_eval_num = co->tcb.tcb_eval_num;
  res.simulated = ch->anchor == ANCHOR_SIM;
  *ret = res;
  res = (struct dcap_result){};
out:
  entry_unref(v, ch ? &ch->e : NULL);
  entry_unref(v, co ? &co->e : NULL);
  dcap_result_free(&res);
  if (r < 0 && err && errlen && !err[0])
    errf(err, errlen, "%s", strerror(-r));
  return r < 0 ? r : 0;
}

size_t dcap_result_trailing_bytes(const struct dcap_result *r) {
  return r->quote_len > r->quote.total_len ? r->quote_len - r->quote.total_len : 0;
}

int dcap_result_to_json(const struct dcap_result *r, bool with_body, json_t **ret) {
  if (!r || !ret)
    return -EINVAL;
  _cleanup_json_ json_t *j = json_object();
  json_t *adv = json_array();
  if (!j || !adv) {
    json_decref(adv);
    return -ENOMEM;
  }
  int rr = json_set_new(j, "status", json_string(dcap_status_name(r->status)));
  if (rr >= 0)
    rr = json_set_new(j, "advisory_ids", adv);
  else
    json_decref(adv);
  for (size_t i = 0; rr >= 0 && i < r->n_advisory_ids; i++)
    if (json_array_append_new(adv, json_string(r->advisory_ids[i])) < 0)
      rr = -ENOMEM;
  char date[32];
  dcap_format_date(r->collateral_expiry, date);
  if (rr >= 0)
    rr = json_set_hex(j, "fmspc", r->fmspc, 6);
  if (rr >= 0)
    rr = json_set_str(j, "tee_type", r->tee_type == QUOTE_TEE_TDX ? "TDX" : "SGX");
  if (rr >= 0)
    rr = json_set_bool(j, "simulated", r->simulated);
  if (rr >= 0)
    rr = json_set_str(j, "collateral_expiry", date);
  if (rr >= 0)
    rr = json_set_str(j, "platform_status", dcap_status_name(r->platform_status));
  if (rr >= 0)
    rr = json_set_str(j, "qe_status", dcap_status_name(r->qe_status));
  if (rr >= 0)
    rr = json_set_str(j, "module_status", dcap_status_name(r->module_status));
  if (rr >= 0)
    rr = json_set_str(j, "pck_ca", r->pck_ca);
  if (rr >= 0)
    rr = json_set_u64(j, "quote_version", r->quote.version);
  if (rr >= 0)
    rr = json_set_u64(j, "trailing_bytes", dcap_result_trailing_bytes(r));
  if (rr >= 0 && with_body) {
    json_t *body = NULL;
    rr = quote_to_json(&r->quote, &body);
    if (rr >= 0)
      rr = json_set_new(j, "body", body);
  }
  if (rr < 0)
    return rr;
  *ret = TAKE_PTR(j);
  return 0;
}

/* ---- what needs no collateral ---- */

int dcap_verify_no_collateral(struct dcap_verifier *v, const struct quote *q, int64_t now,
                              bool *ret_simulated, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!v || !q) {
    errf(err, errlen, "invalid argument");
    return -EINVAL;
  }
  int r = quote_kind_check(q, err, errlen);
  if (r < 0)
    return r;
  struct chain_entry *ch = NULL;
  bool fresh;
  r = chain_get(v, q->pck_chain_pem, &ch, &fresh, err, errlen);
  if (r < 0)
    return r;
  if (fresh) {
    r = chain_validate(&v->anchors[ch->anchor], ch->certs, NULL, now, "PCK chain", err, errlen);
    if (r >= 0)
      chain_put(v, &ch);
  }
  if (r >= 0)
    r = windows_check(&ch->win, WIN_CERT, now, err, errlen);
  if (r >= 0)
    r = quote_sigs_check(v, ch, q, err, errlen);
  if (r >= 0 && ret_simulated)
    *ret_simulated = ch->anchor == ANCHOR_SIM;
  entry_unref(v, &ch->e);
  return r < 0 ? r : 0;
}

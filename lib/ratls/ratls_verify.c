/* Verification of RA-TLS peers: binding, DCAP, event-log replay, app identity. */
#include "ratls_verify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/boot_events.h"
#include "attest/dcap_collateral.h"
#include "collateral/dcap_fetch.h"
#include "attest/quote.h"
#include "attest/quoted_key.h"
#include "attest/sim.h"
#include "net/offload.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "crypto/x509.h"

#define FETCH_TIMEOUT_MS 30000L
#define FETCH_FAIL_TTL_S 30 /* a failed fetch is not retried for the same chain before this */
#define PREFETCH_MAX_INFLIGHT 16
#define CHAIN_CACHE_N 64
#define PLATFORM_CACHE_N 32
#define DIR_SIG_MAX_ENTRIES 4096

/* The head of a cache entry (slots_find). */
struct slot {
  bool used;
  uint64_t stamp; /* last use, for eviction */
};

/* What the verifier learnt about one PCK certificate chain (quotes of one platform carry the
 * same chain), keyed by a hash of the chain text and the quote fields the lookups use. Only a
 * chain that verified (dcap_verify_no_collateral) gets an entry:
 *   - whether it chains to the trusted simulator root;
 *   - for a simulated platform, its collateral as loaded from the simulator directory (reloaded
 *     whenever a file there changes: the directory signature below).
 * Every value is what the uncached computation gives for the same bytes. */
struct chain_entry {
  struct slot s; /* first */
  uint8_t key[32];
  bool is_sim; /* the chain ends in the trusted simulator root */
  bool have_col;
  bool have_sig;
  uint8_t sig[32]; /* simulator directory signature at load time */
  struct dcap_collateral col;
  int64_t uptodate_since;
};

/* What the verifier knows about the collateral of one kind of real platform, keyed by what the
 * collateral depends on (TEE type, FMSPC, PCK CA type of the PCK leaf), whatever chain text
 * brought it: the fetched collateral (used until its earliest nextUpdate; expiry is checked
 * against every request's time), or the last fetch's failure (refused for FETCH_FAIL_TTL_S
 * after that fetch ended). */
#define PLATFORM_KEY_SIZE 8
struct platform_entry {
  struct slot s; /* first */
  uint8_t key[PLATFORM_KEY_SIZE];
  bool have_col;
  struct dcap_collateral col;
  bool have_next;
  int64_t next_update;
  int64_t uptodate_since;
  int64_t fail_until;
  char fail_why[200];
};

/* A collateral fetch on an offload pool, and the requests waiting for it. */
struct ratls_prefetch {
  struct ratls_prefetch *next;
  struct fetch_job *job;
  ratls_prefetch_fn cb;
  void *ud;
};

struct fetch_job {
  struct fetch_job *next;
  struct ratls_verifier *v; /* NULL once the verifier is gone */
  uint8_t key[PLATFORM_KEY_SIZE];
  uint8_t *quote; /* a copy: the work runs on another thread */
  size_t quote_len;
  char *pccs_url, *cache_dir;
  int64_t now;       /* request clock when it started */
  int64_t elapsed_s; /* how long the fetch took */
  struct dcap_collateral col;
  struct ratls_prefetch *waiters;
};

struct ratls_verifier {
  struct dcap_verifier *dcap;
  char *pccs_url;
  char *cache_dir;
  char *sim_dir;        /* the trusted simulator's directory (for messages), or NULL */
  char *sim_collateral; /* DIR/collateral of the trusted simulator, or NULL */
  struct buf sim_root_der;
  uint8_t sim_root_hash[32]; /* SHA-256 of sim_root_der (valid when sim_root_der.len) */
  struct chain_entry chains[CHAIN_CACHE_N];
  struct platform_entry platforms[PLATFORM_CACHE_N];
  uint64_t clock;
  bool no_blocking_fetch;
  struct fetch_job *inflight; /* prefetches running on a pool, one per platform */
  size_t n_inflight;
};

/* The reason r, with its explanation in why. */
#define refuse(r, why, whylen, ...) ((enum ratls_reason)str_err(why, whylen, (int)(r), __VA_ARGS__))

void ratls_verifier_free(struct ratls_verifier *v) {
  if (!v)
    return;
  /* Fetches still running (the pool should have been freed first) find no verifier. */
  for (struct fetch_job *j = v->inflight; j; j = j->next)
    j->v = NULL;
  dcap_verifier_free(v->dcap);
  free(v->pccs_url);
  free(v->cache_dir);
  free(v->sim_dir);
  free(v->sim_collateral);
  buf_free(&v->sim_root_der);
  for (size_t i = 0; i < CHAIN_CACHE_N; i++)
    dcap_collateral_free(&v->chains[i].col);
  for (size_t i = 0; i < PLATFORM_CACHE_N; i++)
    dcap_collateral_free(&v->platforms[i].col);
  free(v);
}

static char *dup_or_null(const char *s) {
  return str_isempty(s) ? NULL : strdup(s);
}

int ratls_verifier_new(const struct ratls_verifier_opts *c, struct ratls_verifier **ret, char *err,
                     size_t errlen) {
  struct ratls_verifier *v = calloc(1, sizeof(*v));
  if (!v)
    return -ENOMEM;
  buf_init(&v->sim_root_der, 64 * 1024);
  struct dcap_verifier_opts vo = {0};
  _cleanup_free_ char *root = NULL;
  int r = -ENOMEM;
  v->no_blocking_fetch = c->no_blocking_fetch;
  if ((!str_isempty(c->pccs_url) && !(v->pccs_url = strdup(c->pccs_url))) ||
      (!str_isempty(c->cache_dir) && !(v->cache_dir = dup_or_null(c->cache_dir))))
    goto fail;
  if (!str_isempty(c->simulator_dir)) {
    root = str_printf("%s/%s", c->simulator_dir, SIM_FILE_ROOT_CA);
    v->sim_collateral = str_printf("%s/%s", c->simulator_dir, SIM_DIR_COLLATERAL);
    v->sim_dir = strdup(c->simulator_dir);
    if (!root || !v->sim_collateral || !v->sim_dir)
      goto fail;
    _cleanup_buf_ struct buf pem = BUF_INIT(64 * 1024);
    _cleanup_(X509_freep) X509 *x = NULL;
    r = file_read_all(root, 64 * 1024, &pem);
    if (r >= 0)
      r = x509_cert_from_pem(pem.data, pem.len, &x);
    if (r >= 0)
      r = x509_cert_to_der(x, &v->sim_root_der);
    if (r >= 0)
      sha256(v->sim_root_der.data, v->sim_root_der.len, v->sim_root_hash);
    if (r < 0) {
      if (err && errlen)
        snprintf(err, errlen, "simulator root %s: %s", root, strerror(-r));
      goto fail;
    }
    vo.allow_simulator = true;
    vo.simulator_root_pem = root;
  }
  r = dcap_verifier_new(&vo, &v->dcap);
  if (r < 0) {
    if (err && errlen)
      snprintf(err, errlen, "DCAP verifier: %s", strerror(-r));
    goto fail;
  }
  *ret = v;
  return 0;
fail:
  if (r == -ENOMEM && err && errlen && !err[0])
    snprintf(err, errlen, "out of memory");
  ratls_verifier_free(v);
  return r;
}

void ratls_peer_init(struct ratls_peer *p) {
  memset(p, 0, sizeof(*p));
  ratls_attestation_init(&p->att);
}

void ratls_peer_free(struct ratls_peer *p) {
  if (!p)
    return;
  ratls_attestation_free(&p->att);
  if (p->verified)
    dcap_result_free(&p->dcap);
  eventlog_free(&p->log);
  memset(p, 0, sizeof(*p));
}

/* The root (last certificate) of the quote's PCK chain, DER; -ENOENT when there is none. */
static int pck_root(const struct quote *q, X509 **ret) {
  if (q->pck_chain_pem.len == 0)
    return -ENOENT;
  _cleanup_x509_chain_ STACK_OF(X509) *chain = NULL;
  int r = x509_chain_from_pem(q->pck_chain_pem.ptr, q->pck_chain_pem.len, &chain);
  if (r < 0)
    return r;
  int n = sk_X509_num(chain);
  if (n <= 0)
    return -ENOENT;
  X509 *x = sk_X509_value(chain, n - 1);
  if (!X509_up_ref(x))
    return -ENOMEM;
  *ret = x;
  return 0;
}

/* 1 when the quote chains to the trusted simulator root, 0 when not; *ret_looks is set when its
 * root calls itself a simulator (a hint for the refusal reason only), and then ret_root_hash
 * gets the SHA-256 of that root (to tell simulators apart in the refusal). */
static int quote_is_sim(const struct ratls_verifier *v, const struct quote *q, bool *ret_looks,
                        uint8_t ret_root_hash[32]) {
  _cleanup_(X509_freep) X509 *root = NULL;
  *ret_looks = false;
  memset(ret_root_hash, 0, 32);
  if (pck_root(q, &root) < 0)
    return 0;
  _cleanup_buf_ struct buf subj = BUF_INIT(4096);
  if (x509_cert_subject_string(root, &subj) >= 0 && buf_terminate(&subj) >= 0 &&
      strstr((const char *)subj.data, SIM_ORG))
    *ret_looks = true;
  _cleanup_buf_ struct buf der = BUF_INIT(64 * 1024);
  if (x509_cert_to_der(root, &der) < 0)
    return 0;
  uint8_t h[32];
  sha256(der.data, der.len, h);
  memcpy(ret_root_hash, h, sizeof(h));
  if (v->sim_root_der.len == 0)
    return 0;
  return memcmp(h, v->sim_root_hash, sizeof(h)) == 0;
}

/* The refusal of a quote from a simulator this verifier does not trust: which root signed it,
 * and what the verifier trusts instead (the same shared code runs in every daemon, so it speaks
 * of "this verifier", never of one daemon). */
static enum ratls_reason refuse_untrusted_sim(const struct ratls_verifier *v,
                                              const uint8_t root_hash[32], char *why,
                                              size_t whylen) {
  char theirs[17], ours[17];
  hex_encode(root_hash, 8, theirs);
  if (!v->sim_dir)
    return refuse(RATLS_R_SIMULATOR_NOT_ALLOWED, why, whylen,
                  "the quote is signed by a simulated platform (root CA SHA-256 %s...), which "
                  "this verifier does not trust (it trusts: the Intel SGX root CA only)",
                  theirs);
  hex_encode(v->sim_root_hash, 8, ours);
  return refuse(RATLS_R_SIMULATOR_NOT_ALLOWED, why, whylen,
                "the quote is signed by a simulated platform (root CA SHA-256 %s...), which this "
                "verifier does not trust (it trusts: the Intel SGX root CA, the simulator at %s "
                "(root CA SHA-256 %s...))",
                theirs, v->sim_dir, ours);
}

/* The cache key of a quote's chain: everything quote_is_sim(), dcap_collateral_from_dir_quote()
 * and dcap_fetch_collateral() look at. */
static void chain_key(const struct quote *q, uint8_t ret[32]) {
  struct hash_ctx *h = NULL;
  uint8_t hdr[8] = {(uint8_t)(q->tee_type >> 24), (uint8_t)(q->tee_type >> 16),
                    (uint8_t)(q->tee_type >> 8),  (uint8_t)q->tee_type,
                    (uint8_t)(q->cert_type >> 8), (uint8_t)q->cert_type,
                    (uint8_t)(q->body_type >> 8), (uint8_t)q->body_type};
  if (hash_ctx_new(HASH_SHA256, &h) < 0 || hash_ctx_update(h, "ratls-chain-v1", 14) < 0 ||
      hash_ctx_update(h, hdr, sizeof(hdr)) < 0 ||
      hash_ctx_update(h, q->pck_chain_pem.ptr, q->pck_chain_pem.len) < 0 ||
      hash_ctx_final(h, ret) < 0)
    memset(ret, 0, 32); /* no key: chain_get() does not cache this quote */
  hash_ctx_free(h);
}

/* Both caches are arrays of entries that start with a struct slot and hold their key at
 * key_off. Returns the entry with that key (marked used now) or NULL; *ret_victim (when not
 * NULL) gets the entry a new key would take: a free one, else the least recently used. */
static void *slots_find(struct ratls_verifier *v, void *slots, size_t n, size_t size,
                        size_t key_off, const void *key, size_t key_len, void **ret_victim) {
  struct slot *oldest = slots;
  for (size_t i = 0; i < n; i++) {
    struct slot *c = (struct slot *)((uint8_t *)slots + i * size);
    if (c->used && memcmp((uint8_t *)c + key_off, key, key_len) == 0) {
      c->stamp = ++v->clock;
      return c;
    }
    if (!c->used || (oldest->used && c->stamp < oldest->stamp))
      oldest = c;
  }
  if (ret_victim)
    *ret_victim = oldest;
  return NULL;
}

/* The cache key of q's chain; false when the quote has none to key on. */
static bool chain_key_of(const struct quote *q, uint8_t key[32]) {
  static const uint8_t zero[32];
  if (q->pck_chain_pem.len == 0)
    return false;
  chain_key(q, key);
  return memcmp(key, zero, 32) != 0;
}

/* The entry for q's chain when there is one (no insertion). */
static struct chain_entry *chain_find(struct ratls_verifier *v, const struct quote *q) {
  uint8_t key[32];
  if (!chain_key_of(q, key))
    return NULL;
  return slots_find(v, v->chains, CHAIN_CACHE_N, sizeof(v->chains[0]),
                    offsetof(struct chain_entry, key), key, sizeof(key), NULL);
}

/* The entry for q's chain, or NULL when the quote has no chain to key on. Only for chains that
 * verified: is_sim says to which root (dcap_verify_no_collateral). */
static struct chain_entry *chain_get(struct ratls_verifier *v, const struct quote *q,
                                     bool is_sim) {
  uint8_t key[32];
  if (!chain_key_of(q, key))
    return NULL;
  void *victim = NULL;
  struct chain_entry *e = slots_find(v, v->chains, CHAIN_CACHE_N, sizeof(v->chains[0]),
                                     offsetof(struct chain_entry, key), key, sizeof(key), &victim);
  if (!e) {
    e = victim;
    dcap_collateral_free(&e->col);
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, sizeof(key));
    e->is_sim = is_sim;
    e->s = (struct slot){.used = true, .stamp = ++v->clock};
  }
  return e;
}

/* A signature of a directory's listing: every entry's name, inode, size, modification and
 * change times (following symlinks), and the directory's own. Any file written, replaced,
 * added or removed changes it. */
static int dir_signature(const char *path, uint8_t ret[32]) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int r = -errno;
    close(fd);
    return r;
  }
  DIR *d = fdopendir(fd);
  if (!d) {
    int r = -errno;
    close(fd);
    return r;
  }
  /* entries are combined order-independently (XOR of their hashes): readdir order is not
   * guaranteed */
  uint8_t acc[32] = {0};
  size_t n = 0;
  int r = 0;
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d))) {
    if (str_eq(de->d_name, ".") || str_eq(de->d_name, ".."))
      continue;
    if (++n > DIR_SIG_MAX_ENTRIES) {
      r = -ENOBUFS;
      break;
    }
    struct stat es;
    int64_t rec[8] = {0};
    if (fstatat(dirfd(d), de->d_name, &es, 0) == 0) {
      rec[0] = (int64_t)es.st_dev;
      rec[1] = (int64_t)es.st_ino;
      rec[2] = (int64_t)es.st_size;
      rec[3] = (int64_t)es.st_mtim.tv_sec;
      rec[4] = (int64_t)es.st_mtim.tv_nsec;
      rec[5] = (int64_t)es.st_ctim.tv_sec;
      rec[6] = (int64_t)es.st_ctim.tv_nsec;
      rec[7] = (int64_t)es.st_mode;
    } else {
      rec[0] = -1; /* dangling or unreadable: still part of the listing */
    }
    struct hash_ctx *h = NULL;
    uint8_t eh[32];
    if ((r = hash_ctx_new(HASH_SHA256, &h)) < 0 ||
        (r = hash_ctx_update(h, de->d_name, strlen(de->d_name) + 1)) < 0 ||
        (r = hash_ctx_update(h, rec, sizeof(rec))) < 0 || (r = hash_ctx_final(h, eh)) < 0) {
      hash_ctx_free(h);
      break;
    }
    hash_ctx_free(h);
    for (size_t i = 0; i < sizeof(acc); i++)
      acc[i] ^= eh[i];
    errno = 0;
  }
  if (r >= 0 && errno != 0)
    r = -errno;
  closedir(d);
  if (r < 0)
    return r;
  int64_t self[7] = {(int64_t)st.st_dev,          (int64_t)st.st_ino,
                     (int64_t)st.st_mtim.tv_sec,  (int64_t)st.st_mtim.tv_nsec,
                     (int64_t)st.st_ctim.tv_sec,  (int64_t)st.st_ctim.tv_nsec,
                     (int64_t)n};
  struct hash_ctx *h = NULL;
  if ((r = hash_ctx_new(HASH_SHA256, &h)) >= 0 && (r = hash_ctx_update(h, acc, sizeof(acc))) >= 0 &&
      (r = hash_ctx_update(h, self, sizeof(self))) >= 0)
    r = hash_ctx_final(h, ret);
  hash_ctx_free(h);
  return r < 0 ? r : 0;
}

/* tcbDate of the newest UpToDate level in the TCB info text (0 when there is none). */
static int64_t newest_uptodate(const char *tcb_info) {
  _cleanup_json_ json_t *j = NULL;
  json_t *levels;
  int64_t best = 0;
  if (!tcb_info ||
      json_parse_buf(tcb_info, strlen(tcb_info), DCAP_COLLATERAL_MAX_JSON, &j) < 0 ||
      json_get_array(j, "tcbLevels", &levels) < 0)
    return 0;
  size_t i;
  json_t *l;
  json_array_foreach(levels, i, l) {
    const char *st, *date;
    int64_t t;
    if (json_get_str(l, "tcbStatus", &st) == 0 && str_eq(st, "UpToDate") &&
        json_get_str(l, "tcbDate", &date) == 0 && dcap_parse_date(date, &t) == 0 && t > best)
      best = t;
  }
  return best;
}

/* ---- collateral ---- */

/* CLOCK_MONOTONIC in ms, and whole seconds (rounded up) since such a reading. */
static int64_t mono_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t secs_since(int64_t start_ms) {
  return (mono_now_ms() - start_ms + 999) / 1000;
}

/* What the collateral of q depends on: TEE type, FMSPC and PCK CA type of its PCK leaf. */
static int platform_key(const struct quote *q, uint8_t ret[PLATFORM_KEY_SIZE]) {
  enum dcap_tee tee;
  enum dcap_pck_ca ca;
  uint8_t fmspc[6];
  int r = dcap_quote_fetch_params(q, &tee, fmspc, &ca);
  if (r < 0)
    return r;
  ret[0] = (uint8_t)tee;
  memcpy(ret + 1, fmspc, 6);
  ret[7] = (uint8_t)ca;
  return 0;
}

/* The entry for key when there is one (no insertion). */
static struct platform_entry *platform_find(struct ratls_verifier *v,
                                            const uint8_t key[PLATFORM_KEY_SIZE]) {
  return slots_find(v, v->platforms, PLATFORM_CACHE_N, sizeof(v->platforms[0]),
                    offsetof(struct platform_entry, key), key, PLATFORM_KEY_SIZE, NULL);
}

/* The entry for key (the least recently used one is recycled for a new key). Only for keys of
 * quotes that passed dcap_verify_no_collateral, so that junk cannot push real platforms out. */
static struct platform_entry *platform_get(struct ratls_verifier *v,
                                           const uint8_t key[PLATFORM_KEY_SIZE]) {
  void *victim = NULL;
  struct platform_entry *e =
      slots_find(v, v->platforms, PLATFORM_CACHE_N, sizeof(v->platforms[0]),
                 offsetof(struct platform_entry, key), key, PLATFORM_KEY_SIZE, &victim);
  if (!e) {
    e = victim;
    dcap_collateral_free(&e->col);
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, PLATFORM_KEY_SIZE);
    e->s = (struct slot){.used = true, .stamp = ++v->clock};
  }
  return e;
}

static bool platform_current(const struct platform_entry *e, int64_t now) {
  return e->have_col && e->have_next && e->next_update > now;
}

/* Takes col into e. */
static void platform_store(struct platform_entry *e, struct dcap_collateral *col) {
  int64_t next = 0;
  dcap_collateral_free(&e->col);
  e->col = *col;
  memset(col, 0, sizeof(*col));
  e->have_col = true;
  e->have_next = dcap_collateral_next_update(&e->col, &next) == 0;
  e->next_update = next;
  e->uptodate_since = newest_uptodate(e->col.tcb_info);
  e->fail_until = 0;
}

/* A fetch that ended at end (request clock) with error r: refused until FETCH_FAIL_TTL_S later. */
static void platform_fail(struct platform_entry *e, int64_t end, const char *url, int r) {
  e->fail_until = end + FETCH_FAIL_TTL_S;
  snprintf(e->fail_why, sizeof(e->fail_why), "fetching collateral from %s: %s", url,
           r == -ECANCELED ? "cancelled" : strerror(-r));
}

/* The collateral of a simulated platform, from the chain entry e while the simulator's
 * collateral directory is unchanged, else loaded from there (and kept in e). */
static enum ratls_reason sim_collateral(struct ratls_verifier *v, struct chain_entry *e,
                                        const struct quote *q, struct dcap_collateral *tmp,
                                        const struct dcap_collateral **ret, int64_t *ret_uptodate,
                                        char *why, size_t whylen) {
  uint8_t sig[32];
  bool have_sig = dir_signature(v->sim_collateral, sig) == 0;
  if (e->have_col && have_sig && e->have_sig && memcmp(sig, e->sig, sizeof(sig)) == 0) {
    *ret = &e->col;
    *ret_uptodate = e->uptodate_since;
    return RATLS_OK;
  }
  int r = dcap_collateral_from_dir_quote(v->sim_collateral, q, tmp);
  if (r < 0)
    return refuse(RATLS_R_COLLATERAL_UNAVAILABLE, why, whylen, "simulator collateral in %s: %s",
                  v->sim_collateral, strerror(-r));
  int64_t uptodate = newest_uptodate(tmp->tcb_info);
  dcap_collateral_free(&e->col);
  e->have_col = false;
  if (have_sig) {
    e->col = *tmp;
    memset(tmp, 0, sizeof(*tmp));
    e->have_col = e->have_sig = true;
    memcpy(e->sig, sig, sizeof(sig));
    e->uptodate_since = uptodate;
    *ret = &e->col;
  } else {
    *ret = tmp;
  }
  *ret_uptodate = uptodate;
  return RATLS_OK;
}

/* The collateral of a real platform, from its platform entry while current, else fetched (or,
 * with no_blocking_fetch, taken from the fetch cache only: the prefetch put it there). A failed
 * fetch is remembered. checked: the quote already passed dcap_verify_no_collateral, which
 * anything that may reach the network needs first (done here otherwise). */
static enum ratls_reason real_collateral(struct ratls_verifier *v, const struct quote *q,
                                         bool checked, int64_t now,
                                         const struct dcap_collateral **ret,
                                         int64_t *ret_uptodate, char *why, size_t whylen) {
  uint8_t key[PLATFORM_KEY_SIZE];
  int r = platform_key(q, key);
  if (r < 0)
    return refuse(RATLS_R_BAD_ATTESTATION, why, whylen, "no FMSPC in the PCK certificate: %s",
                  strerror(-r));
  struct platform_entry *e = platform_find(v, key);
  if (!e || !platform_current(e, now)) {
    if (e && e->fail_until > now)
      return refuse(RATLS_R_COLLATERAL_UNAVAILABLE, why, whylen, "%s (retried in %lld s)",
                    e->fail_why, (long long)(e->fail_until - now));
    if (!v->pccs_url)
      return refuse(RATLS_R_COLLATERAL_UNAVAILABLE, why, whylen,
                    "no pccs_url configured to fetch collateral from");
    if (!checked) {
      char err[256] = "";
      r = dcap_verify_no_collateral(v->dcap, q, now, NULL, err, sizeof(err));
      if (r < 0)
        return refuse(RATLS_R_QUOTE_INVALID, why, whylen, "DCAP: %s",
                      err[0] ? err : strerror(-r));
    }
    if (!e)
      e = platform_get(v, key);
    struct dcap_fetch_opts fo = {
        .http = {.timeout_ms = FETCH_TIMEOUT_MS},
        .cache_dir = v->cache_dir,
        .cache_only = v->no_blocking_fetch,
        .now = now,
    };
    struct dcap_collateral col = {0};
    int64_t t0 = mono_now_ms();
    r = dcap_fetch_collateral(v->pccs_url, q, &fo, &col);
    if (r < 0 && v->no_blocking_fetch)
      return refuse(RATLS_R_COLLATERAL_UNAVAILABLE, why, whylen,
                    "the collateral for this platform is not fetched yet (too many fetches at "
                    "once); retry");
    if (r < 0) {
      platform_fail(e, now + secs_since(t0), v->pccs_url, r);
      return refuse(RATLS_R_COLLATERAL_UNAVAILABLE, why, whylen, "%s", e->fail_why);
    }
    platform_store(e, &col);
  }
  *ret = &e->col;
  *ret_uptodate = e->uptodate_since;
  return RATLS_OK;
}

static enum ratls_reason verify_quote(struct ratls_verifier *v, const uint8_t *data, size_t len,
                                    int64_t now, struct ratls_peer *p, char *why, size_t whylen) {
  struct quote q;
  char msg[256] = "";
  int r = quote_parse_msg(data, len, &q, msg, sizeof(msg));
  if (r < 0)
    return refuse(r == -ENOTSUP ? RATLS_R_UNSUPPORTED_QUOTE : RATLS_R_BAD_ATTESTATION, why, whylen,
                  "quote: %s", msg[0] ? msg : strerror(-r));
  if (q.tee_type != QUOTE_TEE_TDX ||
      (q.body_type != QUOTE_BODY_TD10 && q.body_type != QUOTE_BODY_TD15))
    return refuse(RATLS_R_UNSUPPORTED_QUOTE, why, whylen, "not a TDX quote");
  /* A chain seen before was verified then; a new one is verified (with the quote's signatures)
   * before it gets an entry, so junk chains cannot push good ones out of the cache. */
  char err[256] = "";
  bool checked = false;
  struct chain_entry *e = chain_find(v, &q);
  if (!e) {
    bool sim = false;
    r = dcap_verify_no_collateral(v->dcap, &q, now, &sim, err, sizeof(err));
    if (r < 0) {
      bool looks_sim = false;
      uint8_t root_hash[32];
      if (quote_is_sim(v, &q, &looks_sim, root_hash) != 1 && looks_sim)
        return refuse_untrusted_sim(v, root_hash, why, whylen);
      return refuse(RATLS_R_QUOTE_INVALID, why, whylen, "DCAP: %s", err[0] ? err : strerror(-r));
    }
    checked = true;
    e = chain_get(v, &q, sim);
  }

  struct dcap_collateral tmp = {0};
  const struct dcap_collateral *col = NULL;
  int64_t uptodate = 0;
  enum ratls_reason rr =
      e && e->is_sim ? sim_collateral(v, e, &q, &tmp, &col, &uptodate, why, whylen)
                     : real_collateral(v, &q, checked, now, &col, &uptodate, why, whylen);
  if (rr != RATLS_OK)
    return rr;
  int64_t next = 0;
  if (dcap_collateral_next_update(col, &next) == 0 && next <= now) {
    char d[32];
    dcap_format_date(next, d);
    dcap_collateral_free(&tmp);
    return refuse(RATLS_R_COLLATERAL_EXPIRED, why, whylen, "collateral expired at %s", d);
  }
  err[0] = '\0';
  r = dcap_verify(v->dcap, data, len, col, now, &p->dcap, err, sizeof(err));
  if (r >= 0)
    p->tcb_uptodate_since = uptodate;
  dcap_collateral_free(&tmp);
  if (r < 0)
    return refuse(RATLS_R_QUOTE_INVALID, why, whylen, "DCAP: %s", err[0] ? err : strerror(-r));
  p->verified = true;
  if (p->dcap.quote.body_type != QUOTE_BODY_TD10 && p->dcap.quote.body_type != QUOTE_BODY_TD15)
    return refuse(RATLS_R_UNSUPPORTED_QUOTE, why, whylen, "not a TDX quote");
  return RATLS_OK;
}

/* ---- prefetch ---- */

static void fetch_job_free(struct fetch_job *j) {
  if (!j)
    return;
  free(j->quote);
  free(j->pccs_url);
  free(j->cache_dir);
  dcap_collateral_free(&j->col);
  free(j);
}

/* On a worker thread: only the job's own copies are touched. */
static int fetch_work(void *ud) {
  struct fetch_job *j = ud;
  int64_t t0 = mono_now_ms();
  struct quote q;
  int r = quote_parse(j->quote, j->quote_len, &q);
  if (r >= 0) {
    struct dcap_fetch_opts fo = {
        .http = {.timeout_ms = FETCH_TIMEOUT_MS},
        .cache_dir = j->cache_dir,
        .now = j->now,
    };
    r = dcap_fetch_collateral(j->pccs_url, &q, &fo, &j->col);
  }
  j->elapsed_s = secs_since(t0);
  return r;
}

/* On the loop thread: the result goes into the platform entry, then every waiter is told (one
 * at a time: a callback may cancel another waiter of this job). */
static void fetch_done(void *ud, int result) {
  struct fetch_job *j = ud, **pp;
  struct ratls_verifier *v = j->v;
  if (v) {
    for (pp = &v->inflight; *pp && *pp != j; pp = &(*pp)->next)
      ;
    if (*pp) {
      *pp = j->next;
      v->n_inflight--;
    }
    struct platform_entry *e = platform_get(v, j->key);
    if (result >= 0)
      platform_store(e, &j->col);
    else
      platform_fail(e, j->now + j->elapsed_s, j->pccs_url, result);
  }
  struct ratls_prefetch *w;
  while ((w = j->waiters)) {
    j->waiters = w->next;
    ratls_prefetch_fn cb = w->cb;
    void *cb_ud = w->ud;
    free(w);
    cb(cb_ud);
  }
  fetch_job_free(j);
}

int ratls_verifier_prefetch(struct ratls_verifier *v, struct offload *pool, X509 *cert,
                            int64_t now, ratls_prefetch_fn cb, void *ud,
                            struct ratls_prefetch **ret) {
  if (!v || !pool || !cb || !ret)
    return -EINVAL;
  if (!cert || !v->pccs_url)
    return 0;
  _cleanup_ratls_attestation_ struct ratls_attestation a = {0};
  if (ratls_cert_attestation(cert, &a) < 0 || ratls_report_data_binds_key(cert, &a) < 0)
    return 0; /* refused without collateral */
  return ratls_verifier_prefetch_quote(v, pool, a.quote.data, a.quote.len, now, cb, ud, ret);
}

int ratls_verifier_prefetch_quote(struct ratls_verifier *v, struct offload *pool,
                                  const uint8_t *quote, size_t len, int64_t now,
                                  ratls_prefetch_fn cb, void *ud, struct ratls_prefetch **ret) {
  if (!v || !pool || !cb || !ret || (!quote && len))
    return -EINVAL;
  if (!v->pccs_url)
    return 0;
  struct quote q;
  uint8_t key[PLATFORM_KEY_SIZE];
  if (quote_parse(quote, len, &q) < 0 || q.tee_type != QUOTE_TEE_TDX ||
      platform_key(&q, key) < 0)
    return 0; /* refused without collateral */
  struct chain_entry *c = chain_find(v, &q);
  if (c && c->is_sim)
    return 0;
  struct platform_entry *e = platform_find(v, key);
  if (e && (platform_current(e, now) || e->fail_until > now))
    return 0;
  /* Only a quote a real platform's QE signed may make the verifier reach the network (a
   * simulated one has its collateral on disk). */
  bool sim = false;
  if (dcap_verify_no_collateral(v->dcap, &q, now, &sim, NULL, 0) < 0 || sim)
    return 0;
  struct fetch_job *j;
  for (j = v->inflight; j && memcmp(j->key, key, sizeof(key)) != 0; j = j->next)
    ;
  bool fresh = false;
  if (!j) {
    if (v->n_inflight >= PREFETCH_MAX_INFLIGHT)
      return 0; /* the verification says "not fetched yet" */
    j = calloc(1, sizeof(*j));
    if (!j)
      return 0;
    j->v = v;
    memcpy(j->key, key, sizeof(key));
    j->now = now;
    j->quote_len = len;
    j->quote = malloc(len);
    j->pccs_url = strdup(v->pccs_url);
    j->cache_dir = v->cache_dir ? strdup(v->cache_dir) : NULL;
    if (!j->quote || !j->pccs_url || (v->cache_dir && !j->cache_dir)) {
      fetch_job_free(j);
      return 0;
    }
    memcpy(j->quote, quote, len);
    fresh = true;
  }
  struct ratls_prefetch *w = calloc(1, sizeof(*w));
  if (!w) {
    if (fresh)
      fetch_job_free(j);
    return 0;
  }
  if (fresh) {
    if (offload_submit(pool, fetch_work, fetch_done, j) < 0) {
      free(w);
      fetch_job_free(j);
      return 0;
    }
    j->next = v->inflight;
    v->inflight = j;
    v->n_inflight++;
  }
  *w = (struct ratls_prefetch){.next = j->waiters, .job = j, .cb = cb, .ud = ud};
  j->waiters = w;
  *ret = w;
  return 1;
}

void ratls_prefetch_cancel(struct ratls_prefetch *w) {
  if (!w)
    return;
  struct ratls_prefetch **pp;
  for (pp = &w->job->waiters; *pp && *pp != w; pp = &(*pp)->next)
    ;
  if (*pp)
    *pp = w->next;
  free(w);
}

size_t ratls_verifier_fetches(const struct ratls_verifier *v) {
  return v ? v->n_inflight : 0;
}

/* Steps 2 and 3: the quote, then its event log (untrusted until it replays to the verified
 * RTMRs). */
static enum ratls_reason verify_quote_and_log(struct ratls_verifier *v, const uint8_t *quote,
                                              size_t len, const uint8_t *event_log,
                                              size_t log_len, int64_t now, struct ratls_peer *p,
                                              char *why, size_t whylen) {
  if (log_len > RATLS_MAX_EVENT_LOG)
    return refuse(RATLS_R_BAD_EVENT_LOG, why, whylen, "event log over %zu bytes",
                  RATLS_MAX_EVENT_LOG);
  enum ratls_reason rr = verify_quote(v, quote, len, now, p, why, whylen);
  if (rr != RATLS_OK)
    return rr;
  int r;
  if (log_len > 0) {
    r = eventlog_parse_json((const char *)event_log, log_len, &p->log);
    if (r < 0)
      return refuse(RATLS_R_BAD_EVENT_LOG, why, whylen, "event log does not parse: %s",
                    strerror(-r));
  }
  uint8_t replay[EVENTLOG_N_RTMR][48];
  r = eventlog_replay(&p->log, replay);
  if (r < 0)
    return refuse(RATLS_R_BAD_EVENT_LOG, why, whylen, "event log replay: %s", strerror(-r));
  bool has[EVENTLOG_N_RTMR] = {false, false, false, true};
  for (size_t i = 0; i < p->log.n; i++)
    if (p->log.ev[i].imr < EVENTLOG_N_RTMR && p->log.ev[i].event_type != EVENTLOG_EV_NO_ACTION)
      has[p->log.ev[i].imr] = true;
  for (int i = 0; i < EVENTLOG_N_RTMR; i++)
    if (has[i] && memcmp(replay[i], p->dcap.quote.td.rt_mr[i], 48) != 0)
      return refuse(RATLS_R_EVENT_LOG_MISMATCH, why, whylen,
                    "the event log does not replay to the quote's RTMR%d", i);
  return RATLS_OK;
}

enum ratls_reason ratls_verify_peer(struct ratls_verifier *v, X509 *cert, int64_t now,
                                struct ratls_peer *p, char *why, size_t whylen) {
  if (!cert)
    return refuse(RATLS_R_NO_CLIENT_CERT, why, whylen, "no client certificate presented");
  if (!v || !p)
    return refuse(RATLS_R_INTERNAL, why, whylen, "bad arguments");
  int r = ratls_cert_attestation(cert, &p->att);
  if (r == -ENOENT)
    return refuse(RATLS_R_NO_ATTESTATION, why, whylen,
                  "the certificate carries no quote (not an RA-TLS certificate)");
  if (r < 0)
    return refuse(RATLS_R_BAD_ATTESTATION, why, whylen, "malformed RA-TLS extensions: %s",
                  strerror(-r));
  r = ratls_report_data_binds_key(cert, &p->att);
  if (r == -EPERM)
    return refuse(RATLS_R_KEY_NOT_BOUND, why, whylen,
                  "the quote's report_data does not bind the certificate's public key");
  if (r == -ENOTSUP)
    return refuse(RATLS_R_UNSUPPORTED_QUOTE, why, whylen, "unsupported quote");
  if (r < 0)
    return refuse(RATLS_R_BAD_ATTESTATION, why, whylen, "quote or key unusable: %s",
                  strerror(-r));
  return verify_quote_and_log(v, p->att.quote.data, p->att.quote.len, p->att.event_log.data,
                              p->att.event_log.len, now, p, why, whylen);
}

enum ratls_reason ratls_verify_quote(struct ratls_verifier *v, const uint8_t *quote, size_t len,
                                     const uint8_t *event_log, size_t log_len, int64_t now,
                                     struct ratls_peer *p, char *why, size_t whylen) {
  if (!v || !p || (!quote && len) || (!event_log && log_len))
    return refuse(RATLS_R_INTERNAL, why, whylen, "bad arguments");
  if (len == 0)
    return refuse(RATLS_R_NO_ATTESTATION, why, whylen, "no quote");
  return verify_quote_and_log(v, quote, len, event_log, log_len, now, p, why, whylen);
}

enum ratls_reason ratls_verify_quoted_key(struct ratls_verifier *v, const char *text, size_t len,
                                          const uint8_t want[64], int64_t now,
                                          struct ratls_peer *p, char *why, size_t whylen) {
  if (!v || !want || !p || (!text && len))
    return refuse(RATLS_R_INTERNAL, why, whylen, "bad arguments");
  struct quoted_key_evidence e;
  int r = quoted_key_evidence_parse(text, len, &e);
  if (r < 0) {
    quoted_key_evidence_free(&e);
    return refuse(RATLS_R_BAD_ATTESTATION, why, whylen, "evidence: %s",
                  r == -ENOBUFS ? "over its size cap"
                                : "not {\"quote\":\"<hex>\",\"event_log\":\"...\"}");
  }
  /* The binding first: a quote for something else is refused without DCAP work (nor any
   * collateral fetch). */
  struct quote q;
  char msg[200] = "";
  enum ratls_reason rr = RATLS_OK;
  r = quote_parse_msg(e.quote.data, e.quote.len, &q, msg, sizeof(msg));
  if (r < 0)
    rr = refuse(r == -ENOTSUP ? RATLS_R_UNSUPPORTED_QUOTE : RATLS_R_BAD_ATTESTATION, why, whylen,
                "quote: %s", msg[0] ? msg : strerror(-r));
  else if (memcmp(quote_report_data(&q), want, 64) != 0)
    rr = refuse(RATLS_R_KEY_NOT_BOUND, why, whylen,
                "the quote's report_data does not bind this key");
  else
    rr = ratls_verify_quote(v, e.quote.data, e.quote.len, e.event_log.data, e.event_log.len, now,
                            p, why, whylen);
  /* ratls_verify_quote verified the same bytes; the check above holds for them. */
  quoted_key_evidence_free(&e);
  return rr;
}

/* Copies a runtime event's payload (1..max bytes, or 0..max when may_be_empty). */
static enum ratls_reason take_payload(const struct tdx_event *e, size_t max, bool may_be_empty,
                                      uint8_t *dst, size_t *ret_len, char *why, size_t whylen) {
  if (e->payload_len > max || (!may_be_empty && e->payload_len == 0))
    return refuse(RATLS_R_BAD_EVENT_LOG, why, whylen, "%s event: payload of %zu bytes", e->event,
                  e->payload_len);
  if (e->payload_len)
    memcpy(dst, e->payload, e->payload_len);
  *ret_len = e->payload_len;
  return RATLS_OK;
}

enum ratls_reason ratls_identity_from_log(const struct eventlog *log, unsigned flags,
                                          struct ratls_app_identity *ret, char *why,
                                          size_t whylen) {
  struct ratls_app_identity id = {0};
  struct boot_events b;
  unsigned bf = (flags & RATLS_ID_ALLOW_SEED) ? BOOT_EVENTS_ALLOW_SEED : 0;
  int r = boot_events_scan(log, bf, &b, why, whylen);
  if (r == -ENOENT)
    return RATLS_R_MISSING_EVENT;
  if (r == -EPERM)
    return RATLS_R_SEED_LOG_NOT_ALLOWED;
  if (r < 0)
    return r == -EBADMSG ? RATLS_R_BAD_EVENT_LOG : RATLS_R_INTERNAL;

  enum ratls_reason rr;
  size_t n = 0;
  if (b.era == BOOT_EVENTS_SEED) {
    /* Names are not bound: the values are the digests of the boot's fixed positions. */
    id.era = RATLS_ERA_SEED;
    memcpy(id.app_id, b.app_id->digest, 20);
    id.app_id_len = 20;
    memcpy(id.compose_hash, b.app_id->digest, 32); /* seed: SHA-256(compose file) */
    id.has_compose_hash = true;
    hex_encode(b.rootfs_hash->digest, 32, id.rootfs_hash_hex);
    id.has_rootfs_hash = true;
  } else {
    id.era = RATLS_ERA_NEWEST;
    if ((rr = take_payload(b.app_id, RATLS_APP_ID_MAX, false, id.app_id, &id.app_id_len, why,
                           whylen)) != RATLS_OK)
      return rr;
    if (b.compose_hash) {
      if (b.compose_hash->payload_len != 32)
        return refuse(RATLS_R_BAD_EVENT_LOG, why, whylen,
                      "compose-hash event: payload of %zu bytes, expected 32",
                      b.compose_hash->payload_len);
      memcpy(id.compose_hash, b.compose_hash->payload, 32);
      id.has_compose_hash = true;
    }
    if (b.instance_id &&
        (rr = take_payload(b.instance_id, RATLS_INSTANCE_ID_MAX, true, id.instance_id,
                           &id.instance_id_len, why, whylen)) != RATLS_OK)
      return rr;
    if (b.rootfs_hash) {
      if (b.rootfs_hash->payload_len != 32)
        return refuse(RATLS_R_BAD_EVENT_LOG, why, whylen,
                      "rootfs-hash event: payload of %zu bytes, expected 32",
                      b.rootfs_hash->payload_len);
      hex_encode(b.rootfs_hash->payload, 32, id.rootfs_hash_hex);
      id.has_rootfs_hash = true;
    }
    if (b.os_image_hash &&
        (rr = take_payload(b.os_image_hash, RATLS_OS_IMAGE_HASH_MAX, true, id.os_image_hash, &n,
                           why, whylen)) != RATLS_OK)
      return rr;
    if (b.os_image_hash)
      id.os_image_hash_len = n;
  }
  hex_encode(id.app_id, id.app_id_len, id.app_id_hex);
  *ret = id;
  return RATLS_OK;
}

enum ratls_reason ratls_attestation_identity(const struct ratls_attestation *a, unsigned flags,
                                             struct ratls_app_identity *ret, char *why,
                                             size_t whylen) {
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  if (!a || !ret)
    return refuse(RATLS_R_INTERNAL, why, whylen, "bad arguments");
  if (a->event_log.len > 0) {
    int r = eventlog_parse_json((const char *)a->event_log.data, a->event_log.len, &log);
    if (r < 0)
      return refuse(RATLS_R_BAD_EVENT_LOG, why, whylen, "event log does not parse: %s",
                    strerror(-r));
  }
  return ratls_identity_from_log(&log, flags, ret, why, whylen);
}

static int put_hex(struct buf *out, const char *name, const uint8_t *v, size_t len) {
  int r = buf_printf(out, " %s=", name);
  if (r >= 0)
    r = hex_append(out, v, len);
  return r;
}

int ratls_peer_describe(const struct ratls_peer *p, const struct ratls_app_identity *id,
                      struct buf *out) {
  int r = 0;
  if (p && p->verified) {
    const struct td_report_body *td = &p->dcap.quote.td;
    r = put_hex(out, "mrtd", td->mr_td, 48);
    for (int i = 0; r >= 0 && i < 4; i++) {
      char n[8];
      snprintf(n, sizeof(n), "rtmr%d", i);
      r = put_hex(out, n, td->rt_mr[i], 48);
    }
    if (r >= 0)
      r = buf_printf(out, " tcb=%s%s", dcap_status_name(p->dcap.status),
                     p->dcap.simulated ? " simulated" : "");
  } else if (p && p->att.quote.len) {
    r = buf_printf(out, " (quote not verified, %zu bytes)", p->att.quote.len);
  }
  if (r >= 0 && id) {
    r = buf_printf(out, " app_id=%s era=%s", id->app_id_hex,
                   id->era == RATLS_ERA_SEED ? "seed" : "newest");
    if (r >= 0 && id->has_compose_hash)
      r = put_hex(out, "compose_hash", id->compose_hash, 32);
    if (r >= 0 && id->instance_id_len)
      r = put_hex(out, "instance_id", id->instance_id, id->instance_id_len);
  }
  return r < 0 ? r : 0;
}

const char *ratls_reason_code(enum ratls_reason r) {
  static const char *const codes[_RATLS_R_MAX] = {
      [RATLS_OK] = "ok",
      [RATLS_R_NO_CLIENT_CERT] = "no_client_cert",
      [RATLS_R_NO_ATTESTATION] = "no_attestation",
      [RATLS_R_BAD_ATTESTATION] = "bad_attestation",
      [RATLS_R_KEY_NOT_BOUND] = "key_not_bound",
      [RATLS_R_UNSUPPORTED_QUOTE] = "unsupported_quote",
      [RATLS_R_COLLATERAL_UNAVAILABLE] = "collateral_unavailable",
      [RATLS_R_COLLATERAL_EXPIRED] = "collateral_expired",
      [RATLS_R_SIMULATOR_NOT_ALLOWED] = "simulator_not_allowed",
      [RATLS_R_QUOTE_INVALID] = "quote_invalid",
      [RATLS_R_BAD_EVENT_LOG] = "bad_event_log",
      [RATLS_R_EVENT_LOG_MISMATCH] = "event_log_mismatch",
      [RATLS_R_MISSING_EVENT] = "missing_event",
      [RATLS_R_SEED_LOG_NOT_ALLOWED] = "seed_event_log_not_allowed",
      [RATLS_R_INTERNAL] = "internal",
  };
  if ((unsigned)r >= _RATLS_R_MAX || !codes[r])
    return "internal";
  return codes[r];
}

int ratls_tls_verify_cb(int ok, X509_STORE_CTX *x) {
  if (ok)
    return 1;
  int err = X509_STORE_CTX_get_error(x);
  int depth = X509_STORE_CTX_get_error_depth(x);
  X509 *cur = X509_STORE_CTX_get_current_cert(x);
  struct slice v;
  if (depth == 0 && cur && err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT &&
      x509_cert_ext_find(cur, RATLS_OID_QUOTE, &v, NULL) == 0) {
    /* A self-signed RA-TLS certificate: the quote inside is what will be trusted (or not),
     * per request. Its signature and validity are still checked by OpenSSL as usual. */
    X509_STORE_CTX_set_error(x, X509_V_OK);
    return 1;
  }
  return 0;
}

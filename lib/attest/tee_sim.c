/* The simulator backend: TDREPORTs MACed with a secret of the simulator directory and real-format
 * v4 quotes signed by the simulated QE, from the TD state in DIR/td.json. */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "attest/quote.h"
#include "attest/sim.h"
#include "attest/tdreport.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/log.h"
#include "crypto/hash.h"
#include "crypto/keys.h"

/* The platform values a report or quote needs, from DIR/sim.json. */
struct sim_platform_info {
  uint8_t cpusvn[16];
  uint16_t pcesvn;
  uint16_t qe_svn;
};

/* Identity of DIR/sim.json. sim_platform_init removes it first and writes it last (atomic
 * replace: a new inode), and the platform's keys and files do not change between two inits, so
 * while it is the same file everything loaded from the directory is still current. */
struct file_stamp {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime, ctime;
};

/* What the platform files hold, loaded on first use and kept while sim.json stays the same:
 * quotes then only read the TD state (under its lock) and sign. */
struct sim_cache {
  bool valid;
  struct file_stamp stamp;
  struct sim_platform_info info;
  bool has_quote_material;
  EVP_PKEY *qe_key;
  uint8_t qe_pub[65];
  uint8_t qe_uid[32];
  struct buf chain;
  uint8_t qe_raw[QUOTE_QE_REPORT_SIZE], qe_sig[64], qe_auth[SIM_QE_AUTH_SIZE];
  bool has_mac_key;
  uint8_t mac_key[SIM_MAC_KEY_SIZE]; /* secret */
};

struct tee_sim {
  char *dir;    /* the platform: keys, PCK chain, QE */
  char *td_dir; /* the TD's state (td.json, td.lock, eventlog.jsonl): dir unless split */
  pthread_mutex_t lock; /* the cache and td_cache */
  struct sim_cache cache;
  struct sim_td_cache td_cache;
};

static const uint8_t intel_qe_vendor_id[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                               0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

static const char *sim_td_dir(struct tee *t) {
  return ((struct tee_sim *)t->priv)->td_dir;
}

static int read_file(const char *dir, const char *name, size_t max, struct buf *out) {
  _cleanup_free_ char *path = NULL;
  int r = sim_path(dir, name, &path);
  if (r < 0)
    return r;
  r = file_read_all(path, max, out);
  if (r < 0)
    return log_debug_errno(r, "reading %s", path);
  return 0;
}

/* Small fixed-size files, some secret: the buffer is wiped either way. */
static int read_exact(const char *dir, const char *name, uint8_t *out, size_t len) {
  _cleanup_buf_ struct buf b = BUF_INIT_SECRET(len);
  int r = read_file(dir, name, len, &b);
  if (r < 0)
    return r;
  if (b.len != len)
    return log_debug_errno(-EBADMSG, "%s/%s: expected %zu bytes", dir, name, len);
  memcpy(out, b.data, len);
  return 0;
}

static int load_info(const char *dir, struct sim_platform_info *ret) {
  _cleanup_buf_ struct buf text = BUF_INIT(BUF_MAX_SMALL);
  int r = read_file(dir, SIM_FILE_MARKER, BUF_MAX_SMALL, &text);
  if (r < 0)
    return r;
  _cleanup_json_ json_t *j = NULL;
  r = json_parse_buf((const char *)text.data, text.len, BUF_MAX_SMALL, &j);
  uint32_t pcesvn = 0, qe_svn = 0;
  if (r >= 0)
    r = json_get_hex(j, "sgx_tcb_comp", ret->cpusvn, 16);
  if (r >= 0)
    r = json_get_u32(j, "pcesvn", &pcesvn);
  if (r >= 0)
    r = json_get_u32(j, "qe_svn", &qe_svn);
  if (r < 0 || pcesvn > UINT16_MAX || qe_svn > UINT16_MAX)
    return log_debug_errno(-EBADMSG, "%s/%s is malformed", dir, SIM_FILE_MARKER);
  ret->pcesvn = (uint16_t)pcesvn;
  ret->qe_svn = (uint16_t)qe_svn;
  return 0;
}

static int load_key(const char *dir, const char *name, EVP_PKEY **ret) {
  struct buf pem;
  buf_init_secret(&pem, BUF_MAX_SMALL);
  int r = read_file(dir, name, BUF_MAX_SMALL, &pem);
  if (r >= 0)
    r = key_from_pem_or_der(pem.data, pem.len, ret);
  buf_free(&pem);
  return r;
}

static void cache_clear(struct sim_cache *c) {
  EVP_PKEY_free(c->qe_key);
  buf_free(&c->chain);
  secure_wipe(c, sizeof(*c));
}

static int stamp_get(const char *dir, struct file_stamp *ret) {
  _cleanup_free_ char *path = NULL;
  int r = sim_path(dir, SIM_FILE_MARKER, &path);
  if (r < 0)
    return r;
  struct stat st;
  if (stat(path, &st) < 0)
    return log_debug_errno(-errno, "%s", path);
  *ret = (struct file_stamp){.dev = st.st_dev, .ino = st.st_ino, .size = st.st_size,
                             .mtime = st.st_mtim, .ctime = st.st_ctim};
  return 0;
}

static bool stamp_equal(const struct file_stamp *a, const struct file_stamp *b) {
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
         a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Makes the cache current for the platform in dir: drops it when sim.json changed, then loads
 * the platform values. Called with the lock held. */
static int cache_check(struct tee_sim *s) {
  struct sim_cache *c = &s->cache;
  struct file_stamp st;
  int r = stamp_get(s->dir, &st);
  if (r < 0) {
    cache_clear(c);
    return r;
  }
  if (c->valid && stamp_equal(&c->stamp, &st))
    return 0;
  cache_clear(c);
  buf_init(&c->chain, QUOTE_MAX_PCK_CHAIN);
  r = load_info(s->dir, &c->info);
  if (r < 0)
    return r;
  c->stamp = st;
  c->valid = true;
  return 0;
}

static int cache_quote_material(struct tee_sim *s) {
  struct sim_cache *c = &s->cache;
  if (c->has_quote_material)
    return 0;
  const char *dir = s->dir;
  int r = load_key(dir, SIM_FILE_QE_KEY, &c->qe_key);
  if (r >= 0)
    r = read_file(dir, SIM_FILE_PCK_CHAIN, QUOTE_MAX_PCK_CHAIN, &c->chain);
  if (r >= 0)
    r = read_exact(dir, SIM_FILE_QE_REPORT, c->qe_raw, sizeof(c->qe_raw));
  if (r >= 0)
    r = read_exact(dir, SIM_FILE_QE_REPORT_SIG, c->qe_sig, sizeof(c->qe_sig));
  if (r >= 0)
    r = read_exact(dir, SIM_FILE_QE_AUTH, c->qe_auth, sizeof(c->qe_auth));
  if (r >= 0)
    r = key_ec_public_point(c->qe_key, c->qe_pub);
  if (r < 0) {
    EVP_PKEY_free(c->qe_key);
    c->qe_key = NULL;
    buf_reset(&c->chain);
    return r;
  }
  sha256(c->qe_pub + 1, 64, c->qe_uid); /* a QE id, as Intel's QE puts there */
  c->has_quote_material = true;
  return 0;
}

static int cache_mac_key(struct tee_sim *s) {
  struct sim_cache *c = &s->cache;
  if (c->has_mac_key)
    return 0;
  int r = read_exact(s->dir, SIM_FILE_MAC_KEY, c->mac_key, sizeof(c->mac_key));
  if (r < 0)
    return r;
  c->has_mac_key = true;
  return 0;
}

static int get_report_locked(struct tee_sim *s, const uint8_t report_data[64],
                             uint8_t ret_report[1024]) {
  struct sim_td td;
  int r = cache_check(s);
  if (r >= 0)
    r = cache_mac_key(s);
  if (r >= 0)
    r = sim_td_load_cached(s->td_dir, &s->td_cache, &td);
  if (r < 0)
    return r;
  const struct sim_platform_info *info = &s->cache.info;

  struct tdreport rep = {0};
  rep.mac.report_type[0] = 0x81; /* TDX, subtype 0, version 0 (TDX 1.0) */
  memcpy(rep.mac.cpusvn, info->cpusvn, 16);
  memcpy(rep.mac.report_data, report_data, 64);
  /* VALID bit i: the 8 bytes at offset 8*i of TEE_TCB_INFO hold data (valid..attributes) */
  rep.tee_tcb_info.valid[0] = 0xff;
  rep.tee_tcb_info.valid[1] = 0xff;
  memcpy(rep.tee_tcb_info.tee_tcb_svn, td.tee_tcb_svn, 16);
  memcpy(rep.tee_tcb_info.mrseam, td.mr_seam, 48);
  memcpy(rep.tee_tcb_info.mrsignerseam, td.mr_signer_seam, 48);
  memcpy(rep.tee_tcb_info.attributes, td.seam_attributes, 8);
  memcpy(rep.td_info.attributes, td.td_attributes, 8);
  memcpy(rep.td_info.xfam, td.xfam, 8);
  memcpy(rep.td_info.mrtd, td.mr_td, 48);
  memcpy(rep.td_info.mrconfigid, td.mr_config_id, 48);
  memcpy(rep.td_info.mrowner, td.mr_owner, 48);
  memcpy(rep.td_info.mrownerconfig, td.mr_owner_config, 48);
  memcpy(rep.td_info.rtmr, td.rtmr, sizeof(td.rtmr));

  uint8_t raw[TDREPORT_SIZE];
  tdreport_encode(&rep, raw);
  sha384(raw + TDREPORT_TEE_TCB_INFO_OFFSET, TDREPORT_TEE_TCB_INFO_SIZE,
         rep.mac.tee_tcb_info_hash);
  sha384(raw + TDREPORT_TDINFO_OFFSET, TDREPORT_TDINFO_SIZE, rep.mac.tee_info_hash);
  tdreport_encode(&rep, raw);

  /* the MAC covers REPORTMACSTRUCT up to the mac field */
  size_t mac_off = offsetof(struct tdreport_mac, mac);
  size_t mac_len = 0;
  if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, s->cache.mac_key, sizeof(s->cache.mac_key),
                 raw, mac_off, rep.mac.mac, sizeof(rep.mac.mac), &mac_len) ||
      mac_len != 32)
    return -EIO;
  tdreport_encode(&rep, ret_report);
  return 0;
}

static int sim_get_report(struct tee *t, const uint8_t report_data[64],
                          uint8_t ret_report[1024]) {
  struct tee_sim *s = t->priv;
  pthread_mutex_lock(&s->lock);
  int r = get_report_locked(s, report_data, ret_report);
  pthread_mutex_unlock(&s->lock);
  return r;
}

static int get_quote_locked(struct tee_sim *s, const uint8_t report_data[64],
                            struct buf *ret_quote) {
  struct sim_td td;
  _cleanup_buf_ struct buf signed_part = BUF_INIT(4096);
  int r = cache_check(s);
  if (r >= 0)
    r = cache_quote_material(s);
  if (r >= 0)
    r = sim_td_load_cached(s->td_dir, &s->td_cache, &td);
  if (r < 0)
    return r;
  const struct sim_cache *c = &s->cache;

  struct quote q = {0};
  q.version = 4;
  q.att_key_type = QUOTE_ATT_KEY_ECDSA_P256;
  q.tee_type = QUOTE_TEE_TDX;
  q.qe_svn = c->info.qe_svn;
  q.pce_svn = c->info.pcesvn;
  memcpy(q.qe_vendor_id, intel_qe_vendor_id, 16);
  memcpy(q.user_data, c->qe_uid, 16);
  q.body_type = QUOTE_BODY_TD10;
  q.body_size = QUOTE_TD10_BODY_SIZE;
  memcpy(q.td.tee_tcb_svn, td.tee_tcb_svn, 16);
  memcpy(q.td.mr_seam, td.mr_seam, 48);
  memcpy(q.td.mr_signer_seam, td.mr_signer_seam, 48);
  memcpy(q.td.seam_attributes, td.seam_attributes, 8);
  memcpy(q.td.td_attributes, td.td_attributes, 8);
  memcpy(q.td.xfam, td.xfam, 8);
  memcpy(q.td.mr_td, td.mr_td, 48);
  memcpy(q.td.mr_config_id, td.mr_config_id, 48);
  memcpy(q.td.mr_owner, td.mr_owner, 48);
  memcpy(q.td.mr_owner_config, td.mr_owner_config, 48);
  memcpy(q.td.rt_mr, td.rtmr, sizeof(td.rtmr));
  memcpy(q.td.report_data, report_data, 64);
  memcpy(q.attest_key, c->qe_pub + 1, 64);
  q.outer_cert_type = QUOTE_CERT_QE_REPORT;
  sgx_report_body_parse(c->qe_raw, &q.qe_report);
  memcpy(q.qe_report_raw, c->qe_raw, sizeof(c->qe_raw));
  memcpy(q.qe_report_sig, c->qe_sig, 64);
  q.qe_auth_data = SLICE(c->qe_auth, sizeof(c->qe_auth));
  q.cert_type = QUOTE_CERT_PCK_CHAIN;
  q.cert_data = buf_slice(&c->chain);
  q.pck_chain_pem = q.cert_data;

  r = quote_encode_signed(&q, &signed_part);
  if (r >= 0)
    r = key_ecdsa_sign_raw(c->qe_key, signed_part.data, signed_part.len, q.signature);
  if (r >= 0)
    r = quote_encode(&q, ret_quote);
  return r;
}

static int sim_get_quote(struct tee *t, const uint8_t report_data[64], struct buf *ret_quote) {
  struct tee_sim *s = t->priv;
  pthread_mutex_lock(&s->lock);
  int r = get_quote_locked(s, report_data, ret_quote);
  pthread_mutex_unlock(&s->lock);
  return r;
}

static int sim_extend_rtmr(struct tee *t, unsigned index, const uint8_t digest[48]) {
  return sim_td_extend(sim_td_dir(t), index, digest);
}

static int sim_read_rtmrs(struct tee *t, uint8_t ret[4][48]) {
  struct tee_sim *s = t->priv;
  struct sim_td td;
  pthread_mutex_lock(&s->lock);
  int r = sim_td_load_cached(s->td_dir, &s->td_cache, &td);
  pthread_mutex_unlock(&s->lock);
  if (r < 0)
    return r;
  memcpy(ret, td.rtmr, sizeof(td.rtmr));
  return 0;
}

static int sim_eventlog_path(struct tee *t, char **ret_path) {
  return sim_path(sim_td_dir(t), SIM_FILE_EVENTLOG, ret_path);
}

static void sim_free(struct tee *t) {
  if (!t)
    return;
  struct tee_sim *s = t->priv;
  if (s) {
    if (s->td_dir != s->dir)
      free(s->td_dir);
    free(s->dir);
    cache_clear(&s->cache);
    sim_td_cache_free(&s->td_cache);
    pthread_mutex_destroy(&s->lock);
  }
  free(s);
  free(t);
}

const struct tee_ops tee_sim_ops = {
    .name = "sim",
    .get_report = sim_get_report,
    .get_quote = sim_get_quote,
    .extend_rtmr = sim_extend_rtmr,
    .read_rtmrs = sim_read_rtmrs,
    .eventlog_path = sim_eventlog_path,
    .free = sim_free,
};

int tee_sim_new(const char *dir, struct tee **ret) {
  return tee_sim_new_split(dir, NULL, ret);
}

int tee_sim_new_split(const char *dir, const char *td_dir, struct tee **ret) {
  if (!ret)
    return -EINVAL;
  *ret = NULL;
  if (!dir || !*dir) {
    dir = getenv(TEE_ENV_SIM_DIR);
    if (!dir || !*dir)
      return log_debug_errno(-ENOENT, "%s is not set (create one with `tdxctl sim init DIR`)",
                             TEE_ENV_SIM_DIR);
  }
  int r = sim_platform_check(dir);
  if (r < 0)
    return log_debug_errno(r, "%s is not an initialised simulator (run `tdxctl sim init %s`)",
                           dir, dir);
  struct tee *t = calloc(1, sizeof(*t));
  struct tee_sim *s = calloc(1, sizeof(*s));
  char *d = strdup(dir);
  if (!t || !s || !d) {
    free(t);
    free(s);
    free(d);
    return -ENOMEM;
  }
  if (pthread_mutex_init(&s->lock, NULL) != 0) {
    free(t);
    free(s);
    free(d);
    return -ENOMEM;
  }
  s->dir = d;
  s->td_dir = d;
  t->ops = &tee_sim_ops;
  t->priv = s;
  if (td_dir && !(s->td_dir = strdup(td_dir))) {
    s->td_dir = d;
    sim_free(t);
    return -ENOMEM;
  }
  *ret = t;
  return 0;
}

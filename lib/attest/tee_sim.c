/* The simulator backend: TDREPORTs MACed with a secret of the simulator directory and real-format
 * v4 quotes signed by the simulated QE, from the TD state in DIR/td.json. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/quote.h"
#include "attest/sim.h"
#include "attest/tdreport.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/log.h"
#include "crypto/hash.h"
#include "crypto/keys.h"

struct tee_sim {
  char *dir;
};

static const uint8_t intel_qe_vendor_id[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                               0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

/* The platform values a report or quote needs, from DIR/sim.json. */
struct sim_platform_info {
  uint8_t cpusvn[16];
  uint16_t pcesvn;
  uint16_t qe_svn;
};

static const char *sim_dir(struct tee *t) {
  return ((struct tee_sim *)t->priv)->dir;
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
  _cleanup_buf_ struct buf b;
  buf_init_secret(&b, len);
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

static int sim_get_report(struct tee *t, const uint8_t report_data[64],
                          uint8_t ret_report[1024]) {
  const char *dir = sim_dir(t);
  struct sim_platform_info info;
  struct sim_td td;
  uint8_t key[SIM_MAC_KEY_SIZE];
  int r = load_info(dir, &info);
  if (r >= 0)
    r = sim_td_load(dir, &td);
  if (r < 0)
    return r;

  struct tdreport rep = {0};
  rep.mac.report_type[0] = 0x81; /* TDX, subtype 0, version 0 (TDX 1.0) */
  memcpy(rep.mac.cpusvn, info.cpusvn, 16);
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

  r = read_exact(dir, SIM_FILE_MAC_KEY, key, sizeof(key));
  if (r < 0)
    goto out;
  /* the MAC covers REPORTMACSTRUCT up to the mac field */
  size_t mac_off = offsetof(struct tdreport_mac, mac);
  size_t mac_len = 0;
  if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, sizeof(key), raw, mac_off,
                 rep.mac.mac, sizeof(rep.mac.mac), &mac_len) ||
      mac_len != 32) {
    r = -EIO;
    goto out;
  }
  tdreport_encode(&rep, ret_report);
  r = 0;
out:
  secure_wipe(key, sizeof(key));
  return r;
}

static int sim_get_quote(struct tee *t, const uint8_t report_data[64], struct buf *ret_quote) {
  const char *dir = sim_dir(t);
  struct sim_platform_info info;
  struct sim_td td;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *qe_key = NULL;
  _cleanup_buf_ struct buf chain = BUF_INIT(QUOTE_MAX_PCK_CHAIN), signed_part = BUF_INIT(4096);
  uint8_t qe_raw[QUOTE_QE_REPORT_SIZE], qe_sig[64], auth[SIM_QE_AUTH_SIZE], pub[65], uid[32];

  int r = load_info(dir, &info);
  if (r >= 0)
    r = sim_td_load(dir, &td);
  if (r >= 0)
    r = load_key(dir, SIM_FILE_QE_KEY, &qe_key);
  if (r >= 0)
    r = read_file(dir, SIM_FILE_PCK_CHAIN, QUOTE_MAX_PCK_CHAIN, &chain);
  if (r >= 0)
    r = read_exact(dir, SIM_FILE_QE_REPORT, qe_raw, sizeof(qe_raw));
  if (r >= 0)
    r = read_exact(dir, SIM_FILE_QE_REPORT_SIG, qe_sig, sizeof(qe_sig));
  if (r >= 0)
    r = read_exact(dir, SIM_FILE_QE_AUTH, auth, sizeof(auth));
  if (r >= 0)
    r = key_ec_public_point(qe_key, pub);
  if (r < 0)
    return r;

  struct quote q = {0};
  q.version = 4;
  q.att_key_type = QUOTE_ATT_KEY_ECDSA_P256;
  q.tee_type = QUOTE_TEE_TDX;
  q.qe_svn = info.qe_svn;
  q.pce_svn = info.pcesvn;
  memcpy(q.qe_vendor_id, intel_qe_vendor_id, 16);
  sha256(pub + 1, 64, uid); /* a QE id, as Intel's QE puts there */
  memcpy(q.user_data, uid, 16);
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
  memcpy(q.attest_key, pub + 1, 64);
  q.outer_cert_type = QUOTE_CERT_QE_REPORT;
  sgx_report_body_parse(qe_raw, &q.qe_report);
  memcpy(q.qe_report_raw, qe_raw, sizeof(qe_raw));
  memcpy(q.qe_report_sig, qe_sig, 64);
  q.qe_auth_data = SLICE(auth, sizeof(auth));
  q.cert_type = QUOTE_CERT_PCK_CHAIN;
  q.cert_data = buf_slice(&chain);
  q.pck_chain_pem = q.cert_data;

  r = quote_encode_signed(&q, &signed_part);
  if (r >= 0)
    r = key_ecdsa_sign_raw(qe_key, signed_part.data, signed_part.len, q.signature);
  if (r >= 0)
    r = quote_encode(&q, ret_quote);
  return r;
}

static int sim_extend_rtmr(struct tee *t, unsigned index, const uint8_t digest[48]) {
  return sim_td_extend(sim_dir(t), index, digest);
}

static int sim_read_rtmrs(struct tee *t, uint8_t ret[4][48]) {
  struct sim_td td;
  int r = sim_td_load(sim_dir(t), &td);
  if (r < 0)
    return r;
  memcpy(ret, td.rtmr, sizeof(td.rtmr));
  return 0;
}

static int sim_eventlog_path(struct tee *t, char **ret_path) {
  return sim_path(sim_dir(t), SIM_FILE_EVENTLOG, ret_path);
}

static void sim_free(struct tee *t) {
  if (!t)
    return;
  struct tee_sim *s = t->priv;
  if (s)
    free(s->dir);
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
  s->dir = d;
  t->ops = &tee_sim_ops;
  t->priv = s;
  *ret = t;
  return 0;
}

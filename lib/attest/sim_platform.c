/* `tdxctl sim init DIR`: a simulated TDX platform — root CA, PCK Platform CA, PCK leaf with the
 * Intel SGX extension, TCB signing cert, QE attestation key and signed QE report, the TD's
 * initial state with its boot events, and signed collateral. */
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/eventlog.h"
#include "attest/pck.h"
#include "attest/sim.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/x509.h"

#define SIM_CERT_YEARS ((int64_t)10 * 365 * 24 * 3600)
#define SIM_CRL_URL_ROOT "https://sim.dstack.invalid/sgx/certification/v4/rootcacrl"
#define SIM_CRL_URL_PCK "https://sim.dstack.invalid/sgx/certification/v4/pckcrl?ca=platform"

void sim_params_default(struct sim_params *p) {
  static const uint8_t fmspc[6] = {0x00, 0x80, 0x6f, 0x05, 0x00, 0x00};
  static const uint8_t sgx[16] = {2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0};
  static const uint8_t tee[16] = {6, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  memset(p, 0, sizeof(*p));
  memcpy(p->fmspc, fmspc, 6);
  memcpy(p->sgx_tcb_comp, sgx, 16);
  memcpy(p->tee_tcb_svn, tee, 16);
  p->pcesvn = SIM_PCE_SVN;
  p->tcb_eval_num = 17;
}

int sim_write_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode) {
  _cleanup_free_ char *path = NULL;
  int r = sim_path(dir, name, &path);
  if (r < 0)
    return r;
  r = file_write_atomic(path, data, len, mode);
  if (r < 0)
    return log_debug_errno(r, "writing %s", path);
  return 0;
}

static int write_key(const char *dir, const char *name, EVP_PKEY *k) {
  struct buf pem;
  buf_init_secret(&pem, BUF_MAX_SMALL);
  int r = key_to_pkcs8_pem(k, &pem);
  if (r >= 0)
    r = sim_write_file(dir, name, pem.data, pem.len, 0600);
  buf_free(&pem);
  return r;
}

static int write_cert(const char *dir, const char *name, X509 *c) {
  _cleanup_buf_ struct buf pem = BUF_INIT(BUF_MAX_SMALL);
  int r = x509_cert_to_pem(c, &pem);
  if (r >= 0)
    r = sim_write_file(dir, name, pem.data, pem.len, 0644);
  return r;
}

/* DER content of a CRLDistributionPoints extension naming url. */
static int crl_dp_der(const char *url, struct buf *out) {
  _cleanup_free_ char *v = NULL;
  if (asprintf(&v, "URI:%s", url) < 0)
    return -ENOMEM;
  _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext =
      X509V3_EXT_conf_nid(NULL, NULL, NID_crl_distribution_points, v);
  if (!ext)
    return -EIO;
  ASN1_OCTET_STRING *d = X509_EXTENSION_get_data(ext);
  return buf_append(out, ASN1_STRING_get0_data(d), (size_t)ASN1_STRING_length(d));
}

static void sim_pki_free(struct sim_pki *k) {
  X509_free(k->root);
  X509_free(k->pck_ca);
  X509_free(k->pck);
  X509_free(k->tcb);
  EVP_PKEY_free(k->root_key);
  EVP_PKEY_free(k->pck_ca_key);
  EVP_PKEY_free(k->pck_key);
  EVP_PKEY_free(k->tcb_key);
  memset(k, 0, sizeof(*k));
}

static void sim_pck_ext(const struct sim_params *p, struct pck_ext *e) {
  uint8_t h[48];
  memset(e, 0, sizeof(*e));
  sim_derive48("ppid", p->seed, h);
  memcpy(e->ppid, h, 16);
  memcpy(e->tcb_comp, p->sgx_tcb_comp, 16);
  e->pcesvn = p->pcesvn;
  memcpy(e->cpusvn, p->sgx_tcb_comp, 16);
  memcpy(e->pceid, p->pceid, 2);
  memcpy(e->fmspc, p->fmspc, 6);
  e->sgx_type = PCK_SGX_TYPE_SCALABLE;
  sim_derive48("platform-instance-id", p->seed, h);
  e->has_platform_instance_id = true;
  memcpy(e->platform_instance_id, h, 16);
  e->has_configuration = true;
  e->has_dynamic_platform = e->has_cached_keys = e->has_smt_enabled = true;
  e->dynamic_platform = false;
  e->cached_keys = true;
  e->smt_enabled = true;
}

static int build_pki(const struct sim_params *p, int64_t nb, int64_t na, struct sim_pki *k) {
  _cleanup_buf_ struct buf dp_root = BUF_INIT(1024), dp_pck = BUF_INIT(1024),
                           ext = BUF_INIT(4096);
  int r = crl_dp_der(SIM_CRL_URL_ROOT, &dp_root);
  if (r >= 0)
    r = crl_dp_der(SIM_CRL_URL_PCK, &dp_pck);
  if (r < 0)
    return r;
  struct pck_ext pe;
  sim_pck_ext(p, &pe);
  r = pck_ext_encode(&pe, &ext);
  if (r < 0)
    return r;

  if ((r = key_p256_generate(&k->root_key)) < 0 || (r = key_p256_generate(&k->pck_ca_key)) < 0 ||
      (r = key_p256_generate(&k->pck_key)) < 0 || (r = key_p256_generate(&k->tcb_key)) < 0)
    return r;

  int64_t cert_na = na > nb + SIM_CERT_YEARS ? na : nb + SIM_CERT_YEARS;
  const struct x509_params base = {
      .subject_org = SIM_ORG,
      .subject_locality = "Simulation",
      .subject_state = "SIM",
      .subject_country = "XX",
      .skid_akid = true,
      .not_before = nb,
      .not_after = cert_na,
      .path_len = -1,
  };
  struct x509_params xp = base;
  xp.subject_cn = SIM_ROOT_CN;
  xp.is_ca = true;
  xp.path_len = 1;
  xp.key_usage = X509_KU_KEY_CERT_SIGN | X509_KU_CRL_SIGN;
  struct x509_ext root_exts[] = {{"2.5.29.31", false, dp_root.data, dp_root.len}};
  xp.exts = root_exts;
  xp.n_exts = 1;
  r = x509_cert_build(&xp, k->root_key, NULL, NULL, &k->root);
  if (r < 0)
    return r;

  xp = base;
  xp.subject_cn = SIM_PCK_CA_CN;
  xp.is_ca = true;
  xp.path_len = 0;
  xp.key_usage = X509_KU_KEY_CERT_SIGN | X509_KU_CRL_SIGN;
  xp.exts = root_exts;
  xp.n_exts = 1;
  r = x509_cert_build(&xp, k->pck_ca_key, k->root, k->root_key, &k->pck_ca);
  if (r < 0)
    return r;

  xp = base;
  xp.subject_cn = SIM_PCK_CN;
  xp.explicit_no_ca = true;
  xp.key_usage = X509_KU_DIGITAL_SIGNATURE | X509_KU_NON_REPUDIATION;
  struct x509_ext pck_exts[] = {{"2.5.29.31", false, dp_pck.data, dp_pck.len},
                                {PCK_EXT_OID, false, ext.data, ext.len}};
  xp.exts = pck_exts;
  xp.n_exts = 2;
  r = x509_cert_build(&xp, k->pck_key, k->pck_ca, k->pck_ca_key, &k->pck);
  if (r < 0)
    return r;

  xp = base;
  xp.subject_cn = SIM_TCB_CN;
  xp.explicit_no_ca = true;
  xp.key_usage = X509_KU_DIGITAL_SIGNATURE | X509_KU_NON_REPUDIATION;
  xp.exts = root_exts;
  xp.n_exts = 1;
  return x509_cert_build(&xp, k->tcb_key, k->root, k->root_key, &k->tcb);
}

void sim_qe_report_default(const struct sim_params *p, struct sgx_report_body *qe) {
  static const uint8_t attributes[16] = {0x15, 0, 0, 0, 0, 0, 0, 0, 0xe7, 0, 0, 0, 0, 0, 0, 0};
  uint8_t h[48];
  memset(qe, 0, sizeof(*qe));
  memcpy(qe->cpu_svn, p->sgx_tcb_comp, 16);
  qe->misc_select = 0;
  memcpy(qe->attributes, attributes, 16);
  sim_derive48("qe-mrenclave", p->seed, h);
  memcpy(qe->mr_enclave, h, 32);
  /* the signer is the same for every simulated platform, like Intel's for real QEs */
  sim_derive48("qe-mrsigner", "dstack simulator TD QE", h);
  memcpy(qe->mr_signer, h, 32);
  qe->isv_prod_id = SIM_QE_ISVPRODID;
  qe->isv_svn = SIM_QE_SVN;
}

void sim_qe_auth_data(uint8_t out[SIM_QE_AUTH_SIZE]) {
  for (size_t i = 0; i < SIM_QE_AUTH_SIZE; i++)
    out[i] = (uint8_t)i; /* what Intel's QE puts there */
}

/* QE report: report_data = SHA-256(attestation key X||Y || auth data) || 32 zero bytes,
 * signed by the PCK key. */
static int make_qe_report(const char *dir, const struct sim_params *p, EVP_PKEY *pck_key,
                          EVP_PKEY *qe_key, struct sgx_report_body *ret_qe) {
  uint8_t pub[65], auth[SIM_QE_AUTH_SIZE], bind[64 + SIM_QE_AUTH_SIZE];
  int r = key_ec_public_point(qe_key, pub);
  if (r < 0)
    return r;
  sim_qe_auth_data(auth);
  memcpy(bind, pub + 1, 64);
  memcpy(bind + 64, auth, sizeof(auth));
  sim_qe_report_default(p, ret_qe);
  sha256(bind, sizeof(bind), ret_qe->report_data);
  uint8_t raw[QUOTE_QE_REPORT_SIZE], sig[64];
  sgx_report_body_encode(ret_qe, raw);
  r = key_ecdsa_sign_raw(pck_key, raw, sizeof(raw), sig);
  if (r < 0)
    return r;
  if ((r = sim_write_file(dir, SIM_FILE_QE_REPORT, raw, sizeof(raw), 0644)) < 0 ||
      (r = sim_write_file(dir, SIM_FILE_QE_REPORT_SIG, sig, sizeof(sig), 0644)) < 0 ||
      (r = sim_write_file(dir, SIM_FILE_QE_AUTH, auth, sizeof(auth), 0644)) < 0)
    return r;
  return 0;
}

/* The simulated firmware/boot events on RTMR0..2. */
struct sim_boot_event {
  unsigned imr;
  uint32_t type;
  const char *name;
};
static const struct sim_boot_event sim_boot_events[] = {
    {0, 0x8000000a, "sim-td-firmware"}, /* EV_EFI_PLATFORM_FIRMWARE_BLOB2 */
    {0, 0x80000001, "sim-td-config"},   /* EV_EFI_VARIABLE_DRIVER_CONFIG */
    {1, 0x80000003, "sim-kernel"},      /* EV_EFI_BOOT_SERVICES_APPLICATION */
    {1, 0x00000005, "sim-exit-boot-services"}, /* EV_EFI_ACTION */
    {2, 0x0000000d, "sim-kernel-cmdline"},     /* EV_IPL */
    {2, 0x0000000d, "sim-initrd"},
};

static int make_td(const char *dir, const struct sim_params *p) {
  struct sim_td td;
  sim_td_default(p->seed, p->tee_tcb_svn, &td);
  _cleanup_buf_ struct buf log = BUF_INIT(BUF_MAX_SMALL);
  for (size_t i = 0; i < ARRAY_SIZE(sim_boot_events); i++) {
    const struct sim_boot_event *e = &sim_boot_events[i];
    uint8_t d[48];
    sim_derive48(e->name, p->seed, d);
    sim_rtmr_extend(td.rtmr[e->imr], d);
    int r = eventlog_seed_line(e->imr, e->type, d, e->name, &log);
    if (r < 0)
      return r;
  }
  int r = sim_td_store(dir, &td);
  if (r < 0)
    return r;
  return sim_write_file(dir, SIM_FILE_EVENTLOG, log.data, log.len, 0600);
}

static int write_marker(const char *dir, const struct sim_params *p, int64_t nb, int64_t na) {
  _cleanup_json_ json_t *j = json_object();
  if (!j)
    return -ENOMEM;
  int r = json_set_u64(j, "version", 1);
  if (r >= 0)
    r = json_set_str(j, "kind", "dstack TDX simulator (not Intel; trust only explicitly)");
  if (r >= 0)
    r = json_set_str(j, "seed", p->seed ? p->seed : SIM_DEFAULT_SEED);
  if (r >= 0)
    r = json_set_hex(j, "fmspc", p->fmspc, 6);
  if (r >= 0)
    r = json_set_hex(j, "pceid", p->pceid, 2);
  if (r >= 0)
    r = json_set_hex(j, "sgx_tcb_comp", p->sgx_tcb_comp, 16);
  if (r >= 0)
    r = json_set_u64(j, "pcesvn", p->pcesvn);
  if (r >= 0)
    r = json_set_hex(j, "tee_tcb_svn", p->tee_tcb_svn, 16);
  if (r >= 0)
    r = json_set_u64(j, "qe_svn", SIM_QE_SVN);
  if (r >= 0)
    r = json_set_u64(j, "tcb_eval_num", p->tcb_eval_num);
  if (r >= 0)
    r = json_set_i64(j, "not_before", nb);
  if (r >= 0)
    r = json_set_i64(j, "not_after", na);
  if (r < 0)
    return r;
  _cleanup_buf_ struct buf text = BUF_INIT(BUF_MAX_SMALL);
  r = json_dump_buf(j, JSON_INDENT(2), &text);
  if (r >= 0)
    r = buf_append_str(&text, "\n");
  if (r >= 0)
    r = sim_write_file(dir, SIM_FILE_MARKER, text.data, text.len, 0644);
  return r;
}

int sim_platform_check(const char *dir) {
  _cleanup_free_ char *path = NULL;
  int r = sim_path(dir, SIM_FILE_MARKER, &path);
  if (r < 0)
    return r;
  if (access(path, R_OK) < 0)
    return -errno == -ENOENT ? -ENOENT : -errno;
  return 0;
}

int sim_platform_init(const char *dir, const struct sim_params *params) {
  if (!dir || !*dir)
    return -EINVAL;
  struct sim_params p;
  if (params)
    p = *params;
  else
    sim_params_default(&p);
  int64_t now = (int64_t)time(NULL);
  int64_t nb = p.not_before ? p.not_before : now - 3600;
  int64_t na = p.not_after ? p.not_after : now + 30 * 24 * 3600;
  if (na <= nb)
    return -EINVAL;
  p.not_before = nb;
  p.not_after = na;

  int r = mkdir_p(dir, 0700);
  if (r < 0)
    return log_debug_errno(r, "creating %s", dir);
  if (chmod(dir, 0700) < 0)
    return log_debug_errno(-errno, "chmod %s", dir);
  _cleanup_free_ char *marker = NULL, *coll = NULL;
  if ((r = sim_path(dir, SIM_FILE_MARKER, &marker)) < 0 ||
      (r = sim_path(dir, SIM_DIR_COLLATERAL, &coll)) < 0)
    return r;
  /* a half-done re-init must not look initialised */
  if (unlink(marker) < 0 && errno != ENOENT)
    return -errno;
  r = mkdir_p(coll, 0755);
  if (r < 0)
    return r;

  struct sim_pki k = {0};
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *qe_key = NULL;
  _cleanup_buf_ struct buf chain = BUF_INIT(BUF_MAX_SMALL);
  struct buf mac;
  buf_init_secret(&mac, 64);
  struct sgx_report_body qe;

  r = build_pki(&p, nb, na, &k);
  if (r < 0)
    goto out;
  r = key_p256_generate(&qe_key);
  if (r < 0)
    goto out;
  if ((r = write_cert(dir, SIM_FILE_ROOT_CA, k.root)) < 0 ||
      (r = write_key(dir, SIM_FILE_ROOT_KEY, k.root_key)) < 0 ||
      (r = write_cert(dir, SIM_FILE_PCK_CA, k.pck_ca)) < 0 ||
      (r = write_key(dir, SIM_FILE_PCK_CA_KEY, k.pck_ca_key)) < 0 ||
      (r = write_cert(dir, SIM_FILE_PCK, k.pck)) < 0 ||
      (r = write_key(dir, SIM_FILE_PCK_KEY, k.pck_key)) < 0 ||
      (r = write_cert(dir, SIM_FILE_TCB_SIGNING, k.tcb)) < 0 ||
      (r = write_key(dir, SIM_FILE_TCB_SIGNING_KEY, k.tcb_key)) < 0 ||
      (r = write_key(dir, SIM_FILE_QE_KEY, qe_key)) < 0)
    goto out;
  if ((r = x509_cert_to_pem(k.pck, &chain)) < 0 || (r = x509_cert_to_pem(k.pck_ca, &chain)) < 0 ||
      (r = x509_cert_to_pem(k.root, &chain)) < 0 ||
      (r = sim_write_file(dir, SIM_FILE_PCK_CHAIN, chain.data, chain.len, 0644)) < 0)
    goto out;

  r = buf_append_zero(&mac, SIM_MAC_KEY_SIZE);
  if (r < 0)
    goto out;
  if (RAND_priv_bytes(mac.data, SIM_MAC_KEY_SIZE) != 1) {
    r = -EIO;
    goto out;
  }
  r = sim_write_file(dir, SIM_FILE_MAC_KEY, mac.data, mac.len, 0600);
  if (r < 0)
    goto out;

  r = make_qe_report(dir, &p, k.pck_key, qe_key, &qe);
  if (r < 0)
    goto out;
  r = make_td(dir, &p);
  if (r < 0)
    goto out;
  {
    struct sim_td td;
    r = sim_td_load(dir, &td);
    if (r < 0)
      goto out;
    r = sim_collateral_write(dir, &p, &k, &qe, td.mr_signer_seam, td.seam_attributes);
    if (r < 0)
      goto out;
  }
  r = write_marker(dir, &p, nb, na);
out:
  buf_free(&mac);
  sim_pki_free(&k);
  if (r < 0)
    log_debug_errno(r, "initialising simulator in %s", dir);
  return r;
}

int sim_platform_for_dev(const char *dir, char **ret, char *err, size_t errlen) {
  const char *env = getenv(TEE_ENV_SIM_DIR);
  int r;
  if (env && *env) {
    if (sim_platform_check(env) < 0)
      return str_err(err, errlen, -ENOENT,
                     "%s=%s is not an initialised simulated platform (tdxctl sim init DIR)",
                     TEE_ENV_SIM_DIR, env);
    char *abs = realpath(env, NULL);
    if (!abs)
      return str_err(err, errlen, -errno, "%s: %s", env, strerror(errno));
    *ret = abs;
    return 0;
  }
  char *p = str_printf("%s/sim", dir);
  if (!p)
    return -ENOMEM;
  if (sim_platform_check(p) < 0) {
    log_debug("dev mode: creating a simulated TDX platform in %s", p);
    r = sim_platform_init(p, NULL);
    if (r < 0) {
      free(p);
      return str_err(err, errlen, r, "creating the simulated platform: %s", strerror(-r));
    }
    *ret = p;
    return 1;
  }
  *ret = p;
  return 0;
}

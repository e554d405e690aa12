#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attest/eventlog.h"
#include "attest/pck.h"
#include "attest/quote.h"
#include "attest/sim.h"
#include "attest/tdreport.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "testutil.h"

static char *g_tmp;
static char g_dir[1024];

static int setup(void **state) {
  (void)state;
  g_tmp = tu_mkdtemp();
  snprintf(g_dir, sizeof(g_dir), "%s/sim", g_tmp);
  unsetenv(TEE_ENV_BACKEND);
  unsetenv(TEE_ENV_SIM_DIR);
  return sim_platform_init(g_dir, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tu_rm_rf(g_tmp);
  free(g_tmp);
  unsetenv(TEE_ENV_BACKEND);
  unsetenv(TEE_ENV_SIM_DIR);
  return 0;
}

static const char *path_in(const char *name) {
  static char p[2048];
  snprintf(p, sizeof(p), "%s/%s", g_dir, name);
  return p;
}

static struct tee *open_sim(void) {
  struct tee *t = NULL;
  assert_int_equal(tee_sim_new(g_dir, &t), 0);
  assert_non_null(t);
  assert_string_equal(tee_name(t), "sim");
  return t;
}

static void fill(uint8_t *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(seed + 7 * i);
}

static void read_log(struct eventlog *el, size_t *ret_lines) {
  _cleanup_buf_ struct buf log = BUF_INIT(BUF_MAX_FILE);
  tu_read_file(path_in(SIM_FILE_EVENTLOG), &log);
  size_t lines = 0;
  for (size_t i = 0; i < log.len; i++)
    lines += log.data[i] == '\n';
  assert_true(log.len > 0 && log.data[log.len - 1] == '\n');
  assert_int_equal(eventlog_parse_json((const char *)log.data, log.len, el), 0);
  assert_int_equal(el->n, lines);
  if (ret_lines)
    *ret_lines = lines;
}

static void test_quote(void **state) {
  (void)state;
  _cleanup_(tee_freep) struct tee *t = open_sim();
  uint8_t rd[64];
  fill(rd, sizeof(rd), 3);
  _cleanup_buf_ struct buf qb = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(tee_get_quote(t, rd, &qb), 0);

  struct quote q;
  assert_int_equal(quote_parse(qb.data, qb.len, &q), 0);
  assert_int_equal(q.total_len, qb.len);
  assert_memory_equal(qb.data, "\x04\x00\x02\x00\x81\x00\x00\x00", 8);
  assert_int_equal(q.version, 4);
  assert_int_equal(q.att_key_type, 2);
  assert_int_equal(q.tee_type, 0x81);
  assert_int_equal(q.body_type, QUOTE_BODY_TD10);
  assert_int_equal(q.qe_svn, SIM_QE_SVN);
  assert_int_equal(q.pce_svn, SIM_PCE_SVN);
  assert_memory_equal(q.qe_vendor_id,
                      "\x93\x9a\x72\x33\xf7\x9c\x4c\xa9\x94\x0a\x0d\xb3\x95\x7f\x06\x07", 16);
  assert_memory_equal(q.td.report_data, rd, 64);
  assert_int_equal(q.outer_cert_type, 6);
  assert_int_equal(q.cert_type, 5);
  assert_int_equal(q.qe_auth_data.len, 32);
  assert_int_equal(q.signed_len, 48 + 584);

  /* body = TD state */
  struct sim_td td;
  assert_int_equal(sim_td_load(g_dir, &td), 0);
  assert_memory_equal(q.td.mr_td, td.mr_td, 48);
  assert_memory_equal(q.td.rt_mr, td.rtmr, sizeof(td.rtmr));
  assert_memory_equal(q.td.tee_tcb_svn, td.tee_tcb_svn, 16);
  assert_memory_equal(q.td.td_attributes, td.td_attributes, 8);
  assert_memory_equal(q.td.xfam, td.xfam, 8);
  assert_memory_equal(q.td.mr_seam, td.mr_seam, 48);

  /* PCK chain in the quote = the directory's, leaf first */
  _cleanup_buf_ struct buf chain = BUF_INIT(BUF_MAX_SMALL);
  tu_read_file(path_in(SIM_FILE_PCK_CHAIN), &chain);
  assert_int_equal(q.pck_chain_pem.len, chain.len);
  assert_memory_equal(q.pck_chain_pem.ptr, chain.data, chain.len);
  _cleanup_x509_chain_ STACK_OF(X509) *sk = NULL;
  assert_int_equal(x509_chain_from_pem(q.pck_chain_pem.ptr, q.pck_chain_pem.len, &sk), 0);
  assert_int_equal(sk_X509_num(sk), 3);
  struct pck_ext e;
  assert_int_equal(pck_chain_leaf_ext(q.pck_chain_pem.ptr, q.pck_chain_pem.len, &e), 0);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *pck_pub = NULL;
  assert_int_equal(x509_cert_public_key(sk_X509_value(sk, 0), &pck_pub), 0);

  /* QE report signed by the PCK key */
  assert_int_equal(key_ecdsa_verify_raw(pck_pub, q.qe_report_raw, sizeof(q.qe_report_raw),
                                        q.qe_report_sig),
                   0);
  uint8_t bad[QUOTE_QE_REPORT_SIZE];
  memcpy(bad, q.qe_report_raw, sizeof(bad));
  bad[0] ^= 1;
  assert_int_not_equal(key_ecdsa_verify_raw(pck_pub, bad, sizeof(bad), q.qe_report_sig), 0);
  assert_int_equal(q.qe_report.isv_prod_id, SIM_QE_ISVPRODID);
  assert_int_equal(q.qe_report.isv_svn, SIM_QE_SVN);
  assert_memory_equal(q.qe_report.cpu_svn, e.cpusvn, 16);

  /* QE report_data binds attestation key and auth data */
  uint8_t bind[64 + 32], h[32], zero[32] = {0};
  memcpy(bind, q.attest_key, 64);
  memcpy(bind + 64, q.qe_auth_data.ptr, 32);
  sha256(bind, sizeof(bind), h);
  assert_memory_equal(q.qe_report.report_data, h, 32);
  assert_memory_equal(q.qe_report.report_data + 32, zero, 32);

  /* quote signature by the attestation key over header || body */
  assert_int_equal(key_ecdsa_verify_raw_pub(q.attest_key, qb.data, q.signed_len, q.signature), 0);
  assert_int_equal(key_ecdsa_verify_raw_pub(q.attest_key, q.signed_data.ptr, q.signed_data.len,
                                            q.signature),
                   0);
  qb.data[0x3c] ^= 1; /* a body byte */
  assert_int_not_equal(key_ecdsa_verify_raw_pub(q.attest_key, qb.data, q.signed_len, q.signature),
                       0);
  qb.data[0x3c] ^= 1;

  /* the attestation key is the one in DIR */
  _cleanup_buf_ struct buf kp = BUF_INIT(BUF_MAX_SMALL);
  tu_read_file(path_in(SIM_FILE_QE_KEY), &kp);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *qk = NULL;
  assert_int_equal(key_from_pem_or_der(kp.data, kp.len, &qk), 0);
  uint8_t pub[65];
  assert_int_equal(key_ec_public_point(qk, pub), 0);
  assert_memory_equal(pub + 1, q.attest_key, 64);

  /* encode(parse(q)) == q */
  _cleanup_buf_ struct buf re = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(quote_encode(&q, &re), 0);
  assert_int_equal(re.len, qb.len);
  assert_memory_equal(re.data, qb.data, qb.len);

  /* another report_data: another signature, same platform parts */
  uint8_t rd2[64] = {0};
  _cleanup_buf_ struct buf qb2 = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(tee_get_quote(t, rd2, &qb2), 0);
  struct quote q2;
  assert_int_equal(quote_parse(qb2.data, qb2.len, &q2), 0);
  assert_memory_equal(q2.td.report_data, rd2, 64);
  assert_memory_equal(q2.attest_key, q.attest_key, 64);
  assert_int_equal(key_ecdsa_verify_raw_pub(q2.attest_key, qb2.data, q2.signed_len, q2.signature),
                   0);
}

static void test_report(void **state) {
  (void)state;
  _cleanup_(tee_freep) struct tee *t = open_sim();
  uint8_t rd[64], raw[1024];
  fill(rd, sizeof(rd), 9);
  assert_int_equal(tee_get_report(t, rd, raw), 0);
  struct tdreport r;
  assert_int_equal(tdreport_parse(raw, sizeof(raw), &r), 0);
  assert_int_equal(r.mac.report_type[0], 0x81);
  assert_memory_equal(r.mac.report_data, rd, 64);
  uint8_t h[48];
  sha384(raw + 256, TDREPORT_TEE_TCB_INFO_SIZE, h);
  assert_memory_equal(r.mac.tee_tcb_info_hash, h, 48);
  sha384(raw + 512, 512, h);
  assert_memory_equal(r.mac.tee_info_hash, h, 48);

  uint8_t key[32], mac[32];
  _cleanup_buf_ struct buf kb = BUF_INIT(64);
  tu_read_file(path_in(SIM_FILE_MAC_KEY), &kb);
  assert_int_equal(kb.len, 32);
  memcpy(key, kb.data, 32);
  size_t ml = 0;
  assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, 32, raw, 224, mac, 32, &ml));
  assert_memory_equal(mac, r.mac.mac, 32);
  raw[100] ^= 1;
  assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, 32, raw, 224, mac, 32, &ml));
  assert_memory_not_equal(mac, r.mac.mac, 32);
  raw[100] ^= 1;

  /* TDINFO and TEE_TCB_INFO = the quote's body */
  _cleanup_buf_ struct buf qb = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(tee_get_quote(t, rd, &qb), 0);
  struct quote q;
  assert_int_equal(quote_parse(qb.data, qb.len, &q), 0);
  assert_memory_equal(r.td_info.mrtd, q.td.mr_td, 48);
  assert_memory_equal(r.td_info.rtmr, q.td.rt_mr, sizeof(q.td.rt_mr));
  assert_memory_equal(r.td_info.attributes, q.td.td_attributes, 8);
  assert_memory_equal(r.td_info.xfam, q.td.xfam, 8);
  assert_memory_equal(r.tee_tcb_info.tee_tcb_svn, q.td.tee_tcb_svn, 16);
  assert_memory_equal(r.tee_tcb_info.mrseam, q.td.mr_seam, 48);
}

static void test_extend_and_replay(void **state) {
  (void)state;
  _cleanup_(tee_freep) struct tee *t = open_sim();
  uint8_t before[4][48], after[4][48], d[48], expect[48];
  assert_int_equal(tee_read_rtmrs(t, before), 0);
  size_t lines0;
  {
    _cleanup_eventlog_ struct eventlog el = EVENTLOG_INIT;
    read_log(&el, &lines0);
  }
  assert_int_equal(tee_digest_pad48("\xaa\xbb", 2, d), 0);
  assert_int_equal(d[0], 0xaa);
  assert_int_equal(d[2], 0);
  assert_int_equal(tee_digest_pad48(d, 49, d), -EINVAL);

  assert_int_equal(tee_extend_event(t, 3, 1, d, "app-id"), 0);
  assert_int_equal(tee_read_rtmrs(t, after), 0);
  uint8_t in[96];
  memcpy(in, before[3], 48);
  memcpy(in + 48, d, 48);
  sha384(in, 96, expect);
  assert_memory_equal(after[3], expect, 48);
  assert_memory_equal(after[0], before[0], 3 * 48);

  /* the last line of the log is exactly the seed line */
  _cleanup_buf_ struct buf log = BUF_INIT(BUF_MAX_FILE), line = BUF_INIT(1024);
  tu_read_file(path_in(SIM_FILE_EVENTLOG), &log);
  assert_int_equal(eventlog_seed_line(3, 1, d, "app-id", &line), 0);
  assert_true(log.len > line.len);
  assert_memory_equal(log.data + log.len - line.len, line.data, line.len);

  /* plain extend (no log) on RTMR2, then another event */
  uint8_t d2[48];
  fill(d2, 48, 1);
  assert_int_equal(tee_extend_rtmr(t, 2, d2), 0);
  assert_int_equal(tee_read_rtmrs(t, after), 0);
  assert_memory_not_equal(after[2], before[2], 48);
  assert_int_equal(tee_extend_rtmr(t, 4, d2), -EINVAL);
  assert_int_equal(tee_extend_event(t, 4, 1, d2, "x"), -EINVAL);

  /* replay of the log gives RTMR0,1,3 of a fresh quote (RTMR2 was extended without a log) */
  uint8_t rd[64] = {0};
  _cleanup_buf_ struct buf qb = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(tee_get_quote(t, rd, &qb), 0);
  struct quote q;
  assert_int_equal(quote_parse(qb.data, qb.len, &q), 0);
  _cleanup_eventlog_ struct eventlog el = EVENTLOG_INIT;
  size_t lines1;
  read_log(&el, &lines1);
  assert_int_equal(lines1, lines0 + 1);
  uint8_t rt[4][48];
  assert_int_equal(eventlog_replay(&el, rt), 0);
  assert_memory_equal(rt[0], q.td.rt_mr[0], 48);
  assert_memory_equal(rt[1], q.td.rt_mr[1], 48);
  assert_memory_equal(rt[3], q.td.rt_mr[3], 48);
  assert_memory_not_equal(rt[2], q.td.rt_mr[2], 48);
}

/* After a fresh init, replaying the sim event log reproduces RTMR0..3 of a quote exactly. */
static void test_replay_fresh(void **state) {
  (void)state;
  char d2[1100];
  snprintf(d2, sizeof(d2), "%s/fresh", g_tmp);
  assert_int_equal(sim_platform_init(d2, NULL), 0);
  struct tee *t = NULL;
  assert_int_equal(tee_sim_new(d2, &t), 0);
  uint8_t dg[48];
  for (int i = 0; i < 3; i++) {
    fill(dg, 48, (uint8_t)i);
    assert_int_equal(tee_extend_event(t, 3, EVENTLOG_EV_SEED, dg, "ev"), 0);
  }
  uint8_t rd[64] = {1};
  _cleanup_buf_ struct buf qb = BUF_INIT(BUF_MAX_QUOTE), log = BUF_INIT(BUF_MAX_FILE);
  assert_int_equal(tee_get_quote(t, rd, &qb), 0);
  char *lp = NULL;
  assert_int_equal(tee_eventlog_path(t, &lp), 0);
  tu_read_file(lp, &log);
  free(lp);
  tee_free(t);
  struct quote q;
  assert_int_equal(quote_parse(qb.data, qb.len, &q), 0);
  _cleanup_eventlog_ struct eventlog el = EVENTLOG_INIT;
  assert_int_equal(eventlog_parse_json((const char *)log.data, log.len, &el), 0);
  uint8_t rt[4][48];
  assert_int_equal(eventlog_replay(&el, rt), 0);
  assert_memory_equal(rt, q.td.rt_mr, sizeof(rt));
  /* events exist on every IMR */
  bool seen[4] = {0};
  for (size_t i = 0; i < el.n; i++)
    if (el.ev[i].imr < 4)
      seen[el.ev[i].imr] = true;
  assert_true(seen[0] && seen[1] && seen[2] && seen[3]);
}

#define N_CHILDREN 2
#define N_EXTENDS 50

static void test_concurrent_extends(void **state) {
  (void)state;
  pid_t pids[N_CHILDREN];
  for (int c = 0; c < N_CHILDREN; c++) {
    pids[c] = fork();
    assert_true(pids[c] >= 0);
    if (pids[c] == 0) {
      struct tee *t = NULL;
      int ok = tee_sim_new(g_dir, &t) == 0;
      for (int i = 0; ok && i < N_EXTENDS; i++) {
        uint8_t d[48];
        fill(d, 48, (uint8_t)(c * 100 + i));
        char name[32];
        snprintf(name, sizeof(name), "child%d-%d", c, i);
        ok = tee_extend_event(t, 3, 1, d, name) == 0;
      }
      tee_free(t);
      _exit(ok ? 0 : 1);
    }
  }
  for (int c = 0; c < N_CHILDREN; c++) {
    int st = 0;
    assert_int_equal(waitpid(pids[c], &st, 0), pids[c]);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
  }
  _cleanup_(tee_freep) struct tee *t = open_sim();
  uint8_t rt[4][48], replay[4][48];
  assert_int_equal(tee_read_rtmrs(t, rt), 0);
  _cleanup_eventlog_ struct eventlog el = EVENTLOG_INIT;
  read_log(&el, NULL);
  size_t children = 0;
  for (size_t i = 0; i < el.n; i++)
    children += strncmp(el.ev[i].event, "child", 5) == 0;
  assert_int_equal(children, N_CHILDREN * N_EXTENDS);
  assert_int_equal(eventlog_replay(&el, replay), 0);
  assert_memory_equal(replay[3], rt[3], 48);
}

/* A failing extend leaves no line in the log. */
static void test_extend_failure_rolls_back(void **state) {
  (void)state;
  char d2[1100];
  snprintf(d2, sizeof(d2), "%s/broken", g_tmp);
  assert_int_equal(sim_platform_init(d2, NULL), 0);
  struct tee *t = NULL;
  assert_int_equal(tee_sim_new(d2, &t), 0);
  char td_path[1200], log_path[1200];
  snprintf(td_path, sizeof(td_path), "%s/%s", d2, SIM_FILE_TD);
  snprintf(log_path, sizeof(log_path), "%s/%s", d2, SIM_FILE_EVENTLOG);
  struct stat st0, st1;
  assert_int_equal(stat(log_path, &st0), 0);
  assert_int_equal(file_write_atomic(td_path, "{}", 2, 0644), 0);
  uint8_t d[48] = {0};
  assert_int_equal(tee_extend_event(t, 3, 1, d, "lost"), -EBADMSG);
  assert_int_equal(stat(log_path, &st1), 0);
  assert_int_equal(st0.st_size, st1.st_size);
  uint8_t rd[64] = {0}, rep[1024];
  assert_int_equal(tee_get_report(t, rd, rep), -EBADMSG);
  tee_free(t);
}

/* The backend keeps the platform's keys and the parsed TD state between calls; what other
 * processes change must still show: an extend through another path, a re-initialised platform
 * (new QE key, new PCK chain), a removed platform. */
static void test_cache_coherent(void **state) {
  (void)state;
  char d2[1024];
  snprintf(d2, sizeof(d2), "%s/sim-cache", g_tmp);
  assert_int_equal(sim_platform_init(d2, NULL), 0);
  struct tee *t = NULL;
  assert_int_equal(tee_sim_new(d2, &t), 0);
  uint8_t rd[64] = {0}, digest[48];
  fill(digest, sizeof(digest), 9);
  _cleanup_buf_ struct buf q1 = BUF_INIT(BUF_MAX_QUOTE), q2 = BUF_INIT(BUF_MAX_QUOTE),
                           q3 = BUF_INIT(BUF_MAX_QUOTE);
  struct quote a, b, c;
  assert_int_equal(tee_get_quote(t, rd, &q1), 0);
  assert_int_equal(quote_parse(q1.data, q1.len, &a), 0);

  /* An extend that does not go through this tee object (as another process's would). */
  assert_int_equal(sim_td_extend(d2, 3, digest), 0);
  uint8_t rtmrs[4][48];
  assert_int_equal(tee_read_rtmrs(t, rtmrs), 0);
  struct sim_td td;
  assert_int_equal(sim_td_load(d2, &td), 0);
  assert_memory_equal(rtmrs, td.rtmr, sizeof(rtmrs));
  assert_memory_not_equal(rtmrs[3], a.td.rt_mr[3], 48);
  assert_int_equal(tee_get_quote(t, rd, &q2), 0);
  assert_int_equal(quote_parse(q2.data, q2.len, &b), 0);
  assert_memory_equal(b.td.rt_mr, td.rtmr, sizeof(td.rtmr));
  assert_memory_equal(b.attest_key, a.attest_key, 64);
  uint8_t rep[TDREPORT_SIZE];
  assert_int_equal(tee_get_report(t, rd, rep), 0);
  struct tdreport tr;
  assert_int_equal(tdreport_parse(rep, sizeof(rep), &tr), 0);
  assert_memory_equal(tr.td_info.rtmr, td.rtmr, sizeof(td.rtmr));

  /* A new platform in the same directory: new keys, RTMR3 back to zero. */
  assert_int_equal(sim_platform_init(d2, NULL), 0);
  assert_int_equal(tee_get_quote(t, rd, &q3), 0);
  assert_int_equal(quote_parse(q3.data, q3.len, &c), 0);
  assert_memory_not_equal(c.attest_key, a.attest_key, 64);
  _cleanup_buf_ struct buf chain = BUF_INIT(BUF_MAX_SMALL);
  char chain_path[1100];
  snprintf(chain_path, sizeof(chain_path), "%s/%s", d2, SIM_FILE_PCK_CHAIN);
  tu_read_file(chain_path, &chain);
  assert_int_equal(c.pck_chain_pem.len, chain.len);
  assert_memory_equal(c.pck_chain_pem.ptr, chain.data, chain.len);
  static const uint8_t z48[48];
  assert_memory_equal(c.td.rt_mr[3], z48, 48);
  /* The quote verifies with the new attestation key. */
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *ak = NULL;
  assert_int_equal(key_p256_from_public_raw(c.attest_key, &ak), 0);
  assert_int_equal(key_ecdsa_verify_raw(ak, q3.data, c.signed_len, c.signature), 0);
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *old = NULL;
  assert_int_equal(key_p256_from_public_raw(a.attest_key, &old), 0);
  assert_int_not_equal(key_ecdsa_verify_raw(old, q3.data, c.signed_len, c.signature), 0);

  /* No platform any more: an error, not a quote from remembered keys. */
  char marker[1100];
  snprintf(marker, sizeof(marker), "%s/%s", d2, SIM_FILE_MARKER);
  assert_int_equal(unlink(marker), 0);
  buf_reset(&q3);
  assert_int_not_equal(tee_get_quote(t, rd, &q3), 0);
  assert_int_not_equal(tee_get_report(t, rd, rep), 0);
  tee_free(t);
}

static void test_open_selection(void **state) {
  (void)state;
  struct tee *t = NULL;
  /* explicit sim with a dir from the environment */
  assert_int_equal(setenv(TEE_ENV_SIM_DIR, g_dir, 1), 0);
  assert_int_equal(tee_open("sim", &t), 0);
  assert_string_equal(tee_name(t), "sim");
  tee_free(t);
  t = NULL;
  assert_int_equal(setenv(TEE_ENV_BACKEND, "sim", 1), 0);
  assert_int_equal(tee_open(NULL, &t), 0);
  assert_string_equal(tee_name(t), "sim");
  char *lp = NULL;
  assert_int_equal(tee_eventlog_path(t, &lp), 0);
  assert_string_equal(lp, path_in(SIM_FILE_EVENTLOG));
  free(lp);
  tee_free(t);
  t = NULL;
  assert_int_equal(tee_sim_new(NULL, &t), 0);
  tee_free(t);
  t = NULL;

  /* bad backend names */
  assert_int_equal(setenv(TEE_ENV_BACKEND, "sgx", 1), 0);
  assert_int_equal(tee_open(NULL, &t), -EINVAL);
  assert_null(t);
  assert_int_equal(tee_open("bogus", &t), -EINVAL);

  /* sim without a dir, or with an uninitialised one */
  assert_int_equal(setenv(TEE_ENV_BACKEND, "sim", 1), 0);
  unsetenv(TEE_ENV_SIM_DIR);
  assert_int_equal(tee_open(NULL, &t), -ENOENT);
  assert_null(t);
  assert_int_equal(setenv(TEE_ENV_SIM_DIR, g_tmp, 1), 0);
  assert_int_equal(tee_open(NULL, &t), -ENOENT);
  assert_int_equal(tee_sim_new(g_tmp, &t), -ENOENT);
  assert_int_equal(tee_sim_new("/nonexistent/dstack-sim", &t), -ENOENT);
  assert_null(t);

  /* no DSTACK_TEE: the simulator is never picked implicitly */
  unsetenv(TEE_ENV_BACKEND);
  assert_int_equal(setenv(TEE_ENV_SIM_DIR, g_dir, 1), 0);
  int err = 0;
  const char *name = tee_detect(&err);
  if (access("/dev/tdx_guest", F_OK) == 0 || access("/sys/kernel/config/tsm/report", F_OK) == 0) {
    assert_string_equal(name, "tdx");
  } else {
    assert_null(name);
    assert_int_equal(err, -ENODEV);
    assert_int_equal(tee_open(NULL, &t), -ENODEV);
    assert_null(t);
  }
  assert_int_equal(setenv(TEE_ENV_BACKEND, "", 1), 0);
  name = tee_detect(&err);
  assert_true(name == NULL || strcmp(name, "tdx") == 0);
  unsetenv(TEE_ENV_BACKEND);
  unsetenv(TEE_ENV_SIM_DIR);
}

static void test_null_args(void **state) {
  (void)state;
  uint8_t rd[64] = {0}, rep[1024], rt[4][48];
  _cleanup_buf_ struct buf b = BUF_INIT(16);
  assert_int_equal(tee_get_report(NULL, rd, rep), -EINVAL);
  assert_int_equal(tee_get_quote(NULL, rd, &b), -EINVAL);
  assert_int_equal(tee_read_rtmrs(NULL, rt), -EINVAL);
  assert_int_equal(tee_open(NULL, NULL), -EINVAL);
  assert_int_equal(tee_sim_new(g_dir, NULL), -EINVAL);
  tee_free(NULL);
  /* a quote does not fit a tiny buffer */
  _cleanup_(tee_freep) struct tee *t = open_sim();
  assert_int_equal(tee_get_quote(t, rd, &b), -ENOBUFS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quote),
      cmocka_unit_test(test_report),
      cmocka_unit_test(test_extend_and_replay),
      cmocka_unit_test(test_replay_fresh),
      cmocka_unit_test(test_concurrent_extends),
      cmocka_unit_test(test_extend_failure_rolls_back),
      cmocka_unit_test(test_cache_coherent),
      cmocka_unit_test(test_open_selection),
      cmocka_unit_test(test_null_args),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

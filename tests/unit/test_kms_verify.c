/* KMS peer verification end to end on a simulated platform: RA-TLS certificates made from the
 * simulator's quotes and event log, checked for binding, DCAP, event-log replay and app
 * identity; and every refusal with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attest/eventlog.h"
#include "attest/quote.h"
#include "attest/sim.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "kms_config.h"
#include "kms_verify.h"
#include "ratls/ratls.h"
#include "testutil.h"

struct fx {
  char *dir;
  char sim[512];
  struct tee *tee;
  struct kms_config cfg;
  struct ratls_verifier *v;
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  f->dir = tu_mkdtemp();
  snprintf(f->sim, sizeof(f->sim), "%s/sim", f->dir);
  assert_int_equal(sim_platform_init(f->sim, NULL), 0);
  assert_int_equal(tee_sim_new(f->sim, &f->tee), 0);
  struct sim_td td;
  assert_int_equal(sim_td_load(f->sim, &td), 0);
  assert_int_equal(kms_config_init_dev(&f->cfg, f->dir, f->sim, td.mr_td,
                                       (const uint8_t(*)[48])td.rtmr),
                   0);
  char err[256] = "";
  assert_int_equal(kms_verifier_new(&f->cfg, false, &f->v, err, sizeof(err)), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  ratls_verifier_free(f->v);
  kms_config_free(&f->cfg);
  tee_free(f->tee);
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static void seed_event(struct fx *f, unsigned imr, const char *name, const char *text) {
  uint8_t h[32], d[48];
  sha256(text, strlen(text), h);
  assert_int_equal(tee_digest_pad48(h, 32, d), 0);
  assert_int_equal(tee_extend_event(f->tee, imr, EVENTLOG_EV_SEED, d, name), 0);
}

/* A runtime event line as the guest agent writes it (digest V1 over name and payload). */
static void runtime_event(struct fx *f, const char *name, const uint8_t *p, size_t n) {
  uint8_t d[48];
  char dh[97], ph[2 * 64 + 1], line[512];
  assert_int_equal(eventlog_runtime_digest(name, p, n, 1, d), 0);
  hex_encode(d, 48, dh);
  hex_encode(p, n, ph);
  int len = snprintf(line, sizeof(line),
                     "{\"imr\":3,\"event_type\":134217729,\"digest\":\"%s\",\"event\":\"%s\","
                     "\"event_payload\":\"%s\"}\n",
                     dh, name, ph);
  assert_int_equal(tee_extend_event_line(f->tee, 3, d, line, (size_t)len), 0);
}

static void seed_boot(struct fx *f) {
  seed_event(f, 3, "rootfs-hash", "rootfs");
  seed_event(f, 3, "app-id", "compose-a");
  seed_event(f, 3, "ca-cert-hash", "ca");
}

static void make_cert(struct fx *f, X509 **cert, EVP_PKEY **key) {
  assert_int_equal(ratls_cert_generate(NULL, f->tee, NULL, NULL, cert, key), 0);
}

static enum kms_reason verify(struct fx *f, X509 *cert, int64_t now, struct ratls_peer *p,
                              char *why, size_t n) {
  ratls_peer_init(p);
  return kms_verify_peer(f->v, cert, now, p, why, n);
}

/* Rebuilds cert's evidence into a new self-signed certificate for key. */
static X509 *rebuild(X509 *cert, EVP_PKEY *key, const void *log, size_t log_len,
                     const void *quote, size_t quote_len) {
  struct ratls_attestation a;
  assert_int_equal(ratls_cert_attestation(cert, &a), 0);
  struct ratls_evidence ev = {
      .quote = quote ? quote : a.quote.data,
      .quote_len = quote ? quote_len : a.quote.len,
      .event_log = log ? log : a.event_log.data,
      .event_log_len = log ? log_len : a.event_log.len,
  };
  X509 *out = NULL;
  assert_int_equal(ratls_cert_build(NULL, key, &ev, NULL, NULL, &out), 0);
  ratls_attestation_free(&a);
  return out;
}

static void test_seed_ok(void **state) {
  struct fx *f = *state;
  seed_boot(f);
  X509 *cert;
  EVP_PKEY *key;
  make_cert(f, &cert, &key);
  struct ratls_peer p;
  char why[512] = "";
  enum kms_reason r = verify(f, cert, time(NULL), &p, why, sizeof(why));
  if (r != KMS_OK)
    fail_msg("%s: %s", kms_reason_code(r), why);
  assert_true(p.verified);
  assert_true(p.dcap.simulated);
  assert_int_equal(p.dcap.status, DCAP_STATUS_UP_TO_DATE);
  assert_true(p.tcb_uptodate_since > 0);

  struct ratls_app_identity id;
  assert_int_equal(kms_identity_from_log(&f->cfg, &p.log, &id, why, sizeof(why)), KMS_OK);
  uint8_t h[32];
  char hx[65];
  sha256("compose-a", 9, h);
  assert_int_equal(id.era, RATLS_ERA_SEED);
  assert_int_equal(id.app_id_len, 20);
  assert_memory_equal(id.app_id, h, 20);
  hex_encode(h, 20, hx);
  assert_string_equal(id.app_id_hex, hx);
  assert_true(id.has_compose_hash);
  assert_memory_equal(id.compose_hash, h, 32);
  sha256("rootfs", 6, h);
  hex_encode(h, 32, hx);
  assert_true(id.has_rootfs_hash);
  assert_string_equal(id.rootfs_hash_hex, hx);
  assert_int_equal(id.instance_id_len, 0);

  /* The dev policy (this platform's measurements, simulator allowed) lets it through. */
  struct kms_policy_input in;
  kms_peer_policy_input(&p, &id, &in);
  assert_int_equal(kms_policy_check(&f->cfg.apps, &in, time(NULL), why, sizeof(why)), KMS_OK);

  struct buf d = BUF_INIT(8192);
  assert_int_equal(ratls_peer_describe(&p, &id, &d), 0);
  assert_int_equal(buf_terminate(&d), 0);
  assert_non_null(strstr((char *)d.data, "mrtd="));
  assert_non_null(strstr((char *)d.data, "rtmr3="));
  assert_non_null(strstr((char *)d.data, id.app_id_hex));
  buf_free(&d);
  ratls_peer_free(&p);
  X509_free(cert);
  EVP_PKEY_free(key);
}

static void test_newest_ok(void **state) {
  struct fx *f = *state;
  uint8_t app[20], ch[32], inst[20];
  memset(app, 0xa5, sizeof(app));
  memset(ch, 0xc3, sizeof(ch));
  memset(inst, 0x1e, sizeof(inst));
  runtime_event(f, "system-preparing", NULL, 0);
  runtime_event(f, "app-id", app, sizeof(app));
  runtime_event(f, "compose-hash", ch, sizeof(ch));
  runtime_event(f, "instance-id", inst, sizeof(inst));
  runtime_event(f, "boot-mr-done", NULL, 0);
  runtime_event(f, "os-image-hash", ch, 32);
  X509 *cert;
  EVP_PKEY *key;
  make_cert(f, &cert, &key);
  struct ratls_peer p;
  char why[512] = "";
  enum kms_reason r = verify(f, cert, time(NULL), &p, why, sizeof(why));
  if (r != KMS_OK)
    fail_msg("%s: %s", kms_reason_code(r), why);
  struct ratls_app_identity id;
  assert_int_equal(kms_identity_from_log(&f->cfg, &p.log, &id, why, sizeof(why)), KMS_OK);
  assert_int_equal(id.era, RATLS_ERA_NEWEST);
  assert_int_equal(id.app_id_len, 20);
  assert_memory_equal(id.app_id, app, 20);
  assert_true(id.has_compose_hash);
  assert_memory_equal(id.compose_hash, ch, 32);
  assert_int_equal(id.instance_id_len, 20);
  assert_memory_equal(id.instance_id, inst, 20);
  assert_int_equal(id.os_image_hash_len, 32);
  assert_false(id.has_rootfs_hash);
  ratls_peer_free(&p);
  X509_free(cert);
  EVP_PKEY_free(key);
}

static void expect(struct fx *f, X509 *cert, int64_t now, enum kms_reason want,
                   const char *why_part) {
  struct ratls_peer p;
  char why[512] = "";
  enum kms_reason r = verify(f, cert, now, &p, why, sizeof(why));
  if (r != want || (why_part && !strstr(why, why_part)))
    fail_msg("got %s (%s), want %s", kms_reason_code(r), why, kms_reason_code(want));
  ratls_peer_free(&p);
}

static void test_no_cert_no_quote(void **state) {
  struct fx *f = *state;
  expect(f, NULL, time(NULL), KMS_R_NO_CLIENT_CERT, NULL);
  EVP_PKEY *k = NULL;
  X509 *c = NULL;
  assert_int_equal(key_p256_generate(&k), 0);
  struct x509_params xp = {.subject_cn = "plain"};
  assert_int_equal(x509_cert_build(&xp, k, NULL, k, &c), 0);
  expect(f, c, time(NULL), KMS_R_NO_ATTESTATION, "no quote");
  X509_free(c);
  EVP_PKEY_free(k);
}

static void test_key_not_bound(void **state) {
  struct fx *f = *state;
  seed_boot(f);
  X509 *cert, *other;
  EVP_PKEY *key, *k2 = NULL;
  make_cert(f, &cert, &key);
  assert_int_equal(key_p256_generate(&k2), 0);
  other = rebuild(cert, k2, NULL, 0, NULL, 0); /* someone else's quote, another key */
  expect(f, other, time(NULL), KMS_R_KEY_NOT_BOUND, "report_data");
  X509_free(other);
  X509_free(cert);
  EVP_PKEY_free(key);
  EVP_PKEY_free(k2);
}

static void test_event_log_tampering(void **state) {
  struct fx *f = *state;
  seed_boot(f);
  X509 *cert, *bad;
  EVP_PKEY *key;
  make_cert(f, &cert, &key);
  struct ratls_attestation a;
  assert_int_equal(ratls_cert_attestation(cert, &a), 0);
  assert_int_equal(buf_terminate(&a.event_log), 0);
  char *log = strdup((char *)a.event_log.data);
  assert_non_null(log);

  /* Another app-id digest in the log (claiming another app): replay mismatch. */
  uint8_t h[32];
  char hx[65];
  sha256("compose-a", 9, h);
  hex_encode(h, 32, hx);
  char *at = strstr(log, hx);
  assert_non_null(at);
  at[0] = at[0] == '0' ? '1' : '0';
  bad = rebuild(cert, key, log, strlen(log), NULL, 0);
  expect(f, bad, time(NULL), KMS_R_EVENT_LOG_MISMATCH, "RTMR3");
  X509_free(bad);
  at[0] = hx[0];

  /* An extra event appended: mismatch. */
  struct buf more = BUF_INIT(1 << 20);
  uint8_t d[48] = {1};
  assert_int_equal(buf_append_str(&more, log), 0);
  assert_int_equal(eventlog_seed_line(3, 1, d, "app-id", &more), 0);
  bad = rebuild(cert, key, more.data, more.len, NULL, 0);
  expect(f, bad, time(NULL), KMS_R_EVENT_LOG_MISMATCH, NULL);
  X509_free(bad);
  buf_free(&more);

  /* Not a log at all. */
  bad = rebuild(cert, key, "garbage\n", 8, NULL, 0);
  expect(f, bad, time(NULL), KMS_R_BAD_EVENT_LOG, NULL);
  X509_free(bad);

  /* No log while RTMR3 is extended: mismatch. */
  bad = rebuild(cert, key, "", 0, NULL, 0);
  expect(f, bad, time(NULL), KMS_R_EVENT_LOG_MISMATCH, "RTMR3");
  X509_free(bad);

  free(log);
  ratls_attestation_free(&a);
  X509_free(cert);
  EVP_PKEY_free(key);
}

static void test_quote_tampering(void **state) {
  struct fx *f = *state;
  seed_boot(f);
  X509 *cert, *bad;
  EVP_PKEY *key;
  make_cert(f, &cert, &key);
  struct ratls_attestation a;
  assert_int_equal(ratls_cert_attestation(cert, &a), 0);
  /* MRTD byte (body offset 136 .. at quote offset 48 + 136): the binding still holds, the
   * quote signature does not. */
  a.quote.data[48 + 136] ^= 1;
  bad = rebuild(cert, key, NULL, 0, a.quote.data, a.quote.len);
  expect(f, bad, time(NULL), KMS_R_QUOTE_INVALID, "DCAP");
  X509_free(bad);
  /* Truncated quote. */
  bad = rebuild(cert, key, NULL, 0, a.quote.data, 100);
  expect(f, bad, time(NULL), KMS_R_BAD_ATTESTATION, NULL);
  X509_free(bad);
  ratls_attestation_free(&a);
  X509_free(cert);
  EVP_PKEY_free(key);
}

static void test_collateral(void **state) {
  struct fx *f = *state;
  seed_boot(f);
  X509 *cert;
  EVP_PKEY *key;
  make_cert(f, &cert, &key);
  /* 100 days on the simulator's 30-day collateral has expired. */
  expect(f, cert, time(NULL) + 100 * 86400, KMS_R_COLLATERAL_EXPIRED, "expired");
  /* Collateral gone. */
  char p[1024];
  snprintf(p, sizeof(p), "%s/%s", f->sim, SIM_FILE_TCB_INFO);
  assert_int_equal(unlink(p), 0);
  snprintf(p, sizeof(p), "%s/%s", f->sim, SIM_FILE_COLLATERAL);
  assert_int_equal(unlink(p), 0);
  expect(f, cert, time(NULL), KMS_R_COLLATERAL_UNAVAILABLE, NULL);
  X509_free(cert);
  EVP_PKEY_free(key);
}

/* Overwrites path in place (same inode, same size) with bytes of c. */
static void scribble(const char *path, char c) {
  FILE *fp = fopen(path, "r+");
  assert_non_null(fp);
  assert_int_equal(fseek(fp, 0, SEEK_END), 0);
  long n = ftell(fp);
  assert_true(n > 0);
  rewind(fp);
  for (long i = 0; i < n; i++)
    assert_int_not_equal(fputc(c, fp), EOF);
  assert_int_equal(fclose(fp), 0);
}

/* The collateral is kept between requests, but never used once expired, and reloaded when a
 * file of the simulator's collateral directory changes (even rewritten in place). */
static void test_collateral_cache(void **state) {
  struct fx *f = *state;
  seed_boot(f);
  X509 *cert;
  EVP_PKEY *key;
  make_cert(f, &cert, &key);
  int64_t now = time(NULL);
  expect(f, cert, now, KMS_OK, NULL);
  expect(f, cert, now, KMS_OK, NULL);
  expect(f, cert, now + 100 * 86400, KMS_R_COLLATERAL_EXPIRED, "expired");
  expect(f, cert, now, KMS_OK, NULL);
  char p[1024];
  snprintf(p, sizeof(p), "%s/%s", f->sim, SIM_FILE_COLLATERAL);
  _cleanup_buf_ struct buf orig = BUF_INIT(1 << 20);
  assert_int_equal(file_read_all(p, 1 << 20, &orig), 0);
  scribble(p, ' ');
  expect(f, cert, now, KMS_R_COLLATERAL_UNAVAILABLE, NULL);
  /* back as it was (a new file renamed over it) */
  assert_int_equal(file_write_atomic(p, orig.data, orig.len, 0644), 0);
  expect(f, cert, now, KMS_OK, NULL);
  /* a file added next to it changes the listing: reloaded, still fine */
  snprintf(p, sizeof(p), "%s/%s/extra", f->sim, SIM_DIR_COLLATERAL);
  assert_int_equal(file_write_atomic(p, "x", 1, 0644), 0);
  expect(f, cert, now, KMS_OK, NULL);
  /* the collateral directory gone */
  snprintf(p, sizeof(p), "%s/%s", f->sim, SIM_DIR_COLLATERAL);
  tu_rm_rf(p);
  expect(f, cert, now, KMS_R_COLLATERAL_UNAVAILABLE, NULL);
  X509_free(cert);
  EVP_PKEY_free(key);
}

static void test_simulator_untrusted(void **state) {
  struct fx *f = *state;
  seed_boot(f);
  X509 *cert;
  EVP_PKEY *key;
  make_cert(f, &cert, &key);
  /* A production configuration: no simulator, no PCCS. */
  struct kms_config c;
  struct ratls_verifier *v = NULL;
  char err[256] = "";
  assert_int_equal(kms_config_init(&c), 0);
  assert_int_equal(kms_verifier_new(&c, false, &v, err, sizeof(err)), 0);
  struct ratls_peer p;
  ratls_peer_init(&p);
  assert_int_equal(kms_verify_peer(v, cert, time(NULL), &p, err, sizeof(err)),
                   KMS_R_SIMULATOR_NOT_ALLOWED);
  /* The refusal says what this verifier trusts instead (shared code: no daemon's name). */
  assert_non_null(strstr(err, "which this verifier does not trust (it trusts: the Intel SGX "
                              "root CA only)"));
  ratls_peer_free(&p);
  ratls_verifier_free(v);
  kms_config_free(&c);

  /* Another simulated platform (another root) is not the trusted one either. */
  char other[1024];
  snprintf(other, sizeof(other), "%s/other", f->dir);
  assert_int_equal(sim_platform_init(other, NULL), 0);
  struct tee *t2;
  assert_int_equal(tee_sim_new(other, &t2), 0);
  X509 *c2;
  EVP_PKEY *k2;
  assert_int_equal(ratls_cert_generate(NULL, t2, NULL, NULL, &c2, &k2), 0);
  expect(f, c2, time(NULL), KMS_R_SIMULATOR_NOT_ALLOWED,
         "this verifier does not trust (it trusts: the Intel SGX root CA, the simulator at ");
  X509_free(c2);
  EVP_PKEY_free(k2);
  tee_free(t2);
  X509_free(cert);
  EVP_PKEY_free(key);
}

static void test_wrong_imr(void **state) {
  struct fx *f = *state;
  seed_event(f, 3, "rootfs-hash", "rootfs");
  seed_event(f, 2, "app-id", "compose-a"); /* on RTMR2: replays fine, never counts */
  X509 *cert;
  EVP_PKEY *key;
  make_cert(f, &cert, &key);
  struct ratls_peer p;
  char why[512] = "";
  enum kms_reason r = verify(f, cert, time(NULL), &p, why, sizeof(why));
  if (r != KMS_OK)
    fail_msg("%s: %s", kms_reason_code(r), why);
  struct ratls_app_identity id;
  assert_int_equal(kms_identity_from_log(&f->cfg, &p.log, &id, why, sizeof(why)), KMS_R_MISSING_EVENT);
  assert_non_null(strstr(why, "app-id"));
  /* And RTMR2 no longer matches the dev policy. */
  struct kms_policy_input in;
  kms_peer_policy_input(&p, NULL, &in);
  assert_int_equal(kms_policy_check(&f->cfg.apps, &in, time(NULL), why, sizeof(why)),
                   KMS_R_MEASUREMENT_NOT_ALLOWED);
  ratls_peer_free(&p);
  X509_free(cert);
  EVP_PKEY_free(key);
}

/* A newest-era boot around the given app-id payload: system-preparing, app-id, [extra],
 * boot-mr-done. */
static void newest_boot(struct eventlog *log, const uint8_t *app, size_t n, const char *extra,
                        const uint8_t *xp, size_t xn) {
  assert_int_equal(eventlog_add_runtime(log, "system-preparing", NULL, 0, 1), 0);
  assert_int_equal(eventlog_add_runtime(log, "app-id", app, n, 1), 0);
  if (extra)
    assert_int_equal(eventlog_add_runtime(log, extra, xp, xn, 1), 0);
  assert_int_equal(eventlog_add_runtime(log, "boot-mr-done", NULL, 0, 1), 0);
}

static void test_identity_rules(void **state) {
  (void)state;
  struct kms_config seed_ok = {.allow_seed_event_log = true}, strict = {0};
  struct eventlog log = EVENTLOG_INIT;
  struct ratls_app_identity id;
  char why[256];
  uint8_t d[48] = {0x42}, app[20] = {7}, big[65] = {0};
  /* Empty log. */
  assert_int_equal(kms_identity_from_log(&seed_ok, &log, &id, why, sizeof(why)),
                   KMS_R_MISSING_EVENT);
  /* A seed-era app-id alone: the boot's fixed first event (rootfs-hash) is not there. */
  assert_int_equal(eventlog_add(&log, 3, 1, d, "app-id", NULL, 0), 0);
  assert_int_equal(kms_identity_from_log(&seed_ok, &log, &id, why, sizeof(why)),
                   KMS_R_MISSING_EVENT);
  assert_non_null(strstr(why, "rootfs-hash"));
  eventlog_free(&log);
  /* A complete seed-era boot: accepted only where seed-era logs are allowed. */
  assert_int_equal(eventlog_add(&log, 3, 1, d, "rootfs-hash", NULL, 0), 0);
  assert_int_equal(eventlog_add(&log, 3, 1, d, "app-id", NULL, 0), 0);
  assert_int_equal(eventlog_add(&log, 3, 1, d, "ca-cert-hash", NULL, 0), 0);
  assert_int_equal(kms_identity_from_log(&seed_ok, &log, &id, why, sizeof(why)), KMS_OK);
  assert_true(id.has_rootfs_hash);
  assert_int_equal(kms_identity_from_log(&strict, &log, &id, why, sizeof(why)),
                   KMS_R_SEED_LOG_NOT_ALLOWED);
  assert_string_equal(kms_reason_code(KMS_R_SEED_LOG_NOT_ALLOWED), "seed_event_log_not_allowed");
  eventlog_free(&log);

  /* Runtime app-id with an empty or oversized payload. */
  newest_boot(&log, NULL, 0, NULL, NULL, 0);
  assert_int_equal(kms_identity_from_log(&strict, &log, &id, why, sizeof(why)),
                   KMS_R_BAD_EVENT_LOG);
  eventlog_free(&log);
  newest_boot(&log, big, sizeof(big), NULL, NULL, 0);
  assert_int_equal(kms_identity_from_log(&strict, &log, &id, why, sizeof(why)),
                   KMS_R_BAD_EVENT_LOG);
  eventlog_free(&log);

  /* Runtime compose-hash of the wrong size. */
  newest_boot(&log, app, 20, "compose-hash", app, 20);
  assert_int_equal(kms_identity_from_log(&strict, &log, &id, why, sizeof(why)),
                   KMS_R_BAD_EVENT_LOG);
  eventlog_free(&log);

  /* A runtime event whose digest does not match its payload. */
  newest_boot(&log, app, 20, NULL, NULL, 0);
  log.ev[1].digest[0] ^= 1;
  assert_int_equal(kms_identity_from_log(&strict, &log, &id, why, sizeof(why)),
                   KMS_R_BAD_EVENT_LOG);
  eventlog_free(&log);

  /* app-id on other IMRs never counts; V2 digests work. */
  uint8_t app2[20] = {9};
  assert_int_equal(eventlog_add(&log, 2, EVENTLOG_EV_RUNTIME, d, "app-id", app2, 20), 0);
  assert_int_equal(eventlog_add_runtime(&log, "system-preparing", NULL, 0, 2), 0);
  assert_int_equal(eventlog_add_runtime(&log, "app-id", app, 20, 2), 0);
  assert_int_equal(eventlog_add_runtime(&log, "boot-mr-done", NULL, 0, 1), 0);
  assert_int_equal(kms_identity_from_log(&strict, &log, &id, why, sizeof(why)), KMS_OK);
  assert_int_equal(id.era, RATLS_ERA_NEWEST);
  assert_memory_equal(id.app_id, app, 20);
  assert_false(id.has_compose_hash);
  assert_int_equal(id.instance_id_len, 0);
  /* A second app-id, even a bound one after the boot, refuses the log. */
  assert_int_equal(eventlog_add_runtime(&log, "app-id", app2, 20, 1), 0);
  assert_int_equal(kms_identity_from_log(&strict, &log, &id, why, sizeof(why)),
                   KMS_R_BAD_EVENT_LOG);
  eventlog_free(&log);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_seed_ok, setup, teardown),
      cmocka_unit_test_setup_teardown(test_newest_ok, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_cert_no_quote, setup, teardown),
      cmocka_unit_test_setup_teardown(test_key_not_bound, setup, teardown),
      cmocka_unit_test_setup_teardown(test_event_log_tampering, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quote_tampering, setup, teardown),
      cmocka_unit_test_setup_teardown(test_collateral, setup, teardown),
      cmocka_unit_test_setup_teardown(test_collateral_cache, setup, teardown),
      cmocka_unit_test_setup_teardown(test_simulator_untrusted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_imr, setup, teardown),
      cmocka_unit_test(test_identity_rules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

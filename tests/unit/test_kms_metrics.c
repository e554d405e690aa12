/* KMS per-phase CPU accounting: TLS handshakes counted through the info callback (real
 * handshakes over a memory BIO pair), phase sums, and the Prometheus text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "kms_metrics.h"
#include "kms_service.h"
#include "net/http_tls.h"
#include "testutil.h"

static SSL_CTX *server_ctx(bool no_resumption) {
  EVP_PKEY *key = NULL;
  X509 *cert = NULL;
  SSL_CTX *ctx = NULL;
  assert_int_equal(key_p256_generate(&key), 0);
  struct x509_params p = {.subject_cn = "localhost", .key_usage = X509_KU_DIGITAL_SIGNATURE};
  assert_int_equal(x509_cert_build(&p, key, NULL, key, &cert), 0);
  struct http_tls_mem m = {.cert = cert, .key = key, .no_resumption = no_resumption};
  assert_int_equal(http_tls_ctx_new_mem(&m, &ctx), 0);
  X509_free(cert);
  EVP_PKEY_free(key);
  return ctx;
}

/* One full handshake between a fresh client and server over a BIO pair, then a few bytes of
 * application data each way (so a server that issues tickets sends them). Returns how many
 * session tickets the client received. */
static int handshake(SSL_CTX *sctx) {
  SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
  assert_non_null(cctx);
  SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
  int tickets = 0;
  SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
  assert_non_null(c);
  assert_non_null(s);
  BIO *bc = NULL, *bs = NULL;
  assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
  SSL_set_bio(c, bc, bc);
  SSL_set_bio(s, bs, bs);
  SSL_set_connect_state(c);
  SSL_set_accept_state(s);
  bool cdone = false, sdone = false;
  for (int i = 0; i < 100 && !(cdone && sdone); i++) {
    if (!cdone) {
      int r = SSL_do_handshake(c);
      if (r == 1)
        cdone = true;
      else
        assert_int_equal(SSL_get_error(c, r), SSL_ERROR_WANT_READ);
    }
    if (!sdone) {
      int r = SSL_do_handshake(s);
      if (r == 1)
        sdone = true;
      else
        assert_int_equal(SSL_get_error(s, r), SSL_ERROR_WANT_READ);
    }
  }
  assert_true(cdone && sdone);
  char buf[16];
  assert_int_equal(SSL_write(s, "ping", 4), 4);
  assert_int_equal(SSL_read(c, buf, sizeof(buf)), 4);
  SSL_SESSION *sess = SSL_get1_session(c);
  if (sess) {
    tickets = SSL_SESSION_is_resumable(sess) ? 1 : 0;
    SSL_SESSION_free(sess);
  }
  SSL_free(c);
  SSL_free(s);
  SSL_CTX_free(cctx);
  ERR_clear_error();
  return tickets;
}

static void test_tls_handshakes(void **state) {
  (void)state;
  struct kms_metrics m = {0};
  SSL_CTX *ctx = server_ctx(true);
  /* not attached yet: nothing is counted */
  handshake(ctx);
  assert_int_equal(m.tls.count, 0);
  assert_int_equal(kms_metrics_attach_tls(ctx, &m), 0);
  uint64_t t0 = kms_cpu_ns();
  handshake(ctx);
  handshake(ctx);
  uint64_t spent = kms_cpu_ns() - t0;
  assert_int_equal(m.tls.count, 2);
  assert_true(m.tls.ns > 0);
  /* only the server's part of the CPU both ends spent */
  assert_true(m.tls.ns < spent);
  /* the state machine returned at the end: no handshake is open */
  assert_null(m.hs_ssl);
  SSL_CTX_free(ctx);
  assert_int_equal(kms_metrics_attach_tls(NULL, &m), -EINVAL);
}

static void test_no_resumption(void **state) {
  (void)state;
  SSL_CTX *with = server_ctx(false), *without = server_ctx(true);
  assert_int_equal(handshake(with), 1);
  assert_int_equal(handshake(without), 0);
  assert_int_equal(SSL_CTX_get_num_tickets(without), 0);
  assert_int_equal(SSL_CTX_get_session_cache_mode(without), SSL_SESS_CACHE_OFF);
  assert_true(SSL_CTX_get_num_tickets(with) > 0);
  SSL_CTX_free(with);
  SSL_CTX_free(without);
}

static void test_phase_add(void **state) {
  (void)state;
  struct kms_phase p = {0};
  uint64_t t0 = kms_cpu_ns();
  volatile uint64_t x = 0;
  for (uint64_t i = 0; i < 5000000; i++)
    x += i * i;
  kms_phase_add(&p, t0);
  assert_int_equal(p.count, 1);
  assert_true(p.ns > 0);
  /* a start in the future (clock trouble) counts the request but no time */
  struct kms_phase q = {0};
  kms_phase_add(&q, kms_cpu_ns() + 1000000000ull);
  assert_int_equal(q.count, 1);
  assert_int_equal(q.ns, 0);
}

static bool has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; (p = strstr(p, line)); p += n)
    if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
      return true;
  return false;
}

static void test_render(void **state) {
  (void)state;
  struct kms_metrics m = {
      .tls = {.count = 7, .ns = 2500000000ull},
      .verify = {.count = 3, .ns = 1500000000ull},
      .derive = {.count = 2, .ns = 1234},
  };
  struct kms_stats st = {.granted = 2, .refused = 1, .onboarded = 0};
  _cleanup_buf_ struct buf b = BUF_INIT(64 * 1024);
  assert_int_equal(kms_metrics_render(&m, &st, 1700000000, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  const char *t = (const char *)b.data;
  assert_true(has_line(t, "# TYPE kms_tls_handshake_cpu_seconds summary"));
  assert_true(has_line(t, "kms_tls_handshake_cpu_seconds_sum 2.500000000"));
  assert_true(has_line(t, "kms_tls_handshake_cpu_seconds_count 7"));
  assert_true(has_line(t, "kms_verify_cpu_seconds_sum 1.500000000"));
  assert_true(has_line(t, "kms_verify_cpu_seconds_count 3"));
  assert_true(has_line(t, "kms_derive_cpu_seconds_sum 0.000001234"));
  assert_true(has_line(t, "kms_derive_cpu_seconds_count 2"));
  assert_true(has_line(t, "kms_keys_granted_total 2"));
  assert_true(has_line(t, "kms_requests_refused_total 1"));
  assert_true(has_line(t, "kms_replicas_onboarded_total 0"));
  assert_true(has_line(t, "process_start_time_seconds 1700000000"));
  const char *c = strstr(t, "\nprocess_cpu_seconds_total ");
  assert_non_null(c);
  assert_true(strtod(c + strlen("\nprocess_cpu_seconds_total "), NULL) > 0.0);
  /* every sample line is "name value", every other line a comment */
  for (const char *l = t; *l;) {
    const char *e = strchr(l, '\n');
    assert_non_null(e);
    if (*l != '#') {
      const char *sp = memchr(l, ' ', (size_t)(e - l));
      assert_non_null(sp);
      assert_null(memchr(sp + 1, ' ', (size_t)(e - sp - 1)));
    }
    l = e + 1;
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tls_handshakes),
      cmocka_unit_test(test_no_resumption),
      cmocka_unit_test(test_phase_add),
      cmocka_unit_test(test_render),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

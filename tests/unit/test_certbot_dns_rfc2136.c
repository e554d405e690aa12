/* src/certbot/certbot_dns_rfc2136.c: the provider's operations (TXT and CAA add, list, delete
 * by exact rdata, authoritative) against a small TCP DNS server in a thread that keeps records,
 * signs its answers to updates with TSIG as RFC 8945 says, and can misbehave on request: sign
 * with another key, refuse unsigned, answer with another message ID or a truncated message. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "certbot_dns_rfc2136.h"
#include "certbot_dnsmsg.h"
#include "testutil.h"

#define SECRET_B64 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" /* 0123...cdef x2 */
static const uint8_t SECRET[] = "0123456789abcdef0123456789abcdef";

enum mode { M_OK, M_OTHER_KEY, M_REFUSE, M_BAD_ID, M_TRUNCATED };

struct rec {
  char name[256];
  uint16_t type;
  uint8_t rdata[512];
  size_t len;
};

static struct {
  int lfd;
  uint16_t port;
  pthread_t th;
  atomic_bool stop;
  _Atomic int mode;
  pthread_mutex_t lock;
  struct rec recs[32];
  size_t n;
  unsigned updates;
} S;

static void put16(struct buf *b, uint16_t v) {
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  assert_int_equal(buf_append(b, x, 2), 0);
}

static void server_sign(struct buf *resp, const uint8_t req_mac[32], uint64_t t,
                        const uint8_t *secret, size_t slen) {
  struct buf d = BUF_INIT(70000);
  static const uint8_t keyname[] = "\x0b"
                                   "certbot-key";
  static const uint8_t alg[] = "\x0b"
                               "hmac-sha256";
  put16(&d, 32);
  buf_append(&d, req_mac, 32);
  buf_append(&d, resp->data, resp->len);
  buf_append(&d, keyname, sizeof(keyname));
  put16(&d, 255);
  put16(&d, 0);
  put16(&d, 0);
  buf_append(&d, alg, sizeof(alg));
  put16(&d, (uint16_t)(t >> 32));
  put16(&d, (uint16_t)(t >> 16));
  put16(&d, (uint16_t)t);
  put16(&d, 300);
  put16(&d, 0);
  put16(&d, 0);
  uint8_t mac[32];
  unsigned ml = 32;
  HMAC(EVP_sha256(), secret, (int)slen, d.data, d.len, mac, &ml);
  uint16_t id = (uint16_t)((resp->data[0] << 8) | resp->data[1]);
  buf_append(resp, keyname, sizeof(keyname));
  put16(resp, 250);
  put16(resp, 255);
  put16(resp, 0);
  put16(resp, 0);
  put16(resp, (uint16_t)(sizeof(alg) + 10 + 32 + 6));
  buf_append(resp, alg, sizeof(alg));
  put16(resp, (uint16_t)(t >> 32));
  put16(resp, (uint16_t)(t >> 16));
  put16(resp, (uint16_t)t);
  put16(resp, 300);
  put16(resp, 32);
  buf_append(resp, mac, 32);
  put16(resp, id);
  put16(resp, 0);
  put16(resp, 0);
  resp->data[11]++;
  buf_free(&d);
}

/* The request MAC out of a TSIG rdata: alg name (uncompressed), 10 bytes, then the MAC. */
static bool tsig_mac(struct slice rd, uint8_t mac[32]) {
  size_t off = 0;
  while (off < rd.len && rd.ptr[off])
    off += (size_t)rd.ptr[off] + 1;
  off++;
  if (off + 10 + 32 > rd.len)
    return false;
  memcpy(mac, rd.ptr + off + 10, 32);
  return true;
}

static void handle(const uint8_t *q, size_t qlen, struct buf *resp) {
  struct certbot_dns_msg m = {0};
  buf_reset(resp);
  if (certbot_dnsmsg_parse(q, qlen, &m) < 0)
    return;
  uint16_t id = m.id;
  int mode = atomic_load(&S.mode);
  if (mode == M_BAD_ID)
    id++;
  unsigned opcode = (m.flags >> 11) & 0xf;
  if (opcode == 5) {
    uint8_t mac[32];
    bool ok = m.has_tsig && tsig_mac(m.rrs[m.n_rrs - 1].rdata, mac);
    put16(resp, id);
    put16(resp, (uint16_t)(0x8000 | (5 << 11) | (mode == M_REFUSE || !ok ? 9 : 0)));
    for (int i = 0; i < 4; i++)
      put16(resp, 0);
    if (mode == M_REFUSE || !ok)
      goto out;
    pthread_mutex_lock(&S.lock);
    S.updates++;
    const struct certbot_dns_rr *u = &m.rrs[0];
    if (u->class == DNS_CLASS_IN && S.n < 32) {
      struct rec *r = &S.recs[S.n++];
      snprintf(r->name, sizeof(r->name), "%s", u->name);
      r->type = u->type;
      r->len = u->rdata.len;
      memcpy(r->rdata, u->rdata.ptr, u->rdata.len);
    } else if (u->class == DNS_CLASS_NONE) {
      for (size_t i = 0; i < S.n; i++)
        if (S.recs[i].type == u->type && strcmp(S.recs[i].name, u->name) == 0 &&
            S.recs[i].len == u->rdata.len &&
            memcmp(S.recs[i].rdata, u->rdata.ptr, u->rdata.len) == 0) {
          S.recs[i] = S.recs[--S.n];
          break;
        }
    }
    pthread_mutex_unlock(&S.lock);
    if (mode == M_OTHER_KEY)
      server_sign(resp, mac, (uint64_t)time(NULL), (const uint8_t *)"not the key", 11);
    else
      server_sign(resp, mac, (uint64_t)time(NULL), SECRET, 32);
  } else {
    /* A query: the question as asked, then the records of that name and type. */
    char name[256];
    size_t off = 12, qend;
    while (off < qlen && q[off])
      off += (size_t)q[off] + 1;
    qend = off + 5;
    if (qend > qlen)
      goto out;
    uint16_t type = (uint16_t)((q[off + 1] << 8) | q[off + 2]);
    /* the name as dotted text, for matching */
    size_t o = 0, p = 12;
    while (q[p]) {
      if (o)
        name[o++] = '.';
      memcpy(name + o, q + p + 1, q[p]);
      o += q[p];
      p += (size_t)q[p] + 1;
    }
    name[o] = 0;
    pthread_mutex_lock(&S.lock);
    uint16_t an = 0;
    for (size_t i = 0; i < S.n; i++)
      an += S.recs[i].type == type && strcmp(S.recs[i].name, name) == 0;
    put16(resp, id);
    put16(resp, 0x8400);
    put16(resp, 1);
    put16(resp, an);
    put16(resp, 0);
    put16(resp, 0);
    buf_append(resp, q + 12, qend - 12);
    for (size_t i = 0; i < S.n; i++) {
      if (S.recs[i].type != type || strcmp(S.recs[i].name, name) != 0)
        continue;
      put16(resp, 0xc00c);
      put16(resp, type);
      put16(resp, 1);
      put16(resp, 0);
      put16(resp, 60);
      put16(resp, (uint16_t)S.recs[i].len);
      buf_append(resp, S.recs[i].rdata, S.recs[i].len);
    }
    pthread_mutex_unlock(&S.lock);
  }
out:
  if (mode == M_TRUNCATED && resp->len > 14)
    resp->len -= 3;
  certbot_dnsmsg_free(&m);
}

static void *serve(void *arg) {
  (void)arg;
  struct buf resp = BUF_INIT(65535);
  while (!atomic_load(&S.stop)) {
    struct pollfd p = {.fd = S.lfd, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0)
      continue;
    int fd = accept(S.lfd, NULL, NULL);
    if (fd < 0)
      continue;
    uint8_t lp[2], q[65535];
    if (read(fd, lp, 2) == 2) {
      size_t n = (size_t)((lp[0] << 8) | lp[1]), got = 0;
      while (got < n) {
        ssize_t k = read(fd, q + got, n - got);
        if (k <= 0)
          break;
        got += (size_t)k;
      }
      if (got == n) {
        handle(q, n, &resp);
        if (resp.len) {
          uint8_t rl[2] = {(uint8_t)(resp.len >> 8), (uint8_t)resp.len};
          (void)!write(fd, rl, 2);
          (void)!write(fd, resp.data, resp.len);
        }
      }
    }
    close(fd);
  }
  buf_free(&resp);
  return NULL;
}

static int srv_start(void **state) {
  (void)state;
  memset(&S, 0, sizeof(S));
  pthread_mutex_init(&S.lock, NULL);
  S.lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof(a);
  if (bind(S.lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(S.lfd, 8) < 0 ||
      getsockname(S.lfd, (struct sockaddr *)&a, &al) < 0)
    return -1;
  S.port = ntohs(a.sin_port);
  return pthread_create(&S.th, NULL, serve, NULL);
}

static int srv_stop(void **state) {
  (void)state;
  atomic_store(&S.stop, true);
  pthread_join(S.th, NULL);
  close(S.lfd);
  return 0;
}

static struct certbot_dns *open_provider(void) {
  struct certbot_rfc2136_opts o = {.server = "127.0.0.1",
                                   .port = S.port,
                                   .zone = "example.test",
                                   .tsig_key_name = "certbot-key",
                                   .tsig_algorithm = "hmac-sha256",
                                   .tsig_secret = SECRET_B64,
                                   .timeout_ms = 3000};
  struct certbot_dns *d = NULL;
  char err[256];
  assert_int_equal(certbot_dns_rfc2136_new(&o, &d, err, sizeof(err)), 0);
  return d;
}

#define NAME "_acme-challenge.example.test"

static void test_txt_roundtrip(void **state) {
  (void)state;
  struct certbot_dns *d = open_provider();
  char err[256] = "", *id1 = NULL, *id2 = NULL;
  struct certbot_dns_record *recs = NULL;
  size_t n = 0;
  atomic_store(&S.mode, M_OK);
  assert_int_equal(d->ops->txt_add(d, NAME, "value-one", &id1, err, sizeof(err)), 0);
  assert_int_equal(d->ops->txt_add(d, NAME, "value-two", &id2, err, sizeof(err)), 0);
  assert_string_equal(id1, "TXT value-one");
  assert_int_equal(d->ops->list(d, NAME, "TXT", &recs, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 2);
  assert_string_equal(recs[0].name, NAME);
  assert_string_equal(recs[0].type, "TXT");
  assert_string_equal(recs[0].value, "value-one");
  certbot_dns_records_free(recs, n);
  /* Deleting by exact rdata removes only that one; again is still success. */
  assert_int_equal(d->ops->del(d, NAME, id1, err, sizeof(err)), 0);
  assert_int_equal(d->ops->del(d, NAME, id1, err, sizeof(err)), 0);
  assert_int_equal(d->ops->list(d, NAME, NULL, &recs, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 1);
  assert_string_equal(recs[0].value, "value-two");
  certbot_dns_records_free(recs, n);
  assert_int_equal(d->ops->del(d, NAME, id2, err, sizeof(err)), 0);
  char **servers = NULL;
  assert_int_equal(d->ops->authoritative(d, NAME, &servers, err, sizeof(err)), 0);
  char want[32];
  snprintf(want, sizeof(want), "127.0.0.1:%u", S.port);
  assert_string_equal(servers[0], want);
  assert_null(servers[1]);
  free(servers[0]);
  free(servers);
  /* A bad id. */
  assert_int_equal(d->ops->del(d, NAME, "MX 10 x", err, sizeof(err)), -EINVAL);
  assert_int_equal(d->ops->del(d, NAME, "CAA 0 issue x", err, sizeof(err)), -EINVAL);
  free(id1);
  free(id2);
  d->ops->free(d);
}

static void test_caa_roundtrip(void **state) {
  (void)state;
  struct certbot_dns *d = open_provider();
  char err[256] = "", *id = NULL;
  struct certbot_dns_record *recs = NULL;
  size_t n = 0;
  atomic_store(&S.mode, M_OK);
  const char *v = "letsencrypt.org;validationmethods=dns-01;accounturi=https://a/acct/1";
  assert_int_equal(d->ops->caa_add(d, "example.test", 0, "issuewild", v, &id, err, sizeof(err)), 0);
  assert_int_equal(d->ops->list(d, "example.test", "CAA", &recs, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 1);
  char want[256];
  snprintf(want, sizeof(want), "0 issuewild \"%s\"", v);
  assert_string_equal(recs[0].value, want);
  assert_string_equal(recs[0].id, id);
  certbot_dns_records_free(recs, n);
  assert_int_equal(d->ops->del(d, "example.test", id, err, sizeof(err)), 0);
  assert_int_equal(d->ops->list(d, "example.test", "CAA", &recs, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 0);
  certbot_dns_records_free(recs, n);
  assert_int_equal(d->ops->caa_add(d, "example.test", 0, "bad tag", "x", &id, err, sizeof(err)),
                   -EINVAL);
  free(id);
  d->ops->free(d);
}

static void test_misbehaving_server(void **state) {
  (void)state;
  struct certbot_dns *d = open_provider();
  char err[256] = "", *id = NULL;
  static const struct {
    int mode;
    int err;
    const char *word;
  } cases[] = {
      {M_OTHER_KEY, -EPERM, "not signed"},
      {M_REFUSE, -EPERM, "NOTAUTH"},
      {M_BAD_ID, -EBADMSG, "malformed"},
      {M_TRUNCATED, -EBADMSG, "malformed"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    atomic_store(&S.mode, cases[i].mode);
    err[0] = 0;
    int r = d->ops->txt_add(d, NAME, "v", &id, err, sizeof(err));
    if (r != cases[i].err || !strstr(err, cases[i].word))
      fail_msg("case %zu: %d %s", i, r, err);
    assert_null(id);
    assert_null(strstr(err, SECRET_B64));
  }
  atomic_store(&S.mode, M_OK);
  /* Nothing reaches the server when the port is closed: a clear error. */
  struct certbot_rfc2136_opts o = {.server = "127.0.0.1",
                                   .port = 1,
                                   .zone = "example.test",
                                   .tsig_key_name = "k",
                                   .tsig_secret = SECRET_B64,
                                   .timeout_ms = 500};
  struct certbot_dns *c = NULL;
  assert_int_equal(certbot_dns_rfc2136_new(&o, &c, err, sizeof(err)), 0);
  assert_true(c->ops->txt_add(c, NAME, "v", &id, err, sizeof(err)) < 0);
  assert_non_null(strstr(err, "127.0.0.1:1"));
  c->ops->free(c);
  d->ops->free(d);
}

static void test_new_refusals(void **state) {
  (void)state;
  struct certbot_dns *d = NULL;
  char err[256];
  struct certbot_rfc2136_opts o = {.server = "127.0.0.1",
                                   .port = 53,
                                   .zone = "z",
                                   .tsig_key_name = "k",
                                   .tsig_secret = "not base64!"};
  assert_int_equal(certbot_dns_rfc2136_new(&o, &d, err, sizeof(err)), -EINVAL);
  o.tsig_secret = SECRET_B64;
  o.tsig_algorithm = "hmac-md5";
  assert_int_equal(certbot_dns_rfc2136_new(&o, &d, err, sizeof(err)), -EINVAL);
  o.tsig_algorithm = NULL;
  o.zone = "";
  assert_int_equal(certbot_dns_rfc2136_new(&o, &d, err, sizeof(err)), -EINVAL);
  assert_null(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_txt_roundtrip),
      cmocka_unit_test(test_caa_roundtrip),
      cmocka_unit_test(test_misbehaving_server),
      cmocka_unit_test(test_new_refusals),
  };
  return cmocka_run_group_tests(tests, srv_start, srv_stop);
}

/* TXT queries over TCP to each server, until all answer. */
#include "certbot_dns_wait.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "base/str.h"
#include "certbot_dnsmsg.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1: the server answers the value; 0: not (yet); < 0: no answer. */
static int server_has(const char *server, const char *name, const char *value, unsigned tmo) {
  struct buf q = BUF_INIT(1024), resp = BUF_INIT(CERTBOT_DNSMSG_MAX);
  struct certbot_dns_msg m = {0};
  uint16_t id = 0;
  int r;
  (void)RAND_bytes((unsigned char *)&id, sizeof(id));
  if ((r = certbot_dnsmsg_query(id, name, DNS_TYPE_TXT, &q)) < 0 ||
      (r = certbot_dns_tcp_exchange(server, buf_slice(&q), tmo, &resp)) < 0 ||
      (r = certbot_dnsmsg_parse(resp.data, resp.len, &m)) < 0)
    goto out;
  r = 0;
  if (m.id != id)
    goto out;
  for (size_t i = 0; i < m.n_answer && r == 0; i++) {
    char *v = NULL;
    if (m.rrs[i].type != DNS_TYPE_TXT || certbot_dns_txt_rdata_decode(m.rrs[i].rdata, &v) < 0)
      continue;
    if (strcmp(v, value) == 0)
      r = 1;
    free(v);
  }
out:
  certbot_dnsmsg_free(&m);
  buf_free(&q);
  buf_free(&resp);
  return r;
}

int certbot_dns_wait_txt(char *const *servers, const char *name, const char *value,
                         unsigned max_wait_ms, char *err, size_t errlen) {
  size_t n = strv_length(servers);
  if (n == 0 || n > 64)
    return str_err(err, errlen, -EINVAL, "no name servers to check %s against", name);
  bool done[64] = {false};
  int64_t deadline = now_ms() + max_wait_ms;
  unsigned delay = 250;
  for (;;) {
    size_t left = 0;
    for (size_t i = 0; i < n; i++) {
      if (done[i])
        continue;
      int64_t rem = deadline - now_ms();
      unsigned tmo = rem > 2000 ? 2000 : (rem > 100 ? (unsigned)rem : 100);
      if (server_has(servers[i], name, value, tmo) == 1)
        done[i] = true;
      else
        left++;
    }
    if (left == 0)
      return 0;
    int64_t rem = deadline - now_ms();
    if (rem <= 0) {
      size_t o = 0;
      if (err && errlen) {
        o = (size_t)snprintf(err, errlen, "TXT %s not seen within %u ms at", name, max_wait_ms);
        for (size_t i = 0; i < n && o < errlen; i++)
          if (!done[i])
            o += (size_t)snprintf(err + o, errlen - o, " %s", servers[i]);
      }
      return -ETIMEDOUT;
    }
    unsigned d = delay < rem ? delay : (unsigned)rem;
    struct timespec ts = {d / 1000, (long)(d % 1000) * 1000000};
    nanosleep(&ts, NULL);
    if (delay < 2000)
      delay *= 2;
  }
}

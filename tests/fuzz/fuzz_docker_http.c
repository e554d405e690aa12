/* The Docker Engine API response reader of tappd (src/tappd/docker.c): arbitrary bytes as the
 * engine's reply. The first input byte picks how the rest is split into reads; the reader must
 * give the same status, body and result whether the bytes come at once or in pieces. A complete
 * 200 body then goes through the container-list JSON parser. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tappd_docker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
  int heads;
  int status;
  char ct[128];
  struct buf body;
  int r;   /* first feed error, or 0 */
  int eof; /* http_resp_parser_eof() */
  bool done;
};

static int on_head(void *ud, int status, const char *ct) {
  struct out *o = ud;
  o->heads++;
  o->status = status;
  snprintf(o->ct, sizeof(o->ct), "%s", ct ? ct : "");
  if (status < 100 || status > 599 || o->heads > 1)
    abort();
  return 0;
}

static int on_body(void *ud, const uint8_t *p, size_t n) {
  struct out *o = ud;
  if (n == 0)
    abort();
  return buf_append(&o->body, p, n);
}

static void run(const uint8_t *d, size_t n, unsigned step, struct out *o) {
  static const struct http_resp_cbs cbs = {.on_head = on_head, .on_body = on_body};
  struct http_resp_parser p;
  memset(o, 0, sizeof(*o));
  buf_init(&o->body, 1 << 20);
  http_resp_parser_init(&p);
  size_t off = 0, k = 0;
  while (off < n && o->r == 0) {
    size_t len = step ? 1 + (d[k++ % n] % step) : n - off;
    if (len > n - off)
      len = n - off;
    o->r = http_resp_parser_feed(&p, d + off, len, &cbs, o);
    off += len;
  }
  if (o->r == 0)
    o->eof = http_resp_parser_eof(&p);
  o->done = http_resp_parser_done(&p);
  http_resp_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  unsigned step = data[0] % 17;
  data++;
  size--;
  struct out a, b;
  run(data, size, 0, &a);
  run(data, size, step ? step : 1, &b);
  if (a.r != b.r || a.eof != b.eof || a.done != b.done || a.heads != b.heads ||
      a.status != b.status || strcmp(a.ct, b.ct) != 0 || a.body.len != b.body.len ||
      (a.body.len && memcmp(a.body.data, b.body.data, a.body.len) != 0))
    abort();
  if (a.r < 0 && a.r != -EBADMSG && a.r != -ENOBUFS)
    abort();
  if (a.r == 0 && a.eof == 0 && a.status == 200) {
    struct docker_container *cs = NULL;
    size_t n = 0;
    int r = docker_containers_parse((const char *)a.body.data, a.body.len, &cs, &n);
    if (r == 0) {
      if (n > DOCKER_MAX_CONTAINERS)
        abort();
      for (size_t i = 0; i < n; i++) {
        if (!cs[i].id || !cs[i].names || !cs[i].image || !cs[i].image_id || !cs[i].command ||
            !cs[i].state || !cs[i].status)
          abort();
        for (char **s = cs[i].names; *s; s++)
          (void)strlen(*s);
      }
      docker_containers_free(cs, n);
    } else if (r != -EBADMSG && r != -ENOBUFS) {
      abort();
    }
  }
  buf_free(&a.body);
  buf_free(&b.body);
  return 0;
}

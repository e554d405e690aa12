/* Arbitrary bytes as the client side of one connection: fed over a socketpair into the HTTP
 * server's connection handling (parser, bodies, pipelining, replies, streams), with the loop run
 * until the connection is gone or nothing moves any more. */
#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/http_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;

static void h_echo(struct http_request *r, void *ud) {
  (void)ud;
  struct slice b = http_request_body(r);
  char *v = NULL;
  if (http_request_query_get(r, "a", &v) == 0)
    free(v);
  (void)http_request_query_has(r, "json");
  (void)http_request_header(r, "content-type");
  (void)http_reply_header(r, "X-Path", http_request_path(r));
  (void)http_reply(r, 200, "text/plain", b.ptr, b.len);
}

static void h_stream(struct http_request *r, void *ud) {
  (void)ud;
  (void)http_stream_start(r, 200, "text/plain"); /* a stream whatever it returns */
  for (int i = 0; i < 3; i++)
    (void)http_stream_write(r, http_request_path(r), strlen(http_request_path(r)));
  (void)http_stream_end(r);
}

/* Reply paths under failing allocations: the path length picks how many fail and the query
 * which call answers. */
static void h_fail(struct http_request *r, void *ud) {
  struct http_server *s = ud;
  http_server_test_fail_allocs(s, (unsigned)(strlen(http_request_path(r)) % 4));
  const char *q = http_request_query(r);
  char c = q && *q ? *q : 'r';
  if (c == 's') {
    (void)http_stream_start(r, 200, NULL);
    (void)http_stream_write(r, "x", 1);
    (void)http_stream_end(r);
  } else if (c == 'e') {
    (void)http_reply_error(r, 500, "bad \xff %s", http_request_path(r));
  } else {
    (void)http_reply(r, 200, "text/plain", "ok", 2);
  }
  http_server_test_fail_allocs(s, 0);
}

static int n_closed;
static void on_close(void *ud) {
  (void)ud;
  n_closed++;
}

static void h_async(struct http_request *r, void *ud) {
  (void)ud;
  http_request_on_close(r, on_close, NULL);
}

static void h_err(struct http_request *r, void *ud) {
  (void)ud;
  (void)http_reply_error(r, 400, "bad %s", http_request_method(r));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536)
    return 0;
  if (!base)
    base = event_base_new();
  struct http_server_config cfg = {.max_body = 4096, .max_header = 1024, .max_conns = 4};
  struct http_server *s = NULL;
  if (http_server_new(base, &cfg, &s) < 0)
    abort();
  http_server_route(s, "/", h_echo, NULL);
  http_server_route(s, "/s", h_stream, NULL);
  http_server_route(s, "/a", h_async, NULL);
  http_server_route(s, "/e", h_err, NULL);
  http_server_route(s, "/f", h_fail, s);
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp) < 0)
    abort();
  if (http_server_add_connection(s, sp[0], NULL) < 0)
    abort();
  size_t off = 0;
  bool shut = false;
  char sink[65536];
  for (int idle = 0, i = 0; i < 2000 && idle < 20 && http_server_n_connections(s) > 0; i++) {
    bool moved = false;
    if (off < size) {
      ssize_t w = send(sp[1], data + off, size - off, MSG_NOSIGNAL);
      if (w > 0) {
        off += (size_t)w;
        moved = true;
      }
    } else if (!shut) {
      shutdown(sp[1], SHUT_WR);
      shut = true;
      moved = true;
    }
    event_base_loop(base, EVLOOP_NONBLOCK);
    ssize_t n;
    while ((n = recv(sp[1], sink, sizeof(sink), MSG_DONTWAIT)) > 0)
      moved = true;
    idle = moved ? 0 : idle + 1;
  }
  http_server_free(s);
  close(sp[1]);
  /* Let libevent run what the frees deferred. */
  event_base_loop(base, EVLOOP_NONBLOCK);
  return 0;
}

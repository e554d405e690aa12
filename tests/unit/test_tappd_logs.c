/* /logs: container names, since/until, query parameters, the Docker response reader and stream
 * demultiplexer (against byte streams recorded from a real podman 4.3 `system service`, in
 * tests/data/docker/), output items, UTF-8 repair, and the libevent stream client against a
 * unix-socket server replaying those recordings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/str.h"
#include "tappd_docker.h"
#include "tappd_logs.h"
#include "testutil.h"

static void test_names(void **state) {
  (void)state;
  const char *good[] = {"a", "web", "my_app.1-x", "A9", "0abc", "a30c46d8141edb6822494e31"};
  const char *bad[] = {"", ".", "..", "../etc", "a/b", "/a", "-a", "_a", ".a", "a b",
                       "a\nb", "a%2Fb", "a:b", "\xc3\xa9"};
  for (size_t i = 0; i < ARRAY_SIZE(good); i++)
    assert_true(logs_container_name_valid(good[i]));
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
    assert_false(logs_container_name_valid(bad[i]));
  char longname[LOGS_MAX_NAME + 2];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[LOGS_MAX_NAME + 1] = 0;
  assert_false(logs_container_name_valid(longname));
  longname[LOGS_MAX_NAME] = 0;
  assert_true(logs_container_name_valid(longname));
}

static void test_times(void **state) {
  (void)state;
  int64_t t;
  const int64_t now = 1700000000;
  assert_int_equal(logs_parse_time("1699999999", now, &t), 0);
  assert_int_equal(t, 1699999999);
  assert_int_equal(logs_parse_time("0", now, &t), 0);
  assert_int_equal(t, 0);
  assert_int_equal(logs_parse_time("30s", now, &t), 0);
  assert_int_equal(t, now - 30);
  assert_int_equal(logs_parse_time("5m", now, &t), 0);
  assert_int_equal(t, now - 300);
  assert_int_equal(logs_parse_time("2h", now, &t), 0);
  assert_int_equal(t, now - 7200);
  assert_int_equal(logs_parse_time("1d", now, &t), 0);
  assert_int_equal(t, now - 86400);
  assert_int_equal(logs_parse_time("100000d", now, &t), 0);
  assert_int_equal(t, 0); /* clamped at the epoch */
  const char *bad[] = {"", "s", "-5", "-5s", "5x", "1.5h", "5 m", "99999999999999999999",
                       "9999999999999999999d", "0x10", "+5"};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
    assert_int_equal(logs_parse_time(bad[i], now, &t), -EINVAL);
}

/* Query getter over "k=v&k2&..." for logs_params_parse. */
static int fake_get(void *ud, const char *name, char **ret) {
  char *const *kv = ud;
  for (size_t i = 0; kv[i]; i += 2)
    if (str_eq(kv[i], name)) {
      *ret = strdup(kv[i + 1]);
      return 0;
    }
  return -ENOENT;
}

static void test_params(void **state) {
  (void)state;
  struct logs_params p;
  char err[160];
  char *none[] = {NULL};
  assert_int_equal(logs_params_parse(fake_get, none, 1000, &p, err, sizeof(err)), 0);
  assert_int_equal(p.since, 0);
  assert_int_equal(p.until, 0);
  assert_string_equal(p.tail, "1000");
  assert_false(p.follow || p.text || p.bare || p.timestamps || p.ansi);
  char *q[] = {"since", "10s", "until", "990", "follow", "", "text", "true", "bare", "0",
               "timestamps", "yes", "tail", "all", NULL};
  assert_int_equal(logs_params_parse(fake_get, q, 1000, &p, err, sizeof(err)), 0);
  assert_int_equal(p.since, 990);
  assert_int_equal(p.until, 990);
  assert_true(p.follow && p.text && p.timestamps);
  assert_false(p.bare);
  assert_string_equal(p.tail, "all");
  struct buf b = BUF_INIT(1024);
  assert_int_equal(logs_docker_target("web", &p, &b), 0);
  assert_int_equal(buf_terminate(&b), 0);
  assert_string_equal((char *)b.data, "/containers/web/logs?stdout=1&stderr=1&follow=1&"
                                      "timestamps=1&since=990&until=990&tail=all");
  assert_int_equal(logs_docker_target("../x", &p, &b), -EINVAL);
  buf_free(&b);
  char *bad1[] = {"since", "yesterday", NULL};
  char *bad2[] = {"follow", "maybe", NULL};
  char *bad3[] = {"tail", "-1", NULL};
  char *bad4[] = {"tail", "12345678901234567890123456", NULL};
  char **bads[] = {bad1, bad2, bad3, bad4};
  for (size_t i = 0; i < ARRAY_SIZE(bads); i++) {
    err[0] = 0;
    assert_int_equal(logs_params_parse(fake_get, bads[i], 1000, &p, err, sizeof(err)), -EINVAL);
    assert_true(strlen(err) > 0);
  }
}

/* Collects demultiplexed frames as "<stream>:<bytes>|". */
static int collect(void *ud, int stream, const uint8_t *p, size_t n) {
  struct buf *b = ud;
  int r = buf_printf(b, "%d:", stream);
  if (r >= 0 && n)
    r = buf_append(b, p, n);
  return r < 0 ? r : buf_append_u8(b, '|');
}

struct body {
  int status;
  char ct[128];
  struct buf data;
};
static int body_head(void *ud, int status, const char *ct) {
  struct body *b = ud;
  b->status = status;
  snprintf(b->ct, sizeof(b->ct), "%s", ct ? ct : "");
  return 0;
}
static int body_data(void *ud, const uint8_t *p, size_t n) {
  struct body *b = ud;
  return buf_append(&b->data, p, n);
}
static const struct http_resp_cbs body_cbs = {.on_head = body_head, .on_body = body_data};

/* Parses a recorded response fed in pieces of step bytes. */
static void parse_recorded(const char *name, size_t step, struct body *out) {
  struct buf raw = BUF_INIT(1 << 20);
  char rel[256];
  snprintf(rel, sizeof(rel), "tests/data/docker/%s", name);
  tu_read_file(tu_source_path(rel), &raw);
  struct http_resp_parser p;
  http_resp_parser_init(&p);
  memset(out, 0, sizeof(*out));
  buf_init(&out->data, 1 << 20);
  for (size_t off = 0; off < raw.len; off += step) {
    size_t n = MIN(step, raw.len - off);
    assert_int_equal(http_resp_parser_feed(&p, raw.data + off, n, &body_cbs, out), 0);
  }
  assert_int_equal(http_resp_parser_eof(&p), 0);
  http_resp_parser_free(&p);
  buf_free(&raw);
}

static void test_recorded_streams(void **state) {
  (void)state;
  const size_t steps[] = {1, 2, 3, 7, 64, 1 << 20};
  for (size_t s = 0; s < ARRAY_SIZE(steps); s++) {
    struct body b;
    parse_recorded("logs_mixed.http", steps[s], &b);
    assert_int_equal(b.status, 200);
    struct logs_demux d;
    logs_demux_init(&d, b.ct);
    struct buf frames = BUF_INIT(4096);
    /* Demultiplex in pieces of the same size, too. */
    for (size_t off = 0; off < b.data.len; off += steps[s])
      assert_int_equal(logs_demux_feed(&d, b.data.data + off, MIN(steps[s], b.data.len - off),
                                       collect, &frames),
                       0);
    assert_false(logs_demux_partial(&d));
    assert_int_equal(buf_terminate(&frames), 0);
    assert_string_equal((char *)frames.data,
                        "1:out1\n|1:\xc3\xa9t\xc3\xa9\n|2:err1\n|2:err2\n|");
    logs_demux_free(&d);
    buf_free(&frames);
    buf_free(&b.data);

    parse_recorded("logs_tty.http", steps[s], &b);
    assert_int_equal(b.status, 200);
    logs_demux_init(&d, b.ct);
    struct buf all = BUF_INIT(4096);
    assert_int_equal(logs_demux_feed(&d, b.data.data, b.data.len, collect, &all), 0);
    assert_int_equal(d.mode, LOGS_DEMUX_RAW);
    assert_true(str_startswith((char *)all.data, "-1:\x1b[31mred"));
    logs_demux_free(&d);
    buf_free(&all);
    buf_free(&b.data);

    parse_recorded("logs_404.http", steps[s], &b);
    assert_int_equal(b.status, 404);
    assert_string_equal(b.ct, "application/json");
    json_t *j = NULL;
    assert_int_equal(json_parse_buf((char *)b.data.data, b.data.len, 4096, &j), 0);
    json_decref(j);
    buf_free(&b.data);
  }
  struct body b;
  parse_recorded("containers.http", 5, &b);
  struct docker_container *cs = NULL;
  size_t n = 0;
  assert_int_equal(docker_containers_parse((char *)b.data.data, b.data.len, &cs, &n), 0);
  assert_true(n >= 3);
  bool found = false;
  for (size_t i = 0; i < n; i++)
    if (cs[i].names[0] && str_eq(cs[i].names[0], "/mixtest")) {
      found = true;
      assert_string_equal(cs[i].state, "running");
      assert_string_equal(cs[i].image, "localhost/busybox-test:latest");
      assert_true(cs[i].created > 0);
      assert_int_equal(strlen(cs[i].id), 64);
    }
  assert_true(found);
  docker_containers_free(cs, n);
  buf_free(&b.data);
  const char *bad_lists[] = {"{}", "[1]", "[{\"Names\":\"x\"}]", "[{\"Created\":\"x\"}]", "nope"};
  for (size_t i = 0; i < ARRAY_SIZE(bad_lists); i++)
    assert_true(docker_containers_parse(bad_lists[i], strlen(bad_lists[i]), &cs, &n) < 0);
}

static int feed_str(struct http_resp_parser *p, const char *s, struct body *b) {
  return http_resp_parser_feed(p, (const uint8_t *)s, strlen(s), &body_cbs, b);
}

static void test_resp_parser(void **state) {
  (void)state;
  struct http_resp_parser p;
  struct body b = {0};
  buf_init(&b.data, 4096);
  /* Content-Length body, then trailing bytes ignored. */
  http_resp_parser_init(&p);
  assert_int_equal(feed_str(&p, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcXYZ", &b), 0);
  assert_true(http_resp_parser_done(&p));
  assert_int_equal(b.data.len, 3);
  http_resp_parser_free(&p);
  /* 100 Continue before the real answer; close-delimited body; bare LF line ends. */
  buf_reset(&b.data);
  http_resp_parser_init(&p);
  assert_int_equal(feed_str(&p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 201 Created\nX: y\n\nbody", &b),
                   0);
  assert_int_equal(b.status, 201);
  assert_false(http_resp_parser_done(&p));
  assert_int_equal(http_resp_parser_eof(&p), 0);
  assert_int_equal(b.data.len, 4);
  http_resp_parser_free(&p);
  /* Chunked with extensions and a trailer. */
  buf_reset(&b.data);
  http_resp_parser_init(&p);
  assert_int_equal(feed_str(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n", &b), 0);
  assert_true(http_resp_parser_done(&p));
  assert_int_equal(b.data.len, 3);
  http_resp_parser_free(&p);
  /* Truncated body: EOF is an error. */
  http_resp_parser_init(&p);
  assert_int_equal(feed_str(&p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", &b), 0);
  assert_int_equal(http_resp_parser_eof(&p), -EPIPE);
  http_resp_parser_free(&p);
  /* Malformed input. */
  const char *bad[] = {
      "HTTP/2 200 OK\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
      "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "000000000000000000000000000000000000000000000000000000000000000000001\r\n",
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    http_resp_parser_init(&p);
    assert_true(feed_str(&p, bad[i], &b) < 0);
    http_resp_parser_free(&p);
  }
  /* A head over the cap. */
  http_resp_parser_init(&p);
  assert_int_equal(feed_str(&p, "HTTP/1.1 200 OK\r\n", &b), 0);
  char *big = malloc(DOCKER_MAX_HEAD + 10);
  memset(big, 'a', DOCKER_MAX_HEAD + 9);
  big[DOCKER_MAX_HEAD + 9] = 0;
  big[0] = 'X';
  big[1] = ':';
  assert_int_equal(feed_str(&p, big, &b), -ENOBUFS);
  free(big);
  http_resp_parser_free(&p);
  buf_free(&b.data);
}

static void test_demux_errors(void **state) {
  (void)state;
  struct logs_demux d;
  struct buf out = BUF_INIT(1 << 22);
  /* Stream type 3 is not a stream. */
  logs_demux_init(&d, "application/vnd.docker.multiplexed-stream");
  const uint8_t bad_type[8] = {3, 0, 0, 0, 0, 0, 0, 1};
  assert_int_equal(logs_demux_feed(&d, bad_type, 8, collect, &out), -EBADMSG);
  logs_demux_free(&d);
  /* Non-zero padding. */
  logs_demux_init(&d, "application/vnd.docker.multiplexed-stream");
  const uint8_t bad_pad[8] = {1, 1, 0, 0, 0, 0, 0, 1};
  assert_int_equal(logs_demux_feed(&d, bad_pad, 8, collect, &out), -EBADMSG);
  logs_demux_free(&d);
  /* Frames over the cap are refused before anything is buffered. */
  logs_demux_init(&d, NULL);
  const uint8_t huge[8] = {1, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff};
  assert_int_equal(logs_demux_feed(&d, huge, 8, collect, &out), -ENOBUFS);
  logs_demux_free(&d);
  /* Exactly the cap is fine; an empty frame is an empty item; a cut frame is partial. */
  logs_demux_init(&d, NULL);
  uint8_t *f = calloc(1, 8 + LOGS_MAX_FRAME);
  f[0] = 2;
  f[4] = (uint8_t)(LOGS_MAX_FRAME >> 24);
  f[5] = (uint8_t)(LOGS_MAX_FRAME >> 16);
  f[6] = (uint8_t)(LOGS_MAX_FRAME >> 8);
  f[7] = (uint8_t)LOGS_MAX_FRAME;
  assert_int_equal(logs_demux_feed(&d, f, 8 + LOGS_MAX_FRAME, collect, &out), 0);
  assert_int_equal(out.len, 2 + LOGS_MAX_FRAME + 1);
  free(f);
  buf_reset(&out);
  const uint8_t empty[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  assert_int_equal(logs_demux_feed(&d, empty, 8, collect, &out), 0);
  assert_int_equal(out.len, 3);
  const uint8_t cut[10] = {1, 0, 0, 0, 0, 0, 0, 5, 'a', 'b'};
  assert_int_equal(logs_demux_feed(&d, cut, 10, collect, &out), 0);
  assert_true(logs_demux_partial(&d));
  logs_demux_free(&d);
  buf_free(&out);
}

static void test_items(void **state) {
  (void)state;
  struct logs_params p = {0};
  struct buf out = BUF_INIT(4096);
  const uint8_t msg[] = "hi \xff\n";
  /* Default: JSON with base64 message. */
  assert_int_equal(logs_format_item(&p, 1, msg, 5, &out), 0);
  assert_int_equal(buf_terminate(&out), 0);
  assert_string_equal((char *)out.data, "{\"channel\":\"stdout\",\"message\":\"aGkg/wo=\"}\n");
  buf_reset(&out);
  /* text: UTF-8 with a replacement character. */
  p.text = true;
  assert_int_equal(logs_format_item(&p, 2, msg, 5, &out), 0);
  assert_int_equal(buf_terminate(&out), 0);
  assert_string_equal((char *)out.data,
                      "{\"channel\":\"stderr\",\"message\":\"hi \xef\xbf\xbd\\n\"}\n");
  buf_reset(&out);
  /* bare: just the message, nothing added. */
  p.bare = true;
  assert_int_equal(logs_format_item(&p, -1, (const uint8_t *)"\x1b[31mred\x1b[0m\n", 13, &out), 0);
  assert_int_equal(buf_terminate(&out), 0);
  assert_string_equal((char *)out.data, "red\n");
  buf_reset(&out);
  p.ansi = true;
  assert_int_equal(logs_format_item(&p, -1, (const uint8_t *)"\x1b[31mred", 8, &out), 0);
  assert_int_equal(out.len, 8);
  buf_reset(&out);
  p.text = false;
  assert_int_equal(logs_format_item(&p, 0, (const uint8_t *)"ab", 2, &out), 0);
  assert_int_equal(buf_terminate(&out), 0);
  assert_string_equal((char *)out.data, "YWI=");
  buf_reset(&out);
  p.bare = false;
  p.text = true;
  assert_int_equal(logs_format_item(&p, 0, (const uint8_t *)"a\0b", 3, &out), 0);
  assert_int_equal(buf_terminate(&out), 0);
  assert_string_equal((char *)out.data, "{\"channel\":\"stdin\",\"message\":\"a\\u0000b\"}\n");
  buf_free(&out);
  assert_string_equal(logs_channel_name(-1), "console");

  /* UTF-8 repair. */
  struct {
    const char *in;
    size_t n;
    const char *want;
  } u[] = {
      {"plain", 5, "plain"},
      {"\xc3\xa9", 2, "\xc3\xa9"},
      {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},
      {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},             /* overlong */
      {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
      {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > 10FFFF */
      {"\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd"},             /* truncated */
      {"a\x80z", 3, "a\xef\xbf\xbdz"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(u); i++) {
    struct buf b = BUF_INIT(64);
    assert_int_equal(logs_utf8_lossy((const uint8_t *)u[i].in, u[i].n, false, &b), 0);
    assert_int_equal(buf_terminate(&b), 0);
    assert_string_equal((char *)b.data, u[i].want);
    buf_free(&b);
  }
#define L(s) s, sizeof(s) - 1
  /* Stripping: no ESC survives, whatever the sequence (found by fuzz_logs_demux: ESC ( B
   * used to pass through). */
  static const struct {
    const char *in;
    size_t n;
    const char *want;
  } a[] = {
      {L("\x1b]0;title\x07x\x1b(By"), "xy"},
      {L("\x1b[1;31mred\x1b[0m"), "red"},
      {L("a\x1b"), "a"},
      {L("a\x1b[12"), "a"},
      {L("a\x1b[1\nb"), "a\nb"},
      {L("\x1bPdcs\x1b\\z"), "z"},
      {L("\x1b]8;;x\x1b\\link\x1b]8;;\x1b\\"), "link"},
      {L("p\x1b\x1b[0mq"), "pq"},
      {L("\xc2\x9b" "31mX"), "31mX"}, /* 8-bit CSI (U+009B) */
      {L("\x1b" "7saved\x1b" "8"), "saved"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(a); i++) {
    struct buf b = BUF_INIT(64);
    assert_int_equal(logs_utf8_lossy((const uint8_t *)a[i].in, a[i].n, true, &b), 0);
    assert_int_equal(buf_terminate(&b), 0);
    assert_string_equal((char *)b.data, a[i].want);
    buf_free(&b);
    /* ansi: kept as they are. */
    struct buf k = BUF_INIT(64);
    assert_int_equal(logs_utf8_lossy((const uint8_t *)a[i].in, a[i].n, false, &k), 0);
    assert_int_equal(k.len, a[i].n);
    assert_memory_equal(k.data, a[i].in, a[i].n);
    buf_free(&k);
  }
#undef L
}

/* ---- docker_stream against a unix-socket server replaying a recording ---- */

struct replay {
  int lfd;
  struct buf data;
  size_t step;
};

static void *replay_thread(void *ud) {
  struct replay *rp = ud;
  int c = accept(rp->lfd, NULL, NULL);
  if (c < 0)
    return NULL;
  char req[4096];
  ssize_t got = 0, n;
  while (got < (ssize_t)sizeof(req) - 1 && (n = read(c, req + got, sizeof(req) - 1 - got)) > 0) {
    got += n;
    req[got] = 0;
    if (strstr(req, "\r\n\r\n"))
      break;
  }
  for (size_t off = 0; off < rp->data.len; off += rp->step) {
    size_t k = MIN(rp->step, rp->data.len - off);
    if (write(c, rp->data.data + off, k) != (ssize_t)k)
      break;
    usleep(200);
  }
  close(c);
  return NULL;
}

struct sink {
  struct event_base *base;
  struct docker_stream *ds;
  struct logs_demux d;
  struct buf frames;
  int status, end_err, ends;
  int pause_every;
  int bodies;
};

static void unpause(evutil_socket_t fd, short what, void *ud) {
  (void)fd;
  (void)what;
  struct sink *s = ud;
  docker_stream_pause(s->ds, false);
}

static int s_head(void *ud, int status, const char *ct) {
  struct sink *s = ud;
  s->status = status;
  logs_demux_init(&s->d, ct);
  return 0;
}
static int s_body(void *ud, const uint8_t *p, size_t n) {
  struct sink *s = ud;
  s->bodies++;
  int r = logs_demux_feed(&s->d, p, n, collect, &s->frames);
  if (r >= 0 && s->pause_every && s->bodies % s->pause_every == 0) {
    /* Back-pressure: stop reading for a moment. */
    docker_stream_pause(s->ds, true);
    struct timeval tv = {0, 2000};
    event_base_once(s->base, -1, EV_TIMEOUT, unpause, s, &tv);
  }
  return r;
}
static void s_end(void *ud, int err) {
  struct sink *s = ud;
  s->end_err = err;
  s->ends++;
  event_base_loopbreak(s->base);
}

static void run_replay(const char *rec, size_t step, int pause_every, struct sink *s) {
  char *dir = tu_mkdtemp();
  char path[256];
  snprintf(path, sizeof(path), "%s/docker.sock", dir);
  struct replay rp = {.step = step};
  buf_init(&rp.data, 1 << 20);
  char rel[256];
  snprintf(rel, sizeof(rel), "tests/data/docker/%s", rec);
  tu_read_file(tu_source_path(rel), &rp.data);
  rp.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  assert_true(strlen(path) < sizeof(sun.sun_path));
  memcpy(sun.sun_path, path, strlen(path));
  assert_int_equal(bind(rp.lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
  assert_int_equal(listen(rp.lfd, 1), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, replay_thread, &rp), 0);

  memset(s, 0, sizeof(*s));
  buf_init(&s->frames, 1 << 20);
  s->pause_every = pause_every;
  s->base = event_base_new();
  static const struct docker_stream_cbs cbs = {.on_head = s_head, .on_body = s_body,
                                               .on_end = s_end};
  assert_int_equal(docker_stream_open(s->base, path, "/containers/x/logs?stdout=1", &cbs, s,
                                      &s->ds),
                   0);
  event_base_dispatch(s->base);
  docker_stream_free(s->ds);
  event_base_free(s->base);
  logs_demux_free(&s->d);
  pthread_join(th, NULL);
  close(rp.lfd);
  buf_free(&rp.data);
  tu_rm_rf(dir);
  free(dir);
}

static void test_stream_replay(void **state) {
  (void)state;
  struct sink s;
  run_replay("logs_mixed.http", 1 << 16, 0, &s);
  assert_int_equal(s.ends, 1);
  assert_int_equal(s.end_err, 0);
  assert_int_equal(s.status, 200);
  assert_int_equal(buf_terminate(&s.frames), 0);
  assert_string_equal((char *)s.frames.data, "1:out1\n|1:\xc3\xa9t\xc3\xa9\n|2:err1\n|2:err2\n|");
  buf_free(&s.frames);
  /* Byte by byte with pauses in between: same result. */
  run_replay("logs_mixed.http", 1, 3, &s);
  assert_int_equal(s.ends, 1);
  assert_int_equal(s.end_err, 0);
  assert_int_equal(buf_terminate(&s.frames), 0);
  assert_string_equal((char *)s.frames.data, "1:out1\n|1:\xc3\xa9t\xc3\xa9\n|2:err1\n|2:err2\n|");
  buf_free(&s.frames);
  run_replay("logs_404.http", 7, 0, &s);
  assert_int_equal(s.status, 404);
  assert_int_equal(s.end_err, 0);
  buf_free(&s.frames);
  /* Nobody listening. */
  struct event_base *base = event_base_new();
  struct docker_stream *ds = NULL;
  static const struct docker_stream_cbs cbs = {.on_head = s_head, .on_body = s_body,
                                               .on_end = s_end};
  assert_true(docker_stream_open(base, "/nonexistent/docker.sock", "/x", &cbs, NULL, &ds) < 0);
  assert_int_equal(docker_stream_open(base, "/tmp/x", "no-slash", &cbs, NULL, &ds), -EINVAL);
  event_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),         cmocka_unit_test(test_times),
      cmocka_unit_test(test_params),        cmocka_unit_test(test_recorded_streams),
      cmocka_unit_test(test_resp_parser),   cmocka_unit_test(test_demux_errors),
      cmocka_unit_test(test_items),         cmocka_unit_test(test_stream_replay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

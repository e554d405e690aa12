/* pRPC dispatch through the real HTTP server: requests are written into one end of a socket
 * pair whose other end the server serves (http_server_add_connection), with the event loop run
 * in between, so the test stays single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>

#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/json.h"
#include "dstack_guest.pb-c.h"
#include "net/http_server.h"
#include "net/prpc.h"
#include "net/prpc_json.h"
#include "prpc_test.pb-c.h"
#include "tappd_rpc.pb-c.h"
#include "testutil.h"

/* ---- handlers ----------------------------------------------------------------------- */

struct calls {
  unsigned n;
};

static int h_tdx_quote(void *ud, struct http_request *req, const ProtobufCMessage *in,
                       ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  (void)ret_error;
  ((struct calls *)ud)->n++;
  const Tappd__TdxQuoteArgs *a = (const Tappd__TdxQuoteArgs *)in;
  Tappd__TdxQuoteResponse *r = malloc(sizeof(*r));
  assert_non_null(r);
  tappd__tdx_quote_response__init(r);
  if (a->report_data.len) {
    r->quote.data = malloc(a->report_data.len);
    assert_non_null(r->quote.data);
    memcpy(r->quote.data, a->report_data.data, a->report_data.len);
    r->quote.len = a->report_data.len;
  }
  r->prefix = strdup(a->prefix);
  r->hash_algorithm = strdup(a->hash_algorithm[0] ? a->hash_algorithm : "sha512");
  *ret_out = &r->base;
  return 0;
}

static int h_get_quote(void *ud, struct http_request *req, const ProtobufCMessage *in,
                       ProtobufCMessage **ret_out, char **ret_error) {
  (void)ud;
  (void)req;
  const Dstack__RawQuoteArgs *a = (const Dstack__RawQuoteArgs *)in;
  if (a->report_data.len > 64)
    return prpc_error(ret_error, -EINVAL, "report_data is longer than 64 bytes");
  Dstack__GetQuoteResponse *r = malloc(sizeof(*r));
  assert_non_null(r);
  dstack__get_quote_response__init(r);
  r->report_data.data = calloc(1, 64);
  assert_non_null(r->report_data.data);
  r->report_data.len = 64;
  if (a->report_data.len)
    memcpy(r->report_data.data, a->report_data.data, a->report_data.len);
  r->event_log = strdup("[]");
  *ret_out = &r->base;
  return 0;
}

static int h_echo(void *ud, struct http_request *req, const ProtobufCMessage *in,
                  ProtobufCMessage **ret_out, char **ret_error) {
  (void)ud;
  (void)req;
  (void)ret_error;
  size_t n = protobuf_c_message_get_packed_size(in);
  uint8_t *wire = malloc(n + 1);
  assert_non_null(wire);
  protobuf_c_message_pack(in, wire);
  *ret_out = protobuf_c_message_unpack(in->descriptor, NULL, n, wire);
  free(wire);
  assert_non_null(*ret_out);
  return 0;
}

static int h_ping(void *ud, struct http_request *req, const ProtobufCMessage *in,
                  ProtobufCMessage **ret_out, char **ret_error) {
  (void)req;
  (void)in;
  (void)ret_out;
  (void)ret_error;
  ((struct calls *)ud)->n++;
  return 0;
}

static int h_fail(void *ud, struct http_request *req, const ProtobufCMessage *in,
                  ProtobufCMessage **ret_out, char **ret_error) {
  (void)ud;
  (void)req;
  (void)ret_out;
  const Prpctest__Inner *a = (const Prpctest__Inner *)in;
  if (a->n == 1)
    return -EACCES; /* no message: strerror */
  if (a->n == 2) {
    /* A reply allocated before failing is released by prpc. */
    ProtobufCMessage *m = NULL;
    assert_int_equal(prpc_message_new(&prpctest__inner__descriptor, &m), 0);
    *ret_out = m;
  }
  return prpc_error(ret_error, -EINVAL, "boom: %s", a->name);
}

static int bad_type_flag = 1;
static int h_touch(void *ud, struct http_request *req, const ProtobufCMessage *in,
                   ProtobufCMessage **ret_out, char **ret_error) {
  (void)ud;
  (void)in;
  (void)ret_error;
  assert_int_equal(http_reply_header(req, "X-App-Version", "1.2.3"), 0);
  if (ud == &bad_type_flag) {
    /* Wrong reply type: an encoding error (500), not a 200. */
    ProtobufCMessage *m = NULL;
    assert_int_equal(prpc_message_new(&prpctest__all_types__descriptor, &m), 0);
    *ret_out = m;
  }
  return 0; /* NULL reply = the default Inner */
}

/* ---- fixture ------------------------------------------------------------------------ */

static struct calls tappd_calls, ping_calls;
/* Filled in setup(): TdxQuote only, covering 3 of Tappd's 6 methods; GetQuote only. */
static prpc_method_fn tappd_methods[3];
static prpc_method_fn dstack_methods[9];
static const prpc_method_fn test_methods[] = {h_echo, h_ping, h_fail, h_touch};
static const prpc_method_fn test_methods_bad[] = {NULL, NULL, NULL, h_touch};

static const struct prpc_service prpc_svcs[] = {
    {.desc = &tappd__tappd__descriptor, .mount = "/prpc/Tappd.", .methods = tappd_methods,
     .n_methods = ARRAY_SIZE(tappd_methods), .ud = &tappd_calls, .json_flags = PRPC_JSON_BYTES_0X},
    {.desc = &tappd__tappd__descriptor, .mount = "/prpc/", .methods = tappd_methods,
     .n_methods = ARRAY_SIZE(tappd_methods), .ud = &tappd_calls, .json_flags = PRPC_JSON_BYTES_0X},
    {.desc = &prpctest__test__descriptor, .mount = "/prpc/Test.", .methods = test_methods,
     .ud = &ping_calls},
    {.desc = &prpctest__test__descriptor, .mount = "/prpc/Bad.", .methods = test_methods_bad,
     .ud = &bad_type_flag},
};
static const struct prpc_router prpc_router = {prpc_svcs, ARRAY_SIZE(prpc_svcs)};
static const struct prpc_service root_svcs[] = {
    {.desc = &dstack__dstack_guest__descriptor, .mount = "/", .methods = dstack_methods,
     .n_methods = ARRAY_SIZE(dstack_methods)},
};
static const struct prpc_router root_router = {root_svcs, ARRAY_SIZE(root_svcs)};

struct fx {
  struct event_base *base;
  struct http_server *srv;
};
static struct fx fx;

static int setup(void **state) {
  (void)state;
  int k = prpc_method_index(&tappd__tappd__descriptor, "TdxQuote");
  assert_int_equal(k, 2);
  tappd_methods[k] = h_tdx_quote;
  k = prpc_method_index(&dstack__dstack_guest__descriptor, "GetQuote");
  assert_in_range(k, 0, ARRAY_SIZE(dstack_methods) - 1);
  dstack_methods[k] = h_get_quote;
  assert_int_equal(prpc_method_index(&dstack__dstack_guest__descriptor, "getquote"), -ENOENT);
  assert_int_equal(prpc_method_index(&dstack__dstack_guest__descriptor, "Verify"), 8);
  fx.base = event_base_new();
  assert_non_null(fx.base);
  assert_int_equal(http_server_new(fx.base, NULL, &fx.srv), 0);
  assert_int_equal(http_server_route(fx.srv, "/prpc/", prpc_http_handler, (void *)&prpc_router),
                   0);
  assert_int_equal(http_server_route(fx.srv, "/", prpc_http_handler, (void *)&root_router), 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  http_server_free(fx.srv);
  event_base_free(fx.base);
  return 0;
}

/* ---- a tiny client ------------------------------------------------------------------ */

struct resp {
  int status;
  char *headers; /* raw header block */
  uint8_t *body;
  size_t body_len;
};

static void resp_free(struct resp *r) {
  free(r->headers);
  free(r->body);
  *r = (struct resp){0};
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sends method path with the given extra header lines and body; reads until the server closes
 * (the request says Connection: close). */
static void request(const char *method, const char *target, const char *extra_headers,
                    const void *body, size_t len, struct resp *ret) {
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  assert_int_equal(http_server_add_connection(fx.srv, sv[0], NULL), 0);
  assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);

  struct buf out = BUF_INIT(1 << 24), in = BUF_INIT(1 << 24);
  assert_int_equal(buf_printf(&out,
                              "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                              "%sContent-Length: %zu\r\n\r\n",
                              method, target, extra_headers ? extra_headers : "", len),
                   0);
  if (len)
    assert_int_equal(buf_append(&out, body, len), 0);

  size_t sent = 0;
  bool eof = false;
  double deadline = now_s() + 10;
  while (!eof) {
    assert_true(now_s() < deadline);
    if (sent < out.len) {
      ssize_t w = write(sv[1], out.data + sent, out.len - sent);
      if (w > 0)
        sent += (size_t)w;
    }
    event_base_loop(fx.base, EVLOOP_NONBLOCK);
    for (;;) {
      uint8_t tmp[4096];
      ssize_t r = read(sv[1], tmp, sizeof(tmp));
      if (r > 0) {
        assert_int_equal(buf_append(&in, tmp, (size_t)r), 0);
        continue;
      }
      if (r == 0)
        eof = true;
      break;
    }
    if (!eof) {
      struct pollfd p = {.fd = sv[1], .events = POLLIN | (sent < out.len ? POLLOUT : 0)};
      (void)poll(&p, 1, 5);
    }
  }
  close(sv[1]);
  buf_free(&out);
  event_base_loop(fx.base, EVLOOP_NONBLOCK);

  assert_int_equal(buf_terminate(&in), 0);
  const char *text = (const char *)in.data;
  assert_non_null(text);
  assert_int_equal(strncmp(text, "HTTP/1.1 ", 9), 0);
  const char *end = strstr(text, "\r\n\r\n");
  assert_non_null(end);
  *ret = (struct resp){.status = atoi(text + 9)};
  ret->headers = strndup(text, (size_t)(end - text) + 2);
  ret->body_len = in.len - (size_t)(end + 4 - text);
  ret->body = malloc(ret->body_len + 1);
  assert_non_null(ret->body);
  memcpy(ret->body, end + 4, ret->body_len);
  ret->body[ret->body_len] = 0;
  buf_free(&in);
}

static bool has_header(const struct resp *r, const char *line) {
  char want[256];
  snprintf(want, sizeof(want), "\r\n%s\r\n", line);
  return strcasestr(r->headers, want) != NULL;
}

static json_t *body_json(const struct resp *r) {
  json_t *j = NULL;
  if (json_parse_buf_full((const char *)r->body, r->body_len, 1 << 24, JSON_DECODE_ANY, &j,
                          NULL) < 0)
    fail_msg("reply is not JSON: %s", (const char *)r->body);
  return j;
}

#define JSON_CT "Content-Type: application/json\r\n"

/* ---- tests -------------------------------------------------------------------------- */

static void test_json_modes(void **state) {
  (void)state;
  const char *body = "{\"report_data\":\"0x1234\",\"prefix\":\"p\"}";
  /* ?json, ?json=1|true|yes|on, JSON content type (with parameters) each choose JSON. */
  static const struct {
    const char *target, *headers;
  } modes[] = {
      {"/prpc/Tappd.TdxQuote?json", NULL},
      {"/prpc/Tappd.TdxQuote?json=1", NULL},
      {"/prpc/Tappd.TdxQuote?x=2&json=true", NULL},
      {"/prpc/Tappd.TdxQuote?json=yes", NULL},
      {"/prpc/Tappd.TdxQuote?json=on", NULL},
      {"/prpc/Tappd.TdxQuote", JSON_CT},
      {"/prpc/Tappd.TdxQuote", "Content-Type: Application/JSON; charset=utf-8\r\n"},
      {"/prpc/TdxQuote?json", NULL}, /* the "Tappd." prefix is optional */
  };
  for (size_t k = 0; k < ARRAY_SIZE(modes); k++) {
    struct resp r;
    request("POST", modes[k].target, modes[k].headers, body, strlen(body), &r);
    if (r.status != 200)
      fail_msg("%s: %d %s", modes[k].target, r.status, (char *)r.body);
    assert_true(has_header(&r, "Content-Type: application/json"));
    assert_string_equal((char *)r.body, "{\"quote\":\"0x1234\",\"event_log\":\"\","
                                        "\"hash_algorithm\":\"sha512\",\"prefix\":\"p\"}");
    resp_free(&r);
  }
}

static void test_protobuf_mode(void **state) {
  (void)state;
  Tappd__TdxQuoteArgs a = TAPPD__TDX_QUOTE_ARGS__INIT;
  uint8_t rd[3] = {1, 2, 3};
  a.report_data = (ProtobufCBinaryData){3, rd};
  a.prefix = (char *)"pp";
  uint8_t wire[64];
  size_t n = protobuf_c_message_pack(&a.base, wire);
  static const char *const targets[] = {"/prpc/Tappd.TdxQuote", "/prpc/Tappd.TdxQuote?json=0",
                                        "/prpc/Tappd.TdxQuote?json=false"};
  for (size_t k = 0; k < ARRAY_SIZE(targets); k++) {
    struct resp r;
    request("POST", targets[k], "Content-Type: application/octet-stream\r\n", wire, n, &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type: application/octet-stream"));
    Tappd__TdxQuoteResponse *q = tappd__tdx_quote_response__unpack(NULL, r.body_len, r.body);
    assert_non_null(q);
    assert_int_equal(q->quote.len, 3);
    assert_memory_equal(q->quote.data, rd, 3);
    assert_string_equal(q->prefix, "pp");
    tappd__tdx_quote_response__free_unpacked(q, NULL);
    resp_free(&r);
  }
  /* Without any Content-Type too. */
  struct resp r;
  request("POST", "/prpc/TdxQuote", NULL, wire, n, &r);
  assert_int_equal(r.status, 200);
  assert_true(has_header(&r, "Content-Type: application/octet-stream"));
  resp_free(&r);

  /* Undecodable protobuf: 400 with a ProtoError body. */
  static const uint8_t garbage[] = {0x0a, 0x7f, 0x01};
  request("POST", "/prpc/Tappd.TdxQuote", NULL, garbage, sizeof(garbage), &r);
  assert_int_equal(r.status, 400);
  assert_true(has_header(&r, "Content-Type: application/octet-stream"));
  assert_true(r.body_len > 2 && r.body[0] == 0x0a && r.body[1] == r.body_len - 2);
  assert_non_null(memmem(r.body, r.body_len, "DecodeError", 11));
  resp_free(&r);
}

static void test_get_query(void **state) {
  (void)state;
  struct resp r;
  request("GET", "/prpc/Tappd.TdxQuote?report_data=0xABcd&hash_algorithm=raw&prefix=a%20b", NULL,
          NULL, 0, &r);
  assert_int_equal(r.status, 200);
  assert_true(has_header(&r, "Content-Type: application/json"));
  assert_string_equal((char *)r.body, "{\"quote\":\"0xabcd\",\"event_log\":\"\","
                                      "\"hash_algorithm\":\"raw\",\"prefix\":\"a b\"}");
  resp_free(&r);

  /* GET is JSON even with ?json=false; the body of a GET is ignored. */
  request("GET", "/prpc/TdxQuote?json=false", NULL, "{\"prefix\":\"x\"}", 14, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal((char *)r.body, "{\"quote\":\"0x\",\"event_log\":\"\","
                                      "\"hash_algorithm\":\"sha512\",\"prefix\":\"\"}");
  resp_free(&r);

  request("GET", "/prpc/TdxQuote?report_data=xyz", NULL, NULL, 0, &r);
  assert_int_equal(r.status, 400);
  json_t *j = body_json(&r);
  assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "report_data"));
  json_decref(j);
  resp_free(&r);
}

static void test_not_found(void **state) {
  (void)state;
  static const char *const targets[] = {
      "/prpc/Tappd.Nope",     "/prpc/tappd.TdxQuote", "/prpc/Tappd.tdxquote",
      "/prpc/Tappd.TdxQuote/x", "/prpc/",             "/prpc/Tappd.DeriveKey", /* no handler */
      "/prpc/Tappd.Version", /* past the end of the table */
      "/prpc/Test.Nope",      "/prpc/Worker.Info",    "/prpc/Tappd.",
      "/GetKey", /* listed with no handler */ "/Verify", "/DstackGuest.GetQuote", "/",
      "/getquote",            "/GetQuote/",
  };
  unsigned before = tappd_calls.n;
  for (size_t k = 0; k < ARRAY_SIZE(targets); k++) {
    struct resp r;
    request("POST", targets[k], JSON_CT, "{}", 2, &r);
    if (r.status != 404)
      fail_msg("%s: %d", targets[k], r.status);
    assert_string_equal((char *)r.body, "{\n  \"error\": \"method Not Found\"\n}");
    resp_free(&r);
  }
  /* Protobuf mode: ProtoError{message}. */
  struct resp r;
  request("POST", "/prpc/Tappd.Nope", NULL, NULL, 0, &r);
  assert_int_equal(r.status, 404);
  assert_int_equal(r.body_len, 2 + 16);
  assert_memory_equal(r.body, "\x0a\x10method Not Found", 18);
  resp_free(&r);
  assert_int_equal(tappd_calls.n, before);

  /* Only GET and POST. */
  request("PUT", "/prpc/Tappd.TdxQuote?json", NULL, "{}", 2, &r);
  assert_int_equal(r.status, 405);
  resp_free(&r);
  request("DELETE", "/GetQuote", JSON_CT, NULL, 0, &r);
  assert_int_equal(r.status, 405);
  resp_free(&r);
  assert_int_equal(tappd_calls.n, before);
}

static void test_bad_input(void **state) {
  (void)state;
  static const struct {
    const char *body, *needle;
  } cases[] = {
      {"{\"report_data\":\"0x123\"}", "field 'report_data'"},
      {"{\"report_data\":12}", "field 'report_data'"},
      {"{\"prefix\":[]}", "field 'prefix'"},
      {"{\"report_data\":", "invalid JSON"},
      {"[1,2]", "expected a JSON object"},
      {"\"x\"", "expected a JSON object"},
  };
  unsigned before = tappd_calls.n;
  for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
    struct resp r;
    request("POST", "/prpc/Tappd.TdxQuote?json", NULL, cases[k].body, strlen(cases[k].body), &r);
    assert_int_equal(r.status, 400);
    assert_true(has_header(&r, "Content-Type: application/json"));
    json_t *j = body_json(&r);
    const char *e = json_string_value(json_object_get(j, "error"));
    if (!e || !strstr(e, cases[k].needle))
      fail_msg("%s: error %s lacks %s", cases[k].body, e, cases[k].needle);
    json_decref(j);
    resp_free(&r);
  }
  assert_int_equal(tappd_calls.n, before);

  /* An empty JSON body is the default request. */
  struct resp r;
  request("POST", "/prpc/Tappd.TdxQuote?json", NULL, NULL, 0, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  assert_int_equal(tappd_calls.n, before + 1);
}

static void test_handler_errors(void **state) {
  (void)state;
  struct resp r;
  request("POST", "/prpc/Test.Fail", JSON_CT, "{\"name\":\"x\"}", 12, &r);
  assert_int_equal(r.status, 400);
  assert_string_equal((char *)r.body, "{\n  \"error\": \"boom: x\"\n}");
  resp_free(&r);

  request("POST", "/prpc/Test.Fail", JSON_CT, "{\"name\":\"y\",\"n\":2}", 18, &r);
  assert_int_equal(r.status, 400);
  assert_string_equal((char *)r.body, "{\n  \"error\": \"boom: y\"\n}");
  resp_free(&r);

  request("POST", "/prpc/Test.Fail?json", NULL, "{\"n\":1}", 7, &r);
  assert_int_equal(r.status, 400);
  json_t *j = body_json(&r);
  assert_string_equal(json_string_value(json_object_get(j, "error")), strerror(EACCES));
  json_decref(j);
  resp_free(&r);

  /* Protobuf mode error body. */
  Prpctest__Inner in = PRPCTEST__INNER__INIT;
  in.name = (char *)"z";
  uint8_t wire[32];
  size_t n = protobuf_c_message_pack(&in.base, wire);
  request("POST", "/prpc/Test.Fail", NULL, wire, n, &r);
  assert_int_equal(r.status, 400);
  assert_int_equal(r.body_len, 9);
  assert_memory_equal(r.body, "\x0a\x07" "boom: z", 9);
  resp_free(&r);

  /* A reply of the wrong type is a server error, never a 200. */
  request("POST", "/prpc/Bad.Touch?json", NULL, NULL, 0, &r);
  assert_int_equal(r.status, 500);
  resp_free(&r);
}

static void test_empty_and_default(void **state) {
  (void)state;
  struct resp r;
  unsigned before = ping_calls.n;
  /* Empty request: the body is ignored, even when it is not valid in either encoding. */
  request("POST", "/prpc/Test.Ping?json", NULL, "garbage{", 8, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal((char *)r.body, "null");
  resp_free(&r);
  request("POST", "/prpc/Test.Ping", NULL, "\xff\xff", 2, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 0);
  resp_free(&r);
  request("GET", "/prpc/Test.Ping", NULL, NULL, 0, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal((char *)r.body, "null");
  resp_free(&r);
  assert_int_equal(ping_calls.n, before + 3);

  /* NULL reply = default message; headers set by the handler are sent. */
  request("GET", "/prpc/Test.Touch", NULL, NULL, 0, &r);
  assert_int_equal(r.status, 200);
  assert_true(has_header(&r, "X-App-Version: 1.2.3"));
  assert_string_equal((char *)r.body, "{\"name\":\"\",\"n\":0,\"child\":null,\"kids\":[]}");
  resp_free(&r);
}

static void test_echo_all_types(void **state) {
  (void)state;
  const char *in = "{\"i32\":-1,\"u64\":9007199254740993,\"s\":\"\\u00fc\",\"by\":\"0xFF\","
                   "\"color\":\"GREEN\",\"inner\":{\"kids\":[{\"n\":3}]},\"r_s\":[\"a\",\"b\"],"
                   "\"r_by\":[\"01\"],\"o_i\":5,\"db\":0.5,\"b\":true}";
  struct resp r;
  request("POST", "/prpc/Test.Echo", JSON_CT, in, strlen(in), &r);
  assert_int_equal(r.status, 200);
  json_t *j = body_json(&r);
  assert_int_equal(json_integer_value(json_object_get(j, "i32")), -1);
  assert_true(json_integer_value(json_object_get(j, "u64")) == 9007199254740993LL);
  assert_string_equal(json_string_value(json_object_get(j, "s")), "\xc3\xbc");
  assert_string_equal(json_string_value(json_object_get(j, "by")), "ff");
  assert_int_equal(json_integer_value(json_object_get(j, "color")), 2);
  assert_int_equal(json_integer_value(json_object_get(j, "o_i")), 5);
  assert_int_equal(json_array_size(json_object_get(j, "r_s")), 2);
  assert_true(json_is_null(json_object_get(json_object_get(j, "inner"), "child")));
  assert_int_equal(json_object_size(j), 28 + 1); /* every field + the selected oneof member */
  json_decref(j);
  resp_free(&r);

  /* Compact output. */
  request("POST", "/prpc/Test.Echo?json", NULL, "{}", 2, &r);
  assert_int_equal(r.status, 200);
  assert_null(strchr((char *)r.body, '\n'));
  assert_null(strstr((char *)r.body, ": "));
  resp_free(&r);
}

static void test_dstack_root(void **state) {
  (void)state;
  const char *body = "{\"report_data\":\"0xaabb\"}";
  struct resp r;
  request("POST", "/GetQuote", JSON_CT, body, strlen(body), &r);
  assert_int_equal(r.status, 200);
  json_t *j = body_json(&r);
  const char *rd = json_string_value(json_object_get(j, "report_data"));
  assert_non_null(rd);
  assert_int_equal(strlen(rd), 128);
  assert_int_equal(strncmp(rd, "aabb0000", 8), 0); /* plain hex, no 0x */
  assert_string_equal(json_string_value(json_object_get(j, "event_log")), "[]");
  json_decref(j);
  resp_free(&r);

  request("GET", "/GetQuote?report_data=01", NULL, NULL, 0, &r);
  assert_int_equal(r.status, 200);
  j = body_json(&r);
  assert_int_equal(strncmp(json_string_value(json_object_get(j, "report_data")), "0100", 4), 0);
  json_decref(j);
  resp_free(&r);

  /* Handler-reported failure. */
  char big[200] = "{\"report_data\":\"";
  size_t off = strlen(big);
  for (int k = 0; k < 65; k++, off += 2)
    memcpy(big + off, "ab", 2);
  memcpy(big + off, "\"}", 3);
  request("POST", "/GetQuote", JSON_CT, big, strlen(big), &r);
  assert_int_equal(r.status, 400);
  assert_string_equal((char *)r.body,
                      "{\n  \"error\": \"report_data is longer than 64 bytes\"\n}");
  resp_free(&r);
}

static void test_prpc_error_helper(void **state) {
  (void)state;
  char *e = NULL;
  assert_int_equal(prpc_error(&e, -EIO, "x=%d", 5), -EIO);
  assert_string_equal(e, "x=5");
  /* the first message, where the failure was decided, is kept */
  assert_int_equal(prpc_error(&e, -EINVAL, "outer"), -EINVAL);
  assert_string_equal(e, "x=5");
  free(e);
  assert_int_equal(prpc_error(NULL, -EPERM, "ignored"), -EPERM);
}

static int fake_method(void *ud, struct http_request *req, const ProtobufCMessage *in,
                       ProtobufCMessage **ret_out, char **ret_error) {
  (void)ud, (void)req, (void)in, (void)ret_out, (void)ret_error;
  return 0;
}

/* A method table that names a method the service lacks, twice, or without a handler is refused
 * (a daemon then refuses to start), and so is a table too small for the service. */
static void test_prpc_methods_fill(void **state) {
  (void)state;
  const ProtobufCServiceDescriptor *d = &dstack__dstack_guest__descriptor;
  prpc_method_fn table[16];
  char err[256];
  const struct prpc_method_entry ok[] = {{"GetQuote", fake_method}, {"Verify", fake_method}};
  assert_int_equal(prpc_methods_fill(d, ok, 2, table, 16, err, sizeof(err)), 0);
  assert_ptr_equal(table[prpc_method_index(d, "GetQuote")], fake_method);
  assert_ptr_equal(table[8], fake_method);
  assert_null(table[0]);
  const struct prpc_method_entry missing[] = {{"GetQuote", fake_method}, {"GetQoute", fake_method}};
  assert_int_equal(prpc_methods_fill(d, missing, 2, table, 16, err, sizeof(err)), -ENOENT);
  assert_non_null(strstr(err, "GetQoute"));
  const struct prpc_method_entry twice[] = {{"GetQuote", fake_method}, {"GetQuote", fake_method}};
  assert_int_equal(prpc_methods_fill(d, twice, 2, table, 16, err, sizeof(err)), -EEXIST);
  const struct prpc_method_entry nofn[] = {{"GetQuote", NULL}};
  assert_int_equal(prpc_methods_fill(d, nofn, 1, table, 16, err, sizeof(err)), -EINVAL);
  assert_int_equal(prpc_methods_fill(d, ok, 2, table, 4, err, sizeof(err)), -ENOBUFS);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* the HTTP server leaves that to the process */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_modes),       cmocka_unit_test(test_protobuf_mode),
      cmocka_unit_test(test_get_query),        cmocka_unit_test(test_not_found),
      cmocka_unit_test(test_bad_input),        cmocka_unit_test(test_handler_errors),
      cmocka_unit_test(test_empty_and_default), cmocka_unit_test(test_echo_all_types),
      cmocka_unit_test(test_dstack_root),      cmocka_unit_test(test_prpc_error_helper),
      cmocka_unit_test(test_prpc_methods_fill),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

/* GET /logs/<container>: parameter parsing, stream demultiplexing, output items, and the async
 * HTTP handler that streams from the Docker socket to the client with back-pressure. */
#include "tappd_logs.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/base64.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "tappd_docker.h"
#include "net/http_server.h"
#include "tappd_server.h"

bool logs_container_name_valid(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > LOGS_MAX_NAME)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
      return false;
  }
  return true;
}

int logs_parse_time(const char *s, int64_t now, int64_t *ret) {
  if (str_isempty(s))
    return -EINVAL;
  size_t n = strlen(s);
  uint64_t v;
  int64_t unit = 0;
  switch (s[n - 1]) {
  case 's':
    unit = 1;
    break;
  case 'm':
    unit = 60;
    break;
  case 'h':
    unit = 3600;
    break;
  case 'd':
    unit = 86400;
    break;
  }
  if (!unit) {
    if (str_to_u64(s, &v) < 0 || v > (uint64_t)INT64_MAX)
      return -EINVAL;
    *ret = (int64_t)v;
    return 0;
  }
  if (n < 2 || str_to_u64_n(s, n - 1, &v) < 0 || v > (uint64_t)(INT64_MAX / unit))
    return -EINVAL;
  int64_t t = now - (int64_t)v * unit;
  *ret = t < 0 ? 0 : t;
  return 0;
}

_printf_(3, 4) static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

static int get_flag(logs_query_fn get, void *ud, const char *name, bool *ret, char *err,
                    size_t errlen) {
  _cleanup_free_ char *v = NULL;
  int r = get(ud, name, &v);
  if (r == -ENOENT) {
    *ret = false;
    return 0;
  }
  if (r < 0)
    return fail(err, errlen, "bad query parameter '%s'", name);
  if (!*v) {
    *ret = true;
    return 0;
  }
  if (str_to_bool(v, ret) < 0)
    return fail(err, errlen, "'%s' must be a boolean", name);
  return 0;
}

static int get_time(logs_query_fn get, void *ud, const char *name, int64_t now, int64_t *ret,
                    char *err, size_t errlen) {
  _cleanup_free_ char *v = NULL;
  int r = get(ud, name, &v);
  *ret = 0;
  if (r == -ENOENT)
    return 0;
  if (r < 0 || logs_parse_time(v, now, ret) < 0)
    return fail(err, errlen, "'%s' must be unix seconds or a relative time like 30s, 5m, 2h, 1d",
                name);
  return 0;
}

int logs_params_parse(logs_query_fn get, void *ud, int64_t now, struct logs_params *ret,
                      char *err, size_t errlen) {
  memset(ret, 0, sizeof(*ret));
  int r;
  if ((r = get_time(get, ud, "since", now, &ret->since, err, errlen)) < 0 ||
      (r = get_time(get, ud, "until", now, &ret->until, err, errlen)) < 0 ||
      (r = get_flag(get, ud, "follow", &ret->follow, err, errlen)) < 0 ||
      (r = get_flag(get, ud, "text", &ret->text, err, errlen)) < 0 ||
      (r = get_flag(get, ud, "timestamps", &ret->timestamps, err, errlen)) < 0 ||
      (r = get_flag(get, ud, "bare", &ret->bare, err, errlen)) < 0 ||
      (r = get_flag(get, ud, "ansi", &ret->ansi, err, errlen)) < 0)
    return r;
  _cleanup_free_ char *tail = NULL;
  r = get(ud, "tail", &tail);
  if (r == -ENOENT) {
    snprintf(ret->tail, sizeof(ret->tail), "%s", LOGS_DEFAULT_TAIL);
    return 0;
  }
  uint64_t n;
  if (r < 0 || (!str_eq(tail, "all") && str_to_u64(tail, &n) < 0) ||
      strlen(tail) >= sizeof(ret->tail))
    return fail(err, errlen, "'tail' must be a number or \"all\"");
  snprintf(ret->tail, sizeof(ret->tail), "%s", tail);
  return 0;
}

int logs_docker_target(const char *name, const struct logs_params *p, struct buf *out) {
  if (!logs_container_name_valid(name))
    return -EINVAL;
  return buf_printf(out,
                    "/containers/%s/logs?stdout=1&stderr=1&follow=%d&timestamps=%d&since=%lld"
                    "&until=%lld&tail=%s",
                    name, p->follow, p->timestamps, (long long)p->since, (long long)p->until,
                    p->tail);
}

void logs_demux_init(struct logs_demux *d, const char *content_type) {
  memset(d, 0, sizeof(*d));
  buf_init(&d->frame, LOGS_MAX_FRAME);
  if (content_type && str_startswith(content_type, "application/vnd.docker.multiplexed-stream"))
    d->mode = LOGS_DEMUX_FRAMED;
  else
    d->mode = LOGS_DEMUX_AUTO; /* raw-stream is used for both by older engines */
}

void logs_demux_free(struct logs_demux *d) {
  buf_free(&d->frame);
}

bool logs_demux_partial(const struct logs_demux *d) {
  return d->mode == LOGS_DEMUX_FRAMED && (d->hdr_len > 0 || d->need > 0);
}

int logs_demux_feed(struct logs_demux *d, const uint8_t *p, size_t n, logs_emit_fn emit,
                    void *ud) {
  int r;
  if (n && d->mode == LOGS_DEMUX_AUTO)
    d->mode = p[0] <= 2 ? LOGS_DEMUX_FRAMED : LOGS_DEMUX_RAW;
  if (d->mode == LOGS_DEMUX_RAW)
    return n ? emit(ud, -1, p, n) : 0;
  while (n > 0) {
    if (d->need == 0) {
      size_t k = MIN(n, sizeof(d->hdr) - d->hdr_len);
      memcpy(d->hdr + d->hdr_len, p, k);
      d->hdr_len += k;
      p += k;
      n -= k;
      if (d->hdr_len < sizeof(d->hdr))
        break;
      if (d->hdr[0] > 2 || d->hdr[1] || d->hdr[2] || d->hdr[3])
        return -EBADMSG;
      uint32_t size = (uint32_t)d->hdr[4] << 24 | (uint32_t)d->hdr[5] << 16 |
                      (uint32_t)d->hdr[6] << 8 | d->hdr[7];
      if (size > LOGS_MAX_FRAME)
        return -ENOBUFS;
      d->stream = d->hdr[0];
      d->hdr_len = 0;
      d->need = size;
      buf_reset(&d->frame);
      if (size == 0 && (r = emit(ud, d->stream, NULL, 0)) < 0)
        return r;
      continue;
    }
    size_t k = MIN(n, (size_t)d->need);
    if ((r = buf_append(&d->frame, p, k)) < 0)
      return r;
    p += k;
    n -= k;
    d->need -= (uint32_t)k;
    if (d->need == 0) {
      r = emit(ud, d->stream, d->frame.data, d->frame.len);
      buf_reset(&d->frame);
      if (r < 0)
        return r;
    }
  }
  return 0;
}

const char *logs_channel_name(int stream) {
  switch (stream) {
  case 0:
    return "stdin";
  case 1:
    return "stdout";
  case 2:
    return "stderr";
  default:
    return "console";
  }
}

/* Length of the escape sequence starting with the ESC at p[0] (at least 1): CSI
 * (ESC [ params intermediates final), string controls (OSC, DCS, SOS, PM, APC: up to BEL or
 * ESC \\), and the others (ESC intermediates* final, e.g. ESC ( B). A malformed or cut-off
 * sequence yields what was read so far, so a lone ESC never reaches the output. */
static size_t ansi_len(const uint8_t *p, size_t n) {
  if (n < 2)
    return 1;
  if (p[1] == '[') {
    for (size_t i = 2; i < n; i++) {
      if (p[i] >= 0x40 && p[i] <= 0x7e)
        return i + 1;
      if (p[i] < 0x20 || p[i] > 0x3f)
        return i; /* malformed: drop what we have */
    }
    return n;
  }
  if (p[1] == ']' || p[1] == 'P' || p[1] == 'X' || p[1] == '^' || p[1] == '_') {
    for (size_t i = 2; i < n; i++) {
      if (p[i] == 0x07)
        return i + 1;
      if (p[i] == 0x1b)
        return i + 1 < n && p[i + 1] == '\\' ? i + 2 : i;
    }
    return n;
  }
  size_t i = 1;
  while (i < n && p[i] >= 0x20 && p[i] <= 0x2f)
    i++;
  if (i < n && p[i] >= 0x30 && p[i] <= 0x7e)
    return i + 1;
  return i;
}

int logs_utf8_lossy(const uint8_t *p, size_t n, bool strip_ansi, struct buf *out) {
  static const uint8_t repl[3] = {0xef, 0xbf, 0xbd};
  size_t i = 0;
  int r = 0;
  while (i < n && r >= 0) {
    uint8_t c = p[i];
    if (strip_ansi && c == 0x1b) {
      i += ansi_len(p + i, n - i);
      continue;
    }
    if (c < 0x80) {
      r = buf_append_u8(out, c);
      i++;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
      min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
      min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
      min = 0x10000;
    } else {
      r = buf_append(out, repl, 3);
      i++;
      continue;
    }
    bool ok = i + len <= n;
    for (size_t k = 1; ok && k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80)
        ok = false;
      else
        cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (ok && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)))
      ok = false;
    if (ok && strip_ansi && cp >= 0x80 && cp <= 0x9f) {
      i += len; /* C1 controls (e.g. U+009B, the 8-bit CSI) go with the escapes */
    } else if (ok) {
      r = buf_append(out, p + i, len);
      i += len;
    } else {
      r = buf_append(out, repl, 3);
      i++;
    }
  }
  return r;
}

int logs_format_item(const struct logs_params *p, int stream, const uint8_t *msg, size_t n,
                     struct buf *out) {
  _cleanup_buf_ struct buf m = BUF_INIT(4 * LOGS_MAX_FRAME + 16);
  int r = p->text ? logs_utf8_lossy(msg, n, !p->ansi, &m) : base64_encode_buf(msg, n, &m);
  if (r < 0)
    return r;
  if (p->bare)
    return buf_append(out, m.data, m.len);
  _cleanup_json_ json_t *o = json_object();
  json_t *s = json_stringn(m.len ? (const char *)m.data : "", m.len);
  if (!o || !s) {
    json_decref(s);
    return -ENOMEM;
  }
  if (json_object_set_new(o, "channel", json_string(logs_channel_name(stream))) < 0 ||
      json_object_set_new(o, "message", s) < 0)
    return -ENOMEM;
  if ((r = json_dump_buf(o, JSON_COMPACT, out)) < 0)
    return r;
  return buf_append_u8(out, '\n');
}

/* ---- the HTTP handler ---- */

#define LOGS_PENDING_MAX ((size_t)16 * 1024 * 1024)
#define LOGS_ERRBODY_MAX 4096

struct logs_req {
  struct tappd_server *srv;
  struct http_request *req;
  struct docker_stream *ds;
  struct logs_params p;
  struct logs_demux demux;
  struct buf pending;
  struct buf errbody;
  int docker_status;
  int busy;
  bool streaming; /* 200 sent, chunks follow */
  bool ended;     /* docker finished; end the stream once pending is out */
  bool done;      /* the request is no longer ours (answered or closed) */
};

static void lr_free(struct logs_req *lr) {
  docker_stream_free(lr->ds);
  logs_demux_free(&lr->demux);
  buf_free(&lr->pending);
  buf_free(&lr->errbody);
  free(lr);
}

static void lr_leave(struct logs_req *lr) {
  if (--lr->busy == 0 && lr->done)
    lr_free(lr);
}

static void on_client_close(void *ud) {
  struct logs_req *lr = ud;
  lr->done = true;
  lr->req = NULL;
  if (lr->busy == 0)
    lr_free(lr);
}

static void on_drain(void *ud);

/* The request's final call: it is the server's from here on. */
static void stream_finish(struct logs_req *lr) {
  (void)http_stream_end(lr->req);
  lr->done = true;
  lr->req = NULL;
}

/* Sends what is pending; ends the stream when docker is done, or when the stream is dead (the
 * server cut it off). <0 when the client is gone. */
static int flush(struct logs_req *lr) {
  if (lr->done)
    return -EPIPE;
  if (lr->pending.len) {
    int r = http_stream_write(lr->req, lr->pending.data, lr->pending.len);
    if (r == -EAGAIN) {
      docker_stream_pause(lr->ds, true);
      http_stream_on_drain(lr->req, on_drain, lr);
      return 0;
    }
    if (r < 0) {
      stream_finish(lr);
      return r;
    }
    buf_reset(&lr->pending);
  }
  if (lr->ended)
    stream_finish(lr);
  else
    docker_stream_pause(lr->ds, false);
  return 0;
}

static void on_drain(void *ud) {
  struct logs_req *lr = ud;
  lr->busy++;
  (void)flush(lr);
  lr_leave(lr);
}

static int emit_item(void *ud, int stream, const uint8_t *p, size_t n) {
  struct logs_req *lr = ud;
  return logs_format_item(&lr->p, stream, p, n, &lr->pending);
}

static int on_head(void *ud, int status, const char *ct) {
  struct logs_req *lr = ud;
  if (lr->done)
    return -ECANCELED;
  lr->docker_status = status;
  if (status != 200)
    return 0;
  logs_demux_free(&lr->demux);
  logs_demux_init(&lr->demux, ct);
  lr->busy++;
  (void)http_reply_header(lr->req, "X-Content-Type-Options", "nosniff");
  /* A stream now whatever this returns; a failed start (the server answered 500 or closed)
   * leaves a dead one: end it, and stop reading from docker. */
  int r = http_stream_start(lr->req, 200, "text/plain; charset=utf-8");
  if (r < 0)
    stream_finish(lr);
  else
    lr->streaming = true;
  lr_leave(lr);
  return r < 0 ? -ECANCELED : 0;
}

static int on_body(void *ud, const uint8_t *p, size_t n) {
  struct logs_req *lr = ud;
  if (lr->done)
    return -ECANCELED;
  if (!lr->streaming) {
    size_t k = MIN(n, LOGS_ERRBODY_MAX - MIN(lr->errbody.len, LOGS_ERRBODY_MAX));
    return k ? buf_append(&lr->errbody, p, k) : 0;
  }
  if (lr->pending.len > LOGS_PENDING_MAX)
    return -ENOBUFS;
  lr->busy++;
  int r = logs_demux_feed(&lr->demux, p, n, emit_item, lr);
  if (r >= 0)
    r = flush(lr);
  lr_leave(lr);
  return r;
}

static const char *docker_error_message(struct logs_req *lr) {
  static char msg[512];
  _cleanup_json_ json_t *j = NULL;
  const char *m = NULL;
  if (json_parse_buf((const char *)lr->errbody.data, lr->errbody.len, LOGS_ERRBODY_MAX, &j) == 0)
    (void)json_get_str(j, "message", &m);
  snprintf(msg, sizeof(msg), "%s", m ? m : "the container engine refused the request");
  return msg;
}

static void on_end(void *ud, int err) {
  struct logs_req *lr = ud;
  if (lr->done)
    return;
  lr->busy++;
  if (lr->streaming) {
    const char *what = NULL;
    if (err == -ENOBUFS)
      what = "log frame too large";
    else if (err == -EBADMSG)
      what = "malformed log stream from the container engine";
    else if (err < 0)
      what = "log stream from the container engine broke off";
    else if (logs_demux_partial(&lr->demux))
      what = "log stream ended inside a frame";
    if (what)
      (void)buf_printf(&lr->pending, "{\"error\":\"%s\"}", what);
    lr->ended = true;
    (void)flush(lr);
  } else {
    int status;
    const char *msg;
    if (lr->docker_status == 404) {
      status = 404;
      msg = docker_error_message(lr);
    } else if (lr->docker_status == 400) {
      status = 400;
      msg = docker_error_message(lr);
    } else {
      status = 502;
      msg = lr->docker_status ? docker_error_message(lr) : "the container engine did not answer";
    }
    (void)http_reply_error(lr->req, status, "%s", msg);
    lr->done = true;
    lr->req = NULL;
  }
  lr_leave(lr);
}

static int query_get(void *ud, const char *name, char **ret) {
  return http_request_query_get(ud, name, ret);
}

void logs_http_handler(struct http_request *req, void *ud) {
  struct tappd_server *srv = ud;
  const char *m = http_request_method(req);
  if (!str_eq(m, "GET") && !str_eq(m, "HEAD")) {
    (void)http_reply_header(req, "Allow", "GET, HEAD");
    (void)http_reply_error(req, 405, "method not allowed");
    return;
  }
  if (!srv->t->public_logs) {
    (void)http_reply_error(req, 403, "logs are not public for this app (public_logs is off)");
    return;
  }
  const char *name = str_after_prefix(http_request_path(req), "/logs/");
  if (!name || !logs_container_name_valid(name)) {
    (void)http_reply_error(req, 400, "invalid container name");
    return;
  }
  struct logs_params p;
  char err[160];
  if (logs_params_parse(query_get, req, (int64_t)time(NULL), &p, err, sizeof(err)) < 0) {
    (void)http_reply_error(req, 400, "%s", err);
    return;
  }
  _cleanup_buf_ struct buf target = BUF_INIT(1024);
  if (logs_docker_target(name, &p, &target) < 0 || buf_terminate(&target) < 0) {
    (void)http_reply_error(req, 400, "invalid container name");
    return;
  }
  struct logs_req *lr = calloc(1, sizeof(*lr));
  if (!lr) {
    (void)http_reply_error(req, 500, "out of memory");
    return;
  }
  lr->srv = srv;
  lr->req = req;
  lr->p = p;
  buf_init(&lr->pending, LOGS_PENDING_MAX + 4 * LOGS_MAX_FRAME + 4096);
  buf_init(&lr->errbody, LOGS_ERRBODY_MAX);
  logs_demux_init(&lr->demux, NULL);
  static const struct docker_stream_cbs cbs = {.on_head = on_head, .on_body = on_body,
                                               .on_end = on_end};
  int r = docker_stream_open(srv->base, srv->t->cfg->docker_socket, (const char *)target.data,
                             &cbs, lr, &lr->ds);
  if (r < 0) {
    lr_free(lr);
    (void)http_reply_error(req, 502, "cannot reach the container engine: %s", strerror(-r));
    return;
  }
  http_request_on_close(req, on_client_close, lr);
}

/* Docker Engine API over the unix socket. */
#include "tappd_docker.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/str.h"

#define HEAD_TIMEOUT_S 10
#define MAX_CHUNK_LINE 64

void docker_containers_free(struct docker_container *c, size_t n) {
  if (!c)
    return;
  for (size_t i = 0; i < n; i++) {
    free(c[i].id);
    strv_free(c[i].names);
    free(c[i].image);
    free(c[i].image_id);
    free(c[i].command);
    free(c[i].state);
    free(c[i].status);
  }
  free(c);
}

static int dup_str(const json_t *o, const char *key, char **ret) {
  const char *s = "";
  int r = json_get_str(o, key, &s);
  if (r < 0 && r != -ENOENT)
    return -EBADMSG;
  *ret = strdup(r == 0 ? s : "");
  return *ret ? 0 : -ENOMEM;
}

int docker_containers_parse(const char *json, size_t len, struct docker_container **ret,
                            size_t *ret_n) {
  _cleanup_json_ json_t *j = NULL;
  int r = json_parse_buf(json, len, DOCKER_MAX_LIST, &j);
  if (r < 0)
    return r == -ENOBUFS ? r : -EBADMSG;
  if (!json_is_array(j))
    return -EBADMSG;
  size_t n = json_array_size(j);
  if (n > DOCKER_MAX_CONTAINERS)
    return -ENOBUFS;
  struct docker_container *cs = calloc(n ? n : 1, sizeof(*cs));
  if (!cs)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const json_t *o = json_array_get(j, i);
    struct docker_container *c = &cs[i];
    if (!json_is_object(o)) {
      r = -EBADMSG;
      goto fail;
    }
    if ((r = dup_str(o, "Id", &c->id)) < 0 || (r = dup_str(o, "Image", &c->image)) < 0 ||
        (r = dup_str(o, "ImageID", &c->image_id)) < 0 ||
        (r = dup_str(o, "Command", &c->command)) < 0 || (r = dup_str(o, "State", &c->state)) < 0 ||
        (r = dup_str(o, "Status", &c->status)) < 0)
      goto fail;
    int64_t created = 0;
    r = json_get_i64(o, "Created", &created);
    if (r < 0 && r != -ENOENT) {
      r = -EBADMSG;
      goto fail;
    }
    c->created = created;
    json_t *names = NULL;
    r = json_get_array(o, "Names", &names);
    if (r < 0 && r != -ENOENT) {
      r = -EBADMSG;
      goto fail;
    }
    if ((c->names = calloc(1, sizeof(char *))) == NULL) {
      r = -ENOMEM;
      goto fail;
    }
    for (size_t k = 0; names && k < json_array_size(names); k++) {
      const char *s = json_string_value(json_array_get(names, k));
      if (!s) {
        r = -EBADMSG;
        goto fail;
      }
      if ((r = strv_push_dup(&c->names, s)) < 0)
        goto fail;
    }
  }
  *ret = cs;
  *ret_n = n;
  return 0;
fail:
  docker_containers_free(cs, n);
  return r;
}

/* ---- incremental HTTP/1.1 response reader ---- */

void http_resp_parser_init(struct http_resp_parser *p) {
  memset(p, 0, sizeof(*p));
  buf_init(&p->line, DOCKER_MAX_HEAD);
}

void http_resp_parser_free(struct http_resp_parser *p) {
  buf_free(&p->line);
}

bool http_resp_parser_done(const struct http_resp_parser *p) {
  return p->state == HRS_DONE;
}

static int parse_status(struct http_resp_parser *p, const char *l) {
  /* "HTTP/1.x SSS reason" */
  if (strncmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ')
    return -EBADMSG;
  if (l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9' ||
      (l[12] != ' ' && l[12] != 0))
    return -EBADMSG;
  p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
  return 0;
}

static int parse_header(struct http_resp_parser *p, char *l) {
  char *colon = strchr(l, ':');
  if (!colon || colon == l)
    return -EBADMSG;
  *colon = 0;
  for (char *c = l; *c; c++)
    if (*c == ' ' || *c == '\t')
      return -EBADMSG;
  char *v = str_strip(colon + 1);
  if (strcasecmp(l, "Content-Length") == 0) {
    uint64_t n;
    if (str_to_u64(v, &n) < 0 || (p->have_length && p->remaining != n))
      return -EBADMSG;
    p->have_length = true;
    p->remaining = n;
  } else if (strcasecmp(l, "Transfer-Encoding") == 0) {
    if (strcasecmp(v, "chunked") != 0)
      return -EBADMSG; /* nothing else is used by the engine */
    p->chunked = true;
  } else if (strcasecmp(l, "Content-Type") == 0) {
    snprintf(p->content_type, sizeof(p->content_type), "%s", v);
  }
  return 0;
}

static int head_done(struct http_resp_parser *p, const struct http_resp_cbs *cbs, void *ud) {
  if (p->status >= 100 && p->status < 200) {
    /* Interim response: start over. */
    p->state = HRS_STATUS;
    p->have_length = p->chunked = false;
    p->content_type[0] = 0;
    return 0;
  }
  if (cbs->on_head) {
    int r = cbs->on_head(ud, p->status, p->content_type[0] ? p->content_type : NULL);
    if (r < 0)
      return r;
  }
  if (p->status == 204 || p->status == 304)
    p->state = HRS_DONE;
  else if (p->chunked)
    p->state = HRS_CHUNK_SIZE;
  else if (p->have_length)
    p->state = p->remaining ? HRS_BODY_LENGTH : HRS_DONE;
  else
    p->state = HRS_BODY_EOF;
  return 0;
}

/* Collects one CRLF (or LF) terminated line; returns 1 with the line in p->line (NUL-terminated,
 * without the line end), 0 when more input is needed. *used = bytes consumed. */
static int take_line(struct http_resp_parser *p, const uint8_t *d, size_t len, size_t cap,
                     size_t *used) {
  const uint8_t *nl = memchr(d, '\n', len);
  size_t n = nl ? (size_t)(nl - d) + 1 : len;
  if (p->line.len + n > cap)
    return -ENOBUFS;
  int r = buf_append(&p->line, d, n);
  if (r < 0)
    return r;
  *used = n;
  if (!nl)
    return 0;
  p->line.len--; /* '\n' */
  if (p->line.len && p->line.data[p->line.len - 1] == '\r')
    p->line.len--;
  if (memchr(p->line.data, 0, p->line.len))
    return -EBADMSG;
  r = buf_terminate(&p->line);
  return r < 0 ? r : 1;
}

int http_resp_parser_feed(struct http_resp_parser *p, const uint8_t *data, size_t len,
                          const struct http_resp_cbs *cbs, void *ud) {
  while (len > 0) {
    size_t used = 0;
    int r;
    switch (p->state) {
    case HRS_STATUS:
    case HRS_HEADERS:
    case HRS_TRAILER: {
      size_t cap = DOCKER_MAX_HEAD - MIN(p->head_bytes, DOCKER_MAX_HEAD);
      r = take_line(p, data, len, cap, &used);
      if (r < 0)
        return r;
      p->head_bytes += used;
      if (r == 1) {
        char *l = (char *)p->line.data;
        if (p->state == HRS_STATUS) {
          if ((r = parse_status(p, l)) < 0)
            return r;
          p->state = HRS_HEADERS;
        } else if (p->state == HRS_TRAILER) {
          if (!*l)
            p->state = HRS_DONE;
        } else if (!*l) {
          if ((r = head_done(p, cbs, ud)) < 0)
            return r;
          if (p->state == HRS_STATUS)
            p->head_bytes = 0;
        } else if ((r = parse_header(p, l)) < 0) {
          return r;
        }
        buf_reset(&p->line);
      }
      break;
    }
    case HRS_CHUNK_SIZE:
    case HRS_CHUNK_CRLF: {
      r = take_line(p, data, len, MAX_CHUNK_LINE, &used);
      if (r < 0)
        return r == -ENOBUFS ? -EBADMSG : r;
      if (r == 1) {
        char *l = (char *)p->line.data;
        if (p->state == HRS_CHUNK_CRLF) {
          if (*l)
            return -EBADMSG;
          p->state = HRS_CHUNK_SIZE;
        } else {
          char *semi = strchr(l, ';'); /* chunk extensions are ignored */
          if (semi)
            *semi = 0;
          uint64_t n;
          char *s = str_strip(l);
          if (!*s || strlen(s) > 15 || str_to_u64_base(s, 16, &n) < 0)
            return -EBADMSG;
          p->remaining = n;
          p->state = n ? HRS_CHUNK_DATA : HRS_TRAILER;
        }
        buf_reset(&p->line);
      }
      break;
    }
    case HRS_BODY_LENGTH:
    case HRS_CHUNK_DATA:
    case HRS_BODY_EOF: {
      size_t n = len;
      if (p->state != HRS_BODY_EOF && n > p->remaining)
        n = (size_t)p->remaining;
      if (cbs->on_body && (r = cbs->on_body(ud, data, n)) < 0)
        return r;
      used = n;
      if (p->state != HRS_BODY_EOF) {
        p->remaining -= n;
        if (!p->remaining)
          p->state = p->state == HRS_CHUNK_DATA ? HRS_CHUNK_CRLF : HRS_DONE;
      }
      break;
    }
    case HRS_DONE:
      return 0; /* trailing bytes after a complete response are ignored */
    }
    data += used;
    len -= used;
  }
  return 0;
}

int http_resp_parser_eof(struct http_resp_parser *p) {
  if (p->state == HRS_BODY_EOF)
    p->state = HRS_DONE;
  return p->state == HRS_DONE ? 0 : -EPIPE;
}

/* ---- streaming GET on libevent ---- */

struct docker_stream {
  struct bufferevent *bev;
  struct http_resp_parser parser;
  struct docker_stream_cbs cbs;
  void *ud;
  int in_cb;
  bool dead, ended, paused, eof;
};

static void stream_destroy(struct docker_stream *s) {
  if (s->bev)
    bufferevent_free(s->bev);
  http_resp_parser_free(&s->parser);
  free(s);
}

static int s_on_head(void *ud, int status, const char *ct) {
  struct docker_stream *s = ud;
  if (s->bev)
    bufferevent_set_timeouts(s->bev, NULL, NULL); /* follow streams may idle forever */
  return s->cbs.on_head ? s->cbs.on_head(s->ud, status, ct) : 0;
}

static int s_on_body(void *ud, const uint8_t *p, size_t n) {
  struct docker_stream *s = ud;
  if (s->dead)
    return -ECANCELED;
  return s->cbs.on_body ? s->cbs.on_body(s->ud, p, n) : 0;
}

static void finish(struct docker_stream *s, int err) {
  if (s->ended || s->dead)
    return;
  s->ended = true;
  bufferevent_disable(s->bev, EV_READ | EV_WRITE);
  if (s->cbs.on_end)
    s->cbs.on_end(s->ud, err);
}

static void process(struct docker_stream *s) {
  static const struct http_resp_cbs cbs = {.on_head = s_on_head, .on_body = s_on_body};
  struct evbuffer *in = bufferevent_get_input(s->bev);
  while (!s->dead && !s->ended && !s->paused && evbuffer_get_length(in) > 0) {
    size_t n = evbuffer_get_contiguous_space(in);
    uint8_t *p = evbuffer_pullup(in, (ssize_t)n);
    if (!p) {
      finish(s, -ENOMEM);
      break;
    }
    int r = http_resp_parser_feed(&s->parser, p, n, &cbs, s);
    if (!s->dead)
      evbuffer_drain(in, n);
    if (r < 0)
      finish(s, r);
    else if (http_resp_parser_done(&s->parser))
      finish(s, 0);
  }
  if (s->eof && !s->dead && !s->ended && !s->paused && evbuffer_get_length(in) == 0)
    finish(s, http_resp_parser_eof(&s->parser));
}

static void on_read(struct bufferevent *bev, void *ud) {
  (void)bev;
  struct docker_stream *s = ud;
  s->in_cb++;
  process(s);
  s->in_cb--;
  if (s->dead && !s->in_cb)
    stream_destroy(s);
}

static void on_event(struct bufferevent *bev, short what, void *ud) {
  (void)bev;
  struct docker_stream *s = ud;
  s->in_cb++;
  if (what & BEV_EVENT_EOF) {
    s->eof = true;
    process(s);
  } else if (what & BEV_EVENT_TIMEOUT) {
    finish(s, -ETIMEDOUT);
  } else if (what & BEV_EVENT_ERROR) {
    finish(s, -EIO);
  }
  s->in_cb--;
  if (s->dead && !s->in_cb)
    stream_destroy(s);
}

int docker_stream_open(struct event_base *base, const char *sock, const char *target,
                       const struct docker_stream_cbs *cbs, void *ud,
                       struct docker_stream **ret) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (!sock || strlen(sock) >= sizeof(sun.sun_path))
    return -ENAMETOOLONG;
  if (!target || target[0] != '/' || strpbrk(target, " \r\n"))
    return -EINVAL;
  memcpy(sun.sun_path, sock, strlen(sock));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 && errno != EINPROGRESS) {
    int r = -errno;
    close(fd);
    return r;
  }
  struct docker_stream *s = calloc(1, sizeof(*s));
  if (!s) {
    close(fd);
    return -ENOMEM;
  }
  http_resp_parser_init(&s->parser);
  s->cbs = *cbs;
  s->ud = ud;
  s->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (!s->bev) {
    close(fd);
    stream_destroy(s);
    return -ENOMEM;
  }
  bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
  struct timeval tv = {.tv_sec = HEAD_TIMEOUT_S};
  bufferevent_set_timeouts(s->bev, &tv, &tv);
  if (evbuffer_add_printf(bufferevent_get_output(s->bev),
                          "GET %s HTTP/1.1\r\nHost: docker\r\nUser-Agent: tappd\r\n"
                          "Connection: close\r\n\r\n",
                          target) < 0 ||
      bufferevent_enable(s->bev, EV_READ | EV_WRITE) < 0) {
    stream_destroy(s);
    return -ENOMEM;
  }
  *ret = s;
  return 0;
}

void docker_stream_pause(struct docker_stream *s, bool paused) {
  if (!s || s->dead || s->ended || s->paused == paused)
    return;
  s->paused = paused;
  if (paused) {
    bufferevent_disable(s->bev, EV_READ);
  } else {
    bufferevent_enable(s->bev, EV_READ);
    /* Input already buffered is processed without waiting for new bytes. */
    bufferevent_trigger(s->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
  }
}

void docker_stream_free(struct docker_stream *s) {
  if (!s)
    return;
  if (s->in_cb) {
    s->dead = true;
    if (s->bev)
      bufferevent_disable(s->bev, EV_READ | EV_WRITE);
    return;
  }
  stream_destroy(s);
}

/* ---- asynchronous container list ---- */

struct docker_list {
  struct docker_stream *ds;
  struct event *timer;
  struct buf body;
  int status;
  docker_list_fn fn;
  void *ud;
};

static void list_destroy(struct docker_list *l) {
  docker_stream_free(l->ds); /* deferred when called from inside the stream's callbacks */
  if (l->timer)
    event_free(l->timer);
  buf_free(&l->body);
  free(l);
}

/* Hands the result to the caller and frees l. */
static void list_complete(struct docker_list *l, int err) {
  struct docker_container *cs = NULL;
  size_t n = 0;
  if (err == 0 && l->status != 200)
    err = l->status == 0 ? -EPROTO : -EIO;
  if (err == 0)
    err = docker_containers_parse((const char *)l->body.data, l->body.len, &cs, &n);
  docker_list_fn fn = l->fn;
  void *ud = l->ud;
  list_destroy(l);
  fn(ud, err, cs, n);
}

static int list_on_head(void *ud, int status, const char *ct) {
  (void)ct;
  struct docker_list *l = ud;
  l->status = status;
  return 0;
}

static int list_on_body(void *ud, const uint8_t *p, size_t n) {
  struct docker_list *l = ud;
  return buf_append(&l->body, p, n); /* -ENOBUFS past DOCKER_MAX_LIST ends the stream */
}

static void list_on_end(void *ud, int err) {
  list_complete(ud, err);
}

static void list_on_timeout(evutil_socket_t fd, short what, void *ud) {
  (void)fd;
  (void)what;
  list_complete(ud, -ETIMEDOUT);
}

int docker_list_containers_async(struct event_base *base, const char *sock, long timeout_ms,
                                 docker_list_fn fn, void *ud, struct docker_list **ret) {
  if (!base || !fn || !ret || timeout_ms <= 0)
    return -EINVAL;
  struct docker_list *l = calloc(1, sizeof(*l));
  if (!l)
    return -ENOMEM;
  buf_init(&l->body, DOCKER_MAX_LIST);
  l->fn = fn;
  l->ud = ud;
  l->timer = evtimer_new(base, list_on_timeout, l);
  struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  if (!l->timer || evtimer_add(l->timer, &tv) < 0) {
    list_destroy(l);
    return -ENOMEM;
  }
  static const struct docker_stream_cbs cbs = {
      .on_head = list_on_head, .on_body = list_on_body, .on_end = list_on_end};
  int r = docker_stream_open(base, sock, "/containers/json?all=true", &cbs, l, &l->ds);
  if (r < 0) {
    list_destroy(l);
    return r;
  }
  *ret = l;
  return 0;
}

void docker_list_cancel(struct docker_list *l) {
  if (l)
    list_destroy(l);
}

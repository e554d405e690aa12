/* Docker Engine API client over its unix socket, never blocking the event loop: an incremental
 * HTTP/1.1 response reader, a libevent stream (/containers/<name>/logs) and the container list
 * on top of it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct event_base;

#define DOCKER_MAX_LIST ((size_t)8 * 1024 * 1024)
#define DOCKER_MAX_HEAD ((size_t)64 * 1024)
#define DOCKER_MAX_CONTAINERS 4096

struct docker_container {
  char *id;
  char **names; /* NULL-terminated, as Docker gives them ("/name") */
  char *image;
  char *image_id;
  char *command;
  int64_t created;
  char *state;
  char *status;
};

void docker_containers_free(struct docker_container *c, size_t n);
/* Parses the JSON array of GET /containers/json. */
int docker_containers_parse(const char *json, size_t len, struct docker_container **ret,
                            size_t *ret_n);

/* Incremental HTTP/1.1 response reader (status line, headers, then a Content-Length, chunked,
 * or close-delimited body). Caps: head DOCKER_MAX_HEAD, chunk-size lines 64 bytes. */
struct http_resp_cbs {
  /* Once, after the head. content_type may be NULL. Return <0 to stop. */
  int (*on_head)(void *ud, int status, const char *content_type);
  /* Body bytes (chunked encoding removed). Return <0 to stop. */
  int (*on_body)(void *ud, const uint8_t *p, size_t n);
};

enum http_resp_state {
  HRS_STATUS,
  HRS_HEADERS,
  HRS_BODY_LENGTH,
  HRS_BODY_EOF,
  HRS_CHUNK_SIZE,
  HRS_CHUNK_DATA,
  HRS_CHUNK_CRLF,
  HRS_TRAILER,
  HRS_DONE,
};

struct http_resp_parser {
  enum http_resp_state state;
  struct buf line; /* partial line */
  size_t head_bytes;
  int status;
  char content_type[128];
  bool chunked;
  bool have_length;
  uint64_t remaining; /* body bytes left (length) or in the current chunk */
};

void http_resp_parser_init(struct http_resp_parser *p);
void http_resp_parser_free(struct http_resp_parser *p);
/* Feeds bytes; -EBADMSG malformed, -ENOBUFS over a cap, or a callback's error. */
int http_resp_parser_feed(struct http_resp_parser *p, const uint8_t *data, size_t len,
                          const struct http_resp_cbs *cbs, void *ud);
/* The connection closed: 0 when the response is complete (or close-delimited), else -EPIPE. */
int http_resp_parser_eof(struct http_resp_parser *p);
bool http_resp_parser_done(const struct http_resp_parser *p);

/* A streaming GET over the docker socket on a libevent base. */
struct docker_stream;
struct docker_stream_cbs {
  int (*on_head)(void *ud, int status, const char *content_type);
  int (*on_body)(void *ud, const uint8_t *p, size_t n);
  /* Exactly once: err 0 = response complete, else a negative errno. The stream may be freed
   * from inside any callback. */
  void (*on_end)(void *ud, int err);
};
int docker_stream_open(struct event_base *base, const char *sock, const char *target,
                       const struct docker_stream_cbs *cbs, void *ud,
                       struct docker_stream **ret);
void docker_stream_pause(struct docker_stream *s, bool paused);
void docker_stream_free(struct docker_stream *s);

/* GET /containers/json?all=true on sock, on base. fn runs exactly once, on the loop and never
 * from inside this call, with err 0 and the containers (fn owns them: docker_containers_free),
 * or err < 0 (-ETIMEDOUT after timeout_ms in total, -EIO for a non-200 answer, -EBADMSG /
 * -ENOBUFS for a bad or oversized list, -EPIPE / -EIO when the connection broke) and cs NULL.
 * The handle is gone once fn runs. A socket that cannot be connected at once fails here
 * (-ENOENT, -ECONNREFUSED, ...) without fn. */
#define DOCKER_LIST_TIMEOUT_MS 5000L
struct docker_list;
typedef void (*docker_list_fn)(void *ud, int err, struct docker_container *cs, size_t n);
int docker_list_containers_async(struct event_base *base, const char *sock, long timeout_ms,
                                 docker_list_fn fn, void *ud, struct docker_list **ret);
/* Stops a pending list; fn will not run. */
void docker_list_cancel(struct docker_list *l);

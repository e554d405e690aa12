/* GET /logs/<container>: parameters, Docker stream demultiplexing and output items.
 *
 * Query: since, until (unix seconds or relative 30s|5m|2h|1d before now; default: no limit),
 * tail (number or "all"; default 1000), and the flags follow, text, timestamps, bare, ansi.
 * Each Docker log frame becomes one item: message = the bytes as UTF-8 (invalid sequences
 * replaced, ANSI escapes stripped unless ansi) with text, else standard base64; bare: just the
 * message; otherwise {"channel":"stdout|stderr|stdin|console","message":...} + "\n". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct http_request;
struct tappd;
struct event_base;

#define LOGS_MAX_NAME 255
#define LOGS_MAX_FRAME ((size_t)1024 * 1024)
#define LOGS_DEFAULT_TAIL "1000"

/* [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most LOGS_MAX_NAME bytes. */
bool logs_container_name_valid(const char *name);

/* Unix seconds ("1700000000") or a relative time ("30s", "5m", "2h", "1d") before now. */
int logs_parse_time(const char *s, int64_t now, int64_t *ret);

struct logs_params {
  int64_t since, until; /* 0 = none */
  char tail[24];        /* digits or "all" */
  bool follow, text, timestamps, bare, ansi;
};

/* Reads the query through get(ud, name, &value) (-ENOENT when absent, value allocated).
 * -EINVAL with a message for bad values. */
typedef int (*logs_query_fn)(void *ud, const char *name, char **ret_value);
int logs_params_parse(logs_query_fn get, void *ud, int64_t now, struct logs_params *ret,
                      char *err, size_t errlen);

/* The Docker API target: /containers/<name>/logs?stdout=1&stderr=1&... */
int logs_docker_target(const char *name, const struct logs_params *p, struct buf *out);

/* Demultiplexes the Docker log stream: 8-byte headers {stream u8, 0,0,0, size u32 BE} unless
 * the stream is raw (TTY containers: content type application/vnd.docker.raw-stream and a first
 * byte that is not a stream number), where every read becomes one "console" item. */
enum logs_demux_mode {
  LOGS_DEMUX_AUTO,
  LOGS_DEMUX_FRAMED,
  LOGS_DEMUX_RAW,
};
struct logs_demux {
  enum logs_demux_mode mode;
  uint8_t hdr[8];
  size_t hdr_len;
  uint32_t need; /* payload bytes left of the current frame */
  int stream;
  struct buf frame;
};
typedef int (*logs_emit_fn)(void *ud, int stream, const uint8_t *p, size_t n);
void logs_demux_init(struct logs_demux *d, const char *content_type);
void logs_demux_free(struct logs_demux *d);
/* -EBADMSG bad stream type, -ENOBUFS frame over LOGS_MAX_FRAME, or emit's error. */
int logs_demux_feed(struct logs_demux *d, const uint8_t *p, size_t n, logs_emit_fn emit, void *ud);
/* True when a frame is incomplete (the stream ended mid-frame). */
bool logs_demux_partial(const struct logs_demux *d);

/* Channel names: 0 stdin, 1 stdout, 2 stderr, -1 console (raw). */
const char *logs_channel_name(int stream);
/* One output item appended to out. */
int logs_format_item(const struct logs_params *p, int stream, const uint8_t *msg, size_t n,
                     struct buf *out);
/* UTF-8 with invalid sequences replaced by U+FFFD. strip_ansi: escape sequences (CSI, OSC and
 * the other string controls, ESC intermediates final) and C1 controls are removed, and no ESC
 * byte is left (a cut-off sequence is dropped). */
int logs_utf8_lossy(const uint8_t *p, size_t n, bool strip_ansi, struct buf *out);

/* The HTTP handler of /logs/<name> (async: streams from the Docker socket). */
void logs_http_handler(struct http_request *req, void *ud /* struct tappd_server */);

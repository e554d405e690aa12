/* HTTP/1.1 server on libevent bufferevents: TCP, unix sockets, TLS and mutual TLS.
 *
 * Design: libevent provides the loop, listeners and (OpenSSL) bufferevents; the HTTP/1.1 request
 * parser and connection state machine are our own (http_parse.c, http_server.c) and fuzzed
 * (tests/fuzz/fuzz_http_request.c). evhttp 2.1 was not used because it cannot meet the limits we
 * need: no connection cap, no total request deadline (its timeout restarts on every byte, so a
 * slow-loris client is never cut off), 413 instead of 431 for oversized headers, HTML error
 * bodies, and no way to feed it a connected fd (fuzzing).
 *
 * Behaviour:
 *  - One event_base (the caller's), single-threaded; every call below must happen on the thread
 *    running that base.
 *  - Keep-alive (HTTP/1.1 default; HTTP/1.0 with "Connection: keep-alive"), "Connection: close",
 *    pipelined requests (answered in order, one at a time), HEAD (the body is not sent, the
 *    Content-Length is that of the body the handler passed), Expect: 100-continue.
 *  - Request bodies with Content-Length or "Transfer-Encoding: chunked" (reassembled; every
 *    chunk-size line, chunk data and trailer line must end in CRLF: a bare LF is 400).
 *  - HTTP/1.1 requests must carry exactly one Host field (RFC 9112 §3.2): 400 otherwise.
 *  - Every non-stream reply carries Content-Length (except 1xx/204/304, which have no body).
 *    Streams use chunked encoding (HTTP/1.1 clients) or a close-delimited body (HTTP/1.0).
 *  - Errors produced by the server itself are JSON {"error":"..."} with Content-Length. 404 (no
 *    route) keeps the connection; after the others it is closed: 400 malformed, 408 request not
 *    received within request_timeout_s, 413 body over max_body, 414 path over URL_PATH_MAX,
 *    417 unknown Expect, 431 request line + headers over max_header (or more than
 *    HTTP_SERVER_MAX_HEADERS fields), 500 an answer the handler asked for that could not be
 *    sent ("Request lifetime" below), 501 unknown Transfer-Encoding, 503 the handler did not
 *    answer within handler_timeout_s, 505 HTTP version other than 1.0/1.1, 503 when a new
 *    connection finds no room (below; plain TCP and unix; on TLS listeners it is closed
 *    without a reply).
 *  - HEAD: handlers answer as for GET; the server sends the headers only (for streams too).
 *  - Timeouts: handshake_timeout_s from accept until the TLS handshake is done and the first
 *    byte of the first request arrived (empty lines do not count; never longer than
 *    idle_timeout_s); idle_timeout_s between requests on a kept-alive connection;
 *    request_timeout_s from the first byte of a request until its last body byte (total, not
 *    per read: a slow-loris client is cut off); write_timeout_s when the client does not read
 *    what we send; handler_timeout_s from handing a request to its handler until the
 *    handler answers (http_reply* or http_stream_start; a stream, once started, is not timed).
 *  - Connection limits, checked when a connection is accepted (or added). "Idle" means waiting
 *    for the first byte of the first request (TLS handshake included), between requests, or
 *    lingering after the last reply; a connection with a request in progress (being read, in
 *    the handler, being answered, a stream) is never closed to make room.
 *    1. max_conns_per_source: connections one source may hold open; a source is an IPv4
 *       address or an IPv6 /64 (IPv4-mapped IPv6 addresses count as IPv4). When a source at
 *       its cap opens another, that source's own connection idle the longest is closed and the
 *       new one admitted: many clients share one address (CVMs behind a host's NAT, every
 *       client of tappd's port behind tproxy), and one of them holding the source's share in
 *       idle connections must not keep the others out. Only when none of the source's
 *       connections is idle does the new one get 503 {"error":"too many connections from this
 *       address"} (TLS: closed) at once. A source never closes another source's connections
 *       for this. Unix sockets and other non-IP peers are exempt (local, gated by file
 *       permissions); they count toward max_conns only.
 *    2. max_conns over all listeners: when full, the connection idle the longest (of any
 *       source) is closed to make room. Only when none is idle does the new connection get
 *       503 {"error":"too many connections"} (TLS: closed).
 *    So idle connections cannot keep others out: they give way to new ones, and a silent one
 *    lasts handshake_timeout_s at most. To keep others out a peer needs requests in progress,
 *    at most max_conns_per_source per address, each read within request_timeout_s; a peer
 *    sharing an address with others can still cycle out their connections that have not sent
 *    a first byte yet by opening more than max_conns_per_source within one handshake.
 *    Refusals and evictions are logged at debug level, at most one line per second.
 *
 * Request lifetime and ownership. A handler gets a request and answers it, at once or later
 * (async), with one final call: http_reply, http_reply_json or http_reply_error, or
 * http_stream_start + http_stream_write... + http_stream_end.
 *  - The final call takes the request on every path: after http_reply* (on a request that is
 *    not a stream) or http_stream_end returns, whatever it returned, the request is gone and
 *    must not be touched. When the answer cannot be sent as asked (bad argument, out of memory)
 *    the server sends a fixed 500 {"error":"internal error"} if nothing was sent yet and closes
 *    the connection after what is queued; the result says what went wrong, but there is nothing
 *    to clean up or to answer again. So handlers may ignore these results.
 *  - http_stream_start makes the request a stream whatever it returns (on failure a dead one,
 *    see below); a stream is finished only by http_stream_end. http_stream_write: 0, -EAGAIN
 *    (nothing queued; wait for the drain callback), or another error after which the stream is
 *    dead (cut off, connection closing): write no more and end it. Reply calls on a stream and
 *    stream calls on a request that is not one are refused (-EINVAL) and change nothing.
 *  - The connection can end before the handler's final call: the client went away (EOF, even a
 *    half-close; socket error; write timeout), the handler deadline passed (the server answers
 *    503 itself), or the server is freed. Then:
 *      with a close callback (http_request_on_close), the callback runs and the request is
 *      freed when it returns: the handler must drop its pointer in the callback (stop its work)
 *      and never touch the request again;
 *      without one, the request stays allocated but dead: accessors still work, the other calls
 *      do nothing and return -EPIPE, and the handler's final call (which it owes anyway) frees
 *      it. So a late answer is always safe. A handler that may never answer (cancelled work)
 *      or a stream producer waiting for the drain callback must set a close callback.
 *    The close callback never runs for an end the handler's own call caused (a failed
 *    http_stream_start or http_stream_write leaves a dead stream the handler ends itself).
 *
 * Errors: 0 or negative errno: -EINVAL bad argument or wrong state, -ENOMEM, -EADDRINUSE/
 * -EACCES/... from bind, -ENAMETOOLONG unix path, -EEXIST non-socket file at a unix path,
 * -EAGAIN stream output over its cap (wait for the drain callback), -EPIPE the request is dead
 * (or inside its close callback).
 *
 * Signals: writing to a peer that went away raises SIGPIPE where libevent (writev) or OpenSSL
 * (write) send, and Linux has no per-socket way to stop that. The library leaves signal
 * dispositions alone: a process serving HTTP must ignore SIGPIPE itself, once, in main (the
 * daemons do, through daemon_start() in lib/daemon). */
#pragma once

#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/macro.h"

struct event_base;
struct url_query;

struct http_server;
struct http_request;

#define HTTP_SERVER_DEFAULT_MAX_BODY ((size_t)10 * 1024 * 1024)
#define HTTP_SERVER_DEFAULT_MAX_HEADER ((size_t)64 * 1024)
#define HTTP_SERVER_DEFAULT_IDLE_TIMEOUT_S 60u
#define HTTP_SERVER_DEFAULT_REQUEST_TIMEOUT_S 30u
#define HTTP_SERVER_DEFAULT_WRITE_TIMEOUT_S 60u
#define HTTP_SERVER_DEFAULT_MAX_CONNS 1024u
#define HTTP_SERVER_DEFAULT_HANDSHAKE_TIMEOUT_S 5u
#define HTTP_SERVER_DEFAULT_HANDLER_TIMEOUT_S 60u
/* Default max_conns_per_source: max_conns / 8, at least 8, at most max_conns. */
#define HTTP_SERVER_DEFAULT_SOURCE_SHARE 8u
#define HTTP_SERVER_DEFAULT_MIN_PER_SOURCE 8u
#define HTTP_SERVER_DEFAULT_STREAM_BUFFER ((size_t)1024 * 1024)
/* Header fields per request (more: 431). */
#define HTTP_SERVER_MAX_HEADERS 100

/* Zero in any field means its default above. */
struct http_server_config {
  size_t max_body;            /* request body bytes (decoded, for chunked) */
  size_t max_header;          /* request line + header fields, bytes; also caps chunked trailers */
  unsigned idle_timeout_s;    /* kept-alive connection waiting for the next request */
  unsigned request_timeout_s; /* first byte of a request .. its complete body */
  unsigned max_conns;         /* open connections over all listeners */
  unsigned write_timeout_s;   /* no write progress while output is pending */
  size_t stream_buffer;       /* queued stream output past which http_stream_write is -EAGAIN */
  unsigned handshake_timeout_s;  /* accept .. TLS handshake done and first request byte */
  unsigned max_conns_per_source; /* open connections from one IPv4 address or IPv6 /64 */
  unsigned handler_timeout_s;    /* request handed to its handler .. its answer (503 after) */
};

typedef void (*http_handler_fn)(struct http_request *req, void *userdata);

/* base must outlive the server. cfg may be NULL (all defaults). */
int http_server_new(struct event_base *base, const struct http_server_config *cfg,
                    struct http_server **ret);
/* Closes listeners (removing unix socket files it created) and all connections; pending requests
 * get their close callback first. NULL is fine. libevent finishes freeing connection buffers from
 * the loop: run event_base_loop(base, EVLOOP_NONBLOCK) once before event_base_free(base) (or
 * keep the loop running), otherwise those buffers leak. Not from inside this server's handlers
 * or callbacks. */
void http_server_free(struct http_server *s);

/* Longest matching prefix wins (plain string prefix of the decoded path); "/" is the default
 * route. Registering the same prefix again replaces it. Unrouted paths get 404. */
int http_server_route(struct http_server *s, const char *path_prefix, http_handler_fn fn,
                      void *ud);

/* addr: numeric IPv4/IPv6 address ("127.0.0.1", "0.0.0.0", "::1"); NULL = "127.0.0.1".
 * port 0 picks a free port; ret_port (may be NULL) gets the bound port. */
int http_server_listen_tcp(struct http_server *s, const char *addr, uint16_t port,
                           uint16_t *ret_port);
/* Binds path (a stale socket file is unlinked; any other file type is -EEXIST), sets exactly
 * mode with chmod (umask does not matter) before listening. The file is removed by
 * http_server_free. Paths longer than sun_path are -ENAMETOOLONG. */
int http_server_listen_unix(struct http_server *s, const char *path, mode_t mode);
/* TLS on TCP with ctx (a reference is taken; see http_tls.h to build one). When ctx verifies
 * peers (SSL_VERIFY_PEER [+ FAIL_IF_NO_PEER_CERT]) the verified client certificate is available
 * to handlers through http_request_peer_cert(). */
int http_server_listen_tls(struct http_server *s, const char *addr, uint16_t port, SSL_CTX *ctx,
                           uint16_t *ret_port);
/* Serves an already connected stream socket (takes ownership of fd, also on error); ctx NULL =
 * plain. For socket activation, tests and fuzzing. The limits above apply (the source is
 * getpeername's): -EBUSY (fd closed) when refused. */
int http_server_add_connection(struct http_server *s, int fd, SSL_CTX *ctx);

struct event_base *http_server_get_base(const struct http_server *s);
/* Open connections right now. */
unsigned http_server_n_connections(const struct http_server *s);
/* For tests only: the next n allocations on the reply paths (status line and headers, body,
 * JSON text, error message, the fixed 500, stream chunks) fail as if out of memory. */
void http_server_test_fail_allocs(struct http_server *s, unsigned n);

/* Request accessors. Strings live as long as the request. */
const char *http_request_method(const struct http_request *r); /* "GET", "POST", ... as sent */
const char *http_request_path(const struct http_request *r);  /* decoded, normalised, no query */
const char *http_request_query(const struct http_request *r); /* raw query string or NULL */
/* First value of name in the query, percent-decoded ('+' = space); "" for a bare "name".
 * *ret_value is allocated. -ENOENT when absent. */
int http_request_query_get(const struct http_request *r, const char *name, char **ret_value);
/* True if name appears in the query, with or without a value ("?json"). */
bool http_request_query_has(const struct http_request *r, const char *name);
/* The parsed query (url.h), never NULL (possibly empty). */
const struct url_query *http_request_query_params(const struct http_request *r);
/* First header of that name (case-insensitive), value without surrounding spaces; NULL if absent. */
const char *http_request_header(const struct http_request *r, const char *name);
/* The request body (chunked bodies reassembled); followed by a NUL byte not counted in len. */
struct slice http_request_body(const struct http_request *r);
/* Verified client certificate on an mTLS connection; NULL otherwise. Borrowed: valid while the
 * request lives, dead or not (X509_up_ref to keep it longer). */
X509 *http_request_peer_cert(const struct http_request *r);
/* True on a TLS connection. */
bool http_request_is_tls(const struct http_request *r);
/* "ip:port", "[ipv6]:port", or "unix" — for logs. */
const char *http_request_remote(const struct http_request *r);
/* HTTP minor version of the request: 0 or 1. */
int http_request_version_minor(const struct http_request *r);

/* Adds a response header for the coming reply or stream (before http_reply / http_stream_start).
 * Names must be tokens, values without CR/LF/NUL: -EINVAL. Content-Length, Transfer-Encoding and
 * Connection are managed by the server (-EINVAL). */
int http_reply_header(struct http_request *r, const char *name, const char *value);
/* Sends a complete reply with Content-Length. content_type NULL = no Content-Type header.
 * The request is finished whatever this returns (see "Request lifetime" above): -EINVAL bad
 * status or argument (500 sent instead), -ENOMEM (500 or a cut reply, then close), -EPIPE the
 * request was dead (freed now). On a stream: -EINVAL and nothing happens. */
int http_reply(struct http_request *r, int status, const char *content_type, const void *body,
               size_t len);
/* Compact JSON, Content-Type application/json. */
int http_reply_json(struct http_request *r, int status, const json_t *j);
/* {"error":"<formatted message>"}, Content-Type application/json. Bytes of the message that
 * are not UTF-8 are replaced by U+FFFD. */
int http_reply_error(struct http_request *r, int status, const char *fmt, ...) _printf_(3, 4);

/* Streaming replies (chunked). ctype NULL = no Content-Type. The request is a stream after
 * this call whatever it returns; on failure a dead one (500 sent or closed): end it. */
int http_stream_start(struct http_request *r, int status, const char *ctype);
/* Queues n bytes (n == 0 is a no-op). -EAGAIN (nothing queued) while more than stream_buffer
 * bytes wait to be sent: stop writing until the drain callback runs. Any other error: the
 * stream is dead; end it. */
int http_stream_write(struct http_request *r, const void *p, size_t n);
/* Ends the stream; the request is finished (invalid for the caller) whatever this returns. On
 * a request that is not a stream: 500 sent, the request finished, -EINVAL. */
int http_stream_end(struct http_request *r);
/* cb runs (once per -EAGAIN) when the queued output has been sent. */
void http_stream_on_drain(struct http_request *r, void (*cb)(void *ud), void *ud);

/* cb runs if the connection ends (client closed, error, write timeout, handler deadline, server
 * freed) before the request is finished; the request is freed after cb returns. http_* calls on
 * the request from inside cb do nothing (-EPIPE). Without cb the request is kept dead instead
 * (see "Request lifetime"). */
void http_request_on_close(struct http_request *r, void (*cb)(void *ud), void *ud);
/* Same as http_request_on_close (name used by stream producers). */
void http_stream_on_close(struct http_request *r, void (*cb)(void *ud), void *ud);

/* Reason phrase for a status code ("OK", "Not Found", ...; "Unknown" otherwise). */
const char *http_status_reason(int status);

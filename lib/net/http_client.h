/* HTTP client on libcurl: one easy handle per call, so calls from several threads are fine.
 *
 * - Timeouts: connect_timeout_ms for the TCP/TLS connect, timeout_ms for the whole transfer
 *   (0 = defaults 10 s / 30 s). Exceeding either is -ETIMEDOUT.
 * - The response body is capped at max_body (0 = 16 MiB): a longer body is -ENOBUFS, never a
 *   truncated success. Received header bytes are capped at max_header_bytes (0 = 64 KiB): -ENOBUFS.
 * - TLS: the peer is verified against ca_file alone (PEM; the system CAs are not added; NULL =
 *   system CAs) unless
 *   insecure_skip_verify. An optional client certificate + key (mTLS) come from files only.
 * - unix_socket: the connection goes to this AF_UNIX path; the URL still gives Host and path
 *   (e.g. "http://localhost/prpc/Tappd.Info").
 * - Only http and https; redirects are not followed unless follow_redirects (then at most 5,
 *   and still only http/https).
 * - Any HTTP status is a success of http_request(): the caller decides what non-2xx means.
 * - Proxies follow libcurl's usual environment variables (http_proxy, https_proxy, no_proxy).
 * - Processes using this should ignore SIGPIPE (daemons do): curl runs with CURLOPT_NOSIGNAL.
 *
 * Errors: -EINVAL bad arguments or URL, -ETIMEDOUT, -ECONNREFUSED / -EHOSTUNREACH connect
 * failures, -ENOBUFS caps, -EPROTO TLS failures (handshake, certificate verification),
 * -EBADMSG malformed HTTP, -ENOENT unreadable CA/cert/key file, -ENOMEM, -EIO other. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define HTTP_CLIENT_DEFAULT_MAX_BODY ((size_t)16 * 1024 * 1024)
#define HTTP_CLIENT_DEFAULT_MAX_HEADER ((size_t)64 * 1024)
#define HTTP_CLIENT_DEFAULT_TIMEOUT_MS 30000L
#define HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 10000L

struct http_client_opts {
  long timeout_ms;         /* whole request; 0 = default */
  long connect_timeout_ms; /* 0 = default (never above timeout_ms) */
  size_t max_body;         /* 0 = default */
  size_t max_header_bytes; /* 0 = default */
  const char *ca_file;     /* PEM bundle; NULL = system CAs */
  const char *client_cert_file; /* PEM; mTLS */
  const char *client_key_file;  /* PEM; mTLS (path only, the key never passes through memory here) */
  bool insecure_skip_verify;
  /* The peer's chain is verified against ca_file, but not its name: for a peer whose identity
   * is the private CA itself (a KMS reached by address, whose CA key the caller pinned). */
  bool ca_pins_peer;
  const char *unix_socket;
  const char *const *headers; /* "Name: value", NULL-terminated */
  bool follow_redirects;
};

struct http_header {
  char *name;  /* as received */
  char *value; /* leading/trailing whitespace removed */
};

struct http_response {
  long status;
  struct buf body;
  struct http_header *headers; /* of the final response (after redirects, if followed) */
  size_t n_headers;
  size_t header_bytes; /* internal: bytes counted against max_header_bytes */
};

/* body may be NULL when len is 0. content_type may be NULL (no Content-Type header).
 * o may be NULL (defaults). On success ret holds the response (free with http_response_free);
 * on error ret is left empty. */
int http_request(const char *method, const char *url, const char *content_type, const void *body,
                 size_t len, const struct http_client_opts *o, struct http_response *ret);
int http_get(const char *url, const struct http_client_opts *o, struct http_response *ret);
int http_post(const char *url, const char *content_type, const void *body, size_t len,
              const struct http_client_opts *o, struct http_response *ret);
/* Case-insensitive; the first header of that name; NULL if absent. */
const char *http_response_header(const struct http_response *r, const char *name);
void http_response_free(struct http_response *r);

/* Decoding: str_pct_decode (base/str.h). */
/* Percent-encodes everything but unreserved characters (RFC 3986). */
int http_url_encode(const char *src, char **ret);

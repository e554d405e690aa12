/* HTTP client on libcurl (see http_client.h). */
#include "net/http_client.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/log.h"
#include "base/macro.h"

#define HTTP_MAX_REDIRECTS 5L
#define HTTP_MAX_HEADERS 256

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void) {
  curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct xfer {
  struct http_response *resp;
  size_t max_header;
  bool body_overflow;
  bool header_overflow;
  bool header_bad;
};

static void headers_clear(struct http_response *r) {
  for (size_t i = 0; i < r->n_headers; i++) {
    free(r->headers[i].name);
    free(r->headers[i].value);
  }
  free(r->headers);
  r->headers = NULL;
  r->n_headers = 0;
}

void http_response_free(struct http_response *r) {
  if (!r)
    return;
  headers_clear(r);
  buf_free(&r->body);
  r->status = 0;
  r->header_bytes = 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct xfer *x = ud;
  size_t n;
  if (!size_mul(size, nmemb, &n))
    return 0;
  if (buf_append(&x->resp->body, ptr, n) < 0) {
    x->body_overflow = true;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  return n;
}

static bool is_token_char(char c) {
  return isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c);
}

static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct xfer *x = ud;
  struct http_response *r = x->resp;
  size_t n;
  if (!size_mul(size, nmemb, &n))
    return 0;
  if (!size_add(r->header_bytes, n, &r->header_bytes) || r->header_bytes > x->max_header) {
    x->header_overflow = true;
    return 0;
  }
  /* Strip the line ending. */
  size_t len = n;
  while (len > 0 && (ptr[len - 1] == '\n' || ptr[len - 1] == '\r'))
    len--;
  if (len == 0)
    return n; /* end of a header block */
  if (len >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
    /* A new response (1xx, redirect hop): only the headers of the final one are kept. */
    headers_clear(r);
    return n;
  }
  if (ptr[0] == ' ' || ptr[0] == '\t')
    return n; /* obsolete line folding: ignored */
  const char *colon = memchr(ptr, ':', len);
  if (!colon || colon == ptr) {
    x->header_bad = true;
    return 0;
  }
  size_t name_len = (size_t)(colon - ptr);
  for (size_t i = 0; i < name_len; i++)
    if (!is_token_char(ptr[i])) {
      x->header_bad = true;
      return 0;
    }
  const char *v = colon + 1, *end = ptr + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  if (memchr(v, '\0', (size_t)(end - v))) {
    x->header_bad = true;
    return 0;
  }
  if (r->n_headers >= HTTP_MAX_HEADERS) {
    x->header_overflow = true;
    return 0;
  }
  struct http_header *nh = realloc(r->headers, (r->n_headers + 1) * sizeof(*nh));
  if (!nh)
    return 0;
  r->headers = nh;
  char *name = strndup(ptr, name_len);
  char *value = strndup(v, (size_t)(end - v));
  if (!name || !value) {
    free(name);
    free(value);
    return 0;
  }
  r->headers[r->n_headers].name = name;
  r->headers[r->n_headers].value = value;
  r->n_headers++;
  return n;
}

const char *http_response_header(const struct http_response *r, const char *name) {
  if (!r || !name)
    return NULL;
  for (size_t i = 0; i < r->n_headers; i++)
    if (strcasecmp(r->headers[i].name, name) == 0)
      return r->headers[i].value;
  return NULL;
}

static int curl_code_to_errno(CURLcode c) {
  switch (c) {
  case CURLE_OK:
    return 0;
  case CURLE_OPERATION_TIMEDOUT:
    return -ETIMEDOUT;
  case CURLE_COULDNT_CONNECT:
    return -ECONNREFUSED;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return -EHOSTUNREACH;
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_BAD_FUNCTION_ARGUMENT:
    return -EINVAL;
  case CURLE_FILESIZE_EXCEEDED:
    return -ENOBUFS;
  case CURLE_OUT_OF_MEMORY:
    return -ENOMEM;
  case CURLE_TOO_MANY_REDIRECTS:
    return -ELOOP;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CLIENTCERT:
  case CURLE_USE_SSL_FAILED:
    return -EPROTO;
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_HTTP2:
  case CURLE_BAD_CONTENT_ENCODING:
    return -EBADMSG;
  case CURLE_GOT_NOTHING:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE:
    return -ECONNRESET;
  default:
    return -EIO;
  }
}

static bool url_scheme_ok(const char *url) {
  return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

static bool header_line_ok(const char *h) {
  const char *colon = strchr(h, ':');
  if (!colon || colon == h)
    return false;
  for (const char *p = h; p < colon; p++)
    if (!is_token_char(*p))
      return false;
  for (const char *p = colon; *p; p++)
    if (*p == '\r' || *p == '\n')
      return false;
  return true;
}

static int file_check_readable(const char *path) {
  if (access(path, R_OK) < 0)
    return errno == EACCES ? -EACCES : -ENOENT;
  return 0;
}

static bool method_ok(const char *m) {
  if (!m || !*m || strlen(m) > 16)
    return false;
  for (const char *p = m; *p; p++)
    if (!isupper((unsigned char)*p))
      return false;
  return true;
}

int http_request(const char *method, const char *url, const char *content_type, const void *body,
                 size_t len, const struct http_client_opts *o, struct http_response *ret) {
  static const struct http_client_opts defaults = {0};
  struct curl_slist *hdrs = NULL;
  CURL *h = NULL;
  char *ct_line = NULL;
  struct http_response resp = {0};
  struct xfer x = {.resp = &resp};
  int r;

  if (!method_ok(method) || !url || !ret || (len > 0 && !body))
    return -EINVAL;
  if (!o)
    o = &defaults;
  if (!url_scheme_ok(url) || strpbrk(url, "\r\n \t"))
    return -EINVAL;
  if (content_type && (strpbrk(content_type, "\r\n") || !*content_type))
    return -EINVAL;
  if (o->timeout_ms < 0 || o->connect_timeout_ms < 0)
    return -EINVAL;
  if (o->ca_file && (r = file_check_readable(o->ca_file)) < 0)
    return r;
  if (!o->client_cert_file != !o->client_key_file)
    return -EINVAL;
  if (o->client_cert_file && (r = file_check_readable(o->client_cert_file)) < 0)
    return r;
  if (o->client_key_file && (r = file_check_readable(o->client_key_file)) < 0)
    return r;

  pthread_once(&curl_once, curl_init_once);
  if (curl_init_result != CURLE_OK)
    return -EIO;

  size_t max_body = o->max_body ? o->max_body : HTTP_CLIENT_DEFAULT_MAX_BODY;
  x.max_header = o->max_header_bytes ? o->max_header_bytes : HTTP_CLIENT_DEFAULT_MAX_HEADER;
  long timeout = o->timeout_ms ? o->timeout_ms : HTTP_CLIENT_DEFAULT_TIMEOUT_MS;
  long ctimeout = o->connect_timeout_ms ? o->connect_timeout_ms : HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS;
  if (ctimeout > timeout)
    ctimeout = timeout;
  buf_init(&resp.body, max_body);

  for (const char *const *p = o->headers; p && *p; p++) {
    if (!header_line_ok(*p)) {
      r = -EINVAL;
      goto out;
    }
    struct curl_slist *n = curl_slist_append(hdrs, *p);
    if (!n) {
      r = -ENOMEM;
      goto out;
    }
    hdrs = n;
  }
  /* Content-Type: the given one, or none at all (curl would invent one for POST). */
  if (content_type) {
    if (asprintf(&ct_line, "Content-Type: %s", content_type) < 0) {
      ct_line = NULL;
      r = -ENOMEM;
      goto out;
    }
  }
  {
    const char *extra[] = {ct_line ? ct_line : "Content-Type:", "Expect:"};
    for (size_t i = 0; i < ARRAY_SIZE(extra); i++) {
      struct curl_slist *n = curl_slist_append(hdrs, extra[i]);
      if (!n) {
        r = -ENOMEM;
        goto out;
      }
      hdrs = n;
    }
  }

  h = curl_easy_init();
  if (!h) {
    r = -ENOMEM;
    goto out;
  }

  CURLcode c = CURLE_OK;
#define SETOPT(opt, val)                                                                           \
  do {                                                                                             \
    if (c == CURLE_OK)                                                                             \
      c = curl_easy_setopt(h, opt, val);                                                           \
  } while (0)
  SETOPT(CURLOPT_URL, url);
  SETOPT(CURLOPT_NOSIGNAL, 1L);
  SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
  SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SETOPT(CURLOPT_FOLLOWLOCATION, o->follow_redirects ? 1L : 0L);
  SETOPT(CURLOPT_MAXREDIRS, HTTP_MAX_REDIRECTS);
  SETOPT(CURLOPT_TIMEOUT_MS, timeout);
  SETOPT(CURLOPT_CONNECTTIMEOUT_MS, ctimeout);
  SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);
  SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
  SETOPT(CURLOPT_WRITEDATA, &x);
  SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
  SETOPT(CURLOPT_HEADERDATA, &x);
  SETOPT(CURLOPT_HTTPHEADER, hdrs);
  SETOPT(CURLOPT_SSL_VERIFYPEER, o->insecure_skip_verify ? 0L : 1L);
  SETOPT(CURLOPT_SSL_VERIFYHOST, o->insecure_skip_verify || o->ca_pins_peer ? 0L : 2L);
  if (o->ca_file) {
    /* exactly these CAs: libcurl would also trust its built-in CA directory */
    SETOPT(CURLOPT_CAINFO, o->ca_file);
    SETOPT(CURLOPT_CAPATH, NULL);
  }
  if (o->client_cert_file) {
    SETOPT(CURLOPT_SSLCERT, o->client_cert_file);
    SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
    SETOPT(CURLOPT_SSLKEY, o->client_key_file);
    SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
  }
  if (o->unix_socket)
    SETOPT(CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);

  if (strcmp(method, "GET") == 0 && len == 0) {
    SETOPT(CURLOPT_HTTPGET, 1L);
  } else if (strcmp(method, "HEAD") == 0) {
    SETOPT(CURLOPT_NOBODY, 1L);
  } else {
    SETOPT(CURLOPT_POST, 1L);
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    SETOPT(CURLOPT_POSTFIELDS, len ? body : "");
    if (strcmp(method, "POST") != 0)
      SETOPT(CURLOPT_CUSTOMREQUEST, method);
  }
#undef SETOPT
  if (c != CURLE_OK) {
    r = curl_code_to_errno(c);
    if (r == -EIO)
      r = -ENOTSUP;
    goto out;
  }

  c = curl_easy_perform(h);
  if (x.body_overflow || x.header_overflow)
    r = -ENOBUFS;
  else if (x.header_bad)
    r = -EBADMSG;
  else
    r = curl_code_to_errno(c);
  if (r < 0) {
    log_debug("http %s %s: %s", method, url, curl_easy_strerror(c));
    goto out;
  }
  long status = 0;
  if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status < 100 ||
      status > 999) {
    r = -EBADMSG;
    goto out;
  }
  resp.status = status;
  *ret = resp;
  resp = (struct http_response){0};
  r = 0;
out:
  if (h)
    curl_easy_cleanup(h);
  curl_slist_free_all(hdrs);
  free(ct_line);
  http_response_free(&resp);
  return r;
}

int http_get(const char *url, const struct http_client_opts *o, struct http_response *ret) {
  return http_request("GET", url, NULL, NULL, 0, o, ret);
}

int http_post(const char *url, const char *content_type, const void *body, size_t len,
              const struct http_client_opts *o, struct http_response *ret) {
  return http_request("POST", url, content_type, body, len, o, ret);
}

int http_url_encode(const char *src, char **ret) {
  static const char hexd[] = "0123456789ABCDEF";
  if (!src || !ret)
    return -EINVAL;
  size_t n = strlen(src), cap;
  if (!size_mul(n, 3, &cap) || !size_add(cap, 1, &cap))
    return -ENOMEM;
  char *out = malloc(cap), *w = out;
  if (!out)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)src[i];
    if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      *w++ = (char)ch;
    } else {
      *w++ = '%';
      *w++ = hexd[ch >> 4];
      *w++ = hexd[ch & 15];
    }
  }
  *w = '\0';
  *ret = out;
  return 0;
}

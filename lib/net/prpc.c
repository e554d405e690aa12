#include "net/prpc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/str.h"
#include "base/buf.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "net/http_server.h"
#include "net/prpc_json.h"

#define CT_JSON "application/json"
#define CT_PROTO "application/octet-stream"

int prpc_error(char **ret_error, int r, const char *fmt, ...) {
  if (ret_error && !*ret_error) {
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(ret_error, fmt, ap) < 0)
      *ret_error = NULL;
    va_end(ap);
  }
  return r;
}

int prpc_reply_done(int r, ProtobufCMessage *out, ProtobufCMessage **ret_out) {
  if (r < 0) {
    prpc_message_free(out);
    return r;
  }
  *ret_out = out;
  return 0;
}

static bool content_type_is_json(const char *ct) {
  static const char want[] = CT_JSON;
  if (!ct || strncasecmp(ct, want, sizeof(want) - 1) != 0)
    return false;
  char next = ct[sizeof(want) - 1];
  return next == 0 || next == ';' || next == ' ' || next == '\t';
}

bool prpc_request_wants_json(const struct http_request *req) {
  const char *m = http_request_method(req);
  if (m && strcmp(m, "GET") == 0)
    return true;
  if (content_type_is_json(http_request_header(req, "Content-Type")))
    return true;
  _cleanup_free_ char *v = NULL;
  if (http_request_query_get(req, "json", &v) < 0)
    return false;
  return !*v || strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
         strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0;
}

void prpc_reply_error(struct http_request *req, bool json, int status, const char *msg) {
  int r;
  if (json) {
    _cleanup_free_ char *clean = NULL;
    _cleanup_json_ json_t *j = NULL;
    _cleanup_free_ char *text = NULL;
    size_t n = 0;
    if (str_utf8_sanitize(msg, strlen(msg), &clean, &n) == 0)
      j = json_pack("{s:s%}", "error", clean, n);
    if (j)
      text = json_dumps(j, JSON_INDENT(2));
    r = text ? http_reply(req, status, CT_JSON, text, strlen(text))
             : http_reply_error(req, status, "out of memory");
  } else {
    _cleanup_buf_ struct buf b = BUF_INIT(BUF_MAX_SMALL);
    size_t n = MIN(strlen(msg), BUF_MAX_SMALL - 16);
    r = buf_append_u8(&b, 0x0a); /* field 1, length-delimited */
    for (size_t v = n; r >= 0; v >>= 7) {
      if (v < 0x80) {
        r = buf_append_u8(&b, (uint8_t)v);
        break;
      }
      r = buf_append_u8(&b, (uint8_t)(v | 0x80));
    }
    if (r >= 0)
      r = buf_append(&b, msg, n);
    r = r < 0 ? http_reply(req, status, CT_PROTO, NULL, 0)
              : http_reply(req, status, CT_PROTO, b.data, b.len);
  }
  if (r < 0)
    log_debug("prpc: sending error reply failed: %s", strerror(-r));
}

int prpc_method_index(const ProtobufCServiceDescriptor *d, const char *name) {
  if (!d || !name)
    return -EINVAL;
  for (unsigned k = 0; k < d->n_methods; k++)
    if (strcmp(d->methods[k].name, name) == 0)
      return (int)k;
  return -ENOENT;
}

int prpc_methods_fill(const ProtobufCServiceDescriptor *d, const struct prpc_method_entry *entries,
                      size_t n, prpc_method_fn *table, size_t n_table, char *err, size_t errlen) {
  if (d->n_methods > n_table)
    return str_err(err, errlen, -ENOBUFS, "%s has %u methods, more than the table's %zu", d->name,
                   d->n_methods, n_table);
  for (size_t i = 0; i < n_table; i++)
    table[i] = NULL;
  for (size_t i = 0; i < n; i++) {
    int k = prpc_method_index(d, entries[i].name);
    if (k < 0)
      return str_err(err, errlen, -ENOENT, "%s has no method %s", d->name,
                     entries[i].name ? entries[i].name : "(null)");
    if (!entries[i].fn)
      return str_err(err, errlen, -EINVAL, "%s.%s has no handler", d->name, entries[i].name);
    if (table[k])
      return str_err(err, errlen, -EEXIST, "%s.%s is listed twice", d->name, entries[i].name);
    table[k] = entries[i].fn;
  }
  return 0;
}

/* Finds the service and method for the request path; false when none matches. */
static bool lookup(const char *path, const struct prpc_service *svcs, size_t n,
                   const struct prpc_service **ret_svc, unsigned *ret_index) {
  for (size_t k = 0; k < n; k++) {
    const struct prpc_service *s = &svcs[k];
    size_t ml = s->mount ? strlen(s->mount) : 0;
    if (!s->desc || !s->mount || strncmp(path, s->mount, ml) != 0)
      continue;
    const char *name = path + ml;
    if (!*name || strchr(name, '/'))
      continue;
    const ProtobufCMethodDescriptor *m =
        protobuf_c_service_descriptor_get_method_by_name(s->desc, name);
    if (!m || strcmp(m->name, name) != 0)
      continue;
    unsigned idx = (unsigned)(m - s->desc->methods);
    size_t nm = s->n_methods ? s->n_methods : s->desc->n_methods;
    if (!s->methods || idx >= nm || !s->methods[idx])
      continue;
    *ret_svc = s;
    *ret_index = idx;
    return true;
  }
  return false;
}

static int decode_input(struct http_request *req, bool json, bool is_get,
                        const ProtobufCMessageDescriptor *d, ProtobufCMessage **ret, char *err,
                        size_t errlen) {
  if (prpc_descriptor_is_empty(d))
    return prpc_message_new(d, ret);
  if (is_get)
    return prpc_query_to_message(d, http_request_query(req), ret, err, errlen);
  struct slice body = http_request_body(req);
  if (json)
    return prpc_json_text_to_message(d, (const char *)body.ptr, body.len, body.len, 0, ret, err,
                                     errlen);
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, body.len, body.ptr);
  if (!m) {
    snprintf(err, errlen, "DecodeError: invalid protobuf encoding of %s", d->name);
    return -EBADMSG;
  }
  *ret = m;
  return 0;
}

static int encode_output(const ProtobufCMessage *out, bool json, unsigned flags,
                         struct buf *ret) {
  if (json) {
    if (prpc_descriptor_is_empty(out->descriptor))
      return buf_append_str(ret, "null");
    /* Room for the usual text at once (bytes become hex, plus names and punctuation), so the
     * buffer does not grow by doubling from 64 bytes; a reply that needs more still grows. */
    size_t guess = 2 * protobuf_c_message_get_packed_size(out) + 1024;
    (void)buf_reserve(ret, MIN(guess, ret->max));
    return prpc_message_to_json_text(out, flags, ret);
  }
  size_t n = protobuf_c_message_get_packed_size(out);
  int r = buf_reserve(ret, n);
  if (r < 0)
    return r;
  ret->len = protobuf_c_message_pack(out, ret->data);
  return ret->len == n ? 0 : -EIO;
}

void prpc_handle(struct http_request *req, const struct prpc_service *svcs, size_t n) {
  const char *method = http_request_method(req);
  const char *path = http_request_path(req);
  bool json = prpc_request_wants_json(req);
  bool is_get = method && strcmp(method, "GET") == 0;
  const struct prpc_service *svc;
  unsigned idx;

  if (!path || !lookup(path, svcs, n, &svc, &idx)) {
    prpc_reply_error(req, json, 404, "method Not Found");
    return;
  }
  if (!is_get && (!method || strcmp(method, "POST") != 0)) {
    prpc_reply_error(req, json, 405, "only GET and POST are allowed");
    return;
  }

  const ProtobufCMethodDescriptor *md = &svc->desc->methods[idx];
  ProtobufCMessage *in = NULL, *out = NULL;
  char err[256] = "";
  char *herr = NULL;
  int r = decode_input(req, json, is_get, md->input, &in, err, sizeof(err));
  if (r < 0) {
    prpc_reply_error(req, json, 400, err[0] ? err : "invalid request");
    return;
  }

  r = svc->methods[idx](svc->ud, req, in, &out, &herr);
  prpc_message_free(in);
  if (r < 0) {
    if (out) {
      if (svc->free_out)
        svc->free_out(out, svc->ud);
      else
        prpc_message_free(out);
    }
    prpc_reply_error(req, json, 400, herr ? herr : strerror(-r));
    free(herr);
    return;
  }
  free(herr);

  _cleanup_buf_ struct buf body = BUF_INIT(BUF_MAX_FILE);
  if (out && out->descriptor != md->output)
    r = -EINVAL;
  else if (out)
    r = encode_output(out, json, svc->json_flags, &body);
  else {
    ProtobufCMessage *def = NULL;
    r = prpc_message_new(md->output, &def);
    if (r >= 0)
      r = encode_output(def, json, svc->json_flags, &body);
    prpc_message_free(def);
  }
  if (out) {
    if (svc->free_out)
      svc->free_out(out, svc->ud);
    else
      prpc_message_free(out);
  }
  if (r < 0) {
    log_debug("prpc: encoding the reply of %s failed: %s", md->name, strerror(-r));
    prpc_reply_error(req, json, 500, "failed to encode the reply");
    return;
  }
  r = http_reply(req, 200, json ? CT_JSON : CT_PROTO, body.data, body.len);
  if (r < 0)
    log_debug("prpc: sending the reply failed: %s", strerror(-r));
}

void prpc_http_handler(struct http_request *req, void *ud) {
  const struct prpc_router *rt = ud;
  prpc_handle(req, rt ? rt->svcs : NULL, rt ? rt->n : 0);
}

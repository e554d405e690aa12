/* pRPC dispatch (upstream dstack): POST|GET <mount><Method> with a protobuf or JSON body.
 *
 * Routing: a request path is matched against each service's mount in order; the rest must be
 * exactly one method name of that service's descriptor (case-sensitive, as in the .proto). To
 * serve both "/prpc/Tappd.TdxQuote" and "/prpc/TdxQuote", list the service twice, with mounts
 * "/prpc/Tappd." and "/prpc/". DstackGuest uses mount "/" (routes /GetQuote, ...). No match:
 * HTTP 404 with "method Not Found".
 *
 * Encoding: JSON when the query has json (empty value, true, 1, on, yes), or Content-Type is
 * application/json, or the request is a GET; protobuf otherwise. The reply uses the same
 * encoding (Content-Type application/json or application/octet-stream).
 * Input: POST JSON = body object (empty body = default message); POST protobuf = body
 * decoded by protobuf-c; GET = the URL query string (prpc_query_to_message). For an Empty
 * request type the body is ignored. Output: JSON object with all fields (an Empty reply is
 * "null"), or the protobuf encoding (an Empty reply is zero bytes).
 * Errors never use HTTP 200: 404 unknown method, 405 other HTTP methods, 400 bad input or a
 * failing handler, 500 when the reply cannot be encoded. JSON mode body {"error": "..."}
 * (pretty-printed like upstream); protobuf mode body ProtoError{string message = 1}. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/macro.h"

struct http_request;

/* One RPC method. in is the decoded request (owned by prpc, valid during the call). On success
 * return 0 and set *ret_out to the reply (type = the method's output descriptor; NULL means the
 * default reply); prpc frees it with the service's free_out or, by default, with
 * protobuf_c_message_free_unpacked(m, NULL) — so build it as protobuf-c's unpacker does: the
 * message from prpc_message_new() (or malloc + *__init), every non-default string, bytes data,
 * repeated array and sub-message malloc'd separately (strdup is fine).
 * On failure return <0 and optionally set *ret_error to a malloc'd message (prpc frees it):
 * HTTP 400 {"error": message}. The handler may set reply headers (http_reply_header) but must
 * not send a reply itself. */
typedef int (*prpc_method_fn)(void *ud, struct http_request *req, const ProtobufCMessage *in,
                              ProtobufCMessage **ret_out, char **ret_error);

struct prpc_service {
  const ProtobufCServiceDescriptor *desc;
  const char *mount;              /* path prefix: "/prpc/Tappd.", "/prpc/", "/" */
  const prpc_method_fn *methods;  /* indexed like desc->methods; NULL entry = 404 */
  size_t n_methods;               /* entries in methods (0 = desc->n_methods); the rest = 404 */
  void *ud;
  unsigned json_flags;            /* PRPC_JSON_* (prpc_json.h), e.g. PRPC_JSON_BYTES_0X */
  /* Frees a reply; NULL = protobuf_c_message_free_unpacked(m, NULL). */
  void (*free_out)(ProtobufCMessage *m, void *ud);
};

/* Index of method name in d->methods (declaration order in the .proto), to fill a methods
 * table: -ENOENT when d has no such method. */
int prpc_method_index(const ProtobufCServiceDescriptor *d, const char *name);

/* One entry of a daemon's method table: the method's name as in the .proto, its handler. */
struct prpc_method_entry {
  const char *name;
  prpc_method_fn fn;
};

/* Fills table (n_table entries, indexed like d->methods; the rest NULL = 404) from entries.
 * Every entry must name a method of d (-ENOENT) once (-EEXIST) with a handler (-EINVAL), and
 * d's methods must fit in the table (-ENOBUFS): a daemon refuses to start rather than serve a
 * method table it did not mean. err names the method and the service. */
int prpc_methods_fill(const ProtobufCServiceDescriptor *d, const struct prpc_method_entry *entries,
                      size_t n, prpc_method_fn *table, size_t n_table, char *err, size_t errlen);

/* Answers req (always: success or error). */
void prpc_handle(struct http_request *req, const struct prpc_service *svcs, size_t n);

/* For http_server_route(s, prefix, prpc_http_handler, &router). */
struct prpc_router {
  const struct prpc_service *svcs;
  size_t n;
};
void prpc_http_handler(struct http_request *req, void *ud /* const struct prpc_router * */);

/* Answers req with an error as the dispatcher does (status, JSON or protobuf per json; a
 * message that is not UTF-8 gets U+FFFD for its bad bytes). */
void prpc_reply_error(struct http_request *req, bool json, int status, const char *msg);

/* JSON mode per the rules above. */
bool prpc_request_wants_json(const struct http_request *req);

/* For handlers: sets *ret_error to the formatted message (if ret_error is not NULL and holds no
 * message yet: the first failure, where the error was decided, names it) and returns r (a
 * negative errno), so `return prpc_error(ret_error, -EINVAL, "bad %s", x);`. */
int prpc_error(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);

/* The end of a handler that built its reply in out (from prpc_message_new): r < 0 frees out
 * and returns r; otherwise *ret_out = out and 0. */
int prpc_reply_done(int r, ProtobufCMessage *out, ProtobufCMessage **ret_out);

/* pRPC glue: the three services (Tappd on tappd.sock, DstackGuest on dstack.sock, Worker on the
 * external port) and helpers that fill protobuf-c messages by field name, so the handlers do
 * not depend on which generated type (tappd.AppInfo or dstack.AppInfo) they fill. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "net/prpc.h"
#include "tappd.h"

/* Routers for http_server_route(..., prpc_http_handler, router). They point into t. */
struct tappd_api {
  struct prpc_service tappd_svcs[2]; /* "/prpc/Tappd." and "/prpc/" */
  struct prpc_service guest_svcs[1]; /* "/" */
  struct prpc_service worker_svcs[1]; /* "/prpc/Worker." */
  struct prpc_router tappd, guest, worker;
  prpc_method_fn tappd_methods[16];
  prpc_method_fn guest_methods[16];
  prpc_method_fn worker_methods[16];
};
/* The three services' method tables and routes; err says which method is missing. */
int tappd_api_init(struct tappd *t, struct tappd_api *api, char *err, size_t errlen);

/* Field access by name. Setters: -ENOENT unknown field, -EINVAL wrong type, -ENOMEM. */
int api_set_string(ProtobufCMessage *m, const char *field, const char *s);
int api_set_bytes(ProtobufCMessage *m, const char *field, const void *p, size_t n);
int api_set_bool(ProtobufCMessage *m, const char *field, bool v);
int api_set_int64(ProtobufCMessage *m, const char *field, int64_t v);
int api_add_string(ProtobufCMessage *m, const char *field, const char *s);
int api_add_bytes(ProtobufCMessage *m, const char *field, const void *p, size_t n);
int api_add_message(ProtobufCMessage *m, const char *field, ProtobufCMessage *sub); /* takes sub */
const char *api_get_string(const ProtobufCMessage *m, const char *field); /* "" if unset */
struct slice api_get_bytes(const ProtobufCMessage *m, const char *field);
bool api_get_bool(const ProtobufCMessage *m, const char *field);
uint64_t api_get_u64(const ProtobufCMessage *m, const char *field);
/* Repeated string field: pointer to the array and its length. */
size_t api_get_strv(const ProtobufCMessage *m, const char *field, char *const **ret);

/* Shared handler bodies. */
int api_fill_app_info(ProtobufCMessage *m, const struct tappd_info *i);
int api_fill_version(ProtobufCMessage *m);
/* Quote + event log (+ report_data, vm_config when the reply has those fields). */
int api_fill_quote(struct tappd *t, ProtobufCMessage *m, const uint8_t rd[64], char **ret_error);

/* Method-table builders of each service file. */
int tappd_api_methods(prpc_method_fn *table, size_t n, char *err, size_t errlen);
int guest_api_methods(prpc_method_fn *table, size_t n, char *err, size_t errlen);
int worker_api_methods(prpc_method_fn *table, size_t n, char *err, size_t errlen);

/* DeriveKey / GetTlsKey reply: key + certificate_chain. */
int api_fill_tls_key(ProtobufCMessage *m, const struct tappd_tls_key *k);
/* Builds a reply of type d with fill(); frees it on failure. */
/* Ends a handler: on r < 0 frees out and returns r, else hands out over. */
/* Info and Version replies, shared by the services whose messages have the same shape in
 * different proto packages (d is that service's AppInfo / WorkerVersion descriptor). */
int api_info_reply(struct tappd *t, bool external, const ProtobufCMessageDescriptor *d,
                   ProtobufCMessage **ret_out, char **ret_error);
int api_version_reply(const ProtobufCMessageDescriptor *d, ProtobufCMessage **ret_out);

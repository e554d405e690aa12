/* pRPC glue shared by the services: protobuf-c field access by name, common reply bodies and
 * the routers. */
#include "tappd_api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"
#include "dstack_guest.pb-c.h"
#include "net/prpc_json.h"
#include "tappd_rpc.pb-c.h"

static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessage *m, const char *name) {
  return protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
}

#define MEMBER(m, f, type) ((type *)((char *)(m) + (f)->offset))
#define QUANT(m, f) ((size_t *)((char *)(m) + (f)->quantifier_offset))

int api_set_string(ProtobufCMessage *m, const char *field, const char *s) {
  const ProtobufCFieldDescriptor *f = field_of(m, field);
  if (!f)
    return -ENOENT;
  if (f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
    return -EINVAL;
  char **dst = MEMBER(m, f, char *);
  char *n = strdup(s ? s : "");
  if (!n)
    return -ENOMEM;
  if (*dst && *dst != f->default_value && *dst != protobuf_c_empty_string)
    free(*dst);
  *dst = n;
  return 0;
}

int api_set_bytes(ProtobufCMessage *m, const char *field, const void *p, size_t n) {
  const ProtobufCFieldDescriptor *f = field_of(m, field);
  if (!f)
    return -ENOENT;
  if (f->type != PROTOBUF_C_TYPE_BYTES || f->label == PROTOBUF_C_LABEL_REPEATED)
    return -EINVAL;
  ProtobufCBinaryData *dst = MEMBER(m, f, ProtobufCBinaryData);
  uint8_t *d = NULL;
  if (n) {
    d = malloc(n);
    if (!d)
      return -ENOMEM;
    memcpy(d, p, n);
  }
  free(dst->data);
  dst->data = d;
  dst->len = n;
  return 0;
}

int api_set_bool(ProtobufCMessage *m, const char *field, bool v) {
  const ProtobufCFieldDescriptor *f = field_of(m, field);
  if (!f)
    return -ENOENT;
  if (f->type != PROTOBUF_C_TYPE_BOOL || f->label == PROTOBUF_C_LABEL_REPEATED)
    return -EINVAL;
  *MEMBER(m, f, protobuf_c_boolean) = v;
  return 0;
}

int api_set_int64(ProtobufCMessage *m, const char *field, int64_t v) {
  const ProtobufCFieldDescriptor *f = field_of(m, field);
  if (!f)
    return -ENOENT;
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return -EINVAL;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    *MEMBER(m, f, int64_t) = v;
    return 0;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    if (v < 0)
      return -ERANGE;
    *MEMBER(m, f, uint64_t) = (uint64_t)v;
    return 0;
  default:
    return -EINVAL;
  }
}

/* Grows a repeated field's array by one element of size sz; returns the new slot. */
static void *repeated_grow(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, size_t sz) {
  size_t *n = QUANT(m, f);
  void **arr = MEMBER(m, f, void *);
  if (*n >= (size_t)1 << 20)
    return NULL;
  void *a = realloc(*arr, (*n + 1) * sz);
  if (!a)
    return NULL;
  *arr = a;
  return (char *)a + (*n) * sz;
}

int api_add_string(ProtobufCMessage *m, const char *field, const char *s) {
  const ProtobufCFieldDescriptor *f = field_of(m, field);
  if (!f)
    return -ENOENT;
  if (f->type != PROTOBUF_C_TYPE_STRING || f->label != PROTOBUF_C_LABEL_REPEATED)
    return -EINVAL;
  char *d = strdup(s ? s : "");
  if (!d)
    return -ENOMEM;
  char **slot = repeated_grow(m, f, sizeof(char *));
  if (!slot) {
    free(d);
    return -ENOMEM;
  }
  *slot = d;
  (*QUANT(m, f))++;
  return 0;
}

int api_add_bytes(ProtobufCMessage *m, const char *field, const void *p, size_t n) {
  const ProtobufCFieldDescriptor *f = field_of(m, field);
  if (!f)
    return -ENOENT;
  if (f->type != PROTOBUF_C_TYPE_BYTES || f->label != PROTOBUF_C_LABEL_REPEATED)
    return -EINVAL;
  uint8_t *d = NULL;
  if (n) {
    if (!(d = malloc(n)))
      return -ENOMEM;
    memcpy(d, p, n);
  }
  ProtobufCBinaryData *slot = repeated_grow(m, f, sizeof(ProtobufCBinaryData));
  if (!slot) {
    free(d);
    return -ENOMEM;
  }
  slot->data = d;
  slot->len = n;
  (*QUANT(m, f))++;
  return 0;
}

int api_add_message(ProtobufCMessage *m, const char *field, ProtobufCMessage *sub) {
  const ProtobufCFieldDescriptor *f = field_of(m, field);
  if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label != PROTOBUF_C_LABEL_REPEATED) {
    prpc_message_free(sub);
    return f ? -EINVAL : -ENOENT;
  }
  ProtobufCMessage **slot = repeated_grow(m, f, sizeof(ProtobufCMessage *));
  if (!slot) {
    prpc_message_free(sub);
    return -ENOMEM;
  }
  *slot = sub;
  (*QUANT(m, f))++;
  return 0;
}

const char *api_get_string(const ProtobufCMessage *m, const char *field) {
  const ProtobufCFieldDescriptor *f = field_of(m, field);
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
    return "";
  const char *s = *MEMBER(m, f, char *);
  return s ? s : "";
}

struct slice api_get_bytes(const ProtobufCMessage *m, const char *field) {
  const ProtobufCFieldDescriptor *f = field_of(m, field);
  if (!f || f->type != PROTOBUF_C_TYPE_BYTES || f->label == PROTOBUF_C_LABEL_REPEATED)
    return SLICE(NULL, 0);
  const ProtobufCBinaryData *b = MEMBER(m, f, ProtobufCBinaryData);
  return SLICE(b->data, b->len);
}

bool api_get_bool(const ProtobufCMessage *m, const char *field) {
  const ProtobufCFieldDescriptor *f = field_of(m, field);
  if (!f || f->type != PROTOBUF_C_TYPE_BOOL || f->label == PROTOBUF_C_LABEL_REPEATED)
    return false;
  return *MEMBER(m, f, protobuf_c_boolean) != 0;
}

uint64_t api_get_u64(const ProtobufCMessage *m, const char *field) {
  const ProtobufCFieldDescriptor *f = field_of(m, field);
  if (!f || f->label == PROTOBUF_C_LABEL_REPEATED)
    return 0;
  if (f->type == PROTOBUF_C_TYPE_UINT64 || f->type == PROTOBUF_C_TYPE_FIXED64)
    return *MEMBER(m, f, uint64_t);
  return 0;
}

size_t api_get_strv(const ProtobufCMessage *m, const char *field, char *const **ret) {
  const ProtobufCFieldDescriptor *f = field_of(m, field);
  *ret = NULL;
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label != PROTOBUF_C_LABEL_REPEATED)
    return 0;
  *ret = *MEMBER(m, f, char **);
  return *QUANT(m, f);
}

int api_fill_app_info(ProtobufCMessage *m, const struct tappd_info *i) {
  int r;
  if ((r = api_set_bytes(m, "app_id", i->app_id.data, i->app_id.len)) < 0 ||
      (r = api_set_bytes(m, "instance_id", i->instance_id.data, i->instance_id.len)) < 0 ||
      (r = api_set_string(m, "app_cert", i->app_cert)) < 0 ||
      (r = api_set_string(m, "tcb_info", i->tcb_info)) < 0 ||
      (r = api_set_string(m, "app_name", i->app_name)) < 0 ||
      (r = api_set_bytes(m, "device_id", i->device_id.data, i->device_id.len)) < 0 ||
      (r = api_set_bytes(m, "mr_aggregated", i->mr_aggregated.data, i->mr_aggregated.len)) < 0 ||
      (r = api_set_bytes(m, "os_image_hash", i->os_image_hash.data, i->os_image_hash.len)) < 0 ||
      (r = api_set_string(m, "key_provider_info", i->key_provider_info)) < 0 ||
      (r = api_set_bytes(m, "compose_hash", i->compose_hash.data, i->compose_hash.len)) < 0 ||
      (r = api_set_string(m, "vm_config", i->vm_config)) < 0 ||
      (r = api_set_string(m, "cloud_vendor", i->cloud_vendor)) < 0 ||
      (r = api_set_string(m, "cloud_product", i->cloud_product)) < 0)
    return r;
  return 0;
}

int api_fill_version(ProtobufCMessage *m) {
  int r = api_set_string(m, "version", tappd_version());
  if (r >= 0)
    r = api_set_string(m, "rev", tappd_git_rev());
  return r;
}

int api_fill_quote(struct tappd *t, ProtobufCMessage *m, const uint8_t rd[64], char **ret_error) {
  _cleanup_buf_ struct buf quote = BUF_INIT(BUF_MAX_QUOTE);
  _cleanup_buf_ struct buf log = BUF_INIT(TAPPD_EVENTLOG_MAX);
  int r = tappd_quote(t, rd, &quote, NULL, &log);
  if (r < 0)
    return prpc_error(ret_error, r, "getting a quote: %s", tappd_quote_strerror(r));
  if ((r = buf_terminate(&log)) < 0 || (r = api_set_bytes(m, "quote", quote.data, quote.len)) < 0 ||
      (r = api_set_string(m, "event_log", (const char *)log.data)) < 0)
    return r;
  if (field_of(m, "report_data") && (r = api_set_bytes(m, "report_data", rd, 64)) < 0)
    return r;
  if (field_of(m, "vm_config") && (r = api_set_string(m, "vm_config", t->vm_config)) < 0)
    return r;
  return 0;
}

int tappd_api_init(struct tappd *t, struct tappd_api *api, char *err, size_t errlen) {
  memset(api, 0, sizeof(*api));
  int r;
  if ((r = tappd_api_methods(api->tappd_methods, ARRAY_SIZE(api->tappd_methods), err, errlen)) <
          0 ||
      (r = guest_api_methods(api->guest_methods, ARRAY_SIZE(api->guest_methods), err, errlen)) <
          0 ||
      (r = worker_api_methods(api->worker_methods, ARRAY_SIZE(api->worker_methods), err,
                              errlen)) < 0)
    return r;
  /* tappd.sock: /prpc/Tappd.<Method> and /prpc/<Method>. */
  for (int i = 0; i < 2; i++)
    api->tappd_svcs[i] = (struct prpc_service){.desc = &tappd__tappd__descriptor,
                                               .mount = i == 0 ? "/prpc/Tappd." : "/prpc/",
                                               .methods = api->tappd_methods,
                                               .n_methods = tappd__tappd__descriptor.n_methods,
                                               .ud = t};
  api->guest_svcs[0] = (struct prpc_service){.desc = &dstack__dstack_guest__descriptor,
                                             .mount = "/",
                                             .methods = api->guest_methods,
                                             .n_methods = dstack__dstack_guest__descriptor.n_methods,
                                             .ud = t};
  api->worker_svcs[0] = (struct prpc_service){.desc = &tappd__worker__descriptor,
                                              .mount = "/prpc/Worker.",
                                              .methods = api->worker_methods,
                                              .n_methods = tappd__worker__descriptor.n_methods,
                                              .ud = t};
  api->tappd = (struct prpc_router){.svcs = api->tappd_svcs, .n = 2};
  api->guest = (struct prpc_router){.svcs = api->guest_svcs, .n = 1};
  api->worker = (struct prpc_router){.svcs = api->worker_svcs, .n = 1};
  return 0;
}

int api_fill_tls_key(ProtobufCMessage *m, const struct tappd_tls_key *k) {
  int r = api_set_string(m, "key", k->key_pem);
  for (size_t i = 0; r >= 0 && k->chain && k->chain[i]; i++)
    r = api_add_string(m, "certificate_chain", k->chain[i]);
  return r < 0 ? r : 0;
}

int api_info_reply(struct tappd *t, bool external, const ProtobufCMessageDescriptor *d,
                   ProtobufCMessage **ret_out, char **ret_error) {
  struct tappd_info info;
  int r = tappd_info(t, external, &info, ret_error);
  if (r < 0)
    return r;
  ProtobufCMessage *out = NULL;
  if ((r = prpc_message_new(d, &out)) >= 0)
    r = api_fill_app_info(out, &info);
  tappd_info_free(&info);
  return prpc_reply_done(r, out, ret_out);
}

int api_version_reply(const ProtobufCMessageDescriptor *d, ProtobufCMessage **ret_out) {
  ProtobufCMessage *out = NULL;
  int r = prpc_message_new(d, &out);
  if (r >= 0)
    r = api_fill_version(out);
  return prpc_reply_done(r, out, ret_out);
}

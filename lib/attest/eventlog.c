/* Event list handling shared by all event-log formats: building, replay, runtime digests (V1 and
 * the JCS-based V2), the seed-era JSON line, lookups and the newest-format JSON output. */
#include "attest/eventlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"
#include "base/macro.h"
#include "crypto/hash.h"

static void event_clear(struct tdx_event *e) {
  free(e->event);
  free(e->payload);
  free(e->preimage);
  *e = (struct tdx_event){0};
}

void eventlog_free(struct eventlog *log) {
  if (!log)
    return;
  for (size_t i = 0; i < log->n; i++)
    event_clear(&log->ev[i]);
  free(log->ev);
  *log = (struct eventlog){0};
}

static int eventlog_grow(struct eventlog *log) {
  if (log->n >= EVENTLOG_MAX_EVENTS)
    return -ENOBUFS;
  if (log->n < log->alloc)
    return 0;
  size_t na = log->alloc ? log->alloc * 2 : 16;
  if (na > EVENTLOG_MAX_EVENTS)
    na = EVENTLOG_MAX_EVENTS;
  struct tdx_event *p = reallocarray(log->ev, na, sizeof(*p));
  if (!p)
    return -ENOMEM;
  log->ev = p;
  log->alloc = na;
  return 0;
}

/* Well-formed UTF-8 (no overlongs, no surrogates, max U+10FFFF). */
static bool utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t k;
    uint32_t cp, min;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      k = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      k = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      k = 3, cp = c & 0x07, min = 0x10000;
    } else
      return false;
    if (n - i <= k)
      return false;
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (s[i + j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += k + 1;
  }
  return true;
}

int eventlog_add(struct eventlog *log, uint32_t imr, uint32_t event_type, const uint8_t digest[48],
                 const char *event, const uint8_t *payload, size_t payload_len) {
  if (!log || !digest || (payload_len && !payload))
    return -EINVAL;
  if (imr >= EVENTLOG_N_RTMR && imr != EVENTLOG_IMR_MRTD)
    return -EINVAL;
  if (!event)
    event = "";
  size_t nlen = strnlen(event, EVENTLOG_MAX_NAME + 1);
  if (nlen > EVENTLOG_MAX_NAME)
    return -ENOBUFS;
  if (!utf8_valid((const uint8_t *)event, nlen))
    return -EINVAL;
  if (payload_len > EVENTLOG_MAX_EVENT_DATA)
    return -ENOBUFS;
  int r = eventlog_grow(log);
  if (r < 0)
    return r;

  struct tdx_event e = {.imr = imr, .event_type = event_type};
  memcpy(e.digest, digest, EVENTLOG_DIGEST_SIZE);
  e.event = strdup(event);
  if (!e.event)
    return -ENOMEM;
  if (payload_len) {
    e.payload = malloc(payload_len);
    if (!e.payload) {
      free(e.event);
      return -ENOMEM;
    }
    memcpy(e.payload, payload, payload_len);
    e.payload_len = payload_len;
  }
  log->ev[log->n++] = e;
  return 0;
}

int eventlog_add_runtime(struct eventlog *log, const char *name, const uint8_t *payload,
                         size_t payload_len, int version) {
  uint8_t d[EVENTLOG_DIGEST_SIZE];
  if (!log || !name)
    return -EINVAL;
  int r = eventlog_runtime_digest(name, payload, payload_len, version, d);
  if (r < 0)
    return r;
  r = eventlog_add(log, 3, EVENTLOG_EV_RUNTIME, d, name, payload, payload_len);
  if (r < 0)
    return r;
  log->ev[log->n - 1].version = version;
  return 0;
}

int eventlog_append_log(struct eventlog *log, const struct eventlog *src) {
  if (!log || !src || log == src)
    return -EINVAL;
  size_t n0 = log->n;
  for (size_t i = 0; i < src->n; i++) {
    const struct tdx_event *s = &src->ev[i];
    int r = eventlog_add(log, s->imr, s->event_type, s->digest, s->event, s->payload,
                         s->payload_len);
    if (r >= 0 && s->preimage_len) {
      struct tdx_event *d = &log->ev[log->n - 1];
      d->preimage = malloc(s->preimage_len);
      if (d->preimage) {
        memcpy(d->preimage, s->preimage, s->preimage_len);
        d->preimage_len = s->preimage_len;
      } else
        r = -ENOMEM;
    }
    if (r < 0) {
      while (log->n > n0)
        event_clear(&log->ev[--log->n]);
      return r;
    }
    log->ev[log->n - 1].version = s->version;
  }
  return 0;
}

int eventlog_replay(const struct eventlog *log, uint8_t ret_rtmr[EVENTLOG_N_RTMR][48]) {
  if (!log || !ret_rtmr || (log->n && !log->ev))
    return -EINVAL;
  uint8_t acc[EVENTLOG_N_RTMR][48] = {{0}};
  uint8_t in[96];
  for (size_t i = 0; i < log->n; i++) {
    const struct tdx_event *e = &log->ev[i];
    if (e->event_type == EVENTLOG_EV_NO_ACTION || e->imr >= EVENTLOG_N_RTMR)
      continue;
    memcpy(in, acc[e->imr], 48);
    memcpy(in + 48, e->digest, 48);
    sha384(in, sizeof(in), acc[e->imr]);
  }
  memcpy(ret_rtmr, acc, sizeof(acc));
  return 0;
}

/* A JSON string as RFC 8785 (and serde_json) write it: only '"', '\\' and control characters are
 * escaped, short forms where they exist, everything else raw UTF-8. */
static int json_string_append(struct buf *out, const char *s) {
  static const char xd[] = "0123456789abcdef";
  int r = buf_append_u8(out, '"');
  for (const unsigned char *p = (const unsigned char *)s; r >= 0 && *p; p++) {
    switch (*p) {
    case '"':
      r = buf_append(out, "\\\"", 2);
      break;
    case '\\':
      r = buf_append(out, "\\\\", 2);
      break;
    case '\b':
      r = buf_append(out, "\\b", 2);
      break;
    case '\f':
      r = buf_append(out, "\\f", 2);
      break;
    case '\n':
      r = buf_append(out, "\\n", 2);
      break;
    case '\r':
      r = buf_append(out, "\\r", 2);
      break;
    case '\t':
      r = buf_append(out, "\\t", 2);
      break;
    default:
      if (*p < 0x20) {
        char u[6] = {'\\', 'u', '0', '0', xd[*p >> 4], xd[*p & 15]};
        r = buf_append(out, u, sizeof(u));
      } else
        r = buf_append_u8(out, *p);
    }
  }
  if (r >= 0)
    r = buf_append_u8(out, '"');
  return r;
}

int eventlog_runtime_digest(const char *name, const uint8_t *payload, size_t len, int version,
                            uint8_t out[48]) {
  if (!name || !out || (len && !payload))
    return -EINVAL;
  size_t nlen = strnlen(name, EVENTLOG_MAX_NAME + 1);
  if (nlen > EVENTLOG_MAX_NAME || len > EVENTLOG_MAX_EVENT_DATA)
    return -ENOBUFS;

  _cleanup_(hash_ctx_freep) struct hash_ctx *h = NULL;
  int r = hash_ctx_new(HASH_SHA384, &h);
  if (r < 0)
    return r;

  if (version == 1) {
    uint8_t t[4];
    le32_write(t, EVENTLOG_EV_RUNTIME);
    if ((r = hash_ctx_update(h, t, 4)) < 0 || (r = hash_ctx_update(h, ":", 1)) < 0 ||
        (r = hash_ctx_update(h, name, nlen)) < 0 || (r = hash_ctx_update(h, ":", 1)) < 0 ||
        (r = hash_ctx_update(h, payload ? (const void *)payload : "", len)) < 0)
      return r;
    return hash_ctx_final(h, out);
  }
  if (version != 2)
    return -EINVAL;
  /* JCS of {"name":…,"payload":"<hex>","type":134217729}: keys already in sorted order. */
  if (!utf8_valid((const uint8_t *)name, nlen))
    return -EINVAL;
  _cleanup_buf_ struct buf j =
      BUF_INIT(64 + 6 * EVENTLOG_MAX_NAME + 2 * EVENTLOG_MAX_EVENT_DATA);
  if ((r = buf_append_str(&j, "{\"name\":")) < 0 || (r = json_string_append(&j, name)) < 0 ||
      (r = buf_append_str(&j, ",\"payload\":\"")) < 0 || (r = hex_append(&j, payload, len)) < 0 ||
      (r = buf_printf(&j, "\",\"type\":%u}", (unsigned)EVENTLOG_EV_RUNTIME)) < 0)
    return r;
  if ((r = hash_ctx_update(h, j.data, j.len)) < 0)
    return r;
  return hash_ctx_final(h, out);
}

int eventlog_seed_line(uint32_t imr, uint32_t type, const uint8_t digest48[48], const char *assoc,
                       struct buf *out) {
  if (!digest48 || !assoc || !out)
    return -EINVAL;
  if (!utf8_valid((const uint8_t *)assoc, strlen(assoc)))
    return -EINVAL;
  size_t len0 = out->len;
  int r;
  if ((r = buf_printf(out, "{\"imr\":%" PRIu32 ",\"event_type\":%" PRIu32 ",\"digest\":\"", imr,
                      type)) < 0 ||
      (r = hex_append(out, digest48, 48)) < 0 ||
      (r = buf_append_str(out, "\",\"associated_data\":")) < 0 ||
      (r = json_string_append(out, assoc)) < 0 || (r = buf_append_str(out, "}\n")) < 0) {
    out->len = len0;
    return r;
  }
  return 0;
}

int eventlog_runtime_line(const char *name, const uint8_t digest48[48], const uint8_t *payload,
                          size_t len, struct buf *out) {
  if (!name || !digest48 || !out || (len && !payload))
    return -EINVAL;
  if (!utf8_valid((const uint8_t *)name, strlen(name)))
    return -EINVAL;
  size_t len0 = out->len;
  int r;
  if ((r = buf_printf(out, "{\"imr\":3,\"event_type\":%u,\"digest\":\"",
                      (unsigned)EVENTLOG_EV_RUNTIME)) < 0 ||
      (r = hex_append(out, digest48, 48)) < 0 || (r = buf_append_str(out, "\",\"event\":")) < 0 ||
      (r = json_string_append(out, name)) < 0 ||
      (r = buf_append_str(out, ",\"event_payload\":\"")) < 0 ||
      (r = hex_append(out, payload, len)) < 0 || (r = buf_append_str(out, "\"}\n")) < 0) {
    out->len = len0;
    return r;
  }
  return 0;
}

int eventlog_find(const struct eventlog *log, uint32_t imr, const char *name,
                  const struct tdx_event **ret) {
  if (!log || !name)
    return -EINVAL;
  for (size_t i = 0; i < log->n; i++) {
    const struct tdx_event *e = &log->ev[i];
    if (e->imr == imr && e->event && strcmp(e->event, name) == 0) {
      if (ret)
        *ret = e;
      return 0;
    }
  }
  return -ENOENT;
}

static int ev_json_set_hex(json_t *o, const char *key, const uint8_t *data, size_t len) {
  char *h = hex_encode_alloc(data ? (const void *)data : "", len);
  if (!h)
    return -ENOMEM;
  json_t *s = json_string(h);
  free(h);
  if (!s || json_object_set_new(o, key, s) < 0)
    return -ENOMEM;
  return 0;
}

static int event_to_json(const struct tdx_event *e, unsigned flags, json_t **ret) {
  bool strip = (flags & EVENTLOG_JSON_API) && e->imr != 3;
  json_t *o = json_object();
  if (!o)
    return -ENOMEM;
  int r = -ENOMEM;
  if (json_object_set_new(o, "imr", json_integer(e->imr)) < 0 ||
      json_object_set_new(o, "event_type", json_integer(e->event_type)) < 0)
    goto out;
  if ((r = ev_json_set_hex(o, "digest", e->digest, 48)) < 0)
    goto out;
  r = -ENOMEM;
  if (json_object_set_new(o, "event", json_string(e->event ? e->event : "")) < 0)
    goto out;
  if ((r = ev_json_set_hex(o, "event_payload", e->payload, strip ? 0 : e->payload_len)) < 0)
    goto out;
  r = -ENOMEM;
  if (e->version == 2 && json_object_set_new(o, "version", json_integer(2)) < 0)
    goto out;
  if (e->preimage_len && !strip &&
      (r = ev_json_set_hex(o, "preimage", e->preimage, e->preimage_len)) < 0)
    goto out;
  *ret = o;
  return 0;
out:
  json_decref(o);
  return r;
}

int eventlog_to_json(const struct eventlog *log, unsigned flags, json_t **ret) {
  if (!log || !ret || (log->n && !log->ev))
    return -EINVAL;
  json_t *a = json_array();
  if (!a)
    return -ENOMEM;
  for (size_t i = 0; i < log->n; i++) {
    if (log->ev[i].imr >= EVENTLOG_N_RTMR)
      continue;
    json_t *o;
    int r = event_to_json(&log->ev[i], flags, &o);
    if (r >= 0 && json_array_append_new(a, o) < 0)
      r = -ENOMEM;
    if (r < 0) {
      json_decref(a);
      return r;
    }
  }
  *ret = a;
  return 0;
}

int eventlog_to_json_text(const struct eventlog *log, unsigned flags, struct buf *out) {
  json_t *a;
  if (!out)
    return -EINVAL;
  int r = eventlog_to_json(log, flags, &a);
  if (r < 0)
    return r;
  char *s = json_dumps(a, JSON_COMPACT);
  json_decref(a);
  if (!s)
    return -ENOMEM;
  r = buf_append_str(out, s);
  free(s);
  return r;
}

/* Runtime event logs in JSON:
 *  - seed era, one object per line:
 *    {"imr":3,"event_type":1,"digest":"<hex>","associated_data":"…"}
 *    (digest up to 48 bytes, right-padded with zeros);
 *  - runtime log lines {"event":"…","payload":"<base64>","version":2?} (RTMR3, digest computed);
 *  - the newest array [{imr, event_type, digest, event, event_payload (hex), version?, preimage?}]
 *    (objects of that shape are also accepted as lines).
 * Strict: any bad line or element fails the whole parse. Unknown keys are ignored. */
#include <errno.h>
#include <string.h>

#include "attest/eventlog.h"
#include "base/base64.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "crypto/hash.h"

/* V2 preimage: the JCS text, at most about 6 bytes per name byte plus two per payload byte. */
#define PREIMAGE_MAX (2 * EVENTLOG_MAX_EVENT_DATA + 6 * EVENTLOG_MAX_NAME + 64)

/* Errors from the JSON getters (wrong type, absent, out of range) are malformed input; caps and
 * allocation failures keep their code. */
static int bad(int r) {
  return (r == -ENOMEM || r == -ENOBUFS) ? r : -EBADMSG;
}

static int get_imr(const json_t *o, uint32_t *ret) {
  int r = json_get_u32(o, "imr", ret);
  if (r < 0)
    return bad(r);
  return *ret < EVENTLOG_N_RTMR ? 0 : -EBADMSG;
}

/* A hex digest of at most 48 bytes, right-padded with zeros. *ret_given is false when the key is
 * absent or the string empty; an absent key is an error when required. */
static int get_digest(const json_t *o, bool required, uint8_t ret[48], bool *ret_given) {
  _cleanup_buf_ struct buf b = BUF_INIT(EVENTLOG_DIGEST_SIZE);
  const char *s;
  int r = json_get_str(o, "digest", &s);
  memset(ret, 0, EVENTLOG_DIGEST_SIZE);
  *ret_given = false;
  if (r == -ENOENT && !required)
    return 0;
  if (r < 0)
    return -EBADMSG;
  if (hex_decode_buf(s, strlen(s), false, &b) < 0)
    return -EBADMSG; /* bad characters, odd length or longer than 48 bytes */
  if (b.len)
    memcpy(ret, b.data, b.len);
  *ret_given = b.len > 0;
  return 0;
}

static int get_name(const json_t *o, const char *key, const char **ret) {
  int r = json_get_str(o, key, ret);
  if (r < 0)
    return -EBADMSG;
  if (strnlen(*ret, EVENTLOG_MAX_NAME + 1) > EVENTLOG_MAX_NAME)
    return -ENOBUFS;
  return 0;
}

static int parse_seed_obj(const json_t *o, struct eventlog *log) {
  uint32_t imr, type;
  uint8_t digest[EVENTLOG_DIGEST_SIZE];
  const char *assoc;
  bool have;
  int r;

  if ((r = get_imr(o, &imr)) < 0)
    return r;
  if ((r = json_get_u32(o, "event_type", &type)) < 0)
    return bad(r);
  if ((r = get_digest(o, true, digest, &have)) < 0)
    return r;
  if ((r = get_name(o, "associated_data", &assoc)) < 0)
    return r;
  return eventlog_add(log, imr, type, digest, assoc, NULL, 0);
}

static int get_version(const json_t *o, int *ret) {
  uint32_t v;
  int r = json_get_u32(o, "version", &v);
  if (r == -ENOENT)
    return 0;
  if (r < 0 || (v != 1 && v != 2))
    return -EBADMSG;
  *ret = (int)v;
  return 0;
}

static int parse_runtime_line(const json_t *o, struct eventlog *log) {
  _cleanup_buf_ struct buf payload = BUF_INIT(EVENTLOG_MAX_EVENT_DATA);
  const char *name;
  int version = 1, r;

  if ((r = get_name(o, "event", &name)) < 0)
    return r;
  if ((r = json_get_base64_buf(o, "payload", &payload)) < 0)
    return bad(r);
  if ((r = get_version(o, &version)) < 0)
    return r;
  return eventlog_add_runtime(log, name, payload.data, payload.len, version);
}

static int parse_tdx_event_obj(const json_t *o, struct eventlog *log) {
  _cleanup_buf_ struct buf payload = BUF_INIT(EVENTLOG_MAX_EVENT_DATA);
  _cleanup_buf_ struct buf pre = BUF_INIT(PREIMAGE_MAX);
  uint32_t imr, type;
  uint8_t digest[EVENTLOG_DIGEST_SIZE];
  const char *name;
  bool have_digest, have_pre;
  int version = 0, r;

  if ((r = get_imr(o, &imr)) < 0)
    return r;
  if ((r = json_get_u32(o, "event_type", &type)) < 0)
    return bad(r);
  if ((r = get_name(o, "event", &name)) < 0)
    return r;
  if ((r = json_get_hex_buf(o, "event_payload", &payload)) < 0)
    return bad(r);
  if ((r = get_version(o, &version)) < 0)
    return r;
  if ((r = get_digest(o, type != EVENTLOG_EV_RUNTIME, digest, &have_digest)) < 0)
    return r;
  r = json_get_hex_buf(o, "preimage", &pre);
  if (r < 0 && r != -ENOENT)
    return bad(r);
  have_pre = r == 0;

  if (type == EVENTLOG_EV_RUNTIME) {
    uint8_t want[EVENTLOG_DIGEST_SIZE];
    if (!version)
      version = 1;
    if ((r = eventlog_runtime_digest(name, payload.data, payload.len, version, want)) < 0)
      return r == -EINVAL ? -EBADMSG : r;
    if (have_digest && memcmp(digest, want, sizeof(want)) != 0) {
      log_debug("eventlog: digest of runtime event '%s' does not match its payload", name);
      return -EBADMSG;
    }
    memcpy(digest, want, sizeof(want));
  }

  if (have_pre) {
    uint8_t h[48];
    sha384(pre.data ? (const void *)pre.data : "", pre.len, h);
    if (memcmp(h, digest, sizeof(h)) != 0) {
      log_debug("eventlog: preimage of event '%s' does not hash to its digest", name);
      return -EBADMSG;
    }
  }

  if ((r = eventlog_add(log, imr, type, digest, name, payload.data, payload.len)) < 0)
    return r;
  struct tdx_event *e = &log->ev[log->n - 1];
  e->version = version;
  if (have_pre && pre.len) {
    e->preimage = buf_steal(&pre, &e->preimage_len);
    if (!e->preimage)
      return -ENOMEM;
  }
  return 0;
}

static int parse_line(const char *s, size_t len, struct eventlog *log) {
  _cleanup_json_ json_t *j = NULL;
  int r = json_parse_buf(s, len, EVENTLOG_MAX_LOG, &j);
  if (r < 0)
    return bad(r);
  if (!json_is_object(j))
    return -EBADMSG;
  if (json_object_get(j, "imr")) {
    if (json_object_get(j, "associated_data"))
      return parse_seed_obj(j, log);
    return parse_tdx_event_obj(j, log);
  }
  if (json_object_get(j, "event"))
    return parse_runtime_line(j, log);
  return -EBADMSG;
}

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int parse_lines(const char *text, size_t len, struct eventlog *log) {
  size_t pos = 0, lineno = 0;
  while (pos < len) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - text) : len;
    size_t a = pos, b = end;
    lineno++;
    while (a < b && is_space(text[a]))
      a++;
    while (b > a && is_space(text[b - 1]))
      b--;
    if (b > a) {
      int r = parse_line(text + a, b - a, log);
      if (r < 0) {
        log_debug("eventlog: bad line %zu: %s", lineno, strerror(-r));
        return r;
      }
    }
    pos = end + 1;
  }
  return 0;
}

static int parse_array(const char *text, size_t len, struct eventlog *log) {
  _cleanup_json_ json_t *j = NULL;
  int r = json_parse_buf(text, len, EVENTLOG_MAX_LOG, &j);
  if (r < 0)
    return bad(r);
  if (!json_is_array(j))
    return -EBADMSG;
  if (json_array_size(j) > EVENTLOG_MAX_EVENTS)
    return -ENOBUFS;
  for (size_t i = 0; i < json_array_size(j); i++) {
    const json_t *o = json_array_get(j, i);
    if (!json_is_object(o))
      return -EBADMSG;
    if ((r = parse_tdx_event_obj(o, log)) < 0) {
      log_debug("eventlog: bad event %zu: %s", i, strerror(-r));
      return r;
    }
  }
  return 0;
}

int eventlog_parse_json(const char *text, size_t len, struct eventlog *ret) {
  if (!ret || (len && !text))
    return -EINVAL;
  *ret = EVENTLOG_INIT;
  if (len > EVENTLOG_MAX_LOG)
    return -ENOBUFS;
  size_t i = 0;
  while (i < len && is_space(text[i]))
    i++;
  int r = (i < len && text[i] == '[') ? parse_array(text + i, len - i, ret)
                                      : parse_lines(text, len, ret);
  if (r < 0)
    eventlog_free(ret);
  return r;
}

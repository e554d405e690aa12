/* The boot-time TCG crypto-agile event log of a TDX guest (ACPI CCEL log area) and the ACPI CCEL
 * table that points at it.
 *
 * Log area layout: one legacy TCG_PCClientPCREvent carrying the TCG_EfiSpecIDEvent
 * ("Spec ID Event03", which lists the algorithm ids and digest sizes), then TCG_PCR_EVENT2
 * records {u32 mr_index, u32 event_type, u32 digest count, count x {u16 alg, digest}, u32 size,
 * event data}. The area ends at an event header of all 0xFF bytes, at zero padding, or at the
 * end of the data. All integers are little-endian. */
#include <errno.h>
#include <string.h>

#include "attest/eventlog.h"
#include "base/log.h"
#include "base/macro.h"

#define TPM_ALG_SHA384 0x000c
#define SPEC_ID_SIGNATURE "Spec ID Event03" /* 16 bytes with the NUL */
#define SPEC_ID_MAX_ALGS 8
#define EVENT_MAX_DIGESTS 8
#define DIGEST_MAX_SIZE 64
#define MR_INDEX_MAX 4 /* 0 = MRTD, 1..4 = RTMR0..3 */

struct spec_alg {
  uint16_t id;
  uint16_t size;
};

struct spec_id {
  size_t n;
  struct spec_alg alg[SPEC_ID_MAX_ALGS];
};

static const struct spec_alg *spec_find(const struct spec_id *s, uint16_t id) {
  for (size_t i = 0; i < s->n; i++)
    if (s->alg[i].id == id)
      return &s->alg[i];
  return NULL;
}

/* The first event: legacy format, EV_NO_ACTION, SHA-1 sized digest field. */
static int parse_spec_id_event(struct cursor *c, struct spec_id *ret) {
  uint32_t pcr, type, size;
  struct slice data;
  int r;

  if ((r = cursor_u32le(c, &pcr)) < 0 || (r = cursor_u32le(c, &type)) < 0 ||
      (r = cursor_skip(c, 20)) < 0 || (r = cursor_u32le(c, &size)) < 0)
    return r;
  /* The TCG spec puts it on index 0; TDX firmware writes 1. Only the type is checked. */
  if (type != EVENTLOG_EV_NO_ACTION) {
    log_debug("ccel: first event is not a Spec ID event (index %u, type %u)", pcr, type);
    return -EBADMSG;
  }
  if (size > EVENTLOG_MAX_EVENT_DATA)
    return -ENOBUFS;
  if ((r = cursor_slice(c, size, &data)) < 0)
    return r;

  struct cursor s;
  const uint8_t *sig;
  uint32_t nalg;
  uint8_t vendor_size;
  cursor_init(&s, data.ptr, data.len);
  if (cursor_left(&s) < sizeof(SPEC_ID_SIGNATURE))
    return -EBADMSG;
  sig = cursor_pos(&s);
  if (memcmp(sig, SPEC_ID_SIGNATURE, sizeof(SPEC_ID_SIGNATURE)) != 0) {
    log_debug("ccel: bad Spec ID signature");
    return -EBADMSG;
  }
  /* signature, platformClass u32, specVersionMinor/Major, specErrata, uintnSize (u8 each) */
  if ((r = cursor_skip(&s, sizeof(SPEC_ID_SIGNATURE) + 4 + 4)) < 0 ||
      (r = cursor_u32le(&s, &nalg)) < 0)
    return r;
  if (nalg == 0 || nalg > SPEC_ID_MAX_ALGS) {
    log_debug("ccel: Spec ID lists %u algorithms", nalg);
    return -EBADMSG;
  }
  ret->n = 0;
  for (uint32_t i = 0; i < nalg; i++) {
    struct spec_alg a;
    if ((r = cursor_u16le(&s, &a.id)) < 0 || (r = cursor_u16le(&s, &a.size)) < 0)
      return r;
    if (a.size == 0 || a.size > DIGEST_MAX_SIZE || spec_find(ret, a.id))
      return -EBADMSG;
    ret->alg[ret->n++] = a;
  }
  if ((r = cursor_u8(&s, &vendor_size)) < 0 || (r = cursor_skip(&s, vendor_size)) < 0)
    return r;

  const struct spec_alg *sha384 = spec_find(ret, TPM_ALG_SHA384);
  if (!sha384) {
    log_debug("ccel: log has no SHA-384 digests (not a TDX log?)");
    return -ENOTSUP;
  }
  if (sha384->size != EVENTLOG_DIGEST_SIZE)
    return -EBADMSG;
  return 0;
}

static bool bytes_uniform(const uint8_t *p, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v)
      return false;
  return true;
}

/* True at the end of the event stream: no data, a 0xFF terminator or zero padding. */
static int at_end(const struct cursor *c, bool *ret) {
  size_t left = cursor_left(c);
  const uint8_t *p = cursor_pos(c);
  if (left == 0) {
    *ret = true;
    return 0;
  }
  if (left < 8) {
    /* A short tail is only acceptable as padding. */
    if (bytes_uniform(p, left, 0xff) || bytes_uniform(p, left, 0x00)) {
      *ret = true;
      return 0;
    }
    return -EBADMSG;
  }
  uint32_t mr = le32_read(p), type = le32_read(p + 4);
  *ret = (mr == UINT32_MAX && type == UINT32_MAX) || (mr == 0 && type == 0);
  return 0;
}

static int parse_event2(struct cursor *c, const struct spec_id *spec, struct eventlog *log) {
  uint32_t mr, type, count, size;
  uint8_t digest[EVENTLOG_DIGEST_SIZE];
  bool have = false;
  struct slice data;
  int r;

  if ((r = cursor_u32le(c, &mr)) < 0 || (r = cursor_u32le(c, &type)) < 0 ||
      (r = cursor_u32le(c, &count)) < 0)
    return r;
  if (mr > MR_INDEX_MAX) {
    log_debug("ccel: MR index %u out of range", mr);
    return -EBADMSG;
  }
  if (count == 0 || count > EVENT_MAX_DIGESTS) {
    log_debug("ccel: digest count %u", count);
    return -EBADMSG;
  }
  for (uint32_t i = 0; i < count; i++) {
    uint16_t alg;
    struct slice d;
    if ((r = cursor_u16le(c, &alg)) < 0)
      return r;
    const struct spec_alg *a = spec_find(spec, alg);
    if (!a) {
      log_debug("ccel: digest algorithm 0x%04x not in the Spec ID header", alg);
      return -EBADMSG;
    }
    if ((r = cursor_slice(c, a->size, &d)) < 0)
      return r;
    if (alg == TPM_ALG_SHA384) {
      if (have)
        return -EBADMSG;
      memcpy(digest, d.ptr, EVENTLOG_DIGEST_SIZE);
      have = true;
    }
  }
  if (!have)
    return -EBADMSG;
  if ((r = cursor_u32le(c, &size)) < 0)
    return r;
  if (size > EVENTLOG_MAX_EVENT_DATA)
    return -ENOBUFS;
  if ((r = cursor_slice(c, size, &data)) < 0)
    return r;
  return eventlog_add(log, mr == 0 ? EVENTLOG_IMR_MRTD : mr - 1, type, digest, "", data.ptr,
                      data.len);
}

int eventlog_parse_ccel(const uint8_t *data, size_t len, struct eventlog *ret) {
  struct spec_id spec = {0};
  struct cursor c;
  int r;

  if (!ret || (len && !data))
    return -EINVAL;
  *ret = EVENTLOG_INIT;
  if (len > EVENTLOG_MAX_LOG)
    return -ENOBUFS;
  cursor_init(&c, data, len);
  if ((r = parse_spec_id_event(&c, &spec)) < 0)
    return r;

  for (;;) {
    bool end;
    if ((r = at_end(&c, &end)) < 0)
      goto fail;
    if (end)
      break;
    if ((r = parse_event2(&c, &spec, ret)) < 0)
      goto fail;
  }
  return 0;
fail:
  log_debug("ccel: bad event %zu at offset %zu: %s", ret->n, c.off, strerror(-r));
  eventlog_free(ret);
  return r;
}

int eventlog_parse_ccel_table(const uint8_t *data, size_t len, struct ccel_table *ret) {
  if (!data || !ret)
    return -EINVAL;
  /* ACPI header (36) + cc type, subtype, reserved u16, LAML u64, LASA u64 */
  if (len < 56 || memcmp(data, "CCEL", 4) != 0)
    return -EBADMSG;
  uint32_t tlen = le32_read(data + 4);
  if (tlen < 56 || tlen > len)
    return -EBADMSG;
  uint8_t sum = 0;
  for (size_t i = 0; i < tlen; i++)
    sum = (uint8_t)(sum + data[i]);
  if (sum != 0) {
    log_debug("ccel: table checksum mismatch");
    return -EBADMSG;
  }
  *ret = (struct ccel_table){0};
  ret->revision = data[8];
  memcpy(ret->oem_id, data + 10, 6);
  memcpy(ret->oem_table_id, data + 16, 8);
  ret->cc_type = data[36];
  ret->cc_subtype = data[37];
  ret->laml = le64_read(data + 40);
  ret->lasa = le64_read(data + 48);
  return 0;
}

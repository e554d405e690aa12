/* TDX event logs and RTMR replay.
 *
 * Three input formats end up in one in-memory list (struct eventlog):
 *  - the boot-time TCG crypto-agile log from the ACPI CCEL table (eventlog_parse_ccel);
 *  - the seed-era runtime log, JSON lines {"imr","event_type","digest","associated_data"};
 *  - the newest JSON array [{imr, event_type, digest, event, event_payload, version?, preimage?}]
 *    and the runtime log JSON lines {"event":…,"payload":"<base64>"} (eventlog_parse_json
 *    detects which one it got).
 * Replay: RTMR[i] starts as 48 zero bytes; for each event on IMR i (EV_NO_ACTION skipped)
 * RTMR[i] = SHA-384(RTMR[i] || digest).
 *
 * Errors: -EBADMSG malformed input, -ENOBUFS a cap exceeded, -ENOTSUP a log without SHA-384
 * (e.g. an SM3 log), -EINVAL bad arguments, -ENOENT event not found, -ENOMEM. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define EVENTLOG_DIGEST_SIZE 48
#define EVENTLOG_N_RTMR 4
/* imr value of CCEL events on MR index 0 (MRTD): kept in the list, never replayed. */
#define EVENTLOG_IMR_MRTD UINT32_MAX

/* Caps for untrusted logs. */
#define EVENTLOG_MAX_LOG ((size_t)16 * 1024 * 1024)
#define EVENTLOG_MAX_EVENTS ((size_t)65536)
#define EVENTLOG_MAX_EVENT_DATA ((size_t)1024 * 1024)
#define EVENTLOG_MAX_NAME ((size_t)1024)

/* TCG event types used here. */
#define EVENTLOG_EV_NO_ACTION 0x00000003u
#define EVENTLOG_EV_RUNTIME 0x08000001u /* dstack runtime events (RTMR3) */
#define EVENTLOG_EV_SEED 0x00000001u   /* seed-era JSON lines */

struct tdx_event {
  uint32_t imr;        /* RTMR index 0..3, or EVENTLOG_IMR_MRTD */
  uint32_t event_type;
  uint8_t digest[EVENTLOG_DIGEST_SIZE]; /* the 48-byte extend value */
  char *event;         /* runtime event name or seed associated_data; "" when none, never NULL */
  uint8_t *payload;    /* CCEL event data / runtime payload; NULL when payload_len == 0 */
  size_t payload_len;
  int version;         /* runtime digest version (1 or 2) for newest-format events, else 0 */
  uint8_t *preimage;   /* optional "preimage" of the newest format; NULL when absent */
  size_t preimage_len;
};

struct eventlog {
  struct tdx_event *ev;
  size_t n;
  size_t alloc; /* internal */
};

#define EVENTLOG_INIT ((struct eventlog){0})

/* Frees all events; the log becomes empty. NULL is fine. */
void eventlog_free(struct eventlog *log);
static inline void eventlog_freep(struct eventlog *log) {
  eventlog_free(log);
}
#define _cleanup_eventlog_ _cleanup_(eventlog_freep)

/* Boot-time log: the CCEL log area bytes (e.g. /sys/firmware/acpi/tables/data/CCEL).
 * The Spec ID header event is checked and not added to the list; events on MR index 0 get
 * imr = EVENTLOG_IMR_MRTD; only the SHA-384 digest is kept. ret is initialised here
 * (any previous content is not freed). */
int eventlog_parse_ccel(const uint8_t *data, size_t len, struct eventlog *ret);

/* The ACPI CCEL table (/sys/firmware/acpi/tables/CCEL): 56 bytes. */
struct ccel_table {
  uint8_t revision;
  char oem_id[7];       /* NUL-terminated */
  char oem_table_id[9]; /* NUL-terminated */
  uint8_t cc_type;      /* 2 = TDX */
  uint8_t cc_subtype;
  uint64_t laml;        /* log area minimum length */
  uint64_t lasa;        /* log area start address */
};
int eventlog_parse_ccel_table(const uint8_t *data, size_t len, struct ccel_table *ret);

/* Runtime logs: seed JSON lines, runtime JSON lines ({"event","payload"<base64>}) or the newest
 * JSON array. Strict: one bad line or element fails the whole parse; unknown keys are ignored.
 * Newest-format events of type EVENTLOG_EV_RUNTIME must carry the digest computed from
 * event + payload (V1, or V2 when "version" is 2). ret is initialised here. */
int eventlog_parse_json(const char *text, size_t len, struct eventlog *ret);

/* Replays all events (skipping EVENTLOG_EV_NO_ACTION and MRTD events) into RTMR0..3. */
int eventlog_replay(const struct eventlog *log, uint8_t ret_rtmr[EVENTLOG_N_RTMR][48]);

/* Digest of a runtime event: version 1 = SHA-384(le32(0x08000001) || ":" || name || ":" ||
 * payload); version 2 = SHA-384 of the JCS text {"name":…,"payload":"<hex>","type":134217729}. */
int eventlog_runtime_digest(const char *name, const uint8_t *payload, size_t len, int version,
                            uint8_t out[48]);

/* One seed-era JSON line {"imr":…,"event_type":…,"digest":"<96 hex>","associated_data":"…"}
 * with a trailing '\n', appended to out. */
int eventlog_seed_line(uint32_t imr, uint32_t type, const uint8_t digest48[48], const char *assoc,
                       struct buf *out);
/* One runtime-event JSON line on RTMR3, {"imr":3,"event_type":134217729,"digest":"<96 hex>",
 * "event":"<name>","event_payload":"<hex>"} with a trailing '\n', appended to out. */
int eventlog_runtime_line(const char *name, const uint8_t digest48[48], const uint8_t *payload,
                          size_t len, struct buf *out);

/* First event with that imr and event name (seed: associated_data). -ENOENT when none.
 * *ret points into log. Not for identity: anything may write a name (boot_events.h). */
int eventlog_find(const struct eventlog *log, uint32_t imr, const char *name,
                  const struct tdx_event **ret);

/* Appends a deep copy of an event built from these fields (payload may be NULL when len is 0;
 * event may be NULL for ""). -ENOBUFS past EVENTLOG_MAX_EVENTS. */
int eventlog_add(struct eventlog *log, uint32_t imr, uint32_t event_type, const uint8_t digest[48],
                 const char *event, const uint8_t *payload, size_t payload_len);
/* Appends a runtime event on RTMR3 (type EVENTLOG_EV_RUNTIME, digest computed with version). */
int eventlog_add_runtime(struct eventlog *log, const char *name, const uint8_t *payload,
                         size_t payload_len, int version);
/* Appends deep copies of all events of src to log. */
int eventlog_append_log(struct eventlog *log, const struct eventlog *src);

/* Newest-format JSON array (imr, event_type, digest, event, event_payload, and version /
 * preimage when set). With EVENTLOG_JSON_API, RTMR0-2 entries keep only their digest (event and
 * event_payload empty) while RTMR3 entries keep everything. MRTD events are left out. */
enum {
  EVENTLOG_JSON_FULL = 0,
  EVENTLOG_JSON_API = 1 << 0,
};
int eventlog_to_json(const struct eventlog *log, unsigned flags, json_t **ret);
/* The same as compact JSON text (appended to out, not NUL-counted). */
int eventlog_to_json_text(const struct eventlog *log, unsigned flags, struct buf *out);

/* App identity is not looked up by name here: which events count is boot_events.h's rule. */

/* Fuzzes the JSON event-log parser (seed lines, runtime lines, newest array), replay, lookups
 * and JSON output. Invariant: the JSON output parses back to the same replay, unless a seed line
 * carried the runtime event type (seed digests are not verified, newest-format ones are). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attest/boot_events.h"
#include "attest/eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct eventlog log, back;
  uint8_t r1[EVENTLOG_N_RTMR][48], r2[EVENTLOG_N_RTMR][48];
  if (eventlog_parse_json((const char *)data, size, &log) < 0) {
    if (log.n || log.ev)
      __builtin_trap();
    return 0;
  }
  if (eventlog_replay(&log, r1) < 0)
    __builtin_trap();
  bool unverified = false;
  for (size_t i = 0; i < log.n; i++) {
    const struct tdx_event *e = &log.ev[i];
    if (e->imr >= EVENTLOG_N_RTMR || !e->event || strlen(e->event) > EVENTLOG_MAX_NAME)
      __builtin_trap();
    if (e->event_type == EVENTLOG_EV_RUNTIME && e->version == 0)
      unverified = true;
  }
  /* The identity rules: a success always names an app-id event on RTMR3 of the right era. */
  for (unsigned flags = 0; flags <= BOOT_EVENTS_ALLOW_SEED; flags++) {
    struct boot_events b;
    char why[256];
    if (boot_events_scan(&log, flags, &b, why, sizeof(why)) == 0 &&
        (!b.app_id || b.app_id->imr != 3 ||
         (b.era == BOOT_EVENTS_NEWEST) != boot_event_is_bound(b.app_id) ||
         (b.era == BOOT_EVENTS_SEED && !(flags & BOOT_EVENTS_ALLOW_SEED))))
      __builtin_trap();
  }

  struct buf text = BUF_INIT(64 * 1024 * 1024);
  if (eventlog_to_json_text(&log, EVENTLOG_JSON_FULL, &text) < 0)
    __builtin_trap();
  int r = eventlog_parse_json((const char *)text.data, text.len, &back);
  if (!unverified) {
    if (r < 0 || back.n != log.n || eventlog_replay(&back, r2) < 0 ||
        memcmp(r1, r2, sizeof(r1)) != 0)
      __builtin_trap();
  }
  eventlog_free(&back);
  buf_reset(&text);
  if (eventlog_to_json_text(&log, EVENTLOG_JSON_API, &text) < 0)
    __builtin_trap();
  buf_free(&text);
  eventlog_free(&log);
  return 0;
}

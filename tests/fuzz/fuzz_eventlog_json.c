/* Fuzzes the JSON event-log parser (seed lines, runtime lines, newest array), replay, lookups
 * and JSON output. Invariant: the JSON output parses back to the same replay, unless a seed line
 * carried the runtime event type (seed digests are not verified, newest-format ones are). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
  uint8_t id[20], rootfs[32];
  (void)eventlog_app_id(&log, id);
  (void)eventlog_rootfs_hash(&log, rootfs);

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

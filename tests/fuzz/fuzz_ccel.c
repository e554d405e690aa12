/* Fuzzes the CCEL parsers: the ACPI table, the TCG log area, then replay and the JSON output of
 * whatever parsed. Invariant: the JSON output parses back to a log with the same replay, unless
 * the log holds events typed as dstack runtime events (their digests are verified on input). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attest/eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ccel_table t;
  (void)eventlog_parse_ccel_table(data, size, &t);

  struct eventlog log, back;
  uint8_t r1[EVENTLOG_N_RTMR][48], r2[EVENTLOG_N_RTMR][48];
  if (eventlog_parse_ccel(data, size, &log) < 0) {
    if (log.n || log.ev)
      __builtin_trap();
    return 0;
  }
  if (eventlog_replay(&log, r1) < 0)
    __builtin_trap();
  bool runtime = false;
  for (size_t i = 0; i < log.n; i++) {
    const struct tdx_event *e = &log.ev[i];
    if (e->payload_len > EVENTLOG_MAX_EVENT_DATA || (e->payload_len && !e->payload) || !e->event)
      __builtin_trap();
    if (e->imr >= EVENTLOG_N_RTMR && e->imr != EVENTLOG_IMR_MRTD)
      __builtin_trap();
    runtime |= e->event_type == EVENTLOG_EV_RUNTIME;
  }
  struct buf text = BUF_INIT(64 * 1024 * 1024);
  if (eventlog_to_json_text(&log, EVENTLOG_JSON_FULL, &text) < 0)
    __builtin_trap();
  int r = eventlog_parse_json((const char *)text.data, text.len, &back);
  if (!runtime && text.len <= EVENTLOG_MAX_LOG) {
    if (r < 0 || eventlog_replay(&back, r2) < 0 || memcmp(r1, r2, sizeof(r1)) != 0)
      __builtin_trap();
  }
  eventlog_free(&back);
  buf_free(&text);
  eventlog_free(&log);
  return 0;
}

/* The runtime event log after a crash: lines RTMR3 never got are dropped (at start-up, and when
 * a quote finds the log ahead of RTMR3); a log that cannot be repaired that way stops quotes. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "attest/tee.h"
#include "base/log.h"
#include "tappd.h"

/* RTMR3 as the boot log (CCEL) leaves it: where the runtime log's replay starts. */
static int ccel_rtmr3(struct tappd *t, uint8_t ret[48]) {
  _cleanup_eventlog_ struct eventlog ccel = EVENTLOG_INIT;
  uint8_t rtmr[EVENTLOG_N_RTMR][48];
  int r = tappd_ccel_read(t, &ccel);
  if (r >= 0)
    r = eventlog_replay(&ccel, rtmr);
  if (r < 0)
    return r;
  memcpy(ret, rtmr[3], 48);
  return 0;
}

int tappd_eventlog_reconcile(struct tappd *t) {
  uint8_t start[48];
  struct tee_reconcile rc;
  int r = ccel_rtmr3(t, start);
  if (r < 0)
    return log_errno(r, "reading the boot event log %s", t->cfg->ccel_file);
  r = tee_eventlog_reconcile(t->tee, 3, start, &rc);
  if (r == -ENOTRECOVERABLE) {
    if (!atomic_exchange(&t->eventlog_unrecoverable, true))
      log_error("the event log %s does not replay to RTMR3, and dropping lines from its end "
                "cannot fix that (RTMR3 extended without logging, or the log edited): refusing "
                "to serve quotes, which every verifier would refuse",
                t->eventlog_path);
    return r;
  }
  if (r < 0)
    return log_errno(r, "checking the event log %s against RTMR3", t->eventlog_path);
  atomic_store(&t->eventlog_unrecoverable, false);
  if (rc.dropped_lines > 0)
    log_warn("the event log %s had %zu line(s) at its end (%zu bytes) that RTMR3 never got (a "
             "writer killed between append and extend): dropped them; %zu events remain",
             t->eventlog_path, rc.dropped_lines, rc.dropped_bytes, rc.events);
  return 0;
}

/* Start-up repair of a TEE's event log after a crash: tee_extend_event_line() appends (and
 * syncs) a line before it extends the RTMR, so a writer killed in between leaves lines at the
 * end of the log that the RTMR never got. They are found by replaying the log and dropped. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/eventlog.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "base/log.h"
#include "crypto/hash.h"

static void rtmr_extend(uint8_t rtmr[48], const uint8_t digest[48]) {
  uint8_t in[96];
  memcpy(in, rtmr, 48);
  memcpy(in + 48, digest, 48);
  sha384(in, sizeof(in), rtmr);
}

/* What one line of the log does to RTMR[index]: *ret_mine the events on it (applied to rtmr),
 * *ret_other whether it has events on another RTMR. -EBADMSG for a line that does not parse. */
static int line_replay(const char *p, size_t len, unsigned index, uint8_t rtmr[48],
                       size_t *ret_mine, bool *ret_other) {
  _cleanup_eventlog_ struct eventlog ev = EVENTLOG_INIT;
  int r = eventlog_parse_json(p, len, &ev);
  if (r < 0)
    return r;
  *ret_mine = 0;
  *ret_other = false;
  for (size_t i = 0; i < ev.n; i++) {
    if (ev.ev[i].event_type == EVENTLOG_EV_NO_ACTION || ev.ev[i].imr >= EVENTLOG_N_RTMR)
      continue;
    if (ev.ev[i].imr == index) {
      rtmr_extend(rtmr, ev.ev[i].digest);
      (*ret_mine)++;
    } else {
      *ret_other = true;
    }
  }
  return 0;
}

/* The decision, on the log text and the current RTMR value: *ret_keep is the length of the log
 * to keep.
 *
 * A last line without its '\n' is torn (a writer killed while appending: the extend only
 * follows a complete, synced line, and tee_extend_event_line cuts such a tail too), so it
 * never counts. The complete lines are replayed onto RTMR[index]; the longest prefix of them
 * that replays to its current value is kept. Everything after that prefix never reached the
 * RTMR (an event extended after it would change the value), so it may go as long as it is:
 *  - lines whose events are all on RTMR[index] (a writer killed between append and extend), or
 *  - the torn last line.
 * A line in that tail with an event on another RTMR may have reached that one, and a complete
 * line that does not parse cannot be judged: both, like a log no prefix of which replays, are
 * -ENOTRECOVERABLE, with nothing changed. */
static int reconcile_text(const char *text, size_t len, unsigned index, const uint8_t start[48],
                          const uint8_t rtmr[48], size_t *ret_keep, struct tee_reconcile *ret) {
  uint8_t cur[48];
  memcpy(cur, start, 48);
  size_t match = memcmp(cur, rtmr, 48) == 0 ? 0 : SIZE_MAX; /* SIZE_MAX: no prefix matches */
  size_t match_events = 0, events = 0, pos = 0;
  bool tail_other = false;
  while (pos < len) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    if (!nl)
      break; /* the torn last line */
    size_t end = (size_t)(nl - text) + 1;
    size_t mine = 0;
    bool other = false;
    if (line_replay(text + pos, end - pos, index, cur, &mine, &other) < 0)
      return log_debug_errno(-ENOTRECOVERABLE, "event log line at byte %zu does not parse", pos);
    events += mine;
    pos = end;
    if (memcmp(cur, rtmr, 48) == 0) {
      match = pos;
      match_events = events;
      tail_other = false;
    } else {
      tail_other |= other;
    }
  }
  if (match == SIZE_MAX)
    return log_debug_errno(-ENOTRECOVERABLE,
                           "no prefix of the event log (%zu events on RTMR%u) replays to RTMR%u",
                           events, index, index);
  if (tail_other)
    return log_debug_errno(-ENOTRECOVERABLE,
                           "the event log has lines beyond RTMR%u with events of other RTMRs",
                           index);
  *ret = (struct tee_reconcile){.events = match_events, .dropped_bytes = len - match};
  for (size_t i = match; i < len; i++)
    ret->dropped_lines += text[i] == '\n';
  if (len > match && text[len - 1] != '\n')
    ret->dropped_lines++; /* the torn last line */
  *ret_keep = match;
  return 0;
}

int tee_eventlog_reconcile(struct tee *t, unsigned index, const uint8_t start[48],
                           struct tee_reconcile *ret) {
  static const uint8_t zero[48];
  if (!t || index >= TEE_RTMR_COUNT || !ret)
    return -EINVAL;
  *ret = (struct tee_reconcile){0};
  if (!t->ops->eventlog_path || !t->ops->read_rtmrs)
    return -ENOTSUP;
  _cleanup_free_ char *path = NULL;
  _cleanup_buf_ struct buf text = BUF_INIT(EVENTLOG_MAX_LOG);
  /* The writers' lock: no append or extend runs while the log is compared and cut. */
  int fd, r = tee_eventlog_open_locked(t, &path, &fd);
  if (r < 0)
    return r;
  r = fd_read_all(fd, EVENTLOG_MAX_LOG, &text);
  if (r < 0) {
    r = log_debug_errno(r, "reading %s", path);
    goto out;
  }
  uint8_t rtmr[TEE_RTMR_COUNT][48];
  r = tee_read_rtmrs(t, rtmr);
  if (r < 0) {
    r = log_debug_errno(r, "reading the RTMRs");
    goto out;
  }
  size_t keep = 0;
  r = reconcile_text((const char *)text.data, text.len, index, start ? start : zero, rtmr[index],
                     &keep, ret);
  if (r < 0)
    goto out;
  if (keep < text.len) {
    if (ftruncate(fd, (off_t)keep) < 0 || fsync(fd) < 0) {
      r = log_debug_errno(-errno, "truncating %s", path);
      goto out;
    }
    log_debug("%s: dropped %zu trailing line(s) (%zu bytes) never extended into RTMR%u", path,
              ret->dropped_lines, ret->dropped_bytes, index);
  }
  r = 0;
out:
  close(fd);
  return r;
}

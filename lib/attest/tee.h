/* TEE backends behind one interface: real Intel TDX (tee_tdx.c), the software simulator
 * (tee_sim.c) and TDX played by the host over the host channel (tee_hostch.c). Callers open
 * one with tee_open() and use the generic tee_* functions.
 *
 * Errors: 0 or negative errno. -ENODEV when no TEE is available (auto-detection found no TDX
 * device and DSTACK_TEE is unset), -ENOTSUP when a backend lacks an operation, -EINVAL for bad
 * arguments (RTMR index > 3, unknown backend name). */
#pragma once

#include <stdint.h>

#include "base/buf.h"

#define TEE_REPORT_SIZE 1024
#define TEE_REPORT_DATA_SIZE 64
#define TEE_RTMR_COUNT 4
#define TEE_RTMR_SIZE 48

struct tee;

struct tee_ops {
  const char *name; /* "tdx", "sim" or "hostch" */
  int (*get_report)(struct tee *t, const uint8_t report_data[64], uint8_t ret_report[1024]);
  int (*get_quote)(struct tee *t, const uint8_t report_data[64], struct buf *ret_quote);
  int (*extend_rtmr)(struct tee *t, unsigned index, const uint8_t digest[48]);
  int (*read_rtmrs)(struct tee *t, uint8_t ret[4][48]); /* may be NULL or return -ENOTSUP */
  /* Allocated path of the file holding seed-era JSON-lines events for this TEE. */
  int (*eventlog_path)(struct tee *t, char **ret_path);
  void (*free)(struct tee *t); /* frees priv and t itself */
};

/* Public so backends in other files can build one. */
struct tee {
  const struct tee_ops *ops;
  void *priv;
};

extern const struct tee_ops tee_tdx_ops, tee_sim_ops, tee_hostch_ops;

/* Environment variables. */
#define TEE_ENV_BACKEND "DSTACK_TEE"     /* "tdx", "sim" or "hostch" */
#define TEE_ENV_SIM_DIR "DSTACK_SIM_DIR" /* directory made by `tdxctl sim init DIR` */

/* name: "tdx", "sim", "hostch", or NULL = $DSTACK_TEE; when that is unset or empty, auto-detect:
 * "tdx" when /dev/tdx_guest or /sys/kernel/config/tsm/report exists, else -ENODEV (set
 * DSTACK_TEE=sim to use the simulator, which is never chosen implicitly, nor is "hostch": the
 * host plays that one, see attest/tee_hostch.h). "sim" uses $DSTACK_SIM_DIR. */
int tee_open(const char *name, struct tee **ret);
/* The backend name a NULL tee_open() would pick ("tdx"/"sim"/"hostch"), or NULL with ret_err
 * set when nothing is available. Static storage. */
const char *tee_detect(int *ret_err);

const char *tee_name(const struct tee *t);
int tee_get_report(struct tee *t, const uint8_t report_data[64], uint8_t ret_report[1024]);
/* Appends the quote to ret_quote (caller initialises the buf with a cap, e.g. BUF_MAX_QUOTE). */
int tee_get_quote(struct tee *t, const uint8_t report_data[64], struct buf *ret_quote);
int tee_extend_rtmr(struct tee *t, unsigned index, const uint8_t digest[48]);
int tee_read_rtmrs(struct tee *t, uint8_t ret[4][48]);
int tee_eventlog_path(struct tee *t, char **ret_path);

/* Extends RTMR[index] with digest48 AND appends the seed-era JSON line
 * (eventlog_seed_line(index, event_type, digest48, associated_data)) to the backend's event log,
 * atomically with respect to other processes: the event-log file (O_APPEND|O_CREAT, 0600, parent
 * created 0700) is flock(LOCK_EX)ed around both steps. That lock is always the outer one.
 * A digest shorter than 48 bytes is the caller's job to right-pad with zeros (see
 * tee_digest_pad48). */
int tee_extend_event(struct tee *t, unsigned index, uint32_t event_type, const uint8_t digest48[48],
                     const char *associated_data);
/* The event log file of t opened (created 0600, directories 0700) for appending and held under
 * the writers' exclusive flock, which every append + extend takes: *ret_fd (close it to unlock)
 * and *ret_path. -ENOTSUP when t has no event log. */
int tee_eventlog_open_locked(struct tee *t, char **ret_path, int *ret_fd);

/* The same with any one-line record: line (len bytes, ending in its only '\n', at most
 * TEE_EVENT_LINE_MAX) is appended to the event log and RTMR[index] extended with digest48, under
 * the same exclusive flock; the line is truncated away again when the extend fails. Readers
 * that need the log and the RTMRs to agree (a quote plus its log) take flock(LOCK_SH) on the
 * same file (tee_eventlog_path). -EINVAL for a line that is not exactly one line, -ENOBUFS
 * over the cap.
 * Crashes: the line is synced before the extend, so a writer killed in between leaves a line
 * the RTMR never got (tee_eventlog_reconcile drops it); a torn last line (a writer killed while
 * appending) is cut before the next append. */
#define TEE_EVENT_LINE_MAX ((size_t)1024 * 1024)
int tee_extend_event_line(struct tee *t, unsigned index, const uint8_t digest48[48],
                          const void *line, size_t len);
/* After a crash: makes the event log agree with RTMR[index] again (tee_reconcile.c). Under
 * the writers' exclusive flock, the log is replayed line by line from start (NULL = 48 zero
 * bytes; e.g. the RTMR3 events of a boot log kept elsewhere) and the longest prefix of whole
 * lines that replays to the current RTMR[index] is kept. The lines after it never reached the
 * RTMR (tee_extend_event_line appends before it extends: a writer killed in between leaves
 * them) and are truncated away, with a torn last line (one without its '\n': the writer died
 * while appending, before any extend; tee_extend_event_line cuts it the same way). Never drops
 * a complete line that replays.
 * -ENOTRECOVERABLE, changing nothing, when dropping trailing lines cannot fix the log: no
 * prefix replays to the RTMR (something extended it without logging, or the log was edited),
 * a dropped line would hold an event of another RTMR, or a complete line does not parse.
 * -ENOTSUP without an event log or readable RTMRs. */
struct tee_reconcile {
  size_t events;        /* events on RTMR[index] in the kept log */
  size_t dropped_lines; /* trailing lines removed (0: the log was consistent) */
  size_t dropped_bytes;
};
int tee_eventlog_reconcile(struct tee *t, unsigned index, const uint8_t start[48],
                           struct tee_reconcile *ret);

/* Copies len (<= 48) bytes to out and zero-fills the rest; -EINVAL if len > 48. */
int tee_digest_pad48(const void *digest, size_t len, uint8_t out[48]);

void tee_free(struct tee *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tee *, tee_free)

/* Backend constructors. */
struct tee_tdx_config; /* defined in attest/tee_tdx.h */
int tee_tdx_new(const struct tee_tdx_config *cfg /* NULL = defaults + env */, struct tee **ret);
/* dir: a directory made by sim_platform_init(); NULL = $DSTACK_SIM_DIR. -ENOENT (with a debug
 * log naming the dir) when it is unset or not initialised. */
int tee_sim_new(const char *dir, struct tee **ret);
/* The same platform dir with the TD's state (td.json, td.lock, eventlog.jsonl) in td_dir
 * (NULL = dir): one simulated platform, many TDs (teepod plays the TDX module of each VM). */
int tee_sim_new_split(const char *dir, const char *td_dir, struct tee **ret);

/* Logging to stderr with levels. The level comes from DSTACK_LOG (error|warn|info|debug) or
 * log_level_set(). Library code logs at debug only; a daemon logs once where it decides. */
#pragma once

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/macro.h"

enum log_level {
  LOG_LVL_ERROR = 0,
  LOG_LVL_WARN = 1,
  LOG_LVL_INFO = 2,
  LOG_LVL_DEBUG = 3,
};

void log_level_set(enum log_level lvl);
enum log_level log_level_get(void);
/* Reads DSTACK_LOG; unknown values leave the level unchanged. Returns 0 or -EINVAL. */
int log_level_from_env(void);
int log_level_from_name(const char *name, enum log_level *ret);
void log_ident_set(const char *ident);
/* A daemon's configured level (Rocket-style names: off, critical, error, warn, info, debug), unless
 * DSTACK_LOG is set, which wins. Unknown names give info. */
void log_level_from_config(const char *name);

/* Writes one line; returns err (so `return log_msg_errno(...)` works). err may be 0. */
int log_msg(enum log_level lvl, int err, const char *file, int line, const char *fmt, ...)
    _printf_(5, 6);

/* At most one line per interval for a condition that can repeat at the rate of a peer's
 * connections (accept failures, a full connection table): the line that goes out says how many
 * were held back since the previous one. Thread-safe; zero-initialise
 * (struct log_ratelimit rl = {0}). */
struct log_ratelimit {
  _Atomic int64_t next_ms;     /* monotonic ms before which lines are held back */
  _Atomic uint64_t suppressed; /* held back since the last line that went out */
};
#define LOG_RATELIMIT_MS 10000
/* True when a line may go out now (the next one then waits interval_ms); *ret_suppressed gets
 * the number of refusals since the previous true. A refusal counts itself. */
bool log_ratelimit_ok(struct log_ratelimit *rl, unsigned interval_ms, uint64_t *ret_suppressed);
/* log_msg through rl (LOG_RATELIMIT_MS): appends " (N more since the last report)" when lines
 * were held back. Returns err. */
int log_msg_ratelimited(struct log_ratelimit *rl, enum log_level lvl, int err, const char *file,
                        int line, const char *fmt, ...) _printf_(6, 7);

#define log_full(lvl, err, ...) log_msg((lvl), (err), __FILE__, __LINE__, __VA_ARGS__)
#define log_error(...) log_full(LOG_LVL_ERROR, 0, __VA_ARGS__)
#define log_warn(...) log_full(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_info(...) log_full(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_debug(...)                                                                             \
  (log_level_get() >= LOG_LVL_DEBUG ? log_full(LOG_LVL_DEBUG, 0, __VA_ARGS__) : 0)
#define log_warn_ratelimited(rl, ...)                                                              \
  log_msg_ratelimited((rl), LOG_LVL_WARN, 0, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn_errno_ratelimited(rl, r, ...)                                                     \
  log_msg_ratelimited((rl), LOG_LVL_WARN, (r), __FILE__, __LINE__, __VA_ARGS__)
/* Logs "<msg>: <strerror(-r)>" at error level and returns r (negative errno). */
#define log_errno(r, ...) log_full(LOG_LVL_ERROR, (r), __VA_ARGS__)
#define log_debug_errno(r, ...)                                                                    \
  (log_level_get() >= LOG_LVL_DEBUG ? log_full(LOG_LVL_DEBUG, (r), __VA_ARGS__) : (r))

#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum log_level log_cur_level = LOG_LVL_INFO;
static const char *log_ident;

static const char *const log_level_names[] = {
    [LOG_LVL_ERROR] = "error",
    [LOG_LVL_WARN] = "warn",
    [LOG_LVL_INFO] = "info",
    [LOG_LVL_DEBUG] = "debug",
};

void log_level_set(enum log_level lvl) {
  if (lvl <= LOG_LVL_DEBUG)
    log_cur_level = lvl;
}

enum log_level log_level_get(void) {
  return log_cur_level;
}

void log_ident_set(const char *ident) {
  log_ident = ident;
}

int log_level_from_name(const char *name, enum log_level *ret) {
  if (!name)
    return -EINVAL;
  for (size_t i = 0; i < ARRAY_SIZE(log_level_names); i++)
    if (strcasecmp(name, log_level_names[i]) == 0) {
      *ret = (enum log_level)i;
      return 0;
    }
  if (strcasecmp(name, "warning") == 0) {
    *ret = LOG_LVL_WARN;
    return 0;
  }
  return -EINVAL;
}

int log_level_from_env(void) {
  const char *v = getenv("DSTACK_LOG");
  enum log_level lvl;
  if (!v || !*v)
    return 0;
  if (log_level_from_name(v, &lvl) < 0)
    return -EINVAL;
  log_cur_level = lvl;
  return 0;
}

void log_level_from_config(const char *name) {
  enum log_level l = LOG_LVL_INFO;
  if (getenv("DSTACK_LOG"))
    return;
  if (name && (strcasecmp(name, "off") == 0 || strcasecmp(name, "critical") == 0))
    l = LOG_LVL_ERROR;
  else if (log_level_from_name(name, &l) < 0)
    l = LOG_LVL_INFO;
  log_cur_level = l;
}

static void log_vmsg(enum log_level lvl, int err, const char *file, int line, const char *suffix,
                     const char *fmt, va_list ap) {
  char msg[2048];
  vsnprintf(msg, sizeof(msg), fmt, ap);

  /* Strip control characters so a peer cannot forge log lines. */
  for (char *p = msg; *p; p++)
    if ((unsigned char)*p < 0x20 && *p != '\t')
      *p = '?';

  char where[160] = "";
  if (lvl == LOG_LVL_DEBUG && file)
    snprintf(where, sizeof(where), " (%s:%d)", file, line);
  if (err)
    fprintf(stderr, "%s%s%s: %s: %s%s%s\n", log_ident ? log_ident : "", log_ident ? ": " : "",
            log_level_names[lvl], msg, strerror(err < 0 ? -err : err), suffix, where);
  else
    fprintf(stderr, "%s%s%s: %s%s%s\n", log_ident ? log_ident : "", log_ident ? ": " : "",
            log_level_names[lvl], msg, suffix, where);
}

int log_msg(enum log_level lvl, int err, const char *file, int line, const char *fmt, ...) {
  va_list ap;

  if (lvl > log_cur_level)
    return err;
  va_start(ap, fmt);
  log_vmsg(lvl, err, file, line, "", fmt, ap);
  va_end(ap);
  return err;
}

static int64_t log_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool log_ratelimit_ok(struct log_ratelimit *rl, unsigned interval_ms, uint64_t *ret_suppressed) {
  int64_t now = log_now_ms();
  int64_t next = atomic_load_explicit(&rl->next_ms, memory_order_relaxed);
  /* One caller wins the slot; the others (and everyone until it expires) are held back. */
  if (now < next || !atomic_compare_exchange_strong(&rl->next_ms, &next, now + interval_ms)) {
    atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
    return false;
  }
  uint64_t n = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
  if (ret_suppressed)
    *ret_suppressed = n;
  return true;
}

int log_msg_ratelimited(struct log_ratelimit *rl, enum log_level lvl, int err, const char *file,
                        int line, const char *fmt, ...) {
  uint64_t n = 0;
  if (lvl > log_cur_level || !log_ratelimit_ok(rl, LOG_RATELIMIT_MS, &n))
    return err;
  char suffix[64] = "";
  if (n)
    snprintf(suffix, sizeof(suffix), " (%llu more since the last report)", (unsigned long long)n);
  va_list ap;
  va_start(ap, fmt);
  log_vmsg(lvl, err, file, line, suffix, fmt, ap);
  va_end(ap);
  return err;
}

#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

int log_msg(enum log_level lvl, int err, const char *file, int line, const char *fmt, ...) {
  char msg[2048];
  va_list ap;

  if (lvl > log_cur_level)
    return err;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);

  /* Strip control characters so a peer cannot forge log lines. */
  for (char *p = msg; *p; p++)
    if ((unsigned char)*p < 0x20 && *p != '\t')
      *p = '?';

  char where[160] = "";
  if (lvl == LOG_LVL_DEBUG && file)
    snprintf(where, sizeof(where), " (%s:%d)", file, line);
  if (err)
    fprintf(stderr, "%s%s%s: %s: %s%s\n", log_ident ? log_ident : "", log_ident ? ": " : "",
            log_level_names[lvl], msg, strerror(err < 0 ? -err : err), where);
  else
    fprintf(stderr, "%s%s%s: %s%s\n", log_ident ? log_ident : "", log_ident ? ": " : "",
            log_level_names[lvl], msg, where);
  return err;
}

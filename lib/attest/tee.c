/* Backend selection and generic dispatch for TEE backends; tee_extend_event() keeps an RTMR and
 * its event log in step across processes. */
#include "attest/tee.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/eventlog.h"
#include "attest/tee_hostch.h"
#include "base/fileio.h"
#include "base/log.h"

#define TEE_DEV_TDX_GUEST "/dev/tdx_guest"
#define TEE_TSM_REPORT "/sys/kernel/config/tsm/report"

const char *tee_detect(int *ret_err) {
  const char *env = getenv(TEE_ENV_BACKEND);
  if (env && *env) {
    if (strcmp(env, "tdx") == 0)
      return "tdx";
    if (strcmp(env, "sim") == 0)
      return "sim";
    if (strcmp(env, "hostch") == 0)
      return "hostch";
    if (ret_err)
      *ret_err = -EINVAL;
    return NULL;
  }
  if (access(TEE_DEV_TDX_GUEST, F_OK) == 0 || access(TEE_TSM_REPORT, F_OK) == 0)
    return "tdx";
  if (ret_err)
    *ret_err = -ENODEV;
  return NULL;
}

int tee_open(const char *name, struct tee **ret) {
  if (!ret)
    return -EINVAL;
  *ret = NULL;
  if (!name || !*name) {
    int r = 0;
    name = tee_detect(&r);
    if (!name) {
      if (r == -EINVAL)
        return log_debug_errno(r, "%s=%s is not a TEE backend (use \"tdx\", \"sim\" or \"hostch\")",
                               TEE_ENV_BACKEND, getenv(TEE_ENV_BACKEND));
      return log_debug_errno(r,
                             "no TDX device (%s or %s); set %s=sim and %s=DIR to use the "
                             "simulator",
                             TEE_DEV_TDX_GUEST, TEE_TSM_REPORT, TEE_ENV_BACKEND,
                             TEE_ENV_SIM_DIR);
    }
  }
  if (strcmp(name, "tdx") == 0)
    return tee_tdx_new(NULL, ret);
  if (strcmp(name, "sim") == 0)
    return tee_sim_new(NULL, ret);
  if (strcmp(name, "hostch") == 0)
    return tee_hostch_new(NULL, ret);
  return log_debug_errno(-EINVAL, "unknown TEE backend \"%s\"", name);
}

const char *tee_name(const struct tee *t) {
  return t && t->ops ? t->ops->name : NULL;
}

int tee_get_report(struct tee *t, const uint8_t report_data[64], uint8_t ret_report[1024]) {
  if (!t || !report_data || !ret_report)
    return -EINVAL;
  if (!t->ops->get_report)
    return -ENOTSUP;
  return t->ops->get_report(t, report_data, ret_report);
}

int tee_get_quote(struct tee *t, const uint8_t report_data[64], struct buf *ret_quote) {
  if (!t || !report_data || !ret_quote)
    return -EINVAL;
  if (!t->ops->get_quote)
    return -ENOTSUP;
  return t->ops->get_quote(t, report_data, ret_quote);
}

int tee_extend_rtmr(struct tee *t, unsigned index, const uint8_t digest[48]) {
  if (!t || !digest || index >= TEE_RTMR_COUNT)
    return -EINVAL;
  if (!t->ops->extend_rtmr)
    return -ENOTSUP;
  return t->ops->extend_rtmr(t, index, digest);
}

int tee_read_rtmrs(struct tee *t, uint8_t ret[4][48]) {
  if (!t || !ret)
    return -EINVAL;
  if (!t->ops->read_rtmrs)
    return -ENOTSUP;
  return t->ops->read_rtmrs(t, ret);
}

int tee_eventlog_path(struct tee *t, char **ret_path) {
  if (!t || !ret_path)
    return -EINVAL;
  if (!t->ops->eventlog_path)
    return -ENOTSUP;
  return t->ops->eventlog_path(t, ret_path);
}

int tee_digest_pad48(const void *digest, size_t len, uint8_t out[48]) {
  if (len > 48 || (len && !digest))
    return -EINVAL;
  memset(out, 0, 48);
  if (len)
    memcpy(out, digest, len);
  return 0;
}

int tee_eventlog_open_locked(struct tee *t, char **ret_path, int *ret_fd) {
  if (!t || !t->ops->eventlog_path || !ret_path || !ret_fd)
    return -ENOTSUP;
  _cleanup_free_ char *path = NULL;
  int r = t->ops->eventlog_path(t, &path);
  if (r < 0)
    return r;
  r = mkdir_parents(path, 0700);
  if (r < 0)
    return log_debug_errno(r, "creating the directory of %s", path);
  int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return log_debug_errno(-errno, "opening %s", path);
  while (flock(fd, LOCK_EX) < 0) {
    if (errno != EINTR) {
      r = log_debug_errno(-errno, "locking %s", path);
      close(fd);
      return r;
    }
  }
  *ret_path = TAKE_PTR(path);
  *ret_fd = fd;
  return 0;
}

/* A log that does not end in '\n' ends in the torn line of a writer killed while appending (its
 * extend never ran: it only follows a complete, synced line). Cuts that line, so the next one
 * does not run into it; *size is the file size before and after. */
static int drop_torn_tail(int fd, off_t *size) {
  char c;
  if (*size == 0)
    return 0;
  ssize_t n = pread(fd, &c, 1, *size - 1);
  if (n != 1)
    return n < 0 ? -errno : -EIO;
  if (c == '\n')
    return 0;
  char chunk[4096];
  off_t end = *size - 1, keep = 0;
  while (end > 0 && keep == 0) {
    size_t want = end < (off_t)sizeof(chunk) ? (size_t)end : sizeof(chunk);
    n = pread(fd, chunk, want, end - (off_t)want);
    if (n != (ssize_t)want)
      return n < 0 ? -errno : -EIO;
    for (size_t i = want; i > 0 && keep == 0; i--)
      if (chunk[i - 1] == '\n')
        keep = end - (off_t)want + (off_t)i;
    end -= (off_t)want;
  }
  if (ftruncate(fd, keep) < 0 || fdatasync(fd) < 0)
    return -errno;
  log_debug("dropped a torn event-log line (%jd bytes)", (intmax_t)(*size - keep));
  *size = keep;
  return 0;
}

int tee_extend_event_line(struct tee *t, unsigned index, const uint8_t digest48[48],
                          const void *line, size_t len) {
  if (!t || !digest48 || index >= TEE_RTMR_COUNT || !line)
    return -EINVAL;
  /* Exactly one JSON line: a missing or inner newline would corrupt its neighbours. */
  if (len == 0 || ((const char *)line)[len - 1] != '\n' || memchr(line, '\n', len - 1))
    return -EINVAL;
  if (len > TEE_EVENT_LINE_MAX)
    return -ENOBUFS;
  if (!t->ops->extend_rtmr || !t->ops->eventlog_path)
    return -ENOTSUP;

  _cleanup_free_ char *path = NULL;
  int fd, r = tee_eventlog_open_locked(t, &path, &fd);
  if (r < 0)
    return r;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    r = -errno;
    goto out;
  }
  r = drop_torn_tail(fd, &st.st_size);
  if (r < 0) {
    r = log_debug_errno(r, "cutting the torn last line of %s", path);
    goto out;
  }
  /* The line goes first and is taken back if the extend fails, so the log never names an
   * extend that did not happen; a failed append leaves the RTMR untouched. */
  r = fd_write_all(fd, line, len);
  if (r >= 0)
    r = fdatasync(fd) < 0 ? -errno : 0;
  if (r < 0) {
    (void)!ftruncate(fd, st.st_size);
    r = log_debug_errno(r, "appending to %s", path);
    goto out;
  }
  r = t->ops->extend_rtmr(t, index, digest48);
  if (r < 0) {
    if (ftruncate(fd, st.st_size) == 0)
      (void)fdatasync(fd);
    goto out;
  }
  r = 0;
out:
  (void)flock(fd, LOCK_UN);
  close(fd);
  return r;
}

int tee_extend_event(struct tee *t, unsigned index, uint32_t event_type, const uint8_t digest48[48],
                     const char *associated_data) {
  if (!t || !digest48 || index >= TEE_RTMR_COUNT)
    return -EINVAL;
  _cleanup_buf_ struct buf line = BUF_INIT(BUF_MAX_SMALL);
  int r = eventlog_seed_line(index, event_type, digest48, associated_data ? associated_data : "",
                             &line);
  if (r < 0)
    return r;
  return tee_extend_event_line(t, index, digest48, line.data, line.len);
}

void tee_free(struct tee *t) {
  if (!t)
    return;
  if (t->ops && t->ops->free)
    t->ops->free(t);
  else
    free(t);
}

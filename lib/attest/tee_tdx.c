/* Intel TDX guest backend: /dev/tdx_guest ioctls, sysfs RTMRs, configfs-tsm / QGS / TDVMCALL
 * quotes. */
#include "attest/tee_tdx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "attest/tdx_qgs.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/log.h"

_Static_assert(sizeof(struct tdx_report_req) == 1088, "GET_REPORT0 argument");
_Static_assert(sizeof(struct tdx_extend_rtmr_req) == 49, "EXTEND_RTMR argument");
_Static_assert(sizeof(struct tdx_quote_req) == 16, "GET_QUOTE argument");
_Static_assert(sizeof(struct tdx_quote_hdr) == 24, "GetQuote buffer header");
_Static_assert(TDX_CMD_GET_REPORT0 == 0xC4405401u, "TDX_CMD_GET_REPORT0");
_Static_assert(TDX_CMD_EXTEND_RTMR == 0x80315403u, "TDX_CMD_EXTEND_RTMR");
_Static_assert(TDX_CMD_EXTEND_RTMR_W == 0x40315403u, "TDX_CMD_EXTEND_RTMR (custom module)");
_Static_assert(TDX_CMD_GET_QUOTE == 0x80105404u, "TDX_CMD_GET_QUOTE");
_Static_assert(TDX_TDREPORT_RTMR_OFFSET(0) == 720 && TDX_TDREPORT_RTMR_OFFSET(3) == 864,
               "TDINFO RTMR offsets");
_Static_assert(TEE_REPORT_SIZE == TDX_REPORT_SIZE && TEE_REPORT_DATA_SIZE == TDX_REPORT_DATA_SIZE,
               "report sizes");
_Static_assert(TDX_QUOTE_BUF_SIZE >=
                   sizeof(struct tdx_quote_hdr) + TDX_QGS_PREFIX_SIZE + TDX_QGS_REQUEST_SIZE,
               "GetQuote buffer holds a request");

#define DEFAULT_BUSY_RETRIES 3u
#define DEFAULT_BUSY_WAIT_MS 10000u
#define DEFAULT_TIMEOUT_MS 30000u
#define GENERATION_POLL_MS 5u
#define LOCK_POLL_MS 10u

struct tdx_priv {
  char *configfs_dir;
  char *configfs_base; /* may be NULL */
  char *device;
  char *rtmr_sysfs_dir;
  char *attest_conf;
  char *eventlog;
  tee_tdx_ioctl_fn ioctl_fn;
  tee_tdx_vsock_connect_fn vsock_connect;
  void *vsock_userdata;
  tee_tdx_configfs_hook_fn configfs_hook;
  void *configfs_hook_userdata;
  unsigned busy_retries, busy_wait_ms, timeout_ms;
  pthread_mutex_t lock; /* serialises get_quote and guards err */
  char err[768];
};

static struct tdx_priv *tdx_priv(struct tee *t) {
  return t->priv;
}

/* ---- small helpers ---- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

static bool path_exists(const char *path) {
  return access(path, F_OK) == 0;
}

/* Appends "; what: reason" to the error line of the current get_quote. */
_printf_(2, 3) static void err_add(struct tdx_priv *p, const char *fmt, ...) {
  size_t n = strlen(p->err);
  if (n + 3 >= sizeof p->err)
    return;
  if (n) {
    memcpy(p->err + n, "; ", 3);
    n += 2;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err + n, sizeof p->err - n, fmt, ap);
  va_end(ap);
}

static int default_ioctl(int fd, unsigned long req, void *arg) {
  return ioctl(fd, req, arg);
}

static int do_ioctl(struct tdx_priv *p, int fd, unsigned long req, void *arg) {
  for (;;) {
    errno = 0;
    int r = p->ioctl_fn(fd, req, arg);
    if (r >= 0)
      return 0;
    if (errno != EINTR)
      return errno > 0 ? -errno : -EIO;
  }
}

/* Opens the guest device; a missing device is -ENODEV. */
static int open_device(struct tdx_priv *p, int *ret_fd) {
  int fd = open(p->device, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int r = -errno;
    if (r == -ENOENT || r == -ENXIO || r == -ENODEV)
      r = -ENODEV;
    return log_debug_errno(r, "opening %s", p->device);
  }
  *ret_fd = fd;
  return 0;
}

static int rtmr_sysfs_path(struct tdx_priv *p, unsigned index, char *out, size_t n) {
  int k = snprintf(out, n, "%s/rtmr%u:sha384", p->rtmr_sysfs_dir, index);
  return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

/* ---- report, RTMRs ---- */

static int tdx_report(struct tdx_priv *p, const uint8_t report_data[64], uint8_t ret[1024]) {
  int fd = -1;
  int r = open_device(p, &fd);
  if (r < 0)
    return r;
  struct tdx_report_req req;
  memcpy(req.reportdata, report_data, sizeof req.reportdata);
  memset(req.tdreport, 0, sizeof req.tdreport);
  r = do_ioctl(p, fd, TDX_CMD_GET_REPORT0, &req);
  close(fd);
  if (r < 0)
    return log_debug_errno(r, "TDX_CMD_GET_REPORT0 on %s", p->device);
  memcpy(ret, req.tdreport, sizeof req.tdreport);
  return 0;
}

static int tdx_get_report(struct tee *t, const uint8_t report_data[64], uint8_t ret_report[1024]) {
  return tdx_report(tdx_priv(t), report_data, ret_report);
}

static int tdx_extend_rtmr(struct tee *t, unsigned index, const uint8_t digest[48]) {
  struct tdx_priv *p = tdx_priv(t);
  if (index > 3 || !digest)
    return -EINVAL;

  char path[PATH_MAX];
  int r = rtmr_sysfs_path(p, index, path, sizeof path);
  if (r < 0)
    return r;
  if (path_exists(path)) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
      return log_debug_errno(-errno, "opening %s", path);
    ssize_t n;
    do
      n = write(fd, digest, 48);
    while (n < 0 && errno == EINTR);
    r = n < 0 ? -errno : n != 48 ? -EIO : 0;
    close(fd);
    return r < 0 ? log_debug_errno(r, "writing %s", path) : 0;
  }

  int fd = -1;
  r = open_device(p, &fd);
  if (r < 0)
    return r;
  struct tdx_extend_rtmr_req req;
  memcpy(req.data, digest, sizeof req.data);
  req.index = (uint8_t)index;
  r = do_ioctl(p, fd, TDX_CMD_EXTEND_RTMR, &req);
  if (r == -ENOTTY)
    r = do_ioctl(p, fd, TDX_CMD_EXTEND_RTMR_W, &req);
  close(fd);
  if (r < 0)
    return log_debug_errno(r, "extending RTMR%u through %s", index, p->device);
  return 0;
}

/* One sysfs RTMR file: 48 raw bytes, or 96 hex digits with optional surrounding whitespace. */
static int read_rtmr_file(const char *path, uint8_t ret[48]) {
  _cleanup_buf_ struct buf b = BUF_INIT(256);
  int r = file_read_all(path, 255, &b);
  if (r < 0)
    return r == -EFBIG ? -EBADMSG : r;
  if (b.len == 48) {
    memcpy(ret, b.data, 48);
    return 0;
  }
  size_t s = 0, e = b.len;
  while (s < e && (b.data[s] == ' ' || b.data[s] == '\t' || b.data[s] == '\n' || b.data[s] == '\r'))
    s++;
  while (e > s &&
         (b.data[e - 1] == ' ' || b.data[e - 1] == '\t' || b.data[e - 1] == '\n' ||
          b.data[e - 1] == '\r'))
    e--;
  if (e - s != 96 || hex_decode_exact((const char *)b.data + s, 96, ret, 48) < 0)
    return log_debug_errno(-EBADMSG, "%s: neither 48 bytes nor 96 hex digits (%zu bytes)", path,
                           b.len);
  return 0;
}

static int tdx_read_rtmrs(struct tee *t, uint8_t ret[4][48]) {
  struct tdx_priv *p = tdx_priv(t);
  char path[PATH_MAX];
  int r = rtmr_sysfs_path(p, 0, path, sizeof path);
  if (r < 0)
    return r;
  uint8_t v[4][48];
  if (path_exists(path)) {
    for (unsigned i = 0; i < 4; i++) {
      r = rtmr_sysfs_path(p, i, path, sizeof path);
      if (r < 0)
        return r;
      r = read_rtmr_file(path, v[i]);
      if (r < 0)
        return log_debug_errno(r, "reading %s", path);
    }
  } else {
    uint8_t rd[64] = {0}, report[1024];
    r = tdx_report(p, rd, report);
    if (r < 0)
      return r;
    for (unsigned i = 0; i < 4; i++)
      memcpy(v[i], report + TDX_TDREPORT_RTMR_OFFSET(i), 48);
  }
  memcpy(ret, v, sizeof v);
  return 0;
}

static int tdx_eventlog_path(struct tee *t, char **ret_path) {
  char *s = strdup(tdx_priv(t)->eventlog);
  if (!s)
    return -ENOMEM;
  *ret_path = s;
  return 0;
}

/* ---- quote path 1: configfs-tsm ---- */

static int configfs_path(struct tdx_priv *p, const char *name, char *out, size_t n) {
  int k = snprintf(out, n, "%s/%s", p->configfs_dir, name);
  return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

/* The generation file holds a decimal counter and a newline. */
static int configfs_read_generation(struct tdx_priv *p, uint64_t *ret) {
  char path[PATH_MAX];
  int r = configfs_path(p, "generation", path, sizeof path);
  if (r < 0)
    return r;
  _cleanup_buf_ struct buf b = BUF_INIT(64);
  r = file_read_all(path, 32, &b);
  if (r < 0)
    return log_debug_errno(r == -EFBIG ? -EBADMSG : r, "reading %s", path);
  size_t n = b.len;
  if (n && b.data[n - 1] == '\n')
    n--;
  if (n == 0 || n > 20)
    return log_debug_errno(-EBADMSG, "%s: not a counter", path);
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (b.data[i] < '0' || b.data[i] > '9')
      return log_debug_errno(-EBADMSG, "%s: not a counter", path);
    uint64_t d = (uint64_t)(b.data[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return log_debug_errno(-EBADMSG, "%s: counter overflows", path);
    v = v * 10 + d;
  }
  *ret = v;
  return 0;
}

/* Reads outblob into out (cap BUF_MAX_QUOTE), retrying EBUSY. */
static int configfs_read_outblob(struct tdx_priv *p, struct buf *out) {
  char path[PATH_MAX];
  int r = configfs_path(p, "outblob", path, sizeof path);
  if (r < 0)
    return r;
  for (unsigned attempt = 0;; attempt++) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      r = -errno;
    else {
      r = fd_read_all(fd, BUF_MAX_QUOTE - 1, out);
      close(fd);
    }
    if (r != -EBUSY || attempt >= p->busy_retries)
      break;
    sleep_ms(p->busy_wait_ms);
  }
  if (r == -EFBIG || r == -ENOBUFS)
    return log_debug_errno(-ENOBUFS, "%s: quote larger than %zu bytes", path, BUF_MAX_QUOTE - 1);
  if (r < 0)
    return log_debug_errno(r, "reading %s", path);
  return 0;
}

/* One complete write of the report data: open, write, close (where configfs commits it). */
static int configfs_write_inblob(const char *path, const uint8_t report_data[64]) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  ssize_t n;
  do
    n = write(fd, report_data, TDX_REPORT_DATA_SIZE);
  while (n < 0 && errno == EINTR);
  int r = n < 0 ? -errno : n != TDX_REPORT_DATA_SIZE ? -EIO : 0;
  if (close(fd) < 0 && r == 0 && errno != EINTR)
    r = -errno;
  return r;
}

/* Takes the inblob lock, bounded by timeout_ms. */
static int flock_bounded(int fd, unsigned timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
      return 0;
    if (errno != EWOULDBLOCK && errno != EINTR)
      return -errno;
    if (now_ms() >= deadline)
      return -ETIMEDOUT;
    sleep_ms(LOCK_POLL_MS);
  }
}

/* Sets *ret_unavailable (and returns an error) when this machine has no TDX configfs-tsm, so
 * the next path is tried; any other error is final. */
static int quote_configfs(struct tdx_priv *p, const uint8_t report_data[64], struct buf *out,
                          bool *ret_unavailable) {
  char path[PATH_MAX];
  int r;
  *ret_unavailable = false;

  if (!path_exists(p->configfs_dir) && p->configfs_base && path_exists(p->configfs_base)) {
    if (mkdir(p->configfs_dir, 0770) < 0 && errno != EEXIST)
      log_debug_errno(-errno, "creating %s", p->configfs_dir);
  }
  if ((r = configfs_path(p, "provider", path, sizeof path)) < 0)
    return r;
  _cleanup_buf_ struct buf provider = BUF_INIT(256);
  r = file_read_all(path, 255, &provider);
  if (r < 0) {
    *ret_unavailable = true;
    err_add(p, "configfs %s: %s", p->configfs_dir, strerror(r == -EFBIG ? EBADMSG : -r));
    return r == -ENOENT ? -ENODEV : r;
  }
  if (provider.len < 9 || memcmp(provider.data, "tdx_guest", 9) != 0) {
    *ret_unavailable = true;
    err_add(p, "configfs %s: provider is not tdx_guest", p->configfs_dir);
    return -ENODEV;
  }

  if ((r = configfs_path(p, "inblob", path, sizeof path)) < 0)
    return r;
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    r = -errno;
    err_add(p, "configfs: opening %s: %s", path, strerror(-r));
    return r;
  }
  uint64_t g1, g2, g3;
  int64_t deadline;
  size_t start = out->len, qlen;
  r = flock_bounded(fd, p->timeout_ms);
  if (r < 0) {
    err_add(p, "configfs: locking %s: %s", path, strerror(-r));
    goto out;
  }
  if ((r = configfs_read_generation(p, &g1)) < 0) {
    err_add(p, "configfs: bad generation: %s", strerror(-r));
    goto out;
  }

  /* configfs hands a binary attribute's content to the kernel when the file is closed, so
   * the report data goes through its own open/write/close while fd only holds the lock. */
  for (unsigned attempt = 0;; attempt++) {
    r = configfs_write_inblob(path, report_data);
    if (r != -EBUSY || attempt >= p->busy_retries)
      break;
    sleep_ms(p->busy_wait_ms);
  }
  if (r < 0) {
    err_add(p, "configfs: writing %s: %s", path, strerror(-r));
    goto out;
  }
  if (p->configfs_hook)
    p->configfs_hook(p->configfs_hook_userdata, TEE_TDX_CONFIGFS_INBLOB_WRITTEN, p->configfs_dir);

  deadline = now_ms() + p->timeout_ms;
  for (;;) {
    if ((r = configfs_read_generation(p, &g2)) < 0) {
      err_add(p, "configfs: bad generation: %s", strerror(-r));
      goto out;
    }
    if (g2 != g1)
      break;
    if (now_ms() >= deadline) {
      r = -ETIMEDOUT;
      err_add(p, "configfs: generation stayed at %llu", (unsigned long long)g1);
      goto out;
    }
    sleep_ms(GENERATION_POLL_MS);
  }
  if (g2 != g1 + 1) {
    r = -EBUSY;
    err_add(p, "configfs: generation went from %llu to %llu (another writer)",
            (unsigned long long)g1, (unsigned long long)g2);
    goto out;
  }

  if ((r = configfs_read_outblob(p, out)) < 0) {
    err_add(p, "configfs: outblob: %s", strerror(-r));
    goto out;
  }
  qlen = out->len - start;
  if (qlen <= TDX_CONFIGFS_QUOTE_MIN) {
    r = -EBADMSG;
    err_add(p, "configfs: quote of %zu bytes is too short", qlen);
    goto out;
  }
  if (p->configfs_hook)
    p->configfs_hook(p->configfs_hook_userdata, TEE_TDX_CONFIGFS_OUTBLOB_READ, p->configfs_dir);
  if ((r = configfs_read_generation(p, &g3)) < 0) {
    err_add(p, "configfs: bad generation: %s", strerror(-r));
    goto out;
  }
  if (g3 != g2) {
    r = -EBUSY;
    err_add(p, "configfs: generation changed while reading outblob (%llu -> %llu)",
            (unsigned long long)g2, (unsigned long long)g3);
    goto out;
  }
  r = 0;
out:
  if (r < 0)
    out->len = start;
  (void)flock(fd, LOCK_UN);
  close(fd);
  return r;
}

/* ---- quote path 2: QGS over vsock ---- */

static int default_vsock_connect(void *userdata, uint32_t cid, uint32_t port,
                                 unsigned timeout_ms) {
  (void)userdata;
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    int r = -errno;
    if (r != -EINPROGRESS) {
      close(fd);
      return r;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int k;
    do
      k = poll(&pfd, 1, (int)MIN(timeout_ms, (unsigned)INT32_MAX));
    while (k < 0 && errno == EINTR);
    if (k <= 0) {
      close(fd);
      return k == 0 ? -ETIMEDOUT : -errno;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
      soerr = errno;
    if (soerr) {
      close(fd);
      return -soerr;
    }
  }
  return fd;
}

/* Waits for fd to become ready for events until deadline. */
static int wait_fd(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0)
      return -ETIMEDOUT;
    struct pollfd pfd = {.fd = fd, .events = events};
    int k = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
    if (k > 0)
      return 0;
    if (k == 0)
      return -ETIMEDOUT;
    if (errno != EINTR)
      return -errno;
  }
}

static int send_all(int fd, const uint8_t *data, size_t len, int64_t deadline) {
  while (len) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int r = wait_fd(fd, POLLOUT, deadline);
      if (r < 0)
        return r;
      continue;
    }
    return n < 0 ? -errno : -EIO;
  }
  return 0;
}

/* Reads exactly len bytes; EOF before that is -ECONNRESET. */
static int recv_exact(int fd, uint8_t *data, size_t len, int64_t deadline) {
  while (len) {
    ssize_t n = recv(fd, data, len, 0);
    if (n > 0) {
      data += n;
      len -= (size_t)n;
      continue;
    }
    if (n == 0)
      return -ECONNRESET;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int r = wait_fd(fd, POLLIN, deadline);
      if (r < 0)
        return r;
      continue;
    }
    return -errno;
  }
  return 0;
}

static int quote_vsock(struct tdx_priv *p, const uint8_t report_data[64], struct buf *out,
                       bool *ret_unavailable) {
  *ret_unavailable = false;
  _cleanup_buf_ struct buf conf = BUF_INIT(BUF_MAX_SMALL);
  uint32_t port = 0;
  int r = file_read_all(p->attest_conf, BUF_MAX_SMALL - 1, &conf);
  if (r >= 0)
    r = tdx_attest_conf_parse_port((const char *)conf.data, conf.len, &port);
  if (r < 0) {
    *ret_unavailable = true;
    err_add(p, "vsock: no port in %s: %s", p->attest_conf,
            r == -ENOENT ? "not set" : strerror(r == -EFBIG ? EBADMSG : -r));
    return -ENODEV;
  }

  uint8_t report[TDX_REPORT_SIZE];
  r = tdx_report(p, report_data, report);
  if (r < 0) {
    err_add(p, "vsock: TDREPORT from %s: %s", p->device, strerror(-r));
    return r;
  }
  _cleanup_buf_ struct buf req = BUF_INIT(TDX_QGS_PREFIX_SIZE + TDX_QGS_REQUEST_SIZE);
  r = tdx_qgs_encode_request(report, &req);
  if (r < 0)
    return r;

  int fd = p->vsock_connect(p->vsock_userdata, TEE_TDX_QGS_CID, port, p->timeout_ms);
  if (fd < 0) {
    *ret_unavailable = true;
    err_add(p, "vsock: connecting to %u:%u: %s", TEE_TDX_QGS_CID, port, strerror(-fd));
    return fd;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    r = -errno;
    close(fd);
    return r;
  }

  int64_t deadline = now_ms() + p->timeout_ms;
  _cleanup_buf_ struct buf resp = BUF_INIT(TDX_QGS_MAX_MSG);
  uint8_t prefix[TDX_QGS_PREFIX_SIZE];
  uint32_t n = 0;
  struct slice quote;
  const char *step = "sending the request";
  r = send_all(fd, req.data, req.len, deadline);
  if (r >= 0) {
    step = "reading the response length";
    deadline = now_ms() + p->timeout_ms;
    r = recv_exact(fd, prefix, sizeof prefix, deadline);
  }
  if (r >= 0) {
    step = "response length";
    r = tdx_qgs_parse_length(prefix, TDX_QGS_MAX_MSG, &n);
  }
  if (r >= 0) {
    step = "reading the response";
    r = buf_append_zero(&resp, n);
  }
  if (r >= 0)
    r = recv_exact(fd, resp.data, n, deadline);
  if (r >= 0) {
    step = "decoding the response";
    r = tdx_qgs_decode_response(resp.data, resp.len, &quote);
  }
  if (r >= 0) {
    step = "storing the quote";
    r = buf_append(out, quote.ptr, quote.len);
  }
  close(fd);
  if (r < 0) {
    err_add(p, "vsock QGS %u:%u: %s: %s", TEE_TDX_QGS_CID, port, step, strerror(-r));
    return r;
  }
  return 0;
}

/* ---- quote path 3: TDVMCALL GetQuote ---- */

static int quote_tdvmcall(struct tdx_priv *p, const uint8_t report_data[64], struct buf *out) {
  uint8_t report[TDX_REPORT_SIZE];
  int r = tdx_report(p, report_data, report);
  if (r < 0) {
    err_add(p, "tdvmcall: TDREPORT from %s: %s", p->device,
            r == -ENODEV ? "no such device (not a TDX guest)" : strerror(-r));
    return r;
  }
  _cleanup_buf_ struct buf req = BUF_INIT(TDX_QGS_PREFIX_SIZE + TDX_QGS_REQUEST_SIZE);
  r = tdx_qgs_encode_request(report, &req);
  if (r < 0)
    return r;

  uint8_t *blob = aligned_alloc(4096, TDX_QUOTE_BUF_SIZE);
  if (!blob)
    return -ENOMEM;
  memset(blob, 0, TDX_QUOTE_BUF_SIZE);
  struct tdx_quote_hdr hdr = {
      .version = TDX_QUOTE_VERSION,
      .status = TDX_QUOTE_STATUS_SUCCESS,
      .in_len = (uint32_t)req.len,
      .out_len = 0,
  };
  memcpy(blob, &hdr, sizeof hdr);
  memcpy(blob + sizeof hdr, req.data, req.len);
  struct tdx_quote_req arg = {.buf = (uint64_t)(uintptr_t)blob, .len = TDX_QUOTE_BUF_SIZE};

  int fd = -1;
  struct slice quote;
  r = open_device(p, &fd);
  if (r < 0) {
    err_add(p, "tdvmcall: %s: %s", p->device, strerror(-r));
    goto out;
  }
  r = do_ioctl(p, fd, TDX_CMD_GET_QUOTE, &arg);
  close(fd);
  if (r < 0) {
    err_add(p, "tdvmcall: TDX_CMD_GET_QUOTE: %s", strerror(-r));
    goto out;
  }
  memcpy(&hdr, blob, sizeof hdr);
  if (hdr.status != TDX_QUOTE_STATUS_SUCCESS) {
    r = hdr.status == TDX_QUOTE_STATUS_IN_FLIGHT             ? -EBUSY
        : hdr.status == TDX_QUOTE_STATUS_SERVICE_UNAVAILABLE ? -EHOSTUNREACH
                                                              : -EIO;
    err_add(p, "tdvmcall: GetQuote status 0x%llx", (unsigned long long)hdr.status);
    goto out;
  }
  if (hdr.out_len <= TDX_QGS_PREFIX_SIZE ||
      hdr.out_len > TDX_QUOTE_BUF_SIZE - sizeof(struct tdx_quote_hdr)) {
    r = -EBADMSG;
    err_add(p, "tdvmcall: GetQuote out_len %u", hdr.out_len);
    goto out;
  }
  r = tdx_qgs_decode_framed_response(blob + sizeof hdr, hdr.out_len, &quote);
  if (r < 0) {
    err_add(p, "tdvmcall: decoding the QGS response: %s", strerror(-r));
    goto out;
  }
  r = buf_append(out, quote.ptr, quote.len);
out:
  free(blob);
  return r;
}

static int tdx_get_quote(struct tee *t, const uint8_t report_data[64], struct buf *ret_quote) {
  struct tdx_priv *p = tdx_priv(t);
  bool unavailable;
  pthread_mutex_lock(&p->lock);
  p->err[0] = 0;
  int r = quote_configfs(p, report_data, ret_quote, &unavailable);
  if (r < 0 && unavailable)
    r = quote_vsock(p, report_data, ret_quote, &unavailable);
  if (r < 0 && unavailable)
    r = quote_tdvmcall(p, report_data, ret_quote);
  if (r >= 0)
    p->err[0] = 0;
  else
    log_debug_errno(r, "TDX quote: %s", p->err);
  pthread_mutex_unlock(&p->lock);
  return r < 0 ? r : 0;
}

const char *tee_tdx_last_error(struct tee *t) {
  if (!t || t->ops != &tee_tdx_ops)
    return "";
  return tdx_priv(t)->err;
}

/* ---- construction ---- */

static void tdx_priv_free(struct tdx_priv *p) {
  if (!p)
    return;
  free(p->configfs_dir);
  free(p->configfs_base);
  free(p->device);
  free(p->rtmr_sysfs_dir);
  free(p->attest_conf);
  free(p->eventlog);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

static void tdx_free(struct tee *t) {
  if (!t)
    return;
  tdx_priv_free(t->priv);
  free(t);
}

const struct tee_ops tee_tdx_ops = {
    .name = "tdx",
    .get_report = tdx_get_report,
    .get_quote = tdx_get_quote,
    .extend_rtmr = tdx_extend_rtmr,
    .read_rtmrs = tdx_read_rtmrs,
    .eventlog_path = tdx_eventlog_path,
    .free = tdx_free,
};

static int dup_or(const char *v, const char *dflt, char **ret) {
  const char *s = v && *v ? v : dflt;
  if (!s) {
    *ret = NULL;
    return 0;
  }
  *ret = strdup(s);
  return *ret ? 0 : -ENOMEM;
}

int tee_tdx_new(const struct tee_tdx_config *cfg, struct tee **ret) {
  if (!ret)
    return -EINVAL;
  *ret = NULL;
  static const struct tee_tdx_config none;
  if (!cfg)
    cfg = &none;

  struct tdx_priv *p = calloc(1, sizeof *p);
  if (!p)
    return -ENOMEM;
  if (pthread_mutex_init(&p->lock, NULL) != 0) {
    free(p);
    return -ENOMEM;
  }

  const char *env_cfs = getenv(TEE_TDX_ENV_CONFIGFS);
  const char *env_rtmr = getenv(TEE_TDX_ENV_RTMR_SYSFS);
  const char *cfs_dir = cfg->configfs_dir;
  const char *cfs_base = cfg->configfs_base;
  if (!cfs_dir || !*cfs_dir) {
    if (env_cfs && *env_cfs)
      cfs_dir = env_cfs;
    else {
      cfs_dir = TEE_TDX_DEFAULT_CONFIGFS_DIR;
      if (!cfs_base)
        cfs_base = TEE_TDX_DEFAULT_CONFIGFS_BASE;
    }
  }
  int r;
  if ((r = dup_or(cfs_dir, NULL, &p->configfs_dir)) < 0 ||
      (r = dup_or(cfs_base, NULL, &p->configfs_base)) < 0 ||
      (r = dup_or(cfg->device, TEE_TDX_DEFAULT_DEVICE, &p->device)) < 0 ||
      (r = dup_or(cfg->rtmr_sysfs_dir,
                  env_rtmr && *env_rtmr ? env_rtmr : TEE_TDX_DEFAULT_RTMR_SYSFS_DIR,
                  &p->rtmr_sysfs_dir)) < 0 ||
      (r = dup_or(cfg->attest_conf, TEE_TDX_DEFAULT_ATTEST_CONF, &p->attest_conf)) < 0 ||
      (r = dup_or(cfg->eventlog, TEE_TDX_DEFAULT_EVENTLOG, &p->eventlog)) < 0) {
    tdx_priv_free(p);
    return r;
  }
  p->ioctl_fn = cfg->ioctl_fn ? cfg->ioctl_fn : default_ioctl;
  p->vsock_connect = cfg->vsock_connect ? cfg->vsock_connect : default_vsock_connect;
  p->vsock_userdata = cfg->vsock_userdata;
  p->configfs_hook = cfg->configfs_hook;
  p->configfs_hook_userdata = cfg->configfs_hook_userdata;
  p->busy_retries = cfg->busy_retries ? cfg->busy_retries : DEFAULT_BUSY_RETRIES;
  p->busy_wait_ms = cfg->busy_wait_ms ? cfg->busy_wait_ms : DEFAULT_BUSY_WAIT_MS;
  p->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;

  struct tee *t = calloc(1, sizeof *t);
  if (!t) {
    tdx_priv_free(p);
    return -ENOMEM;
  }
  t->ops = &tee_tdx_ops;
  t->priv = p;
  *ret = t;
  return 0;
}

/* The guest side of the host channel: find the port, one locked exchange per call. */
#include "attest/hostch_client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"

#define SYSFS_PORTS "/sys/class/virtio-ports"
/* Bytes of stale input dropped before a request: a reply someone else gave up on. */
#define DRAIN_MAX ((size_t)4 * HOSTCH_LINE_MAX)

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline) {
  int64_t l = deadline - now_ms();
  return l <= 0 ? 0 : l > INT32_MAX ? INT32_MAX : (int)l;
}

static void sleep_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Ids: a random start per process (so two processes sharing the port never pick the same one),
 * then counting up; kept below 2^53 so every JSON reader holds them exactly. */
static _Atomic int64_t next_id;

static int64_t id_next(void) {
  int64_t cur = atomic_load(&next_id);
  while (cur == 0) {
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
      rnd = (uint32_t)now_ms() ^ (uint32_t)getpid() << 12;
    int64_t start = ((int64_t)rnd << 16) + 1;
    if (atomic_compare_exchange_strong(&next_id, &cur, start))
      cur = start;
  }
  return atomic_fetch_add(&next_id, 1);
}

static int read_small(const char *path, char *out, size_t n) {
  _cleanup_buf_ struct buf b = BUF_INIT(256);
  int r = file_read_pseudo(path, n - 1, &b);
  if (r < 0)
    return r;
  while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
    b.len--;
  if (memchr(b.data, 0, b.len))
    return -EBADMSG;
  memcpy(out, b.data, b.len);
  out[b.len] = 0;
  return 0;
}

int hostch_find(const char *sysfs_root, const char *dev_root, char **ret_path) {
  if (!ret_path)
    return -EINVAL;
  *ret_path = NULL;
  const char *env = getenv(HOSTCH_ENV);
  if (env && *env) {
    if (!(*ret_path = strdup(env)))
      return -ENOMEM;
    return 0;
  }
  if (!sysfs_root)
    sysfs_root = SYSFS_PORTS;
  if (!dev_root)
    dev_root = "/dev";
  DIR *d = opendir(sysfs_root);
  if (!d)
    return log_debug_errno(-ENODEV, "no virtio ports (%s: %s)", sysfs_root, strerror(errno));
  int r = -ENODEV;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.' || strlen(de->d_name) > 64 || strchr(de->d_name, '/'))
      continue;
    char p[512], name[128], dev[32];
    snprintf(p, sizeof(p), "%s/%s/name", sysfs_root, de->d_name);
    if (read_small(p, name, sizeof(name)) < 0 || !str_eq(name, HOSTCH_PORT_NAME))
      continue;
    snprintf(p, sizeof(p), "%s/%s/dev", sysfs_root, de->d_name);
    unsigned maj, min;
    char extra;
    if (read_small(p, dev, sizeof(dev)) < 0 || sscanf(dev, "%u:%u%c", &maj, &min, &extra) != 2) {
      r = log_debug_errno(-ENODEV, "%s: no device number", p);
      break;
    }
    _cleanup_free_ char *node = str_printf("%s/%s", dev_root, de->d_name);
    if (!node) {
      r = -ENOMEM;
      break;
    }
    dev_t want = makedev(maj, min);
    struct stat st;
    if (lstat(node, &st) < 0) {
      if (errno != ENOENT || mknod(node, S_IFCHR | 0600, want) < 0) {
        r = log_debug_errno(-errno, "creating %s", node);
        break;
      }
    } else if (!S_ISCHR(st.st_mode) || st.st_rdev != want) {
      r = log_debug_errno(-ENODEV, "%s is not the device %u:%u", node, maj, min);
      break;
    }
    *ret_path = TAKE_PTR(node);
    r = 0;
    break;
  }
  closedir(d);
  return r;
}

/* The lock every user of the port takes; waits at most until deadline. */
static int lock_take(int64_t deadline, int *ret_fd) {
  const char *path = getenv(HOSTCH_LOCK_ENV);
  if (!path || !*path)
    path = HOSTCH_LOCK;
  int r = mkdir_parents(path, 0700);
  if (r < 0)
    return log_debug_errno(r, "creating the directory of %s", path);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return log_debug_errno(-errno, "opening %s", path);
  while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      r = -errno;
      close(fd);
      return r;
    }
    if (left_ms(deadline) == 0) {
      close(fd);
      return -ETIMEDOUT;
    }
    sleep_ms(MIN(10, left_ms(deadline)));
  }
  *ret_fd = fd;
  return 0;
}

/* Opens the channel: a unix socket (tests) or the port, which is busy (EBUSY) while another
 * opener holds it (one outside our lock, e.g. an older tool): retried until the deadline. */
static int channel_open(const char *path, int64_t deadline, bool *ret_socket, int *ret_fd) {
  struct stat st;
  if (stat(path, &st) < 0)
    return log_debug_errno(errno == ENOENT ? -ENODEV : -errno, "host channel %s", path);
  if (S_ISSOCK(st.st_mode)) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
      return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
      int r = errno == ECONNREFUSED || errno == ENOENT ? -ENODEV : -errno;
      close(fd);
      return log_debug_errno(r, "connecting to %s", path);
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
      int r = -errno;
      close(fd);
      return r;
    }
    *ret_socket = true;
    *ret_fd = fd;
    return 0;
  }
  if (!S_ISCHR(st.st_mode))
    return log_debug_errno(-ENODEV, "host channel %s is not a device or socket", path);
  for (;;) {
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      *ret_socket = false;
      *ret_fd = fd;
      return 0;
    }
    if (errno != EBUSY && errno != EINTR)
      return log_debug_errno(errno == ENOENT || errno == ENXIO ? -ENODEV : -errno, "opening %s",
                             path);
    if (left_ms(deadline) == 0)
      return -ETIMEDOUT;
    sleep_ms(MIN(20, left_ms(deadline)));
  }
}

static int write_all(int fd, bool is_socket, const char *p, size_t n, int64_t deadline) {
  while (n) {
    /* a host that closed the socket must not kill us with SIGPIPE */
    ssize_t w = is_socket ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && errno != EAGAIN)
      return errno == EPIPE || errno == ECONNRESET ? -EIO : -errno;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int t = left_ms(deadline);
    if (t == 0)
      return -ETIMEDOUT;
    int k = poll(&pfd, 1, t);
    if (k < 0 && errno != EINTR)
      return -errno;
    if (k == 0)
      return -ETIMEDOUT;
    /* A port whose host side is not connected (teepod restarting) polls as a hangup and is
     * not writable: wait for the host, without spinning. A socket that hung up is gone. */
    if (k > 0 && (pfd.revents & (POLLHUP | POLLERR)) && !(pfd.revents & POLLOUT)) {
      if (is_socket)
        return -EIO;
      sleep_ms(MIN(20, left_ms(deadline)));
    }
  }
  return 0;
}

/* Drops what is already waiting on the port (replies an earlier caller gave up on). */
static void drain_stale(int fd) {
  char chunk[4096];
  size_t total = 0;
  while (total < DRAIN_MAX) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0)
      break;
    total += (size_t)n;
  }
}

int hostch_reply_parse(const char *line, size_t len, int64_t id, json_t **ret_result,
                       char **ret_error) {
  if ((!line && len) || !ret_result)
    return -EINVAL;
  *ret_result = NULL;
  if (len >= HOSTCH_LINE_MAX)
    return -EBADMSG;
  _cleanup_json_ json_t *o = NULL;
  if (json_parse_buf(line, len, HOSTCH_LINE_MAX, &o) < 0 || !json_is_object(o))
    return -EAGAIN;
  json_t *jid = json_object_get(o, "id");
  if (!json_is_integer(jid) || json_integer_value(jid) != id)
    return -EAGAIN;
  json_t *err = json_object_get(o, "error");
  json_t *res = json_object_get(o, "result");
  if (err && !json_is_null(err)) {
    if (res && !json_is_null(res))
      return -EBADMSG;
    const char *msg = NULL;
    if (json_is_object(err))
      (void)json_get_str(err, "message", &msg);
    else if (json_is_string(err))
      msg = json_string_value(err);
    if (ret_error) {
      *ret_error = msg ? strndup(msg, HOSTCH_ERROR_MAX) : strdup("error without a message");
      if (!*ret_error)
        return -ENOMEM;
    }
    return -EREMOTEIO;
  }
  if (!json_is_object(res))
    return -EBADMSG;
  *ret_result = json_incref(res);
  return 0;
}

/* Reads lines until the one answering id; at most HOSTCH_MAX_SKIPPED others. */
static int read_reply(int fd, bool is_socket, int64_t id, int64_t deadline,
                      json_t **ret_result, char **ret_error) {
  _cleanup_buf_ struct buf in = BUF_INIT(HOSTCH_LINE_MAX + 4096);
  unsigned skipped = 0;
  for (;;) {
    uint8_t *nl;
    while (in.len && (nl = memchr(in.data, '\n', in.len))) {
      size_t ll = (size_t)(nl - in.data);
      int r = hostch_reply_parse((const char *)in.data, ll, id, ret_result, ret_error);
      if (r != -EAGAIN)
        return r;
      if (++skipped > HOSTCH_MAX_SKIPPED)
        return log_debug_errno(-EBADMSG, "host channel: more than %d lines without a reply",
                               HOSTCH_MAX_SKIPPED);
      memmove(in.data, nl + 1, in.len - ll - 1);
      in.len -= ll + 1;
    }
    if (in.len >= HOSTCH_LINE_MAX)
      return log_debug_errno(-EBADMSG, "host channel: a line over %zu bytes", HOSTCH_LINE_MAX);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int t = left_ms(deadline);
    if (t == 0)
      return -ETIMEDOUT;
    int k = poll(&pfd, 1, t);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (k == 0)
      return -ETIMEDOUT;
    int r = buf_reserve(&in, 4096);
    if (r < 0)
      return r;
    size_t room = MIN(in.alloc - in.len - 1, in.max - in.len);
    ssize_t n = read(fd, in.data + in.len, room);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        continue;
      return -errno;
    }
    if (n == 0) {
      /* a socket closed; a port without a host side reads 0 too: wait for it (polling) */
      if (is_socket)
        return log_debug_errno(-EIO, "host channel closed");
      sleep_ms(MIN(20, left_ms(deadline)));
      continue;
    }
    in.len += (size_t)n;
  }
}

int hostch_call(const char *method, json_t *params, int timeout_ms, json_t **ret_result,
                char **ret_error) {
  if (!method || !*method || !ret_result || timeout_ms < 0 || (params && !json_is_object(params)))
    return -EINVAL;
  *ret_result = NULL;
  if (ret_error)
    *ret_error = NULL;
  int64_t deadline = now_ms() + timeout_ms;
  int64_t id = id_next();

  _cleanup_json_ json_t *req = json_object();
  if (!req || json_set_i64(req, "id", id) < 0 || json_set_str(req, "method", method) < 0 ||
      json_set_new(req, "params", params ? json_incref(params) : json_object()) < 0)
    return -ENOMEM;
  _cleanup_buf_ struct buf line = BUF_INIT(HOSTCH_LINE_MAX);
  int r = json_dump_buf(req, JSON_COMPACT, &line);
  if (r == 0)
    r = buf_append(&line, "\n", 1);
  if (r < 0)
    return r == -ENOBUFS ? -EMSGSIZE : r;

  _cleanup_free_ char *path = NULL;
  r = hostch_find(NULL, NULL, &path);
  if (r < 0)
    return r;
  struct stat st;
  bool locked = false;
  int lock_fd = -1, fd = -1;
  if (stat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
    if ((r = lock_take(deadline, &lock_fd)) < 0)
      return r;
    locked = true;
  }
  bool is_socket = false;
  r = channel_open(path, deadline, &is_socket, &fd);
  if (r < 0)
    goto out;
  if (!is_socket)
    drain_stale(fd);
  r = write_all(fd, is_socket, (const char *)line.data, line.len, deadline);
  if (r < 0)
    goto out;
  r = read_reply(fd, is_socket, id, deadline, ret_result, ret_error);
out:
  if (fd >= 0)
    close(fd);
  if (locked)
    close(lock_fd);
  if (r < 0 && r != -EREMOTEIO)
    log_debug_errno(r, "host channel %s: %s failed", path, method);
  return r;
}

int hostch_notify(const char *event, const char *payload, int timeout_ms) {
  if (!event)
    return -EINVAL;
  _cleanup_json_ json_t *params = json_pack("{s:s,s:s}", "event", event, "payload",
                                            payload ? payload : "");
  if (!params)
    return -ENOMEM;
  _cleanup_json_ json_t *res = NULL;
  return hostch_call("Notify", params, timeout_ms, &res, NULL);
}

/* QMP: one command per connection. */
#include "teepod_qmp.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/str.h"
#include "teepod_proc.h"

#define QMP_LINE_MAX ((size_t)64 * 1024)

static long long mono_ms(void) {
  return (long long)(teepod_mono_ns() / 1000000);
}

struct qmp {
  int fd;
  long long deadline;
  struct buf in;
};

static int qmp_send(struct qmp *q, const char *text) {
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t n = send(q->fd, text + off, len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    off += (size_t)n;
  }
  return 0;
}

/* The next JSON object line that is not an event. */
static int qmp_read(struct qmp *q, json_t **ret) {
  for (;;) {
    uint8_t *nl = q->in.len ? memchr(q->in.data, '\n', q->in.len) : NULL;
    if (nl) {
      size_t ll = (size_t)(nl - q->in.data);
      json_t *j = NULL;
      int r = json_parse_buf((const char *)q->in.data, ll, QMP_LINE_MAX, &j);
      memmove(q->in.data, nl + 1, q->in.len - ll - 1);
      q->in.len -= ll + 1;
      if (r < 0)
        return r;
      if (json_object_get(j, "event")) {
        json_decref(j);
        continue;
      }
      *ret = j;
      return 0;
    }
    long long left = q->deadline - mono_ms();
    if (left <= 0)
      return -ETIMEDOUT;
    struct pollfd p = {.fd = q->fd, .events = POLLIN};
    int pr = poll(&p, 1, (int)left);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr == 0)
      return -ETIMEDOUT;
    if (pr < 0)
      return -errno;
    uint8_t tmp[4096];
    ssize_t n = recv(q->fd, tmp, sizeof(tmp), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      return -ECONNRESET;
    int r = buf_append(&q->in, tmp, (size_t)n);
    if (r < 0)
      return r;
  }
}

int teepod_qmp_command(const char *dir, const char *socket_name, const char *command,
                       unsigned timeout_ms, char *err, size_t errlen) {
  struct qmp q = {.fd = -1, .deadline = mono_ms() + timeout_ms};
  buf_init(&q.in, QMP_LINE_MAX);
  json_t *j = NULL;
  int r = teepod_unix_connect(dir, socket_name, &q.fd);
  if (r < 0) {
    r = str_err(err, errlen, r, "connecting to QMP: %s", strerror(-r));
    goto out;
  }
  /* greeting, capabilities, command */
  if ((r = qmp_read(&q, &j)) < 0 || !json_object_get(j, "QMP")) {
    r = str_err(err, errlen, r < 0 ? r : -EPROTO, "QMP: no greeting");
    goto out;
  }
  json_decref(j);
  j = NULL;
  if ((r = qmp_send(&q, "{\"execute\":\"qmp_capabilities\"}\n")) < 0 ||
      (r = qmp_read(&q, &j)) < 0 || !json_object_get(j, "return")) {
    r = str_err(err, errlen, r < 0 ? r : -EPROTO, "QMP: capabilities refused");
    goto out;
  }
  json_decref(j);
  j = NULL;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "{\"execute\":\"%s\"}\n", command);
  if ((r = qmp_send(&q, cmd)) < 0 || (r = qmp_read(&q, &j)) < 0) {
    r = str_err(err, errlen, r, "QMP %s: %s", command, strerror(-r));
    goto out;
  }
  if (!json_object_get(j, "return")) {
    json_t *e = json_object_get(j, "error");
    const char *desc = NULL;
    json_get_str(e, "desc", &desc);
    r = str_err(err, errlen, -EIO, "QMP %s: %s", command, desc ? desc : "error");
    goto out;
  }
  r = 0;
out:
  json_decref(j);
  if (q.fd >= 0)
    close(q.fd);
  buf_free(&q.in);
  return r;
}

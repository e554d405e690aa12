/* The /logs endpoint. */
#include "teepod_logs.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "net/http_server.h"
#include "teepod.h"

#define CHUNK 16384

enum { A_TEXT, A_ESC, A_CSI, A_OSC, A_OSC_ESC };

size_t teepod_ansi_strip(struct teepod_ansi *a, const char *in, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)in[i];
    switch (a->state) {
    case A_TEXT:
      if (c == 0x1b)
        a->state = A_ESC;
      else
        out[o++] = (char)c;
      break;
    case A_ESC:
      /* ESC [ CSI, ESC ] OSC; intermediates (0x20-0x2f, as in ESC ( B) and a repeated ESC
       * keep the sequence open; any other byte ends it (ESC 7, ESC c, ESC ( B's B) */
      if (c == '[')
        a->state = A_CSI;
      else if (c == ']')
        a->state = A_OSC;
      else if (c != 0x1b && (c < 0x20 || c > 0x2f))
        a->state = A_TEXT;
      break;
    case A_CSI:
      if (c >= 0x40 && c <= 0x7e)
        a->state = A_TEXT;
      break;
    case A_OSC:
      if (c == 0x07)
        a->state = A_TEXT;
      else if (c == 0x1b)
        a->state = A_OSC_ESC;
      break;
    case A_OSC_ESC:
      a->state = c == '\\' ? A_TEXT : A_OSC;
      break;
    }
  }
  return o;
}

struct follower {
  struct teepod *tp;
  struct http_request *req;
  int fd;
  off_t off;
  bool follow, strip, waiting_drain;
  struct teepod_ansi ansi;
  struct event *timer;
  unsigned idle_polls;
};

static unsigned n_followers;

static void follower_free(struct follower *f) {
  if (f->timer)
    event_free(f->timer);
  if (f->fd >= 0)
    close(f->fd);
  n_followers--;
  free(f);
}

static void follower_end(struct follower *f) {
  http_stream_end(f->req);
  follower_free(f);
}

static void on_close(void *ud) {
  follower_free(ud);
}

static void pump(struct follower *f);

static void on_drain(void *ud) {
  struct follower *f = ud;
  f->waiting_drain = false;
  pump(f);
}

static void on_timer(evutil_socket_t fd, short what, void *ud) {
  (void)fd;
  (void)what;
  pump(ud);
}

/* Sends what the file has past f->off; then ends (no follow) or waits for more. */
static void pump(struct follower *f) {
  char in[CHUNK], out[CHUNK];
  bool at_eof = false;
  for (unsigned k = 0; k < 64; k++) {
    struct stat st;
    if (fstat(f->fd, &st) == 0 && st.st_size < f->off)
      f->off = 0; /* rotated (truncated): start over */
    ssize_t n = pread(f->fd, in, sizeof(in), f->off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      at_eof = true;
      break;
    }
    size_t m = f->strip ? teepod_ansi_strip(&f->ansi, in, (size_t)n, out) : (size_t)n;
    int r = http_stream_write(f->req, f->strip ? out : in, m);
    if (r == -EAGAIN) {
      f->waiting_drain = true;
      http_stream_on_drain(f->req, on_drain, f);
      return; /* f->off unchanged: those bytes go again */
    }
    if (r < 0) {
      follower_end(f);
      return;
    }
    f->off += n;
  }
  if (!at_eof) {
    /* more to send: go on from the loop, so one large log does not hold it */
    struct timeval now = {0, 0};
    evtimer_add(f->timer, &now);
    return;
  }
  if (!f->follow) {
    follower_end(f);
    return;
  }
  struct timeval tv = {0, 250 * 1000};
  evtimer_add(f->timer, &tv);
}

/* Offset where the last `lines` lines of fd start. */
static off_t tail_offset(int fd, uint64_t lines) {
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_size == 0)
    return 0;
  off_t end = st.st_size, pos = end;
  uint64_t seen = 0;
  char b[4096];
  /* a last line without its newline counts as a line */
  char last;
  if (pread(fd, &last, 1, end - 1) == 1 && last == '\n')
    end--; /* the final newline ends the last line, it does not start a new one */
  pos = end;
  while (pos > 0) {
    size_t want = pos > (off_t)sizeof(b) ? sizeof(b) : (size_t)pos;
    ssize_t n = pread(fd, b, want, pos - (off_t)want);
    if (n <= 0)
      return 0;
    for (ssize_t i = n - 1; i >= 0; i--)
      if (b[i] == '\n' && ++seen == lines)
        return pos - (off_t)want + i + 1;
    pos -= (off_t)want;
  }
  return 0;
}

static bool query_bool(struct http_request *req, const char *name, bool dflt) {
  _cleanup_free_ char *v = NULL;
  bool b;
  if (http_request_query_get(req, name, &v) < 0)
    return dflt;
  if (!*v)
    return true;
  return str_to_bool(v, &b) == 0 ? b : dflt;
}

void teepod_logs_handle(struct teepod *tp, struct http_request *req) {
  _cleanup_free_ char *id = NULL, *ch = NULL, *lines_s = NULL;
  if (http_request_query_get(req, "id", &id) < 0) {
    http_reply_error(req, 400, "id is required");
    return;
  }
  struct teepod_vm *vm = teepod_vm_find(tp, id);
  if (!vm) {
    http_reply_error(req, 404, "VM %.64s not found", id);
    return;
  }
  const char *file = "serial.log";
  if (http_request_query_get(req, "ch", &ch) == 0 && *ch) {
    if (str_eq(ch, "stdout") || str_eq(ch, "stderr"))
      file = "qemu.out";
    else if (!str_eq(ch, "serial")) {
      http_reply_error(req, 400, "ch must be serial, stdout or stderr");
      return;
    }
  }
  uint64_t lines = 0;
  if (http_request_query_get(req, "lines", &lines_s) == 0 && *lines_s &&
      (str_to_u64(lines_s, &lines) < 0 || lines > TEEPOD_LOGS_MAX_LINES)) {
    http_reply_error(req, 400, "lines must be 0..%d", TEEPOD_LOGS_MAX_LINES);
    return;
  }
  bool follow = query_bool(req, "follow", false);
  bool ansi = query_bool(req, "ansi", true);
  if (follow && n_followers >= TEEPOD_LOGS_FOLLOWERS) {
    http_reply_error(req, 503, "too many log followers");
    return;
  }
  _cleanup_free_ char *path = str_printf("%s/%s", vm->dir, file);
  if (!path) {
    http_reply_error(req, 500, "out of memory");
    return;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno != ENOENT) {
    http_reply_error(req, 500, "cannot read the log");
    return;
  }
  if (fd < 0 && !follow) {
    http_reply(req, 200, "text/plain; charset=utf-8", "", 0);
    return;
  }
  if (fd < 0)
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  struct follower *f = calloc(1, sizeof(*f));
  if (!f) {
    close(fd);
    http_reply_error(req, 500, "out of memory");
    return;
  }
  n_followers++;
  f->tp = tp;
  f->req = req;
  f->fd = fd;
  f->follow = follow;
  f->strip = !ansi;
  f->off = lines ? tail_offset(fd, lines) : 0;
  f->timer = evtimer_new(tp->base, on_timer, f);
  http_reply_header(req, "Cache-Control", "no-store");
  if (!f->timer || http_stream_start(req, 200, "text/plain; charset=utf-8") < 0) {
    follower_end(f);
    return;
  }
  http_stream_on_close(req, on_close, f);
  pump(f);
}

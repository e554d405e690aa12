/* The host channel: the guest's requests over virtio-serial. */
#include "teepod_hostch.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>
#include <time.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "teepod.h"
#include "teepod_cfgdisk.h"
#include "teepod_proc.h"
#include "teepod_sim.h"

struct teepod_hostch {
  struct teepod_vm *vm;
  struct bufferevent *bev;
  bool discarding; /* inside a line over the cap: drop until its newline */
  unsigned long lines, refused;
};

/* Refills the VM's buckets; the first use starts them full. */
static void budget_refill(struct teepod_vm *vm) {
  uint64_t now = teepod_mono_ns();
  if (!vm->ch_refill_ns) {
    vm->ch_tokens = TEEPOD_HOSTCH_RATE;
    vm->ch_heavy_tokens = 2 * TEEPOD_HOSTCH_HEAVY_RATE;
  } else {
    double dt = (double)(now - vm->ch_refill_ns) / 1e9;
    vm->ch_tokens += dt * TEEPOD_HOSTCH_RATE;
    vm->ch_heavy_tokens += dt * TEEPOD_HOSTCH_HEAVY_RATE;
    if (vm->ch_tokens > TEEPOD_HOSTCH_RATE)
      vm->ch_tokens = TEEPOD_HOSTCH_RATE;
    if (vm->ch_heavy_tokens > 2 * TEEPOD_HOSTCH_HEAVY_RATE)
      vm->ch_heavy_tokens = 2 * TEEPOD_HOSTCH_HEAVY_RATE;
  }
  vm->ch_refill_ns = now;
}

/* Costly requests: the TDX module's work (signing, fsync'd extends, the event log read from
 * disk), the guest's fsync'd files, and errors (each one a log line). */
static bool is_heavy(const char *method, json_t *params) {
  if (str_startswith(method, "Tdx."))
    return true;
  const char *ev = NULL;
  if (str_eq(method, "Notify") && json_get_str(params, "event", &ev) == 0 && ev)
    return str_eq(ev, "instance.info") || str_eq(ev, "initialized") || str_eq(ev, "boot.error");
  return false;
}

static void ch_reply(struct teepod_hostch *ch, json_t *id, json_t *result, const char *error) {
  _cleanup_json_ json_t *o = json_object();
  if (!o)
    return;
  json_object_set(o, "id", id ? id : json_null());
  if (error)
    json_object_set_new(o, "error", json_pack("{s:s}", "message", error));
  else
    json_object_set(o, "result", result ? result : json_object());
  _cleanup_free_ char *t = json_dump_compact(o);
  if (!t)
    return;
  struct evbuffer *out = bufferevent_get_output(ch->bev);
  /* a guest that does not read its replies must not grow our memory */
  if (evbuffer_get_length(out) > 4 * TEEPOD_HOSTCH_LINE_MAX)
    return;
  evbuffer_add(out, t, strlen(t));
  evbuffer_add(out, "\n", 1);
}

/* A guest text fit for Status and logs: valid UTF-8, no control characters, at most max bytes. */
static char *clean_text(const char *s, size_t max) {
  size_t len = strnlen(s, max);
  char *t = NULL;
  size_t tl = 0;
  if (str_utf8_sanitize(s, len, &t, &tl) < 0)
    return NULL;
  /* C0, DEL and the C1 controls U+0080..U+009F (C2 80..C2 9F; a terminal may take U+009B as
   * CSI) each become one space */
  size_t o = 0;
  for (size_t i = 0; i < tl; i++) {
    unsigned char c = (unsigned char)t[i];
    if (c == 0xc2 && i + 1 < tl && (unsigned char)t[i + 1] <= 0x9f) {
      t[o++] = ' ';
      i++;
    } else {
      t[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
  }
  tl = o;
  t[tl] = 0;
  /* cutting at max may have split a sequence: sanitize replaced it; cut to max again on a
   * character boundary */
  while (tl > max) {
    tl--;
    while (tl && ((unsigned char)t[tl] & 0xc0) == 0x80)
      tl--;
    t[tl] = 0;
  }
  return t;
}

static void set_owned(char **dst, char *v) {
  free(*dst);
  *dst = v;
}

static int notify(struct teepod_vm *vm, json_t *params, char **ret_error) {
  const char *event = NULL, *payload = "";
  if (json_get_str(params, "event", &event) < 0 || !event)
    return (*ret_error = strdup("Notify needs an event")), -EINVAL;
  if (json_get_str(params, "payload", &payload) == -EINVAL)
    return (*ret_error = strdup("payload must be a string")), -EINVAL;
  if (!payload)
    payload = "";
  size_t plen = strlen(payload);
  if (str_eq(event, "boot.progress")) {
    if (plen > TEEPOD_PROGRESS_MAX)
      return (*ret_error = strdup("boot.progress payload over 256 bytes")), -EINVAL;
    set_owned(&vm->boot_progress, clean_text(payload, TEEPOD_PROGRESS_MAX));
  } else if (str_eq(event, "boot.error")) {
    if (plen > TEEPOD_ERROR_MAX)
      return (*ret_error = strdup("boot.error payload over 1024 bytes")), -EINVAL;
    set_owned(&vm->boot_error, clean_text(payload, TEEPOD_ERROR_MAX));
    log_warn("vm %s (%s): guest reports a boot error: %s", vm->m.id, vm->m.name,
             vm->boot_error ? vm->boot_error : "?");
  } else if (str_eq(event, "shutdown.progress")) {
    if (plen > TEEPOD_PROGRESS_MAX)
      return (*ret_error = strdup("shutdown.progress payload over 256 bytes")), -EINVAL;
    set_owned(&vm->shutdown_progress, clean_text(payload, TEEPOD_PROGRESS_MAX));
  } else if (str_eq(event, "instance.info")) {
    if (plen > 4096)
      return (*ret_error = strdup("instance.info payload over 4096 bytes")), -EINVAL;
    _cleanup_json_ json_t *info = NULL;
    if (json_parse_buf(payload, plen, 4096, &info) < 0 || !json_is_object(info))
      return (*ret_error = strdup("instance.info payload must be a JSON object")), -EINVAL;
    const char *iid = NULL;
    if (json_get_str(info, "instance_id", &iid) == 0 && iid) {
      if (strlen(iid) > 128 || strspn(iid, "0123456789abcdefABCDEF") != strlen(iid))
        return (*ret_error = strdup("instance_id must be hex")), -EINVAL;
      set_owned(&vm->instance_id, strdup(iid));
    }
    int r = teepod_shared_write(vm->dir, ".instance_info", payload, plen);
    if (r < 0) {
      log_error("vm %s: writing .instance_info: %s", vm->m.id, strerror(-r));
      return (*ret_error = strdup("cannot store the instance info")), r;
    }
  } else if (str_eq(event, "initialized")) {
    int r = teepod_shared_write(vm->dir, "initialized", "", 0);
    if (r < 0)
      return (*ret_error = strdup("cannot store the flag")), r;
  } else {
    return (*ret_error = strdup("unknown event")), -EINVAL;
  }
  _cleanup_free_ char *body = clean_text(payload, TEEPOD_ERROR_MAX);
  teepod_vm_event_add(vm, event, body ? body : "");
  return 0;
}

int teepod_hostch_dispatch(struct teepod_vm *vm, const char *method, json_t *params,
                           json_t **ret_result, char **ret_error) {
  *ret_result = NULL;
  if (str_eq(method, "Notify")) {
    int r = notify(vm, params, ret_error);
    if (r >= 0)
      *ret_result = json_object();
    return r;
  }
  if (str_eq(method, "Info")) {
    *ret_result = json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", vm->m.id, "name", vm->m.name, "app_id",
                            vm->m.app_id, "instance_id", vm->instance_id ? vm->instance_id : "",
                            "platform",
                            vm->m.no_tee ? "none"
                            : vm->tp->sim ? "sim"
                            : vm->tp->backend == TEEPOD_BACKEND_TDX ? "tdx"
                                                                    : "none");
    return *ret_result ? 0 : -ENOMEM;
  }
  if (str_startswith(method, "Tdx.")) {
    if (!vm->tp->sim || vm->m.no_tee || !vm->tee)
      return (*ret_error = strdup("this VM has no simulated TDX")), -ENOTSUP;
    return teepod_sim_dispatch(vm, method + 4, params, ret_result, ret_error);
  }
  *ret_error = strdup("unknown method");
  return -EINVAL;
}

static bool rate_ok(struct teepod_hostch *ch) {
  struct teepod_vm *vm = ch->vm;
  budget_refill(vm);
  if (vm->ch_tokens < 1)
    return false;
  vm->ch_tokens -= 1;
  return true;
}

static void warn_over_budget(struct teepod_hostch *ch, const char *what) {
  uint64_t now = teepod_mono_ns();
  /* one line per VM per 10 s at most */
  if (now - ch->vm->ch_warned_ns < 10ull * 1000000000ull && ch->vm->ch_warned_ns)
    return;
  ch->vm->ch_warned_ns = now;
  log_warn("vm %s: host channel over its budget (%s); requests dropped", ch->vm->m.id, what);
}

static void handle_line(struct teepod_hostch *ch, const char *line, size_t len) {
  ch->lines++;
  if (!rate_ok(ch)) {
    ch->refused++;
    warn_over_budget(ch, "lines");
    return;
  }
  _cleanup_json_ json_t *req = NULL;
  if (json_parse_buf(line, len, TEEPOD_HOSTCH_LINE_MAX, &req) < 0 || !json_is_object(req)) {
    ch_reply(ch, NULL, NULL, "not a JSON object");
    return;
  }
  json_t *id = json_object_get(req, "id");
  if (id && !json_is_integer(id) && !json_is_null(id))
    id = NULL;
  const char *method = NULL;
  if (json_get_str(req, "method", &method) < 0 || !method) {
    ch_reply(ch, id, NULL, "method missing");
    return;
  }
  json_t *params = json_object_get(req, "params");
  _cleanup_json_ json_t *empty = NULL;
  if (!params || json_is_null(params))
    params = empty = json_object();
  if (!json_is_object(params)) {
    ch_reply(ch, id, NULL, "params must be an object");
    return;
  }
  if (is_heavy(method, params)) {
    if (ch->vm->ch_heavy_tokens < 1) {
      ch->refused++;
      warn_over_budget(ch, "costly requests");
      ch_reply(ch, id, NULL, "too many requests; slow down");
      return;
    }
    ch->vm->ch_heavy_tokens -= 1;
  }
  _cleanup_json_ json_t *result = NULL;
  _cleanup_free_ char *error = NULL;
  int r = teepod_hostch_dispatch(ch->vm, method, params, &result, &error);
  if (r < 0)
    ch_reply(ch, id, NULL, error ? error : strerror(-r));
  else
    ch_reply(ch, id, result, NULL);
}

static void ch_read(struct bufferevent *bev, void *ud) {
  struct teepod_hostch *ch = ud;
  struct evbuffer *in = bufferevent_get_input(bev);
  for (unsigned n = 0; n < 1000; n++) {
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
    if (p.pos < 0) {
      size_t have = evbuffer_get_length(in);
      if (have >= TEEPOD_HOSTCH_LINE_MAX) {
        evbuffer_drain(in, have);
        if (!ch->discarding)
          ch_reply(ch, NULL, NULL, "line too long");
        ch->discarding = true;
      }
      return;
    }
    size_t ll = (size_t)p.pos;
    if (ch->discarding || ll >= TEEPOD_HOSTCH_LINE_MAX) {
      evbuffer_drain(in, ll + 1);
      if (!ch->discarding)
        ch_reply(ch, NULL, NULL, "line too long");
      ch->discarding = false;
      continue;
    }
    char *line = malloc(ll + 1);
    if (!line)
      return;
    evbuffer_remove(in, line, ll + 1);
    line[ll] = 0;
    if (ll && line[ll - 1] == '\r')
      line[--ll] = 0;
    if (ll)
      handle_line(ch, line, ll);
    free(line);
  }
}

static void ch_event(struct bufferevent *bev, short what, void *ud) {
  (void)bev;
  struct teepod_hostch *ch = ud;
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    struct teepod_vm *vm = ch->vm;
    log_debug("vm %s: host channel closed", vm->m.id);
    vm->ch = NULL;
    teepod_hostch_free(ch);
    teepod_vm_channel_lost(vm);
  }
}

int teepod_hostch_open(struct teepod_vm *vm, struct teepod_hostch **ret) {
  int fd;
  int r = teepod_unix_connect(vm->dir, "host.sock", &fd);
  if (r < 0)
    return r;
  return teepod_hostch_attach(vm, fd, ret);
}

int teepod_hostch_attach(struct teepod_vm *vm, int fd, struct teepod_hostch **ret) {
  evutil_make_socket_nonblocking(fd);
  struct teepod_hostch *ch = calloc(1, sizeof(*ch));
  if (!ch) {
    close(fd);
    return -ENOMEM;
  }
  ch->vm = vm;
  ch->bev = bufferevent_socket_new(vm->tp->base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (!ch->bev) {
    close(fd);
    free(ch);
    return -ENOMEM;
  }
  bufferevent_setcb(ch->bev, ch_read, NULL, ch_event, ch);
  bufferevent_setwatermark(ch->bev, EV_READ, 0, TEEPOD_HOSTCH_LINE_MAX + 1);
  bufferevent_enable(ch->bev, EV_READ | EV_WRITE);
  log_debug("vm %s: host channel connected", vm->m.id);
  *ret = ch;
  return 0;
}

void teepod_hostch_free(struct teepod_hostch *ch) {
  if (!ch)
    return;
  bufferevent_free(ch->bev);
  free(ch);
}

struct teepod_vsock {
  struct teepod *tp;
  int fd;
  struct event *ev;
};

static void vsock_accept(evutil_socket_t lfd, short what, void *ud) {
  (void)what;
  struct teepod_vsock *v = ud;
  for (unsigned n = 0; n < 64; n++) {
    struct sockaddr_vm peer;
    socklen_t len = sizeof(peer);
    int fd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
      return;
    struct teepod_vm *vm = NULL;
    for (size_t i = 0; i < v->tp->n_vms && !vm; i++)
      if (v->tp->vms[i]->cid && v->tp->vms[i]->cid == peer.svm_cid &&
          teepod_vm_running(v->tp->vms[i]))
        vm = v->tp->vms[i];
    if (!vm) {
      log_warn("vsock: connection from CID %u, which no running VM has; closed", peer.svm_cid);
      close(fd);
      continue;
    }
    /* one channel per VM: a new connection (the guest reconnected) replaces the old one */
    teepod_hostch_free(vm->ch);
    vm->ch = NULL;
    if (teepod_hostch_attach(vm, fd, &vm->ch) < 0)
      log_warn("vm %s: cannot take its vsock connection", vm->m.id);
  }
}

int teepod_vsock_listen(struct teepod *tp, struct teepod_vsock **ret) {
  struct teepod_vsock *v = calloc(1, sizeof(*v));
  if (!v)
    return -ENOMEM;
  v->tp = tp;
  v->fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
                           .svm_port = TEEPOD_VSOCK_PORT};
  int r = 0;
  if (v->fd < 0 || bind(v->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(v->fd, 64) < 0)
    r = -errno;
  else if (!(v->ev = event_new(tp->base, v->fd, EV_READ | EV_PERSIST, vsock_accept, v)) ||
           event_add(v->ev, NULL) < 0)
    r = -ENOMEM;
  if (r < 0) {
    teepod_vsock_free(v);
    return r;
  }
  *ret = v;
  return 0;
}

void teepod_vsock_free(struct teepod_vsock *v) {
  if (!v)
    return;
  if (v->ev)
    event_free(v->ev);
  if (v->fd >= 0)
    close(v->fd);
  free(v);
}

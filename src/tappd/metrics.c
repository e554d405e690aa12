/* GET /metrics on the external port (Prometheus text format 0.0.4), when public_sysinfo. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/hex.h"
#include "base/str.h"
#include "tappd_docker.h"
#include "net/http_server.h"
#include "tappd_server.h"

static int gauge(struct buf *out, const char *name, const char *help, const char *labels,
                 double v) {
  return buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s%s %.15g\n", name, help, name, name,
                    labels ? labels : "", v);
}

static bool read_text(const char *path, struct buf *b) {
  return file_read_all(path, 64 * 1024, b) == 0 && buf_terminate(b) == 0;
}

static uint64_t meminfo(const char *text, const char *key) {
  const char *p = strstr(text, key);
  unsigned long long kb;
  if (!p || sscanf(p + strlen(key), " %llu kB", &kb) != 1)
    return 0;
  return (uint64_t)kb * 1024;
}

/* Label values: escape \ " and newline. */
static int label_value(struct buf *out, const char *s) {
  int r = 0;
  for (; r >= 0 && *s; s++) {
    if (*s == '\\' || *s == '"')
      r = buf_printf(out, "\\%c", *s);
    else if (*s == '\n')
      r = buf_append_str(out, "\\n");
    else
      r = buf_append_u8(out, (uint8_t)*s);
  }
  return r;
}

int metrics_render(struct tappd *t, int list_err, const struct docker_container *cs, size_t n,
                   struct buf *out) {
  int r = 0;
  _cleanup_buf_ struct buf b = BUF_INIT(64 * 1024);
  double up = 0;
  if (read_text("/proc/uptime", &b))
    (void)sscanf((const char *)b.data, "%lf", &up);
  r = gauge(out, "dstack_uptime_seconds", "Seconds since the CVM booted.", NULL, up);

  buf_reset(&b);
  if (r >= 0 && read_text("/proc/meminfo", &b)) {
    const char *m = (const char *)b.data;
    r = gauge(out, "dstack_memory_total_bytes", "Total memory.", NULL,
              (double)meminfo(m, "MemTotal:"));
    if (r >= 0)
      r = gauge(out, "dstack_memory_available_bytes", "Available memory.", NULL,
                (double)meminfo(m, "MemAvailable:"));
  }
  buf_reset(&b);
  double l1 = 0, l5 = 0, l15 = 0;
  if (r >= 0 && read_text("/proc/loadavg", &b) &&
      sscanf((const char *)b.data, "%lf %lf %lf", &l1, &l5, &l15) == 3) {
    r = gauge(out, "dstack_load_average", "Load average.", "{period=\"1m\"}", l1);
    if (r >= 0)
      r = buf_printf(out, "dstack_load_average{period=\"5m\"} %.15g\n"
                          "dstack_load_average{period=\"15m\"} %.15g\n", l5, l15);
  }
  if (r >= 0)
    r = gauge(out, "dstack_cpu_count", "Online CPUs.", NULL, (double)sysconf(_SC_NPROCESSORS_ONLN));

  bool first = true;
  for (char **d = t->cfg->data_disks; r >= 0 && d && *d; d++) {
    struct statvfs st;
    if (statvfs(*d, &st) < 0)
      continue;
    _cleanup_buf_ struct buf lab = BUF_INIT(4096);
    if ((r = buf_append_str(&lab, "{mount=\"")) < 0 || (r = label_value(&lab, *d)) < 0 ||
        (r = buf_append_str(&lab, "\"}")) < 0 || (r = buf_terminate(&lab)) < 0)
      break;
    double total = (double)st.f_blocks * (double)st.f_frsize;
    double avail = (double)st.f_bavail * (double)st.f_frsize;
    if (first) {
      r = buf_append_str(out, "# HELP dstack_disk_total_bytes Size of a data disk.\n"
                              "# TYPE dstack_disk_total_bytes gauge\n"
                              "# HELP dstack_disk_available_bytes Free space of a data disk.\n"
                              "# TYPE dstack_disk_available_bytes gauge\n");
      first = false;
    }
    if (r >= 0)
      r = buf_printf(out, "dstack_disk_total_bytes%s %.15g\ndstack_disk_available_bytes%s %.15g\n",
                     (const char *)lab.data, total, (const char *)lab.data, avail);
  }

  if (r >= 0 && list_err == 0) {
    size_t running = 0;
    for (size_t i = 0; i < n; i++)
      running += str_eq_ptr(cs[i].state, "running");
    r = gauge(out, "dstack_containers", "Containers by state.", "{state=\"running\"}",
              (double)running);
    if (r >= 0)
      r = buf_printf(out, "dstack_containers{state=\"other\"} %zu\n", n - running);
  }
  if (r >= 0)
    r = buf_printf(out,
                   "# HELP dstack_guest_agent_info The guest agent.\n"
                   "# TYPE dstack_guest_agent_info gauge\n"
                   "dstack_guest_agent_info{version=\"%s\",rev=\"%s\"} 1\n",
                   tappd_version(), tappd_git_rev());
  return r < 0 ? r : 0;
}

static void metrics_reply(struct tappd_server *srv, struct http_request *req, int list_err,
                          const struct docker_container *cs, size_t n) {
  _cleanup_buf_ struct buf text = BUF_INIT(1024 * 1024);
  int r = metrics_render(srv->t, list_err, cs, n, &text);
  if (r < 0) {
    (void)http_reply_error(req, 500, "cannot collect metrics: %s", strerror(-r));
    return;
  }
  (void)http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text.data, text.len);
}

void metrics_http_handler(struct http_request *req, void *ud) {
  struct tappd_server *srv = ud;
  const char *m = http_request_method(req);
  if (!str_eq(http_request_path(req), "/metrics")) {
    (void)http_reply_error(req, 404, "not found");
    return;
  }
  if (!str_eq(m, "GET") && !str_eq(m, "HEAD")) {
    (void)http_reply_header(req, "Allow", "GET, HEAD");
    (void)http_reply_error(req, 405, "method not allowed");
    return;
  }
  if (!srv->t->public_sysinfo) {
    (void)http_reply_error(req, 403, "system info is not public for this app "
                                     "(public_sysinfo is off)");
    return;
  }
  /* The container count comes from the engine: answered once it is in (or it failed). */
  tappd_server_with_containers(srv, req, metrics_reply);
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <termios.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "attest/hostch_client.h"
#include "attest/quote.h"
#include "attest/sim.h"
#include "attest/tdreport.h"
#include "attest/tee.h"
#include "attest/tee_hostch.h"
#include "base/base64.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/str.h"
#include "testutil.h"

/* A fake teepod on a unix socket: one connection at a time, one request per connection (as the
 * client opens the channel per call), answered as g_mode says. */
enum mode {
  M_ECHO,          /* result {"method":..,"params":..} */
  M_FOREIGN,       /* stale lines (other ids, no id, garbage, a torn line) before the reply */
  M_TOO_MANY,      /* more foreign lines than the client skips */
  M_ERROR,         /* an error reply */
  M_SILENT,        /* never answers */
  M_OVERSIZE,      /* a line over the cap */
  M_BAD_RESULT,    /* result is not an object */
  M_CLOSE,         /* closes without answering */
  M_SIM,           /* Tdx.* answered by a simulated TD */
  M_WRONG_REPORT,  /* Tdx.Report answered with a report for other data */
};

static _Atomic int g_mode;
static _Atomic bool g_stop;
static int g_listen = -1;
static pthread_t g_thread;
static char *g_tmp;
static char g_sock[512];
static struct tee *g_sim; /* the TD M_SIM plays */
static _Atomic int g_requests;
static char g_last_line[4096];

static const uint8_t ccel_bytes[] = "TDEL-fake-ccel-bytes";

static void send_str(int fd, const char *s) {
  size_t n = strlen(s);
  while (n) {
    ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    s += w;
    n -= (size_t)w;
  }
}

static void send_json(int fd, json_t *o) {
  char *t = json_dump_compact(o);
  if (t) {
    send_str(fd, t);
    send_str(fd, "\n");
  }
  free(t);
}

static json_t *sim_dispatch(const char *method, json_t *params, const char **err) {
  uint8_t rd[64] = {0};
  if (str_eq(method, "Tdx.Report") || str_eq(method, "Tdx.Quote")) {
    if (json_get_hex(params, "report_data", rd, 64) < 0)
      return (*err = "report_data"), NULL;
    struct buf q = BUF_INIT(BUF_MAX_QUOTE);
    if (str_eq(method, "Tdx.Report")) {
      uint8_t rep[TEE_REPORT_SIZE];
      if (atomic_load(&g_mode) == M_WRONG_REPORT)
        rd[0] ^= 1;
      if (tee_get_report(g_sim, rd, rep) < 0 || buf_append(&q, rep, sizeof(rep)) < 0)
        return (*err = "sim failed"), NULL;
    } else if (tee_get_quote(g_sim, rd, &q) < 0) {
      return (*err = "sim failed"), NULL;
    }
    json_t *r = json_object();
    json_set_hex(r, str_eq(method, "Tdx.Report") ? "report" : "quote", q.data, q.len);
    buf_free(&q);
    return r;
  }
  if (str_eq(method, "Tdx.Extend")) {
    uint32_t idx;
    uint8_t d[48];
    if (json_get_u32(params, "index", &idx) < 0 || idx != 3)
      return (*err = "only RTMR3 can be extended"), NULL;
    if (json_get_hex(params, "digest", d, 48) < 0 || tee_extend_rtmr(g_sim, 3, d) < 0)
      return (*err = "digest"), NULL;
    return json_object();
  }
  if (str_eq(method, "Tdx.EventLog")) {
    json_t *r = json_object();
    json_set_base64(r, "ccel", ccel_bytes, sizeof(ccel_bytes) - 1);
    return r;
  }
  return (*err = "unknown method"), NULL;
}

static void serve_one(int fd) {
  char line[70000];
  size_t len = 0;
  while (len < sizeof(line) - 1) {
    ssize_t n = read(fd, line + len, sizeof(line) - 1 - len);
    if (n <= 0)
      return;
    len += (size_t)n;
    if (memchr(line, '\n', len))
      break;
  }
  char *nl = memchr(line, '\n', len);
  if (!nl)
    return;
  *nl = 0;
  atomic_fetch_add(&g_requests, 1);
  size_t keep = MIN(strlen(line), sizeof(g_last_line) - 1);
  memcpy(g_last_line, line, keep);
  g_last_line[keep] = 0;
  json_t *req = NULL;
  if (json_parse_buf(line, (size_t)(nl - line), 65536, &req) < 0)
    return;
  json_t *id = json_object_get(req, "id");
  const char *method = json_string_value(json_object_get(req, "method"));
  json_t *params = json_object_get(req, "params");
  json_int_t idv = json_integer_value(id);
  json_t *rep = NULL;
  int mode = atomic_load(&g_mode);
  switch (mode) {
  case M_ECHO:
    rep = json_pack("{s:I,s:{s:s,s:O}}", "id", idv, "result", "method", method, "params", params);
    break;
  case M_FOREIGN:
  case M_TOO_MANY: {
    int n = mode == M_FOREIGN ? 4 : HOSTCH_MAX_SKIPPED + 1;
    send_str(fd, "ne\":{}}\n"); /* the tail of a line someone stopped reading */
    for (int i = 0; i < n; i++) {
      char t[128];
      snprintf(t, sizeof(t), "{\"id\":%lld,\"result\":{\"stale\":%d}}\n", (long long)idv - 1 - i,
               i);
      send_str(fd, t);
    }
    send_str(fd, "{\"id\":null,\"error\":{\"message\":\"line too long\"}}\n");
    send_str(fd, "[1,2]\n");
    rep = json_pack("{s:I,s:{s:b}}", "id", idv, "result", "ok", 1);
    break;
  }
  case M_ERROR:
    rep = json_pack("{s:I,s:{s:s}}", "id", idv, "error", "message", "unknown method");
    break;
  case M_SILENT: {
    char c;
    while (read(fd, &c, 1) > 0) /* until the client gives up */
      ;
    break;
  }
  case M_OVERSIZE: {
    char *big = malloc(HOSTCH_LINE_MAX + 10);
    memset(big, 'x', HOSTCH_LINE_MAX + 9);
    big[HOSTCH_LINE_MAX + 9] = 0;
    send_str(fd, big);
    free(big);
    break;
  }
  case M_BAD_RESULT:
    rep = json_pack("{s:I,s:i}", "id", idv, "result", 5);
    break;
  case M_CLOSE:
    break;
  case M_SIM:
  case M_WRONG_REPORT: {
    const char *err = NULL;
    json_t *res = sim_dispatch(method, params, &err);
    if (res)
      rep = json_pack("{s:I,s:o}", "id", idv, "result", res);
    else
      rep = json_pack("{s:I,s:{s:s}}", "id", idv, "error", "message", err);
    break;
  }
  }
  if (rep)
    send_json(fd, rep);
  json_decref(rep);
  json_decref(req);
}

static void *server(void *arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    struct pollfd p = {.fd = g_listen, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0)
      continue;
    int fd = accept(g_listen, NULL, NULL);
    if (fd < 0)
      continue;
    serve_one(fd);
    close(fd);
  }
  return NULL;
}

static int setup(void **state) {
  (void)state;
  g_tmp = tu_mkdtemp();
  snprintf(g_sock, sizeof(g_sock), "%s/host.sock", g_tmp);
  char simdir[600];
  snprintf(simdir, sizeof(simdir), "%s/sim", g_tmp);
  if (sim_platform_init(simdir, NULL) < 0 || tee_sim_new(simdir, &g_sim) < 0)
    return -1;
  g_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(g_sock) >= sizeof(sa.sun_path))
    return -1;
  memcpy(sa.sun_path, g_sock, strlen(g_sock) + 1);
  if (g_listen < 0 || bind(g_listen, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
      listen(g_listen, 8) < 0)
    return -1;
  setenv(HOSTCH_ENV, g_sock, 1);
  return pthread_create(&g_thread, NULL, server, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  atomic_store(&g_stop, true);
  pthread_join(g_thread, NULL);
  close(g_listen);
  tee_free(g_sim);
  tu_rm_rf(g_tmp);
  free(g_tmp);
  unsetenv(HOSTCH_ENV);
  return 0;
}

static void test_request_reply(void **state) {
  (void)state;
  atomic_store(&g_mode, M_ECHO);
  json_t *res = NULL;
  char *err = NULL;
  json_t *params = json_pack("{s:s}", "event", "boot.progress");
  assert_int_equal(hostch_call("Notify", params, 2000, &res, &err), 0);
  assert_null(err);
  assert_string_equal(json_string_value(json_object_get(res, "method")), "Notify");
  assert_true(json_equal(json_object_get(res, "params"), params));
  assert_int_equal(params->refcount, 1); /* borrowed */
  json_decref(res);
  json_decref(params);
  /* no params: {} */
  assert_int_equal(hostch_call("Info", NULL, 2000, &res, NULL), 0);
  assert_int_equal(json_object_size(json_object_get(res, "params")), 0);
  json_decref(res);
  /* ids count up within the process */
  json_t *a = NULL;
  assert_int_equal(json_parse_buf(g_last_line, strlen(g_last_line), 4096, &a), 0);
  json_int_t id1 = json_integer_value(json_object_get(a, "id"));
  json_decref(a);
  assert_int_equal(hostch_notify("boot.progress", "mounting", 2000), 0);
  assert_int_equal(json_parse_buf(g_last_line, strlen(g_last_line), 4096, &a), 0);
  assert_int_equal(json_integer_value(json_object_get(a, "id")), id1 + 1);
  assert_string_equal(json_string_value(json_object_get(a, "method")), "Notify");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(a, "params"), "payload")), "mounting");
  json_decref(a);
  /* bad arguments */
  assert_int_equal(hostch_call(NULL, NULL, 100, &res, NULL), -EINVAL);
  assert_int_equal(hostch_call("", NULL, 100, &res, NULL), -EINVAL);
  assert_int_equal(hostch_call("Info", NULL, -1, &res, NULL), -EINVAL);
  json_t *arr = json_array();
  assert_int_equal(hostch_call("Info", arr, 100, &res, NULL), -EINVAL);
  json_decref(arr);
}

static void test_foreign_ids(void **state) {
  (void)state;
  atomic_store(&g_mode, M_FOREIGN);
  json_t *res = NULL;
  assert_int_equal(hostch_call("Info", NULL, 2000, &res, NULL), 0);
  assert_true(json_is_true(json_object_get(res, "ok")));
  json_decref(res);
  atomic_store(&g_mode, M_TOO_MANY);
  assert_int_equal(hostch_call("Info", NULL, 2000, &res, NULL), -EBADMSG);
  assert_null(res);
}

static void test_error_reply(void **state) {
  (void)state;
  atomic_store(&g_mode, M_ERROR);
  json_t *res = NULL;
  char *err = NULL;
  assert_int_equal(hostch_call("Nope", NULL, 2000, &res, &err), -EREMOTEIO);
  assert_null(res);
  assert_string_equal(err, "unknown method");
  free(err);
  assert_int_equal(hostch_call("Nope", NULL, 2000, &res, NULL), -EREMOTEIO);
  atomic_store(&g_mode, M_BAD_RESULT);
  assert_int_equal(hostch_call("Info", NULL, 2000, &res, NULL), -EBADMSG);
  atomic_store(&g_mode, M_CLOSE);
  assert_int_equal(hostch_call("Info", NULL, 2000, &res, NULL), -EIO);
}

static void test_timeout_oversize(void **state) {
  (void)state;
  atomic_store(&g_mode, M_SILENT);
  json_t *res = NULL;
  assert_int_equal(hostch_call("Info", NULL, 200, &res, NULL), -ETIMEDOUT);
  assert_int_equal(hostch_notify("boot.progress", "x", 0), -ETIMEDOUT);
  atomic_store(&g_mode, M_OVERSIZE);
  assert_int_equal(hostch_call("Info", NULL, 2000, &res, NULL), -EBADMSG);
  assert_null(res);
}

static void test_no_channel(void **state) {
  (void)state;
  char p[600];
  snprintf(p, sizeof(p), "%s/absent.sock", g_tmp);
  setenv(HOSTCH_ENV, p, 1);
  json_t *res = NULL;
  assert_int_equal(hostch_call("Info", NULL, 200, &res, NULL), -ENODEV);
  /* a regular file is neither a port nor a socket */
  snprintf(p, sizeof(p), "%s/plain", g_tmp);
  assert_int_equal(file_write_atomic(p, "x", 1, 0600), 0);
  setenv(HOSTCH_ENV, p, 1);
  assert_int_equal(hostch_call("Info", NULL, 200, &res, NULL), -ENODEV);
  setenv(HOSTCH_ENV, g_sock, 1);
}

/* A character device as the channel (a raw pty stands in for the virtio port; the test plays
 * the host on its master side): the lock, the drain of stale input, the reply. */
struct pty_host {
  int master;
  json_int_t id;
};

static void *pty_serve(void *arg) {
  struct pty_host *h = arg;
  char line[4096];
  size_t len = 0;
  while (len < sizeof(line) - 1) {
    struct pollfd p = {.fd = h->master, .events = POLLIN};
    if (poll(&p, 1, 5000) <= 0)
      return NULL;
    ssize_t n = read(h->master, line + len, sizeof(line) - 1 - len);
    if (n <= 0)
      return NULL;
    len += (size_t)n;
    if (memchr(line, '\n', len))
      break;
  }
  line[len] = 0;
  json_t *req = NULL;
  if (json_parse_buf(line, strcspn(line, "\n"), 4096, &req) < 0)
    return NULL;
  h->id = json_integer_value(json_object_get(req, "id"));
  char out[256];
  int n = snprintf(out, sizeof(out),
                   "{\"id\":%lld,\"result\":{\"late\":1}}\n"
                   "{\"id\":%lld,\"result\":{\"pty\":true}}\n",
                   (long long)h->id - 1, (long long)h->id);
  if (write(h->master, out, (size_t)n) != n)
    h->id = -1;
  json_decref(req);
  return NULL;
}

static void test_device(void **state) {
  (void)state;
  int master, slave;
  if (openpty(&master, &slave, NULL, NULL, NULL) < 0)
    skip();
  struct termios tio;
  assert_int_equal(tcgetattr(slave, &tio), 0);
  cfmakeraw(&tio);
  assert_int_equal(tcsetattr(slave, TCSANOW, &tio), 0);
  char lock[600];
  snprintf(lock, sizeof(lock), "%s/run/dstack/hostch.lock", g_tmp);
  setenv(HOSTCH_LOCK_ENV, lock, 1);
  setenv(HOSTCH_ENV, ptsname(master), 1);

  /* a reply an earlier caller gave up on, waiting on the port: drained */
  const char *stale = "{\"id\":1,\"result\":{\"stale\":1}}\n";
  assert_int_equal(write(master, stale, strlen(stale)), (ssize_t)strlen(stale));
  usleep(20000);
  struct pty_host h = {.master = master};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, pty_serve, &h), 0);
  json_t *res = NULL;
  assert_int_equal(hostch_call("Info", NULL, 3000, &res, NULL), 0);
  pthread_join(th, NULL);
  assert_true(json_is_true(json_object_get(res, "pty")));
  json_decref(res);
  struct stat st;
  assert_int_equal(stat(lock, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/run/dstack", g_tmp);
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);

  /* the lock held elsewhere: the call waits, then times out */
  int lfd = open(lock, O_RDWR);
  assert_true(lfd >= 0);
  assert_int_equal(flock(lfd, LOCK_EX), 0);
  assert_int_equal(hostch_call("Info", NULL, 100, &res, NULL), -ETIMEDOUT);
  close(lfd);

  close(slave);
  close(master);
  unsetenv(HOSTCH_LOCK_ENV);
  setenv(HOSTCH_ENV, g_sock, 1);
}

static void write_file(const char *dir, const char *name, const char *text) {
  char p[1024];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  assert_int_equal(mkdir_parents(p, 0700), 0);
  assert_int_equal(file_write_atomic(p, text, strlen(text), 0600), 0);
}

static void test_find(void **state) {
  (void)state;
  char sys[600], dev[600];
  snprintf(sys, sizeof(sys), "%s/sys", g_tmp);
  snprintf(dev, sizeof(dev), "%s/dev", g_tmp);
  assert_int_equal(mkdir_p(dev, 0700), 0);
  unsetenv(HOSTCH_ENV);
  char *path = NULL;
  assert_int_equal(hostch_find(sys, dev, &path), -ENODEV); /* no sysfs dir */
  write_file(sys, "vport0p1/name", "org.qemu.guest_agent.0\n");
  write_file(sys, "vport0p1/dev", "1:3\n");
  assert_int_equal(hostch_find(sys, dev, &path), -ENODEV); /* another port only */
  write_file(sys, "vport1p2/name", HOSTCH_PORT_NAME "\n");
  write_file(sys, "vport1p2/dev", "1:3\n"); /* /dev/null's numbers: any char device */
  int r = hostch_find(sys, dev, &path);
  if (r == -EPERM || r == -EACCES) {
    /* no mknod here (unprivileged test run) */
  } else {
    assert_int_equal(r, 0);
    assert_non_null(strstr(path, "/dev/vport1p2"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(st.st_rdev, makedev(1, 3));
    free(path);
    /* the node exists now: found again */
    assert_int_equal(hostch_find(sys, dev, &path), 0);
    free(path);
    /* a node that is another device is refused */
    write_file(sys, "vport1p2/dev", "1:5\n");
    assert_int_equal(hostch_find(sys, dev, &path), -ENODEV);
  }
  /* a bad dev file */
  write_file(sys, "vport1p2/dev", "garbage\n");
  assert_int_equal(hostch_find(sys, dev, &path), -ENODEV);
  /* the override wins */
  setenv(HOSTCH_ENV, g_sock, 1);
  assert_int_equal(hostch_find(sys, dev, &path), 0);
  assert_string_equal(path, g_sock);
  free(path);
}

static void test_reply_parse(void **state) {
  (void)state;
  json_t *res = NULL;
  char *err = NULL;
#define P(s) hostch_reply_parse(s, strlen(s), 7, &res, &err)
  assert_int_equal(P("{\"id\":7,\"result\":{\"a\":1}}"), 0);
  assert_int_equal(json_integer_value(json_object_get(res, "a")), 1);
  json_decref(res);
  assert_int_equal(P("{\"id\":8,\"result\":{}}"), -EAGAIN);
  assert_int_equal(P("{\"id\":\"7\",\"result\":{}}"), -EAGAIN);
  assert_int_equal(P("{\"id\":null,\"error\":{\"message\":\"x\"}}"), -EAGAIN);
  assert_int_equal(P("garbage"), -EAGAIN);
  assert_int_equal(P(""), -EAGAIN);
  assert_int_equal(P("{\"id\":7}"), -EBADMSG);
  assert_int_equal(P("{\"id\":7,\"result\":[]}"), -EBADMSG);
  assert_int_equal(P("{\"id\":7,\"result\":{},\"error\":{\"message\":\"x\"}}"), -EBADMSG);
  assert_int_equal(P("{\"id\":7,\"error\":\"plain\"}"), -EREMOTEIO);
  assert_string_equal(err, "plain");
  free(err);
  assert_int_equal(P("{\"id\":7,\"error\":{}}"), -EREMOTEIO);
  assert_non_null(err);
  free(err);
  assert_int_equal(P("{\"id\":7,\"result\":{},\"error\":null}"), 0);
  json_decref(res);
#undef P
  assert_int_equal(hostch_reply_parse("x", HOSTCH_LINE_MAX, 7, &res, &err), -EBADMSG);
}

/* The tee_hostch backend against a fake whose Tdx.* is a real simulated TD. */
static void test_tee_hostch(void **state) {
  (void)state;
  atomic_store(&g_mode, M_SIM);
  char log[600];
  snprintf(log, sizeof(log), "%s/log/events.log", g_tmp);
  struct tee *t = NULL;
  assert_int_equal(tee_hostch_new(log, &t), 0);
  assert_string_equal(tee_name(t), "hostch");

  uint8_t rd[64], rep[TEE_REPORT_SIZE];
  for (int i = 0; i < 64; i++)
    rd[i] = (uint8_t)i;
  assert_int_equal(tee_get_report(t, rd, rep), 0);
  struct tdreport tr;
  assert_int_equal(tdreport_parse(rep, sizeof(rep), &tr), 0);
  assert_memory_equal(tr.mac.report_data, rd, 64);

  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(tee_get_quote(t, rd, &q), 0);
  struct quote qq;
  assert_int_equal(quote_parse(q.data, q.len, &qq), 0);
  assert_memory_equal(quote_report_data(&qq), rd, 64);

  /* RTMR3 extends reach the TD; RTMR0-2 are the host's */
  uint8_t before[4][48], after[4][48], sim[4][48], d[48];
  memset(d, 0x5a, sizeof(d));
  assert_int_equal(tee_read_rtmrs(t, before), 0);
  assert_int_equal(tee_read_rtmrs(g_sim, sim), 0);
  assert_memory_equal(before, sim, sizeof(sim));
  assert_int_equal(tee_extend_rtmr(t, 3, d), 0);
  assert_int_equal(tee_extend_rtmr(t, 2, d), -EPERM);
  assert_int_equal(tee_extend_rtmr(t, 0, d), -EPERM);
  assert_int_equal(tee_read_rtmrs(t, after), 0);
  assert_memory_equal(after, before, 3 * 48);
  assert_memory_not_equal(after[3], before[3], 48);
  assert_int_equal(tee_read_rtmrs(g_sim, sim), 0);
  assert_memory_equal(after, sim, sizeof(sim));

  /* the seed-era event log next to the extend */
  assert_int_equal(tee_extend_event(t, 3, 0x08000001, d, "hello"), 0);
  char *path = NULL;
  assert_int_equal(tee_eventlog_path(t, &path), 0);
  assert_string_equal(path, log);
  free(path);
  _cleanup_buf_ struct buf lb = BUF_INIT(65536);
  assert_int_equal(file_read_all(log, 65536, &lb), 0);
  assert_true(lb.len > 0);

  /* the boot event log */
  _cleanup_buf_ struct buf c = BUF_INIT(TEE_HOSTCH_CCEL_MAX);
  assert_int_equal(tee_hostch_ccel(&c), 0);
  assert_int_equal(c.len, sizeof(ccel_bytes) - 1);
  assert_memory_equal(c.data, ccel_bytes, c.len);

  /* a report for other data, an error reply, no channel */
  atomic_store(&g_mode, M_WRONG_REPORT);
  assert_int_equal(tee_get_report(t, rd, rep), -EBADMSG);
  atomic_store(&g_mode, M_ERROR);
  assert_int_equal(tee_get_quote(t, rd, &q), -EREMOTEIO);
  atomic_store(&g_mode, M_BAD_RESULT);
  assert_int_equal(tee_hostch_ccel(&c), -EBADMSG);
  tee_free(t);

  /* tee_open by name, and by DSTACK_TEE; never auto-detected */
  assert_int_equal(tee_open("hostch", &t), 0);
  assert_string_equal(tee_name(t), "hostch");
  assert_int_equal(tee_eventlog_path(t, &path), 0);
  assert_string_equal(path, TEE_HOSTCH_DEFAULT_EVENTLOG);
  free(path);
  tee_free(t);
  setenv(TEE_ENV_BACKEND, "hostch", 1);
  assert_string_equal(tee_detect(NULL), "hostch");
  unsetenv(TEE_ENV_BACKEND);
  int err = 0;
  const char *auto_name = tee_detect(&err);
  assert_true(auto_name == NULL || str_eq(auto_name, "tdx"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_reply), cmocka_unit_test(test_foreign_ids),
      cmocka_unit_test(test_error_reply),   cmocka_unit_test(test_timeout_oversize),
      cmocka_unit_test(test_no_channel),    cmocka_unit_test(test_find),
      cmocka_unit_test(test_reply_parse),   cmocka_unit_test(test_tee_hostch),
      cmocka_unit_test(test_device),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

/* The TDX backend against a fake environment: configfs/sysfs files in a temp dir, a recording
 * ioctl, and a QGS server on a socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/tdx_qgs.h"
#include "attest/tee_tdx.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "testutil.h"

/* ---- fake environment ---- */

#define MAX_CALLS 8

struct call {
  unsigned long req;
  size_t size;
  uint8_t arg[1088];
};

enum qgs_mode {
  QGS_OK,
  QGS_OK_WITH_ID,
  QGS_ERROR_CODE,
  QGS_WRONG_ID,
  QGS_HUGE_LENGTH,
  QGS_CLOSE_EARLY,
  QGS_SILENT,
};

static struct fake {
  char *dir;
  char cfs_base[512], cfs_dir[512], dev[512], rtmr_dir[512], conf[512], evlog[512];

  /* ioctl */
  struct call calls[MAX_CALLS];
  size_t n_calls;
  int ioctl_errno;     /* fail every ioctl with this */
  bool extend_enotty;  /* the _IOR extend is unknown, the _IOW one works */
  uint8_t rtmr[4][48]; /* what TDREPORTs carry */
  uint64_t tdvm_status;
  int tdvm_out_len_adjust;
  bool tdvm_called;

  /* vsock */
  int connect_err; /* connector fails with this */
  uint32_t connect_cid, connect_port;
  bool connected;
  enum qgs_mode qgs_mode;
  pthread_t qgs_thread;
  bool qgs_running;
  bool qgs_request_ok;

  /* configfs */
  size_t cfs_quote_len;
  unsigned cfs_gen_bump; /* generation step on write */
  bool cfs_bump_after_read;
  unsigned hook_calls;
} F;

static void fpath(char *out, const char *a, const char *b) {
  int k = snprintf(out, 512, "%s/%s", a, b);
  assert_true(k > 0 && k < 512);
}

static void write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(fd_write_all(fd, data, len), 0);
  close(fd);
}

static void write_str(const char *path, const char *s) {
  write_file(path, s, strlen(s));
}

static size_t read_file(const char *path, uint8_t *out, size_t max) {
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 20);
  assert_int_equal(file_read_all(path, 1 << 20, &b), 0);
  assert_true(b.len <= max);
  memcpy(out, b.data, b.len);
  return b.len;
}

static void report_data_pattern(uint8_t rd[64], uint8_t seed) {
  for (int i = 0; i < 64; i++)
    rd[i] = (uint8_t)(seed + i * 3);
}

/* The fake quote for report data rd: rd, then a counting pattern. */
static void fake_quote(const uint8_t *rd, size_t len, struct buf *out) {
  assert_int_equal(buf_append(out, rd, 64), 0);
  for (size_t i = 64; i < len; i++)
    assert_int_equal(buf_append_u8(out, (uint8_t)(i * 13)), 0);
}

/* A TDREPORT as the fake hardware makes it: report data at 128, RTMRs in TDINFO. */
static void fake_tdreport(const uint8_t rd[64], uint8_t out[1024]) {
  for (int i = 0; i < 1024; i++)
    out[i] = (uint8_t)(i * 7);
  memcpy(out + 128, rd, 64);
  for (unsigned i = 0; i < 4; i++)
    memcpy(out + TDX_TDREPORT_RTMR_OFFSET(i), F.rtmr[i], 48);
}

/* Checks a length-prefixed QGS request and returns the report inside it. */
static bool check_request(const uint8_t *m, size_t len, const uint8_t **ret_report) {
  if (len != 4 + TDX_QGS_REQUEST_SIZE)
    return false;
  uint32_t n = ((uint32_t)m[0] << 24) | ((uint32_t)m[1] << 16) | ((uint32_t)m[2] << 8) | m[3];
  if (n != TDX_QGS_REQUEST_SIZE)
    return false;
  m += 4;
  if (le16_read(m) != 1 || le16_read(m + 2) != 0 || le32_read(m + 4) != 0 ||
      le32_read(m + 8) != TDX_QGS_REQUEST_SIZE || le32_read(m + 12) != 0 ||
      le32_read(m + 16) != 1024 || le32_read(m + 20) != 0)
    return false;
  *ret_report = m + 24;
  return true;
}

/* A framed QGS response carrying a fake quote of len bytes for the report's report data. */
static void qgs_response(const uint8_t *report, size_t quote_len, uint32_t error_code,
                         const uint8_t *id, uint32_t id_len, struct buf *out) {
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  fake_quote(report + 128, quote_len, &q);
  uint32_t size = 16 + 8 + id_len + (uint32_t)q.len;
  assert_int_equal(buf_append_u32be(out, size), 0);
  assert_int_equal(buf_append_u16le(out, 1), 0);
  assert_int_equal(buf_append_u16le(out, 0), 0);
  assert_int_equal(buf_append_u32le(out, 1), 0);
  assert_int_equal(buf_append_u32le(out, size), 0);
  assert_int_equal(buf_append_u32le(out, error_code), 0);
  assert_int_equal(buf_append_u32le(out, id_len), 0);
  assert_int_equal(buf_append_u32le(out, (uint32_t)q.len), 0);
  if (id_len)
    assert_int_equal(buf_append(out, id, id_len), 0);
  assert_int_equal(buf_append(out, q.data, q.len), 0);
}

static int fake_ioctl(int fd, unsigned long req, void *arg) {
  (void)fd;
  if (F.n_calls < MAX_CALLS) {
    struct call *c = &F.calls[F.n_calls++];
    c->req = req;
    c->size = _IOC_SIZE(req);
    memcpy(c->arg, arg, MIN(c->size, sizeof c->arg));
  }
  if (F.ioctl_errno) {
    errno = F.ioctl_errno;
    return -1;
  }
  switch (req) {
  case TDX_CMD_GET_REPORT0: {
    struct tdx_report_req *r = arg;
    fake_tdreport(r->reportdata, r->tdreport);
    return 0;
  }
  case TDX_CMD_EXTEND_RTMR:
    if (F.extend_enotty) {
      errno = ENOTTY;
      return -1;
    }
    return 0;
  case TDX_CMD_EXTEND_RTMR_W:
    return 0;
  case TDX_CMD_GET_QUOTE: {
    F.tdvm_called = true;
    struct tdx_quote_req *q = arg;
    if (q->len != TDX_QUOTE_BUF_SIZE) {
      errno = EINVAL;
      return -1;
    }
    uint8_t *blob = (uint8_t *)(uintptr_t)q->buf;
    struct tdx_quote_hdr h;
    memcpy(&h, blob, sizeof h);
    const uint8_t *report;
    if (h.version != 1 || h.status != 0 || h.out_len != 0 ||
        !check_request(blob + sizeof h, h.in_len, &report)) {
      errno = EINVAL;
      return -1;
    }
    _cleanup_buf_ struct buf resp = BUF_INIT(TDX_QUOTE_BUF_SIZE);
    qgs_response(report, 4000, 0, tdx_qgs_tdqe_uuid, 16, &resp);
    memcpy(blob + sizeof h, resp.data, resp.len);
    h.status = F.tdvm_status;
    h.out_len = (uint32_t)((int64_t)resp.len + F.tdvm_out_len_adjust);
    memcpy(blob, &h, sizeof h);
    return 0;
  }
  default:
    errno = ENOTTY;
    return -1;
  }
}

static bool recv_all(int fd, uint8_t *p, size_t n) {
  while (n) {
    ssize_t k = recv(fd, p, n, 0);
    if (k <= 0)
      return false;
    p += k;
    n -= (size_t)k;
  }
  return true;
}

static void *qgs_server(void *arg) {
  int fd = (int)(intptr_t)arg;
  uint8_t req[4 + TDX_QGS_REQUEST_SIZE];
  const uint8_t *report = NULL;
  if (!recv_all(fd, req, sizeof req) || !check_request(req, sizeof req, &report))
    goto out;
  F.qgs_request_ok = true;
  struct buf resp = BUF_INIT(BUF_MAX_QUOTE);
  uint8_t other_id[16] = {1, 2, 3};
  switch (F.qgs_mode) {
  case QGS_OK:
    qgs_response(report, 3000, 0, NULL, 0, &resp);
    break;
  case QGS_OK_WITH_ID:
    qgs_response(report, 3000, 0, tdx_qgs_tdqe_uuid, 16, &resp);
    break;
  case QGS_ERROR_CODE:
    qgs_response(report, 3000, 0x11, NULL, 0, &resp);
    break;
  case QGS_WRONG_ID:
    qgs_response(report, 3000, 0, other_id, 16, &resp);
    break;
  case QGS_HUGE_LENGTH:
    buf_append_u32be(&resp, 0x7fffffff);
    break;
  case QGS_CLOSE_EARLY:
    qgs_response(report, 3000, 0, NULL, 0, &resp);
    resp.len /= 2;
    break;
  case QGS_SILENT: {
    uint8_t b; /* wait until the client gives up */
    (void)!recv(fd, &b, 1, 0);
    break;
  }
  }
  if (resp.len)
    (void)!send(fd, resp.data, resp.len, MSG_NOSIGNAL);
  buf_free(&resp);
out:
  close(fd);
  return NULL;
}

static int fake_connect(void *userdata, uint32_t cid, uint32_t port, unsigned timeout_ms) {
  assert_ptr_equal(userdata, &F);
  assert_true(timeout_ms > 0);
  F.connect_cid = cid;
  F.connect_port = port;
  if (F.connect_err)
    return -F.connect_err;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  struct timeval tv = {.tv_sec = 5}; /* the server never waits longer than this */
  setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (pthread_create(&F.qgs_thread, NULL, qgs_server, (void *)(intptr_t)sv[1]) != 0) {
    close(sv[0]);
    close(sv[1]);
    return -EAGAIN;
  }
  F.qgs_running = true;
  F.connected = true;
  return sv[0];
}

static void qgs_join(void) {
  if (F.qgs_running) {
    pthread_join(F.qgs_thread, NULL);
    F.qgs_running = false;
  }
}

/* configfs: the kernel bumps generation when inblob is written and fills outblob. */
static void set_generation(uint64_t g) {
  char p[512], s[32];
  fpath(p, F.cfs_dir, "generation");
  snprintf(s, sizeof s, "%llu\n", (unsigned long long)g);
  write_str(p, s);
}

static uint64_t get_generation(void) {
  char p[512];
  uint8_t s[32] = {0};
  fpath(p, F.cfs_dir, "generation");
  read_file(p, s, sizeof s - 1);
  return strtoull((char *)s, NULL, 10);
}

static void cfs_emulate_write(void) {
  char p[512];
  uint8_t rd[64];
  fpath(p, F.cfs_dir, "inblob");
  assert_int_equal(read_file(p, rd, sizeof rd), 64);
  _cleanup_buf_ struct buf q = BUF_INIT(1 << 20);
  fake_quote(rd, F.cfs_quote_len, &q);
  fpath(p, F.cfs_dir, "outblob");
  write_file(p, q.data, q.len);
  set_generation(get_generation() + F.cfs_gen_bump);
}

static void cfs_hook(void *userdata, enum tee_tdx_configfs_stage stage, const char *dir) {
  assert_ptr_equal(userdata, &F);
  assert_string_equal(dir, F.cfs_dir);
  F.hook_calls++;
  if (stage == TEE_TDX_CONFIGFS_INBLOB_WRITTEN)
    cfs_emulate_write();
  else if (stage == TEE_TDX_CONFIGFS_OUTBLOB_READ && F.cfs_bump_after_read)
    set_generation(get_generation() + 1);
}

static void make_configfs(const char *provider) {
  char p[512];
  assert_int_equal(mkdir(F.cfs_base, 0700), 0);
  assert_int_equal(mkdir(F.cfs_dir, 0700), 0);
  fpath(p, F.cfs_dir, "provider");
  write_str(p, provider);
  fpath(p, F.cfs_dir, "inblob");
  write_file(p, "", 0);
  fpath(p, F.cfs_dir, "outblob");
  write_file(p, "", 0);
  set_generation(41);
}

static void make_device(void) {
  write_file(F.dev, "", 0);
}

static struct tee_tdx_config fake_config(void) {
  return (struct tee_tdx_config){
      .configfs_dir = F.cfs_dir,
      .configfs_base = F.cfs_base,
      .device = F.dev,
      .rtmr_sysfs_dir = F.rtmr_dir,
      .attest_conf = F.conf,
      .eventlog = F.evlog,
      .ioctl_fn = fake_ioctl,
      .vsock_connect = fake_connect,
      .vsock_userdata = &F,
      .configfs_hook = cfs_hook,
      .configfs_hook_userdata = &F,
      .busy_retries = 1,
      .busy_wait_ms = 1,
      .timeout_ms = 2000,
  };
}

static struct tee *open_fake(const struct tee_tdx_config *cfg) {
  struct tee *t = NULL;
  assert_int_equal(tee_tdx_new(cfg, &t), 0);
  assert_non_null(t);
  assert_ptr_equal(t->ops, &tee_tdx_ops);
  assert_string_equal(t->ops->name, "tdx");
  return t;
}

static void close_tee(struct tee *t) {
  t->ops->free(t);
}

static int get_quote(struct tee *t, const uint8_t rd[64], struct buf *out) {
  int r = t->ops->get_quote(t, rd, out);
  qgs_join();
  return r;
}

static int setup(void **state) {
  (void)state;
  memset(&F, 0, sizeof F);
  F.dir = tu_mkdtemp();
  fpath(F.cfs_base, F.dir, "tsm-report");
  fpath(F.cfs_dir, F.cfs_base, "com.intel.dcap");
  fpath(F.dev, F.dir, "tdx_guest");
  fpath(F.rtmr_dir, F.dir, "measurements");
  fpath(F.conf, F.dir, "tdx-attest.conf");
  fpath(F.evlog, F.dir, "log/tdx_events.log");
  for (unsigned i = 0; i < 4; i++)
    memset(F.rtmr[i], 0xa0 + (int)i, 48);
  F.cfs_quote_len = 2000;
  F.cfs_gen_bump = 1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  qgs_join();
  tu_rm_rf(F.dir);
  free(F.dir);
  return 0;
}

/* ---- tests ---- */

static void test_ioctl_numbers(void **state) {
  (void)state;
  assert_int_equal(TDX_CMD_GET_REPORT0, 0xC4405401u);
  assert_int_equal(TDX_CMD_EXTEND_RTMR, 0x80315403u);
  assert_int_equal(TDX_CMD_EXTEND_RTMR_W, 0x40315403u);
  assert_int_equal(TDX_CMD_GET_QUOTE, 0x80105404u);
  assert_int_equal(sizeof(struct tdx_extend_rtmr_req), 49);
  assert_int_equal(offsetof(struct tdx_extend_rtmr_req, index), 48);
  assert_int_equal(offsetof(struct tdx_report_req, tdreport), 64);
  assert_int_equal(offsetof(struct tdx_quote_hdr, in_len), 16);
  assert_int_equal(offsetof(struct tdx_quote_hdr, out_len), 20);
  assert_int_equal(TDX_TDREPORT_RTMR_OFFSET(0), 720);
  assert_int_equal(TDX_TDREPORT_RTMR_OFFSET(3), 864);
}

static void test_get_report(void **state) {
  (void)state;
  make_device();
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = open_fake(&cfg);
  uint8_t rd[64], report[1024], want[1024];
  report_data_pattern(rd, 5);
  assert_int_equal(t->ops->get_report(t, rd, report), 0);
  assert_int_equal(F.n_calls, 1);
  assert_int_equal(F.calls[0].req, 0xC4405401u);
  assert_int_equal(F.calls[0].size, 1088);
  assert_memory_equal(F.calls[0].arg, rd, 64); /* reportdata first */
  for (int i = 64; i < 1088; i++)
    assert_int_equal(F.calls[0].arg[i], 0); /* tdreport zeroed before the call */
  fake_tdreport(rd, want);
  assert_memory_equal(report, want, 1024);

  F.ioctl_errno = EIO;
  assert_int_equal(t->ops->get_report(t, rd, report), -EIO);
  close_tee(t);
}

static void test_extend_ioctl(void **state) {
  (void)state;
  make_device();
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = open_fake(&cfg);
  uint8_t d[48];
  for (int i = 0; i < 48; i++)
    d[i] = (uint8_t)(0x30 + i);
  assert_int_equal(t->ops->extend_rtmr(t, 3, d), 0);
  assert_int_equal(F.n_calls, 1);
  assert_int_equal(F.calls[0].req, 0x80315403u);
  assert_int_equal(F.calls[0].size, 49);
  assert_memory_equal(F.calls[0].arg, d, 48);
  assert_int_equal(F.calls[0].arg[48], 3);

  /* the custom module's _IOW number after ENOTTY */
  F.n_calls = 0;
  F.extend_enotty = true;
  assert_int_equal(t->ops->extend_rtmr(t, 1, d), 0);
  assert_int_equal(F.n_calls, 2);
  assert_int_equal(F.calls[1].req, 0x40315403u);
  assert_int_equal(F.calls[1].arg[48], 1);
  assert_memory_equal(F.calls[1].arg, d, 48);

  /* other errors are not retried */
  F.n_calls = 0;
  F.extend_enotty = false;
  F.ioctl_errno = EPERM;
  assert_int_equal(t->ops->extend_rtmr(t, 2, d), -EPERM);
  assert_int_equal(F.n_calls, 1);

  F.n_calls = 0;
  assert_int_equal(t->ops->extend_rtmr(t, 4, d), -EINVAL);
  assert_int_equal(F.n_calls, 0);
  close_tee(t);
}

static void test_extend_sysfs(void **state) {
  (void)state;
  make_device();
  assert_int_equal(mkdir(F.rtmr_dir, 0700), 0);
  char p[512];
  uint8_t zero[48] = {0};
  for (unsigned i = 0; i < 4; i++) {
    char name[32];
    snprintf(name, sizeof name, "rtmr%u:sha384", i);
    fpath(p, F.rtmr_dir, name);
    write_file(p, zero, 48);
  }
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = open_fake(&cfg);
  uint8_t d[48], got[64];
  memset(d, 0x5a, 48);
  d[0] = 1;
  assert_int_equal(t->ops->extend_rtmr(t, 2, d), 0);
  assert_int_equal(F.n_calls, 0);
  fpath(p, F.rtmr_dir, "rtmr2:sha384");
  assert_int_equal(read_file(p, got, sizeof got), 48);
  assert_memory_equal(got, d, 48);
  fpath(p, F.rtmr_dir, "rtmr1:sha384");
  read_file(p, got, sizeof got);
  assert_memory_equal(got, zero, 48);
  /* a missing file for another index goes to the ioctl */
  unlink(p);
  assert_int_equal(t->ops->extend_rtmr(t, 1, d), 0);
  assert_int_equal(F.n_calls, 1);
  assert_int_equal(F.calls[0].req, TDX_CMD_EXTEND_RTMR);
  close_tee(t);
}

static void test_read_rtmrs_sysfs(void **state) {
  (void)state;
  assert_int_equal(mkdir(F.rtmr_dir, 0700), 0);
  uint8_t v[4][48];
  char p[512], name[32];
  for (unsigned i = 0; i < 4; i++) {
    for (int j = 0; j < 48; j++)
      v[i][j] = (uint8_t)(i * 48 + (unsigned)j);
    snprintf(name, sizeof name, "rtmr%u:sha384", i);
    fpath(p, F.rtmr_dir, name);
    if (i % 2 == 0) {
      write_file(p, v[i], 48); /* binary */
    } else {
      char hex[97 + 1];
      hex_encode(v[i], 48, hex);
      strcat(hex, "\n");
      write_str(p, hex); /* hex text */
    }
  }
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = open_fake(&cfg);
  uint8_t got[4][48];
  assert_int_equal(t->ops->read_rtmrs(t, got), 0);
  assert_memory_equal(got, v, sizeof v);
  assert_int_equal(F.n_calls, 0);

  /* wrong lengths and bad hex */
  fpath(p, F.rtmr_dir, "rtmr3:sha384");
  write_file(p, v[3], 47);
  assert_int_equal(t->ops->read_rtmrs(t, got), -EBADMSG);
  uint8_t v49[49] = {0};
  write_file(p, v49, sizeof v49);
  assert_int_equal(t->ops->read_rtmrs(t, got), -EBADMSG);
  char bad[97];
  memset(bad, 'g', 96);
  bad[96] = 0;
  write_str(p, bad);
  assert_int_equal(t->ops->read_rtmrs(t, got), -EBADMSG);
  _cleanup_buf_ struct buf big = BUF_INIT(4096);
  assert_int_equal(buf_append_zero(&big, 1000), 0);
  write_file(p, big.data, big.len);
  assert_int_equal(t->ops->read_rtmrs(t, got), -EBADMSG);
  unlink(p);
  assert_int_equal(t->ops->read_rtmrs(t, got), -ENOENT);
  close_tee(t);
}

static void test_read_rtmrs_tdreport(void **state) {
  (void)state;
  make_device();
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = open_fake(&cfg);
  uint8_t got[4][48];
  assert_int_equal(t->ops->read_rtmrs(t, got), 0);
  assert_memory_equal(got, F.rtmr, sizeof got);
  assert_int_equal(F.n_calls, 1);
  assert_int_equal(F.calls[0].req, TDX_CMD_GET_REPORT0);
  uint8_t zero[64] = {0};
  assert_memory_equal(F.calls[0].arg, zero, 64);
  close_tee(t);
}

static void test_eventlog_path(void **state) {
  (void)state;
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = open_fake(&cfg);
  char *s = NULL;
  assert_int_equal(t->ops->eventlog_path(t, &s), 0);
  assert_string_equal(s, F.evlog);
  free(s);
  close_tee(t);
  struct tee_tdx_config empty = {0};
  t = open_fake(&empty);
  assert_int_equal(t->ops->eventlog_path(t, &s), 0);
  assert_string_equal(s, "/run/log/tdx_mr3/tdx_events.log");
  free(s);
  close_tee(t);
}

static void test_configfs_quote(void **state) {
  (void)state;
  make_configfs("tdx_guest\n");
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = open_fake(&cfg);
  uint8_t rd[64];
  report_data_pattern(rd, 9);
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(buf_append_str(&q, "pre"), 0);
  assert_int_equal(get_quote(t, rd, &q), 0);
  assert_int_equal(q.len, 3 + 2000);
  assert_memory_equal(q.data, "pre", 3);
  assert_memory_equal(q.data + 3, rd, 64);
  assert_int_equal(F.hook_calls, 2);
  assert_int_equal(get_generation(), 42);
  assert_false(F.connected);
  assert_int_equal(F.n_calls, 0);
  assert_string_equal(tee_tdx_last_error(t), "");
  char p[512];
  uint8_t in[128];
  fpath(p, F.cfs_dir, "inblob");
  assert_int_equal(read_file(p, in, sizeof in), 64);
  assert_memory_equal(in, rd, 64);

  /* bounds: too short, at the cap */
  buf_reset(&q);
  F.cfs_quote_len = 1020;
  assert_int_equal(get_quote(t, rd, &q), -EBADMSG);
  assert_int_equal(q.len, 0);
  F.cfs_quote_len = 1021;
  assert_int_equal(get_quote(t, rd, &q), 0);
  assert_int_equal(q.len, 1021);
  buf_reset(&q);
  F.cfs_quote_len = BUF_MAX_QUOTE;
  assert_int_equal(get_quote(t, rd, &q), -ENOBUFS);
  assert_int_equal(q.len, 0);
  F.cfs_quote_len = BUF_MAX_QUOTE - 1;
  assert_int_equal(get_quote(t, rd, &q), 0);
  assert_int_equal(q.len, BUF_MAX_QUOTE - 1);
  /* the caller's cap applies too */
  struct buf small = BUF_INIT(1500);
  F.cfs_quote_len = 2000;
  assert_int_equal(get_quote(t, rd, &small), -ENOBUFS);
  assert_int_equal(small.len, 0);
  buf_free(&small);
  close_tee(t);
}

static void test_configfs_generation(void **state) {
  (void)state;
  make_configfs("tdx_guest");
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = open_fake(&cfg);
  uint8_t rd[64];
  report_data_pattern(rd, 1);
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);

  /* another writer got in between: generation jumps by 2 */
  F.cfs_gen_bump = 2;
  assert_int_equal(get_quote(t, rd, &q), -EBUSY);
  assert_int_equal(q.len, 0);
  assert_false(F.connected); /* a busy configfs is final, not a fall-through */
  assert_non_null(strstr(tee_tdx_last_error(t), "generation"));

  /* generation changes again while outblob is read */
  F.cfs_gen_bump = 1;
  F.cfs_bump_after_read = true;
  assert_int_equal(get_quote(t, rd, &q), -EBUSY);
  assert_int_equal(q.len, 0);

  /* generation never moves: bounded wait */
  F.cfs_bump_after_read = false;
  F.cfs_gen_bump = 0;
  cfg.timeout_ms = 50;
  struct tee *t2 = open_fake(&cfg);
  assert_int_equal(get_quote(t2, rd, &q), -ETIMEDOUT);
  close_tee(t2);

  /* garbage in generation */
  char p[512];
  fpath(p, F.cfs_dir, "generation");
  write_str(p, "x1\n");
  assert_int_equal(get_quote(t, rd, &q), -EBADMSG);
  write_str(p, "");
  assert_int_equal(get_quote(t, rd, &q), -EBADMSG);
  write_str(p, "99999999999999999999999\n");
  assert_int_equal(get_quote(t, rd, &q), -EBADMSG);
  close_tee(t);
}

/* A thread that plays the kernel without a hook: waits for inblob, then fills outblob and
 * bumps generation a little later. */
static void *cfs_kernel_thread(void *arg) {
  (void)arg;
  char p[512];
  fpath(p, F.cfs_dir, "inblob");
  for (int i = 0; i < 1000; i++) { /* at most ~3 s */
    struct stat st;
    if (stat(p, &st) == 0 && st.st_size == 64) {
      struct timespec ts = {.tv_nsec = 30 * 1000000L};
      nanosleep(&ts, NULL);
      cfs_emulate_write();
      return NULL;
    }
    struct timespec ts = {.tv_nsec = 3 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static void test_configfs_async(void **state) {
  (void)state;
  make_configfs("tdx_guest");
  struct tee_tdx_config cfg = fake_config();
  cfg.configfs_hook = NULL;
  struct tee *t = open_fake(&cfg);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, cfs_kernel_thread, NULL), 0);
  uint8_t rd[64];
  report_data_pattern(rd, 77);
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  int r = get_quote(t, rd, &q);
  pthread_join(th, NULL);
  assert_int_equal(r, 0);
  assert_int_equal(q.len, 2000);
  assert_memory_equal(q.data, rd, 64);
  assert_int_equal(get_generation(), 42);
  close_tee(t);
}

static void test_configfs_mkdir_and_fallthrough(void **state) {
  (void)state;
  /* base exists, dir does not: the dir is made; no provider there, so vsock follows */
  assert_int_equal(mkdir(F.cfs_base, 0700), 0);
  make_device();
  write_str(F.conf, "port = 4050\n");
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = open_fake(&cfg);
  uint8_t rd[64];
  report_data_pattern(rd, 3);
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(get_quote(t, rd, &q), 0);
  struct stat st;
  assert_int_equal(stat(F.cfs_dir, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_true(F.connected);
  assert_int_equal(q.len, 3000);
  close_tee(t);
}

static void test_configfs_other_provider(void **state) {
  (void)state;
  make_configfs("sev_guest\n");
  make_device();
  write_str(F.conf, "port = 4050\n");
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = open_fake(&cfg);
  uint8_t rd[64];
  report_data_pattern(rd, 4);
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(get_quote(t, rd, &q), 0);
  assert_int_equal(F.hook_calls, 0);
  assert_true(F.connected);
  assert_int_equal(q.len, 3000);
  close_tee(t);
}

static void test_vsock_quote(void **state) {
  (void)state;
  make_device();
  write_str(F.conf, "# QGS\nport = 4050\n");
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = open_fake(&cfg);
  uint8_t rd[64];
  report_data_pattern(rd, 11);
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(get_quote(t, rd, &q), 0);
  assert_true(F.qgs_request_ok);
  assert_int_equal(F.connect_cid, 2);
  assert_int_equal(F.connect_port, 4050);
  assert_int_equal(q.len, 3000);
  assert_memory_equal(q.data, rd, 64); /* the report inside the request carried rd */
  assert_int_equal(F.n_calls, 1);
  assert_int_equal(F.calls[0].req, TDX_CMD_GET_REPORT0);
  assert_memory_equal(F.calls[0].arg, rd, 64);
  assert_false(F.tdvm_called);

  buf_reset(&q);
  F.qgs_mode = QGS_OK_WITH_ID;
  assert_int_equal(get_quote(t, rd, &q), 0);
  assert_int_equal(q.len, 3000);
  close_tee(t);
}

static void test_vsock_errors(void **state) {
  (void)state;
  make_device();
  write_str(F.conf, "port = 4050\n");
  struct tee_tdx_config cfg = fake_config();
  cfg.timeout_ms = 200;
  struct tee *t = open_fake(&cfg);
  uint8_t rd[64];
  report_data_pattern(rd, 12);
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  static const struct {
    enum qgs_mode mode;
    int err;
  } cases[] = {
      {QGS_ERROR_CODE, -EIO},       {QGS_WRONG_ID, -EPERM},   {QGS_HUGE_LENGTH, -ENOBUFS},
      {QGS_CLOSE_EARLY, -ECONNRESET}, {QGS_SILENT, -ETIMEDOUT},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    F.qgs_mode = cases[i].mode;
    F.tdvm_called = false;
    assert_int_equal(get_quote(t, rd, &q), cases[i].err);
    assert_int_equal(q.len, 0);
    assert_false(F.tdvm_called); /* errors after connecting are final */
    assert_non_null(strstr(tee_tdx_last_error(t), "vsock"));
  }
  close_tee(t);
}

static void test_tdvmcall_quote(void **state) {
  (void)state;
  make_device();
  /* vsock configured but nobody listens: TDVMCALL follows */
  write_str(F.conf, "port = 4050\n");
  F.connect_err = ECONNREFUSED;
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = open_fake(&cfg);
  uint8_t rd[64];
  report_data_pattern(rd, 21);
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(get_quote(t, rd, &q), 0);
  assert_int_equal(F.connect_port, 4050);
  assert_true(F.tdvm_called);
  assert_int_equal(q.len, 4000);
  assert_memory_equal(q.data, rd, 64);
  /* GET_REPORT0 for the vsock attempt, then GET_REPORT0 + GET_QUOTE */
  assert_int_equal(F.n_calls, 3);
  assert_int_equal(F.calls[2].req, 0x80105404u);
  assert_int_equal(F.calls[2].size, 16);
  struct tdx_quote_req arg;
  memcpy(&arg, F.calls[2].arg, sizeof arg);
  assert_int_equal(arg.len, 16384);
  assert_int_equal(arg.buf % 4096, 0);

  /* no conf at all: straight to TDVMCALL */
  unlink(F.conf);
  F.n_calls = 0;
  F.connect_port = 0;
  buf_reset(&q);
  assert_int_equal(get_quote(t, rd, &q), 0);
  assert_int_equal(F.connect_port, 0);
  assert_int_equal(F.n_calls, 2);
  assert_int_equal(q.len, 4000);

  /* status codes and out_len */
  F.tdvm_status = TDX_QUOTE_STATUS_IN_FLIGHT;
  buf_reset(&q);
  assert_int_equal(get_quote(t, rd, &q), -EBUSY);
  F.tdvm_status = TDX_QUOTE_STATUS_SERVICE_UNAVAILABLE;
  assert_int_equal(get_quote(t, rd, &q), -EHOSTUNREACH);
  F.tdvm_status = 5;
  assert_int_equal(get_quote(t, rd, &q), -EIO);
  F.tdvm_status = 0;
  F.tdvm_out_len_adjust = -1;
  assert_int_equal(get_quote(t, rd, &q), -EBADMSG);
  F.tdvm_out_len_adjust = 20000;
  assert_int_equal(get_quote(t, rd, &q), -EBADMSG);
  F.tdvm_out_len_adjust = -4040; /* out_len == 4 */
  assert_int_equal(get_quote(t, rd, &q), -EBADMSG);
  assert_int_equal(q.len, 0);
  F.tdvm_out_len_adjust = 0;
  F.ioctl_errno = EIO;
  assert_int_equal(get_quote(t, rd, &q), -EIO);
  assert_non_null(strstr(tee_tdx_last_error(t), "tdvmcall"));
  close_tee(t);
}

static void test_no_tdx(void **state) {
  (void)state;
  /* nothing exists in the fake environment */
  struct tee_tdx_config cfg = fake_config();
  cfg.ioctl_fn = NULL;     /* the real ioctl(2) */
  cfg.vsock_connect = NULL; /* the real AF_VSOCK */
  struct tee *t = open_fake(&cfg);
  uint8_t rd[64] = {0}, report[1024], rt[4][48];
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(get_quote(t, rd, &q), -ENODEV);
  const char *e = tee_tdx_last_error(t);
  assert_non_null(strstr(e, "configfs"));
  assert_non_null(strstr(e, "vsock"));
  assert_non_null(strstr(e, "tdvmcall"));
  assert_int_equal(t->ops->get_report(t, rd, report), -ENODEV);
  assert_int_equal(t->ops->extend_rtmr(t, 3, rd), -ENODEV);
  assert_int_equal(t->ops->read_rtmrs(t, rt), -ENODEV);
  close_tee(t);

  /* the real defaults on this machine, when it has no TDX */
  if (access(TEE_TDX_DEFAULT_DEVICE, F_OK) == 0 ||
      access(TEE_TDX_DEFAULT_CONFIGFS_BASE, F_OK) == 0 ||
      access(TEE_TDX_DEFAULT_ATTEST_CONF, F_OK) == 0 ||
      access(TEE_TDX_DEFAULT_RTMR_SYSFS_DIR, F_OK) == 0)
    return;
  unsetenv(TEE_TDX_ENV_CONFIGFS);
  unsetenv(TEE_TDX_ENV_RTMR_SYSFS);
  assert_int_equal(tee_tdx_new(NULL, &t), 0);
  assert_int_equal(get_quote(t, rd, &q), -ENODEV);
  assert_true(strlen(tee_tdx_last_error(t)) > 0);
  assert_int_equal(t->ops->get_report(t, rd, report), -ENODEV);
  close_tee(t);
  assert_int_equal(tee_tdx_new(NULL, NULL), -EINVAL);
}

static void test_env_paths(void **state) {
  (void)state;
  /* the environment names the configfs and sysfs dirs when the config does not */
  make_configfs("tdx_guest");
  assert_int_equal(mkdir(F.rtmr_dir, 0700), 0);
  char p[512], name[32];
  for (unsigned i = 0; i < 4; i++) {
    snprintf(name, sizeof name, "rtmr%u:sha384", i);
    fpath(p, F.rtmr_dir, name);
    write_file(p, F.rtmr[i], 48);
  }
  assert_int_equal(setenv(TEE_TDX_ENV_CONFIGFS, F.cfs_dir, 1), 0);
  assert_int_equal(setenv(TEE_TDX_ENV_RTMR_SYSFS, F.rtmr_dir, 1), 0);
  struct tee_tdx_config cfg = fake_config();
  cfg.configfs_dir = NULL;
  cfg.configfs_base = NULL;
  cfg.rtmr_sysfs_dir = NULL;
  struct tee *t = open_fake(&cfg);
  unsetenv(TEE_TDX_ENV_CONFIGFS);
  unsetenv(TEE_TDX_ENV_RTMR_SYSFS);
  uint8_t rd[64], rt[4][48];
  report_data_pattern(rd, 8);
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(get_quote(t, rd, &q), 0);
  assert_int_equal(q.len, 2000);
  assert_int_equal(t->ops->read_rtmrs(t, rt), 0);
  assert_memory_equal(rt, F.rtmr, sizeof rt);
  assert_int_equal(F.n_calls, 0);
  close_tee(t);
}

static void test_real_vsock_unreachable(void **state) {
  (void)state;
  /* the real AF_VSOCK connector: nothing listens on the host port, so TDVMCALL follows */
  make_device();
  write_str(F.conf, "port = 4051\n");
  struct tee_tdx_config cfg = fake_config();
  cfg.vsock_connect = NULL;
  cfg.timeout_ms = 500;
  struct tee *t = open_fake(&cfg);
  uint8_t rd[64];
  report_data_pattern(rd, 50);
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  assert_int_equal(get_quote(t, rd, &q), 0);
  assert_true(F.tdvm_called);
  assert_int_equal(q.len, 4000);
  close_tee(t);
}

static void test_generic_api(void **state) {
  (void)state;
  /* the backend behind tee.c's generic functions, including the event-log extend */
  make_device();
  struct tee_tdx_config cfg = fake_config();
  struct tee *t = NULL;
  assert_int_equal(tee_tdx_new(&cfg, &t), 0);
  assert_string_equal(tee_name(t), "tdx");
  uint8_t d[48];
  memset(d, 0x11, sizeof d);
  assert_int_equal(tee_extend_event(t, 3, 1, d, "app-id"), 0);
  assert_int_equal(F.n_calls, 1);
  assert_int_equal(F.calls[0].req, TDX_CMD_EXTEND_RTMR);
  assert_memory_equal(F.calls[0].arg, d, 48);
  assert_int_equal(F.calls[0].arg[48], 3);
  uint8_t line[512];
  size_t n = read_file(F.evlog, line, sizeof line - 1);
  line[n] = 0;
  assert_non_null(strstr((char *)line, "\"associated_data\":\"app-id\""));
  assert_int_equal(line[n - 1], '\n');

  /* a failed extend leaves no line behind */
  F.ioctl_errno = EIO;
  assert_int_equal(tee_extend_event(t, 3, 1, d, "other"), -EIO);
  assert_int_equal(read_file(F.evlog, line, sizeof line - 1), n);
  F.ioctl_errno = 0;

  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  uint8_t rd[64];
  report_data_pattern(rd, 99);
  assert_int_equal(tee_get_quote(t, rd, &q), 0); /* TDVMCALL: no configfs, no vsock */
  assert_int_equal(q.len, 4000);
  tee_free(t);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_ioctl_numbers),
      T(test_get_report),
      T(test_extend_ioctl),
      T(test_extend_sysfs),
      T(test_read_rtmrs_sysfs),
      T(test_read_rtmrs_tdreport),
      T(test_eventlog_path),
      T(test_configfs_quote),
      T(test_configfs_generation),
      T(test_configfs_async),
      T(test_configfs_mkdir_and_fallthrough),
      T(test_configfs_other_provider),
      T(test_vsock_quote),
      T(test_vsock_errors),
      T(test_tdvmcall_quote),
      T(test_no_tdx),
      T(test_env_paths),
      T(test_real_vsock_unreachable),
      T(test_generic_api),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

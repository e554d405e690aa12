/* The RTMR event path tappd relies on: tee_extend_event_line() (any one-line record, appended
 * and extended under the event-log flock, taken back when the extend fails), tee_extend_event()
 * on top of it, the repair after a crash (tee_eventlog_reconcile(), and tappd around it), and
 * the dev-mode boot events (os-image-hash from vm_config). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attest/eventlog.h"
#include "attest/sim.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "tappd_dev.h"
#include "tappd.h"
#include "testutil.h"

static off_t file_size(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 ? st.st_size : -1;
}

static char *sim_dir_new(char **ret_top) {
  char *top = tu_mkdtemp();
  char *sim = str_printf("%s/sim", top);
  assert_non_null(sim);
  assert_int_equal(sim_platform_init(sim, NULL), 0);
  *ret_top = top;
  return sim;
}

/* A runtime-event line as tappd writes it ({"imr":3,...,"event_payload":hex}\n). */
static void runtime_line(const char *name, const uint8_t *pl, size_t n, uint8_t digest[48],
                         struct buf *out) {
  assert_int_equal(eventlog_runtime_digest(name, pl, n, 1, digest), 0);
  char dh[97];
  hex_encode(digest, 48, dh);
  _cleanup_free_ char *ph = hex_encode_alloc(pl, n);
  assert_non_null(ph);
  assert_int_equal(buf_printf(out,
                              "{\"imr\":3,\"event_type\":%u,\"digest\":\"%s\",\"event\":\"%s\","
                              "\"event_payload\":\"%s\"}\n",
                              (unsigned)EVENTLOG_EV_RUNTIME, dh, name, ph),
                   0);
}

/* The log replays to the TEE's RTMRs; returns the number of events. */
static size_t assert_log_matches(struct tee *t) {
  _cleanup_free_ char *path = NULL;
  assert_int_equal(tee_eventlog_path(t, &path), 0);
  _cleanup_buf_ struct buf b = BUF_INIT(EVENTLOG_MAX_LOG);
  if (access(path, F_OK) == 0)
    assert_int_equal(file_read_all(path, EVENTLOG_MAX_LOG, &b), 0);
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  assert_int_equal(eventlog_parse_json((const char *)b.data, b.len, &log), 0);
  uint8_t want[4][48], got[4][48];
  assert_int_equal(eventlog_replay(&log, want), 0);
  assert_int_equal(tee_read_rtmrs(t, got), 0);
  assert_memory_equal(want[3], got[3], 48);
  return log.n;
}

static void test_line_basic(void **state) {
  (void)state;
  char *top;
  _cleanup_free_ char *sim = sim_dir_new(&top);
  struct tee *t = NULL;
  assert_int_equal(tee_sim_new(sim, &t), 0);
  _cleanup_free_ char *path = NULL;
  assert_int_equal(tee_eventlog_path(t, &path), 0);
  size_t n0 = assert_log_matches(t);

  uint8_t d[48];
  _cleanup_buf_ struct buf line = BUF_INIT(4096);
  const uint8_t pl[] = {0xde, 0xad, 0, 1};
  runtime_line("deploy", pl, sizeof(pl), d, &line);
  uint8_t before[4][48], after[4][48], m[96], want[48];
  assert_int_equal(tee_read_rtmrs(t, before), 0);
  assert_int_equal(tee_extend_event_line(t, 3, d, line.data, line.len), 0);
  assert_int_equal(tee_read_rtmrs(t, after), 0);
  memcpy(m, before[3], 48);
  memcpy(m + 48, d, 48);
  sha384(m, sizeof(m), want);
  assert_memory_equal(after[3], want, 48);
  assert_memory_equal(after[2], before[2], 48);
  assert_int_equal(assert_log_matches(t), n0 + 1);

  /* The seed-format wrapper still works and interleaves in the same log. */
  uint8_t sd[48];
  assert_int_equal(tee_digest_pad48("\x01\x02", 2, sd), 0);
  assert_int_equal(tee_extend_event(t, 3, 1, sd, "seed-style"), 0);
  assert_int_equal(assert_log_matches(t), n0 + 2);

  /* Malformed lines and arguments: nothing appended, nothing extended. */
  off_t sz = file_size(path);
  assert_int_equal(tee_read_rtmrs(t, before), 0);
  const char *bad[] = {"", "no newline", "two\nlines\n", "\n\n"};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
    assert_int_equal(tee_extend_event_line(t, 3, d, bad[i], strlen(bad[i])), -EINVAL);
  assert_int_equal(tee_extend_event_line(t, 4, d, line.data, line.len), -EINVAL);
  assert_int_equal(tee_extend_event_line(NULL, 3, d, line.data, line.len), -EINVAL);
  assert_int_equal(tee_extend_event_line(t, 3, NULL, line.data, line.len), -EINVAL);
  assert_int_equal(tee_extend_event_line(t, 3, d, NULL, 1), -EINVAL);
  char *huge = malloc(TEE_EVENT_LINE_MAX + 1);
  assert_non_null(huge);
  memset(huge, 'x', TEE_EVENT_LINE_MAX);
  huge[TEE_EVENT_LINE_MAX] = '\n';
  assert_int_equal(tee_extend_event_line(t, 3, d, huge, TEE_EVENT_LINE_MAX + 1), -ENOBUFS);
  free(huge);
  assert_int_equal(file_size(path), sz);
  assert_int_equal(tee_read_rtmrs(t, after), 0);
  assert_memory_equal(before, after, sizeof(before));

  tee_free(t);
  tu_rm_rf(top);
  free(top);
}

/* A backend whose extend fails: the appended line is taken back. */
struct fake {
  char *path;
  int extends;
  int fail;
};
static int fake_extend(struct tee *t, unsigned index, const uint8_t digest[48]) {
  (void)index;
  (void)digest;
  struct fake *f = t->priv;
  if (f->fail)
    return -EIO;
  f->extends++;
  return 0;
}
static int fake_path(struct tee *t, char **ret) {
  struct fake *f = t->priv;
  *ret = strdup(f->path);
  return *ret ? 0 : -ENOMEM;
}
static const struct tee_ops fake_ops = {
    .name = "fake", .extend_rtmr = fake_extend, .eventlog_path = fake_path};

static void test_line_extend_failure(void **state) {
  (void)state;
  char *top = tu_mkdtemp();
  struct fake f = {.path = str_printf("%s/sub/dir/events.log", top)};
  struct tee t = {.ops = &fake_ops, .priv = &f};
  uint8_t d[48] = {1};
  static const char l1[] = "{\"first\":1}\n", l2[] = "{\"second\":2}\n";
  /* Parent directories are created (0700), the file 0600. */
  assert_int_equal(tee_extend_event_line(&t, 3, d, l1, strlen(l1)), 0);
  assert_int_equal(f.extends, 1);
  struct stat st;
  assert_int_equal(stat(f.path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  f.fail = 1;
  assert_int_equal(tee_extend_event_line(&t, 3, d, l2, strlen(l2)), -EIO);
  assert_int_equal(tee_extend_event(&t, 3, 1, d, "x"), -EIO);
  _cleanup_buf_ struct buf b = BUF_INIT(4096);
  assert_int_equal(file_read_all(f.path, 4096, &b), 0);
  assert_int_equal(b.len, strlen(l1));
  assert_memory_equal(b.data, l1, b.len);
  /* No event-log path or no extend: -ENOTSUP. */
  static const struct tee_ops none = {.name = "none"};
  struct tee t2 = {.ops = &none};
  assert_int_equal(tee_extend_event_line(&t2, 3, d, l1, strlen(l1)), -ENOTSUP);
  free(f.path);
  tu_rm_rf(top);
  free(top);
}

/* Processes mixing runtime lines and seed lines: the log order always equals the extend order,
 * and a reader holding LOCK_SH on the same file sees log and RTMRs agree at every moment. */
static void test_line_concurrent(void **state) {
  (void)state;
  char *top;
  _cleanup_free_ char *sim = sim_dir_new(&top);
  struct tee *t = NULL;
  assert_int_equal(tee_sim_new(sim, &t), 0);
  size_t n0 = assert_log_matches(t);
  enum { N_PROC = 4, N_EVENTS = 12 };
  pid_t pids[N_PROC + 1];
  for (int p = 0; p < N_PROC; p++) {
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0) {
      struct tee *ct = NULL;
      if (tee_sim_new(sim, &ct) < 0)
        _exit(2);
      for (int i = 0; i < N_EVENTS; i++) {
        char name[32];
        uint8_t pl[2] = {(uint8_t)p, (uint8_t)i}, d[48];
        snprintf(name, sizeof(name), "p%d-%d", p, i);
        int r;
        if ((p + i) % 3 == 0) {
          memset(d, 0, sizeof(d));
          memcpy(d, pl, sizeof(pl));
          r = tee_extend_event(ct, 3, 1, d, name);
        } else {
          _cleanup_buf_ struct buf line = BUF_INIT(4096);
          if (eventlog_runtime_digest(name, pl, sizeof(pl), 1, d) < 0)
            _exit(4);
          char dh[97];
          hex_encode(d, 48, dh);
          if (buf_printf(&line,
                         "{\"imr\":3,\"event_type\":%u,\"digest\":\"%s\",\"event\":\"%s\","
                         "\"event_payload\":\"%02x%02x\"}\n",
                         (unsigned)EVENTLOG_EV_RUNTIME, dh, name, pl[0], pl[1]) < 0)
            _exit(5);
          r = tee_extend_event_line(ct, 3, d, line.data, line.len);
        }
        if (r < 0)
          _exit(3);
      }
      tee_free(ct);
      _exit(0);
    }
  }
  /* A reader: under LOCK_SH, log replay == RTMR3 every time it looks. */
  pids[N_PROC] = fork();
  assert_true(pids[N_PROC] >= 0);
  if (pids[N_PROC] == 0) {
    struct tee *ct = NULL;
    _cleanup_free_ char *path = NULL;
    if (tee_sim_new(sim, &ct) < 0 || tee_eventlog_path(ct, &path) < 0)
      _exit(2);
    for (int i = 0; i < 40; i++) {
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || flock(fd, LOCK_SH) < 0)
        _exit(3);
      _cleanup_buf_ struct buf b = BUF_INIT(EVENTLOG_MAX_LOG);
      _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
      uint8_t want[4][48], got[4][48];
      if (fd_read_all(fd, EVENTLOG_MAX_LOG, &b) < 0 ||
          eventlog_parse_json((const char *)b.data, b.len, &log) < 0 ||
          eventlog_replay(&log, want) < 0 || tee_read_rtmrs(ct, got) < 0)
        _exit(4);
      (void)flock(fd, LOCK_UN);
      close(fd);
      if (memcmp(want[3], got[3], 48) != 0)
        _exit(5);
    }
    tee_free(ct);
    _exit(0);
  }
  for (int p = 0; p <= N_PROC; p++) {
    int st;
    assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
  }
  assert_int_equal(assert_log_matches(t), n0 + N_PROC * N_EVENTS);
  tee_free(t);
  tu_rm_rf(top);
  free(top);
}

/* ---- crashes: tee_eventlog_reconcile() ---- */

static void append_bytes(const char *path, const void *p, size_t n) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(fd_write_all(fd, p, n), 0);
  close(fd);
}

static void append_raw(const char *path, const char *text) {
  append_bytes(path, text, strlen(text));
}

static void read_all(const char *path, struct buf *b) {
  *b = BUF_INIT(EVENTLOG_MAX_LOG);
  assert_int_equal(file_read_all(path, EVENTLOG_MAX_LOG, b), 0);
}

/* A sim backend whose extend kills the calling process: the crash between append and extend. */
static int killing_extend(struct tee *t, unsigned index, const uint8_t digest[48]) {
  (void)t;
  (void)index;
  (void)digest;
  raise(SIGKILL);
  return -EIO;
}

static void crash_between_append_and_extend(const char *sim, const char *name) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct tee *t = NULL;
    if (tee_sim_new(sim, &t) < 0)
      _exit(2);
    struct tee_ops ops = *t->ops;
    ops.extend_rtmr = killing_extend;
    t->ops = &ops;
    uint8_t d[48];
    _cleanup_buf_ struct buf line = BUF_INIT(4096);
    runtime_line(name, (const uint8_t *)"x", 1, d, &line);
    (void)tee_extend_event_line(t, 3, d, line.data, line.len);
    _exit(3); /* not reached */
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGKILL);
}

static void emit(struct tee *t, const char *name) {
  uint8_t d[48];
  _cleanup_buf_ struct buf line = BUF_INIT(4096);
  runtime_line(name, (const uint8_t *)"p", 1, d, &line);
  assert_int_equal(tee_extend_event_line(t, 3, d, line.data, line.len), 0);
}

/* The log does (not) replay to RTMR3; returns the number of events on RTMR3. */
static bool log_replays(struct tee *t, size_t *ret_n) {
  _cleanup_free_ char *path = NULL;
  assert_int_equal(tee_eventlog_path(t, &path), 0);
  _cleanup_buf_ struct buf b;
  read_all(path, &b);
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  if (eventlog_parse_json((const char *)b.data, b.len, &log) < 0)
    return false;
  uint8_t want[4][48], got[4][48];
  assert_int_equal(eventlog_replay(&log, want), 0);
  assert_int_equal(tee_read_rtmrs(t, got), 0);
  size_t n = 0;
  for (size_t i = 0; i < log.n; i++)
    n += log.ev[i].imr == 3;
  if (ret_n)
    *ret_n = n;
  return memcmp(want[3], got[3], 48) == 0;
}

static void test_reconcile_crashes(void **state) {
  (void)state;
  char *top;
  _cleanup_free_ char *sim = sim_dir_new(&top);
  struct tee *t = NULL;
  assert_int_equal(tee_sim_new(sim, &t), 0);
  _cleanup_free_ char *path = NULL;
  assert_int_equal(tee_eventlog_path(t, &path), 0);
  struct tee_reconcile rc;

  /* A consistent log (also an empty one) is left exactly as it is. */
  assert_int_equal(tee_eventlog_reconcile(t, 3, NULL, &rc), 0);
  assert_int_equal(rc.dropped_lines, 0);
  emit(t, "one");
  emit(t, "two");
  _cleanup_buf_ struct buf before;
  read_all(path, &before);
  assert_int_equal(tee_eventlog_reconcile(t, 3, NULL, &rc), 0);
  assert_int_equal(rc.dropped_lines, 0);
  assert_int_equal(rc.events, 2);
  _cleanup_buf_ struct buf after;
  read_all(path, &after);
  assert_int_equal(after.len, before.len);
  assert_memory_equal(after.data, before.data, before.len);

  /* Killed between append and extend: one line more than RTMR3. */
  crash_between_append_and_extend(sim, "lost");
  size_t n;
  assert_false(log_replays(t, NULL));
  assert_int_equal(tee_eventlog_reconcile(t, 3, NULL, &rc), 0);
  assert_int_equal(rc.dropped_lines, 1);
  assert_int_equal(rc.events, 2);
  assert_true(log_replays(t, &n));
  assert_int_equal(n, 2);
  assert_int_equal(file_size(path), (off_t)before.len);

  /* Two dead writers in a row, the second torn while appending. */
  crash_between_append_and_extend(sim, "lost-1");
  append_raw(path, "{\"imr\":3,\"event_type\":1,\"dig");
  assert_int_equal(tee_eventlog_reconcile(t, 3, NULL, &rc), 0);
  assert_int_equal(rc.dropped_lines, 2);
  assert_true(log_replays(t, &n));
  assert_int_equal(n, 2);

  /* A torn line is cut by the next append too, which then lands on a line of its own. */
  append_raw(path, "{\"imr\":3,\"event_");
  emit(t, "three");
  assert_true(log_replays(t, &n));
  assert_int_equal(n, 3);

  /* A last line without its '\n' is torn, even when it parses: the writer died before the
   * extend (it only follows a complete, synced line). Cut, as the next append would. */
  {
    uint8_t d[48];
    _cleanup_buf_ struct buf line = BUF_INIT(4096);
    runtime_line("unended", (const uint8_t *)"u", 1, d, &line);
    line.len--; /* no '\n' */
    append_bytes(path, line.data, line.len);
  }
  assert_int_equal(tee_eventlog_reconcile(t, 3, NULL, &rc), 0);
  assert_int_equal(rc.dropped_lines, 1);
  assert_int_equal(rc.events, 3);
  assert_true(log_replays(t, &n));
  assert_int_equal(n, 3);
  emit(t, "after-unended");
  assert_true(log_replays(t, &n));
  assert_int_equal(n, 4);

  /* The start value: a boot log elsewhere that put one event on RTMR3 first. */
  {
    uint8_t boot[48] = {0}, d[48], m[96];
    memset(d, 0x42, sizeof(d));
    /* the log replays to RTMR3 from zero, so from another start it does not */
    memcpy(m, boot, 48);
    memcpy(m + 48, d, 48);
    sha384(m, sizeof(m), boot);
    _cleanup_buf_ struct buf keep;
    read_all(path, &keep);
    assert_int_equal(tee_eventlog_reconcile(t, 3, boot, &rc), -ENOTRECOVERABLE);
    _cleanup_buf_ struct buf same;
    read_all(path, &same);
    assert_int_equal(same.len, keep.len);
  }

  tee_free(t);
  tu_rm_rf(top);
  free(top);
}

/* Logs that dropping trailing lines cannot fix: refused, and nothing is changed. */
static void test_reconcile_unrecoverable(void **state) {
  (void)state;
  static const char *const cases[] = {"extend-unlogged", "other-rtmr-in-tail", "garbage-line",
                                      "dangling-then-logged", "extended-unterminated"};
  for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
    char *top;
    _cleanup_free_ char *sim = sim_dir_new(&top);
    struct tee *t = NULL;
    assert_int_equal(tee_sim_new(sim, &t), 0);
    _cleanup_free_ char *path = NULL;
    assert_int_equal(tee_eventlog_path(t, &path), 0);
    emit(t, "a");
    uint8_t d[48];
    memset(d, 7, sizeof(d));
    switch (k) {
    case 0: /* RTMR3 extended without a line */
      assert_int_equal(sim_td_extend(sim, 3, d), 0);
      break;
    case 1: /* a line RTMR3 never got, then one on RTMR2 that may have reached RTMR2 */
      crash_between_append_and_extend(sim, "lost");
      assert_int_equal(tee_extend_event(t, 2, 1, d, "rtmr2"), 0);
      break;
    case 2: /* a complete line that does not parse */
      append_raw(path, "not json\n");
      break;
    case 3: /* a dead writer's line, then a logged and extended one after it */
      crash_between_append_and_extend(sim, "lost");
      emit(t, "b");
      break;
    case 4: { /* a line without its '\n' that RTMR3 did get: no writer of ours does that (the
               * torn line is cut, never ended), so the log cannot be repaired */
      _cleanup_buf_ struct buf line = BUF_INIT(4096);
      runtime_line("unended", (const uint8_t *)"u", 1, d, &line);
      append_bytes(path, line.data, line.len - 1);
      assert_int_equal(sim_td_extend(sim, 3, d), 0);
      break;
    }
    }
    _cleanup_buf_ struct buf b0;
    read_all(path, &b0);
    uint8_t r0[4][48], r1[4][48];
    assert_int_equal(tee_read_rtmrs(t, r0), 0);
    struct tee_reconcile rc;
    assert_int_equal(tee_eventlog_reconcile(t, 3, NULL, &rc), -ENOTRECOVERABLE);
    _cleanup_buf_ struct buf b1;
    read_all(path, &b1);
    assert_int_equal(b1.len, b0.len);
    assert_memory_equal(b1.data, b0.data, b0.len);
    assert_int_equal(tee_read_rtmrs(t, r1), 0);
    assert_memory_equal(r0, r1, sizeof(r0));
    tee_free(t);
    tu_rm_rf(top);
    free(top);
  }
  /* arguments, and a backend without RTMRs to read */
  struct tee_reconcile rc;
  assert_int_equal(tee_eventlog_reconcile(NULL, 3, NULL, &rc), -EINVAL);
  struct fake f = {.path = "/nonexistent"};
  struct tee ft = {.ops = &fake_ops, .priv = &f};
  assert_int_equal(tee_eventlog_reconcile(&ft, 4, NULL, &rc), -EINVAL);
  assert_int_equal(tee_eventlog_reconcile(&ft, 3, NULL, &rc), -ENOTSUP);
}

/* tappd: the start-up check repairs the log; quotes repair a log a dead writer left behind
 * since, and are refused while the log cannot replay to RTMR3. */
static void test_tappd_reconcile(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char err[256] = "";
  struct tappd_config cfg;
  struct tappd *t = NULL;
  assert_int_equal(tappd_dev_prepare(dir, err, sizeof(err)), 0);
  assert_int_equal(tappd_config_init_dev(&cfg, dir, NULL, 0), 0);
  assert_int_equal(tappd_new(&cfg, &t, err, sizeof(err)), 0);
  assert_int_equal(tappd_dev_boot(t), 0);
  _cleanup_free_ char *sim = str_printf("%s/sim", dir);
  uint8_t rd[64] = {0};
  size_t n0;
  assert_true(log_replays(t->tee, &n0));

  /* killed mid-EmitEvent, then started again */
  crash_between_append_and_extend(sim, "lost");
  tappd_free(t);
  assert_int_equal(tappd_new(&cfg, &t, err, sizeof(err)), 0);
  size_t n;
  assert_true(log_replays(t->tee, &n));
  assert_int_equal(n, n0);

  /* another process killed while tappd runs: the next quote repairs the log */
  crash_between_append_and_extend(sim, "lost-again");
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  _cleanup_buf_ struct buf json = BUF_INIT(TAPPD_EVENTLOG_MAX);
  assert_int_equal(tappd_quote(t, rd, &q, NULL, &json), 0);
  assert_true(log_replays(t->tee, &n));
  assert_int_equal(n, n0);
  assert_int_equal(buf_terminate(&json), 0);
  assert_null(strstr((const char *)json.data, "lost-again"));

  /* RTMR3 extended without logging: quotes refused, with a clear message; other calls work */
  uint8_t d[48];
  memset(d, 9, sizeof(d));
  assert_int_equal(sim_td_extend(sim, 3, d), 0);
  buf_reset(&q);
  assert_int_equal(tappd_quote(t, rd, &q, NULL, NULL), -ENOTRECOVERABLE);
  assert_int_equal(q.len, 0);
  assert_true(atomic_load(&t->eventlog_unrecoverable));
  assert_non_null(strstr(tappd_quote_strerror(-ENOTRECOVERABLE), "RTMR3"));
  char *error = NULL;
  struct tappd_info info;
  assert_int_equal(tappd_info(t, false, &info, &error), -ENOTRECOVERABLE);
  assert_non_null(strstr(error, "does not replay to RTMR3"));
  free(error);
  /* ... and after a restart too */
  tappd_free(t);
  assert_int_equal(tappd_new(&cfg, &t, err, sizeof(err)), 0);
  assert_true(atomic_load(&t->eventlog_unrecoverable));
  assert_int_equal(tappd_quote(t, rd, &q, NULL, NULL), -ENOTRECOVERABLE);
  assert_int_equal(q.len, 0);

  tappd_free(t);
  tappd_config_free(&cfg);
  tu_rm_rf(dir);
  free(dir);
}

/* Dev mode records the vm_config's os_image_hash as "os-image-hash" before "key-provider", and
 * Info reports it. */
static void test_dev_os_image_hash(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char err[256] = "";
  struct tappd_config cfg;
  struct tappd *t = NULL;
  assert_int_equal(tappd_dev_prepare(dir, err, sizeof(err)), 0);
  assert_int_equal(tappd_config_init_dev(&cfg, dir, NULL, 0), 0);
  assert_int_equal(tappd_new(&cfg, &t, err, sizeof(err)), 0);
  assert_int_equal(tappd_dev_boot(t), 0);
  uint8_t h[32];
  char hx[65];
  assert_int_equal(tappd_dev_os_image_hash(h), 0);
  hex_encode(h, 32, hx);
  assert_non_null(strstr(t->vm_config, hx));

  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  assert_int_equal(tappd_eventlog_read(t, &log), 0);
  const char *order[] = {"boot-mr-done", "os-image-hash", "key-provider", "system-ready"};
  size_t k = 0;
  for (size_t i = 0; i < log.n && k < ARRAY_SIZE(order); i++)
    if (log.ev[i].imr == 3 && str_eq(log.ev[i].event, order[k]))
      k++;
  assert_int_equal(k, ARRAY_SIZE(order));
  const struct tdx_event *e;
  assert_int_equal(eventlog_find(&log, 3, "os-image-hash", &e), 0);
  assert_int_equal(e->payload_len, 32);
  assert_memory_equal(e->payload, h, 32);

  struct tappd_info info;
  char *error = NULL;
  assert_int_equal(tappd_info(t, false, &info, &error), 0);
  assert_int_equal(info.os_image_hash.len, 32);
  assert_memory_equal(info.os_image_hash.data, h, 32);
  assert_non_null(strstr(info.tcb_info, hx));
  tappd_info_free(&info);
  /* A second boot does not emit again. */
  size_t n = log.n;
  assert_int_equal(tappd_dev_boot(t), 0);
  _cleanup_eventlog_ struct eventlog log2 = EVENTLOG_INIT;
  assert_int_equal(tappd_eventlog_read(t, &log2), 0);
  assert_int_equal(log2.n, n);
  tappd_free(t);
  tappd_config_free(&cfg);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_line_basic),
      cmocka_unit_test(test_line_extend_failure),
      cmocka_unit_test(test_line_concurrent),
      cmocka_unit_test(test_reconcile_crashes),
      cmocka_unit_test(test_reconcile_unrecoverable),
      cmocka_unit_test(test_tappd_reconcile),
      cmocka_unit_test(test_dev_os_image_hash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tappd quotes: report-data rules per hash algorithm, quotes consistent with the event log,
 * EmitEvent (atomic extend + append, also across processes), Info, Attest encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attest/quote.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "crypto/keccak.h"
#include "tappd_dev.h"
#include "tappd.h"
#include "testutil.h"

struct fx {
  char *dir;
  struct tappd_config cfg;
  struct tappd *t;
};

static struct fx *fx_new(void) {
  struct fx *f = calloc(1, sizeof(*f));
  char err[256] = "";
  f->dir = tu_mkdtemp();
  assert_int_equal(tappd_dev_prepare(f->dir, err, sizeof(err)), 0);
  assert_int_equal(tappd_config_init_dev(&f->cfg, f->dir, NULL, 0), 0);
  assert_int_equal(tappd_new(&f->cfg, &f->t, err, sizeof(err)), 0);
  assert_int_equal(tappd_dev_boot(f->t), 0);
  return f;
}

static void fx_free(struct fx *f) {
  tappd_free(f->t);
  tappd_config_free(&f->cfg);
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f);
}

static void assert_rd(const char *alg, const char *prefix, const char *data, const char *want) {
  uint8_t rd[64];
  char *err = NULL, hex[129];
  assert_int_equal(tappd_report_data(alg, prefix, (const uint8_t *)data, strlen(data), rd, &err), 0);
  hex_encode(rd, 64, hex);
  assert_string_equal(hex, want);
}

static void test_report_data(void **state) {
  (void)state;
  /* Upstream's own vector (dstack-attest tests): app-data, sha512, "test content". */
  const char *v512 = "7ea0b744ed5e9c0c83ff9f575668e1697652cd349f2027cdf26f918d4c53e8cd50b5ea9b449b4c3"
                     "d50e20ae00ec29688d5a214e8daff8a10041f5d624dae8a01";
  assert_rd("", "", "test content", v512);
  assert_rd("sha512", "app-data", "test content", v512);
  /* Python hashlib over "app-data:test content", zero-padded. */
  assert_rd("sha256", "", "test content",
            "278fdb367382d9d10871ebb44498a29d54e705fa8924ce0a6fe8629542fc1a65000000000000000000"
            "0000000000000000000000000000000000000000000000");
  assert_rd("sha384", "", "test content",
            "3967015e6798cc3d90f60b0a8dd045856e33273c4118dcdf04cc40a051ef8f3c008c73fb6e89d0af96"
            "1c91a3a73efc5e00000000000000000000000000000000");
  assert_rd("sha3-256", "", "test content",
            "bb98d4376d590cb17968d89250ac8f3d6241c9267d74995121a60766d0a6c66500000000000000000"
            "00000000000000000000000000000000000000000000000");
  assert_rd("sha3-384", "", "test content",
            "9a1bc92ced9fae72a75d0b446894269c15d47c270829e7375f107d920e2e20fc2bba3ae0a514721e44"
            "d185f89bea7e7800000000000000000000000000000000");
  assert_rd("sha3-512", "", "test content",
            "dc18076a2308b0373d2417d85f62d041398a8387894bd7a46afe857a5cc951f77726fbcf9019bcc22"
            "4fa11ee0784c94035ad3669f607dcc704079faf244dc3ba");
  assert_rd("sha256", "my-tag", "hello",
            "568796f80d736794a0cb7be088317daf31fb1160e5a8eadb011f71d56f00c17e000000000000000000"
            "0000000000000000000000000000000000000000000000");
  /* Keccak (original padding) over the same text. */
  const char *ks[] = {"keccak256", "keccak384", "keccak512"};
  const size_t kn[] = {32, 48, 64};
  for (int i = 0; i < 3; i++) {
    uint8_t want[64] = {0}, rd[64];
    const char *m = "app-data:test content";
    struct keccak_ctx c;
    assert_int_equal(keccak_init(&c, kn[i]), 0);
    keccak_update(&c, m, strlen(m));
    keccak_final(&c, want);
    assert_int_equal(tappd_report_data(ks[i], "", (const uint8_t *)"test content", 12, rd, NULL), 0);
    assert_memory_equal(rd, want, 64);
  }
  /* raw: exactly 64 bytes, taken as they are. */
  uint8_t d64[65], rd[64];
  for (int i = 0; i < 65; i++)
    d64[i] = (uint8_t)(i * 7);
  char *err = NULL;
  assert_int_equal(tappd_report_data("raw", "ignored", d64, 64, rd, &err), 0);
  assert_memory_equal(rd, d64, 64);
  assert_int_equal(tappd_report_data("raw", "", d64, 65, rd, &err), -EINVAL);
  assert_non_null(err);
  free(err);
  err = NULL;
  assert_int_equal(tappd_report_data("raw", "", d64, 63, rd, &err), -EINVAL);
  free(err);
  err = NULL;
  /* Only the listed algorithms, spelled exactly. */
  const char *bad[] = {"sha1", "SHA256", "blake2b512", "sha512-256", "md5", "sha3_256"};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    assert_int_equal(tappd_report_data(bad[i], "", d64, 4, rd, &err), -EINVAL);
    free(err);
    err = NULL;
  }
  assert_string_equal(tappd_report_data_hash_name(""), "sha512");
  assert_string_equal(tappd_report_data_prefix("", ""), "app-data");
  assert_string_equal(tappd_report_data_prefix("sha256", "x"), "x");
  assert_string_equal(tappd_report_data_prefix("raw", "x"), "");
  /* GetQuote: up to 64 bytes, zero-padded, no hashing. */
  assert_int_equal(tappd_pad_report_data(d64, 3, rd, NULL), 0);
  assert_memory_equal(rd, d64, 3);
  for (int i = 3; i < 64; i++)
    assert_int_equal(rd[i], 0);
  assert_int_equal(tappd_pad_report_data(NULL, 0, rd, NULL), 0);
  assert_int_equal(tappd_pad_report_data(d64, 65, rd, &err), -EINVAL);
  free(err);
}

/* Quote and log agree: report_data as asked, replay == RTMRs. */
static void assert_consistent(struct tappd *t, const uint8_t rd[64], struct quote *ret_q,
                              size_t *ret_n) {
  struct buf qb = BUF_INIT(BUF_MAX_QUOTE), lj = BUF_INIT(TAPPD_EVENTLOG_MAX);
  assert_int_equal(tappd_quote(t, rd, &qb, NULL, &lj), 0);
  struct quote q;
  assert_int_equal(quote_parse(qb.data, qb.len, &q), 0);
  assert_memory_equal(quote_report_data(&q), rd, 64);
  struct eventlog log;
  uint8_t rtmr[4][48];
  assert_int_equal(eventlog_parse_json((const char *)lj.data, lj.len, &log), 0);
  assert_int_equal(eventlog_replay(&log, rtmr), 0);
  assert_memory_equal(rtmr, q.td.rt_mr, sizeof(rtmr));
  if (ret_n)
    *ret_n = log.n;
  if (ret_q)
    *ret_q = q;
  eventlog_free(&log);
  buf_free(&qb);
  buf_free(&lj);
}

static off_t file_size(const char *p) {
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  return st.st_size;
}

static void test_quote_and_emit(void **state) {
  (void)state;
  struct fx *f = fx_new();
  uint8_t rd[64];
  memset(rd, 0xab, sizeof(rd));
  struct quote q0, q1;
  size_t n0, n1;
  assert_consistent(f->t, rd, &q0, &n0);
  /* The dev boot events are there: app-id etc. on RTMR3, boot events on 0..2. */
  assert_true(n0 >= 7);
  char *err = NULL;
  const uint8_t payload[] = {1, 2, 3, 0, 255};
  assert_int_equal(tappd_emit_event(f->t, "my-event", payload, sizeof(payload), &err), 0);
  assert_consistent(f->t, rd, &q1, &n1);
  assert_int_equal(n1, n0 + 1);
  assert_memory_not_equal(q0.td.rt_mr[3], q1.td.rt_mr[3], 48);
  assert_memory_equal(q0.td.rt_mr[0], q1.td.rt_mr[0], 48);
  /* RTMR3' = SHA-384(RTMR3 || V1 digest). */
  uint8_t d[48], m[96], want[48];
  assert_int_equal(eventlog_runtime_digest("my-event", payload, sizeof(payload), 1, d), 0);
  memcpy(m, q0.td.rt_mr[3], 48);
  memcpy(m + 48, d, 48);
  sha384(m, 96, want);
  assert_memory_equal(q1.td.rt_mr[3], want, 48);
  /* The log entry carries the payload. */
  struct eventlog log;
  assert_int_equal(tappd_eventlog_read(f->t, &log), 0);
  const struct tdx_event *e = &log.ev[log.n - 1];
  assert_int_equal(e->imr, 3);
  assert_int_equal(e->event_type, EVENTLOG_EV_RUNTIME);
  assert_string_equal(e->event, "my-event");
  assert_int_equal(e->payload_len, sizeof(payload));
  assert_memory_equal(e->payload, payload, sizeof(payload));
  assert_memory_equal(e->digest, d, 48);
  eventlog_free(&log);

  /* Bad events: a clear error, no partial entry, RTMR3 unchanged. */
  off_t sz = file_size(f->t->eventlog_path);
  const char *bad_names[] = {"", "tab\there", "new\nline", "\x7f"};
  for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++) {
    assert_int_equal(tappd_emit_event(f->t, bad_names[i], payload, 1, &err), -EINVAL);
    assert_non_null(err);
    free(err);
    err = NULL;
  }
  char longname[EVENTLOG_MAX_NAME + 2];
  memset(longname, 'n', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = 0;
  assert_int_equal(tappd_emit_event(f->t, longname, payload, 1, &err), -EINVAL);
  free(err);
  err = NULL;
  uint8_t *big = calloc(1, TAPPD_MAX_EVENT_PAYLOAD + 1);
  assert_int_equal(tappd_emit_event(f->t, "big", big, TAPPD_MAX_EVENT_PAYLOAD + 1, &err), -EINVAL);
  free(err);
  err = NULL;
  assert_int_equal(tappd_emit_event(f->t, "max", big, TAPPD_MAX_EVENT_PAYLOAD, &err), 0);
  free(big);
  assert_true(file_size(f->t->eventlog_path) > sz);
  sz = file_size(f->t->eventlog_path);

  /* Apps may not use the boot's names (nor those names followed by ':'): refused, nothing
   * logged or extended; other names are theirs. */
  const char *boot_names[] = {"app-id", "compose-hash", "instance-id", "boot-mr-done",
                              "system-ready", "key-provider", "app-id:x"};
  for (size_t i = 0; i < ARRAY_SIZE(boot_names); i++) {
    assert_int_equal(tappd_emit_app_event(f->t, boot_names[i], payload, 1, &err), -EPERM);
    assert_non_null(strstr(err, "reserved"));
    free(err);
    err = NULL;
  }
  assert_int_equal(file_size(f->t->eventlog_path), sz);
  assert_int_equal(tappd_emit_app_event(f->t, "app-event", payload, 1, &err), 0);
  assert_true(file_size(f->t->eventlog_path) > sz);
  sz = file_size(f->t->eventlog_path);

  /* A failing extend takes the appended line back. */
  char td[4096], td_saved[4096];
  snprintf(td, sizeof(td), "%s/sim/td.json", f->dir);
  snprintf(td_saved, sizeof(td_saved), "%s/sim/td.json.saved", f->dir);
  assert_int_equal(rename(td, td_saved), 0);
  assert_int_equal(mkdir(td, 0700), 0);
  assert_true(tappd_emit_event(f->t, "lost", payload, 1, NULL) < 0);
  assert_int_equal(file_size(f->t->eventlog_path), sz);
  assert_int_equal(rmdir(td), 0);
  assert_int_equal(rename(td_saved, td), 0);
  assert_consistent(f->t, rd, NULL, NULL);
  fx_free(f);
}

/* Many processes emit at once: the log order always matches the RTMR3 extends. */
static void test_emit_concurrent_processes(void **state) {
  (void)state;
  struct fx *f = fx_new();
  size_t n0;
  uint8_t rd[64] = {0};
  assert_consistent(f->t, rd, NULL, &n0);
  enum { N_PROC = 4, N_EVENTS = 15 };
  pid_t pids[N_PROC];
  for (int p = 0; p < N_PROC; p++) {
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0) {
      struct tappd *t = NULL;
      char err[256];
      if (tappd_new(&f->cfg, &t, err, sizeof(err)) < 0)
        _exit(2);
      for (int i = 0; i < N_EVENTS; i++) {
        char name[32];
        uint8_t pl[4] = {(uint8_t)p, (uint8_t)i};
        snprintf(name, sizeof(name), "proc%d-%d", p, i);
        if (tappd_emit_event(t, name, pl, sizeof(pl), NULL) < 0)
          _exit(3);
      }
      tappd_free(t);
      _exit(0);
    }
  }
  for (int p = 0; p < N_PROC; p++) {
    int st;
    assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
  }
  size_t n1;
  assert_consistent(f->t, rd, NULL, &n1);
  assert_int_equal(n1, n0 + N_PROC * N_EVENTS);
  fx_free(f);
}

static void test_info(void **state) {
  (void)state;
  struct fx *f = fx_new();
  struct tappd_info i;
  char *err = NULL;
  assert_int_equal(tappd_info(f->t, false, &i, &err), 0);
  /* app_id = compose_hash[0..20] (dev boot events), instance id present. */
  uint8_t ch[32];
  sha256(f->t->compose_raw, strlen(f->t->compose_raw), ch);
  assert_int_equal(i.compose_hash.len, 32);
  assert_memory_equal(i.compose_hash.data, ch, 32);
  assert_int_equal(i.app_id.len, 20);
  assert_memory_equal(i.app_id.data, ch, 20);
  assert_int_equal(i.instance_id.len, 20);
  assert_int_equal(i.device_id.len, 32);
  assert_int_equal(i.mr_aggregated.len, 32);
  assert_string_equal(i.app_name, "dstack-dev");
  assert_string_equal(i.app_cert, f->t->keys.ca_pem);
  assert_string_equal(i.key_provider_info, "{\"name\":\"none\",\"id\":\"\"}");
  /* mr_aggregated = SHA-256(MRTD || RTMR0..3) (MRCONFIGID etc. are zero in the simulator). */
  uint8_t m[240], want[32];
  memcpy(m, i.mrtd, 48);
  memcpy(m + 48, i.rtmr, 192);
  sha256(m, sizeof(m), want);
  assert_memory_equal(i.mr_aggregated.data, want, 32);
  json_t *tcb = NULL;
  assert_int_equal(json_parse_buf(i.tcb_info, strlen(i.tcb_info), 1 << 24, &tcb), 0);
  const char *keys[] = {"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_aggregated",
                        "os_image_hash", "compose_hash", "device_id", "app_compose"};
  for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
    assert_non_null(json_object_get(tcb, keys[k]));
  assert_true(json_is_array(json_object_get(tcb, "event_log")));
  json_decref(tcb);
  assert_true(strlen(i.vm_config) > 0);
  tappd_info_free(&i);
  /* External with public_tcbinfo off: tcb_info and vm_config hidden. */
  f->t->public_tcbinfo = false;
  assert_int_equal(tappd_info(f->t, true, &i, &err), 0);
  assert_string_equal(i.tcb_info, "");
  assert_string_equal(i.vm_config, "");
  assert_int_equal(i.app_id.len, 20);
  tappd_info_free(&i);
  assert_int_equal(tappd_info(f->t, false, &i, &err), 0);
  assert_true(strlen(i.tcb_info) > 0);
  tappd_info_free(&i);
  fx_free(f);
}

/* On real TDX the runtime log holds only RTMR3 events; RTMR0..2 come from the CCEL. */
static void test_ccel_merge(void **state) {
  (void)state;
  struct fx *f = fx_new();
  /* Keep only the RTMR3 lines of the simulator's log. */
  struct buf all = BUF_INIT(1 << 20), rt3 = BUF_INIT(1 << 20), orig = BUF_INIT(1 << 20);
  tu_read_file(f->t->eventlog_path, &all);
  tu_read_file(f->t->eventlog_path, &orig);
  assert_int_equal(buf_terminate(&all), 0);
  char *save = NULL;
  for (char *l = strtok_r((char *)all.data, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
    if (strstr(l, "\"imr\":3"))
      assert_int_equal(buf_printf(&rt3, "%s\n", l), 0);
  assert_int_equal(file_write_atomic(f->t->eventlog_path, rt3.data, rt3.len, 0600), 0);
  free(f->cfg.ccel_file);
  f->cfg.ccel_file = strdup(tu_vector_path("dstack/ccel.bin"));
  struct eventlog log;
  uint8_t rtmr[4][48];
  assert_int_equal(tappd_eventlog_read(f->t, &log), 0);
  assert_int_equal(eventlog_replay(&log, rtmr), 0);
  char hex[97];
  hex_encode(rtmr[0], 48, hex);
  assert_string_equal(hex, "274c2344116db7c663470693b5ba62b8621eac28cb41d2f816ddf188f9f423f900a1c4"
                           "4d32386fd3c993dc814e62af9d");
  hex_encode(rtmr[1], 48, hex);
  assert_string_equal(hex, "bdcf4ee0f7fdfe7c73fbb19ded73193aee23a6726b86d3b282ea097cf4c9ed7a0db21b"
                           "5c1ccd513e410d90e310836b26");
  /* Boot events first, no EV_NO_ACTION or MRTD entries, then the runtime events. */
  size_t first_rt3 = log.n;
  for (size_t i = 0; i < log.n; i++) {
    assert_true(log.ev[i].imr < 4);
    assert_int_not_equal(log.ev[i].event_type, EVENTLOG_EV_NO_ACTION);
    if (log.ev[i].imr == 3 && first_rt3 == log.n)
      first_rt3 = i;
    if (i > first_rt3)
      assert_int_equal(log.ev[i].imr, 3);
  }
  assert_true(first_rt3 > 0 && first_rt3 < log.n);
  eventlog_free(&log);
  /* A log with its own boot events (the simulator's) is not mixed with the CCEL. */
  assert_int_equal(file_write_atomic(f->t->eventlog_path, orig.data, orig.len, 0600), 0);
  assert_int_equal(tappd_eventlog_read(f->t, &log), 0);
  assert_int_equal(eventlog_replay(&log, rtmr), 0);
  hex_encode(rtmr[0], 48, hex);
  assert_string_not_equal(hex, "274c2344116db7c663470693b5ba62b8621eac28cb41d2f816ddf188f9f423f900a1"
                               "c44d32386fd3c993dc814e62af9d");
  eventlog_free(&log);
  buf_free(&orig);
  buf_free(&all);
  buf_free(&rt3);
  fx_free(f);
}

static void test_scale(void **state) {
  (void)state;
  struct {
    uint64_t v;
    const char *hex;
  } v[] = {{0, "00"},       {1, "04"},           {63, "fc"},
           {64, "0101"},    {16383, "fdff"},     {16384, "02000100"},
           {1073741823, "feffffff"}, {1073741824, "0300000040"}, {UINT64_MAX, "13ffffffffffffffff"}};
  for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
    struct buf b = BUF_INIT(16);
    char hex[64];
    assert_int_equal(tappd_scale_compact(&b, v[i].v), 0);
    hex_encode(b.data, b.len, hex);
    assert_string_equal(hex, v[i].hex);
    buf_free(&b);
  }
}

static uint64_t read_compact(struct cursor *c) {
  uint8_t b0;
  assert_int_equal(cursor_u8(c, &b0), 0);
  switch (b0 & 3) {
  case 0:
    return b0 >> 2;
  case 1: {
    uint8_t b1;
    assert_int_equal(cursor_u8(c, &b1), 0);
    return ((uint64_t)b1 << 6) | (b0 >> 2);
  }
  case 2: {
    uint8_t r[3];
    assert_int_equal(cursor_read(c, r, 3), 0);
    return ((uint64_t)b0 | (uint64_t)r[0] << 8 | (uint64_t)r[1] << 16 | (uint64_t)r[2] << 24) >> 2;
  }
  default:
    fail_msg("big compact");
  }
  return 0;
}

static void test_attest(void **state) {
  (void)state;
  struct fx *f = fx_new();
  uint8_t rd[64];
  memset(rd, 0x5a, sizeof(rd));
  struct buf b = BUF_INIT(1 << 24);
  assert_int_equal(tappd_attest(f->t, rd, &b, NULL), 0);
  struct cursor c;
  cursor_init(&c, b.data, b.len);
  uint8_t v, mode;
  assert_int_equal(cursor_u8(&c, &v), 0);
  assert_int_equal(cursor_u8(&c, &mode), 0);
  assert_int_equal(v, 0);
  assert_int_equal(mode, 0);
  size_t qlen = read_compact(&c);
  struct slice qs;
  assert_int_equal(cursor_slice(&c, qlen, &qs), 0);
  struct quote q;
  assert_int_equal(quote_parse(qs.ptr, qs.len, &q), 0);
  assert_memory_equal(quote_report_data(&q), rd, 64);
  size_t n_ev = read_compact(&c);
  assert_true(n_ev > 0);
  for (size_t i = 0; i < n_ev; i++) {
    uint32_t imr, type;
    assert_int_equal(cursor_u32le(&c, &imr), 0);
    assert_int_equal(cursor_u32le(&c, &type), 0);
    assert_true(imr < 4);
    for (int k = 0; k < 3; k++)
      assert_int_equal(cursor_skip(&c, read_compact(&c)), 0);
  }
  size_t n_rt = read_compact(&c);
  assert_true(n_rt >= 7);
  for (size_t i = 0; i < n_rt; i++)
    for (int k = 0; k < 2; k++)
      assert_int_equal(cursor_skip(&c, read_compact(&c)), 0);
  uint8_t rd2[64];
  assert_int_equal(cursor_read(&c, rd2, 64), 0);
  assert_memory_equal(rd2, rd, 64);
  size_t cl = read_compact(&c);
  assert_int_equal(cl, strlen(f->t->vm_config));
  assert_int_equal(cursor_skip(&c, cl), 0);
  assert_int_equal(cursor_left(&c), 0);
  buf_free(&b);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_report_data), cmocka_unit_test(test_quote_and_emit),
      cmocka_unit_test(test_emit_concurrent_processes), cmocka_unit_test(test_info),
      cmocka_unit_test(test_ccel_merge), cmocka_unit_test(test_scale),
      cmocka_unit_test(test_attest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

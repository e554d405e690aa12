/* The host channel's requests (teepod_hostch_dispatch) on a VM built by hand: Notify events,
 * what is stored and how it is bounded, Info, the refusals, the ring of recent events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/str.h"
#include "teepod.h"
#include "teepod_hostch.h"
#include "testutil.h"

struct fixture {
  char *dir;
  struct teepod_config cfg;
  struct teepod tp;
  struct teepod_vm *vm;
};

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  f->dir = tu_mkdtemp();
  assert_int_equal(teepod_config_init(&f->cfg), 0);
  f->tp.cfg = &f->cfg;
  f->tp.sim = false;
  f->tp.backend = TEEPOD_BACKEND_TCG;
  struct teepod_manifest m = {0};
  snprintf(m.id, sizeof(m.id), "0b9e5c3a-7f41-4d2e-9a6b-1c2d3e4f5a6b");
  snprintf(m.name, sizeof(m.name), "vm1");
  snprintf(m.app_id, sizeof(m.app_id), "00112233445566778899aabbccddeeff00112233");
  m.vcpu = 1;
  m.memory = 1024;
  m.image = strdup("img");
  f->vm = teepod_vm_new(&f->tp, f->dir, &m);
  assert_non_null(f->vm);
  assert_null(m.image); /* taken */
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  teepod_vm_free(f->vm);
  teepod_config_free(&f->cfg);
  tu_rm_rf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

/* Calls method with params given as JSON text; returns the result code, sets *res / *err. */
static int call(struct teepod_vm *vm, const char *method, const char *params, json_t **res,
                char **err) {
  json_error_t je;
  json_t *p = json_loads(params, 0, &je);
  assert_non_null(p);
  *res = NULL;
  *err = NULL;
  int r = teepod_hostch_dispatch(vm, method, p, res, err);
  json_decref(p);
  if (r < 0) {
    assert_null(*res);
    assert_non_null(*err);
  } else {
    assert_non_null(*res);
    assert_null(*err);
  }
  return r;
}

static int notify(struct teepod_vm *vm, const char *event, const char *payload, char **err) {
  /* built without jansson's UTF-8 check, to see what the sanitising does with bad bytes */
  json_t *p = json_object();
  assert_non_null(p);
  assert_int_equal(json_object_set_new(p, "event", json_string(event)), 0);
  json_t *pl = json_stringn_nocheck(payload, strlen(payload));
  assert_int_equal(json_object_set_new(p, "payload", pl), 0);
  json_t *res = NULL;
  *err = NULL;
  int r = teepod_hostch_dispatch(vm, "Notify", p, &res, err);
  json_decref(p);
  if (r >= 0) {
    assert_true(json_is_object(res) && json_object_size(res) == 0);
    json_decref(res);
  } else {
    assert_null(res);
    assert_non_null(*err);
  }
  return r;
}

static const struct teepod_guest_event *last_event(const struct teepod_vm *vm) {
  assert_true(vm->n_events > 0);
  return &vm->events[(vm->events_head + vm->n_events - 1) % TEEPOD_EVENTS_KEPT];
}

static void test_boot_progress(void **state) {
  struct fixture *f = *state;
  struct teepod_vm *vm = f->vm;
  char *err = NULL;
  assert_int_equal(notify(vm, "boot.progress", "mounting disk", &err), 0);
  assert_string_equal(vm->boot_progress, "mounting disk");
  assert_int_equal(vm->n_events, 1);
  assert_string_equal(last_event(vm)->event, "boot.progress");
  assert_string_equal(last_event(vm)->body, "mounting disk");
  assert_true(last_event(vm)->timestamp_ms > 0);
  /* control characters become spaces; UTF-8 is kept; invalid bytes are replaced */
  assert_int_equal(notify(vm, "boot.progress", "a\nb\tc\x1b[31md\x7f" "e \xc3\xa9", &err), 0);
  assert_string_equal(vm->boot_progress, "a b c [31md e \xc3\xa9");
  /* the C1 controls too (U+009B is CSI for some terminals); U+00A0 and above are kept */
  const char *c1 = "a\xc2\x9b" "31mb\xc2\x80" "c\xc2\x85\xc2\xa0";
  assert_int_equal(notify(vm, "boot.progress", c1, &err), 0);
  assert_string_equal(vm->boot_progress, "a 31mb c \xc2\xa0");
  assert_int_equal(notify(vm, "boot.progress", "bad \xff byte", &err), 0);
  assert_null(strchr(vm->boot_progress, '\xff'));
  assert_true(str_startswith(vm->boot_progress, "bad "));
  assert_true(str_endswith(vm->boot_progress, " byte"));
  /* 256 bytes are taken, 257 refused (and the last value stays) */
  char p[258];
  memset(p, 'x', sizeof(p));
  p[256] = 0;
  assert_int_equal(notify(vm, "boot.progress", p, &err), 0);
  assert_int_equal(strlen(vm->boot_progress), 256);
  p[256] = 'y';
  p[257] = 0;
  assert_int_equal(notify(vm, "boot.progress", p, &err), -EINVAL);
  assert_non_null(strstr(err, "256"));
  free(err);
  assert_int_equal(strlen(vm->boot_progress), 256);
  assert_null(strchr(vm->boot_progress, 'y'));
  /* 256 bytes of 2-byte characters with one invalid byte: still at most 256 bytes, whole
   * characters */
  char u[257];
  for (size_t i = 0; i < 254; i += 2) {
    u[i] = '\xc3';
    u[i + 1] = '\xa9';
  }
  u[254] = '\xff';
  u[255] = '\xff';
  u[256] = 0;
  assert_int_equal(notify(vm, "boot.progress", u, &err), 0);
  size_t n = strlen(vm->boot_progress);
  assert_true(n <= TEEPOD_PROGRESS_MAX);
  size_t tl = 0;
  char *copy = NULL;
  assert_int_equal(str_utf8_sanitize(vm->boot_progress, n, &copy, &tl), 0);
  assert_int_equal(tl, n); /* nothing to replace: valid UTF-8 */
  assert_memory_equal(copy, vm->boot_progress, n);
  free(copy);
  /* shutdown.progress has the same limit */
  assert_int_equal(notify(vm, "shutdown.progress", "stopping\rapp", &err), 0);
  assert_string_equal(vm->shutdown_progress, "stopping app");
  assert_int_equal(notify(vm, "shutdown.progress", p, &err), -EINVAL);
  free(err);
}

static void test_boot_error(void **state) {
  struct fixture *f = *state;
  struct teepod_vm *vm = f->vm;
  char *err = NULL;
  assert_int_equal(notify(vm, "boot.error", "disk \"full\"\n", &err), 0);
  assert_string_equal(vm->boot_error, "disk \"full\" ");
  assert_string_equal(last_event(vm)->event, "boot.error");
  char p[1026];
  memset(p, 'e', sizeof(p));
  p[1024] = 0;
  assert_int_equal(notify(vm, "boot.error", p, &err), 0);
  assert_int_equal(strlen(vm->boot_error), 1024);
  assert_int_equal(strlen(last_event(vm)->body), 1024);
  p[1024] = 'e';
  p[1025] = 0;
  assert_int_equal(notify(vm, "boot.error", p, &err), -EINVAL);
  assert_non_null(strstr(err, "1024"));
  free(err);
}

static void test_instance_info(void **state) {
  struct fixture *f = *state;
  struct teepod_vm *vm = f->vm;
  char *err = NULL;
  const char *info = "{\"instance_id\":\"00aaBBcc\",\"app_id\":\"x\",\"n\":[1,2]}";
  assert_int_equal(notify(vm, "instance.info", info, &err), 0);
  assert_string_equal(vm->instance_id, "00aaBBcc");
  _cleanup_free_ char *path = str_printf("%s/shared/.instance_info", f->dir);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  struct buf b = BUF_INIT(1 << 20);
  tu_read_file(path, &b);
  assert_int_equal(b.len, strlen(info));
  assert_memory_equal(b.data, info, b.len); /* as the guest sent it */
  buf_free(&b);
  assert_string_equal(last_event(vm)->event, "instance.info");
  /* without an instance id: stored, the id kept */
  assert_int_equal(notify(vm, "instance.info", "{}", &err), 0);
  assert_string_equal(vm->instance_id, "00aaBBcc");
  /* refusals: not hex, not an object, not JSON, too long; the file keeps the last good one */
  static const char *const bad[] = {
      "{\"instance_id\":\"xyz\"}",
      "{\"instance_id\":\"00 11\"}",
      "{\"instance_id\":\"../../x\"}",
      "[1]",
      "\"text\"",
      "{",
      "{} {}",
      "",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (notify(vm, "instance.info", bad[i], &err) != -EINVAL)
      fail_msg("case %zu (%s) accepted", i, bad[i]);
    free(err);
  }
  char id129[130];
  memset(id129, 'a', 129);
  id129[129] = 0;
  _cleanup_free_ char *longid = str_printf("{\"instance_id\":\"%s\"}", id129);
  assert_int_equal(notify(vm, "instance.info", longid, &err), -EINVAL);
  free(err);
  assert_string_equal(vm->instance_id, "00aaBBcc");
  /* 4096 bytes are taken, 4097 refused */
  char big[4098];
  memset(big, ' ', sizeof(big));
  memcpy(big, "{\"pad\":\"", 8);
  memcpy(big + 4096 - 2, "\"}", 2);
  memset(big + 8, 'p', 4096 - 2 - 8);
  big[4096] = 0;
  assert_int_equal(notify(vm, "instance.info", big, &err), 0);
  b = BUF_INIT(1 << 20);
  tu_read_file(path, &b);
  assert_int_equal(b.len, 4096);
  buf_free(&b);
  big[4096] = ' ';
  big[4097] = 0;
  assert_int_equal(notify(vm, "instance.info", big, &err), -EINVAL);
  assert_non_null(strstr(err, "4096"));
  free(err);
  /* initialized writes its flag file */
  assert_int_equal(notify(vm, "initialized", "", &err), 0);
  _cleanup_free_ char *flag = str_printf("%s/shared/initialized", f->dir);
  assert_int_equal(stat(flag, &st), 0);
  assert_int_equal(st.st_size, 0);
}

static void test_notify_refusals(void **state) {
  struct fixture *f = *state;
  struct teepod_vm *vm = f->vm;
  char *err = NULL;
  json_t *res;
  assert_int_equal(notify(vm, "boot.nonsense", "x", &err), -EINVAL);
  assert_string_equal(err, "unknown event");
  free(err);
  assert_int_equal(vm->n_events, 0); /* nothing recorded */
  assert_int_equal(call(vm, "Notify", "{}", &res, &err), -EINVAL);
  free(err);
  assert_int_equal(call(vm, "Notify", "{\"event\":5}", &res, &err), -EINVAL);
  free(err);
  assert_int_equal(call(vm, "Notify", "{\"event\":\"boot.progress\",\"payload\":7}", &res, &err),
                   -EINVAL);
  free(err);
  /* a missing or null payload is an empty one */
  assert_int_equal(call(vm, "Notify", "{\"event\":\"boot.progress\"}", &res, &err), 0);
  json_decref(res);
  assert_string_equal(vm->boot_progress, "");
  assert_int_equal(call(vm, "Notify", "{\"event\":\"boot.progress\",\"payload\":null}", &res, &err),
                   0);
  json_decref(res);
  /* a payload with an embedded NUL is refused */
  json_t *p = json_pack("{s:s,s:s#}", "event", "boot.progress", "payload", "a\0b", (size_t)3);
  assert_non_null(p);
  assert_true(teepod_hostch_dispatch(vm, "Notify", p, &res, &err) < 0);
  free(err);
  json_decref(p);
}

static void test_info(void **state) {
  struct fixture *f = *state;
  struct teepod_vm *vm = f->vm;
  char *err = NULL;
  json_t *res;
  assert_int_equal(call(vm, "Info", "{}", &res, &err), 0);
  const char *s;
  assert_string_equal(json_string_value(json_object_get(res, "id")),
                      "0b9e5c3a-7f41-4d2e-9a6b-1c2d3e4f5a6b");
  assert_string_equal(json_string_value(json_object_get(res, "name")), "vm1");
  assert_string_equal(json_string_value(json_object_get(res, "app_id")),
                      "00112233445566778899aabbccddeeff00112233");
  assert_non_null(s = json_string_value(json_object_get(res, "instance_id")));
  assert_string_equal(s, "");
  assert_string_equal(json_string_value(json_object_get(res, "platform")), "none");
  assert_int_equal(json_object_size(res), 5);
  json_decref(res);
  /* the platform follows the host; a no_tee VM has none */
  vm->instance_id = strdup("abcd");
  f->tp.backend = TEEPOD_BACKEND_TDX;
  assert_int_equal(call(vm, "Info", "{}", &res, &err), 0);
  assert_string_equal(json_string_value(json_object_get(res, "platform")), "tdx");
  assert_string_equal(json_string_value(json_object_get(res, "instance_id")), "abcd");
  json_decref(res);
  f->tp.sim = true;
  assert_int_equal(call(vm, "Info", "{}", &res, &err), 0);
  assert_string_equal(json_string_value(json_object_get(res, "platform")), "sim");
  json_decref(res);
  vm->m.no_tee = true;
  assert_int_equal(call(vm, "Info", "{}", &res, &err), 0);
  assert_string_equal(json_string_value(json_object_get(res, "platform")), "none");
  json_decref(res);
}

static void test_tdx_and_unknown(void **state) {
  struct fixture *f = *state;
  struct teepod_vm *vm = f->vm;
  char *err = NULL;
  json_t *res;
  static const char *const tdx[] = {"Tdx.Report", "Tdx.Quote", "Tdx.Extend", "Tdx.EventLog",
                                    "Tdx.Nonsense"};
  for (size_t i = 0; i < sizeof(tdx) / sizeof(tdx[0]); i++) {
    assert_int_equal(call(vm, tdx[i], "{\"report_data\":\"00\"}", &res, &err), -ENOTSUP);
    assert_non_null(strstr(err, "no simulated TDX"));
    free(err);
  }
  /* platform sim but no TD state for this VM (not booted): still refused */
  f->tp.sim = true;
  assert_int_equal(call(vm, "Tdx.Report", "{}", &res, &err), -ENOTSUP);
  free(err);
  static const char *const unknown[] = {"", "info", "Notify ", "Tdx", "GetKey", "notify"};
  for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
    assert_int_equal(call(vm, unknown[i], "{}", &res, &err), -EINVAL);
    assert_string_equal(err, "unknown method");
    free(err);
  }
}

/* The ring keeps the last TEEPOD_EVENTS_KEPT events, oldest first. */
static void test_events_ring(void **state) {
  struct fixture *f = *state;
  struct teepod_vm *vm = f->vm;
  char *err = NULL;
  for (int i = 0; i < 100; i++) {
    char p[32];
    snprintf(p, sizeof(p), "step %d", i);
    assert_int_equal(notify(vm, "boot.progress", p, &err), 0);
    size_t want = (size_t)i + 1 < TEEPOD_EVENTS_KEPT ? (size_t)i + 1 : TEEPOD_EVENTS_KEPT;
    assert_int_equal(vm->n_events, want);
  }
  assert_int_equal(TEEPOD_EVENTS_KEPT, 32);
  for (size_t k = 0; k < vm->n_events; k++) {
    const struct teepod_guest_event *e = &vm->events[(vm->events_head + k) % TEEPOD_EVENTS_KEPT];
    char want[32];
    snprintf(want, sizeof(want), "step %zu", 100 - TEEPOD_EVENTS_KEPT + k);
    assert_string_equal(e->body, want);
    assert_string_equal(e->event, "boot.progress");
  }
  assert_string_equal(vm->boot_progress, "step 99");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_boot_progress, setup, teardown),
      cmocka_unit_test_setup_teardown(test_boot_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_instance_info, setup, teardown),
      cmocka_unit_test_setup_teardown(test_notify_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_info, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tdx_and_unknown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_events_ring, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

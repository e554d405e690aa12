/* The rules for taking an app's identity from RTMR3 (attest/boot_events.h): one test per rule,
 * and the event-log forgery that motivated them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "attest/boot_events.h"
#include "attest/eventlog.h"
#include "testutil.h"

static const uint8_t APP_A[20] = {0xaa, 0xaa, 0xaa};
static const uint8_t APP_B[20] = {0xbb, 0xbb, 0xbb};
static const uint8_t HASH_A[32] = {0xa1};
static const uint8_t HASH_B[32] = {0xb1};
static const uint8_t INST[20] = {0x11};

static void rt(struct eventlog *log, const char *name, const void *p, size_t n) {
  assert_int_equal(eventlog_add_runtime(log, name, p, n, 1), 0);
}

/* The newest guest's boot (upstream dstack) for app A, through system-ready. */
static void boot_a(struct eventlog *log) {
  rt(log, "system-preparing", NULL, 0);
  rt(log, "app-id", APP_A, sizeof(APP_A));
  rt(log, "compose-hash", HASH_A, sizeof(HASH_A));
  rt(log, "instance-id", INST, sizeof(INST));
  rt(log, "boot-mr-done", NULL, 0);
  rt(log, "os-image-hash", HASH_A, sizeof(HASH_A));
  rt(log, "key-provider", "{\"name\":\"kms\"}", 14);
  rt(log, "system-ready", NULL, 0);
}

static int scan(const struct eventlog *log, unsigned flags, struct boot_events *b, char *why,
                size_t n) {
  why[0] = '\0';
  return boot_events_scan(log, flags, b, why, n);
}

static void test_reserved_names(void **state) {
  (void)state;
  const char *reserved[] = {"app-id", "compose-hash", "instance-id", "key-provider",
                            "system-ready", "boot-mr-done", "os-image-hash", "rootfs-hash",
                            "ca-cert-hash", "system-preparing", "init-script-hash",
                            "storage-fs", "gpu-attestation", "gpu-policy-hash",
                            "upgraded-app-id", "sys-config", "storage-options"};
  for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
    assert_true(boot_event_name_reserved(reserved[i]));
  assert_true(boot_event_name_reserved("compose-hash:"));
  assert_true(boot_event_name_reserved("app-id:x"));
  assert_false(boot_event_name_reserved("my:app-id"));
  assert_false(boot_event_name_reserved("app-idx:"));
  assert_false(boot_event_name_reserved("my-app-event"));
  assert_false(boot_event_name_reserved("app-id2"));
  assert_false(boot_event_name_reserved(""));
  assert_false(boot_event_name_reserved(NULL));
}

static void test_newest_boot(void **state) {
  (void)state;
  struct eventlog log = EVENTLOG_INIT;
  boot_a(&log);
  rt(&log, "my-app-event", "x", 1); /* the app's own events after the boot are fine */
  struct boot_events b;
  char why[256];
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), 0);
  assert_int_equal(b.era, BOOT_EVENTS_NEWEST);
  assert_memory_equal(b.app_id->payload, APP_A, 20);
  assert_memory_equal(b.compose_hash->payload, HASH_A, 32);
  assert_memory_equal(b.instance_id->payload, INST, 20);
  assert_non_null(b.os_image_hash);
  assert_non_null(b.key_provider);
  assert_null(b.rootfs_hash);
  assert_int_equal(b.boot_end, 5);
  assert_int_equal(b.n_rtmr3, 9);
  assert_true(b.system_ready);
  eventlog_free(&log);

  /* Still booting (the KMS is asked between boot-mr-done and system-ready): fine. */
  rt(&log, "system-preparing", NULL, 0);
  rt(&log, "app-id", APP_A, sizeof(APP_A));
  rt(&log, "boot-mr-done", NULL, 0);
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), 0);
  assert_false(b.system_ready);
  assert_null(b.compose_hash);
  eventlog_free(&log);
}

/* Rule: every RTMR3 event of a newest-era log is bound (type, version and digest). */
static void test_unbound_event_refused(void **state) {
  (void)state;
  struct boot_events b;
  char why[256];
  for (int variant = 0; variant < 4; variant++) {
    struct eventlog log = EVENTLOG_INIT;
    boot_a(&log);
    struct tdx_event *e = &log.ev[3]; /* instance-id */
    switch (variant) {
    case 0: /* another type, same digest: replays the same */
      e->event_type = 0x80000001u;
      break;
    case 1: /* renamed, digest unchanged */
      free(e->event);
      e->event = strdup("renamed");
      break;
    case 2: /* payload changed, digest unchanged */
      e->payload[0] ^= 1;
      break;
    case 3: /* a seed-era line in a newest-era log */
      e->event_type = EVENTLOG_EV_SEED;
      e->version = 0;
      break;
    }
    assert_int_equal(scan(&log, BOOT_EVENTS_ALLOW_SEED, &b, why, sizeof(why)), -EBADMSG);
    assert_non_null(strstr(why, "#4"));
    eventlog_free(&log);
  }
  /* An unbound EV_NO_ACTION event on RTMR3 (never replayed) counts as unbound too. */
  struct eventlog log = EVENTLOG_INIT;
  boot_a(&log);
  uint8_t d[48] = {0};
  assert_int_equal(eventlog_add(&log, 3, EVENTLOG_EV_NO_ACTION, d, "app-id", APP_B, 20), 0);
  assert_int_equal(scan(&log, BOOT_EVENTS_ALLOW_SEED, &b, why, sizeof(why)), -EBADMSG);
  eventlog_free(&log);
}

/* Rule: identity only before boot-mr-done; the boot starts with system-preparing. */
static void test_order(void **state) {
  (void)state;
  struct boot_events b;
  char why[256];
  struct eventlog log = EVENTLOG_INIT;
  /* No boot-mr-done at all. */
  rt(&log, "system-preparing", NULL, 0);
  rt(&log, "app-id", APP_A, sizeof(APP_A));
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -ENOENT);
  assert_non_null(strstr(why, "boot-mr-done"));
  eventlog_free(&log);
  /* No app-id before boot-mr-done. */
  rt(&log, "system-preparing", NULL, 0);
  rt(&log, "boot-mr-done", NULL, 0);
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -ENOENT);
  assert_non_null(strstr(why, "app-id"));
  /* ... and one after it is out of place. */
  rt(&log, "app-id", APP_A, sizeof(APP_A));
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -EBADMSG);
  assert_non_null(strstr(why, "order"));
  eventlog_free(&log);
  /* Something else first. */
  rt(&log, "my-app-event", NULL, 0);
  rt(&log, "system-preparing", NULL, 0);
  rt(&log, "app-id", APP_A, sizeof(APP_A));
  rt(&log, "boot-mr-done", NULL, 0);
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -EBADMSG);
  assert_non_null(strstr(why, "system-preparing"));
  eventlog_free(&log);
  /* os-image-hash belongs after boot-mr-done; system-ready after boot-mr-done. */
  rt(&log, "system-preparing", NULL, 0);
  rt(&log, "app-id", APP_A, sizeof(APP_A));
  rt(&log, "os-image-hash", HASH_A, 32);
  rt(&log, "boot-mr-done", NULL, 0);
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -EBADMSG);
  eventlog_free(&log);
  rt(&log, "system-preparing", NULL, 0);
  rt(&log, "app-id", APP_A, sizeof(APP_A));
  rt(&log, "system-ready", NULL, 0);
  rt(&log, "boot-mr-done", NULL, 0);
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -EBADMSG);
  eventlog_free(&log);
}

/* Rule: a reserved name twice, or after system-ready, refuses the log. */
static void test_reserved_out_of_place(void **state) {
  (void)state;
  const char *late[] = {"app-id", "compose-hash", "instance-id", "boot-mr-done",
                        "system-ready", "system-preparing", "os-image-hash", "key-provider",
                        "rootfs-hash", "ca-cert-hash", "sys-config", "storage-options"};
  struct boot_events b;
  char why[256];
  for (size_t i = 0; i < sizeof(late) / sizeof(late[0]); i++) {
    struct eventlog log = EVENTLOG_INIT;
    boot_a(&log);
    rt(&log, late[i], APP_B, sizeof(APP_B));
    if (scan(&log, BOOT_EVENTS_ALLOW_SEED, &b, why, sizeof(why)) != -EBADMSG)
      fail_msg("a late %s was accepted", late[i]);
    eventlog_free(&log);
  }
  /* Twice within the boot. */
  struct eventlog log = EVENTLOG_INIT;
  rt(&log, "system-preparing", NULL, 0);
  rt(&log, "app-id", APP_A, sizeof(APP_A));
  rt(&log, "app-id", APP_B, sizeof(APP_B));
  rt(&log, "boot-mr-done", NULL, 0);
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -EBADMSG);
  assert_non_null(strstr(why, "twice"));
  eventlog_free(&log);
  /* tboot's sys-config and storage-options: once each, before boot-mr-done */
  rt(&log, "system-preparing", NULL, 0);
  rt(&log, "app-id", APP_A, sizeof(APP_A));
  rt(&log, "sys-config", HASH_A, 32);
  rt(&log, "storage-options", HASH_B, 32);
  rt(&log, "boot-mr-done", NULL, 0);
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), 0);
  eventlog_free(&log);
  rt(&log, "system-preparing", NULL, 0);
  rt(&log, "app-id", APP_A, sizeof(APP_A));
  rt(&log, "sys-config", HASH_A, 32);
  rt(&log, "sys-config", HASH_B, 32);
  rt(&log, "boot-mr-done", NULL, 0);
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -EBADMSG);
  eventlog_free(&log);
  /* init-script-hash may repeat within the boot. */
  rt(&log, "system-preparing", NULL, 0);
  rt(&log, "app-id", APP_A, sizeof(APP_A));
  rt(&log, "init-script-hash", HASH_A, 32);
  rt(&log, "init-script-hash", HASH_B, 32);
  rt(&log, "boot-mr-done", NULL, 0);
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), 0);
  eventlog_free(&log);
}

/* The V1 digest does not separate name and payload: a boot event whose payload starts with ':'
 * shown as "<name>:" with the rest as payload keeps its digest. Such names refuse the log. */
static void test_colon_names(void **state) {
  (void)state;
  struct eventlog log = EVENTLOG_INIT;
  uint8_t inst[20];
  memcpy(inst, INST, sizeof(inst));
  inst[0] = ':';
  rt(&log, "system-preparing", NULL, 0);
  rt(&log, "app-id", APP_A, sizeof(APP_A));
  rt(&log, "instance-id", inst, sizeof(inst));
  rt(&log, "boot-mr-done", NULL, 0);
  struct boot_events b;
  char why[256];
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), 0);
  assert_memory_equal(b.instance_id->payload, inst, 20);
  /* the same digest under the name "instance-id:" */
  struct tdx_event *e = &log.ev[2];
  free(e->event);
  e->event = strdup("instance-id:");
  memmove(e->payload, e->payload + 1, 19);
  e->payload_len = 19;
  assert_true(boot_event_is_bound(e)); /* the digest still matches */
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -EBADMSG);
  assert_non_null(strstr(why, "another name"));
  eventlog_free(&log);
}

/* The attack: app A emits B's app-id and compose-hash after its boot, then rewrites its own
 * boot events to another type and name (digests unchanged, so the log still replays). */
static void test_forgery(void **state) {
  (void)state;
  struct eventlog log = EVENTLOG_INIT;
  boot_a(&log);
  rt(&log, "app-id", APP_B, sizeof(APP_B));
  rt(&log, "compose-hash", HASH_B, sizeof(HASH_B));
  uint8_t before[4][48], after[4][48];
  assert_int_equal(eventlog_replay(&log, before), 0);
  for (size_t i = 1; i <= 2; i++) {
    log.ev[i].event_type = 0x80000001u;
    free(log.ev[i].event);
    log.ev[i].event = strdup(i == 1 ? "renamed-1" : "renamed-2");
  }
  assert_int_equal(eventlog_replay(&log, after), 0);
  assert_memory_equal(before, after, sizeof(before)); /* the forgery replays */
  struct boot_events b;
  char why[256];
  assert_int_equal(scan(&log, BOOT_EVENTS_ALLOW_SEED, &b, why, sizeof(why)), -EBADMSG);
  /* Even left bound, B's events after the boot are refused. */
  eventlog_free(&log);
  boot_a(&log);
  rt(&log, "app-id", APP_B, sizeof(APP_B));
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -EBADMSG);
  eventlog_free(&log);
}

static void seed(struct eventlog *log, const char *name, uint8_t v) {
  uint8_t d[48];
  memset(d, v, sizeof(d));
  assert_int_equal(eventlog_add(log, 3, EVENTLOG_EV_SEED, d, name, NULL, 0), 0);
}

/* Rule: seed-era logs only with the switch, identity only from the fixed leading events. */
static void test_seed(void **state) {
  (void)state;
  struct eventlog log = EVENTLOG_INIT;
  seed(&log, "rootfs-hash", 1);
  seed(&log, "app-id", 2);
  seed(&log, "ca-cert-hash", 3);
  seed(&log, "app-id", 4); /* later events never count */
  struct boot_events b;
  char why[256];
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -EPERM);
  assert_non_null(strstr(why, "allow_seed_event_log"));
  assert_int_equal(scan(&log, BOOT_EVENTS_ALLOW_SEED, &b, why, sizeof(why)), 0);
  assert_int_equal(b.era, BOOT_EVENTS_SEED);
  assert_int_equal(b.app_id->digest[0], 2);
  assert_int_equal(b.rootfs_hash->digest[0], 1);
  assert_int_equal(b.ca_cert_hash->digest[0], 3);
  assert_int_equal(b.boot_end, 3);
  eventlog_free(&log);

  /* Names at the fixed positions must be the boot's (swapped: the boot's events are missing). */
  seed(&log, "app-id", 2);
  seed(&log, "rootfs-hash", 1);
  seed(&log, "ca-cert-hash", 3);
  assert_int_equal(scan(&log, BOOT_EVENTS_ALLOW_SEED, &b, why, sizeof(why)), -ENOENT);
  eventlog_free(&log);
  /* Too few. */
  seed(&log, "rootfs-hash", 1);
  seed(&log, "app-id", 2);
  assert_int_equal(scan(&log, BOOT_EVENTS_ALLOW_SEED, &b, why, sizeof(why)), -ENOENT);
  eventlog_free(&log);
  /* A runtime event among the fixed three. */
  seed(&log, "rootfs-hash", 1);
  rt(&log, "app-id", APP_B, sizeof(APP_B));
  seed(&log, "ca-cert-hash", 3);
  assert_int_equal(scan(&log, BOOT_EVENTS_ALLOW_SEED, &b, why, sizeof(why)), -EBADMSG);
  eventlog_free(&log);
  /* A first event that is neither bound nor a seed line (another type). */
  uint8_t d[48] = {0};
  assert_int_equal(eventlog_add(&log, 3, 0x80000001u, d, "rootfs-hash", NULL, 0), 0);
  assert_int_equal(scan(&log, BOOT_EVENTS_ALLOW_SEED, &b, why, sizeof(why)), -EBADMSG);
  eventlog_free(&log);
}

static void test_other_imrs_and_empty(void **state) {
  (void)state;
  struct eventlog log = EVENTLOG_INIT;
  struct boot_events b;
  char why[256];
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -ENOENT);
  uint8_t d[48] = {0};
  /* Events on RTMR0..2 are the firmware's and never count (any type, any name). */
  assert_int_equal(eventlog_add(&log, 1, 0x80000001u, d, "app-id", APP_B, 20), 0);
  assert_int_equal(eventlog_add(&log, EVENTLOG_IMR_MRTD, 0x80000001u, d, "app-id", NULL, 0), 0);
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), -ENOENT);
  boot_a(&log);
  assert_int_equal(scan(&log, 0, &b, why, sizeof(why)), 0);
  assert_memory_equal(b.app_id->payload, APP_A, 20);
  eventlog_free(&log);
  assert_int_equal(boot_events_scan(NULL, 0, &b, NULL, 0), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reserved_names),
      cmocka_unit_test(test_newest_boot),
      cmocka_unit_test(test_unbound_event_refused),
      cmocka_unit_test(test_order),
      cmocka_unit_test(test_reserved_out_of_place),
      cmocka_unit_test(test_colon_names),
      cmocka_unit_test(test_forgery),
      cmocka_unit_test(test_seed),
      cmocka_unit_test(test_other_imrs_and_empty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

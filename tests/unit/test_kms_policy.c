/* KMS policy decisions on verified measurements (policies built from kms.toml text). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kms_config.h"
#include "kms_derive.h"
#include "kms_policy.h"
#include "testutil.h"

#define H48(c)                                                                             \
  c c c c c c c c c c c c c c c c c c c c c c c c \
      c c c c c c c c c c c c c c c c c c c c c c c c
#define H32(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

#define MEAS                                                                                       \
  "[core.allowed_mr]\nmrtd = [\"" H48("01") "\", \"" H48("0a") "\"]\nrtmr0 = [\"" H48(            \
      "02") "\"]\nrtmr1 = [\"" H48("03") "\"]\nrtmr2 = [\"" H48("04") "\"]\n"

#define NOW 2000000000

struct fx {
  struct kms_config cfg;
  uint8_t mrtd[48];
  uint8_t rtmr[4][48];
  struct ratls_app_identity id;
  struct kms_policy_input in;
};

static void fx_init(struct fx *f, const char *toml) {
  char err[256] = "";
  memset(f, 0, sizeof(*f));
  assert_int_equal(kms_config_init(&f->cfg), 0);
  int r = kms_config_apply(&f->cfg, toml, strlen(toml), err, sizeof(err));
  if (r < 0)
    fail_msg("config: %s", err);
  memset(f->mrtd, 0x01, 48);
  memset(f->rtmr[0], 0x02, 48);
  memset(f->rtmr[1], 0x03, 48);
  memset(f->rtmr[2], 0x04, 48);
  memset(f->rtmr[3], 0x05, 48);
  f->id.era = RATLS_ERA_NEWEST;
  memset(f->id.app_id, 0x66, 20);
  f->id.app_id_len = 20;
  memset(f->id.compose_hash, 0x77, 32);
  f->id.has_compose_hash = true;
  f->in = (struct kms_policy_input){.mrtd = f->mrtd,
                                    .rtmr = (const uint8_t(*)[48])f->rtmr,
                                    .status = DCAP_STATUS_UP_TO_DATE,
                                    .simulated = false,
                                    .tcb_uptodate_since = 0,
                                    .id = &f->id};
}

static enum kms_reason check(struct fx *f, char *why, size_t n) {
  return kms_policy_check(&f->cfg.apps, &f->in, NOW, why, n);
}

static void test_reason_codes(void **state) {
  (void)state;
  for (int i = 0; i < _KMS_R_MAX; i++) {
    const char *c = kms_reason_code((enum kms_reason)i);
    assert_non_null(c);
    assert_true(strlen(c) > 1);
    for (int j = 0; j < i; j++)
      assert_string_not_equal(c, kms_reason_code((enum kms_reason)j));
  }
  assert_string_equal(kms_reason_code(KMS_R_NO_CLIENT_CERT), "no_client_cert");
  assert_string_equal(kms_reason_code(KMS_R_MEASUREMENT_NOT_ALLOWED), "measurement_not_allowed");
  assert_string_equal(kms_reason_code(KMS_R_COLLATERAL_EXPIRED), "collateral_expired");
  assert_string_equal(kms_reason_code(_KMS_R_MAX), "internal");
  assert_string_equal(kms_reason_code((enum kms_reason)-1), "internal");
}

static void test_measurements(void **state) {
  (void)state;
  struct fx f;
  char why[256];
  fx_init(&f, MEAS);
  assert_int_equal(check(&f, why, sizeof(why)), KMS_OK);
  memset(f.mrtd, 0x0a, 48); /* the second allowed MRTD */
  assert_int_equal(check(&f, why, sizeof(why)), KMS_OK);
  f.mrtd[47] ^= 1;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_MEASUREMENT_NOT_ALLOWED);
  assert_non_null(strstr(why, "MRTD"));
  memset(f.mrtd, 0x01, 48);
  for (int i = 0; i < 3; i++) {
    f.rtmr[i][0] ^= 0x80;
    assert_int_equal(check(&f, why, sizeof(why)), KMS_R_MEASUREMENT_NOT_ALLOWED);
    char want[8];
    snprintf(want, sizeof(want), "RTMR%d", i);
    assert_non_null(strstr(why, want));
    f.rtmr[i][0] ^= 0x80;
  }
  /* RTMR3 is the app's business (identity), never a measurement list. */
  memset(f.rtmr[3], 0xee, 48);
  assert_int_equal(check(&f, why, sizeof(why)), KMS_OK);
  kms_config_free(&f.cfg);

  /* Empty lists allow nothing (upstream semantics) ... */
  fx_init(&f, "");
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_MEASUREMENT_NOT_ALLOWED);
  kms_config_free(&f.cfg);
  /* ... unless allow_all. */
  fx_init(&f, "[core.allowed_mr]\nallow_all = true\n");
  assert_int_equal(check(&f, why, sizeof(why)), KMS_OK);
  kms_config_free(&f.cfg);
}

static void test_simulator(void **state) {
  (void)state;
  struct fx f;
  char why[256];
  fx_init(&f, MEAS);
  f.in.simulated = true;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_SIMULATOR_NOT_ALLOWED);
  kms_config_free(&f.cfg);
  /* allow_all does not imply the simulator. */
  fx_init(&f, "[core.allowed_mr]\nallow_all = true\n");
  f.in.simulated = true;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_SIMULATOR_NOT_ALLOWED);
  kms_config_free(&f.cfg);
  fx_init(&f, MEAS "allow_simulator = true\n");
  f.in.simulated = true;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_OK);
  kms_config_free(&f.cfg);
}

static void test_tcb_status(void **state) {
  (void)state;
  struct fx f;
  char why[256];
  fx_init(&f, MEAS);
  f.in.status = DCAP_STATUS_SW_HARDENING_NEEDED;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_TCB_STATUS_NOT_ALLOWED);
  assert_non_null(strstr(why, "SWHardeningNeeded"));
  f.in.status = DCAP_STATUS_REVOKED;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_TCB_STATUS_NOT_ALLOWED);
  kms_config_free(&f.cfg);

  fx_init(&f, MEAS "tcb_statuses = [\"SWHardeningNeeded\"]\n");
  f.in.status = DCAP_STATUS_SW_HARDENING_NEEDED;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_OK);
  f.in.status = DCAP_STATUS_UP_TO_DATE; /* not listed: refused */
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_TCB_STATUS_NOT_ALLOWED);
  kms_config_free(&f.cfg);

  /* allow_all does not skip the TCB check either. */
  fx_init(&f, "[core.allowed_mr]\nallow_all = true\n");
  f.in.status = DCAP_STATUS_OUT_OF_DATE;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_TCB_STATUS_NOT_ALLOWED);
  kms_config_free(&f.cfg);
}

static void test_grace(void **state) {
  (void)state;
  struct fx f;
  char why[256];
  fx_init(&f, MEAS "out_of_date_grace_days = 10\n");
  f.in.status = DCAP_STATUS_OUT_OF_DATE;
  f.in.tcb_uptodate_since = NOW - 9 * 86400; /* newer level since 9 days: within grace */
  assert_int_equal(check(&f, why, sizeof(why)), KMS_OK);
  f.in.status = DCAP_STATUS_OUT_OF_DATE_CONFIGURATION_NEEDED;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_OK);
  f.in.tcb_uptodate_since = NOW - 10 * 86400; /* exactly 10 days: over */
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_TCB_STATUS_NOT_ALLOWED);
  f.in.tcb_uptodate_since = 0; /* unknown date: no grace */
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_TCB_STATUS_NOT_ALLOWED);
  /* Grace is for OutOfDate only. */
  f.in.tcb_uptodate_since = NOW - 86400;
  f.in.status = DCAP_STATUS_CONFIGURATION_NEEDED;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_TCB_STATUS_NOT_ALLOWED);
  f.in.status = DCAP_STATUS_REVOKED;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_TCB_STATUS_NOT_ALLOWED);
  kms_config_free(&f.cfg);
  /* No grace configured. */
  fx_init(&f, MEAS);
  f.in.status = DCAP_STATUS_OUT_OF_DATE;
  f.in.tcb_uptodate_since = NOW - 86400;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_TCB_STATUS_NOT_ALLOWED);
  kms_config_free(&f.cfg);
}

static void test_apps(void **state) {
  (void)state;
  struct fx f;
  char why[256];
  /* compose hash list */
  fx_init(&f, MEAS "compose_hashes = [\"" H32("77") "\"]\n");
  assert_int_equal(check(&f, why, sizeof(why)), KMS_OK);
  f.id.compose_hash[0] = 0;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_APP_NOT_ALLOWED);
  assert_non_null(strstr(why, "compose hash"));
  f.id.has_compose_hash = false;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_APP_NOT_ALLOWED);
  assert_non_null(strstr(why, "no compose hash"));
  f.in.id = NULL;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_APP_NOT_ALLOWED);
  kms_config_free(&f.cfg);

  /* app id list */
  fx_init(&f, MEAS "app_ids = [\"6666666666666666666666666666666666666666\"]\n");
  assert_int_equal(check(&f, why, sizeof(why)), KMS_OK);
  f.id.app_id[0] = 0x67;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_APP_NOT_ALLOWED);
  assert_non_null(strstr(why, "app id"));
  kms_config_free(&f.cfg);

  /* both lists: either one passes */
  fx_init(&f, MEAS "compose_hashes = [\"" H32("77") "\"]\n"
                   "app_ids = [\"6666666666666666666666666666666666666666\"]\n");
  f.id.app_id[0] = 0x67;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_OK);
  f.id.compose_hash[0] = 0;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_APP_NOT_ALLOWED);
  f.id.app_id[0] = 0x66;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_OK);
  kms_config_free(&f.cfg);

  /* measurements are checked before apps */
  fx_init(&f, MEAS "app_ids = [\"6666666666666666666666666666666666666666\"]\n");
  f.mrtd[0] = 0xff;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_MEASUREMENT_NOT_ALLOWED);
  kms_config_free(&f.cfg);
}

static void test_bad_args(void **state) {
  (void)state;
  struct fx f;
  char why[64];
  fx_init(&f, MEAS);
  assert_int_equal(kms_policy_check(NULL, &f.in, NOW, why, sizeof(why)), KMS_R_INTERNAL);
  assert_int_equal(kms_policy_check(&f.cfg.apps, NULL, NOW, why, sizeof(why)), KMS_R_INTERNAL);
  f.in.mrtd = NULL;
  assert_int_equal(check(&f, why, sizeof(why)), KMS_R_INTERNAL);
  kms_config_free(&f.cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reason_codes), cmocka_unit_test(test_measurements),
      cmocka_unit_test(test_simulator),    cmocka_unit_test(test_tcb_status),
      cmocka_unit_test(test_grace),        cmocka_unit_test(test_apps),
      cmocka_unit_test(test_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* kms.toml parsing, checks and --dump-config round trip; root key files (kms init, creation
 * as one set across crashes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/str.h"
#include "crypto/keys.h"
#include "kms_config.h"
#include "kms_rootkeys.h"
#include "testutil.h"
#include "tu_conftab.h"

#define H48(c)                                                                             \
  c c c c c c c c c c c c c c c c c c c c c c c c \
      c c c c c c c c c c c c c c c c c c c c c c c c

static int apply(struct kms_config *c, const char *text, char *err, size_t n) {
  return kms_config_apply(c, text, strlen(text), err, n);
}

static void test_defaults_roundtrip(void **state) {
  (void)state;
  struct kms_config a, b;
  char err[256] = "";
  assert_int_equal(kms_config_init(&a), 0);
  assert_string_equal(a.address, "0.0.0.0");
  assert_int_equal(a.port, 8043);
  assert_int_equal(a.max_conns, 1024);
  assert_int_equal(a.max_conns_per_source, 128);
  assert_int_equal(a.handshake_timeout, 5);
  assert_string_equal(a.subject_postfix, ".local");
  assert_false(a.onboard_enabled);
  assert_false(a.apps.allow_all);
  assert_int_equal(strv_length(a.apps.tcb_statuses), 1);
  assert_string_equal(a.apps.tcb_statuses[0], "UpToDate");
  assert_int_equal(strv_length(a.apps.mrtd), 0);
  assert_int_equal(kms_config_check(&a, err, sizeof(err)), 0);

  /* Change many things, dump, read back into fresh defaults, dump again: equal text. */
  const char *t = "port = 9000\n"
                  "[tls]\nra_tls = true\nalt_names = [\"kms.example\"]\n"
                  "[core]\nsubject_postfix = \".phala\"\ngateway_app_id = \"abcd\"\n"
                  "[core.quote]\npccs_url = \"https://pccs.example:8081/sgx/certification/v4/\"\n"
                  "[core.allowed_mr]\nmrtd = [\"" H48("AB") "\"]\n"
                  "compose_hashes = [\"0x" H48("cd") "\"]\n"
                  "tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\n"
                  "out_of_date_grace_days = 30\n"
                  "[core.onboard]\nenabled = true\n"
                  "[core.onboard.allowed_mr]\nallow_all = true\n";
  /* compose_hashes want 32 bytes: 96 hex characters are refused */
  assert_int_equal(apply(&a, t, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "compose_hashes"));
  assert_non_null(strstr(err, "64 hex"));
  kms_config_free(&a);
  assert_int_equal(kms_config_init(&a), 0);
  const char *t2 = "port = 9000\nmax_conns_per_source = 16\nhandshake_timeout = 2\n"
                   "[tls]\nra_tls = true\nalt_names = [\"kms.example\"]\n"
                   "[core]\nsubject_postfix = \".phala\"\ngateway_app_id = \"abcd\"\n"
                   "[core.quote]\npccs_url = \"https://pccs.example:8081/\"\n"
                   "[core.allowed_mr]\nmrtd = [\"" H48("AB") "\"]\n"
                   "app_ids = [\"0x0123456789ABCDEF0123456789abcdef01234567\"]\n"
                   "tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\n"
                   "out_of_date_grace_days = 30\n"
                   "[core.onboard]\nenabled = true\n"
                   "[core.onboard.allowed_mr]\nallow_all = true\n";
  assert_int_equal(apply(&a, t2, err, sizeof(err)), 0);
  assert_int_equal(a.port, 9000);
  assert_int_equal(a.max_conns_per_source, 16);
  assert_int_equal(a.handshake_timeout, 2);
  assert_true(a.tls_ra);
  assert_string_equal(a.apps.mrtd[0], H48("ab")); /* lowercased */
  assert_string_equal(a.apps.app_ids[0], "0123456789abcdef0123456789abcdef01234567"); /* no 0x */
  assert_int_equal(a.apps.out_of_date_grace_days, 30);
  assert_true(a.onboard_enabled);
  assert_true(a.onboard.allow_all);
  assert_int_equal(kms_config_check(&a, err, sizeof(err)), 0);

  struct buf d1 = BUF_INIT(1 << 20), d2 = BUF_INIT(1 << 20);
  assert_int_equal(kms_config_dump(&a, &d1), 0);
  assert_int_equal(kms_config_init(&b), 0);
  assert_int_equal(kms_config_apply(&b, (const char *)d1.data, d1.len, err, sizeof(err)), 0);
  assert_int_equal(kms_config_dump(&b, &d2), 0);
  assert_int_equal(d1.len, d2.len);
  assert_memory_equal(d1.data, d2.data, d1.len);
  buf_free(&d1);
  buf_free(&d2);
  kms_config_free(&a);
  kms_config_free(&b);
}

static void test_dev_config(void **state) {
  (void)state;
  struct kms_config c;
  char err[256] = "";
  uint8_t mrtd[48], rtmr[3][48];
  memset(mrtd, 0xa1, 48);
  memset(rtmr, 0xb2, sizeof(rtmr));
  assert_int_equal(kms_config_init_dev(&c, "/d", "/s", mrtd, (const uint8_t(*)[48])rtmr), 0);
  assert_int_equal(kms_config_check(&c, err, sizeof(err)), 0);
  assert_string_equal(c.address, "127.0.0.1");
  assert_int_equal(c.port, 0);
  assert_true(c.tls_ra);
  assert_true(c.dev);
  assert_string_equal(c.root_ca_key, "/d/root-ca.key");
  assert_string_equal(c.mutual_ca_certs, "/d/tmp-ca.cert");
  assert_string_equal(c.simulator_dir, "/s");
  assert_string_equal(c.sim_dir, "/s");
  assert_true(c.apps.allow_simulator);
  assert_false(c.apps.allow_all);
  assert_string_equal(c.apps.mrtd[0], H48("a1"));
  assert_string_equal(c.apps.rtmr2[0], H48("b2"));
  assert_true(c.onboard_enabled);
  assert_true(kms_config_uses_simulator(&c));
  kms_config_free(&c);
}

static void test_bad_input(void **state) {
  (void)state;
  static const struct {
    const char *text;
    const char *msg;
  } cases[] = {
      {"nope = 1\n", "unknown top-level key 'nope'"},
      {"[core]\nnope = 1\n", "unknown key 'nope' in [core]"},
      {"[corex]\na = 1\n", "unknown table [corex]"},
      {"[core.allowed_mr.deeper]\na = 1\n", "unknown table"},
      {"port = \"x\"\n", "port: expected an integer"},
      {"port = 70000\n", "port: expected an integer"},
      {"[tls]\nra_tls = 1\n", "expected a boolean"},
      {"[core.allowed_mr]\nmrtd = \"ab\"\n", "expected an array"},
      {"[core.allowed_mr]\nmrtd = [1]\n", "expected an array"},
      {"[core.allowed_mr]\nmrtd = [\"abcd\"]\n", "96 hex"},
      {"[core.allowed_mr]\nrtmr1 = [\"" H48("zz") "\"]\n", "96 hex"},
      {"[core.allowed_mr]\napp_ids = [\"abc\"]\n", "hex (1..64 bytes)"},
      {"[core.allowed_mr]\napp_ids = [\"\"]\n", "hex (1..64 bytes)"},
      {"[core\n", "line 1"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct kms_config c;
    char err[256] = "";
    assert_int_equal(kms_config_init(&c), 0);
    int r = apply(&c, cases[i].text, err, sizeof(err));
    if (r >= 0 || !strstr(err, cases[i].msg))
      fail_msg("case %zu: r=%d err='%s' want '%s'", i, r, err, cases[i].msg);
    kms_config_free(&c);
  }
}

static void test_check(void **state) {
  (void)state;
  static const struct {
    const char *text;
    const char *msg;
  } cases[] = {
      {"address = \"localhost\"\n", "not an IP address"},
      {"[tls]\nkey = \"\"\n", "[tls] needs key and certs"},
      {"[core]\nk256_key = \"\"\n", "k256_key"},
      {"[core]\ntee = \"sgx\"\n", "tee"},
      {"[core]\ntee = \"sim\"\n", "needs sim_dir"},
      {"[core.quote]\npccs_url = \"ftp://x\"\n", "pccs_url"},
      {"[core.allowed_mr]\nallow_simulator = true\n", "simulator_dir"},
      {"[core.onboard.allowed_mr]\nallow_simulator = true\n", "simulator_dir"},
      {"[core.allowed_mr]\ntcb_statuses = [\"Fine\"]\n", "unknown TCB status 'Fine'"},
      {"[core.onboard.allowed_mr]\ntcb_statuses = [\"Revoked\"]\n", "Revoked"},
      {"[core.allowed_mr]\nout_of_date_grace_days = 100000\n", "grace"},
      {"max_conns = 0\n", "max_conns"},
      {"max_conns_per_source = 0\n", "max_conns_per_source"},
      {"handshake_timeout = 0\n", "handshake_timeout"},
      {"[tls.mutual]\nca_certs = \"\"\nmandatory = true\n", "mandatory needs ca_certs"},
      {"[tls]\nalt_names = [\"a b\"]\n", "alt_names"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct kms_config c;
    char err[256] = "";
    assert_int_equal(kms_config_init(&c), 0);
    assert_int_equal(apply(&c, cases[i].text, err, sizeof(err)), 0);
    int r = kms_config_check(&c, err, sizeof(err));
    if (r != -EINVAL || !strstr(err, cases[i].msg))
      fail_msg("case %zu: r=%d err='%s' want '%s'", i, r, err, cases[i].msg);
    kms_config_free(&c);
  }
}

static mode_t file_mode(const char *dir, const char *name) {
  char p[512];
  struct stat st;
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  assert_int_equal(stat(p, &st), 0);
  return st.st_mode & 07777;
}

static void test_init_dir_and_load(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char sub[256], err[256] = "";
  snprintf(sub, sizeof(sub), "%s/keys", dir);
  struct kms_root_keys k, l;
  assert_int_equal(kms_init_dir(sub, &k, err, sizeof(err)), 0);
  assert_int_equal(file_mode(sub, "root-ca.key"), 0600);
  assert_int_equal(file_mode(sub, "root-k256.key"), 0600);
  assert_int_equal(file_mode(sub, "tmp-ca.key"), 0600);
  assert_int_equal(file_mode(sub, "root-ca.cert"), 0644);
  assert_int_equal(file_mode(sub, "tmp-ca.cert"), 0644);
  assert_int_equal(file_mode(sub, "."), 0700);
  /* Never overwritten. */
  assert_int_equal(kms_init_dir(sub, NULL, err, sizeof(err)), -EEXIST);

  struct kms_config c;
  assert_int_equal(kms_config_init(&c), 0);
  char text[8192];
  snprintf(text, sizeof(text),
           "[core]\nroot_ca_cert = \"%s/root-ca.cert\"\nroot_ca_key = \"%s/root-ca.key\"\n"
           "k256_key = \"%s/root-k256.key\"\ntmp_ca_cert = \"%s/tmp-ca.cert\"\n"
           "tmp_ca_key = \"%s/tmp-ca.key\"\n",
           sub, sub, sub, sub, sub);
  assert_int_equal(apply(&c, text, err, sizeof(err)), 0);
  assert_int_equal(kms_root_keys_present(&c), 5);
  assert_int_equal(kms_root_keys_load(&c, &l, err, sizeof(err)), 0);
  assert_memory_equal(k.ca_scalar, l.ca_scalar, 32);
  assert_memory_equal(k.k256, l.k256, 32);
  assert_memory_equal(k.k256_pub, l.k256_pub, 33);
  assert_int_equal(k.ca_cert_pem.len, l.ca_cert_pem.len);
  assert_memory_equal(k.ca_cert_pem.data, l.ca_cert_pem.data, k.ca_cert_pem.len);
  kms_root_keys_free(&l);

  /* The k256 key as hex text loads too. */
  char p[1024], hx[66];
  for (int i = 0; i < 32; i++)
    snprintf(hx + 2 * i, 3, "%02x", k.k256[i]);
  hx[64] = '\n';
  snprintf(p, sizeof(p), "%s/root-k256.key", sub);
  assert_int_equal(file_write_atomic(p, hx, 65, 0600), 0);
  assert_int_equal(kms_root_keys_load(&c, &l, err, sizeof(err)), 0);
  assert_memory_equal(k.k256, l.k256, 32);
  kms_root_keys_free(&l);

  /* A bad k256 file, then a root key that does not match its certificate. */
  assert_int_equal(file_write_atomic(p, "short", 5, 0600), 0);
  assert_true(kms_root_keys_load(&c, &l, err, sizeof(err)) < 0);
  assert_non_null(strstr(err, "k256"));
  assert_int_equal(file_write_atomic(p, k.k256, 32, 0600), 0);
  char q[1024];
  snprintf(p, sizeof(p), "%s/root-ca.key", sub);
  snprintf(q, sizeof(q), "%s/tmp-ca.key", sub);
  struct buf tk = BUF_INIT(65536);
  tu_read_file(q, &tk);
  assert_int_equal(file_write_atomic(p, tk.data, tk.len, 0600), 0);
  assert_true(kms_root_keys_load(&c, &l, err, sizeof(err)) < 0);
  assert_non_null(strstr(err, "does not match"));
  buf_free(&tk);

  /* store() writes every file with the right modes. */
  char sub2[256];
  snprintf(sub2, sizeof(sub2), "%s/k2", dir);
  kms_config_free(&c);
  assert_int_equal(kms_config_init(&c), 0);
  snprintf(text, sizeof(text),
           "[core]\nroot_ca_cert = \"%s/a.cert\"\nroot_ca_key = \"%s/a.key\"\n"
           "k256_key = \"%s/b.key\"\ntmp_ca_cert = \"%s/c.cert\"\ntmp_ca_key = \"%s/c.key\"\n",
           sub2, sub2, sub2, sub2, sub2);
  assert_int_equal(apply(&c, text, err, sizeof(err)), 0);
  assert_int_equal(kms_root_keys_present(&c), 0);
  assert_int_equal(kms_root_keys_store(&k, &c, err, sizeof(err)), 0);
  assert_int_equal(file_mode(sub2, "a.key"), 0600);
  assert_int_equal(file_mode(sub2, "b.key"), 0600);
  assert_int_equal(file_mode(sub2, "a.cert"), 0644);
  assert_int_equal(kms_root_keys_load(&c, &l, err, sizeof(err)), 0);
  assert_memory_equal(k.ca_scalar, l.ca_scalar, 32);
  kms_root_keys_free(&l);
  kms_config_free(&c);
  kms_root_keys_free(&k);
  tu_rm_rf(dir);
  free(dir);
}

static unsigned crash_at;

static void crash_step(void *userdata, unsigned step) {
  (void)userdata;
  if (step == crash_at)
    raise(SIGKILL);
}

/* Killed after every step of creating the root key files (the step hook): after
 * kms_root_keys_recover there are either no key files (and new ones can be made) or exactly the
 * keys being stored, never some of them. */
static void test_store_crash(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char err[256] = "", text[4096];
  struct kms_root_keys k, l;
  assert_int_equal(kms_root_keys_generate(&k), 0);
  for (unsigned step = 1; step <= 11; step++) {
    struct kms_config c;
    assert_int_equal(kms_config_init(&c), 0);
    snprintf(text, sizeof(text),
             "[core]\nroot_ca_cert = \"%s/s%u/root-ca.cert\"\n"
             "root_ca_key = \"%s/s%u/private/root-ca.key\"\n"
             "k256_key = \"%s/s%u/private/root-k256.key\"\ntmp_ca_cert = \"%s/s%u/tmp-ca.cert\"\n"
             "tmp_ca_key = \"%s/s%u/tmp-ca.key\"\n",
             dir, step, dir, step, dir, step, dir, step, dir, step);
    assert_int_equal(apply(&c, text, err, sizeof(err)), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      crash_at = step;
      (void)kms_root_keys_store_stepped(&k, &c, crash_step, NULL, err, sizeof(err));
      _exit(3);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* never some: none before the commit (step 6), those linked so far after it */
    assert_int_equal(kms_root_keys_present(&c), step <= 6 ? 0 : (int)step - 6);
    assert_int_equal(kms_root_keys_recover(&c, err, sizeof(err)), 0);
    if (step <= 5) {
      assert_int_equal(kms_root_keys_present(&c), 0);
      assert_int_equal(kms_root_keys_store(&k, &c, err, sizeof(err)), 0);
    }
    assert_int_equal(kms_root_keys_present(&c), 5);
    assert_int_equal(kms_root_keys_load(&c, &l, err, sizeof(err)), 0);
    assert_memory_equal(k.ca_scalar, l.ca_scalar, 32);
    assert_memory_equal(k.k256, l.k256, 32);
    kms_root_keys_free(&l);
    /* the staging directory is gone, and storing again replaces nothing */
    char staging[1024];
    snprintf(staging, sizeof(staging), "%s/s%u/private/" KMS_ROOT_KEYS_STAGING, dir, step);
    assert_int_equal(access(staging, F_OK), -1);
    assert_int_equal(kms_root_keys_store(&k, &c, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "not replacing"));
    assert_int_equal(kms_root_keys_recover(&c, err, sizeof(err)), 0);
    kms_config_free(&c);
  }
  kms_root_keys_free(&k);
  tu_rm_rf(dir);
  free(dir);
}

/* Every option, at its default and at a non-default value (quotes, backslashes, UTF-8,
 * newlines in strings; extremes of numbers), dumps and loads back to the same value. */
static void test_dump_every_option(void **state) {
  (void)state;
  tu_conftab_roundtrip(kms_config_table(), sizeof(struct kms_config));
}

/* The kms table holds no secret values (keys are files named by path): nothing whose name
 * says "secret" is left unmarked, and the dump of a configuration shows every value. */
static void test_secrets_not_in_dump(void **state) {
  (void)state;
  assert_int_equal(tu_conftab_check_secret_names(kms_config_table()), 0);
  struct kms_config c;
  char err[256] = "";
  assert_int_equal(kms_config_init(&c), 0);
  assert_int_equal(apply(&c, "[core]\nroot_ca_key = \"/k/root.key\"\n", err, sizeof(err)), 0);
  struct buf d = BUF_INIT(1 << 20);
  assert_int_equal(kms_config_dump(&c, &d), 0);
  assert_int_equal(buf_terminate(&d), 0);
  assert_non_null(strstr((const char *)d.data, "root_ca_key = \"/k/root.key\"\n"));
  assert_null(strstr((const char *)d.data, CONFTAB_SECRET_HIDDEN));
  buf_free(&d);
  kms_config_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_roundtrip), cmocka_unit_test(test_dev_config),
      cmocka_unit_test(test_dump_every_option),  cmocka_unit_test(test_secrets_not_in_dump),
      cmocka_unit_test(test_bad_input),          cmocka_unit_test(test_check),
      cmocka_unit_test(test_init_dir_and_load), cmocka_unit_test(test_store_crash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* teepod.toml: defaults, --dev defaults, every semantic check, URL list completion and the
 * --dump-config round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/sim.h"
#include "base/buf.h"
#include "base/conftab.h"
#include "base/fileio.h"
#include "base/str.h"
#include "teepod_config.h"
#include "testutil.h"
#include "tu_conftab.h"

static int apply(struct teepod_config *c, const char *text, char *err, size_t n) {
  return teepod_config_apply(c, text, strlen(text), err, n);
}

static void test_defaults(void **state) {
  (void)state;
  struct teepod_config c;
  char err[256] = "";
  assert_int_equal(teepod_config_init(&c), 0);
  assert_string_equal(c.image_path, "/var/lib/teepod/images");
  assert_string_equal(c.run_path, "/var/lib/teepod/vm");
  assert_string_equal(c.qemu_path, "");
  assert_string_equal(c.address, "127.0.0.1");
  assert_int_equal(c.port, 8080);
  assert_string_equal(c.unix_socket, "");
  assert_string_equal(c.platform, "auto");
  assert_string_equal(c.accel, "auto");
  assert_int_equal(c.max_conns, 256);
  assert_false(c.auth_enabled);
  assert_int_equal(c.cid_start, 1000);
  assert_int_equal(c.cid_pool_size, 1000);
  assert_int_equal(c.max_disk_size, 100);
  assert_int_equal(c.shutdown_timeout, 60);
  assert_false(c.pm_enabled);
  assert_string_equal(c.pm_address, "127.0.0.1");
  assert_int_equal(strv_length(c.pm_range), 2);
  assert_true(c.ar_enabled);
  assert_int_equal(c.log_max_bytes, 10 * 1024 * 1024);
  assert_string_equal(c.base_domain, "localhost");
  assert_int_equal(c.gw_port, 443);
  assert_int_equal(c.tappd_port, 8090);
  assert_int_equal(c.agent_port, 0);
  assert_int_equal(strv_length(c.kms_urls), 0);
  assert_int_equal(strv_length(c.gateway_urls), 0);
  /* the defaults pass the check, which derives the ranges and the agent port */
  assert_int_equal(teepod_config_check(&c, err, sizeof(err)), 0);
  assert_int_equal(c.n_ranges, 2);
  assert_false(c.ranges[0].udp);
  assert_int_equal(c.ranges[0].from, 1024);
  assert_int_equal(c.ranges[0].to, 65535);
  assert_true(c.ranges[1].udp);
  assert_int_equal(c.agent_port, 8090);
  /* a second check gives the same result (the derived fields are recomputed, not appended) */
  assert_int_equal(teepod_config_check(&c, err, sizeof(err)), 0);
  assert_int_equal(c.n_ranges, 2);
  teepod_config_free(&c);
}

static void test_dev_defaults(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  struct teepod_config c;
  char err[256] = "";
  char *old = getenv(TEE_ENV_SIM_DIR) ? strdup(getenv(TEE_ENV_SIM_DIR)) : NULL;
  unsetenv(TEE_ENV_SIM_DIR);
  assert_int_equal(teepod_config_init_dev(&c, dir, err, sizeof(err)), 0);
  _cleanup_free_ char *images = str_printf("%s/images", dir);
  _cleanup_free_ char *vms = str_printf("%s/vm", dir);
  _cleanup_free_ char *sock = str_printf("%s/teepod.sock", dir);
  _cleanup_free_ char *sim = str_printf("%s/sim", dir);
  assert_string_equal(c.image_path, images);
  assert_string_equal(c.run_path, vms);
  assert_string_equal(c.unix_socket, sock);
  assert_string_equal(c.sim_dir, sim);
  assert_string_equal(c.platform, "sim");
  assert_string_equal(c.address, "127.0.0.1");
  assert_int_equal(c.port, 0);
  assert_int_equal(teepod_config_check(&c, err, sizeof(err)), 0);
  teepod_config_free(&c);

  /* the simulator from the environment wins over DIR/sim */
  setenv(TEE_ENV_SIM_DIR, "/opt/sim-platform", 1);
  assert_int_equal(teepod_config_init_dev(&c, dir, err, sizeof(err)), 0);
  assert_string_equal(c.sim_dir, "/opt/sim-platform");
  teepod_config_free(&c);
  unsetenv(TEE_ENV_SIM_DIR);

  /* DIR/teepod.toml is applied on top */
  _cleanup_free_ char *own = str_printf("%s/teepod.toml", dir);
  const char *t = "max_conns = 7\n[cvm]\ncid_start = 5000\n";
  assert_int_equal(file_write_atomic(own, t, strlen(t), 0600), 0);
  assert_int_equal(teepod_config_init_dev(&c, dir, err, sizeof(err)), 0);
  assert_int_equal(c.max_conns, 7);
  assert_int_equal(c.cid_start, 5000);
  assert_string_equal(c.platform, "sim");
  teepod_config_free(&c);
  /* and a broken one fails the whole thing */
  t = "max_connz = 7\n";
  assert_int_equal(file_write_atomic(own, t, strlen(t), 0600), 0);
  assert_int_equal(teepod_config_init_dev(&c, dir, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "max_connz"));

  if (old) {
    setenv(TEE_ENV_SIM_DIR, old, 1);
    free(old);
  }
  tu_rm_rf(dir);
  free(dir);
}

/* Each bad value is refused by the check with a message naming what is wrong. */
static void test_refusals(void **state) {
  (void)state;
  static const struct {
    const char *toml, *needle;
  } bad[] = {
      {"image_path = \"\"", "image_path"},
      {"run_path = \"\"", "run_path"},
      {"address = \"\"\nunix_socket = \"\"", "listener"},
      {"address = \"localhost\"", "address"},
      {"address = \"1.2.3.4.5\"", "address"},
      {"address = \"1.2.3\"", "address"},
      {"address = \":::::::::\"", "address"},
      {"platform = \"sgx\"", "platform"},
      {"platform = \"\"", "platform"},
      {"platform = \"TDX\"", "platform"},
      {"accel = \"hvf\"", "accel"},
      {"accel = \"\"", "accel"},
      {"platform = \"sim\"\nsim_dir = \"\"", "sim_dir"},
      {"max_conns = 0", "max_conns"},
      {"request_timeout = 0", "request_timeout"},
      {"[auth]\nenabled = true", "token_file"},
      {"[auth]\nenabled = true\ntoken_file = \"\"", "token_file"},
      {"[cvm]\ncid_start = 0", "cid_start"},
      {"[cvm]\ncid_start = 2", "cid_start"},
      {"[cvm]\ncid_pool_size = 0", "cid_pool_size"},
      {"[cvm]\ncid_start = 4294967000\ncid_pool_size = 1000", "32 bits"},
      {"[cvm]\nmax_disk_size = 0", "max_disk_size"},
      {"[cvm]\nmax_disk_size = 65537", "max_disk_size"},
      {"[cvm]\nshutdown_timeout = 0", "shutdown_timeout"},
      {"[cvm]\nqmp_timeout = 0", "qmp_timeout"},
      {"[cvm]\nmax_vms = 0", "max_vms"},
      {"[cvm]\nkms_url = \"kms.example:8000\"", "kms_urls"},
      {"[cvm]\nkms_urls = [\"https://a.example\", \"ftp://b.example\"]", "ftp://b.example"},
      {"[cvm]\ntproxy_url = \"gw.example\"", "gateway_urls"},
      {"[cvm]\ngateway_urls = [\"httpx://gw\"]", "gateway_urls"},
      {"[cvm]\npccs_url = \"pccs.example\"", "pccs_url"},
      {"[cvm.port_mapping]\naddress = \"\"", "address"},
      {"[cvm.port_mapping]\naddress = \"any\"", "address"},
      /* QEMU's hostfwd takes IPv4 addresses only */
      {"[cvm.port_mapping]\naddress = \"::1\"", "IPv4"},
      {"[cvm.port_mapping]\nrange = [\"udp:x\"]", "udp:x"},
      {"[cvm.port_mapping]\nrange = [\"sctp:1-2\"]", "sctp:1-2"},
      {"[cvm.port_mapping]\nrange = [\"tcp:2-1\"]", "tcp:2-1"},
      {"[cvm.port_mapping]\nrange = [\"tcp:0-10\"]", "tcp:0-10"},
      {"[cvm.port_mapping]\nrange = [\"tcp:1-65536\"]", "tcp:1-65536"},
      {"[cvm.port_mapping]\nrange = [\"tcp:1-\"]", "tcp:1-"},
      {"[cvm.port_mapping]\nrange = [\"tcp:-2\"]", "tcp:-2"},
      {"[cvm.port_mapping]\nrange = [\"tcp:1\"]", "tcp:1"},
      {"[cvm.port_mapping]\nrange = [\"tcp:1-2x\"]", "tcp:1-2x"},
      {"[cvm.port_mapping]\nrange = [\"tcp:1-2 \"]", "tcp:1-2 "},
      {"[cvm.port_mapping]\nrange = [\"tcp: 1-2\"]", "tcp: 1-2"},
      {"[cvm.port_mapping]\nrange = [\"tcp:+1-2\"]", "tcp:+1-2"},
      {"[cvm.port_mapping]\nrange = [\"tcp:1-+2\"]", "tcp:1-+2"},
      {"[cvm.port_mapping]\nrange = [\"TCP:1-2\"]", "TCP:1-2"},
      {"[cvm.port_mapping]\nrange = [\"tcp:1-2\", \"\"]", "range"},
      {"[cvm.port_mapping]\nrange = [\"tcp:1-2\", \"tcp:3-4\", \"tcp:5-6\", \"tcp:7-8\", "
       "\"tcp:9-10\", \"tcp:11-12\", \"tcp:13-14\", \"tcp:15-16\", \"tcp:17-18\"]",
       "at most 8"},
      {"[cvm.auto_restart]\ninterval = 0", "interval"},
      {"[cvm.auto_restart]\ninterval = 10\nmax_backoff = 9", "max_backoff"},
      {"[cvm.log]\nmax_bytes = 4095", "max_bytes"},
      {"[cvm.log]\nmax_backups = 101", "max_backups"},
      {"[gateway]\nbase_domain = \"\"", "base_domain"},
      {"[gateway]\nbase_domain = \"a b\"", "base_domain"},
      {"[gateway]\nbase_domain = \"x/y\"", "base_domain"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct teepod_config c;
    char err[256] = "";
    assert_int_equal(teepod_config_init(&c), 0);
    int r = apply(&c, bad[i].toml, err, sizeof(err));
    if (r != 0)
      fail_msg("case %zu (%s): does not load: %s", i, bad[i].toml, err);
    r = teepod_config_check(&c, err, sizeof(err));
    if (r != -EINVAL || !strstr(err, bad[i].needle))
      fail_msg("case %zu (%s): r=%d err=%s", i, bad[i].toml, r, err);
    teepod_config_free(&c);
  }
}

/* Values at the edges of what the check takes. */
static void test_accepted(void **state) {
  (void)state;
  static const char *const good[] = {
      "address = \"\"\nunix_socket = \"/run/teepod.sock\"",
      "address = \"0.0.0.0\"",
      "address = \"::\"",
      "address = \"fe80::1\"",
      "platform = \"tdx\"\naccel = \"kvm\"",
      "platform = \"sim\"\nsim_dir = \"/s\"\naccel = \"tcg\"",
      "[auth]\nenabled = true\ntoken_file = \"/etc/teepod/tokens\"",
      "[auth]\nenabled = false\ntoken_file = \"\"",
      "[cvm]\ncid_start = 3\ncid_pool_size = 1",
      "[cvm]\ncid_start = 4294967000\ncid_pool_size = 295",
      "[cvm]\nmax_disk_size = 65536",
      "[cvm]\nkms_urls = [\"http://kms:8000\", \"https://kms2.example\"]",
      "[cvm]\npccs_url = \"https://pccs.example/sgx/certification/v4/\"",
      "[cvm.port_mapping]\naddress = \"0.0.0.0\"\nrange = []",
      "[cvm.port_mapping]\nrange = [\"tcp:1-2\", \"udp:65535-65535\", \"tcp:3-4\", \"tcp:5-6\", "
      "\"tcp:7-8\", \"tcp:9-10\", \"tcp:11-12\", \"tcp:13-14\"]",
      "[cvm.auto_restart]\ninterval = 10\nmax_backoff = 10",
      "[cvm.log]\nmax_bytes = 4096\nmax_backups = 100",
      "[gateway]\nbase_domain = \"apps.example-1.com\"",
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    struct teepod_config c;
    char err[256] = "";
    assert_int_equal(teepod_config_init(&c), 0);
    if (apply(&c, good[i], err, sizeof(err)) != 0 || teepod_config_check(&c, err, sizeof(err)) != 0)
      fail_msg("case %zu (%s): %s", i, good[i], err);
    teepod_config_free(&c);
  }
}

static void test_ranges_parsed(void **state) {
  (void)state;
  struct teepod_config c;
  char err[256] = "";
  assert_int_equal(teepod_config_init(&c), 0);
  assert_int_equal(apply(&c, "[cvm.port_mapping]\nrange = [\"tcp:1-2\", \"udp:8000-8000\", "
                             "\"udp:10000-20000\"]\n", err, sizeof(err)), 0);
  assert_int_equal(teepod_config_check(&c, err, sizeof(err)), 0);
  assert_int_equal(c.n_ranges, 3);
  assert_false(c.ranges[0].udp);
  assert_int_equal(c.ranges[0].from, 1);
  assert_int_equal(c.ranges[0].to, 2);
  assert_true(c.ranges[1].udp);
  assert_int_equal(c.ranges[1].from, 8000);
  assert_int_equal(c.ranges[1].to, 8000);
  assert_true(c.ranges[2].udp);
  assert_int_equal(c.ranges[2].from, 10000);
  assert_int_equal(c.ranges[2].to, 20000);
  /* an empty list: no ranges, so no port can be mapped */
  assert_int_equal(apply(&c, "[cvm.port_mapping]\nrange = []\n", err, sizeof(err)), 0);
  assert_int_equal(teepod_config_check(&c, err, sizeof(err)), 0);
  assert_int_equal(c.n_ranges, 0);
  teepod_config_free(&c);
}

/* Seed configurations: kms_url / tproxy_url complete the lists, tappd_port the agent port. */
static void test_completion(void **state) {
  (void)state;
  struct teepod_config c;
  char err[256] = "";
  assert_int_equal(teepod_config_init(&c), 0);
  assert_int_equal(apply(&c, "[cvm]\nkms_url = \"https://kms.example:8000\"\n"
                             "tproxy_url = \"https://gw.example:8010\"\n"
                             "[gateway]\ntappd_port = 8091\n", err, sizeof(err)), 0);
  assert_int_equal(teepod_config_check(&c, err, sizeof(err)), 0);
  assert_int_equal(strv_length(c.kms_urls), 1);
  assert_string_equal(c.kms_urls[0], "https://kms.example:8000");
  assert_int_equal(strv_length(c.gateway_urls), 1);
  assert_string_equal(c.gateway_urls[0], "https://gw.example:8010");
  assert_int_equal(c.agent_port, 8091);
  /* checked again: nothing added twice */
  assert_int_equal(teepod_config_check(&c, err, sizeof(err)), 0);
  assert_int_equal(strv_length(c.kms_urls), 1);
  teepod_config_free(&c);

  /* a list that is set wins over the single URL; agent_port wins over tappd_port */
  assert_int_equal(teepod_config_init(&c), 0);
  assert_int_equal(apply(&c, "[cvm]\nkms_url = \"https://old.example\"\n"
                             "kms_urls = [\"https://a.example\", \"https://b.example\"]\n"
                             "tproxy_url = \"https://old-gw.example\"\n"
                             "gateway_urls = [\"https://gw.example\"]\n"
                             "[gateway]\ntappd_port = 8091\nagent_port = 8092\n", err, sizeof(err)),
                   0);
  assert_int_equal(teepod_config_check(&c, err, sizeof(err)), 0);
  assert_int_equal(strv_length(c.kms_urls), 2);
  assert_string_equal(c.kms_urls[0], "https://a.example");
  assert_string_equal(c.kms_urls[1], "https://b.example");
  assert_int_equal(strv_length(c.gateway_urls), 1);
  assert_string_equal(c.gateway_urls[0], "https://gw.example");
  assert_int_equal(c.agent_port, 8092);
  teepod_config_free(&c);

  /* nothing set: the lists stay empty */
  assert_int_equal(teepod_config_init(&c), 0);
  assert_int_equal(teepod_config_check(&c, err, sizeof(err)), 0);
  assert_int_equal(strv_length(c.kms_urls), 0);
  assert_int_equal(strv_length(c.gateway_urls), 0);
  teepod_config_free(&c);
}

static void test_unknown_keys(void **state) {
  (void)state;
  static const char *const bad[] = {
      "imagepath = \"/x\"\n",
      "[cvm]\nkms_urlz = []\n",
      "[cvm.port_mappings]\nenabled = true\n",
      "[cvm.port_mapping]\nranges = []\n",
      "[gateway]\nagent = 1\n",
      "[nosuch]\nx = 1\n",
      "[cvm]\ncid_start = \"1000\"\n", /* wrong type */
      "port = 70000\n",                /* out of range for a port */
      "[cvm]\ncid_start = -1\n",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct teepod_config c;
    char err[256] = "";
    assert_int_equal(teepod_config_init(&c), 0);
    if (apply(&c, bad[i], err, sizeof(err)) != -EINVAL || !*err)
      fail_msg("case %zu (%s) accepted", i, bad[i]);
    teepod_config_free(&c);
  }
}

/* A dump of a changed configuration loads into fresh defaults and gives the same dump. */
static void test_dump_roundtrip(void **state) {
  (void)state;
  struct teepod_config a, b;
  char err[256] = "";
  assert_int_equal(teepod_config_init(&a), 0);
  const char *t = "image_path = \"/srv/images\"\nport = 9080\nplatform = \"sim\"\n"
                  "sim_dir = \"/srv/sim\"\naccel = \"tcg\"\n"
                  "[auth]\nenabled = true\ntoken_file = \"/etc/teepod/tokens\"\n"
                  "[cvm]\nkms_urls = [\"https://kms.example:8000\"]\ncid_start = 3000\n"
                  "[cvm.port_mapping]\nenabled = true\nrange = [\"tcp:2000-3000\"]\n"
                  "[cvm.log]\nmax_bytes = 65536\n"
                  "[gateway]\nbase_domain = \"apps.example.com\"\nagent_port = 8093\n";
  assert_int_equal(apply(&a, t, err, sizeof(err)), 0);
  assert_int_equal(teepod_config_check(&a, err, sizeof(err)), 0);
  struct buf d1 = BUF_INIT(1 << 20), d2 = BUF_INIT(1 << 20);
  assert_int_equal(teepod_config_dump(&a, &d1), 0);
  assert_int_equal(teepod_config_init(&b), 0);
  assert_int_equal(teepod_config_apply(&b, (const char *)d1.data, d1.len, err, sizeof(err)), 0);
  assert_int_equal(teepod_config_check(&b, err, sizeof(err)), 0);
  assert_int_equal(teepod_config_dump(&b, &d2), 0);
  assert_int_equal(d1.len, d2.len);
  assert_memory_equal(d1.data, d2.data, d1.len);
  const struct conftab *tab = teepod_config_table();
  for (size_t i = 0; i < tab->n_opts; i++)
    if (!tu_conftab_opt_equal(&tab->opts[i], &a, &b))
      fail_msg("option %s.%s differs after the round trip", tab->opts[i].section,
               tab->opts[i].key);
  assert_string_equal(b.image_path, "/srv/images");
  assert_int_equal(b.port, 9080);
  assert_true(b.auth_enabled);
  assert_int_equal(b.cid_start, 3000);
  assert_int_equal(b.n_ranges, 1);
  assert_int_equal(b.ranges[0].from, 2000);
  assert_int_equal(b.agent_port, 8093);
  buf_free(&d1);
  buf_free(&d2);
  teepod_config_free(&a);
  teepod_config_free(&b);
}

/* Every option at its default and at a non-default value survives the dump. */
static void test_dump_every_option(void **state) {
  (void)state;
  tu_conftab_roundtrip(teepod_config_table(), sizeof(struct teepod_config));
  /* no option holds a secret: [auth] token_file is a path, the tokens stay in that file */
  const struct conftab *tab = teepod_config_table();
  for (size_t i = 0; i < tab->n_opts; i++)
    assert_false(tab->opts[i].secret);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),      cmocka_unit_test(test_dev_defaults),
      cmocka_unit_test(test_refusals),      cmocka_unit_test(test_accepted),
      cmocka_unit_test(test_ranges_parsed), cmocka_unit_test(test_completion),
      cmocka_unit_test(test_unknown_keys),  cmocka_unit_test(test_dump_roundtrip),
      cmocka_unit_test(test_dump_every_option),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tproxy.toml: defaults (upstream dstack), checks, --dump-config round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/conftab.h"
#include "base/str.h"
#include "testutil.h"
#include "tu_conftab.h"
#include "tproxy_config.h"
#include "tproxy_wg.h"

#define PRIV "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="

static int apply(struct tproxy_config *c, const char *text, char *err, size_t n) {
  return tproxy_config_apply(c, text, strlen(text), err, n);
}

static void test_defaults(void **state) {
  (void)state;
  struct tproxy_config c;
  char err[256] = "";
  assert_int_equal(tproxy_config_init(&c), 0);
  assert_int_equal(c.port, 8010);
  assert_int_equal(c.max_conns_per_source, 128);
  assert_int_equal(c.handshake_timeout_s, 5);
  assert_string_equal(c.certbot_workdir, "/etc/certbot");
  assert_string_equal(c.wg_ip, "10.0.0.1");
  assert_int_equal(c.wg_listen_port, 51820);
  assert_string_equal(c.wg_client_ip_range, "10.0.0.0/24");
  assert_string_equal(c.wg_config_path, "/etc/wireguard/wg0.conf");
  assert_string_equal(c.wg_interface, "wg0");
  assert_string_equal(c.wg_endpoint, "10.0.2.2:51820");
  assert_string_equal(c.base_domain, "app.localhost");
  assert_string_equal(c.listen_addr, "0.0.0.0");
  assert_int_equal(c.listen_port, 8443);
  assert_int_equal(c.tappd_port, 8090);
  assert_string_equal(c.simulator_dir, ""); /* simulated quotes refused by default */
  /* The defaults lack the server's private key. */
  assert_int_equal(tproxy_config_check(&c, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "private_key"));
  assert_int_equal(apply(&c, "[core.wg]\nprivate_key = \"" PRIV "\"\n", err, sizeof(err)), 0);
  assert_int_equal(tproxy_config_check(&c, err, sizeof(err)), 0);
  /* public_key was derived */
  char pub[WG_KEY_B64_LEN + 1];
  assert_int_equal(wg_key_public_from_private_b64(PRIV, pub), 0);
  assert_string_equal(c.wg_public_key, pub);
  tproxy_config_free(&c);
}

static void test_roundtrip(void **state) {
  (void)state;
  struct tproxy_config a, b;
  char err[256] = "";
  assert_int_equal(tproxy_config_init(&a), 0);
  const char *t = "port = 9010\n"
                  "[core.wg]\nprivate_key = \"" PRIV "\"\nip = \"10.8.0.1\"\n"
                  "client_ip_range = \"10.8.0.0/16\"\nendpoint = \"gw.example.com:51821\"\n"
                  "mode = \"uapi\"\nstale_timeout = 600\n"
                  "[core.proxy]\nbase_domain = \".apps.example.com\"\nlisten_port = 443\n"
                  "dns_servers = \"127.0.0.1:5353\"\nworkers = 4\n"
                  "[core.quote]\ntcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\n";
  assert_int_equal(apply(&a, t, err, sizeof(err)), 0);
  assert_int_equal(tproxy_config_check(&a, err, sizeof(err)), 0);
  /* dev mode's file: with the secret, into a secret buffer */
  struct buf d1 = BUF_INIT_SECRET(1 << 20), d2 = BUF_INIT_SECRET(1 << 20);
  struct buf plain = BUF_INIT(1 << 20);
  assert_int_equal(tproxy_config_dump_secrets(&a, &plain), -EINVAL);
  buf_free(&plain);
  assert_int_equal(tproxy_config_dump_secrets(&a, &d1), 0);
  assert_int_equal(tproxy_config_init(&b), 0);
  assert_int_equal(tproxy_config_apply(&b, (const char *)d1.data, d1.len, err, sizeof(err)), 0);
  assert_int_equal(tproxy_config_check(&b, err, sizeof(err)), 0);
  assert_int_equal(tproxy_config_dump_secrets(&b, &d2), 0);
  assert_int_equal(d1.len, d2.len);
  assert_memory_equal(d1.data, d2.data, d1.len);
  assert_int_equal(b.port, 9010);
  assert_string_equal(b.wg_mode, "uapi");
  assert_int_equal(b.workers, 4);
  assert_string_equal(b.wg_private_key, PRIV);
  /* for display the private key is hidden, everything else shown */
  struct buf d3 = BUF_INIT(1 << 20);
  assert_int_equal(tproxy_config_dump(&b, &d3), 0);
  assert_int_equal(buf_terminate(&d3), 0);
  assert_null(strstr((char *)d3.data, PRIV));
  assert_non_null(strstr((char *)d3.data, "\n# private_key = " CONFTAB_SECRET_HIDDEN "\n"));
  assert_non_null(strstr((char *)d3.data, "workers = 4"));
  buf_free(&d3);
  buf_free(&d1);
  buf_free(&d2);
  tproxy_config_free(&a);
  tproxy_config_free(&b);
}

/* Each bad value is refused with a message naming the key. */
static void test_refusals(void **state) {
  (void)state;
  static const struct {
    const char *toml, *needle;
  } bad[] = {
      {"address = \"localhost\"", "address"},
      {"[core.wg]\nip = \"10.0.0.256\"", "ip"},
      {"[core.wg]\nclient_ip_range = \"10.0.0.0/31\"", "client_ip_range"},
      {"[core.wg]\nclient_ip_range = \"10.0.0.0\"", "client_ip_range"},
      {"[core.wg]\nendpoint = \"10.0.2.2\"", "endpoint"},
      {"[core.wg]\nendpoint = \"10.0.2.2:0\"", "endpoint"},
      {"[core.wg]\nmode = \"kernel\"", "mode"},
      {"[core.wg]\ninterface = \"wg0 ; rm -rf\"", "interface"},
      {"[core.wg]\ninterface = \"a-very-long-interface\"", "interface"},
      {"[core.wg]\nprivate_key = \"short\"", "private_key"},
      {"[core.wg]\npublic_key = \"aGVsbG8=\"", "public_key"},
      {"[core.wg]\npoll_interval = 0", "poll_interval"},
      {"[core.proxy]\nbase_domain = \"bad..domain\"", "base_domain"},
      {"[core.proxy]\nbase_domain = \"\"", "base_domain"},
      {"[core.proxy]\nlisten_addr = \"any\"", "listen_addr"},
      {"[core.proxy]\nconnect_timeout = 0", "timeouts"},
      {"[core.proxy]\nmax_conns = 0", "max_conns"},
      {"max_conns_per_source = 0", "max_conns_per_source"},
      {"handshake_timeout = 0", "handshake_timeout"},
      {"[core.proxy]\nworkers = 1000", "workers"},
      {"[core.proxy]\ndns_min_ttl = 100\ndns_max_ttl = 10", "dns_min_ttl"},
      {"[core.quote]\ntcb_statuses = [\"Revoked\"]", "Revoked"},
      {"[core.quote]\ntcb_statuses = [\"Fine\"]", "Fine"},
      {"[core.quote]\npccs_url = \"ftp://x\"", "pccs_url"},
      {"[tls.mutual]\nca_certs = \"\"", "ca_certs"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct tproxy_config c;
    char err[256] = "";
    assert_int_equal(tproxy_config_init(&c), 0);
    assert_int_equal(apply(&c, "[core.wg]\nprivate_key = \"" PRIV "\"\n", err, sizeof(err)), 0);
    assert_int_equal(apply(&c, bad[i].toml, err, sizeof(err)), 0);
    int r = tproxy_config_check(&c, err, sizeof(err));
    if (r != -EINVAL || !strstr(err, bad[i].needle))
      fail_msg("case %zu (%s): r=%d err=%s", i, bad[i].toml, r, err);
    tproxy_config_free(&c);
  }
  /* a public key that is not the private key's */
  struct tproxy_config c;
  char err[256] = "";
  assert_int_equal(tproxy_config_init(&c), 0);
  assert_int_equal(apply(&c,
                         "[core.wg]\nprivate_key = \"" PRIV "\"\n"
                         "public_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n",
                         err, sizeof(err)),
                   0);
  assert_int_equal(tproxy_config_check(&c, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "does not belong"));
  tproxy_config_free(&c);
  /* unknown keys and tables are parse errors */
  assert_int_equal(tproxy_config_init(&c), 0);
  assert_int_equal(apply(&c, "[core.wg]\nprivat_key = \"x\"\n", err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "privat_key"));
  assert_int_equal(apply(&c, "[core.proxyy]\n", err, sizeof(err)), -EINVAL);
  assert_int_equal(apply(&c, "[core.proxy]\nlisten_port = 70000\n", err, sizeof(err)), -EINVAL);
  tproxy_config_free(&c);
}

/* mode = "none" runs without a key. */
static void test_mode_none(void **state) {
  (void)state;
  struct tproxy_config c;
  char err[256] = "";
  assert_int_equal(tproxy_config_init(&c), 0);
  assert_int_equal(apply(&c, "[core.wg]\nmode = \"none\"\n", err, sizeof(err)), 0);
  assert_int_equal(tproxy_config_check(&c, err, sizeof(err)), 0);
  tproxy_config_free(&c);
}

/* Every option, at its default and at a non-default value, dumps and loads back; the secret
 * comes back as its default (hidden) or as itself (with secrets). */
static void test_dump_every_option(void **state) {
  (void)state;
  tu_conftab_roundtrip(tproxy_config_table(), sizeof(struct tproxy_config));
  /* [core.wg] private_key is the one secret */
  assert_int_equal(tu_conftab_check_secret_names(tproxy_config_table()), 1);
}

/* --dump-config of a configuration with the key: the key is not in it, the text still loads
 * (private_key empty again, public_key kept), and with mode "none" it even passes the check. */
static void test_secret_not_in_dump(void **state) {
  (void)state;
  struct tproxy_config a, b;
  char err[256] = "";
  assert_int_equal(tproxy_config_init(&a), 0);
  assert_int_equal(apply(&a, "[core.wg]\nprivate_key = \"" PRIV "\"\n", err, sizeof(err)), 0);
  assert_int_equal(tproxy_config_check(&a, err, sizeof(err)), 0);
  struct buf d = BUF_INIT(1 << 20);
  assert_int_equal(tproxy_config_dump(&a, &d), 0);
  assert_int_equal(buf_terminate(&d), 0);
  assert_null(strstr((const char *)d.data, PRIV));
  assert_null(strstr((const char *)d.data, "yAnz5TF")); /* not even a part of it */
  assert_int_equal(tproxy_config_init(&b), 0);
  assert_int_equal(tproxy_config_apply(&b, (const char *)d.data, d.len, err, sizeof(err)), 0);
  assert_string_equal(b.wg_private_key, "");
  assert_string_equal(b.wg_public_key, a.wg_public_key);
  assert_int_equal(tproxy_config_check(&b, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "private_key"));
  assert_int_equal(apply(&b, "[core.wg]\nmode = \"none\"\n", err, sizeof(err)), 0);
  assert_int_equal(tproxy_config_check(&b, err, sizeof(err)), 0);
  buf_free(&d);
  tproxy_config_free(&a);
  tproxy_config_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_dump_every_option),
      cmocka_unit_test(test_secret_not_in_dump),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_mode_none),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

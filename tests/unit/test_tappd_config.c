/* tappd.toml (defaults, parsing, checks, --dump-config round trip) and appkeys.json shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tappd_appkeys.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/str.h"
#include "tappd_config.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "testutil.h"
#include "tu_conftab.h"

static int apply(struct tappd_config *c, const char *text, char *err) {
  return tappd_config_apply(c, text, strlen(text), err, 256);
}

static void test_defaults(void **state) {
  (void)state;
  struct tappd_config c;
  char err[256] = "";
  assert_int_equal(tappd_config_init(&c), 0);
  assert_string_equal(c.internal.address, "unix:/var/run/tappd.sock");
  assert_string_equal(c.dstack.address, "unix:/var/run/dstack.sock");
  assert_string_equal(c.external.address, "0.0.0.0");
  assert_int_equal(c.external.port, 8090);
  assert_int_equal(c.external_https.port, 8043);
  assert_string_equal(c.cert_file, "/etc/tappd/app-ca.cert");
  assert_string_equal(c.key_file, "/etc/tappd/app-ca.key");
  assert_string_equal(c.keys_file, "/dstack/.host-shared/.appkeys.json");
  assert_string_equal(c.docker_socket, "/var/run/docker.sock");
  assert_int_equal(c.workers, 8);
  assert_int_equal(c.max_body, 10 * 1024 * 1024);
  assert_int_equal(c.max_conns_per_source, 128);
  assert_int_equal(c.handshake_timeout, 5);
  assert_int_equal(tappd_config_tribool(c.public_logs), -1);
  assert_string_equal(c.data_disks[0], "/");
  assert_null(c.data_disks[1]);
  assert_int_equal(tappd_config_check(&c, err, sizeof(err)), 0);
  mode_t m;
  assert_int_equal(tappd_listen_mode(&c.internal, &m), 0);
  assert_int_equal(m, 0666);
  assert_string_equal(tappd_listen_unix_path(&c.internal), "/var/run/tappd.sock");
  assert_null(tappd_listen_unix_path(&c.external));
  tappd_config_free(&c);

  assert_int_equal(tappd_config_init_dev(&c, "/tmp/devdir", NULL, 0), 0);
  assert_string_equal(c.internal.address, "unix:/tmp/devdir/tappd.sock");
  assert_string_equal(c.dstack.address, "unix:/tmp/devdir/dstack.sock");
  assert_string_equal(c.external.address, "127.0.0.1");
  assert_int_equal(c.external.port, 0);
  assert_string_equal(c.tee, "sim");
  assert_string_equal(c.sim_dir, "/tmp/devdir/sim");
  assert_string_equal(c.keys_file, "/tmp/devdir/appkeys.json");
  assert_int_equal(tappd_config_check(&c, err, sizeof(err)), 0);
  tappd_config_free(&c);
  /* TDX played by the host over the host channel: by name only, no sim_dir */
  assert_int_equal(tappd_config_init(&c), 0);
  assert_int_equal(conftab_set_str(&c.tee, "hostch"), 0);
  assert_int_equal(tappd_config_check(&c, err, sizeof(err)), 0);
  tappd_config_free(&c);
}

static void test_parse(void **state) {
  (void)state;
  struct tappd_config c;
  char err[256] = "";
  assert_int_equal(tappd_config_init(&c), 0);
  assert_int_equal(apply(&c,
                         "[default]\nworkers = 2\nlog_level = \"debug\"\nmax_body = \"1MiB\"\n"
                         "[default.core]\ncert_file = \"/x/ca.cert\"\npublic_logs = true\n"
                         "public_tcbinfo = false\ndata_disks = [\"/\", \"/data\"]\n"
                         "[internal]\naddress = \"unix:/run/t.sock\"\nmode = \"0600\"\n"
                         "[external]\naddress = \"::1\"\nport = 9000\n"
                         "[external-https.tls]\nkey = \"/k\"\ncerts = \"/c\"\n",
                         err),
                   0);
  assert_int_equal(c.workers, 2);
  assert_string_equal(c.log_level, "debug");
  assert_int_equal(c.max_body, 1024 * 1024);
  assert_string_equal(c.cert_file, "/x/ca.cert");
  assert_int_equal(tappd_config_tribool(c.public_logs), 1);
  assert_int_equal(tappd_config_tribool(c.public_tcbinfo), 0);
  assert_int_equal(tappd_config_tribool(c.public_sysinfo), -1);
  assert_string_equal(c.data_disks[1], "/data");
  assert_string_equal(c.internal.address, "unix:/run/t.sock");
  assert_string_equal(c.external.address, "::1");
  assert_int_equal(c.external.port, 9000);
  assert_string_equal(c.tls_key, "/k");
  assert_int_equal(tappd_config_check(&c, err, sizeof(err)), 0);

  /* --dump-config reads back to the same configuration. */
  struct buf d1 = BUF_INIT(1 << 20), d2 = BUF_INIT(1 << 20);
  assert_int_equal(tappd_config_dump(&c, &d1), 0);
  struct tappd_config c2;
  assert_int_equal(tappd_config_init(&c2), 0);
  assert_int_equal(tappd_config_apply(&c2, (const char *)d1.data, d1.len, err, sizeof(err)), 0);
  assert_int_equal(tappd_config_dump(&c2, &d2), 0);
  assert_int_equal(d1.len, d2.len);
  assert_memory_equal(d1.data, d2.data, d1.len);
  assert_non_null(strstr((const char *)d1.data, "[external-https.tls]\n"));
  assert_non_null(strstr((const char *)d1.data, "# public_sysinfo: unset"));
  buf_free(&d1);
  buf_free(&d2);
  tappd_config_free(&c2);
  tappd_config_free(&c);
}

static void test_parse_errors(void **state) {
  (void)state;
  static const char *const bad[] = {
      "[default]\nworkerz = 1\n",               /* unknown key */
      "[nosuch]\nx = 1\n",                      /* unknown table */
      "toplevel = 1\n",                         /* keys live in tables */
      "[default.core.deeper]\nx = 1\n",         /* unknown sub-table */
      "[default]\nworkers = \"8\"\n",           /* wrong type */
      "[default]\nworkers = -1\n",              /* out of range */
      "[external]\nport = 70000\n",             /* out of range */
      "[default.core]\npublic_logs = \"yes\"\n", /* not a boolean */
      "[default.core]\ndata_disks = [1]\n",     /* not strings */
      "[default]\nmax_body = \"lots\"\n",       /* not a size */
      "[default]\nmax_body = \"10EiB\"\n",      /* over INT64_MAX: would not dump (fuzz) */
      "[default\n",                             /* syntax */
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    struct tappd_config c;
    char err[256] = "";
    assert_int_equal(tappd_config_init(&c), 0);
    assert_true(apply(&c, bad[i], err) < 0);
    assert_true(strlen(err) > 0);
    tappd_config_free(&c);
  }
  static const char *const bad_check[] = {
      "[internal]\naddress = \"unix:relative.sock\"\n",
      "[internal]\nmode = \"999\"\n",
      "[external]\naddress = \"example.com\"\n",
      "[default.core]\ntee = \"sgx\"\n",
      "[default.core]\ntee = \"sim\"\nsim_dir = \"\"\n",
      "[external-https.tls]\nkey = \"/k\"\n",
      "[default]\nmax_body = 10\n",
      "[default]\nmax_conns = 0\n",
      "[default]\nmax_conns_per_source = 0\n",
      "[default]\nhandshake_timeout = 0\n",
      "[internal]\naddress = \"\"\n[dstack]\naddress = \"\"\n[external]\naddress = \"\"\n",
      "[default.core]\nkeys_file = \"\"\ncert_file = \"\"\n",
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad_check); i++) {
    struct tappd_config c;
    char err[256] = "";
    assert_int_equal(tappd_config_init(&c), 0);
    assert_int_equal(apply(&c, bad_check[i], err), 0);
    assert_int_equal(tappd_config_check(&c, err, sizeof(err)), -EINVAL);
    assert_true(strlen(err) > 0);
    tappd_config_free(&c);
  }
}

/* A P-256 CA certificate and key as PEM. */
static void make_ca(struct buf *cert, struct buf *key) {
  EVP_PKEY *k = NULL;
  X509 *c = NULL;
  assert_int_equal(key_p256_generate(&k), 0);
  struct x509_params p = {.subject_cn = "CA", .is_ca = true, .path_len = -1};
  assert_int_equal(x509_cert_build(&p, k, NULL, k, &c), 0);
  assert_int_equal(x509_cert_to_pem(c, cert), 0);
  assert_int_equal(key_to_pkcs8_pem(k, key), 0);
  assert_int_equal(buf_terminate(cert), 0);
  assert_int_equal(buf_terminate(key), 0);
  X509_free(c);
  EVP_PKEY_free(k);
}

static const char K256[] = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b";

static void test_appkeys_shapes(void **state) {
  (void)state;
  struct buf cert = BUF_INIT(16384), key = BUF_INIT(16384), cert2 = BUF_INIT(16384),
             key2 = BUF_INIT(16384);
  make_ca(&cert, &key);
  make_ca(&cert2, &key2);
  struct appkeys k;
  char err[256];
  char *text;

  /* Newest guest AppKeys, provider None. */
  json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:{s:s}}}", "disk_crypt_key", "0x0102",
                        "env_crypt_key", "", "k256_key", K256, "k256_signature", "aabb",
                        "gateway_app_id", "gw", "ca_cert", (const char *)cert.data,
                        "key_provider", "None", "key", (const char *)key.data);
  text = json_dumps(j, 0);
  assert_int_equal(appkeys_parse_json(text, strlen(text), &k, err, sizeof(err)), 0);
  assert_int_equal(k.format, APPKEYS_GUEST);
  assert_true(k.has_k256);
  assert_int_equal(k.k256_key[0], 0x1a);
  assert_non_null(k.ca_key);
  assert_non_null(k.ca_cert);
  assert_string_equal(k.key_provider, "none");
  assert_string_equal(k.gateway_app_id, "gw");
  assert_int_equal(k.disk_crypt_key.len, 2);
  assert_int_equal(k.k256_signature.len, 2);
  appkeys_free(&k);
  free(text);
  json_decref(j);

  /* Local provider with mr; key of another certificate is rejected. */
  j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:{s:s,s:s}}}", "disk_crypt_key", "", "k256_key", K256,
                "k256_signature", "", "gateway_app_id", "", "ca_cert", (const char *)cert.data,
                "key_provider", "Local", "key", (const char *)key.data, "mr", "00ff");
  text = json_dumps(j, 0);
  assert_int_equal(appkeys_parse_json(text, strlen(text), &k, err, sizeof(err)), 0);
  assert_string_equal(k.key_provider, "local");
  assert_int_equal(k.key_provider_id.len, 2);
  appkeys_free(&k);
  free(text);
  json_decref(j);
  j = json_pack("{s:s,s:s,s:{s:{s:s}}}", "k256_key", K256, "ca_cert", (const char *)cert.data,
                "key_provider", "None", "key", (const char *)key2.data);
  text = json_dumps(j, 0);
  assert_int_equal(appkeys_parse_json(text, strlen(text), &k, err, sizeof(err)), -EBADMSG);
  free(text);
  json_decref(j);

  /* Kms provider: the temporary CA issues. */
  j = json_pack("{s:s,s:s,s:{s:{s:s,s:s,s:s,s:s}}}", "k256_key", K256, "ca_cert",
                (const char *)cert.data, "key_provider", "Kms", "url", "https://kms",
                "pubkey", "01", "tmp_ca_key", (const char *)key2.data, "tmp_ca_cert",
                (const char *)cert2.data);
  text = json_dumps(j, 0);
  assert_int_equal(appkeys_parse_json(text, strlen(text), &k, err, sizeof(err)), 0);
  assert_string_equal(k.key_provider, "kms");
  assert_string_equal(k.kms_url, "https://kms");
  assert_string_equal(k.ca_pem, (const char *)cert2.data);
  appkeys_free(&k);
  free(text);
  json_decref(j);

  /* KMS reply (AppKeyResponse): no CA key. */
  j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "ca_cert", (const char *)cert.data, "disk_crypt_key",
                "00", "k256_key", K256, "k256_signature", "00", "tproxy_app_id", "tp");
  text = json_dumps(j, 0);
  assert_int_equal(appkeys_parse_json(text, strlen(text), &k, err, sizeof(err)), 0);
  assert_int_equal(k.format, APPKEYS_KMS_RESPONSE);
  assert_null(k.ca_key);
  assert_non_null(k.ca_cert);
  assert_string_equal(k.gateway_app_id, "tp");
  appkeys_free(&k);
  free(text);
  json_decref(j);

  /* Seed-era KMS reply. */
  j = json_pack("{s:s,s:s,s:[s]}", "app_key", (const char *)key.data, "disk_crypt_key", "0x1234",
                "certificate_chain", (const char *)cert.data);
  text = json_dumps(j, 0);
  assert_int_equal(appkeys_parse_json(text, strlen(text), &k, err, sizeof(err)), 0);
  assert_int_equal(k.format, APPKEYS_SEED_KMS);
  assert_false(k.has_k256);
  assert_non_null(k.ca_key);
  assert_int_equal(k.disk_crypt_key.len, 2);
  appkeys_free(&k);
  free(text);
  json_decref(j);

  /* Our KMS's reply: the seed-era app CA and the newest keys together. */
  j = json_pack("{s:s,s:s,s:[s],s:s,s:s,s:s,s:s}", "app_key", (const char *)key.data,
                "disk_crypt_key", "0x1234", "certificate_chain", (const char *)cert.data,
                "k256_key", K256, "k256_signature", "abcd", "env_crypt_key", "0x00ff",
                "gateway_app_id", "gw");
  text = json_dumps(j, 0);
  assert_int_equal(appkeys_parse_json(text, strlen(text), &k, err, sizeof(err)), 0);
  assert_int_equal(k.format, APPKEYS_SEED_KMS);
  assert_true(k.has_k256);
  assert_non_null(k.ca_key);
  assert_int_equal(k.k256_signature.len, 2);
  assert_int_equal(k.env_crypt_key.len, 2);
  assert_string_equal(k.gateway_app_id, "gw");
  assert_string_equal(k.key_provider, "kms");
  appkeys_free(&k);
  free(text);
  json_decref(j);
  /* ... whose newest half is checked as strictly */
  j = json_pack("{s:s,s:[s],s:s}", "app_key", (const char *)key.data, "certificate_chain",
                (const char *)cert.data, "k256_key", "zz");
  text = json_dumps(j, 0);
  assert_int_equal(appkeys_parse_json(text, strlen(text), &k, err, sizeof(err)), -EBADMSG);
  appkeys_free(&k);
  free(text);
  json_decref(j);

  /* Broken inputs. */
  char *bad[16];
  size_t nb = 0;
  bad[nb++] = strdup("not json");
  bad[nb++] = strdup("[]");
  bad[nb++] = strdup("{}");
  bad[nb++] = strdup("{\"k256_key\":\"1234\"}");
  bad[nb++] = strdup("{\"k256_key\":\"zz\"}");
  bad[nb++] = str_printf("{\"k256_key\":\"%064d\"}", 0); /* zero is not a secret */
  bad[nb++] = strdup("{\"k256_key\":\"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"}");
  bad[nb++] = str_printf("{\"k256_key\":\"%s\",\"key_provider\":{\"Weird\":{}}}", K256);
  bad[nb++] = str_printf("{\"k256_key\":\"%s\",\"key_provider\":{\"None\":{}}}", K256);
  bad[nb++] = str_printf("{\"k256_key\":\"%s\",\"key_provider\":{\"None\":{\"key\":\"x\"}},"
                         "\"ca_cert\":\"nope\"}",
                         K256);
  bad[nb++] = strdup("{\"app_key\":\"x\",\"certificate_chain\":[]}");
  bad[nb++] = strdup("{\"app_key\":\"x\",\"certificate_chain\":[1]}");
  for (size_t i = 0; i < nb; i++) {
    err[0] = 0;
    assert_int_equal(appkeys_parse_json(bad[i], strlen(bad[i]), &k, err, sizeof(err)), -EBADMSG);
    assert_true(strlen(err) > 0);
    free(bad[i]);
  }

  /* appkeys_load: seed-era files only, and nothing at all. */
  char *dir = tu_mkdtemp();
  char cp[4096], kp[4096], jp[4096];
  snprintf(cp, sizeof(cp), "%s/ca.cert", dir);
  snprintf(kp, sizeof(kp), "%s/ca.key", dir);
  snprintf(jp, sizeof(jp), "%s/appkeys.json", dir);
  assert_int_equal(appkeys_load(jp, cp, kp, &k, err, sizeof(err)), -ENOENT);
  assert_int_equal(file_write_atomic(cp, cert.data, cert.len, 0644), 0);
  assert_int_equal(file_write_atomic(kp, key.data, key.len, 0600), 0);
  assert_int_equal(appkeys_load(jp, cp, kp, &k, err, sizeof(err)), 0);
  assert_int_equal(k.format, APPKEYS_SEED_FILES);
  assert_non_null(k.ca_key);
  appkeys_free(&k);
  /* KMS reply + CA files: the files give the issuing key. */
  j = json_pack("{s:s,s:s}", "ca_cert", (const char *)cert2.data, "k256_key", K256);
  text = json_dumps(j, 0);
  assert_int_equal(file_write_atomic(jp, text, strlen(text), 0600), 0);
  assert_int_equal(appkeys_load(jp, cp, kp, &k, err, sizeof(err)), 0);
  assert_true(k.has_k256);
  assert_non_null(k.ca_key);
  assert_string_equal(k.ca_pem, (const char *)cert.data);
  appkeys_free(&k);
  free(text);
  json_decref(j);
  tu_rm_rf(dir);
  free(dir);
  buf_free(&cert);
  buf_free(&key);
  buf_free(&cert2);
  buf_free(&key2);
}

/* Every option, at its default and at a non-default value (quotes, backslashes, UTF-8,
 * newlines in strings; extremes of numbers; both tri-state values), dumps and loads back. */
static void test_dump_every_option(void **state) {
  (void)state;
  tu_conftab_roundtrip(tappd_config_table(), sizeof(struct tappd_config));
}

/* The tappd table holds no secret values (key_file, keys_file, the TLS key are paths):
 * nothing whose name says "secret" is left unmarked, and the dump shows every value. */
static void test_secrets_not_in_dump(void **state) {
  (void)state;
  assert_int_equal(tu_conftab_check_secret_names(tappd_config_table()), 0);
  struct tappd_config c;
  char err[256] = "";
  assert_int_equal(tappd_config_init(&c), 0);
  assert_int_equal(apply(&c, "[external-https.tls]\nkey = \"/k/tls.key\"\n", err), 0);
  struct buf d = BUF_INIT(1 << 20);
  assert_int_equal(tappd_config_dump(&c, &d), 0);
  assert_int_equal(buf_terminate(&d), 0);
  assert_non_null(strstr((const char *)d.data, "key = \"/k/tls.key\"\n"));
  assert_null(strstr((const char *)d.data, CONFTAB_SECRET_HIDDEN));
  buf_free(&d);
  tappd_config_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_dump_every_option),
      cmocka_unit_test(test_secrets_not_in_dump),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_appkeys_shapes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

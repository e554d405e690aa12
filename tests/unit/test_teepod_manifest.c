/* vm-manifest.json and vm-state.json: round trip, every refusal, ids and names, files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/str.h"
#include "teepod_manifest.h"
#include "testutil.h"

#define ID "0b9e5c3a-7f41-4d2e-9a6b-1c2d3e4f5a6b"
#define APP "00112233445566778899aabbccddeeff00112233"

static void sample(struct teepod_manifest *m) {
  memset(m, 0, sizeof(*m));
  snprintf(m->id, sizeof(m->id), "%s", ID);
  snprintf(m->name, sizeof(m->name), "web-app_1");
  snprintf(m->app_id, sizeof(m->app_id), "%s", APP);
  m->vcpu = 2;
  m->memory = 2048;
  m->disk_size = 20;
  m->image = strdup("dstack-0.5.3");
  assert_non_null(m->image);
  m->n_ports = 2;
  m->ports[0] = (struct teepod_port){.udp = false, .host_address = "127.0.0.1", .host_port = 8080,
                                     .vm_port = 80};
  m->ports[1] = (struct teepod_port){.udp = true, .host_address = "0.0.0.0", .host_port = 65535,
                                     .vm_port = 1};
  m->created_at_ms = 1733570000123ULL;
  assert_int_equal(strv_push_dup(&m->kms_urls, "https://kms.example:8000"), 0);
  assert_int_equal(strv_push_dup(&m->kms_urls, "https://kms2.example"), 0);
  assert_int_equal(strv_push_dup(&m->gateway_urls, "https://gw.example"), 0);
  m->hugepages = true;
  m->pin_numa = false;
  m->no_tee = true;
}

static void assert_same(const struct teepod_manifest *a, const struct teepod_manifest *b) {
  assert_string_equal(a->id, b->id);
  assert_string_equal(a->name, b->name);
  assert_string_equal(a->app_id, b->app_id);
  assert_int_equal(a->vcpu, b->vcpu);
  assert_int_equal(a->memory, b->memory);
  assert_int_equal(a->disk_size, b->disk_size);
  assert_string_equal(a->image, b->image);
  assert_int_equal(a->n_ports, b->n_ports);
  for (size_t i = 0; i < a->n_ports; i++) {
    assert_int_equal(a->ports[i].udp, b->ports[i].udp);
    assert_string_equal(a->ports[i].host_address, b->ports[i].host_address);
    assert_int_equal(a->ports[i].host_port, b->ports[i].host_port);
    assert_int_equal(a->ports[i].vm_port, b->ports[i].vm_port);
  }
  assert_true(a->created_at_ms == b->created_at_ms);
  assert_int_equal(strv_length(a->kms_urls), strv_length(b->kms_urls));
  for (size_t i = 0; a->kms_urls && a->kms_urls[i]; i++)
    assert_string_equal(a->kms_urls[i], b->kms_urls[i]);
  assert_int_equal(strv_length(a->gateway_urls), strv_length(b->gateway_urls));
  for (size_t i = 0; a->gateway_urls && a->gateway_urls[i]; i++)
    assert_string_equal(a->gateway_urls[i], b->gateway_urls[i]);
  assert_int_equal(a->hugepages, b->hugepages);
  assert_int_equal(a->pin_numa, b->pin_numa);
  assert_int_equal(a->no_tee, b->no_tee);
}

static int parse_str(const char *t, struct teepod_manifest *m, char **why) {
  return teepod_manifest_parse(t, strlen(t), m, why);
}

static void test_roundtrip(void **state) {
  (void)state;
  struct teepod_manifest a, b, c;
  sample(&a);
  struct buf j = BUF_INIT(1 << 20);
  assert_int_equal(teepod_manifest_to_json(&a, &j), 0);
  char *why = NULL;
  assert_int_equal(teepod_manifest_parse((const char *)j.data, j.len, &b, &why), 0);
  assert_null(why);
  assert_same(&a, &b);
  /* the copy is deep and equal */
  assert_int_equal(teepod_manifest_copy(&b, &c), 0);
  assert_ptr_not_equal(c.image, b.image);
  assert_ptr_not_equal(c.kms_urls, b.kms_urls);
  assert_same(&b, &c);
  /* a manifest without ports or URLs */
  teepod_manifest_free(&b);
  teepod_manifest_free(&c);
  strv_free(a.kms_urls);
  strv_free(a.gateway_urls);
  a.kms_urls = a.gateway_urls = NULL;
  a.n_ports = 0;
  buf_reset(&j);
  assert_int_equal(teepod_manifest_to_json(&a, &j), 0);
  assert_int_equal(teepod_manifest_parse((const char *)j.data, j.len, &b, &why), 0);
  assert_same(&a, &b);
  assert_null(b.kms_urls);
  teepod_manifest_free(&b);
  teepod_manifest_free(&a);
  buf_free(&j);
}

/* The seed wrote "port_map":{} and no newer keys: accepted, no ports, defaults. */
static void test_seed_manifest(void **state) {
  (void)state;
  struct teepod_manifest m;
  char *why = NULL;
  const char *t = "{\"id\":\"" ID "\",\"name\":\"seed\",\"app_id\":\"" APP "\",\"vcpu\":1,"
                  "\"memory\":1024,\"disk_size\":10,\"image\":\"dstack-dev-0.3.5\","
                  "\"port_map\":{},\"created_at_ms\":1700000000000}";
  assert_int_equal(parse_str(t, &m, &why), 0);
  assert_null(why);
  assert_int_equal(m.n_ports, 0);
  assert_string_equal(m.image, "dstack-dev-0.3.5");
  assert_null(m.kms_urls);
  assert_false(m.hugepages);
  assert_false(m.no_tee);
  teepod_manifest_free(&m);
  /* port_map null or absent: the same */
  t = "{\"id\":\"" ID "\",\"name\":\"seed\",\"app_id\":\"" APP "\",\"vcpu\":1,"
      "\"memory\":1024,\"disk_size\":0,\"image\":\"i\",\"port_map\":null,\"created_at_ms\":0,"
      "\"kms_urls\":null}";
  assert_int_equal(parse_str(t, &m, &why), 0);
  assert_int_equal(m.disk_size, 0);
  teepod_manifest_free(&m);
}

/* Builds a manifest text with one key replaced (value NULL: key removed). */
static char *with(const char *key, const char *value) {
  static const char *const keys[] = {"id", "name", "app_id", "vcpu", "memory", "disk_size",
                                     "image", "port_map", "created_at_ms", "kms_urls",
                                     "gateway_urls", "hugepages"};
  static const char *const vals[] = {
      "\"" ID "\"", "\"vm1\"", "\"" APP "\"", "2", "1024", "10", "\"img\"",
      "[{\"protocol\":\"tcp\",\"host_address\":\"127.0.0.1\",\"host_port\":8080,\"vm_port\":80}]",
      "1", "[\"https://kms\"]", "[]", "false"};
  struct buf b = BUF_INIT(1 << 20);
  assert_int_equal(buf_append_str(&b, "{"), 0);
  bool first = true;
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    const char *v = str_eq(keys[i], key) ? value : vals[i];
    if (!v)
      continue;
    assert_int_equal(buf_printf(&b, "%s\"%s\":%s", first ? "" : ",", keys[i], v), 0);
    first = false;
  }
  assert_int_equal(buf_append_str(&b, "}"), 0);
  assert_int_equal(buf_terminate(&b), 0);
  return (char *)buf_steal(&b, NULL);
}

static void test_refusals(void **state) {
  (void)state;
  /* the template itself parses */
  struct teepod_manifest m;
  char *why = NULL;
  _cleanup_free_ char *ok = with("", NULL);
  assert_int_equal(parse_str(ok, &m, &why), 0);
  assert_int_equal(m.n_ports, 1);
  teepod_manifest_free(&m);

  _cleanup_free_ char *many_ports = NULL, *many_urls = NULL;
  {
    struct buf b = BUF_INIT(1 << 20);
    assert_int_equal(buf_append_str(&b, "["), 0);
    for (int i = 0; i <= TEEPOD_MAX_PORTS; i++)
      assert_int_equal(buf_printf(&b, "%s{\"protocol\":\"tcp\",\"host_address\":\"127.0.0.1\","
                                      "\"host_port\":%d,\"vm_port\":80}",
                                  i ? "," : "", 1000 + i),
                       0);
    assert_int_equal(buf_append_str(&b, "]"), 0);
    assert_int_equal(buf_terminate(&b), 0);
    many_ports = (char *)buf_steal(&b, NULL);
    b = BUF_INIT(1 << 20);
    assert_int_equal(buf_append_str(&b, "["), 0);
    for (int i = 0; i <= TEEPOD_MAX_URLS; i++)
      assert_int_equal(buf_printf(&b, "%s\"https://kms%d\"", i ? "," : "", i), 0);
    assert_int_equal(buf_append_str(&b, "]"), 0);
    assert_int_equal(buf_terminate(&b), 0);
    many_urls = (char *)buf_steal(&b, NULL);
  }
  static const char port_fmt[] = "[{\"protocol\":%s,\"host_address\":%s,\"host_port\":%s,"
                                 "\"vm_port\":%s}]";
  struct {
    const char *key, *value, *needle;
  } bad[] = {
      {"id", NULL, "id"},
      {"id", "\"\"", "id"},
      {"id", "\"0B9E5C3A-7F41-4D2E-9A6B-1C2D3E4F5A6B\"", "id"}, /* uppercase */
      {"id", "\"0b9e5c3a07f41-4d2e-9a6b-1c2d3e4f5a6b\"", "id"},
      {"id", "\"0b9e5c3a-7f41-4d2e-9a6b-1c2d3e4f5a6\"", "id"},
      {"id", "\"../../../etc/passwd-aaaaaaaaaaaaaaaaaaaa\"", "id"},
      {"id", "42", "id"},
      {"name", NULL, "name"},
      {"name", "\"\"", "name"},
      {"name", "\"a b\"", "name"},
      {"name", "\"a/b\"", "name"},
      {"name", "\"a\\nb\"", "name"},
      {"name", "\"caf\xc3\xa9\"", "name"},
      {"name", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "name"},
      {"name", "\"a\\u0000b\"", "JSON"}, /* jansson refuses the NUL escape */
      {"app_id", NULL, "app_id"},
      {"app_id", "\"00112233445566778899AABBCCDDEEFF00112233\"", "app_id"},
      {"app_id", "\"00112233445566778899aabbccddeeff0011223\"", "app_id"},
      {"app_id", "\"00112233445566778899aabbccddeeff001122334\"", "app_id"},
      {"app_id", "\"0x112233445566778899aabbccddeeff00112233\"", "app_id"},
      {"vcpu", "0", "vcpu"},
      {"vcpu", NULL, "vcpu"},
      {"vcpu", "-1", "vcpu"},
      {"vcpu", "1.5", "vcpu"},
      {"vcpu", "\"2\"", "vcpu"},
      {"vcpu", "4294967296", "vcpu"},
      {"memory", "0", "memory"},
      {"disk_size", "-1", "disk_size"},
      {"disk_size", NULL, "disk_size"},
      {"image", NULL, "image"},
      {"image", "\"\"", "image"},
      {"image", "\"a/b\"", "image"},
      {"image", "\"/abs\"", "image"},
      {"image", "\"..\"", "image"},
      {"image", "\".\"", "image"},
      {"image", "3", "image"},
      {"created_at_ms", NULL, "created_at_ms"},
      {"created_at_ms", "-5", "created_at_ms"},
      {"created_at_ms", "\"1\"", "created_at_ms"},
      {"port_map", "\"tcp:80\"", "port_map"},
      {"port_map", "7", "port_map"},
      {"port_map", "[7]", "port_map[0]"},
      {"port_map", "[null]", "port_map[0]"},
      {"port_map", many_ports, "port_map"},
      {"kms_urls", many_urls, "kms_urls"},
      {"kms_urls", "\"https://kms\"", "kms_urls"},
      {"kms_urls", "[1]", "kms_urls[0]"},
      {"gateway_urls", "{}", "gateway_urls"},
      {"gateway_urls", "[\"https://gw\",null]", "gateway_urls[1]"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    _cleanup_free_ char *t = with(bad[i].key, bad[i].value);
    why = NULL;
    int r = parse_str(t, &m, &why);
    if (r >= 0 || !why || !strstr(why, bad[i].needle))
      fail_msg("case %zu (%s = %s): r=%d why=%s", i, bad[i].key,
               bad[i].value ? bad[i].value : "(none)", r, why ? why : "(none)");
    free(why);
    /* nothing left allocated, even when the image was already copied */
    assert_null(m.image);
    assert_null(m.kms_urls);
    assert_null(m.gateway_urls);
  }
  /* bad port entries, one field at a time */
  static const char *const port_bad[][4] = {
      {"\"sctp\"", "\"127.0.0.1\"", "80", "80"},
      {"\"TCP\"", "\"127.0.0.1\"", "80", "80"},
      {"null", "\"127.0.0.1\"", "80", "80"},
      {"\"tcp\"", "null", "80", "80"},
      {"\"tcp\"", "5", "80", "80"},
      {"\"tcp\"", "\"0123456789012345678901234567890123456789012345\"", "80", "80"},
      {"\"tcp\"", "\"127.0.0.1\"", "0", "80"},
      {"\"tcp\"", "\"127.0.0.1\"", "65536", "80"},
      {"\"tcp\"", "\"127.0.0.1\"", "-1", "80"},
      {"\"tcp\"", "\"127.0.0.1\"", "\"80\"", "80"},
      {"\"tcp\"", "\"127.0.0.1\"", "null", "80"},
      {"\"udp\"", "\"127.0.0.1\"", "80", "0"},
      {"\"udp\"", "\"127.0.0.1\"", "80", "65536"},
      {"\"udp\"", "\"127.0.0.1\"", "80", "null"},
      {"\"udp\"", "\"127.0.0.1\"", "80", "8.5"},
  };
  for (size_t i = 0; i < sizeof(port_bad) / sizeof(port_bad[0]); i++) {
    _cleanup_free_ char *pm = str_printf(port_fmt, port_bad[i][0], port_bad[i][1],
                                         port_bad[i][2], port_bad[i][3]);
    _cleanup_free_ char *t = with("port_map", pm);
    why = NULL;
    int r = parse_str(t, &m, &why);
    if (r != -EINVAL || !why || !strstr(why, "port_map[0]"))
      fail_msg("port case %zu (%s): r=%d why=%s", i, pm, r, why ? why : "(none)");
    free(why);
    teepod_manifest_free(&m);
  }
  /* the limits themselves are accepted */
  {
    struct buf b = BUF_INIT(1 << 20);
    assert_int_equal(buf_append_str(&b, "["), 0);
    for (int i = 0; i < TEEPOD_MAX_PORTS; i++)
      assert_int_equal(buf_printf(&b, "%s{\"protocol\":\"udp\",\"host_address\":\"\","
                                      "\"host_port\":%d,\"vm_port\":65535}",
                                  i ? "," : "", 65535 - i),
                       0);
    assert_int_equal(buf_append_str(&b, "]"), 0);
    assert_int_equal(buf_terminate(&b), 0);
    _cleanup_free_ char *t = with("port_map", (const char *)b.data);
    assert_int_equal(parse_str(t, &m, &why), 0);
    assert_int_equal(m.n_ports, TEEPOD_MAX_PORTS);
    assert_true(m.ports[TEEPOD_MAX_PORTS - 1].udp);
    assert_int_equal(m.ports[TEEPOD_MAX_PORTS - 1].host_port, 65535 - TEEPOD_MAX_PORTS + 1);
    teepod_manifest_free(&m);
    buf_free(&b);
  }
  /* not an object, not JSON, trailing garbage, NUL, duplicate keys */
  static const char *const not_obj[] = {"",    "[]",  "null", "\"x\"",
                                        "{",   "{}x", "{\"id\":1,\"id\":2}"};
  for (size_t i = 0; i < sizeof(not_obj) / sizeof(not_obj[0]); i++) {
    why = NULL;
    assert_true(parse_str(not_obj[i], &m, &why) < 0);
    assert_non_null(why);
    free(why);
    teepod_manifest_free(&m);
  }
  why = NULL;
  assert_true(teepod_manifest_parse(ok, strlen(ok) + 1, &m, &why) < 0); /* with the NUL */
  free(why);
  teepod_manifest_free(&m);
  /* why may be NULL */
  assert_int_equal(parse_str("[]", &m, NULL), -EINVAL);
  teepod_manifest_free(&m);
}

static void test_names_ids(void **state) {
  (void)state;
  assert_true(teepod_name_valid("a"));
  assert_true(teepod_name_valid("My_VM-01"));
  char name[TEEPOD_NAME_MAX + 2];
  memset(name, 'a', sizeof(name));
  name[TEEPOD_NAME_MAX] = 0;
  assert_true(teepod_name_valid(name)); /* 64 */
  name[TEEPOD_NAME_MAX] = 'a';
  name[TEEPOD_NAME_MAX + 1] = 0;
  assert_false(teepod_name_valid(name)); /* 65 */
  assert_false(teepod_name_valid(""));
  assert_false(teepod_name_valid(NULL));
  assert_false(teepod_name_valid("a.b"));
  assert_false(teepod_name_valid("a,b"));
  assert_false(teepod_name_valid("a b"));
  assert_false(teepod_name_valid("a\n"));
  assert_false(teepod_name_valid("\xc3\xa9"));

  assert_true(teepod_id_valid(ID));
  assert_true(teepod_id_valid("00000000-0000-0000-0000-000000000000"));
  assert_false(teepod_id_valid(NULL));
  assert_false(teepod_id_valid(""));
  assert_false(teepod_id_valid("0b9e5c3a-7f41-4d2e-9a6b-1c2d3e4f5a6B"));
  assert_false(teepod_id_valid("0b9e5c3a-7f41-4d2e-9a6b-1c2d3e4f5a6b0"));
  assert_false(teepod_id_valid("0b9e5c3a7f41-4d2e-9a6b-1c2d3e4f5a6b0"));
  assert_false(teepod_id_valid("0b9e5c3a-7f41-4d2e-9a6b_1c2d3e4f5a6b"));
  assert_false(teepod_id_valid("0b9e5c3a-7f41-4d2e-9a6b-1c2d3e4f5a6g"));
  assert_false(teepod_id_valid("..-....-....-....-............aaaaaa"));

  /* new ids: valid, version 4, variant 10xx, different each time */
  char prev[37] = "";
  for (int i = 0; i < 200; i++) {
    char id[37];
    memset(id, 'x', sizeof(id));
    assert_int_equal(teepod_id_new(id), 0);
    assert_int_equal(strlen(id), 36);
    assert_true(teepod_id_valid(id));
    assert_int_equal(id[14], '4');
    assert_non_null(strchr("89ab", id[19]));
    assert_string_not_equal(id, prev);
    memcpy(prev, id, sizeof(id));
  }
}

static void test_files(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  struct teepod_manifest a, b;
  char *why = NULL;
  sample(&a);
  /* nothing there yet */
  assert_int_equal(teepod_manifest_load(dir, &b, &why), -ENOENT);
  assert_non_null(why);
  free(why);
  why = NULL;
  assert_int_equal(teepod_manifest_save(dir, &a), 0);
  _cleanup_free_ char *mp = str_printf("%s/vm-manifest.json", dir);
  struct stat st;
  assert_int_equal(stat(mp, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(teepod_manifest_load(dir, &b, &why), 0);
  assert_null(why);
  assert_same(&a, &b);
  teepod_manifest_free(&b);
  /* a broken file is refused with a reason, nothing left allocated */
  const char *broken = "{\"id\":\"" ID "\",\"name\":\"x y\"}";
  assert_int_equal(file_write_atomic(mp, broken, strlen(broken), 0600), 0);
  assert_int_equal(teepod_manifest_load(dir, &b, &why), -EINVAL);
  assert_non_null(strstr(why, "name"));
  assert_null(b.image);
  free(why);
  why = NULL;

  /* state: missing = not started; saved values read back; 0600 */
  bool started = true;
  assert_int_equal(teepod_state_load(dir, &started), 0);
  assert_false(started);
  assert_int_equal(teepod_state_save(dir, true), 0);
  _cleanup_free_ char *sp = str_printf("%s/vm-state.json", dir);
  assert_int_equal(stat(sp, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(teepod_state_load(dir, &started), 0);
  assert_true(started);
  assert_int_equal(teepod_state_save(dir, false), 0);
  assert_int_equal(teepod_state_load(dir, &started), 0);
  assert_false(started);
  /* a broken state file is an error, a wrong type too */
  assert_int_equal(file_write_atomic(sp, "{", 1, 0600), 0);
  assert_true(teepod_state_load(dir, &started) < 0);
  assert_false(started);
  assert_int_equal(file_write_atomic(sp, "{\"started\":1}", 13, 0600), 0);
  assert_int_equal(teepod_state_load(dir, &started), -EINVAL);
  /* no "started" key: not started */
  assert_int_equal(file_write_atomic(sp, "{}", 2, 0600), 0);
  started = true;
  assert_int_equal(teepod_state_load(dir, &started), 0);
  assert_false(started);
  /* a folder that does not exist */
  _cleanup_free_ char *gone = str_printf("%s/nosuch", dir);
  assert_true(teepod_manifest_save(gone, &a) < 0);

  teepod_manifest_free(&a);
  tu_rm_rf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),  cmocka_unit_test(test_seed_manifest),
      cmocka_unit_test(test_refusals),   cmocka_unit_test(test_names_ids),
      cmocka_unit_test(test_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

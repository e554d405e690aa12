/* src/certbot/certbot_caa.c: the CAA procedure against an in-memory provider that can be told
 * to fail its Nth call: iodef and other tags kept, foreign issue records replaced, guards
 * present at every step, idempotence, a failure midway that leaves the guards and a rerun that
 * completes; the record value parser with its malformed inputs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/str.h"
#include "certbot_caa.h"
#include "certbot_dns.h"
#include "testutil.h"

#define ACCT "https://acme-v02.api.letsencrypt.org/acme/acct/12345"
#define WANT "letsencrypt.org;validationmethods=dns-01;accounturi=" ACCT

/* ------------------------------------------------------------ the in-memory provider */

#define MEM_MAX 64

struct mem {
  struct certbot_dns base;
  struct {
    char id[16], name[128], type[8], value[512];
    bool used;
  } r[MEM_MAX];
  unsigned next_id;
  unsigned calls;
  unsigned fail_at; /* the call number that fails (1-based); 0 never */
  unsigned adds, dels;
  bool issue_always; /* checked after each change: the name never lacks an issue record */
};

static bool mem_fail(struct mem *m, char *err, size_t errlen) {
  m->calls++;
  if (m->fail_at && m->calls == m->fail_at) {
    snprintf(err, errlen, "injected failure");
    return true;
  }
  return false;
}

static bool mem_has_issue(struct mem *m, const char *name) {
  for (int i = 0; i < MEM_MAX; i++)
    if (m->r[i].used && str_eq(m->r[i].name, name) && str_eq(m->r[i].type, "CAA") &&
        str_startswith(m->r[i].value, "0 issue "))
      return true;
  return false;
}

static bool mem_has_caa(struct mem *m, const char *name) {
  for (int i = 0; i < MEM_MAX; i++)
    if (m->r[i].used && str_eq(m->r[i].name, name) && str_eq(m->r[i].type, "CAA"))
      return true;
  return false;
}

static int mem_put(struct mem *m, const char *name, const char *type, const char *value,
                   char **ret_id) {
  for (int i = 0; i < MEM_MAX; i++) {
    if (m->r[i].used)
      continue;
    m->r[i].used = true;
    snprintf(m->r[i].id, sizeof(m->r[i].id), "r%u", ++m->next_id);
    snprintf(m->r[i].name, sizeof(m->r[i].name), "%s", name);
    snprintf(m->r[i].type, sizeof(m->r[i].type), "%s", type);
    snprintf(m->r[i].value, sizeof(m->r[i].value), "%s", value);
    *ret_id = strdup(m->r[i].id);
    m->adds++;
    return 0;
  }
  return -ENOSPC;
}

static int mem_txt_add(struct certbot_dns *d, const char *name, const char *value, char **ret_id,
                       char *err, size_t errlen) {
  struct mem *m = (struct mem *)d;
  if (mem_fail(m, err, errlen))
    return -EIO;
  return mem_put(m, name, "TXT", value, ret_id);
}

static int mem_caa_add(struct certbot_dns *d, const char *name, unsigned flags, const char *tag,
                       const char *value, char **ret_id, char *err, size_t errlen) {
  struct mem *m = (struct mem *)d;
  if (mem_fail(m, err, errlen))
    return -EIO;
  char v[512];
  snprintf(v, sizeof(v), "%u %s \"%s\"", flags, tag, value);
  return mem_put(m, name, "CAA", v, ret_id);
}

static int mem_del(struct certbot_dns *d, const char *name, const char *id, char *err,
                   size_t errlen) {
  struct mem *m = (struct mem *)d;
  if (mem_fail(m, err, errlen))
    return -EIO;
  for (int i = 0; i < MEM_MAX; i++)
    if (m->r[i].used && str_eq(m->r[i].id, id) && str_eq(m->r[i].name, name)) {
      m->r[i].used = false;
      m->dels++;
    }
  /* once the procedure touched a name it must never leave it without an issue record */
  if (m->issue_always && mem_has_caa(m, name))
    assert_true(mem_has_issue(m, name));
  return 0;
}

static int mem_list(struct certbot_dns *d, const char *name, const char *type,
                    struct certbot_dns_record **ret, size_t *ret_n, char *err, size_t errlen) {
  struct mem *m = (struct mem *)d;
  if (mem_fail(m, err, errlen))
    return -EIO;
  struct certbot_dns_record *v = calloc(MEM_MAX, sizeof(*v));
  size_t n = 0;
  assert_non_null(v);
  for (int i = 0; i < MEM_MAX; i++)
    if (m->r[i].used && str_eq(m->r[i].name, name) && (!type || str_eq(m->r[i].type, type))) {
      v[n].id = strdup(m->r[i].id);
      v[n].type = strdup(m->r[i].type);
      v[n].name = strdup(m->r[i].name);
      v[n].value = strdup(m->r[i].value);
      n++;
    }
  *ret = v;
  *ret_n = n;
  return 0;
}

static int mem_auth(struct certbot_dns *d, const char *name, char ***ret, char *err,
                    size_t errlen) {
  (void)d, (void)name, (void)ret, (void)err, (void)errlen;
  return -ENOTSUP;
}

static void mem_free(struct certbot_dns *d) {
  (void)d;
}

static const struct certbot_dns_ops mem_ops = {
    .name = "mem",
    .txt_add = mem_txt_add,
    .caa_add = mem_caa_add,
    .del = mem_del,
    .list = mem_list,
    .authoritative = mem_auth,
    .free = mem_free,
};

static void mem_init(struct mem *m) {
  memset(m, 0, sizeof(*m));
  m->base.ops = &mem_ops;
}

static void mem_seed(struct mem *m, const char *name, const char *type, const char *value) {
  char *id = NULL;
  assert_int_equal(mem_put(m, name, type, value, &id), 0);
  free(id);
  m->adds = 0;
}

/* The name's records of type, values sorted, joined with '|'. */
static char *mem_dump(struct mem *m, const char *name, const char *type) {
  char **l = NULL;
  for (int i = 0; i < MEM_MAX; i++)
    if (m->r[i].used && str_eq(m->r[i].name, name) && str_eq(m->r[i].type, type))
      assert_int_equal(strv_push_dup(&l, m->r[i].value), 0);
  size_t n = strv_length(l);
  for (size_t i = 0; i + 1 < n; i++) /* a tiny sort */
    for (size_t j = i + 1; j < n; j++)
      if (strcmp(l[i], l[j]) > 0) {
        char *t = l[i];
        l[i] = l[j];
        l[j] = t;
      }
  char *s = NULL;
  if (l)
    assert_int_equal(strv_join(l, "|", &s), 0);
  else
    s = strdup("");
  strv_free(l);
  return s;
}

#define FINAL "0 issue \"" WANT "\"|0 issuewild \"" WANT "\""

static void expect(struct mem *m, const char *name, const char *type, const char *want) {
  char *s = mem_dump(m, name, type);
  assert_string_equal(s, want);
  free(s);
}

/* ------------------------------------------------------------ tests */

static void test_caa_fresh(void **state) {
  (void)state;
  struct mem m;
  mem_init(&m);
  m.issue_always = true;
  char err[256];
  char *domains[] = {"*.example.com", "example.com", "Example.COM.", "b.example.com", NULL};
  assert_int_equal(certbot_caa_set(&m.base, domains, ACCT, NULL, err, sizeof(err)), 0);
  expect(&m, "example.com", "CAA", FINAL);
  expect(&m, "b.example.com", "CAA", FINAL);
  expect(&m, "*.example.com", "CAA", ""); /* the wildcard's base name only */
  /* two guards + two records per name */
  assert_int_equal(m.adds, 8);
}

static void test_caa_keeps_other_tags(void **state) {
  (void)state;
  struct mem m;
  mem_init(&m);
  mem_seed(&m, "example.com", "CAA", "0 iodef \"mailto:sec@example.com\"");
  mem_seed(&m, "example.com", "CAA", "0 contactemail \"a@example.com\"");
  mem_seed(&m, "example.com", "CAA", "0 issue \"otherca.example\"");
  mem_seed(&m, "example.com", "CAA", "128 issuewild \"letsencrypt.org\"");
  mem_seed(&m, "example.com", "CAA", "0 ISSUE \"upper.example\"");
  mem_seed(&m, "example.com", "TXT", "keep me");
  m.issue_always = true;
  char err[256];
  char *domains[] = {"example.com", NULL};
  assert_int_equal(certbot_caa_set(&m.base, domains, ACCT, "letsencrypt.org", err, sizeof(err)),
                   0);
  expect(&m, "example.com", "CAA",
         "0 contactemail \"a@example.com\"|0 iodef \"mailto:sec@example.com\"|" FINAL);
  expect(&m, "example.com", "TXT", "keep me");
}

static void test_caa_other_ca_and_account(void **state) {
  (void)state;
  struct mem m;
  mem_init(&m);
  /* a record for another account is replaced */
  mem_seed(&m, "example.com", "CAA",
           "0 issue \"letsencrypt.org;validationmethods=dns-01;accounturi=https://x/acct/1\"");
  char err[256];
  char *domains[] = {"example.com", NULL};
  assert_int_equal(certbot_caa_set(&m.base, domains, ACCT, NULL, err, sizeof(err)), 0);
  expect(&m, "example.com", "CAA", FINAL);
  /* another CA */
  assert_int_equal(certbot_caa_set(&m.base, domains, ACCT, "pki.goog", err, sizeof(err)), 0);
  expect(&m, "example.com", "CAA",
         "0 issue \"pki.goog;validationmethods=dns-01;accounturi=" ACCT "\"|"
         "0 issuewild \"pki.goog;validationmethods=dns-01;accounturi=" ACCT "\"");
}

static void test_caa_idempotent(void **state) {
  (void)state;
  struct mem m;
  mem_init(&m);
  mem_seed(&m, "example.com", "CAA", "0 iodef \"mailto:sec@example.com\"");
  char err[256];
  char *domains[] = {"example.com", NULL};
  assert_int_equal(certbot_caa_set(&m.base, domains, ACCT, NULL, err, sizeof(err)), 0);
  char *first = mem_dump(&m, "example.com", "CAA");
  unsigned adds = m.adds, dels = m.dels;
  assert_int_equal(certbot_caa_set(&m.base, domains, ACCT, NULL, err, sizeof(err)), 0);
  char *second = mem_dump(&m, "example.com", "CAA");
  assert_string_equal(first, second);
  /* the second run only adds and removes its guards: the wanted records stay */
  assert_int_equal(m.adds - adds, 2);
  assert_int_equal(m.dels - dels, 2);
  free(first);
  free(second);
  /* duplicates of the wanted record are reduced to one */
  mem_seed(&m, "example.com", "CAA", "0 issue \"" WANT "\"");
  assert_int_equal(certbot_caa_set(&m.base, domains, ACCT, NULL, err, sizeof(err)), 0);
  expect(&m, "example.com", "CAA", "0 iodef \"mailto:sec@example.com\"|" FINAL);
}

static void test_caa_failure_midway(void **state) {
  (void)state;
  char *domains[] = {"example.com", NULL};
  /* Fail each call in turn: from the first guard on, the name is never without an issue
   * record; a rerun always reaches the final state. */
  for (unsigned k = 1; k < 30; k++) {
    struct mem m;
    mem_init(&m);
    mem_seed(&m, "example.com", "CAA", "0 iodef \"mailto:sec@example.com\"");
    mem_seed(&m, "example.com", "CAA", "0 issue \"otherca.example\"");
    m.issue_always = true;
    m.fail_at = k;
    char err[256] = "";
    int r = certbot_caa_set(&m.base, domains, ACCT, NULL, err, sizeof(err));
    if (r == 0) {
      assert_true(k > 8); /* every call was reached */
      expect(&m, "example.com", "CAA", "0 iodef \"mailto:sec@example.com\"|" FINAL);
      break;
    }
    assert_int_equal(r, -EIO);
    assert_string_equal(err, "injected failure");
    assert_true(mem_has_issue(&m, "example.com"));
    char *s = mem_dump(&m, "example.com", "CAA");
    assert_non_null(strstr(s, "0 iodef \"mailto:sec@example.com\""));
    /* after the guards went in and before the end, the guards are still there */
    if (k > 3 && !strstr(s, WANT "\"|0 issuewild"))
      assert_non_null(strstr(s, "0 issue \";\""));
    free(s);
    m.fail_at = 0;
    assert_int_equal(certbot_caa_set(&m.base, domains, ACCT, NULL, err, sizeof(err)), 0);
    expect(&m, "example.com", "CAA", "0 iodef \"mailto:sec@example.com\"|" FINAL);
  }
}

static void test_caa_bad_args(void **state) {
  (void)state;
  struct mem m;
  mem_init(&m);
  char err[256];
  char *ok[] = {"example.com", NULL};
  char *none[] = {NULL};
  char *bad1[] = {"exa mple.com", NULL};
  char *bad2[] = {"*.", NULL};
  char *bad3[] = {"a..b", NULL};
  char *bad4[] = {"a\"b.com", NULL};
  assert_int_equal(certbot_caa_set(NULL, ok, ACCT, NULL, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_caa_set(&m.base, none, ACCT, NULL, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_caa_set(&m.base, NULL, ACCT, NULL, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_caa_set(&m.base, bad1, ACCT, NULL, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_caa_set(&m.base, bad2, ACCT, NULL, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_caa_set(&m.base, bad3, ACCT, NULL, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_caa_set(&m.base, bad4, ACCT, NULL, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_caa_set(&m.base, ok, "", NULL, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_caa_set(&m.base, ok, NULL, NULL, err, sizeof(err)), -EINVAL);
  assert_int_equal(certbot_caa_set(&m.base, ok, "https://x/a;b", NULL, err, sizeof(err)),
                   -EINVAL);
  assert_int_equal(certbot_caa_set(&m.base, ok, "https://x/a\"", NULL, err, sizeof(err)),
                   -EINVAL);
  assert_int_equal(certbot_caa_set(&m.base, ok, ACCT, "le.org;x=1", err, sizeof(err)), -EINVAL);
  assert_int_equal(m.calls, 0);
  /* an unreadable CAA record stops the procedure (after the guards: nothing issues) */
  mem_seed(&m, "example.com", "CAA", "zero issue x");
  assert_int_equal(certbot_caa_set(&m.base, ok, ACCT, NULL, err, sizeof(err)), -EBADMSG);
  assert_non_null(strstr(err, "cannot read"));
}

static void test_caa_value_parse(void **state) {
  (void)state;
  unsigned fl;
  char *tag, *val;
  assert_int_equal(certbot_caa_value_parse("0 issue \"letsencrypt.org\"", &fl, &tag, &val), 0);
  assert_int_equal(fl, 0);
  assert_string_equal(tag, "issue");
  assert_string_equal(val, "letsencrypt.org");
  free(tag), free(val);
  assert_int_equal(certbot_caa_value_parse("128 iodef mailto:a@b", &fl, &tag, &val), 0);
  assert_int_equal(fl, 128);
  assert_string_equal(tag, "iodef");
  assert_string_equal(val, "mailto:a@b");
  free(tag), free(val);
  assert_int_equal(certbot_caa_value_parse("0 issue \"a\\\"b\\\\c\"", &fl, &tag, &val), 0);
  assert_string_equal(val, "a\"b\\c");
  free(tag), free(val);
  assert_int_equal(certbot_caa_value_parse("0 issue \"\"", &fl, &tag, &val), 0);
  assert_string_equal(val, "");
  free(tag), free(val);
  assert_int_equal(certbot_caa_value_parse("0 issue", &fl, &tag, &val), 0);
  assert_string_equal(val, "");
  free(tag), free(val);
  const char *bad[] = {
      "",           "issue \"x\"",       "256 issue \"x\"", "-1 issue x",
      "0",          "0 ",                "0 is-sue x",      "0 issueissueissue1 x",
      "0 issue \"x", "0 issue \"x\" more", "0 issue \"x\\",  "1234 issue x",
      " 0 issue x", "0x1 issue x",
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
    if (certbot_caa_value_parse(bad[i], &fl, &tag, &val) != -EBADMSG)
      fail_msg("accepted \"%s\"", bad[i]);
  char big[1200];
  memset(big, 'a', sizeof(big));
  memcpy(big, "0 issue ", 8);
  big[sizeof(big) - 1] = '\0';
  assert_int_equal(certbot_caa_value_parse(big, &fl, &tag, &val), -EBADMSG);
  assert_int_equal(certbot_caa_value_parse(NULL, &fl, &tag, &val), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_caa_fresh),          cmocka_unit_test(test_caa_keeps_other_tags),
      cmocka_unit_test(test_caa_other_ca_and_account), cmocka_unit_test(test_caa_idempotent),
      cmocka_unit_test(test_caa_failure_midway), cmocka_unit_test(test_caa_bad_args),
      cmocka_unit_test(test_caa_value_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collateral/dcap_cache.h"
#include "attest/dcap_collateral.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "testutil.h"

/* dcap-qvl/tdx_quote_collateral.json: the earliest nextUpdate is the PCK CRL's,
 * 2025-07-19T10:00:35Z; the table time of the vector is one second before. */
#define QVL_TDX_EXPIRY ((int64_t)1752919235)
#define QVL_TDX_TIME ((int64_t)1752919234)

static void load_qvl(const char *name, struct dcap_collateral *ret) {
  struct buf b = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector(name, false, &b);
  assert_int_equal(dcap_collateral_from_qvl_json((const char *)b.data, b.len, ret), 0);
  buf_free(&b);
}

static void assert_coll_equal(const struct dcap_collateral *a, const struct dcap_collateral *b) {
  assert_string_equal(a->tcb_info, b->tcb_info);
  assert_string_equal(a->qe_identity, b->qe_identity);
  assert_string_equal(a->tcb_info_issuer_chain, b->tcb_info_issuer_chain);
  assert_string_equal(a->qe_identity_issuer_chain, b->qe_identity_issuer_chain);
  assert_string_equal(a->pck_crl_issuer_chain, b->pck_crl_issuer_chain);
  assert_memory_equal(a->tcb_info_signature, b->tcb_info_signature, 64);
  assert_memory_equal(a->qe_identity_signature, b->qe_identity_signature, 64);
  assert_int_equal(a->root_ca_crl.len, b->root_ca_crl.len);
  assert_memory_equal(a->root_ca_crl.data, b->root_ca_crl.data, a->root_ca_crl.len);
  assert_int_equal(a->pck_crl.len, b->pck_crl.len);
  assert_memory_equal(a->pck_crl.data, b->pck_crl.data, a->pck_crl.len);
}

static void test_memory(void **state) {
  (void)state;
  struct dcap_collateral col = {0}, got = {0};
  load_qvl("dcap-qvl/tdx_quote_collateral.json", &col);
  int64_t exp;
  assert_int_equal(dcap_collateral_next_update(&col, &exp), 0);
  assert_int_equal(exp, QVL_TDX_EXPIRY);

  struct dcap_cache *c = NULL;
  assert_int_equal(dcap_cache_new(NULL, &c), 0);
  assert_null(dcap_cache_dir(c));
  const char *key = "tdx-b0c06f000000-platform";
  assert_int_equal(dcap_cache_get(c, key, QVL_TDX_TIME, &got), -ENOENT);
  assert_int_equal(dcap_cache_put(c, key, &col, QVL_TDX_TIME), 0);
  assert_int_equal(dcap_cache_get(c, key, QVL_TDX_TIME, &got), 0);
  assert_coll_equal(&col, &got);
  dcap_collateral_free(&got);
  /* Other keys miss. */
  assert_int_equal(dcap_cache_get(c, "tdx-b0c06f000000-processor", QVL_TDX_TIME, &got), -ENOENT);
  /* Valid up to one second before the expiry, stale from then on, and then gone. */
  assert_int_equal(dcap_cache_get(c, key, QVL_TDX_EXPIRY - 1, &got), 0);
  dcap_collateral_free(&got);
  assert_int_equal(dcap_cache_get(c, key, QVL_TDX_EXPIRY, &got), -ENOENT);
  assert_null(got.tcb_info);
  assert_int_equal(dcap_cache_get(c, key, QVL_TDX_TIME, &got), -ENOENT);
  /* Storing expired collateral does nothing. */
  assert_int_equal(dcap_cache_put(c, key, &col, QVL_TDX_EXPIRY), -ESTALE);
  assert_int_equal(dcap_cache_get(c, key, QVL_TDX_TIME, &got), -ENOENT);
  /* Remove. */
  assert_int_equal(dcap_cache_put(c, key, &col, QVL_TDX_TIME), 0);
  dcap_cache_remove(c, key);
  assert_int_equal(dcap_cache_get(c, key, QVL_TDX_TIME, &got), -ENOENT);
  dcap_cache_free(c);
  dcap_cache_free(NULL);
  dcap_collateral_free(&col);
}

static void test_bad_args(void **state) {
  (void)state;
  struct dcap_collateral col = {0}, got = {0};
  load_qvl("dcap-qvl/tdx_quote_collateral.json", &col);
  struct dcap_cache *c = NULL;
  assert_int_equal(dcap_cache_new("", &c), -EINVAL);
  assert_int_equal(dcap_cache_new(NULL, &c), 0);
  static const char *bad[] = {"", "../etc", "a/b", "TDX-x", "a.json", "x y",
                              "0123456789012345678901234567890123456789012345678901234567890123"};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    assert_int_equal(dcap_cache_put(c, bad[i], &col, QVL_TDX_TIME), -EINVAL);
    assert_int_equal(dcap_cache_get(c, bad[i], QVL_TDX_TIME, &got), -EINVAL);
  }
  assert_int_equal(dcap_cache_put(c, NULL, &col, QVL_TDX_TIME), -EINVAL);
  assert_int_equal(dcap_cache_put(c, "k", NULL, QVL_TDX_TIME), -EINVAL);
  /* Collateral without a computable expiry. */
  struct dcap_collateral broken = {0};
  assert_int_equal(dcap_collateral_copy(&col, &broken), 0);
  buf_free(&broken.pck_crl);
  assert_int_equal(dcap_cache_put(c, "k", &broken, QVL_TDX_TIME), -EBADMSG);
  dcap_collateral_free(&broken);
  dcap_cache_free(c);
  dcap_collateral_free(&col);
}

static char *file_in(const char *dir, const char *name) {
  char *p = NULL;
  assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
  return p;
}

static void test_disk(void **state) {
  (void)state;
  struct dcap_collateral col = {0}, sgx = {0}, got = {0};
  load_qvl("dcap-qvl/tdx_quote_collateral.json", &col);
  load_qvl("dcap-qvl/sgx_quote_collateral.json", &sgx);
  char *tmp = tu_mkdtemp();
  char *dir = file_in(tmp, "cache/sub");
  const char *key = "tdx-b0c06f000000-platform";
  char *path = file_in(dir, "tdx-b0c06f000000-platform.json");

  struct dcap_cache *a = NULL, *b = NULL;
  assert_int_equal(dcap_cache_new(dir, &a), 0);
  assert_string_equal(dcap_cache_dir(a), dir);
  assert_int_equal(dcap_cache_put(a, key, &col, QVL_TDX_TIME), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0077, 0);

  /* A second cache (another process) finds it on disk. */
  assert_int_equal(dcap_cache_new(dir, &b), 0);
  assert_int_equal(dcap_cache_get(b, key, QVL_TDX_TIME, &got), 0);
  assert_coll_equal(&col, &got);
  dcap_collateral_free(&got);
  dcap_cache_free(b);

  /* Stale on disk: not served (and the file is not trusted for its own expiry). */
  assert_int_equal(dcap_cache_new(dir, &b), 0);
  assert_int_equal(dcap_cache_get(b, key, QVL_TDX_EXPIRY, &got), -ENOENT);
  dcap_cache_free(b);

  /* Corrupt files are ignored, then replaced by the next store. */
  static const char *garbage[] = {
      "not json",
      "{\"key\":\"tdx-b0c06f000000-platform\"}",
      "{\"key\":\"tdx-b0c06f000000-platform\",\"collateral\":{\"tcb_info\":\"{}\"}}",
      "{\"key\":\"tdx-b0c06f000000-platform\",\"collateral\":[]}",
      "",
  };
  for (size_t i = 0; i < ARRAY_SIZE(garbage); i++) {
    assert_int_equal(file_write_atomic(path, garbage[i], strlen(garbage[i]), 0600), 0);
    assert_int_equal(dcap_cache_new(dir, &b), 0);
    assert_int_equal(dcap_cache_get(b, key, QVL_TDX_TIME, &got), -ENOENT);
    assert_int_equal(dcap_cache_put(b, key, &col, QVL_TDX_TIME), 0);
    dcap_cache_free(b);
    assert_int_equal(dcap_cache_new(dir, &b), 0);
    assert_int_equal(dcap_cache_get(b, key, QVL_TDX_TIME, &got), 0);
    dcap_collateral_free(&got);
    dcap_cache_free(b);
  }

  /* A valid file under another key's name is not served. */
  struct buf text = BUF_INIT(DCAP_CACHE_MAX_FILE);
  assert_int_equal(file_read_all(path, DCAP_CACHE_MAX_FILE, &text), 0);
  char *other = file_in(dir, "tdx-b0c06f000000-processor.json");
  assert_int_equal(file_write_atomic(other, text.data, text.len, 0600), 0);
  assert_int_equal(dcap_cache_new(dir, &b), 0);
  assert_int_equal(dcap_cache_get(b, "tdx-b0c06f000000-processor", QVL_TDX_TIME, &got), -ENOENT);
  dcap_cache_free(b);

  /* A file over the size cap is ignored. */
  size_t big = DCAP_CACHE_MAX_FILE + 1;
  char *huge = malloc(big);
  assert_non_null(huge);
  memset(huge, ' ', big);
  memcpy(huge, text.data, text.len);
  assert_int_equal(file_write_atomic(path, huge, big, 0600), 0);
  free(huge);
  assert_int_equal(dcap_cache_new(dir, &b), 0);
  assert_int_equal(dcap_cache_get(b, key, QVL_TDX_TIME, &got), -ENOENT);
  dcap_cache_free(b);
  buf_free(&text);

  /* The memory copy in a still serves; a new key with other content next to it. */
  assert_int_equal(dcap_cache_get(a, key, QVL_TDX_TIME, &got), 0);
  dcap_collateral_free(&got);
  assert_int_equal(dcap_cache_put(a, "sgx-00a067110000-processor", &sgx, 1752919277), 0);
  assert_int_equal(dcap_cache_new(dir, &b), 0);
  assert_int_equal(dcap_cache_get(b, "sgx-00a067110000-processor", 1752919277, &got), 0);
  assert_coll_equal(&sgx, &got);
  dcap_collateral_free(&got);
  /* A stale lookup removes the file too. */
  char *sgxpath = file_in(dir, "sgx-00a067110000-processor.json");
  assert_int_equal(dcap_cache_get(b, "sgx-00a067110000-processor", INT64_MAX, &got), -ENOENT);
  assert_int_equal(access(sgxpath, F_OK), -1);
  assert_int_equal(dcap_cache_get(b, "sgx-00a067110000-processor", 1752919277, &got), -ENOENT);
  dcap_cache_free(b);
  free(sgxpath);

  /* Unwritable directory: memory still works, the error is reported. */
  char *ro = file_in(tmp, "ro");
  assert_int_equal(file_write_atomic(ro, "x", 1, 0600), 0); /* a file where the dir should be */
  char *rodir = file_in(ro, "cache");
  assert_int_equal(dcap_cache_new(rodir, &b), 0);
  assert_true(dcap_cache_put(b, key, &col, QVL_TDX_TIME) < 0);
  assert_int_equal(dcap_cache_get(b, key, QVL_TDX_TIME, &got), 0);
  dcap_collateral_free(&got);
  dcap_cache_free(b);

  dcap_cache_free(a);
  free(ro);
  free(rodir);
  free(other);
  free(path);
  free(dir);
  tu_rm_rf(tmp);
  free(tmp);
  dcap_collateral_free(&col);
  dcap_collateral_free(&sgx);
}

static void test_eviction(void **state) {
  (void)state;
  struct dcap_collateral col = {0}, got = {0};
  load_qvl("dcap-qvl/tdx_quote_collateral.json", &col);
  struct dcap_cache *c = NULL;
  assert_int_equal(dcap_cache_new(NULL, &c), 0);
  char key[32];
  for (int i = 0; i <= DCAP_CACHE_MAX_ENTRIES; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    assert_int_equal(dcap_cache_put(c, key, &col, QVL_TDX_TIME), 0);
  }
  int hits = 0;
  for (int i = 0; i <= DCAP_CACHE_MAX_ENTRIES; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    if (dcap_cache_get(c, key, QVL_TDX_TIME, &got) == 0) {
      hits++;
      dcap_collateral_free(&got);
    }
  }
  assert_int_equal(hits, DCAP_CACHE_MAX_ENTRIES);
  snprintf(key, sizeof(key), "k%d", DCAP_CACHE_MAX_ENTRIES);
  assert_int_equal(dcap_cache_get(c, key, QVL_TDX_TIME, &got), 0); /* newest kept */
  dcap_collateral_free(&got);
  dcap_cache_free(c);
  dcap_collateral_free(&col);
}

struct thr {
  struct dcap_cache *c;
  const struct dcap_collateral *col;
  int fails;
};

static void *thr_main(void *ud) {
  struct thr *t = ud;
  for (int i = 0; i < 40; i++) {
    char key[16];
    snprintf(key, sizeof(key), "t%d", i % 5);
    if (dcap_cache_put(t->c, key, t->col, QVL_TDX_TIME) < 0)
      t->fails++;
    struct dcap_collateral got = {0};
    if (dcap_cache_get(t->c, key, QVL_TDX_TIME, &got) < 0 || strcmp(got.tcb_info, t->col->tcb_info))
      t->fails++;
    dcap_collateral_free(&got);
    if (i % 7 == 0)
      dcap_cache_remove(t->c, "t6");
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  struct dcap_collateral col = {0};
  load_qvl("dcap-qvl/tdx_quote_collateral.json", &col);
  char *tmp = tu_mkdtemp();
  struct dcap_cache *c = NULL;
  assert_int_equal(dcap_cache_new(tmp, &c), 0);
  pthread_t th[4];
  struct thr t[4];
  for (int i = 0; i < 4; i++) {
    t[i] = (struct thr){.c = c, .col = &col};
    assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(t[i].fails, 0);
  }
  dcap_cache_free(c);
  tu_rm_rf(tmp);
  free(tmp);
  dcap_collateral_free(&col);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_memory),   cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_disk),     cmocka_unit_test(test_eviction),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

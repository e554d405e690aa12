#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "base/hex.h"
#include "crypto/keccak.h"
#include "testutil.h"

static void expect_hex(const uint8_t *got, size_t n, const char *hex) {
  _cleanup_buf_ struct buf want = BUF_INIT(1024);
  tu_hex(hex, &want);
  assert_int_equal(want.len, n);
  assert_memory_equal(got, want.data, n);
}

/* The 1000-byte pattern used across the hash tests. */
static void pattern(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 7 + 3);
}

static void test_keccak_published(void **state) {
  (void)state;
  uint8_t out[64];
  keccak256("", 0, out);
  expect_hex(out, 32, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  keccak256("abc", 3, out);
  expect_hex(out, 32, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
  keccak256("hello", 5, out);
  expect_hex(out, 32, "1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8");
  keccak512("", 0, out);
  expect_hex(out, 64,
             "0eab42de4c3ceb9235fc91acffe746b29c29a8c366b7c60e4e67c466f36a4304c00fa9caf9d87976ba469"
             "bcbe06713b435f091ef2769fb160cdab33d3670680e");
  keccak224("", 0, out);
  expect_hex(out, 28, "f71837502ba8e10837bdd8d365adb85591895602fc552b48b7390abd");
  keccak384("", 0, out);
  expect_hex(out, 48,
             "2c23146a63a29acf99e73b88f8c24eaa7dc60aa771780ccc006afbfa8fe2479b2dd2b21362337441ac12b"
             "515911957ff");
}

static void test_keccak_multiblock(void **state) {
  (void)state;
  uint8_t msg[1000], out[64], blk[136];
  pattern(msg, sizeof(msg));
  for (size_t i = 0; i < sizeof(blk); i++)
    blk[i] = (uint8_t)i;

  /* 1000 bytes: several blocks for every rate (144, 136, 104, 72). */
  keccak224(msg, sizeof(msg), out);
  expect_hex(out, 28, "775be3104d7980a1f37aa3680b9af6e1e829d12dc11103d7a8f0e406");
  keccak256(msg, sizeof(msg), out);
  expect_hex(out, 32, "80cdc8dd52cbb3dbaea8f383209893fa2bb52efbd5aedbb4b26dcfe307fcdc9b");
  keccak384(msg, sizeof(msg), out);
  expect_hex(out, 48,
             "6c4838539e068ce73995594fd93fe1fdbda01baf542661728f8d4a060dc9a718fb0dc02b0ccf38e67e28f"
             "d4fc7128ae7");
  keccak512(msg, sizeof(msg), out);
  expect_hex(out, 64,
             "d9b704aa601fdc425139fd2a6b3965b90d1bad81751bcf94591f532881d657a856a0fc6196b762843ef4c"
             "eac0504872bf2d94d9c64e68a3594b5808c42bc0b99");
  /* Exactly one Keccak-256 block (136 bytes): the padding goes into a second block. */
  keccak256(blk, sizeof(blk), out);
  expect_hex(out, 32, "7ce759f1ab7f9ce437719970c26b0a66ff11fe3e38e17df89cf5d29c7d7f807e");
  keccak224(blk, sizeof(blk), out);
  expect_hex(out, 28, "746fc08a969bf648d0e16bbeb8b3e2ab33a94caa1aa4d7882db673f8");
}

static void test_keccak_streaming(void **state) {
  (void)state;
  uint8_t msg[1000], one[64], streamed[64];
  pattern(msg, sizeof(msg));
  static const size_t sizes[] = {28, 32, 48, 64};
  static const size_t chunks[] = {1, 3, 7, 13, 71, 135, 136, 137, 500};
  for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
    struct keccak_ctx c;
    assert_int_equal(keccak_init(&c, sizes[s]), 0);
    keccak_update(&c, msg, sizeof(msg));
    keccak_final(&c, one);
    for (size_t k = 0; k < ARRAY_SIZE(chunks); k++) {
      assert_int_equal(keccak_init(&c, sizes[s]), 0);
      for (size_t off = 0; off < sizeof(msg);) {
        size_t n = MIN(chunks[k], sizeof(msg) - off);
        keccak_update(&c, msg + off, n);
        off += n;
        keccak_update(&c, msg, 0); /* empty updates are harmless */
      }
      keccak_final(&c, streamed);
      assert_memory_equal(one, streamed, sizes[s]);
    }
  }
}

/* The same sponge with the SHA-3 domain byte must equal OpenSSL's SHA-3 at every length around
 * the block boundaries: this checks the permutation and absorption independently of the vectors. */
static void test_keccak_vs_openssl_sha3(void **state) {
  (void)state;
  static const struct {
    size_t n;
    const char *name;
  } algs[] = {{28, "SHA3-224"}, {32, "SHA3-256"}, {48, "SHA3-384"}, {64, "SHA3-512"}};
  uint8_t msg[300], a[64], b[64];
  pattern(msg, sizeof(msg));
  for (size_t i = 0; i < ARRAY_SIZE(algs); i++) {
    EVP_MD *md = EVP_MD_fetch(NULL, algs[i].name, NULL);
    assert_non_null(md);
    for (size_t len = 0; len <= sizeof(msg); len++) {
      struct keccak_ctx c;
      assert_int_equal(keccak_init_ex(&c, algs[i].n, 0x06), 0);
      keccak_update(&c, msg, len / 2);
      keccak_update(&c, msg + len / 2, len - len / 2);
      keccak_final(&c, a);
      unsigned n = 0;
      assert_int_equal(EVP_Digest(msg, len, b, &n, md, NULL), 1);
      assert_int_equal(n, algs[i].n);
      assert_memory_equal(a, b, n);
    }
    EVP_MD_free(md);
  }
}

static void test_keccak_bad_args(void **state) {
  (void)state;
  struct keccak_ctx c;
  assert_int_equal(keccak_init(&c, 0), -EINVAL);
  assert_int_equal(keccak_init(&c, 20), -EINVAL);
  assert_int_equal(keccak_init(&c, 65), -EINVAL);
  assert_int_equal(keccak_init(NULL, 32), -EINVAL);
  assert_int_equal(keccak_init_ex(&c, 32, 0), -EINVAL);
  /* keccak_final wipes the state */
  uint8_t out[32];
  assert_int_equal(keccak_init(&c, 32), 0);
  keccak_final(&c, out);
  assert_int_equal(c.rate, 0);
  assert_int_equal(c.st[0], 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keccak_published),     cmocka_unit_test(test_keccak_multiblock),
      cmocka_unit_test(test_keccak_streaming),     cmocka_unit_test(test_keccak_vs_openssl_sha3),
      cmocka_unit_test(test_keccak_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/hash.h"
#include "crypto/keccak.h"
#include "testutil.h"

struct vec {
  const char *alg;
  const char *empty, *abc, *pattern; /* digests of "", "abc", 1000-byte pattern */
};

/* NIST / RFC 7693 / Keccak team values; "pattern" = bytes (i*7+3) mod 256, i < 1000. */
static const struct vec vecs[] = {
    {"sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
     "1e9bc38cbf860b9ec31918b065f9b52476c549a782e0e7990bed8ce3868d2371"},
    {"sha384",
     "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b",
     "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
     "94c38db521ca733b8904c2d14b6e82d33dcfcc26e1318c579dbee1fc2f472019034e792263b9d46e90e700de2f6e7e91"},
    {"sha512",
     "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "00e36fccf193e59697a92b5ab24666ce6326d7fa16bf10832d0991ddc591112e9dfa6a636950ed9c4d67344a760654c2ff7785e1d60094d651038735b5dccabd"},
    {"sha224", "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f",
     "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
     "23729dacbd480285c5c68439e2fe22ca5611a63cd6c14d2ec5ae2c85"},
    {"sha512-224", "6ed0dd02806fa89e25de060c19d3ac86cabb87d6a0ddd05c333b84f4",
     "4634270f707b6a54daae7530460842e20e37ed265ceee9a43e8924aa",
     "b6c1c1e13c07e992f0df6a5c8e4c6c153f91516cfa051b9fbfa88514"},
    {"sha512-256", "c672b8d1ef56ed28ab87c3622c5114069bdd3ad7b8f9737498d0c01ecef0967a",
     "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23",
     "14271b3d36ca983ae2da2693d995fe68412c0bd5394ec2f05b763586db6e24fd"},
    {"sha3-224", "6b4e03423667dbb73b6e15454f0eb1abd4597f9a1b078e3f5b5a6bc7",
     "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf",
     "56812d3d31242051de174106777f4108c791ab801f1569f73d57fa0b"},
    {"sha3-256", "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a",
     "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
     "bd8b4d76041e0135e53fab1aaf425c7b1c129d8878ffb64cc31230ccafd7dc7c"},
    {"sha3-384",
     "0c63a75b845e4f7d01107d852e4c2485c51a50aaaa94fc61995e71bbee983a2ac3713831264adb47fb6bd1e058d5f004",
     "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25",
     "01269eed23d8f1c00d333933989211974c16fed038dfde30f8514168ae13e8409f565dbe4d81399b6ed23db9762f7989"},
    {"sha3-512",
     "a69f73cca23a9ac5c8b567dc185a756e97c982164fe25859e0d1dcc1475c80a615b2123af1f5f94c11e3e9402c3ac558f500199d95b6d3e301758586281dcd26",
     "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
     "3d71681b54b99f11ddeb233b0a41b65896f7b30dda9e83d52864a4e818a09408e2f306028abe973298f96ee081a06e5ac8156cd7b856f0eb28270e1ca37bd0c6"},
    {"keccak224", "f71837502ba8e10837bdd8d365adb85591895602fc552b48b7390abd",
     "c30411768506ebe1c2871b1ee2e87d38df342317300a9b97a95ec6a8",
     "775be3104d7980a1f37aa3680b9af6e1e829d12dc11103d7a8f0e406"},
    {"keccak256", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
     "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
     "80cdc8dd52cbb3dbaea8f383209893fa2bb52efbd5aedbb4b26dcfe307fcdc9b"},
    {"keccak384",
     "2c23146a63a29acf99e73b88f8c24eaa7dc60aa771780ccc006afbfa8fe2479b2dd2b21362337441ac12b515911957ff",
     "f7df1165f033337be098e7d288ad6a2f74409d7a60b49c36642218de161b1f99f8c681e4afaf31a34db29fb763e3c28e",
     "6c4838539e068ce73995594fd93fe1fdbda01baf542661728f8d4a060dc9a718fb0dc02b0ccf38e67e28fd4fc7128ae7"},
    {"keccak512",
     "0eab42de4c3ceb9235fc91acffe746b29c29a8c366b7c60e4e67c466f36a4304c00fa9caf9d87976ba469bcbe06713b435f091ef2769fb160cdab33d3670680e",
     "18587dc2ea106b9a1563e32b3312421ca164c7f1f07bc922a9c83d77cea3a1e5d0c69910739025372dc14ac9642629379540c17e2a65b19d77aa511a9d00bb96",
     "d9b704aa601fdc425139fd2a6b3965b90d1bad81751bcf94591f532881d657a856a0fc6196b762843ef4ceac0504872bf2d94d9c64e68a3594b5808c42bc0b99"},
    {"blake2b256", "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
     "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319",
     "d62b6c768ce1afc8367e0498ab2f8e3f7c178c35b1429f14c4604b545d200f52"},
    {"blake2b512",
     "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce",
     "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
     "4bdd2c9cf31d797a81d245c989ffb7515143ca345c66f73087dd5c58bf642bf083ba16894eab79e3b08d5126404d833e7510271b50be36a7b7cbbb46f5c89fac"},
    {"blake2s256", "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9",
     "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982",
     "02a016193469710efadf8fb005ca19b509331cb847df5598cc0794bded669681"},
};

static void pattern(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 7 + 3);
}

static void check(enum hash_alg alg, const void *msg, size_t len, const char *hex) {
  _cleanup_buf_ struct buf want = BUF_INIT(256);
  uint8_t out[HASH_MAX_SIZE];
  tu_hex(hex, &want);
  assert_int_equal(hash_alg_size(alg), want.len);
  memset(out, 0, sizeof(out));
  assert_int_equal(hash_buf(alg, msg, len, out), 0);
  assert_memory_equal(out, want.data, want.len);
}

static void test_hash_vectors(void **state) {
  (void)state;
  uint8_t msg[1000];
  pattern(msg, sizeof(msg));
  /* every algorithm has a vector */
  assert_int_equal(ARRAY_SIZE(vecs), _HASH_ALG_MAX);
  for (size_t i = 0; i < ARRAY_SIZE(vecs); i++) {
    enum hash_alg alg;
    assert_int_equal(hash_alg_from_name(vecs[i].alg, &alg), 0);
    assert_string_equal(hash_alg_name(alg), vecs[i].alg);
    check(alg, "", 0, vecs[i].empty);
    check(alg, NULL, 0, vecs[i].empty);
    check(alg, "abc", 3, vecs[i].abc);
    check(alg, msg, sizeof(msg), vecs[i].pattern);
  }
}

static void test_hash_streaming(void **state) {
  (void)state;
  uint8_t msg[1000], one[HASH_MAX_SIZE], streamed[HASH_MAX_SIZE];
  pattern(msg, sizeof(msg));
  static const size_t chunks[] = {1, 5, 63, 64, 65, 127, 128, 129, 333};
  for (int a = 0; a < _HASH_ALG_MAX; a++) {
    size_t n = hash_alg_size((enum hash_alg)a);
    assert_int_equal(hash_buf((enum hash_alg)a, msg, sizeof(msg), one), 0);
    for (size_t k = 0; k < ARRAY_SIZE(chunks); k++) {
      _cleanup_(hash_ctx_freep) struct hash_ctx *c = NULL;
      assert_int_equal(hash_ctx_new((enum hash_alg)a, &c), 0);
      assert_int_equal(hash_ctx_alg(c), a);
      for (size_t off = 0; off < sizeof(msg);) {
        size_t m = MIN(chunks[k], sizeof(msg) - off);
        assert_int_equal(hash_ctx_update(c, msg + off, m), 0);
        assert_int_equal(hash_ctx_update(c, NULL, 0), 0);
        off += m;
      }
      assert_int_equal(hash_ctx_final(c, streamed), 0);
      assert_memory_equal(one, streamed, n);
      /* finished contexts refuse more work */
      assert_int_equal(hash_ctx_update(c, "x", 1), -EINVAL);
      assert_int_equal(hash_ctx_final(c, streamed), -EINVAL);
    }
  }
  /* BLAKE2b exactly at its 128-byte block boundary, streamed vs one-shot */
  uint8_t blk[256];
  pattern(blk, sizeof(blk));
  for (size_t len = 120; len <= 256; len += 8) {
    _cleanup_(hash_ctx_freep) struct hash_ctx *c = NULL;
    assert_int_equal(hash_buf(HASH_BLAKE2B256, blk, len, one), 0);
    assert_int_equal(hash_ctx_new(HASH_BLAKE2B256, &c), 0);
    assert_int_equal(hash_ctx_update(c, blk, len), 0);
    assert_int_equal(hash_ctx_final(c, streamed), 0);
    assert_memory_equal(one, streamed, 32);
  }
}

static void test_hash_names(void **state) {
  (void)state;
  enum hash_alg alg;
  assert_int_equal(hash_alg_from_name("SHA3-256", &alg), 0);
  assert_int_equal(alg, HASH_SHA3_256);
  assert_int_equal(hash_alg_from_name("Keccak256", &alg), 0);
  assert_int_equal(alg, HASH_KECCAK256);
  assert_int_equal(hash_alg_from_name("sha512-224", &alg), 0);
  assert_int_equal(alg, HASH_SHA512_224);
  assert_int_equal(hash_alg_from_name("md5", &alg), -EINVAL);
  assert_int_equal(hash_alg_from_name("", &alg), -EINVAL);
  assert_int_equal(hash_alg_from_name("sha256 ", &alg), -EINVAL);
  assert_int_equal(hash_alg_from_name("raw", &alg), -EINVAL);
  assert_int_equal(hash_alg_from_name(NULL, &alg), -EINVAL);
  assert_int_equal(hash_alg_size(_HASH_ALG_MAX), 0);
  assert_int_equal(hash_alg_size((enum hash_alg)-1), 0);
  assert_null(hash_alg_name(_HASH_ALG_MAX));
  assert_int_equal(hash_alg_size(HASH_SHA384), 48);
}

static void test_hash_bad_args(void **state) {
  (void)state;
  uint8_t out[64];
  struct hash_ctx *c = NULL;
  assert_int_equal(hash_buf(_HASH_ALG_MAX, "", 0, out), -EINVAL);
  assert_int_equal(hash_buf(HASH_SHA256, NULL, 5, out), -EINVAL);
  assert_int_equal(hash_buf(HASH_SHA256, "abc", 3, NULL), -EINVAL);
  assert_int_equal(hash_ctx_new(_HASH_ALG_MAX, &c), -EINVAL);
  assert_null(c);
  assert_int_equal(hash_ctx_new(HASH_SHA256, NULL), -EINVAL);
  assert_int_equal(hash_ctx_update(NULL, "a", 1), -EINVAL);
  assert_int_equal(hash_ctx_final(NULL, out), -EINVAL);
  hash_ctx_free(NULL);
  assert_int_equal(hash_ctx_new(HASH_KECCAK256, &c), 0);
  assert_int_equal(hash_ctx_update(c, NULL, 3), -EINVAL);
  hash_ctx_free(c); /* freeing an unfinished context is fine */
}

static void test_hash_shortcuts(void **state) {
  (void)state;
  uint8_t a[64], b[64];
  sha256("abc", 3, a);
  assert_int_equal(hash_buf(HASH_SHA256, "abc", 3, b), 0);
  assert_memory_equal(a, b, 32);
  sha384("abc", 3, a);
  assert_int_equal(hash_buf(HASH_SHA384, "abc", 3, b), 0);
  assert_memory_equal(a, b, 48);
  sha512("abc", 3, a);
  assert_int_equal(hash_buf(HASH_SHA512, "abc", 3, b), 0);
  assert_memory_equal(a, b, 64);
  keccak256("abc", 3, a);
  assert_int_equal(hash_buf(HASH_KECCAK256, "abc", 3, b), 0);
  assert_memory_equal(a, b, 32);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hash_vectors),  cmocka_unit_test(test_hash_streaming),
      cmocka_unit_test(test_hash_names),    cmocka_unit_test(test_hash_bad_args),
      cmocka_unit_test(test_hash_shortcuts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

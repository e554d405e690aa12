/* Keccak-f[1600] and the Keccak sponge (FIPS 202 permutation, original Keccak padding by default).
 * Lanes are kept as 64-bit words; bytes are absorbed little-endian. */
#include "crypto/keccak.h"

#include <errno.h>
#include <string.h>

#include "base/buf.h"
#include "base/macro.h"

static const uint64_t round_consts[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* Rotation offset of lane x + 5y (rho step). */
static const unsigned rho[25] = {
    0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14,
};

static inline uint64_t rotl64(uint64_t v, unsigned n) {
  return n ? (v << n) | (v >> (64 - n)) : v;
}

void keccak_f1600(uint64_t st[25]) {
  uint64_t c[5], d[5], b[25];

  for (unsigned round = 0; round < 24; round++) {
    /* theta */
    for (unsigned x = 0; x < 5; x++)
      c[x] = st[x] ^ st[x + 5] ^ st[x + 10] ^ st[x + 15] ^ st[x + 20];
    for (unsigned x = 0; x < 5; x++)
      d[x] = c[(x + 4) % 5] ^ rotl64(c[(x + 1) % 5], 1);
    for (unsigned i = 0; i < 25; i++)
      st[i] ^= d[i % 5];

    /* rho and pi: lane (x, y) moves to (y, 2x + 3y) */
    for (unsigned x = 0; x < 5; x++)
      for (unsigned y = 0; y < 5; y++)
        b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl64(st[x + 5 * y], rho[x + 5 * y]);

    /* chi */
    for (unsigned y = 0; y < 25; y += 5)
      for (unsigned x = 0; x < 5; x++)
        st[y + x] = b[y + x] ^ (~b[y + (x + 1) % 5] & b[y + (x + 2) % 5]);

    /* iota */
    st[0] ^= round_consts[round];
  }
  secure_wipe(b, sizeof(b));
}

static inline void xor_byte(uint64_t st[25], size_t pos, uint8_t v) {
  st[pos / 8] ^= (uint64_t)v << (8 * (pos % 8));
}

int keccak_init_ex(struct keccak_ctx *c, size_t out_len, uint8_t dsbyte) {
  if (!c || (out_len != 28 && out_len != 32 && out_len != 48 && out_len != 64) || dsbyte == 0)
    return -EINVAL;
  memset(c, 0, sizeof(*c));
  c->out_len = out_len;
  c->rate = 200 - 2 * out_len;
  c->dsbyte = dsbyte;
  return 0;
}

int keccak_init(struct keccak_ctx *c, size_t out_len) {
  return keccak_init_ex(c, out_len, 0x01);
}

void keccak_update(struct keccak_ctx *c, const void *data, size_t len) {
  const uint8_t *p = data;

  /* Fill a partial block byte by byte, then whole lanes when aligned. */
  while (len > 0) {
    if (c->pos == 0 && len >= c->rate) {
      for (size_t i = 0; i < c->rate / 8; i++)
        c->st[i] ^= le64_read(p + 8 * i);
      keccak_f1600(c->st);
      p += c->rate;
      len -= c->rate;
      continue;
    }
    xor_byte(c->st, c->pos++, *p++);
    len--;
    if (c->pos == c->rate) {
      keccak_f1600(c->st);
      c->pos = 0;
    }
  }
}

void keccak_final(struct keccak_ctx *c, uint8_t *out) {
  xor_byte(c->st, c->pos, c->dsbyte);
  xor_byte(c->st, c->rate - 1, 0x80);
  keccak_f1600(c->st);
  /* out_len < rate for every allowed size, so one squeeze suffices. */
  for (size_t i = 0; i < c->out_len; i++)
    out[i] = (uint8_t)(c->st[i / 8] >> (8 * (i % 8)));
  secure_wipe(c, sizeof(*c));
}

static void keccak_oneshot(size_t out_len, const void *data, size_t len, uint8_t *out) {
  struct keccak_ctx c;
  (void)keccak_init(&c, out_len);
  keccak_update(&c, data, len);
  keccak_final(&c, out);
}

void keccak224(const void *data, size_t len, uint8_t out[28]) {
  keccak_oneshot(28, data, len, out);
}
void keccak256(const void *data, size_t len, uint8_t out[32]) {
  keccak_oneshot(32, data, len, out);
}
void keccak384(const void *data, size_t len, uint8_t out[48]) {
  keccak_oneshot(48, data, len, out);
}
void keccak512(const void *data, size_t len, uint8_t out[64]) {
  keccak_oneshot(64, data, len, out);
}

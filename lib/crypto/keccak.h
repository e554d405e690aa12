/* Keccak-f[1600] sponge with the original Keccak padding (0x01), as Ethereum uses it; also usable
 * with the SHA-3 domain byte (0x06) for self-checks against OpenSSL. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct keccak_ctx {
  uint64_t st[25];
  size_t rate;    /* bytes absorbed per permutation: 200 - 2 * out_len */
  size_t pos;     /* bytes absorbed into the current block */
  size_t out_len; /* 28, 32, 48 or 64 */
  uint8_t dsbyte; /* 0x01 Keccak, 0x06 SHA-3 */
};

/* The permutation itself (24 rounds), on lanes in little-endian order. */
void keccak_f1600(uint64_t st[25]);

/* out_len is 28, 32, 48 or 64 (-EINVAL otherwise). */
int keccak_init(struct keccak_ctx *c, size_t out_len);
/* Same with a chosen domain-separation/padding byte (0x01 Keccak, 0x06 SHA-3). */
int keccak_init_ex(struct keccak_ctx *c, size_t out_len, uint8_t dsbyte);
void keccak_update(struct keccak_ctx *c, const void *data, size_t len);
/* Writes out_len bytes and wipes the state. */
void keccak_final(struct keccak_ctx *c, uint8_t *out);

void keccak224(const void *data, size_t len, uint8_t out[28]);
void keccak256(const void *data, size_t len, uint8_t out[32]);
void keccak384(const void *data, size_t len, uint8_t out[48]);
void keccak512(const void *data, size_t len, uint8_t out[64]);

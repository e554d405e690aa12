/* The LUKS2 header policy (luks2_probe) on whatever a host writes at the start of the disk: no
 * crash, and a verdict that is either BLANK, VALID with a sane info, or -EBADMSG with a reason.
 * The input is laid over a copy of a valid header (at the same offsets) half of the time, so the
 * fuzzer gets past the magic and reaches the JSON rules; checksums are then recomputed so edits
 * reach the JSON parser. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/hash.h"
#include "tboot_luks2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void rehash(uint8_t *h) {
  memset(h + 448, 0, 64);
  uint8_t d[32];
  sha256(h, LUKS2_HDR_SIZE, d);
  memcpy(h + 448, d, 32);
}

static void check(const uint8_t *buf, size_t len) {
  enum luks2_kind kind = 77;
  struct luks2_info info;
  char why[128];
  int r = luks2_probe(buf, len, &kind, &info, why, sizeof(why));
  if (r == 0) {
    if (kind == LUKS2_VALID &&
        (info.segment_offset != LUKS2_DATA_OFFSET ||
         (info.sector_size != 512 && info.sector_size != 4096) ||
         info.pbkdf2_iterations < LUKS2_PBKDF2_MIN_ITERATIONS ||
         info.pbkdf2_iterations > LUKS2_PBKDF2_MAX_ITERATIONS || !memchr(info.uuid, 0, 40)))
      abort();
    if (kind != LUKS2_VALID && kind != LUKS2_BLANK)
      abort();
  } else if (r != -EBADMSG || !why[0] || kind != 77) {
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > LUKS2_PROBE_BYTES)
    return 0;
  check(data, size);
  /* The input as the JSON text of both copies of a well-formed binary header. */
  if (size < LUKS2_HDR_SIZE - 4096) {
    static uint8_t disk[2 * LUKS2_HDR_SIZE];
    memset(disk, 0, sizeof(disk));
    static const uint8_t magic[2][6] = {{'L', 'U', 'K', 'S', 0xba, 0xbe},
                                        {'S', 'K', 'U', 'L', 0xba, 0xbe}};
    for (int c = 0; c < 2; c++) {
      uint8_t *h = disk + c * LUKS2_HDR_SIZE;
      memcpy(h, magic[c], 6);
      h[7] = 2;                 /* version */
      h[8 + 6] = 0x40;          /* hdr_size 16384 */
      h[16 + 7] = 1;            /* seqid */
      memcpy(h + 72, "sha256", 6);
      memcpy(h + 168, "0f0e0d0c-0b0a-4908-8706-050403020100", 36);
      if (c)
        h[256 + 6] = 0x40;      /* hdr_offset */
      memcpy(h + 4096, data, size);
      rehash(h);
    }
    check(disk, sizeof(disk));
  }
  return 0;
}

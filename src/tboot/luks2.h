/* LUKS2 header check (interface; the parser lands with its tests). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define LUKS2_PROBE_BYTES ((size_t)64 * 1024)
#define LUKS2_HDR_SIZE 16384
#define LUKS2_DATA_OFFSET ((uint64_t)16 * 1024 * 1024)
enum luks2_kind { LUKS2_BLANK = 0, LUKS2_VALID = 1 };
struct luks2_info {
  uint64_t seqid;
  char uuid[40];
  uint64_t segment_offset;
  uint32_t sector_size;
  uint32_t pbkdf2_iterations;
};
int luks2_probe(const uint8_t *buf, size_t len, enum luks2_kind *ret_kind,
                struct luks2_info *ret_info, char *why, size_t whylen);

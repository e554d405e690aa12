/* The LUKS2 header of the app's data disk, checked before tboot lets cryptsetup open it: the
 * host controls the disk, so only the one layout tboot itself formats is accepted (one PBKDF2
 * keyslot, one aes-xts segment at 16 MiB, no tokens, no integrity, bounded iterations), or a
 * blank disk that tboot may format.
 *
 * Errors: -EBADMSG (with a one-sentence reason in why) for anything else, -EINVAL for bad
 * arguments, -ENOMEM. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define LUKS2_PROBE_BYTES ((size_t)64 * 1024) /* bytes tboot reads from the start of the disk */
#define LUKS2_HDR_SIZE 16384                  /* the only header size tboot makes and accepts */
#define LUKS2_DATA_OFFSET ((uint64_t)16 * 1024 * 1024)

/* Bounds of the PBKDF2 iterations of the keyslot and the digest: the host must not be able to
 * stall the boot with a huge count, nor pass a trivially weak one. */
#define LUKS2_PBKDF2_MIN_ITERATIONS 1000u
#define LUKS2_PBKDF2_MAX_ITERATIONS 10000000u

enum luks2_kind { LUKS2_BLANK = 0, LUKS2_VALID = 1 };

struct luks2_info {
  uint64_t seqid;
  char uuid[40]; /* canonical lowercase 8-4-4-4-12, NUL-terminated */
  uint64_t segment_offset;
  uint32_t sector_size;
  uint32_t pbkdf2_iterations;
};

/* buf: the first len bytes of the disk (len >= LUKS2_PROBE_BYTES, or the whole disk when it is
 * smaller). LUKS2_BLANK: no LUKS magic at either header position and all probed bytes zero (a
 * new disk: tboot may format). LUKS2_VALID: both header copies pass the policy (ret_info filled,
 * may be NULL). Anything else is -EBADMSG with why (one sentence), including a LUKS1 header, a
 * damaged or garbage disk, one copy bad. */
int luks2_probe(const uint8_t *buf, size_t len, enum luks2_kind *ret_kind,
                struct luks2_info *ret_info, char *why, size_t whylen);

/* MRTD of a TDVF firmware image, replayed from its TDX metadata.
 *
 * Sources of the format: the Intel TDX Virtual Firmware Design Guide (TDVF metadata: the "TDVF"
 * descriptor {signature, length, version 1, number of sections} followed by 32-byte section
 * entries {u32 DataOffset, u32 RawDataSize, u64 MemoryAddress, u64 MemoryDataSize, u32 Type,
 * u32 Attributes}, attribute bit 0 = MR.EXTEND, bit 1 = PAGE.AUG), OVMF's reset vector (the GUIDed
 * table that ends 32 bytes before the end of the image: a footer {u16 total length, GUID
 * 96b582de-1fb2-45f7-baea-a366c55a082d}, entries read backwards as {data, u16 length, GUID}, the
 * TDX metadata offset entry e47a6535-984a-4798-865e-4685a7bf8ec2 whose last 4 data bytes give the
 * descriptor's offset from the end of the image), and the Intel TDX module ABI specification
 * (TDH.MEM.PAGE.ADD extends MRTD with a 128-byte block "MEM.PAGE.ADD" || 0 to 16 bytes || u64 GPA
 * || zeros; TDH.MR.EXTEND with "MR.EXTEND" || 0 to 16 bytes || u64 GPA || zeros, then the 256
 * bytes of the chunk; MRTD is the SHA-384 of the whole sequence). The order (page add, then the
 * page's 16 extends, page after page, sections in metadata order) is that of KVM's
 * KVM_TDX_INIT_MEM_REGION as QEMU uses it; upstream dstack-mr describes the same replay. */
#include <errno.h>
#include <string.h>

#include "attest/td_measure.h"
#include "base/buf.h"
#include "base/log.h"
#include "crypto/hash.h"

#define TDVF_PAGE 4096u
#define TDVF_CHUNK 256u
#define TDVF_ATTR_MR_EXTEND 0x1u
#define TDVF_ATTR_PAGE_AUG 0x2u
#define TDVF_MAX_SECTIONS 64u
#define TDVF_MAX_PAGES ((uint64_t)1 << 20) /* 4 GiB of pages replayed at most */
#define TDVF_EXTEND_SLACK ((uint64_t)64 * TDVF_PAGE) /* MR.EXTEND memory past the file size */
#define TDVF_BYTES_AFTER_FOOTER 32u
#define GUID_ENTRY_TAIL 18u /* u16 length + GUID */

static const uint8_t footer_guid[16] = {0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45,
                                        0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d};
static const uint8_t metadata_guid[16] = {0x35, 0x65, 0x7a, 0xe4, 0x4a, 0x98, 0x98, 0x47,
                                          0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2};

struct tdvf_section {
  uint32_t data_offset, raw_size;
  uint64_t address, mem_size;
  uint32_t type, attributes;
};

/* Offset of the TDVF descriptor: -ENOENT without the table or the entry. */
static int tdvf_find_descriptor(const uint8_t *fw, size_t len, size_t *ret) {
  if (len < TDVF_BYTES_AFTER_FOOTER + GUID_ENTRY_TAIL)
    return -ENOENT;
  size_t end = len - TDVF_BYTES_AFTER_FOOTER; /* the footer's GUID ends here */
  if (memcmp(fw + end - 16, footer_guid, 16) != 0)
    return -ENOENT;
  size_t table_len = le16_read(fw + end - GUID_ENTRY_TAIL);
  if (table_len < GUID_ENTRY_TAIL || table_len > end)
    return -EBADMSG;
  /* the footer's length counts the whole table with the footer */
  size_t lo = end - table_len;
  size_t pos = end - GUID_ENTRY_TAIL; /* the end of the last entry before the footer */
  while (pos >= lo + GUID_ENTRY_TAIL) {
    size_t elen = le16_read(fw + pos - GUID_ENTRY_TAIL);
    if (elen < GUID_ENTRY_TAIL || elen > pos - lo) {
      log_debug("tdvf: bad GUIDed table entry length %zu", elen);
      return -EBADMSG;
    }
    if (memcmp(fw + pos - 16, metadata_guid, 16) == 0) {
      if (elen < GUID_ENTRY_TAIL + 4)
        return -EBADMSG;
      uint32_t off = le32_read(fw + pos - GUID_ENTRY_TAIL - 4);
      if (off == 0 || off > len)
        return -EBADMSG;
      *ret = len - off;
      return 0;
    }
    pos -= elen;
  }
  return -ENOENT;
}

static int tdvf_sections(const uint8_t *fw, size_t len, size_t desc, struct tdvf_section *sec,
                         uint32_t *ret_n) {
  if (desc > len || len - desc < 16 || memcmp(fw + desc, "TDVF", 4) != 0) {
    log_debug("tdvf: no TDVF descriptor at %zu", desc);
    return -EBADMSG;
  }
  uint32_t version = le32_read(fw + desc + 8), n = le32_read(fw + desc + 12);
  if (version != 1 || n == 0 || n > TDVF_MAX_SECTIONS || (len - desc - 16) / 32 < n) {
    log_debug("tdvf: version %u with %u sections", version, n);
    return -EBADMSG;
  }
  uint64_t pages = 0, extended = 0;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *p = fw + desc + 16 + (size_t)i * 32;
    struct tdvf_section s = {
      .data_offset = le32_read(p), .raw_size = le32_read(p + 4),
      .address = le64_read(p + 8), .mem_size = le64_read(p + 16),
      .type = le32_read(p + 24), .attributes = le32_read(p + 28),
    };
    if (s.address % TDVF_PAGE || s.mem_size % TDVF_PAGE || s.raw_size > s.mem_size ||
        (uint64_t)s.data_offset + s.raw_size > len || s.address + s.mem_size < s.address) {
      log_debug("tdvf: section %u is malformed", i);
      return -EBADMSG;
    }
    /* extended pages hash their whole content; in TDVF they come from the file (BFV, CFV):
     * their total may not exceed the file's size (plus rounding), so a tiny firmware cannot
     * ask for gigabytes of hashing */
    if (s.attributes & TDVF_ATTR_MR_EXTEND) {
      extended += s.mem_size;
      if (extended > (uint64_t)len + TDVF_EXTEND_SLACK) {
        log_debug("tdvf: sections extend more memory than the firmware holds");
        return -EBADMSG;
      }
    }
    pages += s.mem_size / TDVF_PAGE;
    if (pages > TDVF_MAX_PAGES)
      return -EBADMSG;
    sec[i] = s;
  }
  *ret_n = n;
  return 0;
}

int td_mrtd_from_tdvf(const uint8_t *fw, size_t len, uint8_t out[48]) {
  _cleanup_(hash_ctx_freep) struct hash_ctx *h = NULL;
  struct tdvf_section sec[TDVF_MAX_SECTIONS];
  uint32_t n;
  size_t desc;
  int r;

  if ((!fw && len) || !out)
    return -EINVAL;
  if ((r = tdvf_find_descriptor(fw, len, &desc)) < 0 ||
      (r = tdvf_sections(fw, len, desc, sec, &n)) < 0)
    return r;
  if ((r = hash_ctx_new(HASH_SHA384, &h)) < 0)
    return r;
  for (uint32_t i = 0; i < n; i++) {
    const struct tdvf_section *s = &sec[i];
    for (uint64_t page = 0; page < s->mem_size / TDVF_PAGE; page++) {
      uint64_t gpa = s->address + page * TDVF_PAGE;
      uint8_t block[128];
      if (!(s->attributes & TDVF_ATTR_PAGE_AUG)) {
        memset(block, 0, sizeof(block));
        memcpy(block, "MEM.PAGE.ADD", 12);
        le64_write(block + 16, gpa);
        if ((r = hash_ctx_update(h, block, sizeof(block))) < 0)
          return r;
      }
      if (!(s->attributes & TDVF_ATTR_MR_EXTEND))
        continue;
      for (uint32_t c = 0; c < TDVF_PAGE / TDVF_CHUNK; c++) {
        uint64_t at = page * TDVF_PAGE + (uint64_t)c * TDVF_CHUNK; /* offset in the section */
        uint8_t chunk[TDVF_CHUNK] = {0}; /* memory past the raw data is zero */
        if (at < s->raw_size)
          memcpy(chunk, fw + s->data_offset + at, MIN((uint64_t)TDVF_CHUNK, s->raw_size - at));
        memset(block, 0, sizeof(block));
        memcpy(block, "MR.EXTEND", 9);
        le64_write(block + 16, gpa + (uint64_t)c * TDVF_CHUNK);
        if ((r = hash_ctx_update(h, block, sizeof(block))) < 0 ||
            (r = hash_ctx_update(h, chunk, sizeof(chunk))) < 0)
          return r;
      }
    }
  }
  return hash_ctx_final(h, out);
}

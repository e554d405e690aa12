/* Authenticode digest of a PE/COFF image (the kernel's EFI stub), as UEFI firmware measures an
 * EFI application. Layout facts from the Microsoft PE/COFF specification: DOS header e_lfanew at
 * 0x3c, "PE\0\0", the 20-byte COFF header, the optional header (PE32 magic 0x10b with data
 * directories at offset 96, PE32+ 0x20b at 112; CheckSum at 64, SizeOfHeaders at 60,
 * NumberOfRvaAndSizes just before the directories), the Certificate Table = directory 4 (a file
 * offset and size), 40-byte section headers (SizeOfRawData at 16, PointerToRawData at 20). */
#include <errno.h>
#include <string.h>

#include "attest/td_measure.h"
#include "base/buf.h"
#include "base/log.h"
#include "crypto/hash.h"

#define PE_MAX_SECTIONS 96 /* the PE/COFF limit */
#define PE_DIR_SECURITY 4
#define PE_MAX_DIRS 16

struct pe_range {
  uint64_t off, len;
};

static bool in_file(uint64_t off, uint64_t len, size_t size) {
  return off <= size && len <= size - off;
}

int pe_authenticode_sha384(const uint8_t *pe, size_t len, uint8_t out[48]) {
  _cleanup_(hash_ctx_freep) struct hash_ctx *h = NULL;
  struct pe_range sec[PE_MAX_SECTIONS];
  size_t nsec_used = 0;
  int r;

  if (!pe || !out)
    return -EINVAL;
  if (len < 0x40 || pe[0] != 'M' || pe[1] != 'Z')
    return -EBADMSG;
  uint64_t nt = le32_read(pe + 0x3c);
  if (!in_file(nt, 4 + 20, len) || memcmp(pe + nt, "PE\0\0", 4) != 0)
    return -EBADMSG;
  uint64_t coff = nt + 4;
  uint16_t nsec = le16_read(pe + coff + 2);
  uint16_t opt_size = le16_read(pe + coff + 16);
  uint64_t opt = coff + 20;
  if (!in_file(opt, opt_size, len) || opt_size < 2 || nsec > PE_MAX_SECTIONS)
    return -EBADMSG;
  uint16_t magic = le16_read(pe + opt);
  uint64_t dirs;
  if (magic == 0x10b)
    dirs = 96;
  else if (magic == 0x20b)
    dirs = 112;
  else
    return -EBADMSG;
  if (opt_size < dirs)
    return -EBADMSG;
  uint32_t ndirs = le32_read(pe + opt + dirs - 4);
  if (ndirs > PE_MAX_DIRS || dirs + (uint64_t)ndirs * 8 > opt_size)
    return -EBADMSG;

  uint64_t size_of_headers = le32_read(pe + opt + 60);
  uint64_t checksum = opt + 64;
  uint64_t sec_table = opt + opt_size;
  if (!in_file(sec_table, (uint64_t)nsec * 40, len) || size_of_headers > len ||
      size_of_headers < checksum + 4)
    return -EBADMSG;

  bool have_cert_dir = ndirs > PE_DIR_SECURITY;
  uint64_t cert_dir = opt + dirs + PE_DIR_SECURITY * 8;
  uint64_t cert_off = 0, cert_size = 0;
  if (have_cert_dir) {
    if (size_of_headers < cert_dir + 8)
      return -EBADMSG;
    cert_off = le32_read(pe + cert_dir);
    cert_size = le32_read(pe + cert_dir + 4);
    if (cert_size && !in_file(cert_off, cert_size, len))
      return -EBADMSG;
  }

  if ((r = hash_ctx_new(HASH_SHA384, &h)) < 0)
    return r;
  /* headers without CheckSum and the Certificate Table entry */
  if (have_cert_dir) {
    if ((r = hash_ctx_update(h, pe, checksum)) < 0 ||
        (r = hash_ctx_update(h, pe + checksum + 4, cert_dir - (checksum + 4))) < 0 ||
        (r = hash_ctx_update(h, pe + cert_dir + 8, size_of_headers - (cert_dir + 8))) < 0)
      return r;
  } else {
    if ((r = hash_ctx_update(h, pe, checksum)) < 0 ||
        (r = hash_ctx_update(h, pe + checksum + 4, size_of_headers - (checksum + 4))) < 0)
      return r;
  }

  /* sections with raw data, sorted by PointerToRawData (insertion sort, at most 96) */
  for (uint16_t i = 0; i < nsec; i++) {
    const uint8_t *s = pe + sec_table + (uint64_t)i * 40;
    struct pe_range cur = {.off = le32_read(s + 20), .len = le32_read(s + 16)};
    if (cur.len == 0)
      continue;
    if (!in_file(cur.off, cur.len, len)) {
      log_debug("pe: section %u [%llu, +%llu) outside the file", i, (unsigned long long)cur.off,
                (unsigned long long)cur.len);
      return -EBADMSG;
    }
    size_t j = nsec_used++;
    while (j > 0 && sec[j - 1].off > cur.off) {
      sec[j] = sec[j - 1];
      j--;
    }
    sec[j] = cur;
  }
  uint64_t sum = size_of_headers;
  for (size_t i = 0; i < nsec_used; i++) {
    if ((r = hash_ctx_update(h, pe + sec[i].off, sec[i].len)) < 0)
      return r;
    sum += sec[i].len;
  }

  /* whatever follows, except the certificate table */
  if (len > sum) {
    if (len < sum + cert_size)
      return -EBADMSG;
    uint64_t extra = len - sum - cert_size;
    if (extra && (r = hash_ctx_update(h, pe + sum, extra)) < 0)
      return r;
  }
  return hash_ctx_final(h, out);
}

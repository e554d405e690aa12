#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/eventlog.h"
#include "attest/image_meta.h"
#include "attest/td_measure.h"
#include "base/hex.h"
#include "crypto/hash.h"
#include "testutil.h"

/* Golden values of tests/data/td_measure/img and img-tdvf (written by make_image.py there).
 * They were computed once with this code and checked by tests/it/test_tdxctl_measure.py, which
 * recomputes every register in Python from the rules in td_measure.h, takes the kernel's
 * Authenticode digest from osslsigncode, and replays the MRTD of the TDVF firmware with its own
 * reading of the metadata. Here they pin the values against any later change. */
#define GOLD_KERNEL_AUTHENTICODE                                                                   \
  "4265c026c94fc41a9de9e8d019b34b0e64974efe2b54dd77d20aa1f3b541481b66fa274829ccb6e2f74ef2ef0f811c37"
#define GOLD_IMG_MRTD                                                                              \
  "24702c5ff5bdf084e0820c79880964bd57d81abe9a1c3602588a7af8be27f2fe5dd4f4876c6ea501bf67122f784e0c97"
#define GOLD_IMG_RTMR0_1_512                                                                       \
  "0d4950b2ec0df4142051654193c0594363fa57a13e60ecb9bf8883a8e892b241468139e205e407919c3f7711ae64c733"
#define GOLD_RTMR1                                                                                 \
  "408437000c49ca381ac64e2deb9526afca54d3da11f4d4ad223d3a63426dbe4c924f67eb9cab6167f9a568f1e40150a1"
#define GOLD_RTMR2                                                                                 \
  "f6710e4335590c9bdbca925861b0701d9b3a48b7efb91701db0d4a1b4df4a3694357a0e5b625ed595e0ca928614f11c4"
#define GOLD_TDVF_MRTD                                                                             \
  "36624d49a6405d762fecb2f799e73cb58b9337d44a92b5c26ecc25cc425654caf59772d0934029a49dd795cb9ba43bf5"
#define GOLD_TDVF_RTMR0_1_512                                                                      \
  "91135600ad5140482dbc8a8d84ef64f8315445d705c71fc239e0135654ba0634d9b404f4bf3edd5605babd5fa45b7e00"

static void assert_hex(const uint8_t *d, size_t n, const char *want) {
  char hex[2 * 64 + 1];
  assert_true(n <= 64);
  hex_encode(d, n, hex);
  assert_string_equal(hex, want);
}

/* ---- a small PE32+ built here: headers 0x200, .text at 0x200 (0x400), .data at 0x600 (0x200)
 * listed first in the section table, 40 trailing bytes, optionally a certificate table. */
#define PE_NT 0x80
#define PE_OPT (PE_NT + 24)
#define PE_SECTAB (PE_OPT + 240)
#define PE_CERT_DIR (PE_OPT + 112 + 4 * 8)

static void pe_build(struct buf *b, size_t cert_len) {
  buf_free(b);
  buf_init(b, 1 << 20);
  assert_int_equal(buf_append_zero(b, 0x828), 0);
  uint8_t *p = b->data;
  p[0] = 'M';
  p[1] = 'Z';
  le32_write(p + 0x3c, PE_NT);
  memcpy(p + PE_NT, "PE\0\0", 4);
  le16_write(p + PE_NT + 4, 0x8664);
  le16_write(p + PE_NT + 6, 3);         /* sections */
  le16_write(p + PE_NT + 4 + 16, 240);  /* SizeOfOptionalHeader */
  le16_write(p + PE_OPT, 0x20b);
  le32_write(p + PE_OPT + 60, 0x200);   /* SizeOfHeaders */
  le32_write(p + PE_OPT + 64, 0x1234);  /* CheckSum */
  le32_write(p + PE_OPT + 108, 16);     /* NumberOfRvaAndSizes */
  /* section table: .data (0x600, 0x200), .text (0x200, 0x400), .bss (no raw data) */
  memcpy(p + PE_SECTAB, ".data", 5);
  le32_write(p + PE_SECTAB + 16, 0x200);
  le32_write(p + PE_SECTAB + 20, 0x600);
  memcpy(p + PE_SECTAB + 40, ".text", 5);
  le32_write(p + PE_SECTAB + 40 + 16, 0x400);
  le32_write(p + PE_SECTAB + 40 + 20, 0x200);
  memcpy(p + PE_SECTAB + 80, ".bss", 4);
  for (size_t i = 0x200; i < 0x828; i++)
    p[i] = (uint8_t)(i * 7 + 1);
  if (cert_len) {
    size_t at = b->len;
    assert_int_equal(buf_append_zero(b, cert_len), 0);
    p = b->data;
    memset(p + at, 0xc5, cert_len);
    le32_write(p + PE_CERT_DIR, (uint32_t)at);
    le32_write(p + PE_CERT_DIR + 4, (uint32_t)cert_len);
  }
}

/* The digest computed the long way: the byte ranges the rules name, concatenated. */
static void pe_expected(const struct buf *pe, size_t cert_len, uint8_t out[48]) {
  _cleanup_buf_ struct buf s = BUF_INIT(1 << 20);
  const uint8_t *p = pe->data;
  assert_int_equal(buf_append(&s, p, PE_OPT + 64), 0);
  assert_int_equal(buf_append(&s, p + PE_OPT + 68, PE_CERT_DIR - (PE_OPT + 68)), 0);
  assert_int_equal(buf_append(&s, p + PE_CERT_DIR + 8, 0x200 - (PE_CERT_DIR + 8)), 0);
  assert_int_equal(buf_append(&s, p + 0x200, 0x400), 0); /* .text first: lower offset */
  assert_int_equal(buf_append(&s, p + 0x600, 0x200), 0);
  assert_int_equal(buf_append(&s, p + 0x800, pe->len - 0x800 - cert_len), 0);
  sha384(s.data, s.len, out);
}

static void test_pe_rules(void **state) {
  (void)state;
  uint8_t d[48], want[48], other[48];
  _cleanup_buf_ struct buf pe = BUF_INIT(0), signed_pe = BUF_INIT(0);

  pe_build(&pe, 0);
  pe_expected(&pe, 0, want);
  assert_int_equal(pe_authenticode_sha384(pe.data, pe.len, d), 0);
  assert_memory_equal(d, want, 48);

  /* signed: the certificate table and its directory entry do not count */
  pe_build(&signed_pe, 64);
  assert_int_equal(pe_authenticode_sha384(signed_pe.data, signed_pe.len, other), 0);
  assert_memory_equal(other, want, 48);
  signed_pe.data[signed_pe.len - 1] ^= 0xff; /* inside the certificate */
  signed_pe.data[PE_OPT + 64] ^= 0xff;       /* CheckSum */
  assert_int_equal(pe_authenticode_sha384(signed_pe.data, signed_pe.len, other), 0);
  assert_memory_equal(other, want, 48);

  /* everything else counts: a header byte, a section byte, a trailing byte */
  static const size_t at[] = {0x10, PE_OPT + 70, 0x1f0, 0x300, 0x700, 0x810};
  for (size_t i = 0; i < ARRAY_SIZE(at); i++) {
    pe.data[at[i]] ^= 1;
    assert_int_equal(pe_authenticode_sha384(pe.data, pe.len, other), 0);
    assert_memory_not_equal(other, want, 48);
    pe.data[at[i]] ^= 1;
  }
  /* sections are hashed in file order whatever the table's order (the table itself is part
   * of the headers, so the digest changes with it, but pe_expected still hashes .text first) */
  uint8_t tmp[40];
  memcpy(tmp, pe.data + PE_SECTAB, 40);
  memcpy(pe.data + PE_SECTAB, pe.data + PE_SECTAB + 40, 40);
  memcpy(pe.data + PE_SECTAB + 40, tmp, 40);
  pe_expected(&pe, 0, want);
  assert_int_equal(pe_authenticode_sha384(pe.data, pe.len, other), 0);
  assert_memory_equal(other, want, 48);
}

static void test_pe_golden(void **state) {
  (void)state;
  _cleanup_buf_ struct buf k = BUF_INIT(0);
  uint8_t d[48];
  tu_read_file(tu_source_path("tests/data/td_measure/img/bzImage"), &k);
  assert_int_equal(pe_authenticode_sha384(k.data, k.len, d), 0);
  assert_hex(d, 48, GOLD_KERNEL_AUTHENTICODE);
}

static void expect_bad_pe(struct buf *pe) {
  uint8_t d[48];
  assert_int_equal(pe_authenticode_sha384(pe->data, pe->len, d), -EBADMSG);
}

static void test_pe_malformed(void **state) {
  (void)state;
  uint8_t d[48];
  struct {
    size_t off;
    int width; /* 2 or 4 */
    uint32_t value;
  } bad[] = {
    {0, 2, 0x5a4e},                      /* not MZ */
    {0x3c, 4, 0xfffffff0},               /* e_lfanew out of the file */
    {0x3c, 4, 0x826},                    /* PE signature past the end */
    {PE_NT, 4, 0x00004550 ^ 1},          /* not PE\0\0 */
    {PE_OPT, 2, 0x20c},                  /* unknown magic */
    {PE_NT + 4 + 16, 2, 100},            /* optional header too small for its directories */
    {PE_NT + 4 + 16, 2, 0xffff},         /* optional header past the end */
    {PE_NT + 6, 2, 97},                  /* too many sections */
    {PE_NT + 6, 2, 80},                  /* section table past the end */
    {PE_OPT + 108, 4, 17},               /* too many data directories */
    {PE_OPT + 60, 4, 0x10000},           /* SizeOfHeaders past the end */
    {PE_OPT + 60, 4, 0x40},              /* SizeOfHeaders before the CheckSum */
    {PE_SECTAB + 20, 4, 0x800},          /* section data past the end */
    {PE_SECTAB + 16, 4, 0xffffffff},     /* huge section */
    {PE_CERT_DIR, 4, 0x800},             /* certificate table past the end */
    {PE_CERT_DIR + 4, 4, 0x1000},
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    _cleanup_buf_ struct buf pe = BUF_INIT(0);
    pe_build(&pe, 0);
    if (bad[i].width == 2)
      le16_write(pe.data + bad[i].off, (uint16_t)bad[i].value);
    else
      le32_write(pe.data + bad[i].off, bad[i].value);
    if (bad[i].off == PE_CERT_DIR)
      le32_write(pe.data + PE_CERT_DIR + 4, 0x100);
    if (bad[i].off == PE_CERT_DIR + 4)
      le32_write(pe.data + PE_CERT_DIR, 0x10);
    print_message("case %zu\n", i);
    expect_bad_pe(&pe);
  }
  /* a certificate table larger than what follows the sections */
  _cleanup_buf_ struct buf pe = BUF_INIT(0);
  pe_build(&pe, 0);
  le32_write(pe.data + PE_CERT_DIR, 0x700);
  le32_write(pe.data + PE_CERT_DIR + 4, 0x100);
  expect_bad_pe(&pe);
  /* every truncation fails cleanly */
  pe_build(&pe, 0);
  for (size_t n = 0; n < pe.len; n += 7) {
    int r = pe_authenticode_sha384(pe.data, n, d);
    assert_true(r == -EBADMSG || (r == 0 && n >= 0x800));
  }
  assert_int_equal(pe_authenticode_sha384(NULL, 0, d), -EINVAL);
}

/* ---- TDVF firmware built here: 32 KiB, descriptor at 0x100, one BFV section at 0x1000
 * (4 KiB, MR.EXTEND), one TD HOB section (page add only), one PAGE.AUG section. */
#define FW_SIZE 0x8000u

static const uint8_t footer_guid[16] = {0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45,
                                        0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d};
static const uint8_t meta_guid[16] = {0x35, 0x65, 0x7a, 0xe4, 0x4a, 0x98, 0x98, 0x47,
                                      0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2};

static void fw_section(uint8_t *p, uint32_t off, uint32_t raw, uint64_t gpa, uint64_t size,
                       uint32_t type, uint32_t attr) {
  le32_write(p, off);
  le32_write(p + 4, raw);
  le64_write(p + 8, gpa);
  le64_write(p + 16, size);
  le32_write(p + 24, type);
  le32_write(p + 28, attr);
}

static void fw_build(uint8_t *fw) {
  memset(fw, 0, FW_SIZE);
  for (size_t i = 0; i < 0x1000; i++)
    fw[0x1000 + i] = (uint8_t)(i * 11 + 3);
  memcpy(fw + 0x100, "TDVF", 4);
  le32_write(fw + 0x104, 16 + 3 * 32);
  le32_write(fw + 0x108, 1);
  le32_write(fw + 0x10c, 3);
  fw_section(fw + 0x110, 0x1000, 0x1000, 0xfffff000, 0x1000, 0, 1);
  fw_section(fw + 0x130, 0, 0, 0x809000, 0x2000, 2, 0);
  fw_section(fw + 0x150, 0, 0, 0x1000000, 0x10000, 4, 2);
  /* GUIDed table: metadata offset entry (22 bytes) + footer (18), ending at FW_SIZE - 32 */
  uint8_t *end = fw + FW_SIZE - 32;
  memcpy(end - 16, footer_guid, 16);
  le16_write(end - 18, 22 + 18);
  memcpy(end - 18 - 16, meta_guid, 16);
  le16_write(end - 18 - 18, 22);
  le32_write(end - 18 - 22, FW_SIZE - 0x100);
}

/* The expected MRTD: the TDX module's blocks written out one after the other. */
static void fw_expected(const uint8_t *fw, uint8_t out[48]) {
  _cleanup_buf_ struct buf s = BUF_INIT(1 << 20);
  uint8_t blk[128];
  /* BFV: one page: add, then 16 extends */
  memset(blk, 0, 128);
  memcpy(blk, "MEM.PAGE.ADD", 12);
  le64_write(blk + 16, 0xfffff000);
  assert_int_equal(buf_append(&s, blk, 128), 0);
  for (int c = 0; c < 16; c++) {
    memset(blk, 0, 128);
    memcpy(blk, "MR.EXTEND", 9);
    le64_write(blk + 16, 0xfffff000 + 256 * (uint64_t)c);
    assert_int_equal(buf_append(&s, blk, 128), 0);
    assert_int_equal(buf_append(&s, fw + 0x1000 + 256 * c, 256), 0);
  }
  /* TD HOB: two page adds */
  for (int pg = 0; pg < 2; pg++) {
    memset(blk, 0, 128);
    memcpy(blk, "MEM.PAGE.ADD", 12);
    le64_write(blk + 16, 0x809000 + 4096 * (uint64_t)pg);
    assert_int_equal(buf_append(&s, blk, 128), 0);
  }
  sha384(s.data, s.len, out);
}

static void test_tdvf(void **state) {
  (void)state;
  static uint8_t fw[FW_SIZE];
  uint8_t d[48], want[48];
  fw_build(fw);
  fw_expected(fw, want);
  assert_int_equal(td_mrtd_from_tdvf(fw, FW_SIZE, d), 0);
  assert_memory_equal(d, want, 48);
  /* a byte of the measured section counts, a byte elsewhere does not */
  fw[0x1800] ^= 1;
  assert_int_equal(td_mrtd_from_tdvf(fw, FW_SIZE, d), 0);
  assert_memory_not_equal(d, want, 48);
  fw[0x1800] ^= 1;
  fw[0x4000] ^= 1;
  assert_int_equal(td_mrtd_from_tdvf(fw, FW_SIZE, d), 0);
  assert_memory_equal(d, want, 48);
}

static void test_tdvf_malformed(void **state) {
  (void)state;
  static uint8_t fw[FW_SIZE];
  uint8_t d[48];
  uint8_t *end = fw + FW_SIZE - 32;

  /* no footer, or no metadata entry: not TDVF */
  fw_build(fw);
  end[-1] ^= 1;
  assert_int_equal(td_mrtd_from_tdvf(fw, FW_SIZE, d), -ENOENT);
  fw_build(fw);
  end[-18 - 1] ^= 1;
  assert_int_equal(td_mrtd_from_tdvf(fw, FW_SIZE, d), -ENOENT);
  assert_int_equal(td_mrtd_from_tdvf(fw, 40, d), -ENOENT);
  assert_int_equal(td_mrtd_from_tdvf(fw, 0, d), -ENOENT);

  struct {
    size_t off;
    int width;
    uint64_t value;
  } bad[] = {
    {FW_SIZE - 32 - 18, 2, 0},           /* table length below one entry */
    {FW_SIZE - 32 - 18, 2, 0xffff},      /* table length past the start */
    {FW_SIZE - 32 - 36, 2, 0},           /* entry length 0 */
    {FW_SIZE - 32 - 36, 2, 30},          /* entry length past the table */
    {FW_SIZE - 32 - 40, 4, 0},           /* descriptor offset 0 */
    {FW_SIZE - 32 - 40, 4, FW_SIZE + 1}, /* descriptor offset before the image */
    {FW_SIZE - 32 - 40, 4, 8},           /* descriptor too close to the end */
    {0x100, 4, 0x46564454 ^ 1},          /* not "TDVF" */
    {0x108, 4, 2},                       /* version */
    {0x10c, 4, 0},                       /* no sections */
    {0x10c, 4, 65},                      /* too many sections */
    {0x10c, 4, 1000},                    /* sections past the end */
    {0x118, 8, 0xfffff001},              /* unaligned address */
    {0x120, 8, 0x1001},                  /* unaligned size */
    {0x114, 4, 0x2000},                  /* raw larger than memory */
    {0x110, 4, FW_SIZE - 0x800},         /* raw data past the end */
    {0x160, 8, (uint64_t)1 << 40},       /* too many pages */
    {0x118, 8, 0xfffffffffffff000},      /* address wraps */
    {0x120, 8, 0x4000000},               /* extends 64 MiB from a small file */
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    fw_build(fw);
    if (bad[i].width == 2)
      le16_write(fw + bad[i].off, (uint16_t)bad[i].value);
    else if (bad[i].width == 4)
      le32_write(fw + bad[i].off, (uint32_t)bad[i].value);
    else
      le64_write(fw + bad[i].off, bad[i].value);
    print_message("case %zu\n", i);
    assert_int_equal(td_mrtd_from_tdvf(fw, FW_SIZE, d), -EBADMSG);
  }
}

/* ---- whole measurements from blobs */
struct blobs {
  struct buf kernel, initrd, fw;
  struct td_measure_blobs in;
};

static void blobs_init(struct blobs *b, bool tdvf) {
  pe_build(&b->kernel, 32);
  buf_init(&b->initrd, 4096);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(buf_append_u8(&b->initrd, (uint8_t)i), 0);
  buf_init(&b->fw, FW_SIZE);
  if (tdvf) {
    assert_int_equal(buf_append_zero(&b->fw, FW_SIZE), 0);
    fw_build(b->fw.data);
  }
  b->in = (struct td_measure_blobs){
    .kernel = buf_slice(&b->kernel),
    .initrd = buf_slice(&b->initrd),
    .firmware = buf_slice(&b->fw),
    .cmdline = "console=ttyS0 caf\xc3\xa9",
    .vcpus = 2,
    .memory_mb = 2048,
  };
}

static void blobs_free(struct blobs *b) {
  buf_free(&b->kernel);
  buf_free(&b->initrd);
  buf_free(&b->fw);
}

/* Which registers differ: bit 0 MRTD, bits 1..3 RTMR0..2. */
static unsigned diff(const struct td_measurements *a, const struct td_measurements *b) {
  unsigned m = memcmp(a->mrtd, b->mrtd, 48) != 0;
  for (int i = 0; i < 3; i++)
    if (memcmp(a->rtmr[i], b->rtmr[i], 48) != 0)
      m |= 2u << i;
  return m;
}

static void test_changes(void **state) {
  (void)state;
  struct blobs b = {0};
  struct td_measurements base, m;
  blobs_init(&b, false);
  assert_int_equal(td_measure_blobs(&b.in, &base, NULL), 0);
  assert_true(base.simulated_mrtd);
  assert_true(base.simulated_rtmr0);

  b.kernel.data[0x300] ^= 1;
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), 0);
  assert_int_equal(diff(&base, &m), 1u << 2);
  b.kernel.data[0x300] ^= 1;
  /* the kernel's certificate table is not measured */
  b.kernel.data[b.kernel.len - 1] ^= 1;
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), 0);
  assert_int_equal(diff(&base, &m), 0);

  b.initrd.data[999] ^= 1;
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), 0);
  assert_int_equal(diff(&base, &m), 1u << 3);
  b.initrd.data[999] ^= 1;

  b.in.cmdline = "console=ttyS0 caf\xc3\xa8";
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), 0);
  assert_int_equal(diff(&base, &m), 1u << 3);
  b.in.cmdline = "console=ttyS0 caf\xc3\xa9";

  b.in.vcpus = 3;
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), 0);
  assert_int_equal(diff(&base, &m), 1u << 1);
  b.in.vcpus = 2;
  b.in.memory_mb = 2049;
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), 0);
  assert_int_equal(diff(&base, &m), 1u << 1);
  b.in.memory_mb = 2048;

  /* a firmware without TDVF metadata: simulated MRTD and RTMR0 change */
  uint8_t junk[100] = {1};
  b.in.firmware = SLICE(junk, sizeof(junk));
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), 0);
  assert_int_equal(diff(&base, &m), 1u | (1u << 1));
  assert_true(m.simulated_mrtd);

  /* the same inputs, the same values */
  b.in.firmware = SLICE(NULL, 0);
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), 0);
  assert_int_equal(diff(&base, &m), 0);
  blobs_free(&b);
}

static void test_tdvf_mrtd_used(void **state) {
  (void)state;
  struct blobs b = {0};
  struct td_measurements m;
  uint8_t want[48];
  blobs_init(&b, true);
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), 0);
  assert_false(m.simulated_mrtd);
  assert_true(m.simulated_rtmr0);
  fw_expected(b.fw.data, want);
  assert_memory_equal(m.mrtd, want, 48);
  /* malformed TDVF metadata is an error, not a silent fallback */
  le32_write(b.fw.data + 0x108, 7);
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), -EBADMSG);
  blobs_free(&b);
}

static void test_ccel_replays(void **state) {
  (void)state;
  struct blobs b = {0};
  struct td_measurements m;
  _cleanup_buf_ struct buf ccel = BUF_INIT(1 << 20);
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  uint8_t rtmr[EVENTLOG_N_RTMR][48];
  static const uint8_t zero[48];

  blobs_init(&b, false);
  assert_int_equal(buf_append_str(&ccel, "keep"), 0); /* appended after what is there */
  assert_int_equal(td_measure_blobs(&b.in, &m, &ccel), 0);
  assert_memory_equal(ccel.data, "keep", 4);
  assert_int_equal(eventlog_parse_ccel(ccel.data + 4, ccel.len - 4, &log), 0);
  assert_int_equal(log.n, 13 + 5 + 2);
  assert_int_equal(eventlog_replay(&log, rtmr), 0);
  for (int i = 0; i < 3; i++)
    assert_memory_equal(rtmr[i], m.rtmr[i], 48);
  assert_memory_equal(rtmr[3], zero, 48);
  assert_int_equal(log.ev[11].imr, 1);
  assert_int_equal(log.ev[11].event_type, 0x80000003u);
  assert_int_equal(log.ev[16].imr, 2);
  assert_int_equal(log.ev[16].event_type, 6);
  /* the load options event digest is the UTF-16LE text with " initrd=initrd" and a NUL */
  static const char opts[] = "console=ttyS0 caf\xc3\xa9 initrd=initrd";
  _cleanup_buf_ struct buf u16 = BUF_INIT(1024);
  for (const char *p = opts; *p; p++) {
    if ((uint8_t)*p == 0xc3) {
      assert_int_equal(buf_append_u16le(&u16, 0xe9), 0);
      p++;
    } else {
      assert_int_equal(buf_append_u16le(&u16, (uint8_t)*p), 0);
    }
  }
  assert_int_equal(buf_append_u16le(&u16, 0), 0);
  uint8_t d[48];
  sha384(u16.data, u16.len, d);
  assert_memory_equal(log.ev[16].digest, d, 48);
  sha384(b.initrd.data, b.initrd.len, d);
  assert_memory_equal(log.ev[17].digest, d, 48);

  /* a cap too small: -ENOBUFS and the buffer as it was */
  struct buf small = BUF_INIT(100);
  assert_int_equal(td_measure_blobs(&b.in, &m, &small), -ENOBUFS);
  assert_int_equal(small.len, 0);
  buf_free(&small);
  blobs_free(&b);
}

/* The events that are not simulated carry the digests real TDVF logs have (tests/vectors). */
static void test_faithful_events_match_real_log(void **state) {
  (void)state;
  struct blobs b = {0};
  struct td_measurements m;
  _cleanup_buf_ struct buf ccel = BUF_INIT(1 << 20), real = BUF_INIT(0);
  _cleanup_eventlog_ struct eventlog ours = EVENTLOG_INIT, theirs = EVENTLOG_INIT;

  blobs_init(&b, false);
  assert_int_equal(td_measure_blobs(&b.in, &m, &ccel), 0);
  assert_int_equal(eventlog_parse_ccel(ccel.data, ccel.len, &ours), 0);
  tu_read_vector("dstack/ccel.bin", false, &real);
  assert_int_equal(eventlog_parse_ccel(real.data, real.len, &theirs), 0);
  /* the Spec ID header event is byte for byte TDVF's (65 bytes) */
  assert_true(ccel.len > 65 && real.len > 65);
  assert_memory_equal(ccel.data, real.data, 65);
  /* dstack's log has no RTMR2 events (ours: 16 and 17, before ExitBootServices) */
  assert_int_equal(theirs.n, ours.n - 2);
  assert_int_equal(ours.ev[16].imr, 2);
  assert_int_equal(ours.ev[17].imr, 2);
  for (size_t k = 0; k < ours.n; k++) {
    if (k == 16 || k == 17)
      continue;
    const struct tdx_event *a = &ours.ev[k], *t = &theirs.ev[k < 16 ? k : k - 2];
    print_message("event %zu\n", k);
    /* every event has the real register and type at the real place */
    assert_int_equal(a->imr, t->imr);
    assert_int_equal(a->event_type, t->event_type);
    /* the digests are the real ones except the simulated RTMR0 events (TD HOB, CFV, ACPI)
     * and the kernel */
    bool own = k <= 1 || (k >= 8 && k <= 10) || k == 11;
    if (!own)
      assert_memory_equal(a->digest, t->digest, 48);
  }
  blobs_free(&b);
}

static void test_bad_input(void **state) {
  (void)state;
  struct blobs b = {0};
  struct td_measurements m;
  blobs_init(&b, false);
  b.in.vcpus = 0;
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), -EINVAL);
  b.in.vcpus = 1;
  b.in.memory_mb = 0;
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), -EINVAL);
  b.in.memory_mb = 1;
  b.in.cmdline = "bad \xff utf-8";
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), -EBADMSG);
  b.in.cmdline = "";
  b.in.kernel = buf_slice(&b.initrd); /* not a PE */
  assert_int_equal(td_measure_blobs(&b.in, &m, NULL), -EBADMSG);
  assert_int_equal(td_measure_blobs(NULL, &m, NULL), -EINVAL);
  assert_int_equal(td_measure_image(NULL, &m, NULL), -EINVAL);
  blobs_free(&b);
}

static void test_image_golden(void **state) {
  (void)state;
  struct image_meta meta = {0};
  struct td_measurements m;
  char *why = NULL;

  assert_int_equal(image_meta_load(tu_source_path("tests/data/td_measure/img"), &meta, &why), 0);
  struct td_measure_input in = {.image = &meta, .vcpus = 1, .memory_mb = 512};
  assert_int_equal(td_measure_image(&in, &m, NULL), 0);
  assert_true(m.simulated_mrtd);
  assert_hex(m.mrtd, 48, GOLD_IMG_MRTD);
  assert_hex(m.rtmr[0], 48, GOLD_IMG_RTMR0_1_512);
  assert_hex(m.rtmr[1], 48, GOLD_RTMR1);
  assert_hex(m.rtmr[2], 48, GOLD_RTMR2);
  image_meta_free(&meta);

  assert_int_equal(
    image_meta_load(tu_source_path("tests/data/td_measure/img-tdvf"), &meta, &why), 0);
  in.image = &meta;
  assert_int_equal(td_measure_image(&in, &m, NULL), 0);
  assert_false(m.simulated_mrtd);
  assert_hex(m.mrtd, 48, GOLD_TDVF_MRTD);
  assert_hex(m.rtmr[0], 48, GOLD_TDVF_RTMR0_1_512);
  assert_hex(m.rtmr[1], 48, GOLD_RTMR1);
  assert_hex(m.rtmr[2], 48, GOLD_RTMR2);

  /* a file that vanished after loading is an error */
  char *initrd = meta.initrd;
  meta.initrd = (char *)"/nonexistent/initrd";
  assert_int_equal(td_measure_image(&in, &m, NULL), -ENOENT);
  meta.initrd = initrd;
  image_meta_free(&meta);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pe_rules),
    cmocka_unit_test(test_pe_golden),
    cmocka_unit_test(test_pe_malformed),
    cmocka_unit_test(test_tdvf),
    cmocka_unit_test(test_tdvf_malformed),
    cmocka_unit_test(test_changes),
    cmocka_unit_test(test_tdvf_mrtd_used),
    cmocka_unit_test(test_ccel_replays),
    cmocka_unit_test(test_faithful_events_match_real_log),
    cmocka_unit_test(test_bad_input),
    cmocka_unit_test(test_image_golden),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

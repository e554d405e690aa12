#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/eventlog.h"
#include "base/base64.h"
#include "base/hex.h"
#include "crypto/hash.h"
#include "testutil.h"

/* ---- helpers ---- */

static void assert_hex48(const uint8_t v[48], const char *hex) {
  char h[97];
  if (strcmp(hex, "0") == 0) {
    uint8_t z[48] = {0};
    assert_memory_equal(v, z, 48);
    return;
  }
  hex_encode(v, 48, h);
  assert_string_equal(h, hex);
}

static void parse_ccel_vector(const char *rel, struct eventlog *log) {
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  tu_read_vector(rel, false, &b);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, log), 0);
}

/* Spec ID header event (legacy format) listing the given algorithms. */
static void put_spec_header(struct buf *b, const uint16_t *algs, const uint16_t *sizes, size_t n) {
  _cleanup_buf_ struct buf ev = BUF_INIT(4096);
  assert_int_equal(buf_append(&ev, "Spec ID Event03", 16), 0);
  assert_int_equal(buf_append_u32le(&ev, 0), 0); /* platform class */
  assert_int_equal(buf_append(&ev, "\x00\x02\x00\x02", 4), 0);
  assert_int_equal(buf_append_u32le(&ev, (uint32_t)n), 0);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(buf_append_u16le(&ev, algs[i]), 0);
    assert_int_equal(buf_append_u16le(&ev, sizes[i]), 0);
  }
  assert_int_equal(buf_append_u8(&ev, 0), 0); /* vendor info size */
  assert_int_equal(buf_append_u32le(b, 0), 0);
  assert_int_equal(buf_append_u32le(b, 3), 0);
  assert_int_equal(buf_append_zero(b, 20), 0);
  assert_int_equal(buf_append_u32le(b, (uint32_t)ev.len), 0);
  assert_int_equal(buf_append(b, ev.data, ev.len), 0);
}

static void put_sha384_header(struct buf *b) {
  static const uint16_t a[] = {0x000c}, s[] = {48};
  put_spec_header(b, a, s, 1);
}

/* TCG_PCR_EVENT2 with one SHA-384 digest filled with byte fill. */
static void put_event2(struct buf *b, uint32_t mr, uint32_t type, uint8_t fill, const void *data,
                       uint32_t len) {
  uint8_t d[48];
  memset(d, fill, sizeof(d));
  assert_int_equal(buf_append_u32le(b, mr), 0);
  assert_int_equal(buf_append_u32le(b, type), 0);
  assert_int_equal(buf_append_u32le(b, 1), 0);
  assert_int_equal(buf_append_u16le(b, 0x000c), 0);
  assert_int_equal(buf_append(b, d, 48), 0);
  assert_int_equal(buf_append_u32le(b, len), 0);
  if (len)
    assert_int_equal(buf_append(b, data, len), 0);
}

static void chain(uint8_t mr[48], const uint8_t d[48]) {
  uint8_t in[96];
  memcpy(in, mr, 48);
  memcpy(in + 48, d, 48);
  sha384(in, 96, mr);
}

/* ---- CCEL: replays of real logs ---- */

static const struct {
  const char *file;
  const char *rtmr[4];
} ccel_vectors[] = {
    {"trustee/eventlog/CCEL_data",
     {"2dc712306a963eadb894ad47dbaa17df44814151555aee11cbb843becca88950ffd079664902e6f22c66f7c8213543f4",
      "0fa3be56af61208bbd179dc7b124988eb929319154663c539d6f46445ecac2fec287075047ff7bd1922829fec28cd3cf",
      "0", "0"}},
    {"trustee/eventlog/CCEL_data_ovmf",
     {"8566f998798db09443b244c62de9a3041fb02e2e6936c4396d784bba2e90177329ec5aba3bb484404f2ab9cc90abe193",
      "775b9f6bfe99f8a31396f0d0218e67ffa796d3b96ccf961cbb0deba48c79c00f082cda1a5567c1c16305f1fc210c13c6",
      "94eaf7a7bf398ed8d888c91057ae0261802e4f3df084213a76ca7f0b5055ac9d2241de43cd58d9e8b49c503bbf25f34a",
      "0"}},
    {"trustee/eventlog/CCEL_data_grub",
     {"cec0a104f691f60da2387fea3c2de00c4ac035e2bb479ff02edcce69039d9e9907f0b3e55031da3dc7038f423adebd79",
      "6c289e0c62182d41ebe97bdbc9872d10998a08eaa86adcdc684001a363207ee72942c7522cdf00a4bbc3d784bed7b670",
      "08919d017ba0e52cd6d966351c7de16fe76c1d3d3d3da4554239e4c7d16cb8b82a94e7eaea3a0e6e18eb690b999fd31e",
      "0"}},
    {"trustee/eventlog/CCEL_data_gcp",
     {"3300980705adf09d28b707b79699d9874892164280832be2c386a715b6e204e0897fb564a064f810659207ba862b304f",
      "204d49f78d29918fe7b2f694e76653861a0c2a018987d2c3a54266eff737232524cf0af68c4d180e2f8c2c0937f21967",
      "0", "0"}},
    {"trustee/eventlog/CCEL_data_grub_gke",
     {"bc9945139042cf2cc75caf920aa57f14884ecfd7e893bccc51250c8ce90eb53ce72741e6adaa18183eb1331a87d4544a",
      "c17cb288a4dee302bb9ed8d27257a168f3264ad68cab53757f37eeaa7039657fa887cad65cf910e0fdc435ff110f8a7b",
      "334aeba2c985f8886cea97d1ecffbd512769d528b9a94009583db667ad7d2faa7d37fa145d75b192ceee2d2f10b2eb6d",
      "0"}},
    {"go-tdx-guest/ccel/ccel_data.dat",
     {"3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6",
      "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1",
      "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1",
      "0"}},
    {"dstack/ccel.bin",
     {"274c2344116db7c663470693b5ba62b8621eac28cb41d2f816ddf188f9f423f900a1c44d32386fd3c993dc814e62af9d",
      "bdcf4ee0f7fdfe7c73fbb19ded73193aee23a6726b86d3b282ea097cf4c9ed7a0db21b5c1ccd513e410d90e310836b26",
      "0", "0"}},
};

static void test_ccel_replay_vectors(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(ccel_vectors); i++) {
    _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
    uint8_t rtmr[4][48];
    parse_ccel_vector(ccel_vectors[i].file, &log);
    assert_true(log.n > 0);
    assert_int_equal(eventlog_replay(&log, rtmr), 0);
    for (int k = 0; k < 4; k++)
      assert_hex48(rtmr[k], ccel_vectors[i].rtmr[k]);
  }
}

static void test_ccel_changed_rtmr_mismatch(void **state) {
  (void)state;
  _cleanup_eventlog_ struct eventlog a = EVENTLOG_INIT, g = EVENTLOG_INIT;
  _cleanup_buf_ struct buf want = BUF_INIT(48);
  uint8_t rtmr[4][48];
  parse_ccel_vector("trustee/eventlog/CCEL_data", &a);
  assert_int_equal(eventlog_replay(&a, rtmr), 0);
  tu_hex("2fa3be56af61208bbd179dc7b124988eb929319154663c539d6f46445ecac2fec287075047ff7bd1922829fec28cd3cf",
         &want);
  assert_memory_not_equal(rtmr[1], want.data, 48);

  parse_ccel_vector("trustee/eventlog/CCEL_data_gcp", &g);
  assert_int_equal(eventlog_replay(&g, rtmr), 0);
  buf_reset(&want);
  tu_hex("3300980705adf09d28b707b79699d9874892164280832be2c386a715b6e204e0897fb564a064f810659207ba862b304e",
         &want);
  assert_memory_not_equal(rtmr[0], want.data, 48);

  /* A tampered event digest changes the replay. */
  uint8_t before[4][48], after[4][48];
  assert_int_equal(eventlog_replay(&a, before), 0);
  a.ev[3].digest[0] ^= 1;
  assert_int_equal(eventlog_replay(&a, after), 0);
  assert_memory_not_equal(before, after, sizeof(before));
}

static void test_ccel_sm3_rejected(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  struct eventlog log;
  tu_read_vector("trustee/eventlog/CCEL_data_csv", false, &b);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -ENOTSUP);
  assert_int_equal(log.n, 0);
  assert_null(log.ev);
}

/* dstack/cc_eventlog__tests__parse_ccel.snap: per-event imr_index, event_type, digest, event. */
static void test_ccel_dstack_snap(void **state) {
  (void)state;
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  _cleanup_buf_ struct buf snap = BUF_INIT(0);
  parse_ccel_vector("dstack/ccel.bin", &log);
  tu_read_vector("dstack/cc_eventlog__tests__parse_ccel.snap", false, &snap);
  assert_int_equal(buf_terminate(&snap), 0);

  const char *p = (const char *)snap.data;
  size_t i = 0;
  while ((p = strstr(p, "TcgEventLog {"))) {
    unsigned long imr_index, type;
    const char *q;
    assert_true(i < log.n);
    assert_non_null(q = strstr(p, "imr_index: "));
    assert_int_equal(sscanf(q, "imr_index: %lu,", &imr_index), 1);
    assert_non_null(q = strstr(q, "event_type: "));
    assert_int_equal(sscanf(q, "event_type: %lu,", &type), 1);
    assert_non_null(q = strstr(q, "digests: [\n"));
    assert_non_null(q = strchr(q, '"'));
    char dig[97] = {0};
    memcpy(dig, q + 1, 96);
    assert_int_equal(q[97], '"');
    assert_non_null(q = strstr(q, "event: \""));
    q += strlen("event: \"");
    const char *qe = strchr(q, '"');
    assert_non_null(qe);

    const struct tdx_event *e = &log.ev[i];
    assert_int_equal(e->imr, imr_index - 1);
    assert_int_equal(e->event_type, type);
    assert_hex48(e->digest, dig);
    _cleanup_buf_ struct buf payload = BUF_INIT(1 << 20);
    assert_int_equal(hex_decode_buf(q, (size_t)(qe - q), false, &payload), 0);
    assert_int_equal(e->payload_len, payload.len);
    if (payload.len)
      assert_memory_equal(e->payload, payload.data, payload.len);
    assert_string_equal(e->event, "");
    i++;
    p = qe;
  }
  assert_int_equal(i, 18);
  assert_int_equal(log.n, i);
}

/* The -2 snapshot is the same log as newest-format JSON: our JSON output must equal it. */
static void test_ccel_dstack_snap_json(void **state) {
  (void)state;
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT, back = EVENTLOG_INIT;
  _cleanup_buf_ struct buf snap = BUF_INIT(0);
  parse_ccel_vector("dstack/ccel.bin", &log);
  tu_read_vector("dstack/cc_eventlog__tests__parse_ccel-2.snap", false, &snap);
  assert_int_equal(buf_terminate(&snap), 0);
  const char *arr = strstr((const char *)snap.data, "\n---\n");
  assert_non_null(arr);
  arr += 5;

  json_error_t err;
  json_t *want = json_loads(arr, 0, &err);
  assert_non_null(want);
  json_t *got;
  assert_int_equal(eventlog_to_json(&log, EVENTLOG_JSON_FULL, &got), 0);
  assert_int_equal(json_array_size(got), 18);
  assert_true(json_equal(got, want));
  json_decref(got);
  json_decref(want);

  /* The snapshot text parses as a newest-format log and replays to the same RTMRs. */
  uint8_t r1[4][48], r2[4][48];
  assert_int_equal(eventlog_parse_json(arr, strlen(arr), &back), 0);
  assert_int_equal(back.n, 18);
  assert_int_equal(eventlog_replay(&log, r1), 0);
  assert_int_equal(eventlog_replay(&back, r2), 0);
  assert_memory_equal(r1, r2, sizeof(r1));
}

/* trustee *_out.json list every event with its MR index and SHA-384 digest. */
static void test_ccel_trustee_out_json(void **state) {
  (void)state;
  static const char *files[] = {"CCEL_data", "CCEL_data_ovmf", "CCEL_data_grub",
                                "CCEL_data_grub_gke", "CCEL_AAEL_alibabacloud"};
  for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
    char rel[256];
    _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
    snprintf(rel, sizeof(rel), "trustee/eventlog/%s", files[f]);
    parse_ccel_vector(rel, &log);
    snprintf(rel, sizeof(rel), "trustee/eventlog/%s_out.json", files[f]);
    json_error_t err;
    json_t *j = json_load_file(tu_vector_path(rel), 0, &err);
    assert_non_null(j);
    json_t *list = json_object_get(j, "uefi_event_logs");
    assert_int_equal(json_array_size(list), log.n);
    for (size_t i = 0; i < log.n; i++) {
      json_t *o = json_array_get(list, i);
      json_int_t index = json_integer_value(json_object_get(o, "index"));
      const char *d = json_string_value(
          json_object_get(json_array_get(json_object_get(o, "digests"), 0), "digest"));
      assert_non_null(d);
      assert_int_equal(log.ev[i].imr, index == 0 ? EVENTLOG_IMR_MRTD : (uint32_t)(index - 1));
      assert_hex48(log.ev[i].digest, d);
    }
    json_decref(j);
  }
  /* the Alibaba log extends RTMR3 from its AAEL events */
  _cleanup_eventlog_ struct eventlog al = EVENTLOG_INIT;
  uint8_t rtmr[4][48], z[48] = {0};
  parse_ccel_vector("trustee/eventlog/CCEL_AAEL_alibabacloud", &al);
  assert_int_equal(eventlog_replay(&al, rtmr), 0);
  assert_memory_not_equal(rtmr[3], z, 48);
}

static void test_ccel_table(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(0), data = BUF_INIT(0);
  struct ccel_table t;
  tu_read_vector("go-tdx-guest/ccel/ccel_table.dat", false, &b);
  tu_read_vector("go-tdx-guest/ccel/ccel_data.dat", false, &data);
  assert_int_equal(eventlog_parse_ccel_table(b.data, b.len, &t), 0);
  assert_int_equal(t.cc_type, 2);
  assert_int_equal(t.cc_subtype, 0);
  assert_int_equal(t.revision, 1);
  assert_string_equal(t.oem_id, "INTEL ");
  assert_string_equal(t.oem_table_id, "EDK2    ");
  assert_int_equal(t.laml, data.len);
  assert_int_equal(t.lasa, 0xbedbf000ULL);

  assert_int_equal(eventlog_parse_ccel_table(b.data, 55, &t), -EBADMSG);
  b.data[50] ^= 1; /* LASA byte: checksum no longer sums to zero */
  assert_int_equal(eventlog_parse_ccel_table(b.data, b.len, &t), -EBADMSG);
  b.data[50] ^= 1;
  b.data[0] = 'X';
  assert_int_equal(eventlog_parse_ccel_table(b.data, b.len, &t), -EBADMSG);
  b.data[0] = 'C';
  le32_write(b.data + 4, 200); /* length past the data */
  assert_int_equal(eventlog_parse_ccel_table(b.data, b.len, &t), -EBADMSG);
}

/* The quote of the machine that wrote ccel_data.dat: RTMR0..2 equal the replay. */
static void test_ccel_matches_quote(void **state) {
  (void)state;
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  _cleanup_buf_ struct buf q = BUF_INIT(0);
  uint8_t rtmr[4][48];
  parse_ccel_vector("go-tdx-guest/ccel/ccel_data.dat", &log);
  tu_read_vector("go-tdx-guest/ccel/cos-113-tdx-quote.dat", false, &q);
  assert_true(q.len > 48 + 328 + 4 * 48);
  assert_int_equal(eventlog_replay(&log, rtmr), 0);
  for (int i = 0; i < 4; i++)
    assert_memory_equal(rtmr[i], q.data + 48 + 328 + 48 * i, 48);
}

/* Truncation at every byte of the first events: only event boundaries are valid ends. */
static void test_ccel_truncated(void **state) {
  (void)state;
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  tu_read_vector("dstack/ccel.bin", false, &b);
  size_t bounds[5], nb = 0;
  size_t off = 32 + le32_read(b.data + 28);
  bounds[nb++] = off;
  for (int k = 0; k < 4; k++) {
    uint32_t count = le32_read(b.data + off + 8);
    assert_int_equal(count, 1);
    off += 12 + count * 50;
    off += 4 + le32_read(b.data + off);
    bounds[nb++] = off;
  }
  for (size_t cut = 0; cut <= bounds[4]; cut++) {
    struct eventlog log;
    int r = eventlog_parse_ccel(b.data, cut, &log);
    size_t k;
    for (k = 0; k < nb && bounds[k] != cut; k++)
      ;
    if (k < nb) {
      assert_int_equal(r, 0);
      assert_int_equal(log.n, k);
      eventlog_free(&log);
    } else {
      if (r != -EBADMSG)
        fail_msg("cut at %zu: %d", cut, r);
      assert_int_equal(log.n, 0);
      assert_null(log.ev);
    }
  }
}

static void test_ccel_bad_header(void **state) {
  (void)state;
  struct eventlog log;
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 20);
  put_sha384_header(&b);
  put_event2(&b, 1, 1, 0xaa, "x", 1);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), 0);
  assert_int_equal(log.n, 1);
  assert_int_equal(log.ev[0].imr, 0);
  eventlog_free(&log);

  /* signature */
  b.data[32] = 'X';
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -EBADMSG);
  b.data[32] = 'S';
  /* first event type not EV_NO_ACTION */
  b.data[4] = 1;
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -EBADMSG);
  b.data[4] = 3;
  /* header event size past the data / over the cap */
  le32_write(b.data + 28, 0x7fffffff);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -ENOBUFS);
  le32_write(b.data + 28, (uint32_t)b.len);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -EBADMSG);
  le32_write(b.data + 28, 16); /* too short for the Spec ID fields */
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -EBADMSG);
  le32_write(b.data + 28, 33);

  /* algorithm count 0 and too many */
  le32_write(b.data + 32 + 24, 0);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -EBADMSG);
  le32_write(b.data + 32 + 24, 9);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -EBADMSG);
  le32_write(b.data + 32 + 24, 2); /* runs past the header event */
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -EBADMSG);
  le32_write(b.data + 32 + 24, 1);
  /* SHA-384 with a wrong size, a zero size */
  le16_write(b.data + 32 + 30, 32);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -EBADMSG);
  le16_write(b.data + 32 + 30, 0);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -EBADMSG);
  le16_write(b.data + 32 + 30, 48);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), 0);
  eventlog_free(&log);

  /* a header without SHA-384 */
  {
    static const uint16_t a[] = {0x000b}, s[] = {32};
    _cleanup_buf_ struct buf c = BUF_INIT(4096);
    put_spec_header(&c, a, s, 1);
    assert_int_equal(eventlog_parse_ccel(c.data, c.len, &log), -ENOTSUP);
  }
  /* duplicate algorithm ids */
  {
    static const uint16_t a[] = {0x000c, 0x000c}, s[] = {48, 48};
    _cleanup_buf_ struct buf c = BUF_INIT(4096);
    put_spec_header(&c, a, s, 2);
    assert_int_equal(eventlog_parse_ccel(c.data, c.len, &log), -EBADMSG);
  }
  /* empty input */
  assert_int_equal(eventlog_parse_ccel(NULL, 0, &log), -EBADMSG);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, NULL), -EINVAL);
}

static void test_ccel_bad_events(void **state) {
  (void)state;
  struct eventlog log;
  _cleanup_buf_ struct buf h = BUF_INIT(4096);
  put_sha384_header(&h);
  size_t e0 = h.len;

  struct {
    size_t off;
    uint32_t v;
    int want;
  } cases[] = {
      {8, 0, -EBADMSG},            /* digest count 0 */
      {8, 9, -EBADMSG},            /* digest count 9 */
      {8, 2, -EBADMSG},            /* second digest runs into the size field */
      {0, 5, -EBADMSG},            /* MR index 5 */
      {12 + 50, 0x7fffffff, -ENOBUFS}, /* huge event size */
      {12 + 50, (1 << 20) + 1, -ENOBUFS},
      {12 + 50, 1 << 20, -EBADMSG}, /* under the cap but past the data */
      {12 + 50, 4, -EBADMSG},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    _cleanup_buf_ struct buf b = BUF_INIT(4096);
    assert_int_equal(buf_append(&b, h.data, h.len), 0);
    put_event2(&b, 2, 1, 0x11, "abc", 3);
    le32_write(b.data + e0 + cases[i].off, cases[i].v);
    if (eventlog_parse_ccel(b.data, b.len, &log) != cases[i].want)
      fail_msg("case %zu", i);
    assert_null(log.ev);
  }
  /* unknown algorithm id */
  {
    _cleanup_buf_ struct buf b = BUF_INIT(4096);
    assert_int_equal(buf_append(&b, h.data, h.len), 0);
    put_event2(&b, 2, 1, 0x11, "abc", 3);
    le16_write(b.data + e0 + 12, 0x000b);
    assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -EBADMSG);
  }
  /* an event without a SHA-384 digest (header lists SHA-256 too) */
  {
    static const uint16_t a[] = {0x000b, 0x000c}, s[] = {32, 48};
    _cleanup_buf_ struct buf b = BUF_INIT(4096);
    uint8_t d[32] = {0};
    put_spec_header(&b, a, s, 2);
    size_t at = b.len;
    assert_int_equal(buf_append_u32le(&b, 1), 0);
    assert_int_equal(buf_append_u32le(&b, 1), 0);
    assert_int_equal(buf_append_u32le(&b, 1), 0);
    assert_int_equal(buf_append_u16le(&b, 0x000b), 0);
    assert_int_equal(buf_append(&b, d, 32), 0);
    assert_int_equal(buf_append_u32le(&b, 0), 0);
    assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -EBADMSG);
    /* with both digests: the SHA-384 one is used */
    b.len = at;
    uint8_t d384[48];
    memset(d384, 0x5a, 48);
    assert_int_equal(buf_append_u32le(&b, 4), 0);
    assert_int_equal(buf_append_u32le(&b, 1), 0);
    assert_int_equal(buf_append_u32le(&b, 2), 0);
    assert_int_equal(buf_append_u16le(&b, 0x000b), 0);
    assert_int_equal(buf_append(&b, d, 32), 0);
    assert_int_equal(buf_append_u16le(&b, 0x000c), 0);
    assert_int_equal(buf_append(&b, d384, 48), 0);
    assert_int_equal(buf_append_u32le(&b, 0), 0);
    assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), 0);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.ev[0].imr, 3);
    assert_memory_equal(log.ev[0].digest, d384, 48);
    assert_null(log.ev[0].payload);
    eventlog_free(&log);
  }
  /* garbage after the last event */
  {
    _cleanup_buf_ struct buf b = BUF_INIT(4096);
    assert_int_equal(buf_append(&b, h.data, h.len), 0);
    put_event2(&b, 1, 1, 0x11, NULL, 0);
    assert_int_equal(buf_append(&b, "\x01\x02\x03", 3), 0);
    assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -EBADMSG);
  }
}

static void test_ccel_terminators(void **state) {
  (void)state;
  struct eventlog log;
  uint8_t rtmr[4][48], want[4][48] = {{0}}, d[48];
  _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
  put_sha384_header(&b);
  put_event2(&b, 0, 3, 0x01, "mrtd", 4); /* MR index 0: recorded, not replayed */
  put_event2(&b, 1, 1, 0x02, "a", 1);
  put_event2(&b, 4, 3, 0x03, NULL, 0);  /* EV_NO_ACTION: not replayed */
  put_event2(&b, 4, 13, 0x04, NULL, 0);
  size_t end = b.len;
  memset(d, 0x02, 48);
  chain(want[0], d);
  memset(d, 0x04, 48);
  chain(want[3], d);

  for (int pad = 0; pad < 4; pad++) {
    b.len = end;
    if (pad == 0)
      assert_int_equal(buf_append(&b, "\xff\xff\xff\xff\xff\xff\xff\xff garbage", 16), 0);
    else if (pad == 1)
      assert_int_equal(buf_append_zero(&b, 1000), 0);
    else if (pad == 2)
      assert_int_equal(buf_append(&b, "\xff\xff\xff", 3), 0);
    assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), 0);
    assert_int_equal(log.n, 4);
    assert_int_equal(log.ev[0].imr, EVENTLOG_IMR_MRTD);
    assert_int_equal(log.ev[0].payload_len, 4);
    assert_memory_equal(log.ev[0].payload, "mrtd", 4);
    assert_int_equal(eventlog_replay(&log, rtmr), 0);
    assert_memory_equal(rtmr, want, sizeof(want));
    const struct tdx_event *e;
    assert_int_equal(eventlog_find(&log, 3, "", &e), 0);
    assert_int_equal(e->event_type, 3);
    /* MRTD events are not part of the JSON output */
    json_t *j;
    assert_int_equal(eventlog_to_json(&log, 0, &j), 0);
    assert_int_equal(json_array_size(j), 3);
    json_decref(j);
    eventlog_free(&log);
  }
}

static void test_ccel_caps(void **state) {
  (void)state;
  struct eventlog log;
  /* 16 MiB + 1 */
  uint8_t *big = calloc(1, EVENTLOG_MAX_LOG + 1);
  assert_non_null(big);
  assert_int_equal(eventlog_parse_ccel(big, EVENTLOG_MAX_LOG + 1, &log), -ENOBUFS);
  free(big);

  /* 65537 events */
  struct buf b = BUF_INIT(EVENTLOG_MAX_LOG);
  put_sha384_header(&b);
  for (size_t i = 0; i < EVENTLOG_MAX_EVENTS; i++)
    put_event2(&b, 4, 1, 0x01, NULL, 0);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), 0);
  assert_int_equal(log.n, EVENTLOG_MAX_EVENTS);
  eventlog_free(&log);
  put_event2(&b, 4, 1, 0x01, NULL, 0);
  assert_int_equal(eventlog_parse_ccel(b.data, b.len, &log), -ENOBUFS);
  buf_free(&b);
}

/* ---- runtime digests ---- */

static void test_runtime_digest(void **state) {
  (void)state;
  static const uint8_t pl[] = {0xde, 0xad, 0xbe, 0xef};
  uint8_t got[48], want[48];

  /* V1: le32(0x08000001) ":" name ":" payload */
  static const uint8_t v1in[] = {0x01, 0x00, 0x00, 0x08, ':', 'a', 'p', 'p', '-', 'i', 'd', ':',
                                 0xde, 0xad, 0xbe, 0xef};
  sha384(v1in, sizeof(v1in), want);
  assert_int_equal(eventlog_runtime_digest("app-id", pl, 4, 1, got), 0);
  assert_memory_equal(got, want, 48);

  /* V2: JCS text */
  static const uint8_t ab[] = {0xab, 0xcd};
  const char *t = "{\"name\":\"compose-hash\",\"payload\":\"abcd\",\"type\":134217729}";
  sha384(t, strlen(t), want);
  assert_int_equal(eventlog_runtime_digest("compose-hash", ab, 2, 2, got), 0);
  assert_memory_equal(got, want, 48);

  t = "{\"name\":\"\",\"payload\":\"\",\"type\":134217729}";
  sha384(t, strlen(t), want);
  assert_int_equal(eventlog_runtime_digest("", NULL, 0, 2, got), 0);
  assert_memory_equal(got, want, 48);

  /* escaping: only " \ and controls; non-ASCII and '/' raw */
  t = "{\"name\":\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/\x7f\xc3\xa9\xf0\x9f\xa6\x80\","
      "\"payload\":\"ff\",\"type\":134217729}";
  sha384(t, strlen(t), want);
  assert_int_equal(eventlog_runtime_digest("a\"b\\c\n\r\t\b\f\x01\x1f/\x7f\xc3\xa9\xf0\x9f\xa6\x80",
                                           (const uint8_t *)"\xff", 1, 2, got),
                   0);
  assert_memory_equal(got, want, 48);

  /* V1 and V2 differ */
  uint8_t g1[48];
  assert_int_equal(eventlog_runtime_digest("test", pl, 3, 1, g1), 0);
  assert_int_equal(eventlog_runtime_digest("test", pl, 3, 2, got), 0);
  assert_memory_not_equal(g1, got, 48);

  assert_int_equal(eventlog_runtime_digest("x", pl, 1, 3, got), -EINVAL);
  assert_int_equal(eventlog_runtime_digest("x", pl, 1, 0, got), -EINVAL);
  assert_int_equal(eventlog_runtime_digest("\xc3", pl, 1, 2, got), -EINVAL);      /* bad UTF-8 */
  assert_int_equal(eventlog_runtime_digest("\xed\xa0\x80", pl, 1, 2, got), -EINVAL); /* surrogate */
  assert_int_equal(eventlog_runtime_digest("\xc0\xaf", pl, 1, 2, got), -EINVAL); /* overlong */
  assert_int_equal(eventlog_runtime_digest("x", NULL, 1, 1, got), -EINVAL);
  char *longname = malloc(EVENTLOG_MAX_NAME + 2);
  memset(longname, 'n', EVENTLOG_MAX_NAME + 1);
  longname[EVENTLOG_MAX_NAME + 1] = 0;
  assert_int_equal(eventlog_runtime_digest(longname, pl, 1, 1, got), -ENOBUFS);
  longname[EVENTLOG_MAX_NAME] = 0;
  assert_int_equal(eventlog_runtime_digest(longname, pl, 1, 1, got), 0);
  free(longname);
  assert_int_equal(eventlog_runtime_digest("x", pl, EVENTLOG_MAX_EVENT_DATA + 1, 1, got), -ENOBUFS);
}

/* ---- seed-era JSON lines ---- */

static void test_seed_lines(void **state) {
  (void)state;
  _cleanup_buf_ struct buf text = BUF_INIT(1 << 16);
  uint8_t d1[48] = {0}, d2[48] = {0}, d3[48] = {0};
  sha256("rootfs", 6, d1);
  sha256("compose", 7, d2);
  sha256("ca", 2, d3);
  assert_int_equal(eventlog_seed_line(3, 1, d1, "rootfs-hash", &text), 0);
  assert_int_equal(eventlog_seed_line(3, 1, d2, "app-id", &text), 0);
  assert_int_equal(eventlog_seed_line(3, 1, d3, "ca-cert-hash", &text), 0);

  /* exact text of one line */
  _cleanup_buf_ struct buf one = BUF_INIT(1024);
  char hex[97];
  hex_encode(d2, 48, hex);
  char want[512];
  snprintf(want, sizeof(want),
           "{\"imr\":3,\"event_type\":1,\"digest\":\"%s\",\"associated_data\":\"app-id\"}\n", hex);
  assert_int_equal(eventlog_seed_line(3, 1, d2, "app-id", &one), 0);
  assert_int_equal(one.len, strlen(want));
  assert_memory_equal(one.data, want, one.len);
  buf_reset(&one);
  assert_int_equal(eventlog_seed_line(2, 7, d2, "q\"\\\n\x02", &one), 0);
  assert_non_null(memmem(one.data, one.len, "\"associated_data\":\"q\\\"\\\\\\n\\u0002\"}\n", 33));
  assert_int_equal(eventlog_seed_line(3, 1, d2, "\xff", &one), -EINVAL);

  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  assert_int_equal(eventlog_parse_json((const char *)text.data, text.len, &log), 0);
  assert_int_equal(log.n, 3);
  assert_string_equal(log.ev[1].event, "app-id");
  assert_int_equal(log.ev[1].imr, 3);
  assert_int_equal(log.ev[1].event_type, 1);
  assert_memory_equal(log.ev[1].digest, d2, 48);
  assert_int_equal(log.ev[1].version, 0);

  uint8_t rtmr[4][48], mr3[48] = {0}, z[48] = {0};
  chain(mr3, d1);
  chain(mr3, d2);
  chain(mr3, d3);
  assert_int_equal(eventlog_replay(&log, rtmr), 0);
  assert_memory_equal(rtmr[3], mr3, 48);
  assert_memory_equal(rtmr[0], z, 48);

  const struct tdx_event *e;
  assert_int_equal(eventlog_find(&log, 3, "ca-cert-hash", &e), 0);
  assert_ptr_equal(e, &log.ev[2]);
  assert_int_equal(eventlog_find(&log, 2, "ca-cert-hash", &e), -ENOENT);
  assert_int_equal(eventlog_find(&log, 3, "nope", &e), -ENOENT);

  /* short digests are right-padded with zeros; CRLF and blank lines are fine */
  const char *s = "\r\n{\"imr\":0,\"event_type\":1,\"digest\":\"AbCd\",\"associated_data\":\"x\","
                  "\"extra\":[1,2]}\r\n\n  \n";
  _cleanup_eventlog_ struct eventlog l2 = EVENTLOG_INIT;
  assert_int_equal(eventlog_parse_json(s, strlen(s), &l2), 0);
  assert_int_equal(l2.n, 1);
  uint8_t pad[48] = {0xab, 0xcd};
  assert_memory_equal(l2.ev[0].digest, pad, 48);
  struct eventlog l3;
  assert_int_equal(eventlog_parse_json(s, strlen(s), &l3), 0);
  assert_int_equal(eventlog_find(&l3, 3, "app-id", &e), -ENOENT);
  eventlog_free(&l3);
  /* empty log */
  assert_int_equal(eventlog_parse_json("", 0, &l3), 0);
  assert_int_equal(l3.n, 0);
  assert_int_equal(eventlog_parse_json(" \n\n", 3, &l3), 0);
  assert_int_equal(l3.n, 0);
}

static void expect_json_fail(const char *text, int want) {
  struct eventlog log;
  int r = eventlog_parse_json(text, strlen(text), &log);
  if (r != want)
    fail_msg("got %d want %d for: %.200s", r, want, text);
  assert_int_equal(log.n, 0);
  assert_null(log.ev);
}

#define SEED(imr, type, dig, ad)                                                                   \
  "{\"imr\":" imr ",\"event_type\":" type ",\"digest\":\"" dig "\",\"associated_data\":" ad "}\n"
#define D96 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"

static void test_json_negative(void **state) {
  (void)state;
  /* a good line parses */
  struct eventlog ok;
  const char *good = SEED("3", "1", D96, "\"a\"");
  assert_int_equal(eventlog_parse_json(good, strlen(good), &ok), 0);
  eventlog_free(&ok);

  expect_json_fail(SEED("3", "1", D96, "\"a\"") "{not json}\n" SEED("3", "1", D96, "\"b\""), -EBADMSG);
  expect_json_fail(SEED("3", "1", D96, "\"a\"") "[1]\n", -EBADMSG);
  expect_json_fail(SEED("3", "1", D96 "00", "\"a\""), -EBADMSG);       /* digest 49 bytes */
  expect_json_fail(SEED("3", "1", D96 "0", "\"a\""), -EBADMSG);        /* odd length */
  expect_json_fail(SEED("4", "1", D96, "\"a\""), -EBADMSG);            /* imr 4 */
  expect_json_fail(SEED("-1", "1", D96, "\"a\""), -EBADMSG);
  expect_json_fail(SEED("3.0", "1", D96, "\"a\""), -EBADMSG);
  expect_json_fail(SEED("\"3\"", "1", D96, "\"a\""), -EBADMSG);
  expect_json_fail(SEED("3", "4294967296", D96, "\"a\""), -EBADMSG);
  expect_json_fail(SEED("3", "1", "zz", "\"a\""), -EBADMSG);          /* non-hex */
  expect_json_fail(SEED("3", "1", "0g", "\"a\""), -EBADMSG);
  expect_json_fail(SEED("3", "1", D96, "5"), -EBADMSG);
  expect_json_fail(SEED("3", "1", D96, "null"), -EBADMSG);
  expect_json_fail("{\"imr\":3,\"event_type\":1,\"associated_data\":\"a\"}", -EBADMSG);
  expect_json_fail("{\"imr\":3,\"digest\":\"00\",\"associated_data\":\"a\"}", -EBADMSG);
  expect_json_fail("{\"imr\":3,\"imr\":2,\"event_type\":1,\"digest\":\"00\",\"associated_data\":\"a\"}",
                   -EBADMSG); /* duplicate key */
  expect_json_fail("{\"foo\":1}", -EBADMSG);
  expect_json_fail("\"str\"", -EBADMSG);
  expect_json_fail("{\"imr\":3,\"event_type\":1,\"digest\":\"00\",\"associated_data\":\"a\\u0000b\"}",
                   -EBADMSG);
  /* runtime lines */
  expect_json_fail("{\"event\":\"x\",\"payload\":\"not base64!\"}", -EBADMSG);
  expect_json_fail("{\"event\":\"x\",\"payload\":\"AQ=\"}", -EBADMSG);
  expect_json_fail("{\"event\":\"x\"}", -EBADMSG);
  expect_json_fail("{\"event\":5,\"payload\":\"\"}", -EBADMSG);
  expect_json_fail("{\"event\":\"x\",\"payload\":\"\",\"version\":3}", -EBADMSG);
  /* arrays */
  expect_json_fail("[1]", -EBADMSG);
  expect_json_fail("[{}]", -EBADMSG);
  expect_json_fail("[{\"imr\":1,\"event_type\":1,\"digest\":\"00\",\"event\":\"\"}]", -EBADMSG);
  expect_json_fail("[{\"imr\":1,\"event_type\":1,\"event\":\"\",\"event_payload\":\"\"}]", -EBADMSG);
  expect_json_fail("[{\"imr\":1,\"event_type\":1,\"digest\":\"00\",\"event\":\"\",\"event_payload\":\"0\"}]",
                   -EBADMSG);
  expect_json_fail("[{\"imr\":9,\"event_type\":1,\"digest\":\"00\",\"event\":\"\",\"event_payload\":\"\"}]",
                   -EBADMSG);
  expect_json_fail("[] x", -EBADMSG);
  expect_json_fail("[", -EBADMSG);
}

static char *make_runtime_array(const char *name, const char *payload_hex, const uint8_t *digest,
                                const char *extra) {
  char hex[97];
  char *s;
  hex_encode(digest, 48, hex);
  assert_true(asprintf(&s,
                       "[{\"imr\":3,\"event_type\":134217729,\"digest\":\"%s\",\"event\":\"%s\","
                       "\"event_payload\":\"%s\"%s}]",
                       hex, name, payload_hex, extra) > 0);
  return s;
}

static void test_json_newest(void **state) {
  (void)state;
  static const uint8_t pl[] = {0xde, 0xad, 0xbe, 0xef};
  uint8_t d1[48], d2[48];
  assert_int_equal(eventlog_runtime_digest("app-id", pl, 4, 1, d1), 0);
  assert_int_equal(eventlog_runtime_digest("app-id", pl, 4, 2, d2), 0);
  struct eventlog log;

  char *s = make_runtime_array("app-id", "deadbeef", d1, "");
  assert_int_equal(eventlog_parse_json(s, strlen(s), &log), 0);
  assert_int_equal(log.n, 1);
  assert_int_equal(log.ev[0].version, 1);
  assert_int_equal(log.ev[0].payload_len, 4);
  eventlog_free(&log);
  free(s);

  /* tampered payload: the stored digest no longer matches */
  s = make_runtime_array("app-id", "deadbeee", d1, "");
  expect_json_fail(s, -EBADMSG);
  free(s);
  s = make_runtime_array("app-id2", "deadbeef", d1, "");
  expect_json_fail(s, -EBADMSG);
  free(s);
  /* V1 digest claimed as V2 */
  s = make_runtime_array("app-id", "deadbeef", d1, ",\"version\":2");
  expect_json_fail(s, -EBADMSG);
  free(s);
  s = make_runtime_array("app-id", "deadbeef", d2, ",\"version\":2");
  assert_int_equal(eventlog_parse_json(s, strlen(s), &log), 0);
  assert_int_equal(log.ev[0].version, 2);
  eventlog_free(&log);
  free(s);
  s = make_runtime_array("app-id", "deadbeef", d2, ",\"version\":7");
  expect_json_fail(s, -EBADMSG);
  free(s);

  /* preimage must hash to the digest */
  static const uint8_t v1in[] = {0x01, 0x00, 0x00, 0x08, ':', 'a', 'p', 'p', '-', 'i', 'd', ':',
                                 0xde, 0xad, 0xbe, 0xef};
  char pre[64], extra[128];
  hex_encode(v1in, sizeof(v1in), pre);
  snprintf(extra, sizeof(extra), ",\"preimage\":\"%s\"", pre);
  s = make_runtime_array("app-id", "deadbeef", d1, extra);
  assert_int_equal(eventlog_parse_json(s, strlen(s), &log), 0);
  assert_int_equal(log.ev[0].preimage_len, sizeof(v1in));
  assert_memory_equal(log.ev[0].preimage, v1in, sizeof(v1in));
  /* and comes back out */
  _cleanup_buf_ struct buf out = BUF_INIT(1 << 16);
  assert_int_equal(eventlog_to_json_text(&log, 0, &out), 0);
  assert_int_equal(buf_terminate(&out), 0);
  assert_non_null(strstr((char *)out.data, pre));
  eventlog_free(&log);
  free(s);
  pre[0] = pre[0] == '0' ? '1' : '0';
  snprintf(extra, sizeof(extra), ",\"preimage\":\"%s\"", pre);
  s = make_runtime_array("app-id", "deadbeef", d1, extra);
  expect_json_fail(s, -EBADMSG);
  free(s);

  /* a runtime event without a digest gets the computed one */
  const char *nod = "[{\"imr\":3,\"event_type\":134217729,\"event\":\"app-id\",\"event_payload\":\"deadbeef\"},"
                    "{\"imr\":3,\"event_type\":134217729,\"digest\":\"\",\"event\":\"app-id\","
                    "\"event_payload\":\"deadbeef\",\"version\":2}]";
  assert_int_equal(eventlog_parse_json(nod, strlen(nod), &log), 0);
  assert_int_equal(log.n, 2);
  assert_memory_equal(log.ev[0].digest, d1, 48);
  assert_memory_equal(log.ev[1].digest, d2, 48);
  eventlog_free(&log);

  /* runtime log lines {"event","payload"<base64>} */
  const char *rl = "{\"event\":\"app-id\",\"payload\":\"3q2+7w==\"}\n"
                   "{\"event\":\"app-id\",\"payload\":\"3q2+7w==\",\"version\":2}\n"
                   "{\"event\":\"empty\",\"payload\":\"\"}\n";
  assert_int_equal(eventlog_parse_json(rl, strlen(rl), &log), 0);
  assert_int_equal(log.n, 3);
  assert_memory_equal(log.ev[0].digest, d1, 48);
  assert_memory_equal(log.ev[1].digest, d2, 48);
  assert_int_equal(log.ev[0].imr, 3);
  assert_int_equal(log.ev[0].event_type, EVENTLOG_EV_RUNTIME);
  uint8_t rtmr[4][48], mr3[48] = {0}, de[48];
  assert_int_equal(eventlog_runtime_digest("empty", NULL, 0, 1, de), 0);
  chain(mr3, d1);
  chain(mr3, d2);
  chain(mr3, de);
  assert_int_equal(eventlog_replay(&log, rtmr), 0);
  assert_memory_equal(rtmr[3], mr3, 48);
  eventlog_free(&log);
}

static void test_json_caps(void **state) {
  (void)state;
  struct eventlog log;
  /* name over 1024 bytes */
  char *s = malloc(4096);
  char *n = malloc(EVENTLOG_MAX_NAME + 2);
  memset(n, 'a', EVENTLOG_MAX_NAME + 1);
  n[EVENTLOG_MAX_NAME + 1] = 0;
  snprintf(s, 4096, "{\"event\":\"%s\",\"payload\":\"\"}", n);
  expect_json_fail(s, -ENOBUFS);
  n[EVENTLOG_MAX_NAME] = 0;
  snprintf(s, 4096, "{\"event\":\"%s\",\"payload\":\"\"}", n);
  assert_int_equal(eventlog_parse_json(s, strlen(s), &log), 0);
  eventlog_free(&log);
  free(n);
  free(s);

  /* payload over 1 MiB */
  _cleanup_buf_ struct buf big = BUF_INIT(EVENTLOG_MAX_LOG);
  assert_int_equal(buf_append_str(&big, "{\"event\":\"x\",\"payload\":\""), 0);
  _cleanup_buf_ struct buf raw = BUF_INIT(EVENTLOG_MAX_EVENT_DATA + 3);
  assert_int_equal(buf_append_zero(&raw, EVENTLOG_MAX_EVENT_DATA + 3), 0);
  assert_int_equal(base64_encode_buf(raw.data, raw.len, &big), 0);
  assert_int_equal(buf_append_str(&big, "\"}"), 0);
  assert_int_equal(buf_terminate(&big), 0);
  expect_json_fail((char *)big.data, -ENOBUFS);

  /* more than 16 MiB of text */
  char *huge = malloc(EVENTLOG_MAX_LOG + 2);
  memset(huge, ' ', EVENTLOG_MAX_LOG + 1);
  huge[EVENTLOG_MAX_LOG + 1] = 0;
  expect_json_fail(huge, -ENOBUFS);
  free(huge);

  /* more than 65536 events: array and lines */
  struct buf arr = BUF_INIT(EVENTLOG_MAX_LOG);
  assert_int_equal(buf_append_u8(&arr, '['), 0);
  for (size_t i = 0; i <= EVENTLOG_MAX_EVENTS; i++)
    assert_int_equal(buf_append_str(&arr, i ? ",{}" : "{}"), 0);
  assert_int_equal(buf_append_u8(&arr, ']'), 0);
  assert_int_equal(buf_terminate(&arr), 0);
  expect_json_fail((char *)arr.data, -ENOBUFS);
  buf_free(&arr);

  struct buf lines = BUF_INIT(EVENTLOG_MAX_LOG);
  for (size_t i = 0; i <= EVENTLOG_MAX_EVENTS; i++)
    assert_int_equal(buf_append_str(&lines, "{\"event\":\"\",\"payload\":\"\"}\n"), 0);
  assert_int_equal(eventlog_parse_json((char *)lines.data, lines.len, &log), -ENOBUFS);
  assert_null(log.ev);
  buf_free(&lines);
}

/* ---- building, JSON output ---- */

static void test_build_and_json_output(void **state) {
  (void)state;
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT, back = EVENTLOG_INIT,
                                     api = EVENTLOG_INIT, ccel = EVENTLOG_INIT;
  parse_ccel_vector("dstack/ccel.bin", &ccel);
  assert_int_equal(eventlog_append_log(&log, &ccel), 0);
  assert_int_equal(log.n, ccel.n);
  assert_int_equal(eventlog_add_runtime(&log, "app-id", (const uint8_t *)"\x01\x02", 2, 1), 0);
  assert_int_equal(eventlog_add_runtime(&log, "compose-hash", (const uint8_t *)"\x03", 1, 2), 0);
  assert_int_equal(eventlog_add_runtime(&log, "x", NULL, 0, 5), -EINVAL);
  uint8_t d[48] = {7};
  assert_int_equal(eventlog_add(&log, 4, 1, d, "x", NULL, 0), -EINVAL);
  assert_int_equal(eventlog_add(&log, 1, 1, d, "\xff", NULL, 0), -EINVAL);
  assert_int_equal(eventlog_add(&log, 1, 1, d, NULL, NULL, 3), -EINVAL);
  assert_int_equal(eventlog_append_log(&log, &log), -EINVAL);

  uint8_t r1[4][48], r2[4][48], r3[4][48];
  assert_int_equal(eventlog_replay(&log, r1), 0);

  _cleanup_buf_ struct buf full = BUF_INIT(1 << 20), apitext = BUF_INIT(1 << 20);
  assert_int_equal(eventlog_to_json_text(&log, EVENTLOG_JSON_FULL, &full), 0);
  assert_int_equal(eventlog_parse_json((const char *)full.data, full.len, &back), 0);
  assert_int_equal(back.n, log.n);
  for (size_t i = 0; i < log.n; i++) {
    assert_int_equal(back.ev[i].imr, log.ev[i].imr);
    assert_int_equal(back.ev[i].event_type, log.ev[i].event_type);
    assert_memory_equal(back.ev[i].digest, log.ev[i].digest, 48);
    assert_string_equal(back.ev[i].event, log.ev[i].event);
    assert_int_equal(back.ev[i].payload_len, log.ev[i].payload_len);
    if (log.ev[i].payload_len)
      assert_memory_equal(back.ev[i].payload, log.ev[i].payload, log.ev[i].payload_len);
  }
  assert_int_equal(back.ev[log.n - 1].version, 2);
  assert_int_equal(eventlog_replay(&back, r2), 0);
  assert_memory_equal(r1, r2, sizeof(r1));

  /* API form: RTMR0-2 lose their payloads, RTMR3 keeps it */
  json_t *j;
  assert_int_equal(eventlog_to_json(&log, EVENTLOG_JSON_API, &j), 0);
  assert_int_equal(json_array_size(j), log.n);
  json_t *first = json_array_get(j, 0), *last = json_array_get(j, log.n - 1);
  assert_string_equal(json_string_value(json_object_get(first, "event_payload")), "");
  assert_int_equal(strlen(json_string_value(json_object_get(first, "digest"))), 96);
  assert_string_equal(json_string_value(json_object_get(last, "event_payload")), "03");
  assert_string_equal(json_string_value(json_object_get(last, "event")), "compose-hash");
  assert_int_equal(json_integer_value(json_object_get(last, "version")), 2);
  assert_null(json_object_get(json_array_get(j, log.n - 2), "version"));
  /* key order as upstream writes it */
  const char *k[] = {"imr", "event_type", "digest", "event", "event_payload"};
  size_t ki = 0;
  const char *key;
  json_t *v;
  json_object_foreach(first, key, v) {
    assert_true(ki < ARRAY_SIZE(k));
    assert_string_equal(key, k[ki++]);
  }
  json_decref(j);
  assert_int_equal(eventlog_to_json_text(&log, EVENTLOG_JSON_API, &apitext), 0);
  assert_int_equal(eventlog_parse_json((const char *)apitext.data, apitext.len, &api), 0);
  assert_int_equal(eventlog_replay(&api, r3), 0);
  assert_memory_equal(r1, r3, sizeof(r1));
  assert_int_equal(api.ev[0].payload_len, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ccel_replay_vectors),
      cmocka_unit_test(test_ccel_changed_rtmr_mismatch),
      cmocka_unit_test(test_ccel_sm3_rejected),
      cmocka_unit_test(test_ccel_dstack_snap),
      cmocka_unit_test(test_ccel_dstack_snap_json),
      cmocka_unit_test(test_ccel_trustee_out_json),
      cmocka_unit_test(test_ccel_table),
      cmocka_unit_test(test_ccel_matches_quote),
      cmocka_unit_test(test_ccel_truncated),
      cmocka_unit_test(test_ccel_bad_header),
      cmocka_unit_test(test_ccel_bad_events),
      cmocka_unit_test(test_ccel_terminators),
      cmocka_unit_test(test_ccel_caps),
      cmocka_unit_test(test_runtime_digest),
      cmocka_unit_test(test_seed_lines),
      cmocka_unit_test(test_json_negative),
      cmocka_unit_test(test_json_newest),
      cmocka_unit_test(test_json_caps),
      cmocka_unit_test(test_build_and_json_output),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

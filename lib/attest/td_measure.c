/* The boot events of a TD (RTMR0-2), their replay and their CCEL log; MRTD. td_measure.h says
 * which values are faithful and which simulated. Event types and event data layouts follow the
 * TCG PC Client Platform Firmware Profile and what TDVF writes (see the CCEL logs under
 * tests/vectors). */
#include <errno.h>
#include <string.h>

#include "attest/td_measure.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/hash.h"

#define EV_SEPARATOR 0x00000004u
#define EV_EVENT_TAG 0x00000006u
#define EV_PLATFORM_CONFIG_FLAGS 0x0000000au
#define EV_EFI_VARIABLE_DRIVER_CONFIG 0x80000001u
#define EV_EFI_VARIABLE_BOOT 0x80000002u
#define EV_EFI_BOOT_SERVICES_APPLICATION 0x80000003u
#define EV_EFI_ACTION 0x80000007u
#define EV_EFI_PLATFORM_FIRMWARE_BLOB2 0x8000000au
#define EV_EFI_HANDOFF_TABLES2 0x8000000bu

#define TPM_ALG_SHA384 0x000cu
#define TD_MAX_EVENTS 32
#define TD_MAX_EVENT_DATA ((size_t)4096)
/* The command line is copied into UTF-16 once: a cap keeps that bounded. */
#define TD_MAX_CMDLINE ((size_t)64 * 1024)

/* TCG_PCClientTaggedEvent ids TDVF uses for the load options and the initrd. */
#define TAG_LOAD_OPTIONS 0x8f3b22edu
#define TAG_LINUX_INITRD 0x8f3b22ecu

/* One event: CCEL MR index (1..3 = RTMR0..2), type, digest, event data. */
struct td_event {
  uint32_t mr;
  uint32_t type;
  uint8_t digest[48];
  struct buf data;
};

struct td_events {
  struct td_event ev[TD_MAX_EVENTS];
  size_t n;
};

static void td_events_free(struct td_events *l) {
  for (size_t i = 0; i < l->n; i++)
    buf_free(&l->ev[i].data);
  l->n = 0;
}

/* Appends an event; its data buffer is returned for the caller to fill (may be NULL). */
static int td_events_add(struct td_events *l, uint32_t mr, uint32_t type,
                         const uint8_t digest[48], struct buf **ret_data) {
  if (l->n >= TD_MAX_EVENTS)
    return -ENOBUFS;
  struct td_event *e = &l->ev[l->n++];
  e->mr = mr;
  e->type = type;
  memcpy(e->digest, digest, 48);
  e->data = BUF_INIT(TD_MAX_EVENT_DATA);
  if (ret_data)
    *ret_data = &e->data;
  return 0;
}

/* An event whose digest is the SHA-384 of its data. */
static int td_events_add_hashed(struct td_events *l, uint32_t mr, uint32_t type, const void *data,
                                size_t len) {
  uint8_t d[48];
  struct buf *b;
  int r;
  sha384(data, len, d);
  if ((r = td_events_add(l, mr, type, d, &b)) < 0)
    return r;
  return buf_append(b, data, len);
}

static int append_utf16le_ascii(struct buf *b, const char *s) {
  int r = 0;
  for (; *s && r >= 0; s++)
    r = buf_append_u16le(b, (uint8_t)*s);
  return r;
}

/* UTF-8 to UTF-16LE (surrogate pairs above U+FFFF); -EBADMSG for invalid UTF-8. */
static int append_utf16le(struct buf *b, const char *s, size_t len) {
  size_t i = 0;
  int r;
  while (i < len) {
    const uint8_t *p = (const uint8_t *)s + i;
    size_t n = str_utf8_seq_len(p, len - i);
    uint32_t cp;
    if (n == 1)
      cp = p[0];
    else if (n == 2)
      cp = ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
    else if (n == 3)
      cp = ((uint32_t)(p[0] & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
    else if (n == 4)
      cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
           ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
    else
      return -EBADMSG;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      if ((r = buf_append_u16le(b, (uint16_t)(0xd800 | (cp >> 10)))) < 0 ||
          (r = buf_append_u16le(b, (uint16_t)(0xdc00 | (cp & 0x3ff)))) < 0)
        return r;
    } else if ((r = buf_append_u16le(b, (uint16_t)cp)) < 0) {
      return r;
    }
    i += n;
  }
  return 0;
}

/* UEFI_VARIABLE_DATA: VariableName GUID, u64 UnicodeNameLength, u64 VariableDataLength,
 * UnicodeName (UTF-16LE, no NUL), VariableData. */
static int append_variable_data(struct buf *b, const uint8_t guid[16], const char *name,
                                const void *data, size_t len) {
  int r;
  if ((r = buf_append(b, guid, 16)) < 0 || (r = buf_append_u64le(b, strlen(name))) < 0 ||
      (r = buf_append_u64le(b, len)) < 0 || (r = append_utf16le_ascii(b, name)) < 0)
    return r;
  return buf_append(b, data, len);
}

/* EFI_GLOBAL_VARIABLE 8be4df61-93ca-11d2-aa0d-00e098032b8c and EFI_IMAGE_SECURITY_DATABASE
 * d719b2cb-3d3a-4596-a3bc-dad00e67656f, in their in-memory byte order. */
static const uint8_t guid_global[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                        0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
static const uint8_t guid_image_db[16] = {0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45,
                                          0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f};

/* The Boot0000 variable TDVF measures (the UiApp boot option: attributes, device path
 * length 0x2c, description "UiApp", FV / FvFile device path). */
static const uint8_t boot0000[62] = {
  0x09, 0x01, 0x00, 0x00, 0x2c, 0x00, 0x55, 0x00, 0x69, 0x00, 0x41, 0x00, 0x70, 0x00, 0x70,
  0x00, 0x00, 0x00, 0x04, 0x07, 0x14, 0x00, 0xc9, 0xbd, 0xb8, 0x7c, 0xeb, 0xf8, 0x34, 0x4f,
  0xaa, 0xea, 0x3e, 0xe4, 0xaf, 0x65, 0x16, 0xa1, 0x04, 0x06, 0x14, 0x00, 0x21, 0xaa, 0x2c,
  0x46, 0x14, 0x76, 0x03, 0x45, 0x83, 0x6e, 0x8a, 0xb6, 0xf4, 0x66, 0x23, 0x31, 0x7f, 0xff,
  0x04, 0x00,
};

/* The device path of QEMU's kernel as TDVF loads it: VenMedia(1428f772-b64a-441e-b8c3-
 * 9ebdd7f893c7) / File("kernel") / End. */
static const uint8_t kernel_device_path[42] = {
  0x04, 0x03, 0x14, 0x00, 0x72, 0xf7, 0x28, 0x14, 0x4a, 0xb6, 0x1e, 0x44, 0xb8, 0xc3,
  0x9e, 0xbd, 0xd7, 0xf8, 0x93, 0xc7, 0x04, 0x04, 0x12, 0x00, 0x6b, 0x00, 0x65, 0x00,
  0x72, 0x00, 0x6e, 0x00, 0x65, 0x00, 0x6c, 0x00, 0x00, 0x00, 0x7f, 0xff, 0x04, 0x00,
};

static const uint8_t separator_data[4] = {0, 0, 0, 0};

static void sim_digest(const char *label, const void *a, size_t alen, uint32_t vcpus,
                       uint32_t memory_mb, bool with_sizes, uint8_t out[48]) {
  uint8_t buf[128];
  size_t n = 0, l = strlen(label);
  memcpy(buf, label, l);
  n += l;
  if (alen) {
    memcpy(buf + n, a, alen);
    n += alen;
  }
  if (with_sizes) {
    le32_write(buf + n, vcpus);
    le32_write(buf + n + 4, memory_mb);
    n += 8;
  }
  sha384(buf, n, out);
}

/* RTMR0 (MR index 1) up to the ACPI tables: simulated, see td_measure.h. */
static int events_rtmr0(struct td_events *l, const uint8_t fw_hash[48], uint32_t vcpus,
                        uint32_t memory_mb) {
  static const char *const sb_vars[] = {"SecureBoot", "PK", "KEK", "db", "dbx"};
  static const char *const acpi_what[] = {"table loader", "RSDP", "tables"};
  uint8_t d[48];
  struct buf *b;
  int r;

  sim_digest("dstack-sim/rtmr0/td-hob/v1", NULL, 0, vcpus, memory_mb, true, d);
  if ((r = td_events_add(l, 1, EV_EFI_HANDOFF_TABLES2, d, &b)) < 0 ||
      (r = buf_printf(b, "dstack-sim TD HOB: %u vCPUs, %u MiB", vcpus, memory_mb)) < 0)
    return r;
  sim_digest("dstack-sim/rtmr0/cfv/v1", fw_hash, 48, 0, 0, false, d);
  if ((r = td_events_add(l, 1, EV_EFI_PLATFORM_FIRMWARE_BLOB2, d, &b)) < 0 ||
      (r = buf_append_str(b, "dstack-sim CFV")) < 0)
    return r;
  for (size_t i = 0; i < ARRAY_SIZE(sb_vars); i++) {
    _cleanup_buf_ struct buf v = BUF_INIT(TD_MAX_EVENT_DATA);
    if ((r = append_variable_data(&v, i < 3 ? guid_global : guid_image_db, sb_vars[i], NULL,
                                  0)) < 0 ||
        (r = td_events_add_hashed(l, 1, EV_EFI_VARIABLE_DRIVER_CONFIG, v.data, v.len)) < 0)
      return r;
  }
  if ((r = td_events_add_hashed(l, 1, EV_SEPARATOR, separator_data, 4)) < 0)
    return r;
  for (uint8_t i = 0; i < ARRAY_SIZE(acpi_what); i++) {
    sim_digest("dstack-sim/rtmr0/acpi/v1", &i, 1, vcpus, memory_mb, true, d);
    if ((r = td_events_add(l, 1, EV_PLATFORM_CONFIG_FLAGS, d, &b)) < 0 ||
        (r = buf_printf(b, "dstack-sim ACPI DATA (%s)", acpi_what[i])) < 0)
      return r;
  }
  return 0;
}

/* RTMR0's boot variables, which TDVF measures after loading the kernel. */
static int events_rtmr0_boot(struct td_events *l) {
  uint8_t d[48];
  struct buf *b;
  int r;
  /* EV_EFI_VARIABLE_BOOT: the digest covers the variable's data only */
  static const uint8_t boot_order[2] = {0, 0};
  struct {
    const char *name;
    const uint8_t *data;
    size_t len;
  } boot[] = {{"BootOrder", boot_order, sizeof(boot_order)},
              {"Boot0000", boot0000, sizeof(boot0000)}};
  for (size_t i = 0; i < ARRAY_SIZE(boot); i++) {
    sha384(boot[i].data, boot[i].len, d);
    if ((r = td_events_add(l, 1, EV_EFI_VARIABLE_BOOT, d, &b)) < 0 ||
        (r = append_variable_data(b, guid_global, boot[i].name, boot[i].data, boot[i].len)) < 0)
      return r;
  }
  return 0;
}

/* RTMR1 (MR index 2): the kernel. */
static int events_rtmr1_kernel(struct td_events *l, struct slice kernel) {
  uint8_t d[48];
  struct buf *b;
  int r;

  if ((r = pe_authenticode_sha384(kernel.ptr, kernel.len, d)) < 0)
    return r;
  /* UEFI_IMAGE_LOAD_EVENT: location (unknown offline: 0), length, link-time address,
   * device path length, device path */
  if ((r = td_events_add(l, 2, EV_EFI_BOOT_SERVICES_APPLICATION, d, &b)) < 0 ||
      (r = buf_append_u64le(b, 0)) < 0 || (r = buf_append_u64le(b, kernel.len)) < 0 ||
      (r = buf_append_u64le(b, 0)) < 0 ||
      (r = buf_append_u64le(b, sizeof(kernel_device_path))) < 0 ||
      (r = buf_append(b, kernel_device_path, sizeof(kernel_device_path))) < 0)
    return r;
  return 0;
}

/* RTMR1: starting the kernel (before its load options and initrd are measured). */
static int events_rtmr1_start(struct td_events *l) {
  static const char calling[] = "Calling EFI Application from Boot Option";
  int r = td_events_add_hashed(l, 2, EV_EFI_ACTION, calling, strlen(calling));
  return r < 0 ? r : td_events_add_hashed(l, 2, EV_SEPARATOR, separator_data, 4);
}

/* RTMR1: ExitBootServices, the last events. */
static int events_rtmr1_exit(struct td_events *l) {
  static const char *const after[] = {"Exit Boot Services Invocation",
                                      "Exit Boot Services Returned with Success"};
  for (size_t i = 0; i < ARRAY_SIZE(after); i++) {
    int r = td_events_add_hashed(l, 2, EV_EFI_ACTION, after[i], strlen(after[i]));
    if (r < 0)
      return r;
  }
  return 0;
}

/* TCG_PCClientTaggedEvent: u32 id, u32 size, data (a NUL-terminated name here). */
static int append_tagged(struct buf *b, uint32_t id, const char *name) {
  int r;
  if ((r = buf_append_u32le(b, id)) < 0 || (r = buf_append_u32le(b, strlen(name) + 1)) < 0)
    return r;
  return buf_append(b, name, strlen(name) + 1);
}

/* RTMR2 (MR index 3): the load options and the initrd. */
static int events_rtmr2(struct td_events *l, const char *cmdline, struct slice initrd) {
  static const char initrd_opt[] = " initrd=initrd";
  _cleanup_buf_ struct buf opts = BUF_INIT(2 * (TD_MAX_CMDLINE + sizeof(initrd_opt)) + 2);
  uint8_t d[48];
  struct buf *b;
  size_t n = strlen(cmdline);
  int r;

  if (n > TD_MAX_CMDLINE)
    return -E2BIG;
  if ((r = append_utf16le(&opts, cmdline, n)) < 0 ||
      (r = append_utf16le_ascii(&opts, initrd_opt)) < 0 || (r = buf_append_u16le(&opts, 0)) < 0)
    return r;
  sha384(opts.data, opts.len, d);
  if ((r = td_events_add(l, 3, EV_EVENT_TAG, d, &b)) < 0 ||
      (r = append_tagged(b, TAG_LOAD_OPTIONS, "LOADED_IMAGE::LoadOptions")) < 0)
    return r;
  sha384(initrd.ptr, initrd.len, d);
  if ((r = td_events_add(l, 3, EV_EVENT_TAG, d, &b)) < 0 ||
      (r = append_tagged(b, TAG_LINUX_INITRD, "Linux initrd")) < 0)
    return r;
  return 0;
}

/* The CCEL log area: the Spec ID event (legacy format, EV_NO_ACTION, SHA-384 only), then one
 * TCG_PCR_EVENT2 per event. */
static int ccel_write(const struct td_events *l, struct buf *out) {
  static const char sig[16] = "Spec ID Event03";
  int r;

  /* As TDVF writes it: MR index 1, EV_NO_ACTION, a zero SHA-1 sized digest, then the
   * TCG_EfiSpecIDEvent: signature, platformClass 0, specVersionMinor 0, Major 2, errata 0,
   * uintnSize 2 (64-bit), one algorithm (SHA-384, 48 bytes), no vendor info: 33 bytes */
  if ((r = buf_append_u32le(out, 1)) < 0 || (r = buf_append_u32le(out, 3)) < 0 ||
      (r = buf_append_zero(out, 20)) < 0 || (r = buf_append_u32le(out, 33)) < 0 ||
      (r = buf_append(out, sig, sizeof(sig))) < 0 || (r = buf_append_u32le(out, 0)) < 0 ||
      (r = buf_append_u8(out, 0)) < 0 || (r = buf_append_u8(out, 2)) < 0 ||
      (r = buf_append_u8(out, 0)) < 0 || (r = buf_append_u8(out, 2)) < 0 ||
      (r = buf_append_u32le(out, 1)) < 0 || (r = buf_append_u16le(out, TPM_ALG_SHA384)) < 0 ||
      (r = buf_append_u16le(out, 48)) < 0 || (r = buf_append_u8(out, 0)) < 0)
    return r;
  for (size_t i = 0; i < l->n; i++) {
    const struct td_event *e = &l->ev[i];
    if ((r = buf_append_u32le(out, e->mr)) < 0 || (r = buf_append_u32le(out, e->type)) < 0 ||
        (r = buf_append_u32le(out, 1)) < 0 || (r = buf_append_u16le(out, TPM_ALG_SHA384)) < 0 ||
        (r = buf_append(out, e->digest, 48)) < 0 ||
        (r = buf_append_u32le(out, (uint32_t)e->data.len)) < 0 ||
        (r = buf_append(out, e->data.data, e->data.len)) < 0)
      return r;
  }
  return 0;
}

int td_measure_blobs(const struct td_measure_blobs *in, struct td_measurements *ret,
                     struct buf *ret_ccel) {
  struct td_events l = {.n = 0};
  struct td_measurements m = {0};
  uint8_t fw_hash[48];
  int r;

  if (!in || !ret || !in->cmdline || in->vcpus == 0 || in->memory_mb == 0 ||
      (in->kernel.len && !in->kernel.ptr) || (in->initrd.len && !in->initrd.ptr) ||
      (in->firmware.len && !in->firmware.ptr))
    return -EINVAL;

  sha384(in->firmware.ptr, in->firmware.len, fw_hash);
  r = in->firmware.len ? td_mrtd_from_tdvf(in->firmware.ptr, in->firmware.len, m.mrtd) : -ENOENT;
  if (r == -ENOENT) {
    uint8_t b[18 + 48];
    memcpy(b, "dstack-sim/mrtd/v1", 18);
    memcpy(b + 18, fw_hash, 48);
    sha384(b, sizeof(b), m.mrtd);
    m.simulated_mrtd = true;
  } else if (r < 0) {
    return r;
  }
  m.simulated_rtmr0 = true;

  /* in the order TDVF logs them */
  if ((r = events_rtmr0(&l, fw_hash, in->vcpus, in->memory_mb)) < 0 ||
      (r = events_rtmr1_kernel(&l, in->kernel)) < 0 || (r = events_rtmr0_boot(&l)) < 0 ||
      (r = events_rtmr1_start(&l)) < 0 || (r = events_rtmr2(&l, in->cmdline, in->initrd)) < 0 ||
      (r = events_rtmr1_exit(&l)) < 0)
    goto out;
  for (size_t i = 0; i < l.n; i++) {
    uint8_t cat[96];
    uint8_t *reg = m.rtmr[l.ev[i].mr - 1];
    memcpy(cat, reg, 48);
    memcpy(cat + 48, l.ev[i].digest, 48);
    sha384(cat, sizeof(cat), reg);
  }
  if (ret_ccel) {
    size_t start = ret_ccel->len;
    if ((r = ccel_write(&l, ret_ccel)) < 0) {
      ret_ccel->len = start;
      goto out;
    }
  }
  *ret = m;
  r = 0;
out:
  td_events_free(&l);
  return r;
}

int td_measure_image(const struct td_measure_input *in, struct td_measurements *ret,
                     struct buf *ret_ccel) {
  _cleanup_buf_ struct buf kernel = BUF_INIT(0), initrd = BUF_INIT(0), fw = BUF_INIT(0);
  int r;

  if (!in || !in->image || !in->image->kernel || !in->image->initrd || !ret)
    return -EINVAL;
  if ((r = file_read_capped(in->image->kernel, TD_MEASURE_MAX_FILE, false, &kernel)) < 0) {
    log_debug("td_measure: kernel %s: %s", in->image->kernel, strerror(-r));
    return r;
  }
  if ((r = file_read_capped(in->image->initrd, TD_MEASURE_MAX_FILE, false, &initrd)) < 0) {
    log_debug("td_measure: initrd %s: %s", in->image->initrd, strerror(-r));
    return r;
  }
  if (in->image->bios &&
      (r = file_read_capped(in->image->bios, TD_MEASURE_MAX_FILE, false, &fw)) < 0) {
    log_debug("td_measure: firmware %s: %s", in->image->bios, strerror(-r));
    return r;
  }
  struct td_measure_blobs b = {
    .kernel = buf_slice(&kernel),
    .initrd = buf_slice(&initrd),
    .firmware = buf_slice(&fw),
    .cmdline = in->image->cmdline ? in->image->cmdline : "",
    .vcpus = in->vcpus,
    .memory_mb = in->memory_mb,
  };
  return td_measure_blobs(&b, ret, ret_ccel);
}

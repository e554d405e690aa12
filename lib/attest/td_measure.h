/* Offline measurement of a TD boot: MRTD and RTMR0-2 of a guest booted from an image folder
 * (image_meta.h), the way TDX firmware (TDVF / OVMF IntelTdx) measures a QEMU direct kernel boot,
 * and the boot event log (CCEL, TCG crypto-agile, SHA-384 only) whose replay gives RTMR0-2.
 * teepod holds these values for each VM it runs on the simulated platform and `tdxctl measure`
 * prints them, so a KMS policy can pin an image before any VM runs.
 *
 * What is faithful and what is simulated:
 *  - RTMR1 (faithful in form, from the public TDVF event sequence and upstream dstack-mr):
 *    EV_EFI_BOOT_SERVICES_APPLICATION = Authenticode SHA-384 of the kernel file, then
 *    EV_EFI_ACTION "Calling EFI Application from Boot Option", EV_SEPARATOR (4 zero bytes),
 *    EV_EFI_ACTION "Exit Boot Services Invocation", EV_EFI_ACTION "Exit Boot Services Returned
 *    with Success". The kernel digest is that of the file as it is: upstream dstack-mr also
 *    applies the setup-header fields an older QEMU loader writes (type_of_loader, heap, command
 *    line and initrd addresses) and pads the image to 8 bytes before hashing; that is not done
 *    here, so on a real TD whose QEMU patches the header the first RTMR1 event differs.
 *  - RTMR2 (faithful in form): EV_EVENT_TAG "LOADED_IMAGE::LoadOptions" = SHA-384 of the UTF-16LE
 *    load options with their terminating NUL, where the load options are the image's cmdline
 *    followed by " initrd=initrd" (the firmware appends it when QEMU passes an initrd, and every
 *    image has one); then EV_EVENT_TAG "Linux initrd" = SHA-384 of the initrd file.
 *  - MRTD: when the firmware (`bios`) carries TDVF metadata, the replay of its sections the way
 *    the TDX module measures the build (TDH.MEM.PAGE.ADD of every page not marked PAGE.AUG,
 *    TDH.MR.EXTEND of every 256-byte chunk of sections marked MR.EXTEND, page by page, the order
 *    of current KVM); faithful. Otherwise (no firmware: direct kernel boot under TCG, or a
 *    firmware without TDVF metadata) SIMULATED:
 *      MRTD = SHA-384("dstack-sim/mrtd/v1" || SHA-384(firmware bytes, or empty)).
 *  - RTMR0: always SIMULATED (a TD would read values that depend on the firmware's TD HOB,
 *    configuration volume and QEMU's ACPI tables, which are not reproduced here). Its events have
 *    the real sequence and types: TD HOB (EV_EFI_HANDOFF_TABLES2), CFV
 *    (EV_EFI_PLATFORM_FIRMWARE_BLOB2), the five secure boot variables SecureBoot, PK, KEK, db,
 *    dbx (EV_EFI_VARIABLE_DRIVER_CONFIG, empty, computed as TDVF does), a separator, three ACPI
 *    events (EV_PLATFORM_CONFIG_FLAGS), BootOrder and Boot0000 (EV_EFI_VARIABLE_BOOT, TDVF's
 *    values). The TD HOB, CFV and ACPI digests are simulated:
 *      TD HOB  = SHA-384("dstack-sim/rtmr0/td-hob/v1" || le32 vcpus || le32 memory_mb)
 *      CFV     = SHA-384("dstack-sim/rtmr0/cfv/v1" || SHA-384(firmware bytes, or empty))
 *      ACPI i  = SHA-384("dstack-sim/rtmr0/acpi/v1" || u8 i || le32 vcpus || le32 memory_mb),
 *                i = 0 (table loader), 1 (RSDP), 2 (tables)
 *    so RTMR0 depends on the firmware, the vCPU count and the memory size, and nothing else.
 *    The event data of these three says "dstack-sim".
 *
 * The event log and the registers come from one list of events, so they agree by construction.
 * In the CCEL, MR index 1..3 = RTMR0..2 (eventlog_ccel.c). MRTD has no events. The events are in
 * the order TDVF logs them: RTMR0 up to the ACPI events, the kernel, BootOrder and Boot0000, the
 * "Calling" action and separator, the RTMR2 events, the two ExitBootServices actions.
 *
 * Errors: -EBADMSG malformed PE or TDVF metadata or a command line that is not UTF-8, -E2BIG a
 * command line over 64 KiB, -EFBIG a file over TD_MEASURE_MAX_FILE,
 * -ENOBUFS the CCEL buffer's cap, -EINVAL bad arguments, file errors as -errno. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/image_meta.h"
#include "base/buf.h"

/* The largest kernel, initrd or firmware file read. */
#define TD_MEASURE_MAX_FILE ((size_t)256 * 1024 * 1024)

/* The Authenticode digest of a PE/COFF image (Microsoft PE/COFF specification, "Calculating the
 * PE Image Hash"): the headers up to SizeOfHeaders without the CheckSum field and the Certificate
 * Table data directory entry, then the sections' raw data sorted by PointerToRawData, then the
 * bytes after them up to the attribute certificate table (whose size the data directory gives).
 * Strict bounds checks; -EBADMSG for anything malformed. */
int pe_authenticode_sha384(const uint8_t *pe, size_t len, uint8_t out[48]);

/* MRTD of the TDVF firmware fw: -ENOENT when fw has no TDVF metadata (no OVMF GUIDed table
 * footer or no TDX metadata offset entry), -EBADMSG when it has malformed metadata. */
int td_mrtd_from_tdvf(const uint8_t *fw, size_t len, uint8_t out[48]);

struct td_measure_input {
  const struct image_meta *image;
  uint32_t vcpus;
  uint32_t memory_mb;
};

struct td_measurements {
  uint8_t mrtd[48];
  uint8_t rtmr[3][48];
  bool simulated_mrtd, simulated_rtmr0;
};

/* Reads the image's kernel, initrd and bios (each at most TD_MEASURE_MAX_FILE) and computes the
 * measurements. ret_ccel may be NULL; when given, the CCEL bytes are appended to it (its cap
 * applies: -ENOBUFS, and it keeps its previous length on any error). vcpus and memory_mb must
 * not be 0. */
int td_measure_image(const struct td_measure_input *in, struct td_measurements *ret,
                     struct buf *ret_ccel);

/* The same from bytes already in memory (firmware.len == 0: no firmware). */
struct td_measure_blobs {
  struct slice kernel, initrd, firmware;
  const char *cmdline;
  uint32_t vcpus;
  uint32_t memory_mb;
};
int td_measure_blobs(const struct td_measure_blobs *in, struct td_measurements *ret,
                     struct buf *ret_ccel);

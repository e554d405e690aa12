/* TDREPORT (1024 bytes, what TDG.MR.REPORT returns): REPORTMACSTRUCT at 0, TEE_TCB_INFO at 256,
 * TDINFO at 512. Reserved bytes are kept so encode(parse(x)) == x byte for byte. */
#pragma once

#include <stdint.h>

#include <jansson.h>

#include "base/buf.h"

#define TDREPORT_SIZE 1024
#define TDREPORT_TEE_TCB_INFO_OFFSET 256
#define TDREPORT_TEE_TCB_INFO_SIZE 239
#define TDREPORT_TDINFO_OFFSET 512
#define TDREPORT_TDINFO_SIZE 512

struct tdreport_mac {     /* REPORTMACSTRUCT, 256 B */
  uint8_t report_type[4]; /* type (0x81 = TDX), subtype, version, reserved */
  uint8_t reserved1[12];
  uint8_t cpusvn[16];
  uint8_t tee_tcb_info_hash[48];
  uint8_t tee_info_hash[48];
  uint8_t report_data[64];
  uint8_t reserved2[32];
  uint8_t mac[32];
};

struct tdreport_tee_tcb_info { /* TEE_TCB_INFO, 239 B at 256, then 17 reserved bytes */
  uint8_t valid[8];
  uint8_t tee_tcb_svn[16];
  uint8_t mrseam[48];
  uint8_t mrsignerseam[48];
  uint8_t attributes[8];
  uint8_t tee_tcb_svn2[16]; /* TDX 1.5; zero on TDX 1.0 */
  uint8_t reserved[95];
};

struct tdreport_tdinfo { /* TDINFO, 512 B at 512 */
  uint8_t attributes[8];
  uint8_t xfam[8];
  uint8_t mrtd[48];
  uint8_t mrconfigid[48];
  uint8_t mrowner[48];
  uint8_t mrownerconfig[48];
  uint8_t rtmr[4][48];
  uint8_t servtd_hash[48];
  uint8_t reserved[64];
};

struct tdreport {
  struct tdreport_mac mac;
  struct tdreport_tee_tcb_info tee_tcb_info;
  uint8_t reserved_tcb[17]; /* bytes 495..511 */
  struct tdreport_tdinfo td_info;
};

/* len must be exactly TDREPORT_SIZE (-EBADMSG otherwise). */
int tdreport_parse(const uint8_t *data, size_t len, struct tdreport *ret);
/* Writes exactly 1024 bytes. */
void tdreport_encode(const struct tdreport *r, uint8_t out[TDREPORT_SIZE]);
int tdreport_encode_buf(const struct tdreport *r, struct buf *out);
/* JSON object (hex lowercase): report_type, cpusvn, tee_tcb_info_hash, tee_info_hash,
 * report_data, mac, tee_tcb_info{valid, tee_tcb_svn, mr_seam, mr_signer_seam, attributes,
 * tee_tcb_svn2}, td_info{attributes, xfam, mrtd, mrconfigid, mrowner, mrownerconfig,
 * rtmr0..rtmr3, servtd_hash}. */
int tdreport_to_json(const struct tdreport *r, json_t **ret);

/* The Intel TDX guest backend of struct tee: TDREPORTs and RTMR extends through /dev/tdx_guest
 * (or the sysfs measurement files), quotes through configfs-tsm, the host's QGS over vsock, or
 * the TDVMCALL GetQuote ioctl, tried in that order.
 *
 * Every path and the two points where the backend touches the kernel (ioctl, vsock connect) can
 * be replaced through struct tee_tdx_config, so the backend can be tested without TDX. */
#pragma once

#include <stdint.h>
#include <sys/ioctl.h>

#include "attest/tee.h"

/* The /dev/tdx_guest ioctls (magic 'T'). */
struct tdx_report_req {
  uint8_t reportdata[64];
  uint8_t tdreport[1024];
};
struct tdx_extend_rtmr_req {
  uint8_t data[48];
  uint8_t index;
} __attribute__((packed));
struct tdx_quote_req {
  uint64_t buf; /* address of a struct tdx_quote_hdr followed by data */
  uint64_t len; /* size of that buffer */
};
/* Head of the TDVMCALL GetQuote buffer; data (a length-prefixed QGS message) follows. */
struct tdx_quote_hdr {
  uint64_t version; /* 1 */
  uint64_t status;  /* TDX_QUOTE_STATUS_* on return */
  uint32_t in_len;  /* 4 + request message */
  uint32_t out_len; /* 4 + response message, set by the host */
};

#define TDX_CMD_GET_REPORT0 _IOWR('T', 1, struct tdx_report_req)
#define TDX_CMD_EXTEND_RTMR _IOR('T', 3, struct tdx_extend_rtmr_req)
#define TDX_CMD_EXTEND_RTMR_W _IOW('T', 3, struct tdx_extend_rtmr_req) /* custom module */
#define TDX_CMD_GET_QUOTE _IOR('T', 4, struct tdx_quote_req)

#define TDX_QUOTE_BUF_SIZE 16384u
#define TDX_QUOTE_VERSION 1u
#define TDX_QUOTE_STATUS_SUCCESS 0ull
#define TDX_QUOTE_STATUS_IN_FLIGHT 0xffffffffffffffffull
#define TDX_QUOTE_STATUS_SERVICE_UNAVAILABLE 0x8000000000000001ull

/* Offset of RTMR i inside a TDREPORT (TDINFO at 512: attributes 8, xfam 8, mrtd, mrconfigid,
 * mrowner, mrownerconfig 48 each, then rtmr0..3). */
#define TDX_TDREPORT_RTMR_OFFSET(i) (512u + 8u + 8u + 4u * 48u + 48u * (unsigned)(i))

/* Quotes from configfs must be longer than this (and shorter than BUF_MAX_QUOTE). */
#define TDX_CONFIGFS_QUOTE_MIN 1020u

#define TEE_TDX_DEFAULT_CONFIGFS_BASE "/sys/kernel/config/tsm/report"
#define TEE_TDX_DEFAULT_CONFIGFS_DIR TEE_TDX_DEFAULT_CONFIGFS_BASE "/com.intel.dcap"
#define TEE_TDX_DEFAULT_DEVICE "/dev/tdx_guest"
#define TEE_TDX_DEFAULT_RTMR_SYSFS_DIR "/sys/devices/virtual/misc/tdx_guest/measurements"
#define TEE_TDX_DEFAULT_ATTEST_CONF "/etc/tdx-attest.conf"
#define TEE_TDX_DEFAULT_EVENTLOG "/run/log/tdx_mr3/tdx_events.log"
#define TEE_TDX_ENV_CONFIGFS "DCAP_TDX_QUOTE_CONFIGFS_PATH"
#define TEE_TDX_ENV_RTMR_SYSFS "DCAP_TDX_RTMR_SYSFS_PATH"
#define TEE_TDX_QGS_CID 2u /* the host */

/* Called like ioctl(2): returns >= 0, or -1 with errno set. */
typedef int (*tee_tdx_ioctl_fn)(int fd, unsigned long req, void *arg);
/* Returns a connected stream socket (the backend makes it non-blocking and closes it), or a
 * negative errno. */
typedef int (*tee_tdx_vsock_connect_fn)(void *userdata, uint32_t cid, uint32_t port,
                                        unsigned timeout_ms);

enum tee_tdx_configfs_stage {
  TEE_TDX_CONFIGFS_INBLOB_WRITTEN, /* report data written, generation not yet re-read */
  TEE_TDX_CONFIGFS_OUTBLOB_READ,   /* outblob read, generation not yet checked again */
};
/* Test hook: lets a fake configfs directory act like the kernel between the steps. */
typedef void (*tee_tdx_configfs_hook_fn)(void *userdata, enum tee_tdx_configfs_stage stage,
                                         const char *dir);

/* Every field may be left 0/NULL for its default. Strings are copied by tee_tdx_new(). */
struct tee_tdx_config {
  const char *configfs_dir;   /* NULL: $DCAP_TDX_QUOTE_CONFIGFS_PATH, else the default dir */
  const char *configfs_base;  /* configfs_dir is made here when missing; NULL: the default base
                               * when configfs_dir is the default, else never made */
  const char *device;         /* /dev/tdx_guest */
  const char *rtmr_sysfs_dir; /* NULL: $DCAP_TDX_RTMR_SYSFS_PATH, else the default dir */
  const char *attest_conf;    /* /etc/tdx-attest.conf */
  const char *eventlog;       /* /run/log/tdx_mr3/tdx_events.log */
  tee_tdx_ioctl_fn ioctl_fn;  /* ioctl(2) */
  tee_tdx_vsock_connect_fn vsock_connect; /* AF_VSOCK stream socket */
  void *vsock_userdata;
  tee_tdx_configfs_hook_fn configfs_hook;
  void *configfs_hook_userdata;
  unsigned busy_retries; /* EBUSY retries of configfs reads and writes: 3 */
  unsigned busy_wait_ms; /* wait between them: 10000 */
  unsigned timeout_ms;   /* bound on the inblob lock, the generation change, vsock connect and
                          * each vsock send/receive: 30000 */
};

extern const struct tee_ops tee_tdx_ops;

/* tee_tdx_new() is declared in attest/tee.h. It only records the configuration; a machine
 * without TDX fails at the first operation with -ENODEV. */

/* What went wrong in the last failed tee_get_quote() on t: one line naming each quote path and
 * why it failed. Empty when the last call succeeded. Valid until the next call on t. */
const char *tee_tdx_last_error(struct tee *t);

/* The Quote Generation Service (QGS) message format used by the TDX guest to ask the host for
 * a quote, and the guest's /etc/tdx-attest.conf. Pure encoding and decoding, no I/O.
 *
 * A framed message is a 4-byte big-endian length followed by the message:
 *   header   { u16 major = 1; u16 minor = 0; u32 type; u32 size (whole message); u32 error_code; }
 *   request  (type 0) { u32 report_size = 1024; u32 id_list_size = 0; u8 report[1024]; }
 *   response (type 1) { u32 selected_id_size; u32 quote_size; u8 id[]; u8 quote[]; }
 * Integers inside the message are little-endian. The same framed message travels over vsock
 * and inside the TDVMCALL GetQuote buffer. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define TDX_REPORT_SIZE 1024u
#define TDX_REPORT_DATA_SIZE 64u

#define TDX_QGS_MAJOR 1u
#define TDX_QGS_MINOR 0u
#define TDX_QGS_GET_QUOTE_REQ 0u
#define TDX_QGS_GET_QUOTE_RESP 1u
#define TDX_QGS_HEADER_SIZE 16u
#define TDX_QGS_PREFIX_SIZE 4u
/* Largest message we accept from a QGS: a capped quote plus header, sizes and one id. */
#define TDX_QGS_MAX_MSG (BUF_MAX_QUOTE + 1024u)
/* Size of a request message (without the length prefix). */
#define TDX_QGS_REQUEST_SIZE (TDX_QGS_HEADER_SIZE + 8u + TDX_REPORT_SIZE)

/* Intel's TD quoting enclave attestation key id, e86c046e-8cc4-4d95-8173-fc43c1fa4f3f. */
extern const uint8_t tdx_qgs_tdqe_uuid[16];

/* Appends the length-prefixed GET_QUOTE request for a 1024-byte TDREPORT to out. */
int tdx_qgs_encode_request(const uint8_t report[TDX_REPORT_SIZE], struct buf *out);

/* Reads a 4-byte big-endian length prefix: -EBADMSG when it is smaller than a header,
 * -ENOBUFS when it is larger than max (0 = TDX_QGS_MAX_MSG). */
int tdx_qgs_parse_length(const uint8_t prefix[TDX_QGS_PREFIX_SIZE], size_t max, uint32_t *ret);

/* Decodes a GET_QUOTE response message (without the length prefix); ret_quote points into
 * data. -EBADMSG on a malformed message (short, wrong major, wrong type, sizes that do not add
 * up to len, an empty quote), -EIO when the QGS reports an error code, -EPERM when the
 * selected attestation key id is neither empty nor Intel's TDQE id. */
int tdx_qgs_decode_response(const uint8_t *data, size_t len, struct slice *ret_quote);

/* Same, for a framed message: the prefix must match the rest of data exactly. */
int tdx_qgs_decode_framed_response(const uint8_t *data, size_t len, struct slice *ret_quote);

/* Finds `port = N` in the text of /etc/tdx-attest.conf. Blank lines and lines starting with '#'
 * (after spaces) are skipped, a '#' after a value starts a comment, other `key = value` lines
 * are ignored. -ENOENT when no port is set, -EINVAL on a line that is not `key = value`, a
 * port that is not a decimal number in 1..4294967294, or a second port line. */
int tdx_attest_conf_parse_port(const char *text, size_t len, uint32_t *ret);

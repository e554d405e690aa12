/* DNS wire messages for certbot: queries, RFC 2136 UPDATE messages, TSIG (RFC 8945,
 * hmac-sha256) signing and verification, and a strict parser of responses.
 *
 * The parser reads untrusted bytes: every length is checked before it is read, compression
 * pointers are followed a bounded number of times and only backwards, and at most
 * CERTBOT_DNSMSG_MAX_RRS records are kept. Errors: -EBADMSG malformed input, -ENOBUFS caps,
 * -EINVAL bad arguments, -EPERM a TSIG that does not verify, -ENOMEM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define CERTBOT_DNSMSG_MAX (65535u)
#define CERTBOT_DNSMSG_MAX_RRS 256
#define CERTBOT_DNS_NAME_MAX 255 /* wire length */

enum {
  DNS_TYPE_SOA = 6,
  DNS_TYPE_TXT = 16,
  DNS_TYPE_CAA = 257,
  DNS_TYPE_TSIG = 250,
  DNS_CLASS_IN = 1,
  DNS_CLASS_NONE = 254,
  DNS_CLASS_ANY = 255,
};

struct certbot_dns_rr {
  char name[256]; /* dotted, lowercase, no trailing dot ("" = root) */
  uint16_t type, class;
  uint32_t ttl;
  struct slice rdata; /* points into the parsed message */
  size_t offset;      /* of the record in the message */
};

struct certbot_dns_msg {
  uint16_t id, flags;
  uint16_t counts[4];         /* question, answer, authority, additional */
  unsigned rcode;             /* from flags (the TSIG error is separate) */
  struct certbot_dns_rr *rrs; /* answer, authority, additional in order (questions skipped) */
  size_t n_rrs;
  size_t n_answer;
  bool has_tsig;      /* the last additional record is a TSIG */
  size_t tsig_offset; /* start of the TSIG record */
};

/* A TSIG key: name (dotted) and its secret (the bytes, not base64). */
struct certbot_tsig_key {
  const char *name;
  const uint8_t *secret;
  size_t secret_len;
};

/* Encodes a dotted name (trailing dot optional) in wire form, lowercase, no compression. */
int certbot_dns_name_encode(const char *name, struct buf *out);

/* Message builders: out receives a whole message (no TCP length prefix). */
int certbot_dnsmsg_query(uint16_t id, const char *name, uint16_t type, struct buf *out);
/* Starts an UPDATE for zone; then certbot_dnsmsg_update_rr for each change. */
int certbot_dnsmsg_update_begin(uint16_t id, const char *zone, struct buf *out);
/* Appends one update record: class IN adds (ttl), class NONE deletes exactly this rdata. */
int certbot_dnsmsg_update_rr(struct buf *msg, const char *name, uint16_t type, uint16_t class,
                             uint32_t ttl, const void *rdata, size_t rdlen);

/* Rdata encoders. TXT: value split into strings of at most 255 bytes. CAA: flags tag value. */
int certbot_dns_txt_rdata(const char *value, struct buf *out);
int certbot_dns_caa_rdata(unsigned flags, const char *tag, const char *value, struct buf *out);
/* Decoders for list: TXT strings concatenated; CAA as "<flags> <tag> \"<value>\"". */
int certbot_dns_txt_rdata_decode(struct slice rd, char **ret);
int certbot_dns_caa_rdata_decode(struct slice rd, char **ret);

/* Signs msg in place (appends a TSIG record, bumps ARCOUNT). ret_mac (32 bytes) receives the
 * MAC for verifying the response. now: seconds since the epoch. */
int certbot_tsig_sign(struct buf *msg, const struct certbot_tsig_key *k, uint64_t now,
                      uint8_t ret_mac[32]);
/* Verifies the TSIG of a parsed response against the request's MAC: -EPERM when absent,
 * signed by another key, with a bad MAC, a TSIG error, or a time outside the fudge. */
int certbot_tsig_verify(const uint8_t *resp, size_t len, const struct certbot_dns_msg *m,
                        const struct certbot_tsig_key *k, const uint8_t req_mac[32], uint64_t now);

int certbot_dnsmsg_parse(const uint8_t *p, size_t len, struct certbot_dns_msg *ret);
void certbot_dnsmsg_free(struct certbot_dns_msg *m);

/* One exchange over TCP (2-byte length prefix) with host:port ("[v6]:port" too), bounded by
 * timeout_ms in total. resp gets the response message. */
int certbot_dns_tcp_exchange(const char *server, const struct slice req, unsigned timeout_ms,
                             struct buf *resp);

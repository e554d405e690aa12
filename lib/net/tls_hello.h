/* Bounded parser of a TLS ClientHello taken from the first bytes of a connection, for SNI
 * routing. Stateless: call it again on the whole prefix after each read.
 *
 * tls_hello_parse() returns 0 when the ClientHello is complete (it may span several
 * handshake records), -EAGAIN when more bytes are needed, -EBADMSG when the bytes are not a
 * well-formed TLS ClientHello (other record types, SSLv2-style hello, bad lengths, duplicate
 * extensions, invalid host name), -ENOBUFS when the ClientHello would need more than
 * TLS_HELLO_MAX_INPUT input bytes or declares a message longer than TLS_HELLO_MAX_MSG. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define TLS_HELLO_MAX_INPUT ((size_t)16384) /* input bytes a caller needs to buffer at most */
#define TLS_HELLO_MAX_MSG ((size_t)16000)   /* handshake body length accepted */
#define TLS_HELLO_SNI_MAX 253
#define TLS_HELLO_ALPN_MAX 512 /* wire bytes of the ALPN protocol list kept */

struct tls_hello {
  uint16_t legacy_version;     /* ClientHello.legacy_version, 0x0300..0x0303 */
  char sni[TLS_HELLO_SNI_MAX + 1]; /* lowercased host_name; "" when absent */
  bool has_supported_versions; /* extension 43 present */
  bool offers_tls13;           /* 0x0304 listed in supported_versions */
  size_t n_alpn;               /* protocols in the ALPN extension (16), 0 when absent */
  uint8_t alpn[TLS_HELLO_ALPN_MAX]; /* wire form: u8 length + name, repeated */
  size_t alpn_len;
  size_t n_extensions;
  size_t hello_len; /* input bytes up to the end of the record that completed the hello */
};

int tls_hello_parse(const uint8_t *data, size_t len, struct tls_hello *ret);

/* The idx-th ALPN protocol name (not NUL-terminated); -ENOENT past the end. */
int tls_hello_alpn_get(const struct tls_hello *h, size_t idx, struct slice *ret);
/* True when the hello offers exactly this ALPN protocol (e.g. "h2"). */
bool tls_hello_alpn_offers(const struct tls_hello *h, const char *proto);

/* DNS host name check used for SNI: 1..253 chars, labels 1..63 of [a-z0-9-] (lowercase only),
 * no empty label, no trailing dot. */
bool tls_hello_hostname_valid(const char *s, size_t len);

/* The HTTP reply of tappd, split and dechunked (reply.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "reply.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The chunked body at b (n bytes, b[n] readable and NUL), decoded in place: its length, or -1. */
static long dechunk(char *b, size_t n) {
  size_t in = 0, out = 0;
  for (;;) {
    if (in >= n || !isxdigit((unsigned char)b[in])) /* strtoul would skip blanks, take signs */
      return -1;
    char *end;
    errno = 0;
    unsigned long len = strtoul(b + in, &end, 16);
    if (errno)
      return -1;
    char *eol = memmem(end, n - (size_t)(end - b), "\r\n", 2);
    if (!eol)
      return -1;
    in = (size_t)(eol - b) + 2;
    if (len == 0)
      return (long)out;
    if (len > n - in || n - in - len < 2 || b[in + len] != '\r' || b[in + len + 1] != '\n')
      return -1;
    memmove(b + out, b + in, len);
    out += len;
    in += len + 2;
  }
}

int attest_reply_parse(char *buf, size_t n, int *status, char **body, size_t *body_len,
                       const char **why) {
  buf[n] = 0;
  char *hend = memmem(buf, n, "\r\n\r\n", 4);
  if (!hend) {
    *why = "no end of headers";
    return -1;
  }
  *hend = 0;
  /* "HTTP/1.x NNN": exactly three digits after one space */
  if (strncmp(buf, "HTTP/1.", 7) != 0 || !(buf[7] == '0' || buf[7] == '1') || buf[8] != ' ' ||
      buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' ||
      buf[11] > '9' || (buf[12] != ' ' && buf[12] != '\r' && buf[12] != 0)) {
    *why = "not an HTTP/1.x status line";
    return -1;
  }
  *status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
  char *data = hend + 4;
  size_t dlen = n - (size_t)(data - buf);
  if (strcasestr(buf, "\r\ntransfer-encoding: chunked")) {
    long d = dechunk(data, dlen);
    if (d < 0) {
      *why = "malformed chunked body";
      return -1;
    }
    dlen = (size_t)d;
  }
  *body = data;
  *body_len = dlen;
  return 0;
}

/* dstack-attest: what an app does with tappd's socket, in one small static program.
 *
 *   dstack-attest SOCKET NAME KEYDIR OUTDIR
 *
 * 1. Tappd.DeriveKey {path "/demo/tls", subject NAME, alt_names [NAME]} over the unix socket
 *    SOCKET: a key only this app gets, with a certificate chain to the KMS's root. The key goes to
 *    KEYDIR/key.pem (0600), the leaf to KEYDIR/cert.pem and the rest to KEYDIR/chain.pem; the
 *    public leaf is copied to OUTDIR/cert.pem.
 * 2. Tappd.TdxQuote with the leaf's PEM text as report_data: the quote binds the certificate the
 *    app serves (report_data = sha512("app-data:" || PEM)). The reply (quote, event log) is
 *    written to OUTDIR/quote.json.
 * Each step prints one line; any failure exits 1 with the reason. Files are written to a
 * temporary name and renamed, so a reader never sees half of one. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "reply.h"

#define MAX_REPLY (8u << 20) /* tappd's replies are a few KiB; a quote with its log < 1 MiB */
#define IO_TIMEOUT_S 30      /* each read or write on the socket */

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("dstack-attest: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      die("write: %s", strerror(errno));
    p += w;
    n -= (size_t)w;
  }
}

/* POST /prpc/METHOD?json with the JSON body; the parsed reply object (a 200 answer only). */
static json_t *tappd_call(const char *sock, const char *method, json_t *req) {
  char *body = json_dumps(req, JSON_COMPACT);
  if (!body)
    die("out of memory");
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(sock) >= sizeof(sa.sun_path))
    die("socket path too long: %s", sock);
  strcpy(sa.sun_path, sock);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
      connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
    die("connect %s: %s", sock, strerror(errno));
  char *head = NULL;
  int hn = asprintf(&head,
                    "POST /prpc/%s?json HTTP/1.1\r\nHost: localhost\r\n"
                    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n",
                    method, strlen(body));
  if (hn < 0)
    die("out of memory");
  write_all(fd, head, (size_t)hn);
  write_all(fd, body, strlen(body));
  free(head);
  free(body);

  size_t cap = 64 * 1024, n = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (!buf)
      die("out of memory");
    if (n == cap) {
      if (cap >= MAX_REPLY)
        die("%s: reply larger than %u bytes", method, MAX_REPLY);
      cap *= 2;
      buf = realloc(buf, cap + 1);
      continue;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      die("%s: read: %s", method, strerror(errno));
    if (r == 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  int status = 0;
  char *data;
  size_t dlen;
  const char *why;
  if (attest_reply_parse(buf, n, &status, &data, &dlen, &why) < 0)
    die("%s: %s", method, why);
  if (status != 200)
    die("%s: HTTP %d: %.*s", method, status, (int)(dlen > 300 ? 300 : dlen), data);
  json_error_t err;
  json_t *j = json_loadb(data, dlen, 0, &err);
  if (!json_is_object(j))
    die("%s: reply is not a JSON object (%s)", method, err.text);
  free(buf);
  return j;
}

static void file_put(const char *dir, const char *name, const char *data, size_t n, mode_t mode) {
  char *path = NULL, *tmp = NULL;
  if (asprintf(&path, "%s/%s", dir, name) < 0 || asprintf(&tmp, "%s/.%s.tmp", dir, name) < 0)
    die("out of memory");
  /* a new file with its mode from the start: a key is never readable while written */
  if (unlink(tmp) < 0 && errno != ENOENT)
    die("%s: %s", tmp, strerror(errno));
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    die("%s: %s", tmp, strerror(errno));
  write_all(fd, data, n);
  if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0)
    die("%s: %s", path, strerror(errno));
  free(path);
  free(tmp);
}

static const char *str_field(json_t *o, const char *key, const char *method) {
  const char *s = json_string_value(json_object_get(o, key));
  if (!s || !*s)
    die("%s: reply has no \"%s\"", method, key);
  return s;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s SOCKET NAME KEYDIR OUTDIR\n", argv[0]);
    return 2;
  }
  const char *sock = argv[1], *name = argv[2], *keydir = argv[3], *outdir = argv[4];
  setvbuf(stdout, NULL, _IOLBF, 0);

  json_t *req = json_pack("{s:s, s:s, s:[s]}", "path", "/demo/tls", "subject", name,
                          "alt_names", name);
  json_t *k = tappd_call(sock, "Tappd.DeriveKey", req);
  json_decref(req);
  const char *key = str_field(k, "key", "DeriveKey");
  json_t *chain = json_object_get(k, "certificate_chain");
  size_t nchain = json_array_size(chain);
  if (nchain < 1 || !json_string_value(json_array_get(chain, 0)))
    die("DeriveKey: reply has no certificate_chain");
  const char *leaf = json_string_value(json_array_get(chain, 0));
  file_put(keydir, "key.pem", key, strlen(key), 0600);
  file_put(keydir, "cert.pem", leaf, strlen(leaf), 0644);
  size_t clen = 0;
  char *rest = NULL;
  FILE *m = open_memstream(&rest, &clen);
  for (size_t i = 1; m && i < nchain; i++) {
    const char *c = json_string_value(json_array_get(chain, i));
    if (!c)
      die("DeriveKey: certificate_chain[%zu] is not a string", i);
    fputs(c, m);
  }
  if (!m || fclose(m) != 0)
    die("out of memory");
  file_put(keydir, "chain.pem", rest, clen, 0644);
  file_put(outdir, "cert.pem", leaf, strlen(leaf), 0644);
  printf("dstack-attest: DeriveKey: a key for %s with a chain of %zu certificates\n", name,
         nchain);
  free(rest);

  /* report_data: the leaf's PEM text, hex (tappd hashes it with the "app-data:" prefix) */
  size_t ll = strlen(leaf);
  char *hex = malloc(2 * ll + 1);
  if (!hex)
    die("out of memory");
  for (size_t i = 0; i < ll; i++)
    sprintf(hex + 2 * i, "%02x", (unsigned char)leaf[i]);
  req = json_pack("{s:s}", "report_data", hex);
  free(hex);
  json_t *q = tappd_call(sock, "Tappd.TdxQuote", req);
  json_decref(req);
  size_t qlen = strlen(str_field(q, "quote", "TdxQuote")) / 2;
  const char *ev = json_string_value(json_object_get(q, "event_log"));
  json_t *events = ev ? json_loads(ev, 0, NULL) : NULL;
  char *qjson = json_dumps(q, JSON_INDENT(1));
  if (!qjson)
    die("out of memory");
  file_put(outdir, "quote.json", qjson, strlen(qjson), 0644);
  printf("dstack-attest: TdxQuote: a quote of %zu bytes and an event log of %zu events, "
         "bound to the certificate\n",
         qlen, json_array_size(events));
  free(qjson);
  json_decref(events);
  json_decref(q);
  json_decref(k);
  return 0;
}

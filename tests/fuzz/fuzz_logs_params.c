/* The /logs query of tappd (src/tappd/logs.c): since/until (unix seconds or 30s|5m|2h|1d),
 * tail, and the flags, parsed from an arbitrary query string through the URL query parser the
 * HTTP server uses; then the Docker API target built from them, which goes into a raw request
 * line and so must hold no space, CR, LF or NUL. The raw input is also given to
 * logs_parse_time() directly. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tappd_logs.h"
#include "net/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000

static int get(void *ud, const char *name, char **ret) {
  const char *v;
  int r = url_query_get(ud, name, &v);
  if (r < 0)
    return r;
  *ret = strdup(v);
  return *ret ? 0 : -ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = 0;
  int64_t t;
  if (logs_parse_time(s, NOW, &t) == 0 && t < 0)
    abort();
  /* A relative time is never after now. */
  size_t len = strlen(s);
  if (len > 1 && memchr("smhd", s[len - 1], 4) && logs_parse_time(s, NOW, &t) == 0 && t > NOW)
    abort();

  struct url_query q = {0};
  if (url_query_parse(s, size, &q) == 0) {
    struct logs_params p;
    char err[160];
    int r = logs_params_parse(get, &q, NOW, &p, err, sizeof(err));
    if (r == 0) {
      if (p.since < 0 || p.until < 0)
        abort();
      size_t tl = strnlen(p.tail, sizeof(p.tail));
      if (tl == 0 || tl == sizeof(p.tail))
        abort();
      if (strcmp(p.tail, "all") != 0 && strspn(p.tail, "0123456789") != tl)
        abort();
      struct buf target = BUF_INIT(1024);
      if (logs_docker_target("app-1", &p, &target) < 0 || buf_terminate(&target) < 0)
        abort();
      const char *tg = (const char *)target.data;
      if (strlen(tg) != target.len || strpbrk(tg, " \r\n"))
        abort();
      buf_free(&target);
    } else if (r != -EINVAL || !err[0]) {
      abort();
    }
  }
  url_query_free(&q);
  free(s);
  return 0;
}

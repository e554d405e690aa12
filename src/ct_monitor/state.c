/* The state file. */
#include "ct_monitor_state.h"

#include <errno.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/str.h"

int ct_state_load(const char *path, const char *domain, const char *crtsh_url,
                  struct ct_state *ret, char *why, size_t whylen) {
  memset(ret, 0, sizeof(*ret));
  _cleanup_buf_ struct buf b = BUF_INIT(CT_STATE_MAX);
  int r = file_read_all(path, CT_STATE_MAX, &b);
  if (r == -ENOENT)
    return 0;
  if (r < 0)
    return str_err(why, whylen, r, "reading %s: %s", path, strerror(-r));
  _cleanup_json_ json_t *j = NULL;
  const char *d = NULL, *u = NULL;
  int64_t last = 0;
  bool seen = false;
  if (json_parse_buf((const char *)b.data, b.len, CT_STATE_MAX, &j) < 0 || !json_is_object(j) ||
      json_get_str(j, "domain", &d) < 0 || json_get_str(j, "crtsh_url", &u) < 0 ||
      json_get_i64(j, "last_checked", &last) < 0 || last < 0 ||
      (json_get_bool(j, "quotes_seen", &seen) < 0 && json_object_get(j, "quotes_seen")))
    return str_err(why, whylen, -EBADMSG, "%s is not a ct_monitor state file", path);
  if (!str_eq(d, domain) || !str_eq(u, crtsh_url))
    return str_err(why, whylen, 1, "%s was written for %s on %s, not %s on %s", path, d, u,
                   domain, crtsh_url);
  ret->last_checked = last;
  ret->quotes_seen = seen;
  return 0;
}

int ct_state_save(const char *path, const char *domain, const char *crtsh_url,
                  const struct ct_state *s) {
  _cleanup_json_ json_t *j = json_object();
  _cleanup_buf_ struct buf out = BUF_INIT(CT_STATE_MAX);
  if (!j)
    return -ENOMEM;
  int r;
  if ((r = json_set_str(j, "domain", domain)) < 0 ||
      (r = json_set_str(j, "crtsh_url", crtsh_url)) < 0 ||
      (r = json_set_i64(j, "last_checked", s->last_checked)) < 0 ||
      (r = json_set_bool(j, "quotes_seen", s->quotes_seen)) < 0 ||
      (r = json_dump_buf(j, JSON_COMPACT, &out)) < 0 || (r = buf_append_str(&out, "\n")) < 0)
    return r;
  return file_write_atomic(path, out.data, out.len, 0600);
}

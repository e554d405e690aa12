/* What ct_monitor remembers between runs, in one JSON file written atomically (a crash leaves
 * the old file or the new one):
 *   {"domain":"<domain>","crtsh_url":"<base URL>","last_checked":<crt.sh id>,
 *    "quotes_seen":<bool>}
 * last_checked: every crt.sh entry up to this id was checked (0: none yet). quotes_seen: tproxy
 * once listed a quoted key, so keys without a quote are never trusted again (no silent
 * downgrade to the legacy rule). The file belongs to one domain and one crt.sh: a file written
 * for another is not used (checking starts over, which can alarm again but never skips). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CT_STATE_MAX ((size_t)64 * 1024)

struct ct_state {
  int64_t last_checked;
  bool quotes_seen;
};

/* 0 with the state (an empty one when the file does not exist); 1 with an empty state when the
 * file was written for another domain or crt.sh (why says which); -EBADMSG when it is not a
 * state file, other negative errno when it cannot be read (why says so). */
int ct_state_load(const char *path, const char *domain, const char *crtsh_url,
                  struct ct_state *ret, char *why, size_t whylen);
int ct_state_save(const char *path, const char *domain, const char *crtsh_url,
                  const struct ct_state *s);

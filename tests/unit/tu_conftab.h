/* Checks of a whole conftab table, shared by the config tests. Include after cmocka's headers. */
#pragma once

#include <stddef.h>

#include "base/conftab.h"

/* A string value that stresses TOML quoting: both quotes, backslashes, UTF-8 of 2, 3 and 4
 * bytes, newline, carriage return, tab, other control characters, DEL, and comment, table and
 * multi-line string syntax. */
#define TU_CONFTAB_TRICKY                                                                         \
  "q\"uo'te \\back\\slash\\ \xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80 nl\ncr\r\ttab \x01\x1f\x7f"      \
  " # k = [t] \"\"\" ''' \\u0041"
/* Every secret string option gets a value starting with this: it must never be in a dump made
 * without CONFTAB_DUMP_SECRETS. */
#define TU_CONFTAB_SECRET_MARK "SECRET-VALUE-"

/* Sets every option of obj (holding defaults) to a value other than its default: the extremes
 * of numbers, flipped booleans, TU_CONFTAB_TRICKY strings and lists. */
void tu_conftab_fill(const struct conftab *t, void *obj);
/* Whether option o holds the same value in a and b. */
bool tu_conftab_opt_equal(const struct conftab_opt *o, const void *a, const void *b);

/* The dump round trip, for an object of size bytes with table t:
 *   1. defaults: dump, load onto fresh defaults, every option equal;
 *   2. every option set to a non-default value (tu_conftab_fill, checked to differ from the
 *      default): dump without secrets, load onto fresh defaults: every option equal except the
 *      secrets, which are at their defaults; no secret value in the dump, which has
 *      "# key = (set, not shown)" for each;
 *   3. the same with CONFTAB_DUMP_SECRETS: every option equal;
 * and every dump, loaded and dumped again, gives the same text. */
void tu_conftab_roundtrip(const struct conftab *t, size_t size);

/* Options whose key names a secret (private_key, secret, token, password, api_key, ...) are
 * marked secret; returns how many options are secret. */
size_t tu_conftab_check_secret_names(const struct conftab *t);

/* Entries that must not compile (base/conftab.h): test_conftab compiles this file with
 * -DCASE=n for each n and expects CASE=0 to build and every other case to fail. */
#include <stdbool.h>
#include <stdint.h>

#include "base/conftab.h"

struct cf {
  char *name;
  uint16_t port;
  uint32_t count;
  bool flag;
  uint64_t size;
  char **list;
};

#define CF struct cf

static const struct conftab_opt opts[] = {
    CONFTAB_STR(CF, "", "name", name, "x"),
    CONFTAB_U16(CF, "", "port", port, 65535),
    CONFTAB_U32(CF, "", "count", count, 4294967295u),
    CONFTAB_BOOL(CF, "", "flag", flag, true),
    CONFTAB_SIZE(CF, "", "size", size, (uint64_t)10 << 20),
    CONFTAB_STRV(CF, "", "list", list, "a,b"),
#if CASE == 1 /* a U32 entry on a uint16_t field */
    CONFTAB_U32(CF, "", "p", port, 1),
#elif CASE == 2 /* a U16 entry on a uint32_t field */
    CONFTAB_U16(CF, "", "c", count, 1),
#elif CASE == 3 /* a string entry on a list field */
    CONFTAB_STR(CF, "", "l", list, ""),
#elif CASE == 4 /* a list entry on a string field */
    CONFTAB_STRV(CF, "", "n", name, ""),
#elif CASE == 5 /* a boolean entry on an integer field */
    CONFTAB_BOOL(CF, "", "p", port, false),
#elif CASE == 6 /* a size entry on a uint32_t field */
    CONFTAB_SIZE(CF, "", "c", count, 1),
#elif CASE == 7 /* a misspelt boolean default */
    CONFTAB_BOOL(CF, "", "f", flag, ture),
#elif CASE == 8 /* a boolean default given as text */
    CONFTAB_BOOL(CF, "", "f", flag, "true"),
#elif CASE == 9 /* a boolean default out of range */
    CONFTAB_BOOL(CF, "", "f", flag, 2),
#elif CASE == 10 /* a port out of range */
    CONFTAB_U16(CF, "", "p", port, 65536),
#elif CASE == 11 /* a negative default */
    CONFTAB_U32(CF, "", "c", count, -1),
#elif CASE == 12 /* a number given as text */
    CONFTAB_U16(CF, "", "p", port, "80"),
#elif CASE == 13 /* a string default that is not a string literal */
    CONFTAB_STR(CF, "", "n", name, 0),
#elif CASE == 14 /* a size above INT64_MAX */
    CONFTAB_SIZE(CF, "", "s", size, UINT64_MAX),
#elif CASE == 15 /* a secret on a list field */
    CONFTAB_SECRET_STR(CF, "", "l", list, ""),
#elif CASE == 16 /* no such field */
    CONFTAB_STR(CF, "", "x", nosuch, ""),
#endif
};

const struct conftab *cf_table(void);
const struct conftab *cf_table(void) {
  static const struct conftab t = {opts, sizeof(opts) / sizeof(opts[0])};
  return &t;
}

#include "tu_wipe.h"

#include <stdint.h>

void __real_free(void *p);
void __wrap_free(void *p);

static const void *watched;
static size_t watched_len;
static bool freed, clean;

void tu_wipe_watch(const void *p, size_t len) {
  watched = p;
  watched_len = len;
  freed = false;
  clean = false;
}

bool tu_wipe_freed(void) {
  return freed;
}

bool tu_wipe_was_clean(void) {
  return clean;
}

void __wrap_free(void *p) {
  if (p && p == watched) {
    const volatile uint8_t *b = p;
    uint8_t any = 0;
    for (size_t i = 0; i < watched_len; i++)
      any |= b[i];
    clean = any == 0;
    freed = true;
    watched = NULL;
  }
  __real_free(p);
}

/* Seeing that memory was wiped before it was freed. Tests using this are linked with
 * -Wl,--wrap=free (tests/unit/meson.build: unit_extra_link), so every free() in the test and in
 * the libraries linked into it passes through a check. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Watches the block p: when it is freed, its first len bytes are checked to be zero. */
void tu_wipe_watch(const void *p, size_t len);
/* Whether the watched block was freed (and the watch ended), and whether it was all zeros then. */
bool tu_wipe_freed(void);
bool tu_wipe_was_clean(void);

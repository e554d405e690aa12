/* The web console page (web/teepod/console.html), built into the binary by scripts/embed.py. */
#pragma once

#include <stddef.h>

extern const char teepod_console_html[];
extern const size_t teepod_console_html_len;

/* tboot: the program that boots a dstack app inside the CVM (docs/tboot.md). */
#pragma once

#define TBOOT_VERSION "0.1.0"

const char *tboot_version(void);

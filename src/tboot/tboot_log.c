/* Placeholder module until the boot steps land; replaced by the real modules. */
#include "tboot.h"

const char *tboot_version(void) { return TBOOT_VERSION; }

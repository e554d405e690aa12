/* Helpers for unit tests: locating and reading test vectors. Include after cmocka's headers. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Absolute path of a file under tests/vectors (or $DSTACK_VECTORS); static storage. */
const char *tu_vector_path(const char *rel);
/* Absolute path of a file under the source tree (e.g. "tests/data/x"); static storage. */
const char *tu_source_path(const char *rel);
/* Reads a whole file into out (cap 64 MiB); fails the test on error. */
void tu_read_file(const char *path, struct buf *out);
/* Reads a vector file; hex text when hex is true (0x prefix and whitespace allowed). */
void tu_read_vector(const char *rel, bool hex, struct buf *out);
/* Decodes a hex literal into out; fails the test on bad hex. */
void tu_hex(const char *hex, struct buf *out);
/* A fresh private temp directory (mkdtemp); caller removes it with tu_rm_rf. */
char *tu_mkdtemp(void);
void tu_rm_rf(const char *path);

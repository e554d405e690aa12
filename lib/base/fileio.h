/* Whole-file reads with a size cap, complete writes, atomic file replacement, mkdir -p.
 * All functions return 0 or a negative errno. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "base/buf.h"

/* Reads everything from fd up to EOF and appends it to out. Retries EINTR.
 * -EFBIG when the data is longer than max; -ENOBUFS when out's own cap is hit first (a zeroed
 * buffer has cap 0: it takes empty input only). On error out keeps its previous length, and
 * the bytes read are wiped when out is a secret buffer. */
int fd_read_all(int fd, size_t max, struct buf *out);
/* Same for a file; "-" reads standard input. Regular files larger than max fail early. */
int file_read_all(const char *path, size_t max, struct buf *out);
/* The same for pseudo files (sysfs, procfs) whose size stat reports is not their content's
 * (a sysfs attribute says 4096): reads up to max bytes, -EFBIG past it. */
int file_read_pseudo(const char *path, size_t max, struct buf *out);

/* The one "read a whole file" helper: initialises *ret with cap max (a secret buffer, wiped
 * on free, when secret), reads path into it. A file over max is -EFBIG, whatever kind of file
 * it is; on any error *ret is empty (still to be freed, like any buffer). */
int file_read_capped(const char *path, size_t max, bool secret, struct buf *ret);

/* Writes all len bytes, retrying EINTR and short writes. */
int fd_write_all(int fd, const void *data, size_t len);

/* Replaces path atomically with the given content and the exact permission bits mode (set with
 * fchmod, so the umask does not apply): a temporary file ".<name>.tmp<random>" is created next
 * to path (O_EXCL, mode 0600 at creation), written, fsynced, renamed over path, and the
 * directory is fsynced. On failure the temporary file is removed and path is left as it was;
 * the one exception is an error from the final directory fsync, returned after the rename.
 * A symlink at path is replaced, not followed. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* fsync(2) of a directory (after creating, renaming or removing entries in it); file systems
 * that cannot sync directories count as done. */
int dir_fsync(const char *dir);

/* Creates path and its missing parents with mode (the umask applies, as for mkdir(2)).
 * Existing directories are fine; an existing non-directory is -ENOTDIR. */
int mkdir_p(const char *path, mode_t mode);
/* Creates the parent directories of path (everything before its last '/'). */
int mkdir_parents(const char *path, mode_t mode);

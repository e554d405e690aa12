/* A set of new files created as one, across crashes: after a crash and the next
 * fileset_recover(), either every file of the set exists with its full content, or none does.
 *
 * fileset_create() writes the files into a staging directory (0700) next to the targets and
 * syncs them, writes the marker STAGING/complete last (the commit point), then hard-links each
 * file to its target (never replacing an existing one) and removes the staging directory.
 * fileset_recover(), run at start-up before anything looks at the targets, removes a staging
 * directory without the marker (a crash before the files were complete: no target was touched)
 * and finishes one with it (a crash during the links). Hard links keep one inode per file, so
 * staging and the targets' directories must be on one file system.
 *
 * Functions return 0 or a negative errno; they log only at debug level. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#define FILESET_MAX 32
#define FILESET_MARKER "complete"

struct fileset_file {
  const char *path; /* the target */
  const void *data;
  size_t len;
  mode_t mode; /* exact permission bits (the umask does not apply) */
};

/* Called after every step (1, 2, ...) of fileset_create / the finishing part of
 * fileset_recover: n files written, the marker, n links. Tests crash there. May be NULL. */
typedef void (*fileset_step_fn)(void *userdata, unsigned step);

/* -EEXIST, with nothing written, when a target exists or staging does (a crash not recovered
 * yet, or another process creating the set); -EXDEV when a target's directory is on another
 * file system than staging. Missing parent directories are created 0700. An error before the
 * commit point removes staging again; after it, staging is kept for fileset_recover. */
int fileset_create(const char *staging, const struct fileset_file *files, size_t n,
                   fileset_step_fn step, void *userdata);

enum fileset_recovery {
  FILESET_NOTHING = 0,  /* no staging directory */
  FILESET_REMOVED = 1,  /* an incomplete one, removed (no target had been touched) */
  FILESET_FINISHED = 2, /* a complete one: every target is in place now */
};

/* targets: the paths given to fileset_create, in the same order. -EEXIST when a target exists
 * but is not the staged file (staging is kept, nothing is replaced); -EBADMSG when staging does
 * not hold exactly the n staged files. */
int fileset_recover(const char *staging, const char *const *targets, size_t n,
                    fileset_step_fn step, void *userdata, enum fileset_recovery *ret);

/* A set of new files created as one across crashes: staged, committed by a marker, linked. */
#include "base/fileset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/log.h"

/* dir/name into out. */
static int path_join(char out[PATH_MAX], const char *dir, const char *name) {
  int k = snprintf(out, PATH_MAX, "%s/%s", dir, name);
  return k < 0 || k >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static int staged_path(char out[PATH_MAX], const char *staging, size_t i) {
  char name[32];
  snprintf(name, sizeof(name), "file-%zu", i);
  return path_join(out, staging, name);
}

/* The directory part of path ("." without a '/'). */
static int path_dir(char out[PATH_MAX], const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) {
    strcpy(out, ".");
    return 0;
  }
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  if (n >= PATH_MAX)
    return -ENAMETOOLONG;
  memcpy(out, path, n);
  out[n] = 0;
  return 0;
}

static int fsync_parent(const char *path) {
  char dir[PATH_MAX];
  int r = path_dir(dir, path);
  return r < 0 ? r : dir_fsync(dir);
}

static void step_done(fileset_step_fn step, void *userdata, unsigned *n) {
  (*n)++;
  if (step)
    step(userdata, *n);
}

/* A new file with exactly this content and mode, synced. */
static int file_create_synced(const char *path, const void *data, size_t len, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return -errno;
  int r = fchmod(fd, mode & 07777) < 0 ? -errno : 0;
  if (r >= 0 && len)
    r = fd_write_all(fd, data, len);
  if (r >= 0 && fsync(fd) < 0)
    r = -errno;
  if (close(fd) < 0 && r >= 0)
    r = -errno;
  return r;
}

/* Removes staging and the plain files in it (the marker first: from then on it is debris). */
static int staging_remove(const char *staging) {
  char p[PATH_MAX];
  int r = path_join(p, staging, FILESET_MARKER);
  if (r < 0)
    return r;
  if (unlink(p) < 0 && errno != ENOENT)
    return -errno;
  (void)dir_fsync(staging);
  DIR *d = opendir(staging);
  if (!d)
    return -errno;
  struct dirent *e;
  r = 0;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT) {
      r = -errno;
      break;
    }
  }
  closedir(d);
  if (r < 0)
    return r;
  if (rmdir(staging) < 0)
    return -errno;
  return fsync_parent(staging);
}

/* Links every staged file to its target (done already when the target is that very file), syncs
 * the targets' directories, removes staging. */
static int staging_finish(const char *staging, const char *const *targets, size_t n,
                          fileset_step_fn step, void *userdata, unsigned *steps) {
  char src[PATH_MAX];
  int r;
  for (size_t i = 0; i < n; i++) {
    if ((r = staged_path(src, staging, i)) < 0)
      return r;
    struct stat s, t;
    if (lstat(src, &s) < 0) {
      r = errno == ENOENT ? -EBADMSG : -errno;
      return log_debug_errno(r, "%s", src);
    }
    if (link(src, targets[i]) < 0) {
      r = -errno;
      if (r != -EEXIST || lstat(targets[i], &t) < 0 || t.st_dev != s.st_dev ||
          t.st_ino != s.st_ino)
        return log_debug_errno(r, "linking %s to %s", src, targets[i]);
    }
    step_done(step, userdata, steps);
  }
  for (size_t i = 0; i < n; i++)
    if ((r = fsync_parent(targets[i])) < 0)
      return log_debug_errno(r, "syncing the directory of %s", targets[i]);
  r = staging_remove(staging);
  if (r < 0)
    return log_debug_errno(r, "removing %s", staging);
  return 0;
}

static bool exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0 || errno != ENOENT;
}

int fileset_create(const char *staging, const struct fileset_file *files, size_t n,
                   fileset_step_fn step, void *userdata) {
  if (!staging || !*staging || !files || n == 0 || n > FILESET_MAX)
    return -EINVAL;
  const char *targets[FILESET_MAX];
  for (size_t i = 0; i < n; i++) {
    if (!files[i].path || !*files[i].path || (files[i].len && !files[i].data))
      return -EINVAL;
    targets[i] = files[i].path;
  }
  int r;
  for (size_t i = 0; i < n; i++) {
    if ((r = mkdir_parents(targets[i], 0700)) < 0)
      return log_debug_errno(r, "creating the directory of %s", targets[i]);
    if (exists(targets[i]))
      return log_debug_errno(-EEXIST, "%s exists already", targets[i]);
  }
  if ((r = mkdir_parents(staging, 0700)) < 0)
    return log_debug_errno(r, "creating the directory of %s", staging);
  if (mkdir(staging, 0700) < 0)
    return log_debug_errno(-errno, "creating %s", staging);
  unsigned steps = 0;
  struct stat sst;
  char p[PATH_MAX];
  if (chmod(staging, 0700) < 0 || stat(staging, &sst) < 0) {
    r = -errno;
    goto abort;
  }
  for (size_t i = 0; i < n; i++) {
    struct stat dst;
    if ((r = path_dir(p, targets[i])) < 0)
      goto abort;
    if (stat(p, &dst) < 0) {
      r = -errno;
      goto abort;
    }
    if (dst.st_dev != sst.st_dev) {
      r = log_debug_errno(-EXDEV, "%s is not on the file system of %s", targets[i], staging);
      goto abort;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if ((r = staged_path(p, staging, i)) < 0 ||
        (r = file_create_synced(p, files[i].data, files[i].len, files[i].mode)) < 0) {
      r = log_debug_errno(r, "writing %s", p);
      goto abort;
    }
    step_done(step, userdata, &steps);
  }
  /* the commit point: every file is complete on disk before the marker is */
  if ((r = dir_fsync(staging)) < 0 || (r = path_join(p, staging, FILESET_MARKER)) < 0 ||
      (r = file_create_synced(p, "", 0, 0600)) < 0 || (r = dir_fsync(staging)) < 0) {
    r = log_debug_errno(r, "committing %s", staging);
    goto abort;
  }
  step_done(step, userdata, &steps);
  return staging_finish(staging, targets, n, step, userdata, &steps);
abort:
  (void)staging_remove(staging);
  return r;
}

int fileset_recover(const char *staging, const char *const *targets, size_t n,
                    fileset_step_fn step, void *userdata, enum fileset_recovery *ret) {
  if (!staging || !*staging || !targets || n == 0 || n > FILESET_MAX || !ret)
    return -EINVAL;
  *ret = FILESET_NOTHING;
  struct stat st;
  if (lstat(staging, &st) < 0)
    return errno == ENOENT ? 0 : log_debug_errno(-errno, "%s", staging);
  if (!S_ISDIR(st.st_mode))
    return log_debug_errno(-ENOTDIR, "%s", staging);
  char p[PATH_MAX];
  int r = path_join(p, staging, FILESET_MARKER);
  if (r < 0)
    return r;
  if (!exists(p)) {
    r = staging_remove(staging);
    if (r < 0)
      return log_debug_errno(r, "removing %s", staging);
    *ret = FILESET_REMOVED;
    return 0;
  }
  /* committed: exactly the n staged files and the marker */
  DIR *d = opendir(staging);
  if (!d)
    return log_debug_errno(-errno, "%s", staging);
  size_t entries = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      entries++;
  closedir(d);
  if (entries != n + 1)
    return log_debug_errno(-EBADMSG, "%s holds %zu entries, not %zu files and the marker",
                           staging, entries, n);
  unsigned steps = 0;
  r = staging_finish(staging, targets, n, step, userdata, &steps);
  if (r < 0)
    return r;
  *ret = FILESET_FINISHED;
  return 0;
}

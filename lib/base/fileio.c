#include "base/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int fd_read_all(int fd, size_t max, struct buf *out) {
  size_t start = out->len;
  int r;
  for (;;) {
    size_t got = out->len - start;
    /* read up to one byte past max, to tell "exactly max" from "too long" */
    size_t room = max - got;
    size_t want = room < 64 * 1024 ? room + 1 : 64 * 1024;
    size_t avail = out->max - out->len;
    if (avail == 0) {
      /* the buffer is full: anything more is an overflow of its cap (or of max) */
      uint8_t probe;
      ssize_t n;
      do
        n = read(fd, &probe, 1);
      while (n < 0 && errno == EINTR);
      if (n < 0) {
        r = -errno;
        goto fail;
      }
      if (n == 0)
        return 0;
      r = got >= max ? -EFBIG : -ENOBUFS;
      goto fail;
    }
    if (want > avail)
      want = avail;
    r = buf_reserve(out, want);
    if (r < 0)
      goto fail;
    ssize_t n = read(fd, out->data + out->len, want);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      r = -errno;
      goto fail;
    }
    if (n == 0)
      return 0;
    out->len += (size_t)n;
    if (out->len - start > max) {
      r = -EFBIG;
      goto fail;
    }
  }
fail:
  if (out->secret && out->data)
    secure_wipe(out->data + start, out->len - start);
  out->len = start;
  return r;
}

int file_read_capped(const char *path, size_t max, bool secret, struct buf *ret) {
  if (secret)
    buf_init_secret(ret, max);
  else
    buf_init(ret, max);
  int r = file_read_all(path, max, ret);
  return r == -ENOBUFS ? -EFBIG : r; /* the buffer's cap is max: the same limit */
}

int file_read_all(const char *path, size_t max, struct buf *out) {
  if (strcmp(path, "-") == 0)
    return fd_read_all(STDIN_FILENO, max, out);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return -errno;
  struct stat st;
  int r;
  if (fstat(fd, &st) < 0) {
    r = -errno;
    goto out;
  }
  if (S_ISDIR(st.st_mode)) {
    r = -EISDIR;
    goto out;
  }
  if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
    r = -EFBIG;
    goto out;
  }
  r = fd_read_all(fd, max, out);
out:
  close(fd);
  return r;
}

int file_read_pseudo(const char *path, size_t max, struct buf *out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return -errno;
  int r = fd_read_all(fd, max, out);
  close(fd);
  return r;
}

int fd_write_all(int fd, const void *data, size_t len) {
  const uint8_t *p = data;
  while (len) {
    ssize_t n = write(fd, p, len > SSIZE_MAX ? SSIZE_MAX : len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (n == 0)
      return -EIO;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int dir_fsync(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int r = fsync(fd) < 0 ? -errno : 0;
  close(fd);
  /* some file systems cannot fsync directories; the rename is done either way */
  if (r == -EINVAL || r == -ENOTSUP)
    r = 0;
  return r;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode) {
  if (!path || !*path || path[strlen(path) - 1] == '/')
    return -EINVAL;
  const char *slash = strrchr(path, '/');
  char dir[PATH_MAX], tmp[PATH_MAX];
  const char *base;
  if (slash) {
    size_t dl = slash == path ? 1 : (size_t)(slash - path);
    if (dl >= sizeof(dir))
      return -ENAMETOOLONG;
    memcpy(dir, path, dl);
    dir[dl] = 0;
    base = slash + 1;
  } else {
    strcpy(dir, ".");
    base = path;
  }
  int fd = -1, r;
  for (int attempt = 0;; attempt++) {
    uint64_t rnd;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
      return -EIO;
    int n = snprintf(tmp, sizeof(tmp), "%s/.%s.tmp%016llx", dir, base, (unsigned long long)rnd);
    if (n < 0 || (size_t)n >= sizeof(tmp))
      return -ENAMETOOLONG;
    /* created 0600: nobody else can open it before the final mode is set */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0)
      break;
    if (errno != EEXIST || attempt >= 16)
      return -errno;
  }
  if (fchmod(fd, mode & 07777) < 0) {
    r = -errno;
    goto fail;
  }
  r = fd_write_all(fd, data, len);
  if (r < 0)
    goto fail;
  if (fsync(fd) < 0) {
    r = -errno;
    goto fail;
  }
  if (close(fd) < 0) {
    fd = -1;
    r = -errno;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) < 0) {
    r = -errno;
    goto fail;
  }
  return dir_fsync(dir);
fail:
  if (fd >= 0)
    close(fd);
  unlink(tmp);
  return r;
}

int mkdir_p(const char *path, mode_t mode) {
  if (!path || !*path)
    return -EINVAL;
  size_t n = strlen(path);
  if (n >= PATH_MAX)
    return -ENAMETOOLONG;
  char p[PATH_MAX];
  memcpy(p, path, n + 1);
  /* create each prefix ending before a '/', then the whole path */
  for (size_t i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i] != 0)
      continue;
    if (p[i - 1] == '/')
      continue; /* repeated or trailing slash */
    char c = p[i];
    p[i] = 0;
    if (mkdir(p, mode) < 0) {
      /* an existing directory is fine even when mkdir reports something else (EACCES, EROFS) */
      int e = errno;
      struct stat st;
      if (stat(p, &st) < 0)
        return -e;
      if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    }
    p[i] = c;
  }
  return 0;
}

int mkdir_parents(const char *path, mode_t mode) {
  if (!path)
    return -EINVAL;
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path)
    return 0;
  size_t n = (size_t)(slash - path);
  if (n >= PATH_MAX)
    return -ENAMETOOLONG;
  char p[PATH_MAX];
  memcpy(p, path, n);
  p[n] = 0;
  return mkdir_p(p, mode);
}

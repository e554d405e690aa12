#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/tee.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/str.h"
#include "tdxctl.h"

const char *cli_cmd;

static void cli_vmsg(int r, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  /* One line: no control characters from file names or peer data. */
  for (char *p = msg; *p; p++)
    if ((unsigned char)*p < 0x20)
      *p = '?';
  if (r)
    fprintf(stderr, "tdxctl: %s%s%s: %s\n", cli_cmd ? cli_cmd : "", cli_cmd ? ": " : "", msg,
            strerror(r < 0 ? -r : r));
  else
    fprintf(stderr, "tdxctl: %s%s%s\n", cli_cmd ? cli_cmd : "", cli_cmd ? ": " : "", msg);
}

int cli_fail(int r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cli_vmsg(r, fmt, ap);
  va_end(ap);
  return CLI_EXIT_FAILURE;
}

int cli_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cli_vmsg(0, fmt, ap);
  va_end(ap);
  return CLI_EXIT_USAGE;
}

int cli_read_input(const char *path, struct buf *out) {
  return file_read_all(path ? path : "-", out->max, out);
}

int cli_read_stdin_exact(uint8_t *out, size_t n) {
  struct buf b = BUF_INIT(n);
  int r = fd_read_all(STDIN_FILENO, n, &b);
  if (r == -EFBIG || (r == 0 && b.len != n))
    r = -EBADMSG;
  if (r == 0)
    memcpy(out, b.data, n);
  buf_free(&b);
  return r;
}

int cli_write_fd(int fd, const void *data, size_t len) {
  const uint8_t *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int cli_write_output(const char *path, const void *data, size_t len, unsigned mode) {
  if (!path || strcmp(path, "-") == 0)
    return cli_write_fd(STDOUT_FILENO, data, len);
  return file_write_atomic(path, data, len, (mode_t)mode);
}

int cli_atomic_open(const char *path, unsigned mode, struct cli_atomic *ret) {
  *ret = (struct cli_atomic){.fd = -1, .mode = mode};
  ret->path = strdup(path);
  if (!ret->path || asprintf(&ret->tmp, "%s.tmp.XXXXXX", path) < 0) {
    ret->tmp = NULL;
    cli_atomic_abort(ret);
    return -ENOMEM;
  }
  ret->fd = mkostemp(ret->tmp, O_CLOEXEC);
  if (ret->fd < 0) {
    int r = -errno;
    free(ret->tmp);
    ret->tmp = NULL;
    cli_atomic_abort(ret);
    return r;
  }
  return 0;
}

int cli_atomic_commit(struct cli_atomic *a) {
  int r = 0;
  if (fchmod(a->fd, (mode_t)a->mode) < 0 || fsync(a->fd) < 0)
    r = -errno;
  if (close(a->fd) < 0 && r == 0)
    r = -errno;
  a->fd = -1;
  if (r == 0 && rename(a->tmp, a->path) < 0)
    r = -errno;
  if (r == 0) {
    free(a->tmp);
    a->tmp = NULL;
    /* Make the rename durable. */
    _cleanup_free_ char *dir = strdup(a->path);
    if (dir) {
      char *slash = strrchr(dir, '/');
      const char *d = ".";
      if (slash == dir) {
        d = "/";
      } else if (slash) {
        *slash = 0;
        d = dir;
      }
      int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
      }
    }
  }
  return r;
}

void cli_atomic_abort(struct cli_atomic *a) {
  if (!a)
    return;
  if (a->fd >= 0)
    close(a->fd);
  a->fd = -1;
  if (a->tmp)
    (void)unlink(a->tmp);
  free(a->tmp);
  free(a->path);
  a->tmp = a->path = NULL;
}

int cli_parse_uint(const char *s, uint64_t max, uint64_t *ret) {
  if (!s || !*s || *s == '-' || *s == '+')
    return -EINVAL;
  int base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
    if (!*s)
      return -EINVAL;
  }
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, base);
  if (errno || *end || v > max)
    return -EINVAL;
  *ret = v;
  return 0;
}

int cli_tee_open(const char *name, struct tee **ret) {
  int r = tee_open(name, ret);
  if (r == -ENODEV)
    return cli_fail(r, "no TEE found (on a TDX guest /dev/tdx_guest is missing; for the "
                       "simulator set DSTACK_TEE=sim and DSTACK_SIM_DIR)");
  if (r == -ENOENT && (name ? strcmp(name, "sim") == 0 : str_eq_ptr(getenv(TEE_ENV_BACKEND), "sim")))
    return cli_fail(r, "opening the simulator in DSTACK_SIM_DIR=%s (run 'tdxctl sim init DIR')",
                    getenv(TEE_ENV_SIM_DIR) ? getenv(TEE_ENV_SIM_DIR) : "(unset)");
  if (r < 0)
    return cli_fail(r, "opening the TEE");
  return 0;
}

int cli_print_json(const json_t *j) {
  _cleanup_buf_ struct buf out = BUF_INIT(BUF_MAX_FILE);
  int r = json_dump_buf(j, JSON_INDENT(2), &out);
  if (r == 0)
    r = buf_append(&out, "\n", 1);
  if (r < 0)
    return cli_fail(r, "formatting JSON");
  r = cli_write_fd(STDOUT_FILENO, out.data, out.len);
  if (r < 0)
    return cli_fail(r, "writing to stdout");
  return 0;
}

int cli_run_report_data_cmd(int argc, char **argv, const char *usage, const char *what,
                            cli_tee_output_fn fn) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {}};
  int c, r;
  optind = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    fputs(usage, c == 'h' ? stdout : stderr);
    return c == 'h' ? 0 : CLI_EXIT_USAGE;
  }
  if (optind != argc)
    return cli_usage_error("unexpected argument '%s'", argv[optind]);

  uint8_t rd[TEE_REPORT_DATA_SIZE];
  r = cli_read_stdin_exact(rd, sizeof(rd));
  if (r == -EBADMSG)
    return cli_fail(r, "expected exactly 64 bytes of report data on stdin");
  if (r < 0)
    return cli_fail(r, "reading report data from stdin");

  _cleanup_(tee_freep) struct tee *tee = NULL;
  if ((r = cli_tee_open(NULL, &tee)))
    return r;
  _cleanup_buf_ struct buf out = BUF_INIT(BUF_MAX_QUOTE);
  r = fn(tee, rd, &out);
  if (r < 0)
    return cli_fail(r, "getting %s", what);
  r = cli_write_fd(STDOUT_FILENO, out.data, out.len);
  if (r < 0)
    return cli_fail(r, "writing to stdout");
  return 0;
}

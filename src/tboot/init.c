/* tboot-init: stage 1 of the guest's boot, the initramfs /init (docs/guest-image.md).
 *
 * Mounts the API file systems, loads the modules the build listed in /etc/modules.load, sets up
 * dm-verity over the disk whose serial is "dstack-rootfs" with the root hash and sizes from the
 * measured kernel command line (never from a disk), mounts the verified file system read-only
 * with a tmpfs overlay on top, switches into it and execs /usr/sbin/tboot as PID 1.
 *
 * Any failure prints one line "tboot-init: error: ..." on the console, sends it to teepod as a
 * boot.error over the host channel when the port exists, and powers the VM off. Statically
 * linked against libc only. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "tboot_init_cmdline.h"

#define ROOTFS_SERIAL "dstack-rootfs"
#define HOST_PORT_NAME "org.dstack.host.0"
#define DM_NAME "dstack-rootfs"
#define DM_NODE "/dev/dstack-rootfs"
#define MNT_RO "/mnt/ro"
#define MNT_RW "/mnt/rw"
#define NEWROOT "/newroot"
#define TBOOT_PATH "/usr/sbin/tboot"
#define WAIT_DEVICE_MS 10000

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n > sizeof(line) - 2)
    n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  if (write(STDERR_FILENO, "tboot-init: ", 12) < 0 || write(STDERR_FILENO, line, (size_t)n) < 0)
    return;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* the first line of PATH into OUT without the newline; -errno */
static int read_line(const char *path, char *out, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  ssize_t k = read(fd, out, n - 1);
  int err = k < 0 ? -errno : 0;
  close(fd);
  if (err)
    return err;
  out[k] = '\0';
  out[strcspn(out, "\n")] = '\0';
  return 0;
}

/* --- the host channel ------------------------------------------------------------------------ */

/* the character device of the virtio port named HOST_PORT_NAME, created when devtmpfs has not;
 * -ENOENT when there is none (waits up to 2 s for the port's name to arrive) */
static int host_port_open(void) {
  for (int tries = 0; tries < 20; tries++) {
    DIR *d = opendir("/sys/class/virtio-ports");
    if (d) {
      struct dirent *e;
      while ((e = readdir(d))) {
        char path[300], name[64], dev[32], node[300];
        if (strncmp(e->d_name, "vport", 5) != 0 || strlen(e->d_name) > 64)
          continue;
        snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
        if (read_line(path, name, sizeof(name)) < 0 || strcmp(name, HOST_PORT_NAME) != 0)
          continue;
        snprintf(node, sizeof(node), "/dev/%s", e->d_name);
        struct stat st;
        if (stat(node, &st) < 0) {
          unsigned ma, mi;
          snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/dev", e->d_name);
          if (read_line(path, dev, sizeof(dev)) < 0 || sscanf(dev, "%u:%u", &ma, &mi) != 2 ||
              mknod(node, S_IFCHR | 0600, makedev(ma, mi)) < 0)
            continue;
        }
        closedir(d);
        int fd = open(node, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
      }
      closedir(d);
    }
    sleep_ms(100);
  }
  return -ENOENT;
}

/* one Notify to teepod and a short wait for its reply; best effort */
static void host_notify(const char *event, const char *payload) {
  char line[8192];
  int n = init_notify_line(1, event, payload, line, sizeof(line));
  if (n < 0)
    return;
  int fd = host_port_open();
  if (fd < 0)
    return;
  size_t off = 0;
  for (int waited = 0; off < (size_t)n && waited < 3000;) {
    ssize_t k = write(fd, line + off, (size_t)n - off);
    if (k > 0) {
      off += (size_t)k;
      continue;
    }
    if (k < 0 && errno != EAGAIN && errno != EINTR)
      break;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    poll(&p, 1, 100);
    waited += 100;
  }
  if (off == (size_t)n) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char reply[512];
    for (int waited = 0; waited < 3000; waited += 100) {
      if (poll(&p, 1, 100) > 0 && (p.revents & POLLIN)) {
        ssize_t k = read(fd, reply, sizeof(reply));
        if (k > 0 && memchr(reply, '\n', (size_t)k))
          break;
      }
    }
  }
  close(fd);
}

/* --- failure ------------------------------------------------------------------------------- */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...) {
  char msg[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  say("error: %s", msg);
  char payload[960];
  snprintf(payload, sizeof(payload), "tboot-init: %s", msg);
  host_notify("boot.error", payload);
  sync();
  reboot(RB_POWER_OFF);
  /* PID 1 must not exit: the kernel would panic */
  for (;;)
    pause();
}

/* --- mounts and modules ------------------------------------------------------------------- */

static void mount_or_fail(const char *src, const char *dst, const char *type, unsigned long flags,
                          const char *data) {
  if (mkdir(dst, 0755) < 0 && errno != EEXIST)
    fail("mkdir %s: %s", dst, strerror(errno));
  if (mount(src, dst, type, flags, data) < 0)
    fail("mount %s on %s: %s", type ? type : src, dst, strerror(errno));
}

static void console_open(void) {
  int fd = open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0)
    return;
  for (int i = 0; i < 3; i++)
    if (fd != i)
      dup2(fd, i);
  if (fd > 2)
    close(fd);
}

static void modules_load(void) {
  FILE *f = fopen("/etc/modules.load", "re");
  if (!f)
    return; /* a kernel with everything built in needs none */
  char line[300];
  unsigned n = 0;
  while (fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\n")] = '\0';
    if (!*line)
      continue;
    if (init_module_path_check(line) < 0)
      fail("/etc/modules.load: bad line \"%.64s\"", line);
    char path[320];
    snprintf(path, sizeof(path), "/lib/modules/%s", line);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      fail("module %s: %s", line, strerror(errno));
    if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
      fail("loading module %s: %s", line, strerror(errno));
    close(fd);
    n++;
  }
  fclose(f);
  say("%u modules loaded", n);
}

/* --- the root device --------------------------------------------------------------------- */

/* "major:minor" of the disk whose serial is ROOTFS_SERIAL, waiting for it to appear */
static void rootfs_disk_find(char *dev, size_t n) {
  for (int waited = 0; waited < WAIT_DEVICE_MS; waited += 100) {
    DIR *d = opendir("/sys/block");
    if (d) {
      struct dirent *e;
      while ((e = readdir(d))) {
        char path[300], serial[64];
        if (e->d_name[0] == '.' || strlen(e->d_name) > 64)
          continue;
        snprintf(path, sizeof(path), "/sys/block/%s/serial", e->d_name);
        if (read_line(path, serial, sizeof(serial)) < 0 || strcmp(serial, ROOTFS_SERIAL) != 0)
          continue;
        snprintf(path, sizeof(path), "/sys/block/%s/dev", e->d_name);
        int err = read_line(path, dev, n);
        closedir(d);
        if (err < 0)
          fail("%s: %s", path, strerror(-err));
        say("rootfs disk: /dev/%s (%s)", e->d_name, dev);
        return;
      }
      closedir(d);
    }
    sleep_ms(100);
  }
  fail("no disk with serial %s (is the rootfs attached?)", ROOTFS_SERIAL);
}

static int dm_control_open(void) {
  int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (fd >= 0)
    return fd;
  char dev[32];
  unsigned ma, mi;
  if (read_line("/sys/class/misc/device-mapper/dev", dev, sizeof(dev)) < 0 ||
      sscanf(dev, "%u:%u", &ma, &mi) != 2)
    fail("device-mapper is not available (dm_mod not loaded?)");
  mkdir("/dev/mapper", 0755);
  if (mknod("/dev/mapper/control", S_IFCHR | 0600, makedev(ma, mi)) < 0 && errno != EEXIST)
    fail("mknod /dev/mapper/control: %s", strerror(errno));
  fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    fail("open /dev/mapper/control: %s", strerror(errno));
  return fd;
}

/* one dm ioctl with a header for DM_NAME and an optional payload after it */
static int dm_ioctl_call(int fd, unsigned long cmd, struct dm_ioctl *io, size_t size,
                         uint32_t flags) {
  io->version[0] = DM_VERSION_MAJOR;
  io->version[1] = 0;
  io->version[2] = 0;
  io->data_size = (uint32_t)size;
  io->data_start = sizeof(struct dm_ioctl);
  io->flags = flags;
  snprintf(io->name, sizeof(io->name), "%s", DM_NAME);
  return ioctl(fd, cmd, io) < 0 ? -errno : 0;
}

/* creates the verity device over DEV; returns its device number */
static dev_t verity_create(const struct init_rootfs *r, const char *dev) {
  union {
    struct dm_ioctl io;
    char raw[16384];
  } u;
  int fd = dm_control_open();

  memset(&u, 0, sizeof(u));
  int err = dm_ioctl_call(fd, DM_DEV_CREATE, &u.io, sizeof(u.io), 0);
  if (err < 0)
    fail("device-mapper: create %s: %s", DM_NAME, strerror(-err));

  memset(&u, 0, sizeof(u));
  struct dm_target_spec *t = (struct dm_target_spec *)(u.raw + sizeof(struct dm_ioctl));
  char *params = (char *)(t + 1);
  size_t room = sizeof(u.raw) - sizeof(struct dm_ioctl) - sizeof(*t);
  int plen = init_verity_params(r, dev, params, room);
  if (plen < 0)
    fail("verity table for %s: %s", dev, strerror(-plen));
  size_t spec = (sizeof(*t) + (size_t)plen + 1 + 7) & ~(size_t)7;
  t->sector_start = 0;
  t->length = init_verity_sectors(r);
  t->status = 0;
  t->next = 0;
  snprintf(t->target_type, sizeof(t->target_type), "verity");
  u.io.target_count = 1;
  err = dm_ioctl_call(fd, DM_TABLE_LOAD, &u.io, sizeof(struct dm_ioctl) + spec, DM_READONLY_FLAG);
  if (err < 0)
    fail("device-mapper: loading the verity table over %s: %s", dev, strerror(-err));

  memset(&u, 0, sizeof(u));
  err = dm_ioctl_call(fd, DM_DEV_SUSPEND, &u.io, sizeof(u.io), 0); /* no SUSPEND flag: resume */
  if (err < 0)
    fail("device-mapper: activating %s: %s", DM_NAME, strerror(-err));
  dev_t d = (dev_t)u.io.dev;
  close(fd);
  say("dm-verity: %s over %s, %llu data blocks, root hash %.16s...", DM_NAME, dev,
      (unsigned long long)r->data_blocks, r->root_hash);
  return d;
}

/* true when dm-verity's status of DM_NAME says it met a corrupted block ("C") */
static bool verity_corrupted(void) {
  union {
    struct dm_ioctl io;
    char raw[4096];
  } u;
  int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return false;
  memset(&u, 0, sizeof(u));
  int err = dm_ioctl_call(fd, DM_TABLE_STATUS, &u.io, sizeof(u.raw), 0);
  close(fd);
  if (err < 0 || u.io.target_count < 1 || u.io.data_start + sizeof(struct dm_target_spec) >=
                                              sizeof(u.raw))
    return false;
  u.raw[sizeof(u.raw) - 1] = '\0';
  const struct dm_target_spec *t = (const struct dm_target_spec *)(u.raw + u.io.data_start);
  return strcmp(t->target_type, "verity") == 0 && ((const char *)(t + 1))[0] == 'C';
}

/* --- switching root ---------------------------------------------------------------------- */

/* removes everything below DIRFD that lives on device DEV (the initramfs), like switch_root */
static void tree_remove(int dirfd, dev_t dev) {
  DIR *d = fdopendir(dirfd);
  if (!d) {
    close(dirfd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    struct stat st;
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
      continue;
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0)
        tree_remove(sub, dev);
      unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
    } else {
      unlinkat(dirfd, e->d_name, 0);
    }
  }
  closedir(d);
}

static void root_switch(void) {
  static const char *const moves[] = {"/proc", "/sys", "/dev", "/run"};
  struct stat st;
  if (stat("/", &st) < 0)
    fail("stat /: %s", strerror(errno));
  for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++) {
    char dst[64];
    snprintf(dst, sizeof(dst), NEWROOT "%s", moves[i]);
    if (mkdir(dst, 0755) < 0 && errno != EEXIST)
      fail("mkdir %s: %s", dst, strerror(errno));
    if (mount(moves[i], dst, NULL, MS_MOVE, NULL) < 0)
      fail("moving %s into the new root: %s", moves[i], strerror(errno));
  }
  if (chdir(NEWROOT) < 0)
    fail("chdir %s: %s", NEWROOT, strerror(errno));
  int old = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (old >= 0)
    tree_remove(old, st.st_dev);
  if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
    fail("moving the new root onto /: %s", strerror(errno));
  if (chroot(".") < 0 || chdir("/") < 0)
    fail("chroot into the new root: %s", strerror(errno));
}

int main(int argc, char **argv) {
  (void)argc;
  umask(022);
  mount_or_fail("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  console_open();
  mount_or_fail("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_or_fail("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_or_fail("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=50%");
  say("stage 1 of dstack's guest boot");

  char cmdline[INIT_CMDLINE_MAX + 1];
  int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail("open /proc/cmdline: %s", strerror(errno));
  ssize_t n = read(fd, cmdline, sizeof(cmdline));
  close(fd);
  if (n < 0)
    fail("read /proc/cmdline: %s", strerror(errno));
  struct init_rootfs r;
  const char *why = NULL;
  if (init_cmdline_parse(cmdline, (size_t)n, &r, &why) < 0)
    fail("%s", why);

  modules_load();

  char dev[32];
  rootfs_disk_find(dev, sizeof(dev));
  dev_t vdev = verity_create(&r, dev);
  if (mknod(DM_NODE, S_IFBLK | 0600, vdev) < 0 && errno != EEXIST)
    fail("mknod %s: %s", DM_NODE, strerror(errno));

  if (mkdir(MNT_RO, 0755) < 0 && errno != EEXIST)
    fail("mkdir %s: %s", MNT_RO, strerror(errno));
  if (mount(DM_NODE, MNT_RO, r.fs, MS_RDONLY | MS_NODEV, NULL) < 0) {
    int e = errno;
    if (verity_corrupted())
      fail("rootfs verification failed: dm-verity found a block that does not match the root "
           "hash (tampered or wrong image); mount %s: %s", r.fs, strerror(e));
    fail("mount %s (%s) on %s: %s", DM_NODE, r.fs, MNT_RO, strerror(e));
  }
  mount_or_fail("tmpfs", MNT_RW, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  if (mkdir(MNT_RW "/upper", 0755) < 0 || mkdir(MNT_RW "/work", 0755) < 0)
    fail("mkdir in %s: %s", MNT_RW, strerror(errno));
  mount_or_fail("overlay", NEWROOT, "overlay", 0,
                "lowerdir=" MNT_RO ",upperdir=" MNT_RW "/upper,workdir=" MNT_RW "/work");
  if (access(NEWROOT TBOOT_PATH, X_OK) < 0) {
    int e = errno;
    if (verity_corrupted())
      fail("rootfs verification failed: dm-verity found a block that does not match the root "
           "hash; %s: %s", TBOOT_PATH, strerror(e));
    fail("%s in the root: %s", TBOOT_PATH, strerror(e));
  }
  say("root mounted (%s, verified), starting %s", r.fs, TBOOT_PATH);

  root_switch();

  /* the kernel starts init without PATH; tboot and every program it starts (podman runs
   * iptables, netavark and crun by name) need one */
  if (setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1) < 0)
    fail("setenv PATH: %s", strerror(errno));
  argv[0] = (char *)TBOOT_PATH;
  execv(TBOOT_PATH, argv);
  fail("exec %s: %s", TBOOT_PATH, strerror(errno));
}

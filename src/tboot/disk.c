/* Step 4: the data disk, LUKS2 with the app's disk key, ext4 inside, mounted at /data.
 *
 * The host owns the disk image and can hand the guest any bytes, including a LUKS2 header made
 * to accept the app's key while mapping the data with a null cipher. So:
 *  - before cryptsetup sees the disk, the header is checked against the exact shape tboot makes
 *    (luks2.c): one keyslot, one segment, one digest, no tokens, the offsets, cipher and KDF;
 *  - after opening, the mapping the kernel actually uses is checked (cipher, key size, offset),
 *    which no later change of the disk can alter;
 *  - a disk is formatted only when it is blank. A header that fails the check, or a key that
 *    does not open it, stops the boot with an error and leaves every byte as it was.
 * Without the KMS (kms_enabled false) the key is random and never leaves this TD: the disk is
 * formatted at every boot and its data does not survive a reboot. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <unistd.h>

#include "attest/hostch_client.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "tboot_luks2.h"
#include "tboot.h"

#define CRYPTSETUP "/sbin/cryptsetup"
#define MKFS_EXT4 "/sbin/mkfs.ext4"
#define FS_PROBE ((size_t)64 * 1024)

static int read_at(const char *dev, uint64_t off, size_t n, struct buf *out) {
  int fd = open(dev, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  size_t got = 0;
  int r = buf_reserve(out, n);
  while (r >= 0 && got < n) {
    ssize_t k = pread(fd, out->data + got, n - got, (off_t)(off + got));
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      r = -errno;
    else if (k == 0)
      break;
    else
      got += (size_t)k;
  }
  close(fd);
  if (r >= 0)
    out->len = got;
  return r < 0 ? r : 0;
}

static int read_head(const char *dev, size_t n, struct buf *out) {
  return read_at(dev, 0, n, out);
}

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return false;
  return true;
}

/* The passphrase cryptsetup gets on stdin: the key in hex. */
static int passphrase(struct tboot *t, struct buf *out) {
  return hex_append(out, t->disk_key.data, t->disk_key.len);
}

static int cryptsetup(struct tboot *t, const char *const *argv, const char *what) {
  _cleanup_buf_ struct buf pass = BUF_INIT_SECRET(8192), out = BUF_INIT(16 * 1024);
  int r = passphrase(t, &pass);
  if (r < 0)
    return r;
  struct tboot_cmd c = {.argv = argv, .input = pass.data, .input_len = pass.len,
                        .timeout_ms = 120000, .output = &out};
  int st = 0;
  r = tboot_cmd_run(&c, &st);
  if (r < 0) {
    while (out.len && (out.data[out.len - 1] == '\n'))
      out.len--;
    log_warn("cryptsetup %s failed: %.*s", what, (int)MIN(out.len, (size_t)400),
             out.len ? (const char *)out.data : "");
  }
  return r;
}

/* What the kernel maps, from `cryptsetup status`: must be what tboot asked for. */
static int mapping_check(struct tboot *t, char *why, size_t whylen) {
  const char *argv[] = {CRYPTSETUP, "status", t->paths->data_mapper, NULL};
  _cleanup_buf_ struct buf out = BUF_INIT(16 * 1024);
  struct tboot_cmd c = {.argv = argv, .timeout_ms = 30000, .output = &out};
  int r = tboot_cmd_run(&c, NULL);
  if (r >= 0)
    r = buf_terminate(&out);
  if (r < 0) {
    snprintf(why, whylen, "cryptsetup status failed");
    return r;
  }
  const char *s = (const char *)out.data;
  bool cipher = false, keysize = false, offset = false, integrity = false;
  for (const char *l = s; l && *l;) {
    const char *e = strchr(l, '\n');
    size_t n = e ? (size_t)(e - l) : strlen(l);
    _cleanup_free_ char *line = strndup(l, n);
    if (!line)
      return -ENOMEM;
    char *v = strchr(line, ':');
    if (v) {
      *v++ = 0;
      char *k = str_strip(line);
      v = str_strip(v);
      if (str_eq(k, "cipher"))
        cipher = str_eq(v, "aes-xts-plain64");
      else if (str_eq(k, "keysize"))
        keysize = str_eq(v, "512 bits");
      else if (str_eq(k, "offset"))
        offset = str_eq(v, "32768 sectors");
      else if (str_eq(k, "integrity"))
        integrity = true;
    }
    l = e ? e + 1 : NULL;
  }
  if (!cipher || !keysize || !offset || integrity) {
    snprintf(why, whylen, "the opened disk is not mapped as tboot requires "
             "(aes-xts-plain64, 512-bit key, 16 MiB offset)");
    return -EBADMSG;
  }
  return 0;
}

static int format(struct tboot *t, const char *dev) {
  tboot_progress(t, "formatting the data disk");
  const char *argv[] = {CRYPTSETUP, "luksFormat", "--batch-mode", "--type", "luks2",
                        "--offset", "32768", "--cipher", "aes-xts-plain64", "--key-size", "512",
                        "--pbkdf", "pbkdf2", "--hash", "sha256", "--pbkdf-force-iterations",
                        "1000", "--key-file=-", dev, NULL};
  /* The key is a 256-bit secret from the KMS (or random): pbkdf2 iterations add nothing to it,
   * and a slow KDF under TCG would cost seconds at every boot. */
  return cryptsetup(t, argv, "luksFormat");
}

static int mkfs(struct tboot *t, const char *mapped) {
  tboot_progress(t, "creating the file system");
  const char *argv[] = {MKFS_EXT4, "-q", "-F", "-L", "dstack-data", "-E",
                        "lazy_itable_init=1,lazy_journal_init=1", mapped, NULL};
  _cleanup_buf_ struct buf out = BUF_INIT(16 * 1024);
  struct tboot_cmd c = {.argv = argv, .timeout_ms = 300000, .output = &out};
  int r = tboot_cmd_run(&c, NULL);
  if (r < 0)
    log_warn("mkfs.ext4: %.*s", (int)MIN(out.len, (size_t)400), out.len ? (char *)out.data : "");
  return r;
}

int tboot_disk_setup(struct tboot *t) {
  _cleanup_free_ char *dev = NULL, *mapped = NULL;
  char why[512] = "";
  int r = tboot_find_disk(t->paths->data_serial, 5000, &dev);
  if (r < 0)
    return tboot_fail(t, r, "data disk (virtio serial %s) not found", t->paths->data_serial);
  if (!t->have_keys) {
    /* no KMS: an ephemeral key */
    buf_init_secret(&t->disk_key, 64);
    if ((r = buf_reserve(&t->disk_key, 32)) < 0)
      return tboot_fail(t, r, "disk key");
    if (getrandom(t->disk_key.data, 32, 0) != 32)
      return tboot_fail(t, -EIO, "random disk key");
    t->disk_key.len = 32;
  }
  _cleanup_buf_ struct buf head = BUF_INIT(LUKS2_PROBE_BYTES);
  if ((r = read_head(dev, LUKS2_PROBE_BYTES, &head)) < 0)
    return tboot_fail(t, r, "reading the data disk %s", dev);
  enum luks2_kind kind = LUKS2_BLANK;
  struct luks2_info info;
  bool fresh = false;
  if (t->have_keys) {
    if ((r = luks2_probe(head.data, head.len, &kind, &info, why, sizeof(why))) < 0)
      return tboot_fail(t, r, "the data disk's LUKS2 header is refused, nothing was changed: %s",
                        why);
  }
  if (!t->have_keys || kind == LUKS2_BLANK) {
    if ((r = format(t, dev)) < 0)
      return tboot_fail(t, r, "formatting the data disk %s", dev);
    fresh = true;
  } else {
    tboot_progress(t, "opening the data disk");
  }
  /* cryptsetup reads the header from a copy in tmpfs, the very bytes checked here: the host
   * cannot swap the header between the check and the open */
  _cleanup_buf_ struct buf hdr = BUF_INIT(LUKS2_DATA_OFFSET);
  _cleanup_free_ char *hdr_path = str_printf("%s/luks-header.img", t->paths->work);
  if (!hdr_path)
    return -ENOMEM;
  if ((r = read_head(dev, LUKS2_DATA_OFFSET, &hdr)) < 0 || hdr.len != LUKS2_DATA_OFFSET)
    return tboot_fail(t, r < 0 ? r : -EIO, "reading the data disk's header area");
  if ((r = luks2_probe(hdr.data, LUKS2_PROBE_BYTES, &kind, &info, why, sizeof(why))) < 0 ||
      kind != LUKS2_VALID)
    return tboot_fail(t, r < 0 ? r : -EBADMSG,
                      "the data disk's LUKS2 header is refused, nothing was changed: %s",
                      r < 0 ? why : "no header after formatting");
  if ((r = file_write_atomic(hdr_path, hdr.data, hdr.len, 0600)) < 0)
    return tboot_fail(t, r, "copying the LUKS2 header to %s", hdr_path);
  buf_free(&hdr);
  const char *open_argv[] = {CRYPTSETUP, "open", "--type", "luks2", "--key-file=-",
                             "--disable-external-tokens", "--header", hdr_path, dev,
                             t->paths->data_mapper, NULL};
  if ((r = cryptsetup(t, open_argv, "open")) < 0) {
    (void)unlink(hdr_path);
    return tboot_fail(t, -EKEYREJECTED, "the data disk does not open with this app's key "
                      "(another app's disk, or a damaged one); nothing was changed");
  }
  (void)unlink(hdr_path);
  if ((r = mapping_check(t, why, sizeof(why))) < 0) {
    tboot_disk_close(t);
    return tboot_fail(t, r, "%s", why);
  }
  if (!(mapped = str_printf("/dev/mapper/%s", t->paths->data_mapper)))
    return -ENOMEM;
  _cleanup_buf_ struct buf fs = BUF_INIT(FS_PROBE);
  if ((r = read_head(mapped, FS_PROBE, &fs)) < 0) {
    tboot_disk_close(t);
    return tboot_fail(t, r, "reading %s", mapped);
  }
  bool ext4 = fs.len >= 1024 + 58 && fs.data[1024 + 56] == 0x53 && fs.data[1024 + 57] == 0xEF;
  if (!ext4 && !fresh) {
    /* a boot that stopped between luksFormat and mkfs leaves the data area as it was: zeros on
     * a new disk (zeros decrypt to noise, so the raw area is what tells). Anything else is data
     * this key did not write. */
    _cleanup_buf_ struct buf raw = BUF_INIT(FS_PROBE);
    if ((r = read_at(dev, LUKS2_DATA_OFFSET, FS_PROBE, &raw)) < 0 || !all_zero(raw.data, raw.len)) {
      tboot_disk_close(t);
      return tboot_fail(t, r < 0 ? r : -EBADMSG, "the data disk opens but holds no ext4 file "
                        "system; nothing was changed");
    }
  }
  if (!ext4 && (r = mkfs(t, mapped)) < 0) {
    tboot_disk_close(t);
    return tboot_fail(t, r, "mkfs.ext4 on the data disk");
  }
  if ((r = mkdir_p(t->paths->data_mnt, 0755)) < 0 ||
      (mount(mapped, t->paths->data_mnt, "ext4", MS_NOSUID | MS_NODEV, "") < 0 && (r = -errno))) {
    tboot_disk_close(t);
    return tboot_fail(t, r < 0 ? r : -EIO, "mounting the data disk");
  }
  t->disk_ready = true;
  if (fresh && t->have_host)
    (void)hostch_notify("initialized", "", 5000);
  if (!t->have_keys)
    tboot_progress(t, "data disk ready: ephemeral (kms_enabled is false), its data will not "
                   "survive a reboot");
  else
    tboot_progress(t, "data disk ready%s", fresh ? " (new)" : "");
  return 0;
}

void tboot_disk_close(struct tboot *t) {
  if (t->disk_ready) {
    sync();
    if (umount2(t->paths->data_mnt, 0) < 0)
      log_warn("unmounting %s: %m", t->paths->data_mnt);
    t->disk_ready = false;
  }
  const char *argv[] = {CRYPTSETUP, "close", t->paths->data_mapper, NULL};
  struct tboot_cmd c = {.argv = argv, .timeout_ms = 30000};
  (void)tboot_cmd_run(&c, NULL);
}

/* The pure half of tboot-init (stage 1, the initramfs /init): what it reads from the kernel
 * command line, the dm-verity table it loads, the module list it loads and the JSON line it
 * sends to teepod on failure. libc only: tboot-init is a static binary without our libraries.
 *
 * The root filesystem's parameters come only from the (measured) command line:
 *   dstack.rootfs_hash=<64 hex>          dm-verity root hash (sha256), required
 *   dstack.rootfs_data_blocks=<n>        4096-byte blocks of filesystem data, required
 *   dstack.rootfs_hash_offset=<n>        4096-byte block where the hash tree starts (no verity
 *                                        superblock); default: right after the data
 *   dstack.rootfs_salt=<hex>|-           the salt used by `veritysetup format`; default "-"
 *   dstack.rootfs_fs=erofs|squashfs      the filesystem inside; default erofs
 * Other words (and other dstack.* keys, which belong to tboot) are ignored; a dstack.rootfs_*
 * key given twice, unknown or malformed is an error. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define INIT_VERITY_BLOCK 4096u
#define INIT_CMDLINE_MAX 4096u       /* the kernel's COMMAND_LINE_SIZE on x86 is 2048 */
#define INIT_SALT_MAX_HEX 256u       /* dm-verity takes at most 256 salt bytes; we take 128 */
#define INIT_NOTIFY_PAYLOAD_MAX 1000u
#define INIT_DATA_BLOCKS_MAX (UINT64_C(1) << 32) /* 16 TiB of 4 KiB blocks */

struct init_rootfs {
  char root_hash[65];                  /* lowercase hex */
  char salt[INIT_SALT_MAX_HEX + 1];    /* lowercase hex or "-" */
  char fs[16];                         /* "erofs" or "squashfs" */
  uint64_t data_blocks;
  uint64_t hash_start;                 /* in 4096-byte blocks */
};

/* Parses the command line TEXT (LEN bytes, need not be NUL-terminated, at most INIT_CMDLINE_MAX).
 * Returns 0, -EINVAL (malformed, duplicate or unknown dstack.rootfs_* key), -ENOENT (a required
 * key missing) or -E2BIG; *why (never NULL on error) is a static sentence naming the problem. */
int init_cmdline_parse(const char *text, size_t len, struct init_rootfs *ret, const char **why);

/* The verity target's parameters for DEV ("major:minor"): "1 DEV DEV 4096 4096 <data_blocks>
 * <hash_start> sha256 <root_hash> <salt>". Returns the length written, or -ENOBUFS / -EINVAL. */
int init_verity_params(const struct init_rootfs *r, const char *dev, char *out, size_t n);

/* The size in 512-byte sectors of the verity target. */
uint64_t init_verity_sectors(const struct init_rootfs *r);

/* Escapes S as JSON string content (no quotes around) into OUT: '"' '\\' and control bytes
 * escaped, bytes >= 0x80 replaced by '?' (the payload stays valid UTF-8). Returns the length,
 * or -ENOBUFS when OUT (N bytes, with the NUL) is too small. */
int init_json_escape(const char *s, char *out, size_t n);

/* The host channel's notification line: {"id":ID,"method":"Notify","params":{"event":EVENT,
 * "payload":PAYLOAD}} and '\n', PAYLOAD cut to INIT_NOTIFY_PAYLOAD_MAX bytes (teepod takes a
 * boot.error of at most 1024). Returns the length or -ENOBUFS (EVENT longer than 20 bytes
 * escaped, or OUT too small; 8 KiB always suffices). */
int init_notify_line(unsigned id, const char *event, const char *payload, char *out, size_t n);

/* Checks one line of /etc/modules.load: a relative path below /lib/modules made of
 * [A-Za-z0-9._+-] and '/', no "..", ending in ".ko". Returns 0 or -EINVAL. */
int init_module_path_check(const char *line);

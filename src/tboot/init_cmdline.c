/* tboot-init's pure parts: command line, verity table, module list and host-channel JSON. */
#include "tboot_init_cmdline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define ROOTFS_PREFIX "dstack.rootfs_"

enum {
  KEY_HASH = 1u << 0,
  KEY_DATA_BLOCKS = 1u << 1,
  KEY_HASH_OFFSET = 1u << 2,
  KEY_SALT = 1u << 3,
  KEY_FS = 1u << 4,
};

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char hex_lower(char c) {
  return (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
}

/* hex text of exactly N chars (N even, 0 < N < out size) copied lowercased into OUT */
static int hex_take(const char *v, size_t n, char *out, size_t out_size) {
  if (n == 0 || n % 2 || n >= out_size)
    return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (!is_hex(v[i]))
      return -EINVAL;
    out[i] = hex_lower(v[i]);
  }
  out[n] = '\0';
  return 0;
}

/* a decimal without sign, leading zeros (other than "0") or overflow; at most MAX */
static int dec_take(const char *v, size_t n, uint64_t max, uint64_t *ret) {
  uint64_t x = 0;
  if (n == 0 || n > 20 || (n > 1 && v[0] == '0'))
    return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -EINVAL;
    unsigned d = (unsigned)(v[i] - '0');
    if (x > (max - d) / 10)
      return -EINVAL;
    x = x * 10 + d;
  }
  *ret = x;
  return 0;
}

static bool word_is(const char *w, size_t n, const char *s) {
  return strlen(s) == n && memcmp(w, s, n) == 0;
}

/* one dstack.rootfs_KEY=VALUE word (KEY, VALUE slices); sets the key's bit in *seen */
static int rootfs_key(const char *k, size_t kn, const char *v, size_t vn, struct init_rootfs *r,
                      unsigned *seen, const char **why) {
  unsigned bit;
  int err = 0;
  if (word_is(k, kn, "hash")) {
    bit = KEY_HASH;
    if (vn != 64 || hex_take(v, vn, r->root_hash, sizeof(r->root_hash)) < 0) {
      *why = "dstack.rootfs_hash is not 64 hex digits";
      err = -EINVAL;
    }
  } else if (word_is(k, kn, "data_blocks")) {
    bit = KEY_DATA_BLOCKS;
    if (dec_take(v, vn, INIT_DATA_BLOCKS_MAX, &r->data_blocks) < 0 || r->data_blocks == 0) {
      *why = "dstack.rootfs_data_blocks is not a block count between 1 and 2^32";
      err = -EINVAL;
    }
  } else if (word_is(k, kn, "hash_offset")) {
    bit = KEY_HASH_OFFSET;
    if (dec_take(v, vn, 2 * INIT_DATA_BLOCKS_MAX, &r->hash_start) < 0) {
      *why = "dstack.rootfs_hash_offset is not a block number";
      err = -EINVAL;
    }
  } else if (word_is(k, kn, "salt")) {
    bit = KEY_SALT;
    if (word_is(v, vn, "-")) {
      strcpy(r->salt, "-");
    } else if (hex_take(v, vn, r->salt, sizeof(r->salt)) < 0) {
      *why = "dstack.rootfs_salt is neither '-' nor hex bytes (at most 128)";
      err = -EINVAL;
    }
  } else if (word_is(k, kn, "fs")) {
    bit = KEY_FS;
    if (word_is(v, vn, "erofs") || word_is(v, vn, "squashfs")) {
      memcpy(r->fs, v, vn);
      r->fs[vn] = '\0';
    } else {
      *why = "dstack.rootfs_fs is neither erofs nor squashfs";
      err = -EINVAL;
    }
  } else {
    *why = "unknown dstack.rootfs_* key on the command line";
    return -EINVAL;
  }
  if (*seen & bit) {
    *why = "a dstack.rootfs_* key appears twice on the command line";
    return -EINVAL;
  }
  *seen |= bit;
  return err;
}

int init_cmdline_parse(const char *text, size_t len, struct init_rootfs *ret, const char **why) {
  static const char *unused_why;
  const char **w = why ? why : &unused_why;
  struct init_rootfs r = {.salt = "-", .fs = "erofs"};
  unsigned seen = 0;
  const size_t plen = strlen(ROOTFS_PREFIX);

  *w = NULL;
  if (len > INIT_CMDLINE_MAX) {
    *w = "the kernel command line is too long";
    return -E2BIG;
  }
  for (size_t i = 0; i < len;) {
    while (i < len && is_space(text[i]))
      i++;
    size_t start = i;
    while (i < len && !is_space(text[i]))
      i++;
    size_t n = i - start;
    if (n == 0)
      continue;
    const char *word = text + start;
    if (memchr(word, '\0', n)) {
      *w = "the kernel command line holds a NUL byte";
      return -EINVAL;
    }
    if (n < plen || memcmp(word, ROOTFS_PREFIX, plen) != 0)
      continue;
    const char *eq = memchr(word, '=', n);
    if (!eq) {
      *w = "a dstack.rootfs_* key on the command line has no value";
      return -EINVAL;
    }
    const char *k = word + plen;
    size_t kn = (size_t)(eq - k);
    const char *v = eq + 1;
    size_t vn = n - (size_t)(v - word);
    int err = rootfs_key(k, kn, v, vn, &r, &seen, w);
    if (err < 0)
      return err;
  }
  if (!(seen & KEY_HASH)) {
    *w = "dstack.rootfs_hash is missing from the command line";
    return -ENOENT;
  }
  if (!(seen & KEY_DATA_BLOCKS)) {
    *w = "dstack.rootfs_data_blocks is missing from the command line";
    return -ENOENT;
  }
  if (!(seen & KEY_HASH_OFFSET))
    r.hash_start = r.data_blocks;
  else if (r.hash_start < r.data_blocks) {
    *w = "dstack.rootfs_hash_offset lies inside the data blocks";
    return -EINVAL;
  }
  *ret = r;
  return 0;
}

uint64_t init_verity_sectors(const struct init_rootfs *r) {
  return r->data_blocks * (INIT_VERITY_BLOCK / 512);
}

int init_verity_params(const struct init_rootfs *r, const char *dev, char *out, size_t n) {
  if (!dev || !*dev || strlen(r->root_hash) != 64 || !*r->salt || r->data_blocks == 0)
    return -EINVAL;
  for (const char *p = dev; *p; p++)
    if (!((*p >= '0' && *p <= '9') || *p == ':'))
      return -EINVAL;
  int k = snprintf(out, n, "1 %s %s %u %u %" PRIu64 " %" PRIu64 " sha256 %s %s", dev, dev,
                   INIT_VERITY_BLOCK, INIT_VERITY_BLOCK, r->data_blocks, r->hash_start,
                   r->root_hash, r->salt);
  if (k < 0 || (size_t)k >= n)
    return -ENOBUFS;
  return k;
}

int init_json_escape(const char *s, char *out, size_t n) {
  size_t o = 0;
  static const char hexd[] = "0123456789abcdef";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char tmp[7];
    size_t k = 0;
    switch (*p) {
    case '"': tmp[k++] = '\\'; tmp[k++] = '"'; break;
    case '\\': tmp[k++] = '\\'; tmp[k++] = '\\'; break;
    case '\n': tmp[k++] = '\\'; tmp[k++] = 'n'; break;
    case '\t': tmp[k++] = '\\'; tmp[k++] = 't'; break;
    case '\r': tmp[k++] = '\\'; tmp[k++] = 'r'; break;
    default:
      if (*p < 0x20 || *p == 0x7f) {
        memcpy(tmp, "\\u00", 4);
        k = 4;
        tmp[k++] = hexd[*p >> 4];
        tmp[k++] = hexd[*p & 15];
      } else if (*p >= 0x80) {
        tmp[k++] = '?';
      } else {
        tmp[k++] = (char)*p;
      }
    }
    if (o + k >= n)
      return -ENOBUFS;
    memcpy(out + o, tmp, k);
    o += k;
  }
  if (o >= n)
    return -ENOBUFS;
  out[o] = '\0';
  return (int)o;
}

int init_notify_line(unsigned id, const char *event, const char *payload, char *out, size_t n) {
  char ev[128], cut[INIT_NOTIFY_PAYLOAD_MAX + 1], pl[6 * INIT_NOTIFY_PAYLOAD_MAX + 1];
  snprintf(cut, sizeof(cut), "%s", payload);
  if (init_json_escape(event, ev, sizeof(ev)) < 0 || init_json_escape(cut, pl, sizeof(pl)) < 0)
    return -ENOBUFS;
  int k = snprintf(out, n,
                   "{\"id\":%u,\"method\":\"Notify\",\"params\":{\"event\":\"%s\",\"payload\":"
                   "\"%s\"}}\n",
                   id, ev, pl);
  if (k < 0 || (size_t)k >= n)
    return -ENOBUFS;
  return k;
}

int init_module_path_check(const char *line) {
  size_t n = strlen(line);
  if (n < 4 || n > 255 || line[0] == '/' || strcmp(line + n - 3, ".ko") != 0)
    return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    char c = line[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '+' || c == '/';
    if (!ok)
      return -EINVAL;
    /* no empty, "." or ".." component */
    if (i == 0 || line[i - 1] == '/') {
      if (c == '/')
        return -EINVAL;
      if (c == '.' && (i + 1 == n || line[i + 1] == '/' ||
                       (line[i + 1] == '.' && (i + 2 == n || line[i + 2] == '/'))))
        return -EINVAL;
    }
  }
  return 0;
}

/* metadata.json of a guest image folder: parsing, path rules, and the file checks. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "attest/image_meta.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"

/* Sets *why (when asked for) to the formatted sentence and returns r. */
void image_meta_free(struct image_meta *m) {
  if (!m)
    return;
  free(m->dir);
  free(m->name);
  free(m->kernel);
  free(m->initrd);
  free(m->rootfs);
  free(m->hda);
  free(m->bios);
  free(m->cmdline);
  free(m->rootfs_hash);
  free(m->version);
  free(m->shared_mode);
  *m = (struct image_meta){0};
}

/* True for a plain relative name: not empty, no leading '/', no ".." component, no control
 * characters (bytes below 0x20 and 0x7f). */
static bool rel_name_ok(const char *s) {
  if (!*s || *s == '/')
    return false;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return false;
  for (const char *c = s; c;) {
    const char *slash = strchr(c, '/');
    size_t n = slash ? (size_t)(slash - c) : strlen(c);
    if (n == 2 && c[0] == '.' && c[1] == '.')
      return false;
    c = slash ? slash + 1 : NULL;
  }
  return true;
}

/* Looks key up: -ENOENT when absent or null, -EINVAL (with why) when not a string. */
static int get_str(const json_t *root, const char *key, const char **ret, char **why) {
  json_t *v = json_object_get(root, key);
  if (!v || json_is_null(v))
    return -ENOENT;
  if (!json_is_string(v))
    return str_reason(why, -EINVAL, "metadata.json: %s is not a string", key);
  *ret = json_string_value(v);
  return 0;
}

/* A path key: checked and joined to dir. Absent (NULL result) only when !required. */
static int get_path(const json_t *root, const char *dir, const char *key, bool required,
                    char **ret, char **why) {
  const char *s;
  int r = get_str(root, key, &s, why);
  if (r == -ENOENT) {
    if (required)
      return str_reason(why, -EINVAL, "metadata.json: %s is missing", key);
    *ret = NULL;
    return 0;
  }
  if (r < 0)
    return r;
  if (strlen(s) >= PATH_MAX || !rel_name_ok(s))
    return str_reason(why, -EINVAL,
                   "metadata.json: %s \"%s\" is not a plain relative name inside the image folder",
                   key, str_is_printable_ascii(s) ? s : "(unprintable)");
  *ret = str_printf("%s/%s", dir, s);
  return *ret ? 0 : -ENOMEM;
}

/* An optional string key copied as it is (NULL when absent). */
static int get_opt_str(const json_t *root, const char *key, char **ret, char **why) {
  const char *s;
  int r = get_str(root, key, &s, why);
  if (r == -ENOENT) {
    *ret = NULL;
    return 0;
  }
  if (r < 0)
    return r;
  *ret = strdup(s);
  return *ret ? 0 : -ENOMEM;
}

int image_meta_parse(const char *dir, const char *text, size_t len, struct image_meta *ret,
                     char **ret_why) {
  _cleanup_json_ json_t *root = NULL;
  struct image_meta m = {0};
  const char *s;
  int r;

  if (ret_why)
    *ret_why = NULL;
  if (!dir || !ret || (len && !text))
    return -EINVAL;
  *ret = (struct image_meta){0};
  r = json_parse_buf(text, len, IMAGE_META_MAX_JSON, &root);
  if (r == -ENOBUFS)
    return str_reason(ret_why, r, "metadata.json: larger than %zu bytes", IMAGE_META_MAX_JSON);
  if (r < 0 || !json_is_object(root))
    return str_reason(ret_why, r < 0 && r != -EBADMSG ? r : -EBADMSG,
                   "metadata.json: not a JSON object");

  const char *slash = strrchr(dir, '/');
  if (!(m.dir = strdup(dir)) || !(m.name = strdup(slash ? slash + 1 : dir))) {
    r = -ENOMEM;
    goto fail;
  }
  if ((r = get_path(root, dir, "kernel", true, &m.kernel, ret_why)) < 0 ||
      (r = get_path(root, dir, "initrd", true, &m.initrd, ret_why)) < 0 ||
      (r = get_path(root, dir, "rootfs", false, &m.rootfs, ret_why)) < 0 ||
      (r = get_path(root, dir, "hda", false, &m.hda, ret_why)) < 0 ||
      (r = get_path(root, dir, "bios", false, &m.bios, ret_why)) < 0 ||
      (r = get_opt_str(root, "cmdline", &m.cmdline, ret_why)) < 0 ||
      (r = get_opt_str(root, "rootfs_hash", &m.rootfs_hash, ret_why)) < 0 ||
      (r = get_opt_str(root, "version", &m.version, ret_why)) < 0)
    goto fail;
  if (!m.cmdline && !(m.cmdline = strdup(""))) {
    r = -ENOMEM;
    goto fail;
  }

  r = get_str(root, "shared_mode", &s, ret_why);
  if (r == -ENOENT)
    s = "disk";
  else if (r < 0)
    goto fail;
  if (!str_eq(s, "disk") && !str_eq(s, "9p")) {
    r = str_reason(ret_why, -EINVAL, "metadata.json: shared_mode \"%s\" is neither \"disk\" nor \"9p\"",
                str_is_printable_ascii(s) ? s : "(unprintable)");
    goto fail;
  }
  if (!(m.shared_mode = strdup(s))) {
    r = -ENOMEM;
    goto fail;
  }

  json_t *dev = json_object_get(root, "is_dev");
  if (dev && !json_is_null(dev)) {
    if (!json_is_boolean(dev)) {
      r = str_reason(ret_why, -EINVAL, "metadata.json: is_dev is not true or false");
      goto fail;
    }
    m.is_dev = json_is_true(dev);
  }
  *ret = m;
  return 0;
fail:
  if (r == -ENOMEM)
    str_reason(ret_why, r, "metadata.json: out of memory");
  image_meta_free(&m);
  return r;
}

/* path (dir-joined, as parse made it) must name a regular file whose real path lies inside
 * real_dir. key and the name relative to the folder are for the message. */
static int check_file(const char *real_dir, const char *dir, const char *key, char **path,
                      char **why) {
  const char *rel = *path + strlen(dir) + 1;
  const char *shown = str_is_printable_ascii(rel) ? rel : "(unprintable)";
  _cleanup_free_ char *real = realpath(*path, NULL);
  struct stat st;

  if (!real) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR)
      return str_reason(why, -ENOENT, "metadata.json: %s \"%s\" does not exist", key, shown);
    return str_reason(why, -e, "metadata.json: %s \"%s\": %s", key, shown, strerror(e));
  }
  size_t n = strlen(real_dir);
  bool inside = strncmp(real, real_dir, n) == 0 && real[n] == '/';
  if (!inside)
    return str_reason(why, -EPERM, "metadata.json: %s \"%s\" resolves outside the image folder", key,
                   shown);
  if (stat(real, &st) < 0)
    return str_reason(why, -errno, "metadata.json: %s \"%s\": %s", key, shown, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return str_reason(why, -EINVAL, "metadata.json: %s \"%s\" is not a regular file", key, shown);
  /* what was checked is what is used: the resolved path, so a symlink changed afterwards
   * cannot point the boot or the measurement elsewhere */
  free(*path);
  *path = TAKE_PTR(real);
  return 0;
}

int image_meta_load(const char *dir, struct image_meta *ret, char **ret_why) {
  _cleanup_free_ char *d = NULL, *real_dir = NULL, *path = NULL;
  _cleanup_buf_ struct buf text = BUF_INIT(0);
  struct image_meta m = {0};
  int r;

  if (ret_why)
    *ret_why = NULL;
  if (!dir || !ret)
    return -EINVAL;
  *ret = (struct image_meta){0};
  if (!*dir)
    return str_reason(ret_why, -EINVAL, "image folder: empty path");
  if (!(d = strdup(dir)))
    return -ENOMEM;
  for (size_t n = strlen(d); n > 1 && d[n - 1] == '/'; n--)
    d[n - 1] = '\0';
  if (str_eq(d, "/"))
    return str_reason(ret_why, -EINVAL, "image folder: \"/\" is not an image folder");

  if (!(real_dir = realpath(d, NULL)))
    return str_reason(ret_why, -errno, "image folder %s: %s", d, strerror(errno));
  if (str_eq(real_dir, "/"))
    return str_reason(ret_why, -EINVAL, "image folder: \"%s\" is the root, not an image folder",
                      d);
  if (!(path = str_printf("%s/metadata.json", d)))
    return -ENOMEM;
  r = file_read_capped(path, IMAGE_META_MAX_JSON, false, &text);
  if (r == -EFBIG)
    return str_reason(ret_why, r, "metadata.json: larger than %zu bytes", IMAGE_META_MAX_JSON);
  if (r < 0)
    return str_reason(ret_why, r, "metadata.json: cannot read %s: %s", path, strerror(-r));

  if ((r = image_meta_parse(d, (const char *)text.data, text.len, &m, ret_why)) < 0)
    return r;

  const struct {
    const char *key;
    char **path;
  } files[] = {
    {"kernel", &m.kernel}, {"initrd", &m.initrd}, {"rootfs", &m.rootfs},
    {"hda", &m.hda},       {"bios", &m.bios},
  };
  for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
    if (!*files[i].path)
      continue;
    if ((r = check_file(real_dir, d, files[i].key, files[i].path, ret_why)) < 0) {
      log_debug("image %s: %s is not usable: %s", d, files[i].key, strerror(-r));
      image_meta_free(&m);
      return r;
    }
  }
  *ret = m;
  return 0;
}

/* A guest image folder and its metadata.json (docs/teepod.md, "Images"): which kernel, initrd,
 * firmware and disks make up the image, and its command line. teepod boots what this returns and
 * `tdxctl measure` measures the same files, so both see exactly the same image. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The largest metadata.json accepted. */
#define IMAGE_META_MAX_JSON ((size_t)64 * 1024)

struct image_meta {
  char *dir;        /* the image folder as given (no trailing '/') */
  char *name;       /* its last path component */
  char *kernel, *initrd;                 /* required; after image_meta_load the resolved
                                          * absolute paths that were checked */
  char *rootfs, *hda, *bios;             /* NULL when absent */
  char *cmdline;                         /* "" when absent */
  char *rootfs_hash, *version;           /* NULL when absent */
  char *shared_mode;                     /* "disk" (default) or "9p" */
  bool is_dev;
};

/* Loads DIR/metadata.json (at most 64 KiB). Every path must be a plain relative name inside DIR
 * (not empty, no leading '/', no '..' component, no NUL/control chars) naming a regular file
 * (after resolving symlinks it must still be inside DIR). Unknown keys are ignored; known keys of
 * the wrong type are errors. On error returns -errno and sets *ret_why (allocated, caller frees)
 * to one clear sentence such as "metadata.json: kernel \"bz\" does not exist". */
int image_meta_load(const char *dir, struct image_meta *ret, char **ret_why);
void image_meta_free(struct image_meta *m);   /* accepts zeroed struct */

/* The JSON half of image_meta_load() without touching the file system: parses text, checks the
 * keys' types, values and the form of every path, and fills ret with the paths joined to dir
 * (which must not end with '/'). Errors as image_meta_load(): -EBADMSG for text that is not a
 * JSON object, -EINVAL for a key that breaks a rule, -ENOBUFS past IMAGE_META_MAX_JSON. */
int image_meta_parse(const char *dir, const char *text, size_t len, struct image_meta *ret,
                     char **ret_why);

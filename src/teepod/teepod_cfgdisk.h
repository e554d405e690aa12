/* The guest's configuration (docs/teepod.md): the files in DIR/shared and the config disk
 * DIR/config.img made from them at every start (a FAT file system labelled DSTACKSHR). */
#pragma once

#include <stddef.h>

struct teepod;
struct teepod_vm;
struct image_meta;

#define TEEPOD_SHARED_DIR "shared"
#define TEEPOD_CFGDISK_LABEL "DSTACKSHR"
#define TEEPOD_SHARED_MAX ((size_t)32 * 1024 * 1024)

/* Writes DIR/shared/.sys-config.json and the seed-era files, then DIR/config.img. */
int teepod_cfgdisk_build(struct teepod_vm *vm, const struct image_meta *img, char *err,
                         size_t errlen);
/* Writes one file of DIR/shared (atomically, 0600). len 0 with data NULL removes it. */
int teepod_shared_write(const char *vm_dir, const char *name, const void *data, size_t len);

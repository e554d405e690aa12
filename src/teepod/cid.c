/* The vsock CID pool. */
#include "teepod_cid.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/str.h"
#include "teepod_proc.h"

int teepod_cidpool_init(struct teepod_cidpool *p, uint32_t start, uint32_t size) {
  memset(p, 0, sizeof(*p));
  if (size == 0 || (uint64_t)start + size > UINT32_MAX)
    return -EINVAL;
  p->used = calloc(size, 1);
  if (!p->used)
    return -ENOMEM;
  p->start = start;
  p->size = size;
  return 0;
}

void teepod_cidpool_free(struct teepod_cidpool *p) {
  free(p->used);
  p->used = NULL;
}

int teepod_cidpool_alloc(struct teepod_cidpool *p, uint32_t *ret) {
  for (uint32_t i = 0; i < p->size; i++) {
    if (p->used[i])
      continue;
    uint32_t cid = p->start + i;
    if (p->in_use_elsewhere && p->in_use_elsewhere(cid, p->ud))
      continue;
    p->used[i] = 1;
    *ret = cid;
    return 0;
  }
  return -ENOSPC;
}

int teepod_cidpool_occupy(struct teepod_cidpool *p, uint32_t cid) {
  if (cid < p->start || cid - p->start >= p->size)
    return -ERANGE;
  if (p->used[cid - p->start])
    return -EEXIST;
  p->used[cid - p->start] = 1;
  return 0;
}

void teepod_cidpool_release(struct teepod_cidpool *p, uint32_t cid) {
  if (cid >= p->start && cid - p->start < p->size)
    p->used[cid - p->start] = 0;
}

size_t teepod_cidpool_n_used(const struct teepod_cidpool *p) {
  size_t n = 0;
  for (uint32_t i = 0; i < p->size; i++)
    n += p->used[i];
  return n;
}

bool teepod_cid_used_by_other_qemu(uint32_t cid, void *ud) {
  (void)ud;
  DIR *d = opendir("/proc");
  if (!d)
    return false;
  struct dirent *e;
  bool found = false;
  unsigned scanned = 0;
  while (!found && (e = readdir(d)) && scanned < 65536) {
    uint32_t pid, other;
    if (str_to_u32(e->d_name, &pid) < 0 || pid == 0)
      continue;
    scanned++;
    /* the same reading of a command line as for an adopted QEMU */
    found = teepod_proc_cid((pid_t)pid, &other) == 0 && other == cid;
  }
  closedir(d);
  return found;
}

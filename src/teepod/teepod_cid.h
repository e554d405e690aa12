/* The vsock CID pool: [cid_start, cid_start + pool_size). A CID is taken when a VM starts and
 * given back when it stops or is removed, or when its start fails; after a restart of teepod the
 * CIDs of the running VMs it adopts are taken again first. A CID another process on the host
 * uses (a QEMU teepod does not own) is skipped. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct teepod_cidpool {
  uint32_t start, size;
  uint8_t *used; /* one byte per CID */
  /* Tells whether cid is in use outside the pool (NULL: never). */
  bool (*in_use_elsewhere)(uint32_t cid, void *ud);
  void *ud;
};

int teepod_cidpool_init(struct teepod_cidpool *p, uint32_t start, uint32_t size);
void teepod_cidpool_free(struct teepod_cidpool *p);
/* The lowest free CID; -ENOSPC when none is left. */
int teepod_cidpool_alloc(struct teepod_cidpool *p, uint32_t *ret);
/* Marks cid taken (an adopted VM); -EEXIST when it already is, -ERANGE outside the pool. */
int teepod_cidpool_occupy(struct teepod_cidpool *p, uint32_t cid);
void teepod_cidpool_release(struct teepod_cidpool *p, uint32_t cid);
size_t teepod_cidpool_n_used(const struct teepod_cidpool *p);
/* True when a QEMU process other than ours (its command line names guest-cid=CID) runs. */
bool teepod_cid_used_by_other_qemu(uint32_t cid, void *ud);

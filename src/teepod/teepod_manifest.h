/* A VM's files in run_path/<id>/ that teepod owns:
 *   vm-manifest.json  what the VM is: {"id","name","app_id","vcpu","memory","disk_size","image",
 *                     "port_map":[{"protocol","host_address","host_port","vm_port"}],
 *                     "created_at_ms","kms_urls","gateway_urls","hugepages","pin_numa",
 *                     "no_tee"} (seed keys first; the rest are the newest VMM's)
 *   vm-state.json     {"started":bool}: whether the operator wants it running
 * Both are written atomically (0600) and checked when read: a file that fails a check is
 * reported and the VM is not loaded, never half-loaded. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define TEEPOD_MAX_PORTS 64
#define TEEPOD_MAX_URLS 16
#define TEEPOD_NAME_MAX 64

struct teepod_port {
  bool udp;
  char host_address[46];
  uint16_t host_port;
  uint16_t vm_port;
};

struct teepod_manifest {
  char id[37];                 /* UUID, lowercase */
  char name[TEEPOD_NAME_MAX + 1];
  char app_id[41];             /* 40 hex */
  uint32_t vcpu;
  uint32_t memory;             /* MB */
  uint32_t disk_size;          /* GB */
  char *image;
  struct teepod_port ports[TEEPOD_MAX_PORTS];
  size_t n_ports;
  uint64_t created_at_ms;
  char **kms_urls;             /* NULL-terminated, may be NULL */
  char **gateway_urls;
  bool hugepages, pin_numa, no_tee;
};

void teepod_manifest_free(struct teepod_manifest *m);
/* Deep copy. */
int teepod_manifest_copy(const struct teepod_manifest *m, struct teepod_manifest *ret);

/* A VM name: 1..64 of [A-Za-z0-9_-]. */
bool teepod_name_valid(const char *s);
/* A VM id as teepod makes them: a lowercase UUID (also what may name a run folder). */
bool teepod_id_valid(const char *s);
/* A new random UUIDv4. */
int teepod_id_new(char ret[37]);

int teepod_manifest_to_json(const struct teepod_manifest *m, struct buf *out);
/* Parses and checks (why: allocated reason); on failure nothing is left allocated in ret. */
int teepod_manifest_parse(const char *text, size_t len, struct teepod_manifest *ret, char **why);

int teepod_manifest_save(const char *vm_dir, const struct teepod_manifest *m);
int teepod_manifest_load(const char *vm_dir, struct teepod_manifest *ret, char **why);
int teepod_state_save(const char *vm_dir, bool started);
/* A missing vm-state.json reads as not started. */
int teepod_state_load(const char *vm_dir, bool *ret_started);

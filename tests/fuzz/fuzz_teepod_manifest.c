/* vm-manifest.json (teepod_manifest_parse): a file in a VM folder, read at every start of
 * teepod. Invariants: a refusal gives a reason and leaves nothing allocated; an accepted
 * manifest passes every rule (id, name, app id, sizes, image name, ports, URL counts), and
 * written back with teepod_manifest_to_json it parses again to the same values. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "teepod_manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rules(const struct teepod_manifest *m) {
  if (!teepod_id_valid(m->id) || !teepod_name_valid(m->name) || strlen(m->app_id) != 40 ||
      strspn(m->app_id, "0123456789abcdef") != 40 || m->vcpu == 0 || m->memory == 0)
    __builtin_trap();
  if (!m->image || !*m->image || strchr(m->image, '/') || !strcmp(m->image, "..") ||
      !strcmp(m->image, "."))
    __builtin_trap();
  if (m->n_ports > TEEPOD_MAX_PORTS || strv_length(m->kms_urls) > TEEPOD_MAX_URLS ||
      strv_length(m->gateway_urls) > TEEPOD_MAX_URLS)
    __builtin_trap();
  for (size_t i = 0; i < m->n_ports; i++)
    if (m->ports[i].host_port == 0 || m->ports[i].vm_port == 0 ||
        strnlen(m->ports[i].host_address, sizeof(m->ports[i].host_address)) ==
            sizeof(m->ports[i].host_address))
      __builtin_trap();
}

static bool strv_same(char **a, char **b) {
  if (strv_length(a) != strv_length(b))
    return false;
  for (size_t i = 0; a && a[i]; i++)
    if (strcmp(a[i], b[i]) != 0)
      return false;
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct teepod_manifest m, m2;
  char *why = NULL;
  int r = teepod_manifest_parse((const char *)data, size, &m, &why);
  if (r < 0) {
    if ((r != -ENOMEM && !why) || m.image || m.kms_urls || m.gateway_urls)
      __builtin_trap();
    free(why);
    return 0;
  }
  if (why)
    __builtin_trap();
  check_rules(&m);
  struct buf b = BUF_INIT(1 << 20);
  if (teepod_manifest_to_json(&m, &b) < 0)
    __builtin_trap();
  if (teepod_manifest_parse((const char *)b.data, b.len, &m2, &why) < 0) {
    fprintf(stderr, "written manifest refused: %s\n%.*s\n", why ? why : "?", (int)b.len,
            (const char *)b.data);
    __builtin_trap();
  }
  if (strcmp(m.id, m2.id) || strcmp(m.name, m2.name) || strcmp(m.app_id, m2.app_id) ||
      m.vcpu != m2.vcpu || m.memory != m2.memory || m.disk_size != m2.disk_size ||
      strcmp(m.image, m2.image) || m.created_at_ms != m2.created_at_ms ||
      m.n_ports != m2.n_ports || !strv_same(m.kms_urls, m2.kms_urls) ||
      !strv_same(m.gateway_urls, m2.gateway_urls) || m.hugepages != m2.hugepages ||
      m.pin_numa != m2.pin_numa || m.no_tee != m2.no_tee)
    __builtin_trap();
  for (size_t i = 0; i < m.n_ports; i++)
    if (m.ports[i].udp != m2.ports[i].udp || m.ports[i].host_port != m2.ports[i].host_port ||
        m.ports[i].vm_port != m2.ports[i].vm_port ||
        strcmp(m.ports[i].host_address, m2.ports[i].host_address))
      __builtin_trap();
  teepod_manifest_free(&m2);
  teepod_manifest_free(&m);
  buf_free(&b);
  return 0;
}

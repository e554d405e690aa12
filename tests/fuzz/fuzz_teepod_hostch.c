/* The host channel (teepod_hostch_dispatch): every line a guest sends, parsed as the channel
 * parses it (a JSON object with "method" and "params") and dispatched on a VM whose folder is
 * a scratch directory. The guest is hostile: whatever it sends, teepod must not crash, must
 * answer with a result or an error (never both, never neither), and what it keeps for Status
 * must stay bounded and free of control characters. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "teepod.h"
#include "teepod_hostch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct teepod_config cfg;
static struct teepod tp;
static struct teepod_vm *vm;

static void setup(void) {
  static char dir[] = "/tmp/fuzz-teepod-hostch-XXXXXX";
  if (!mkdtemp(dir) || teepod_config_init(&cfg) < 0)
    abort();
  tp.cfg = &cfg;
  tp.backend = TEEPOD_BACKEND_TCG;
  struct teepod_manifest m = {0};
  snprintf(m.id, sizeof(m.id), "0b9e5c3a-7f41-4d2e-9a6b-1c2d3e4f5a6b");
  snprintf(m.name, sizeof(m.name), "fuzz");
  snprintf(m.app_id, sizeof(m.app_id), "00112233445566778899aabbccddeeff00112233");
  m.vcpu = 1;
  m.memory = 256;
  m.image = strdup("img");
  vm = teepod_vm_new(&tp, dir, &m);
  if (!vm)
    abort();
}

static void check_text(const char *s, size_t max) {
  if (!s)
    return;
  size_t n = strlen(s);
  if (n > max)
    __builtin_trap();
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!vm)
    setup();
  if (size > TEEPOD_HOSTCH_LINE_MAX)
    return 0;
  json_t *req = NULL;
  if (json_parse_buf((const char *)data, size, TEEPOD_HOSTCH_LINE_MAX, &req) < 0)
    return 0;
  const char *method = NULL;
  json_t *params = json_object_get(req, "params");
  if (json_is_object(req) && json_get_str(req, "method", &method) == 0 && method &&
      json_is_object(params)) {
    json_t *result = NULL;
    char *error = NULL;
    int r = teepod_hostch_dispatch(vm, method, params, &result, &error);
    if ((r < 0) != (result == NULL) || (r < 0 && !error) || (r >= 0 && error))
      __builtin_trap();
    json_decref(result);
    free(error);
    check_text(vm->boot_progress, TEEPOD_PROGRESS_MAX);
    check_text(vm->boot_error, TEEPOD_ERROR_MAX);
    check_text(vm->shutdown_progress, TEEPOD_PROGRESS_MAX);
    if (vm->n_events > TEEPOD_EVENTS_KEPT)
      __builtin_trap();
  }
  json_decref(req);
  return 0;
}

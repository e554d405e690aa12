/* app-compose.json (app_compose_check, app_compose_is_document): what a VM's owner sends to
 * teepod and what the KMS and the guest read. Invariants: a refusal gives a reason; an
 * accepted document is an app-compose document, its hash is SHA-256 of the exact bytes and
 * the app id the hash's first 20 bytes, the runner is one of the three; the input is also
 * wrapped as a bare compose file would be (when it is valid UTF-8 without NUL), and the
 * wrapped document must pass the check and read back (as JSON) to the input text. */
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/app_compose.h"
#include "base/buf.h"
#include "crypto/hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  struct app_compose_info info;
  char *why = NULL;
  bool is_doc = app_compose_is_document(text, size);
  int r = app_compose_check(text, size, &info, &why);
  if (r < 0) {
    if (r != -ENOMEM && !why)
      __builtin_trap();
    free(why);
  } else {
    uint8_t h[32];
    sha256(data, size, h);
    if (why || !is_doc || memcmp(h, info.compose_hash, 32) != 0 ||
        memcmp(h, info.app_id, APP_ID_SIZE) != 0)
      __builtin_trap();
    if (strcmp(info.runner, "docker-compose") && strcmp(info.runner, "nerdctl-compose") &&
        strcmp(info.runner, "bash"))
      __builtin_trap();
  }

  struct buf doc = BUF_INIT(4 * APP_COMPOSE_MAX);
  if (app_compose_wrap(text, size, "fuzz", &doc) == 0 && doc.len <= APP_COMPOSE_MAX) {
    why = NULL;
    if (app_compose_check((const char *)doc.data, doc.len, &info, &why) != 0 ||
        !app_compose_is_document((const char *)doc.data, doc.len))
      __builtin_trap();
    json_t *j = json_loadb((const char *)doc.data, doc.len, 0, NULL);
    json_t *c = j ? json_object_get(j, "docker_compose_file") : NULL;
    if (!json_is_string(c) || json_string_length(c) != size ||
        memcmp(json_string_value(c), data, size) != 0)
      __builtin_trap();
    json_decref(j);
  }
  buf_free(&doc);
  return 0;
}

/* Step 2: RTMR3. Each boot event is a runtime event (type 0x08000001, digest version 1) whose
 * log line and extend happen together under the event log's lock (tee_extend_event_line): a
 * reader holding the shared lock never sees a line whose extend has not succeeded, and a failed
 * extend takes its line out again. The order is the one verifiers expect (attest/boot_events.h). */
#include <errno.h>
#include <string.h>

#include "attest/eventlog.h"
#include "attest/tee.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "tboot.h"

int tboot_measure(struct tboot *t, const char *name, const void *payload, size_t len) {
  uint8_t digest[48];
  _cleanup_buf_ struct buf line = BUF_INIT(TEE_EVENT_LINE_MAX);
  int r = eventlog_runtime_digest(name, payload, len, 1, digest);
  if (r >= 0)
    r = eventlog_runtime_line(name, digest, payload, len, &line);
  if (r >= 0)
    r = tee_extend_event_line(t->tee, 3, digest, line.data, line.len);
  if (r < 0)
    return tboot_fail(t, r, "measuring %s into RTMR3", name);
  char hex[97];
  hex_encode(digest, 48, hex);
  log_info("measured %s (%zu bytes): %.16s...", name, len, hex);
  return 0;
}

/* What decides how the data disk is kept, measured so a verifier sees it (upstream leaves the
 * kernel's storage options unmeasured). */
static int storage_options(struct tboot *t, struct buf *out) {
  return buf_printf(out,
                    "{\"cipher\":\"aes-xts-plain64\",\"data_offset\":16777216,\"fs\":\"ext4\","
                    "\"key_size\":512,\"luks\":2,\"pbkdf\":\"pbkdf2\",\"persistent\":%s}",
                    t->app.kms_enabled ? "true" : "false");
}

int tboot_measure_boot(struct tboot *t) {
  int r;
  _cleanup_buf_ struct buf storage = BUF_INIT(1024);
  if ((r = tboot_measure(t, "system-preparing", NULL, 0)) < 0 ||
      (r = tboot_measure(t, "app-id", t->app.app_id, sizeof(t->app.app_id))) < 0 ||
      (r = tboot_measure(t, "compose-hash", t->app.compose_hash, sizeof(t->app.compose_hash))) < 0 ||
      (r = tboot_measure(t, "instance-id", t->have_instance_id ? t->instance_id : NULL,
                         t->have_instance_id ? sizeof(t->instance_id) : 0)) < 0 ||
      (r = tboot_measure(t, "sys-config", t->sys_payload.data, t->sys_payload.len)) < 0)
    return r;
  if ((r = storage_options(t, &storage)) < 0)
    return tboot_fail(t, r, "storage options");
  if ((r = tboot_measure(t, "storage-options", storage.data, storage.len)) < 0 ||
      (r = tboot_measure(t, "boot-mr-done", NULL, 0)) < 0)
    return r;
  return 0;
}

int tboot_measure_keys(struct tboot *t) {
  int r;
  if (t->os_image_hash.len &&
      (r = tboot_measure(t, "os-image-hash", t->os_image_hash.data, t->os_image_hash.len)) < 0)
    return r;
  _cleanup_free_ char *kp =
      t->have_keys ? str_printf("{\"id\":\"%s\",\"name\":\"kms\"}", t->kms_root_pubkey_hex)
                   : strdup("{\"id\":\"\",\"name\":\"none\"}");
  if (!kp)
    return -ENOMEM;
  return tboot_measure(t, "key-provider", kp, strlen(kp));
}

/* The boot events a dstack guest measures into RTMR3, and the rules that say which of them a
 * verifier may take an app's identity from.
 *
 * Who controls what: RTMR3 starts at zero when the TD starts, and the guest's boot (tboot, or the
 * seed-era initramfs) is the first to extend it; after the boot, anything with root in the CVM
 * (and any app through the guest agent's EmitEvent) can extend it further. The replay binds the
 * order and the digests of the events, nothing else. So:
 *
 *  - Newest era (every RTMR3 event a runtime event, type 0x08000001, whose digest is recomputed
 *    here from its name and payload): names are bound. The boot's events come first, in the
 *    order upstream dstack gives: `system-preparing`, then `app-id`, `compose-hash`,
 *    `instance-id` (and other boot measurements) up to `boot-mr-done`, then `os-image-hash`,
 *    `key-provider`, `storage-fs` up to `system-ready`. Identity is taken only from there:
 *    `app-id`, `compose-hash`, `instance-id`, `rootfs-hash` before `boot-mr-done`,
 *    `os-image-hash` and `key-provider` between `boot-mr-done` and `system-ready`. A reserved name
 *    anywhere else, twice, or an RTMR3 event whose digest does not match its name and payload
 *    refuses the whole log (an app cannot emit reserved names through the guest agent, so such a
 *    log comes from a forger).
 *  - Seed era (the first RTMR3 event is a seed-era line, event type 1: name not bound to the
 *    digest): anything that can extend RTMR3 could have written any name, so only positions
 *    count: the first three RTMR3 events must be `rootfs-hash`, `app-id`, `ca-cert-hash` (the
 *    seed initramfs's fixed order, upstream dstack) and identity comes from their digests.
 *    Accepted only with BOOT_EVENTS_ALLOW_SEED. Later events are not looked at.
 *
 * Errors: -EBADMSG the log breaks a rule (why says which), -EPERM a seed-era log without
 * BOOT_EVENTS_ALLOW_SEED, -ENOENT a boot event the identity needs is not where the boot puts it
 * (no RTMR3 events, no app-id, no boot-mr-done, a seed-era position holding another name),
 * -EINVAL bad arguments. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "attest/eventlog.h"

enum boot_events_era {
  BOOT_EVENTS_SEED = 0,
  BOOT_EVENTS_NEWEST = 1,
};

enum {
  BOOT_EVENTS_ALLOW_SEED = 1 << 0, /* accept seed-era logs (identity from fixed positions) */
};

/* The boot's measurements, pointing into the scanned log (NULL when the boot did not emit it). */
struct boot_events {
  enum boot_events_era era;
  const struct tdx_event *app_id;       /* always set on success */
  const struct tdx_event *compose_hash; /* newest only */
  const struct tdx_event *instance_id;  /* newest only */
  const struct tdx_event *rootfs_hash;
  const struct tdx_event *ca_cert_hash; /* seed only */
  const struct tdx_event *os_image_hash;
  const struct tdx_event *key_provider;
  const struct tdx_event *upgraded_app_id; /* newest only */
  size_t n_rtmr3;      /* RTMR3 events in the log */
  size_t boot_end;     /* RTMR3 events up to and including the boot's end marker
                        * (newest: boot-mr-done; seed: the three fixed events) */
  bool system_ready;   /* newest: the boot reached system-ready */
};

/* True for the names only the boot may emit (the guest agent refuses them from apps), and for
 * those names followed by ':' (a V1 digest cannot tell "name:" + payload from name + ":" +
 * payload; such a name in a newest-era log refuses it). */
bool boot_event_name_reserved(const char *name);

/* True when e is a runtime event whose digest matches its name and payload. */
bool boot_event_is_bound(const struct tdx_event *e);

/* Applies the rules above to log (already replayed against the quote's RTMR3 by the caller).
 * why (when whylen > 0) says what was wrong. */
int boot_events_scan(const struct eventlog *log, unsigned flags, struct boot_events *ret,
                     char *why, size_t whylen);

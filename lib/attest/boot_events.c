/* Which RTMR3 events a verifier may take an app's identity from (boot_events.h). */
#include "boot_events.h"

#include <errno.h>
#include <string.h>

#include "base/macro.h"
#include "base/str.h"

/* Where a reserved event may stand in a newest-era log. */
enum place {
  P_FIRST,     /* system-preparing: the first RTMR3 event, once */
  P_BOOT_ONCE, /* before boot-mr-done, at most once (identity) */
  P_BOOT_MANY, /* before boot-mr-done, any number */
  P_BOOT_END,  /* boot-mr-done: ends the boot part, once */
  P_SETUP_ONCE, /* between boot-mr-done and system-ready, at most once */
  P_SETUP_END, /* system-ready: ends the set-up part, once */
  P_ANY_BOOT_ONCE, /* before system-ready, at most once (not used for identity) */
};

static const struct reserved {
  const char *name;
  enum place place;
} reserved[] = {
    {"system-preparing", P_FIRST},
    {"app-id", P_BOOT_ONCE},
    {"compose-hash", P_BOOT_ONCE},
    {"instance-id", P_BOOT_ONCE},
    {"rootfs-hash", P_BOOT_ONCE},
    {"sys-config", P_BOOT_ONCE},      /* tboot: the KMS, gateway, PCCS and registry it was given */
    {"storage-options", P_BOOT_ONCE}, /* tboot: how the data disk is encrypted and mounted */
    {"init-script-hash", P_BOOT_MANY},
    {"gpu-attestation", P_BOOT_MANY},
    {"gpu-policy-hash", P_BOOT_MANY},
    {"boot-mr-done", P_BOOT_END},
    {"os-image-hash", P_SETUP_ONCE},
    {"key-provider", P_SETUP_ONCE},
    {"storage-fs", P_SETUP_ONCE},
    {"system-ready", P_SETUP_END},
    {"ca-cert-hash", P_ANY_BOOT_ONCE},
    {"upgraded-app-id", P_ANY_BOOT_ONCE},
};

static const struct reserved *reserved_find(const char *name) {
  if (!name)
    return NULL;
  for (size_t i = 0; i < ARRAY_SIZE(reserved); i++)
    if (strcmp(reserved[i].name, name) == 0)
      return &reserved[i];
  return NULL;
}

/* A reserved name followed by ':'. The V1 digest covers "type:name:payload" without lengths,
 * so ("compose-hash:", x) and ("compose-hash", ":" x) share a digest: a boot event whose payload
 * starts with ':' could be shown under such a name, and the other way round. */
static bool reserved_prefix(const char *name) {
  const char *colon = name ? strchr(name, ':') : NULL;
  if (!colon)
    return false;
  for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
    size_t n = strlen(reserved[i].name);
    if ((size_t)(colon - name) == n && strncmp(name, reserved[i].name, n) == 0)
      return true;
  }
  return false;
}

bool boot_event_name_reserved(const char *name) {
  return reserved_find(name) != NULL || reserved_prefix(name);
}

bool boot_event_is_bound(const struct tdx_event *e) {
  if (!e || e->event_type != EVENTLOG_EV_RUNTIME || (e->version != 1 && e->version != 2))
    return false;
  uint8_t d[EVENTLOG_DIGEST_SIZE];
  if (eventlog_runtime_digest(e->event, e->payload, e->payload_len, e->version, d) < 0)
    return false;
  return memcmp(d, e->digest, sizeof(d)) == 0;
}

static bool is_seed_line(const struct tdx_event *e) {
  return e->event_type == EVENTLOG_EV_SEED && e->version == 0 && e->payload_len == 0;
}

/* The RTMR3 events of log, in order, as indices (at most EVENTLOG_MAX_EVENTS). */
static size_t rtmr3_next(const struct eventlog *log, size_t from) {
  while (from < log->n && log->ev[from].imr != 3)
    from++;
  return from;
}

static int scan_seed(const struct eventlog *log, struct boot_events *b, char *why, size_t whylen) {
  static const char *const fixed[] = {"rootfs-hash", "app-id", "ca-cert-hash"};
  const struct tdx_event *ev[ARRAY_SIZE(fixed)] = {NULL};
  size_t n = 0;
  for (size_t i = rtmr3_next(log, 0); i < log->n && n < ARRAY_SIZE(fixed);
       i = rtmr3_next(log, i + 1)) {
    const struct tdx_event *e = &log->ev[i];
    if (!is_seed_line(e))
      return str_err(why, whylen, -EBADMSG,
                     "seed-era boot: RTMR3 event #%zu (%s) is not a seed-era line", n + 1,
                     e->event);
    if (!str_eq(e->event, fixed[n])) /* the boot's event is not where the boot puts it */
      return str_err(why, whylen, -ENOENT,
                     "seed-era boot: RTMR3 event #%zu is \"%s\", the boot measures \"%s\" there",
                     n + 1, e->event, fixed[n]);
    ev[n++] = e;
  }
  if (n < ARRAY_SIZE(fixed))
    return str_err(why, whylen, -ENOENT,
                   "seed-era boot: %zu RTMR3 events; the boot measures rootfs-hash, app-id and "
                   "ca-cert-hash first",
                   n);
  b->era = BOOT_EVENTS_SEED;
  b->rootfs_hash = ev[0];
  b->app_id = ev[1];
  b->ca_cert_hash = ev[2];
  b->boot_end = ARRAY_SIZE(fixed);
  return 0;
}

static int scan_newest(const struct eventlog *log, struct boot_events *b, char *why,
                       size_t whylen) {
  enum { S_BOOT, S_SETUP, S_APP } state = S_BOOT;
  const struct tdx_event **slot_of[ARRAY_SIZE(reserved)] = {NULL};
  bool seen[ARRAY_SIZE(reserved)] = {false};
  const struct tdx_event *unused = NULL;
  for (size_t k = 0; k < ARRAY_SIZE(reserved); k++) {
    const char *nm = reserved[k].name;
    slot_of[k] = str_eq(nm, "app-id")          ? &b->app_id
                 : str_eq(nm, "compose-hash")  ? &b->compose_hash
                 : str_eq(nm, "instance-id")   ? &b->instance_id
                 : str_eq(nm, "rootfs-hash")   ? &b->rootfs_hash
                 : str_eq(nm, "os-image-hash") ? &b->os_image_hash
                 : str_eq(nm, "key-provider")  ? &b->key_provider
                 : str_eq(nm, "upgraded-app-id") ? &b->upgraded_app_id
                                               : &unused;
  }
  size_t n = 0;
  for (size_t i = rtmr3_next(log, 0); i < log->n; i = rtmr3_next(log, i + 1)) {
    const struct tdx_event *e = &log->ev[i];
    n++;
    if (!boot_event_is_bound(e))
      return str_err(why, whylen, -EBADMSG,
                     "RTMR3 event #%zu (\"%s\", type 0x%x) is not a runtime event whose digest "
                     "matches its name and payload",
                     n, e->event, e->event_type);
    if (reserved_prefix(e->event))
      return str_err(why, whylen, -EBADMSG,
                     "RTMR3 event #%zu: \"%s\" could be a boot event under another name",
                     n, e->event);
    const struct reserved *rv = reserved_find(e->event);
    if (n == 1 && (!rv || rv->place != P_FIRST))
      return str_err(why, whylen, -EBADMSG,
                     "the first RTMR3 event is \"%s\"; the boot starts with system-preparing",
                     e->event);
    if (!rv)
      continue; /* the boot's own extra measurements, or the app's events */
    size_t k = (size_t)(rv - reserved);
    bool once = rv->place != P_BOOT_MANY;
    bool ok;
    switch (rv->place) {
    case P_FIRST:
      ok = n == 1;
      break;
    case P_BOOT_ONCE:
    case P_BOOT_MANY:
      ok = state == S_BOOT;
      break;
    case P_BOOT_END:
      ok = state == S_BOOT;
      state = S_SETUP;
      b->boot_end = n;
      break;
    case P_SETUP_ONCE:
      ok = state == S_SETUP;
      break;
    case P_SETUP_END:
      ok = state == S_SETUP;
      state = S_APP;
      b->system_ready = true;
      break;
    case P_ANY_BOOT_ONCE:
    default:
      ok = state != S_APP;
      break;
    }
    if (!ok || (once && seen[k]))
      return str_err(why, whylen, -EBADMSG,
                     "RTMR3 event #%zu: the boot event \"%s\" appears %s", n, e->event,
                     ok ? "twice" : "out of the boot's order");
    seen[k] = true;
    *slot_of[k] = e;
  }
  if (state == S_BOOT)
    return str_err(why, whylen, -ENOENT,
                   "no boot-mr-done event on RTMR3: the boot's measurements are incomplete");
  if (!b->app_id)
    return str_err(why, whylen, -ENOENT, "no app-id event on RTMR3 before boot-mr-done");
  b->era = BOOT_EVENTS_NEWEST;
  return 0;
}

int boot_events_scan(const struct eventlog *log, unsigned flags, struct boot_events *ret,
                     char *why, size_t whylen) {
  if (!log || !ret)
    return -EINVAL;
  struct boot_events b = {0};
  size_t first = rtmr3_next(log, 0);
  if (first >= log->n)
    return str_err(why, whylen, -ENOENT, "no app-id event on RTMR3 (no RTMR3 events at all)");
  for (size_t i = first; i < log->n; i = rtmr3_next(log, i + 1))
    b.n_rtmr3++;
  const struct tdx_event *e = &log->ev[first];
  int r;
  if (boot_event_is_bound(e)) {
    r = scan_newest(log, &b, why, whylen);
  } else if (is_seed_line(e)) {
    if (!(flags & BOOT_EVENTS_ALLOW_SEED))
      return str_err(why, whylen, -EPERM,
                     "a seed-era event log (event names not bound to their digests) is not "
                     "accepted here (allow_seed_event_log is off)");
    r = scan_seed(log, &b, why, whylen);
  } else {
    return str_err(why, whylen, -EBADMSG,
                   "the first RTMR3 event (\"%s\", type 0x%x) is neither a bound runtime event "
                   "nor a seed-era line",
                   e->event, e->event_type);
  }
  if (r < 0)
    return r;
  *ret = b;
  return 0;
}

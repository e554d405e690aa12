/* ct_monitor: watches Certificate Transparency (crt.sh) for certificates of a domain whose key
 * tproxy did not make. One round:
 *   1. known keys from tproxy's AcmeInfo (ct_monitor_keys.h: quoted keys whose quotes verify
 *      and come from one of the pinned apps, or any TD when told so; unquoted ones only under
 *      the legacy rule, and only from an answer read over TLS verified with tproxy_ca);
 *   2. GET <crtsh>/?q=<domain>&output=json&limit=10000 (ct_monitor_crtsh.h);
 *   3. every entry above last_checked whose names are in the domain, oldest first:
 *      GET <crtsh>/?d=<id>, the first certificate's SPKI DER against the known keys; an unknown
 *      one is an ALARM (one error line, and a JSON POST to the webhook when there is one);
 *   4. last_checked moves up to the last entry checked without an error before it (so a restart
 *      neither alarms again for a checked certificate nor skips an unchecked one); once every
 *      entry was checked it becomes crt.sh's newest id, also when the old one has vanished from
 *      crt.sh's answer (logged), and is written to the state file (ct_monitor_state.h).
 * A failure (tproxy, crt.sh, the webhook, a quote that cannot be checked now) ends the round as
 * an error; the next round tries again. Nothing waits without a timeout. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* Certificates fetched in one round, unless once is set (more wait for the next round). */
#define CT_MAX_FETCH_PER_ROUND 1000
/* A quote's verdict is reused this long (collateral and TCB status can change). */
#define CT_VERIFY_TTL_S 3600
#define CT_ACME_INFO_MAX_BODY ((size_t)64 * 1024 * 1024)
#define CT_PEM_MAX_BODY ((size_t)1024 * 1024)

struct ct_options {
  const char *tproxy_uri;   /* https://host:port/prpc */
  const char *domain;       /* valid (ct_domain_valid) */
  const char *crtsh_url;    /* base URL */
  const char *state_path;   /* NULL: remembered in memory only */
  const char *webhook;      /* NULL: none */
  const char *tproxy_ca;    /* NULL: tproxy's certificate is not verified */
  const char *pccs_url;     /* collateral source of real quotes */
  const char *sim_dir;      /* the simulator trusted (NULL: none) */
  char *const *app_ids;     /* lowercase hex: the apps whose quotes count */
  size_t n_app_ids;
  bool any_app;             /* no app list: a quote from any genuine TD counts (only then) */
  bool require_quotes;      /* never the legacy rule */
  bool once;                /* no cap on certificate fetches */
  long timeout_ms;          /* per HTTP request (0: 30 s; crt.sh's search: 4 times this) */
  volatile sig_atomic_t *stop; /* set by a signal: the round ends early, as an error */
};

struct ct_round {
  size_t entries;  /* in crt.sh's answer */
  size_t checked;  /* certificates fetched and compared */
  size_t alarms;   /* unknown keys */
  size_t left;     /* unchecked entries left for the next round */
  int error;       /* 0, or the first failure (negative errno; logged) */
};

struct ct_monitor;

/* Loads the state file and sets up the verifier. err says what failed; -EBADMSG: a state file
 * that is not one; -EINVAL: neither app_ids nor any_app (no TD is trusted by default). */
int ct_monitor_new(const struct ct_options *o, struct ct_monitor **ret, char *err, size_t errlen);
void ct_monitor_round(struct ct_monitor *m, struct ct_round *ret);
void ct_monitor_free(struct ct_monitor *m);

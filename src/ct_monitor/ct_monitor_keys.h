/* Which certificate keys count as tproxy's own, from its AcmeInfo answer.
 *
 * The rule:
 *   - a key with a quote (quoted_hist_keys) counts when the check accepts the quote for it:
 *     report_data = SHA-512("cert-pubkey:" || SPKI DER) (lib/attest/quoted_key.h), the quote
 *     genuine and the TD the one the monitor's policy wants (the caller's check function);
 *     a quote that fails makes the key NOT known, whatever hist_keys says, so a host that
 *     controls tproxy cannot add a key by itself;
 *   - hist_keys without any quote count only under the legacy rule: when the answer has no
 *     quoted key at all (a tproxy from before quotes) and the caller gives no reason against
 *     it (no_legacy: quotes were seen before, they are required, or the answer was not read
 *     over TLS verified against tproxy's CA, so anyone on the path could have added a key);
 *   - the account quote (account_quote, binding SHA-512("acme-account:" || account_uri)) is
 *     checked and reported; it decides nothing about keys.
 * Every decision is one line in notes (the caller logs the ones that changed). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tproxy_rpc.pb-c.h"

/* Checks a quote's evidence text against the report data it must bind. 0 accepted, 1 refused
 * (why says why), < 0 could not be decided now (e.g. no collateral): the round is an error. */
typedef int (*ct_quote_check_fn)(void *ud, const uint8_t want[64], const char *quote,
                                 size_t len, char *why, size_t whylen);

struct ct_key {
  uint8_t *der;
  size_t len;
};

struct ct_known {
  struct ct_key *keys; /* sorted, unique */
  size_t n;
  bool legacy;       /* hist_keys taken without quotes */
  bool quotes_seen;  /* the answer listed a quoted key */
  int account;       /* 0 no account quote, 1 accepted, -1 refused */
  char **notes;      /* one line per decision */
  size_t n_notes;
};

/* Decides; ret is initialised here (free with ct_known_free, also after an error). no_legacy:
 * NULL allows the legacy rule, else why it does not apply (put in the notes). Errors: a check
 * that returned < 0 (err says for which key and why), -ENOMEM. */
int ct_known_build(const Tproxy__AcmeInfoResponse *a, const char *no_legacy,
                   ct_quote_check_fn check,
                   void *ud, struct ct_known *ret, char *err, size_t errlen);
void ct_known_free(struct ct_known *k);
bool ct_known_has(const struct ct_known *k, const uint8_t *der, size_t len);

/* Lowercase hex SHA-256 of a key (65 bytes with the NUL), how keys are named in logs. */
void ct_key_name(const uint8_t *der, size_t len, char ret[65]);

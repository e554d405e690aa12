/* What tproxy tells about its ACME state (upstream dstack), read from certbot's workdir:
 *   account_uri:   the "account_id" string of <workdir>/credentials.json ("" when absent);
 *   account_quote: the text of <workdir>/acme-account.quote (lib/attest/quoted_key.h: a quote
 *                  binding the account URI) when there is an account and the file holds
 *                  well-formed evidence, else "";
 *   hist_keys:     the SubjectPublicKeyInfo DER of the first certificate of every
 *                  <workdir>/backup/<dir>/cert.pem, sorted and deduplicated;
 *   quoted:        for every backup that also has a well-formed cert.quote next to its cert.pem,
 *                  that certificate's SPKI DER and the quote text, sorted by key then text, equal
 *                  pairs once. tproxy does not verify quotes: whoever reads them does
 *                  (ct_monitor), so a key never counts because tproxy listed it.
 * Unreadable or malformed files are skipped (logged at debug), never an error of the call;
 * bounded: files over 1 MiB (quotes: QUOTED_KEY_MAX_TEXT), more than ACME_MAX_BACKUPS backups
 * and quote texts past ACME_MAX_QUOTE_BYTES in all are ignored. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define ACME_MAX_BACKUPS 4096
#define ACME_MAX_QUOTE_BYTES ((size_t)32 * 1024 * 1024)

struct acme_key {
  uint8_t *der;
  size_t len;
};

struct acme_quoted_key {
  uint8_t *der; /* SPKI DER */
  size_t len;
  char *quote; /* evidence text, NUL-terminated */
};

struct acme_info {
  char *account_uri;   /* never NULL after acme_info_read */
  char *account_quote; /* never NULL after acme_info_read ("" when none) */
  struct acme_key *keys;
  size_t n_keys;
  struct acme_quoted_key *quoted;
  size_t n_quoted;
};

int acme_info_read(const char *workdir, struct acme_info *ret);
void acme_info_free(struct acme_info *a);

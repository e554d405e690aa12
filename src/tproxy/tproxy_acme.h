/* What tproxy tells about its ACME state (upstream dstack), read from certbot's workdir:
 *   account_uri: the "account_id" string of <workdir>/credentials.json ("" when absent);
 *   hist_keys:   the SubjectPublicKeyInfo DER of the first certificate of every
 *                <workdir>/backup/<dir>/cert.pem, sorted and deduplicated.
 * Unreadable or malformed files are skipped (logged at debug), never an error of the call;
 * bounded: files over 1 MiB and more than ACME_MAX_BACKUPS backups are ignored. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define ACME_MAX_BACKUPS 4096

struct acme_key {
  uint8_t *der;
  size_t len;
};

struct acme_info {
  char *account_uri; /* never NULL after acme_info_read */
  struct acme_key *keys;
  size_t n_keys;
};

int acme_info_read(const char *workdir, struct acme_info *ret);
void acme_info_free(struct acme_info *a);

/* crt.sh's JSON answer to GET /?q=<domain>&output=json: an array of
 *   {"issuer_ca_id":N,"issuer_name":"..","common_name":"..","name_value":"a\nb","id":N,
 *    "entry_timestamp":"..","not_before":"..","not_after":"..","serial_number":"..",
 *    "result_count":N}
 * parsed with bounded memory: the array is walked by a scanner that cuts out one element at a
 * time (at most CT_CRTSH_MAX_ENTRY_TEXT bytes, nesting at most CT_CRTSH_MAX_DEPTH), and only
 * that element is handed to jansson; what is kept per entry is a few strings copied from it.
 * So memory stays within a small multiple of the body (itself capped by the caller) plus
 * max_entries entries, whatever the text is.
 *
 * Per entry: "id" must be a JSON integer >= 1; serial_number, common_name, name_value,
 * issuer_name, not_before are strings or null (null or absent: ""); other keys are ignored.
 * Anything else (another top-level value, an element that is not an object, a bad id, a string
 * field of another type, trailing text) is -EBADMSG; more than max_entries elements -E2BIG; an
 * element over its cap -ENOBUFS. err says where. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"

#define CT_CRTSH_MAX_BODY ((size_t)64 * 1024 * 1024)
#define CT_CRTSH_MAX_ENTRIES ((size_t)50000)
#define CT_CRTSH_MAX_ENTRY_TEXT ((size_t)256 * 1024)
#define CT_CRTSH_MAX_DEPTH 8
/* What is asked for (crt.sh's limit parameter), as upstream does. */
#define CT_CRTSH_LIMIT 10000

struct ct_entry {
  int64_t id;
  char *serial;      /* serial_number */
  char *common_name;
  char *name_value;  /* the certificate's names, one per line */
  char *issuer_name;
  char *not_before;
};

struct ct_entries {
  struct ct_entry *v;
  size_t n;
  size_t alloc; /* internal */
};

/* ret is initialised here; free it with ct_entries_free (also after an error). */
int ct_crtsh_parse(const char *text, size_t len, size_t max_entries, struct ct_entries *ret,
                   char *err, size_t errlen);
void ct_entries_free(struct ct_entries *e);
/* Sorts by id, ascending, and keeps one entry of each id. */
void ct_entries_sort(struct ct_entries *e);
/* Index of the entry with this id in a sorted list, or -1. */
ssize_t ct_entries_find(const struct ct_entries *e, int64_t id);

/* The SubjectPublicKeyInfo DER of the first certificate of a PEM text (crt.sh's /?d=<id>),
 * appended to spki. -EBADMSG when there is no parsable certificate. */
int ct_pem_first_spki(const uint8_t *pem, size_t len, struct buf *spki);

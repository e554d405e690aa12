/* Known keys from tproxy's AcmeInfo. */
#include "ct_monitor_keys.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "attest/quoted_key.h"

void ct_key_name(const uint8_t *der, size_t len, char ret[65]) {
  uint8_t h[32];
  sha256(der, len, h);
  hex_encode(h, sizeof(h), ret);
}

void ct_known_free(struct ct_known *k) {
  if (!k)
    return;
  for (size_t i = 0; i < k->n; i++)
    free(k->keys[i].der);
  free(k->keys);
  for (size_t i = 0; i < k->n_notes; i++)
    free(k->notes[i]);
  free(k->notes);
  memset(k, 0, sizeof(*k));
}

static int key_cmp(const void *a, const void *b) {
  const struct ct_key *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->der, y->der, n);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

bool ct_known_has(const struct ct_known *k, const uint8_t *der, size_t len) {
  struct ct_key want = {(uint8_t *)der, len};
  return k->n && bsearch(&want, k->keys, k->n, sizeof(*k->keys), key_cmp) != NULL;
}

static int note(struct ct_known *k, const char *fmt, ...) _printf_(2, 3);
static int note(struct ct_known *k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0)
    return -ENOMEM;
  char **v = realloc(k->notes, (k->n_notes + 1) * sizeof(*v));
  if (!v) {
    free(s);
    return -ENOMEM;
  }
  k->notes = v;
  k->notes[k->n_notes++] = s;
  return 0;
}

static int key_add(struct ct_known *k, const uint8_t *der, size_t len, size_t *cap) {
  if (k->n == *cap) {
    size_t nc = *cap ? *cap * 2 : 8;
    struct ct_key *v = realloc(k->keys, nc * sizeof(*v));
    if (!v)
      return -ENOMEM;
    k->keys = v;
    *cap = nc;
  }
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy)
    return -ENOMEM;
  memcpy(copy, der, len);
  k->keys[k->n++] = (struct ct_key){copy, len};
  return 0;
}

static void keys_sort_unique(struct ct_known *k) {
  if (k->n < 2)
    return;
  qsort(k->keys, k->n, sizeof(*k->keys), key_cmp);
  size_t w = 1;
  for (size_t i = 1; i < k->n; i++) {
    if (key_cmp(&k->keys[i], &k->keys[w - 1]) == 0)
      free(k->keys[i].der);
    else
      k->keys[w++] = k->keys[i];
  }
  k->n = w;
}

static bool quoted_has(const Tproxy__AcmeInfoResponse *a, const ProtobufCBinaryData *key) {
  for (size_t i = 0; i < a->n_quoted_hist_keys; i++) {
    const ProtobufCBinaryData *q = &a->quoted_hist_keys[i]->public_key;
    if (q->len == key->len && (key->len == 0 || memcmp(q->data, key->data, key->len) == 0))
      return true;
  }
  return false;
}

int ct_known_build(const Tproxy__AcmeInfoResponse *a, const char *no_legacy,
                   ct_quote_check_fn check,
                   void *ud, struct ct_known *ret, char *err, size_t errlen) {
  memset(ret, 0, sizeof(*ret));
  size_t cap = 0;
  char why[512], name[65];
  int r;
  const char *uri = a->account_uri ? a->account_uri : "";
  const char *aq = a->account_quote ? a->account_quote : "";
  if (aq[0]) {
    uint8_t want[64];
    why[0] = '\0';
    if ((r = quoted_key_report_data_account(uri, want)) < 0)
      return r;
    r = check(ud, want, aq, strlen(aq), why, sizeof(why));
    if (r < 0)
      return str_err(err, errlen, r, "ACME account %s: quote not checked: %s", uri, why);
    ret->account = r == 0 ? 1 : -1;
    if ((r = r == 0 ? note(ret, "ACME account %s: quote verified%s%s", uri, why[0] ? ": " : "",
                           why)
                    : note(ret, "ACME account %s: quote REFUSED: %s", uri, why)) < 0)
      return r;
  }

  ret->quotes_seen = a->n_quoted_hist_keys > 0;
  for (size_t i = 0; i < a->n_quoted_hist_keys; i++) {
    const Tproxy__QuotedPublicKey *q = a->quoted_hist_keys[i];
    const ProtobufCBinaryData *k = &q->public_key;
    if (k->len == 0 || k->len > QUOTED_KEY_MAX_SPKI) {
      if ((r = note(ret, "a quoted key of %zu bytes: ignored", k->len)) < 0)
        return r;
      continue;
    }
    ct_key_name(k->data, k->len, name);
    const char *text = q->quote ? q->quote : "";
    uint8_t want[64];
    if ((r = quoted_key_report_data_cert(k->data, k->len, want)) < 0)
      return r;
    why[0] = '\0';
    r = check(ud, want, text, strlen(text), why, sizeof(why));
    if (r < 0)
      return str_err(err, errlen, r, "key %s: quote not checked: %s", name, why);
    if (r == 0) {
      if ((r = key_add(ret, k->data, k->len, &cap)) < 0 ||
          (r = note(ret, "key %s: known, quote verified%s%s", name, why[0] ? ": " : "", why)) <
              0)
        return r;
    } else if ((r = note(ret, "key %s: NOT known, its quote is refused: %s", name, why)) < 0) {
      return r;
    }
  }

  ret->legacy = !ret->quotes_seen && !no_legacy;
  for (size_t i = 0; i < a->n_hist_keys; i++) {
    const ProtobufCBinaryData *k = &a->hist_keys[i];
    if (k->len == 0 || quoted_has(a, k))
      continue;
    ct_key_name(k->data, k->len, name);
    r = ret->legacy ? key_add(ret, k->data, k->len, &cap) : 0;
    if (r >= 0)
      r = ret->legacy
              ? note(ret, "key %s: known WITHOUT attestation (tproxy lists no quoted key: the "
                          "legacy rule)", name)
              : note(ret, "key %s: NOT known, tproxy lists it without a quote%s%s%s", name,
                     ret->quotes_seen ? "" : " (",
                     ret->quotes_seen ? "" : (no_legacy ? no_legacy : "legacy rule off"),
                     ret->quotes_seen ? "" : ")");
    if (r < 0)
      return r;
  }
  keys_sort_unique(ret);
  return 0;
}

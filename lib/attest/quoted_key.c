/* Quotes that vouch for certbot's keys: report-data binding and evidence text. */
#include "quoted_key.h"

#include <errno.h>
#include <string.h>

#include "base/json.h"
#include "base/str.h"
#include "crypto/hash.h"

static int report_data_of(const char *prefix, const void *data, size_t len, uint8_t ret[64]) {
  _cleanup_(hash_ctx_freep) struct hash_ctx *h = NULL;
  int r = hash_ctx_new(HASH_SHA512, &h);
  if (r >= 0)
    r = hash_ctx_update(h, prefix, strlen(prefix));
  if (r >= 0 && len)
    r = hash_ctx_update(h, data, len);
  if (r >= 0)
    r = hash_ctx_final(h, ret);
  return r;
}

int quoted_key_report_data_account(const char *account_uri, uint8_t ret[64]) {
  if (!account_uri || !ret)
    return -EINVAL;
  return report_data_of(QUOTED_KEY_ACCOUNT_PREFIX, account_uri, strlen(account_uri), ret);
}

int quoted_key_report_data_cert(const uint8_t *spki, size_t len, uint8_t ret[64]) {
  if (!spki || len == 0 || len > QUOTED_KEY_MAX_SPKI || !ret)
    return -EINVAL;
  return report_data_of(QUOTED_KEY_CERT_PREFIX, spki, len, ret);
}

void quoted_key_evidence_free(struct quoted_key_evidence *e) {
  if (!e)
    return;
  buf_free(&e->quote);
  buf_free(&e->event_log);
}

int quoted_key_evidence_parse(const char *text, size_t len, struct quoted_key_evidence *ret) {
  if (!ret || (!text && len))
    return -EINVAL;
  ret->quote = BUF_INIT(QUOTED_KEY_MAX_QUOTE);
  ret->event_log = BUF_INIT(QUOTED_KEY_MAX_EVENT_LOG);
  if (len > QUOTED_KEY_MAX_TEXT)
    return -ENOBUFS;
  _cleanup_json_ json_t *j = NULL;
  int r = json_parse_buf(text ? text : "", len, QUOTED_KEY_MAX_TEXT, &j);
  if (r < 0)
    return r;
  if (!json_is_object(j))
    return -EBADMSG;
  r = json_get_hex_buf(j, "quote", &ret->quote);
  if (r == -ENOBUFS)
    return r;
  if (r < 0 || ret->quote.len == 0)
    return -EBADMSG;
  const char *log = NULL;
  r = json_get_str(j, "event_log", &log);
  if (r == -ENOENT)
    return 0;
  if (r < 0)
    return -EBADMSG;
  return buf_append(&ret->event_log, log, strlen(log));
}

int quoted_key_evidence_format(const uint8_t *quote, size_t len, const char *event_log,
                               size_t log_len, struct buf *out) {
  if (!quote || len == 0 || len > QUOTED_KEY_MAX_QUOTE || (!event_log && log_len) ||
      log_len > QUOTED_KEY_MAX_EVENT_LOG || !out)
    return -EINVAL;
  _cleanup_json_ json_t *j = json_object();
  if (!j)
    return -ENOMEM;
  int r = json_set_hex(j, "quote", quote, len);
  if (r >= 0)
    r = json_set_strn(j, "event_log", log_len ? event_log : "", log_len);
  if (r >= 0)
    r = json_dump_buf(j, JSON_COMPACT, out);
  return r;
}

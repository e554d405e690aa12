/* The "hostch" TEE backend: teepod's Tdx.* requests over the host channel. */
#include "attest/tee_hostch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attest/hostch_client.h"
#include "attest/quote.h"
#include "attest/tdreport.h"
#include "attest/tee.h"
#include "base/base64.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"

struct tee_hostch {
  char *eventlog;
};

static int call(const char *method, json_t *params, json_t **ret) {
  _cleanup_free_ char *err = NULL;
  int r = hostch_call(method, params, TEE_HOSTCH_TIMEOUT_MS, ret, &err);
  if (r == -EREMOTEIO)
    log_debug("host channel %s: the host refused: %s", method, err ? err : "");
  return r;
}

static json_t *report_data_params(const uint8_t report_data[64]) {
  json_t *p = json_object();
  if (p && json_set_hex(p, "report_data", report_data, 64) < 0) {
    json_decref(p);
    return NULL;
  }
  return p;
}

static int hostch_get_report(struct tee *t, const uint8_t report_data[64],
                             uint8_t ret_report[1024]) {
  (void)t;
  _cleanup_json_ json_t *params = report_data_params(report_data), *res = NULL;
  if (!params)
    return -ENOMEM;
  int r = call("Tdx.Report", params, &res);
  if (r < 0)
    return r;
  uint8_t rep[TDREPORT_SIZE];
  struct tdreport tr;
  if (json_get_hex(res, "report", rep, sizeof(rep)) < 0 ||
      tdreport_parse(rep, sizeof(rep), &tr) < 0)
    return log_debug_errno(-EBADMSG, "host channel Tdx.Report: not a TDREPORT");
  /* a report for other data is no answer to this request */
  if (memcmp(tr.mac.report_data, report_data, 64) != 0)
    return log_debug_errno(-EBADMSG, "host channel Tdx.Report: the report has other data");
  memcpy(ret_report, rep, sizeof(rep));
  return 0;
}

static int hostch_get_quote(struct tee *t, const uint8_t report_data[64], struct buf *ret_quote) {
  (void)t;
  _cleanup_json_ json_t *params = report_data_params(report_data), *res = NULL;
  if (!params)
    return -ENOMEM;
  int r = call("Tdx.Quote", params, &res);
  if (r < 0)
    return r;
  _cleanup_buf_ struct buf q = BUF_INIT(BUF_MAX_QUOTE);
  struct quote parsed;
  r = json_get_hex_buf(res, "quote", &q);
  if (r < 0 || quote_parse(q.data, q.len, &parsed) < 0 || parsed.total_len != q.len)
    return log_debug_errno(-EBADMSG, "host channel Tdx.Quote: not a quote");
  if (memcmp(quote_report_data(&parsed), report_data, 64) != 0)
    return log_debug_errno(-EBADMSG, "host channel Tdx.Quote: the quote has other data");
  return buf_append(ret_quote, q.data, q.len);
}

static int hostch_extend_rtmr(struct tee *t, unsigned index, const uint8_t digest[48]) {
  (void)t;
  if (index != 3)
    return -EPERM; /* the host keeps RTMR0-2: they hold what it booted */
  _cleanup_json_ json_t *params = json_object(), *res = NULL;
  if (!params || json_set_u64(params, "index", index) < 0 ||
      json_set_hex(params, "digest", digest, 48) < 0)
    return -ENOMEM;
  return call("Tdx.Extend", params, &res);
}

static int hostch_read_rtmrs(struct tee *t, uint8_t ret[4][48]) {
  uint8_t zero[64] = {0}, rep[TDREPORT_SIZE];
  int r = hostch_get_report(t, zero, rep);
  if (r < 0)
    return r;
  struct tdreport tr;
  if (tdreport_parse(rep, sizeof(rep), &tr) < 0)
    return -EBADMSG;
  memcpy(ret, tr.td_info.rtmr, sizeof(tr.td_info.rtmr));
  return 0;
}

static int hostch_eventlog_path(struct tee *t, char **ret_path) {
  struct tee_hostch *p = t->priv;
  return (*ret_path = strdup(p->eventlog)) ? 0 : -ENOMEM;
}

static void hostch_free(struct tee *t) {
  struct tee_hostch *p = t->priv;
  if (p)
    free(p->eventlog);
  free(p);
  free(t);
}

const struct tee_ops tee_hostch_ops = {
    .name = "hostch",
    .get_report = hostch_get_report,
    .get_quote = hostch_get_quote,
    .extend_rtmr = hostch_extend_rtmr,
    .read_rtmrs = hostch_read_rtmrs,
    .eventlog_path = hostch_eventlog_path,
    .free = hostch_free,
};

int tee_hostch_new(const char *eventlog, struct tee **ret) {
  if (!ret)
    return -EINVAL;
  *ret = NULL;
  struct tee *t = calloc(1, sizeof(*t));
  struct tee_hostch *p = calloc(1, sizeof(*p));
  if (!t || !p || !(p->eventlog = strdup(eventlog ? eventlog : TEE_HOSTCH_DEFAULT_EVENTLOG))) {
    free(p);
    free(t);
    return -ENOMEM;
  }
  t->ops = &tee_hostch_ops;
  t->priv = p;
  *ret = t;
  return 0;
}

int tee_hostch_ccel(struct buf *ret) {
  if (!ret)
    return -EINVAL;
  _cleanup_json_ json_t *res = NULL;
  int r = call("Tdx.EventLog", NULL, &res);
  if (r < 0)
    return r;
  const char *b64 = NULL;
  if (json_get_str(res, "ccel", &b64) < 0 || !b64)
    return log_debug_errno(-EBADMSG, "host channel Tdx.EventLog: no ccel");
  size_t n = strlen(b64);
  if (n > base64_encoded_len(TEE_HOSTCH_CCEL_MAX))
    return log_debug_errno(-EBADMSG, "host channel Tdx.EventLog: over %zu bytes",
                           TEE_HOSTCH_CCEL_MAX);
  size_t before = ret->len;
  r = base64_decode_buf(b64, n, ret);
  if (r == -EINVAL)
    return log_debug_errno(-EBADMSG, "host channel Tdx.EventLog: bad base64");
  if (r == 0 && ret->len - before > TEE_HOSTCH_CCEL_MAX) {
    ret->len = before;
    return -EBADMSG;
  }
  return r;
}

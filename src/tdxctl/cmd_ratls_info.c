/* tdxctl ratls-info CERT: the attestation carried by an RA-TLS certificate, as JSON. Nothing is
 * verified except that the quote's report_data binds the certificate's key. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "attest/quote.h"
#include "attest/quote_json.h"
#include "base/json.h"
#include "crypto/x509.h"
#include "ratls/ratls.h"
#include "ratls/ratls_verify.h"
#include "tdxctl.h"

static void ratls_info_usage(FILE *f) {
  fprintf(f, "Usage: tdxctl ratls-info [--quote-out FILE] [--eventlog-out FILE] CERT|-\n\n"
             "Extracts the quote, event log and app info of an RA-TLS certificate (PEM or DER)\n"
             "and prints subject, issuer, whether the quote's report_data binds the certificate\n"
             "key (SHA-512 of its public point), the app id from the event log, and the quote\n"
             "fields. Nothing else is verified.\n"
             "  --quote-out FILE     also write the raw quote to FILE\n"
             "  --eventlog-out FILE  also write the raw event log to FILE\n");
}

static int ratls_info_load(const char *path, X509 **ret) {
  _cleanup_buf_ struct buf in = BUF_INIT(X509_INPUT_MAX);
  int r = cli_read_input(path, &in);
  if (r < 0)
    return cli_fail(r, "reading %s", path);
  if (in.len && in.data[0] == 0x30)
    r = x509_cert_from_der(in.data, in.len, ret);
  else
    r = x509_cert_from_pem(in.data, in.len, ret);
  if (r < 0)
    return cli_fail(r, "parsing the certificate %s", path);
  return 0;
}

int cmd_ratls_info(int argc, char **argv) {
  enum { OPT_QUOTE_OUT = 0x100, OPT_EVLOG_OUT };
  static const struct option opts[] = {
      {"help", no_argument, NULL, 'h'},
      {"quote-out", required_argument, NULL, OPT_QUOTE_OUT},
      {"eventlog-out", required_argument, NULL, OPT_EVLOG_OUT},
      {},
  };
  const char *quote_out = NULL, *evlog_out = NULL;
  int c, r;
  optind = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      ratls_info_usage(stdout);
      return 0;
    case OPT_QUOTE_OUT:
      quote_out = optarg;
      break;
    case OPT_EVLOG_OUT:
      evlog_out = optarg;
      break;
    default:
      ratls_info_usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  if (argc - optind != 1)
    return cli_usage_error("expected one CERT (- for stdin)");
  const char *path = argv[optind];

  _cleanup_(X509_freep) X509 *cert = NULL;
  if ((r = ratls_info_load(path, &cert)))
    return r;
  _cleanup_ratls_attestation_ struct ratls_attestation a = {0};
  r = ratls_cert_attestation(cert, &a);
  if (r == -ENOENT)
    return cli_fail(r, "%s carries no RA-TLS quote extension", path);
  if (r < 0)
    return cli_fail(r, "extracting the attestation of %s", path);

  struct quote q;
  char why[256] = "";
  r = quote_parse_msg(a.quote.data, a.quote.len, &q, why, sizeof(why));
  if (r < 0)
    return cli_fail(r, "parsing the quote in %s%s%s", path, why[0] ? ": " : "", why);

  _cleanup_json_ json_t *j = json_object();
  _cleanup_buf_ struct buf subj = BUF_INIT(BUF_MAX_SMALL), iss = BUF_INIT(BUF_MAX_SMALL);
  if (!j)
    return cli_fail(-ENOMEM, "formatting");
  if ((r = x509_cert_subject_string(cert, &subj)) < 0 ||
      (r = x509_cert_issuer_string(cert, &iss)) < 0)
    return cli_fail(r, "reading the names of %s", path);
  r = json_set_strn(j, "subject", (const char *)subj.data, subj.len);
  if (r == 0)
    r = json_set_strn(j, "issuer", (const char *)iss.data, iss.len);
  if (r == 0)
    r = json_set_bool(j, "report_data_binds_key", ratls_report_data_binds_key(cert, &a) == 0);
  /* What a verifier would take as the app's identity (the quote is not verified here). */
  struct ratls_app_identity id;
  char idwhy[256] = "";
  enum ratls_reason rr = ratls_attestation_identity(&a, RATLS_ID_ALLOW_SEED, &id, idwhy,
                                                    sizeof(idwhy));
  if (r == 0) {
    if (rr == RATLS_OK) {
      r = json_set_str(j, "app_id", id.app_id_hex);
      if (r == 0)
        r = json_set_str(j, "era", id.era == RATLS_ERA_SEED ? "seed" : "newest");
    } else {
      r = json_set_new(j, "app_id", json_null());
      if (r == 0)
        r = json_set_str(j, "identity_error", idwhy);
    }
  }
  if (r == 0)
    r = json_set_u64(j, "event_log_size", a.event_log.len);
  if (r == 0)
    r = json_set_u64(j, "app_info_size", a.app_info.len);
  json_t *qj = NULL;
  if (r == 0 && (r = quote_to_json(&q, &qj)) == 0)
    r = json_set_new(j, "quote", qj);
  if (r < 0)
    return cli_fail(r, "formatting");

  if (quote_out && (r = cli_write_output(quote_out, a.quote.data, a.quote.len, 0644)) < 0)
    return cli_fail(r, "writing %s", quote_out);
  if (evlog_out &&
      (r = cli_write_output(evlog_out, a.event_log.data, a.event_log.len, 0644)) < 0)
    return cli_fail(r, "writing %s", evlog_out);
  return cli_print_json(j);
}

/* tdxctl gen-ra-cert: a fresh P-256 key and an RA-TLS certificate for it (quote whose
 * report_data is SHA-512 of the public point, plus the event log), signed by a CA. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attest/tee.h"
#include "base/fileio.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "ratls/ratls.h"
#include "tdxctl.h"

static void gen_usage(FILE *f) {
  fprintf(f,
          "Usage: tdxctl gen-ra-cert --ca-cert PEM --ca-key PEM -c CERT_PATH -k KEY_PATH\n\n"
          "Generates a P-256 key, gets a quote binding it (report_data = SHA-512 of the\n"
          "public point) and writes an RA-TLS certificate (quote and event-log extensions)\n"
          "signed by the CA, and the key as PKCS#8 PEM (mode 0600).\n"
          "  --ca-cert PEM        CA certificate (the first certificate of the file)\n"
          "  --ca-key PEM         CA private key (PKCS#8 or SEC1 PEM)\n"
          "  -c, --cert-path PATH where to write the certificate PEM\n"
          "  -k, --key-path PATH  where to write the private key PEM\n"
          "      --subject CN     subject common name (default '" RATLS_DEFAULT_CN "')\n"
          "      --alt-name DNS   one DNS subjectAltName\n"
          "Backend: DSTACK_TEE (tdx, sim) or auto-detected.\n");
}

static int gen_load_ca(const char *cert_path, const char *key_path, X509 **ret_cert,
                       EVP_PKEY **ret_key) {
  _cleanup_buf_ struct buf pem = BUF_INIT(X509_INPUT_MAX);
  _cleanup_x509_chain_ STACK_OF(X509) *chain = NULL;
  int r = file_read_all(cert_path, X509_INPUT_MAX, &pem);
  if (r < 0)
    return cli_fail(r, "reading %s", cert_path);
  r = x509_chain_from_pem(pem.data, pem.len, &chain);
  if (r < 0)
    return cli_fail(r == -ENOENT ? -EBADMSG : r, "no certificate in %s", cert_path);
  X509 *ca = sk_X509_value(chain, 0);
  if (!ca || !X509_up_ref(ca))
    return cli_fail(-ENOMEM, "loading %s", cert_path);
  _cleanup_(X509_freep) X509 *cert = ca;

  struct buf keypem;
  buf_init_secret(&keypem, KEY_INPUT_MAX);
  r = file_read_all(key_path, KEY_INPUT_MAX, &keypem);
  if (r == 0)
    r = key_from_pem_or_der(keypem.data, keypem.len, ret_key);
  buf_free(&keypem);
  if (r < 0)
    return cli_fail(r, "loading the CA key %s", key_path);
  *ret_cert = TAKE_PTR(cert);
  return 0;
}

int cmd_gen_ra_cert(int argc, char **argv) {
  enum { OPT_CA_CERT = 0x100, OPT_CA_KEY, OPT_SUBJECT, OPT_ALT };
  static const struct option opts[] = {
      {"help", no_argument, NULL, 'h'},
      {"ca-cert", required_argument, NULL, OPT_CA_CERT},
      {"ca-key", required_argument, NULL, OPT_CA_KEY},
      {"cert-path", required_argument, NULL, 'c'},
      {"key-path", required_argument, NULL, 'k'},
      {"subject", required_argument, NULL, OPT_SUBJECT},
      {"alt-name", required_argument, NULL, OPT_ALT},
      {},
  };
  const char *ca_cert = NULL, *ca_key = NULL, *cert_path = NULL, *key_path = NULL;
  struct ratls_cert_params p;
  int c, r;

  ratls_cert_params_default(&p);
  optind = 0;
  while ((c = getopt_long(argc, argv, "hc:k:", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      gen_usage(stdout);
      return 0;
    case OPT_CA_CERT:
      ca_cert = optarg;
      break;
    case OPT_CA_KEY:
      ca_key = optarg;
      break;
    case 'c':
      cert_path = optarg;
      break;
    case 'k':
      key_path = optarg;
      break;
    case OPT_SUBJECT:
      p.subject_cn = optarg;
      break;
    case OPT_ALT:
      p.alt_subject = optarg;
      break;
    default:
      gen_usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  if (optind != argc)
    return cli_usage_error("unexpected argument '%s'", argv[optind]);
  if (!ca_cert || !ca_key || !cert_path || !key_path)
    return cli_usage_error("--ca-cert, --ca-key, --cert-path and --key-path are required");
  if (strcmp(cert_path, key_path) == 0)
    return cli_usage_error("--cert-path and --key-path must differ");

  _cleanup_(X509_freep) X509 *issuer = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *issuer_key = NULL;
  if ((r = gen_load_ca(ca_cert, ca_key, &issuer, &issuer_key)))
    return r;

  _cleanup_(tee_freep) struct tee *tee = NULL;
  if ((r = cli_tee_open(NULL, &tee)))
    return r;
  _cleanup_(X509_freep) X509 *cert = NULL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
  r = ratls_cert_generate(&p, tee, issuer, issuer_key, &cert, &key);
  if (r < 0)
    return cli_fail(r, "generating the RA-TLS certificate");

  _cleanup_buf_ struct buf cert_pem = BUF_INIT(BUF_MAX_FILE);
  _cleanup_buf_ struct buf key_pem;
  buf_init_secret(&key_pem, BUF_MAX_SMALL);
  if ((r = x509_cert_to_pem(cert, &cert_pem)) < 0)
    return cli_fail(r, "encoding the certificate");
  if ((r = key_to_pkcs8_pem(key, &key_pem)) < 0)
    return cli_fail(r, "encoding the key");

  /* Both files or neither: a certificate we created is removed when the key cannot be
   * written. Each write is atomic, so no file is ever half written. */
  bool cert_existed = access(cert_path, F_OK) == 0;
  r = file_write_atomic(cert_path, cert_pem.data, cert_pem.len, 0644);
  if (r < 0)
    return cli_fail(r, "writing %s", cert_path);
  r = file_write_atomic(key_path, key_pem.data, key_pem.len, 0600);
  if (r < 0) {
    if (!cert_existed)
      (void)unlink(cert_path);
    return cli_fail(r, "writing %s", key_path);
  }
  return 0;
}

/* tdxctl verify: full Intel DCAP verification of a quote against collateral. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/dcap.h"
#include "attest/dcap_collateral.h"
#include "collateral/dcap_fetch.h"
#include "attest/quote.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/str.h"
#include "tdxctl.h"

#define VERIFY_MAX_INPUT ((size_t)4 * QUOTE_MAX_SIZE)
#define VERIFY_MAX_COLLATERAL ((size_t)32 * 1024 * 1024)

static void verify_usage(FILE *f) {
  fprintf(
      f, "Usage: tdxctl verify --quote FILE [--hex] (--collateral FILE|DIR | --pccs-url URL)\n"
         "                     [--now UNIX] [--allow-simulator [--sim-root PEM]] [--json]\n\n"
         "Verifies a TDX (v4, v5) or SGX (v3) quote the way Intel's QVL does: PCK chain to the\n"
         "pinned Intel SGX Root CA, CRLs, TCB info and QE identity, QE report, quote signature,\n"
         "TCB level. Prints one JSON object: {\"status\",\"advisory_ids\",\"fmspc\",\"tee_type\",\n"
         "\"simulated\",\"collateral_expiry\",\"trailing_bytes\"} and exits 0, or\n"
         "{\"error\":\"...\"} and exits 1. trailing_bytes counts the bytes after the quote's\n"
         "signature data (often zero padding); no signature covers them.\n"
         "  --quote FILE          the quote (- = stdin)\n"
         "  --hex                 the quote file is hex text\n"
         "  --collateral PATH     dcap-qvl collateral JSON, or a directory of Intel PCS files\n"
         "                        (tcb_info.json / tcbinfov3_*.json, qe_identity.json, CRLs,\n"
         "                        issuer chains; the simulator's DIR/collateral works too)\n"
         "  --pccs-url URL        fetch the collateral from a PCCS / Intel PCS\n"
         "  --now UNIX            verify at this time (default: now)\n"
         "  --allow-simulator     also trust the simulator's root CA: --sim-root PEM, else\n"
         "                        root_ca.pem next to the collateral, else "
         "$DSTACK_SIM_DIR/root_ca.pem\n"
         "  --json                more detail: all statuses and the verified quote body\n");
}

static int print_error(const char *msg) {
  _cleanup_json_ json_t *j = json_object();
  if (!j || json_set_str(j, "error", msg) < 0)
    return cli_fail(-ENOMEM, "%s", msg);
  char *s = json_dump_compact(j);
  if (!s)
    return cli_fail(-ENOMEM, "%s", msg);
  printf("%s\n", s);
  fflush(stdout);
  free(s);
  return CLI_EXIT_FAILURE;
}

/* After a validity-window failure at the current time: collateral from the past (test vectors,
 * saved files) verifies at a time it was valid, which --now gives. On stderr: stdout stays the
 * one JSON object. */
static void verify_hint_now(int64_t next_update) {
  if (next_update <= 0) {
    fprintf(stderr, "tdxctl: verify: checked at the current time; for collateral from the past "
                    "pass --now UNIX, a time when it was valid\n");
    return;
  }
  char d[32];
  dcap_format_date(next_update, d);
  fprintf(stderr,
          "tdxctl: verify: checked at the current time; for collateral from the past pass "
          "--now UNIX, a time when it was valid (its earliest nextUpdate is %s = %lld)\n",
          d, (long long)next_update);
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool file_exists(const char *p) { return access(p, R_OK) == 0; }

/* The simulator root for --allow-simulator without --sim-root (allocated), or NULL. */
static char *sim_root_guess(const char *collateral) {
  if (collateral) {
    _cleanup_free_ char *copy = strdup(collateral);
    if (!copy)
      return NULL;
    const char *dir = is_dir(collateral) ? collateral : dirname(copy);
    const char *const cands[] = {"root_ca.pem", "../root_ca.pem"};
    for (size_t i = 0; i < ARRAY_SIZE(cands); i++) {
      char *p = str_printf("%s/%s", dir, cands[i]);
      if (p && file_exists(p))
        return p;
      free(p);
    }
  }
  const char *env = getenv("DSTACK_SIM_DIR");
  if (env && *env) {
    char *p = str_printf("%s/root_ca.pem", env);
    if (p && file_exists(p))
      return p;
    free(p);
  }
  return NULL;
}

static int load_collateral(const char *path, const struct quote *q, struct dcap_collateral *ret,
                           char *err, size_t errlen) {
  int r;
  if (is_dir(path)) {
    r = dcap_collateral_from_dir_quote(path, q, ret);
    if (r == -EINVAL || r == -EBADMSG) /* no usable PCK chain: let dcap_verify say why */
      r = dcap_collateral_from_dir(path, ret);
    if (r < 0)
      snprintf(err, errlen, "collateral: loading directory %s: %s", path, strerror(-r));
    return r;
  }
  _cleanup_buf_ struct buf b = BUF_INIT(VERIFY_MAX_COLLATERAL);
  r = file_read_all(path, VERIFY_MAX_COLLATERAL, &b);
  if (r < 0) {
    snprintf(err, errlen, "collateral: reading %s: %s", path, strerror(-r));
    return r;
  }
  r = dcap_collateral_from_qvl_json((const char *)b.data ?: "", b.len, ret);
  if (r < 0)
    snprintf(err, errlen, "collateral: %s is not dcap-qvl collateral JSON: %s", path, strerror(-r));
  return r;
}

int cmd_verify(int argc, char **argv) {
  enum { OPT_QUOTE = 0x100, OPT_COLL, OPT_PCCS, OPT_NOW, OPT_SIM, OPT_SIM_ROOT, OPT_JSON };
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {"quote", required_argument, NULL, OPT_QUOTE},
                                       {"hex", no_argument, NULL, 'x'},
                                       {"collateral", required_argument, NULL, OPT_COLL},
                                       {"pccs-url", required_argument, NULL, OPT_PCCS},
                                       {"now", required_argument, NULL, OPT_NOW},
                                       {"allow-simulator", no_argument, NULL, OPT_SIM},
                                       {"sim-root", required_argument, NULL, OPT_SIM_ROOT},
                                       {"json", no_argument, NULL, OPT_JSON},
                                       {}};
  const char *quote_path = NULL, *coll_path = NULL, *pccs = NULL, *sim_root = NULL;
  bool hex = false, allow_sim = false, full = false, now_given = false;
  int64_t now = (int64_t)time(NULL);
  int c, r;
  optind = 0;
  while ((c = getopt_long(argc, argv, "hx", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      verify_usage(stdout);
      return 0;
    case 'x':
      hex = true;
      break;
    case OPT_QUOTE:
      quote_path = optarg;
      break;
    case OPT_COLL:
      coll_path = optarg;
      break;
    case OPT_PCCS:
      pccs = optarg;
      break;
    case OPT_NOW: {
      int64_t t;
      if (str_to_i64(optarg, &t) < 0 || t < 0)
        return cli_usage_error("--now wants unix seconds, not '%s'", optarg);
      now = t;
      now_given = true;
      break;
    }
    case OPT_SIM:
      allow_sim = true;
      break;
    case OPT_SIM_ROOT:
      sim_root = optarg;
      break;
    case OPT_JSON:
      full = true;
      break;
    default:
      verify_usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  if (optind != argc)
    return cli_usage_error("unexpected argument '%s'", argv[optind]);
  if (!quote_path)
    return cli_usage_error("--quote FILE is required");
  if (!!coll_path == !!pccs)
    return cli_usage_error("give exactly one of --collateral and --pccs-url");
  if (sim_root && !allow_sim)
    return cli_usage_error("--sim-root needs --allow-simulator");

  char err[512] = "";
  _cleanup_buf_ struct buf in = BUF_INIT(VERIFY_MAX_INPUT);
  r = cli_read_input(quote_path, &in);
  if (r < 0) {
    snprintf(err, sizeof(err), "reading %s: %s", quote_path, strerror(-r));
    return print_error(err);
  }
  _cleanup_buf_ struct buf bin = BUF_INIT(VERIFY_MAX_INPUT);
  const struct buf *qb = &in;
  if (hex) {
    size_t skip = 0;
    while (skip < in.len && char_is_space((char)in.data[skip]))
      skip++;
    if (in.len - skip >= 2 && in.data[skip] == '0' && (in.data[skip + 1] | 0x20) == 'x')
      skip += 2;
    r = hex_decode_buf((const char *)in.data + skip, in.len - skip, true, &bin);
    if (r < 0)
      return print_error("quote: bad hex");
    qb = &bin;
  }
  struct quote q;
  char why[200] = "";
  r = quote_parse_msg(qb->data, qb->len, &q, why, sizeof(why));
  if (r < 0) {
    snprintf(err, sizeof(err), "quote: %s", why[0] ? why : strerror(-r));
    return print_error(err);
  }

  struct dcap_collateral col = {};
  if (coll_path) {
    r = load_collateral(coll_path, &q, &col, err, sizeof(err));
    if (r < 0)
      return print_error(err);
  } else {
    struct dcap_fetch_opts fo = {.now = now};
    r = dcap_fetch_collateral(pccs, &q, &fo, &col);
    if (r < 0) {
      snprintf(err, sizeof(err), "fetching collateral from %s: %s", pccs, strerror(-r));
      dcap_fetch_caches_free();
      return print_error(err);
    }
    dcap_fetch_caches_free();
  }

  _cleanup_free_ char *guessed = NULL;
  struct dcap_verifier_opts vo = {.allow_simulator = allow_sim};
  if (allow_sim) {
    if (!sim_root)
      sim_root = guessed = sim_root_guess(coll_path);
    if (!sim_root) {
      dcap_collateral_free(&col);
      return print_error("--allow-simulator: no simulator root found (use --sim-root)");
    }
    vo.simulator_root_pem = sim_root;
  }
  struct dcap_verifier *v = NULL;
  r = dcap_verifier_new(&vo, &v);
  if (r < 0) {
    dcap_collateral_free(&col);
    snprintf(err, sizeof(err), "verifier: %s%s%s", strerror(-r), allow_sim ? ": " : "",
             allow_sim ? sim_root : "");
    return print_error(err);
  }
  struct dcap_result res;
  r = dcap_verify(v, qb->data, qb->len, &col, now, &res, err, sizeof(err));
  int64_t next_update = 0;
  bool have_next = dcap_collateral_next_update(&col, &next_update) == 0;
  dcap_verifier_free(v);
  dcap_collateral_free(&col);
  if (r < 0) {
    if (!now_given && (strstr(err, "expired at") || strstr(err, "not yet valid")))
      verify_hint_now(have_next ? next_update : -1);
    return print_error(err);
  }

  _cleanup_json_ json_t *j = NULL;
  r = dcap_result_to_json(&res, full, &j);
  dcap_result_free(&res);
  if (r < 0)
    return cli_fail(r, "formatting the result");
  if (!full) {
    static const char *const drop[] = {"platform_status", "qe_status", "module_status", "pck_ca",
                                       "quote_version"};
    for (size_t i = 0; i < ARRAY_SIZE(drop); i++)
      json_object_del(j, drop[i]);
    char *s = json_dump_compact(j);
    if (!s)
      return cli_fail(-ENOMEM, "formatting the result");
    printf("%s\n", s);
    free(s);
    return fflush(stdout) == 0 ? 0 : CLI_EXIT_FAILURE;
  }
  return cli_print_json(j);
}

/* ct_monitor: the command line, the loop of rounds, exit statuses. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "ct_monitor.h"
#include "ct_monitor_domain.h"

#define EXIT_ALARM 1
#define EXIT_USAGE 2
#define EXIT_SETUP 3
#define EXIT_ROUND 4
#define INTERVAL_MAX (7 * 86400L)
#define BACKOFF_MAX_S 900L
#define APP_IDS_MAX 64
#define DEFAULT_PCCS "https://api.trustedservices.intel.com"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

static void usage(FILE *f) {
  fprintf(
      f,
      "Usage: ct_monitor -t URL -d DOMAIN (--app-id HEX | --any-app) [options]\n\n"
      "Watches Certificate Transparency (crt.sh) for certificates of DOMAIN (and the names\n"
      "under it) whose key tproxy did not make, and raises an ALARM for each: one error line\n"
      "naming the certificate, and a JSON POST to --webhook.\n\n"
      "  -t, --tproxy-uri URL   tproxy's pRPC base, e.g. https://host:port/prpc (AcmeInfo is\n"
      "                         asked at URL/Tproxy.AcmeInfo, else URL/AcmeInfo)\n"
      "  -g, --gateway URL      the same, for upstream's newest gateway\n"
      "  -d, --domain DOMAIN    the domain to watch (labels of a-z, 0-9, '-'; a TLD of letters)\n"
      "      --crtsh-url URL    crt.sh's base URL (default https://crt.sh)\n"
      "      --state FILE       remembers the last crt.sh id checked (written atomically), so a\n"
      "                         restart neither alarms again nor skips anything\n"
      "      --interval SECONDS time between rounds (default 60; after failures it doubles up\n"
      "                         to %ld s)\n"
      "      --once             one round, then exit\n"
      "      --webhook URL      POST each alarm there as JSON {\"text\",\"event\",\"domain\",\n"
      "                         \"crtsh_id\",\"crtsh_url\",\"serial_number\",\"names\",\n"
      "                         \"issuer_name\",\"not_before\",\"spki_sha256\"}; a failed POST\n"
      "                         raises the alarm again next round\n"
      "      --tproxy-ca FILE   verify tproxy's TLS certificate against this CA (default: not\n"
      "                         verified, as upstream; a warning says so, and keys without a\n"
      "                         quote are then ignored)\n"
      "      --pccs-url URL     collateral for quotes (default %s)\n"
      "      --allow-simulator  accept quotes of the simulated TDX platform in --sim-dir DIR\n"
      "                         (default $DSTACK_SIM_DIR); for tests only\n"
      "      --app-id HEX[,HEX] count only quotes whose event log names one of these apps\n"
      "                         (tproxy's app id; repeatable). One of --app-id and --any-app\n"
      "                         is required: no TD is trusted by default\n"
      "      --any-app          count a quote from ANY genuine TD (a warning says so): the\n"
      "                         tproxy host can run a TD of its own that quotes a key it made\n"
      "      --require-quotes   never the legacy rule below\n"
      "  -h, --help             this text\n\n"
      "Which keys are tproxy's (from its AcmeInfo):\n"
      "  - a key with a quote counts when the quote is genuine (Intel DCAP, the event log\n"
      "    replayed), its report_data is SHA-512(\"cert-pubkey:\" || the key's SPKI DER), the\n"
      "    platform is not revoked and the TD is one of the --app-id apps (any TD with\n"
      "    --any-app). A key whose quote fails does NOT count (the reason is logged), whatever\n"
      "    else tproxy says;\n"
      "  - keys without a quote count only while tproxy lists no quoted key at all (a tproxy\n"
      "    from before quotes) and its answer came over TLS verified with --tproxy-ca, with a\n"
      "    warning every round: whoever controls tproxy's host can add such a key. Over\n"
      "    unverified TLS they are ignored (a warning says so). Once quoted keys were seen\n"
      "    (remembered in --state) or with --require-quotes, keys without a quote never count.\n\n"
      "Exit status: 0 every certificate checked and none alarming (or stopped by a signal);\n"
      "1 an alarm (--once); 2 bad command line; 3 unusable setup (state file, CA, simulator);\n"
      "4 the round failed (tproxy, crt.sh, the webhook, collateral) (--once).\n",
      BACKOFF_MAX_S, DEFAULT_PCCS);
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
  va_list ap;
  fputs("ct_monitor: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs(" (see ct_monitor --help)\n", stderr);
  return EXIT_USAGE;
}

static bool is_http_url(const char *s) {
  return str_startswith(s, "http://") || str_startswith(s, "https://");
}

/* Lowercase copy of an even-length hex string of 2..128 digits, or NULL. */
static char *app_id_norm(const char *s) {
  size_t n = strlen(s);
  if (n < 2 || n > 128 || n % 2)
    return NULL;
  char *c = strdup(s);
  if (!c)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    char ch = c[i];
    if (ch >= 'A' && ch <= 'F')
      c[i] = (char)(ch - 'A' + 'a');
    else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
      free(c);
      return NULL;
    }
  }
  return c;
}

/* Adds the comma-separated ids of one --app-id (duplicates once). 0, or EXIT_USAGE said. */
static int app_ids_add(const char *arg, char **ids, size_t *n) {
  _cleanup_free_ char *copy = strdup(arg);
  if (!copy)
    return usage_error("out of memory");
  char *save = NULL;
  size_t added = 0;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *id = app_id_norm(t);
    if (!id)
      return usage_error("--app-id wants hex (an even number of digits, at most 128; several "
                         "separated by ','), not '%s'", t);
    bool dup = false;
    for (size_t i = 0; i < *n && !dup; i++)
      dup = str_eq(ids[i], id);
    if (dup) {
      free(id);
    } else if (*n == APP_IDS_MAX) {
      free(id);
      return usage_error("at most %d app ids", APP_IDS_MAX);
    } else {
      ids[(*n)++] = id;
    }
    added++;
  }
  if (!added)
    return usage_error("--app-id wants hex, not '%s'", arg);
  return 0;
}

static void sleep_s(long s) {
  struct timespec ts = {.tv_sec = s};
  while (!stop_flag && nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

int main(int argc, char **argv) {
  enum {
    OPT_CRTSH = 0x100,
    OPT_STATE,
    OPT_INTERVAL,
    OPT_ONCE,
    OPT_WEBHOOK,
    OPT_SIM,
    OPT_SIM_DIR,
    OPT_CA,
    OPT_PCCS,
    OPT_APP,
    OPT_ANY_APP,
    OPT_REQUIRE,
  };
  static const struct option opts[] = {{"tproxy-uri", required_argument, NULL, 't'},
                                       {"gateway", required_argument, NULL, 'g'},
                                       {"domain", required_argument, NULL, 'd'},
                                       {"crtsh-url", required_argument, NULL, OPT_CRTSH},
                                       {"state", required_argument, NULL, OPT_STATE},
                                       {"interval", required_argument, NULL, OPT_INTERVAL},
                                       {"once", no_argument, NULL, OPT_ONCE},
                                       {"webhook", required_argument, NULL, OPT_WEBHOOK},
                                       {"allow-simulator", no_argument, NULL, OPT_SIM},
                                       {"sim-dir", required_argument, NULL, OPT_SIM_DIR},
                                       {"tproxy-ca", required_argument, NULL, OPT_CA},
                                       {"pccs-url", required_argument, NULL, OPT_PCCS},
                                       {"app-id", required_argument, NULL, OPT_APP},
                                       {"any-app", no_argument, NULL, OPT_ANY_APP},
                                       {"require-quotes", no_argument, NULL, OPT_REQUIRE},
                                       {"help", no_argument, NULL, 'h'},
                                       {}};
  log_ident_set("ct_monitor");
  (void)log_level_from_env();
  struct ct_options o = {.crtsh_url = "https://crt.sh", .pccs_url = DEFAULT_PCCS,
                         .stop = &stop_flag};
  const char *sim_dir = NULL;
  bool allow_sim = false;
  long interval = 60;
  char *app_ids[APP_IDS_MAX];
  size_t n_app = 0;
  bool any_app = false;
  int c, rc = EXIT_USAGE;
  while ((c = getopt_long(argc, argv, "t:g:d:h", opts, NULL)) != -1) {
    switch (c) {
    case 't':
    case 'g':
      if (o.tproxy_uri && !str_eq(o.tproxy_uri, optarg)) {
        rc = usage_error("-t/--tproxy-uri and -g/--gateway name the same thing: give one");
        goto out;
      }
      o.tproxy_uri = optarg;
      break;
    case 'd':
      o.domain = optarg;
      break;
    case OPT_CRTSH:
      o.crtsh_url = optarg;
      break;
    case OPT_STATE:
      o.state_path = optarg;
      break;
    case OPT_INTERVAL: {
      int64_t v;
      if (str_to_i64(optarg, &v) < 0 || v < 1 || v > INTERVAL_MAX) {
        rc = usage_error("--interval wants seconds from 1 to %ld, not '%s'", INTERVAL_MAX,
                         optarg);
        goto out;
      }
      interval = (long)v;
      break;
    }
    case OPT_ONCE:
      o.once = true;
      break;
    case OPT_WEBHOOK:
      o.webhook = optarg;
      break;
    case OPT_SIM:
      allow_sim = true;
      break;
    case OPT_SIM_DIR:
      sim_dir = optarg;
      break;
    case OPT_CA:
      o.tproxy_ca = optarg;
      break;
    case OPT_PCCS:
      o.pccs_url = optarg;
      break;
    case OPT_APP:
      if ((rc = app_ids_add(optarg, app_ids, &n_app)) != 0)
        goto out;
      rc = EXIT_USAGE;
      break;
    case OPT_ANY_APP:
      any_app = true;
      break;
    case OPT_REQUIRE:
      o.require_quotes = true;
      break;
    case 'h':
      usage(stdout);
      rc = 0;
      goto out;
    default:
      usage(stderr);
      goto out;
    }
  }
  if (optind != argc) {
    rc = usage_error("unexpected argument '%s'", argv[optind]);
    goto out;
  }
  if (!o.tproxy_uri || !is_http_url(o.tproxy_uri)) {
    rc = usage_error("-t/--tproxy-uri URL is required (http:// or https://)");
    goto out;
  }
  if (!o.domain) {
    rc = usage_error("-d/--domain DOMAIN is required");
    goto out;
  }
  if (!ct_domain_valid(o.domain)) {
    rc = usage_error("invalid domain '%s'", o.domain);
    goto out;
  }
  if (!is_http_url(o.crtsh_url) || (o.webhook && !is_http_url(o.webhook)) ||
      !is_http_url(o.pccs_url)) {
    rc = usage_error("--crtsh-url, --webhook and --pccs-url want http:// or https:// URLs");
    goto out;
  }
  if (sim_dir && !allow_sim) {
    rc = usage_error("--sim-dir needs --allow-simulator");
    goto out;
  }
  if (allow_sim) {
    if (!sim_dir)
      sim_dir = getenv("DSTACK_SIM_DIR");
    if (str_isempty(sim_dir)) {
      rc = usage_error("--allow-simulator needs --sim-dir DIR or $DSTACK_SIM_DIR");
      goto out;
    }
    o.sim_dir = sim_dir;
  }
  if (!n_app && !any_app) {
    rc = usage_error("no TD is trusted by default: give --app-id HEX (tproxy's app id) so that "
                     "only its quotes count, or --any-app to count a quote from any genuine TD");
    goto out;
  }
  if (n_app && any_app) {
    rc = usage_error("--app-id and --any-app contradict each other: give one");
    goto out;
  }
  o.app_ids = app_ids;
  o.n_app_ids = n_app;
  o.any_app = any_app;

  rc = EXIT_SETUP;
  umask(077);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  if (o.tproxy_ca && access(o.tproxy_ca, R_OK) < 0) {
    fprintf(stderr, "ct_monitor: --tproxy-ca %s: %s\n", o.tproxy_ca, strerror(errno));
    goto out;
  }
  char err[768] = "";
  struct ct_monitor *m = NULL;
  int r = ct_monitor_new(&o, &m, err, sizeof(err));
  if (r < 0) {
    fprintf(stderr, "ct_monitor: %s\n", err[0] ? err : strerror(-r));
    goto out;
  }
  log_info("watching %s on %s against the keys of %s", o.domain, o.crtsh_url, o.tproxy_uri);
  if (!o.tproxy_ca)
    log_warn("tproxy's TLS certificate is not verified (as upstream): whoever sits between "
             "here and tproxy can answer for it, and only quoted keys resist that; "
             "--tproxy-ca FILE verifies it");
  log_info("quotes: trusting Intel's SGX root CA, collateral from %s", o.pccs_url);
  if (o.sim_dir)
    log_warn("quotes: ALSO trusting the simulated TDX platform in %s (tests only)", o.sim_dir);
  if (any_app)
    log_warn("quotes: --any-app, so a quote from ANY genuine TD counts, including one the "
             "tproxy host runs itself: pin tproxy's app with --app-id instead");
  else
    log_info("quotes: counting only those of app%s %s%s", n_app > 1 ? "s" : "", app_ids[0],
             n_app > 1 ? " and more (--app-id)" : "");
  if (!o.state_path)
    log_info("no --state: the last checked id is kept in memory only");

  long fails = 0;
  for (;;) {
    struct ct_round res;
    ct_monitor_round(m, &res);
    if (res.error)
      fails++;
    else
      fails = 0;
    if (!res.error || res.alarms)
      log_info("round: %zu crt.sh entries, %zu certificates checked, %zu alarm(s)%s",
               res.entries, res.checked, res.alarms, res.error ? ", then a failure" : "");
    if (o.once) {
      rc = res.alarms ? EXIT_ALARM : res.error ? EXIT_ROUND : 0;
      break;
    }
    if (stop_flag) {
      rc = 0;
      break;
    }
    long wait = interval;
    if (fails) {
      long cap = interval > BACKOFF_MAX_S ? interval : BACKOFF_MAX_S;
      for (long i = 1; i < fails && wait < cap; i++)
        wait *= 2;
      if (wait > cap)
        wait = cap;
      log_warn("round failed (%ld in a row): next try in %ld s", fails, wait);
    } else if (res.left && wait > 5) {
      wait = 5;
    }
    sleep_s(wait);
    if (stop_flag) {
      rc = 0;
      break;
    }
  }
  ct_monitor_free(m);
out:
  for (size_t i = 0; i < n_app; i++)
    free(app_ids[i]);
  return rc;
}

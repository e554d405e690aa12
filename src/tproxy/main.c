/* tproxy: registers attested CVMs as WireGuard peers and routes TLS to them by SNI. */
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "collateral/dcap_fetch.h"
#include "base/cli.h"
#include "base/log.h"
#include "base/str.h"
#include "tproxy_certs.h"
#include "tproxy_dev.h"
#include "tproxy_dns.h"
#include "tproxy_fdlimit.h"
#include "daemon/daemon.h"
#include "net/loop.h"
#include "tproxy_proxy.h"
#include "ratls/ratls_verify.h"
#include "tproxy_server.h"
#include "tproxy.h"
#include "tproxy_wgproc.h"

#define EXIT_USAGE CLI_EXIT_USAGE
#define EXIT_CONFIG CLI_EXIT_CONFIG
#define DNS_CACHE_ENTRIES 4096

static void usage(FILE *f) {
  fprintf(f,
          "Usage: tproxy [options]\n"
          "\n"
          "  -c, --config FILE   read tproxy.toml FILE (on top of the defaults, or of\n"
          "                      DIR/tproxy.toml in dev mode)\n"
          "      --dev DIR       dev mode: simulated TDX trusted, self-signed *.app.localhost\n"
          "                      certificate, state and WireGuard under DIR, loopback listeners\n"
          "                      on free ports\n"
          "      --dump-config   print the effective configuration and exit\n"
          "      --check-config  validate the configuration and the certificates, then exit\n"
          "  -h, --help          this text\n"
          "\n"
          "Listeners are announced on stdout: 'listening https://ADDR:PORT' (RPC and dashboard)\n"
          "and 'listening tls://ADDR:PORT' (the proxy). SIGHUP reloads the proxy certificate.\n"
          "Logging: DSTACK_LOG=error|warn|info|debug (default from log_level).\n");
}

struct daemon {
  struct tproxy t;
  struct tproxy_server *srv;
  struct tproxy_dns_cache *dns_cache;
  struct event *poll_ev, *cert_ev, *hup_ev;
  unsigned pipe_pool; /* idle splice pipes per proxy worker (fdlimit.h) */
};

/* Fits the RPC server's and the proxy's connection caps to RLIMIT_NOFILE (raised to its hard
 * limit first): a cap that does not fit is lowered with a warning; a limit too small to serve
 * is refused. */
static int fit_fd_limit(struct tproxy_config *c, unsigned *ret_pipe_pool) {
  uint64_t nofile;
  struct tproxy_fd_plan p;
  int r = tproxy_fdlimit_raise(&nofile);
  if (r < 0)
    return log_errno(r, "reading RLIMIT_NOFILE");
  unsigned workers = tproxy_proxy_workers_resolve(c->workers);
  r = tproxy_fdlimit_plan(nofile, workers, c->max_conns, c->proxy_max_conns, &p);
  if (r < 0) {
    log_error("RLIMIT_NOFILE is %llu: too few descriptors to serve (tproxy keeps %u for itself "
              "with %u proxy workers, and needs at least %d more for connections); raise it "
              "(ulimit -n, LimitNOFILE=)",
              (unsigned long long)nofile, p.reserve, workers,
              TPROXY_FD_MIN_CONNS * (TPROXY_FDS_PER_CONN + 1));
    return r;
  }
  if (p.rpc_conns < c->max_conns) {
    log_warn("max_conns %u (RPC) does not fit in RLIMIT_NOFILE %llu next to the proxy: using %u",
             c->max_conns, (unsigned long long)nofile, p.rpc_conns);
    c->max_conns = p.rpc_conns;
  }
  if (p.proxy_conns < c->proxy_max_conns) {
    log_warn("[core.proxy] max_conns %u needs %d descriptors per connection, more than "
             "RLIMIT_NOFILE %llu leaves: using %u (raise the limit to allow more)",
             c->proxy_max_conns, TPROXY_FDS_PER_CONN, (unsigned long long)nofile, p.proxy_conns);
    c->proxy_max_conns = p.proxy_conns;
  }
  *ret_pipe_pool = p.pipe_pool;
  return 0;
}

static void poll_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  struct tproxy *t = arg;
  (void)tproxy_wgproc_reap(t->wgproc); /* in case a SIGCHLD was missed */
  (void)tproxy_registry_poll(t->reg, tproxy_now(t));
}

/* Dev mode's wireguard-go was started again: a new, empty interface gets every peer. */
static void wg_up_cb(void *arg) {
  struct tproxy *t = arg;
  if (t->reg->wg)
    wg_iface_invalidate(t->reg->wg);
  (void)tproxy_registry_sync(t->reg);
}

static void cert_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  (void)tproxy_certs_reload(arg, false);
}

static void hup_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  log_info("SIGHUP: reloading the proxy certificate");
  (void)tproxy_certs_reload(arg, true);
}

static int open_state(struct daemon *d, char *err, size_t errlen) {
  struct tproxy *t = &d->t;
  int r;
  t->started = (int64_t)time(NULL);
  if ((r = tproxy_table_init(&t->table)) < 0)
    return r;
  if ((r = tproxy_certs_new(t->cfg->proxy_cert_chain, t->cfg->proxy_cert_key, &t->certs, err,
                            errlen)) < 0)
    return r;
  if ((r = tproxy_verifier_new(t->cfg, &t->verifier, err, errlen)) < 0)
    return r;
  return tproxy_registry_open(t->cfg, &t->table, &t->reg, err, errlen);
}

static void close_state(struct daemon *d) {
  struct tproxy *t = &d->t;
  tproxy_proxy_stop(t->proxy);
  t->proxy = NULL;
  tproxy_server_free(d->srv);
  tproxy_registry_free(t->reg);
  if (t->verifier)
    ratls_verifier_free(t->verifier);
  if (t->certs)
    tproxy_certs_free(t->certs);
  if (d->dns_cache)
    tproxy_dns_cache_free(d->dns_cache);
  if (t->table.cur)
    tproxy_table_destroy(&t->table);
}

static int serve(struct daemon *d) {
  struct tproxy *t = &d->t;
  const struct tproxy_config *c = t->cfg;
  struct event_base *base = event_base_new();
  char err[512] = "";
  int ret = 1, r;
  if (!base) {
    fprintf(stderr, "tproxy: cannot create the event loop\n");
    return 1;
  }
  if ((r = tproxy_dns_cache_new(DNS_CACHE_ENTRIES, &d->dns_cache)) < 0) {
    fprintf(stderr, "tproxy: out of memory\n");
    goto out;
  }
  struct tproxy_proxy_opts po = {
      .listen_addr = c->listen_addr,
      .listen_port = c->listen_port,
      .workers = c->workers,
      .max_conns = c->proxy_max_conns,
      .max_conns_per_app = c->proxy_max_conns_per_app,
      .pipe_pool = d->pipe_pool,
      .connect_timeout_ms = c->connect_timeout_ms,
      .handshake_timeout_ms = c->handshake_timeout_ms,
      .idle_timeout_s = c->idle_timeout_s,
      .base_domain = c->base_domain,
      .table = &t->table,
      .certs = t->certs,
      .dns_cache = d->dns_cache,
      .dns_servers = c->dns_servers,
      .dns_legacy = c->dns_legacy,
      .dns_timeout_ms = c->dns_timeout_ms,
      .dns_min_ttl = c->dns_min_ttl,
      .dns_max_ttl = c->dns_max_ttl,
      .dns_neg_ttl = c->dns_neg_ttl,
  };
  if ((r = tproxy_proxy_start(&po, &t->proxy, err, sizeof(err))) < 0) {
    fprintf(stderr, "tproxy: %s\n", err[0] ? err : strerror(-r));
    goto out;
  }
  if ((r = tproxy_server_new(t, base, stdout, &d->srv, err, sizeof(err))) < 0) {
    fprintf(stderr, "tproxy: %s\n", err[0] ? err : strerror(-r));
    goto out;
  }
  net_listening_print(stdout, "tls", c->listen_addr, tproxy_proxy_port(t->proxy));
  if (t->wgproc && tproxy_wgproc_watch(t->wgproc, base, wg_up_cb, t) < 0) {
    fprintf(stderr, "tproxy: cannot watch wireguard-go\n");
    goto out;
  }
  struct timeval pt = {c->wg_poll_interval, 0}, ct = {c->cert_poll_s, 0};
  d->poll_ev = event_new(base, -1, EV_PERSIST, poll_cb, t);
  d->cert_ev = event_new(base, -1, EV_PERSIST, cert_cb, t->certs);
  d->hup_ev = evsignal_new(base, SIGHUP, hup_cb, t->certs);
  if (!d->poll_ev || !d->cert_ev || !d->hup_ev || event_add(d->poll_ev, &pt) < 0 ||
      event_add(d->cert_ev, &ct) < 0 || event_add(d->hup_ev, NULL) < 0) {
    fprintf(stderr, "tproxy: cannot set up timers\n");
    goto out;
  }
  log_info("tproxy serving: RPC %s:%u, proxy %s:%u (%u workers), base domain %s, WireGuard %s "
           "(%s)%s; at most %u proxied connections",
           c->address, d->srv->port, c->listen_addr, tproxy_proxy_port(t->proxy),
           tproxy_proxy_workers(t->proxy), c->base_domain, c->wg_interface, c->wg_mode,
           c->dev ? ", dev mode" : "", c->proxy_max_conns);
  if (!str_isempty(c->simulator_dir))
    log_warn("quotes of the simulated TDX platform at %s are trusted ([core.quote] "
             "simulator_dir): dev only",
             c->simulator_dir);
  else
    log_info("quotes are trusted only when Intel's root CA signs them");
  ret = daemon_run("tproxy", base);
out:
  /* Workers first: they read the table and the certificates. */
  tproxy_proxy_stop(t->proxy);
  t->proxy = NULL;
  tproxy_server_free(d->srv);
  d->srv = NULL;
  if (d->poll_ev)
    event_free(d->poll_ev);
  if (d->cert_ev)
    event_free(d->cert_ev);
  if (d->hup_ev)
    event_free(d->hup_ev);
  if (t->wgproc)
    (void)tproxy_wgproc_watch(t->wgproc, NULL, NULL, NULL);
  net_loop_free(base);
  return ret;
}

DAEMON_CONFIG_OPS(tproxy_config_ops, struct tproxy_config, tproxy_config_init, tproxy_dev_config, tproxy_config_apply_file, tproxy_config_check,
                  tproxy_config_dump, tproxy_config_free, log_level);

int main(int argc, char **argv) {
  const struct daemon_def def = {.ident = "tproxy", .usage = usage,
                                 .config = &tproxy_config_ops};
  struct tproxy_config cfg;
  struct daemon_args args;
  int ret = daemon_start(&def, argc, argv, &cfg, &args);
  if (ret != DAEMON_CONTINUE)
    return ret;
  ret = 1;
  char err[512] = "";
  int r;
  struct daemon d = {.t = {.cfg = &cfg}};
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (fit_fd_limit(&cfg, &d.pipe_pool) < 0) {
    ret = EXIT_CONFIG;
    goto out;
  }
  if (args.check) {
    struct tproxy_certs *certs = NULL;
    r = tproxy_certs_new(cfg.proxy_cert_chain, cfg.proxy_cert_key, &certs, err, sizeof(err));
    if (r < 0) {
      fprintf(stderr, "tproxy: [core.proxy] certificate: %s\n", err[0] ? err : strerror(-r));
      daemon_config_hint("tproxy", &args);
      ret = EXIT_CONFIG;
      goto out;
    }
    tproxy_certs_free(certs);
    printf("configuration OK (base domain %s, WireGuard %s, %s)\n", cfg.base_domain,
           cfg.wg_interface, cfg.wg_mode);
    ret = 0;
    goto out;
  }
  if (args.dev_dir &&
      (r = tproxy_dev_wg_start(args.dev_dir, &cfg, &d.t.wgproc, err, sizeof(err))) < 0) {
    fprintf(stderr, "tproxy: dev mode: %s\n", err);
    goto out;
  }
  if ((r = open_state(&d, err, sizeof(err))) < 0) {
    fprintf(stderr, "tproxy: %s\n", err[0] ? err : strerror(-r));
    daemon_config_hint("tproxy", &args);
    goto out;
  }
  ret = serve(&d);
out:
  close_state(&d);
  tproxy_wgproc_stop(d.t.wgproc);
  tproxy_config_free(&cfg);
  daemon_args_free(&args);
  dcap_fetch_caches_free();
  curl_global_cleanup();
  return ret;
}

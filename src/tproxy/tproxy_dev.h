/* tproxy --dev DIR: everything a local run needs, created under DIR when absent and reused
 * afterwards:
 *   DIR/tproxy.toml        the configuration (loopback listeners on free ports, state under DIR,
 *                          the simulator trusted), edit freely
 *   DIR/sim                the simulated TDX platform ($DSTACK_SIM_DIR wins)
 *   DIR/certs/ca.{cert,key}      the CA that CVM client certificates must chain to
 *   DIR/certs/rpc.{cert,key}     the RPC server certificate (signed by that CA, for "localhost")
 *   DIR/certbot/live/{cert,key}.pem  a self-signed wildcard for *.<base_domain> (app.localhost)
 *   DIR/tproxy.db          registrations
 * The WireGuard interface is run by wireguard-go (started and watched by tproxy, its control
 * socket and pid file under DIR/wg) when tproxy runs as root and wireguard-go is installed;
 * otherwise [core.wg] mode is "none" and registrations are stored and routed without an
 * interface: CVMs then get loopback addresses (TPROXY_DEV_LOOPBACK_RANGE), on which a backend on
 * this machine can listen without any set-up, so the proxy reaches it. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "tproxy_config.h"
#include "tproxy_wgproc.h"

/* Client addresses of dev mode: over WireGuard, and without it (loopback addresses other than
 * 127.0.0.1 need no set-up on Linux). */
#define TPROXY_DEV_WG_IP "10.4.0.1"
#define TPROXY_DEV_WG_RANGE "10.4.0.0/16"
#define TPROXY_DEV_LOOPBACK_IP "127.8.0.1"
#define TPROXY_DEV_LOOPBACK_RANGE "127.8.0.0/16"

int tproxy_dev_config(struct tproxy_config *c, const char *dir, char *err, size_t errlen);

/* Starts wireguard-go for the dev interface (wgproc.h: a wireguard-go left behind by a killed
 * tproxy is stopped first) when the config says uapi under DIR/wg, and addresses it. *ret =
 * NULL when nothing was started; stop it with tproxy_wgproc_stop. */
int tproxy_dev_wg_start(const char *dir, const struct tproxy_config *c,
                        struct tproxy_wgproc **ret, char *err, size_t errlen);

/* teepod.toml: one table of options drives the defaults, the parser and --dump-config.
 *
 * Top level (seed names): image_path, run_path, qemu_path ("" = qemu-system-x86_64 on PATH),
 *   address + port (TCP listener; address "" = none; seed port 8080), and ours: unix_socket
 *   (a path; "" = none), log_level, platform ("auto", "tdx", "sim"; auto = tdx when the host
 *   has TDX, else sim), accel ("auto", "kvm", "tcg": how a non-TDX VM runs), sim_dir (the
 *   simulated platform whose PCK chain signs quotes with platform = sim), qemu_img_path,
 *   max_conns, request_timeout
 * [auth]          enabled, token_file (one token per line, 0600): requests other than /health
 *                 need "X-Admin-Token: T", "Authorization: Bearer T" or basic auth with T as
 *                 the password
 * [cvm]           kms_url, kms_urls, tproxy_url, gateway_urls, pccs_url, docker_registry,
 *                 ca_cert, tmp_ca_cert, tmp_ca_key (seed-era guest files), max_disk_size (GB),
 *                 cid_start, cid_pool_size, max_allocable_vcpu, max_allocable_memory_in_mb
 *                 (0 = what the host has), shutdown_timeout (s before a graceful stop kills),
 *                 qmp_timeout, max_vms, kms_pubkeys (the KMS root k256 keys env public keys
 *                 must be signed by; empty: the KMS's own GetMeta answer, which only shows
 *                 that the reply is self-consistent)
 * [cvm.port_mapping]  enabled, address, range ("tcp:1024-65535" entries)
 * [cvm.auto_restart]  enabled, interval (s, first back-off), max_backoff (s), max_retries
 * [cvm.log]           max_bytes, max_backups (serial log rotation)
 * [gateway]       base_domain, port, tappd_port (seed) / agent_port (newest; the same value)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct teepod_port_range {
  bool udp;
  uint16_t from, to;
};

struct teepod_config {
  char *image_path;
  char *run_path;
  char *qemu_path;
  char *qemu_img_path;
  char *address;
  uint16_t port;
  char *unix_socket;
  char *log_level;
  char *platform;
  char *accel;
  char *sim_dir;
  uint32_t max_conns;
  uint32_t request_timeout;
  /* [auth] */
  bool auth_enabled;
  char *auth_token_file;
  /* [cvm] */
  char *kms_url;
  char **kms_urls;
  char *tproxy_url;
  char **gateway_urls;
  char *pccs_url;
  char *docker_registry;
  char **kms_pubkeys;         /* hex compressed secp256k1 keys the KMS root key must be one of */
  char *ca_cert;
  char *tmp_ca_cert;
  char *tmp_ca_key;
  uint32_t max_disk_size;
  uint32_t cid_start;
  uint32_t cid_pool_size;
  uint32_t max_allocable_vcpu;
  uint32_t max_allocable_memory_in_mb;
  uint32_t shutdown_timeout;
  uint32_t qmp_timeout;
  uint32_t max_vms;
  /* [cvm.port_mapping] */
  bool pm_enabled;
  char *pm_address;
  char **pm_range;
  /* [cvm.auto_restart] */
  bool ar_enabled;
  uint32_t ar_interval;
  uint32_t ar_max_backoff;
  uint32_t ar_max_retries;
  /* [cvm.log] */
  uint64_t log_max_bytes;
  uint32_t log_max_backups;
  /* [gateway] */
  char *base_domain;
  uint16_t gw_port;
  uint16_t tappd_port;
  uint16_t agent_port;
  /* derived by the check */
  struct teepod_port_range ranges[8];
  size_t n_ranges;
};

struct conftab;
const struct conftab *teepod_config_table(void);

int teepod_config_init(struct teepod_config *c);
/* --dev DIR: run and image folders, sockets and the simulated platform under DIR; loopback
 * TCP on a free port; platform sim. DIR/teepod.toml, when present, is applied on top. */
int teepod_config_init_dev(struct teepod_config *c, const char *dir, char *err, size_t errlen);
void teepod_config_free(struct teepod_config *c);
int teepod_config_apply(struct teepod_config *c, const char *text, size_t len, char *err,
                        size_t errlen);
int teepod_config_apply_file(struct teepod_config *c, const char *path, char *err, size_t errlen);
/* Semantic checks (fills the derived fields); -EINVAL with a message. */
int teepod_config_check(struct teepod_config *c, char *err, size_t errlen);
int teepod_config_dump(const struct teepod_config *c, struct buf *out);

/* The check also completes the URL lists: kms_urls gets kms_url, gateway_urls gets tproxy_url
 * when the list is empty and the single URL is set (seed configurations), and agent_port takes
 * tappd_port when only the seed key is set. */

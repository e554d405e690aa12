/* tboot: the program that boots a dstack app inside the CVM (docs/tboot.md).
 *
 * Stage 1 (tboot-init, the initramfs /init) opens the dm-verity root and executes tboot as PID 1
 * in it. tboot then runs the boot steps in order, each in its own file:
 *
 *   bootcfg.c   read the config disk once into memory (app-compose.json, .sys-config.json,
 *               .encrypted-env, .user-config, .instance_info) and check it
 *   measure.c   RTMR3 runtime events (system-preparing, app-id, compose-hash, instance-id,
 *               sys-config, storage-options, boot-mr-done, key-provider, storage-fs,
 *               system-ready), each logged under the event-log lock with its extend
 *   kmsclient.c GetTempCaCert, an RA-TLS client certificate from this TD, GetAppKey over mTLS
 *   disk.c      the LUKS2 data disk (header checked before cryptsetup sees it; a failed open
 *               never formats), ext4 on it at /data
 *   gateway.c   app certificate, Tproxy.RegisterCvm, WireGuard up
 *   app.c       the container runtime, tappd, and the compose app in /tapp
 *   pid1.c      what PID 1 owes the system: mounts, reaping, the power button, shutdown
 *
 * Everything the host hands over is hostile input: read once, bounded, validated, and measured
 * before it shapes anything. Progress and errors go to the console and to teepod over the host
 * channel. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "attest/app_compose.h"
#include "base/buf.h"
#include "tboot_sysconfig.h"

#define TBOOT_VERSION "0.1.0"

const char *tboot_version(void);

/* Where things live in the guest. Fixed in the image; tests of single steps may point them
 * elsewhere. */
struct tboot_paths {
  const char *config_serial;  /* virtio-blk serial of the config disk ("dstack-config") */
  const char *data_serial;    /* of the data disk ("dstack-data") */
  const char *shared_mnt;     /* the config disk, mounted read-only (/dstack/.host-shared) */
  const char *work;           /* tboot's own files, 0700 (/run/dstack) */
  const char *app_dir;        /* the app's working directory (/tapp) */
  const char *data_mnt;       /* the decrypted data disk (/data) */
  const char *data_mapper;    /* device-mapper name of the opened disk ("dstack_data") */
};

extern const struct tboot_paths tboot_default_paths;

/* The boot's state, filled step by step. */
struct tboot {
  const struct tboot_paths *paths;
  struct tee *tee;
  const char *tee_name; /* "tdx" or "hostch" */
  bool have_host;       /* the host channel answered */

  /* inputs from the config disk (copies; the disk is never read twice) */
  struct buf compose;   /* app-compose.json bytes, exactly as measured */
  struct app_compose_info app;
  char *compose_file;   /* docker_compose_file of the document (NULL for bash runners) */
  char *app_name;
  char **allowed_envs;
  size_t n_allowed_envs;
  char *key_provider_id_pin; /* app-compose key_provider_id (hex), or NULL */
  struct sysconfig sys;
  struct buf sys_payload;    /* canonical sys-config, as measured */
  struct buf encrypted_env;
  struct buf user_config;
  uint8_t instance_seed[20];
  uint8_t instance_id[20];
  bool have_instance_id;     /* false with no_instance_id */

  /* keys */
  bool have_keys;            /* from the KMS */
  json_t *kms_reply;         /* GetAppKey's JSON reply (holds secrets) */
  struct buf disk_key;       /* secret */
  uint8_t env_key[32];       /* secret */
  bool have_env_key;
  char *root_ca_pem;         /* the KMS root CA */
  char *kms_root_pubkey_hex; /* hex of its SubjectPublicKeyInfo DER: the key provider id */
  char *kms_url;             /* the KMS that answered */
  struct buf os_image_hash;

  /* progress */
  bool disk_ready;
  bool gateway_ready;
  char *wg_ip;
};

void tboot_free(struct tboot *t);

/* Progress and errors: one console line, and the host channel when it answers. */
void tboot_progress(struct tboot *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a boot error (console + boot.error) and returns r. */
int tboot_fail(struct tboot *t, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copies at most outlen-1 bytes of peer-chosen text (an HTTP body, a reply) into out with
 * control bytes and non-ASCII replaced by '?', so it cannot forge console or log lines. */
void tboot_printable(const void *data, size_t len, char *out, size_t outlen);

/* POSTs body (JSON) to <url>/prpc/<method>?json and parses the reply (a JSON object, at most
 * o->max_body). A non-200 answer is -EACCES (400, 403: a refusal) or -EIO, with why naming the
 * status and the peer's text (printable only). */
struct http_client_opts;
int tboot_post_json(const char *url, const char *method, const char *body,
                    const struct http_client_opts *o, json_t **ret, char *why, size_t whylen);

/* bootcfg.c */
int tboot_config_load(struct tboot *t);
/* The block device (/dev/vdX) whose virtio serial is serial; -ENOENT after wait_ms. */
int tboot_find_disk(const char *serial, int wait_ms, char **ret_dev);

/* measure.c */
int tboot_measure(struct tboot *t, const char *name, const void *payload, size_t len);
int tboot_measure_boot(struct tboot *t);           /* system-preparing .. boot-mr-done */
int tboot_measure_keys(struct tboot *t);           /* os-image-hash, key-provider */

/* kmsclient.c */
int tboot_keys_fetch(struct tboot *t);

/* disk.c */
int tboot_disk_setup(struct tboot *t);
void tboot_disk_close(struct tboot *t);

/* gateway.c */
int tboot_gateway_setup(struct tboot *t);

/* app.c */
int tboot_app_start(struct tboot *t);
void tboot_app_stop(struct tboot *t);
/* PID 1's reaper collected pid: forget it if it is one of the app's daemons. */
void tboot_app_reaped(pid_t pid);

/* proc.c: running the tools tboot needs (cryptsetup, mkfs, ip, wg, podman, docker-compose).
 * Secrets go through stdin, never argv. */
struct tboot_cmd {
  const char *const *argv;
  const char *const *envp;  /* NULL = tboot's environment */
  const char *cwd;          /* NULL = / */
  const void *input;        /* written to stdin, then closed; NULL = /dev/null */
  size_t input_len;
  int timeout_ms;           /* killed after this; 0 = 60 s */
  struct buf *output;       /* stdout + stderr captured (capped by the buf); NULL = console */
};
/* Runs c and waits. 0 when it exited 0; -ECHILD (status in *ret_status when not NULL) for
 * another exit; -ETIMEDOUT when killed for time. */
int tboot_cmd_run(const struct tboot_cmd *c, int *ret_status);
/* Starts argv in the background with its output on the console; *ret_pid. */
int tboot_cmd_spawn(const char *const *argv, const char *const *envp, const char *cwd,
                    pid_t *ret_pid);
/* Waits for pid up to timeout_ms, then SIGTERM, then SIGKILL after 5 s more. */
void tboot_cmd_stop(pid_t pid, int timeout_ms);
uint64_t tboot_now_ms(void);

/* pid1.c */
int tboot_pid1_setup(void);
/* Loads modules with modprobe (missing ones are logged, not fatal). */
void tboot_modules_load(const char *const *names);
/* A development image (/etc/dstack/dev, built with guest/build-image.sh --dev, measured as a
 * different image) gets a root shell on the serial console. */
void tboot_dev_shell(void);
/* Serves as PID 1 after the boot: reaps children and waits for the power button, SIGTERM,
 * SIGUSR1 or SIGPWR; then stops the app and powers off. Never returns when pid1. */
void tboot_pid1_run(struct tboot *t, bool pid1);

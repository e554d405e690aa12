/* The host channel of one VM (docs/teepod.md, "The host channel"): teepod connects to the
 * unix socket QEMU listens on for the guest's virtio-serial port and answers the guest's
 * requests, one JSON object per line. Everything the guest sends is hostile input: lines are
 * capped (TEEPOD_HOSTCH_LINE_MAX), the rate of lines is limited, texts are bounded and
 * sanitised before they reach Status or a file. */
#pragma once

#include <jansson.h>

struct teepod_vm;
struct teepod_hostch;

#define TEEPOD_HOSTCH_LINE_MAX ((size_t)65536)
#define TEEPOD_HOSTCH_RATE 200 /* lines per second, burst the same */
/* Tdx.Report/Quote/Extend and Notify instance.info/initialized/boot.error: per second, burst
 * twice that */
#define TEEPOD_HOSTCH_HEAVY_RATE 10

/* Connects to DIR/host.sock; -ECONNREFUSED/-ENOENT while QEMU has not created it yet. */
int teepod_hostch_open(struct teepod_vm *vm, struct teepod_hostch **ret);
/* The same over a connected socket (takes fd, also on failure): the guest's vsock connection. */
int teepod_hostch_attach(struct teepod_vm *vm, int fd, struct teepod_hostch **ret);
void teepod_hostch_free(struct teepod_hostch *ch);

/* With /dev/vhost-vsock: listens on vsock port TEEPOD_VSOCK_PORT for guests, each known by the
 * CID teepod gave its VM (a connection from an unknown CID is closed). ret NULL-safe free. */
#define TEEPOD_VSOCK_PORT 10000
struct teepod;
struct teepod_vsock;
int teepod_vsock_listen(struct teepod *tp, struct teepod_vsock **ret);
void teepod_vsock_free(struct teepod_vsock *v);

/* One request (exposed for the unit tests): sets *ret_result (a new reference) or returns < 0
 * with *ret_error (allocated). */
int teepod_hostch_dispatch(struct teepod_vm *vm, const char *method, json_t *params,
                           json_t **ret_result, char **ret_error);

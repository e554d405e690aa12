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

/* Connects to DIR/host.sock; -ECONNREFUSED/-ENOENT while QEMU has not created it yet. */
int teepod_hostch_open(struct teepod_vm *vm, struct teepod_hostch **ret);
void teepod_hostch_free(struct teepod_hostch *ch);

/* One request (exposed for the unit tests): sets *ret_result (a new reference) or returns < 0
 * with *ret_error (allocated). */
int teepod_hostch_dispatch(struct teepod_vm *vm, const char *method, json_t *params,
                           json_t **ret_result, char **ret_error);

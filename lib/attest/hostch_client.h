/* The guest side of teepod's host channel (docs/teepod.md "The host channel"): one JSON object
 * per line, at most HOSTCH_LINE_MAX bytes with its newline; the guest asks
 * {"id":N,"method":..,"params":{..}} and the host answers {"id":N,"result":{..}} or
 * {"id":N,"error":{"message":..}}.
 *
 * The channel is the virtio-serial port named HOSTCH_PORT_NAME. A virtio console port admits
 * one opener at a time and tboot, tappd and tdxctl all use it, so each call opens it, holds
 * flock(HOSTCH_LOCK) for the whole exchange and closes it again. Lines left over from an
 * earlier caller that gave up (other ids, a torn line) are skipped, a bounded number of them.
 * The host is not trusted: every reply is bounded and checked, and a host that stays silent
 * costs at most the caller's timeout.
 *
 * Errors: -ENODEV no channel; -ETIMEDOUT; -EREMOTEIO an error reply; -EBADMSG a bad reply (not
 * JSON, no result, over the cap, too many foreign lines); -EINVAL bad arguments; -EIO and other
 * errnos from the device. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTCH_PORT_NAME "org.dstack.host.0"
/* Override: a unix socket path (tests play teepod there) or a device path. */
#define HOSTCH_ENV "DSTACK_HOST_CHANNEL"
#define HOSTCH_LOCK "/run/dstack/hostch.lock"
/* Override of the lock's path (tests); its directory is created 0700 as well. */
#define HOSTCH_LOCK_ENV "DSTACK_HOST_CHANNEL_LOCK"
#define HOSTCH_LINE_MAX ((size_t)65536)
/* Lines with another id (or none) skipped while waiting for one reply. */
#define HOSTCH_MAX_SKIPPED 64
/* Longest error message kept from an error reply. */
#define HOSTCH_ERROR_MAX 1024

/* One request: params borrowed (NULL = {}); on success *ret_result is the reply's result
 * (caller decrefs). -ENODEV no channel; -ETIMEDOUT; -EREMOTEIO an error reply (ret_error,
 * allocated, set when not NULL); -EBADMSG a bad reply. */
int hostch_call(const char *method, json_t *params, int timeout_ms, json_t **ret_result,
                char **ret_error);
/* Notify{event, payload}; the result is ignored. */
int hostch_notify(const char *event, const char *payload, int timeout_ms);

/* The path of the channel: $HOSTCH_ENV when set, else the node in dev_root (NULL = "/dev") of
 * the virtio port named HOSTCH_PORT_NAME under sysfs_root (NULL = "/sys/class/virtio-ports"),
 * made with mknod (0600) from its `dev` file when devtmpfs has none. An existing node must be
 * that character device. -ENODEV when there is no such port. */
int hostch_find(const char *sysfs_root, const char *dev_root, char **ret_path);

/* One reply line (without its newline) checked against the id the guest sent:
 * 0 with *ret_result (a new reference) for a result, -EREMOTEIO with *ret_error (allocated,
 * when ret_error is not NULL) for an error reply, -EAGAIN for a line that is not the answer
 * (another id, no id, or not a JSON object: a leftover of an earlier caller), -EBADMSG for the
 * answer in a wrong shape or a line over HOSTCH_LINE_MAX. */
int hostch_reply_parse(const char *line, size_t len, int64_t id, json_t **ret_result,
                       char **ret_error);

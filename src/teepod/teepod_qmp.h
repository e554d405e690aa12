/* A small QMP client: connects to a VM's QMP socket, negotiates capabilities and runs one
 * command, all within timeout_ms (the loop waits at most that long; QEMU answers in
 * milliseconds). Replies are read line by line with a cap of 64 KiB per line. */
#pragma once

#include <stddef.h>

/* Runs {"execute": command}. 0 on {"return": ...}; -EIO with QEMU's error text in err. */
int teepod_qmp_command(const char *dir, const char *socket_name, const char *command,
                       unsigned timeout_ms,
                       char *err, size_t errlen);

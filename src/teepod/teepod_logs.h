/* GET /logs?id=&follow=&ansi=&lines=&ch=serial|stdout|stderr: a VM's serial console (serial.log)
 * or QEMU's own output (qemu.out; stdout and stderr share it). lines=N gives the last N lines;
 * follow=true keeps the stream open and sends what is appended (polled every 250 ms, a rotation
 * starts it over), with backpressure: nothing more is read while the client is behind.
 * ansi=false strips ANSI escape sequences, also across reads. At most TEEPOD_LOGS_FOLLOWERS
 * followers at a time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct http_request;
struct teepod;

#define TEEPOD_LOGS_FOLLOWERS 64
#define TEEPOD_LOGS_MAX_LINES 100000

void teepod_logs_handle(struct teepod *tp, struct http_request *req);

/* ANSI stripping state machine (exposed for the unit tests): feeds n bytes of in, appends the
 * bytes to keep to out (at most n). Returns the number written. */
struct teepod_ansi {
  int state;
};
size_t teepod_ansi_strip(struct teepod_ansi *a, const char *in, size_t n, char *out);

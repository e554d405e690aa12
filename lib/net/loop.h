/* Running a daemon's libevent loop: SIGINT/SIGTERM end it cleanly, and freeing the base first lets
 * libevent finish the deferred frees of connections closed by the servers (see http_server.h). */
#pragma once

#include <event2/event.h>
#include <stdio.h>

/* Dispatches base until SIGINT or SIGTERM or until the loop runs out of events. The signal number
 * that ended it (for the daemon to log), 0 when the loop ran out of events, or -ENOMEM when the
 * signal handlers cannot be installed. */
int net_loop_run(struct event_base *base);
/* One non-blocking pass, then event_base_free. Call after freeing the servers. NULL is fine. */
void net_loop_free(struct event_base *base);

/* The start-up line tests and scripts wait for: "listening SCHEME://ADDR:PORT" ("[ADDR]" for
 * IPv6), flushed. out NULL: nothing. */
void net_listening_print(FILE *out, const char *scheme, const char *addr, unsigned port);

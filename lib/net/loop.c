#include "net/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include "base/log.h"

struct loop_stop {
  struct event_base *base;
  int sig;
};

static void loop_on_signal(evutil_socket_t sig, short what, void *ud) {
  struct loop_stop *st = ud;
  (void)what;
  log_debug("signal %d: leaving the loop", (int)sig);
  st->sig = (int)sig;
  event_base_loopbreak(st->base);
}

int net_loop_run(struct event_base *base) {
  struct loop_stop st = {.base = base};
  struct event *sigint = evsignal_new(base, SIGINT, loop_on_signal, &st);
  struct event *sigterm = evsignal_new(base, SIGTERM, loop_on_signal, &st);
  int r = 0;
  if (!sigint || !sigterm || evsignal_add(sigint, NULL) < 0 || evsignal_add(sigterm, NULL) < 0)
    r = -ENOMEM;
  else {
    event_base_dispatch(base);
    r = st.sig;
  }
  if (sigint)
    event_free(sigint);
  if (sigterm)
    event_free(sigterm);
  return r;
}

void net_loop_free(struct event_base *base) {
  if (!base)
    return;
  event_base_loop(base, EVLOOP_NONBLOCK);
  event_base_free(base);
}

void net_listening_print(FILE *out, const char *scheme, const char *addr, unsigned port) {
  if (!out)
    return;
  bool v6 = strchr(addr, ':') != NULL;
  fprintf(out, "listening %s://%s%s%s:%u\n", scheme, v6 ? "[" : "", addr, v6 ? "]" : "", port);
  fflush(out);
}

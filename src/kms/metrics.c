/* Per-phase CPU accounting and the /metrics text. */
#include "kms_metrics.h"

#include <errno.h>
#include <time.h>

#include "kms_service.h"

/* A single run of the handshake state machine longer than this is not believed (the clock
 * went wrong, or a callback was missed): it is dropped rather than counted. */
#define HS_STEP_MAX_NS ((uint64_t)2 * 1000 * 1000 * 1000)

static int ctx_index = -1;

uint64_t kms_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void kms_phase_add(struct kms_phase *p, uint64_t t0) {
  uint64_t t = kms_cpu_ns();
  p->count++;
  if (t > t0)
    p->ns += t - t0;
}

/* OpenSSL calls this at the start of a handshake, at every state change inside the state
 * machine, when the state machine returns (finished, or waiting for the peer) and when the
 * handshake is done. The time from the first call of one run of the state machine (the start,
 * or the first state change after it was entered again) to its return is handshake work; the
 * clock is read only at those two points (it is a system call). */
static void info_cb(const SSL *ssl, int where, int ret) {
  (void)ret;
  if (ctx_index < 0 ||
      !(where & (SSL_CB_HANDSHAKE_START | SSL_CB_HANDSHAKE_DONE | SSL_CB_LOOP | SSL_CB_EXIT)))
    return;
  struct kms_metrics *m = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
  if (!m)
    return;
  if (where & SSL_CB_HANDSHAKE_DONE)
    m->tls.count++;
  if (where & SSL_CB_EXIT) {
    if (m->hs_ssl == ssl) {
      uint64_t t = kms_cpu_ns();
      if (t >= m->hs_t && t - m->hs_t <= HS_STEP_MAX_NS)
        m->tls.ns += t - m->hs_t;
    }
    m->hs_ssl = NULL;
  } else if (m->hs_ssl != ssl) {
    m->hs_ssl = ssl;
    m->hs_t = kms_cpu_ns();
  }
}

int kms_metrics_attach_tls(SSL_CTX *ctx, struct kms_metrics *m) {
  if (!ctx || !m)
    return -EINVAL;
  if (ctx_index < 0) {
    ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (ctx_index < 0)
      return -ENOMEM;
  }
  if (!SSL_CTX_set_ex_data(ctx, ctx_index, m))
    return -ENOMEM;
  SSL_CTX_set_info_callback(ctx, info_cb);
  return 0;
}

static int summary(struct buf *out, const char *name, const char *help,
                   const struct kms_phase *p) {
  return buf_printf(out,
                    "# HELP %s %s\n"
                    "# TYPE %s summary\n"
                    "%s_sum %.9f\n"
                    "%s_count %llu\n",
                    name, help, name, name, (double)p->ns / 1e9, name,
                    (unsigned long long)p->count);
}

static int counter(struct buf *out, const char *name, const char *help, uint64_t v) {
  return buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                    (unsigned long long)v);
}

int kms_metrics_render(const struct kms_metrics *m, const struct kms_stats *st, int64_t started,
                       struct buf *out) {
  struct timespec ts;
  double cpu = clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0
                   ? (double)ts.tv_sec + (double)ts.tv_nsec / 1e9
                   : 0.0;
  int r;
  if ((r = summary(out, "kms_tls_handshake_cpu_seconds",
                   "CPU time in TLS handshakes (count: completed handshakes).", &m->tls)) < 0 ||
      (r = summary(out, "kms_verify_cpu_seconds",
                   "CPU time verifying callers: RA-TLS evidence, DCAP quote, event log, policy.",
                   &m->verify)) < 0 ||
      (r = summary(out, "kms_derive_cpu_seconds",
                   "CPU time deriving keys and building replies (app certificates).",
                   &m->derive)) < 0 ||
      (r = counter(out, "kms_keys_granted_total", "GetAppKey requests answered with keys.",
                   st->granted)) < 0 ||
      (r = counter(out, "kms_requests_refused_total", "Requests refused.", st->refused)) < 0 ||
      (r = counter(out, "kms_replicas_onboarded_total", "Root keys handed to replicas.",
                   st->onboarded)) < 0 ||
      (r = buf_printf(out,
                      "# HELP process_cpu_seconds_total Total user and system CPU time.\n"
                      "# TYPE process_cpu_seconds_total counter\n"
                      "process_cpu_seconds_total %.9f\n"
                      "# HELP process_start_time_seconds Start time since the epoch.\n"
                      "# TYPE process_start_time_seconds gauge\n"
                      "process_start_time_seconds %lld\n",
                      cpu, (long long)started)) < 0)
    return r;
  return 0;
}

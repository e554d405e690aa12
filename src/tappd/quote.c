/* Quotes, report data rules and the event log (read, and EmitEvent's locked extend + append). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/boot_events.h"
#include "attest/quote.h"
#include "attest/tee.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/hash.h"
#include "tappd.h"

#define DEFAULT_HASH "sha512"
#define DEFAULT_PREFIX "app-data"
#define MAX_PREFIX 1024

static const struct {
  const char *name;
  enum hash_alg alg;
} report_hashes[] = {
    {"sha256", HASH_SHA256},       {"sha384", HASH_SHA384},       {"sha512", HASH_SHA512},
    {"sha3-256", HASH_SHA3_256},   {"sha3-384", HASH_SHA3_384},   {"sha3-512", HASH_SHA3_512},
    {"keccak256", HASH_KECCAK256}, {"keccak384", HASH_KECCAK384}, {"keccak512", HASH_KECCAK512},
};

const char *tappd_report_data_hash_name(const char *hash_algorithm) {
  return str_isempty(hash_algorithm) ? DEFAULT_HASH : hash_algorithm;
}

const char *tappd_report_data_prefix(const char *hash_algorithm, const char *prefix) {
  if (str_eq(tappd_report_data_hash_name(hash_algorithm), "raw"))
    return "";
  return str_isempty(prefix) ? DEFAULT_PREFIX : prefix;
}

int tappd_report_data(const char *hash_algorithm, const char *prefix, const uint8_t *data,
                      size_t len, uint8_t ret[64], char **ret_error) {
  const char *name = tappd_report_data_hash_name(hash_algorithm);
  if (str_eq(name, "raw")) {
    if (len != 64)
      return prpc_error(ret_error, -EINVAL,
                         "invalid content length: raw report data must be exactly 64 bytes, "
                         "got %zu",
                         len);
    memcpy(ret, data, 64);
    return 0;
  }
  prefix = tappd_report_data_prefix(name, prefix);
  if (strlen(prefix) > MAX_PREFIX)
    return prpc_error(ret_error, -EINVAL, "prefix is longer than %d bytes", MAX_PREFIX);
  for (size_t i = 0; i < ARRAY_SIZE(report_hashes); i++) {
    if (!str_eq(report_hashes[i].name, name))
      continue;
    struct hash_ctx *c = NULL;
    uint8_t d[HASH_MAX_SIZE];
    int r = hash_ctx_new(report_hashes[i].alg, &c);
    if (r >= 0)
      r = hash_ctx_update(c, prefix, strlen(prefix));
    if (r >= 0)
      r = hash_ctx_update(c, ":", 1);
    if (r >= 0 && len)
      r = hash_ctx_update(c, data, len);
    if (r >= 0)
      r = hash_ctx_final(c, d);
    hash_ctx_free(c);
    if (r < 0)
      return r;
    memset(ret, 0, 64);
    memcpy(ret, d, hash_alg_size(report_hashes[i].alg));
    return 0;
  }
  return prpc_error(ret_error, -EINVAL, "invalid hash algorithm '%s'", name);
}

int tappd_pad_report_data(const uint8_t *data, size_t len, uint8_t ret[64], char **ret_error) {
  if (len > 64)
    return prpc_error(ret_error, -EINVAL, "Report data is too long: %zu bytes (at most 64)", len);
  memset(ret, 0, 64);
  if (len)
    memcpy(ret, data, len);
  return 0;
}

bool tappd_event_name_valid(const char *name) {
  size_t n = name ? strlen(name) : 0;
  return n > 0 && n <= EVENTLOG_MAX_NAME && str_is_printable_ascii(name);
}

/* Opens the event-log file (created 0600 with its directory 0700 when missing). */
static int log_open(struct tappd *t, bool write, int *ret_fd) {
  const int flags = O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
  int fd = open(t->eventlog_path, flags, 0600);
  if (fd < 0 && errno == ENOENT) {
    /* no directory yet (the file itself is created by O_CREAT) */
    int r = mkdir_parents(t->eventlog_path, 0700);
    if (r < 0)
      return log_debug_errno(r, "creating the directory of %s", t->eventlog_path);
    fd = open(t->eventlog_path, flags, 0600);
  }
  if (fd < 0 && !write && (errno == EACCES || errno == EROFS))
    fd = open(t->eventlog_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return log_debug_errno(-errno, "opening %s", t->eventlog_path);
  *ret_fd = fd;
  return 0;
}

static int log_lock(int fd, int op) {
  while (flock(fd, op) < 0)
    if (errno != EINTR)
      return -errno;
  return 0;
}

static bool has_boot_events(const struct eventlog *log) {
  for (size_t i = 0; i < log->n; i++)
    if (log->ev[i].imr < 3)
      return true;
  return false;
}

int tappd_ccel_read(struct tappd *t, struct eventlog *out) {
  const char *path = t->cfg->ccel_file;
  if (str_isempty(path) || access(path, R_OK) != 0)
    return 0;
  _cleanup_buf_ struct buf b = BUF_INIT(EVENTLOG_MAX_LOG);
  int r = file_read_all(path, EVENTLOG_MAX_LOG, &b);
  if (r < 0)
    return log_debug_errno(r, "reading %s", path);
  _cleanup_eventlog_ struct eventlog ccel = EVENTLOG_INIT;
  r = eventlog_parse_ccel(b.data, b.len, &ccel);
  if (r < 0)
    return log_debug_errno(r, "parsing %s", path);
  for (size_t i = 0; i < ccel.n; i++) {
    const struct tdx_event *e = &ccel.ev[i];
    if (e->imr >= EVENTLOG_N_RTMR || e->event_type == EVENTLOG_EV_NO_ACTION)
      continue;
    r = eventlog_add(out, e->imr, e->event_type, e->digest, e->event, e->payload, e->payload_len);
    if (r < 0)
      return r;
  }
  return 0;
}

static int read_log_fd(struct tappd *t, int fd, struct eventlog *ret) {
  *ret = EVENTLOG_INIT;
  _cleanup_buf_ struct buf b = BUF_INIT(EVENTLOG_MAX_LOG);
  if (lseek(fd, 0, SEEK_SET) < 0)
    return -errno;
  int r = fd_read_all(fd, EVENTLOG_MAX_LOG, &b);
  if (r < 0)
    return r;
  _cleanup_eventlog_ struct eventlog rt = EVENTLOG_INIT;
  r = eventlog_parse_json((const char *)b.data, b.len, &rt);
  if (r < 0)
    return log_debug_errno(r, "parsing the event log %s", t->eventlog_path);
  if (!has_boot_events(&rt) && (r = tappd_ccel_read(t, ret)) < 0) {
    eventlog_free(ret);
    return r;
  }
  r = eventlog_append_log(ret, &rt);
  if (r < 0)
    eventlog_free(ret);
  return r;
}

int tappd_eventlog_read(struct tappd *t, struct eventlog *ret) {
  int fd, r = log_open(t, false, &fd);
  if (r < 0)
    return r;
  r = read_log_fd(t, fd, ret);
  close(fd);
  return r;
}

/* ---- the event log as quotes see it, kept between quotes ----
 * Every quote reads the event log under the shared lock, as the RTMRs must match it. The log
 * only changes by appends (EmitEvent, tee_extend_event, under the exclusive lock; a failed
 * extend truncates its line away again) or by being replaced (a new simulator platform: a new
 * inode), so while the open file has the same device, inode, size, mtime and ctime it holds
 * the same events: the parsed log, its replay and its API JSON are kept for it. */
struct log_stamp {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime, ctime;
};

struct tappd_log_cache {
  pthread_mutex_t lock;
  bool valid;
  struct log_stamp stamp;
  struct eventlog log;  /* boot events (CCEL) + the runtime log */
  bool replay_ok;
  uint8_t rtmr[4][48];  /* log replayed */
  bool has_json;
  struct buf json;      /* EVENTLOG_JSON_API text */
};

void tappd_log_cache_free(struct tappd_log_cache *c) {
  if (!c)
    return;
  pthread_mutex_destroy(&c->lock);
  eventlog_free(&c->log);
  buf_free(&c->json);
  free(c);
}

int tappd_log_cache_new(struct tappd_log_cache **ret) {
  struct tappd_log_cache *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  if (pthread_mutex_init(&c->lock, NULL) != 0) {
    free(c);
    return -ENOMEM;
  }
  c->log = EVENTLOG_INIT;
  buf_init(&c->json, TAPPD_EVENTLOG_MAX);
  *ret = c;
  return 0;
}

static int stamp_fd(int fd, struct log_stamp *ret) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return -errno;
  *ret = (struct log_stamp){.dev = st.st_dev, .ino = st.st_ino, .size = st.st_size,
                            .mtime = st.st_mtim, .ctime = st.st_ctim};
  return 0;
}

static bool stamp_equal(const struct log_stamp *a, const struct log_stamp *b) {
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
         a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Makes c hold the log of fd (locked by the caller). */
static int log_cache_refresh(struct tappd *t, struct tappd_log_cache *c, int fd) {
  struct log_stamp st;
  int r = stamp_fd(fd, &st);
  if (r < 0)
    return r;
  if (c->valid && stamp_equal(&c->stamp, &st))
    return 0;
  c->valid = false;
  c->has_json = false;
  eventlog_free(&c->log);
  c->log = EVENTLOG_INIT;
  r = read_log_fd(t, fd, &c->log);
  if (r < 0)
    return r;
  c->replay_ok = eventlog_replay(&c->log, c->rtmr) >= 0;
  c->stamp = st;
  c->valid = true;
  return 0;
}

/* The log must replay to RTMR3 of the quote: -ENOTRECOVERABLE when it does not (a writer killed
 * between append and extend left a line RTMR3 never got, or RTMR3 was extended without
 * logging); verifiers would refuse that quote. RTMR0..2 only warn: their boot log (CCEL) may be
 * missing. */
static int check_replay(const struct buf *quote, const struct tappd_log_cache *c) {
  struct quote q;
  if (!c->replay_ok || quote_parse(quote->data, quote->len, &q) < 0 ||
      q.body_type == QUOTE_BODY_SGX)
    return 0;
  if (memcmp(c->rtmr[3], q.td.rt_mr[3], 48) != 0)
    return -ENOTRECOVERABLE;
  if (memcmp(c->rtmr, q.td.rt_mr, sizeof(c->rtmr)) != 0)
    log_warn("the event log does not replay to RTMR0..2 of the quote");
  return 0;
}

/* Closes fd. */
static int quote_locked(struct tappd *t, struct tappd_log_cache *c, int fd,
                        const uint8_t report_data[64], struct buf *quote,
                        struct eventlog *ret_log, struct buf *eventlog_json) {
  int r = log_lock(fd, LOCK_SH);
  if (r < 0) {
    close(fd);
    return r;
  }
  r = log_cache_refresh(t, c, fd);
  if (r >= 0)
    r = tee_get_quote(t->tee, report_data, quote);
  close(fd); /* and with it the lock */
  if (r < 0 || (r = check_replay(quote, c)) < 0)
    return r;
  if (eventlog_json) {
    if (!c->has_json) {
      buf_reset(&c->json);
      if ((r = eventlog_to_json_text(&c->log, EVENTLOG_JSON_API, &c->json)) < 0)
        return r;
      c->has_json = true;
    }
    if ((r = buf_append(eventlog_json, c->json.data, c->json.len)) < 0)
      return r;
  }
  if (ret_log) {
    *ret_log = EVENTLOG_INIT;
    if ((r = eventlog_append_log(ret_log, &c->log)) < 0) {
      eventlog_free(ret_log);
      return r;
    }
  }
  return 0;
}

int tappd_quote(struct tappd *t, const uint8_t report_data[64], struct buf *quote,
                struct eventlog *ret_log, struct buf *eventlog_json) {
  struct tappd_log_cache *c = t->log_cache;
  if (!c)
    return -EINVAL; /* made by tappd_new */
  const size_t quote_len = quote->len;
  /* A log known not to be RTMR3's: no quote is made (on TDX one costs a QGS round trip) unless
   * it has been put right since. */
  if (atomic_load(&t->eventlog_unrecoverable)) {
    int r = tappd_eventlog_reconcile(t);
    if (r < 0)
      return r;
  }
  for (int attempt = 0;; attempt++) {
    int fd, r = log_open(t, false, &fd);
    if (r < 0)
      return r;
    pthread_mutex_lock(&c->lock);
    r = quote_locked(t, c, fd, report_data, quote, ret_log, eventlog_json);
    pthread_mutex_unlock(&c->lock);
    if (r >= 0)
      return 0;
    quote->len = quote_len; /* no quote without its log */
    if (r != -ENOTRECOVERABLE || attempt > 0 || atomic_load(&t->eventlog_unrecoverable))
      return r;
    /* The log is not RTMR3's: a writer killed between append and extend since the start-up
     * check (e.g. tdxctl extend). Repaired like at start-up, then once more. */
    if ((r = tappd_eventlog_reconcile(t)) < 0)
      return r;
  }
}

const char *tappd_quote_strerror(int r) {
  if (r == -ENOTRECOVERABLE)
    return "the event log does not replay to RTMR3; quotes are refused until it does (see the "
           "tappd log)";
  return strerror(-r);
}

int tappd_emit_event(struct tappd *t, const char *event, const uint8_t *payload, size_t len,
                     char **ret_error) {
  if (!tappd_event_name_valid(event))
    return prpc_error(ret_error, -EINVAL,
                       "event name must be 1..%zu printable ASCII characters",
                       (size_t)EVENTLOG_MAX_NAME);
  if (len > TAPPD_MAX_EVENT_PAYLOAD)
    return prpc_error(ret_error, -EINVAL, "payload is longer than %zu bytes",
                       TAPPD_MAX_EVENT_PAYLOAD);
  uint8_t digest[48];
  int r = eventlog_runtime_digest(event, payload, len, 1, digest);
  if (r < 0)
    return prpc_error(ret_error, r, "bad event");
  _cleanup_buf_ struct buf line = BUF_INIT(2 * TAPPD_MAX_EVENT_PAYLOAD + 8 * EVENTLOG_MAX_NAME + 512);
  if ((r = eventlog_runtime_line(event, digest, payload, len, &line)) < 0)
    return r;

  /* Append + extend under the event-log flock (tee_extend_event_line): the log order is the
   * extend order and a failed extend takes the line back. */
  r = tee_extend_event_line(t->tee, 3, digest, line.data, line.len);
  if (r < 0)
    log_error("emitting the event %s to RTMR3 (%s): %s", event, t->eventlog_path, strerror(-r));
  return r < 0 ? r : 0;
}

int tappd_emit_app_event(struct tappd *t, const char *event, const uint8_t *payload, size_t len,
                         char **ret_error) {
  if (boot_event_name_reserved(event))
    return prpc_error(ret_error, -EPERM,
                       "the event name \"%s\" is reserved for the boot's own measurements", event);
  return tappd_emit_event(t, event, payload, len, ret_error);
}

int tappd_scale_compact(struct buf *out, uint64_t v) {
  if (v < (1u << 6))
    return buf_append_u8(out, (uint8_t)(v << 2));
  if (v < (1u << 14))
    return buf_append_u16le(out, (uint16_t)((v << 2) | 1));
  if (v < (1u << 30))
    return buf_append_u32le(out, (uint32_t)((v << 2) | 2));
  uint8_t b[8];
  size_t n = 0;
  for (uint64_t x = v; x; x >>= 8)
    b[n++] = (uint8_t)x;
  int r = buf_append_u8(out, (uint8_t)(((n - 4) << 2) | 3));
  return r < 0 ? r : buf_append(out, b, n);
}

static int scale_bytes(struct buf *out, const void *p, size_t n) {
  int r = tappd_scale_compact(out, n);
  if (r >= 0 && n)
    r = buf_append(out, p, n);
  return r;
}

int tappd_attest(struct tappd *t, const uint8_t report_data[64], struct buf *out,
                 char **ret_error) {
  _cleanup_buf_ struct buf quote = BUF_INIT(BUF_MAX_QUOTE);
  _cleanup_eventlog_ struct eventlog log = EVENTLOG_INIT;
  int r = tappd_quote(t, report_data, &quote, &log, NULL);
  if (r < 0)
    return prpc_error(ret_error, r, "getting a quote: %s", tappd_quote_strerror(r));
  size_t n_events = 0, n_runtime = 0;
  for (size_t i = 0; i < log.n; i++) {
    if (log.ev[i].imr >= EVENTLOG_N_RTMR)
      continue;
    n_events++;
    n_runtime += log.ev[i].imr == 3 && log.ev[i].event_type == EVENTLOG_EV_RUNTIME;
  }
  /* V0, AttestationQuote::DstackTdx */
  if ((r = buf_append_u8(out, 0)) < 0 || (r = buf_append_u8(out, 0)) < 0 ||
      (r = scale_bytes(out, quote.data, quote.len)) < 0 ||
      (r = tappd_scale_compact(out, n_events)) < 0)
    return r;
  for (size_t i = 0; i < log.n; i++) {
    const struct tdx_event *e = &log.ev[i];
    if (e->imr >= EVENTLOG_N_RTMR)
      continue;
    const char *name = e->event ? e->event : "";
    if ((r = buf_append_u32le(out, e->imr)) < 0 || (r = buf_append_u32le(out, e->event_type)) < 0 ||
        (r = scale_bytes(out, e->digest, 48)) < 0 ||
        (r = scale_bytes(out, name, strlen(name))) < 0 ||
        (r = scale_bytes(out, e->payload, e->payload_len)) < 0)
      return r;
  }
  if ((r = tappd_scale_compact(out, n_runtime)) < 0)
    return r;
  for (size_t i = 0; i < log.n; i++) {
    const struct tdx_event *e = &log.ev[i];
    if (e->imr != 3 || e->event_type != EVENTLOG_EV_RUNTIME)
      continue;
    const char *name = e->event ? e->event : "";
    if ((r = scale_bytes(out, name, strlen(name))) < 0 ||
        (r = scale_bytes(out, e->payload, e->payload_len)) < 0)
      return r;
  }
  const char *cfg = t->vm_config ? t->vm_config : "";
  if ((r = buf_append(out, report_data, 64)) < 0 || (r = scale_bytes(out, cfg, strlen(cfg))) < 0)
    return r;
  return 0;
}

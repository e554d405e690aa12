/* The simulated TD's measurement registers, kept in DIR/td.json so that separate processes see
 * the same RTMRs. DIR/td.lock serialises access: LOCK_SH to read, LOCK_EX for read-modify-write;
 * td.json itself is always replaced atomically (fsync + rename), so it is never torn. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "attest/sim.h"
#include "base/fileio.h"
#include "base/json.h"
#include "base/log.h"
#include "crypto/hash.h"

#define SIM_TD_MAX_JSON ((size_t)64 * 1024)
#define SIM_TD_VERSION 1

int sim_path(const char *dir, const char *name, char **ret) {
  if (!dir || !*dir || !name)
    return -EINVAL;
  if (asprintf(ret, "%s/%s", dir, name) < 0) {
    *ret = NULL;
    return -ENOMEM;
  }
  return 0;
}

/* SHA-384(label || "/" || seed): how every simulated measurement is derived. */
void sim_derive48(const char *label, const char *seed, uint8_t out[48]) {
  _cleanup_free_ char *s = NULL;
  if (asprintf(&s, "dstack-sim/%s/%s", label, seed ? seed : SIM_DEFAULT_SEED) < 0) {
    /* out of memory: still deterministic, just less specific */
    sha384(label, strlen(label), out);
    return;
  }
  sha384(s, strlen(s), out);
}

void sim_td_default(const char *seed, const uint8_t tee_tcb_svn[16], struct sim_td *ret) {
  /* SEPT_VE_DISABLE set, as dstack's TDs run */
  static const uint8_t td_attributes[8] = {0x00, 0x00, 0x00, 0x10, 0, 0, 0, 0};
  static const uint8_t xfam[8] = {0xe7, 0x02, 0x06, 0x00, 0, 0, 0, 0};
  memset(ret, 0, sizeof(*ret));
  if (tee_tcb_svn)
    memcpy(ret->tee_tcb_svn, tee_tcb_svn, 16);
  sim_derive48("mrseam", seed, ret->mr_seam);
  /* mr_signer_seam and seam_attributes stay zero: Intel's TDX module identity in TCB info */
  memcpy(ret->td_attributes, td_attributes, 8);
  memcpy(ret->xfam, xfam, 8);
  sim_derive48("mrtd", seed, ret->mr_td);
}

static int td_lock(const char *dir, int op, int *ret_fd) {
  _cleanup_free_ char *path = NULL;
  int r = sim_path(dir, SIM_FILE_TD_LOCK, &path);
  if (r < 0)
    return r;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return log_debug_errno(-errno, "opening %s", path);
  while (flock(fd, op) < 0) {
    if (errno != EINTR) {
      r = -errno;
      close(fd);
      return log_debug_errno(r, "locking %s", path);
    }
  }
  *ret_fd = fd;
  return 0;
}

/* Closing the only descriptor of the lock file's open file description releases the lock. */
static void td_unlock(int fd) {
  if (fd >= 0)
    close(fd);
}

struct td_field {
  const char *key;
  size_t off, len;
};

#define TD_FIELD(k, m) {k, offsetof(struct sim_td, m), sizeof(((struct sim_td *)0)->m)}
static const struct td_field td_fields[] = {
    TD_FIELD("tee_tcb_svn", tee_tcb_svn),
    TD_FIELD("mr_seam", mr_seam),
    TD_FIELD("mr_signer_seam", mr_signer_seam),
    TD_FIELD("seam_attributes", seam_attributes),
    TD_FIELD("td_attributes", td_attributes),
    TD_FIELD("xfam", xfam),
    TD_FIELD("mr_td", mr_td),
    TD_FIELD("mr_config_id", mr_config_id),
    TD_FIELD("mr_owner", mr_owner),
    TD_FIELD("mr_owner_config", mr_owner_config),
    TD_FIELD("rtmr0", rtmr[0]),
    TD_FIELD("rtmr1", rtmr[1]),
    TD_FIELD("rtmr2", rtmr[2]),
    TD_FIELD("rtmr3", rtmr[3]),
};

/* Parses the text of td.json. */
static int td_parse(const char *path, const struct buf *text, struct sim_td *ret) {
  _cleanup_json_ json_t *j = NULL;
  int r = json_parse_buf((const char *)text->data, text->len, SIM_TD_MAX_JSON, &j);
  if (r < 0)
    return log_debug_errno(r, "parsing %s", path);
  uint32_t version;
  r = json_get_u32(j, "version", &version);
  if (r < 0 || version != SIM_TD_VERSION)
    return log_debug_errno(-EBADMSG, "%s: unsupported version", path);
  struct sim_td td = {0};
  for (size_t i = 0; i < ARRAY_SIZE(td_fields); i++) {
    r = json_get_hex(j, td_fields[i].key, (uint8_t *)&td + td_fields[i].off, td_fields[i].len);
    if (r < 0)
      return log_debug_errno(-EBADMSG, "%s: bad or missing \"%s\"", path, td_fields[i].key);
  }
  *ret = td;
  return 0;
}

/* Reads td.json; with a cache, text equal to the last one parsed is not parsed again. */
static int td_read_unlocked_cached(const char *dir, struct sim_td_cache *c, struct sim_td *ret) {
  _cleanup_free_ char *path = NULL;
  int r = sim_path(dir, SIM_FILE_TD, &path);
  if (r < 0)
    return r;
  _cleanup_buf_ struct buf text = BUF_INIT(SIM_TD_MAX_JSON);
  r = file_read_all(path, SIM_TD_MAX_JSON, &text);
  if (r < 0)
    return log_debug_errno(r, "reading %s", path);
  if (c && c->valid && c->text.len == text.len && memcmp(c->text.data, text.data, text.len) == 0) {
    *ret = c->td;
    return 0;
  }
  r = td_parse(path, &text, ret);
  if (r < 0 || !c)
    return r;
  buf_free(&c->text);
  c->text = text;
  text = BUF_INIT(SIM_TD_MAX_JSON); /* moved into the cache */
  c->td = *ret;
  c->valid = true;
  return 0;
}

static int td_read_unlocked(const char *dir, struct sim_td *ret) {
  return td_read_unlocked_cached(dir, NULL, ret);
}

static int td_write_unlocked(const char *dir, const struct sim_td *td) {
  _cleanup_free_ char *path = NULL;
  int r = sim_path(dir, SIM_FILE_TD, &path);
  if (r < 0)
    return r;
  _cleanup_json_ json_t *j = json_object();
  if (!j)
    return -ENOMEM;
  r = json_set_u64(j, "version", SIM_TD_VERSION);
  for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(td_fields); i++)
    r = json_set_hex(j, td_fields[i].key, (const uint8_t *)td + td_fields[i].off,
                     td_fields[i].len);
  if (r < 0)
    return r;
  _cleanup_buf_ struct buf text = BUF_INIT(SIM_TD_MAX_JSON);
  r = json_dump_buf(j, JSON_INDENT(2), &text);
  if (r >= 0)
    r = buf_append_str(&text, "\n");
  if (r < 0)
    return r;
  r = file_write_atomic(path, text.data, text.len, 0644);
  if (r < 0)
    return log_debug_errno(r, "writing %s", path);
  return 0;
}

int sim_td_load(const char *dir, struct sim_td *ret) {
  if (!dir || !ret)
    return -EINVAL;
  int fd = -1;
  int r = td_lock(dir, LOCK_SH, &fd);
  if (r < 0)
    return r;
  r = td_read_unlocked(dir, ret);
  td_unlock(fd);
  return r;
}

int sim_td_load_cached(const char *dir, struct sim_td_cache *cache, struct sim_td *ret) {
  if (!dir || !ret)
    return -EINVAL;
  int fd = -1;
  int r = td_lock(dir, LOCK_SH, &fd);
  if (r < 0)
    return r;
  r = td_read_unlocked_cached(dir, cache, ret);
  td_unlock(fd);
  return r;
}

void sim_td_cache_free(struct sim_td_cache *c) {
  if (!c)
    return;
  buf_free(&c->text);
  *c = (struct sim_td_cache){0};
}

int sim_td_store(const char *dir, const struct sim_td *td) {
  if (!dir || !td)
    return -EINVAL;
  int fd = -1;
  int r = td_lock(dir, LOCK_EX, &fd);
  if (r < 0)
    return r;
  r = td_write_unlocked(dir, td);
  td_unlock(fd);
  return r;
}

void sim_rtmr_extend(uint8_t rtmr[48], const uint8_t digest[48]) {
  uint8_t in[96];
  memcpy(in, rtmr, 48);
  memcpy(in + 48, digest, 48);
  sha384(in, sizeof(in), rtmr);
}

int sim_td_extend(const char *dir, unsigned index, const uint8_t digest[48]) {
  if (!dir || !digest || index >= TEE_RTMR_COUNT)
    return -EINVAL;
  int fd = -1;
  int r = td_lock(dir, LOCK_EX, &fd);
  if (r < 0)
    return r;
  struct sim_td td;
  r = td_read_unlocked(dir, &td);
  if (r >= 0) {
    sim_rtmr_extend(td.rtmr[index], digest);
    r = td_write_unlocked(dir, &td);
  }
  td_unlock(fd);
  return r;
}

/* The LUKS2 header policy: the binary headers (both copies), their checksums, and the JSON
 * metadata compared against the one layout tboot formats. Every field is whitelisted: an
 * unknown member anywhere is refused, so a header can never carry a token, a reencryption
 * requirement, an integrity profile or a second keyslot past this check. */
#include "tboot_luks2.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/json.h"
#include "base/macro.h"
#include "base/str.h"
#include "crypto/hash.h"

/* Binary header layout (big-endian numbers), the first 4096 bytes of each copy. */
#define BIN_SIZE 4096
#define OFF_VERSION 6
#define OFF_HDR_SIZE 8
#define OFF_SEQID 16
#define OFF_CSUM_ALG 72
#define LEN_CSUM_ALG 32
#define OFF_UUID 168
#define LEN_UUID 40
#define OFF_HDR_OFFSET 256
#define OFF_CSUM 448
#define LEN_CSUM 64
#define JSON_SIZE (LUKS2_HDR_SIZE - BIN_SIZE)

#define CIPHER "aes-xts-plain64"
#define KEY_SIZE 64
#define AF_STRIPES 4000
#define SALT_LEN 32

static const uint8_t magic_primary[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};
static const uint8_t magic_secondary[6] = {'S', 'K', 'U', 'L', 0xba, 0xbe};

static uint64_t be64_read(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

/* A header's fixed-size text field: NUL-terminated inside the field. */
static bool field_str(const uint8_t *p, size_t n) {
  return memchr(p, 0, n) != NULL;
}

/* The canonical form cryptsetup writes (8-4-4-4-12 hex digits): the UUID may end up in device
 * names and command lines, so nothing else passes. */
static bool uuid_valid(const char *u) {
  if (strlen(u) != 36)
    return false;
  for (int i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? u[i] != '-' : !((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f')))
      return false;
  }
  return true;
}

struct copy {
  uint64_t seqid;
  const char *uuid; /* inside the buffer, NUL-terminated */
  const char *json; /* inside the buffer */
  size_t json_len;  /* up to its NUL */
};

static int copy_check(const uint8_t *buf, size_t off, const char *name, struct copy *ret,
                      char *why, size_t whylen) {
  const uint8_t *h = buf + off;
  if (h[OFF_VERSION] != 0 || h[OFF_VERSION + 1] != 2)
    return str_err(why, whylen, -EBADMSG, "the %s LUKS header is not version 2", name);
  uint64_t hdr_size = be64_read(h + OFF_HDR_SIZE);
  if (hdr_size != LUKS2_HDR_SIZE)
    return str_err(why, whylen, -EBADMSG, "the %s LUKS2 header size is %llu, not %d", name,
                   (unsigned long long)hdr_size, LUKS2_HDR_SIZE);
  if (be64_read(h + OFF_HDR_OFFSET) != off)
    return str_err(why, whylen, -EBADMSG, "the %s LUKS2 header names the wrong offset", name);
  if (!field_str(h + OFF_CSUM_ALG, LEN_CSUM_ALG) ||
      strcmp((const char *)h + OFF_CSUM_ALG, "sha256") != 0)
    return str_err(why, whylen, -EBADMSG, "the %s LUKS2 header's checksum is not sha256", name);
  if (!field_str(h + OFF_UUID, LEN_UUID) || !uuid_valid((const char *)h + OFF_UUID))
    return str_err(why, whylen, -EBADMSG, "the %s LUKS2 header's UUID is malformed", name);

  /* sha256 over the whole header with the checksum field zeroed; the rest of the field zero */
  uint8_t want[32];
  {
    uint8_t zero[LEN_CSUM] = {0};
    _cleanup_(hash_ctx_freep) struct hash_ctx *c = NULL;
    if (hash_ctx_new(HASH_SHA256, &c) < 0 || hash_ctx_update(c, h, OFF_CSUM) < 0 ||
        hash_ctx_update(c, zero, LEN_CSUM) < 0 ||
        hash_ctx_update(c, h + OFF_CSUM + LEN_CSUM, LUKS2_HDR_SIZE - OFF_CSUM - LEN_CSUM) < 0 ||
        hash_ctx_final(c, want) < 0)
      return str_err(why, whylen, -ENOMEM, "cannot hash the %s LUKS2 header", name);
  }
  static const uint8_t zero_tail[LEN_CSUM - 32];
  if (memcmp(want, h + OFF_CSUM, 32) != 0 || memcmp(h + OFF_CSUM + 32, zero_tail, 32) != 0)
    return str_err(why, whylen, -EBADMSG, "the %s LUKS2 header's checksum does not match", name);

  const char *json = (const char *)h + BIN_SIZE;
  const char *nul = memchr(json, 0, JSON_SIZE);
  if (!nul)
    return str_err(why, whylen, -EBADMSG,
                   "the %s LUKS2 header's JSON area is not NUL-terminated", name);
  ret->seqid = be64_read(h + OFF_SEQID);
  ret->uuid = (const char *)h + OFF_UUID;
  ret->json = json;
  ret->json_len = (size_t)(nul - json);
  return 0;
}

/* LUKS2 JSON numbers that are strings: plain decimal, no sign, no leading zero, no overflow. */
static int dec_u64(const char *s, uint64_t *ret) {
  if (!s || !*s || (s[0] == '0' && s[1]))
    return -EINVAL;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9')
      return -EINVAL;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
      return -ERANGE;
  }
  *ret = v;
  return 0;
}

/* Every member of o is one of the NULL-terminated keys, and every key is present. */
static int obj_exact(const json_t *o, const char *const *keys, const char *what, char *why,
                     size_t whylen) {
  if (!json_is_object(o))
    return str_err(why, whylen, -EBADMSG, "LUKS2 %s is not an object", what);
  size_t n = 0;
  for (; keys[n]; n++)
    if (!json_object_get(o, keys[n]))
      return str_err(why, whylen, -EBADMSG, "LUKS2 %s lacks \"%s\"", what, keys[n]);
  if (json_object_size(o) != n) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
      bool known = false;
      for (size_t i = 0; i < n && !known; i++)
        known = str_eq(k, keys[i]);
      if (!known)
        return str_err(why, whylen, -EBADMSG, "LUKS2 %s has an unexpected \"%.64s\"", what, k);
    }
  }
  return 0;
}

static int want_str(const json_t *o, const char *key, const char *value, const char *what,
                    char *why, size_t whylen) {
  const char *s = NULL;
  if (json_get_str(o, key, &s) < 0 || !str_eq(s, value))
    return str_err(why, whylen, -EBADMSG, "LUKS2 %s %s is not \"%s\"", what, key, value);
  return 0;
}

static int want_u32(const json_t *o, const char *key, uint32_t min, uint32_t max,
                    const char *what, uint32_t *ret, char *why, size_t whylen) {
  uint32_t v;
  if (json_get_u32(o, key, &v) < 0 || v < min || v > max)
    return str_err(why, whylen, -EBADMSG, "LUKS2 %s %s is not an integer in [%u, %u]", what, key,
                   min, max);
  if (ret)
    *ret = v;
  return 0;
}

static int want_dec(const json_t *o, const char *key, const char *what, uint64_t *ret, char *why,
                    size_t whylen) {
  const char *s = NULL;
  if (json_get_str(o, key, &s) < 0 || dec_u64(s, ret) < 0)
    return str_err(why, whylen, -EBADMSG, "LUKS2 %s %s is not a decimal string", what, key);
  return 0;
}

static int want_b64(const json_t *o, const char *key, size_t len, const char *what, char *why,
                    size_t whylen) {
  _cleanup_buf_ struct buf b = BUF_INIT(64);
  if (json_get_base64_buf(o, key, &b) < 0 || b.len != len)
    return str_err(why, whylen, -EBADMSG, "LUKS2 %s %s is not %zu bytes of base64", what, key,
                   len);
  return 0;
}

/* The one member of a container object, named "0". */
static int only_zero(const json_t *root, const char *key, json_t **ret, char *why,
                     size_t whylen) {
  json_t *o = json_object_get(root, key);
  if (!json_is_object(o))
    return str_err(why, whylen, -EBADMSG, "LUKS2 %s is not an object", key);
  if (json_object_size(o) != 1 || !(*ret = json_object_get(o, "0")))
    return str_err(why, whylen, -EBADMSG,
                   "LUKS2 %s must hold exactly one entry \"0\" (it holds %zu)", key,
                   json_object_size(o));
  return 0;
}

static bool array_is_zero(const json_t *a) {
  return json_is_array(a) && json_array_size(a) == 1 &&
         json_is_string(json_array_get(a, 0)) &&
         str_eq(json_string_value(json_array_get(a, 0)), "0");
}

static int json_check(const char *text, size_t len, struct luks2_info *info, char *why,
                      size_t whylen) {
  _cleanup_json_ json_t *root = NULL;
  if (json_parse_buf(text, len, JSON_SIZE, &root) < 0 || !json_is_object(root))
    return str_err(why, whylen, -EBADMSG, "the LUKS2 JSON metadata does not parse");
  if (json_object_get(root, "config") && json_object_get(json_object_get(root, "config"),
                                                         "requirements"))
    return str_err(why, whylen, -EBADMSG, "the LUKS2 header has requirements");
  static const char *const top[] = {"keyslots", "tokens", "segments", "digests", "config", NULL};
  int r = obj_exact(root, top, "metadata", why, whylen);
  if (r < 0)
    return r;

  json_t *tokens = json_object_get(root, "tokens");
  if (!json_is_object(tokens) || json_object_size(tokens) != 0)
    return str_err(why, whylen, -EBADMSG, "the LUKS2 header has tokens");

  /* the segment: where the data starts and how it is encrypted */
  json_t *seg;
  if ((r = only_zero(root, "segments", &seg, why, whylen)) < 0)
    return r;
  if (json_is_object(seg) && json_object_get(seg, "integrity"))
    return str_err(why, whylen, -EBADMSG, "the LUKS2 segment has integrity protection");
  static const char *const seg_keys[] = {"type", "offset", "size", "iv_tweak", "encryption",
                                         "sector_size", NULL};
  uint64_t seg_off;
  uint32_t sector;
  if ((r = obj_exact(seg, seg_keys, "segment", why, whylen)) < 0 ||
      (r = want_str(seg, "type", "crypt", "segment", why, whylen)) < 0 ||
      (r = want_dec(seg, "offset", "segment", &seg_off, why, whylen)) < 0 ||
      (r = want_str(seg, "size", "dynamic", "segment", why, whylen)) < 0 ||
      (r = want_str(seg, "iv_tweak", "0", "segment", why, whylen)) < 0 ||
      (r = want_str(seg, "encryption", CIPHER, "segment", why, whylen)) < 0 ||
      (r = want_u32(seg, "sector_size", 512, 4096, "segment", &sector, why, whylen)) < 0)
    return r;
  if (seg_off != LUKS2_DATA_OFFSET)
    return str_err(why, whylen, -EBADMSG, "the LUKS2 segment starts at %llu, not %llu",
                   (unsigned long long)seg_off, (unsigned long long)LUKS2_DATA_OFFSET);
  if (sector != 512 && sector != 4096)
    return str_err(why, whylen, -EBADMSG, "the LUKS2 sector size is %u, not 512 or 4096", sector);

  /* config: the JSON area size and the keyslots area, between the headers and the data */
  json_t *cfg = json_object_get(root, "config");
  static const char *const cfg_keys[] = {"json_size", "keyslots_size", NULL};
  uint64_t json_size, ks_size;
  if ((r = obj_exact(cfg, cfg_keys, "config", why, whylen)) < 0 ||
      (r = want_dec(cfg, "json_size", "config", &json_size, why, whylen)) < 0 ||
      (r = want_dec(cfg, "keyslots_size", "config", &ks_size, why, whylen)) < 0)
    return r;
  if (json_size != JSON_SIZE)
    return str_err(why, whylen, -EBADMSG, "the LUKS2 json_size is not %d", JSON_SIZE);
  const uint64_t ks_start = 2 * (uint64_t)LUKS2_HDR_SIZE;
  if (ks_size == 0 || ks_size % 4096 != 0 || ks_size > seg_off - ks_start)
    return str_err(why, whylen, -EBADMSG, "the LUKS2 keyslots area does not fit before the data");

  /* the keyslot */
  json_t *ks;
  if ((r = only_zero(root, "keyslots", &ks, why, whylen)) < 0)
    return r;
  static const char *const ks_keys[] = {"type", "key_size", "af", "area", "kdf", NULL};
  if ((r = obj_exact(ks, ks_keys, "keyslot", why, whylen)) < 0 ||
      (r = want_str(ks, "type", "luks2", "keyslot", why, whylen)) < 0 ||
      (r = want_u32(ks, "key_size", KEY_SIZE, KEY_SIZE, "keyslot", NULL, why, whylen)) < 0)
    return r;
  json_t *af = json_object_get(ks, "af");
  static const char *const af_keys[] = {"type", "stripes", "hash", NULL};
  if ((r = obj_exact(af, af_keys, "keyslot af", why, whylen)) < 0 ||
      (r = want_str(af, "type", "luks1", "keyslot af", why, whylen)) < 0 ||
      (r = want_u32(af, "stripes", AF_STRIPES, AF_STRIPES, "keyslot af", NULL, why, whylen)) < 0 ||
      (r = want_str(af, "hash", "sha256", "keyslot af", why, whylen)) < 0)
    return r;
  json_t *area = json_object_get(ks, "area");
  static const char *const area_keys[] = {"type", "offset", "size", "encryption", "key_size",
                                          NULL};
  uint64_t a_off, a_size;
  if ((r = obj_exact(area, area_keys, "keyslot area", why, whylen)) < 0 ||
      (r = want_str(area, "type", "raw", "keyslot area", why, whylen)) < 0 ||
      (r = want_dec(area, "offset", "keyslot area", &a_off, why, whylen)) < 0 ||
      (r = want_dec(area, "size", "keyslot area", &a_size, why, whylen)) < 0 ||
      (r = want_str(area, "encryption", CIPHER, "keyslot area", why, whylen)) < 0 ||
      (r = want_u32(area, "key_size", KEY_SIZE, KEY_SIZE, "keyslot area", NULL, why, whylen)) < 0)
    return r;
  /* the key material (key_size * stripes bytes) inside the keyslots area */
  const uint64_t ks_end = ks_start + ks_size;
  if (a_off < ks_start || a_off > ks_end || a_size < (uint64_t)KEY_SIZE * AF_STRIPES ||
      a_size > ks_end - a_off)
    return str_err(why, whylen, -EBADMSG, "the LUKS2 keyslot area lies outside the keyslots area");
  json_t *kdf = json_object_get(ks, "kdf");
  const char *kdf_type = NULL;
  if (json_get_str(kdf, "type", &kdf_type) == 0 && !str_eq(kdf_type, "pbkdf2"))
    return str_err(why, whylen, -EBADMSG, "the LUKS2 keyslot's KDF is %.32s, not pbkdf2",
                   kdf_type);
  static const char *const kdf_keys[] = {"type", "hash", "iterations", "salt", NULL};
  uint32_t iter;
  if ((r = obj_exact(kdf, kdf_keys, "keyslot kdf", why, whylen)) < 0 ||
      (r = want_str(kdf, "type", "pbkdf2", "keyslot kdf", why, whylen)) < 0 ||
      (r = want_str(kdf, "hash", "sha256", "keyslot kdf", why, whylen)) < 0 ||
      (r = want_u32(kdf, "iterations", LUKS2_PBKDF2_MIN_ITERATIONS, LUKS2_PBKDF2_MAX_ITERATIONS,
                    "keyslot kdf", &iter, why, whylen)) < 0 ||
      (r = want_b64(kdf, "salt", SALT_LEN, "keyslot kdf", why, whylen)) < 0)
    return r;

  /* the digest that checks the volume key */
  json_t *dg;
  if ((r = only_zero(root, "digests", &dg, why, whylen)) < 0)
    return r;
  static const char *const dg_keys[] = {"type", "keyslots", "segments", "hash", "iterations",
                                        "salt", "digest", NULL};
  if ((r = obj_exact(dg, dg_keys, "digest", why, whylen)) < 0 ||
      (r = want_str(dg, "type", "pbkdf2", "digest", why, whylen)) < 0 ||
      (r = want_str(dg, "hash", "sha256", "digest", why, whylen)) < 0 ||
      (r = want_u32(dg, "iterations", LUKS2_PBKDF2_MIN_ITERATIONS, LUKS2_PBKDF2_MAX_ITERATIONS,
                    "digest", NULL, why, whylen)) < 0 ||
      (r = want_b64(dg, "salt", SALT_LEN, "digest", why, whylen)) < 0 ||
      (r = want_b64(dg, "digest", 32, "digest", why, whylen)) < 0)
    return r;
  if (!array_is_zero(json_object_get(dg, "keyslots")) ||
      !array_is_zero(json_object_get(dg, "segments")))
    return str_err(why, whylen, -EBADMSG,
                   "the LUKS2 digest does not bind exactly keyslot 0 to segment 0");

  info->segment_offset = seg_off;
  info->sector_size = sector;
  info->pbkdf2_iterations = iter;
  return 0;
}

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return false;
  return true;
}

int luks2_probe(const uint8_t *buf, size_t len, enum luks2_kind *ret_kind,
                struct luks2_info *ret_info, char *why, size_t whylen) {
  if ((!buf && len) || !ret_kind)
    return str_err(why, whylen, -EINVAL, "invalid arguments");
  if (why && whylen)
    why[0] = 0;
  bool primary = len >= sizeof(magic_primary) && memcmp(buf, magic_primary, 6) == 0;
  bool secondary = len >= LUKS2_HDR_SIZE + sizeof(magic_secondary) &&
                   memcmp(buf + LUKS2_HDR_SIZE, magic_secondary, 6) == 0;
  if (!primary && !secondary) {
    if (!all_zero(buf, MIN(len, LUKS2_PROBE_BYTES)))
      return str_err(why, whylen, -EBADMSG,
                     "the disk holds data but no LUKS header (refusing to format it)");
    *ret_kind = LUKS2_BLANK;
    if (ret_info)
      memset(ret_info, 0, sizeof(*ret_info));
    return 0;
  }
  if (!primary)
    return str_err(why, whylen, -EBADMSG, "the primary LUKS header is missing or damaged");
  if (len >= 8 && buf[6] == 0 && buf[7] == 1)
    return str_err(why, whylen, -EBADMSG, "the disk holds a LUKS1 header, not LUKS2");
  if (len < 2 * (size_t)LUKS2_HDR_SIZE)
    return str_err(why, whylen, -EBADMSG, "the disk is too short for two LUKS2 headers");
  if (!secondary)
    return str_err(why, whylen, -EBADMSG, "the secondary LUKS2 header is missing or damaged");

  struct copy a, b;
  int r = copy_check(buf, 0, "primary", &a, why, whylen);
  if (r < 0)
    return r;
  r = copy_check(buf, LUKS2_HDR_SIZE, "secondary", &b, why, whylen);
  if (r < 0)
    return r;
  if (a.seqid != b.seqid || !str_eq(a.uuid, b.uuid) || a.json_len != b.json_len ||
      memcmp(a.json, b.json, a.json_len) != 0)
    return str_err(why, whylen, -EBADMSG, "the two LUKS2 header copies disagree");

  struct luks2_info info = {.seqid = a.seqid};
  snprintf(info.uuid, sizeof(info.uuid), "%s", a.uuid);
  r = json_check(a.json, a.json_len, &info, why, whylen);
  if (r < 0)
    return r;
  *ret_kind = LUKS2_VALID;
  if (ret_info)
    *ret_info = info;
  return 0;
}

/* vm-manifest.json and vm-state.json. */
#include "teepod_manifest.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/macro.h"
#include "base/str.h"

#define MANIFEST_FILE "vm-manifest.json"
#define STATE_FILE "vm-state.json"
#define MANIFEST_MAX ((size_t)64 * 1024)

void teepod_manifest_free(struct teepod_manifest *m) {
  if (!m)
    return;
  free(m->image);
  strv_free(m->kms_urls);
  strv_free(m->gateway_urls);
  memset(m, 0, sizeof(*m));
}

int teepod_manifest_copy(const struct teepod_manifest *m, struct teepod_manifest *ret) {
  *ret = *m;
  ret->image = NULL;
  ret->kms_urls = ret->gateway_urls = NULL;
  if (!(ret->image = strdup(m->image ? m->image : "")) || strv_copy(m->kms_urls, &ret->kms_urls) < 0 ||
      strv_copy(m->gateway_urls, &ret->gateway_urls) < 0) {
    teepod_manifest_free(ret);
    return -ENOMEM;
  }
  return 0;
}

bool teepod_name_valid(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > TEEPOD_NAME_MAX)
    return false;
  return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

bool teepod_id_valid(const char *s) {
  if (!s || strlen(s) != 36)
    return false;
  for (size_t i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
      return false;
  }
  return true;
}

int teepod_id_new(char ret[37]) {
  uint8_t b[16];
  if (RAND_bytes(b, sizeof(b)) != 1)
    return -EIO;
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
  snprintf(ret, 37,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
           b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
  return 0;
}

static json_t *strv_json(char **l) {
  json_t *a = json_array();
  for (size_t i = 0; a && l && l[i]; i++)
    if (json_array_append_new(a, json_string(l[i])) < 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

int teepod_manifest_to_json(const struct teepod_manifest *m, struct buf *out) {
  _cleanup_json_ json_t *j = json_object();
  json_t *ports = json_array();
  if (!j || !ports || json_object_set_new(j, "port_map", ports) < 0)
    return -ENOMEM;
  for (size_t i = 0; i < m->n_ports; i++) {
    const struct teepod_port *p = &m->ports[i];
    json_t *o = json_pack("{s:s,s:s,s:i,s:i}", "protocol", p->udp ? "udp" : "tcp",
                          "host_address", p->host_address, "host_port", (int)p->host_port,
                          "vm_port", (int)p->vm_port);
    if (!o || json_array_append_new(ports, o) < 0)
      return -ENOMEM;
  }
  int r;
  if ((r = json_set_str(j, "id", m->id)) < 0 || (r = json_set_str(j, "name", m->name)) < 0 ||
      (r = json_set_str(j, "app_id", m->app_id)) < 0 ||
      (r = json_set_u64(j, "vcpu", m->vcpu)) < 0 || (r = json_set_u64(j, "memory", m->memory)) < 0 ||
      (r = json_set_u64(j, "disk_size", m->disk_size)) < 0 ||
      (r = json_set_str(j, "image", m->image ? m->image : "")) < 0 ||
      (r = json_set_u64(j, "created_at_ms", m->created_at_ms)) < 0 ||
      (r = json_set_new(j, "kms_urls", strv_json(m->kms_urls))) < 0 ||
      (r = json_set_new(j, "gateway_urls", strv_json(m->gateway_urls))) < 0 ||
      (r = json_set_bool(j, "hugepages", m->hugepages)) < 0 ||
      (r = json_set_bool(j, "pin_numa", m->pin_numa)) < 0 ||
      (r = json_set_bool(j, "no_tee", m->no_tee)) < 0)
    return r;
  return json_dump_buf(j, JSON_INDENT(2), out);
}

static int get_urls(const json_t *j, const char *key, char ***ret, char **why) {
  json_t *a = json_object_get(j, key), *e;
  size_t i;
  *ret = NULL;
  if (!a || json_is_null(a))
    return 0;
  if (!json_is_array(a) || json_array_size(a) > TEEPOD_MAX_URLS)
    return str_reason(why, -EINVAL, "%s: expected at most %d URLs", key, TEEPOD_MAX_URLS);
  json_array_foreach(a, i, e) {
    if (!json_is_string(e) || strlen(json_string_value(e)) > 2048)
      return str_reason(why, -EINVAL, "%s[%zu]: expected a URL", key, i);
    int r = strv_push_dup(ret, json_string_value(e));
    if (r < 0)
      return r;
  }
  return 0;
}

static bool all_hex(const char *s, size_t n) {
  return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

static int manifest_parse(const char *text, size_t len, struct teepod_manifest *ret, char **why) {
  _cleanup_json_ json_t *j = NULL;
  const char *s;
  uint32_t u;
  int r;
  memset(ret, 0, sizeof(*ret));
  if ((r = json_parse_buf(text, len, MANIFEST_MAX, &j)) < 0 || !json_is_object(j))
    return str_reason(why, r < 0 ? r : -EINVAL, "not a JSON object");
  if (json_get_str(j, "id", &s) < 0 || !teepod_id_valid(s))
    return str_reason(why, -EINVAL, "id: not a VM id");
  memcpy(ret->id, s, 37);
  if (json_get_str(j, "name", &s) < 0 || !teepod_name_valid(s))
    return str_reason(why, -EINVAL, "name: not a VM name");
  snprintf(ret->name, sizeof(ret->name), "%s", s);
  if (json_get_str(j, "app_id", &s) < 0 || !all_hex(s, 40))
    return str_reason(why, -EINVAL, "app_id: expected 40 lowercase hex digits");
  memcpy(ret->app_id, s, 41);
  if (json_get_u32(j, "vcpu", &ret->vcpu) < 0 || ret->vcpu == 0 ||
      json_get_u32(j, "memory", &ret->memory) < 0 || ret->memory == 0 ||
      json_get_u32(j, "disk_size", &ret->disk_size) < 0)
    return str_reason(why, -EINVAL, "vcpu, memory, disk_size: expected positive integers");
  if (json_get_str(j, "image", &s) < 0 || !*s || strchr(s, '/') || str_eq(s, "..") ||
      str_eq(s, "."))
    return str_reason(why, -EINVAL, "image: not an image name");
  if (!(ret->image = strdup(s)))
    return -ENOMEM;
  if (json_get_u64(j, "created_at_ms", &ret->created_at_ms) < 0)
    return str_reason(why, -EINVAL, "created_at_ms: expected an integer");
  json_t *ports = json_object_get(j, "port_map"), *p;
  size_t i;
  if (ports && json_is_array(ports)) {
    if (json_array_size(ports) > TEEPOD_MAX_PORTS)
      return str_reason(why, -EINVAL, "port_map: more than %d entries", TEEPOD_MAX_PORTS);
    json_array_foreach(ports, i, p) {
      struct teepod_port *pp = &ret->ports[ret->n_ports];
      const char *proto, *addr;
      if (json_get_str(p, "protocol", &proto) < 0 || (!str_eq(proto, "tcp") && !str_eq(proto, "udp")) ||
          json_get_str(p, "host_address", &addr) < 0 || strlen(addr) >= sizeof(pp->host_address) ||
          json_get_u32(p, "host_port", &u) < 0 || u == 0 || u > 65535)
        return str_reason(why, -EINVAL, "port_map[%zu]: bad entry", i);
      pp->host_port = (uint16_t)u;
      if (json_get_u32(p, "vm_port", &u) < 0 || u == 0 || u > 65535)
        return str_reason(why, -EINVAL, "port_map[%zu]: bad vm_port", i);
      pp->vm_port = (uint16_t)u;
      pp->udp = str_eq(proto, "udp");
      snprintf(pp->host_address, sizeof(pp->host_address), "%s", addr);
      ret->n_ports++;
    }
  } else if (ports && !json_is_object(ports) && !json_is_null(ports)) {
    /* the seed wrote an empty object */
    return str_reason(why, -EINVAL, "port_map: expected an array");
  }
  if ((r = get_urls(j, "kms_urls", &ret->kms_urls, why)) < 0 ||
      (r = get_urls(j, "gateway_urls", &ret->gateway_urls, why)) < 0)
    return r;
  bool b;
  if (json_get_bool(j, "hugepages", &b) == 0)
    ret->hugepages = b;
  if (json_get_bool(j, "pin_numa", &b) == 0)
    ret->pin_numa = b;
  if (json_get_bool(j, "no_tee", &b) == 0)
    ret->no_tee = b;
  return 0;
}

int teepod_manifest_parse(const char *text, size_t len, struct teepod_manifest *ret, char **why) {
  int r = manifest_parse(text, len, ret, why);
  if (r < 0)
    teepod_manifest_free(ret); /* a refused manifest leaves nothing allocated */
  return r;
}

static int vm_file(const char *vm_dir, const char *name, char **ret) {
  *ret = str_printf("%s/%s", vm_dir, name);
  return *ret ? 0 : -ENOMEM;
}

int teepod_manifest_save(const char *vm_dir, const struct teepod_manifest *m) {
  _cleanup_buf_ struct buf b = BUF_INIT(MANIFEST_MAX);
  _cleanup_free_ char *p = NULL;
  int r;
  if ((r = teepod_manifest_to_json(m, &b)) < 0 || (r = buf_append_u8(&b, '\n')) < 0 ||
      (r = vm_file(vm_dir, MANIFEST_FILE, &p)) < 0)
    return r;
  return file_write_atomic(p, b.data, b.len, 0600);
}

int teepod_manifest_load(const char *vm_dir, struct teepod_manifest *ret, char **why) {
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  _cleanup_free_ char *p = NULL;
  int r;
  memset(ret, 0, sizeof(*ret));
  if ((r = vm_file(vm_dir, MANIFEST_FILE, &p)) < 0)
    return r;
  if ((r = file_read_capped(p, MANIFEST_MAX, false, &b)) < 0)
    return str_reason(why, r, "%s: %s", MANIFEST_FILE, strerror(-r));
  return teepod_manifest_parse((const char *)b.data, b.len, ret, why);
}

int teepod_state_save(const char *vm_dir, bool started) {
  _cleanup_free_ char *p = NULL;
  int r = vm_file(vm_dir, STATE_FILE, &p);
  if (r < 0)
    return r;
  const char *t = started ? "{\"started\":true}\n" : "{\"started\":false}\n";
  return file_write_atomic(p, t, strlen(t), 0600);
}

int teepod_state_load(const char *vm_dir, bool *ret_started) {
  _cleanup_buf_ struct buf b = BUF_INIT(0);
  _cleanup_free_ char *p = NULL;
  _cleanup_json_ json_t *j = NULL;
  int r = vm_file(vm_dir, STATE_FILE, &p);
  *ret_started = false;
  if (r < 0)
    return r;
  r = file_read_capped(p, 4096, false, &b);
  if (r == -ENOENT)
    return 0;
  if (r < 0)
    return r;
  if ((r = json_parse_buf((const char *)b.data, b.len, 4096, &j)) < 0)
    return r;
  return json_get_bool(j, "started", ret_started) == -EINVAL ? -EINVAL : 0;
}

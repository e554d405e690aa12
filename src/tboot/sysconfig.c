/* `.sys-config.json`: parsing, validation and the canonical form tboot measures. */
#include "tboot_sysconfig.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "base/hex.h"
#include "base/json.h"
#include "base/macro.h"
#include "base/str.h"

/* Printable ASCII without the space: no control characters, no spaces, nothing to re-encode. */
static bool url_chars_ok(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
      return false;
  return true;
}

/* The authority of an http(s) URL: [s, *ret_end) after the scheme; NULL when not http(s). */
static const char *http_authority(const char *s, size_t *ret_len, bool *ret_https) {
  const char *a = str_after_prefix(s, "https://");
  *ret_https = a != NULL;
  if (!a)
    a = str_after_prefix(s, "http://");
  if (!a)
    return NULL;
  *ret_len = strcspn(a, "/?#");
  return a;
}

static bool url_valid(const char *s, size_t len) {
  if (len == 0 || len > SYSCONFIG_MAX_URL || !url_chars_ok(s, len))
    return false;
  size_t alen;
  bool https;
  const char *a = http_authority(s, &alen, &https);
  return a && alen > 0 && a[0] != ':' && a[0] != '@';
}

/* host[:port]: a DNS name or IPv4 address (letters, digits, '.', '-', '_'), or [IPv6]. */
static bool registry_hostport_valid(const char *s, size_t len) {
  if (len == 0 || len > 262)
    return false;
  size_t i = 0;
  if (s[0] == '[') {
    const char *close = memchr(s, ']', len);
    if (!close || close == s + 1)
      return false;
    for (i = 1; s + i < close; i++)
      if (!(hex_digit_value(s[i]) >= 0 || s[i] == ':' || s[i] == '.'))
        return false;
    i++;
  } else {
    for (; i < len && s[i] != ':'; i++) {
      char c = s[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '-' || c == '_'))
        return false;
    }
    if (i == 0 || s[0] == '-' || s[0] == '.')
      return false;
  }
  if (i == len)
    return true;
  if (s[i] != ':' || len - i < 2 || len - i > 6)
    return false;
  unsigned port = 0;
  for (size_t k = i + 1; k < len; k++) {
    if (s[k] < '0' || s[k] > '9')
      return false;
    port = port * 10 + (unsigned)(s[k] - '0');
  }
  return s[i + 1] != '0' && port >= 1 && port <= 65535;
}

static int get_string(const json_t *root, const char *key, const char **ret, size_t *ret_len,
                      char *why, size_t whylen) {
  json_t *v = json_object_get(root, key);
  *ret = NULL;
  *ret_len = 0;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return str_err(why, whylen, -EBADMSG, "sys-config %s is not a string", key);
  *ret = json_string_value(v);
  *ret_len = json_string_length(v);
  if (strlen(*ret) != *ret_len)
    return str_err(why, whylen, -EBADMSG, "sys-config %s holds a NUL", key);
  return 0;
}

static int url_list(const json_t *root, const char *key, const char *single, char ***ret,
                    size_t *ret_n, char *why, size_t whylen) {
  json_t *a = json_object_get(root, key);
  _cleanup_strv_free_ char **l = NULL;
  size_t n = 0;
  if (a && !json_is_null(a)) {
    if (!json_is_array(a))
      return str_err(why, whylen, -EBADMSG, "sys-config %s is not an array", key);
    if (json_array_size(a) > SYSCONFIG_MAX_URLS)
      return str_err(why, whylen, -EBADMSG, "sys-config %s lists more than %d URLs", key,
                     SYSCONFIG_MAX_URLS);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
      if (!json_is_string(v))
        return str_err(why, whylen, -EBADMSG, "sys-config %s[%zu] is not a string", key, i);
      const char *s = json_string_value(v);
      size_t len = json_string_length(v);
      if (strlen(s) != len || !url_valid(s, len))
        return str_err(why, whylen, -EBADMSG, "sys-config %s[%zu] is not an http(s) URL", key,
                       i);
      if (strv_push_dup(&l, s) < 0)
        return -ENOMEM;
      n++;
    }
  }
  const char *s;
  size_t len;
  int r = get_string(root, single, &s, &len, why, whylen);
  if (r < 0)
    return r;
  if (n == 0 && s && len > 0) {
    if (!url_valid(s, len))
      return str_err(why, whylen, -EBADMSG, "sys-config %s is not an http(s) URL", single);
    if (strv_push_dup(&l, s) < 0)
      return -ENOMEM;
    n = 1;
  }
  *ret = TAKE_PTR(l);
  *ret_n = n;
  return 0;
}

static int registry_parse(const char *s, size_t len, struct sysconfig *c, char *why,
                          size_t whylen) {
  const char *hp = s;
  size_t hplen = len;
  bool https = false, is_url = false;
  if (len > SYSCONFIG_MAX_URL || !url_chars_ok(s, len))
    goto bad;
  size_t alen;
  const char *a = http_authority(s, &alen, &https);
  if (a) {
    is_url = true;
    /* only a bare origin: "scheme://host[:port]" with at most a "/" after it */
    if (!(a[alen] == 0 || (a[alen] == '/' && a[alen + 1] == 0)))
      goto bad;
    hp = a;
    hplen = alen;
  }
  if (!registry_hostport_valid(hp, hplen))
    goto bad;
  c->docker_registry = strndup(hp, hplen);
  if (!c->docker_registry)
    return -ENOMEM;
  c->docker_registry_insecure = is_url && !https;
  return 0;
bad:
  return str_err(why, whylen, -EBADMSG,
                 "sys-config docker_registry is neither host[:port] nor an http(s) URL of one");
}

static bool host_api_valid(const char *s, size_t len) {
  if (len > SYSCONFIG_MAX_URL || !url_chars_ok(s, len))
    return false;
  if (url_valid(s, len))
    return true;
  const char *rest = str_after_prefix(s, "vsock://");
  if (!rest)
    rest = str_after_prefix(s, "virtio-serial:");
  return rest && *rest;
}

static char *dup_or_empty(const char *s) {
  return strdup(s ? s : "");
}

int sysconfig_parse(const char *text, size_t len, struct sysconfig *ret, char *why,
                    size_t whylen) {
  if (!ret || (!text && len))
    return str_err(why, whylen, -EINVAL, "invalid arguments");
  memset(ret, 0, sizeof(*ret));
  if (len > SYSCONFIG_MAX_BYTES)
    return str_err(why, whylen, -ENOBUFS, "sys-config is larger than %zu bytes",
                   SYSCONFIG_MAX_BYTES);
  _cleanup_json_ json_t *root = NULL;
  int r = json_parse_buf(text, len, SYSCONFIG_MAX_BYTES, &root);
  if (r < 0 || !json_is_object(root))
    return str_err(why, whylen, -EBADMSG, "sys-config is not a JSON object");

  struct sysconfig c = {0};
  const char *s;
  size_t slen;
  if ((r = url_list(root, "kms_urls", "kms_url", &c.kms_urls, &c.n_kms_urls, why, whylen)) < 0 ||
      (r = url_list(root, "gateway_urls", "tproxy_url", &c.gateway_urls, &c.n_gateway_urls, why,
                    whylen)) < 0)
    goto fail;

  if ((r = get_string(root, "pccs_url", &s, &slen, why, whylen)) < 0)
    goto fail;
  if (s && slen && !url_valid(s, slen)) {
    r = str_err(why, whylen, -EBADMSG, "sys-config pccs_url is not an http(s) URL");
    goto fail;
  }
  if (!(c.pccs_url = dup_or_empty(s)))
    goto nomem;

  if ((r = get_string(root, "docker_registry", &s, &slen, why, whylen)) < 0)
    goto fail;
  if (s && slen) {
    if ((r = registry_parse(s, slen, &c, why, whylen)) < 0)
      goto fail;
  } else if (!(c.docker_registry = strdup("")))
    goto nomem;

  if ((r = get_string(root, "host_api_url", &s, &slen, why, whylen)) < 0)
    goto fail;
  if (s && slen && !host_api_valid(s, slen)) {
    r = str_err(why, whylen, -EBADMSG,
                "sys-config host_api_url is not an http(s), vsock or virtio-serial address");
    goto fail;
  }
  if (!(c.host_api_url = dup_or_empty(s)))
    goto nomem;

  if ((r = get_string(root, "vm_config", &s, &slen, why, whylen)) < 0)
    goto fail;
  if (s && slen) {
    _cleanup_json_ json_t *vmc = NULL;
    if (slen > SYSCONFIG_MAX_VM_CONFIG ||
        json_parse_buf(s, slen, SYSCONFIG_MAX_VM_CONFIG, &vmc) < 0 || !json_is_object(vmc)) {
      r = str_err(why, whylen, -EBADMSG,
                  "sys-config vm_config is not a JSON object of at most %zu bytes",
                  SYSCONFIG_MAX_VM_CONFIG);
      goto fail;
    }
  }
  if (!(c.vm_config = dup_or_empty(s)))
    goto nomem;

  *ret = c;
  return 0;
nomem:
  r = str_err(why, whylen, -ENOMEM, "out of memory");
fail:
  sysconfig_free(&c);
  return r;
}

void sysconfig_free(struct sysconfig *c) {
  if (!c)
    return;
  strv_free(c->kms_urls);
  strv_free(c->gateway_urls);
  free(c->pccs_url);
  free(c->docker_registry);
  free(c->host_api_url);
  free(c->vm_config);
  memset(c, 0, sizeof(*c));
}

static json_t *strv_json(char *const *l, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    if (json_array_append_new(a, json_string(l[i])) < 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

int sysconfig_payload(const struct sysconfig *c, struct buf *out) {
  if (!c || !out)
    return -EINVAL;
  _cleanup_json_ json_t *o = json_pack(
      "{s:o?,s:o?,s:s,s:s,s:b,s:s,s:s}", "kms_urls", strv_json(c->kms_urls, c->n_kms_urls),
      "gateway_urls", strv_json(c->gateway_urls, c->n_gateway_urls), "pccs_url",
      c->pccs_url ? c->pccs_url : "", "docker_registry",
      c->docker_registry ? c->docker_registry : "", "docker_registry_insecure",
      (int)c->docker_registry_insecure, "host_api_url", c->host_api_url ? c->host_api_url : "",
      "vm_config", c->vm_config ? c->vm_config : "");
  if (!o || !json_is_array(json_object_get(o, "kms_urls")) ||
      !json_is_array(json_object_get(o, "gateway_urls")))
    return -ENOMEM;
  return json_dump_buf(o, JSON_COMPACT | JSON_SORT_KEYS, out);
}

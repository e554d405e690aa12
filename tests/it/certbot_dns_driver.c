/* Drives certbot's DNS code for the integration tests: the Cloudflare provider, the CAA
 * procedure and the propagation check, one command per run, the result as one JSON line.
 *
 *   certbot_dns_driver [options] txt-add NAME VALUE
 *                                caa-add NAME FLAGS TAG VALUE
 *                                del NAME ID
 *                                list NAME [TYPE]
 *                                ns NAME
 *                                caa-set ACCOUNT_URI DOMAIN...
 *                                wait MAX_MS NAME VALUE SERVER...
 *   options: --api-url URL --token-file FILE (the token is never on the command line)
 *            --zone-id ID --ca-file FILE --timeout-ms N --retries N --backoff-ms N
 *            --ns HOST:PORT (repeatable) --ca CA_DOMAIN
 *
 * Exit status: 0 done, 1 the call failed ({"error": ..., "errno": N}), 2 bad command line. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/macro.h"
#include "base/str.h"
#include "certbot_caa.h"
#include "certbot_dns.h"
#include "certbot_dns_cf.h"
#include "certbot_dns_wait.h"

static int usage(void) {
  fprintf(stderr, "usage: certbot_dns_driver [options] txt-add|caa-add|del|list|ns|caa-set|wait "
                  "ARGS...\n");
  return 2;
}

static int print_json(json_t *j) {
  char *s = json_dump_compact(j);
  json_decref(j);
  if (!s)
    return 1;
  printf("%s\n", s);
  free(s);
  return 0;
}

static int fail(int r, const char *msg) {
  print_json(json_pack("{s:s, s:i}", "error", msg, "errno", -r));
  return 1;
}

static int read_token(const char *path, char **ret) {
  FILE *f = fopen(path, "re");
  if (!f)
    return -errno;
  char line[1024];
  char *s = fgets(line, sizeof(line), f);
  fclose(f);
  if (!s)
    return -EINVAL;
  *ret = strdup(str_strip(line));
  secure_wipe(line, sizeof(line));
  return *ret ? 0 : -ENOMEM;
}

int main(int argc, char **argv) {
  struct certbot_dns_cf_opts o = {0};
  const char *token_file = NULL, *ca = NULL;
  char **ns = NULL;
  char *token = NULL;
  int i = 1;
  for (; i < argc && str_startswith(argv[i], "--"); i += 2) {
    if (i + 1 >= argc)
      return usage();
    const char *k = argv[i], *v = argv[i + 1];
    uint32_t u = 0;
    if (str_eq(k, "--api-url"))
      o.api_url = v;
    else if (str_eq(k, "--token-file"))
      token_file = v;
    else if (str_eq(k, "--zone-id"))
      o.zone_id = v;
    else if (str_eq(k, "--ca-file"))
      o.ca_file = v;
    else if (str_eq(k, "--ca"))
      ca = v;
    else if (str_eq(k, "--ns")) {
      if (strv_push_dup(&ns, v) < 0)
        return 1;
    } else if (str_to_u32(v, &u) < 0)
      return usage();
    else if (str_eq(k, "--timeout-ms"))
      o.timeout_ms = u;
    else if (str_eq(k, "--retries"))
      o.retries = u;
    else if (str_eq(k, "--backoff-ms"))
      o.backoff_ms = u;
    else
      return usage();
  }
  if (i >= argc)
    return usage();
  const char *cmd = argv[i++];
  char **args = argv + i;
  int nargs = argc - i;
  char err[1024] = "";
  int r;

  if (str_eq(cmd, "wait")) {
    uint32_t max_ms;
    if (nargs < 4 || str_to_u32(args[0], &max_ms) < 0)
      return usage();
    r = certbot_dns_wait_txt(args + 3, args[1], args[2], max_ms, err, sizeof(err));
    strv_free(ns);
    return r < 0 ? fail(r, err) : print_json(json_pack("{s:b}", "ok", 1));
  }

  if (token_file && (r = read_token(token_file, &token)) < 0) {
    strv_free(ns);
    return fail(r, "cannot read the token file");
  }
  o.api_token = token;
  o.name_servers = ns;
  struct certbot_dns *d = NULL;
  r = certbot_dns_cf_new(&o, &d, err, sizeof(err));
  if (token) {
    secure_wipe(token, strlen(token));
    free(token);
  }
  strv_free(ns);
  if (r < 0)
    return fail(r, err);

  json_t *out = NULL;
  if (str_eq(cmd, "txt-add") && nargs == 2) {
    char *id = NULL;
    r = d->ops->txt_add(d, args[0], args[1], &id, err, sizeof(err));
    if (r == 0)
      out = json_pack("{s:s}", "id", id);
    free(id);
  } else if (str_eq(cmd, "caa-add") && nargs == 4) {
    char *id = NULL;
    uint32_t fl;
    if (str_to_u32(args[1], &fl) < 0) {
      d->ops->free(d);
      return usage();
    }
    r = d->ops->caa_add(d, args[0], fl, args[2], args[3], &id, err, sizeof(err));
    if (r == 0)
      out = json_pack("{s:s}", "id", id);
    free(id);
  } else if (str_eq(cmd, "del") && nargs == 2) {
    r = d->ops->del(d, args[0], args[1], err, sizeof(err));
    if (r == 0)
      out = json_pack("{s:b}", "ok", 1);
  } else if (str_eq(cmd, "list") && (nargs == 1 || nargs == 2)) {
    struct certbot_dns_record *recs = NULL;
    size_t n = 0;
    r = d->ops->list(d, args[0], nargs == 2 ? args[1] : NULL, &recs, &n, err, sizeof(err));
    if (r == 0) {
      json_t *a = json_array();
      for (size_t k = 0; k < n; k++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s}", "id", recs[k].id, "type",
                                           recs[k].type, "name", recs[k].name, "value",
                                           recs[k].value));
      out = json_pack("{s:o}", "records", a);
      certbot_dns_records_free(recs, n);
    }
  } else if (str_eq(cmd, "ns") && nargs == 1) {
    char **l = NULL;
    r = d->ops->authoritative(d, args[0], &l, err, sizeof(err));
    if (r == 0) {
      json_t *a = json_array();
      for (char **p = l; *p; p++)
        json_array_append_new(a, json_string(*p));
      out = json_pack("{s:o}", "servers", a);
      strv_free(l);
    }
  } else if (str_eq(cmd, "caa-set") && nargs >= 2) {
    r = certbot_caa_set(d, args + 1, args[0], ca, err, sizeof(err));
    if (r == 0)
      out = json_pack("{s:b}", "ok", 1);
  } else {
    d->ops->free(d);
    return usage();
  }
  d->ops->free(d);
  if (r < 0)
    return fail(r, err);
  return print_json(out);
}

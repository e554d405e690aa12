/* RFC 2136 provider over TCP with TSIG. */
#include "certbot_dns_rfc2136.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base64.h"
#include "base/log.h"
#include "base/str.h"
#include "certbot_dnsmsg.h"

struct rfc2136 {
  struct certbot_dns base;
  char *server; /* host:port */
  char *zone;
  char *key_name;
  struct buf secret;
  unsigned timeout_ms;
};

static const char *rcode_name(unsigned rc) {
  static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                      "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                      "NXRRSET", "NOTAUTH", "NOTZONE"};
  return rc < ARRAY_SIZE(names) ? names[rc] : "unknown rcode";
}

static uint16_t new_id(void) {
  uint16_t id = 0;
  if (RAND_bytes((unsigned char *)&id, sizeof(id)) != 1)
    id = (uint16_t)time(NULL);
  return id;
}

/* Sends msg (a message with this id) to the server over TCP and parses the answer into *m:
 * what = "update" or "query" for the messages. */
static int exchange(struct rfc2136 *d, const struct buf *msg, uint16_t id, const char *what,
                    const char *name, struct buf *resp, struct certbot_dns_msg *m, char *err,
                    size_t errlen) {
  int r = certbot_dns_tcp_exchange(d->server, buf_slice(msg), d->timeout_ms, resp);
  if (r < 0)
    return str_err(err, errlen, r, "DNS %s for %s at %s", what, name, d->server);
  if ((r = certbot_dnsmsg_parse(resp->data, resp->len, m)) < 0 || m->id != id ||
      !(m->flags & 0x8000))
    return str_err(err, errlen, r < 0 ? r : -EBADMSG, "DNS %s for %s: malformed answer from %s",
                   what, name, d->server);
  return 0;
}

/* Sends one signed update holding a single record change and checks the signed answer. */
static int update_one(struct rfc2136 *d, const char *name, uint16_t type, uint16_t class,
                      const struct buf *rdata, char *err, size_t errlen) {
  struct buf msg = BUF_INIT(CERTBOT_DNSMSG_MAX), resp = BUF_INIT(CERTBOT_DNSMSG_MAX);
  struct certbot_dns_msg m = {0};
  struct certbot_tsig_key k = {d->key_name, d->secret.data, d->secret.len};
  uint8_t mac[32];
  uint16_t id = new_id();
  int r;
  if ((r = certbot_dnsmsg_update_begin(id, d->zone, &msg)) < 0 ||
      (r = certbot_dnsmsg_update_rr(&msg, name, type, class, class == DNS_CLASS_IN ? 120 : 0,
                                    rdata->data, rdata->len)) < 0 ||
      (r = certbot_tsig_sign(&msg, &k, (uint64_t)time(NULL), mac)) < 0) {
    str_err(err, errlen, r, "building the DNS update for %s", name);
    goto out;
  }
  if ((r = exchange(d, &msg, id, "update", name, &resp, &m, err, errlen)) < 0)
    goto out;
  /* A server that does not take the key answers unsigned (RFC 8945 5.3.2): that is a refusal
   * either way, named by its rcode. */
  if (!m.has_tsig && m.rcode != 0) {
    r = -EPERM;
    str_err(err, errlen, r, "DNS update for %s refused by %s: %s (unsigned answer)", name,
            d->server, rcode_name(m.rcode));
    goto out;
  }
  if ((r = certbot_tsig_verify(resp.data, resp.len, &m, &k, mac, (uint64_t)time(NULL))) < 0) {
    str_err(err, errlen, r,
            "DNS update for %s: the answer of %s is not signed by the key %s (rcode %s)", name,
            d->server, d->key_name, rcode_name(m.rcode));
    goto out;
  }
  if (m.rcode != 0) {
    r = m.rcode == 5 || m.rcode == 9 ? -EPERM : -EIO;
    str_err(err, errlen, r, "DNS update for %s refused by %s: %s", name, d->server,
            rcode_name(m.rcode));
    goto out;
  }
  r = 0;
out:
  certbot_dnsmsg_free(&m);
  buf_free(&msg);
  buf_free(&resp);
  return r;
}

static int add_rr(struct rfc2136 *d, const char *name, uint16_t type, const struct buf *rdata,
                  const char *id, char **ret_id, char *err, size_t errlen) {
  int r = update_one(d, name, type, DNS_CLASS_IN, rdata, err, errlen);
  if (r < 0)
    return r;
  if (ret_id && !(*ret_id = strdup(id)))
    return -ENOMEM;
  return 0;
}

static int r_txt_add(struct certbot_dns *base, const char *name, const char *value, char **ret_id,
                     char *err, size_t errlen) {
  struct rfc2136 *d = (struct rfc2136 *)base;
  _cleanup_buf_ struct buf rd = BUF_INIT(4096);
  _cleanup_free_ char *id = str_printf("TXT %s", value);
  int r;
  if (!id)
    return -ENOMEM;
  if ((r = certbot_dns_txt_rdata(value, &rd)) < 0)
    return str_err(err, errlen, r, "TXT value for %s", name);
  return add_rr(d, name, DNS_TYPE_TXT, &rd, id, ret_id, err, errlen);
}

static int r_caa_add(struct certbot_dns *base, const char *name, unsigned flags, const char *tag,
                     const char *value, char **ret_id, char *err, size_t errlen) {
  struct rfc2136 *d = (struct rfc2136 *)base;
  _cleanup_buf_ struct buf rd = BUF_INIT(4096);
  _cleanup_free_ char *id = str_printf("CAA %u %s \"%s\"", flags, tag, value);
  int r;
  if (!id)
    return -ENOMEM;
  if ((r = certbot_dns_caa_rdata(flags, tag, value, &rd)) < 0)
    return str_err(err, errlen, r, "CAA record for %s", name);
  return add_rr(d, name, DNS_TYPE_CAA, &rd, id, ret_id, err, errlen);
}

/* id: "TXT <value>" or "CAA <flags> <tag> \"<value>\"". */
static int r_del(struct certbot_dns *base, const char *name, const char *id, char *err,
                 size_t errlen) {
  struct rfc2136 *d = (struct rfc2136 *)base;
  _cleanup_buf_ struct buf rd = BUF_INIT(4096);
  const char *v;
  int r;
  if ((v = str_after_prefix(id, "TXT "))) {
    if ((r = certbot_dns_txt_rdata(v, &rd)) < 0)
      return str_err(err, errlen, r, "TXT value for %s", name);
    return update_one(d, name, DNS_TYPE_TXT, DNS_CLASS_NONE, &rd, err, errlen);
  }
  if ((v = str_after_prefix(id, "CAA "))) {
    unsigned flags;
    char tag[16];
    int n = 0;
    if (sscanf(v, "%u %15[a-zA-Z0-9] \"%n", &flags, tag, &n) != 2 || n == 0)
      return str_err(err, errlen, -EINVAL, "bad record id for %s", name);
    const char *val = v + n;
    size_t vl = strlen(val);
    if (vl == 0 || val[vl - 1] != '"')
      return str_err(err, errlen, -EINVAL, "bad record id for %s", name);
    _cleanup_free_ char *value = strndup(val, vl - 1);
    if (!value)
      return -ENOMEM;
    if ((r = certbot_dns_caa_rdata(flags, tag, value, &rd)) < 0)
      return str_err(err, errlen, r, "bad record id for %s", name);
    return update_one(d, name, DNS_TYPE_CAA, DNS_CLASS_NONE, &rd, err, errlen);
  }
  return str_err(err, errlen, -EINVAL, "bad record id for %s", name);
}

static int query_type(struct rfc2136 *d, const char *name, uint16_t type,
                      struct certbot_dns_record **recs, size_t *n, char *err, size_t errlen) {
  struct buf msg = BUF_INIT(1024), resp = BUF_INIT(CERTBOT_DNSMSG_MAX);
  struct certbot_dns_msg m = {0};
  char lname[256];
  uint16_t id = new_id();
  int r;
  snprintf(lname, sizeof(lname), "%s", name);
  str_ascii_lower(lname);
  size_t ll = strlen(lname);
  if (ll > 0 && lname[ll - 1] == '.')
    lname[ll - 1] = 0;
  if ((r = certbot_dnsmsg_query(id, name, type, &msg)) < 0) {
    str_err(err, errlen, r, "DNS query for %s: %s", name, strerror(-r));
    goto out;
  }
  if ((r = exchange(d, &msg, id, "query", name, &resp, &m, err, errlen)) < 0)
    goto out;
  if (m.rcode != 0 && m.rcode != 3) {
    r = -EIO;
    str_err(err, errlen, r, "DNS query for %s at %s: %s", name, d->server, rcode_name(m.rcode));
    goto out;
  }
  for (size_t i = 0; i < m.n_answer; i++) {
    const struct certbot_dns_rr *rr = &m.rrs[i];
    if (rr->type != type || rr->class != DNS_CLASS_IN || strcmp(rr->name, lname) != 0)
      continue;
    char *val = NULL;
    r = type == DNS_TYPE_TXT ? certbot_dns_txt_rdata_decode(rr->rdata, &val)
                             : certbot_dns_caa_rdata_decode(rr->rdata, &val);
    if (r < 0) {
      str_err(err, errlen, r, "DNS query for %s: malformed record from %s", name, d->server);
      goto out;
    }
    struct certbot_dns_record *nr = realloc(*recs, (*n + 1) * sizeof(**recs));
    if (!nr) {
      free(val);
      r = -ENOMEM;
      goto out;
    }
    *recs = nr;
    struct certbot_dns_record *rec = &nr[(*n)++];
    *rec = (struct certbot_dns_record){0};
    rec->value = val;
    rec->type = strdup(type == DNS_TYPE_TXT ? "TXT" : "CAA");
    rec->name = strdup(lname);
    rec->id = str_printf("%s %s", rec->type ? rec->type : "", val);
    if (!rec->type || !rec->name || !rec->id) {
      r = -ENOMEM;
      goto out;
    }
  }
  r = 0;
out:
  certbot_dnsmsg_free(&m);
  buf_free(&msg);
  buf_free(&resp);
  return r;
}

static int r_list(struct certbot_dns *base, const char *name, const char *type,
                  struct certbot_dns_record **ret, size_t *ret_n, char *err, size_t errlen) {
  struct rfc2136 *d = (struct rfc2136 *)base;
  struct certbot_dns_record *recs = NULL;
  size_t n = 0;
  int r = 0;
  if (!type || strcasecmp(type, "TXT") == 0)
    r = query_type(d, name, DNS_TYPE_TXT, &recs, &n, err, errlen);
  if (r >= 0 && (!type || strcasecmp(type, "CAA") == 0))
    r = query_type(d, name, DNS_TYPE_CAA, &recs, &n, err, errlen);
  if (r < 0) {
    certbot_dns_records_free(recs, n);
    return r;
  }
  *ret = recs;
  *ret_n = n;
  return 0;
}

static int r_authoritative(struct certbot_dns *base, const char *name, char ***ret, char *err,
                           size_t errlen) {
  struct rfc2136 *d = (struct rfc2136 *)base;
  (void)name;
  char **l = calloc(2, sizeof(char *));
  if (!l || !(l[0] = strdup(d->server))) {
    free(l);
    return str_err(err, errlen, -ENOMEM, "out of memory");
  }
  *ret = l;
  return 0;
}

static void r_free(struct certbot_dns *base) {
  struct rfc2136 *d = (struct rfc2136 *)base;
  if (!d)
    return;
  free(d->server);
  free(d->zone);
  free(d->key_name);
  buf_free(&d->secret);
  free(d);
}

static const struct certbot_dns_ops rfc2136_ops = {
    .name = "rfc2136",
    .txt_add = r_txt_add,
    .caa_add = r_caa_add,
    .del = r_del,
    .list = r_list,
    .authoritative = r_authoritative,
    .free = r_free,
};

int certbot_dns_rfc2136_new(const struct certbot_rfc2136_opts *o, struct certbot_dns **ret,
                            char *err, size_t errlen) {
  if (str_isempty(o->server) || str_isempty(o->zone) || str_isempty(o->tsig_key_name) ||
      str_isempty(o->tsig_secret) || o->port == 0)
    return str_err(err, errlen, -EINVAL,
                   "rfc2136: server, port, zone, tsig_key_name and tsig_secret are required");
  if (!str_isempty(o->tsig_algorithm) && strcasecmp(o->tsig_algorithm, "hmac-sha256") != 0 &&
      strcasecmp(o->tsig_algorithm, "hmac-sha256.") != 0)
    return str_err(err, errlen, -EINVAL,
                   "rfc2136: tsig_algorithm %s is not supported (hmac-sha256)", o->tsig_algorithm);
  struct rfc2136 *d = calloc(1, sizeof(*d));
  if (!d)
    return -ENOMEM;
  d->base.ops = &rfc2136_ops;
  d->secret = BUF_INIT_SECRET(1024);
  d->timeout_ms = o->timeout_ms ? o->timeout_ms : 10000;
  bool v6 = strchr(o->server, ':') != NULL;
  d->server = str_printf(v6 ? "[%s]:%u" : "%s:%u", o->server, o->port);
  d->zone = strdup(o->zone);
  d->key_name = strdup(o->tsig_key_name);
  if (!d->server || !d->zone || !d->key_name) {
    r_free(&d->base);
    return -ENOMEM;
  }
  int r = base64_decode_buf(o->tsig_secret, strlen(o->tsig_secret), &d->secret);
  if (r < 0 || d->secret.len == 0) {
    r_free(&d->base);
    return str_err(err, errlen, -EINVAL, "rfc2136: tsig_secret is not valid base64");
  }
  *ret = &d->base;
  return 0;
}

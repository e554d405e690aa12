/* DCAP collateral: loading it from dcap-qvl JSON, Intel PCS responses and directories. */
#include "attest/dcap_collateral.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attest/pck.h"
#include "attest/quote.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"

/* A dcap-qvl collateral JSON holds two CRLs in hex plus the rest. */
#define QVL_JSON_MAX ((size_t)2 * DCAP_COLLATERAL_MAX_CRL * 2 + (size_t)4 * 1024 * 1024)

void dcap_collateral_free(struct dcap_collateral *c) {
  if (!c)
    return;
  free(c->pck_crl_issuer_chain);
  buf_free(&c->root_ca_crl);
  buf_free(&c->pck_crl);
  free(c->tcb_info_issuer_chain);
  free(c->tcb_info);
  free(c->qe_identity_issuer_chain);
  free(c->qe_identity);
  *c = (struct dcap_collateral){};
}

static void collateral_init(struct dcap_collateral *c) {
  *c = (struct dcap_collateral){};
  buf_init(&c->root_ca_crl, DCAP_COLLATERAL_MAX_CRL);
  buf_init(&c->pck_crl, DCAP_COLLATERAL_MAX_CRL);
}

static int dup_opt(const char *s, char **ret) {
  *ret = NULL;
  if (!s)
    return 0;
  *ret = strdup(s);
  return *ret ? 0 : -ENOMEM;
}

int dcap_collateral_copy(const struct dcap_collateral *c, struct dcap_collateral *ret) {
  if (!c || !ret)
    return -EINVAL;
  struct dcap_collateral n;
  collateral_init(&n);
  int r = dup_opt(c->pck_crl_issuer_chain, &n.pck_crl_issuer_chain);
  if (r >= 0)
    r = dup_opt(c->tcb_info_issuer_chain, &n.tcb_info_issuer_chain);
  if (r >= 0)
    r = dup_opt(c->tcb_info, &n.tcb_info);
  if (r >= 0)
    r = dup_opt(c->qe_identity_issuer_chain, &n.qe_identity_issuer_chain);
  if (r >= 0)
    r = dup_opt(c->qe_identity, &n.qe_identity);
  if (r >= 0)
    r = buf_append(&n.root_ca_crl, c->root_ca_crl.data, c->root_ca_crl.len);
  if (r >= 0)
    r = buf_append(&n.pck_crl, c->pck_crl.data, c->pck_crl.len);
  if (r < 0) {
    dcap_collateral_free(&n);
    return r;
  }
  memcpy(n.tcb_info_signature, c->tcb_info_signature, 64);
  memcpy(n.qe_identity_signature, c->qe_identity_signature, 64);
  *ret = n;
  return 0;
}

/* ---- dates ---- */

static int digits(const char *s, size_t n, int *ret) {
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -EBADMSG;
    v = v * 10 + (s[i] - '0');
  }
  *ret = v;
  return 0;
}

int dcap_parse_date(const char *s, int64_t *ret) {
  if (!s || !ret)
    return -EINVAL;
  size_t len = strlen(s);
  /* YYYY-MM-DDTHH:MM:SS */
  if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
      s[16] != ':')
    return -EBADMSG;
  int Y, M, D, h, m, sec;
  if (digits(s, 4, &Y) < 0 || digits(s + 5, 2, &M) < 0 || digits(s + 8, 2, &D) < 0 ||
      digits(s + 11, 2, &h) < 0 || digits(s + 14, 2, &m) < 0 || digits(s + 17, 2, &sec) < 0)
    return -EBADMSG;
  const char *p = s + 19;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9')
      return -EBADMSG;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  if (!(str_eq(p, "Z") || str_eq(p, "z") || str_eq(p, "+00:00")))
    return -EBADMSG;
  if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
    return -EBADMSG;
  static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (D > mdays[M - 1])
    return -EBADMSG;
  bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
  if (M == 2 && D == 29 && !leap)
    return -EBADMSG;
  /* days from civil (proleptic Gregorian) */
  int y = Y - (M <= 2);
  int era = y / 400;
  int yoe = y - era * 400;
  int mp = (M + 9) % 12;
  int doy = (153 * mp + 2) / 5 + D - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = (int64_t)era * 146097 + doe - 719468;
  *ret = days * 86400 + h * 3600 + m * 60 + sec;
  return 0;
}

void dcap_format_date(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, 32, "@%lld", (long long)t);
}

/* ---- raw JSON member extraction ---- */

static size_t skip_ws(const char *s, size_t len, size_t i) {
  while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
    i++;
  return i;
}

/* s[i] == '"': index just past the closing quote, or 0 on error. */
static size_t skip_string(const char *s, size_t len, size_t i) {
  for (i++; i < len; i++) {
    if (s[i] == '\\') {
      i++;
      continue;
    }
    if (s[i] == '"')
      return i + 1;
    if ((unsigned char)s[i] < 0x20)
      return 0;
  }
  return 0;
}

/* Index just past the value starting at s[i], or 0 on error. */
static size_t skip_value(const char *s, size_t len, size_t i) {
  if (i >= len)
    return 0;
  if (s[i] == '"')
    return skip_string(s, len, i);
  if (s[i] == '{' || s[i] == '[') {
    char open[1024]; /* the brackets still open, innermost last */
    size_t depth = 0;
    while (i < len) {
      char ch = s[i];
      if (ch == '"') {
        i = skip_string(s, len, i);
        if (i == 0)
          return 0;
        continue;
      }
      if (ch == '{' || ch == '[') {
        if (depth >= sizeof(open))
          return 0;
        open[depth++] = ch;
      } else if (ch == '}' || ch == ']') {
        if (depth == 0 || open[depth - 1] != (ch == '}' ? '{' : '['))
          return 0;
        if (--depth == 0)
          return i + 1;
      }
      i++;
    }
    return 0;
  }
  size_t start = i;
  while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
         s[i] != '\n' && s[i] != '\r')
    i++;
  return i > start ? i : 0;
}

int dcap_json_member_raw(const char *body, size_t len, const char *key, const char **ret,
                         size_t *ret_len) {
  if (!body || !key || !ret || !ret_len)
    return -EINVAL;
  size_t klen = strlen(key);
  size_t i = skip_ws(body, len, 0);
  if (i >= len || body[i] != '{')
    return -EBADMSG;
  i = skip_ws(body, len, i + 1);
  if (i < len && body[i] == '}')
    return -ENOENT;
  for (;;) {
    if (i >= len || body[i] != '"')
      return -EBADMSG;
    size_t kend = skip_string(body, len, i);
    if (kend == 0)
      return -EBADMSG;
    bool match = kend - i - 2 == klen && memcmp(body + i + 1, key, klen) == 0;
    i = skip_ws(body, len, kend);
    if (i >= len || body[i] != ':')
      return -EBADMSG;
    i = skip_ws(body, len, i + 1);
    size_t vend = skip_value(body, len, i);
    if (vend == 0)
      return -EBADMSG;
    if (match) {
      if (body[i] != '{')
        return -EBADMSG;
      *ret = body + i;
      *ret_len = vend - i;
      return 0;
    }
    i = skip_ws(body, len, vend);
    if (i >= len)
      return -EBADMSG;
    if (body[i] == '}')
      return -ENOENT;
    if (body[i] != ',')
      return -EBADMSG;
    i = skip_ws(body, len, i + 1);
  }
}

/* ---- CRLs and chains ---- */

static bool has_nul(const void *p, size_t n) { return n && memchr(p, 0, n) != NULL; }

/* A CRL in DER, PEM or hex text of DER → DER appended to out (checked to parse). */
static int crl_to_der(const uint8_t *data, size_t len, struct buf *out) {
  if (!data || len == 0)
    return -EBADMSG;
  if (len > DCAP_COLLATERAL_MAX_CRL * 2 + 4096)
    return -ENOBUFS;
  size_t start = out->len;
  int r;
  if (data[0] == 0x30) {
    r = buf_append(out, data, len);
  } else if (memmem(data, len, "-----BEGIN X509 CRL-----", 24)) {
    _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(data, (int)len);
    if (!bio)
      return -ENOMEM;
    _cleanup_(X509_CRL_freep) X509_CRL *crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
    ERR_clear_error();
    if (!crl)
      return -EBADMSG;
    int n = i2d_X509_CRL(crl, NULL);
    if (n <= 0)
      return -EBADMSG;
    r = buf_reserve(out, (size_t)n);
    if (r < 0)
      return r;
    uint8_t *p = out->data + out->len;
    if (i2d_X509_CRL(crl, &p) != n)
      return -EBADMSG;
    out->len += (size_t)n;
    r = 0;
  } else {
    r = hex_decode_buf((const char *)data, len, true, out);
    if (r == -EINVAL)
      r = -EBADMSG;
  }
  if (r < 0) {
    out->len = start;
    return r;
  }
  /* must be one DER CRL, nothing after it */
  const unsigned char *p = out->data + start;
  X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)(out->len - start));
  ERR_clear_error();
  bool ok = crl && p == out->data + out->len;
  X509_CRL_free(crl);
  if (!ok) {
    out->len = start;
    return -EBADMSG;
  }
  return 0;
}

/* A PEM chain (URL-encoded ones, as in PCS headers, are decoded); NULL or "" gives "". */
static int chain_dup(const char *pem, size_t len, char **ret) {
  if (!pem || len == 0) {
    *ret = strdup("");
    return *ret ? 0 : -ENOMEM;
  }
  if (len > DCAP_COLLATERAL_MAX_CHAIN)
    return -ENOBUFS;
  if (has_nul(pem, len))
    return -EBADMSG;
  if (!memmem(pem, len, "-----BEGIN", 10) && memchr(pem, '%', len))
    return str_pct_decode(pem, len, PCT_LENIENT, ret, NULL);
  *ret = strndup(pem, len);
  return *ret ? 0 : -ENOMEM;
}

static int text_dup(const char *p, size_t len, char **ret) {
  if (len > DCAP_COLLATERAL_MAX_JSON)
    return -ENOBUFS;
  if (has_nul(p, len))
    return -EBADMSG;
  char *s = malloc(len + 1);
  if (!s)
    return -ENOMEM;
  memcpy(s, p, len);
  s[len] = '\0';
  *ret = s;
  return 0;
}

/* ---- dcap-qvl JSON ---- */

static int qvl_str(const json_t *j, const char *key, bool chain, char **ret) {
  const char *s;
  int r = json_get_str(j, key, &s);
  if (r < 0)
    return r == -ENOENT ? -ENOENT : -EBADMSG;
  size_t len = json_string_length(json_object_get(j, key));
  return chain ? chain_dup(s, len, ret) : text_dup(s, len, ret);
}

static int qvl_crl(const json_t *j, const char *key, struct buf *out) {
  const char *s;
  int r = json_get_str(j, key, &s);
  if (r < 0)
    return r == -ENOENT ? -ENOENT : -EBADMSG;
  size_t len = json_string_length(json_object_get(j, key));
  return crl_to_der((const uint8_t *)s, len, out);
}

static int qvl_sig(const json_t *j, const char *key, uint8_t out[64]) {
  int r = json_get_hex(j, key, out, 64);
  if (r < 0)
    return r == -ENOENT ? -ENOENT : -EBADMSG;
  return 0;
}

int dcap_collateral_from_qvl_json(const char *text, size_t len, struct dcap_collateral *ret) {
  if (!text || !ret)
    return -EINVAL;
  _cleanup_json_ json_t *j = NULL;
  int r = json_parse_buf(text, len, QVL_JSON_MAX, &j);
  if (r < 0)
    return r;
  if (!json_is_object(j))
    return -EBADMSG;
  struct dcap_collateral c;
  collateral_init(&c);
  if ((r = qvl_str(j, "pck_crl_issuer_chain", true, &c.pck_crl_issuer_chain)) < 0 ||
      (r = qvl_crl(j, "root_ca_crl", &c.root_ca_crl)) < 0 ||
      (r = qvl_crl(j, "pck_crl", &c.pck_crl)) < 0 ||
      (r = qvl_str(j, "tcb_info_issuer_chain", true, &c.tcb_info_issuer_chain)) < 0 ||
      (r = qvl_str(j, "tcb_info", false, &c.tcb_info)) < 0 ||
      (r = qvl_sig(j, "tcb_info_signature", c.tcb_info_signature)) < 0 ||
      (r = qvl_str(j, "qe_identity_issuer_chain", true, &c.qe_identity_issuer_chain)) < 0 ||
      (r = qvl_str(j, "qe_identity", false, &c.qe_identity)) < 0 ||
      (r = qvl_sig(j, "qe_identity_signature", c.qe_identity_signature)) < 0) {
    dcap_collateral_free(&c);
    return r;
  }
  *ret = c;
  return 0;
}

int dcap_collateral_to_qvl_json(const struct dcap_collateral *c, struct buf *out) {
  if (!c || !out || !c->tcb_info || !c->qe_identity)
    return -EINVAL;
  _cleanup_json_ json_t *j = json_object();
  if (!j)
    return -ENOMEM;
  int r;
  if ((r = json_set_str(j, "pck_crl_issuer_chain", c->pck_crl_issuer_chain ?: "")) < 0 ||
      (r = json_set_hex(j, "root_ca_crl", c->root_ca_crl.data, c->root_ca_crl.len)) < 0 ||
      (r = json_set_hex(j, "pck_crl", c->pck_crl.data, c->pck_crl.len)) < 0 ||
      (r = json_set_str(j, "tcb_info_issuer_chain", c->tcb_info_issuer_chain ?: "")) < 0 ||
      (r = json_set_str(j, "tcb_info", c->tcb_info)) < 0 ||
      (r = json_set_hex(j, "tcb_info_signature", c->tcb_info_signature, 64)) < 0 ||
      (r = json_set_str(j, "qe_identity_issuer_chain", c->qe_identity_issuer_chain ?: "")) < 0 ||
      (r = json_set_str(j, "qe_identity", c->qe_identity)) < 0 ||
      (r = json_set_hex(j, "qe_identity_signature", c->qe_identity_signature, 64)) < 0)
    return r;
  return json_dump_buf(j, JSON_COMPACT | JSON_PRESERVE_ORDER, out);
}

/* ---- PCS responses ---- */

/* {"<key>":{...},"signature":"hex"}: the exact text of the object and the signature. */
static int pcs_body(const char *body, size_t len, const char *key, char **ret_text,
                    uint8_t sig[64]) {
  if (!body)
    return -EINVAL;
  if (len > DCAP_COLLATERAL_MAX_JSON)
    return -ENOBUFS;
  _cleanup_json_ json_t *j = NULL;
  int r = json_parse_buf(body, len, DCAP_COLLATERAL_MAX_JSON, &j);
  if (r < 0)
    return r;
  if (!json_is_object(json_object_get(j, key)))
    return -EBADMSG;
  r = json_get_hex(j, "signature", sig, 64);
  if (r < 0)
    return -EBADMSG;
  const char *raw;
  size_t raw_len;
  r = dcap_json_member_raw(body, len, key, &raw, &raw_len);
  if (r < 0)
    return -EBADMSG;
  return text_dup(raw, raw_len, ret_text);
}

int dcap_collateral_from_pcs(const char *tcb_info_body, size_t tcb_info_len,
                             const char *tcb_chain_pem, const char *qe_identity_body,
                             size_t qe_identity_len, const char *qe_chain_pem,
                             const uint8_t *root_crl, size_t root_crl_len, const uint8_t *pck_crl,
                             size_t pck_crl_len, const char *pck_crl_chain_pem,
                             struct dcap_collateral *ret) {
  if (!tcb_info_body || !qe_identity_body || !tcb_chain_pem || !root_crl || !pck_crl || !ret)
    return -EINVAL;
  if (!qe_chain_pem)
    qe_chain_pem = tcb_chain_pem;
  struct dcap_collateral c;
  collateral_init(&c);
  int r;
  if ((r = pcs_body(tcb_info_body, tcb_info_len, "tcbInfo", &c.tcb_info, c.tcb_info_signature)) <
          0 ||
      (r = pcs_body(qe_identity_body, qe_identity_len, "enclaveIdentity", &c.qe_identity,
                    c.qe_identity_signature)) < 0 ||
      (r = chain_dup(tcb_chain_pem, strlen(tcb_chain_pem), &c.tcb_info_issuer_chain)) < 0 ||
      (r = chain_dup(qe_chain_pem, strlen(qe_chain_pem), &c.qe_identity_issuer_chain)) < 0 ||
      (r = chain_dup(pck_crl_chain_pem ?: "", pck_crl_chain_pem ? strlen(pck_crl_chain_pem) : 0,
                     &c.pck_crl_issuer_chain)) < 0 ||
      (r = crl_to_der(root_crl, root_crl_len, &c.root_ca_crl)) < 0 ||
      (r = crl_to_der(pck_crl, pck_crl_len, &c.pck_crl)) < 0) {
    dcap_collateral_free(&c);
    return r;
  }
  *ret = c;
  return 0;
}

/* ---- directories ---- */

/* Reads the first existing file of names (NULL-terminated) in dir; -ENOENT when none. */
static int read_first(const char *dir, const char *const *names, size_t max, struct buf *out,
                      const char **ret_name) {
  for (size_t i = 0; names[i]; i++) {
    _cleanup_free_ char *p = str_printf("%s/%s", dir, names[i]);
    if (!p)
      return -ENOMEM;
    int r = file_read_all(p, max, out);
    if (r == -ENOENT)
      continue;
    if (r < 0)
      return r;
    if (ret_name)
      *ret_name = names[i];
    return 0;
  }
  return -ENOENT;
}

/* The one file matching pattern in dir (its allocated name); -ENOENT none, -EBADMSG several. */
static int glob_one(const char *dir, const char *pattern, char **ret) {
  DIR *d = opendir(dir);
  if (!d)
    return -errno;
  char *found = NULL;
  int r = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (fnmatch(pattern, de->d_name, FNM_CASEFOLD) != 0)
      continue;
    if (found) {
      r = -EBADMSG;
      break;
    }
    found = strdup(de->d_name);
    if (!found) {
      r = -ENOMEM;
      break;
    }
  }
  closedir(d);
  if (r < 0 || !found) {
    free(found);
    return r < 0 ? r : -ENOENT;
  }
  *ret = found;
  return 0;
}

static int read_chain(const char *dir, const char *const *names, char **ret) {
  _cleanup_buf_ struct buf b = BUF_INIT(DCAP_COLLATERAL_MAX_CHAIN);
  int r = read_first(dir, names, DCAP_COLLATERAL_MAX_CHAIN, &b, NULL);
  if (r < 0)
    return r;
  return chain_dup((const char *)b.data ?: "", b.len, ret);
}

static int from_dir(const char *dir, bool processor, const uint8_t *fmspc,
                    struct dcap_collateral *ret) {
  int r;
  {
    _cleanup_buf_ struct buf j = BUF_INIT(QVL_JSON_MAX);
    static const char *const qvl_names[] = {"collateral.json", NULL};
    r = read_first(dir, qvl_names, QVL_JSON_MAX, &j, NULL);
    if (r >= 0)
      return dcap_collateral_from_qvl_json((const char *)j.data ?: "", j.len, ret);
    if (r != -ENOENT)
      return r;
  }

  _cleanup_buf_ struct buf tcb = BUF_INIT(DCAP_COLLATERAL_MAX_JSON),
                           qe = BUF_INIT(DCAP_COLLATERAL_MAX_JSON),
                           root_crl = BUF_INIT(DCAP_COLLATERAL_MAX_CRL * 2 + 4096),
                           pck_crl = BUF_INIT(DCAP_COLLATERAL_MAX_CRL * 2 + 4096);
  static const char *const tcb_names[] = {"tcb_info.json", "tcbinfo.json", "tcbInfo.json",
                                          "sample_tcbInfo_response", NULL};
  r = read_first(dir, tcb_names, DCAP_COLLATERAL_MAX_JSON, &tcb, NULL);
  if (r == -ENOENT) {
    _cleanup_free_ char *name = NULL;
    char pattern[64] = "tcbinfov3_*.json";
    if (fmspc)
      snprintf(pattern, sizeof(pattern), "tcbinfov3_%02x%02x%02x%02x%02x%02x.json", fmspc[0],
               fmspc[1], fmspc[2], fmspc[3], fmspc[4], fmspc[5]);
    r = glob_one(dir, pattern, &name);
    if (r >= 0) {
      const char *const one[] = {name, NULL};
      r = read_first(dir, one, DCAP_COLLATERAL_MAX_JSON, &tcb, NULL);
    }
  }
  if (r < 0)
    return r;

  /* the TCB info id picks the zkdcap QE identity file */
  bool tdx = memmem(tcb.data, tcb.len, "\"id\":\"TDX\"", 10) != NULL;
  const char *const qe_names[] = {"qe_identity.json",
                                  "qeidentity.json",
                                  "qeIdentity.json",
                                  "sample_qeIdentity_response",
                                  tdx ? "qeidentityv2_tdx.json" : "qeidentityv2_sgx.json",
                                  NULL};
  r = read_first(dir, qe_names, DCAP_COLLATERAL_MAX_JSON, &qe, NULL);
  if (r < 0)
    return r;
  static const char *const root_crl_names[] = {
      "root_ca_crl.der", "intel_root_ca_crl.der", "rootcrl.der", "rootCaCrl.der",
      "root_ca_crl.pem", "rootCaCrl.pem",         NULL};
  r = read_first(dir, root_crl_names, root_crl.max, &root_crl, NULL);
  if (r < 0)
    return r;
  static const char *const platform_crl_names[] = {
      "pck_crl.der", "pck_platform_crl.der",  "pckcrl", "intermediateCaCrl.der",
      "pck_crl.pem", "intermediateCaCrl.pem", NULL};
  static const char *const processor_crl_names[] = {"pck_processor_crl.der", "pck_crl.der",
                                                    "pckcrl", "pck_crl.pem", NULL};
  r = read_first(dir, processor ? processor_crl_names : platform_crl_names, pck_crl.max, &pck_crl,
                 NULL);
  if (r < 0)
    return r;

  _cleanup_free_ char *tcb_chain = NULL, *qe_chain = NULL, *pck_chain = NULL;
  static const char *const tcb_chain_names[] = {
      "tcb_signing_chain.pem", "tcb_info_issuer_chain.pem", "tcbInfoIssuerChain.pem",
      "tcbSignChain.pem",      "tcb_signing_cert.pem",      NULL};
  r = read_chain(dir, tcb_chain_names, &tcb_chain);
  if (r < 0)
    return r;
  static const char *const qe_chain_names[] = {"qe_identity_issuer_chain.pem",
                                               "qeIdentityIssuerChain.pem", NULL};
  r = read_chain(dir, qe_chain_names, &qe_chain);
  if (r < 0 && r != -ENOENT)
    return r;
  static const char *const pck_chain_names[] = {"pck_crl_issuer_chain.pem", "pckCrlIssuerChain.pem",
                                                NULL};
  r = read_chain(dir, pck_chain_names, &pck_chain);
  if (r < 0 && r != -ENOENT)
    return r;

  if (buf_terminate(&tcb) < 0 || buf_terminate(&qe) < 0)
    return -ENOMEM;
  return dcap_collateral_from_pcs((const char *)tcb.data, tcb.len, tcb_chain, (const char *)qe.data,
                                  qe.len, qe_chain ?: tcb_chain, root_crl.data, root_crl.len,
                                  pck_crl.data, pck_crl.len, pck_chain, ret);
}

int dcap_collateral_from_dir_ca(const char *dir, const char *ca, struct dcap_collateral *ret) {
  if (!dir || !ret)
    return -EINVAL;
  bool processor = ca && str_eq(ca, "processor");
  if (ca && !processor && !str_eq(ca, "platform"))
    return -EINVAL;
  return from_dir(dir, processor, NULL, ret);
}

int dcap_collateral_from_dir(const char *dir, struct dcap_collateral *ret) {
  return dcap_collateral_from_dir_ca(dir, NULL, ret);
}

int dcap_collateral_from_dir_quote(const char *dir, const struct quote *q,
                                   struct dcap_collateral *ret) {
  if (!dir || !q || !ret)
    return -EINVAL;
  if (q->cert_type != QUOTE_CERT_PCK_CHAIN || q->pck_chain_pem.len == 0)
    return -EINVAL;
  struct pck_ext ext;
  int r = pck_chain_leaf_ext(q->pck_chain_pem.ptr, q->pck_chain_pem.len, &ext);
  if (r < 0)
    return -EBADMSG;
  _cleanup_x509_chain_ STACK_OF(X509) *sk = NULL;
  r = x509_chain_from_pem(q->pck_chain_pem.ptr, q->pck_chain_pem.len, &sk);
  if (r < 0)
    return -EBADMSG;
  _cleanup_buf_ struct buf issuer = BUF_INIT(4096);
  r = x509_cert_issuer_string(sk_X509_value(sk, 0), &issuer);
  if (r < 0 || buf_terminate(&issuer) < 0)
    return -EBADMSG;
  bool processor = strstr((const char *)issuer.data, "Processor CA") != NULL;
  return from_dir(dir, processor, ext.fmspc, ret);
}

/* ---- expiry ---- */

static int text_next_update(const char *text, int64_t *ret) {
  if (!text)
    return -EBADMSG;
  _cleanup_json_ json_t *j = NULL;
  int r = json_parse_buf(text, strlen(text), DCAP_COLLATERAL_MAX_JSON, &j);
  if (r < 0)
    return r;
  const char *s;
  if (json_get_str(j, "nextUpdate", &s) < 0)
    return -EBADMSG;
  return dcap_parse_date(s, ret);
}

static int asn1_time_unix(const ASN1_TIME *t, int64_t *ret) {
  struct tm tm;
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
    return -EBADMSG;
  *ret = (int64_t)timegm(&tm);
  return 0;
}

static int crl_next_update(const struct buf *der, int64_t *ret) {
  const unsigned char *p = der->data;
  _cleanup_(X509_CRL_freep) X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)der->len);
  ERR_clear_error();
  if (!crl)
    return -EBADMSG;
  return asn1_time_unix(X509_CRL_get0_nextUpdate(crl), ret);
}

int dcap_collateral_next_update(const struct dcap_collateral *c, int64_t *ret) {
  if (!c || !ret)
    return -EINVAL;
  int64_t t[4];
  int r;
  if ((r = text_next_update(c->tcb_info, &t[0])) < 0 ||
      (r = text_next_update(c->qe_identity, &t[1])) < 0 ||
      (r = crl_next_update(&c->root_ca_crl, &t[2])) < 0 ||
      (r = crl_next_update(&c->pck_crl, &t[3])) < 0)
    return r;
  int64_t m = t[0];
  for (size_t i = 1; i < 4; i++)
    m = MIN(m, t[i]);
  *ret = m;
  return 0;
}

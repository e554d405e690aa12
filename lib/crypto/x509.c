/* X.509 certificate builder and parsing helpers on top of OpenSSL's X509. Extensions are built
 * from their ASN.1 structures (never from config strings), so names cannot inject syntax. */
#include "crypto/x509.h"

#include <errno.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

#include "base/macro.h"
#include "crypto/hash.h"
#include "crypto/keys.h"

static int ossl_fail(int r) {
  ERR_clear_error();
  return r;
}

/* ---- builder ---- */

static int add_name_entry(X509_NAME *name, int nid, const char *value) {
  if (!value)
    return 0;
  if (!value[0])
    return -EINVAL;
  if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *)value, -1, -1,
                                 0) != 1)
    return ossl_fail(-EINVAL);
  return 0;
}

static int set_serial(X509 *cert, const struct x509_params *p, EVP_PKEY *subject_key) {
  uint8_t bytes[32];
  size_t n;

  if (p->serial) {
    if (p->serial_len == 0 || p->serial_len > 20)
      return -EINVAL;
    memcpy(bytes, p->serial, p->serial_len);
    n = p->serial_len;
  } else if (p->serial_len) {
    return -EINVAL;
  } else if (p->serial_from_spki) {
    _cleanup_buf_ struct buf spki = BUF_INIT(8192);
    int r = key_to_spki_der(subject_key, &spki);
    if (r < 0)
      return r;
    r = hash_buf(HASH_SHA256, spki.data, spki.len, bytes);
    if (r < 0)
      return r;
    bytes[0] &= 0x7f;
    n = 20;
  } else {
    if (RAND_bytes(bytes, 16) != 1)
      return ossl_fail(-EIO);
    bytes[0] &= 0x7f;
    n = 16;
  }

  _cleanup_(BN_freep) BIGNUM *bn = BN_bin2bn(bytes, (int)n, NULL);
  if (!bn)
    return ossl_fail(-ENOMEM);
  _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
  if (!serial || X509_set_serialNumber(cert, serial) != 1)
    return ossl_fail(-ENOMEM);
  return 0;
}

static int set_validity(X509 *cert, int64_t not_before, int64_t not_after) {
  if (not_before == 0 && not_after == 0) {
    not_before = X509_RCGEN_NOT_BEFORE;
    not_after = X509_RCGEN_NOT_AFTER;
  }
  /* GeneralizedTime limits: years 0000..9999. */
  if (not_after < not_before || not_before < -62135596800LL || not_after > 253402300799LL)
    return -EINVAL;
  /* ASN1_TIME_set picks UTCTime for 1950..2049 and GeneralizedTime otherwise (RFC 5280). */
  _cleanup_(ASN1_TIME_freep) ASN1_TIME *nb = ASN1_TIME_set(NULL, (time_t)not_before);
  _cleanup_(ASN1_TIME_freep) ASN1_TIME *na = ASN1_TIME_set(NULL, (time_t)not_after);
  if (!nb || !na || X509_set1_notBefore(cert, nb) != 1 || X509_set1_notAfter(cert, na) != 1)
    return ossl_fail(-EINVAL);
  return 0;
}

static int add_ext_i2d(X509 *cert, int nid, void *value, bool critical) {
  if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_APPEND) != 1)
    return ossl_fail(-EIO);
  return 0;
}

static bool dns_name_ok(const char *s) {
  if (!s || !s[0])
    return false;
  for (const char *c = s; *c; c++)
    if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
      return false;
  return true;
}

static int add_san(X509 *cert, const struct x509_params *p) {
  if (p->n_dns_sans == 0)
    return 0;
  if (!p->dns_sans)
    return -EINVAL;
  _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *names = GENERAL_NAMES_new();
  if (!names)
    return -ENOMEM;
  for (size_t i = 0; i < p->n_dns_sans; i++) {
    const char *s = p->dns_sans[i];
    if (!dns_name_ok(s))
      return -EINVAL;
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    if (!gn || !ia5 || ASN1_STRING_set(ia5, s, (int)strlen(s)) != 1) {
      GENERAL_NAME_free(gn);
      ASN1_IA5STRING_free(ia5);
      return ossl_fail(-ENOMEM);
    }
    GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    if (sk_GENERAL_NAME_push(names, gn) <= 0) {
      GENERAL_NAME_free(gn);
      return ossl_fail(-ENOMEM);
    }
  }
  return add_ext_i2d(cert, NID_subject_alt_name, names, false);
}

static int add_basic_constraints(X509 *cert, const struct x509_params *p) {
  if (!p->is_ca && !p->explicit_no_ca)
    return 0;
  if (p->path_len < -1 || (!p->is_ca && p->path_len >= 0))
    return -EINVAL;
  _cleanup_(BASIC_CONSTRAINTS_freep) BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
  if (!bc)
    return -ENOMEM;
  bc->ca = p->is_ca ? 0xff : 0;
  if (p->is_ca && p->path_len >= 0) {
    bc->pathlen = ASN1_INTEGER_new();
    if (!bc->pathlen || ASN1_INTEGER_set(bc->pathlen, p->path_len) != 1)
      return ossl_fail(-ENOMEM);
  }
  return add_ext_i2d(cert, NID_basic_constraints, bc, true);
}

static int add_key_usage(X509 *cert, unsigned bits) {
  if (bits == 0)
    return 0;
  if (bits >> 9)
    return -EINVAL;
  _cleanup_(ASN1_BIT_STRING_freep) ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
  if (!ku)
    return -ENOMEM;
  for (int i = 0; i < 9; i++)
    if ((bits & (1u << i)) && ASN1_BIT_STRING_set_bit(ku, i, 1) != 1)
      return ossl_fail(-ENOMEM);
  return add_ext_i2d(cert, NID_key_usage, ku, true);
}

static int add_ext_key_usage(X509 *cert, unsigned bits) {
  if (bits == 0)
    return 0;
  if (bits & ~(X509_EKU_SERVER_AUTH | X509_EKU_CLIENT_AUTH))
    return -EINVAL;
  _cleanup_(EXTENDED_KEY_USAGE_freep) EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
  if (!eku)
    return -ENOMEM;
  if ((bits & X509_EKU_SERVER_AUTH) && sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) <= 0)
    return ossl_fail(-ENOMEM);
  if ((bits & X509_EKU_CLIENT_AUTH) && sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)) <= 0)
    return ossl_fail(-ENOMEM);
  return add_ext_i2d(cert, NID_ext_key_usage, eku, false);
}

/* SHA-1 of the subjectPublicKey BIT STRING contents (RFC 5280 4.2.1.2 method 1). */
static int key_id(X509 *c, ASN1_OCTET_STRING **ret) {
  uint8_t md[20];
  unsigned n = 0;
  if (X509_pubkey_digest(c, EVP_sha1(), md, &n) != 1 || n != sizeof(md))
    return ossl_fail(-EIO);
  ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
  if (!os || ASN1_OCTET_STRING_set(os, md, (int)n) != 1) {
    ASN1_OCTET_STRING_free(os);
    return ossl_fail(-ENOMEM);
  }
  *ret = os;
  return 0;
}

static int add_key_ids(X509 *cert, X509 *issuer) {
  _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *skid = NULL;
  int r = key_id(cert, &skid);
  if (r < 0)
    return r;
  r = add_ext_i2d(cert, NID_subject_key_identifier, skid, false);
  if (r < 0)
    return r;

  _cleanup_(AUTHORITY_KEYID_freep) AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
  if (!akid)
    return -ENOMEM;
  if (!issuer)
    akid->keyid = ASN1_OCTET_STRING_dup(skid);
  else if (X509_get0_subject_key_id(issuer))
    akid->keyid = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(issuer));
  else {
    r = key_id(issuer, &akid->keyid);
    if (r < 0)
      return r;
  }
  if (!akid->keyid)
    return ossl_fail(-ENOMEM);
  return add_ext_i2d(cert, NID_authority_key_identifier, akid, false);
}

static int add_custom_ext(X509 *cert, const struct x509_ext *e) {
  if (!e->oid || (!e->value && e->len) || e->len > X509_INPUT_MAX)
    return -EINVAL;
  _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *obj = OBJ_txt2obj(e->oid, 1);
  if (!obj)
    return ossl_fail(-EINVAL);
  /* One extension per OID (RFC 5280 4.2). */
  if (X509_get_ext_by_OBJ(cert, obj, -1) >= 0)
    return -EINVAL;
  _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
  if (!os || ASN1_OCTET_STRING_set(os, e->value ? e->value : (const uint8_t *)"", (int)e->len) != 1)
    return ossl_fail(-ENOMEM);
  _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext =
      X509_EXTENSION_create_by_OBJ(NULL, obj, e->critical ? 1 : 0, os);
  if (!ext || X509_add_ext(cert, ext, -1) != 1)
    return ossl_fail(-ENOMEM);
  return 0;
}

int x509_cert_build(const struct x509_params *p, EVP_PKEY *subject_key, X509 *issuer,
                    EVP_PKEY *issuer_key, X509 **ret) {
  int r;

  if (!p || !subject_key || !ret || (p->n_exts && !p->exts))
    return -EINVAL;

  EVP_PKEY *signer;
  if (!issuer) {
    if (issuer_key && key_public_equal(issuer_key, subject_key) < 0)
      return -EINVAL;
    signer = issuer_key ? issuer_key : subject_key;
  } else {
    EVP_PKEY *ipub = X509_get0_pubkey(issuer);
    if (!issuer_key || !ipub || key_public_equal(issuer_key, ipub) < 0)
      return -EINVAL;
    signer = issuer_key;
  }
  if (!key_has_private(signer))
    return -EINVAL;
  enum key_type st = key_get_type(signer);
  const EVP_MD *md;
  if (st == KEY_TYPE_P256 || st == KEY_TYPE_SECP256K1)
    md = EVP_sha256();
  else if (st == KEY_TYPE_ED25519)
    md = NULL;
  else
    return -EINVAL;

  _cleanup_(X509_freep) X509 *cert = X509_new();
  if (!cert)
    return -ENOMEM;
  if (X509_set_version(cert, X509_VERSION_3) != 1)
    return ossl_fail(-EIO);

  r = set_serial(cert, p, subject_key);
  if (r < 0)
    return r;

  X509_NAME *subject = X509_get_subject_name(cert);
  if ((r = add_name_entry(subject, NID_countryName, p->subject_country)) < 0 ||
      (r = add_name_entry(subject, NID_stateOrProvinceName, p->subject_state)) < 0 ||
      (r = add_name_entry(subject, NID_localityName, p->subject_locality)) < 0 ||
      (r = add_name_entry(subject, NID_organizationName, p->subject_org)) < 0 ||
      (r = add_name_entry(subject, NID_commonName, p->subject_cn)) < 0)
    return r;
  if (X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : subject) != 1)
    return ossl_fail(-ENOMEM);

  r = set_validity(cert, p->not_before, p->not_after);
  if (r < 0)
    return r;
  if (X509_set_pubkey(cert, subject_key) != 1)
    return ossl_fail(-EINVAL);

  if ((r = add_san(cert, p)) < 0 || (r = add_basic_constraints(cert, p)) < 0 ||
      (r = add_key_usage(cert, p->key_usage)) < 0 ||
      (r = add_ext_key_usage(cert, p->ext_key_usage)) < 0)
    return r;
  if (p->skid_akid && (r = add_key_ids(cert, issuer)) < 0)
    return r;
  for (size_t i = 0; i < p->n_exts; i++)
    if ((r = add_custom_ext(cert, &p->exts[i])) < 0)
      return r;

  if (X509_sign(cert, signer, md) <= 0)
    return ossl_fail(-EIO);
  *ret = TAKE_PTR(cert);
  return 0;
}

/* ---- parsing ---- */

static int cert_der_decode(const unsigned char *der, long len, X509 **ret) {
  const unsigned char *p = der;
  X509 *c = d2i_X509(NULL, &p, len);
  if (!c)
    return ossl_fail(-EBADMSG);
  if (p != der + len) {
    X509_free(c);
    return -EBADMSG;
  }
  *ret = c;
  return 0;
}

int x509_cert_from_der(const void *data, size_t len, X509 **ret) {
  if (!data || !ret)
    return -EINVAL;
  if (len > X509_INPUT_MAX)
    return -ENOBUFS;
  if (len == 0)
    return -EBADMSG;
  return cert_der_decode(data, (long)len, ret);
}

/* Reads the next PEM block from bio. 1: got one (a certificate, in *ret), 0: no more blocks,
 * <0: error (a block that is not a certificate, encrypted, or malformed). */
static int pem_next_cert(BIO *bio, X509 **ret) {
  char *name = NULL, *header = NULL;
  unsigned char *der = NULL;
  long n = 0;

  ERR_set_mark();
  if (PEM_read_bio(bio, &name, &header, &der, &n) != 1) {
    unsigned long e = ERR_peek_last_error();
    ERR_pop_to_mark();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
      return 0;
    return -EBADMSG;
  }
  ERR_pop_to_mark();
  int r;
  if (strcmp(name, "CERTIFICATE") != 0 || (header && header[0]) || n <= 0)
    r = -EBADMSG;
  else
    r = cert_der_decode(der, n, ret);
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(der);
  return r < 0 ? r : 1;
}

int x509_cert_from_pem(const void *data, size_t len, X509 **ret) {
  if (!data || !ret)
    return -EINVAL;
  if (len > X509_INPUT_MAX)
    return -ENOBUFS;
  _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(data, (int)len);
  if (!bio)
    return ossl_fail(-ENOMEM);
  int r = pem_next_cert(bio, ret);
  if (r < 0)
    return r;
  return r == 0 ? -EBADMSG : 0;
}

int x509_chain_from_pem(const void *data, size_t len, STACK_OF(X509) * *ret) {
  if (!data || !ret)
    return -EINVAL;
  if (len > X509_INPUT_MAX)
    return -ENOBUFS;
  _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(data, (int)len);
  _cleanup_x509_chain_ STACK_OF(X509) *chain = sk_X509_new_null();
  if (!bio || !chain)
    return ossl_fail(-ENOMEM);
  for (;;) {
    X509 *c = NULL;
    int r = pem_next_cert(bio, &c);
    if (r < 0)
      return r;
    if (r == 0)
      break;
    if (sk_X509_num(chain) >= X509_CHAIN_MAX) {
      X509_free(c);
      return -ENOBUFS;
    }
    if (sk_X509_push(chain, c) <= 0) {
      X509_free(c);
      return ossl_fail(-ENOMEM);
    }
  }
  if (sk_X509_num(chain) == 0)
    return -ENOENT;
  *ret = TAKE_PTR(chain);
  return 0;
}

/* ---- encodings ---- */

int x509_cert_to_der(X509 *c, struct buf *out) {
  if (!c || !out)
    return -EINVAL;
  unsigned char *der = NULL;
  int n = i2d_X509(c, &der);
  if (n <= 0)
    return ossl_fail(-EIO);
  int r = buf_append(out, der, (size_t)n);
  OPENSSL_free(der);
  return r;
}

int x509_cert_to_pem(X509 *c, struct buf *out) {
  if (!c || !out)
    return -EINVAL;
  _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());
  if (!bio)
    return ossl_fail(-ENOMEM);
  if (PEM_write_bio_X509(bio, c) != 1)
    return ossl_fail(-EIO);
  char *p = NULL;
  long n = BIO_get_mem_data(bio, &p);
  if (n <= 0 || !p)
    return ossl_fail(-EIO);
  return buf_append(out, p, (size_t)n);
}

int x509_chain_to_pem(STACK_OF(X509) * chain, struct buf *out) {
  if (!chain || !out)
    return -EINVAL;
  for (int i = 0; i < sk_X509_num(chain); i++) {
    int r = x509_cert_to_pem(sk_X509_value(chain, i), out);
    if (r < 0)
      return r;
  }
  return 0;
}

/* ---- fields ---- */

int x509_cert_ext_find(X509 *c, const char *oid, struct slice *ret_value, bool *ret_critical) {
  if (!c || !oid || !ret_value)
    return -EINVAL;
  _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
  if (!obj)
    return ossl_fail(-EINVAL);
  int idx = X509_get_ext_by_OBJ(c, obj, -1);
  if (idx < 0)
    return -ENOENT;
  if (X509_get_ext_by_OBJ(c, obj, idx) >= 0)
    return -EBADMSG;
  X509_EXTENSION *ext = X509_get_ext(c, idx);
  ASN1_OCTET_STRING *data = ext ? X509_EXTENSION_get_data(ext) : NULL;
  if (!data)
    return -EBADMSG;
  *ret_value = SLICE(ASN1_STRING_get0_data(data), (size_t)ASN1_STRING_length(data));
  if (ret_critical)
    *ret_critical = X509_EXTENSION_get_critical(ext) > 0;
  return 0;
}

int x509_cert_ext_get(X509 *c, const char *oid, struct buf *ret_value) {
  struct slice s;
  if (!ret_value)
    return -EINVAL;
  int r = x509_cert_ext_find(c, oid, &s, NULL);
  if (r < 0)
    return r;
  return buf_append(ret_value, s.ptr, s.len);
}

static int name_string(X509_NAME *name, struct buf *out) {
  if (!name || !out)
    return -EINVAL;
  _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());
  if (!bio)
    return ossl_fail(-ENOMEM);
  /* RFC 2253 escaping and short names, but in certificate order and with raw UTF-8. */
  unsigned long flags = (XN_FLAG_RFC2253 & ~XN_FLAG_DN_REV & ~(unsigned long)ASN1_STRFLGS_ESC_MSB);
  if (X509_NAME_print_ex(bio, name, 0, flags) < 0)
    return ossl_fail(-EIO);
  char *p = NULL;
  long n = BIO_get_mem_data(bio, &p);
  if (n < 0)
    return ossl_fail(-EIO);
  if (n > 0 && memchr(p, '\0', (size_t)n))
    return -EBADMSG;
  return n > 0 ? buf_append(out, p, (size_t)n) : 0;
}

int x509_cert_subject_string(X509 *c, struct buf *out) {
  if (!c)
    return -EINVAL;
  return name_string(X509_get_subject_name(c), out);
}

int x509_cert_issuer_string(X509 *c, struct buf *out) {
  if (!c)
    return -EINVAL;
  return name_string(X509_get_issuer_name(c), out);
}

int x509_cert_subject_cn(X509 *c, struct buf *out) {
  if (!c || !out)
    return -EINVAL;
  X509_NAME *name = X509_get_subject_name(c);
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0)
    return -ENOENT;
  ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char *utf8 = NULL;
  int n = s ? ASN1_STRING_to_UTF8(&utf8, s) : -1;
  if (n < 0)
    return ossl_fail(-EBADMSG);
  int r = memchr(utf8, '\0', (size_t)n) ? -EBADMSG : buf_append(out, utf8, (size_t)n);
  OPENSSL_free(utf8);
  return r;
}

void x509_strv_free(char **v) {
  if (!v)
    return;
  for (char **p = v; *p; p++)
    free(*p);
  free(v);
}

/* Decodes a standard extension: -ENOENT absent, -EBADMSG duplicated or malformed. */
static int ext_d2i(X509 *c, int nid, void **ret) {
  int crit = 0;
  void *v = X509_get_ext_d2i(c, nid, &crit, NULL);
  if (!v) {
    ERR_clear_error();
    return crit == -1 ? -ENOENT : -EBADMSG;
  }
  *ret = v;
  return 0;
}

int x509_cert_dns_sans(X509 *c, char ***ret_names, size_t *ret_n) {
  if (!c || !ret_names)
    return -EINVAL;
  GENERAL_NAMES *gens_raw = NULL;
  int r = ext_d2i(c, NID_subject_alt_name, (void **)&gens_raw);
  if (r < 0 && r != -ENOENT)
    return r;
  _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = gens_raw;
  int total = gens ? sk_GENERAL_NAME_num(gens) : 0;

  char **v = calloc((size_t)total + 1, sizeof(char *));
  if (!v)
    return -ENOMEM;
  size_t n = 0;
  for (int i = 0; i < total; i++) {
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
    int type;
    ASN1_STRING *s = GENERAL_NAME_get0_value(gn, &type);
    if (type != GEN_DNS || !s)
      continue;
    size_t len = (size_t)ASN1_STRING_length(s);
    const unsigned char *d = ASN1_STRING_get0_data(s);
    if (memchr(d, '\0', len)) {
      x509_strv_free(v);
      return -EBADMSG;
    }
    v[n] = strndup((const char *)d, len);
    if (!v[n]) {
      x509_strv_free(v);
      return -ENOMEM;
    }
    n++;
  }
  *ret_names = v;
  if (ret_n)
    *ret_n = n;
  return 0;
}

int x509_cert_basic_constraints(X509 *c, bool *ret_ca, int *ret_path_len) {
  if (!c)
    return -EINVAL;
  BASIC_CONSTRAINTS *raw = NULL;
  int r = ext_d2i(c, NID_basic_constraints, (void **)&raw);
  if (r < 0)
    return r;
  _cleanup_(BASIC_CONSTRAINTS_freep) BASIC_CONSTRAINTS *bc = raw;
  int path_len = -1;
  if (bc->pathlen) {
    long v = ASN1_INTEGER_get(bc->pathlen);
    if (v < 0 || v > 0x7fffffff)
      return ossl_fail(-EBADMSG);
    path_len = (int)v;
  }
  if (ret_ca)
    *ret_ca = bc->ca != 0;
  if (ret_path_len)
    *ret_path_len = path_len;
  return 0;
}

int x509_cert_key_usage(X509 *c, unsigned *ret_bits) {
  if (!c || !ret_bits)
    return -EINVAL;
  ASN1_BIT_STRING *raw = NULL;
  int r = ext_d2i(c, NID_key_usage, (void **)&raw);
  if (r < 0)
    return r;
  _cleanup_(ASN1_BIT_STRING_freep) ASN1_BIT_STRING *ku = raw;
  unsigned bits = 0;
  for (int i = 0; i < 9; i++)
    if (ASN1_BIT_STRING_get_bit(ku, i))
      bits |= 1u << i;
  *ret_bits = bits;
  return 0;
}

int x509_cert_serial(X509 *c, struct buf *out) {
  if (!c || !out)
    return -EINVAL;
  _cleanup_(BN_freep) BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);
  if (!bn)
    return ossl_fail(-EBADMSG);
  uint8_t tmp[64];
  int n = BN_num_bytes(bn);
  if (n > (int)sizeof(tmp))
    return -EBADMSG;
  if (n == 0)
    return buf_append_u8(out, 0);
  BN_bn2bin(bn, tmp);
  return buf_append(out, tmp, (size_t)n);
}

static int asn1_time_unix(const ASN1_TIME *t, int64_t *ret) {
  struct tm tm;
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
    return ossl_fail(-EBADMSG);
  time_t v = timegm(&tm);
  if (v == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_mon == 11 && tm.tm_mday == 31))
    return -EBADMSG;
  *ret = (int64_t)v;
  return 0;
}

int x509_cert_validity(X509 *c, int64_t *ret_not_before, int64_t *ret_not_after) {
  if (!c)
    return -EINVAL;
  int64_t nb, na;
  int r = asn1_time_unix(X509_get0_notBefore(c), &nb);
  if (r >= 0)
    r = asn1_time_unix(X509_get0_notAfter(c), &na);
  if (r < 0)
    return r;
  if (ret_not_before)
    *ret_not_before = nb;
  if (ret_not_after)
    *ret_not_after = na;
  return 0;
}

int x509_cert_public_key(X509 *c, EVP_PKEY **ret) {
  if (!c || !ret)
    return -EINVAL;
  EVP_PKEY *k = X509_get_pubkey(c);
  if (!k)
    return ossl_fail(-EBADMSG);
  *ret = k;
  return 0;
}

int x509_cert_spki_der(X509 *c, struct buf *out) {
  if (!c || !out)
    return -EINVAL;
  X509_PUBKEY *pk = X509_get_X509_PUBKEY(c);
  unsigned char *der = NULL;
  int n = pk ? i2d_X509_PUBKEY(pk, &der) : -1;
  if (n <= 0)
    return ossl_fail(-EBADMSG);
  int r = buf_append(out, der, (size_t)n);
  OPENSSL_free(der);
  return r;
}

int x509_cert_verify_signed_by(X509 *c, EVP_PKEY *issuer_pub) {
  if (!c || !issuer_pub)
    return -EINVAL;
  int ok = X509_verify(c, issuer_pub);
  ERR_clear_error();
  return ok == 1 ? 0 : -EBADMSG;
}

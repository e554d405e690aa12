/* EVP_PKEY construction and encodings for the key types this project uses, plus secp256k1
 * recoverable signatures through libsecp256k1. */
#include "crypto/keys.h"

#include <errno.h>
#include <openssl/rand.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <stdatomic.h>
#include <string.h>

#include "base/macro.h"
#include "crypto/hash.h"

#define ECDSA_DER_MAX 80

/* ---- helpers ---- */

static int ossl_fail(int r) {
  ERR_clear_error();
  return r;
}

static const char *ec_group_name(enum key_type t) {
  switch (t) {
  case KEY_TYPE_P256:
    return SN_X9_62_prime256v1;
  case KEY_TYPE_SECP256K1:
    return SN_secp256k1;
  default:
    return NULL;
  }
}

static int ec_group_nid(enum key_type t) {
  switch (t) {
  case KEY_TYPE_P256:
    return NID_X9_62_prime256v1;
  case KEY_TYPE_SECP256K1:
    return NID_secp256k1;
  default:
    return NID_undef;
  }
}

enum key_type key_get_type(EVP_PKEY *k) {
  if (!k)
    return KEY_TYPE_UNKNOWN;
  if (EVP_PKEY_is_a(k, "ED25519"))
    return KEY_TYPE_ED25519;
  if (EVP_PKEY_is_a(k, "X25519"))
    return KEY_TYPE_X25519;
  if (!EVP_PKEY_is_a(k, "EC"))
    return KEY_TYPE_UNKNOWN;
  char name[64];
  size_t n = 0;
  if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &n) != 1) {
    ERR_clear_error();
    return KEY_TYPE_UNKNOWN;
  }
  if (OBJ_sn2nid(name) == NID_X9_62_prime256v1 || OBJ_txt2nid(name) == NID_X9_62_prime256v1)
    return KEY_TYPE_P256;
  if (OBJ_sn2nid(name) == NID_secp256k1)
    return KEY_TYPE_SECP256K1;
  return KEY_TYPE_UNKNOWN;
}

static bool key_is_ec(EVP_PKEY *k) {
  enum key_type t = key_get_type(k);
  return t == KEY_TYPE_P256 || t == KEY_TYPE_SECP256K1;
}

bool key_has_private(EVP_PKEY *k) {
  if (!k)
    return false;
  switch (key_get_type(k)) {
  case KEY_TYPE_P256:
  case KEY_TYPE_SECP256K1: {
    BIGNUM *bn = NULL;
    bool ok = EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1;
    BN_clear_free(bn);
    ERR_clear_error();
    return ok;
  }
  case KEY_TYPE_ED25519:
  case KEY_TYPE_X25519: {
    size_t n = 0;
    bool ok = EVP_PKEY_get_raw_private_key(k, NULL, &n) == 1;
    ERR_clear_error();
    return ok;
  }
  default:
    return false;
  }
}

int key_public_equal(EVP_PKEY *a, EVP_PKEY *b) {
  if (!a || !b)
    return -EINVAL;
  int r = EVP_PKEY_eq(a, b);
  ERR_clear_error();
  return r == 1 ? 0 : -EBADMSG;
}

/* ---- EC construction ---- */

/* Builds an EC key of type t from a private scalar (checked 0 < s < n), computing its public
 * point. */
static int ec_from_scalar(enum key_type t, const uint8_t s[32], EVP_PKEY **ret) {
  if (!s || !ret)
    return -EINVAL;
  int nid = ec_group_nid(t);
  _cleanup_(EC_GROUP_freep) EC_GROUP *group = EC_GROUP_new_by_curve_name(nid);
  _cleanup_(BN_CTX_freep) BN_CTX *bnctx = BN_CTX_secure_new();
  _cleanup_(BN_clear_freep) BIGNUM *priv = BN_secure_new();
  if (!group || !bnctx || !priv)
    return ossl_fail(-ENOMEM);
  if (!BN_bin2bn(s, 32, priv))
    return ossl_fail(-ENOMEM);
  BN_set_flags(priv, BN_FLG_CONSTTIME);
  if (BN_is_zero(priv) || BN_cmp(priv, EC_GROUP_get0_order(group)) >= 0)
    return -EINVAL;

  _cleanup_(EC_POINT_freep) EC_POINT *pub = EC_POINT_new(group);
  uint8_t pub_oct[65];
  if (!pub || EC_POINT_mul(group, pub, priv, NULL, NULL, bnctx) != 1 ||
      EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED, pub_oct, sizeof(pub_oct),
                         bnctx) != sizeof(pub_oct))
    return ossl_fail(-EIO);

  _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, ec_group_name(t), 0) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub_oct, sizeof(pub_oct)) != 1)
    return ossl_fail(-ENOMEM);
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  if (!params)
    return ossl_fail(-ENOMEM);

  _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  EVP_PKEY *k = NULL;
  int r = 0;
  if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, params) != 1)
    r = ossl_fail(-EIO);
  OSSL_PARAM_free(params); /* the private scalar sits in its secure, cleared part */
  if (r < 0)
    return r;
  *ret = k;
  return 0;
}

int key_p256_from_scalar(const uint8_t scalar[32], EVP_PKEY **ret) {
  return ec_from_scalar(KEY_TYPE_P256, scalar, ret);
}

int key_secp256k1_from_secret(const uint8_t s[32], EVP_PKEY **ret) {
  return ec_from_scalar(KEY_TYPE_SECP256K1, s, ret);
}

static int ec_generate(enum key_type t, EVP_PKEY **ret) {
  if (!ret)
    return -EINVAL;
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", ec_group_name(t));
  if (!k)
    return ossl_fail(-EIO);
  *ret = k;
  return 0;
}

int key_p256_generate(EVP_PKEY **ret) {
  return ec_generate(KEY_TYPE_P256, ret);
}

int key_secp256k1_generate(EVP_PKEY **ret) {
  return ec_generate(KEY_TYPE_SECP256K1, ret);
}

int key_ec_from_public_sec1(enum key_type t, const uint8_t *pub, size_t len, EVP_PKEY **ret) {
  const char *group = ec_group_name(t);
  if (!group || !pub || !ret)
    return -EINVAL;
  if (!((len == 65 && pub[0] == 0x04) || (len == 33 && (pub[0] == 0x02 || pub[0] == 0x03))))
    return -EBADMSG;

  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pub, len),
      OSSL_PARAM_construct_end(),
  };
  _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1)
    return ossl_fail(-ENOMEM);
  EVP_PKEY *k = NULL;
  /* Decoding the point checks that it lies on the curve. */
  if (EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1)
    return ossl_fail(-EBADMSG);
  *ret = k;
  return 0;
}

int key_p256_from_public_raw(const uint8_t xy[64], EVP_PKEY **ret) {
  uint8_t pub[65];
  if (!xy)
    return -EINVAL;
  pub[0] = 0x04;
  memcpy(pub + 1, xy, 64);
  return key_ec_from_public_sec1(KEY_TYPE_P256, pub, sizeof(pub), ret);
}

/* ---- Ed25519 / X25519 construction ---- */

static int raw_key(const char *alg, bool priv, const uint8_t k32[32], EVP_PKEY **ret) {
  if (!k32 || !ret)
    return -EINVAL;
  EVP_PKEY *k = priv ? EVP_PKEY_new_raw_private_key_ex(NULL, alg, NULL, k32, 32)
                     : EVP_PKEY_new_raw_public_key_ex(NULL, alg, NULL, k32, 32);
  if (!k)
    return ossl_fail(-EBADMSG);
  *ret = k;
  return 0;
}

int key_ed25519_from_secret(const uint8_t s[32], EVP_PKEY **ret) {
  return raw_key("ED25519", true, s, ret);
}
int key_ed25519_from_public(const uint8_t pub[32], EVP_PKEY **ret) {
  return raw_key("ED25519", false, pub, ret);
}
int key_x25519_from_secret(const uint8_t s[32], EVP_PKEY **ret) {
  return raw_key("X25519", true, s, ret);
}
int key_x25519_from_public(const uint8_t pub[32], EVP_PKEY **ret) {
  return raw_key("X25519", false, pub, ret);
}

int key_x25519_generate(EVP_PKEY **ret) {
  if (!ret)
    return -EINVAL;
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
  if (!k)
    return ossl_fail(-EIO);
  *ret = k;
  return 0;
}

/* ---- raw export ---- */

static int ec_public_encode(EVP_PKEY *k, point_conversion_form_t form, uint8_t *out, size_t n) {
  if (!k || !out || !key_is_ec(k))
    return -EINVAL;
  /* The stored point may be in either form (it follows the encoding it was decoded from), so
   * re-encode through the group, unless it already is in the form asked for. */
  uint8_t oct[65];
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, oct, sizeof(oct), &len) != 1)
    return ossl_fail(-EINVAL);
  if (len == n && ((form == POINT_CONVERSION_UNCOMPRESSED && n == 65 && oct[0] == 0x04) ||
                   (form == POINT_CONVERSION_COMPRESSED && n == 33 &&
                    (oct[0] == 0x02 || oct[0] == 0x03)))) {
    memcpy(out, oct, n);
    return 0;
  }
  _cleanup_(EC_GROUP_freep) EC_GROUP *group = EC_GROUP_new_by_curve_name(ec_group_nid(key_get_type(k)));
  _cleanup_(EC_POINT_freep) EC_POINT *pt = group ? EC_POINT_new(group) : NULL;
  if (!pt)
    return ossl_fail(-ENOMEM);
  if (EC_POINT_oct2point(group, pt, oct, len, NULL) != 1 ||
      EC_POINT_point2oct(group, pt, form, out, n, NULL) != n)
    return ossl_fail(-EIO);
  return 0;
}

int key_ec_public_point(EVP_PKEY *k, uint8_t ret[65]) {
  return ec_public_encode(k, POINT_CONVERSION_UNCOMPRESSED, ret, 65);
}

int key_ec_public_compressed(EVP_PKEY *k, uint8_t ret[33]) {
  return ec_public_encode(k, POINT_CONVERSION_COMPRESSED, ret, 33);
}

int key_ec_private_scalar(EVP_PKEY *k, uint8_t ret[32]) {
  if (!k || !ret || !key_is_ec(k))
    return -EINVAL;
  BIGNUM *bn = NULL;
  if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1)
    return ossl_fail(-EINVAL);
  int r = BN_bn2binpad(bn, ret, 32) == 32 ? 0 : -EIO;
  BN_clear_free(bn);
  return r < 0 ? ossl_fail(r) : 0;
}

static bool key_is_raw_type(EVP_PKEY *k) {
  enum key_type t = key_get_type(k);
  return t == KEY_TYPE_ED25519 || t == KEY_TYPE_X25519;
}

int key_raw_public(EVP_PKEY *k, uint8_t ret[32]) {
  if (!k || !ret || !key_is_raw_type(k))
    return -EINVAL;
  size_t n = 32;
  if (EVP_PKEY_get_raw_public_key(k, ret, &n) != 1 || n != 32)
    return ossl_fail(-EIO);
  return 0;
}

int key_raw_private(EVP_PKEY *k, uint8_t ret[32]) {
  if (!k || !ret || !key_is_raw_type(k))
    return -EINVAL;
  size_t n = 32;
  if (EVP_PKEY_get_raw_private_key(k, ret, &n) != 1 || n != 32)
    return ossl_fail(-EINVAL);
  return 0;
}

/* ---- encodings ---- */

/* PKCS#8 of a P-256 key, fixed layout (138 bytes):
 *   PrivateKeyInfo { version 0, AlgorithmIdentifier { id-ecPublicKey, prime256v1 },
 *     OCTET STRING { ECPrivateKey (RFC 5915) { version 1, privateKey OCTET STRING (32),
 *       -- parameters [0] omitted (already in the AlgorithmIdentifier) --
 *       publicKey [1] BIT STRING (04||X||Y) } } }
 * This is byte for byte what ring (rcgen's KeyPair) and RustCrypto's p256 to_pkcs8_der produce,
 * and what OpenSSL 3 emits for a key with an uncompressed point. Upstream derives secrets as
 * SHA-256 over these bytes (derive_dh_secret), so the layout is written out here rather than
 * left to encoder flags (point form, EC_PKEY_NO_PUBKEY) that could change it. */
static const uint8_t p256_pkcs8_prefix[] = {
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04,
    0x6d, 0x30, 0x6b, 0x02, 0x01, 0x01, 0x04, 0x20,
};
static const uint8_t p256_pkcs8_mid[] = {0xa1, 0x44, 0x03, 0x42, 0x00};

static int p256_to_pkcs8_der(EVP_PKEY *k, struct buf *out) {
  uint8_t scalar[32], pub[65];
  int r = key_ec_private_scalar(k, scalar);
  if (r < 0)
    return r;
  r = key_ec_public_point(k, pub);
  if (r >= 0)
    r = buf_reserve(out, sizeof(p256_pkcs8_prefix) + 32 + sizeof(p256_pkcs8_mid) + 65);
  if (r >= 0) {
    (void)buf_append(out, p256_pkcs8_prefix, sizeof(p256_pkcs8_prefix));
    (void)buf_append(out, scalar, sizeof(scalar));
    (void)buf_append(out, p256_pkcs8_mid, sizeof(p256_pkcs8_mid));
    (void)buf_append(out, pub, sizeof(pub));
  }
  secure_wipe(scalar, sizeof(scalar));
  return r;
}

int key_to_pkcs8_der(EVP_PKEY *k, struct buf *out) {
  if (!k || !out || !key_has_private(k))
    return -EINVAL;
  if (key_get_type(k) == KEY_TYPE_P256)
    return p256_to_pkcs8_der(k, out);

  PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
  if (!p8)
    return ossl_fail(-EIO);
  unsigned char *der = NULL;
  int n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
  PKCS8_PRIV_KEY_INFO_free(p8);
  if (n <= 0)
    return ossl_fail(-EIO);
  int r = buf_append(out, der, (size_t)n);
  OPENSSL_clear_free(der, (size_t)n);
  return r;
}

/* PEM armour (64-column base64, '\n' line ends) of der under the given label. */
static int pem_armour(const char *label, const uint8_t *der, size_t len, struct buf *out) {
  _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());
  if (!bio)
    return ossl_fail(-ENOMEM);
  if (PEM_write_bio(bio, label, "", der, (long)len) <= 0)
    return ossl_fail(-EIO);
  char *p = NULL;
  long n = BIO_get_mem_data(bio, &p);
  if (n <= 0 || !p)
    return ossl_fail(-EIO);
  int r = buf_append(out, p, (size_t)n);
  secure_wipe(p, (size_t)n);
  return r;
}

int key_to_pkcs8_pem(EVP_PKEY *k, struct buf *out) {
  if (!k || !out)
    return -EINVAL;
  _cleanup_buf_ struct buf der = BUF_INIT_SECRET(8192);
  int r = key_to_pkcs8_der(k, &der);
  if (r < 0)
    return r;
  return pem_armour("PRIVATE KEY", der.data, der.len, out);
}

/* SubjectPublicKeyInfo written out for the key types of this project (i2d_PUBKEY goes through
 * OpenSSL 3.0's encoder lookup, which costs far more than the key itself):
 *   SEQUENCE { SEQUENCE { OID alg [, OID curve] }, BIT STRING { 0 unused bits, key } }
 * with the key as i2d_PUBKEY puts it (the EC point in the key's own conversion form, which the
 * "pub" parameter follows; "encoded-pub-key" does not). 0, or 1 for a key this does not
 * cover. */
static int spki_der_direct(EVP_PKEY *k, struct buf *out) {
  static const uint8_t oid_ec[] = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
  static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
  static const uint8_t oid_k1[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
  static const uint8_t oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
  static const uint8_t oid_x25519[] = {0x06, 0x03, 0x2b, 0x65, 0x6e};
  const uint8_t *alg = NULL, *curve = NULL;
  size_t alg_len = 0, curve_len = 0;
  switch (key_get_type(k)) {
  case KEY_TYPE_P256:
    alg = oid_ec, alg_len = sizeof(oid_ec), curve = oid_p256, curve_len = sizeof(oid_p256);
    break;
  case KEY_TYPE_SECP256K1:
    alg = oid_ec, alg_len = sizeof(oid_ec), curve = oid_k1, curve_len = sizeof(oid_k1);
    break;
  case KEY_TYPE_ED25519:
    alg = oid_ed25519, alg_len = sizeof(oid_ed25519);
    break;
  case KEY_TYPE_X25519:
    alg = oid_x25519, alg_len = sizeof(oid_x25519);
    break;
  default:
    return 1;
  }
  uint8_t key[65];
  size_t key_len = 0;
  if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, key, sizeof(key),
                                      &key_len) != 1 ||
      key_len == 0) {
    ERR_clear_error();
    return 1;
  }
  /* every length here is below 128: one-byte DER lengths */
  size_t algid_len = alg_len + curve_len, bits_len = key_len + 1;
  size_t inner = 2 + algid_len + 2 + bits_len;
  uint8_t der[2 + 2 + sizeof(oid_ec) + sizeof(oid_p256) + 2 + 1 + sizeof(key)], *p = der;
  *p++ = 0x30;
  *p++ = (uint8_t)inner;
  *p++ = 0x30;
  *p++ = (uint8_t)algid_len;
  memcpy(p, alg, alg_len);
  p += alg_len;
  if (curve_len) {
    memcpy(p, curve, curve_len);
    p += curve_len;
  }
  *p++ = 0x03;
  *p++ = (uint8_t)bits_len;
  *p++ = 0x00;
  memcpy(p, key, key_len);
  p += key_len;
  return buf_append(out, der, (size_t)(p - der));
}

int key_to_spki_der(EVP_PKEY *k, struct buf *out) {
  if (!k || !out)
    return -EINVAL;
  int r = spki_der_direct(k, out);
  if (r <= 0)
    return r;
  unsigned char *der = NULL;
  int n = i2d_PUBKEY(k, &der);
  if (n <= 0)
    return ossl_fail(-EIO);
  r = buf_append(out, der, (size_t)n);
  OPENSSL_free(der);
  return r;
}

int key_to_spki_pem(EVP_PKEY *k, struct buf *out) {
  if (!k || !out)
    return -EINVAL;
  _cleanup_buf_ struct buf der = BUF_INIT(8192);
  int r = key_to_spki_der(k, &der);
  if (r < 0)
    return r;
  return pem_armour("PUBLIC KEY", der.data, der.len, out);
}

static bool looks_like_pem(const uint8_t *p, size_t len) {
  static const char tag[] = "-----BEGIN ";
  for (size_t i = 0; i + sizeof(tag) - 1 <= len; i++)
    if (memcmp(p + i, tag, sizeof(tag) - 1) == 0)
      return true;
  return false;
}

/* Reads the first PEM block of data: its label and decoded body (OPENSSL_malloc'ed).
 * Blocks with headers (encrypted PEM) are refused. */
static int pem_read_first(const void *data, size_t len, char **ret_name, unsigned char **ret_der,
                          long *ret_len) {
  _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(data, (int)len);
  if (!bio)
    return ossl_fail(-ENOMEM);
  char *name = NULL, *header = NULL;
  unsigned char *der = NULL;
  long n = 0;
  if (PEM_read_bio(bio, &name, &header, &der, &n) != 1)
    return ossl_fail(-EBADMSG);
  bool has_header = header && header[0];
  OPENSSL_free(header);
  if (has_header || n <= 0) {
    OPENSSL_free(name);
    OPENSSL_clear_free(der, n > 0 ? (size_t)n : 0);
    return -EBADMSG;
  }
  *ret_name = name;
  *ret_der = der;
  *ret_len = n;
  return 0;
}

static int pkcs8_der_decode(const unsigned char *der, long len, EVP_PKEY **ret) {
  const unsigned char *p = der;
  PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, len);
  if (!p8)
    return ossl_fail(-EBADMSG);
  if (p != der + len) {
    PKCS8_PRIV_KEY_INFO_free(p8);
    return -EBADMSG;
  }
  EVP_PKEY *k = EVP_PKCS82PKEY(p8);
  PKCS8_PRIV_KEY_INFO_free(p8);
  if (!k)
    return ossl_fail(-EBADMSG);
  *ret = k;
  return 0;
}

int key_from_pem_or_der(const void *data, size_t len, EVP_PKEY **ret) {
  if (!data || !ret)
    return -EINVAL;
  if (len > KEY_INPUT_MAX)
    return -ENOBUFS;
  if (len == 0)
    return -EBADMSG;
  if (!looks_like_pem(data, len))
    return pkcs8_der_decode(data, (long)len, ret);

  _cleanup_ossl_free_ char *name = NULL;
  unsigned char *der = NULL;
  long n = 0;
  int r = pem_read_first(data, len, &name, &der, &n);
  if (r < 0)
    return r;
  if (strcmp(name, "PRIVATE KEY") == 0)
    r = pkcs8_der_decode(der, n, ret);
  else if (strcmp(name, "EC PRIVATE KEY") == 0) {
    const unsigned char *p = der;
    EVP_PKEY *k = d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, n);
    if (!k)
      r = ossl_fail(-EBADMSG);
    else if (p != der + n) {
      EVP_PKEY_free(k);
      r = -EBADMSG;
    } else
      *ret = k;
  } else
    r = -EBADMSG;
  OPENSSL_clear_free(der, (size_t)n);
  return r;
}

int key_public_from_pem_or_der(const void *data, size_t len, EVP_PKEY **ret) {
  if (!data || !ret)
    return -EINVAL;
  if (len > KEY_INPUT_MAX)
    return -ENOBUFS;
  if (len == 0)
    return -EBADMSG;

  _cleanup_ossl_free_ char *name = NULL;
  _cleanup_ossl_free_ unsigned char *der = NULL;
  const unsigned char *start = data;
  long n = (long)len;
  if (looks_like_pem(data, len)) {
    int r = pem_read_first(data, len, &name, &der, &n);
    if (r < 0)
      return r;
    if (strcmp(name, "PUBLIC KEY") != 0)
      return -EBADMSG;
    start = der;
  }
  const unsigned char *p = start;
  EVP_PKEY *k = d2i_PUBKEY(NULL, &p, n);
  if (!k)
    return ossl_fail(-EBADMSG);
  if (p != start + n) {
    EVP_PKEY_free(k);
    return -EBADMSG;
  }
  *ret = k;
  return 0;
}

/* ---- ECDSA ---- */

int key_ecdsa_sig_raw_to_der(const uint8_t sig[64], struct buf *out) {
  if (!sig || !out)
    return -EINVAL;
  _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *s = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, 32, NULL), *sv = BN_bin2bn(sig + 32, 32, NULL);
  if (!s || !r || !sv || ECDSA_SIG_set0(s, r, sv) != 1) {
    BN_free(r);
    BN_free(sv);
    return ossl_fail(-ENOMEM);
  }
  unsigned char *der = NULL;
  int n = i2d_ECDSA_SIG(s, &der);
  if (n <= 0)
    return ossl_fail(-EIO);
  int ret = buf_append(out, der, (size_t)n);
  OPENSSL_free(der);
  return ret;
}

int key_ecdsa_sig_der_to_raw(const uint8_t *der, size_t len, uint8_t ret[64]) {
  if (!der || !ret)
    return -EINVAL;
  if (len == 0 || len > ECDSA_DER_MAX)
    return -EBADMSG;
  const unsigned char *p = der;
  _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
  if (!s)
    return ossl_fail(-EBADMSG);
  if (p != der + len)
    return -EBADMSG;
  const BIGNUM *r, *sv;
  ECDSA_SIG_get0(s, &r, &sv);
  if (BN_is_negative(r) || BN_is_negative(sv) || BN_bn2binpad(r, ret, 32) != 32 ||
      BN_bn2binpad(sv, ret + 32, 32) != 32)
    return ossl_fail(-EBADMSG);
  return 0;
}

static int ecdsa_sign_der(EVP_PKEY *k, const void *msg, size_t len, uint8_t *der, size_t *der_len) {
  if (!k || (!msg && len) || !key_is_ec(k))
    return -EINVAL;
  /* SHA-256 with the digest fetched once, then ECDSA over the digest: the same signature as
   * EVP_DigestSign with SHA-256, without its per-call fetches of the digest. */
  uint8_t h[32];
  int r = hash_buf(HASH_SHA256, msg ? msg : (const void *)"", len, h);
  if (r < 0)
    return r;
  _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
  if (!ctx)
    return ossl_fail(-ENOMEM);
  if (EVP_PKEY_sign_init(ctx) != 1 || EVP_PKEY_sign(ctx, der, der_len, h, sizeof(h)) != 1)
    return ossl_fail(-EINVAL);
  return 0;
}

int key_ecdsa_sign_raw(EVP_PKEY *k, const void *msg, size_t len, uint8_t ret_sig[64]) {
  uint8_t der[ECDSA_DER_MAX + 16];
  size_t n = sizeof(der);
  if (!ret_sig)
    return -EINVAL;
  int r = ecdsa_sign_der(k, msg, len, der, &n);
  if (r < 0)
    return r;
  return key_ecdsa_sig_der_to_raw(der, n, ret_sig);
}

int key_ecdsa_sign_der(EVP_PKEY *k, const void *msg, size_t len, struct buf *out) {
  uint8_t der[ECDSA_DER_MAX + 16];
  size_t n = sizeof(der);
  if (!out)
    return -EINVAL;
  int r = ecdsa_sign_der(k, msg, len, der, &n);
  if (r < 0)
    return r;
  return buf_append(out, der, n);
}

int key_ecdsa_verify_der(EVP_PKEY *pub, const void *msg, size_t len, const uint8_t *sig,
                         size_t sig_len) {
  if (!pub || (!msg && len) || !sig || !key_is_ec(pub))
    return -EINVAL;
  if (sig_len == 0 || sig_len > ECDSA_DER_MAX)
    return -EBADMSG;
  _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md)
    return -ENOMEM;
  if (EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pub, NULL) != 1)
    return ossl_fail(-EINVAL);
  int ok = EVP_DigestVerify(md, sig, sig_len, msg ? msg : (const void *)"", len);
  ERR_clear_error();
  return ok == 1 ? 0 : -EBADMSG;
}

int key_ecdsa_verify_raw(EVP_PKEY *pub, const void *msg, size_t len, const uint8_t sig[64]) {
  if (!pub || !sig)
    return -EINVAL;
  _cleanup_buf_ struct buf der = BUF_INIT(ECDSA_DER_MAX);
  int r = key_ecdsa_sig_raw_to_der(sig, &der);
  if (r < 0)
    return r;
  return key_ecdsa_verify_der(pub, msg, len, der.data, der.len);
}

int key_ecdsa_verify_raw_pub(const uint8_t pub_xy[64], const void *msg, size_t len,
                             const uint8_t sig[64]) {
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
  if (!pub_xy || !sig)
    return -EINVAL;
  int r = key_p256_from_public_raw(pub_xy, &k);
  if (r < 0)
    return r;
  return key_ecdsa_verify_raw(k, msg, len, sig);
}

/* ---- Ed25519 / X25519 ---- */

int key_ed25519_sign(EVP_PKEY *k, const void *msg, size_t len, uint8_t ret_sig[64]) {
  if (!k || (!msg && len) || !ret_sig || key_get_type(k) != KEY_TYPE_ED25519)
    return -EINVAL;
  _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
  size_t n = 64;
  if (!md)
    return -ENOMEM;
  if (EVP_DigestSignInit_ex(md, NULL, NULL, NULL, NULL, k, NULL) != 1 ||
      EVP_DigestSign(md, ret_sig, &n, msg ? msg : (const void *)"", len) != 1 || n != 64)
    return ossl_fail(-EINVAL);
  return 0;
}

int key_ed25519_verify(EVP_PKEY *pub, const void *msg, size_t len, const uint8_t sig[64]) {
  if (!pub || (!msg && len) || !sig || key_get_type(pub) != KEY_TYPE_ED25519)
    return -EINVAL;
  _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md)
    return -ENOMEM;
  if (EVP_DigestVerifyInit_ex(md, NULL, NULL, NULL, NULL, pub, NULL) != 1)
    return ossl_fail(-EINVAL);
  int ok = EVP_DigestVerify(md, sig, 64, msg ? msg : (const void *)"", len);
  ERR_clear_error();
  return ok == 1 ? 0 : -EBADMSG;
}

int key_x25519_derive(EVP_PKEY *priv, const uint8_t peer_pub[32], uint8_t ret_secret[32]) {
  if (!priv || !peer_pub || !ret_secret || key_get_type(priv) != KEY_TYPE_X25519)
    return -EINVAL;
  _cleanup_(EVP_PKEY_freep) EVP_PKEY *peer = NULL;
  int r = key_x25519_from_public(peer_pub, &peer);
  if (r < 0)
    return r;
  _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
  size_t n = 32;
  if (!ctx || EVP_PKEY_derive_init(ctx) != 1)
    return ossl_fail(-EINVAL);
  if (EVP_PKEY_derive_set_peer(ctx, peer) != 1 || EVP_PKEY_derive(ctx, ret_secret, &n) != 1 ||
      n != 32) {
    secure_wipe(ret_secret, 32);
    return ossl_fail(-EBADMSG);
  }
  static const uint8_t zero[32];
  if (memcmp_ct(ret_secret, zero, 32) == 0)
    return -EBADMSG;
  return 0;
}

/* ---- secp256k1 (libsecp256k1) ---- */

/* One signing context per process, created and randomised (blinding against side channels)
 * on first use and shared from then on: libsecp256k1's key and signing functions take it const,
 * so threads may use it concurrently. Returns NULL when it cannot be set up. */
static _Atomic(secp256k1_context *) k1_ctx;

static const secp256k1_context *k1_sign_ctx(void) {
  secp256k1_context *ctx = atomic_load_explicit(&k1_ctx, memory_order_acquire);
  if (ctx)
    return ctx;
  ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  uint8_t seed[32];
  if (!ctx)
    return NULL;
  if (RAND_priv_bytes(seed, sizeof(seed)) != 1 || !secp256k1_context_randomize(ctx, seed)) {
    ERR_clear_error();
    secure_wipe(seed, sizeof(seed));
    secp256k1_context_destroy(ctx);
    return NULL;
  }
  secure_wipe(seed, sizeof(seed));
  secp256k1_context *expected = NULL;
  if (!atomic_compare_exchange_strong_explicit(&k1_ctx, &expected, ctx, memory_order_acq_rel,
                                               memory_order_acquire)) {
    secp256k1_context_destroy(ctx); /* another thread was first */
    return expected;
  }
  return ctx;
}

int key_secp256k1_public_from_secret(const uint8_t secret[32], uint8_t ret_pub33[33]) {
  if (!secret || !ret_pub33)
    return -EINVAL;
  const secp256k1_context *ctx = k1_sign_ctx();
  if (!ctx)
    return -ENOMEM;
  secp256k1_pubkey pk;
  size_t n = 33;
  int r = 0;
  if (!secp256k1_ec_pubkey_create(ctx, &pk, secret))
    r = -EINVAL;
  else if (!secp256k1_ec_pubkey_serialize(ctx, ret_pub33, &n, &pk, SECP256K1_EC_COMPRESSED) ||
           n != 33)
    r = -EIO;
  return r;
}

int key_secp256k1_sign_recoverable(const uint8_t secret[32], const uint8_t hash[32],
                                   uint8_t ret_sig65[65]) {
  if (!secret || !hash || !ret_sig65)
    return -EINVAL;
  const secp256k1_context *ctx = k1_sign_ctx();
  if (!ctx)
    return -ENOMEM;
  secp256k1_ecdsa_recoverable_signature sig;
  int recid = -1, r = 0;
  if (!secp256k1_ecdsa_sign_recoverable(ctx, &sig, hash, secret, NULL, NULL))
    r = -EINVAL;
  else if (!secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, ret_sig65, &recid, &sig) ||
           recid < 0 || recid > 3)
    r = -EIO;
  else
    ret_sig65[64] = (uint8_t)recid;
  return r;
}

int key_secp256k1_recover(const uint8_t hash[32], const uint8_t sig65[65], uint8_t ret_pub33[33]) {
  if (!hash || !sig65 || !ret_pub33)
    return -EINVAL;
  int v = sig65[64];
  if (v >= 27 && v <= 30)
    v -= 27;
  if (v > 3)
    return -EBADMSG;
  const secp256k1_context *ctx = secp256k1_context_static;
  secp256k1_ecdsa_recoverable_signature sig;
  secp256k1_pubkey pk;
  size_t n = 33;
  if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &sig, sig65, v) ||
      !secp256k1_ecdsa_recover(ctx, &pk, &sig, hash))
    return -EBADMSG;
  if (!secp256k1_ec_pubkey_serialize(ctx, ret_pub33, &n, &pk, SECP256K1_EC_COMPRESSED) || n != 33)
    return -EIO;
  return 0;
}

int key_secp256k1_sign_prehash(const uint8_t secret[32], const uint8_t hash[32],
                               uint8_t ret_sig64[64]) {
  if (!secret || !hash || !ret_sig64)
    return -EINVAL;
  const secp256k1_context *ctx = k1_sign_ctx();
  if (!ctx)
    return -ENOMEM;
  secp256k1_ecdsa_signature sig;
  int r = 0;
  if (!secp256k1_ecdsa_sign(ctx, &sig, hash, secret, NULL, NULL))
    r = -EINVAL;
  else if (!secp256k1_ecdsa_signature_serialize_compact(ctx, ret_sig64, &sig))
    r = -EIO;
  return r;
}

int key_secp256k1_verify_prehash(const uint8_t *pub, size_t pub_len, const uint8_t hash[32],
                                 const uint8_t sig64[64]) {
  if (!pub || !hash || !sig64)
    return -EINVAL;
  if (pub_len != 33 && pub_len != 65)
    return -EBADMSG;
  const secp256k1_context *ctx = secp256k1_context_static;
  secp256k1_pubkey pk;
  secp256k1_ecdsa_signature sig;
  if (!secp256k1_ec_pubkey_parse(ctx, &pk, pub, pub_len) ||
      !secp256k1_ecdsa_signature_parse_compact(ctx, &sig, sig64))
    return -EBADMSG;
  return secp256k1_ecdsa_verify(ctx, &sig, hash, &pk) ? 0 : -EBADMSG;
}

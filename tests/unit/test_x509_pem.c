/* x509_pem: PEM certificate lists with their exact DER, the one grammar, strict and not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "attest/quote.h"
#include "base/base64.h"
#include "base/str.h"
#include "crypto/x509_pem.h"
#include "testutil.h"

/* A PEM block of der, base64 in lines of 64, with eol after each line. */
static void pem_block(const uint8_t *der, size_t len, const char *eol, struct buf *out) {
  _cleanup_buf_ struct buf b64 = BUF_INIT(1 << 20);
  assert_int_equal(base64_encode_buf(der, len, &b64), 0);
  assert_int_equal(buf_printf(out, "-----BEGIN CERTIFICATE-----%s", eol), 0);
  for (size_t i = 0; i < b64.len; i += 64) {
    size_t n = b64.len - i < 64 ? b64.len - i : 64;
    assert_int_equal(buf_append(out, b64.data + i, n), 0);
    assert_int_equal(buf_append_str(out, eol), 0);
  }
  assert_int_equal(buf_printf(out, "-----END CERTIFICATE-----%s", eol), 0);
}

static int parse(const struct buf *b, unsigned flags, size_t *ret_n) {
  struct x509_pem_certs l;
  int r = x509_pem_certs_parse(b->data, b->len, flags, &l);
  if (r >= 0) {
    *ret_n = l.n;
    x509_pem_certs_free(&l);
  } else {
    assert_int_equal(l.n, 0); /* left empty */
  }
  return r;
}

static void root_der(struct buf *out) {
  *out = BUF_INIT(1 << 16);
  tu_read_vector("root-ca/Intel_SGX_Root_CA.der", false, out);
}

/* The chain of a real quote: three certificates, the root exactly the pinned DER. */
static void test_quote_chain(void **state) {
  (void)state;
  _cleanup_buf_ struct buf qb = BUF_INIT(1 << 16), root;
  tu_read_vector("dcap-qvl/tdx_quote", false, &qb);
  root_der(&root);
  struct quote q;
  assert_int_equal(quote_parse(qb.data, qb.len, &q), 0);
  for (unsigned flags = 0; flags < 4; flags++) {
    _cleanup_x509_pem_certs_ struct x509_pem_certs l = {};
    assert_int_equal(x509_pem_certs_parse(q.pck_chain_pem.ptr, q.pck_chain_pem.len, flags, &l),
                     0);
    assert_int_equal(l.n, 3);
    struct slice d = x509_pem_cert_der(&l, 2);
    assert_int_equal(d.len, root.len);
    assert_memory_equal(d.ptr, root.data, root.len);
    for (size_t i = 0; i < 3; i++) {
      if (flags & X509_PEM_DER_ONLY) {
        assert_null(l.c[i].cert);
        continue;
      }
      /* each DER is the certificate's own encoding */
      _cleanup_buf_ struct buf enc = BUF_INIT(1 << 16);
      assert_int_equal(x509_cert_to_der(l.c[i].cert, &enc), 0);
      d = x509_pem_cert_der(&l, i);
      assert_int_equal(enc.len, d.len);
      assert_memory_equal(enc.data, d.ptr, d.len);
    }
  }
}

static void test_grammar(void **state) {
  (void)state;
  _cleanup_buf_ struct buf root;
  root_der(&root);
  _cleanup_buf_ struct buf blk = BUF_INIT(1 << 16), crlf = BUF_INIT(1 << 16);
  pem_block(root.data, root.len, "\n", &blk);
  pem_block(root.data, root.len, "\r\n", &crlf);
  assert_int_equal(buf_terminate(&blk), 0);
  const char *body = strchr((const char *)blk.data, '\n') + 1; /* first base64 line */
  size_t head = (size_t)(body - (const char *)blk.data);
  const char *end = strstr((const char *)blk.data, "-----END");
  size_t end_off = (size_t)(end - (const char *)blk.data);

  static const struct {
    const char *pre, *post; /* around the block */
    size_t post_len;        /* 0: strlen(post) */
    int strict, lenient;    /* result: 0 = ok (1 certificate) */
  } t[] = {
      {"", "", 0, 0, 0},
      {"", "\0", 1, 0, 0}, /* one final NUL */
      {"", "\0\0", 2, -EBADMSG, 0},
      {"", "\n", 0, -EBADMSG, 0},
      {"", " ", 0, -EBADMSG, 0},
      {"x\n", "", 0, -EBADMSG, 0}, /* text before */
      {"\n", "", 0, -EBADMSG, 0},
      {"", "trailing text", 0, -EBADMSG, 0},
      {"", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0, -EBADMSG,
       -EBADMSG},
      {"", "-----BEGIN CERTIFICATE-----\n", 0, -EBADMSG, -EBADMSG}, /* no END */
      {"", "-----BEGIN CERTIFICATE-----", 0, -EBADMSG, -EBADMSG},   /* no EOL */
  };
  for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
    _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
    size_t npost = t[i].post_len ? t[i].post_len : strlen(t[i].post);
    assert_int_equal(buf_append_str(&b, t[i].pre), 0);
    assert_int_equal(buf_append(&b, blk.data, blk.len), 0);
    assert_int_equal(buf_append(&b, t[i].post, npost), 0);
    size_t n = 0;
    int r = parse(&b, X509_PEM_STRICT, &n);
    if (r != t[i].strict)
      fail_msg("case %zu strict: %d", i, r);
    if ((r = parse(&b, 0, &n)) != t[i].lenient)
      fail_msg("case %zu lenient: %d", i, r);
  }
  size_t n = 0;
  /* CRLF lines */
  assert_int_equal(parse(&crlf, X509_PEM_STRICT, &n), 0);
  assert_int_equal(n, 1);
  /* the last END line without its EOL, then a NUL */
  {
    _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
    assert_int_equal(buf_append(&b, blk.data, blk.len - 1), 0);
    assert_int_equal(parse(&b, X509_PEM_STRICT, &n), 0);
    assert_int_equal(buf_append(&b, "", 1), 0);
    assert_int_equal(parse(&b, X509_PEM_STRICT, &n), 0);
  }
  /* two blocks, nothing between them */
  {
    _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
    assert_int_equal(buf_append(&b, blk.data, blk.len), 0);
    assert_int_equal(buf_append(&b, blk.data, blk.len), 0);
    assert_int_equal(parse(&b, X509_PEM_STRICT, &n), 0);
    assert_int_equal(n, 2);
  }
  /* inside a block: a blank line, a space, a header, a bad character, another dash line */
  static const char *const inserts[] = {"\n", " ", "Proc-Type: 4,ENCRYPTED\n", "*", "-----X\n"};
  for (size_t i = 0; i < ARRAY_SIZE(inserts); i++) {
    _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
    assert_int_equal(buf_append(&b, blk.data, head + 64 + 1), 0); /* BEGIN + one line */
    assert_int_equal(buf_append_str(&b, inserts[i]), 0);
    assert_int_equal(buf_append(&b, blk.data + head + 65, blk.len - head - 65), 0);
    assert_int_equal(parse(&b, 0, &n), -EBADMSG);
    assert_int_equal(parse(&b, X509_PEM_STRICT, &n), -EBADMSG);
  }
  /* an empty block */
  {
    const char *e = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
    struct buf b = BUF_INIT(256);
    assert_int_equal(buf_append_str(&b, e), 0);
    assert_int_equal(parse(&b, 0, &n), -EBADMSG);
    buf_free(&b);
  }
  /* base64 that is not the canonical encoding: the unused bits of the last character before
   * the padding set (OpenSSL decodes it to the same DER) */
  {
    assert_int_equal(root.len % 3, 2); /* one '=' */
    _cleanup_buf_ struct buf b = BUF_INIT(1 << 16);
    assert_int_equal(buf_append(&b, blk.data, blk.len), 0);
    size_t pad = (size_t)((const uint8_t *)memchr(b.data, '=', b.len) - b.data);
    assert_true(pad < end_off);
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *at = strchr(alpha, b.data[pad - 1]);
    assert_non_null(at);
    assert_int_equal((at - alpha) & 3, 0);
    b.data[pad - 1] = alpha[(at - alpha) | 1];
    assert_int_equal(parse(&b, 0, &n), -EBADMSG);
    assert_int_equal(parse(&b, X509_PEM_STRICT | X509_PEM_DER_ONLY, &n), -EBADMSG);
  }
  /* DER with a trailing byte: not one certificate (but DER_ONLY does not look) */
  {
    _cleanup_buf_ struct buf der = BUF_INIT(1 << 16), b = BUF_INIT(1 << 16);
    assert_int_equal(buf_append(&der, root.data, root.len), 0);
    assert_int_equal(buf_append_u8(&der, 0), 0);
    pem_block(der.data, der.len, "\n", &b);
    assert_int_equal(parse(&b, 0, &n), -EBADMSG);
    assert_int_equal(parse(&b, X509_PEM_DER_ONLY, &n), 0);
  }
  /* none, too many, arguments */
  {
    struct buf b = BUF_INIT(1 << 20);
    assert_int_equal(buf_append_str(&b, "no PEM here\n"), 0);
    assert_int_equal(parse(&b, 0, &n), -ENOENT);
    buf_reset(&b);
    assert_int_equal(parse(&b, 0, &n), -ENOENT);
    for (int i = 0; i <= X509_CHAIN_MAX; i++)
      assert_int_equal(buf_append(&b, blk.data, blk.len), 0);
    assert_int_equal(parse(&b, 0, &n), -ENOBUFS);
    buf_free(&b);
    struct x509_pem_certs l;
    assert_int_equal(x509_pem_certs_parse(NULL, 1, 0, &l), -EINVAL);
    assert_int_equal(x509_pem_certs_parse("", 0, 0, NULL), -EINVAL);
    x509_pem_certs_free(NULL);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quote_chain),
      cmocka_unit_test(test_grammar),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attest/dcap.h"
#include "collateral/dcap_cache.h"
#include "attest/dcap_collateral.h"
#include "collateral/dcap_fetch.h"
#include "attest/quote.h"
#include "base/buf.h"
#include "base/json.h"
#include "net/http_client.h"
#include "pccs_stub.h"
#include "testutil.h"

#define QVL_TDX_TIME ((int64_t)1752919234)
#define QVL_TDX_EXPIRY ((int64_t)1752919235)
#define QVL_SGX_TIME ((int64_t)1752919277)

/* ---- tests/it/pccs_server.py as a child process (pccs_stub.c) ---- */

static int server_start(void **state) {
  (void)state;
  pccs_stub_start();
  return 0;
}

static int server_stop(void **state) {
  (void)state;
  dcap_fetch_caches_free();
  pccs_stub_stop();
  return 0;
}

/* ---- helpers ----------------------------------------------------------------------------- */

static void load_qvl(const char *name, struct dcap_collateral *ret) {
  struct buf b = BUF_INIT(BUF_MAX_FILE);
  tu_read_vector(name, false, &b);
  assert_int_equal(dcap_collateral_from_qvl_json((const char *)b.data, b.len, ret), 0);
  buf_free(&b);
}

static void assert_coll_equal(const struct dcap_collateral *a, const struct dcap_collateral *b) {
  assert_string_equal(a->tcb_info, b->tcb_info);
  assert_string_equal(a->qe_identity, b->qe_identity);
  assert_string_equal(a->tcb_info_issuer_chain, b->tcb_info_issuer_chain);
  assert_string_equal(a->qe_identity_issuer_chain, b->qe_identity_issuer_chain);
  assert_string_equal(a->pck_crl_issuer_chain, b->pck_crl_issuer_chain);
  assert_memory_equal(a->tcb_info_signature, b->tcb_info_signature, 64);
  assert_memory_equal(a->qe_identity_signature, b->qe_identity_signature, 64);
  assert_int_equal(a->root_ca_crl.len, b->root_ca_crl.len);
  assert_memory_equal(a->root_ca_crl.data, b->root_ca_crl.data, a->root_ca_crl.len);
  assert_int_equal(a->pck_crl.len, b->pck_crl.len);
  assert_memory_equal(a->pck_crl.data, b->pck_crl.data, a->pck_crl.len);
}

struct vq {
  struct buf data;
  struct quote q;
};

static void load_quote(const char *name, struct vq *v) {
  v->data = BUF_INIT(BUF_MAX_QUOTE);
  tu_read_vector(name, false, &v->data);
  assert_int_equal(quote_parse(v->data.data, v->data.len, &v->q), 0);
}

static void fetch_opts_nocache(struct dcap_fetch_opts *o) {
  *o = (struct dcap_fetch_opts){.no_cache = true, .now = QVL_TDX_TIME};
  o->http.timeout_ms = 10000;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_base_url(void **state) {
  (void)state;
  static const struct {
    const char *in, *out;
  } ok[] = {
      {"https://api.trustedservices.intel.com", "https://api.trustedservices.intel.com"},
      {"https://pccs:8081/sgx/certification/v4", "https://pccs:8081"},
      {"https://pccs:8081/sgx/certification/v4/", "https://pccs:8081"},
      {"https://pccs:8081/tdx/certification/v4//", "https://pccs:8081"},
      {"http://h/prefix/", "http://h/prefix"},
      {"http://h/prefix/tdx/certification/v4", "http://h/prefix"},
      {"http://h/sgx/certification/v3", "http://h/sgx/certification/v3"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
    char *s = NULL;
    assert_int_equal(dcap_fetch_base_url(ok[i].in, &s), 0);
    assert_string_equal(s, ok[i].out);
    free(s);
  }
  static const char *bad[] = {"ftp://h", "h:8081", "", "https://", "https:///", "http://h/a b",
                              "http://h/?x=1", "file:///etc"};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    char *s = NULL;
    assert_int_equal(dcap_fetch_base_url(bad[i], &s), -EINVAL);
    assert_null(s);
  }
  assert_string_equal(dcap_tee_name(DCAP_TEE_TDX), "tdx");
  assert_string_equal(dcap_tee_name(DCAP_TEE_SGX), "sgx");
  assert_string_equal(dcap_pck_ca_name(DCAP_PCK_CA_PLATFORM), "platform");
  assert_string_equal(dcap_pck_ca_name(DCAP_PCK_CA_PROCESSOR), "processor");
}

static void test_quote_params(void **state) {
  (void)state;
  static const struct {
    const char *file;
    enum dcap_tee tee;
    const char *fmspc;
    enum dcap_pck_ca ca;
  } v[] = {
      {"dcap-qvl/tdx_quote", DCAP_TEE_TDX, "b0c06f000000", DCAP_PCK_CA_PLATFORM},
      {"dcap-qvl/sgx_quote", DCAP_TEE_SGX, "00a067110000", DCAP_PCK_CA_PROCESSOR},
      {"dcap-qvl/tdx_quote_outdated", DCAP_TEE_TDX, "90c06f000000", DCAP_PCK_CA_PLATFORM},
      {"zkdcap/quote_tdx_00806f050000.dat", DCAP_TEE_TDX, "00806f050000", DCAP_PCK_CA_PLATFORM},
  };
  for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
    struct vq q;
    load_quote(v[i].file, &q);
    enum dcap_tee tee;
    enum dcap_pck_ca ca;
    uint8_t fmspc[6];
    assert_int_equal(dcap_quote_fetch_params(&q.q, &tee, fmspc, &ca), 0);
    assert_int_equal(tee, v[i].tee);
    assert_int_equal(ca, v[i].ca);
    struct buf exp = BUF_INIT(16);
    tu_hex(v[i].fmspc, &exp);
    assert_memory_equal(fmspc, exp.data, 6);
    buf_free(&exp);

    /* No PCK chain / a broken one / an unknown TEE. */
    struct quote c = q.q;
    enum dcap_tee t2;
    c.pck_chain_pem = SLICE(NULL, 0);
    assert_int_equal(dcap_quote_fetch_params(&c, &t2, fmspc, &ca), -EINVAL);
    c = q.q;
    c.pck_chain_pem = SLICE("garbage", 7);
    assert_int_equal(dcap_quote_fetch_params(&c, &t2, fmspc, &ca), -EBADMSG);
    c = q.q;
    c.tee_type = 0x42;
    assert_int_equal(dcap_quote_fetch_params(&c, &t2, fmspc, &ca), -ENOTSUP);
    /* Chain whose leaf is the intermediate (no PCK extension). */
    c = q.q;
    const char *second = strstr((const char *)q.q.pck_chain_pem.ptr + 1, "-----BEGIN CERT");
    assert_non_null(second);
    size_t off = (size_t)((const uint8_t *)second - q.q.pck_chain_pem.ptr);
    c.pck_chain_pem = SLICE(second, q.q.pck_chain_pem.len - off);
    assert_int_equal(dcap_quote_fetch_params(&c, &t2, fmspc, &ca), -EBADMSG);
    buf_free(&q.data);
  }
}

static void test_fetch_qvl_exact(void **state) {
  (void)state;
  static const struct {
    const char *set, *quote, *coll;
  } v[] = {
      {"dcap-qvl-tdx", "dcap-qvl/tdx_quote", "dcap-qvl/tdx_quote_collateral.json"},
      {"dcap-qvl-sgx", "dcap-qvl/sgx_quote", "dcap-qvl/sgx_quote_collateral.json"},
      {"dcap-qvl-tdx-outdated", "dcap-qvl/tdx_quote_outdated",
       "dcap-qvl/tdx_quote_outdated_collateral.json"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
    struct vq q;
    load_quote(v[i].quote, &q);
    struct dcap_collateral exp = {0}, got = {0};
    load_qvl(v[i].coll, &exp);
    struct dcap_fetch_opts o;
    fetch_opts_nocache(&o);
    int before = pccs_stub_requests();
    assert_int_equal(dcap_fetch_collateral(pccs_stub_base(v[i].set), &q.q, &o, &got), 0);
    assert_int_equal(pccs_stub_requests() - before, 4);
    assert_coll_equal(&exp, &got);
    dcap_collateral_free(&got);
    /* The PCCS-style base with the API suffix gives the same. */
    char b2[512];
    snprintf(b2, sizeof(b2), "%s/sgx/certification/v4/", pccs_stub_base(v[i].set));
    assert_int_equal(dcap_fetch_collateral(b2, &q.q, &o, &got), 0);
    assert_coll_equal(&exp, &got);
    dcap_collateral_free(&got);
    dcap_collateral_free(&exp);
    buf_free(&q.data);
  }
}

static void test_fetch_verify(void **state) {
  (void)state;
  struct vq q;
  load_quote("dcap-qvl/tdx_quote", &q);
  struct dcap_collateral got = {0};
  struct dcap_fetch_opts o;
  fetch_opts_nocache(&o);
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx"), &q.q, &o, &got), 0);
  struct dcap_verifier *v = NULL;
  assert_int_equal(dcap_verifier_new(NULL, &v), 0);
  struct dcap_result res = {0};
  char err[256] = "";
  int r = dcap_verify(v, q.data.data, q.data.len, &got, QVL_TDX_TIME, &res, err, sizeof(err));
  if (r != 0)
    fail_msg("dcap_verify: %d %s", r, err);
  assert_string_equal(dcap_status_name(res.status), "UpToDate");
  assert_int_equal(res.n_advisory_ids, 0);
  dcap_result_free(&res);
  /* The same fetched collateral is expired two seconds later. */
  assert_true(dcap_verify(v, q.data.data, q.data.len, &got, QVL_TDX_EXPIRY + 1, &res, err,
                          sizeof(err)) < 0);
  dcap_verifier_free(v);
  dcap_collateral_free(&got);
  buf_free(&q.data);
}

static void test_fetch_pcs_files(void **state) {
  (void)state;
  struct dcap_fetch_opts o;
  fetch_opts_nocache(&o);
  struct dcap_collateral got = {0};
  struct buf b = BUF_INIT(BUF_MAX_FILE);

  /* zkdcap: TDX by FMSPC and CA directly; the bodies' inner objects are the signed text. */
  uint8_t fmspc[6] = {0x00, 0x80, 0x6f, 0x05, 0x00, 0x00};
  assert_int_equal(dcap_fetch_collateral_for(pccs_stub_base("zkdcap"), DCAP_TEE_TDX, fmspc,
                                             DCAP_PCK_CA_PLATFORM, &o, &got),
                   0);
  tu_read_vector("zkdcap/tcbinfov3_00806f050000.json", false, &b);
  const char *inner;
  size_t inner_len;
  assert_int_equal(dcap_json_member_raw((const char *)b.data, b.len, "tcbInfo", &inner, &inner_len), 0);
  assert_int_equal(strlen(got.tcb_info), inner_len);
  assert_memory_equal(got.tcb_info, inner, inner_len);
  buf_reset(&b);
  tu_read_vector("zkdcap/pck_platform_crl.der", false, &b);
  assert_int_equal(got.pck_crl.len, b.len);
  assert_memory_equal(got.pck_crl.data, b.data, b.len);
  buf_reset(&b);
  tu_read_vector("zkdcap/intel_root_ca_crl.der", false, &b);
  assert_int_equal(got.root_ca_crl.len, b.len);
  assert_memory_equal(got.root_ca_crl.data, b.data, b.len);
  assert_non_null(strstr(got.qe_identity, "\"TD_QE\""));
  dcap_collateral_free(&got);

  /* zkdcap: SGX, processor CA (upper-case FMSPC in the recording). */
  uint8_t fmspc2[6] = {0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00};
  assert_int_equal(dcap_fetch_collateral_for(pccs_stub_base("zkdcap"), DCAP_TEE_SGX, fmspc2,
                                             DCAP_PCK_CA_PROCESSOR, &o, &got),
                   0);
  assert_non_null(strstr(got.qe_identity, "\"id\":\"QE\""));
  buf_reset(&b);
  tu_read_vector("zkdcap/pck_processor_crl.der", false, &b);
  assert_int_equal(got.pck_crl.len, b.len);
  assert_memory_equal(got.pck_crl.data, b.data, b.len);
  dcap_collateral_free(&got);

  /* go-tdx-guest: older header spellings (SGX-TCB-Info-Issuer-Chain, PCK-CRL-Issuer-Chain). */
  uint8_t fmspc3[6] = {0x50, 0x80, 0x6f, 0x00, 0x00, 0x00};
  o.now = 1688173200;
  assert_int_equal(dcap_fetch_collateral_for(pccs_stub_base("go-tdx-guest"), DCAP_TEE_TDX, fmspc3,
                                             DCAP_PCK_CA_PLATFORM, &o, &got),
                   0);
  buf_reset(&b);
  tu_read_vector("go-tdx-guest/tcbInfoIssuerChain.pem", false, &b);
  assert_int_equal(strlen(got.tcb_info_issuer_chain), b.len);
  assert_memory_equal(got.tcb_info_issuer_chain, b.data, b.len);
  buf_reset(&b);
  tu_read_vector("go-tdx-guest/pckCrlIssuerChain.pem", false, &b);
  assert_memory_equal(got.pck_crl_issuer_chain, b.data, b.len);
  buf_reset(&b);
  tu_read_vector("go-tdx-guest/pckcrl", false, &b);
  assert_memory_equal(got.pck_crl.data, b.data, b.len);
  dcap_collateral_free(&got);
  buf_free(&b);
}

static void test_fetch_root_crl_url(void **state) {
  (void)state;
  struct vq q;
  load_quote("dcap-qvl/tdx_quote", &q);
  struct dcap_collateral exp = {0}, got = {0};
  load_qvl("dcap-qvl/tdx_quote_collateral.json", &exp);

  /* The root certificate's CRL distribution point (what Intel PCS users fall back to). */
  char *u = NULL;
  assert_int_equal(dcap_fetch_root_crl_url(exp.pck_crl_issuer_chain, &u), 0);
  assert_string_equal(u, "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der");
  free(u);
  assert_true(dcap_fetch_root_crl_url("no pem", &u) < 0);

  /* A PCS-like set without /rootcacrl, with the root CRL URL configured. */
  struct dcap_fetch_opts o;
  fetch_opts_nocache(&o);
  char rurl[512];
  snprintf(rurl, sizeof(rurl), "%s/IntelSGXRootCA.der", pccs_stub_base("dcap-qvl-tdx-pcs"));
  o.root_ca_crl_url = rurl;
  int before = pccs_stub_requests();
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx-pcs"), &q.q, &o, &got), 0);
  assert_int_equal(pccs_stub_requests() - before, 4);
  assert_coll_equal(&exp, &got);
  dcap_collateral_free(&got);
  o.root_ca_crl_url = "ftp://x/y";
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx-pcs"), &q.q, &o, &got), -EINVAL);
  /* A configured URL that 404s is an error, not a fallback. */
  snprintf(rurl, sizeof(rurl), "%s/nothing.der", pccs_stub_base("dcap-qvl-tdx-pcs"));
  o.root_ca_crl_url = rurl;
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx-pcs"), &q.q, &o, &got), -ENOENT);
  dcap_collateral_free(&exp);
  buf_free(&q.data);
}

static void test_fetch_errors(void **state) {
  (void)state;
  struct dcap_fetch_opts o;
  fetch_opts_nocache(&o);
  struct dcap_collateral got = {0};
  uint8_t unknown[6] = {1, 2, 3, 4, 5, 6};
  assert_int_equal(dcap_fetch_collateral_for(pccs_stub_base("dcap-qvl-tdx"), DCAP_TEE_TDX, unknown,
                                             DCAP_PCK_CA_PLATFORM, &o, &got),
                   -ENOENT);
  /* Right FMSPC, wrong TEE (the SGX endpoint has nothing for it). */
  uint8_t fm[6] = {0xb0, 0xc0, 0x6f, 0, 0, 0};
  assert_int_equal(dcap_fetch_collateral_for(pccs_stub_base("dcap-qvl-tdx"), DCAP_TEE_SGX, fm,
                                             DCAP_PCK_CA_PLATFORM, &o, &got),
                   -ENOENT);
  /* No processor CRL recorded in this set. */
  assert_int_equal(dcap_fetch_collateral_for(pccs_stub_base("dcap-qvl-tdx"), DCAP_TEE_TDX, fm,
                                             DCAP_PCK_CA_PROCESSOR, &o, &got),
                   -ENOENT);
  /* Unknown set: everything 404. */
  assert_int_equal(dcap_fetch_collateral_for(pccs_stub_base("nope"), DCAP_TEE_TDX, fm, DCAP_PCK_CA_PLATFORM,
                                             &o, &got),
                   -ENOENT);
  assert_int_equal(dcap_fetch_collateral_for("ftp://x", DCAP_TEE_TDX, fm, DCAP_PCK_CA_PLATFORM, &o,
                                             &got),
                   -EINVAL);
  assert_int_equal(dcap_fetch_collateral_for(pccs_stub_base("dcap-qvl-tdx"), 7, fm, DCAP_PCK_CA_PLATFORM, &o,
                                             &got),
                   -EINVAL);
  /* Server failing: 503 is -EIO. */
  pccs_stub_control("/__fail?on=1");
  assert_int_equal(dcap_fetch_collateral_for(pccs_stub_base("dcap-qvl-tdx"), DCAP_TEE_TDX, fm,
                                             DCAP_PCK_CA_PLATFORM, &o, &got),
                   -EIO);
  pccs_stub_control("/__fail?on=0");
  /* Nobody listening. */
  assert_int_equal(dcap_fetch_collateral_for("http://127.0.0.1:1", DCAP_TEE_TDX, fm,
                                             DCAP_PCK_CA_PLATFORM, &o, &got),
                   -ECONNREFUSED);
  assert_null(got.tcb_info);
}

static void test_cache_explicit(void **state) {
  (void)state;
  struct vq q;
  load_quote("dcap-qvl/tdx_quote", &q);
  struct dcap_collateral exp = {0}, got = {0};
  load_qvl("dcap-qvl/tdx_quote_collateral.json", &exp);
  char *dir = tu_mkdtemp();
  struct dcap_cache *cache = NULL;
  assert_int_equal(dcap_cache_new(dir, &cache), 0);
  struct dcap_fetch_opts o = {.cache = cache, .now = QVL_TDX_TIME};

  int n0 = pccs_stub_requests();
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx"), &q.q, &o, &got), 0);
  assert_coll_equal(&exp, &got);
  dcap_collateral_free(&got);
  assert_int_equal(pccs_stub_requests() - n0, 4);
  /* Second time: from the cache, no request. */
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx"), &q.q, &o, &got), 0);
  assert_coll_equal(&exp, &got);
  dcap_collateral_free(&got);
  assert_int_equal(pccs_stub_requests() - n0, 4);
  /* Server down: a valid entry is still served. */
  pccs_stub_control("/__fail?on=1");
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx"), &q.q, &o, &got), 0);
  dcap_collateral_free(&got);
  assert_int_equal(pccs_stub_requests() - n0, 4);
  /* Past the earliest nextUpdate: the entry is stale, the re-fetch fails, and the call fails
   * instead of falling back to the stale collateral. */
  o.now = QVL_TDX_EXPIRY;
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx"), &q.q, &o, &got), -EIO);
  assert_null(got.tcb_info);
  assert_int_equal(pccs_stub_requests() - n0, 5);
  /* Not even at the earlier time any more: the stale entry was dropped (memory and disk). */
  o.now = QVL_TDX_TIME;
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx"), &q.q, &o, &got), -EIO);
  assert_int_equal(pccs_stub_requests() - n0, 6);
  pccs_stub_control("/__fail?on=0");
  /* Back up: fetched again and cached again, on disk too. */
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx"), &q.q, &o, &got), 0);
  dcap_collateral_free(&got);
  assert_int_equal(pccs_stub_requests() - n0, 10);
  dcap_cache_free(cache);
  assert_int_equal(dcap_cache_new(dir, &cache), 0);
  o.cache = cache;
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx"), &q.q, &o, &got), 0);
  assert_coll_equal(&exp, &got);
  dcap_collateral_free(&got);
  assert_int_equal(pccs_stub_requests() - n0, 10);
  /* Fetching already-expired collateral returns it (the verifier rejects it) but caches
   * nothing. */
  o.now = QVL_TDX_EXPIRY + 100;
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx"), &q.q, &o, &got), 0);
  dcap_collateral_free(&got);
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx"), &q.q, &o, &got), 0);
  dcap_collateral_free(&got);
  assert_int_equal(pccs_stub_requests() - n0, 18);
  /* no_cache bypasses a valid entry. */
  o.now = QVL_TDX_TIME;
  o.no_cache = true;
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-tdx"), &q.q, &o, &got), 0);
  dcap_collateral_free(&got);
  assert_int_equal(pccs_stub_requests() - n0, 22);
  dcap_cache_free(cache);
  tu_rm_rf(dir);
  free(dir);
  dcap_collateral_free(&exp);
  buf_free(&q.data);
}

static void test_cache_shared(void **state) {
  (void)state;
  struct vq q;
  load_quote("dcap-qvl/sgx_quote", &q);
  struct dcap_collateral got = {0};
  char *dir = tu_mkdtemp();
  struct dcap_fetch_opts o = {.cache_dir = dir, .now = QVL_SGX_TIME};
  int n0 = pccs_stub_requests();
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-sgx"), &q.q, &o, &got), 0);
  dcap_collateral_free(&got);
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-sgx"), &q.q, &o, &got), 0);
  dcap_collateral_free(&got);
  assert_int_equal(pccs_stub_requests() - n0, 4);
  /* The file is named by TEE, FMSPC and CA. */
  char path[4096];
  snprintf(path, sizeof(path), "%s/sgx-00a067110000-processor.json", dir);
  assert_int_equal(access(path, R_OK), 0);
  /* A fresh process (caches dropped) reads the directory given by the environment. */
  dcap_fetch_caches_free();
  setenv("DSTACK_DCAP_CACHE_DIR", dir, 1);
  struct dcap_fetch_opts o2 = {.now = QVL_SGX_TIME};
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-sgx"), &q.q, &o2, &got), 0);
  dcap_collateral_free(&got);
  assert_int_equal(pccs_stub_requests() - n0, 4);
  unsetenv("DSTACK_DCAP_CACHE_DIR");
  /* Memory-only shared cache without a directory. */
  dcap_fetch_caches_free();
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-sgx"), &q.q, &o2, &got), 0);
  dcap_collateral_free(&got);
  assert_int_equal(dcap_fetch_collateral(pccs_stub_base("dcap-qvl-sgx"), &q.q, &o2, &got), 0);
  dcap_collateral_free(&got);
  assert_int_equal(pccs_stub_requests() - n0, 8);
  dcap_fetch_caches_free();
  tu_rm_rf(dir);
  free(dir);
  buf_free(&q.data);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest offline[] = {
      cmocka_unit_test(test_base_url),
      cmocka_unit_test(test_quote_params),
  };
  const struct CMUnitTest online[] = {
      cmocka_unit_test(test_fetch_qvl_exact),  cmocka_unit_test(test_fetch_verify),
      cmocka_unit_test(test_fetch_pcs_files),  cmocka_unit_test(test_fetch_root_crl_url),
      cmocka_unit_test(test_fetch_errors),     cmocka_unit_test(test_cache_explicit),
      cmocka_unit_test(test_cache_shared),
  };
  int fails = cmocka_run_group_tests_name("dcap_fetch_offline", offline, NULL, NULL);
  fails += cmocka_run_group_tests_name("dcap_fetch_pccs", online, server_start, server_stop);
  return fails;
}

/* bench_verify: DCAP quote verifications per second with warm collateral, one thread.
 *
 *   bench_verify [--seconds S] [--cold-seconds S] [--max N] NAME=QUOTE,COLLATERAL_JSON,UNIX_TIME ...
 *
 * COLLATERAL_JSON is dcap-qvl's collateral JSON. Each quote is verified once (its status is
 * reported), then the quotes that verified are verified round robin for S seconds (or N
 * verifications) with one verifier, so its caches are warm. Prints one JSON line:
 *   {"verifier":"dstack","cases":[{"name":..,"status":..,"advisory_ids":[..]} or
 *    {"name":..,"status":null,"error":".."}],"timed_cases":[..],"verifications":N,
 *    "seconds":S,"per_sec":X,"cold_verifications":..,"cold_seconds":..,"cold_per_sec":..}
 * With --cold-seconds, a second loop drops the verifier's caches before every verification
 * (what the peers, which keep no cache, pay on every call); reported next to, not in, the
 * warm rate.
 * bench/verify runs it next to the peer drivers in bench/js with the same arguments. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/dcap.h"
#include "attest/dcap_collateral.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "base/macro.h"

#define BENCH_MAX_CASES 64
#define BENCH_MAX_QUOTE ((size_t)1024 * 1024)
#define BENCH_MAX_COLLATERAL ((size_t)16 * 1024 * 1024)
#define BENCH_MAX_ADVISORIES 256

struct bench_case {
  const char *name;
  struct buf quote;
  struct dcap_collateral col;
  int64_t now;
  bool ok;
};

static double bench_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* NAME=QUOTE,COLLATERAL,TIME; arg is modified in place (name points into it). */
static int bench_case_load(char *arg, struct bench_case *ret) {
  char *eq = strchr(arg, '=');
  if (!eq || eq == arg)
    return -EINVAL;
  *eq = '\0';
  char *quote_path = eq + 1;
  char *comma = strchr(quote_path, ',');
  if (!comma)
    return -EINVAL;
  *comma = '\0';
  char *col_path = comma + 1;
  comma = strchr(col_path, ',');
  if (!comma)
    return -EINVAL;
  *comma = '\0';
  char *end = NULL;
  errno = 0;
  long long t = strtoll(comma + 1, &end, 10);
  if (errno || !end || *end || end == comma + 1 || t < 0)
    return -EINVAL;

  ret->name = arg;
  ret->now = (int64_t)t;
  buf_init(&ret->quote, BENCH_MAX_QUOTE);
  int r = file_read_all(quote_path, BENCH_MAX_QUOTE, &ret->quote);
  if (r < 0) {
    fprintf(stderr, "bench_verify: %s: %s\n", quote_path, strerror(-r));
    return r;
  }
  _cleanup_buf_ struct buf text = {0};
  buf_init(&text, BENCH_MAX_COLLATERAL);
  r = file_read_all(col_path, BENCH_MAX_COLLATERAL, &text);
  if (r < 0) {
    fprintf(stderr, "bench_verify: %s: %s\n", col_path, strerror(-r));
    return r;
  }
  r = dcap_collateral_from_qvl_json((const char *)text.data, text.len, &ret->col);
  if (r < 0)
    fprintf(stderr, "bench_verify: %s: bad collateral: %s\n", col_path, strerror(-r));
  return r;
}

static int bench_verify_one(struct dcap_verifier *v, const struct bench_case *c,
                            struct dcap_result *ret, char *err, size_t errlen) {
  return dcap_verify(v, c->quote.data, c->quote.len, &c->col, c->now, ret, err, errlen);
}

static int bench_strcmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *bench_case_first(struct dcap_verifier *v, struct bench_case *c) {
  struct dcap_result res = {0};
  char err[256] = "";
  json_t *o = json_object();
  if (!o)
    return NULL;
  json_object_set_new(o, "name", json_string(c->name));
  int r = bench_verify_one(v, c, &res, err, sizeof(err));
  if (r < 0) {
    json_object_set_new(o, "status", json_null());
    json_object_set_new(o, "error", json_string(err[0] ? err : strerror(-r)));
    c->ok = false;
  } else {
    /* Sorted, so the drivers' lists compare as they are. */
    json_t *adv = json_array();
    const char *ids[BENCH_MAX_ADVISORIES];
    size_t n_ids = MIN(res.n_advisory_ids, (size_t)BENCH_MAX_ADVISORIES);
    for (size_t i = 0; i < n_ids; i++)
      ids[i] = res.advisory_ids[i];
    qsort(ids, n_ids, sizeof(ids[0]), bench_strcmp);
    for (size_t i = 0; i < n_ids; i++)
      json_array_append_new(adv, json_string(ids[i]));
    json_object_set_new(o, "status", json_string(dcap_status_name(res.status)));
    json_object_set_new(o, "advisory_ids", adv);
    c->ok = true;
  }
  dcap_result_free(&res);
  return o;
}

/* Round robin over the quotes that verified; the clock is read once per round. */
static int bench_loop(struct dcap_verifier *v, const struct bench_case *cases, size_t n_cases,
                      size_t n_ok, double seconds, unsigned long long max, bool cold,
                      unsigned long long *ret_n, double *ret_elapsed) {
  unsigned long long n = 0;
  double elapsed = 0;
  if (n_ok > 0) {
    double t0 = bench_clock();
    for (;;) {
      for (size_t i = 0; i < n_cases; i++) {
        if (!cases[i].ok)
          continue;
        struct dcap_result res = {0};
        char err[256] = "";
        if (cold)
          dcap_verifier_flush(v);
        int r = bench_verify_one(v, &cases[i], &res, err, sizeof(err));
        dcap_result_free(&res);
        if (r < 0) {
          fprintf(stderr, "bench_verify: %s failed in the loop: %s\n", cases[i].name, err);
          return r;
        }
      }
      n += n_ok;
      elapsed = bench_clock() - t0;
      if (elapsed >= seconds || n >= max)
        break;
    }
  }
  *ret_n = n;
  *ret_elapsed = elapsed;
  return 0;
}

static void usage(FILE *f) {
  fprintf(f, "Usage: bench_verify [--seconds S] [--cold-seconds S] [--max N] "
             "NAME=QUOTE,COLLATERAL_JSON,UNIX_TIME ...\n");
}

int main(int argc, char **argv) {
  double seconds = 3, cold_seconds = 0;
  unsigned long long max = 1000000;
  struct bench_case cases[BENCH_MAX_CASES] = {0};
  size_t n_cases = 0;
  struct dcap_verifier *v = NULL;
  json_t *out = NULL;
  int ret = 1;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = strtod(argv[++i], NULL);
    } else if (strcmp(argv[i], "--cold-seconds") == 0 && i + 1 < argc) {
      cold_seconds = strtod(argv[++i], NULL);
    } else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc) {
      max = strtoull(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      if (n_cases == BENCH_MAX_CASES) {
        fprintf(stderr, "bench_verify: too many cases\n");
        goto out;
      }
      if (bench_case_load(argv[i], &cases[n_cases++]) < 0) {
        fprintf(stderr, "bench_verify: bad case argument\n");
        usage(stderr);
        goto out;
      }
    }
  }
  if (n_cases == 0 || !(seconds > 0) || max == 0) {
    usage(stderr);
    goto out;
  }

  const struct dcap_verifier_opts opts = {0};
  int r = dcap_verifier_new(&opts, &v);
  if (r < 0) {
    fprintf(stderr, "bench_verify: dcap_verifier_new: %s\n", strerror(-r));
    goto out;
  }

  out = json_object();
  json_t *jcases = json_array(), *timed = json_array();
  json_object_set_new(out, "verifier", json_string("dstack"));
  json_object_set_new(out, "cases", jcases);
  json_object_set_new(out, "timed_cases", timed);
  size_t n_ok = 0;
  for (size_t i = 0; i < n_cases; i++) {
    json_array_append_new(jcases, bench_case_first(v, &cases[i]));
    if (cases[i].ok) {
      json_array_append_new(timed, json_string(cases[i].name));
      n_ok++;
    }
  }

  /* Warm: one verifier whose caches hold the verified chains and collateral. */
  unsigned long long n = 0;
  double elapsed = 0;
  if (bench_loop(v, cases, n_cases, n_ok, seconds, max, false, &n, &elapsed) < 0)
    goto out;
  /* Cold, for reference: caches dropped before every verification, as the peers work. */
  unsigned long long n_cold = 0;
  double elapsed_cold = 0;
  if (cold_seconds > 0 &&
      bench_loop(v, cases, n_cases, n_ok, cold_seconds, max, true, &n_cold, &elapsed_cold) < 0)
    goto out;
  json_object_set_new(out, "verifications", json_integer((json_int_t)n));
  json_object_set_new(out, "seconds", json_real(elapsed));
  json_object_set_new(out, "per_sec", json_real(elapsed > 0 ? (double)n / elapsed : 0));
  json_object_set_new(out, "cold_verifications", json_integer((json_int_t)n_cold));
  json_object_set_new(out, "cold_seconds", json_real(elapsed_cold));
  json_object_set_new(out, "cold_per_sec",
                      json_real(elapsed_cold > 0 ? (double)n_cold / elapsed_cold : 0));
  if (json_dumpf(out, stdout, JSON_COMPACT) < 0 || fputc('\n', stdout) == EOF ||
      fflush(stdout) != 0)
    goto out;
  ret = 0;
out:
  json_decref(out);
  dcap_verifier_free(v);
  for (size_t i = 0; i < n_cases; i++) {
    buf_free(&cases[i].quote);
    dcap_collateral_free(&cases[i].col);
  }
  return ret;
}

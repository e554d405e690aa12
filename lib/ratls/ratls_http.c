/* Collateral prefetch in front of an HTTP handler (ratls_http.h). */
#include "ratls_http.h"

#include <stdlib.h>

#include "ratls/ratls_verify.h"

struct waiting {
  struct http_request *req;
  struct ratls_prefetch *w;
  http_handler_fn next;
  void *next_ud;
};

static void on_fetched(void *ud) {
  struct waiting *x = ud; /* x->w is already freed by the verifier */
  struct http_request *req = x->req;
  http_handler_fn next = x->next;
  void *next_ud = x->next_ud;
  free(x);
  http_request_on_close(req, NULL, NULL);
  next(req, next_ud);
}

static void on_gone(void *ud) {
  struct waiting *x = ud;
  ratls_prefetch_cancel(x->w);
  free(x);
}

void ratls_http_prefetch_then(struct http_request *req, struct ratls_verifier *v,
                              struct offload *pool, int64_t now, http_handler_fn next,
                              void *next_ud) {
  X509 *cert = http_request_peer_cert(req);
  struct waiting *x = cert && pool ? calloc(1, sizeof(*x)) : NULL;
  if (x) {
    *x = (struct waiting){.req = req, .next = next, .next_ud = next_ud};
    if (ratls_verifier_prefetch(v, pool, cert, now, on_fetched, x, &x->w) == 1) {
      http_request_on_close(req, on_gone, x);
      return;
    }
    free(x);
  }
  next(req, next_ud);
}

/* GET / on the external port: the "Worker Information" page. */
#include <errno.h>
#include <string.h>

#include "base/hex.h"
#include "base/log.h"
#include "base/str.h"
#include "tappd_docker.h"
#include "tappd_logs.h"
#include "net/http_server.h"
#include "tappd_server.h"

static int row(struct buf *out, const char *label, const char *value) {
  int r = buf_printf(out, "<tr><th>%s</th><td><code>", label);
  if (r >= 0)
    r = buf_append_html(out, value);
  if (r >= 0)
    r = buf_append_str(out, "</code></td></tr>\n");
  return r;
}

static int containers_table(struct tappd *t, int list_err, const struct docker_container *cs,
                            size_t n, struct buf *out) {
  if (list_err < 0)
    return buf_printf(out, "<p>Containers are not available: %s.</p>\n", strerror(-list_err));
  int r;
  r = buf_append_str(out, "<table class=\"containers\">\n<tr><th>Name</th><th>Status</th>"
                          "<th>Logs</th></tr>\n");
  for (size_t i = 0; r >= 0 && i < n; i++) {
    const char *name = cs[i].names && cs[i].names[0] ? cs[i].names[0] : cs[i].id;
    if (name[0] == '/')
      name++;
    r = buf_append_str(out, "<tr><td>");
    if (r >= 0)
      r = buf_append_html(out, name);
    if (r >= 0)
      r = buf_append_str(out, "</td><td>");
    if (r >= 0)
      r = buf_append_html(out, cs[i].status);
    if (r >= 0)
      r = buf_append_str(out, "</td><td>");
    if (r >= 0 && t->public_logs && logs_container_name_valid(name)) {
      r = buf_append_str(out, "<a href=\"/logs/");
      if (r >= 0)
        r = buf_append_html(out, name);
      if (r >= 0)
        r = buf_append_str(out, "?text&amp;bare&amp;timestamps&amp;follow\">logs</a>");
    }
    if (r >= 0)
      r = buf_append_str(out, "</td></tr>\n");
  }
  if (r >= 0)
    r = buf_append_str(out, "</table>\n");
  return r;
}

int dashboard_render(struct tappd *t, int list_err, const struct docker_container *cs, size_t n,
                     struct buf *out) {
  struct tappd_info info;
  char *error = NULL;
  int r = tappd_info(t, true, &info, &error);
  free(error);
  if (r < 0)
    return r;
  _cleanup_free_ char *app_id = hex_encode_alloc(info.app_id.data, info.app_id.len);
  _cleanup_free_ char *instance = hex_encode_alloc(info.instance_id.data, info.instance_id.len);
  _cleanup_free_ char *compose = hex_encode_alloc(info.compose_hash.data, info.compose_hash.len);
  if (!app_id || !instance || !compose) {
    tappd_info_free(&info);
    return -ENOMEM;
  }
  r = buf_append_str(out,
                     "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                     "<title>Worker Information</title>\n<style>"
                     "body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:1em}"
                     "td,th{padding:2px 6px}textarea{width:100%;font-family:monospace}"
                     "</style></head>\n<body>\n<h1>Worker Information</h1>\n<table>\n");
  if (r >= 0)
    r = row(out, "App ID", app_id);
  if (r >= 0)
    r = row(out, "Instance ID", instance);
  if (r >= 0)
    r = row(out, "App name", info.app_name);
  if (r >= 0)
    r = row(out, "Compose hash", compose);
  if (r >= 0)
    r = buf_append_str(out, "</table>\n<h2>Containers</h2>\n");
  if (r >= 0)
    r = containers_table(t, list_err, cs, n, out);
  if (r >= 0)
    r = buf_append_str(out, "<h2>TCB Info</h2>\n");
  if (r >= 0) {
    if (t->public_tcbinfo) {
      r = buf_append_str(out, "<textarea readonly rows=\"20\">");
      if (r >= 0)
        r = buf_append_html(out, info.tcb_info);
      if (r >= 0)
        r = buf_append_str(out, "</textarea>\n");
    } else {
      r = buf_append_str(out, "<p>Not public for this app (public_tcbinfo is off).</p>\n");
    }
  }
  if (r >= 0)
    r = buf_append_str(out, "<h2>App Certificate</h2>\n<textarea readonly rows=\"12\">");
  if (r >= 0)
    r = buf_append_html(out, info.app_cert);
  if (r >= 0)
    r = buf_printf(out, "</textarea>\n<p>tappd %s (%s)</p>\n</body></html>\n", tappd_version(),
                   tappd_git_rev());
  tappd_info_free(&info);
  return r < 0 ? r : 0;
}

static void dashboard_reply(struct tappd_server *srv, struct http_request *req, int list_err,
                            const struct docker_container *cs, size_t n) {
  _cleanup_buf_ struct buf page = BUF_INIT(16 * 1024 * 1024);
  int r = dashboard_render(srv->t, list_err, cs, n, &page);
  if (r < 0) {
    log_warn("rendering the dashboard: %s", strerror(-r));
    (void)http_reply_error(req, 500, "cannot render the dashboard: %s", strerror(-r));
    return;
  }
  (void)http_reply_header(req, "X-App-Version", tappd_version());
  (void)http_reply(req, 200, "text/html; charset=utf-8", page.data, page.len);
}

void dashboard_http_handler(struct http_request *req, void *ud) {
  struct tappd_server *srv = ud;
  const char *m = http_request_method(req);
  if (!str_eq(http_request_path(req), "/")) {
    (void)http_reply_error(req, 404, "not found");
    return;
  }
  if (!str_eq(m, "GET") && !str_eq(m, "HEAD")) {
    (void)http_reply_header(req, "Allow", "GET, HEAD");
    (void)http_reply_error(req, 405, "method not allowed");
    return;
  }
  /* The page is rendered once the container list is in; the loop keeps serving meanwhile. */
  tappd_server_with_containers(srv, req, dashboard_reply);
}

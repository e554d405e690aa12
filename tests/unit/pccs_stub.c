/* tests/it/pccs_server.py as a child process of a unit test (pccs_stub.h). */
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
#include <unistd.h>

#include "base/json.h"
#include "net/http_client.h"
#include "pccs_stub.h"
#include "testutil.h"

static pid_t g_pid = -1;
static int g_stdin = -1;
static char g_root[64]; /* http://127.0.0.1:PORT */

void pccs_stub_start(void) {
  char script[4096], data[4096];
  snprintf(script, sizeof(script), "%s", tu_source_path("tests/it/pccs_server.py"));
  snprintf(data, sizeof(data), "%s", tu_source_path("tests/data/pccs"));
  int in[2], out[2];
  assert_int_equal(pipe2(in, O_CLOEXEC), 0);
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    execlp("python3", "python3", script, "--data", data, "--lifetime", "300",
           "--exit-on-stdin-eof", (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  g_pid = pid;
  g_stdin = in[1];
  char line[64] = "";
  size_t n = 0;
  for (int i = 0; i < 150 && !memchr(line, '\n', n); i++) { /* at most ~15 s */
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    if (poll(&p, 1, 100) <= 0)
      continue;
    ssize_t k = read(out[0], line + n, sizeof(line) - 1 - n);
    if (k <= 0)
      break;
    n += (size_t)k;
    line[n] = '\0';
  }
  close(out[0]);
  int port = atoi(line);
  if (port <= 0)
    fail_msg("pccs_server.py did not start (got \"%s\")", line);
  snprintf(g_root, sizeof(g_root), "http://127.0.0.1:%d", port);
}

void pccs_stub_stop(void) {
  if (g_stdin >= 0)
    close(g_stdin); /* the server exits on stdin EOF */
  g_stdin = -1;
  if (g_pid < 0)
    return;
  int st;
  for (int i = 0; i < 50; i++) {
    if (waitpid(g_pid, &st, WNOHANG) == g_pid) {
      g_pid = -1;
      return;
    }
    usleep(100 * 1000);
  }
  kill(g_pid, SIGKILL);
  waitpid(g_pid, &st, 0);
  g_pid = -1;
}

const char *pccs_stub_base(const char *set) {
  static char u[256];
  snprintf(u, sizeof(u), "%s/%s", g_root, set);
  return u;
}

void pccs_stub_control(const char *path) {
  char u[256];
  snprintf(u, sizeof(u), "%s%s", g_root, path);
  struct http_response r = {0};
  assert_int_equal(http_get(u, NULL, &r), 0);
  assert_int_equal(r.status, 200);
  http_response_free(&r);
}

int pccs_stub_requests(void) {
  char u[256];
  snprintf(u, sizeof(u), "%s/__stats", g_root);
  struct http_response r = {0};
  assert_int_equal(http_get(u, NULL, &r), 0);
  json_t *j = NULL;
  assert_int_equal(json_parse_buf((const char *)r.body.data, r.body.len, 1 << 16, &j), 0);
  uint64_t n = 0;
  assert_int_equal(json_get_u64(j, "requests", &n), 0);
  json_decref(j);
  http_response_free(&r);
  return (int)n;
}

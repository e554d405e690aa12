/* tboot's entry point: the boot steps in order (tboot.h), then PID 1's duties. A step that
 * fails has reported its error to the console and to teepod; tboot then stays up without
 * starting the app, so the error stays visible and the power button still works. */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attest/hostch_client.h"
#include "attest/tee.h"
#include "base/json.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "tboot.h"

/* The TDX guest driver's device (it also registers the configfs-tsm provider; the tsm module
 * alone, loaded as its dependency, makes /sys/kernel/config/tsm/report appear without one). */
static bool tdx_present(void) {
  return access("/dev/tdx_guest", F_OK) == 0;
}

/* Whether this is a TD, asked of the CPU as the kernel asks it: CPUID leaf 0x21 answers
 * "IntelTDX    " inside a TD, and that leaf is the TDX module's, not the host's. A TD then uses
 * its TDX device and nothing else, whatever the host channel claims. */
static bool cpu_is_td(void) {
  unsigned a, b, c, d;
  if (__get_cpuid_max(0, NULL) < 0x21)
    return false;
  __cpuid_count(0x21, 0, a, b, c, d);
  (void)a;
  char sig[12];
  memcpy(sig, &b, 4);
  memcpy(sig + 4, &d, 4);
  memcpy(sig + 8, &c, 4);
  return memcmp(sig, "IntelTDX    ", 12) == 0;
}

/* The host channel's Info; with no TDX device, platform "sim" means teepod plays the TDX module
 * (a simulator: no production verifier accepts its quotes). */
static int tee_choose(struct tboot *t) {
  json_t *info = NULL;
  char *err = NULL;
  const char *platform = "";
  /* the port's name reaches sysfs shortly after the device: look for up to 5 s */
  int r = -ENODEV;
  for (int i = 0; i < 50 && r == -ENODEV; i++) {
    r = hostch_call("Info", NULL, 5000, &info, &err);
    if (r == -ENODEV)
      usleep(100 * 1000);
  }
  if (r == 0) {
    t->have_host = true;
    json_get_str(info, "platform", &platform);
    log_info("host channel up (platform %s)", platform ? platform : "?");
  } else {
    log_warn("no host channel (%s%s%s): progress is shown on the console only", strerror(-r),
             err ? ": " : "", err ? err : "");
  }
  free(err);
  bool td = cpu_is_td();
  if (td) {
    static const char *const mods[] = {"tdx_guest", NULL};
    tboot_modules_load(mods);
  }
  if (td || tdx_present())
    t->tee_name = "tdx";
  else if (t->have_host && platform && str_eq(platform, "sim"))
    t->tee_name = "hostch";
  json_decref(info);
  if (td && !tdx_present())
    return tboot_fail(t, -ENODEV, "this is a TD but its TDX guest device is missing "
                      "(tdx_guest / configfs-tsm not loaded)");
  if (!t->tee_name)
    return tboot_fail(t, -ENODEV, "no TEE: no TDX device, and the host does not simulate one");
  if ((r = tee_open(t->tee_name, &t->tee)) < 0)
    return tboot_fail(t, r, "opening the TEE (%s)", t->tee_name);
  return 0;
}

static int boot(struct tboot *t) {
  int r;
  tboot_progress(t, "tboot %s starting", TBOOT_VERSION);
  if ((r = tboot_config_load(t)) < 0)
    return r;
  tboot_progress(t, "measuring the app");
  if ((r = tboot_measure_boot(t)) < 0)
    return r;
  if (t->app.kms_enabled && (r = tboot_keys_fetch(t)) < 0)
    return r;
  if ((r = tboot_measure_keys(t)) < 0)
    return r;
  if ((r = tboot_disk_setup(t)) < 0)
    return r;
  if ((r = tboot_measure(t, "storage-fs", "ext4", 4)) < 0)
    return r;
  if (t->app.gateway_enabled)
    (void)tboot_gateway_setup(t); /* reported; the app starts anyway */
  /* nothing but the boot can have extended RTMR3 so far: tappd (and its EmitEvent) starts after */
  if ((r = tboot_measure(t, "system-ready", NULL, 0)) < 0)
    return r;
  if ((r = tboot_app_start(t)) < 0)
    return r;
  tboot_progress(t, "running");
  return 0;
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  bool pid1 = getpid() == 1;
  /* fds 0-2 always open (a pipe must never become "stdout"), and a child closing its end of a
   * pipe early must not kill tboot */
  for (int fd = 0; fd < 3; fd++)
    if (fcntl(fd, F_GETFD) < 0) {
      int n = open("/dev/null", O_RDWR);
      if (n >= 0 && n != fd) {
        dup2(n, fd);
        close(n);
      }
    }
  signal(SIGPIPE, SIG_IGN);
  log_ident_set("tboot");
  if (pid1)
    tboot_pid1_setup();
  printf("tboot %s\n", TBOOT_VERSION);
  fflush(stdout);
  struct tboot t = {.paths = &tboot_default_paths};
  uint64_t t0 = tboot_now_ms();
  int r = tee_choose(&t);
  if (r >= 0)
    r = boot(&t);
  if (r >= 0)
    log_info("boot done in %llu ms", (unsigned long long)(tboot_now_ms() - t0));
  else
    log_error("boot stopped; the app was not started. Waiting for shutdown.");
  if (pid1)
    tboot_dev_shell();
  tboot_pid1_run(&t, pid1);
  tboot_free(&t);
  return r < 0 ? 1 : 0;
}

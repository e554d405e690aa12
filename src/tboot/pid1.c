/* What PID 1 owes the system: the mounts a container runtime needs, modules, the network,
 * reaping orphans, and a clean power-off on the ACPI power button (teepod's ShutdownVm),
 * SIGTERM, SIGUSR1, SIGPWR or Ctrl-Alt-Del. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attest/hostch_client.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/str.h"
#include "tboot.h"

#define MODPROBE "/sbin/modprobe"
#define MAX_INPUTS 8

static void mount_one(const char *src, const char *dst, const char *type, unsigned long flags,
                      const char *opts) {
  (void)mkdir_p(dst, 0755);
  if (mount(src, dst, type, flags, opts) < 0 && errno != EBUSY)
    log_warn("mounting %s on %s: %m", type, dst);
}

void tboot_modules_load(const char *const *names) {
  const char *argv[40] = {MODPROBE, "-a", "-b"};
  size_t k = 3;
  for (size_t i = 0; names[i] && k + 1 < ARRAY_SIZE(argv); i++)
    argv[k++] = names[i];
  argv[k] = NULL;
  _cleanup_buf_ struct buf out = BUF_INIT(16 * 1024);
  struct tboot_cmd c = {.argv = argv, .timeout_ms = 60000, .output = &out};
  if (tboot_cmd_run(&c, NULL) < 0)
    log_warn("modprobe: %.*s", (int)MIN(out.len, (size_t)500), out.len ? (char *)out.data : "failed");
}

static int run_quiet(const char *const *argv, int timeout_ms) {
  _cleanup_buf_ struct buf out = BUF_INIT(8192);
  struct tboot_cmd c = {.argv = argv, .timeout_ms = timeout_ms, .output = &out};
  return tboot_cmd_run(&c, NULL);
}

/* eth0 by DHCP (busybox udhcpc with a script of ours); QEMU's user network as a fallback. */
static void network_up(void) {
  const char *lo[] = {"/sbin/ip", "link", "set", "lo", "up", NULL};
  const char *eth[] = {"/sbin/ip", "link", "set", "eth0", "up", NULL};
  (void)run_quiet(lo, 10000);
  for (int i = 0; i < 50 && access("/sys/class/net/eth0", F_OK) < 0; i++)
    usleep(100 * 1000);
  if (run_quiet(eth, 10000) < 0) {
    log_warn("eth0: no such interface");
    return;
  }
  static const char script[] =
      "#!/bin/sh\n"
      "# udhcpc hook written by tboot\n"
      "case \"$1\" in\n"
      "bound|renew)\n"
      "  /sbin/ip addr flush dev \"$interface\"\n"
      "  /sbin/ip addr add \"$ip/${mask:-24}\" dev \"$interface\"\n"
      "  for r in $router; do /sbin/ip route replace default via \"$r\" dev \"$interface\"; break; done\n"
      "  : > /etc/resolv.conf\n"
      "  for d in $dns; do echo \"nameserver $d\" >> /etc/resolv.conf; done\n"
      "  ;;\n"
      "esac\n";
  const char *path = "/run/dstack/udhcpc.sh";
  const char *bb = access("/usr/bin/busybox", X_OK) == 0 ? "/usr/bin/busybox" : "/bin/busybox";
  if (access(bb, X_OK) == 0 &&
      file_write_atomic(path, script, sizeof(script) - 1, 0700) == 0) {
    const char *dh[] = {bb, "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "5",
                        "-T", "1", "-s", path, NULL};
    if (run_quiet(dh, 20000) == 0) {
      log_info("eth0: address by DHCP");
      return;
    }
  }
  log_warn("eth0: no DHCP lease, using QEMU's user network (10.0.2.15/24 via 10.0.2.2)");
  const char *a[] = {"/sbin/ip", "addr", "add", "10.0.2.15/24", "dev", "eth0", NULL};
  const char *r[] = {"/sbin/ip", "route", "add", "default", "via", "10.0.2.2", NULL};
  (void)run_quiet(a, 10000);
  (void)run_quiet(r, 10000);
  static const char resolv[] = "nameserver 10.0.2.3\n";
  (void)file_write_atomic("/etc/resolv.conf", resolv, sizeof(resolv) - 1, 0644);
}

int tboot_pid1_setup(void) {
  umask(022);
  /* the kernel gives init HOME and TERM only; the runtime's helpers (netavark runs iptables,
   * podman runs conmon) are found through PATH */
  setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
  setenv("HOME", "/root", 1);
  mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666");
  mount_one("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_one("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_one("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  (void)mkdir_p("/run/dstack", 0700);
  (void)mkdir_p("/run/lock", 0755);
  (void)mkdir_p("/var/run", 0755);
  static const char ctl[] = "+cpu +memory +pids +io";
  int fd = open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, ctl, sizeof(ctl) - 1) < 0)
      log_warn("enabling cgroup controllers: %m");
    close(fd);
  }
  if (sethostname("dstack", 6) < 0)
    log_warn("setting the host name: %m");
  reboot(RB_DISABLE_CAD); /* Ctrl-Alt-Del becomes SIGINT */
  /* configfs for configfs-tsm (the TDX guest driver is loaded in a TD only, main.c) */
  static const char *const cfs_mods[] = {"configfs", NULL};
  tboot_modules_load(cfs_mods);
  mount_one("configfs", "/sys/kernel/config", "configfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  static const char *const mods[] = {
      "virtio_net", "virtio_console", "button", "evdev", "vfat", "nls_cp437", "nls_iso8859_1",
      "dm_crypt", "overlay", "bridge", "veth", "br_netfilter", "nf_tables", "nft_compat",
      "nft_chain_nat", "nf_nat", "xt_MASQUERADE", "xt_addrtype", "xt_conntrack", "xt_comment",
      "xt_mark", "xt_multiport", "iptable_nat", "iptable_filter", "ip_tables", NULL};
  tboot_modules_load(mods);
  network_up();
  return 0;
}

void tboot_dev_shell(void) {
  if (access("/etc/dstack/dev", F_OK) < 0 || access("/usr/bin/busybox", X_OK) < 0)
    return;
  pid_t pid = fork();
  if (pid < 0) {
    log_warn("dev shell: fork: %m");
    return;
  }
  if (pid > 0) {
    log_warn("development image: a root shell runs on the serial console");
    return;
  }
  setsid();
  int fd = open("/dev/ttyS0", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    _exit(1);
  ioctl(fd, TIOCSCTTY, 1);
  dup2(fd, 0);
  dup2(fd, 1);
  dup2(fd, 2);
  execl("/usr/bin/busybox", "sh", "-l", (char *)NULL);
  _exit(127);
}

static int open_power_buttons(int *fds) {
  int n = 0;
  DIR *d = opendir("/dev/input");
  if (!d)
    return 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < MAX_INPUTS) {
    if (!str_startswith(e->d_name, "event"))
      continue;
    char p[300];
    snprintf(p, sizeof(p), "/dev/input/%s", e->d_name);
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
      continue;
    unsigned long keys[KEY_MAX / (8 * sizeof(unsigned long)) + 1] = {0};
    if (ioctl(fd, EVIOCGBIT(EV_KEY, sizeof(keys)), keys) >= 0 &&
        (keys[KEY_POWER / (8 * sizeof(unsigned long))] >> (KEY_POWER % (8 * sizeof(unsigned long)))) & 1)
      fds[n++] = fd;
    else
      close(fd);
  }
  closedir(d);
  return n;
}

static void shutdown_now(struct tboot *t, const char *why) {
  log_info("shutting down (%s)", why);
  if (t->have_host)
    (void)hostch_notify("shutdown.progress", "stopping the app", 3000);
  tboot_app_stop(t);
  tboot_disk_close(t);
  if (t->have_host)
    (void)hostch_notify("shutdown.progress", "powering off", 3000);
  sync();
}

void tboot_pid1_run(struct tboot *t, bool pid1) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGPWR);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    /* without it the blocked signals would never arrive: take them the plain way */
    log_warn("signalfd: %m; waiting with sigwaitinfo");
    siginfo_t si;
    int sig;
    while ((sig = sigwaitinfo(&set, &si)) == SIGCHLD || sig < 0)
      while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    shutdown_now(t, strsignal(sig));
    if (pid1)
      reboot(RB_POWER_OFF);
    return;
  }
  int inputs[MAX_INPUTS];
  int n_in = open_power_buttons(inputs);
  log_info("waiting for the power button (%d input device%s)", n_in, n_in == 1 ? "" : "s");
  const char *why = NULL;
  while (!why) {
    struct pollfd p[MAX_INPUTS + 1];
    p[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
    for (int i = 0; i < n_in; i++)
      p[i + 1] = (struct pollfd){.fd = inputs[i], .events = POLLIN};
    if (poll(p, (nfds_t)(n_in + 1), -1) < 0 && errno != EINTR)
      break;
    if (p[0].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD)
          continue;
        why = si.ssi_signo == SIGINT ? "Ctrl-Alt-Del" : strsignal((int)si.ssi_signo);
      }
      pid_t dead;
      while ((dead = waitpid(-1, NULL, WNOHANG)) > 0)
        tboot_app_reaped(dead);
    }
    for (int i = 0; i < n_in; i++) {
      if (!p[i + 1].revents)
        continue;
      struct input_event ev;
      while (read(inputs[i], &ev, sizeof(ev)) == (ssize_t)sizeof(ev))
        if (ev.type == EV_KEY && ev.code == KEY_POWER && ev.value == 1)
          why = "power button";
    }
  }
  /* let the stop sequence wait for its own children */
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  shutdown_now(t, why ? why : "poll failed");
  if (pid1) {
    reboot(RB_POWER_OFF);
    for (;;)
      pause();
  }
}

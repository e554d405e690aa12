/* Processes teepod starts: QEMU (detached, in its own session, outliving teepod) and short
 * tools (qemu-img, mkfs.vfat, mcopy) it waits for. Nothing secret is ever put in an argv. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Runs argv[0] (PATH lookup) with stdin from /dev/null and its output captured (at most 4 KiB
 * kept, for the error message), waiting at most timeout_s; a tool still running then is killed.
 * 0 on exit status 0; else -EIO (err holds the tool's name, status and last output line),
 * -ETIMEDOUT, or the spawn error. */
int teepod_run_tool(char *const argv[], unsigned timeout_s, char *err, size_t errlen);

/* Starts QEMU detached: a new session, working directory dir, stdin /dev/null, stdout and
 * stderr appended to dir/qemu.out (0600), no inherited descriptors, default signal handling.
 * *ret_pid and *ret_pidfd (pidfd_open, to watch the exit from the loop). */
int teepod_spawn_detached(char *const argv[], const char *dir, pid_t *ret_pid, int *ret_pidfd);

/* An existing process to adopt: pid from dir/qemu.pid, alive, its command line names
 * dir/serial.log and its working directory is dir (so a reused pid is never taken for our
 * QEMU). ret_pidfd as above; -ESRCH when
 * there is no such process. */
int teepod_adopt(const char *dir, pid_t *ret_pid, int *ret_pidfd);

/* CLOCK_MONOTONIC in nanoseconds (deadlines, rate limits). */
uint64_t teepod_mono_ns(void);

/* The vsock CID on pid's command line (guest-cid=N), -ENOENT when it has none. */
int teepod_proc_cid(pid_t pid, uint32_t *ret);

/* Connects a stream socket to the unix socket NAME in folder DIR, however long DIR's path is
 * (through /proc/self/fd of the folder); never waits (-EAGAIN when the listener's backlog is
 * full). The socket returned is close-on-exec and blocking. */
int teepod_unix_connect(const char *dir, const char *name, int *ret_fd);

/* Reaps pid if it is our child (no-op otherwise); *ret_status = waitpid status or -1. */
void teepod_reap(pid_t pid, int *ret_status);

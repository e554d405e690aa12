/* Blocking work off an event loop: a few worker threads run jobs, and each job's completion
 * callback runs back on the loop's thread.
 *
 * For work that would stall every other client of a single-threaded server (a collateral fetch
 * that waits up to its timeout on a slow PCCS). The work function must not touch state the
 * loop owns: give it copies, and apply its result in the done callback, which runs on the
 * loop thread like any other event.
 *
 * Errors: -EAGAIN max_pending jobs already queued or running, -EINVAL bad arguments,
 * -ENOMEM. */
#pragma once

#include <stddef.h>

struct event_base;
struct offload;

typedef int (*offload_work_fn)(void *ud);              /* on a worker thread */
typedef void (*offload_done_fn)(void *ud, int result); /* on the loop thread */

/* threads: worker threads (1..64); max_pending: jobs queued or running at most. */
int offload_new(struct event_base *base, unsigned threads, unsigned max_pending,
                struct offload **ret);
/* On the loop thread, outside done callbacks. Waits for running jobs to finish, then runs the
 * done callback of every job that has not had it: with the job's result when it ran, with
 * -ECANCELED when it never started. NULL is fine. */
void offload_free(struct offload *o);

/* Queues work(ud); done(ud, work's result) follows on the loop thread. On the loop thread. */
int offload_submit(struct offload *o, offload_work_fn work, offload_done_fn done, void *ud);

/* Jobs queued or running, or finished but not yet delivered. */
unsigned offload_pending(const struct offload *o);

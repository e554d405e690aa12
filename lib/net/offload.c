/* Worker threads with completions delivered on the loop thread (offload.h). */
#include "offload.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define OFFLOAD_MAX_THREADS 64

struct job {
  struct job *next;
  offload_work_fn work;
  offload_done_fn done;
  void *ud;
  int result;
};

/* Singly linked FIFO. */
struct queue {
  struct job *head, *tail;
};

static void queue_push(struct queue *q, struct job *j) {
  j->next = NULL;
  if (q->tail)
    q->tail->next = j;
  else
    q->head = j;
  q->tail = j;
}

static struct job *queue_pop(struct queue *q) {
  struct job *j = q->head;
  if (j) {
    q->head = j->next;
    if (!q->head)
      q->tail = NULL;
  }
  return j;
}

struct offload {
  struct event_base *base;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  struct queue todo;     /* not started (lock) */
  struct queue finished; /* done running, not delivered (lock) */
  bool stopping;         /* (lock) */
  unsigned pending;      /* submitted and not delivered; loop thread only */
  unsigned max_pending;
  int pipe_rd, pipe_wr;  /* a byte per wake-up of the loop */
  struct event *ev;
  pthread_t threads[OFFLOAD_MAX_THREADS];
  unsigned n_threads;
};

static void *worker_main(void *arg) {
  struct offload *o = arg;
  pthread_mutex_lock(&o->lock);
  for (;;) {
    while (!o->stopping && !o->todo.head)
      pthread_cond_wait(&o->wake, &o->lock);
    if (o->stopping)
      break;
    struct job *j = queue_pop(&o->todo);
    pthread_mutex_unlock(&o->lock);
    j->result = j->work(j->ud);
    pthread_mutex_lock(&o->lock);
    bool was_empty = !o->finished.head;
    queue_push(&o->finished, j);
    if (was_empty) {
      char c = 1;
      /* the pipe holds at most one byte per empty->non-empty transition: never full */
      ssize_t n = write(o->pipe_wr, &c, 1);
      (void)n;
    }
  }
  pthread_mutex_unlock(&o->lock);
  return NULL;
}

/* Runs the done callbacks of finished jobs (loop thread). */
static void deliver(struct offload *o) {
  pthread_mutex_lock(&o->lock);
  struct queue q = o->finished;
  o->finished = (struct queue){0};
  char buf[64];
  while (read(o->pipe_rd, buf, sizeof(buf)) > 0)
    ;
  pthread_mutex_unlock(&o->lock);
  struct job *j;
  while ((j = queue_pop(&q))) {
    o->pending--;
    j->done(j->ud, j->result);
    free(j);
  }
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  deliver(arg);
}

int offload_new(struct event_base *base, unsigned threads, unsigned max_pending,
                struct offload **ret) {
  if (!base || !ret || threads == 0 || threads > OFFLOAD_MAX_THREADS || max_pending == 0)
    return -EINVAL;
  struct offload *o = calloc(1, sizeof(*o));
  if (!o)
    return -ENOMEM;
  o->base = base;
  o->max_pending = max_pending;
  o->pipe_rd = o->pipe_wr = -1;
  int fds[2], r;
  if (pthread_mutex_init(&o->lock, NULL) != 0) {
    free(o);
    return -ENOMEM;
  }
  if (pthread_cond_init(&o->wake, NULL) != 0) {
    pthread_mutex_destroy(&o->lock);
    free(o);
    return -ENOMEM;
  }
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
    r = -errno;
    goto fail;
  }
  o->pipe_rd = fds[0];
  o->pipe_wr = fds[1];
  o->ev = event_new(base, o->pipe_rd, EV_READ | EV_PERSIST, on_wake, o);
  if (!o->ev || event_add(o->ev, NULL) < 0) {
    r = -ENOMEM;
    goto fail;
  }
  for (; o->n_threads < threads; o->n_threads++) {
    r = -pthread_create(&o->threads[o->n_threads], NULL, worker_main, o);
    if (r < 0)
      goto fail;
  }
  *ret = o;
  return 0;
fail:
  offload_free(o);
  return r;
}

void offload_free(struct offload *o) {
  if (!o)
    return;
  pthread_mutex_lock(&o->lock);
  o->stopping = true;
  pthread_cond_broadcast(&o->wake);
  pthread_mutex_unlock(&o->lock);
  for (unsigned i = 0; i < o->n_threads; i++)
    pthread_join(o->threads[i], NULL);
  /* No worker left: what ran is in finished, what never started is in todo. */
  struct job *j;
  while ((j = queue_pop(&o->todo))) {
    j->result = -ECANCELED;
    queue_push(&o->finished, j);
  }
  if (o->pipe_rd >= 0)
    deliver(o);
  if (o->ev)
    event_free(o->ev);
  if (o->pipe_rd >= 0)
    close(o->pipe_rd);
  if (o->pipe_wr >= 0)
    close(o->pipe_wr);
  pthread_cond_destroy(&o->wake);
  pthread_mutex_destroy(&o->lock);
  free(o);
}

int offload_submit(struct offload *o, offload_work_fn work, offload_done_fn done, void *ud) {
  if (!o || !work || !done)
    return -EINVAL;
  if (o->pending >= o->max_pending)
    return -EAGAIN;
  struct job *j = calloc(1, sizeof(*j));
  if (!j)
    return -ENOMEM;
  *j = (struct job){.work = work, .done = done, .ud = ud};
  pthread_mutex_lock(&o->lock);
  queue_push(&o->todo, j);
  pthread_cond_signal(&o->wake);
  pthread_mutex_unlock(&o->lock);
  o->pending++;
  return 0;
}

unsigned offload_pending(const struct offload *o) {
  return o ? o->pending : 0;
}

/* Per-source connection counts, for capping how many connections one client holds at once.
 *
 * A source is an IPv4 address, or the /64 prefix of an IPv6 address: one host (or one LAN) is
 * normally given a whole /64, so counting full IPv6 addresses would let it pose as 2^64
 * sources. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack "::" listener sees
 * for IPv4 clients) count as their IPv4 address. Other families (unix sockets, socketpairs)
 * are not counted: they are local peers already gated by file permissions, and counting them
 * as one source would let one local client starve the others.
 *
 * Memory: one entry per source that has at least one counted connection, so the table never
 * holds more entries than the caller has connections. Chains are picked by a hash keyed with a
 * random seed per table, so a peer cannot choose addresses that pile up in one chain (and a
 * chain is never longer than the number of open connections anyway).
 *
 * Not thread-safe: one table per event loop. Functions return 0 or a negative errno. */
#pragma once

#include <stddef.h>
#include <sys/socket.h>

struct source_limit;
struct source_entry;

/* max_per_source: connections one source may hold (> 0, else -EINVAL). */
int source_limit_new(unsigned max_per_source, struct source_limit **ret);
/* Frees the table; entries still counted become invalid. NULL is fine. */
void source_limit_free(struct source_limit *l);

/* Counts one connection from sa (len bytes of it). *ret_entry is what to hand to
 * source_limit_release later, or NULL when the peer is not counted (not IPv4/IPv6, sa NULL,
 * len too short). -EBUSY: that source already holds max_per_source connections (nothing
 * counted). -ENOMEM. */
int source_limit_acquire(struct source_limit *l, const struct sockaddr *sa, socklen_t len,
                         struct source_entry **ret_entry);
/* Uncounts one connection of e's source (e from source_limit_acquire; NULL is a no-op). */
void source_limit_release(struct source_limit *l, struct source_entry *e);

/* The entry of sa's source: NULL when it holds no counted connection or is not counted. For
 * reaching the caller's data of a source at its cap (acquire gave -EBUSY). */
struct source_entry *source_limit_find(const struct source_limit *l, const struct sockaddr *sa,
                                       socklen_t len);

/* One pointer of the caller's per source (e.g. the head of a list of its connections): NULL
 * when the source's first connection is counted; gone with the entry when its last one is
 * released. */
void *source_entry_get_data(const struct source_entry *e);
void source_entry_set_data(struct source_entry *e, void *data);

/* Connections counted right now for sa's source (0 for peers that are not counted). */
unsigned source_limit_count(const struct source_limit *l, const struct sockaddr *sa,
                            socklen_t len);
/* Distinct sources with at least one counted connection. */
size_t source_limit_n_sources(const struct source_limit *l);

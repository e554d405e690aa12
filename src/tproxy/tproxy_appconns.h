/* Open proxy connections per app, shared by the proxy's worker threads, so that one app (or a
 * flood aimed at one app) cannot take every connection slot: each app may hold at most `limit`
 * connections at once. Counting is exact per app id (no hashing collisions between apps); an
 * app with no open connection has no entry, so the table holds at most as many entries as
 * there are open connections. */
#pragma once

struct tproxy_appconns;

int tproxy_appconns_new(unsigned limit, struct tproxy_appconns **ret);
void tproxy_appconns_free(struct tproxy_appconns *a);
/* One more connection of app_id: 0, -EBUSY when it already holds limit, -EINVAL for an empty or
 * overlong id (see TPROXY_APP_ID_MAX), -ENOMEM. */
int tproxy_appconns_acquire(struct tproxy_appconns *a, const char *app_id);
/* Gives back one acquired connection of app_id. */
void tproxy_appconns_release(struct tproxy_appconns *a, const char *app_id);
/* Connections app_id holds now. */
unsigned tproxy_appconns_count(struct tproxy_appconns *a, const char *app_id);
unsigned tproxy_appconns_limit(const struct tproxy_appconns *a);

/* Guest side of teepod's host channel (interface; the client lands with its tests). */
#pragma once

#include <jansson.h>

#define HOSTCH_PORT_NAME "org.dstack.host.0"
#define HOSTCH_ENV "DSTACK_HOST_CHANNEL"
#define HOSTCH_LOCK "/run/dstack/hostch.lock"
int hostch_call(const char *method, json_t *params, int timeout_ms, json_t **ret_result,
                char **ret_error);
int hostch_notify(const char *event, const char *payload, int timeout_ms);

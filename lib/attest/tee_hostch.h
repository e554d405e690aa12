/* The "hostch" TEE backend: TDX played by the host over the host channel (attest/hostch_client.h)
 * when teepod simulates TDX for its VMs (docs/teepod.md, `platform = sim`). Reports, quotes and
 * RTMR3 extends are teepod's Tdx.* requests; the RTMRs come from a TDREPORT. Never chosen
 * implicitly: a guest asks for it by name (tee_open("hostch"), DSTACK_TEE=hostch, tappd's
 * tee = "hostch"), since whoever answers on the channel decides what it attests.
 *
 * Its seed-era event log lives in TEE_HOSTCH_DEFAULT_EVENTLOG, apart from the TDX default, so a
 * guest that later sees a real TDX device never mixes the two logs. */
#pragma once

#include "base/buf.h"

struct tee;

#define TEE_HOSTCH_DEFAULT_EVENTLOG "/run/log/dstack/hostch_events.log"
/* Time one request may take: the host signs quotes and syncs extends to disk. */
#define TEE_HOSTCH_TIMEOUT_MS 30000
/* Largest boot event log (CCEL) accepted from the host, decoded. */
#define TEE_HOSTCH_CCEL_MAX ((size_t)1024 * 1024)

/* eventlog: the seed-era event log path (NULL = TEE_HOSTCH_DEFAULT_EVENTLOG). No request is
 * made here: a missing channel shows at the first operation (-ENODEV). */
int tee_hostch_new(const char *eventlog, struct tee **ret);
/* The boot event log of RTMR0-2 (raw CCEL bytes, Tdx.EventLog), appended to ret (its cap and
 * TEE_HOSTCH_CCEL_MAX apply). */
int tee_hostch_ccel(struct buf *ret);

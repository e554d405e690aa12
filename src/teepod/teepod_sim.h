/* Simulated TDX played by the host (platform = sim; docs/teepod.md): teepod is each VM's TDX
 * module. At every start it measures what it boots (MRTD, RTMR0-2 from lib/attest/td_measure,
 * the same code `tdxctl measure` runs), sets mrconfigid from the compose hash, zeroes RTMR3,
 * and keeps that TD state in DIR/td (0700); the guest extends RTMR3 and asks for reports and
 * quotes over the host channel, signed with the simulated platform's keys (sim_dir), which
 * the guest never sees. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct teepod_vm;
struct image_meta;

int teepod_sim_vm_boot(struct teepod_vm *vm, const struct image_meta *img, char *err,
                       size_t errlen);
/* After a restart of teepod: the running VM's TD state is taken up again. */
void teepod_sim_vm_adopt(struct teepod_vm *vm);
void teepod_sim_vm_free(struct teepod_vm *vm);
/* Tdx.<method> requests: Report, Quote, Extend, EventLog. */
int teepod_sim_dispatch(struct teepod_vm *vm, const char *method, json_t *params,
                        json_t **ret_result, char **ret_error);
/* mrconfigid of the VM's app (0x01 || compose hash || zeros). */
int teepod_vm_mrconfigid(struct teepod_vm *vm, uint8_t ret[48]);

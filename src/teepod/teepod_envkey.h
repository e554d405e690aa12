/* GetAppEnvEncryptPubKey (Vmm., Teepod. and no prefix): the public key an app's owner encrypts
 * env vars to, asked of the KMS (kms_urls in order) on a worker thread so the loop never waits
 * on the network. The reply is checked as the 0.5.x SDKs check it before it is passed on: the
 * signature_v1 (or, from an older KMS, the legacy signature) must recover to the KMS's root
 * k256 key (its GetMeta k256_pubkey), and signature_v1's timestamp must be at most 300 s old
 * and at most 60 s ahead. A reply that fails is an error, never forwarded. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_request;
struct teepod;
struct offload;

/* Paths served by teepod_envkey_handle (exact). */
bool teepod_envkey_path(const char *path);
void teepod_envkey_handle(struct teepod *tp, struct offload *off, struct http_request *req);

/* The check on its own (unit tests): 0 when the response is signed by k256_pub. */
int teepod_envkey_check(const uint8_t *app_id, size_t app_id_len, const uint8_t pub[32],
                        const uint8_t *sig, size_t sig_len, const uint8_t *sig_v1,
                        size_t sig_v1_len, uint64_t timestamp, uint64_t now,
                        const uint8_t k256_pub[33], const char **ret_why);

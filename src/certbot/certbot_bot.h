/* The bot: account, workdir (credentials.json, backup/<time>/, live/ symlinks), renewal and
 * the TEE quotes that bind the account and every certificate key. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "certbot_config.h"
#include "certbot_dns.h"

struct tee;

/* Opens the configured DNS provider. */
int certbot_dns_open(const struct certbot_config *c, struct certbot_dns **ret, char *err,
                     size_t errlen);

/* Loads credentials.json or, when it is missing, creates the ACME account and writes it (and
 * acme-account.quote when tee is given). ret_created says it was new. */
int certbot_bot_account(const struct certbot_config *c, struct tee *tee, bool *ret_created,
                        char *err, size_t errlen);

/* The CAA procedure (certbot_caa.h) for the configured domains and the account of
 * credentials.json: only that account may issue, through DNS-01. */
int certbot_bot_set_caa(const struct certbot_config *c, char *err, size_t errlen);

/* One renewal round: issues when the live pair is missing, renews (same key) when the live
 * certificate expires within renew_days_before or force. 1 when a certificate was stored, 0
 * when nothing was due, < 0 on error (err says why). */
int certbot_bot_renew_once(const struct certbot_config *c, struct tee *tee, bool force, char *err,
                           size_t errlen);

/* JSON Web Signatures for ACME (RFC 7515, RFC 8555 6.2): ES256 with a P-256 account key, the
 * key as a JWK (RFC 7517), its thumbprint (RFC 7638) and DNS-01 key authorizations. */
#pragma once

#include <jansson.h>
#include <openssl/evp.h>

/* {"crv":"P-256","kty":"EC","x":..,"y":..} of the public part of a P-256 key. */
int certbot_jwk_from_key(EVP_PKEY *k, json_t **ret);
/* base64url(SHA-256(canonical JSON of the required members)), for EC (crv, kty, x, y) and
 * RSA (e, kty, n) keys. -EINVAL for other key types or missing members. */
int certbot_jwk_thumbprint(const json_t *jwk, char **ret);
/* token "." thumbprint. The token must be base64url (RFC 8555 8.1): -EINVAL otherwise. */
int certbot_key_authorization(const char *token, const char *thumbprint, char **ret);
/* base64url(SHA-256(key authorization)) without padding: the TXT value of DNS-01. */
int certbot_dns01_value(const char *key_authorization, char **ret);
/* The flattened JWS: protected header {alg ES256, nonce, url, and kid or else jwk}, payload
 * (NULL = "" for POST-as-GET), signature r||s. */
int certbot_jws_sign(EVP_PKEY *k, const char *url, const char *nonce, const char *kid,
                     const char *payload, char **ret);
